//! Turning SDK errors into the core's [`PortError`] by kind: throttling and transient
//! failures are retryable, missing resources and rejected requests are not. Classification
//! uses the SDK's error kinds and HTTP status, never message text.

use aws_sdk_cloudwatch::error::{ProvideErrorMetadata, SdkError};
use canary_gate_core::ports::PortError;

/// Error codes AWS services use for throttling.
const THROTTLING: [&str; 6] = [
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "LimitExceededException",
];

/// Classifies any SDK error.
pub fn classify<E, R>(err: SdkError<E, R>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let text = describe(&err);
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            PortError::Unavailable(text)
        }
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            if THROTTLING.contains(&code) {
                PortError::Throttled(text)
            } else if code.contains("NotFound") || code.contains("DoesNotExist") {
                // `ResourceNotFoundException` (Lambda, SNS), `DeploymentDoesNotExistException`
                // (CodeDeploy), `ExecutionDoesNotExist` (Step Functions).
                PortError::NotFound(text)
            } else if code == "PreconditionFailedException" {
                PortError::Conflict {
                    expected: "the revision read before the write".into(),
                    found: text,
                }
            } else if code.starts_with("Service")
                || code == "InternalFailure"
                || code == "InternalError"
            {
                PortError::Unavailable(text)
            } else {
                PortError::Rejected(text)
            }
        }
        _ => PortError::Rejected(text),
    }
}

fn describe<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    err: &SdkError<E, R>,
) -> String {
    match err {
        SdkError::ServiceError(s) => format!(
            "{}: {}",
            s.err().code().unwrap_or("error"),
            s.err().message().unwrap_or("no message")
        ),
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
    }
}
