//! CodeDeploy lifecycle hooks for SAM `DeploymentPreference` deployments: the logic behind
//! the `codedeploy-hook` Lambda function.
//!
//! CodeDeploy invokes the hook with `{"DeploymentId", "LifecycleEventHookExecutionId"}` and
//! waits for `PutLifecycleEventHookExecutionStatus`. The deployment's AppSpec
//! ([`appspec`]) names the function, the alias and both versions; the canary config comes
//! from the function's environment with its `target` filled from the AppSpec (baseline =
//! `CurrentVersion`, canary = `TargetVersion`).
//!
//! - [`HookKind::BeforeAllowTraffic`] starts a canary execution of the state machine and
//!   returns at once; the state machine reports Succeeded (promoted) or Failed (rolled back,
//!   could not start) when it ends. CodeDeploy fails a hook that reports nothing within
//!   [`HOOK_TIME_LIMIT_SECONDS`] (one hour), so a config whose longest run
//!   ([`longest_canary_seconds`]) does not fit [`HOOK_BUDGET_SECONDS`] is refused.
//! - [`HookKind::AfterAllowTraffic`] checks that the alias points at the target version alone
//!   and that this deployment's canary execution succeeded, and reports the result.
//!
//! Whatever goes wrong once the ids are known is reported as Failed before the error is
//! returned: a deployment never waits out the hour on a hook that has already given up.

pub mod appspec;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use thiserror::Error;

use crate::config::{CanaryConfig, Target};
use crate::error::ConfigError;
use crate::operator::{canary_on_alias, execution_name};
use crate::ports::{Deployments, Executions, LifecycleHook, PortError, RunStatus, TrafficRouter};
use crate::state::HookRef;

pub use appspec::{AppSpecError, AppSpecTarget};

/// CodeDeploy fails a Lambda lifecycle hook that has not reported a status within an hour.
pub const HOOK_TIME_LIMIT_SECONDS: u64 = 3600;

/// The longest canary a `BeforeAllowTraffic` hook starts: 55 minutes, leaving 5 for the
/// start, the state machine's transitions and retries, and the final report.
pub const HOOK_BUDGET_SECONDS: u64 = 55 * 60;

/// The environment variable holding the canary config (JSON) of the hook functions.
pub const CONFIG_ENV: &str = "CANARY_GATE_CONFIG";

/// The environment variable naming the hook a function serves.
pub const HOOK_ENV: &str = "CANARY_GATE_HOOK";

/// Deployment statuses after which no canary is started.
const ENDED: [&str; 3] = ["Succeeded", "Failed", "Stopped"];

/// How many recent executions are searched for this deployment's canary.
const RECENT_EXECUTIONS: usize = 100;

/// Which lifecycle event a function serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HookKind {
    /// Before CodeDeploy shifts traffic: run the canary.
    BeforeAllowTraffic,
    /// After CodeDeploy has shifted traffic: check the outcome.
    AfterAllowTraffic,
}

impl HookKind {
    /// The lifecycle event's name.
    pub fn as_str(self) -> &'static str {
        match self {
            HookKind::BeforeAllowTraffic => "BeforeAllowTraffic",
            HookKind::AfterAllowTraffic => "AfterAllowTraffic",
        }
    }
}

impl std::str::FromStr for HookKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "BeforeAllowTraffic" => Ok(HookKind::BeforeAllowTraffic),
            "AfterAllowTraffic" => Ok(HookKind::AfterAllowTraffic),
            other => Err(format!(
                "{HOOK_ENV} must be BeforeAllowTraffic or AfterAllowTraffic, got {other:?}"
            )),
        }
    }
}

/// Why a hook could not do its work.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum HookError {
    /// The event lacks a field or has the wrong shape.
    #[error("malformed CodeDeploy event: {field} {message}")]
    Event {
        /// The field at fault (`DeploymentId`, `LifecycleEventHookExecutionId`, `$`).
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The function's settings (environment) are wrong.
    #[error("{0}")]
    Settings(String),
    /// `GetDeployment` failed.
    #[error("cannot read deployment {deployment_id}: {error}")]
    Deployment {
        /// The deployment.
        deployment_id: String,
        /// The failure.
        error: PortError,
    },
    /// The deployment's AppSpec is missing or unreadable.
    #[error("deployment {deployment_id}: AppSpec {error}")]
    AppSpec {
        /// The deployment.
        deployment_id: String,
        /// What is wrong, with its path.
        error: AppSpecError,
    },
    /// The canary config is invalid.
    #[error("invalid canary config ({CONFIG_ENV}) at {}: {}", .0.path, .0.message)]
    Config(ConfigError),
    /// The canary may run longer than a lifecycle hook may wait.
    #[error(
        "the canary may run {longest} s but a CodeDeploy lifecycle hook must report within {HOOK_TIME_LIMIT_SECONDS} s (canary-gate allows {budget} s): {detail}"
    )]
    TooLong {
        /// The longest run of the config.
        longest: u64,
        /// The budget.
        budget: u64,
        /// How the longest run adds up, or what makes it unbounded.
        detail: String,
    },
    /// Another canary runs on the same alias.
    #[error("a canary is already running on {function}:{alias}: {execution}")]
    CanaryInProgress {
        /// Function.
        function: String,
        /// Alias.
        alias: String,
        /// The running execution.
        execution: String,
    },
    /// The orchestrator failed.
    #[error("Step Functions: {0}")]
    Executions(PortError),
    /// The alias could not be read.
    #[error("cannot read the alias: {0}")]
    Routing(PortError),
    /// `PutLifecycleEventHookExecutionStatus` failed.
    #[error("cannot report the hook's status to CodeDeploy: {0}")]
    Report(PortError),
}

impl HookError {
    /// A stable name for logs, metrics and alarms.
    pub fn error_type(&self) -> &'static str {
        match self {
            HookError::Deployment { error: e, .. }
            | HookError::Executions(e)
            | HookError::Routing(e)
            | HookError::Report(e)
                if e.is_transient() =>
            {
                "Transient"
            }
            HookError::Event { .. } => "MalformedEvent",
            HookError::Settings(_) => "InvalidSettings",
            HookError::Deployment { .. } => "DeploymentUnavailable",
            HookError::AppSpec { .. } => "InvalidAppSpec",
            HookError::Config(_) => "InvalidConfig",
            HookError::TooLong { .. } => "CanaryTooLong",
            HookError::CanaryInProgress { .. } => "CanaryInProgress",
            HookError::Executions(_) => "ExecutionsUnavailable",
            HookError::Routing(_) => "RoutingFailed",
            HookError::Report(_) => "ReportFailed",
        }
    }
}

/// A hook that failed, and whether CodeDeploy was told.
#[derive(Debug, Clone, Error, PartialEq)]
#[error("{error}; {}", match (.reported, .report_error) {
    (true, _) => "reported Failed to CodeDeploy".to_string(),
    (false, Some(e)) => format!("reporting Failed to CodeDeploy failed too: {e}"),
    (false, None) => "no status reported (the event names no hook execution)".to_string(),
})]
pub struct HookFailure {
    /// What went wrong.
    pub error: HookError,
    /// Whether Failed was reported to CodeDeploy.
    pub reported: bool,
    /// Why reporting failed, if it did.
    pub report_error: Option<PortError>,
}

impl HookFailure {
    /// The stable name of the underlying error.
    pub fn error_type(&self) -> &'static str {
        self.error.error_type()
    }
}

/// What a hook did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookOutcome {
    /// The lifecycle event served.
    pub hook: HookKind,
    /// The deployment.
    pub deployment_id: String,
    /// The hook execution.
    pub lifecycle_event_hook_execution_id: String,
    /// The status reported now: `Some(true)` Succeeded, `Some(false)` Failed, `None` when the
    /// state machine reports later.
    pub reported: Option<bool>,
    /// The function and alias the deployment shifts.
    pub function: String,
    /// The alias.
    pub alias: String,
    /// The version before the deployment.
    pub baseline_version: String,
    /// The version deployed.
    pub canary_version: String,
    /// The canary execution started or checked.
    pub execution: Option<String>,
    /// One line for the log.
    pub summary: String,
}

/// The function's settings: which hook it serves and its config text.
#[derive(Debug, Clone, PartialEq)]
pub struct HookSettings {
    /// The lifecycle event served.
    pub kind: HookKind,
    /// The canary config as JSON ([`CONFIG_ENV`]); `None` when not set.
    pub config: Option<String>,
}

/// The adapters a hook needs.
pub struct HookPorts<'a, D, E, R, H> {
    /// CodeDeploy `GetDeployment`.
    pub deployments: &'a D,
    /// The canary state machine.
    pub executions: &'a E,
    /// The alias.
    pub router: &'a R,
    /// CodeDeploy `PutLifecycleEventHookExecutionStatus`.
    pub hook: &'a H,
}

/// Reads the ids from CodeDeploy's event.
pub fn parse_event(event: &Value) -> Result<HookRef, HookError> {
    let Some(obj) = event.as_object() else {
        return Err(HookError::Event {
            field: "$",
            message: format!("must be a JSON object, got {event}"),
        });
    };
    let field = |name: &'static str| -> Result<String, HookError> {
        match obj.get(name) {
            None | Some(Value::Null) => Err(HookError::Event {
                field: name,
                message: "is missing".into(),
            }),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
            Some(Value::String(_)) => Err(HookError::Event {
                field: name,
                message: "is empty".into(),
            }),
            Some(other) => Err(HookError::Event {
                field: name,
                message: format!("must be a string, got {other}"),
            }),
        }
    };
    Ok(HookRef {
        deployment_id: field("DeploymentId")?,
        lifecycle_event_hook_execution_id: field("LifecycleEventHookExecutionId")?,
    })
}

/// The longest a canary of `config` can run, in seconds, or why it has no bound.
///
/// A phase advances once its soak is over and its data suffice; a failing critical metric
/// holds it for at most its soak again before the rollback, and missing data extend it until
/// `timeout_seconds`, counted from the start. So the run ends within the longer of
/// `timeout_seconds` and twice the phases' soak, plus `hold_before_full_traffic`, one
/// `auto_rollback.rollback_timeout_seconds` per approval the config asks for, and one look
/// interval for the last look. With `auto_rollback.enabled: false` a failing canary waits
/// for an operator without limit.
pub fn longest_canary_seconds(config: &CanaryConfig) -> Result<(u64, String), String> {
    if !config.auto_rollback.enabled {
        return Err(
            "auto_rollback.enabled is false, so a failing canary holds for an operator without a time limit"
                .into(),
        );
    }
    let soak: u64 = config
        .canary_phases
        .iter()
        .map(|p| p.duration_seconds)
        .sum();
    let ta = &config.traffic_advancing;
    let reaches_full = config
        .canary_phases
        .iter()
        .any(|p| p.traffic_percentage >= 100.0);
    let advances = config.canary_phases.len().saturating_sub(1) as u64;
    let mut approvals = if !ta.auto_advance_on_pass {
        advances
    } else if reaches_full && ta.requires_approval_before_full_traffic {
        1
    } else {
        0
    };
    if config.auto_rollback.requires_ops_confirmation {
        approvals += 1;
    }
    let hold = if reaches_full {
        ta.hold_before_full_traffic
    } else {
        0
    };
    let ramp = config.timeout_seconds.max(2 * soak);
    let waits = approvals * config.auto_rollback.rollback_timeout_seconds;
    let look = config.analysis.look_interval_seconds;
    let longest = ramp + hold + waits + look;
    Ok((
        longest,
        format!(
            "max(timeout_seconds {}, 2 x phases {soak}) + hold_before_full_traffic {hold} + {approvals} approval wait(s) x {} + look interval {look}",
            config.timeout_seconds, config.auto_rollback.rollback_timeout_seconds
        ),
    ))
}

/// Refuses a config whose longest run does not fit `budget` seconds.
pub fn check_budget(config: &CanaryConfig, budget: u64) -> Result<u64, HookError> {
    match longest_canary_seconds(config) {
        Ok((longest, _)) if longest <= budget => Ok(longest),
        Ok((longest, detail)) => Err(HookError::TooLong {
            longest,
            budget,
            detail,
        }),
        Err(detail) => Err(HookError::TooLong {
            longest: u64::MAX,
            budget,
            detail,
        }),
    }
}

/// The config of the function's environment with its target taken from the AppSpec. A
/// target in the config may add `routing` and `canary_alias`; a function, alias or version
/// it names must agree with the AppSpec.
pub fn config_for(text: Option<&str>, spec: &AppSpecTarget) -> Result<CanaryConfig, HookError> {
    let text = text.filter(|t| !t.trim().is_empty()).ok_or_else(|| {
        HookError::Config(ConfigError::new("$", format!("{CONFIG_ENV} is not set")))
    })?;
    let mut doc: Value = serde_json::from_str(text)
        .map_err(|e| HookError::Config(ConfigError::new("$", format!("not valid JSON: {e}"))))?;
    let Some(obj) = doc.as_object_mut() else {
        return Err(HookError::Config(ConfigError::new(
            "$",
            "must be a JSON object",
        )));
    };
    let target = obj
        .entry("target")
        .or_insert_with(|| Value::Object(Default::default()));
    let Some(target) = target.as_object_mut() else {
        return Err(HookError::Config(ConfigError::new(
            "target",
            "must be an object",
        )));
    };
    for (field, value, from) in [
        ("function_name", &spec.function_name, "Name"),
        ("alias", &spec.alias, "Alias"),
        ("baseline_version", &spec.current_version, "CurrentVersion"),
        ("canary_version", &spec.target_version, "TargetVersion"),
    ] {
        match target.get(field) {
            Some(Value::String(given)) if given != value => {
                return Err(HookError::Config(ConfigError::new(
                    format!("target.{field}"),
                    format!(
                        "is {given:?} but the deployment's AppSpec has {from} {value:?}; leave it out to take it from the AppSpec"
                    ),
                )));
            }
            _ => {
                target.insert(field.to_string(), Value::String(value.clone()));
            }
        }
    }
    CanaryConfig::from_json(&doc.to_string()).map_err(HookError::Config)
}

fn target_of(spec: &AppSpecTarget, config: Option<&CanaryConfig>) -> Target {
    config.and_then(|c| c.target.clone()).unwrap_or(Target {
        function_name: spec.function_name.clone(),
        alias: spec.alias.clone(),
        baseline_version: spec.current_version.clone(),
        canary_version: spec.target_version.clone(),
        routing: Default::default(),
        canary_alias: None,
    })
}

/// Handles one CodeDeploy invocation at `now_epoch`.
pub async fn handle<D, E, R, H>(
    event: &Value,
    settings: &HookSettings,
    now_epoch: i64,
    ports: HookPorts<'_, D, E, R, H>,
) -> Result<HookOutcome, HookFailure>
where
    D: Deployments,
    E: Executions,
    R: TrafficRouter,
    H: LifecycleHook,
{
    let ids = parse_event(event).map_err(|error| HookFailure {
        error,
        reported: false,
        report_error: None,
    })?;
    let result = match settings.kind {
        HookKind::BeforeAllowTraffic => before(&ids, settings, now_epoch, &ports).await,
        HookKind::AfterAllowTraffic => after(&ids, settings, &ports).await,
    };
    let outcome = match result {
        Ok(o) => o,
        Err(error) => {
            let sent = ports
                .hook
                .report(
                    &ids.deployment_id,
                    &ids.lifecycle_event_hook_execution_id,
                    false,
                )
                .await;
            return Err(HookFailure {
                error,
                reported: sent.is_ok(),
                report_error: sent.err(),
            });
        }
    };
    if let Some(succeeded) = outcome.reported {
        ports
            .hook
            .report(
                &ids.deployment_id,
                &ids.lifecycle_event_hook_execution_id,
                succeeded,
            )
            .await
            .map_err(|e| HookFailure {
                error: HookError::Report(e.clone()),
                reported: false,
                report_error: Some(e),
            })?;
    }
    Ok(outcome)
}

/// Refuses an invocation the function cannot serve at all (its settings are wrong): reports
/// Failed when the event names the hook execution, and returns the failure.
pub async fn refuse<H: LifecycleHook>(event: &Value, error: HookError, hook: &H) -> HookFailure {
    let Ok(ids) = parse_event(event) else {
        return HookFailure {
            error,
            reported: false,
            report_error: None,
        };
    };
    let sent = hook
        .report(
            &ids.deployment_id,
            &ids.lifecycle_event_hook_execution_id,
            false,
        )
        .await;
    HookFailure {
        error,
        reported: sent.is_ok(),
        report_error: sent.err(),
    }
}

/// What both hooks read first: the deployment, its AppSpec and the config.
struct Deployment {
    spec: AppSpecTarget,
    status: Option<String>,
    create_epoch: Option<i64>,
    /// The config, or why it is invalid.
    config: Result<CanaryConfig, HookError>,
}

async fn read_deployment<D: Deployments>(
    ids: &HookRef,
    settings: &HookSettings,
    deployments: &D,
) -> Result<Deployment, HookError> {
    let id = &ids.deployment_id;
    let info = deployments
        .deployment(id)
        .await
        .map_err(|error| HookError::Deployment {
            deployment_id: id.clone(),
            error,
        })?;
    let text = info.app_spec.ok_or_else(|| HookError::AppSpec {
        deployment_id: id.clone(),
        error: AppSpecError {
            path: "revision.appSpecContent.content".into(),
            message: "missing: the deployment carries no AppSpec content".into(),
        },
    })?;
    let spec = appspec::parse(&text).map_err(|error| HookError::AppSpec {
        deployment_id: id.clone(),
        error,
    })?;
    let config = config_for(settings.config.as_deref(), &spec);
    Ok(Deployment {
        spec,
        status: info.status,
        create_epoch: info.create_epoch,
        config,
    })
}

fn outcome(
    kind: HookKind,
    ids: &HookRef,
    target: &Target,
    reported: Option<bool>,
    execution: Option<String>,
    summary: String,
) -> HookOutcome {
    HookOutcome {
        hook: kind,
        deployment_id: ids.deployment_id.clone(),
        lifecycle_event_hook_execution_id: ids.lifecycle_event_hook_execution_id.clone(),
        reported,
        function: target.function_name.clone(),
        alias: target.alias.clone(),
        baseline_version: target.baseline_version.clone(),
        canary_version: target.canary_version.clone(),
        execution,
        summary,
    }
}

/// The execution name of this deployment's canary: the operator's naming with the
/// deployment's creation time, so that a retried invocation finds (and Step Functions
/// deduplicates) the same execution.
pub fn deployment_execution_name(config: &CanaryConfig, create_epoch: i64) -> String {
    execution_name(config, create_epoch)
}

async fn before<D, E, R, H>(
    ids: &HookRef,
    settings: &HookSettings,
    now_epoch: i64,
    ports: &HookPorts<'_, D, E, R, H>,
) -> Result<HookOutcome, HookError>
where
    D: Deployments,
    E: Executions,
{
    let kind = HookKind::BeforeAllowTraffic;
    let d = read_deployment(ids, settings, ports.deployments).await?;
    if let Some(status) = d.status.as_deref().filter(|s| ENDED.contains(s)) {
        return Err(HookError::Deployment {
            deployment_id: ids.deployment_id.clone(),
            error: PortError::Rejected(format!(
                "the deployment is {status}: no canary is started for it"
            )),
        });
    }
    let config = d.config?;
    let target = target_of(&d.spec, Some(&config));
    if !config.enabled {
        return Ok(outcome(
            kind,
            ids,
            &target,
            Some(true),
            None,
            "canary analysis is disabled (enabled: false): CodeDeploy shifts traffic without a canary".into(),
        ));
    }
    let longest = check_budget(&config, HOOK_BUDGET_SECONDS)?;
    let name = deployment_execution_name(&config, d.create_epoch.unwrap_or(now_epoch));
    for running in ports
        .executions
        .list(true, RECENT_EXECUTIONS)
        .await
        .map_err(HookError::Executions)?
    {
        if running.name == name {
            return Ok(outcome(
                kind,
                ids,
                &target,
                None,
                Some(running.id.clone()),
                format!(
                    "canary {} already runs for deployment {}; it reports when it ends",
                    running.id, ids.deployment_id
                ),
            ));
        }
        if let Some(execution) = canary_on_alias(ports.executions, &running.id, &target)
            .await
            .map_err(HookError::Executions)?
        {
            return Err(HookError::CanaryInProgress {
                function: target.function_name.clone(),
                alias: target.alias.clone(),
                execution,
            });
        }
    }
    let input = json!({ "config": &config, "hook": ids });
    let id = ports
        .executions
        .start(&name, &input)
        .await
        .map_err(HookError::Executions)?;
    Ok(outcome(
        kind,
        ids,
        &target,
        None,
        Some(id.clone()),
        format!(
            "canary {id} started for {}:{} v{} -> v{} (at most {longest} s); it reports to CodeDeploy when it ends",
            target.function_name, target.alias, target.baseline_version, target.canary_version
        ),
    ))
}

async fn after<D, E, R, H>(
    ids: &HookRef,
    settings: &HookSettings,
    ports: &HookPorts<'_, D, E, R, H>,
) -> Result<HookOutcome, HookError>
where
    D: Deployments,
    E: Executions,
    R: TrafficRouter,
{
    let kind = HookKind::AfterAllowTraffic;
    let d = read_deployment(ids, settings, ports.deployments).await?;
    let config = d.config?;
    let target = target_of(&d.spec, Some(&config));
    let alias = ports
        .router
        .read(&target)
        .await
        .map_err(HookError::Routing)?;
    let split = alias.additional.as_ref().filter(|(_, w)| *w > 0.0);
    if alias.version != target.canary_version || split.is_some() {
        let how = match split {
            Some((v, w)) => format!("version {} with {w}% routed to version {v}", alias.version),
            None => format!("version {}", alias.version),
        };
        return Ok(outcome(
            kind,
            ids,
            &target,
            Some(false),
            None,
            format!(
                "alias {} points at {how}, not at the target version {} alone",
                target.alias, target.canary_version
            ),
        ));
    }
    if !config.enabled {
        return Ok(outcome(
            kind,
            ids,
            &target,
            Some(true),
            None,
            format!(
                "alias {} serves version {}; canary analysis is disabled (enabled: false)",
                target.alias, target.canary_version
            ),
        ));
    }
    let Some(create) = d.create_epoch else {
        return Err(HookError::Deployment {
            deployment_id: ids.deployment_id.clone(),
            error: PortError::Rejected("the deployment has no createTime".into()),
        });
    };
    let name = deployment_execution_name(&config, create);
    let found = ports
        .executions
        .list(false, RECENT_EXECUTIONS)
        .await
        .map_err(HookError::Executions)?
        .into_iter()
        .find(|e| e.name == name);
    let Some(found) = found else {
        return Ok(outcome(
            kind,
            ids,
            &target,
            Some(false),
            None,
            format!(
                "no canary execution {name} for deployment {} among the {RECENT_EXECUTIONS} most recent",
                ids.deployment_id
            ),
        ));
    };
    let info = ports
        .executions
        .describe(&found.id)
        .await
        .map_err(HookError::Executions)?;
    let started_by = info
        .input
        .as_ref()
        .and_then(|i| i.get("hook"))
        .and_then(|h| h.get("deploymentId"))
        .and_then(Value::as_str);
    if started_by != Some(ids.deployment_id.as_str()) {
        return Ok(outcome(
            kind,
            ids,
            &target,
            Some(false),
            Some(info.id.clone()),
            format!(
                "execution {} was not started by deployment {} (its hook names {:?})",
                info.id, ids.deployment_id, started_by
            ),
        ));
    }
    let ok = info.status == RunStatus::Succeeded;
    let summary = if ok {
        format!(
            "alias {} serves version {} alone and canary {} succeeded",
            target.alias, target.canary_version, info.id
        )
    } else {
        format!(
            "canary {} is {:?}, not succeeded{}",
            info.id,
            info.status,
            info.error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        )
    };
    Ok(outcome(
        kind,
        ids,
        &target,
        Some(ok),
        Some(info.id),
        summary,
    ))
}

#[cfg(test)]
mod tests;
