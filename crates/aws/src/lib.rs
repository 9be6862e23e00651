//! AWS adapters behind the core's ports: CloudWatch metrics ([`CloudWatchMetrics`]), the
//! Lambda alias ([`LambdaAliasRouter`]), SNS ([`SnsNotifier`]), CodeDeploy deployments and hooks
//! ([`CodeDeployHook`]), Step Functions executions ([`StepFunctionsExecutions`]) and STS
//! identity proofs ([`sign_identity_proof`], [`StsIdentityVerifier`]). They
//! translate; every decision stays in `canary-gate-core`. SDK errors become `PortError`s by kind.
//! Every client gets bounded timeouts and retries ([`with_limits`]); what each adapter does
//! under throttling, 5xx, resets, hung answers and partial CloudWatch answers is listed in
//! `docs/faults.md`.

mod codedeploy;
mod error;
mod executions;
mod identity;
mod insights;
mod limits;
mod metrics;
mod notifier;
mod router;

pub use codedeploy::CodeDeployHook;
pub use error::classify;
pub use executions::StepFunctionsExecutions;
pub use identity::{StsIdentityVerifier, approver_request, sign_identity_proof};
pub use insights::{
    InvocationDurations, MAX_ROWS, VersionDurations, log_group, parse_rows, query_for,
};
pub use limits::{
    ATTEMPT_TIMEOUT, CONNECT_TIMEOUT, INITIAL_BACKOFF, MAX_ATTEMPTS, MAX_BACKOFF,
    OPERATION_TIMEOUT, READ_TIMEOUT, retry_config, timeout_config, with_limits,
};
pub use metrics::{CloudWatchMetrics, DEFAULT_INGESTION_DELAY_SECONDS, MAX_QUERIES};
pub use notifier::{CHANNEL_TOPICS_ENV, SnsNotifier, parse_channel_topics, sns_subject};
pub use router::LambdaAliasRouter;

/// Loads the shared SDK configuration from the environment (region, credentials, and
/// `AWS_ENDPOINT_URL` for a local emulator), once per process, with the connect, read,
/// attempt and operation timeouts and the bounded retries of [`with_limits`].
pub async fn sdk_config() -> aws_config::SdkConfig {
    with_limits(limits::default_loader()).load().await
}
