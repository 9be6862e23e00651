//! Backtests: replay a recorded metric timeline through the same judge and policy the Lambda
//! uses, one look per timeline line, and summarise each look as a compact record.
//!
//! Approvals are taken as given at once (an operator who always says yes), so a backtest
//! shows what the statistics decide; a rollback that would wait for confirmation still counts
//! as a rollback, which is also what happens when nobody answers in time.

use serde::{Deserialize, Serialize};

use crate::config::{AnalysisMethod, CanaryConfig};
use crate::controller::{Interval, Outcome, Replay};
use crate::judge::Verdict;
use crate::policy::{Action, Decision};
use crate::stats::TestKind;

/// One look of a backtest, as printed on its JSON line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LookRecord {
    /// When the look happened.
    pub at_seconds: u64,
    /// 1-based phase.
    pub phase: usize,
    /// Canary traffic percentage during the look.
    pub canary_weight: f64,
    /// The action taken.
    pub action: Action,
    /// Why.
    pub reason: String,
    /// Canary requests in the phase so far.
    pub canary_samples: u64,
    /// Whether the baseline was live.
    pub baseline_is_live: bool,
    /// Per-metric evidence.
    pub metrics: Vec<MetricEvidence>,
}

/// The essentials of one metric's finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricEvidence {
    /// Metric name.
    pub name: String,
    /// Classification.
    pub verdict: Verdict,
    /// Test used.
    pub test: TestKind,
    /// Fixed-horizon or sequential.
    pub method: AnalysisMethod,
    /// p-value, when the test ran.
    pub p_value: Option<f64>,
    /// Effect size, when defined.
    pub effect_size: Option<f64>,
    /// The deciding change as a fraction (0.1 = +10 %).
    pub relative_change: Option<f64>,
}

impl LookRecord {
    /// Summarises a decision taken at `at`.
    pub fn from_decision(at: u64, d: &Decision) -> Self {
        Self {
            at_seconds: at,
            phase: d.phase,
            canary_weight: d.canary_weight,
            action: d.action,
            reason: d.reason.clone(),
            canary_samples: d.canary_samples,
            baseline_is_live: d.report.baseline_is_live,
            metrics: d
                .report
                .metrics
                .iter()
                .map(|m| MetricEvidence {
                    name: m.name.clone(),
                    verdict: m.verdict,
                    test: m.test,
                    method: m.method,
                    p_value: m.result.map(|r| r.p_value),
                    effect_size: m.result.and_then(|r| r.effect_size).map(|e| e.value),
                    relative_change: m.headline.as_ref().map(|h| h.relative),
                })
                .collect(),
        }
    }
}

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
