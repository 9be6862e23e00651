//! Hodges-Lehmann estimate of the canary-minus-baseline shift: the median of all pairwise
//! differences, with the distribution-free (Moses) confidence interval from the normal
//! approximation of U. The order statistics of the n1·n2 differences come from
//! [`pairwise`](super::pairwise) without materialising them.

use serde::{Deserialize, Serialize};

use super::mann_whitney::mann_whitney_sorted;
use super::pairwise::{Tuning, kth_and_next, kth_difference};
use super::special::norm_ppf;
use super::{Alternative, TestResult, checked_sorted};
use crate::error::StatsError;

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

/// Hodges-Lehmann shift of `canary` relative to `baseline` with a two-sided `confidence`
/// interval: the k-th smallest and k-th largest pairwise differences, k = ⌊n1 n2 / 2 −
/// z √(n1 n2 (n1 + n2 + 1) / 12)⌋ (at least 1).
pub fn hodges_lehmann(
    canary: &[f64],
    baseline: &[f64],
    confidence: f64,
) -> Result<ShiftEstimate, StatsError> {
    check_confidence(confidence)?;
    let c = checked_sorted(canary, "canary")?;
    let b = checked_sorted(baseline, "baseline")?;
    hodges_lehmann_sorted(&c, &b, confidence)
}

/// Mann-Whitney U of `canary` against `baseline` (as [`mann_whitney_u`](super::mann_whitney_u))
/// and the Hodges-Lehmann shift with its `confidence` interval (as [`hodges_lehmann`]), sorting
/// each sample once. The shift is `None` when it is undefined for these sizes.
pub fn mann_whitney_with_shift(
    canary: &[f64],
    baseline: &[f64],
    alternative: Alternative,
    confidence: f64,
) -> Result<(TestResult, Option<ShiftEstimate>), StatsError> {
    check_confidence(confidence)?;
    let c = checked_sorted(canary, "canary")?;
    let b = checked_sorted(baseline, "baseline")?;
    let result = mann_whitney_sorted(&c, &b, alternative);
    Ok((result, hodges_lehmann_sorted(&c, &b, confidence).ok()))
}

fn check_confidence(confidence: f64) -> Result<(), StatsError> {
    if confidence > 0.0 && confidence < 1.0 {
        Ok(())
    } else {
        Err(StatsError::Undefined(format!(
            "confidence must be in (0, 1), got {confidence}"
        )))
    }
}

/// [`hodges_lehmann`] on non-empty, finite samples already sorted ascending.
pub(crate) fn hodges_lehmann_sorted(
    c: &[f64],
    b: &[f64],
    confidence: f64,
) -> Result<ShiftEstimate, StatsError> {
    check_confidence(confidence)?;
    let total = u64::try_from(c.len() as u128 * b.len() as u128)
        .map_err(|_| StatsError::Undefined("too many pairs for the shift estimate".into()))?;
    let tuning = Tuning::for_sizes(c.len(), b.len());
    let estimate = if total % 2 == 1 {
        kth_difference(c, b, total / 2 + 1, tuning)
    } else {
        let (x, y) = kth_and_next(c, b, total / 2, tuning);
        (x + y) / 2.0
    };
    let (n1, n2) = (c.len() as f64, b.len() as f64);
    let z = norm_ppf(0.5 + confidence / 2.0);
    let k = (n1 * n2 / 2.0 - z * (n1 * n2 * (n1 + n2 + 1.0) / 12.0).sqrt())
        .floor()
        .max(1.0) as u64;
    let k = k.min(total);
    Ok(ShiftEstimate {
        estimate,
        lower: kth_difference(c, b, k, tuning),
        upper: kth_difference(c, b, total + 1 - k, tuning),
        confidence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(c: &[f64], b: &[f64]) -> Vec<f64> {
        let mut d: Vec<f64> = c
            .iter()
            .flat_map(|x| b.iter().map(move |y| x - y))
            .collect();
        d.sort_by(f64::total_cmp);
        d
    }

    #[test]
    fn order_statistics_match_brute_force() {
        let c = [3.1, 4.7, 1.2, 9.9, 4.7, 0.3, 2.2];
        let b = [1.0, 2.5, 2.5, 8.0, 0.1];
        let all = brute(&c, &b);
        let (mut cs, mut bs) = (c.to_vec(), b.to_vec());
        cs.sort_by(f64::total_cmp);
        bs.sort_by(f64::total_cmp);
        for k in 1..=all.len() {
            assert_eq!(
                kth_difference(&cs, &bs, k as u64, Tuning::for_sizes(7, 5)),
                all[k - 1],
                "k = {k}"
            );
        }
        let hl = hodges_lehmann(&c, &b, 0.95).expect("valid");
        // 35 differences: the median is the 18th.
        assert_eq!(hl.estimate, all[17]);
        assert!(hl.lower <= hl.estimate && hl.estimate <= hl.upper);
    }

    #[test]
    fn pure_shift_is_recovered() {
        let b: Vec<f64> = (0..200).map(|i| (i as f64 * 0.37).sin() * 10.0).collect();
        let c: Vec<f64> = b.iter().map(|x| x + 5.0).collect();
        let hl = hodges_lehmann(&c, &b, 0.95).expect("valid");
        assert!((hl.estimate - 5.0).abs() < 1e-9);
        assert!(hl.lower < 5.0 && hl.upper > 5.0);
        assert!(hodges_lehmann(&c, &b, 1.5).is_err());
    }

    /// The estimate and interval from all differences, sorted: the reference for the fast path.
    fn brute_hl(c: &[f64], b: &[f64], confidence: f64) -> ShiftEstimate {
        let all = brute(c, b);
        let t = all.len();
        let estimate = if t % 2 == 1 {
            all[t / 2]
        } else {
            (all[t / 2 - 1] + all[t / 2]) / 2.0
        };
        let (n1, n2) = (c.len() as f64, b.len() as f64);
        let z = norm_ppf(0.5 + confidence / 2.0);
        let k = (n1 * n2 / 2.0 - z * (n1 * n2 * (n1 + n2 + 1.0) / 12.0).sqrt())
            .floor()
            .max(1.0) as usize;
        let k = k.min(t);
        ShiftEstimate {
            estimate,
            lower: all[k - 1],
            upper: all[t - k],
            confidence,
        }
    }

    #[test]
    fn estimate_and_interval_match_brute_force_on_random_samples() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        let mut rng = StdRng::seed_from_u64(5);
        for round in 0..60 {
            let (n1, n2) = (rng.random_range(1..=90), rng.random_range(1..=90));
            // Rounded latencies (many ties) every other round, continuous otherwise.
            let draw = |rng: &mut StdRng, n: usize, shift: f64| -> Vec<f64> {
                (0..n)
                    .map(|_| {
                        let x = 40.0 + shift + rng.random::<f64>() * 30.0;
                        if round % 2 == 0 { x.round() } else { x }
                    })
                    .collect()
            };
            let c = draw(&mut rng, n1, 3.0);
            let b = draw(&mut rng, n2, 0.0);
            for confidence in [0.95, 0.5, 0.999] {
                let fast = hodges_lehmann(&c, &b, confidence).expect("valid");
                assert_eq!(
                    fast,
                    brute_hl(&c, &b, confidence),
                    "{n1} x {n2} at {confidence}"
                );
            }
            let (r, s) =
                mann_whitney_with_shift(&c, &b, Alternative::Greater, 0.95).expect("valid");
            assert_eq!(
                r,
                super::super::mann_whitney_u(&c, &b, Alternative::Greater).expect("valid")
            );
            assert_eq!(s, Some(brute_hl(&c, &b, 0.95)));
        }
    }
}
