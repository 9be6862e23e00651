//! Fixed-horizon judging of one metric: one test on the data of the window, classified by the
//! p-value tiers, the practical threshold, the minimum effect size and the direction.

use super::JudgeInput;
use super::model::{Change, MetricReport, Severity, SideStats, Verdict};
use crate::config::Direction;
use crate::config::{AnalysisMethod, MetricConfig, MetricKind, StatisticalThresholds};
use crate::error::StatsError;
use crate::format::{fmt_p, fmt_value};
use crate::observe::Observation;
use crate::stats::{self, Alternative, Counts, Summary, TestKind, TestResult};

/// Power assumed for the minimum-detectable-effect estimate.
const MDE_POWER: f64 = 0.8;
/// Confidence level of the Hodges-Lehmann interval.
const SHIFT_CONFIDENCE: f64 = 0.95;

/// Judges one metric with its fixed-horizon test.
pub fn judge_metric_fixed(
    m: &MetricConfig,
    th: &StatisticalThresholds,
    input: &JudgeInput<'_>,
) -> MetricReport {
    let direction = m.direction();
    let mut report = MetricReport {
        name: m.name.clone(),
        kind: m.kind,
        critical: m.critical,
        direction,
        test: m.test(),
        method: AnalysisMethod::FixedHorizon,
        guarantee: format!(
            "fixed-horizon: false-alarm rate {:.3} for this single look only",
            th.rollback_p_value
        ),
        baseline: None,
        canary: None,
        result: None,
        changes: Vec::new(),
        headline: None,
        shift: None,
        power: None,
        verdict: Verdict::NoData,
        severity: None,
        reason: String::new(),
    };
    let base = input.baseline.get(&m.name);
    let can = input.canary.get(&m.name);
    let (Some(base), Some(can)) = (base, can) else {
        let missing = if base.is_none() { "baseline" } else { "canary" };
        report.reason = format!("no {missing} data for this metric");
        return report;
    };
    if base.size() == 0 || can.size() == 0 {
        let empty = if base.size() == 0 {
            "baseline"
        } else {
            "canary"
        };
        report.reason = format!("the {empty} has no observations in this window");
        return report;
    }
    let outcome = match (base, can) {
        (Observation::Samples(b), Observation::Samples(c)) => {
            let b = scaled(b, m.per_traffic_share, input.baseline_share);
            let c = scaled(c, m.per_traffic_share, input.canary_share);
            distribution(m, th, &mut report, &b, &c, input.shift_estimate)
        }
        (Observation::Counts(b), Observation::Counts(c)) => counts(m, th, &mut report, *b, *c),
        (Observation::Periods(b), Observation::Periods(c)) => {
            super::periods::judge_fixed(m, &mut report, b, c, input.baseline_is_live)
        }
        _ => Err("baseline and canary observations have different shapes".to_string()),
    };
    if let Err(reason) = outcome {
        report.verdict = Verdict::Error;
        report.reason = reason;
        return report;
    }
    classify(m, th, &mut report);
    report
}

/// Divides values by the traffic share a side received, so that throughput-like metrics are
/// compared per unit of traffic. A zero share leaves the values as they are (nothing to scale).
fn scaled(values: &[f64], per_share: bool, share: f64) -> Vec<f64> {
    if per_share && share > 0.0 {
        values.iter().map(|v| v / share).collect()
    } else {
        values.to_vec()
    }
}

pub(super) fn alternative_for(direction: Direction) -> Alternative {
    match direction {
        Direction::HigherIsWorse => Alternative::Greater,
        Direction::LowerIsWorse => Alternative::Less,
        Direction::Either => Alternative::TwoSided,
    }
}

fn distribution(
    m: &MetricConfig,
    th: &StatisticalThresholds,
    report: &mut MetricReport,
    b: &[f64],
    c: &[f64],
    input_shift: bool,
) -> Result<(), String> {
    // Sort each side once; the summaries, percentiles and rank tests all read sorted data.
    let b = &stats::checked_sorted(b, "baseline").map_err(|e| e.to_string())?;
    let c = &stats::checked_sorted(c, "canary").map_err(|e| e.to_string())?;
    let describe = |xs: &[f64]| -> Option<SideStats> {
        if xs.is_empty() {
            return None;
        }
        let summary = Summary::of_sorted(xs);
        let percentiles = m
            .percentiles()
            .iter()
            .map(|&p| (p, stats::percentile(xs, p)))
            .collect();
        let sketch = (0..=100)
            .map(|p| stats::percentile(xs, f64::from(p)))
            .collect();
        Some(SideStats::Distribution {
            summary,
            percentiles,
            sketch,
        })
    };
    report.baseline = describe(b);
    report.canary = describe(c);
    if let (
        Some(SideStats::Distribution {
            summary: sb,
            percentiles: pb,
            ..
        }),
        Some(SideStats::Distribution {
            summary: sc,
            percentiles: pc,
            ..
        }),
    ) = (&report.baseline, &report.canary)
    {
        report.changes = pb
            .iter()
            .zip(pc)
            .map(|(&(p, vb), &(_, vc))| Change::new(format!("p{p}"), vb, vc))
            .collect();
        // The mean is always reported; it decides only for gauges and metrics without
        // percentiles (cold-start outliers move a latency mean more than its percentiles).
        report.changes.push(Change::new("mean", sb.mean, sc.mean));
    }
    let result = match m.test() {
        TestKind::KolmogorovSmirnov => stats::ks::ks_sorted(c, b, Alternative::TwoSided),
        _ => stats::mann_whitney::mann_whitney_sorted(c, b, alternative_for(m.direction())),
    };
    report.result = Some(result);
    if input_shift {
        report.shift = stats::shift::hodges_lehmann_sorted(c, b, SHIFT_CONFIDENCE).ok();
    }
    report.power = stats::samples_power(c.len(), b, th.pass_p_value, MDE_POWER);
    Ok(())
}

fn counts(
    m: &MetricConfig,
    th: &StatisticalThresholds,
    report: &mut MetricReport,
    b: Counts,
    c: Counts,
) -> Result<(), String> {
    let side = |x: Counts| SideStats::Rate {
        events: x.events,
        total: x.total,
        rate: x.rate().unwrap_or(0.0),
    };
    report.baseline = Some(side(b));
    report.canary = Some(side(c));
    report.changes = vec![Change::new(
        "rate",
        b.rate().unwrap_or(0.0),
        c.rate().unwrap_or(0.0),
    )];
    report.power = stats::counts_power(c, b, th.pass_p_value, MDE_POWER);
    let alternative = alternative_for(m.direction());
    let result = match m.test() {
        TestKind::TwoProportionZ => stats::two_proportion_z(c, b, alternative),
        // Past Fisher's limits the z-test answers (the report names the test that ran).
        TestKind::FisherExact => match stats::fisher_exact(c, b, alternative) {
            Err(StatsError::TooLarge { .. }) => stats::two_proportion_z(c, b, alternative),
            other => other,
        },
        _ => stats::chi_square_2x2(c, b),
    };
    match result {
        Ok(r) => report.result = Some(r),
        // Both sides without a single event (or all events): the rates are identical, and
        // there is nothing to test. That is a pass, not an error.
        Err(_) if b.events == 0 && c.events == 0 || b.events == b.total && c.events == c.total => {
            report.result = Some(TestResult {
                test: m.test(),
                statistic: 0.0,
                p_value: 1.0,
                alternative,
                method: stats::Method::Exact,
                effect_size: None,
            });
        }
        Err(e) => return Err(format!("{:?} could not run: {e}", m.test())),
    }
    Ok(())
}

/// Applies the tiers, thresholds and direction to a report whose test has run.
pub(super) fn classify(m: &MetricConfig, th: &StatisticalThresholds, report: &mut MetricReport) {
    let Some(result) = report.result else { return };
    let direction = report.direction;
    let deciding = |c: &&Change| {
        m.kind != MetricKind::Histogram || m.percentiles().is_empty() || c.statistic != "mean"
    };
    let headline = report
        .changes
        .iter()
        .filter(deciding)
        .max_by(|a, b| a.worse_by(direction).total_cmp(&b.worse_by(direction)))
        .cloned();
    let Some(headline) = headline else { return };
    let worse_by = headline.worse_by(direction);
    let threshold = m.practical_threshold(match direction {
        Direction::HigherIsWorse => true,
        Direction::LowerIsWorse => false,
        Direction::Either => headline.relative >= 0.0,
    });
    let p = result.p_value;
    // The effect size must point the worse way too (Cliff's delta is signed).
    let effect_ok = match (m.kind, result.effect_size) {
        (MetricKind::Counter, _) | (_, None) => true,
        (_, Some(e)) => {
            let signed = match (result.test, direction) {
                (TestKind::MannWhitneyU, Direction::LowerIsWorse) => -e.value,
                (TestKind::MannWhitneyU, Direction::HigherIsWorse) => e.value,
                _ => e.value.abs(),
            };
            signed >= th.min_effect_size
        }
    };
    let change = describe_change(&headline, m.kind);
    let significant = p < th.pass_p_value;
    let practical = worse_by > threshold;
    report.verdict = Verdict::Pass;
    report.severity = None;
    report.reason = if significant && worse_by > 0.0 && practical && effect_ok {
        let (verdict, severity, tier) = if p < th.rollback_p_value {
            (Verdict::Fail, Some(Severity::Rollback), "rollback")
        } else if p < th.warning_p_value {
            (Verdict::Fail, Some(Severity::Hold), "hold")
        } else {
            (Verdict::Warning, None, "warning")
        };
        report.verdict = verdict;
        report.severity = severity;
        format!(
            "{change} is beyond the {:.0}% threshold and significant (p = {}, {tier} tier)",
            threshold * 100.0,
            fmt_p(p)
        )
    } else if significant && worse_by > 0.0 {
        report.verdict = Verdict::Warning;
        let why = if practical {
            "effect size below the minimum"
        } else {
            "below the practical threshold"
        };
        format!(
            "{change} is significant (p = {}) but {why} ({:.0}%): not a failure",
            fmt_p(p),
            threshold * 100.0
        )
    } else if significant {
        format!(
            "{change}: a significant change in the harmless direction (p = {})",
            fmt_p(p)
        )
    } else {
        format!("{change}: no significant difference (p = {})", fmt_p(p))
    };
    if report.verdict != Verdict::Fail
        && let Some(limit) = m.absolute_threshold
    {
        let value = if m.kind == MetricKind::Counter {
            headline.canary * 100.0
        } else {
            headline.canary
        };
        let breached = match direction {
            Direction::LowerIsWorse => value < limit,
            _ => value > limit,
        };
        if breached {
            report.verdict = Verdict::Fail;
            report.severity = Some(Severity::Hold);
            report.reason = format!(
                "canary {} = {} breaches the absolute threshold {limit}",
                headline.statistic,
                fmt_value(value)
            );
        }
    }
    report.headline = Some(headline);
}

pub(super) fn describe_change(c: &Change, kind: MetricKind) -> String {
    let rel = if c.relative.is_finite() {
        format!("{:+.1}%", c.relative * 100.0)
    } else {
        "up from zero".to_string()
    };
    let value = |v: f64| {
        if kind == MetricKind::Counter {
            format!("{:.2}%", v * 100.0)
        } else {
            fmt_value(v)
        }
    };
    format!(
        "{} {} -> {} ({rel})",
        c.statistic,
        value(c.baseline),
        value(c.canary)
    )
}
