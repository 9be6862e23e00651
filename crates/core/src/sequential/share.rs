//! The sequential test on the canary's share of events.
//!
//! In interval i the canary receives a share ρᵢ = n_c / (n_c + n_b) of the requests. Given
//! the eᵢ events of that interval, the canary's count is Binomial(eᵢ, θᵢ(r)) with
//! θᵢ(r) = ρᵢ r / (ρᵢ r + 1 − ρᵢ), where r is the ratio of the canary's event rate to the
//! baseline's. H0: r <= r0 = 1 + tolerance (higher is worse; the mirror for lower is worse).
//! Intervals where one version had no traffic carry no information and are skipped.

use serde::{Deserialize, Serialize};

use super::{Direction, Mixture, RATIO_GRID};
use crate::error::StatsError;
use crate::stats::Counts;

/// One direction's mixture over rate ratios r = r0 · g (or r0 / g).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OneSided {
    /// Null boundary of the rate ratio.
    r0: f64,
    /// true: alternatives above r0; false: below.
    upward: bool,
    mixture: Mixture,
}

impl OneSided {
    fn new(r0: f64, upward: bool) -> Self {
        Self {
            r0,
            upward,
            mixture: Mixture::new(RATIO_GRID.len()),
        }
    }

    fn ratio(&self, g: f64) -> f64 {
        if self.upward {
            self.r0 * g
        } else {
            self.r0 / g
        }
    }

    fn update(&mut self, rho: f64, kc: f64, kb: f64) {
        let theta = |r: f64| rho * r / (rho * r + 1.0 - rho);
        let t0 = theta(self.r0);
        let (l0, m0) = (t0.ln(), (1.0 - t0).ln());
        let incs: Vec<f64> = RATIO_GRID
            .iter()
            .map(|&g| {
                let t = theta(self.ratio(g));
                kc * (t.ln() - l0) + kb * ((1.0 - t).ln() - m0)
            })
            .collect();
        self.mixture.add(incs.into_iter());
    }
}

/// Sequential test that the canary's event rate is within `tolerance` of the baseline's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShareTest {
    /// Which departures count.
    pub direction: Direction,
    /// Relative tolerance (0.05 = 5 %).
    pub tolerance: f64,
    sides: Vec<OneSided>,
    /// Totals over the informative intervals (for the rate-ratio estimate).
    canary: Counts,
    baseline: Counts,
}

impl ShareTest {
    /// A test for the given direction and tolerance (a fraction, >= 0; below 1 for
    /// lower-is-worse).
    pub fn new(direction: Direction, tolerance: f64) -> Result<Self, StatsError> {
        if !(tolerance.is_finite() && tolerance >= 0.0)
            || (direction != Direction::HigherIsWorse && tolerance >= 1.0)
        {
            return Err(StatsError::Undefined(format!(
                "tolerance {tolerance} is out of range"
            )));
        }
        let up = || OneSided::new(1.0 + tolerance, true);
        let down = || OneSided::new(1.0 - tolerance, false);
        let sides = match direction {
            Direction::HigherIsWorse => vec![up()],
            Direction::LowerIsWorse => vec![down()],
            Direction::Either => vec![up(), down()],
        };
        Ok(Self {
            direction,
            tolerance,
            sides,
            canary: Counts::default(),
            baseline: Counts::default(),
        })
    }

    /// Adds one interval's new counts.
    pub fn update(&mut self, canary: Counts, baseline: Counts) {
        if canary.total == 0
            || baseline.total == 0
            || canary.events.saturating_add(baseline.events) == 0
        {
            return;
        }
        let rho = canary.total as f64 / (canary.total as f64 + baseline.total as f64);
        for s in &mut self.sides {
            s.update(rho, canary.events as f64, baseline.events as f64);
        }
        self.canary.events = self.canary.events.saturating_add(canary.events);
        self.canary.total = self.canary.total.saturating_add(canary.total);
        self.baseline.events = self.baseline.events.saturating_add(baseline.events);
        self.baseline.total = self.baseline.total.saturating_add(baseline.total);
    }

    /// The anytime-valid p-value (Bonferroni over the two sides for `Either`).
    pub fn p_value(&self) -> f64 {
        let k = self.sides.len() as f64;
        self.sides
            .iter()
            .map(|s| s.mixture.p_value() * k)
            .fold(1.0, f64::min)
    }

    /// The current e-value of the strongest side.
    pub fn e_value(&self) -> f64 {
        self.sides
            .iter()
            .map(|s| s.mixture.log_e().exp())
            .fold(0.0, f64::max)
    }

    /// The rate ratio canary / baseline over the informative intervals.
    pub fn rate_ratio(&self) -> Option<f64> {
        let (c, b) = (self.canary.rate()?, self.baseline.rate()?);
        (b > 0.0).then(|| c / b)
    }

    /// The alternative the data favour most (for reports), as a rate ratio.
    pub fn most_likely_ratio(&self) -> Option<f64> {
        let s = self.sides.first()?;
        Some(s.ratio(RATIO_GRID[s.mixture.best()]))
    }
}
