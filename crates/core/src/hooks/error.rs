//! Why a hook could not do its work, and what a failed invocation reported.

use thiserror::Error;

use super::*;
use crate::error::ConfigError;
use crate::ports::PortError;

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
