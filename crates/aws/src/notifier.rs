//! SNS behind [`Notifier`]: the subject line, the text report as body, and the message
//! attributes subscribers filter on (`event`, `severity`, `function`, `alias`). Transient
//! failures are retried with backoff inside the adapter; a publish that still fails returns
//! an error for the caller to record — it never blocks or undoes a rollback.

use std::time::Duration;

use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;
use canary_gate_core::notify::Notification;
use canary_gate_core::ports::{Notifier, PortError};

use crate::error::classify;

/// Attempts per publish.
const ATTEMPTS: u32 = 3;

/// Publishes to one topic.
#[derive(Debug, Clone)]
pub struct SnsNotifier {
    client: Client,
    topic_arn: String,
    /// First backoff between attempts (doubles each time).
    pub backoff: Duration,
}

impl SnsNotifier {
    /// A notifier for `topic_arn`.
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
            backoff: Duration::from_millis(200),
        }
    }

    async fn publish_once(&self, n: &Notification) -> Result<(), PortError> {
        let mut req = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(&n.subject)
            .message(&n.body);
        for (k, v) in &n.attributes {
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .map_err(|e| PortError::Rejected(format!("attribute {k}: {e}")))?;
            req = req.message_attributes(k, value);
        }
        req.send().await.map(|_| ()).map_err(classify)
    }
}

impl Notifier for SnsNotifier {
    async fn publish(&self, n: &Notification) -> Result<(), PortError> {
        let mut wait = self.backoff;
        let mut last = None;
        for attempt in 1..=ATTEMPTS {
            match self.publish_once(n).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| PortError::Unavailable("publish failed".into())))
    }
}
