//! Tests on 2x2 count tables (placeholder until implemented).
use super::{Alternative, Counts, TestResult};
use crate::error::StatsError;

/// Chi-square with Yates' correction on [[canary events, non-events], [baseline events, non-events]].
pub fn chi_square_2x2(_canary: Counts, _baseline: Counts) -> Result<TestResult, StatsError> {
    Err(StatsError::Undefined("not implemented".into()))
}

/// Pooled two-proportion z-test; effect size Cohen's h.
pub fn two_proportion_z(
    _canary: Counts,
    _baseline: Counts,
    _alternative: Alternative,
) -> Result<TestResult, StatsError> {
    Err(StatsError::Undefined("not implemented".into()))
}

/// Fisher's exact test on the same table; statistic is the sample odds ratio.
pub fn fisher_exact(
    _canary: Counts,
    _baseline: Counts,
    _alternative: Alternative,
) -> Result<TestResult, StatsError> {
    Err(StatsError::Undefined("not implemented".into()))
}
