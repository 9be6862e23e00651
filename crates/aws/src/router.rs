//! The Lambda alias behind [`TrafficRouter`]: `GetAlias` to read, `UpdateAlias` with the
//! revision read before it to write. Weights are set, never added, so repeating a write is
//! harmless.
//!
//! Every write names the `RevisionId` it read; AWS rejects a stale one with
//! `PreconditionFailedException`, which becomes [`PortError::Conflict`]. Because some
//! emulators do not enforce the revision, the adapter also re-reads the alias right before
//! writing and refuses when the revision moved; the window left between that read and the
//! write is closed by AWS itself.

use std::collections::HashMap;

use aws_sdk_lambda::Client;
use aws_sdk_lambda::types::AliasRoutingConfiguration;
use canary_gate_core::config::Target;
use canary_gate_core::ports::{AliasState, PortError, TrafficRouter};

use crate::error::classify;

/// Reads and writes one alias's routing.
#[derive(Debug, Clone)]
pub struct LambdaAliasRouter {
    client: Client,
}

impl LambdaAliasRouter {
    /// An adapter over a Lambda client.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    async fn write(
        &self,
        target: &Target,
        version: &str,
        weights: HashMap<String, f64>,
        revision_id: &str,
    ) -> Result<AliasState, PortError> {
        let now = self.read(target).await?;
        if now.revision_id != revision_id {
            return Err(PortError::Conflict {
                expected: revision_id.to_string(),
                found: now.revision_id,
            });
        }
        let out = self
            .client
            .update_alias()
            .function_name(&target.function_name)
            .name(&target.alias)
            .function_version(version)
            .routing_config(
                AliasRoutingConfiguration::builder()
                    .set_additional_version_weights(Some(weights))
                    .build(),
            )
            .revision_id(revision_id)
            .send()
            .await
            .map_err(classify)?;
        Ok(alias_state(
            out.function_version().unwrap_or(version),
            out.routing_config(),
            out.revision_id(),
        ))
    }
}

/// The core's view of an alias: weights as percentages (the API speaks fractions).
fn alias_state(
    version: &str,
    routing: Option<&AliasRoutingConfiguration>,
    revision: Option<&str>,
) -> AliasState {
    AliasState {
        version: version.to_string(),
        additional: routing
            .and_then(|r| r.additional_version_weights())
            .and_then(|w| w.iter().next())
            .map(|(v, w)| (v.clone(), w * 100.0)),
        revision_id: revision.unwrap_or_default().to_string(),
    }
}

impl TrafficRouter for LambdaAliasRouter {
    async fn read(&self, target: &Target) -> Result<AliasState, PortError> {
        let out = self
            .client
            .get_alias()
            .function_name(&target.function_name)
            .name(&target.alias)
            .send()
            .await
            .map_err(classify)?;
        Ok(alias_state(
            out.function_version().unwrap_or_default(),
            out.routing_config(),
            out.revision_id(),
        ))
    }

    async fn set_canary_weight(
        &self,
        target: &Target,
        canary_weight: f64,
        revision_id: &str,
    ) -> Result<AliasState, PortError> {
        let weights = HashMap::from([(target.canary_version.clone(), canary_weight / 100.0)]);
        self.write(target, &target.baseline_version, weights, revision_id)
            .await
    }

    async fn promote(&self, target: &Target, revision_id: &str) -> Result<AliasState, PortError> {
        self.write(target, &target.canary_version, HashMap::new(), revision_id)
            .await
    }

    async fn rollback(&self, target: &Target, revision_id: &str) -> Result<AliasState, PortError> {
        self.write(
            target,
            &target.baseline_version,
            HashMap::new(),
            revision_id,
        )
        .await
    }
}
