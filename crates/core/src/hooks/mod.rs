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
mod budget;
mod error;
mod run;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{CanaryConfig, Target};
use crate::error::ConfigError;
use crate::operator::{canary_on_alias, execution_name};
use crate::ports::{Deployments, Executions, LifecycleHook, PortError, RunStatus, TrafficRouter};
use crate::state::HookRef;

pub use appspec::{AppSpecError, AppSpecTarget};
pub use budget::{check_budget, config_for, longest_canary_seconds};
pub use error::{HookError, HookFailure};
pub use run::deployment_execution_name;
use run::{after, before};

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

#[cfg(test)]
mod tests;
