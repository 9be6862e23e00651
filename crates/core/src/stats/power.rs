//! Power and minimum detectable effect (placeholder until implemented).
use super::Counts;
use serde::{Deserialize, Serialize};

/// The smallest effect the samples at hand detect with the given power.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Power {
    /// Two-sided significance level assumed.
    pub alpha: f64,
    /// Power assumed (e.g. 0.8).
    pub power: f64,
    /// Minimum detectable difference in the metric's units (rate points for counts).
    pub mde_absolute: f64,
    /// The same relative to the baseline level (0.1 = 10 %).
    pub mde_relative: f64,
}

/// MDE of a difference in means for samples of these sizes, from the baseline's spread.
pub fn samples_power(
    _n_canary: usize,
    _baseline: &[f64],
    _alpha: f64,
    _power: f64,
) -> Option<Power> {
    None
}

/// MDE of a difference in event rates at the baseline's rate.
pub fn counts_power(_canary: Counts, _baseline: Counts, _alpha: f64, _power: f64) -> Option<Power> {
    None
}
