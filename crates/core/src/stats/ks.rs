//! Two-sample Kolmogorov-Smirnov test (placeholder until implemented).
use super::{Alternative, TestResult};
use crate::error::StatsError;

/// KS test of `canary` against `baseline`, as `scipy.stats.ks_2samp(canary, baseline)`.
pub fn ks_2samp(
    _canary: &[f64],
    _baseline: &[f64],
    _alternative: Alternative,
) -> Result<TestResult, StatsError> {
    Err(StatsError::Undefined("not implemented".into()))
}
