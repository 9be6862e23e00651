//! Tests on the 2x2 table [[canary events, canary non-events], [baseline events, baseline
//! non-events]]: chi-square with Yates' correction (as `scipy.stats.chi2_contingency`), the
//! pooled two-proportion z-test, and Fisher's exact test (as `scipy.stats.fisher_exact`).

use statrs::function::erf::erfc;

use super::special::{ln_binom, norm_cdf, norm_sf};
use super::{Alternative, Counts, EffectKind, EffectSize, Method, TestKind, TestResult};
use crate::error::StatsError;

fn checked(c: Counts, side: &'static str) -> Result<Counts, StatsError> {
    Counts::new(c.events, c.total)?;
    if c.total == 0 {
        return Err(StatsError::NoTrials { side });
    }
    Ok(c)
}

/// Cohen's h = 2 asin √p_canary − 2 asin √p_baseline.
fn cohens_h(canary: Counts, baseline: Counts) -> EffectSize {
    let h = |c: Counts| 2.0 * (c.events as f64 / c.total as f64).sqrt().asin();
    EffectSize {
        kind: EffectKind::CohensH,
        value: h(canary) - h(baseline),
    }
}

/// Chi-square test of independence with Yates' continuity correction; effect size Cohen's h.
/// A table with an empty row or column has a zero expected count and is undefined (scipy
/// raises), reported as [`StatsError::Undefined`].
pub fn chi_square_2x2(canary: Counts, baseline: Counts) -> Result<TestResult, StatsError> {
    let c = checked(canary, "canary")?;
    let b = checked(baseline, "baseline")?;
    let observed = [
        [c.events as f64, (c.total - c.events) as f64],
        [b.events as f64, (b.total - b.events) as f64],
    ];
    let rows = [c.total as f64, b.total as f64];
    let events = (c.events + b.events) as f64;
    let cols = [events, rows[0] + rows[1] - events];
    let n = rows[0] + rows[1];
    if cols[0] == 0.0 || cols[1] == 0.0 {
        let which = if cols[0] == 0.0 {
            "events (no events on either side)"
        } else {
            "non-events (every trial was an event)"
        };
        return Err(StatsError::Undefined(format!(
            "chi-square is undefined: the {which} column is empty, so an expected count is zero"
        )));
    }
    let mut chi2 = 0.0;
    for (i, row) in observed.iter().enumerate() {
        for (j, &o) in row.iter().enumerate() {
            let e = rows[i] * cols[j] / n;
            let diff = e - o;
            // Yates: move each observation toward its expectation by at most 0.5.
            let adjusted = o + diff.signum() * diff.abs().min(0.5);
            chi2 += (adjusted - e).powi(2) / e;
        }
    }
    // Chi-square with one degree of freedom: sf(x) = erfc(sqrt(x / 2)).
    let p = erfc((chi2 / 2.0).sqrt());
    Ok(TestResult {
        test: TestKind::ChiSquare,
        statistic: chi2,
        p_value: p.clamp(0.0, 1.0),
        alternative: Alternative::TwoSided,
        method: Method::Asymptotic,
        effect_size: Some(cohens_h(c, b)),
    })
}

/// Pooled two-proportion z-test; z is positive when the canary's rate is higher. Undefined
/// when the pooled rate is 0 or 1 (no variance).
pub fn two_proportion_z(
    canary: Counts,
    baseline: Counts,
    alternative: Alternative,
) -> Result<TestResult, StatsError> {
    let c = checked(canary, "canary")?;
    let b = checked(baseline, "baseline")?;
    let (n1, n2) = (c.total as f64, b.total as f64);
    let (p1, p2) = (c.events as f64 / n1, b.events as f64 / n2);
    let pooled = (c.events + b.events) as f64 / (n1 + n2);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    if se == 0.0 {
        return Err(StatsError::Undefined(format!(
            "the z-test is undefined: the pooled event rate is {pooled}, so its variance is zero"
        )));
    }
    let z = (p1 - p2) / se;
    let p = match alternative {
        Alternative::Greater => norm_sf(z),
        Alternative::Less => norm_cdf(z),
        Alternative::TwoSided => 2.0 * norm_sf(z.abs()),
    };
    Ok(TestResult {
        test: TestKind::TwoProportionZ,
        statistic: z,
        p_value: p.clamp(0.0, 1.0),
        alternative,
        method: Method::Asymptotic,
        effect_size: Some(cohens_h(c, b)),
    })
}

/// The most tables Fisher's exact test sums over (the width of the hypergeometric law's
/// support, `min(events, non-events, canary trials, baseline trials) + 1`): 5·10⁶ terms took
/// 7.8 s in a debug build on a busy 2-core machine. Wider supports need both margins in
/// the millions, where chi-square and the z-test are accurate.
pub const FISHER_MAX_TERMS: u64 = 5_000_000;

/// The most trials Fisher's exact test takes: the largest count a double holds exactly.
const FISHER_MAX_TOTAL: u128 = super::MAX_COUNT as u128;

/// Fisher's exact test; the statistic is the sample odds ratio (infinite when a baseline
/// event count or canary non-event count is zero, NaN with p = 1 when a margin is empty, as
/// scipy returns). The two-sided p-value sums every table no more likely than the observed
/// one (relative tolerance 1e-14, as scipy).
pub fn fisher_exact(
    canary: Counts,
    baseline: Counts,
    alternative: Alternative,
) -> Result<TestResult, StatsError> {
    let c = checked(canary, "canary")?;
    let b = checked(baseline, "baseline")?;
    let total = u128::from(c.total) + u128::from(b.total);
    if total > FISHER_MAX_TOTAL {
        return Err(StatsError::TooLarge {
            what: format!("{total} trials, at most 2^53"),
        });
    }
    let (a, bb) = (c.events, c.total - c.events);
    let (cc, d) = (b.events, b.total - b.events);
    let result = |statistic: f64, p: f64| TestResult {
        test: TestKind::FisherExact,
        statistic,
        p_value: p.clamp(0.0, 1.0),
        alternative,
        method: Method::Exact,
        effect_size: None,
    };
    let (n1, n2, k) = (a + bb, cc + d, a + cc);
    if k == 0 || k == n1 + n2 {
        return Ok(result(f64::NAN, 1.0));
    }
    let odds = if cc > 0 && bb > 0 {
        (a as f64 * d as f64) / (cc as f64 * bb as f64)
    } else {
        f64::INFINITY
    };
    // Hypergeometric law of the canary's events given the margins.
    let lo = k.saturating_sub(n2);
    let hi = k.min(n1);
    if hi - lo >= FISHER_MAX_TERMS {
        return Err(StatsError::TooLarge {
            what: format!(
                "{} tables with these margins, at most {FISHER_MAX_TERMS}",
                hi - lo + 1
            ),
        });
    }
    let ln_total = ln_binom(n1 + n2, k);
    let pmf = |x: u64| (ln_binom(n1, x) + ln_binom(n2, k - x) - ln_total).exp();
    let p = match alternative {
        Alternative::Less => (lo..=a).map(pmf).sum(),
        Alternative::Greater => (a..=hi).map(pmf).sum(),
        Alternative::TwoSided => {
            let observed = pmf(a);
            let mode = ((k + 1) as f64 * (n1 + 1) as f64 / (n1 + n2 + 2) as f64) as u64;
            let at_mode = pmf(mode.clamp(lo, hi));
            if (observed - at_mode).abs() / observed.max(at_mode) <= 1e-14 {
                1.0
            } else {
                let limit = observed * (1.0 + 1e-14);
                (lo..=hi).map(pmf).filter(|&q| q <= limit).sum()
            }
        }
    };
    Ok(result(odds, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(events: u64, total: u64) -> Counts {
        Counts { events, total }
    }

    #[test]
    fn empty_margins_and_bad_counts_are_reported() {
        assert!(matches!(
            chi_square_2x2(counts(0, 100), counts(0, 100)),
            Err(StatsError::Undefined(_))
        ));
        assert!(matches!(
            two_proportion_z(counts(0, 100), counts(0, 100), Alternative::TwoSided),
            Err(StatsError::Undefined(_))
        ));
        let f =
            fisher_exact(counts(0, 100), counts(0, 100), Alternative::TwoSided).expect("defined");
        assert!(f.statistic.is_nan() && f.p_value == 1.0);
        assert_eq!(
            chi_square_2x2(counts(5, 2), counts(0, 1)),
            Err(StatsError::EventsExceedTotal {
                events: 5,
                total: 2
            })
        );
        assert_eq!(
            fisher_exact(counts(1, 2), counts(0, 0), Alternative::Less),
            Err(StatsError::NoTrials { side: "baseline" })
        );
    }

    #[test]
    fn fisher_refuses_tables_past_its_limit_without_overflow() {
        for (c, b) in [
            // Both margins in the millions: 6,000,001 possible tables.
            (counts(3_000_000, 6_000_000), counts(3_000_000, 6_000_000)),
            (counts(1, u64::MAX), counts(1, u64::MAX)),
            (counts(1, 1 << 53), counts(1, 1)),
        ] {
            let e = fisher_exact(c, b, Alternative::TwoSided).expect_err("too large");
            assert!(matches!(e, StatsError::TooLarge { .. }), "{e}");
            assert!(e.to_string().contains("chi-square"), "{e}");
        }
        // Large tables with few events are few tables: 7 terms for 10^8 trials.
        let r = fisher_exact(
            counts(5, 100_000_000),
            counts(1, 100_000_000),
            Alternative::Greater,
        )
        .expect("few events");
        assert!(r.p_value > 0.0 && r.p_value < 0.2, "{r:?}");
    }

    #[test]
    fn fisher_tea_tasting() {
        // scipy.stats.fisher_exact([[3, 1], [1, 3]]) = (9.0, 0.48571428571428565)
        let r = fisher_exact(counts(3, 4), counts(1, 4), Alternative::TwoSided).expect("defined");
        assert_eq!(r.statistic, 9.0);
        assert!((r.p_value - 0.48571428571428565).abs() < 1e-12);
        // alternative='greater': 0.24285714285714283
        let r = fisher_exact(counts(3, 4), counts(1, 4), Alternative::Greater).expect("defined");
        assert!((r.p_value - 0.24285714285714283).abs() < 1e-12);
    }
}
