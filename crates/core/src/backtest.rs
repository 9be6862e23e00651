//! Backtests: replay a recorded metric timeline through the same judge and policy the Lambda
//! uses, one look per timeline line, and summarise each look as a compact record.
//!
//! Approvals are taken as given at once (an operator who always says yes), so a backtest
//! shows what the statistics decide; a rollback that would wait for confirmation still counts
//! as a rollback, which is also what happens when nobody answers in time.

use serde::{Deserialize, Serialize};

use crate::config::CanaryConfig;
use crate::controller::{Interval, Outcome, Replay};
pub use crate::state::{LookRecord, MetricEvidence};

/// How a backtest ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ending {
    /// `promoted`, `rolled_back` or `incomplete`.
    pub outcome: String,
    /// Time of the last look.
    pub at_seconds: u64,
    /// Why.
    pub reason: String,
}

/// Replays intervals one by one; call [`Backtest::finish`] at the end.
#[derive(Debug, Clone, Default)]
pub struct Backtest {
    replay: Replay,
    last_at: u64,
    last_reason: String,
}

impl Backtest {
    /// A fresh backtest.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one interval; returns the look's record, or `None` once the canary is over (later
    /// intervals are ignored). Intervals must come in time order.
    pub fn step(&mut self, config: &CanaryConfig, interval: &Interval) -> Option<LookRecord> {
        let d = self.replay.step(config, interval)?;
        self.last_at = interval.at_seconds;
        self.last_reason = d.reason.clone();
        Some(LookRecord::from_decision(interval.at_seconds, &d))
    }

    /// The canary's traffic percentage now (what the next interval is observed at).
    pub fn weight(&self, config: &CanaryConfig) -> f64 {
        self.replay.state.weight(config)
    }

    /// Whether the canary has ended.
    pub fn outcome(&self) -> Option<Outcome> {
        self.replay.state.outcome
    }

    /// The closing record.
    pub fn finish(&self) -> Ending {
        let (outcome, reason) = match self.outcome() {
            Some(Outcome::Promoted) => ("promoted", self.last_reason.clone()),
            Some(Outcome::RolledBack) => ("rolled_back", self.last_reason.clone()),
            None => (
                "incomplete",
                format!(
                    "the timeline ended in phase {} before a final decision (last: {})",
                    self.replay.state.phase,
                    if self.last_reason.is_empty() {
                        "no look"
                    } else {
                        &self.last_reason
                    }
                ),
            ),
        };
        Ending {
            outcome: outcome.to_string(),
            at_seconds: self.last_at,
            reason,
        }
    }
}
