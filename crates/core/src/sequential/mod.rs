//! Anytime-valid (sequential) tests: their false-alarm guarantee holds however often the
//! controller looks, unlike a fixed-horizon test repeated at every look.
//!
//! Both tests are mixture likelihood ratios (Robbins' method of mixtures) over one-sided
//! alternatives. Each mixture component is a likelihood ratio against the boundary of the
//! null, which by the monotone likelihood ratio property is a non-negative supermartingale
//! under every parameter inside the null; so is their average. Ville's inequality then bounds
//! the probability that the mixture ever reaches 1/α by α, at any stopping time. The reported
//! anytime-valid p-value is 1 / (largest e-value so far).
//!
//! - [`ShareTest`]: counts (errors, throttles, business events), conditional on the total
//!   number of events in each interval — the canary's share of events given its realised
//!   share of traffic (Lindon & Malek, "Anytime-valid inference for multinomial count data",
//!   2022; Lindon, Sanden & Shirikian, "Rapid regression detection in software deployments
//!   through sequential testing", KDD 2022). Load swings and error bursts that hit both
//!   versions change the totals, not the share, so they do not read as a regression.
//! - [`ExceedanceTest`]: Bernoulli observations with success probability p under
//!   H0: p <= p0. Used for distributions (does a canary request exceed (1 + tolerance) times
//!   an upper confidence bound of the baseline's q-quantile more often than 1 − q?) and for
//!   counts against a baseline observed earlier (the 100 % phase).
//! - [`PeriodTest`]: per-period percentile summaries (what CloudWatch returns), one
//!   Bernoulli comparison per period with its exact distribution-free null probability.

mod exceedance;
mod periods;
mod share;

pub use exceedance::ExceedanceTest;
pub use periods::PeriodTest;
pub use share::ShareTest;

use serde::{Deserialize, Serialize};

pub(crate) use crate::config::Direction;

/// A mixture of likelihood-ratio components with fixed prior weights, kept in log space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Mixture {
    /// Log likelihood ratio of each component against the null boundary.
    pub(crate) log_lr: Vec<f64>,
    /// Largest log e-value seen so far (the e-process is read at its running maximum for the
    /// p-value; the stopping rule "reject once it crosses" makes that valid).
    max_log_e: f64,
}

impl Mixture {
    pub(crate) fn new(components: usize) -> Self {
        Self {
            log_lr: vec![0.0; components],
            max_log_e: 0.0,
        }
    }

    /// Adds each component's log likelihood ratio increment.
    pub(crate) fn add(&mut self, increments: impl Iterator<Item = f64>) {
        for (l, inc) in self.log_lr.iter_mut().zip(increments) {
            *l += inc;
        }
        self.max_log_e = self.max_log_e.max(self.log_e());
    }

    /// log of the equally weighted mixture e-value.
    pub(crate) fn log_e(&self) -> f64 {
        let n = self.log_lr.len() as f64;
        let max = self
            .log_lr
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        if !max.is_finite() {
            return max;
        }
        max + self
            .log_lr
            .iter()
            .map(|l| (l - max).exp())
            .sum::<f64>()
            .ln()
            - n.ln()
    }

    /// The anytime-valid p-value: 1 / largest e-value so far.
    pub(crate) fn p_value(&self) -> f64 {
        (-self.max_log_e).exp().min(1.0)
    }

    /// The component with the largest likelihood so far (index into the grid).
    pub(crate) fn best(&self) -> usize {
        self.log_lr
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i)
    }
}

/// Multiples of the null boundary used as the alternatives of the mixtures: roughly
/// log-spaced from a 10 % to a 25-fold departure, so that moderate persistent regressions and
/// large sudden ones both find a component close to them. Fewer components cost less
/// evidence (the mixture pays log(#components) against the best one).
pub(crate) const RATIO_GRID: [f64; 12] = [
    1.1, 1.2, 1.35, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 6.0, 10.0, 25.0,
];

#[cfg(test)]
pub(crate) mod sim;
#[cfg(test)]
mod tests;
