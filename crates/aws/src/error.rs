//! Turning SDK errors into the core's [`PortError`] by kind: throttling and transient
//! failures are retryable, missing resources and rejected requests are not. Classification
//! uses the SDK's error kinds, the error code in the response's metadata and the HTTP
//! status, never message text.

use aws_sdk_cloudwatch::config::http::HttpResponse;
use aws_sdk_cloudwatch::error::{ProvideErrorMetadata, SdkError};
use canary_gate_core::ports::PortError;

/// Error codes AWS services use for throttling: the SDK's own list for its retry strategy,
/// plus the codes SNS (`Throttled`, `KMSThrottling`) and Lambda (`EC2ThrottledException`)
/// answer with.
const THROTTLING: [&str; 14] = [
    "Throttling",
    "ThrottlingException",
    "Throttled",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "ProvisionedThroughputExceededException",
    "BandwidthLimitExceeded",
    "SlowDown",
    "KMSThrottling",
    "EC2ThrottledException",
];

/// HTTP 429 Too Many Requests.
const TOO_MANY_REQUESTS: u16 = 429;

/// Classifies any SDK error.
pub fn classify<E>(err: SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let text = describe(&err);
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            PortError::Unavailable(text)
        }
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            let status = service.raw().status().as_u16();
            if THROTTLING.contains(&code) || status == TOO_MANY_REQUESTS {
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
                || code == "RequestTimeout"
                || code == "RequestTimeoutException"
                || service.raw().status().is_server_error()
            {
                PortError::Unavailable(text)
            } else {
                PortError::Rejected(text)
            }
        }
        _ => PortError::Rejected(text),
    }
}

fn describe<E: ProvideErrorMetadata + std::error::Error + 'static>(
    err: &SdkError<E, HttpResponse>,
) -> String {
    match err {
        SdkError::ServiceError(s) => format!(
            "{}: {} (HTTP {})",
            s.err().code().unwrap_or("error"),
            s.err().message().unwrap_or("no message"),
            s.raw().status().as_u16()
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
