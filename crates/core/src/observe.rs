//! The metric observation model: what one version produced for one metric during an interval
//! or an analysis window, and a window pairing both versions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{CanaryConfig, MetricKind};
use crate::error::ConfigError;
use crate::stats::Counts;

/// Observations of one metric on one version: raw samples (histogram and gauge metrics),
/// per-period percentile summaries (histogram metrics as CloudWatch returns them) or events
/// out of a total (counter metrics).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Observation {
    /// One value per request (histogram) or per reading (gauge).
    Samples(Vec<f64>),
    /// Events out of a total.
    Counts(Counts),
    /// One summary per period (CloudWatch's per-minute percentile statistics). The period,
    /// not the request, is the unit the tests count: a summary is not a set of samples.
    Periods(Periods),
}

/// Per-period summaries of a histogram metric: `{"periods": [{"start": 1700000000, "n": 150,
/// "stats": {"p50": 41.2, "p95": 180.0, "p99": 320.5}}, …]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Periods {
    /// The periods, in the order observed.
    pub periods: Vec<Period>,
}

/// One period's summary of one version's values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Period {
    /// Start of the period (seconds; the epoch in recorded data, the timeline's clock in
    /// simulated data). Baseline and canary periods with the same start are compared.
    pub start: i64,
    /// How many values (requests) the period summarises.
    pub n: u64,
    /// Percentiles of the period's values by name: `p50`, `p95`, `p99.9`, … (nearest rank:
    /// the ⌈q·n⌉-th smallest value, as CloudWatch's percentile statistics approximate it).
    pub stats: BTreeMap<String, f64>,
}

impl Period {
    /// The period's `percent`-th percentile, if it was reported.
    pub fn percentile(&self, percent: f64) -> Option<f64> {
        self.stats
            .iter()
            .find(|(k, _)| percentile_key(k).is_some_and(|p| (p - percent).abs() < 1e-9))
            .map(|(_, v)| *v)
    }
}

/// The percentile a stat key names (`p95` → 95), if it is one in (0, 100).
pub fn percentile_key(key: &str) -> Option<f64> {
    let p: f64 = key.strip_prefix('p')?.parse().ok()?;
    (p > 0.0 && p < 100.0 && key[1..].chars().all(|c| c.is_ascii_digit() || c == '.')).then_some(p)
}

/// The stat key of a percentile (95 → `p95`, 99.9 → `p99.9`).
pub fn key_of_percentile(percent: f64) -> String {
    format!("p{percent}")
}

impl Periods {
    /// Values summarised over all periods.
    pub fn total(&self) -> u64 {
        self.periods.iter().fold(0, |a, x| a.saturating_add(x.n))
    }

    /// A period's nearest-rank percentiles of `values` (any order).
    pub fn summarise(start: i64, values: &[f64], percents: &[f64]) -> Option<Period> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_unstable_by(f64::total_cmp);
        let n = v.len();
        let stats = percents
            .iter()
            .map(|&p| {
                let k = nearest_rank(n as u64, p / 100.0) as usize;
                (key_of_percentile(p), v[k - 1])
            })
            .collect();
        Some(Period {
            start,
            n: n as u64,
            stats,
        })
    }
}

/// The percentiles a per-period summary carries: a ladder fine enough that a shift of the
/// median or the tail shows as a rung of the baseline's distribution, plus the metric's own.
pub const SUMMARY_PERCENTILES: [f64; 24] = [
    10.0, 25.0, 40.0, 45.0, 50.0, 52.5, 55.0, 57.5, 60.0, 62.5, 65.0, 70.0, 75.0, 80.0, 85.0, 90.0,
    92.5, 95.0, 96.0, 97.0, 98.0, 99.0, 99.5, 99.9,
];

/// [`SUMMARY_PERCENTILES`] with a metric's configured percentiles added, ascending.
pub fn summary_percentiles(configured: &[f64]) -> Vec<f64> {
    let mut all: Vec<f64> = SUMMARY_PERCENTILES
        .iter()
        .chain(configured)
        .copied()
        .filter(|p| *p > 0.0 && *p < 100.0)
        .collect();
    all.sort_by(f64::total_cmp);
    all.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
    all
}

/// Replaces every histogram metric's samples with one per-period summary starting at
/// `start`: the shape CloudWatch's per-period statistics have.
pub fn summarise_side(side: &mut SideObservations, config: &CanaryConfig, start: i64) {
    for m in &config.metrics {
        if m.kind != MetricKind::Histogram {
            continue;
        }
        if let Some(Observation::Samples(v)) = side.get(&m.name) {
            let qs = summary_percentiles(&m.percentiles());
            match Periods::summarise(start, v, &qs) {
                Some(p) => side.insert(
                    m.name.clone(),
                    Observation::Periods(Periods { periods: vec![p] }),
                ),
                None => side.remove(&m.name),
            };
        }
    }
}

/// The nearest rank ⌈q·n⌉ (at least 1) of the q-quantile of n values.
pub fn nearest_rank(n: u64, q: f64) -> u64 {
    ((q * n as f64 - 1e-9).ceil() as u64).clamp(1, n.max(1))
}

impl Observation {
    /// How many samples or trials the observation holds.
    pub fn size(&self) -> u64 {
        match self {
            Observation::Samples(s) => s.len() as u64,
            Observation::Counts(c) => c.total,
            Observation::Periods(p) => p.total(),
        }
    }

    /// An empty observation of the shape a metric kind needs.
    pub fn empty(kind: MetricKind) -> Self {
        match kind {
            MetricKind::Counter => Observation::Counts(Counts::default()),
            MetricKind::Histogram | MetricKind::Gauge => Observation::Samples(Vec::new()),
        }
    }

    /// Appends another interval's observation of the same shape; a shape mismatch is an error.
    pub fn extend(&mut self, other: &Observation) -> Result<(), String> {
        match (self, other) {
            (Observation::Samples(a), Observation::Samples(b)) => {
                a.extend_from_slice(b);
                Ok(())
            }
            (Observation::Periods(a), Observation::Periods(b)) => {
                a.periods.extend_from_slice(&b.periods);
                Ok(())
            }
            (Observation::Counts(a), Observation::Counts(b)) => {
                match (a.events.checked_add(b.events), a.total.checked_add(b.total)) {
                    (Some(events), Some(total)) => {
                        a.events = events;
                        a.total = total;
                        Ok(())
                    }
                    _ => Err("the counts' sum overflows".to_string()),
                }
            }
            _ => Err("cannot combine samples with counts".to_string()),
        }
    }
}

/// All metrics of one version, keyed by metric name.
pub type SideObservations = BTreeMap<String, Observation>;

/// One analysis window: both versions' observations for the current phase.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// 1-based phase the window belongs to. Default: 1.
    #[serde(default = "default_phase")]
    pub phase: usize,
    /// Seconds since the phase started. Default: the phase's full duration (an end-of-phase
    /// look).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_seconds: Option<u64>,
    /// The baseline version's observations.
    #[serde(default, deserialize_with = "unique_metrics")]
    pub baseline: SideObservations,
    /// The canary version's observations.
    #[serde(default, deserialize_with = "unique_metrics")]
    pub canary: SideObservations,
}

/// Reads one side's observations, refusing a metric named twice (JSON parsers disagree on
/// which one wins, so neither may).
pub fn unique_metrics<'de, D>(d: D) -> Result<SideObservations, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Side;
    impl<'de> serde::de::Visitor<'de> for Side {
        type Value = SideObservations;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object of observations by metric name")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = SideObservations::new();
            while let Some((name, obs)) = map.next_entry::<String, Observation>()? {
                if out.contains_key(&name) {
                    return Err(serde::de::Error::custom(format!(
                        "metric `{name}` appears twice"
                    )));
                }
                out.insert(name, obs);
            }
            Ok(out)
        }
    }
    d.deserialize_map(Side)
}

/// Refuses anything after the one JSON document.
pub(crate) fn end(
    de: &mut serde_json::Deserializer<serde_json::de::StrRead<'_>>,
) -> Result<(), ConfigError> {
    de.end()
        .map_err(|e| ConfigError::new("$", format!("trailing data after the document: {e}")))
}

fn default_phase() -> usize {
    1
}

impl Window {
    /// Parses a window and checks it against a configuration: the phase exists, every metric
    /// name is one of the config's, each observation has the shape of its metric's kind, and
    /// counts and samples are well-formed. Errors name the JSON path at fault.
    pub fn from_json(text: &str, config: &CanaryConfig) -> Result<Self, ConfigError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let w: Self = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
            ConfigError::new(
                e.path().to_string(),
                shape_hint(&e.into_inner().to_string()),
            )
        })?;
        end(de)?;
        if w.phase == 0 || w.phase > config.canary_phases.len() {
            return Err(ConfigError::new(
                "phase",
                format!(
                    "must be between 1 and {} (the config's phases)",
                    config.canary_phases.len()
                ),
            ));
        }
        check_side("baseline", &w.baseline, config)?;
        check_side("canary", &w.canary, config)?;
        Ok(w)
    }
}

/// Checks one side's observations against the config.
pub fn check_side(
    side: &str,
    obs: &SideObservations,
    config: &CanaryConfig,
) -> Result<(), ConfigError> {
    for (name, o) in obs {
        let at = format!("{side}.{name}");
        let Some(metric) = config.metric(name) else {
            let known: Vec<&str> = config.metrics.iter().map(|m| m.name.as_str()).collect();
            return Err(ConfigError::new(
                at,
                format!("not a metric of the config (known: {})", known.join(", ")),
            ));
        };
        match (metric.kind, o) {
            (MetricKind::Counter, Observation::Counts(c)) => {
                if c.total > crate::stats::MAX_COUNT {
                    return Err(ConfigError::new(
                        format!("{at}.total"),
                        format!(
                            "{} is more than 2^53, the largest count the statistics hold exactly",
                            c.total
                        ),
                    ));
                }
                if c.events > c.total {
                    return Err(ConfigError::new(
                        format!("{at}.events"),
                        format!("events ({}) exceed total ({})", c.events, c.total),
                    ));
                }
            }
            (MetricKind::Histogram | MetricKind::Gauge, Observation::Samples(s)) => {
                if let Some(i) = s.iter().position(|x| !x.is_finite()) {
                    return Err(ConfigError::new(
                        format!("{at}[{i}]"),
                        "must be a finite number",
                    ));
                }
                // A histogram holds sizes and durations; a gauge reading may be negative.
                if metric.kind == MetricKind::Histogram
                    && let Some(i) = s.iter().position(|x| *x < 0.0)
                {
                    return Err(ConfigError::new(
                        format!("{at}[{i}]"),
                        format!(
                            "{} is negative: a histogram's values are durations or sizes",
                            s[i]
                        ),
                    ));
                }
            }
            (MetricKind::Histogram, Observation::Periods(p)) => check_periods(&at, p)?,
            (MetricKind::Counter | MetricKind::Gauge, Observation::Periods(_)) => {
                return Err(ConfigError::new(
                    at,
                    "per-period percentile summaries are for histogram metrics only",
                ));
            }
            (MetricKind::Counter, Observation::Samples(_)) => {
                return Err(ConfigError::new(
                    at,
                    "a counter metric takes {\"events\": k, \"total\": n}, not an array",
                ));
            }
            (_, Observation::Counts(_)) => {
                return Err(ConfigError::new(
                    at,
                    "a histogram or gauge metric takes an array of numbers, not counts",
                ));
            }
        }
    }
    Ok(())
}

/// Checks per-period summaries: counts exact, at least one percentile, every value finite
/// and not negative, percentiles in order within a period, and one summary per start.
fn check_periods(at: &str, p: &Periods) -> Result<(), ConfigError> {
    let mut starts = std::collections::BTreeSet::new();
    let mut total: u64 = 0;
    for (i, period) in p.periods.iter().enumerate() {
        let here = format!("{at}.periods[{i}]");
        if !starts.insert(period.start) {
            return Err(ConfigError::new(
                format!("{here}.start"),
                format!("a second summary for the period at {}", period.start),
            ));
        }
        total = total.saturating_add(period.n);
        if period.n == 0 || total > crate::stats::MAX_COUNT {
            return Err(ConfigError::new(
                format!("{here}.n"),
                "must be a count between 1 and 2^53 (summed over the periods)",
            ));
        }
        if period.stats.is_empty() {
            return Err(ConfigError::new(
                format!("{here}.stats"),
                "needs at least one percentile (p50, p95, …)",
            ));
        }
        let mut last: Option<(f64, f64)> = None;
        let mut ordered: Vec<(f64, f64, &String)> = Vec::new();
        for (k, v) in &period.stats {
            let Some(q) = percentile_key(k) else {
                return Err(ConfigError::new(
                    format!("{here}.stats.{k}"),
                    "not a percentile: the keys are p50, p95, p99.9, … (0 < p < 100)",
                ));
            };
            if !(v.is_finite() && *v >= 0.0) {
                return Err(ConfigError::new(
                    format!("{here}.stats.{k}"),
                    "must be a finite number, not negative",
                ));
            }
            ordered.push((q, *v, k));
        }
        ordered.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (q, v, k) in ordered {
            if let Some((lq, lv)) = last
                && v < lv
            {
                return Err(ConfigError::new(
                    format!("{here}.stats.{k}"),
                    format!("p{q} ({v}) is below p{lq} ({lv}): percentiles cannot decrease"),
                ));
            }
            last = Some((q, v));
        }
    }
    Ok(())
}

fn shape_hint(message: &str) -> String {
    if message.contains("did not match any variant") {
        "expected an array of numbers (histogram, gauge), {\"periods\": [{\"start\", \"n\", \"stats\"}, …]} (histogram) or {\"events\": k, \"total\": n} (counter)"
            .to_string()
    } else {
        message.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> CanaryConfig {
        CanaryConfig::from_json(include_str!("../../../examples/canary-monitor-hook.json"))
            .expect("seed config")
    }

    #[test]
    fn parses_samples_and_counts() {
        let w = Window::from_json(
            r#"{"phase": 2, "baseline": {"response-latency": [1, 2.5], "error-rate": {"events": 1, "total": 10}},
                "canary": {"response-latency": [3]}}"#,
            &config(),
        )
        .expect("valid window");
        assert_eq!(w.phase, 2);
        assert_eq!(w.baseline["response-latency"].size(), 2);
        assert_eq!(
            w.baseline["error-rate"],
            Observation::Counts(Counts {
                events: 1,
                total: 10
            })
        );
    }

    #[test]
    fn rejects_wrong_shapes_with_paths() {
        let c = config();
        let e = Window::from_json(r#"{"canary": {"error-rate": [1, 2]}}"#, &c).unwrap_err();
        assert_eq!(e.path, "canary.error-rate");
        let e = Window::from_json(r#"{"canary": {"latency": [1]}}"#, &c).unwrap_err();
        assert_eq!(e.path, "canary.latency");
        assert!(e.message.contains("response-latency"), "{e}");
        let e = Window::from_json(
            r#"{"baseline": {"error-rate": {"events": 5, "total": 2}}}"#,
            &c,
        )
        .unwrap_err();
        assert_eq!(e.path, "baseline.error-rate.events");
        let e = Window::from_json(r#"{"phase": 4}"#, &c).unwrap_err();
        assert_eq!(e.path, "phase");
        let e = Window::from_json(r#"{"canary": {"error-rate": "x"}}"#, &c).unwrap_err();
        assert_eq!(e.path, "canary.error-rate");
    }

    #[test]
    fn extend_accumulates_and_refuses_mixed_shapes() {
        let mut a = Observation::Counts(Counts {
            events: 1,
            total: 10,
        });
        a.extend(&Observation::Counts(Counts {
            events: 2,
            total: 5,
        }))
        .expect("same shape");
        assert_eq!(
            a,
            Observation::Counts(Counts {
                events: 3,
                total: 15
            })
        );
        assert!(a.extend(&Observation::Samples(vec![1.0])).is_err());
    }
}

#[cfg(test)]
mod strict_inputs {
    //! Windows, timeline lines and configs are read strictly: what two parsers would read
    //! differently is refused with the place named.
    use crate::config::CanaryConfig;
    use crate::controller::Interval;
    use crate::observe::Window;

    fn config() -> CanaryConfig {
        CanaryConfig::from_json(include_str!("../../../examples/demo-config.json")).expect("config")
    }

    #[test]
    fn a_metric_named_twice_is_refused() {
        let c = config();
        let line = r#"{"at_seconds": 60, "baseline": {"errors": {"events": 90, "total": 100}, "errors": {"events": 0, "total": 100}}}"#;
        let e = Interval::from_json(line, &c).expect_err("duplicate");
        assert!(e.message.contains("`errors` appears twice"), "{e:?}");
        assert!(e.path.contains("baseline"), "{e:?}");
        let w = r#"{"phase": 1, "canary": {"errors": {"events": 1, "total": 9}, "errors": {"events": 0, "total": 9}}}"#;
        let e = Window::from_json(w, &c).expect_err("duplicate");
        assert!(e.path.contains("canary"), "{e:?}");
    }

    #[test]
    fn negative_latencies_are_refused_with_their_place() {
        let c = config();
        let line = r#"{"at_seconds": 60, "canary": {"latency": [12.5, -3, 40]}}"#;
        let e = Interval::from_json(line, &c).expect_err("negative latency");
        assert_eq!(e.path, "canary.latency[1]", "{e:?}");
        assert!(e.message.contains("negative"), "{e:?}");
        let w = r#"{"phase": 1, "baseline": {"latency": [-0.1]}}"#;
        assert_eq!(
            Window::from_json(w, &c).expect_err("negative").path,
            "baseline.latency[0]"
        );
    }

    #[test]
    fn unknown_keys_in_counts_and_trailing_documents_are_refused() {
        let c = config();
        let line =
            r#"{"at_seconds": 60, "canary": {"errors": {"events": 1, "total": 9, "totl": 90}}}"#;
        assert!(Interval::from_json(line, &c).is_err());
        let two = r#"{"at_seconds": 60} {"at_seconds": 120}"#;
        let e = Interval::from_json(two, &c).expect_err("two intervals on a line");
        assert!(e.message.contains("trailing"), "{e:?}");
        let text = include_str!("../../../examples/demo-config.json");
        let e = CanaryConfig::from_json(&format!("{text}\n{{}}")).expect_err("trailing config");
        assert_eq!(e.path, "$");
        assert!(
            CanaryConfig::from_json(&format!("{text}\n\n")).is_ok(),
            "whitespace is fine"
        );
    }
}
