//! The judge: for each metric, compare canary with baseline and classify the difference as
//! pass, warning or fail, with the evidence behind it.
//!
//! The pipeline per metric is the one of the module tree: check the data ([`Verdict::NoData`]
//! when a side is missing or empty), describe both sides, run the configured test, measure the
//! practical change, and classify. Classification needs three things to fail a metric: the
//! change is in the metric's worse direction, it exceeds the practical threshold (and, for
//! distribution tests, the minimum effect size), and the p-value falls below a tier.

mod evidence;
pub(crate) mod fixed;
mod model;
mod periods;
mod ratio;
pub mod sequential;

pub use fixed::judge_metric_fixed;
pub use model::{Change, JudgeReport, MetricReport, SampleRatio, Severity, SideStats, Verdict};

use crate::config::{AnalysisMethod, CanaryConfig};
use crate::observe::SideObservations;
use sequential::SequentialState;

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
    /// For sequential judging: what arrived since the previous look.
    pub latest: Option<Latest<'a>>,
    /// Compute the Hodges-Lehmann shift and its interval (costly on large samples; reports
    /// want it, backtests do not).
    pub shift_estimate: bool,
    /// This look ends the phase (its soak time is over).
    pub phase_complete: bool,
    /// Check the realised split against the traffic shares (data routed by the alias; a
    /// window assembled by hand need not follow it).
    pub check_split: bool,
}

/// The observations that arrived since the previous look, and every baseline observation
/// so far, for the sequential tests.
#[derive(Debug, Clone, Copy)]
pub struct Latest<'a> {
    /// The baseline's new observations.
    pub baseline: &'a SideObservations,
    /// The canary's new observations.
    pub canary: &'a SideObservations,
    /// All baseline observations of the canary so far.
    pub baseline_all: &'a SideObservations,
    /// The increment includes the phase's first [`crate::look::WARMUP_SECONDS`]: the
    /// canary's instances are new and cold, so only the median (and counts) count as
    /// evidence; the tail percentiles wait for the next look.
    pub warming_up: bool,
}

/// Judges every metric of the config with the fixed-horizon tests.
pub fn judge(config: &CanaryConfig, input: &JudgeInput<'_>) -> JudgeReport {
    let metrics = config
        .metrics
        .iter()
        .map(|m| judge_metric_fixed(m, &config.statistical_thresholds, input))
        .collect();
    let mut report = JudgeReport::new(metrics, input.baseline_is_live);
    report.sample_ratio_mismatch = ratio::mismatch(&report, input);
    report
}

/// Judges every metric with the config's method. With `sequential` (and `input.latest`
/// given) each metric's verdict comes from its anytime-valid e-process, updated here with
/// the latest observations; descriptive statistics and the fixed test stay in the report as
/// context. Without `latest` the fixed-horizon tests decide.
pub fn judge_with_state(
    config: &CanaryConfig,
    input: &JudgeInput<'_>,
    state: &mut SequentialState,
) -> JudgeReport {
    let mut report = judge(config, input);
    let Some(latest) = input.latest else {
        return report;
    };
    if config.analysis.method != AnalysisMethod::Sequential {
        return report;
    }
    state.looks += 1;
    for (m, r) in config.metrics.iter().zip(report.metrics.iter_mut()) {
        if r.verdict == Verdict::NoData {
            continue;
        }
        // Values that follow each version's traffic share change meaning whenever the share
        // does, so one e-process over the whole ramp would mix incomparable data: these keep
        // the fixed-horizon test on the current phase.
        if m.per_traffic_share {
            r.guarantee.push_str(
                " (per-traffic-share metrics keep the fixed-horizon test in sequential mode)",
            );
            stopped_reporting(m, r, &latest, input.baseline_is_live);
            continue;
        }
        let st = state.metrics.entry(m.name.clone()).or_default();
        let ev = sequential::update_metric(
            st,
            m.kind,
            m.direction(),
            (m.practical_threshold(true), m.practical_threshold(false)),
            &m.percentiles(),
            state.looks,
            latest.baseline.get(&m.name),
            latest.canary.get(&m.name),
            latest.baseline_all.get(&m.name),
            input.baseline_is_live,
            latest.warming_up,
        );
        let fixed_report = r.clone();
        evidence::classify_sequential(m, &config.statistical_thresholds, r, &ev);
        // Without a live baseline the anytime test is deliberately conservative. At the end of
        // the phase one pre-planned fixed-horizon comparison against the earlier baseline runs
        // (one look, so its error rate holds), with counts' chi-square scaled down by the
        // baseline's overdispersion and the practical threshold widened by its drift.
        if !input.baseline_is_live && input.phase_complete {
            // Rates of a few events per interval are too noisy to show drift; their
            // between-interval variation is in the dispersion instead.
            let drift = if m.kind == crate::config::MetricKind::Counter {
                0.0
            } else {
                st.drift()
            };
            let phi = st.dispersion();
            if let Some(f) = evidence::final_stale_check(
                m,
                &config.statistical_thresholds,
                fixed_report,
                phi,
                drift,
            ) && f.verdict == Verdict::Fail
                && r.verdict != Verdict::Fail
            {
                *r = f;
            }
        }
        // After the evidence has been read: without new data, only a failure stands.
        stopped_reporting(m, r, &latest, input.baseline_is_live);
    }
    report
}

/// A metric that stopped reporting is no evidence of health: with no new canary data at
/// this look (or no new live-baseline data beside it), earlier evidence may not pass it, so
/// a critical metric that stops can never let a phase advance or promote — the same rule as
/// a metric that never reported. A failure stays a failure.
fn stopped_reporting(
    m: &crate::config::MetricConfig,
    r: &mut MetricReport,
    latest: &Latest<'_>,
    baseline_is_live: bool,
) {
    let missing = |side: &SideObservations| side.get(&m.name).is_none_or(|o| o.size() == 0);
    let canary = missing(latest.canary);
    let baseline = baseline_is_live && missing(latest.baseline);
    // The deciding verdict's failure stands: the sequential evidence's, or the fixed test's
    // for the per-traffic-share metrics it decides. A fixed failure the sequential evidence
    // was never read for is not the verdict.
    let failed = r.verdict == Verdict::Fail
        && (r.method == crate::config::AnalysisMethod::Sequential || m.per_traffic_share);
    if failed || matches!(r.verdict, Verdict::NoData | Verdict::Error) || !(canary || baseline) {
        return;
    }
    let who = match (canary, baseline) {
        (true, true) => "either version",
        (true, false) => "the canary",
        _ => "the baseline",
    };
    r.verdict = Verdict::NoData;
    r.severity = None;
    r.reason = format!(
        "no new data from {who} since the previous look: a metric that stops reporting is not evidence of health"
    );
}

#[cfg(test)]
mod tests;
