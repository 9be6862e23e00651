//! Hodges-Lehmann estimate of the canary-minus-baseline shift: the median of all pairwise
//! differences, with the distribution-free (Moses) confidence interval from the normal
//! approximation of U. Order statistics of the n1·n2 differences are found without
//! materialising them: bisection on the value with an O(n1 + n2) count per step.

use serde::{Deserialize, Serialize};

use super::checked_sorted;
use super::special::norm_ppf;
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

/// Number of pairs with c_i − b_j <= v, over ascending samples.
fn count_at_most(c: &[f64], b: &[f64], v: f64) -> u128 {
    // The same float subtraction as the final step, so counting and selection agree; for
    // ascending c the first index with c_i − b_j <= v only moves right.
    let mut count: u128 = 0;
    let mut j = 0usize;
    for &ci in c {
        while j < b.len() && ci - b[j] > v {
            j += 1;
        }
        count += (b.len() - j) as u128;
    }
    count
}

/// The k-th smallest (1-based) pairwise difference c_i − b_j.
fn kth_difference(c: &[f64], b: &[f64], k: u128) -> f64 {
    let (mut lo, mut hi) = (c[0] - b[b.len() - 1], c[c.len() - 1] - b[0]);
    if count_at_most(c, b, lo) >= k {
        return lo;
    }
    // Invariant: count(lo) < k <= count(hi). Bisect until no float lies strictly between.
    for _ in 0..2000 {
        let mid = lo + (hi - lo) / 2.0;
        if mid <= lo || mid >= hi {
            break;
        }
        if count_at_most(c, b, mid) >= k {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    // The answer is the smallest difference above lo; find it exactly.
    let mut best = f64::INFINITY;
    for &ci in c {
        // The differences above lo come from a prefix of b; its last element gives the
        // smallest of them.
        let idx = b.partition_point(|&x| ci - x > lo);
        if idx > 0 {
            let d = ci - b[idx - 1];
            if d > lo && d < best {
                best = d;
            }
        }
    }
    if best.is_finite() { best } else { hi }
}

/// Hodges-Lehmann shift of `canary` relative to `baseline` with a two-sided `confidence`
/// interval: the k-th smallest and k-th largest pairwise differences, k = ⌊n1 n2 / 2 −
/// z √(n1 n2 (n1 + n2 + 1) / 12)⌋ (at least 1).
pub fn hodges_lehmann(
    canary: &[f64],
    baseline: &[f64],
    confidence: f64,
) -> Result<ShiftEstimate, StatsError> {
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(StatsError::Undefined(format!(
            "confidence must be in (0, 1), got {confidence}"
        )));
    }
    let c = checked_sorted(canary, "canary")?;
    let b = checked_sorted(baseline, "baseline")?;
    let total = c.len() as u128 * b.len() as u128;
    let estimate = if total % 2 == 1 {
        kth_difference(&c, &b, total / 2 + 1)
    } else {
        (kth_difference(&c, &b, total / 2) + kth_difference(&c, &b, total / 2 + 1)) / 2.0
    };
    let (n1, n2) = (c.len() as f64, b.len() as f64);
    let z = norm_ppf(0.5 + confidence / 2.0);
    let k = (n1 * n2 / 2.0 - z * (n1 * n2 * (n1 + n2 + 1.0) / 12.0).sqrt())
        .floor()
        .max(1.0) as u128;
    let k = k.min(total);
    Ok(ShiftEstimate {
        estimate,
        lower: kth_difference(&c, &b, k),
        upper: kth_difference(&c, &b, total + 1 - k),
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
            assert_eq!(kth_difference(&cs, &bs, k as u128), all[k - 1], "k = {k}");
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
}
