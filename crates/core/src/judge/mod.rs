//! The judge: for each metric, compare canary with baseline and classify the difference as
//! pass, warning or fail, with the evidence behind it.
//!
//! The pipeline per metric is the one of the module tree: check the data ([`Verdict::NoData`]
//! when a side is missing or empty), describe both sides, run the configured test, measure the
//! practical change, and classify. Classification needs three things to fail a metric: the
//! change is in the metric's worse direction, it exceeds the practical threshold (and, for
//! distribution tests, the minimum effect size), and the p-value falls below a tier.

pub(crate) mod fixed;
mod model;

pub use fixed::judge_metric_fixed;
pub use model::{Change, JudgeReport, MetricReport, Severity, SideStats, Verdict};

use crate::config::CanaryConfig;
use crate::observe::SideObservations;

/// What the judge looks at in one look.
#[derive(Debug, Clone, Copy)]
pub struct JudgeInput<'a> {
    /// The baseline's observations (live, or recorded earlier when `baseline_is_live` is false).
    pub baseline: &'a SideObservations,
    /// The canary's observations.
    pub canary: &'a SideObservations,
    /// The canary's share of traffic in [0, 1] while these observations were made.
    pub canary_share: f64,
    /// The baseline's share of traffic in [0, 1] while its observations were made.
    pub baseline_share: f64,
    /// False when the baseline was not observed at the same time as the canary (the 100 %
    /// phase compares against the baseline seen earlier in the canary).
    pub baseline_is_live: bool,
}

/// Judges every metric of the config with the fixed-horizon tests.
pub fn judge(config: &CanaryConfig, input: &JudgeInput<'_>) -> JudgeReport {
    let metrics = config
        .metrics
        .iter()
        .map(|m| judge_metric_fixed(m, &config.statistical_thresholds, input))
        .collect();
    JudgeReport::new(metrics, input.baseline_is_live)
}

#[cfg(test)]
mod tests;
