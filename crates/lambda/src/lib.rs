//! What canary-gate's Lambda functions share, so that each entry point only reads its
//! settings, builds its adapters and calls the core: settings from the environment
//! ([`env`]), every client from one SDK configuration ([`Clients`]), the clock ([`now`]),
//! and errors turned into `Diagnostic`s with stable types ([`diagnostic`]).

use std::time::{SystemTime, UNIX_EPOCH};

/// The adapters, for constants and types the functions name.
pub use canary_gate_aws as aws;

use canary_gate_aws::{
    CloudWatchMetrics, CodeDeployHook, InvocationDurations, LambdaAliasRouter, SnsNotifier,
    StepFunctionsExecutions, StsIdentityVerifier,
};
use lambda_runtime::{Diagnostic, Error, tracing};

/// Seconds since the Unix epoch, now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Logs an error with its stable type and turns it into the `Diagnostic` Lambda returns
/// (the `errorType` the state machine's Retry/Catch match).
pub fn diagnostic(error_type: &str, message: impl std::fmt::Display) -> Diagnostic {
    let message = message.to_string();
    tracing::error!(error_type, "{message}");
    Diagnostic {
        error_type: error_type.to_string(),
        error_message: message,
    }
}

/// Settings from the environment.
pub mod env {
    use lambda_runtime::Error;

    /// The variable's value; unset and blank are both `None`.
    pub fn var(name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }

    /// The variable's value, or an error saying why the function needs it.
    pub fn required(name: &str, needed_for: &str) -> Result<String, Error> {
        var(name).ok_or_else(|| Error::from(format!("{name} is not set: {needed_for}")))
    }
}

/// Every client a function needs, built from one SDK configuration (region, credentials,
/// timeouts and retries; `AWS_ENDPOINT_URL` for a local emulator).
pub struct Clients {
    sdk: aws_config::SdkConfig,
}

impl Clients {
    /// Loads the SDK configuration, once per process.
    pub async fn load() -> Self {
        Self {
            sdk: canary_gate_aws::sdk_config().await,
        }
    }

    /// CloudWatch metrics, with per-invocation durations from the functions' logs.
    pub fn metrics(&self) -> CloudWatchMetrics {
        CloudWatchMetrics::new(aws_sdk_cloudwatch::Client::new(&self.sdk))
            .with_invocation_durations(InvocationDurations::new(
                aws_sdk_cloudwatchlogs::Client::new(&self.sdk),
            ))
    }

    /// The target's alias.
    pub fn router(&self) -> LambdaAliasRouter {
        LambdaAliasRouter::new(aws_sdk_lambda::Client::new(&self.sdk))
    }

    /// CodeDeploy deployments and lifecycle reports.
    pub fn codedeploy(&self) -> CodeDeployHook {
        CodeDeployHook::new(aws_sdk_codedeploy::Client::new(&self.sdk))
    }

    /// STS, verifying operators' identity proofs.
    pub fn identity(&self) -> StsIdentityVerifier {
        StsIdentityVerifier::new(&self.sdk)
    }

    /// The canary state machine's executions.
    pub fn executions(&self, state_machine_arn: String) -> StepFunctionsExecutions {
        StepFunctionsExecutions::new(aws_sdk_sfn::Client::new(&self.sdk), state_machine_arn)
    }

    /// SNS: the stack's topic and the channel topics mapped in
    /// [`canary_gate_aws::CHANNEL_TOPICS_ENV`].
    pub fn notifier(&self, topic_arn: String) -> Result<SnsNotifier, Error> {
        let channels = canary_gate_aws::parse_channel_topics(
            &env::var(canary_gate_aws::CHANNEL_TOPICS_ENV).unwrap_or_default(),
        )?;
        Ok(
            SnsNotifier::new(aws_sdk_sns::Client::new(&self.sdk), topic_arn)
                .with_channels(channels),
        )
    }
}
