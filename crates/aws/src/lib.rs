//! AWS adapters behind the core's ports: CloudWatch metrics ([`CloudWatchMetrics`]), the
//! Lambda alias ([`LambdaAliasRouter`]), SNS ([`SnsNotifier`]), CodeDeploy deployments and hooks
//! ([`CodeDeployHook`]) and Step Functions executions ([`StepFunctionsExecutions`]). They
//! translate; every decision stays in `canary-gate-core`. SDK errors become `PortError`s by kind.

mod codedeploy;
mod error;
mod executions;
mod insights;
mod metrics;
mod notifier;
mod router;

pub use codedeploy::CodeDeployHook;
pub use error::classify;
pub use executions::StepFunctionsExecutions;
pub use insights::{
    InvocationDurations, MAX_ROWS, VersionDurations, log_group, parse_rows, query_for,
};
pub use metrics::{
    CloudWatchMetrics, DEFAULT_INGESTION_DELAY_SECONDS, MAX_QUERIES, expand_percentiles,
};
pub use notifier::{CHANNEL_TOPICS_ENV, SnsNotifier, parse_channel_topics, sns_subject};
pub use router::LambdaAliasRouter;

/// Loads the shared SDK configuration from the environment (region, credentials, and
/// `AWS_ENDPOINT_URL` for a local emulator), once per process.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_from_env().await
}
