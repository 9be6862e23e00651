//! The judge's evidence model: per-metric reports with both sides' statistics, the test
//! result, the practical change and the verdict in words.

use serde::{Deserialize, Serialize};

use crate::config::Direction;
use crate::config::{AnalysisMethod, MetricKind};
use crate::stats::{Power, ShiftEstimate, Summary, TestKind, TestResult};

/// A metric's classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// No significant, practically relevant regression.
    Pass,
    /// A significant change that does not (yet) amount to a failure.
    Warning,
    /// A significant regression beyond the practical threshold (or an absolute limit breached).
    Fail,
    /// A side has no observations for the metric.
    NoData,
    /// The test could not run on the data.
    Error,
}

/// How serious a failure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// p below the warning tier: stop ramping, keep watching.
    Hold,
    /// p below the rollback tier: roll back if the metric is critical.
    Rollback,
}

/// Descriptive statistics of one side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "shape")]
pub enum SideStats {
    /// A sample of values.
    Distribution {
        /// Summary statistics (after per-traffic-share scaling, if configured).
        summary: Summary,
        /// The configured percentiles as `(percentile, value)`.
        percentiles: Vec<(f64, f64)>,
        /// The 0th, 1st, …, 100th percentiles: a compact sketch of the distribution for
        /// plots (empirical CDFs) without carrying every sample.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        sketch: Vec<f64>,
    },
    /// Per-period percentile summaries (CloudWatch's statistics).
    Periods {
        /// How many periods.
        periods: usize,
        /// Values (requests) summarised, over all periods.
        n: u64,
        /// The configured percentiles as `(percentile, median over the periods)`.
        percentiles: Vec<(f64, f64)>,
    },
    /// Events out of a total.
    Rate {
        /// Events.
        events: u64,
        /// Trials.
        total: u64,
        /// events / total.
        rate: f64,
    },
}

impl SideStats {
    /// Sample size or number of trials.
    pub fn size(&self) -> u64 {
        match self {
            SideStats::Distribution { summary, .. } => summary.n as u64,
            SideStats::Rate { total, .. } => *total,
            SideStats::Periods { n, .. } => *n,
        }
    }
}

/// The change of one statistic from baseline to canary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "ChangeJson")]
pub struct Change {
    /// Which statistic (`p95`, `mean`, `rate`).
    pub statistic: String,
    /// Baseline value.
    pub baseline: f64,
    /// Canary value.
    pub canary: f64,
    /// (canary - baseline) / |baseline|; infinite when the baseline is 0 and the canary is
    /// not (serialised as `null`).
    pub relative: f64,
}

impl Change {
    /// Builds a change between two values.
    pub fn new(statistic: impl Into<String>, baseline: f64, canary: f64) -> Self {
        let relative = if baseline == 0.0 {
            if canary == 0.0 {
                0.0
            } else {
                f64::INFINITY.copysign(canary)
            }
        } else {
            (canary - baseline) / baseline.abs()
        };
        Self {
            statistic: statistic.into(),
            baseline,
            canary,
            relative,
        }
    }

    /// How much worse (as a fraction) the canary is in the given direction; negative when it
    /// is better.
    pub fn worse_by(&self, direction: Direction) -> f64 {
        match direction {
            Direction::HigherIsWorse => self.relative,
            Direction::LowerIsWorse => -self.relative,
            Direction::Either => self.relative.abs(),
        }
    }
}

/// A [`Change`] as JSON, where an infinite `relative` is `null`: reading it back recomputes
/// the value from `baseline` and `canary`, so a decision survives the round trip through the
/// state machine's state (a plain `f64` would reject the `null`).
#[derive(Deserialize)]
struct ChangeJson {
    statistic: String,
    baseline: f64,
    canary: f64,
    relative: Option<f64>,
}

impl From<ChangeJson> for Change {
    fn from(c: ChangeJson) -> Self {
        match c.relative {
            Some(relative) => Self {
                statistic: c.statistic,
                baseline: c.baseline,
                canary: c.canary,
                relative,
            },
            None => Self::new(c.statistic, c.baseline, c.canary),
        }
    }
}

/// Everything the judge found for one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricReport {
    /// Metric name.
    pub name: String,
    /// Metric kind.
    pub kind: MetricKind,
    /// Whether a failure blocks the canary.
    pub critical: bool,
    /// Which way is worse.
    pub direction: Direction,
    /// The test that produced the p-value.
    pub test: TestKind,
    /// Fixed-horizon or anytime-valid.
    pub method: AnalysisMethod,
    /// What the p-value guarantees, in words.
    pub guarantee: String,
    /// Baseline statistics, when it had data.
    pub baseline: Option<SideStats>,
    /// Canary statistics, when it had data.
    pub canary: Option<SideStats>,
    /// The test result.
    pub result: Option<TestResult>,
    /// Changes of the reported statistics.
    pub changes: Vec<Change>,
    /// The change that decides practical relevance (the worst of `changes`).
    pub headline: Option<Change>,
    /// Hodges-Lehmann shift (canary - baseline) with its 95 % interval, for distributions.
    pub shift: Option<ShiftEstimate>,
    /// Minimum detectable effect of the samples at hand (alpha = pass p-value, power 0.8).
    pub power: Option<Power>,
    /// The classification.
    pub verdict: Verdict,
    /// For failures: hold or roll back.
    pub severity: Option<Severity>,
    /// Why, in words.
    pub reason: String,
}

/// The judge's findings for one look.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeReport {
    /// Per-metric findings, in config order.
    pub metrics: Vec<MetricReport>,
    /// False when the baseline was observed earlier, not alongside the canary.
    pub baseline_is_live: bool,
    /// Set when the canary received far from the share of requests its alias routes to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_ratio_mismatch: Option<SampleRatio>,
}

/// A realised traffic split far from the alias weight: a routing problem, not a verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRatio {
    /// The counter metric whose trials counted the requests.
    pub metric: String,
    /// The canary's share of requests the alias routes (0–1).
    pub expected_share: f64,
    /// The canary's share of requests it received.
    pub observed_share: f64,
    /// Canary requests.
    pub canary: u64,
    /// Baseline requests.
    pub baseline: u64,
    /// Standard score of the canary's count against the expected share.
    pub z: f64,
}

impl JudgeReport {
    /// Wraps per-metric findings.
    pub fn new(metrics: Vec<MetricReport>, baseline_is_live: bool) -> Self {
        Self {
            metrics,
            baseline_is_live,
            sample_ratio_mismatch: None,
        }
    }

    /// Canary samples (requests) seen: the largest sample or trial count among histogram and
    /// counter metrics, which count requests (gauges count readings).
    pub fn canary_requests(&self) -> u64 {
        self.request_count(|m| m.canary.as_ref())
    }

    /// Baseline samples (requests) seen, counted as for [`Self::canary_requests`].
    pub fn baseline_requests(&self) -> u64 {
        self.request_count(|m| m.baseline.as_ref())
    }

    fn request_count(&self, side: impl Fn(&MetricReport) -> Option<&SideStats>) -> u64 {
        self.metrics
            .iter()
            .filter(|m| m.kind != MetricKind::Gauge)
            .filter_map(|m| side(m).map(SideStats::size))
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::Change;

    #[test]
    fn an_infinite_relative_change_survives_a_json_round_trip() {
        // Errors from a baseline that had none: the change is infinite, written as null.
        for (baseline, canary) in [(0.0, 0.003), (0.0, -2.0), (0.0, 0.0), (0.5, 0.75)] {
            let c = Change::new("rate", baseline, canary);
            let json = serde_json::to_string(&c).expect("serialise");
            let back: Change = serde_json::from_str(&json).expect("deserialise");
            assert_eq!(back, c, "{json}");
        }
        let json = serde_json::to_string(&Change::new("rate", 0.0, 0.003)).expect("json");
        assert!(json.contains("\"relative\":null"), "{json}");
    }
}
