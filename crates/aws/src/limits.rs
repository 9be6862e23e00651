//! How long one SDK call may take and how often it is retried, sized to the Lambdas that make
//! the calls: the phase and soak-check functions run for at most 120 s and the CodeDeploy
//! hooks for 30 s, and a look makes a handful of calls (`GetMetricData`, `GetAlias` twice,
//! `UpdateAlias`, one `Publish` per topic). A hung endpoint must cost one call its budget, not
//! the function its timeout, so that the caller still learns of a transient failure and the
//! state machine's `Retry` gets its turn.
//!
//! | limit | value | why |
//! |---|---|---|
//! | connect | 3 s | a healthy regional endpoint connects in milliseconds |
//! | read (until the response headers) | 10 s | `GetMetricData` over 500 queries answers in a few seconds |
//! | one attempt, body included | 10 s | a response that stalls mid-body is cut off too |
//! | one operation, all attempts and backoff | 25 s | a hook (30 s) still has time to answer after one hung call |
//! | attempts | 3, exponential backoff from 0.5 s (at most 5 s), jittered | throttling and 5xx that clear within seconds are absorbed; longer ones go to the state machine's `Retry` |
//!
//! Throttling, 5xx, timeouts and connection failures are retried by the SDK's standard retry
//! strategy; what remains after the last attempt is classified by [`crate::classify`] as
//! transient ([`canary_gate_core::ports::PortError::is_transient`]).

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader};

/// Time allowed to open a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Time allowed from sending a request until its response headers arrive.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for one attempt, from sending the request to the end of the response body.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for one operation: every attempt and the backoff between them.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(25);
/// Attempts per operation (the first one included).
pub const MAX_ATTEMPTS: u32 = 3;
/// The first backoff between attempts; it doubles (with jitter) up to [`MAX_BACKOFF`].
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
/// The longest backoff between attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The timeouts every client gets.
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The retry strategy every client gets: standard mode, bounded attempts, exponential
/// backoff.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF)
}

/// Applies the timeouts and the retry strategy to a config loader (the production loader in
/// [`crate::sdk_config`], or one pointed at an emulator in tests).
pub fn with_limits(loader: ConfigLoader) -> ConfigLoader {
    loader
        .timeout_config(timeout_config())
        .retry_config(retry_config())
}

/// The loader `sdk_config` starts from: the environment's region, credentials and endpoint.
pub(crate) fn default_loader() -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_operation_fits_a_hook_and_bounds_its_attempts() {
        let t = timeout_config();
        assert_eq!(t.connect_timeout(), Some(CONNECT_TIMEOUT));
        assert_eq!(t.read_timeout(), Some(READ_TIMEOUT));
        assert_eq!(t.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
        assert_eq!(t.operation_timeout(), Some(OPERATION_TIMEOUT));
        // The shortest Lambda (a CodeDeploy hook) runs for 30 s.
        assert!(OPERATION_TIMEOUT < Duration::from_secs(30));
        assert!(ATTEMPT_TIMEOUT <= OPERATION_TIMEOUT);
        let r = retry_config();
        assert_eq!(r.max_attempts(), MAX_ATTEMPTS);
        assert_eq!(r.initial_backoff(), INITIAL_BACKOFF);
        assert_eq!(r.max_backoff(), MAX_BACKOFF);
    }
}
