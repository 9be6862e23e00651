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

/// The latest canary state in an execution: the `execution` of the newest state output that
/// carries one.
pub fn latest_execution(events: &[HistoryEvent]) -> Option<Execution> {
    events
        .iter()
        .rev()
        .filter(|e| e.kind == HistoryKind::StateExited)
        .filter_map(|e| e.detail.as_ref()?.get("execution"))
        // A state that does not validate is not the canary's (and would mislead).
        .find_map(|v| Execution::from_value(v).ok())
}

/// The decisions of a canary, oldest first: every state output with an action, and the
/// operator stops.
pub fn decisions(events: &[HistoryEvent]) -> Vec<DecisionEntry> {
    let mut out = Vec::new();
    for e in events {
        match e.kind {
            HistoryKind::StateExited => {
                let Some(detail) = &e.detail else { continue };
                let Some(action) = detail.get("action").and_then(Value::as_str) else {
                    continue;
                };
                let exec: Option<Execution> = detail
                    .get("execution")
                    .and_then(|v| Execution::from_value(v).ok());
                let summary = detail
                    .get("summary")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| {
                        exec.as_ref()
                            .and_then(|x| x.history.last().map(|l| l.reason.clone()))
                    })
                    .unwrap_or_else(|| "canary started".to_string());
                out.push(DecisionEntry {
                    epoch: e.epoch,
                    state: e.state.clone().unwrap_or_default(),
                    action: action.to_string(),
                    phase: exec.as_ref().map(|x| x.run.phase),
                    weight: exec.as_ref().map(|x| x.run.weight(&x.config)),
                    summary,
                    failures: exec.map(|x| x.delivery_failures).unwrap_or_default(),
                });
            }
            HistoryKind::Failed
                if matches!(
                    e.error.as_deref(),
                    Some(ABORTED_ERROR) | Some(PROMOTED_ERROR)
                ) =>
            {
                let promoted = e.error.as_deref() == Some(PROMOTED_ERROR);
                out.push(DecisionEntry {
                    epoch: e.epoch,
                    state: "Operator".to_string(),
                    action: if promoted { "promote" } else { "rollback" }.to_string(),
                    phase: None,
                    weight: Some(if promoted { 100.0 } else { 0.0 }),
                    summary: e.cause.clone().unwrap_or_default(),
                    failures: Vec::new(),
                });
            }
            _ => {}
        }
    }
    out
}

/// The approval an execution waits for: the newest scheduled task carrying a task token
/// whose state has not been left since.
pub fn pending_approval(events: &[HistoryEvent]) -> Option<PendingApproval> {
    let (index, event) = events
        .iter()
        .enumerate()
        .rev()
        .find(|(_, e)| e.kind == HistoryKind::TaskScheduled && token_of(e).is_some())?;
    let state = event.state.as_deref();
    let answered = events[index + 1..].iter().any(|e| {
        (e.kind == HistoryKind::StateExited && e.state.as_deref() == state)
            || e.kind == HistoryKind::Failed
    });
    if answered {
        return None;
    }
    let payload = event.detail.as_ref()?.get("Payload")?;
    let action = payload
        .get("action")
        .cloned()
        .and_then(|a| serde_json::from_value(a).ok())
        .unwrap_or(Action::Continue);
    Some(PendingApproval {
        task_token: token_of(event)?.to_string(),
        action,
        requested_epoch: event.epoch,
    })
}

fn token_of(e: &HistoryEvent) -> Option<&str> {
    e.detail
        .as_ref()?
        .get("Payload")?
        .get("taskToken")?
        .as_str()
}

/// Builds the status of an execution from its description and history at `now_epoch`.
pub fn status(info: &ExecutionInfo, events: &[HistoryEvent], now_epoch: i64) -> CanaryStatus {
    let exec = latest_execution(events);
    let input_target = info
        .input
        .as_ref()
        .and_then(|i| i.get("config"))
        .and_then(|c| c.get("target"));
    let target_field = |name: &str| -> Option<String> {
        match &exec {
            Some(x) => x.config.target.as_ref().map(|t| match name {
                "function_name" => t.function_name.clone(),
                "alias" => t.alias.clone(),
                "baseline_version" => t.baseline_version.clone(),
                _ => t.canary_version.clone(),
            }),
            None => input_target
                .and_then(|t| t.get(name))
                .and_then(Value::as_str)
                .map(str::to_string),
        }
    };
    let running = info.status == RunStatus::Running;
    let (phase_left, timeout_left) = match (&exec, running) {
        (Some(x), true) => {
            let phase = &x.config.canary_phases[x.run.phase - 1];
            let phase_end =
                x.started_epoch + (x.run.phase_started_at + phase.duration_seconds) as i64;
            let timeout_end = x.started_epoch + x.config.timeout_seconds as i64;
            (
                Some((phase_end - now_epoch).max(0)),
                Some((timeout_end - now_epoch).max(0)),
            )
        }
        _ => (None, None),
    };
    let mut weight = exec.as_ref().map(|x| x.run.weight(&x.config));
    let last_decision = decisions(events).pop();
    if let Some(d) = &last_decision
        && d.state == "Operator"
    {
        weight = d.weight;
    }
    CanaryStatus {
        execution: info.id.clone(),
        name: info.name.clone(),
        status: info.status,
        started_epoch: info.started_epoch,
        stopped_epoch: info.stopped_epoch,
        function: target_field("function_name"),
        alias: target_field("alias"),
        baseline_version: target_field("baseline_version"),
        canary_version: target_field("canary_version"),
        phase: exec
            .as_ref()
            .map(|x| (x.run.phase, x.config.canary_phases.len())),
        weight,
        last_decision,
        phase_left_seconds: phase_left,
        timeout_left_seconds: timeout_left,
        pending_approval: if running {
            pending_approval(events)
        } else {
            None
        },
        delivery_failures: exec.map(|x| x.delivery_failures).unwrap_or_default(),
        error: info.error.clone(),
        cause: info.cause.clone(),
    }
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
    let input = json!({ "config": config, "hook": null });
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
        Ok(json!({ "approvedBy": actor, "approvedAt": now_epoch, "comment": comment }))
    } else {
        Err((
            REJECTED_ERROR.to_string(),
            format!("rejected by {actor}: {comment}"),
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
