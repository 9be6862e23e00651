//! Mann-Whitney U test (placeholder until implemented).
use super::{Alternative, TestResult};
use crate::error::StatsError;

/// Mann-Whitney U of `canary` against `baseline`, as `scipy.stats.mannwhitneyu(canary, baseline)`.
pub fn mann_whitney_u(
    _canary: &[f64],
    _baseline: &[f64],
    _alternative: Alternative,
) -> Result<TestResult, StatsError> {
    Err(StatsError::Undefined("not implemented".into()))
}
