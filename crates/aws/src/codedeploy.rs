//! CodeDeploy behind [`LifecycleHook`]: reports a lifecycle hook's outcome with
//! `PutLifecycleEventHookExecutionStatus`.

use aws_sdk_codedeploy::Client;
use aws_sdk_codedeploy::types::LifecycleEventStatus;
use canary_gate_core::ports::{LifecycleHook, PortError};

use crate::error::classify;

/// Reports hook outcomes to CodeDeploy.
#[derive(Debug, Clone)]
pub struct CodeDeployHook {
    client: Client,
}

impl CodeDeployHook {
    /// An adapter over a CodeDeploy client.
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

impl LifecycleHook for CodeDeployHook {
    async fn report(
        &self,
        deployment_id: &str,
        hook_execution_id: &str,
        succeeded: bool,
    ) -> Result<(), PortError> {
        let status = if succeeded {
            LifecycleEventStatus::Succeeded
        } else {
            LifecycleEventStatus::Failed
        };
        self.client
            .put_lifecycle_event_hook_execution_status()
            .deployment_id(deployment_id)
            .lifecycle_event_hook_execution_id(hook_execution_id)
            .status(status)
            .send()
            .await
            .map(|_| ())
            .map_err(classify)
    }
}
