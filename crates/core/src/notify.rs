//! Notifications: which events a decision raises, their subject lines, bodies and the message
//! attributes subscribers filter on. Delivery (SNS) lives in an adapter; this module only
//! composes messages.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{CanaryConfig, MetricKind, Notifications};
use crate::judge::{MetricReport, Verdict};
use crate::policy::{Action, Decision};

/// SNS limits subjects to 100 characters.
const MAX_SUBJECT: usize = 100;

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

    fn severity(self) -> &'static str {
        match self {
            Event::PhaseComplete | Event::Promoted => "info",
            Event::RegressionDetected | Event::NeedsApproval => "warning",
            Event::Rollback => "critical",
        }
    }
}

/// One message to publish.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The event.
    pub event: Event,
    /// Subject line (at most 100 characters).
    pub subject: String,
    /// Message body (the text report).
    pub body: String,
    /// Message attributes: `event`, `severity`, `function`, `alias`.
    pub attributes: BTreeMap<String, String>,
    /// Channels from the config's notifications section.
    pub channels: Vec<String>,
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

/// Composes the notifications for a decision; `body` is the rendered report.
pub fn compose(config: &CanaryConfig, d: &Decision, body: &str) -> Vec<Notification> {
    let (function, alias, version) = match &config.target {
        Some(t) => (
            t.function_name.clone(),
            t.alias.clone(),
            format!("v{}", t.canary_version),
        ),
        None => ("canary".to_string(), "-".to_string(), "canary".to_string()),
    };
    events_for(d)
        .into_iter()
        .map(|event| {
            let channels = config.notifications.channels(event);
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
            let attributes = BTreeMap::from([
                ("event".to_string(), event.as_str().to_string()),
                ("severity".to_string(), event.severity().to_string()),
                ("function".to_string(), function.clone()),
                ("alias".to_string(), alias.clone()),
            ]);
            Notification {
                event,
                subject: truncate(&subject, MAX_SUBJECT),
                body: body.to_string(),
                attributes,
                channels: channels.to_vec(),
            }
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

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}
