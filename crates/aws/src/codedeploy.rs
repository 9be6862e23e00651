//! CodeDeploy behind [`LifecycleHook`] and [`Deployments`]: reports a lifecycle hook's
//! outcome with `PutLifecycleEventHookExecutionStatus` and reads a deployment's status,
//! creation time and AppSpec with `GetDeployment`.

use aws_sdk_codedeploy::Client;
use aws_sdk_codedeploy::types::LifecycleEventStatus;
use canary_gate_core::ports::{DeploymentInfo, Deployments, LifecycleHook, PortError};

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

impl Deployments for CodeDeployHook {
    async fn deployment(&self, deployment_id: &str) -> Result<DeploymentInfo, PortError> {
        let out = self
            .client
            .get_deployment()
            .deployment_id(deployment_id)
            .send()
            .await
            .map_err(classify)?;
        let Some(d) = out.deployment_info() else {
            return Err(PortError::NotFound(format!(
                "GetDeployment returned no deploymentInfo for {deployment_id}"
            )));
        };
        // Lambda deployments carry the AppSpec inline: `AppSpecContent` (what CloudFormation
        // writes) or the older `String` revision type.
        let app_spec = d.revision().and_then(|r| {
            r.app_spec_content()
                .and_then(|c| c.content())
                .or_else(|| r.string().and_then(|s| s.content()))
                .map(str::to_string)
        });
        Ok(DeploymentInfo {
            status: d.status().map(|s| s.as_str().to_string()),
            create_epoch: d.create_time().map(|t| t.secs()),
            app_spec,
        })
    }
}
