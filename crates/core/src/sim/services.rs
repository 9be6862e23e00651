//! In-memory stand-ins for the orchestrator (Step Functions) and CodeDeploy, implementing
//! [`Executions`], [`Deployments`] and [`LifecycleHook`] the way the AWS services behave where
//! it matters to canary-gate: `StartExecution` is idempotent for the same name and input while
//! the execution runs and refuses a reused name otherwise; listings are newest first and carry
//! no input or output; a lifecycle hook accepts one status and refuses a second.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::Value;

use crate::ports::{
    DeploymentInfo, Deployments, ExecutionInfo, Executions, HistoryEvent, LifecycleHook, PortError,
    RunStatus,
};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means a panic elsewhere in a test; the data is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A simulated state machine's executions.
#[derive(Debug, Default)]
pub struct SimulatedExecutions {
    executions: Mutex<Vec<ExecutionInfo>>,
    clock: Mutex<i64>,
}

impl SimulatedExecutions {
    /// No executions; the clock at 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the time new executions start at (seconds since the Unix epoch).
    pub fn set_clock(&self, epoch: i64) {
        *lock(&self.clock) = epoch;
    }

    /// Adds an execution as it is (e.g. one that ended earlier).
    pub fn insert(&self, info: ExecutionInfo) {
        lock(&self.executions).push(info);
    }

    /// Ends an execution with `status` and, for a success, `output`, at `epoch`.
    pub fn finish(&self, id: &str, status: RunStatus, output: Option<Value>, epoch: i64) {
        if let Some(e) = lock(&self.executions).iter_mut().find(|e| e.id == id) {
            e.status = status;
            e.output = output;
            e.stopped_epoch = Some(epoch);
        }
    }

    /// Every execution, in start order.
    pub fn all(&self) -> Vec<ExecutionInfo> {
        lock(&self.executions).clone()
    }
}

impl Executions for SimulatedExecutions {
    async fn start(&self, name: &str, input: &Value) -> Result<String, PortError> {
        let mut all = lock(&self.executions);
        if let Some(e) = all.iter().find(|e| e.name == name) {
            // Step Functions: the same name and input while running answers the same
            // execution; anything else is `ExecutionAlreadyExists`.
            if e.status == RunStatus::Running && e.input.as_ref() == Some(input) {
                return Ok(e.id.clone());
            }
            return Err(PortError::Rejected(format!(
                "ExecutionAlreadyExists: execution {name} already exists"
            )));
        }
        let id = format!("arn:aws:states:us-east-1:123456789012:execution:canary:{name}");
        all.push(ExecutionInfo {
            id: id.clone(),
            name: name.to_string(),
            status: RunStatus::Running,
            started_epoch: *lock(&self.clock),
            stopped_epoch: None,
            input: Some(input.clone()),
            output: None,
            error: None,
            cause: None,
        });
        Ok(id)
    }

    async fn describe(&self, id: &str) -> Result<ExecutionInfo, PortError> {
        lock(&self.executions)
            .iter()
            .find(|e| e.id == id)
            .cloned()
            .ok_or_else(|| PortError::NotFound(format!("ExecutionDoesNotExist: {id}")))
    }

    async fn history(&self, id: &str) -> Result<Vec<HistoryEvent>, PortError> {
        self.describe(id).await.map(|_| Vec::new())
    }

    async fn list(&self, running_only: bool, max: usize) -> Result<Vec<ExecutionInfo>, PortError> {
        let mut out: Vec<ExecutionInfo> = lock(&self.executions)
            .iter()
            .filter(|e| !running_only || e.status == RunStatus::Running)
            .map(|e| ExecutionInfo {
                input: None,
                output: None,
                error: None,
                cause: None,
                ..e.clone()
            })
            .collect();
        out.reverse();
        out.sort_by_key(|e| std::cmp::Reverse(e.started_epoch));
        out.truncate(max);
        Ok(out)
    }

    async fn answer(
        &self,
        _task_token: &str,
        _outcome: Result<Value, (String, String)>,
    ) -> Result<(), PortError> {
        Ok(())
    }

    async fn stop(&self, id: &str, error: &str, cause: &str) -> Result<(), PortError> {
        let mut all = lock(&self.executions);
        let e = all
            .iter_mut()
            .find(|e| e.id == id)
            .ok_or_else(|| PortError::NotFound(format!("ExecutionDoesNotExist: {id}")))?;
        e.status = RunStatus::Aborted;
        e.error = Some(error.to_string());
        e.cause = Some(cause.to_string());
        Ok(())
    }
}

/// A status reported to a simulated CodeDeploy hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookReport {
    /// Deployment id.
    pub deployment_id: String,
    /// Lifecycle event hook execution id.
    pub hook_execution_id: String,
    /// Succeeded (true) or Failed.
    pub succeeded: bool,
}

/// Simulated CodeDeploy deployments and lifecycle hooks.
#[derive(Debug, Default)]
pub struct SimulatedCodeDeploy {
    deployments: Mutex<BTreeMap<String, DeploymentInfo>>,
    reports: Mutex<Vec<HookReport>>,
}

impl SimulatedCodeDeploy {
    /// No deployments.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a deployment.
    pub fn add(&self, deployment_id: &str, info: DeploymentInfo) {
        lock(&self.deployments).insert(deployment_id.to_string(), info);
    }

    /// Every status reported, in order.
    pub fn reports(&self) -> Vec<HookReport> {
        lock(&self.reports).clone()
    }
}

/// A Lambda deployment in progress from `target`'s baseline to its canary, as
/// `GetDeployment` describes it (the AppSpec CloudFormation writes for a SAM
/// `DeploymentPreference`).
pub fn lambda_deployment(target: &crate::config::Target) -> DeploymentInfo {
    let spec = serde_json::json!({
        "version": 0.0,
        "Resources": [{"Target": {"Type": "AWS::Lambda::Function", "Properties": {
            "Name": target.function_name, "Alias": target.alias,
            "CurrentVersion": target.baseline_version, "TargetVersion": target.canary_version,
        }}}],
    });
    DeploymentInfo {
        status: Some("InProgress".into()),
        create_epoch: Some(0),
        app_spec: Some(spec.to_string()),
    }
}

impl Deployments for SimulatedCodeDeploy {
    async fn deployment(&self, deployment_id: &str) -> Result<DeploymentInfo, PortError> {
        lock(&self.deployments)
            .get(deployment_id)
            .cloned()
            .ok_or_else(|| {
                PortError::NotFound(format!("DeploymentDoesNotExistException: {deployment_id}"))
            })
    }
}

impl LifecycleHook for SimulatedCodeDeploy {
    async fn report(
        &self,
        deployment_id: &str,
        hook_execution_id: &str,
        succeeded: bool,
    ) -> Result<(), PortError> {
        if !lock(&self.deployments).contains_key(deployment_id) {
            return Err(PortError::NotFound(format!(
                "DeploymentDoesNotExistException: {deployment_id}"
            )));
        }
        let mut reports = lock(&self.reports);
        if reports
            .iter()
            .any(|r| r.deployment_id == deployment_id && r.hook_execution_id == hook_execution_id)
        {
            return Err(PortError::Rejected(format!(
                "LifecycleEventAlreadyCompletedException: hook {hook_execution_id} already has a status"
            )));
        }
        reports.push(HookReport {
            deployment_id: deployment_id.to_string(),
            hook_execution_id: hook_execution_id.to_string(),
            succeeded,
        });
        Ok(())
    }
}
