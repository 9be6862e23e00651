//! The canary's state machine between looks: which phase it is in, since when, whether it is
//! holding, and what each decision does to that state. The Lambda `phase` function, the
//! backtest and the local demo all drive a canary through [`RunState::look`].
//!
//! [`Replay`] adds in-memory accumulation of observations for callers that receive one
//! interval at a time (backtests, the demo); the Lambda re-reads its window from CloudWatch.

use serde::{Deserialize, Serialize};

use crate::config::CanaryConfig;
use crate::error::ConfigError;
use crate::judge::sequential::SequentialState;
use crate::judge::{self, JudgeInput, Latest};
use crate::look;
use crate::observe::{SideObservations, check_side};
use crate::policy::{self, Action, Decision, PhaseState};

/// How a canary ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// All traffic went to the canary.
    Promoted,
    /// All traffic went back to the baseline.
    RolledBack,
}

/// The small, serialisable state of one canary between looks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// 1-based current phase.
    pub phase: usize,
    /// When the canary started (seconds on the caller's clock).
    pub started_at: u64,
    /// When the current phase started.
    pub phase_started_at: u64,
    /// When the current hold began, if holding.
    pub hold_started_at: Option<u64>,
    /// A decided advance that waits (`hold_before_full_traffic`) until this time.
    pub pending_advance_at: Option<u64>,
    /// Looks taken so far.
    pub looks: u32,
    /// Set once the canary is over.
    pub outcome: Option<Outcome>,
    /// The sequential tests' state (empty with fixed-horizon analysis).
    #[serde(default)]
    pub sequential: SequentialState,
}

impl RunState {
    /// A canary starting its first phase at `at`.
    pub fn new(at: u64) -> Self {
        Self {
            phase: 1,
            started_at: at,
            phase_started_at: at,
            hold_started_at: None,
            pending_advance_at: None,
            looks: 0,
            outcome: None,
            sequential: SequentialState::default(),
        }
    }

    /// The canary's current traffic percentage.
    pub fn weight(&self, config: &CanaryConfig) -> f64 {
        match self.outcome {
            Some(Outcome::Promoted) => 100.0,
            Some(Outcome::RolledBack) => 0.0,
            None => config.phase_weight(self.phase - 1),
        }
    }

    /// Whether the current phase's soak time is over at `at`.
    pub fn phase_complete(&self, config: &CanaryConfig, at: u64) -> bool {
        let phase = &config.canary_phases[self.phase - 1];
        at.saturating_sub(self.phase_started_at) >= phase.duration_seconds
    }

    /// Whether the current phase has no live baseline (the canary takes all traffic).
    pub fn full_traffic(&self, config: &CanaryConfig) -> bool {
        !look::baseline_is_live(self.weight(config))
    }

    /// Judges, decides and applies the decision to the state. Returns the decision and
    /// whether a new phase began (the caller then starts a fresh phase window).
    pub fn look(
        &mut self,
        config: &CanaryConfig,
        at: u64,
        input: &JudgeInput<'_>,
    ) -> (Decision, bool) {
        self.looks += 1;
        let report = judge::judge_with_state(config, input, &mut self.sequential);
        let state = PhaseState {
            phase: self.phase,
            elapsed_in_phase_seconds: at.saturating_sub(self.phase_started_at),
            total_elapsed_seconds: at.saturating_sub(self.started_at),
            hold_seconds: self.hold_started_at.map_or(0, |h| at.saturating_sub(h)),
        };
        let mut d = policy::decide(config, report, &state);
        if d.action == Action::Hold {
            self.hold_started_at.get_or_insert(at);
        } else {
            self.hold_started_at = None;
        }
        // A decision that needs an operator's approval changes nothing until it is given
        // (see [`RunState::approve`]).
        let new_phase = if d.requires_approval {
            false
        } else {
            self.transition(&mut d, at)
        };
        (d, new_phase)
    }

    /// Applies an approved decision taken at `at`. Returns whether a new phase began.
    pub fn approve(&mut self, d: &mut Decision, at: u64) -> bool {
        d.requires_approval = false;
        self.transition(d, at)
    }

    fn transition(&mut self, d: &mut Decision, at: u64) -> bool {
        let (action, new_phase, note) = self.apply_action(d.action, at, d.wait_seconds);
        d.action = action;
        if let Some(note) = note {
            d.reason = format!("{}; {note}", d.reason);
        }
        new_phase
    }

    /// Moves the state as `action` (taken at `at`) says: advance (after `wait_seconds`, if
    /// any), promote or roll back; other actions change nothing. Returns the action in effect
    /// (`continue` while an advance waits), whether a new phase began, and a note on waits.
    pub fn apply_action(
        &mut self,
        action: Action,
        at: u64,
        wait_seconds: u64,
    ) -> (Action, bool, Option<String>) {
        match action {
            Action::Advance => match self.pending_advance_at {
                Some(when) if at < when => (
                    Action::Continue,
                    false,
                    Some(format!("the shift happens at {when} s")),
                ),
                Some(_) => (Action::Advance, self.enter_next_phase(at), None),
                None if wait_seconds > 0 => {
                    self.pending_advance_at = Some(at + wait_seconds);
                    (
                        Action::Continue,
                        false,
                        Some(format!("waiting {wait_seconds} s before the shift")),
                    )
                }
                None => (Action::Advance, self.enter_next_phase(at), None),
            },
            Action::Promote => {
                self.outcome = Some(Outcome::Promoted);
                (action, false, None)
            }
            Action::Rollback => {
                self.outcome = Some(Outcome::RolledBack);
                (action, false, None)
            }
            Action::Continue | Action::Extend | Action::Hold => (action, false, None),
        }
    }

    fn enter_next_phase(&mut self, at: u64) -> bool {
        self.phase += 1;
        self.phase_started_at = at;
        self.pending_advance_at = None;
        true
    }
}

/// One interval of new observations, as in a backtest timeline line.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interval {
    /// End of the interval, in seconds since the canary started.
    pub at_seconds: u64,
    /// The baseline's new observations.
    #[serde(default, deserialize_with = "crate::observe::unique_metrics")]
    pub baseline: SideObservations,
    /// The canary's new observations.
    #[serde(default, deserialize_with = "crate::observe::unique_metrics")]
    pub canary: SideObservations,
}

impl Interval {
    /// Parses one timeline line and checks it against the config.
    pub fn from_json(line: &str, config: &CanaryConfig) -> Result<Self, ConfigError> {
        let de = &mut serde_json::Deserializer::from_str(line);
        let i: Self = serde_path_to_error::deserialize(&mut *de)
            .map_err(|e| ConfigError::new(e.path().to_string(), e.into_inner().to_string()))?;
        crate::observe::end(de)?;
        check_side("baseline", &i.baseline, config)?;
        check_side("canary", &i.canary, config)?;
        Ok(i)
    }
}

/// A canary driven one interval at a time, keeping the observations of the current phase and
/// the baseline seen in earlier phases (the reference once the canary takes all traffic).
#[derive(Debug, Clone)]
pub struct Replay {
    /// The run's state.
    pub state: RunState,
    phase_baseline: SideObservations,
    phase_canary: SideObservations,
    earlier_baseline: SideObservations,
    all_baseline: SideObservations,
    /// Compute Hodges-Lehmann shifts (off for bulk backtests).
    pub shift_estimate: bool,
}

impl Replay {
    /// A canary starting at time 0.
    pub fn new() -> Self {
        Self {
            state: RunState::new(0),
            phase_baseline: SideObservations::new(),
            phase_canary: SideObservations::new(),
            earlier_baseline: SideObservations::new(),
            all_baseline: SideObservations::new(),
            shift_estimate: false,
        }
    }

    /// Adds an interval's observations and takes a look. Returns `None` once the canary is
    /// over.
    pub fn step(&mut self, config: &CanaryConfig, interval: &Interval) -> Option<Decision> {
        if self.state.outcome.is_some() {
            return None;
        }
        look::merge(&mut self.phase_baseline, &interval.baseline);
        look::merge(&mut self.phase_canary, &interval.canary);
        look::merge_sorted(&mut self.all_baseline, &interval.baseline);
        let input = look::judge_input(look::Windows {
            canary_weight: self.state.weight(config),
            baseline: &self.phase_baseline,
            canary: &self.phase_canary,
            earlier_baseline: Some(&self.earlier_baseline),
            latest: Some(Latest {
                baseline: &interval.baseline,
                canary: &interval.canary,
                baseline_all: &self.all_baseline,
                warming_up: look::warming_up(
                    interval
                        .at_seconds
                        .saturating_sub(config.analysis.look_interval_seconds)
                        as i64,
                    self.state.phase_started_at as i64,
                ),
            }),
            shift_estimate: self.shift_estimate,
            phase_complete: self.state.phase_complete(config, interval.at_seconds),
            routed: true,
        });
        let (mut decision, mut new_phase) = self.state.look(config, interval.at_seconds, &input);
        if decision.requires_approval {
            // Backtests and the demo play an operator who approves at once.
            new_phase = self.state.approve(&mut decision, interval.at_seconds);
        }
        if new_phase {
            let finished = std::mem::take(&mut self.phase_baseline);
            look::merge(&mut self.earlier_baseline, &finished);
            self.phase_canary.clear();
        }
        Some(decision)
    }
}

impl Default for Replay {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{Fleet, MetricNames, Scenario};

    fn config() -> CanaryConfig {
        CanaryConfig::from_json(include_str!("../../../examples/demo-config.json"))
            .expect("demo config")
    }

    fn intervals(scenario: Scenario, n: u64) -> Vec<Interval> {
        let names = MetricNames {
            latency: "latency".into(),
            errors: "errors".into(),
        };
        let mut fleet = Fleet::new(scenario, names, 3);
        (1..=n)
            .map(|i| fleet.interval(i * 60, 60, if i <= 5 { 5.0 } else { 25.0 }))
            .collect()
    }

    #[test]
    fn state_survives_a_json_round_trip_between_looks() {
        // The Lambda carries RunState through Step Functions as JSON: decisions must not
        // depend on whether it was serialised in between.
        let c = config();
        let data = intervals(Scenario::healthy(50.0).with_regression(1.0, 3.0), 10);
        let mut straight = Replay::new();
        let mut hopped = Replay::new();
        for i in &data {
            let a = straight.step(&c, i).map(|d| (d.action, d.reason));
            let b = hopped.step(&c, i).map(|d| (d.action, d.reason));
            assert_eq!(a, b);
            let json = serde_json::to_string(&hopped.state).expect("serialise");
            hopped.state = serde_json::from_str(&json).expect("deserialise");
        }
        assert!(
            straight.state.sequential.looks > 0,
            "sequential state was used"
        );
    }

    #[test]
    fn advance_waits_for_hold_before_full_traffic() {
        let mut c = config();
        c.traffic_advancing.hold_before_full_traffic = 120;
        let data = intervals(Scenario::healthy(50.0), 14);
        let mut r = Replay::new();
        let mut phases = Vec::new();
        for i in &data {
            if let Some(d) = r.step(&c, i) {
                phases.push((i.at_seconds, d.phase, d.action));
            }
        }
        // Phase 2 ends at 600 s; the shift to 100 % happens 120 s later.
        assert!(
            phases
                .iter()
                .any(|p| p.0 == 600 && p.1 == 2 && p.2 == Action::Continue),
            "{phases:?}"
        );
        assert!(
            phases
                .iter()
                .any(|p| p.0 == 720 && p.1 == 2 && p.2 == Action::Advance),
            "{phases:?}"
        );
    }
}

#[cfg(test)]
mod closed_loop {
    //! The whole judge under continuous looks, closed loop (weights follow decisions), on the
    //! demo config: few runs, so these check gross behaviour; the rates themselves are
    //! measured by `bench/decision-quality`.
    use super::*;
    use crate::sim::{Fleet, MetricNames, Scenario};

    fn run(scenario: Scenario, seed: u64) -> (Option<Outcome>, u64) {
        let c = CanaryConfig::from_json(include_str!("../../../examples/demo-config.json"))
            .expect("config");
        let mut fleet = Fleet::new(scenario, MetricNames::for_config(&c).expect("names"), seed);
        let mut r = Replay::new();
        let mut at = 0;
        while r.state.outcome.is_none() && at < c.timeout_seconds {
            at += 60;
            let w = r.state.weight(&c);
            r.step(&c, &fleet.interval(at, 60, w));
        }
        (r.state.outcome, at)
    }

    #[test]
    fn healthy_canaries_with_shared_shocks_are_promoted() {
        for seed in 0..12 {
            let noisy = Scenario {
                load_swing: 0.6,
                swing_period_seconds: 480.0,
                shared_error_bursts: vec![(180, 300, 10.0), (600, 720, 5.0)],
                latency_drift_per_hour: 0.2,
                ..Scenario::healthy(50.0)
            };
            assert_eq!(
                run(noisy, seed),
                (Some(Outcome::Promoted), 900),
                "seed {seed}"
            );
        }
    }

    #[test]
    fn severe_regressions_roll_back_at_the_first_look() {
        for seed in 0..12 {
            let bad = Scenario::healthy(50.0).with_regression(387.0 / 185.0, 3.2 / 0.12);
            assert_eq!(
                run(bad, seed),
                (Some(Outcome::RolledBack), 60),
                "seed {seed}"
            );
        }
    }
}
