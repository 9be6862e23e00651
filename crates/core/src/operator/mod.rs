//! The operator's controls over a deployed canary, over the [`Executions`] port: start a
//! canary, read its status and the decisions so far, answer an approval, abort (roll back
//! now) or promote (skip to 100 %).
//!
//! The state of a running canary is the state machine's own: the [`Execution`] that the
//! `phase` function returned last, found in the execution's history. Overrides are audited:
//! the execution is stopped with a cause that names who did what, the alias is written with
//! the revision read just before (never blindly), and a notification says who ran it. A
//! failed notification is reported, never undoes an override.

use serde::Serialize;
use serde_json::{Value, json};
use thiserror::Error;

use crate::config::{CanaryConfig, Target};
use crate::judge::Verdict;
use crate::notify;
use crate::policy::Action;
use crate::ports::{
    ExecutionInfo, Executions, HistoryEvent, HistoryKind, Notifier, PortError, RunStatus,
    TrafficRouter,
};
use crate::state::{DeliveryFailure, Execution};
use crate::step::{StepError, apply_override};

pub mod approver;
mod history;

pub use history::{decisions, latest_execution, pending_approval, status};

/// The error a stop records when an operator rolled the canary back.
pub const ABORTED_ERROR: &str = "CanaryAbortedByOperator";
/// The error a stop records when an operator promoted the canary.
pub const PROMOTED_ERROR: &str = "CanaryPromotedByOperator";
/// The error a rejection sends through the task token (the state machine catches it).
pub const REJECTED_ERROR: &str = "Rejected";

/// Why an operator command did nothing.
#[derive(Debug, Error)]
pub enum OperatorError {
    /// The orchestrator or another AWS API failed.
    #[error("{0}")]
    Port(#[from] PortError),
    /// Reading or writing the alias failed.
    #[error("{0}")]
    Step(#[from] StepError),
    /// The execution carries no canary state yet (it has not passed its first step).
    #[error("execution {0} has no canary state yet (it has not finished its first step)")]
    NoState(String),
    /// The execution has ended; the command needs a running one.
    #[error("execution {id} has already ended ({status:?})")]
    NotRunning {
        /// The execution.
        id: String,
        /// How it ended.
        status: RunStatus,
    },
    /// Nothing waits for an answer.
    #[error("execution {0} is not waiting for an approval")]
    NoPendingApproval(String),
    /// A promotion was refused because critical gates fail.
    #[error(
        "refusing to promote: critical metric(s) {} fail in the latest analysis; pass --force to override (audited)",
        .0.join(", ")
    )]
    CriticalGatesFailing(Vec<String>),
    /// Another canary runs on the same alias.
    #[error("a canary is already running on {function}:{alias}: {execution}")]
    AlreadyRunning {
        /// Function name.
        function: String,
        /// Alias name.
        alias: String,
        /// The running execution.
        execution: String,
    },
    /// The config has no target.
    #[error("the config has no target (function_name, alias, baseline_version, canary_version)")]
    NoTarget,
}

/// The longest free text an operator command takes (an actor's name, a comment, a reason):
/// Step Functions keeps a stop cause of up to 32 768 characters; a reason is a sentence.
pub const MAX_TEXT: usize = 1_000;

/// Whether `s` is one line of plain text: at most [`MAX_TEXT`] characters and no control
/// characters (it is kept in the execution history, notifications and audit lines). The
/// error says what is wrong; the caller names the field.
pub fn plain_text(s: &str) -> Result<(), String> {
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Err(format!(
            "contains the control character U+{:04X}; give one line of plain text",
            c as u32
        ));
    }
    if s.chars().count() > MAX_TEXT {
        return Err(format!("longer than {MAX_TEXT} characters"));
    }
    Ok(())
}

/// Who runs an operator command: a verified AWS identity (through the approver function), or
/// only a name the caller gave.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Actor {
    /// The verified ARN, or the claimed name when nothing was verified.
    pub identity: String,
    /// Whether `identity` was verified.
    pub verified: bool,
    /// The name the caller gave beside a verified identity (`--actor`), never checked.
    pub claimed: Option<String>,
}

impl Actor {
    /// A name given by the caller, not verified.
    pub fn claimed(name: &str) -> Self {
        Self {
            identity: name.to_string(),
            verified: false,
            claimed: None,
        }
    }

    /// A verified identity, with the name the caller gave, if any.
    pub fn verified(arn: &str, claimed: Option<&str>) -> Self {
        Self {
            identity: arn.to_string(),
            verified: true,
            claimed: claimed.filter(|c| !c.is_empty()).map(str::to_string),
        }
    }

    /// How it reads in stop causes, notifications and audit lines.
    pub fn display(&self) -> String {
        match (&self.claimed, self.verified) {
            (Some(c), true) => format!("{} (verified; claims to be {c})", self.identity),
            (None, true) => format!("{} (verified)", self.identity),
            _ => self.identity.clone(),
        }
    }
}

/// An approval the state machine waits for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PendingApproval {
    /// The task token to answer with: a bearer credential, never printed.
    #[serde(skip_serializing)]
    pub task_token: String,
    /// The action that waits.
    pub action: Action,
    /// When it was requested.
    pub requested_epoch: i64,
}

/// One decision of a canary, for `history`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionEntry {
    /// When it was taken.
    pub epoch: i64,
    /// The state that took it (`Initialise`, `Analyse`, `ApplyApproved`, …, or `Operator`).
    pub state: String,
    /// The action.
    pub action: String,
    /// Phase (1-based) after the decision, when known.
    pub phase: Option<usize>,
    /// Canary traffic after the decision, when known.
    pub weight: Option<f64>,
    /// Why.
    pub summary: String,
    /// Notifications and CodeDeploy reports that failed in this step.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<DeliveryFailure>,
}

/// What `status` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CanaryStatus {
    /// The execution.
    pub execution: String,
    /// Its name.
    pub name: String,
    /// Where it stands.
    pub status: RunStatus,
    /// Start (epoch seconds).
    pub started_epoch: i64,
    /// End (epoch seconds), if ended.
    pub stopped_epoch: Option<i64>,
    /// Target function.
    pub function: Option<String>,
    /// Target alias.
    pub alias: Option<String>,
    /// Baseline version.
    pub baseline_version: Option<String>,
    /// Canary version.
    pub canary_version: Option<String>,
    /// Current phase (1-based) and the number of phases.
    pub phase: Option<(usize, usize)>,
    /// Canary traffic in percent.
    pub weight: Option<f64>,
    /// The latest decision.
    pub last_decision: Option<DecisionEntry>,
    /// Seconds until the current phase's soak is over (0 when over).
    pub phase_left_seconds: Option<i64>,
    /// Seconds until the canary's overall timeout.
    pub timeout_left_seconds: Option<i64>,
    /// An approval it waits for.
    pub pending_approval: Option<PendingApproval>,
    /// Notifications and CodeDeploy reports that failed in the latest step.
    pub delivery_failures: Vec<DeliveryFailure>,
    /// The error it ended with.
    pub error: Option<String>,
    /// The cause it ended with.
    pub cause: Option<String>,
}

/// The execution name `start` uses: function, alias, canary version and start time, in the
/// characters Step Functions allows (at most 80).
pub fn execution_name(config: &CanaryConfig, now_epoch: i64) -> String {
    let base = config
        .target
        .as_ref()
        .map(|t| format!("{}-{}-v{}", t.function_name, t.alias, t.canary_version))
        .unwrap_or_else(|| "canary".to_string());
    let clean: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let suffix = format!("-{now_epoch}");
    let keep = 80 - suffix.len();
    format!("{}{suffix}", &clean[..clean.len().min(keep)])
}

/// The execution `id` when its input targets the same function and alias as `target`.
pub async fn canary_on_alias<E: Executions>(
    executions: &E,
    id: &str,
    target: &Target,
) -> Result<Option<String>, PortError> {
    let info = executions.describe(id).await?;
    let other = info
        .input
        .as_ref()
        .and_then(|i| i.get("config"))
        .and_then(|c| c.get("target"));
    let same = |field: &str, value: &str| {
        other.and_then(|t| t.get(field)).and_then(Value::as_str) == Some(value)
    };
    Ok(
        (same("function_name", &target.function_name) && same("alias", &target.alias))
            .then_some(info.id),
    )
}

/// Starts a canary for `config` (validated), refusing when a running canary already targets
/// the same function and alias. Returns the execution id.
pub async fn start<E: Executions>(
    executions: &E,
    config: &CanaryConfig,
    now_epoch: i64,
) -> Result<String, OperatorError> {
    start_by(executions, config, now_epoch, None).await
}

/// [`start`], recording who started it in the execution input (`started_by`, read by the
/// approver's four-eyes check).
pub async fn start_by<E: Executions>(
    executions: &E,
    config: &CanaryConfig,
    now_epoch: i64,
    by: Option<&Actor>,
) -> Result<String, OperatorError> {
    let target = config.target.as_ref().ok_or(OperatorError::NoTarget)?;
    for running in executions.list(true, 100).await? {
        if let Some(execution) = canary_on_alias(executions, &running.id, target).await? {
            return Err(OperatorError::AlreadyRunning {
                function: target.function_name.clone(),
                alias: target.alias.clone(),
                execution,
            });
        }
    }
    let mut input = json!({ "config": config, "hook": null });
    if let Some(a) = by.filter(|a| a.verified) {
        input[approver::STARTED_BY] =
            json!({ "verified_identity": a.identity, "claimed_actor": a.claimed });
    }
    Ok(executions
        .start(&execution_name(config, now_epoch), &input)
        .await?)
}

/// Answers the pending approval: approve (`Ok`) or reject. Returns what was answered.
pub async fn answer<E: Executions>(
    executions: &E,
    id: &str,
    approve: bool,
    actor: &str,
    comment: &str,
    now_epoch: i64,
) -> Result<PendingApproval, OperatorError> {
    answer_as(
        executions,
        id,
        approve,
        &Actor::claimed(actor),
        comment,
        now_epoch,
    )
    .await
}

/// [`answer`] by an [`Actor`]: a verified one is recorded with its ARN as `approvedBy`, the
/// claimed name beside it.
pub async fn answer_as<E: Executions>(
    executions: &E,
    id: &str,
    approve: bool,
    actor: &Actor,
    comment: &str,
    now_epoch: i64,
) -> Result<PendingApproval, OperatorError> {
    let info = executions.describe(id).await?;
    if info.status.is_finished() {
        return Err(OperatorError::NotRunning {
            id: id.to_string(),
            status: info.status,
        });
    }
    let events = executions.history(id).await?;
    let pending =
        pending_approval(&events).ok_or_else(|| OperatorError::NoPendingApproval(id.into()))?;
    let outcome = if approve {
        let mut out =
            json!({ "approvedBy": actor.identity, "approvedAt": now_epoch, "comment": comment });
        if actor.verified {
            out["verified"] = json!(true);
            out["claimedActor"] = json!(actor.claimed);
        }
        Ok(out)
    } else {
        Err((
            REJECTED_ERROR.to_string(),
            format!("rejected by {}: {comment}", actor.display()),
        ))
    };
    executions.answer(&pending.task_token, outcome).await?;
    Ok(pending)
}

/// What an override did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverrideOutcome {
    /// The action carried out (`rollback` or `promote`).
    pub action: Action,
    /// Who ran it.
    pub actor: String,
    /// Canary traffic before.
    pub weight_before: f64,
    /// Whether a failing critical gate was overridden.
    pub forced: bool,
    /// The gates that failed (for a forced promotion).
    pub failing_gates: Vec<String>,
    /// Whether the running execution was stopped (false when it had ended already).
    pub stopped: bool,
    /// A notification failure, if any (the override stands regardless).
    pub notification_error: Option<String>,
}

/// The critical metrics failing in the latest analysis.
pub fn failing_critical_gates(exec: &Execution) -> Vec<String> {
    exec.last_decision
        .as_ref()
        .map(|d| {
            d.report
                .metrics
                .iter()
                .filter(|m| m.critical && m.verdict == Verdict::Fail)
                .map(|m| m.name.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Rolls the canary back now (`Action::Rollback`) or promotes it (`Action::Promote`):
/// stops the execution with an audited cause, writes the alias with the revision read just
/// before, and notifies who did it. A promotion is refused while a critical gate fails
/// unless `force`.
#[allow(clippy::too_many_arguments)]
pub async fn override_canary<E, R, N>(
    executions: &E,
    router: &R,
    notifier: &N,
    id: &str,
    action: Action,
    actor: &str,
    reason: &str,
    force: bool,
    now_epoch: i64,
) -> Result<OverrideOutcome, OperatorError>
where
    E: Executions,
    R: TrafficRouter,
    N: Notifier,
{
    let info = executions.describe(id).await?;
    let ours = match action {
        Action::Promote => PROMOTED_ERROR,
        _ => ABORTED_ERROR,
    };
    let resumable = info.status == RunStatus::Aborted && info.error.as_deref() == Some(ours);
    if info.status.is_finished() && !resumable {
        return Err(OperatorError::NotRunning {
            id: id.to_string(),
            status: info.status,
        });
    }
    let events = executions.history(id).await?;
    let exec = latest_execution(&events).ok_or_else(|| OperatorError::NoState(id.into()))?;
    let weight_before = exec.run.weight(&exec.config);
    let failing = failing_critical_gates(&exec);
    if action == Action::Promote && !failing.is_empty() && !force {
        return Err(OperatorError::CriticalGatesFailing(failing));
    }
    let forced = action == Action::Promote && !failing.is_empty();
    let verb = if action == Action::Promote {
        "promoted to 100%"
    } else {
        "rolled back"
    };
    let mut cause = format!("{verb} by {actor} at {weight_before}% canary traffic");
    if forced {
        cause.push_str(&format!(
            " (forced past failing critical gates: {})",
            failing.join(", ")
        ));
    }
    if !reason.is_empty() {
        cause.push_str(&format!(": {reason}"));
    }
    let stopped = info.status == RunStatus::Running;
    if stopped {
        executions.stop(id, ours, &cause).await?;
    }
    apply_override(exec.clone(), action, now_epoch, router).await?;
    let notification = notify::operator_override(&exec.config, action, actor, &cause, forced);
    let notification_error = notifier
        .publish(&notification)
        .await
        .err()
        .map(|e| e.to_string());
    Ok(OverrideOutcome {
        action,
        actor: actor.to_string(),
        weight_before,
        forced,
        failing_gates: failing,
        stopped,
        notification_error,
    })
}

#[cfg(test)]
mod tests;
