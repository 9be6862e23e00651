//! Classifying a metric by its sequential evidence, and the one end-of-phase fixed comparison against an earlier baseline.

use super::fixed::{alternative_for, classify, describe_change};
use super::model::{MetricReport, Severity, Verdict};
use crate::config::{AnalysisMethod, MetricConfig, StatisticalThresholds};
use crate::format::{fmt_p, fmt_value};
use crate::stats::{self, TestKind, TestResult};

/// Replaces a fixed-horizon classification with the metric's sequential evidence (the
/// tolerance is built into the test), the absolute threshold as before:
/// - the rollback tier by the anytime-valid p-value (1 / the largest e-value so far): by
///   Ville's inequality a healthy canary ever reaches it with probability at most the tier;
/// - the hold and warning tiers by the evidence now (1 / the current e-value): a hold lasts
///   while the evidence does and clears when it fades, instead of keeping a running
///   minimum that never clears and turning into a rollback when the soak window ends.
pub(crate) fn classify_sequential(
    m: &MetricConfig,
    th: &StatisticalThresholds,
    report: &mut MetricReport,
    ev: &super::sequential::SequentialEvidence,
) {
    if matches!(report.verdict, Verdict::NoData | Verdict::Error)
        && ev.e_value == 1.0
        && ev.p_value >= 1.0
    {
        return;
    }
    let p = ev.p_value;
    report.method = AnalysisMethod::Sequential;
    report.guarantee = format!(
        "{}; the chance of ever failing a healthy canary at this tier is at most the tier's p-value{}",
        ev.description,
        if ev.stale_baseline {
            " (given the drift allowance holds)"
        } else {
            ""
        }
    );
    let effect_size = report.result.and_then(|r| r.effect_size);
    report.result = Some(TestResult {
        test: m.test(),
        statistic: ev.e_value,
        p_value: p,
        alternative: alternative_for(report.direction),
        method: stats::Method::AnytimeValid,
        effect_size,
    });
    let change = report
        .headline
        .as_ref()
        .map(|h| describe_change(h, m.kind))
        .unwrap_or_default();
    let now = if ev.e_value > 0.0 {
        (1.0 / ev.e_value).min(1.0)
    } else {
        1.0
    };
    let (verdict, severity, tier) = if p < th.rollback_p_value {
        (Verdict::Fail, Some(Severity::Rollback), "rollback tier")
    } else if now < th.warning_p_value {
        (Verdict::Fail, Some(Severity::Hold), "hold tier")
    } else if now < th.pass_p_value {
        (Verdict::Warning, None, "warning tier")
    } else {
        (Verdict::Pass, None, "")
    };
    let cleared = if verdict == Verdict::Pass && p < th.pass_p_value {
        "; the evidence reached a lower p earlier and has faded since"
    } else {
        ""
    };
    let absolute = report.verdict == Verdict::Fail && report.reason.contains("absolute threshold");
    if absolute && verdict != Verdict::Fail {
        return;
    }
    report.verdict = verdict;
    report.severity = severity;
    report.reason = if verdict == Verdict::Pass {
        format!(
            "{change}: no regression beyond tolerance so far (anytime p = {}, e = {}{cleared})",
            fmt_p(p),
            fmt_value(ev.e_value)
        )
    } else {
        format!(
            "{change}: regression beyond tolerance (anytime p = {}, e = {}, {tier})",
            fmt_p(p),
            fmt_value(ev.e_value)
        )
    };
}

/// The end-of-phase comparison against a baseline observed earlier: the fixed report
/// re-classified with the chi-square statistic divided by the baseline's dispersion `phi`
/// and the practical threshold widened by the baseline's relative `drift`.
pub(crate) fn final_stale_check(
    m: &MetricConfig,
    th: &StatisticalThresholds,
    mut report: MetricReport,
    phi: f64,
    drift: f64,
) -> Option<MetricReport> {
    let mut result = report.result?;
    if result.test == TestKind::ChiSquare && phi > 1.0 {
        result.statistic /= phi;
        result.p_value = statrs::function::erf::erfc((result.statistic / 2.0).sqrt());
    }
    report.result = Some(result);
    let mut widened = m.clone();
    let widen = |t: Option<f64>| Some(t.unwrap_or(0.0) + drift * 100.0);
    widened.threshold_percent_increase = widen(m.threshold_percent_increase);
    if m.threshold_percent_decrease.is_some() {
        widened.threshold_percent_decrease =
            widen(m.threshold_percent_decrease).map(|v| v.min(100.0));
    }
    classify(&widened, th, &mut report);
    report.guarantee = format!(
        "end-of-phase fixed-horizon comparison with the baseline observed earlier (dispersion {phi:.2}, drift allowance {:.1}%)",
        drift * 100.0
    );
    Some(report)
}
