//! The `phase` function's steps: one small function per event the state machine sends. The
//! Lambda entry point only builds the adapters and calls [`handle_value`] (or [`handle`]).
//!
//! Nothing is swallowed on the way: a notification or CodeDeploy report that fails is kept
//! in the response's `failures` (and logged by the function), and never blocks or undoes the
//! rollback or promotion it reports.

use serde_json::Value;

pub use super::events::{PhaseEvent, PhaseResponse};
use super::{Execution, HookRef, StepError, apply_approved, apply_override, look, start_for};
use crate::config::CanaryConfig;
use crate::format::printable;
use crate::notify::{self, Event, Level};
use crate::policy::Action;
use crate::ports::{Deployments, LifecycleHook, MetricsSource, Notifier, TrafficRouter};
use crate::state::DeliveryFailure;

pub use crate::config::MAX_WAIT_SECONDS;

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

/// A response under construction: the deliveries that failed so far.
#[derive(Default)]
struct Deliveries(Vec<DeliveryFailure>);

impl Deliveries {
    /// Publishes a notification about the controller itself (see [`notify::operational`]),
    /// keeping a failure.
    async fn notify<N: Notifier>(
        &mut self,
        notifier: &N,
        config: &CanaryConfig,
        event: Event,
        level: Level,
        text: &str,
    ) {
        let n = notify::operational(config, event, level, text);
        if let Err(e) = notifier.publish(&n).await {
            self.0
                .push(DeliveryFailure::notification(n.event.as_str(), e));
        }
    }

    fn respond(
        self,
        mut exec: Execution,
        action: Action,
        awaiting: bool,
        wait: u64,
        summary: String,
    ) -> PhaseResponse {
        // The carried state says what this step failed to deliver, for `status`.
        exec.delivery_failures = self.0.clone();
        PhaseResponse {
            execution: Some(exec),
            wait_seconds: wait.clamp(1, MAX_WAIT_SECONDS),
            action,
            awaiting_approval: awaiting,
            summary: printable(&summary),
            failures: self.0,
        }
    }

    fn done(self, action: Action, summary: String) -> PhaseResponse {
        PhaseResponse {
            execution: None,
            wait_seconds: 1,
            action,
            awaiting_approval: false,
            summary: printable(&summary),
            failures: self.0,
        }
    }
}

/// Parses the event as the state machine sent it (see [`PhaseEvent::from_value`]) and
/// handles it at wall-clock `now_epoch`.
pub async fn handle_value<M, R, N, H>(
    event: &Value,
    now_epoch: i64,
    p: Ports<'_, M, R, N, H>,
) -> Result<PhaseResponse, StepError>
where
    M: MetricsSource,
    R: TrafficRouter,
    N: Notifier,
    H: LifecycleHook + Deployments,
{
    handle(PhaseEvent::from_value(event)?, now_epoch, p).await
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
    H: LifecycleHook + Deployments,
{
    let mut out = Deliveries::default();
    match event {
        PhaseEvent::Start {
            config,
            hook,
            execution_id,
        } => {
            let config = CanaryConfig::from_json(&config.to_string()).map_err(StepError::Config)?;
            if let (Some(h), Some(t)) = (&hook, &config.target) {
                let versions = Some((t.baseline_version.as_str(), t.canary_version.as_str()));
                verify_hook(p.hook, h, &t.function_name, &t.alias, versions).await?;
            }
            let owner = execution_id.filter(|id| !id.is_empty());
            let exec = start_for(owner, config, now_epoch, hook, p.router).await?;
            let wait = exec.config.analysis.look_interval_seconds;
            let summary = format!("canary started at {}%", exec.run.weight(&exec.config));
            Ok(out.respond(exec, Action::Continue, false, wait, summary))
        }
        PhaseEvent::Look { execution } => {
            let step = look(execution, now_epoch, p.metrics, p.router, p.notifier).await?;
            let summary = step
                .execution
                .history
                .last()
                .map(|l| l.reason.clone())
                .unwrap_or_default();
            out.0 = step.notification_failures;
            Ok(out.respond(
                step.execution,
                step.action,
                step.awaiting_approval,
                step.wait_seconds,
                summary,
            ))
        }
        PhaseEvent::Error { execution, error } => {
            failed_look(execution, &error, now_epoch, &p, out).await
        }
        PhaseEvent::RequestApproval {
            execution, action, ..
        } => {
            // The task token is a bearer credential: it stays in the execution history, where
            // `canary-gate approve` finds it, and goes into no message.
            let summary = format!(
                "approval needed to {}: answer with `canary-gate approve` or `canary-gate reject` (naming the execution when several run)",
                action.as_str()
            );
            // A request nobody receives ends by the wait's timeout, whose safe default applies;
            // the failure is in the response.
            out.notify(
                p.notifier,
                &execution.config,
                Event::NeedsApproval,
                Level::Warning,
                &summary,
            )
            .await;
            Ok(out.respond(execution, action, true, 1, summary))
        }
        PhaseEvent::Apply {
            execution, action, ..
        } => {
            let exec = apply_approved(execution, action, now_epoch, p.router).await?;
            let wait = exec.config.analysis.look_interval_seconds;
            let summary = format!(
                "operator approved: {} (canary at {}%)",
                action.as_str(),
                exec.run.weight(&exec.config)
            );
            let event = match action {
                Action::Rollback => Some((Event::Rollback, Level::Critical)),
                Action::Promote => Some((Event::Promoted, Level::Info)),
                Action::Advance => Some((Event::PhaseComplete, Level::Info)),
                Action::Continue | Action::Extend | Action::Hold => None,
            };
            if let Some((event, level)) = event {
                out.notify(p.notifier, &exec.config, event, level, &summary)
                    .await;
            }
            Ok(out.respond(exec, action, false, wait, summary))
        }
        PhaseEvent::Timeout { execution, action } => {
            let wait = execution.config.analysis.look_interval_seconds;
            if action == Action::Rollback {
                let exec = apply_override(execution, Action::Rollback, now_epoch, p.router).await?;
                let summary = "no answer in time: rolled back (safe default)".to_string();
                out.notify(
                    p.notifier,
                    &exec.config,
                    Event::Rollback,
                    Level::Critical,
                    &summary,
                )
                .await;
                return Ok(out.respond(exec, Action::Rollback, false, 1, summary));
            }
            let summary = format!(
                "no answer in time: not applying {} (safe default)",
                action.as_str()
            );
            Ok(out.respond(execution, Action::Hold, false, wait, summary))
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
            Ok(out.respond(execution, Action::Hold, false, wait, summary))
        }
        PhaseEvent::Conflict { execution, error } => {
            let summary = format!(
                "alias changed by someone else; canary-gate stopped without writing: {}",
                error_text(&error)
            );
            out.notify(
                p.notifier,
                &execution.config,
                Event::NeedsApproval,
                Level::Critical,
                &summary,
            )
            .await;
            if let Some(h) = &execution.hook
                && let Err(e) = report(p.hook, h, false).await
            {
                out.0
                    .push(DeliveryFailure::hook_report(&h.deployment_id, e));
            }
            Ok(out.done(Action::Hold, summary))
        }
        PhaseEvent::Finish {
            execution,
            succeeded,
        } => {
            // The alias is already as the canary left it; a report CodeDeploy did not take is
            // raised (`HookReportFailed`) so that the state machine retries it.
            if let Some(h) = &execution.hook {
                report(p.hook, h, succeeded).await?;
            }
            let (action, what) = if succeeded {
                (Action::Promote, "promoted")
            } else {
                (Action::Rollback, "rolled back")
            };
            Ok(out.done(action, format!("canary finished: {what}")))
        }
        PhaseEvent::StartFailed { input } => {
            let hook: Option<HookRef> = match input.get("hook") {
                None | Some(Value::Null) => None,
                Some(h) => Some(
                    crate::state::parse_value(h)
                        .map_err(|e| StepError::InvalidState(e.under("$.input.hook")))?,
                ),
            };
            let what = error_text(input.get("error").unwrap_or(&Value::Null));
            if let Some(h) = &hook {
                // Only a deployment of this canary's target hears of the failure.
                let target = &input["config"]["target"];
                let field = |k: &str| target[k].as_str().unwrap_or_default().to_string();
                let (function, alias) = (field("function_name"), field("alias"));
                let (baseline, canary) = (field("baseline_version"), field("canary_version"));
                let versions = (!baseline.is_empty() && !canary.is_empty())
                    .then_some((baseline.as_str(), canary.as_str()));
                match verify_hook(p.hook, h, &function, &alias, versions).await {
                    Ok(()) => report(p.hook, h, false).await?,
                    Err(StepError::Routing(e)) if e.is_transient() => {
                        return Err(StepError::Routing(e));
                    }
                    Err(e) => {
                        return Ok(out.done(
                            Action::Rollback,
                            format!(
                                "canary could not start: {what}; not reported to CodeDeploy: {e}"
                            ),
                        ));
                    }
                }
            }
            Ok(out.done(Action::Rollback, format!("canary could not start: {what}")))
        }
    }
}

/// Checks that `hook` names a CodeDeploy deployment of this canary before anything is
/// reported to CodeDeploy for it (the execution input is not trusted to make the stack
/// report on someone else's deployment): the deployment exists and its AppSpec deploys
/// `function`:`alias` — from the baseline to the canary, when `versions`
/// are given. A transient failure to read it is `Routing` (transient), for the state
/// machine to retry; anything else is [`StepError::UnverifiedHook`].
pub async fn verify_hook<D: Deployments>(
    deployments: &D,
    hook: &HookRef,
    function: &str,
    alias: &str,
    versions: Option<(&str, &str)>,
) -> Result<(), StepError> {
    let refuse = |reason: String| StepError::UnverifiedHook {
        deployment_id: hook.deployment_id.clone(),
        reason,
    };
    let info = match deployments.deployment(&hook.deployment_id).await {
        Ok(info) => info,
        Err(e) if e.is_transient() => return Err(StepError::Routing(e)),
        Err(e) => return Err(refuse(format!("GetDeployment: {e}"))),
    };
    let text = info
        .app_spec
        .ok_or_else(|| refuse("the deployment carries no AppSpec".into()))?;
    let spec = crate::hooks::appspec::parse(&text).map_err(|e| refuse(format!("AppSpec: {e}")))?;
    let mut wanted = vec![
        ("Name", spec.function_name.as_str(), function),
        ("Alias", spec.alias.as_str(), alias),
    ];
    if let Some((baseline, canary)) = versions {
        wanted.push(("CurrentVersion", spec.current_version.as_str(), baseline));
        wanted.push(("TargetVersion", spec.target_version.as_str(), canary));
    }
    for (field, found, want) in wanted {
        if found != want {
            return Err(refuse(format!(
                "its AppSpec's {field} is `{found}`, this canary's is `{want}`"
            )));
        }
    }
    Ok(())
}

/// Reports a lifecycle status to CodeDeploy.
async fn report<H: LifecycleHook>(hook: &H, h: &HookRef, succeeded: bool) -> Result<(), StepError> {
    hook.report(
        &h.deployment_id,
        &h.lifecycle_event_hook_execution_id,
        succeeded,
    )
    .await
    .map_err(StepError::HookReport)
}

/// A look failed after its retries: hold and notify, and roll back once failures outlast the
/// canary's timeout.
async fn failed_look<M, R, N, H>(
    mut execution: Execution,
    error: &Value,
    now_epoch: i64,
    p: &Ports<'_, M, R, N, H>,
    mut out: Deliveries,
) -> Result<PhaseResponse, StepError>
where
    R: TrafficRouter,
    N: Notifier,
{
    let since = *execution.error_since.get_or_insert(now_epoch);
    let lasted = (now_epoch - since).max(0) as u64;
    let limit = execution.config.timeout_seconds;
    let what = error_text(error);
    if lasted >= limit {
        let exec = apply_override(execution, Action::Rollback, now_epoch, p.router).await?;
        let summary = format!(
            "looks have failed for {lasted} s (limit {limit} s): rolled back; last error: {what}"
        );
        out.notify(
            p.notifier,
            &exec.config,
            Event::Rollback,
            Level::Critical,
            &summary,
        )
        .await;
        return Ok(out.respond(exec, Action::Rollback, false, 1, summary));
    }
    let summary = format!("look failed ({what}); holding the current weight and retrying");
    out.notify(
        p.notifier,
        &execution.config,
        Event::RegressionDetected,
        Level::Warning,
        &summary,
    )
    .await;
    let wait = execution.config.analysis.look_interval_seconds;
    Ok(out.respond(execution, Action::Hold, false, wait, summary))
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
