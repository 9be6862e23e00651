//! Power and minimum detectable effect (MDE) for the samples at hand, from the normal
//! approximation. For distributions the MDE is a difference in means with the baseline's
//! spread (Mann-Whitney's efficiency relative to the t-test is 3/π ≈ 0.95 for normal data and
//! higher for heavy tails, so this is a fair guide); for counts it is a difference in rates.

use serde::{Deserialize, Serialize};

use super::Counts;
use super::special::norm_ppf;

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

fn z_sum(alpha: f64, power: f64) -> Option<f64> {
    (alpha > 0.0 && alpha < 1.0 && power > 0.0 && power < 1.0)
        .then(|| norm_ppf(1.0 - alpha / 2.0) + norm_ppf(power))
}

/// MDE of a difference in means: (z_{1−α/2} + z_{power}) · sd_baseline · √(1/n1 + 1/n2).
/// `None` for empty samples, a baseline of one value or zero spread, or a zero mean (no
/// relative scale).
pub fn samples_power(n_canary: usize, baseline: &[f64], alpha: f64, power: f64) -> Option<Power> {
    let n2 = baseline.len();
    if n_canary == 0 || n2 < 2 {
        return None;
    }
    let mean = baseline.iter().sum::<f64>() / n2 as f64;
    let sd = (baseline.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n2 - 1) as f64).sqrt();
    let z = z_sum(alpha, power)?;
    if sd == 0.0 || mean == 0.0 {
        return None;
    }
    let mde = z * sd * (1.0 / n_canary as f64 + 1.0 / n2 as f64).sqrt();
    Some(Power {
        alpha,
        power,
        mde_absolute: mde,
        mde_relative: mde / mean.abs(),
    })
}

/// MDE of an increase in event rate at the baseline's rate p0: the smallest δ with
/// z · √(p0(1−p0)/n2 + p1(1−p1)/n1) = δ, p1 = p0 + δ, solved by fixed-point iteration. A
/// baseline without events uses the rule of three (3/n2) as its rate bound. `None` without
/// trials.
pub fn counts_power(canary: Counts, baseline: Counts, alpha: f64, power: f64) -> Option<Power> {
    if canary.total == 0 || baseline.total == 0 {
        return None;
    }
    let z = z_sum(alpha, power)?;
    let (n1, n2) = (canary.total as f64, baseline.total as f64);
    let p0 = if baseline.events == 0 {
        3.0 / n2
    } else {
        baseline.events as f64 / n2
    }
    .min(1.0);
    let mut delta = z * (p0 * (1.0 - p0) * (1.0 / n1 + 1.0 / n2)).sqrt();
    for _ in 0..50 {
        let p1 = (p0 + delta).min(1.0);
        let next = z * (p0 * (1.0 - p0) / n2 + p1 * (1.0 - p1) / n1).sqrt();
        if (next - delta).abs() < 1e-15 {
            break;
        }
        delta = next;
    }
    Some(Power {
        alpha,
        power,
        mde_absolute: delta,
        mde_relative: delta / p0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mde_shrinks_with_sample_size() {
        let base: Vec<f64> = (0..1000).map(|i| 100.0 + (i % 10) as f64).collect();
        let small = samples_power(100, &base, 0.05, 0.8).expect("defined");
        let large = samples_power(10_000, &base[..], 0.05, 0.8).expect("defined");
        assert!(large.mde_absolute < small.mde_absolute);
        // (1.959964 + 0.841621) * sd * sqrt(1/100 + 1/1000)
        let sd = 2.8737020542534455;
        assert!((small.mde_absolute - 2.8015852 * sd * (0.011f64).sqrt()).abs() < 1e-5);
        assert!(samples_power(0, &base, 0.05, 0.8).is_none());
        assert!(samples_power(10, &[1.0, 1.0], 0.05, 0.8).is_none());
    }

    #[test]
    fn count_mde_is_a_self_consistent_rate_difference() {
        let p = counts_power(
            Counts {
                events: 3,
                total: 2800,
            },
            Counts {
                events: 4,
                total: 2800,
            },
            0.05,
            0.8,
        )
        .expect("defined");
        let p0 = 4.0 / 2800.0;
        let p1 = p0 + p.mde_absolute;
        let rhs = 2.8015852 * (p0 * (1.0 - p0) / 2800.0 + p1 * (1.0 - p1) / 2800.0).sqrt();
        assert!((p.mde_absolute - rhs).abs() < 1e-6);
        assert!(
            counts_power(
                Counts {
                    events: 0,
                    total: 0
                },
                Counts {
                    events: 0,
                    total: 10
                },
                0.05,
                0.8
            )
            .is_none()
        );
    }
}
