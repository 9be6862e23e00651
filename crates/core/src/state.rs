//! What the state machine carries between steps: the canary's [`Execution`] state, the
//! records of its looks, what a look returns, and the deliveries (notifications, CodeDeploy
//! reports) that failed on the way.
//!
//! Everything here arrives back as JSON from Step Functions, so it is never trusted:
//! [`Execution::from_value`] parses strictly and validates the state against its own config,
//! and a malformed or tampered state is a [`StateError`] naming the JSON path, never a panic
//! later on.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::config::{AnalysisMethod, CanaryConfig};
use crate::controller::RunState;
use crate::judge::Verdict;
use crate::policy::{Action, Decision};
use crate::ports::{AliasClaim, AliasState, Claim};
use crate::stats::TestKind;

/// The latest start a carried state may name, in seconds since the Unix epoch: far beyond any
/// real canary, small enough that no sum of times overflows.
const MAX_EPOCH: i64 = 100_000_000_000;

/// The latest a carried state's times may lie after the canary's start (about 30 years).
const MAX_OFFSET_SECONDS: u64 = 1_000_000_000;

/// Most recent look records kept in the execution state (Step Functions passes at most
/// 256 KB between states).
pub const HISTORY_LIMIT: usize = 50;

/// A CodeDeploy lifecycle hook that started the canary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookRef {
    /// Deployment id.
    pub deployment_id: String,
    /// Lifecycle event hook execution id.
    pub lifecycle_event_hook_execution_id: String,
}

/// Everything the state machine carries between looks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    /// The canary's config (validated).
    pub config: CanaryConfig,
    /// Where the canary stands.
    pub run: RunState,
    /// Wall-clock start of the canary, seconds since the Unix epoch.
    pub started_epoch: i64,
    /// The alias revision canary-gate itself last wrote or read.
    pub alias_revision: String,
    /// The most recent looks, oldest first.
    pub history: Vec<LookRecord>,
    /// Set when a CodeDeploy hook started the canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook: Option<HookRef>,
    /// When looks started failing (cleared by the next successful look).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_since: Option<i64>,
    /// When the previous look happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_look_epoch: Option<i64>,
    /// Where the data the sequential tests have taken in end: the next look's increment
    /// starts here, so minutes the metrics source left out (still being ingested) are read
    /// later instead of never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_through_epoch: Option<i64>,
    /// The latest decision with its full evidence (for reports of the canary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_decision: Option<Box<Decision>>,
    /// Notifications and CodeDeploy reports that failed in the step that produced this
    /// state (`status` and `history` show them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delivery_failures: Vec<DeliveryFailure>,
    /// The Step Functions execution running the canary: its hold on the alias is written in
    /// the alias's description with every routing change, so a step retried after its write
    /// landed knows the write for its own and another canary's start knows it is held.
    /// `None` (a canary run without an execution id): no hold is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Until when the last hold this execution knows it wrote runs: a hold of its own with
    /// another end is a write of its own whose answer never arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_until: Option<i64>,
}

/// What a step returns to the state machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepOutput {
    /// The updated execution state.
    pub execution: Execution,
    /// The action taken (`continue`, `advance`, …).
    pub action: Action,
    /// The decision was not applied: an operator must approve it first.
    pub awaiting_approval: bool,
    /// Seconds to wait before the next look.
    pub wait_seconds: u64,
    /// The text report of this look.
    pub report: String,
    /// Notifications that could not be published (the step still succeeded).
    pub notification_failures: Vec<DeliveryFailure>,
}

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

/// What kind of delivery failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryKind {
    /// A notification could not be published.
    #[serde(rename = "NotificationFailed")]
    Notification,
    /// A CodeDeploy lifecycle status could not be reported.
    #[serde(rename = "HookReportFailed")]
    HookReport,
}

impl DeliveryKind {
    /// The stable error type (`NotificationFailed`, `HookReportFailed`).
    pub fn error_type(self) -> &'static str {
        match self {
            DeliveryKind::Notification => "NotificationFailed",
            DeliveryKind::HookReport => "HookReportFailed",
        }
    }
}

/// A notification or CodeDeploy report that failed; the step itself still succeeded (a
/// failed delivery never blocks or undoes a rollback).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryFailure {
    /// What failed, as a stable error type.
    #[serde(rename = "errorType")]
    pub kind: DeliveryKind,
    /// What was being delivered: the notification's event (`rollback`) or the CodeDeploy
    /// deployment id.
    pub what: String,
    /// The cause, in words.
    pub cause: String,
}

impl DeliveryFailure {
    /// A failed notification of `event`.
    pub fn notification(event: &str, cause: impl std::fmt::Display) -> Self {
        Self {
            kind: DeliveryKind::Notification,
            what: event.to_string(),
            cause: cause.to_string(),
        }
    }

    /// A failed CodeDeploy report for `deployment_id`.
    pub fn hook_report(deployment_id: &str, cause: impl std::fmt::Display) -> Self {
        Self {
            kind: DeliveryKind::HookReport,
            what: deployment_id.to_string(),
            cause: cause.to_string(),
        }
    }
}

impl std::fmt::Display for DeliveryFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} ({})",
            self.what,
            self.cause,
            self.kind.error_type()
        )
    }
}

/// A carried state that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid carried state at {path}: {message}")]
pub struct StateError {
    /// JSON path of the offending value (`$.execution.run.phase`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl StateError {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The same error, located under `prefix` (`$.execution`).
    pub fn under(mut self, prefix: &str) -> Self {
        self.path = match self.path.strip_prefix('$') {
            Some(rest) => format!("{prefix}{rest}"),
            None => format!("{prefix}.{}", self.path),
        };
        self
    }
}

/// Parses any carried value strictly, naming the JSON path of what is wrong.
pub fn parse_value<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, StateError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." {
            "$".to_string()
        } else {
            format!("$.{path}")
        };
        StateError::new(path, e.into_inner().to_string())
    })
}

/// How long a hold on the alias lasts past the write that set it when its execution never
/// ends it: the canary's longest run ([`crate::hooks::longest_canary_seconds`]) and an hour
/// more; a week when the config has no bound (auto-rollback off waits for an operator).
fn hold_seconds(config: &CanaryConfig) -> i64 {
    let longest = crate::hooks::longest_canary_seconds(config).map_or(7 * 86_400, |(s, _)| s);
    i64::try_from(longest).unwrap_or(i64::MAX / 4) + 3_600
}

/// The longest execution id a carried state may name.
const MAX_OWNER_LEN: usize = 2_048;

impl Execution {
    /// The claim a write that keeps the canary going sets at `now_epoch`.
    pub fn hold(&self, now_epoch: i64) -> Claim {
        match &self.owner {
            Some(o) => Claim::Set(AliasClaim::hold(
                o,
                now_epoch.saturating_add(hold_seconds(&self.config)),
            )),
            None => Claim::Unchanged,
        }
    }

    /// The claim a write that ends the canary (promotion, rollback, an operator's override)
    /// sets.
    pub fn release(&self) -> Claim {
        match &self.owner {
            Some(o) => Claim::Set(AliasClaim::release(o)),
            None => Claim::Unchanged,
        }
    }

    /// Remembers a claim this execution has just written.
    pub fn written(&mut self, claim: &Claim) {
        if let Claim::Set(c) = claim {
            self.held_until = c.until_epoch;
        }
    }

    /// Carries on from a write of its own found on the alias (a retried step whose write
    /// landed): the alias's revision and the end of the hold it carries become this state's.
    pub fn adopt(&mut self, alias: &AliasState) {
        self.alias_revision = alias.revision_id.clone();
        self.held_until = alias.claim.as_ref().and_then(|c| c.until_epoch);
    }

    /// Whether the alias carries a claim of this execution other than the last one it knows
    /// it wrote: a write of its own that landed after this state was made (an attempt that
    /// died before answering). A change of routing that left the description alone is
    /// someone else's.
    pub fn lost_own_write(&self, alias: &AliasState) -> bool {
        self.owner.is_some()
            && self.wrote(alias)
            && alias.claim.as_ref().map(|c| c.until_epoch) != Some(self.held_until)
    }

    /// Whether the alias's claim says its last write was this execution's (always, for an
    /// execution without an owner: nothing else can tell).
    pub fn wrote(&self, alias: &AliasState) -> bool {
        match &self.owner {
            Some(o) => alias.claim.as_ref().is_some_and(|c| c.is_by(o)),
            None => true,
        }
    }

    /// Parses a carried execution state and checks it against its own config.
    pub fn from_value(value: &Value) -> Result<Self, StateError> {
        let exec: Execution = parse_value(value)?;
        if let Some(raw) = value.get("config") {
            exec.config
                .check_written(raw, "$.config")
                .map_err(|e| StateError::new(e.path, e.message))?;
        }
        exec.validate()?;
        Ok(exec)
    }

    /// Checks what the parser cannot: the config is valid and the run stands inside it.
    pub fn validate(&self) -> Result<(), StateError> {
        self.config.validate().map_err(|e| {
            let rest = e.path.trim_start_matches('$');
            let sep = if rest.is_empty() || rest.starts_with(['.', '[']) {
                ""
            } else {
                "."
            };
            StateError::new(format!("$.config{sep}{rest}"), e.message)
        })?;
        let phases = self.config.canary_phases.len();
        let run = &self.run;
        if run.phase == 0 || run.phase > phases {
            return Err(StateError::new(
                "$.run.phase",
                format!(
                    "phase {} is not one of the config's {phases} phases",
                    run.phase
                ),
            ));
        }
        if !(0..=MAX_EPOCH).contains(&self.started_epoch) {
            return Err(StateError::new(
                "$.startedEpoch",
                format!("{} is not a time between 1970 and 5138", self.started_epoch),
            ));
        }
        for (path, t) in [
            ("$.errorSince", self.error_since),
            ("$.lastLookEpoch", self.last_look_epoch),
            ("$.dataThroughEpoch", self.data_through_epoch),
        ] {
            if t.is_some_and(|t| !(0..=MAX_EPOCH).contains(&t)) {
                return Err(StateError::new(
                    path,
                    "not a time between 1970 and 5138 (seconds since the Unix epoch)",
                ));
            }
        }
        for (path, t) in [
            ("$.run.started_at", Some(run.started_at)),
            ("$.run.phase_started_at", Some(run.phase_started_at)),
            ("$.run.hold_started_at", run.hold_started_at),
            ("$.run.pending_advance_at", run.pending_advance_at),
        ] {
            if t.is_some_and(|t| t > MAX_OFFSET_SECONDS) {
                return Err(StateError::new(
                    path,
                    format!("more than {MAX_OFFSET_SECONDS} s after the start"),
                ));
            }
        }
        if run.phase_started_at < run.started_at {
            return Err(StateError::new(
                "$.run.phase_started_at",
                "the phase cannot start before the canary",
            ));
        }
        if let Some(h) = run.hold_started_at
            && h < run.started_at
        {
            return Err(StateError::new(
                "$.run.hold_started_at",
                "a hold cannot start before the canary",
            ));
        }
        if self.history.len() > HISTORY_LIMIT {
            return Err(StateError::new(
                "$.history",
                format!(
                    "{} looks, more than the {HISTORY_LIMIT} kept",
                    self.history.len()
                ),
            ));
        }
        if let Some(d) = &self.last_decision
            && (d.phase == 0 || d.phase > phases)
        {
            return Err(StateError::new(
                "$.lastDecision.phase",
                format!(
                    "phase {} is not one of the config's {phases} phases",
                    d.phase
                ),
            ));
        }
        if let Some(o) = &self.owner
            && (o.is_empty() || o.len() > MAX_OWNER_LEN || o.chars().any(char::is_control))
        {
            return Err(StateError::new(
                "$.owner",
                format!(
                    "an execution id of 1 to {MAX_OWNER_LEN} characters without control characters"
                ),
            ));
        }
        Ok(())
    }
}
