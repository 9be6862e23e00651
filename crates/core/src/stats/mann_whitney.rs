//! Mann-Whitney U test with the rules of `scipy.stats.mannwhitneyu(canary, baseline)`:
//! U of the canary, average ranks for ties, the exact null distribution when one sample has
//! at most 8 values and there are no ties, otherwise the normal approximation with tie and
//! continuity corrections. Effect size: Cliff's delta = 2U/(n1 n2) - 1.

use super::special::norm_sf;
use super::{Alternative, EffectKind, EffectSize, Method, TestKind, TestResult, checked_sorted};
use crate::error::StatsError;

/// Largest sample size of the smaller side for which scipy's `method='auto'` is exact.
const EXACT_MAX_SMALLER: usize = 8;

/// Rank sums over two sorted samples.
struct Ranks {
    /// Sum of the (average) ranks of the first sample.
    r1: f64,
    /// Σ (t³ - t) over tie groups.
    tie_term: f64,
    /// Whether any value occurs more than once.
    ties: bool,
}

/// Walks two ascending samples once, assigning average ranks to tie groups.
fn rank_sums(a: &[f64], b: &[f64]) -> Ranks {
    let (mut i, mut j) = (0usize, 0usize);
    let mut pos = 0u64;
    let mut r1 = 0.0;
    let mut tie_term: u128 = 0;
    let mut ties = false;
    while i < a.len() || j < b.len() {
        let v = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => break,
        };
        let start_i = i;
        while i < a.len() && a[i] == v {
            i += 1;
        }
        let start_j = j;
        while j < b.len() && b[j] == v {
            j += 1;
        }
        let (ca, cb) = ((i - start_i) as u64, (j - start_j) as u64);
        let t = ca + cb;
        // Ranks pos+1 ..= pos+t share their average.
        let average = pos as f64 + (t as f64 + 1.0) / 2.0;
        r1 += ca as f64 * average;
        if t > 1 {
            ties = true;
            let t = u128::from(t);
            tie_term += t * t * t - t;
        }
        pos += t;
    }
    Ranks {
        r1,
        tie_term: tie_term as f64,
        ties,
    }
}

/// Mann-Whitney U of `canary` against `baseline`, as `scipy.stats.mannwhitneyu(canary,
/// baseline, alternative=...)` with its defaults.
pub fn mann_whitney_u(
    canary: &[f64],
    baseline: &[f64],
    alternative: Alternative,
) -> Result<TestResult, StatsError> {
    let c = checked_sorted(canary, "canary")?;
    let b = checked_sorted(baseline, "baseline")?;
    Ok(mann_whitney_sorted(&c, &b, alternative))
}

/// Mann-Whitney U on samples already sorted ascending and checked.
pub(crate) fn mann_whitney_sorted(c: &[f64], b: &[f64], alternative: Alternative) -> TestResult {
    let (n1, n2) = (c.len(), b.len());
    let ranks = rank_sums(c, b);
    let (fn1, fn2) = (n1 as f64, n2 as f64);
    let u1 = ranks.r1 - fn1 * (fn1 + 1.0) / 2.0;
    let u2 = fn1 * fn2 - u1;
    let (u, factor) = match alternative {
        Alternative::Greater => (u1, 1.0),
        Alternative::Less => (u2, 1.0),
        Alternative::TwoSided => (u1.max(u2), 2.0),
    };
    let exact = n1.min(n2) <= EXACT_MAX_SMALLER && !ranks.ties;
    let p = if exact {
        exact_sf(u as u64, n1.min(n2), n1.max(n2))
    } else {
        let n = fn1 + fn2;
        let mu = fn1 * fn2 / 2.0;
        let s = (fn1 * fn2 / 12.0 * ((n + 1.0) - ranks.tie_term / (n * (n - 1.0)))).sqrt();
        // Subtracting 0.5 always: the p-value comes from the upper tail and must include the
        // mass at U itself.
        let numerator = u - mu - 0.5;
        let z = if s > 0.0 {
            numerator / s
        } else {
            numerator * f64::INFINITY
        };
        norm_sf(z)
    };
    TestResult {
        test: TestKind::MannWhitneyU,
        statistic: u1,
        p_value: (p * factor).clamp(0.0, 1.0),
        alternative,
        method: if exact {
            Method::Exact
        } else {
            Method::Asymptotic
        },
        effect_size: Some(EffectSize {
            kind: EffectKind::CliffsDelta,
            value: 2.0 * u1 / (fn1 * fn2) - 1.0,
        }),
    }
}

/// P(U >= k) under the null for sample sizes m <= n, from the exact distribution of U: the
/// coefficients of the Gaussian binomial [m+n choose m]_q = Π_{i=1..m} (1 - q^(n+i)) / (1 - q^i).
fn exact_sf(k: u64, m: usize, n: usize) -> f64 {
    let len = m * n + 1;
    let k = k as usize;
    if k == 0 {
        return 1.0;
    }
    if k >= len {
        return 0.0;
    }
    match gaussian_binomial_i128(m, n) {
        Some(counts) => {
            let total: i128 = counts.iter().sum();
            let tail: i128 = counts[k..].iter().sum();
            tail as f64 / total as f64
        }
        None => {
            let counts = gaussian_binomial_f64(m, n);
            let total: f64 = counts.iter().sum();
            counts[k..].iter().sum::<f64>() / total
        }
    }
}

/// Exact integer coefficients, or `None` when they would overflow.
fn gaussian_binomial_i128(m: usize, n: usize) -> Option<Vec<i128>> {
    let mut c = vec![0i128; m * n + 1];
    c[0] = 1;
    let mut degree = 0;
    for i in 1..=m {
        // Multiply by (1 - q^(n+i)): highest terms first so each uses the old value.
        let shift = n + i;
        let new_degree = degree + shift;
        for d in (shift..=new_degree.min(c.len() - 1)).rev() {
            c[d] = c[d].checked_sub(c[d - shift])?;
        }
        // Divide by (1 - q^i): a running sum with stride i.
        for d in i..c.len() {
            c[d] = c[d].checked_add(c[d - i])?;
        }
        degree = i * n;
        for x in c.iter_mut().skip(degree + 1) {
            *x = 0;
        }
    }
    Some(c)
}

/// The same coefficients in floating point, for sizes whose counts exceed 128 bits.
fn gaussian_binomial_f64(m: usize, n: usize) -> Vec<f64> {
    let mut c = vec![0.0f64; m * n + 1];
    c[0] = 1.0;
    let mut degree = 0;
    for i in 1..=m {
        let shift = n + i;
        let new_degree = degree + shift;
        for d in (shift..=new_degree.min(c.len() - 1)).rev() {
            c[d] -= c[d - shift];
        }
        for d in i..c.len() {
            c[d] += c[d - i];
        }
        degree = i * n;
        for x in c.iter_mut().skip(degree + 1) {
            *x = 0.0;
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_distribution_of_tiny_samples() {
        // m = n = 2: U takes 0..=4 with counts 1,1,2,1,1 (total C(4,2) = 6).
        assert_eq!(
            gaussian_binomial_i128(2, 2).expect("fits"),
            vec![1, 1, 2, 1, 1]
        );
        assert!((exact_sf(4, 2, 2) - 1.0 / 6.0).abs() < 1e-15);
        assert!((exact_sf(3, 2, 2) - 2.0 / 6.0).abs() < 1e-15);
        let f = gaussian_binomial_f64(3, 5);
        let i = gaussian_binomial_i128(3, 5).expect("fits");
        assert!(f.iter().zip(&i).all(|(a, b)| (*a - *b as f64).abs() < 1e-9));
    }

    #[test]
    fn complete_separation_gives_the_smallest_exact_p() {
        let r = mann_whitney_u(
            &[5.0, 6.0, 7.0, 8.0],
            &[1.0, 2.0, 3.0, 4.0],
            Alternative::Greater,
        )
        .expect("valid");
        assert_eq!(r.statistic, 16.0);
        assert_eq!(r.method, Method::Exact);
        assert!((r.p_value - 1.0 / 70.0).abs() < 1e-15);
        assert_eq!(r.effect_size.map(|e| e.value), Some(1.0));
    }

    #[test]
    fn all_tied_samples_give_p_one() {
        let r = mann_whitney_u(&[1.0; 20], &[1.0; 30], Alternative::TwoSided).expect("valid");
        assert_eq!(r.p_value, 1.0);
        assert_eq!(r.effect_size.map(|e| e.value), Some(0.0));
    }

    #[test]
    fn bad_samples_are_rejected_naming_the_side() {
        assert_eq!(
            mann_whitney_u(&[], &[1.0], Alternative::TwoSided),
            Err(StatsError::EmptySample { side: "canary" })
        );
        assert_eq!(
            mann_whitney_u(&[1.0], &[f64::NAN], Alternative::TwoSided),
            Err(StatsError::NonFinite { side: "baseline" })
        );
    }
}
