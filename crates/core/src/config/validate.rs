//! Semantic checks that serde cannot express; each error names the JSON path at fault.

use std::collections::BTreeSet;

use super::{CanaryConfig, LambdaStatistic, MetricConfig, MetricKind, MetricSource, Routing};
use crate::error::ConfigError;
use crate::stats::{MAX_COUNT, TestKind};

/// The longest post-promotion soak: Step Functions lists executions for 90 days, but a soak
/// that outlasts a week compares against a baseline too old to mean much.
pub(crate) const MAX_POST_PROMOTION_SOAK: u64 = 7 * 24 * 3600;

/// The longest time any duration in a config may name: a year, Step Functions' limit on a
/// standard execution. Anything longer could never run, and near `u64::MAX` sums and
/// conversions to signed epochs wrap.
pub(crate) const MAX_DURATION: u64 = 365 * 24 * 3600;

/// A duration in `min..=max` seconds, or the error naming `field`; `why` says where `max`
/// comes from.
fn duration(field: &str, v: u64, min: u64, max: u64, why: &str) -> Result<(), ConfigError> {
    if (min..=max).contains(&v) {
        Ok(())
    } else {
        Err(ConfigError::new(
            field,
            format!("must be between {min} and {max} seconds ({why}), got {v}"),
        ))
    }
}

const A_YEAR: &str = "a year, Step Functions' longest execution";

/// Checks a parsed configuration.
pub(super) fn validate(c: &CanaryConfig) -> Result<(), ConfigError> {
    duration(
        "timeout_seconds",
        c.timeout_seconds,
        1,
        MAX_DURATION,
        A_YEAR,
    )?;
    duration(
        "traffic_advancing.hold_before_full_traffic",
        c.traffic_advancing.hold_before_full_traffic,
        0,
        MAX_DURATION,
        A_YEAR,
    )?;
    let holdback = c.traffic_advancing.live_holdback_percent;
    if !(holdback.is_finite() && (0.0..=20.0).contains(&holdback)) {
        return Err(ConfigError::new(
            "traffic_advancing.live_holdback_percent",
            format!("must be a percentage between 0 and 20, got {holdback}"),
        ));
    }
    validate_phases(c)?;
    validate_thresholds(c)?;
    if c.metrics.is_empty() {
        return Err(ConfigError::new(
            "metrics",
            "at least one metric is required",
        ));
    }
    let mut names = BTreeSet::new();
    for (i, m) in c.metrics.iter().enumerate() {
        let at = format!("metrics[{i}]");
        if !names.insert(m.name.as_str()) {
            return Err(ConfigError::new(
                format!("{at}.name"),
                format!("duplicate metric name {:?}", m.name),
            ));
        }
        validate_metric(&at, m)?;
    }
    duration(
        "analysis.look_interval_seconds",
        c.analysis.look_interval_seconds,
        1,
        super::MAX_WAIT_SECONDS,
        "a day, the longest wait between looks",
    )?;
    // The state machine's approval wait takes this as its TimeoutSecondsPath, which must be
    // a positive integer of at most 99999999 (otherwise a States.Runtime error ends the
    // execution without a rollback).
    if !(1..=99_999_999).contains(&c.auto_rollback.rollback_timeout_seconds) {
        return Err(ConfigError::new(
            "auto_rollback.rollback_timeout_seconds",
            "must be between 1 and 99999999 (the approval wait's timeout)",
        ));
    }
    let soak = c.post_promotion_soak_seconds;
    if soak != 0 && !(c.analysis.look_interval_seconds..=MAX_POST_PROMOTION_SOAK).contains(&soak) {
        return Err(ConfigError::new(
            "post_promotion_soak_seconds",
            format!(
                "must be 0 (off) or between analysis.look_interval_seconds ({}) and {MAX_POST_PROMOTION_SOAK} (7 days), got {soak}",
                c.analysis.look_interval_seconds
            ),
        ));
    }
    if let Some(t) = &c.target {
        for (field, value) in [
            ("function_name", &t.function_name),
            ("alias", &t.alias),
            ("baseline_version", &t.baseline_version),
            ("canary_version", &t.canary_version),
        ] {
            if value.trim().is_empty() {
                return Err(ConfigError::new(
                    format!("target.{field}"),
                    "must not be empty",
                ));
            }
        }
        if t.canary_version == t.baseline_version {
            return Err(ConfigError::new(
                "target.canary_version",
                format!(
                    "must differ from target.baseline_version (both are {:?})",
                    t.canary_version
                ),
            ));
        }
        match (t.routing, &t.canary_alias) {
            (Routing::TwoAliases, None) => {
                return Err(ConfigError::new(
                    "target.canary_alias",
                    "is required when target.routing is \"two-aliases\"",
                ));
            }
            (Routing::TwoAliases, Some(a)) if *a == t.alias => {
                return Err(ConfigError::new(
                    "target.canary_alias",
                    "must differ from target.alias",
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

fn validate_phases(c: &CanaryConfig) -> Result<(), ConfigError> {
    if c.canary_phases.is_empty() {
        return Err(ConfigError::new(
            "canary_phases",
            "at least one phase is required",
        ));
    }
    let mut previous: Option<f64> = None;
    for (i, p) in c.canary_phases.iter().enumerate() {
        let at = format!("canary_phases[{i}]");
        let w = p.traffic_percentage;
        if !w.is_finite() || w <= 0.0 || w > 100.0 {
            return Err(ConfigError::new(
                format!("{at}.traffic_percentage"),
                format!("must be a weight in (0, 100], got {w}"),
            ));
        }
        if let Some(prev) = previous
            && w <= prev
        {
            return Err(ConfigError::new(
                format!("{at}.traffic_percentage"),
                format!("traffic must increase from phase to phase ({w} after {prev})"),
            ));
        }
        previous = Some(w);
        if let Some(n) = p.phase
            && n as usize != i + 1
        {
            return Err(ConfigError::new(
                format!("{at}.phase"),
                format!("is {n} but this is phase {} of the ramp", i + 1),
            ));
        }
        duration(
            &format!("{at}.duration_seconds"),
            p.duration_seconds,
            1,
            MAX_DURATION,
            A_YEAR,
        )?;
        if p.min_samples == 0 {
            return Err(ConfigError::new(
                format!("{at}.min_samples"),
                "must be at least 1: a phase never advances without data",
            ));
        }
        if p.min_samples > MAX_COUNT {
            return Err(ConfigError::new(
                format!("{at}.min_samples"),
                format!(
                    "must be at most {MAX_COUNT} (2^53, the largest count a double holds exactly), got {}",
                    p.min_samples
                ),
            ));
        }
    }
    Ok(())
}

fn validate_thresholds(c: &CanaryConfig) -> Result<(), ConfigError> {
    let t = &c.statistical_thresholds;
    for (field, v) in [
        ("pass_p_value", t.pass_p_value),
        ("warning_p_value", t.warning_p_value),
        ("rollback_p_value", t.rollback_p_value),
    ] {
        if !(v > 0.0 && v < 1.0) {
            return Err(ConfigError::new(
                format!("statistical_thresholds.{field}"),
                format!("must be a probability in (0, 1), got {v}"),
            ));
        }
    }
    if t.warning_p_value > t.pass_p_value {
        return Err(ConfigError::new(
            "statistical_thresholds.warning_p_value",
            format!(
                "p-value tiers out of order: warning_p_value ({}) must not exceed pass_p_value ({})",
                t.warning_p_value, t.pass_p_value
            ),
        ));
    }
    if t.rollback_p_value > t.warning_p_value {
        return Err(ConfigError::new(
            "statistical_thresholds.rollback_p_value",
            format!(
                "p-value tiers out of order: rollback_p_value ({}) must not exceed warning_p_value ({})",
                t.rollback_p_value, t.warning_p_value
            ),
        ));
    }
    // The judge compares it with Cliff's delta (Mann-Whitney) or the KS distance, both at
    // most 1 in size: at 1 or more no regression short of complete separation could fail.
    if !(t.min_effect_size.is_finite() && (0.0..1.0).contains(&t.min_effect_size)) {
        return Err(ConfigError::new(
            "statistical_thresholds.min_effect_size",
            format!(
                "must be in [0, 1) (Cliff's delta and the KS distance are at most 1), got {}",
                t.min_effect_size
            ),
        ));
    }
    Ok(())
}

fn validate_metric(at: &str, m: &MetricConfig) -> Result<(), ConfigError> {
    if m.name.trim().is_empty() {
        return Err(ConfigError::new(format!("{at}.name"), "must not be empty"));
    }
    let fits = match m.test() {
        TestKind::MannWhitneyU | TestKind::KolmogorovSmirnov => m.kind != MetricKind::Counter,
        TestKind::PeriodPercentiles => m.kind == MetricKind::Histogram,
        TestKind::ChiSquare | TestKind::TwoProportionZ | TestKind::FisherExact => {
            m.kind == MetricKind::Counter
        }
    };
    if !fits {
        let hint = if m.kind == MetricKind::Counter {
            "counter metrics take chi-square, two-proportion-z or fisher-exact"
        } else {
            "histogram and gauge metrics take mann-whitney-u or kolmogorov-smirnov (histograms also period-percentiles)"
        };
        return Err(ConfigError::new(
            format!("{at}.statistical_test"),
            format!("{:?} does not fit a {:?} metric: {hint}", m.test(), m.kind),
        ));
    }
    if let Some(ps) = &m.percentiles {
        if m.kind == MetricKind::Counter {
            return Err(ConfigError::new(
                format!("{at}.percentiles"),
                "counter metrics have no percentiles",
            ));
        }
        for (j, p) in ps.iter().enumerate() {
            if !(p.is_finite() && *p > 0.0 && *p < 100.0) {
                return Err(ConfigError::new(
                    format!("{at}.percentiles[{j}]"),
                    format!("must be in (0, 100), got {p}"),
                ));
            }
        }
    }
    for (field, v) in [
        ("threshold_percent_increase", m.threshold_percent_increase),
        ("threshold_percent_decrease", m.threshold_percent_decrease),
    ] {
        if let Some(v) = v
            && !(v.is_finite() && v >= 0.0)
        {
            return Err(ConfigError::new(
                format!("{at}.{field}"),
                format!("must be a non-negative percentage, got {v}"),
            ));
        }
    }
    if let Some(v) = m.threshold_percent_decrease
        && v > 100.0
    {
        return Err(ConfigError::new(
            format!("{at}.threshold_percent_decrease"),
            format!("a decrease cannot exceed 100 %, got {v}"),
        ));
    }
    if let Some(v) = m.absolute_threshold
        && !v.is_finite()
    {
        return Err(ConfigError::new(
            format!("{at}.absolute_threshold"),
            "must be a finite number",
        ));
    }
    if let Some(source) = &m.source {
        validate_source(at, m, source)?;
    }
    Ok(())
}

fn validate_source(at: &str, m: &MetricConfig, source: &MetricSource) -> Result<(), ConfigError> {
    let expected = match source {
        MetricSource::Lambda(l) => match l.metric {
            LambdaStatistic::Duration => MetricKind::Histogram,
            LambdaStatistic::Errors | LambdaStatistic::Throttles => MetricKind::Counter,
            LambdaStatistic::Invocations | LambdaStatistic::ConcurrentExecutions => {
                MetricKind::Gauge
            }
        },
        MetricSource::Ratio(_) => MetricKind::Counter,
        MetricSource::Cloudwatch(_) if m.kind == MetricKind::Counter => {
            return Err(ConfigError::new(
                format!("{at}.source"),
                "a counter needs events and a total: use a ratio source (numerator/denominator) or a lambda Errors/Throttles source",
            ));
        }
        MetricSource::Cloudwatch(_) => m.kind,
    };
    if expected != m.kind {
        return Err(ConfigError::new(
            format!("{at}.source"),
            format!(
                "this source yields a {expected:?} metric but type is {:?}",
                m.kind
            ),
        ));
    }
    if let MetricSource::Lambda(l) = source
        && l.per_invocation
        && l.metric != LambdaStatistic::Duration
    {
        return Err(ConfigError::new(
            format!("{at}.source.lambda.per_invocation"),
            "per-invocation samples exist only for Duration",
        ));
    }
    Ok(())
}
