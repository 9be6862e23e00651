//! The `phase` function's contract with the state machine: one event type per state that
//! invokes it (`op`), and one response shape that the `Decide` choice reads. The Lambda entry
//! point only deserialises the event, builds the adapters and calls [`handle`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Execution, HookRef, StepError, apply_override, look, start};
use crate::config::CanaryConfig;
use crate::notify::{Event, Notification};
use crate::policy::Action;
use crate::ports::{LifecycleHook, MetricsSource, Notifier, TrafficRouter};

/// The events the state machine sends to the `phase` function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum PhaseEvent {
    /// Validate the config, check the alias and shift the first share.
    #[serde(rename_all = "camelCase")]
    Start {
        /// The canary config as JSON (validated here, with JSON-path errors).
        config: Value,
        /// The CodeDeploy hook that started the canary, if any.
        #[serde(default)]
        hook: Option<HookRef>,
        /// The Step Functions execution id, for the report.
        #[serde(default)]
        execution_id: Option<String>,
    },
    /// One analysis step.
    Look {
        /// The state carried between steps.
        execution: Execution,
    },
    /// A look failed after its retries: hold, notify, and roll back once failures outlast
    /// the canary's timeout.
    Error {
        /// The state carried between steps.
        execution: Execution,
        /// The caught error (`Error`, `Cause`).
        #[serde(default)]
        error: Value,
    },
    /// Publish an approval request carrying the task token.
    #[serde(rename_all = "camelCase")]
    RequestApproval {
        /// The state carried between steps.
        execution: Execution,
        /// The action awaiting approval.
        action: Action,
        /// The Step Functions task token to answer with.
        task_token: String,
    },
    /// The operator approved the pending action.
    Apply {
        /// The state carried between steps.
        execution: Execution,
        /// The approved action.
        action: Action,
        /// The operator's answer (who, when).
        #[serde(default)]
        approval: Value,
    },
    /// Nobody answered in time: apply the safe default (a pending rollback happens, a
    /// pending advance or promotion does not).
    Timeout {
        /// The state carried between steps.
        execution: Execution,
        /// The action that waited.
        action: Action,
    },
    /// The operator rejected the pending action: it does not happen; the canary goes on.
    Reject {
        /// The state carried between steps.
        execution: Execution,
        /// The rejected action.
        action: Action,
        /// The rejection as caught.
        #[serde(default)]
        error: Value,
    },
    /// Someone else changed the alias: notify and stop.
    Conflict {
        /// The state carried between steps.
        execution: Execution,
        /// The caught error.
        #[serde(default)]
        error: Value,
    },
    /// The canary ended: report to CodeDeploy when it started the canary.
    Finish {
        /// The state carried between steps.
        execution: Execution,
        /// Promoted (true) or rolled back (false).
        succeeded: bool,
    },
    /// `start` failed: report Failed to CodeDeploy when a hook started the canary.
    StartFailed {
        /// The state machine's input plus the caught error.
        input: Value,
    },
}

/// What the `phase` function returns to the state machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseResponse {
    /// The state to carry on (absent for `finish`, `conflict` and `start-failed`).
    pub execution: Option<Execution>,
    /// Seconds for the `Soak` wait.
    pub wait_seconds: u64,
    /// The action decided or applied (`continue`, `advance`, `rollback`, …).
    pub action: Action,
    /// Whether the state machine must wait for an operator.
    pub awaiting_approval: bool,
    /// One line for the execution history.
    pub summary: String,
}

/// The adapters a `phase` invocation needs.
pub struct Ports<'a, M, R, N, H> {
    /// Metrics.
    pub metrics: &'a M,
    /// The alias.
    pub router: &'a R,
    /// Notifications.
    pub notifier: &'a N,
    /// CodeDeploy.
    pub hook: &'a H,
}

fn respond(
    exec: Execution,
    action: Action,
    awaiting: bool,
    wait: u64,
    summary: String,
) -> PhaseResponse {
    PhaseResponse {
        execution: Some(exec),
        wait_seconds: wait.max(1),
        action,
        awaiting_approval: awaiting,
        summary,
    }
}

fn done(action: Action, summary: String) -> PhaseResponse {
    PhaseResponse {
        execution: None,
        wait_seconds: 1,
        action,
        awaiting_approval: false,
        summary,
    }
}

/// Handles one event at wall-clock `now_epoch`.
pub async fn handle<M, R, N, H>(
    event: PhaseEvent,
    now_epoch: i64,
    p: Ports<'_, M, R, N, H>,
) -> Result<PhaseResponse, StepError>
where
    M: MetricsSource,
    R: TrafficRouter,
    N: Notifier,
    H: LifecycleHook,
{
    match event {
        PhaseEvent::Start { config, hook, .. } => {
            let config = CanaryConfig::from_json(&config.to_string()).map_err(StepError::Config)?;
            let exec = start(config, now_epoch, hook, p.router).await?;
            let wait = exec.config.analysis.look_interval_seconds;
            let summary = format!("canary started at {}%", exec.run.weight(&exec.config));
            Ok(respond(exec, Action::Continue, false, wait, summary))
        }
        PhaseEvent::Look { execution } => {
            let out = look(execution, now_epoch, p.metrics, p.router, p.notifier).await?;
            let summary = out
                .execution
                .history
                .last()
                .map(|l| l.reason.clone())
                .unwrap_or_default();
            Ok(respond(
                out.execution,
                out.action,
                out.awaiting_approval,
                out.wait_seconds,
                summary,
            ))
        }
        PhaseEvent::Error {
            mut execution,
            error,
        } => {
            let since = *execution.error_since.get_or_insert(now_epoch);
            let lasted = (now_epoch - since).max(0) as u64;
            let limit = execution.config.timeout_seconds;
            let what = error_text(&error);
            if lasted >= limit {
                let exec = apply_override(execution, Action::Rollback, now_epoch, p.router).await?;
                let summary = format!(
                    "looks have failed for {lasted} s (limit {limit} s): rolled back; last error: {what}"
                );
                let _ = p
                    .notifier
                    .publish(&operational(&exec, Event::Rollback, "critical", &summary))
                    .await;
                return Ok(respond(exec, Action::Rollback, false, 1, summary));
            }
            let summary = format!("look failed ({what}); holding the current weight and retrying");
            let _ = p
                .notifier
                .publish(&operational(
                    &execution,
                    Event::RegressionDetected,
                    "warning",
                    &summary,
                ))
                .await;
            let wait = execution.config.analysis.look_interval_seconds;
            Ok(respond(execution, Action::Hold, false, wait, summary))
        }
        PhaseEvent::RequestApproval {
            execution,
            action,
            task_token,
        } => {
            let summary = format!(
                "approval needed to {}: answer with `canary-gate approve --token {task_token}` or `canary-gate reject --token {task_token}`",
                action.as_str()
            );
            let mut n = operational(&execution, Event::NeedsApproval, "warning", &summary);
            n.attributes.insert("task_token".to_string(), task_token);
            // Failing to ask is logged by the caller; the wait then ends by its timeout, whose
            // safe default applies.
            let _ = p.notifier.publish(&n).await;
            Ok(respond(execution, action, true, 1, summary))
        }
        PhaseEvent::Apply {
            execution, action, ..
        } => {
            let exec = apply_override(execution, action, now_epoch, p.router).await?;
            let wait = exec.config.analysis.look_interval_seconds;
            let summary = format!(
                "operator approved: {} (canary at {}%)",
                action.as_str(),
                exec.run.weight(&exec.config)
            );
            let event = match action {
                Action::Rollback => Some((Event::Rollback, "critical")),
                Action::Promote => Some((Event::Promoted, "info")),
                Action::Advance => Some((Event::PhaseComplete, "info")),
                Action::Continue | Action::Extend | Action::Hold => None,
            };
            if let Some((event, severity)) = event {
                let _ = p
                    .notifier
                    .publish(&operational(&exec, event, severity, &summary))
                    .await;
            }
            Ok(respond(exec, action, false, wait, summary))
        }
        PhaseEvent::Timeout { execution, action } => {
            let wait = execution.config.analysis.look_interval_seconds;
            if action == Action::Rollback {
                let exec = apply_override(execution, Action::Rollback, now_epoch, p.router).await?;
                let summary = "no answer in time: rolled back (safe default)".to_string();
                let _ = p
                    .notifier
                    .publish(&operational(&exec, Event::Rollback, "critical", &summary))
                    .await;
                return Ok(respond(exec, Action::Rollback, false, 1, summary));
            }
            let summary = format!(
                "no answer in time: not applying {} (safe default)",
                action.as_str()
            );
            Ok(respond(execution, Action::Hold, false, wait, summary))
        }
        PhaseEvent::Reject {
            execution, action, ..
        } => {
            let wait = execution.config.analysis.look_interval_seconds;
            let summary = format!(
                "operator rejected {}: the canary continues at {}%",
                action.as_str(),
                execution.run.weight(&execution.config)
            );
            Ok(respond(execution, Action::Hold, false, wait, summary))
        }
        PhaseEvent::Conflict { execution, error } => {
            let summary = format!(
                "alias changed by someone else; canary-gate stopped without writing: {}",
                error_text(&error)
            );
            let _ = p
                .notifier
                .publish(&operational(
                    &execution,
                    Event::NeedsApproval,
                    "critical",
                    &summary,
                ))
                .await;
            if let Some(h) = &execution.hook {
                let _ = p
                    .hook
                    .report(
                        &h.deployment_id,
                        &h.lifecycle_event_hook_execution_id,
                        false,
                    )
                    .await;
            }
            Ok(done(Action::Hold, summary))
        }
        PhaseEvent::Finish {
            execution,
            succeeded,
        } => {
            if let Some(h) = &execution.hook {
                p.hook
                    .report(
                        &h.deployment_id,
                        &h.lifecycle_event_hook_execution_id,
                        succeeded,
                    )
                    .await
                    .map_err(StepError::Routing)?;
            }
            let action = if succeeded {
                Action::Promote
            } else {
                Action::Rollback
            };
            Ok(done(
                action,
                format!(
                    "canary finished: {}",
                    if succeeded { "promoted" } else { "rolled back" }
                ),
            ))
        }
        PhaseEvent::StartFailed { input } => {
            let hook: Option<HookRef> = input
                .get("hook")
                .cloned()
                .and_then(|h| serde_json::from_value(h).ok());
            let what = error_text(input.get("error").unwrap_or(&Value::Null));
            if let Some(h) = &hook {
                p.hook
                    .report(
                        &h.deployment_id,
                        &h.lifecycle_event_hook_execution_id,
                        false,
                    )
                    .await
                    .map_err(StepError::Routing)?;
            }
            Ok(done(
                Action::Rollback,
                format!("canary could not start: {what}"),
            ))
        }
    }
}

/// `Error: Cause` of an error caught by the state machine. For a function error the cause is
/// the function's error object as JSON text; its `errorMessage` is what people need to read.
fn error_text(error: &Value) -> String {
    let field = |k: &str| {
        error
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let message = serde_json::from_str::<Value>(&field("Cause"))
        .ok()
        .and_then(|c| {
            c.get("errorMessage")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
    if let Some(message) = message {
        return format!("{}: {message}", field("Error"));
    }
    match (field("Error"), field("Cause")) {
        (e, c) if e.is_empty() && c.is_empty() => "unknown error".to_string(),
        (e, c) if c.is_empty() => e,
        (e, c) => format!("{e}: {c}"),
    }
}

/// A notification about the controller itself (errors, conflicts, approvals).
fn operational(exec: &Execution, event: Event, severity: &str, text: &str) -> Notification {
    let (function, alias) = exec
        .config
        .target
        .as_ref()
        .map(|t| (t.function_name.clone(), t.alias.clone()))
        .unwrap_or_default();
    let channels = exec.config.notifications.channels(event).to_vec();
    let subject: String = format!("canary-gate: {function} {text}")
        .chars()
        .take(100)
        .collect();
    Notification {
        event,
        subject,
        body: text.to_string(),
        attributes: [
            ("event", event.as_str()),
            ("severity", severity),
            ("function", function.as_str()),
            ("alias", alias.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        channels,
    }
}
