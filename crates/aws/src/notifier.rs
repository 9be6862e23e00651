//! SNS behind [`Notifier`]: the subject line (spelled in the ASCII SNS accepts), the text
//! report as body, and the message attributes subscribers filter on (`event`, `severity`,
//! `function`, `alias`, and `actor` for operator overrides), plus `notification_id`: the same
//! for every attempt of one message, so that a subscriber can drop a second delivery.
//!
//! Which topic hears of an event follows the config's `notifications` section: each channel
//! named there is either a topic ARN, or a name mapped to a topic ARN by the deployment
//! (`CANARY_GATE_CHANNEL_TOPICS="ops=arn:…,deployments=arn:…"`); a channel without a mapping,
//! and an event without channels, goes to the default topic. A message goes once to each
//! distinct topic.
//!
//! Throttling and transient failures are retried by the SDK client, with backoff and within
//! the operation timeout of [`crate::with_limits`] (no second retry loop here: it multiplied
//! the SDK's attempts and let a hung SNS eat the Lambda's timeout after the alias was
//! written). A publish that still fails returns an error, classified, for the caller to
//! record — it never blocks or undoes a rollback.

use std::collections::BTreeMap;

use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;
use canary_gate_core::notify::Notification;
use canary_gate_core::ports::{Notifier, PortError};

use crate::error::classify;

/// The environment variable that maps channel names to topic ARNs.
pub const CHANNEL_TOPICS_ENV: &str = "CANARY_GATE_CHANNEL_TOPICS";

/// The message attribute that carries [`Notification::id`], the same on every attempt of one
/// message, for subscribers to de-duplicate SNS's at-least-once deliveries on.
pub const NOTIFICATION_ID: &str = "notification_id";

/// Publishes to the topics of a notification's channels.
#[derive(Debug, Clone)]
pub struct SnsNotifier {
    client: Client,
    default_topic: String,
    channels: BTreeMap<String, String>,
}

/// SNS accepts subjects of printable ASCII without line breaks, shorter than 100 characters.
const MAX_SUBJECT: usize = 99;

/// The subject as SNS accepts it: typographic characters spelled in ASCII (`—` as `-`, `→` as
/// `->`, `×` as `x`, `…` as `...`), any other non-ASCII character as `?`, control characters
/// and line breaks as spaces, and at most 99 characters.
pub fn sns_subject(subject: &str) -> String {
    let mut out = String::with_capacity(subject.len());
    for c in subject.chars() {
        match c {
            '\u{2014}' | '\u{2013}' | '\u{2212}' => out.push('-'),
            '\u{2192}' => out.push_str("->"),
            '\u{00d7}' => out.push('x'),
            '\u{2026}' => out.push_str("..."),
            '\u{2265}' => out.push_str(">="),
            '\u{2264}' => out.push_str("<="),
            '\u{00b1}' => out.push_str("+/-"),
            '\u{00b5}' | '\u{03bc}' => out.push('u'),
            c if c.is_ascii_control() || c.is_control() => out.push(' '),
            c if c.is_ascii() => out.push(c),
            _ => out.push('?'),
        }
    }
    let mut out = out.trim().to_string();
    out.truncate(MAX_SUBJECT);
    out
}

/// Parses a channel map, `name=topic-arn` pairs separated by commas (blank entries ignored).
/// Errors name the entry at fault.
pub fn parse_channel_topics(spec: &str) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, arn) = entry
            .split_once('=')
            .map(|(n, a)| (n.trim(), a.trim()))
            .filter(|(n, a)| !n.is_empty() && !a.is_empty())
            .ok_or_else(|| format!("{CHANNEL_TOPICS_ENV}: `{entry}` is not `channel=topic-arn`"))?;
        if !arn.starts_with("arn:") {
            return Err(format!(
                "{CHANNEL_TOPICS_ENV}: channel `{name}` maps to `{arn}`, which is not a topic ARN"
            ));
        }
        if map.insert(name.to_string(), arn.to_string()).is_some() {
            return Err(format!(
                "{CHANNEL_TOPICS_ENV}: channel `{name}` is mapped twice"
            ));
        }
    }
    Ok(map)
}

impl SnsNotifier {
    /// A notifier whose every message goes to `default_topic`.
    pub fn new(client: Client, default_topic: impl Into<String>) -> Self {
        Self {
            client,
            default_topic: default_topic.into(),
            channels: BTreeMap::new(),
        }
    }

    /// Routes the named channels to their topics.
    pub fn with_channels(mut self, channels: BTreeMap<String, String>) -> Self {
        self.channels = channels;
        self
    }

    /// The distinct topics a notification goes to, in the order of its channels.
    pub fn topics_for<'a>(&'a self, n: &'a Notification) -> Vec<&'a str> {
        let mut topics: Vec<&'a str> = Vec::new();
        for channel in &n.channels {
            let topic = if channel.starts_with("arn:") {
                channel.as_str()
            } else {
                self.channels
                    .get(channel)
                    .map_or(self.default_topic.as_str(), String::as_str)
            };
            if !topics.contains(&topic) {
                topics.push(topic);
            }
        }
        if topics.is_empty() {
            topics.push(&self.default_topic);
        }
        topics
    }

    async fn publish_once(&self, topic: &str, n: &Notification, id: &str) -> Result<(), PortError> {
        let mut req = self
            .client
            .publish()
            .topic_arn(topic)
            .subject(sns_subject(&n.subject))
            .message(canary_gate_core::format::printable(&n.body));
        let attributes = n
            .attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain([(NOTIFICATION_ID, id)]);
        for (k, v) in attributes {
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
    /// Publishes to every topic of the notification; a failing topic does not keep the
    /// others from hearing of it. Returns the first failure.
    async fn publish(&self, n: &Notification) -> Result<(), PortError> {
        let mut first_error = None;
        let id = n.id();
        for topic in self.topics_for(n) {
            if let Err(e) = self.publish_once(topic, n, &id).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use canary_gate_core::notify::Event;

    fn notifier(map: &str) -> SnsNotifier {
        let config = aws_sdk_sns::Config::builder()
            .behavior_version(aws_sdk_sns::config::BehaviorVersion::latest())
            .build();
        SnsNotifier::new(Client::from_conf(config), "arn:aws:sns:us-east-1:1:default")
            .with_channels(parse_channel_topics(map).expect("map"))
    }

    fn note(channels: &[&str]) -> Notification {
        Notification {
            event: Event::Rollback,
            subject: "s".into(),
            body: "b".into(),
            attributes: BTreeMap::new(),
            channels: channels.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn channels_map_to_topics_once_each_with_the_default_for_the_rest() {
        let n = notifier("ops=arn:aws:sns:us-east-1:1:ops, lead = arn:aws:sns:us-east-1:1:ops");
        assert_eq!(
            n.topics_for(&note(&[
                "ops",
                "lead",
                "pager",
                "arn:aws:sns:us-east-1:1:x"
            ])),
            vec![
                "arn:aws:sns:us-east-1:1:ops",
                "arn:aws:sns:us-east-1:1:default",
                "arn:aws:sns:us-east-1:1:x"
            ]
        );
        assert_eq!(
            n.topics_for(&note(&[])),
            vec!["arn:aws:sns:us-east-1:1:default"]
        );
    }

    #[test]
    fn subjects_are_spelled_in_ascii_for_sns() {
        assert_eq!(
            sns_subject("canary-gate: orders-api v42 rolled back at 25% — p95 +109%"),
            "canary-gate: orders-api v42 rolled back at 25% - p95 +109%"
        );
        assert_eq!(
            sns_subject("v41 → v42 ×3 ≥ 5 µs…"),
            "v41 -> v42 x3 >= 5 us..."
        );
        assert_eq!(sns_subject("line\nbreak ✓ é"), "line break ? ?");
        let long = sns_subject(&"é".repeat(300));
        assert_eq!(long.len(), 99);
        assert!(long.is_ascii());
    }

    #[test]
    fn bad_channel_maps_name_the_entry() {
        assert!(parse_channel_topics("").expect("empty").is_empty());
        let e = parse_channel_topics("ops=arn:a, deployments").expect_err("no arn");
        assert!(e.contains("`deployments`"), "{e}");
        let e = parse_channel_topics("ops=topic-name").expect_err("not an arn");
        assert!(e.contains("`ops`") && e.contains("not a topic ARN"), "{e}");
        let e = parse_channel_topics("ops=arn:a,ops=arn:b").expect_err("twice");
        assert!(e.contains("mapped twice"), "{e}");
    }
}
