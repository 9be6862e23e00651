//! Notifications: which events a decision raises, their subject lines, bodies and the message
//! attributes subscribers filter on — for the judge's decisions, the controller's own events
//! (failed looks, conflicts, approvals), operators' overrides and the post-promotion soak.
//! This is the one composer of messages. Delivery, and every limit of the channel (SNS's
//! subject length and alphabet), lives in an adapter.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{CanaryConfig, MetricKind, Notifications};
use crate::judge::{MetricReport, Verdict};
use crate::policy::{Action, Decision};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A phase passed and traffic advanced.
    PhaseComplete,
    /// A metric failed (hold).
    RegressionDetected,
    /// The canary was rolled back.
    Rollback,
    /// The canary was promoted.
    Promoted,
    /// An operator must approve the next step.
    NeedsApproval,
}

impl Event {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::PhaseComplete => "phase_complete",
            Event::RegressionDetected => "regression_detected",
            Event::Rollback => "rollback",
            Event::Promoted => "promoted",
            Event::NeedsApproval => "needs_approval",
        }
    }

    /// The severity a decision's event carries.
    pub fn severity(self) -> Level {
        match self {
            Event::PhaseComplete | Event::Promoted => Level::Info,
            Event::RegressionDetected | Event::NeedsApproval => Level::Warning,
            Event::Rollback => Level::Critical,
        }
    }
}

/// How urgent a notification is (the `severity` attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// For the record.
    Info,
    /// Someone should look.
    Warning,
    /// Someone must act, or canary-gate acted on a regression.
    Critical,
}

impl Level {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Critical => "critical",
        }
    }
}

/// One message to publish.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The event.
    pub event: Event,
    /// Subject line (the adapter fits it to the channel's limits).
    pub subject: String,
    /// Message body (the text report).
    pub body: String,
    /// Message attributes: `event`, `severity`, `function`, `alias`.
    pub attributes: BTreeMap<String, String>,
    /// Channels from the config's notifications section.
    pub channels: Vec<String>,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// 64-bit FNV-1a, continued from `h` over `bytes`.
fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl Notification {
    /// A stable identifier of this message: the same event, subject, body and attributes
    /// give the same id, on every attempt and every retry of the step that sent it. SNS
    /// delivers at least once, and a publish whose answer timed out is retried without
    /// knowing whether the first one arrived; subscribers de-duplicate on this id (the
    /// adapter sends it as the `notification_id` attribute). 16 hexadecimal digits of
    /// 64-bit FNV-1a over the fields, each length-prefixed so that no two messages share
    /// an encoding.
    pub fn id(&self) -> String {
        let mut h = FNV_OFFSET;
        let mut feed = |bytes: &[u8]| {
            h = fnv1a(h, &(bytes.len() as u64).to_le_bytes());
            h = fnv1a(h, bytes);
        };
        feed(self.event.as_str().as_bytes());
        feed(self.subject.as_bytes());
        feed(self.body.as_bytes());
        for (k, v) in &self.attributes {
            feed(k.as_bytes());
            feed(v.as_bytes());
        }
        format!("{h:016x}")
    }
}

impl Notifications {
    /// The channels that hear of `event`.
    pub fn channels(&self, event: Event) -> &[String] {
        match event {
            Event::PhaseComplete => &self.on_phase_complete,
            Event::RegressionDetected => &self.on_regression_detected,
            Event::Rollback => &self.on_rollback,
            Event::Promoted => &self.on_promoted,
            Event::NeedsApproval => &self.on_needs_approval,
        }
    }
}

/// The events a decision raises.
pub fn events_for(d: &Decision) -> Vec<Event> {
    // A shift that waits for an operator has not happened: announce the request only (the
    // shift is announced when it is applied).
    if d.requires_approval
        && matches!(
            d.action,
            Action::Rollback | Action::Promote | Action::Advance
        )
    {
        return vec![Event::NeedsApproval];
    }
    let mut events = Vec::new();
    match d.action {
        Action::Rollback => events.push(Event::Rollback),
        Action::Promote => events.push(Event::Promoted),
        Action::Advance => events.push(Event::PhaseComplete),
        Action::Hold => events.push(Event::RegressionDetected),
        Action::Continue | Action::Extend => {}
    }
    if d.requires_approval {
        events.push(Event::NeedsApproval);
    }
    events
}

/// The function, alias and canary version a config names, for subjects and attributes.
struct Names {
    function: String,
    alias: String,
    version: String,
}

impl Names {
    fn of(config: &CanaryConfig) -> Self {
        match &config.target {
            Some(t) => Self {
                function: t.function_name.clone(),
                alias: t.alias.clone(),
                version: t.canary_version.clone(),
            },
            None => Self {
                function: "canary".to_string(),
                alias: "-".to_string(),
                version: String::new(),
            },
        }
    }

    /// "v42", or "canary" without a target.
    fn version_label(&self) -> String {
        if self.version.is_empty() {
            "canary".to_string()
        } else {
            format!("v{}", self.version)
        }
    }
}

use crate::format::printable;

/// The one builder of a message: subject, body, the attributes every message carries
/// (`event`, `severity`, `function`, `alias`) plus `extra`, and the event's channels.
fn message(
    config: &CanaryConfig,
    event: Event,
    level: Level,
    subject: String,
    body: String,
    extra: &[(&str, &str)],
) -> Notification {
    let names = Names::of(config);
    let mut attributes = BTreeMap::from([
        ("event".to_string(), event.as_str().to_string()),
        ("severity".to_string(), level.as_str().to_string()),
        ("function".to_string(), names.function),
        ("alias".to_string(), names.alias),
    ]);
    for (k, v) in extra {
        attributes.insert(k.to_string(), printable(v));
    }
    // Bodies carry text from outside (AWS messages, an operator's reason): escaped once here.
    Notification {
        event,
        subject: printable(&subject),
        body: printable(&body),
        attributes,
        channels: config.notifications.channels(event).to_vec(),
    }
}

/// Composes the notifications for a decision; `body` is the rendered report.
pub fn compose(config: &CanaryConfig, d: &Decision, body: &str) -> Vec<Notification> {
    let names = Names::of(config);
    let (function, version) = (names.function.clone(), names.version_label());
    events_for(d)
        .into_iter()
        .map(|event| {
            let what = match event {
                Event::PhaseComplete => format!("advanced to {}%", d.next_weight),
                Event::RegressionDetected => format!("holding at {}%", d.canary_weight),
                Event::Rollback => format!("rolled back at {}%", d.canary_weight),
                Event::Promoted => "promoted to 100%".to_string(),
                Event::NeedsApproval => format!("needs approval to {}", d.action.as_str()),
            };
            let mut subject = format!("canary-gate: {function} {version} {what}");
            if let Some(worst) = worst_change(d) {
                subject.push_str(" — ");
                subject.push_str(&worst);
            }
            message(
                config,
                event,
                event.severity(),
                subject,
                body.to_string(),
                &[],
            )
        })
        .collect()
}

/// A notification about the controller itself (failed looks, conflicts, approvals, applied
/// answers): the subject and body are `text`.
pub fn operational(config: &CanaryConfig, event: Event, level: Level, text: &str) -> Notification {
    let function = Names::of(config).function;
    let function = if config.target.is_some() {
        function
    } else {
        String::new()
    };
    message(
        config,
        event,
        level,
        format!("canary-gate: {function} {text}"),
        text.to_string(),
        &[],
    )
}

/// The notification of an operator's override (`promote` or `rollback`), with the `actor`
/// and `override` attributes.
pub fn operator_override(
    config: &CanaryConfig,
    action: Action,
    actor: &str,
    cause: &str,
    forced: bool,
) -> Notification {
    let n = Names::of(config);
    let promote = action == Action::Promote;
    let event = if promote {
        Event::Promoted
    } else {
        Event::Rollback
    };
    let what = match (promote, forced) {
        (true, true) => "force-promoted",
        (true, false) => "promoted",
        (false, _) => "rolled back",
    };
    let level = if forced || !promote {
        Level::Critical
    } else {
        Level::Warning
    };
    let subject = format!(
        "canary-gate: {} v{} {what} by operator {actor}",
        n.function, n.version
    );
    let body = format!(
        "Operator override on {}:{} (version {}).\n{cause}.\nExecution history keeps the same record.\n",
        n.function, n.alias, n.version
    );
    message(
        config,
        event,
        level,
        subject,
        body,
        &[("actor", actor), ("override", action.as_str())],
    )
}

/// What the post-promotion soak tells people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoakNews {
    /// The alias went back to the previous version.
    RolledBack,
    /// A regression that waits for an operator (`auto_rollback`).
    NeedsOperator,
    /// A critical metric fails at the hold tier; watched.
    Suspect,
}

/// The soak's notifications for `d` (its events, channels and report body), with a subject
/// saying what happened after the promotion and the `stage` attribute.
pub fn soak(config: &CanaryConfig, d: &Decision, body: &str, news: SoakNews) -> Vec<Notification> {
    let n = Names::of(config);
    let baseline = config
        .target
        .as_ref()
        .map(|t| t.baseline_version.as_str())
        .unwrap_or_default();
    let what = match news {
        SoakNews::RolledBack => {
            format!("rolled back to v{baseline} during post-promotion soak")
        }
        SoakNews::NeedsOperator => {
            "regressed during post-promotion soak: needs an operator".to_string()
        }
        SoakNews::Suspect => "suspect during post-promotion soak".to_string(),
    };
    compose(config, d, body)
        .into_iter()
        .map(|mut m| {
            m.subject = format!("canary-gate: {} v{} {what}", n.function, n.version);
            m.attributes
                .insert("stage".to_string(), "post_promotion_soak".to_string());
            m
        })
        .collect()
}

/// "p95 +109%" for the worst failing metric (or the worst warning when nothing fails).
fn worst_change(d: &Decision) -> Option<String> {
    let pick = |v: Verdict| -> Option<&MetricReport> {
        d.report
            .metrics
            .iter()
            .filter(|m| m.verdict == v && m.headline.is_some())
            .max_by(|a, b| {
                let w =
                    |m: &MetricReport| m.headline.as_ref().map_or(0.0, |h| h.worse_by(m.direction));
                w(a).total_cmp(&w(b))
            })
    };
    let m = pick(Verdict::Fail).or_else(|| pick(Verdict::Warning))?;
    let h = m.headline.as_ref()?;
    let label = if m.kind == MetricKind::Counter {
        m.name.clone()
    } else {
        h.statistic.clone()
    };
    Some(if h.relative.is_finite() {
        format!("{label} {:+.0}%", h.relative * 100.0)
    } else {
        format!("{label} up from zero")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(subject: &str, body: &str) -> Notification {
        Notification {
            event: Event::Rollback,
            subject: subject.into(),
            body: body.into(),
            attributes: BTreeMap::from([("event".to_string(), "rollback".to_string())]),
            channels: vec![],
        }
    }

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        // From the FNV reference test suite (Fowler, Noll, Vo): FNV-1a 64 of "", "a", "foobar".
        assert_eq!(fnv1a(FNV_OFFSET, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(FNV_OFFSET, b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn the_same_message_has_the_same_id_and_any_change_another() {
        let a = note("s", "body");
        assert_eq!(a.id(), note("s", "body").id());
        assert_eq!(a.id().len(), 16);
        assert_ne!(a.id(), note("s", "body.").id());
        // Field boundaries are part of the encoding.
        assert_ne!(note("sb", "ody").id(), a.id());
        let mut staged = note("s", "body");
        staged
            .attributes
            .insert("stage".into(), "post_promotion_soak".into());
        assert_ne!(staged.id(), a.id());
        // Channels decide where a message goes, not what it is.
        let mut routed = note("s", "body");
        routed.channels.push("ops".into());
        assert_eq!(routed.id(), a.id());
    }
}
