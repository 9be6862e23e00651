//! The sample-ratio check: the canary's realised share of requests against the share its
//! alias routes to it. Lambda routes each invocation by the alias weights, so a canary far
//! from its share (a version that cannot be invoked, a second alias, a client pinned to one
//! version) is a routing problem to hold on and tell people about, never evidence for or
//! against the new version.

use super::JudgeInput;
use super::model::{JudgeReport, SampleRatio};
use crate::observe::Observation;

/// Standard score beyond which the split is called wrong (two-sided p ≈ 6e-7 per look, so
/// a healthy split is held about once in a million looks).
const Z_LIMIT: f64 = 5.0;

/// The realised share must also be off by more than half the expected share: a look that
/// straddles a shift mixes two weights for up to a minute.
const RELATIVE_LIMIT: f64 = 0.5;

/// Fewer requests than this say nothing about the split.
const MIN_REQUESTS: u64 = 200;

/// The mismatch, when the live split is far from the alias weight. Requests are the trials
/// of the config's counter metric that counted most of them (Invocations for the AWS/Lambda
/// error rate); without a counter there is no exact request count and no check.
pub(super) fn mismatch(report: &JudgeReport, input: &JudgeInput<'_>) -> Option<SampleRatio> {
    let routed = input.canary_share + input.baseline_share;
    if !input.check_split || !input.baseline_is_live || routed <= 0.0 {
        return None;
    }
    let p0 = input.canary_share / routed;
    if !(p0 > 0.0 && p0 < 1.0) {
        return None;
    }
    // The counter with the most trials, observed on both sides (a side without an
    // observation is missing data, which the judge reports as such, not a zero share).
    // Judged on what arrived since the previous look when the caller says (both sides over
    // the same minutes), else on the window.
    let (baseline_side, canary_side) = match &input.latest {
        Some(l) => (l.baseline, l.canary),
        None => (input.baseline, input.canary),
    };
    let (metric, canary, baseline) = baseline_side
        .iter()
        .filter_map(|(name, obs)| match (obs, canary_side.get(name)) {
            (Observation::Counts(b), Some(Observation::Counts(c))) => {
                Some((name.clone(), c.total, b.total))
            }
            _ => None,
        })
        .filter(|(name, _, _)| report.metrics.iter().any(|m| &m.name == name))
        .max_by_key(|(_, c, b)| c.saturating_add(*b))?;
    let n = canary.saturating_add(baseline);
    if n < MIN_REQUESTS {
        return None;
    }
    let nf = n as f64;
    let observed = canary as f64 / nf;
    let z = (canary as f64 - nf * p0) / (nf * p0 * (1.0 - p0)).sqrt();
    (z.abs() > Z_LIMIT && (observed - p0).abs() > RELATIVE_LIMIT * p0).then_some(SampleRatio {
        metric,
        expected_share: p0,
        observed_share: observed,
        canary,
        baseline,
        z,
    })
}
