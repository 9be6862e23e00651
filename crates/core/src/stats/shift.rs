//! Hodges-Lehmann shift estimate (placeholder until implemented).
use crate::error::StatsError;
use serde::{Deserialize, Serialize};

/// The Hodges-Lehmann estimate of the canary-minus-baseline shift with its confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ShiftEstimate {
    /// Median of all pairwise differences canary_i - baseline_j.
    pub estimate: f64,
    /// Lower confidence bound.
    pub lower: f64,
    /// Upper confidence bound.
    pub upper: f64,
    /// Confidence level of the interval (e.g. 0.95).
    pub confidence: f64,
}

/// Hodges-Lehmann shift of `canary` relative to `baseline`.
pub fn hodges_lehmann(
    _canary: &[f64],
    _baseline: &[f64],
    _confidence: f64,
) -> Result<ShiftEstimate, StatsError> {
    Err(StatsError::Undefined("not implemented".into()))
}
