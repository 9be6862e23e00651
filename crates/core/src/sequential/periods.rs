//! The sequential test on per-period comparisons of percentiles (CloudWatch's per-minute
//! statistics): the period, not the request, is the unit.
//!
//! In period i the canary's q-percentile either exceeds (1 + tolerance) × the baseline's
//! q'-percentile or not. If the canary is not slower than the baseline — its values are
//! stochastically no larger — the exceedance happens with probability at most p₀ᵢ, the exact
//! distribution-free probability for two samples of one distribution of the period's sizes
//! ([`crate::stats::order_statistic_exceeds`]); the tolerance only makes it rarer. The
//! alternatives multiply the odds: pᵢ(ψ) = ψ p₀ᵢ / (1 − p₀ᵢ + ψ p₀ᵢ), ψ > 1. Each component's
//! likelihood ratio is a non-negative supermartingale under the null (a period's p₀ᵢ depends
//! only on its sizes), and so is their average.
//!
//! What the guarantee needs: periods independent given their sizes (shared per-minute load
//! swings hit both versions of one period, so they cancel), and CloudWatch's percentile
//! approximation finer than the tolerance.

use serde::{Deserialize, Serialize};

use super::Mixture;

/// Odds multipliers of the alternatives: moderate ones for persistent shifts, large ones so a
/// comparison that is nearly impossible under the null (the canary's median above the
/// baseline's p95) is strong evidence at once.
const ODDS_GRID: [f64; 14] = [
    1.25, 1.5, 2.0, 3.0, 4.0, 6.0, 10.0, 30.0, 100.0, 1e3, 1e4, 1e5, 1e6, 1e8,
];

/// The smallest null probability a period is given: below it floating-point rounding of
/// the exact value could make it too small.
const MIN_P0: f64 = 1e-12;

/// Sequential test that per-period exceedances happen no more often than chance allows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodTest {
    /// Periods compared.
    pub periods: u32,
    /// Periods where the canary's percentile exceeded the limit.
    pub exceeded: u32,
    /// Sum of the periods' null probabilities (the exceedances expected by chance).
    pub expected: f64,
    mixture: Mixture,
}

impl Default for PeriodTest {
    fn default() -> Self {
        Self {
            periods: 0,
            exceeded: 0,
            expected: 0.0,
            mixture: Mixture::new(ODDS_GRID.len()),
        }
    }
}

impl PeriodTest {
    /// Adds one period: whether it exceeded, and its null probability of doing so.
    pub fn update(&mut self, exceeded: bool, p0: f64) {
        self.update_ladder(&[p0], exceeded.then_some(0));
    }

    /// Adds one period's ladder: the null probabilities of reaching each rung (falling) and
    /// the highest rung reached. An alternative ψ multiplies the odds of reaching every rung,
    /// P_ψ(rung ≥ l) = g(tₗ) with g(t) = ψt / (1 − t + ψt); its likelihood ratio grows with
    /// the rung (g is concave), so it stays a supermartingale when the canary's values are
    /// stochastically smaller than the baseline's.
    pub fn update_ladder(&mut self, tails: &[f64], level: Option<usize>) {
        // Rungs past the first one at the floor are merged into it (conservative).
        let mut t: Vec<f64> = Vec::with_capacity(tails.len());
        for &x in tails {
            if !x.is_finite() || t.last().is_some_and(|&l| x > l) {
                break;
            }
            t.push(x.clamp(MIN_P0, 1.0 - MIN_P0));
            if x <= MIN_P0 {
                break;
            }
        }
        if t.is_empty() {
            return;
        }
        let level = level.map(|l| l.min(t.len() - 1));
        let g = |psi: f64, x: f64| psi * x / (1.0 - x + psi * x);
        let incs: Vec<f64> = ODDS_GRID
            .iter()
            .map(|&psi| match level {
                None => ((1.0 - g(psi, t[0])) / (1.0 - t[0])).ln(),
                Some(l) => {
                    let hi = t[l];
                    let lo = t.get(l + 1).copied().unwrap_or(0.0);
                    if hi - lo <= 1e-9 * hi {
                        // The derivative of g at hi.
                        (psi / (1.0 - hi + psi * hi).powi(2)).ln()
                    } else {
                        ((g(psi, hi) - g(psi, lo)) / (hi - lo)).ln()
                    }
                }
            })
            .collect();
        self.mixture.add(incs.into_iter());
        self.periods += 1;
        self.exceeded += u32::from(level.is_some());
        self.expected += t[0];
    }

    /// The current e-value.
    pub fn e_value(&self) -> f64 {
        self.mixture.log_e().exp()
    }

    /// The anytime-valid p-value.
    pub fn p_value(&self) -> f64 {
        self.mixture.p_value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exceedances_at_chance_build_no_evidence() {
        let mut t = PeriodTest::default();
        for i in 0..200 {
            t.update(i % 2 == 0, 0.5);
        }
        assert!(t.p_value() > 0.2, "{}", t.p_value());
        assert_eq!((t.periods, t.exceeded), (200, 100));
    }

    #[test]
    fn one_impossible_exceedance_is_strong_evidence() {
        let mut t = PeriodTest::default();
        t.update(true, 1e-40);
        assert!(t.p_value() < 1e-6, "{}", t.p_value());
        let mut u = PeriodTest::default();
        u.update(true, 0.5);
        assert!(
            u.p_value() > 0.5,
            "one likely exceedance proves nothing: {}",
            u.p_value()
        );
    }

    #[test]
    fn a_high_rung_counts_more_than_a_low_one() {
        let tails = [0.48, 0.01, 1e-6];
        let (mut low, mut high) = (PeriodTest::default(), PeriodTest::default());
        low.update_ladder(&tails, Some(0));
        high.update_ladder(&tails, Some(2));
        assert!(
            high.e_value() > 100.0 * low.e_value(),
            "{} {}",
            high.e_value(),
            low.e_value()
        );
        // The ladder with one rung is the single comparison.
        let (mut a, mut b) = (PeriodTest::default(), PeriodTest::default());
        a.update_ladder(&[0.3], Some(0));
        b.update(true, 0.3);
        assert_eq!(a, b);
    }

    #[test]
    fn each_alternative_has_expectation_one_under_the_null() {
        // Σ over outcomes of P0(outcome) · LR(outcome) = 1 for every component.
        let tails = [0.47, 0.02, 3e-5];
        let probs = [1.0 - 0.47, 0.47 - 0.02, 0.02 - 3e-5, 3e-5];
        for (i, psi) in ODDS_GRID.iter().enumerate() {
            let mut e = 0.0;
            for (o, p) in probs.iter().enumerate() {
                let mut t = PeriodTest::default();
                t.update_ladder(&tails, o.checked_sub(1));
                e += p * t.mixture.log_lr[i].exp();
            }
            assert!((e - 1.0).abs() < 1e-9, "psi {psi}: {e}");
        }
    }

    #[test]
    fn persistent_exceedance_is_found() {
        let mut t = PeriodTest::default();
        for _ in 0..10 {
            t.update(true, 0.48);
        }
        assert!(t.p_value() < 0.01, "{}", t.p_value());
    }
}
