//! Descriptive statistics: sample summaries and numpy-compatible percentiles.

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
    pub fn of(sample: &[f64]) -> Option<Self> {
        if sample.is_empty() {
            return None;
        }
        let mut sorted = sample.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(Self::of_sorted(&sorted))
    }

    /// Summarises an ascending-sorted, non-empty sample.
    pub fn of_sorted(sorted: &[f64]) -> Self {
        let n = sorted.len();
        let mean = sorted.iter().sum::<f64>() / n as f64;
        let var = if n > 1 {
            sorted.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        Self {
            n,
            mean,
            std_dev: var.sqrt(),
            min: sorted[0],
            p50: percentile(sorted, 50.0),
            p95: percentile(sorted, 95.0),
            p99: percentile(sorted, 99.0),
            max: sorted[n - 1],
        }
    }
}

/// The `q`-th percentile (0..=100) of an ascending-sorted, non-empty sample with numpy's
/// default linear interpolation (`numpy.percentile(x, q)`). NaN for an empty sample.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let h = (n - 1) as f64 * (q / 100.0).clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    let frac = h - lo as f64;
    sorted[lo] + frac * (sorted[hi] - sorted[lo])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_like_numpy() {
        let x = [1.0, 2.0, 3.0, 4.0, 10.0];
        // numpy.percentile([1,2,3,4,10], [50, 95, 99]) = [3.0, 8.8, 9.76]
        assert_eq!(percentile(&x, 50.0), 3.0);
        assert!((percentile(&x, 95.0) - 8.8).abs() < 1e-12);
        assert!((percentile(&x, 99.0) - 9.76).abs() < 1e-12);
        let s = Summary::of(&[4.0, 1.0, 3.0, 2.0, 10.0]).expect("non-empty");
        assert_eq!((s.n, s.min, s.max, s.mean), (5, 1.0, 10.0, 4.0));
        // numpy.std([1,2,3,4,10], ddof=1) = 3.5355339059327378
        assert!((s.std_dev - 3.5355339059327378).abs() < 1e-12);
        assert!(Summary::of(&[]).is_none());
        assert_eq!(Summary::of(&[7.0]).expect("one").std_dev, 0.0);
    }
}
