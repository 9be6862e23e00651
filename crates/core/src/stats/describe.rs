//! Descriptive statistics (placeholder until implemented).
use serde::{Deserialize, Serialize};

/// Summary statistics of one sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Sample size.
    pub n: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation (ddof = 1; 0 for n = 1).
    pub std_dev: f64,
    /// Smallest value.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest value.
    pub max: f64,
}

impl Summary {
    /// Summarises a sample; `None` when it is empty.
    pub fn of(_sample: &[f64]) -> Option<Self> {
        None
    }
}

/// The `q`-th percentile (0..=100) of an ascending-sorted, non-empty sample with numpy's default
/// linear interpolation.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let _ = q;
    sorted[0]
}
