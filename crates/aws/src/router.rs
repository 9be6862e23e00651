//! The Lambda alias behind [`TrafficRouter`]: `GetAlias` to read, `UpdateAlias` with the
//! revision read before it to write. Weights are set, never added, so repeating a write is
//! harmless.
//!
//! Every write names the `RevisionId` it read; AWS rejects a stale one with
//! `PreconditionFailedException`, which becomes [`PortError::Conflict`]. Because some
//! emulators do not enforce the revision, the adapter also re-reads the alias right before
//! writing and refuses when the revision moved; the window left between that read and the
//! write is closed by AWS itself.
//!
//! A write whose outcome is unknown (a timeout, a reset connection or a 5xx after the request
//! went out) may have landed. The SDK must not simply resend it: the resent request names the
//! revision the first one replaced, AWS rejects it, and the caller would take its own write
//! for someone else's. So `UpdateAlias` runs without the SDK's retries and the adapter
//! retries it itself, re-reading the alias first: the revision unchanged means the write did
//! not land (send it again); the alias already routing exactly as asked means it did (done);
//! anything else is a [`PortError::Conflict`]. "Exactly as asked" includes the claim: the
//! alias's description, written in the same request, names the canary whose write it was,
//! so another canary's identical write is not taken for ours.

use std::collections::HashMap;

use aws_sdk_lambda::Client;
use aws_sdk_lambda::config::retry::RetryConfig;
use aws_sdk_lambda::types::AliasRoutingConfiguration;
use canary_gate_core::config::Target;
use canary_gate_core::ports::{AliasClaim, AliasState, Claim, PortError, TrafficRouter};

use crate::error::classify;
use crate::limits::{INITIAL_BACKOFF, MAX_ATTEMPTS};

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
        claim: &Claim,
    ) -> Result<AliasState, PortError> {
        let description = match claim {
            Claim::Set(c) => Some(c.description()),
            Claim::Unchanged => None,
        };
        let conflict = |found: String| PortError::Conflict {
            expected: revision_id.to_string(),
            found,
        };
        let now = self.read(target).await?;
        if now.revision_id != revision_id {
            return Err(conflict(now.revision_id));
        }
        let mut backoff = INITIAL_BACKOFF;
        let mut attempt = 1;
        loop {
            let result = self
                .client
                .update_alias()
                .function_name(&target.function_name)
                .name(&target.alias)
                .function_version(version)
                .routing_config(
                    AliasRoutingConfiguration::builder()
                        .set_additional_version_weights(Some(weights.clone()))
                        .build(),
                )
                .revision_id(revision_id)
                .set_description(description.clone())
                .customize()
                .config_override(
                    aws_sdk_lambda::config::Builder::default()
                        .retry_config(RetryConfig::disabled()),
                )
                .send()
                .await;
            let err = match result {
                Ok(out) => {
                    return Ok(alias_state(
                        out.function_version().unwrap_or(version),
                        out.routing_config(),
                        out.revision_id(),
                        out.description(),
                    ));
                }
                Err(e) => classify(e),
            };
            if !err.is_transient() || attempt >= MAX_ATTEMPTS {
                return Err(err);
            }
            attempt += 1;
            tokio::time::sleep(backoff).await;
            backoff *= 2;
            // Did the failed attempt land? Only the alias can say.
            let now = self.read(target).await?;
            if now.revision_id != revision_id {
                let ours = match claim {
                    Claim::Set(c) => now.claim.as_ref() == Some(c),
                    Claim::Unchanged => true,
                };
                return if ours && routes_as(&now, version, &weights) {
                    Ok(now)
                } else {
                    Err(conflict(now.revision_id))
                };
            }
        }
    }
}

/// Whether the alias points at `version` with exactly `weights` (fractions) split off.
fn routes_as(alias: &AliasState, version: &str, weights: &HashMap<String, f64>) -> bool {
    let split = weights.iter().next().map(|(v, w)| (v.as_str(), w * 100.0));
    let now = alias.additional.as_ref().map(|(v, w)| (v.as_str(), *w));
    alias.version == version
        && weights.len() <= 1
        && match (split, now) {
            (None, None) => true,
            (Some((a, x)), Some((b, y))) => a == b && (x - y).abs() < 1e-6,
            _ => false,
        }
}

/// The core's view of an alias: weights as percentages (the API speaks fractions).
fn alias_state(
    version: &str,
    routing: Option<&AliasRoutingConfiguration>,
    revision: Option<&str>,
    description: Option<&str>,
) -> AliasState {
    AliasState {
        claim: description.and_then(AliasClaim::parse),
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
            out.description(),
        ))
    }

    async fn set_canary_weight(
        &self,
        target: &Target,
        canary_weight: f64,
        revision_id: &str,
        claim: &Claim,
    ) -> Result<AliasState, PortError> {
        let weights = HashMap::from([(target.canary_version.clone(), canary_weight / 100.0)]);
        self.write(
            target,
            &target.baseline_version,
            weights,
            revision_id,
            claim,
        )
        .await
    }

    async fn promote(
        &self,
        target: &Target,
        revision_id: &str,
        claim: &Claim,
    ) -> Result<AliasState, PortError> {
        self.write(
            target,
            &target.canary_version,
            HashMap::new(),
            revision_id,
            claim,
        )
        .await
    }

    async fn rollback(
        &self,
        target: &Target,
        revision_id: &str,
        claim: &Claim,
    ) -> Result<AliasState, PortError> {
        self.write(
            target,
            &target.baseline_version,
            HashMap::new(),
            revision_id,
            claim,
        )
        .await
    }
}
