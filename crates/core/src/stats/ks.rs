//! Two-sample Kolmogorov-Smirnov test with the rules of `scipy.stats.ks_2samp(canary,
//! baseline, alternative=...)`: exact p-values when both samples have at most 10,000 values
//! (lattice-path counting), the asymptotic distribution otherwise or when the exact count
//! overflows. `Alternative::Greater` and `Less` mean what scipy's keywords mean for KS: the
//! canary's empirical CDF lies above (resp. below) the baseline's somewhere, i.e. `Greater`
//! looks for a canary that is *smaller*. Effect size: the KS distance D.

use super::kolmogorov::kstwo_sf;
use super::special::binom;
use super::{Alternative, EffectKind, EffectSize, Method, TestKind, TestResult, checked_sorted};
use crate::error::StatsError;

/// scipy's `MAX_AUTO_N`: above this size, `method='auto'` is asymptotic.
const MAX_AUTO_N: usize = 10_000;

/// KS test of `canary` against `baseline`, as `scipy.stats.ks_2samp(canary, baseline)`.
pub fn ks_2samp(
    canary: &[f64],
    baseline: &[f64],
    alternative: Alternative,
) -> Result<TestResult, StatsError> {
    let c = checked_sorted(canary, "canary")?;
    let b = checked_sorted(baseline, "baseline")?;
    Ok(ks_sorted(&c, &b, alternative))
}

/// The largest positive and negative differences of the empirical CDFs (first minus second).
fn cdf_extremes(a: &[f64], b: &[f64]) -> (f64, f64) {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let (mut max_diff, mut min_diff) = (f64::NEG_INFINITY, f64::INFINITY);
    while i < a.len() || j < b.len() {
        let v = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => break,
        };
        while i < a.len() && a[i] <= v {
            i += 1;
        }
        while j < b.len() && b[j] <= v {
            j += 1;
        }
        let diff = i as f64 / n1 - j as f64 / n2;
        max_diff = max_diff.max(diff);
        min_diff = min_diff.min(diff);
    }
    (max_diff, (-min_diff).clamp(0.0, 1.0))
}

/// KS on samples already sorted ascending and checked.
pub(crate) fn ks_sorted(c: &[f64], b: &[f64], alternative: Alternative) -> TestResult {
    let (n1, n2) = (c.len(), b.len());
    let (max_s, min_s) = cdf_extremes(c, b);
    let mut d = match alternative {
        Alternative::Less => min_s,
        Alternative::Greater => max_s,
        Alternative::TwoSided => min_s.max(max_s),
    };
    let mut exact = n1.max(n2) <= MAX_AUTO_N;
    let mut p = f64::NAN;
    if exact {
        match exact_p(n1, n2, d, alternative) {
            (rounded_d, Some(prob)) => {
                d = rounded_d;
                p = prob;
            }
            (rounded_d, None) => {
                d = rounded_d;
                exact = false;
            }
        }
    }
    if !exact {
        let (m, n) = (n1.max(n2) as f64, n1.min(n2) as f64);
        let en = m * n / (m + n);
        p = match alternative {
            Alternative::TwoSided => kstwo_sf(d, en.round_ties_even() as u64),
            _ => {
                let z = en.sqrt() * d;
                let expt = -2.0 * z * z - 2.0 * z * (m + 2.0 * n) / (m * n * (m + n)).sqrt() / 3.0;
                expt.exp()
            }
        };
    }
    TestResult {
        test: TestKind::KolmogorovSmirnov,
        statistic: d,
        p_value: p.clamp(0.0, 1.0),
        alternative,
        method: if exact {
            Method::Exact
        } else {
            Method::Asymptotic
        },
        effect_size: Some(EffectSize {
            kind: EffectKind::KsDistance,
            value: d,
        }),
    }
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The exact p-value, with D rounded to the lattice (h / lcm) as scipy does; `None` when the
/// computation is not possible in floating point (scipy then falls back to the asymptotic).
fn exact_p(n1: usize, n2: usize, d: f64, alternative: Alternative) -> (f64, Option<f64>) {
    let g = gcd(n1, n2);
    let lcm = (n1 / g) as f64 * n2 as f64;
    let h = (d * lcm).round_ties_even();
    let d = h / lcm;
    if h == 0.0 {
        return (d, Some(1.0));
    }
    let h = h as usize;
    let p = match alternative {
        Alternative::TwoSided => Some(prob_outside_band(n1, n2, g, h)),
        _ if n1 == n2 => Some(
            (0..h)
                .map(|j| (n1 - j) as f64 / (n1 + j + 1) as f64)
                .product(),
        ),
        _ => one_sided_paths(n1, n2, g, h),
    };
    match p {
        Some(p) if (0.0..=1.0).contains(&p) => (d, Some(p)),
        _ => (d, None),
    }
}

/// Probability that a uniformly random lattice path from (0,0) to (m,n) leaves the band
/// |i·n/g − j·m/g| < h at some point: the two-sided exact p-value. Each entry holds the
/// probability that a random path to that point has already left the band; the recursion
/// weighs the two predecessors by i/(i+j) and j/(i+j), so nothing overflows.
fn prob_outside_band(n1: usize, n2: usize, g: usize, h: usize) -> f64 {
    let (m, n) = if n1 >= n2 { (n1, n2) } else { (n2, n1) };
    let (mg, ng) = ((m / g) as i64, (n / g) as i64);
    let h = h as i64;
    let outside = |i: i64, j: i64| (i * ng - j * mg).abs() >= h;
    let mut col: Vec<f64> = (0..=n as i64)
        .map(|j| if outside(0, j) { 1.0 } else { 0.0 })
        .collect();
    let mut prev_lo = 0i64;
    for i in 1..=m as i64 {
        // Rows j still inside the band at column i: (i·ng − h) < j·mg < (i·ng + h).
        let lo = ((i * ng - h).div_euclid(mg) + 1).max(0);
        let hi = (i * ng + h - 1).div_euclid(mg).min(n as i64);
        if lo > hi {
            return 1.0;
        }
        // Rows that fell below the band have left it for good.
        for j in prev_lo..lo.min(n as i64 + 1) {
            col[j as usize] = 1.0;
        }
        prev_lo = lo;
        let mut below = 1.0; // the point (i, lo − 1) lies outside the band (or does not exist)
        for j in lo..=hi {
            let ju = j as usize;
            if outside(i, j) {
                col[ju] = 1.0;
                below = 1.0;
                continue;
            }
            let left = col[ju];
            let value = if j == 0 {
                left
            } else {
                (i as f64 * left + j as f64 * below) / (i + j) as f64
            };
            col[ju] = value;
            below = value;
        }
    }
    col[n]
}

/// One-sided exact p-value for unequal sizes: the number of paths that cross the line, over
/// C(m+n, n), following Hodges' treatment; `None` when a count overflows.
fn one_sided_paths(n1: usize, n2: usize, g: usize, h: usize) -> Option<f64> {
    let (m, n) = if n1 >= n2 { (n1, n2) } else { (n2, n1) };
    let (mg, ng) = (m / g, n / g);
    let lxj = n as i64 + (mg as i64 - h as i64).div_euclid(mg as i64);
    let total = binom((m + n) as f64, n as f64);
    if !total.is_finite() {
        return None;
    }
    if lxj <= 0 {
        return Some(1.0);
    }
    let lxj = lxj as usize;
    let xj: Vec<usize> = (0..lxj).map(|j| (h + mg * j).div_ceil(ng)).collect();
    let mut coeffs = vec![0.0f64; lxj];
    coeffs[0] = 1.0;
    for j in 1..lxj {
        let mut bj = binom((xj[j] + j) as f64, j as f64);
        for i in 0..j {
            bj -= binom((xj[j] - xj[i] + j - i) as f64, (j - i) as f64) * coeffs[i];
        }
        if !bj.is_finite() {
            return None;
        }
        coeffs[j] = bj;
    }
    let mut paths = 0.0;
    for (j, &bj) in coeffs.iter().enumerate() {
        paths += bj * binom(((m - xj[j]) + (n - j)) as f64, (n - j) as f64);
    }
    if !paths.is_finite() || paths > total {
        return None;
    }
    Some(paths / total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_samples_have_d_zero_and_p_one() {
        let x = [1.0, 2.0, 3.0, 4.0];
        let r = ks_2samp(&x, &x, Alternative::TwoSided).expect("valid");
        assert_eq!((r.statistic, r.p_value), (0.0, 1.0));
    }

    #[test]
    fn complete_separation_small_exact() {
        // scipy.stats.ks_2samp([5,6,7,8], [1,2,3,4]) = (1.0, 0.02857142857142857)
        let r = ks_2samp(
            &[5.0, 6.0, 7.0, 8.0],
            &[1.0, 2.0, 3.0, 4.0],
            Alternative::TwoSided,
        )
        .expect("valid");
        assert_eq!(r.statistic, 1.0);
        assert!(
            (r.p_value - 0.02857142857142857).abs() < 1e-14,
            "{}",
            r.p_value
        );
        assert_eq!(r.method, Method::Exact);
    }
}
