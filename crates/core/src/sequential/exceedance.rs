//! The sequential test on a Bernoulli rate with H0: p <= p0, mixing over alternatives
//! p = p0 + (1 − p0)·f for a grid of fractions f. Its only state is the number of successes
//! and failures, so it is cheap to carry between looks.

use serde::{Deserialize, Serialize};

use super::Mixture;
use crate::error::StatsError;

/// Fractions of the gap between p0 and 1 used as alternatives.
const GAP_GRID: [f64; 16] = [
    0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.75, 0.9, 0.97,
];

/// Sequential test that successes happen with probability at most `p0`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExceedanceTest {
    /// The null boundary.
    pub p0: f64,
    /// Successes so far.
    pub successes: f64,
    /// Failures so far.
    pub failures: f64,
    /// Log-likelihood increments are divided by this (>= 1) to allow for overdispersion
    /// (quasi-likelihood); 1 for independent observations.
    pub dispersion: f64,
    mixture: Mixture,
}

impl ExceedanceTest {
    /// A test of H0: p <= p0 for 0 < p0 < 1.
    pub fn new(p0: f64) -> Result<Self, StatsError> {
        if !(p0 > 0.0 && p0 < 1.0) {
            return Err(StatsError::Undefined(format!(
                "null rate {p0} must be in (0, 1)"
            )));
        }
        Ok(Self {
            p0,
            successes: 0.0,
            failures: 0.0,
            dispersion: 1.0,
            mixture: Mixture::new(GAP_GRID.len()),
        })
    }

    fn alternative(&self, f: f64) -> f64 {
        self.p0 + (1.0 - self.p0) * f
    }

    /// Adds observations: `successes` out of `successes + failures`.
    pub fn update(&mut self, successes: f64, failures: f64) {
        if successes + failures <= 0.0 {
            return;
        }
        let (l0, m0) = (self.p0.ln(), (1.0 - self.p0).ln());
        let d = self.dispersion.max(1.0);
        let incs: Vec<f64> = GAP_GRID
            .iter()
            .map(|&f| {
                let p = self.alternative(f);
                (successes * (p.ln() - l0) + failures * ((1.0 - p).ln() - m0)) / d
            })
            .collect();
        self.mixture.add(incs.into_iter());
        self.successes += successes;
        self.failures += failures;
    }

    /// The anytime-valid p-value.
    pub fn p_value(&self) -> f64 {
        self.mixture.p_value()
    }

    /// The current e-value.
    pub fn e_value(&self) -> f64 {
        self.mixture.log_e().exp()
    }

    /// The observed success rate.
    pub fn observed(&self) -> Option<f64> {
        let n = self.successes + self.failures;
        (n > 0.0).then(|| self.successes / n)
    }
}
