//! Exact, distribution-free comparison of two sample quantiles.
//!
//! Let X be the kc-th smallest of nc values and Y the kb-th smallest of nb values, all
//! nc + nb independent draws of one continuous distribution. Whether X > Y depends only on
//! how the two samples interleave, and every interleaving is equally likely, so
//! P(X > Y) is the same for every distribution. With J the number of X-values below Y,
//! X > Y exactly when J < kc, and J is negative-hypergeometric:
//!
//! P(J = j) = C(j + kb − 1, j) · C(N − j − kb, nc − j) / C(N, nc),  N = nc + nb.
//!
//! This is the null probability of one period's comparison of canary and baseline
//! percentiles: under "the canary is not slower", the canary's percentile exceeds the
//! baseline's with at most this probability, whatever the latency distribution.

use super::special::ln_binom;

/// P(X_(kc:nc) > Y_(kb:nb)) for two independent samples of one continuous distribution
/// (1-based ranks, 1 ≤ kc ≤ nc, 1 ≤ kb ≤ nb; out-of-range ranks are clamped).
pub fn order_statistic_exceeds(nc: u64, kc: u64, nb: u64, kb: u64) -> f64 {
    if nc == 0 || nb == 0 {
        return 0.5;
    }
    let (kc, kb) = (kc.clamp(1, nc), kb.clamp(1, nb));
    let n = nc + nb;
    // log P(J = 0) = log C(N − kb, nc) − log C(N, nc); then the ratio of successive terms,
    // P(J = j + 1) / P(J = j) = (j + kb)(nc − j) / ((j + 1)(N − j − kb)).
    let mut log_t = ln_binom(n - kb, nc) - ln_binom(n, nc);
    // Sum the shorter tail: P(J < kc) directly, or 1 − P(J ≥ kc).
    let lower = kc <= nc - kc + 1;
    let mut acc = f64::NEG_INFINITY;
    let add = |acc: f64, x: f64| {
        if acc == f64::NEG_INFINITY {
            x
        } else {
            let m = acc.max(x);
            m + ((acc - m).exp() + (x - m).exp()).ln()
        }
    };
    for j in 0..=nc {
        if (j < kc) == lower {
            acc = add(acc, log_t);
        }
        if j == nc {
            break;
        }
        let (jf, kbf, ncf, nf) = (j as f64, kb as f64, nc as f64, n as f64);
        log_t += ((jf + kbf) * (ncf - jf)).ln() - ((jf + 1.0) * (nf - jf - kbf)).ln();
        if lower && j + 1 >= kc {
            break;
        }
    }
    let tail = acc.exp().clamp(0.0, 1.0);
    if lower {
        tail
    } else {
        (1.0 - tail).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_cases_are_one_half() {
        // Medians of two samples of the same odd size: by symmetry exactly 1/2.
        assert!((order_statistic_exceeds(5, 3, 5, 3) - 0.5).abs() < 1e-12);
        assert!((order_statistic_exceeds(101, 51, 101, 51) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn single_values_and_extremes() {
        // One value against the k-th of nb: it is above it with probability (nb − k + 1)/(nb + 1).
        assert!((order_statistic_exceeds(1, 1, 9, 9) - 0.1).abs() < 1e-12);
        assert!((order_statistic_exceeds(1, 1, 9, 1) - 0.9).abs() < 1e-12);
        // The canary's median far above the baseline's p95 is very unlikely.
        assert!(order_statistic_exceeds(150, 75, 2850, 2708) < 1e-20);
    }
}
