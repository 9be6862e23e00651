//! What `status` and `history` print: times, spans, the status block and the decision table.

use canary_gate_core::operator::{CanaryStatus, DecisionEntry};

/// `2026-11-23 20:15:00 UTC`.
pub fn utc(epoch: i64) -> String {
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3_600,
        secs % 3_600 / 60,
        secs % 60
    )
}

/// `1h 02m`, `4m 05s`, `12s`.
pub fn span(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3_600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3_600, s % 3_600 / 60),
    }
}

/// The text of `status`.
pub fn render_status(st: &CanaryStatus, now_epoch: i64) -> String {
    canary_gate_core::format::printable(&status_text(st, now_epoch))
}

fn status_text(st: &CanaryStatus, now_epoch: i64) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<11}{v}\n"));
    line("execution", st.execution.clone());
    let when = match st.stopped_epoch {
        Some(end) => format!("ended {} after {}", utc(end), span(end - st.started_epoch)),
        None => format!(
            "started {}, {} ago",
            utc(st.started_epoch),
            span(now_epoch - st.started_epoch)
        ),
    };
    let status = serde_json::to_value(st.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    line("status", format!("{status} ({when})"));
    if let (Some(f), Some(a)) = (&st.function, &st.alias) {
        line(
            "target",
            format!(
                "{f}:{a}  baseline v{} → canary v{}",
                st.baseline_version.as_deref().unwrap_or("?"),
                st.canary_version.as_deref().unwrap_or("?")
            ),
        );
    }
    match (st.phase, st.weight) {
        (Some((p, n)), Some(w)) => line("phase", format!("{p} of {n}, canary at {w}% of traffic")),
        (None, Some(w)) => line("traffic", format!("canary at {w}%")),
        _ => line("phase", "not started yet".to_string()),
    }
    if let Some(d) = &st.last_decision {
        line(
            "last",
            format!(
                "{} ({}, {} ago): {}",
                d.action,
                d.state,
                span(now_epoch - d.epoch),
                d.summary
            ),
        );
    }
    if let Some(left) = st.phase_left_seconds {
        line(
            "time left",
            format!(
                "{} in this phase; canary timeout in {}",
                span(left),
                span(st.timeout_left_seconds.unwrap_or(0))
            ),
        );
    }
    if let Some(p) = &st.pending_approval {
        line(
            "waiting",
            format!(
                "for approval to {} (asked {} ago): `canary-gate approve` or `canary-gate reject`",
                p.action.as_str(),
                span(now_epoch - p.requested_epoch)
            ),
        );
    }
    for f in &st.delivery_failures {
        line("failed", f.to_string());
    }
    if let Some(e) = &st.error {
        let cause = st.cause.as_deref().unwrap_or("");
        line("ended with", format!("{e}: {cause}"));
    }
    out
}

/// The text of `history`, newest last.
pub fn render_history(decisions: &[DecisionEntry]) -> String {
    canary_gate_core::format::printable(&history_text(decisions))
}

fn history_text(decisions: &[DecisionEntry]) -> String {
    if decisions.is_empty() {
        return "no decisions yet\n".to_string();
    }
    let mut out =
        String::from("time                     state           action    phase  weight  why\n");
    for d in decisions {
        out.push_str(&format!(
            "{:<25}{:<16}{:<10}{:<7}{:<8}{}\n",
            utc(d.epoch),
            d.state,
            d.action,
            d.phase.map_or("-".to_string(), |p| p.to_string()),
            d.weight.map_or("-".to_string(), |w| format!("{w}%")),
            d.summary
        ));
        for f in &d.failures {
            out.push_str(&format!("{:<66}failed: {f}\n", ""));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_795_464_900), "2026-11-23 20:15:00 UTC");
    }

    #[test]
    fn spans_read_naturally() {
        assert_eq!(span(12), "12s");
        assert_eq!(span(245), "4m 05s");
        assert_eq!(span(3_720), "1h 02m");
        assert_eq!(span(-5), "0s");
    }

    #[test]
    fn status_text_names_the_state_as_step_functions_does() {
        let st = CanaryStatus {
            execution: "arn:x".into(),
            name: "x".into(),
            status: canary_gate_core::ports::RunStatus::TimedOut,
            started_epoch: 1_795_464_900,
            stopped_epoch: Some(1_795_466_700),
            function: Some("orders-api".into()),
            alias: Some("live".into()),
            baseline_version: Some("41".into()),
            canary_version: Some("42".into()),
            phase: Some((2, 3)),
            weight: Some(25.0),
            last_decision: None,
            phase_left_seconds: None,
            timeout_left_seconds: None,
            pending_approval: None,
            delivery_failures: vec![canary_gate_core::state::DeliveryFailure::notification(
                "rollback",
                "SNS: access denied",
            )],
            error: Some("States.Timeout".into()),
            cause: None,
        };
        let text = render_status(&st, 1_795_466_800);
        assert!(
            text.contains("status     TIMED_OUT (ended 2026-11-23 20:45:00 UTC after 30m 00s)"),
            "{text}"
        );
        assert!(
            text.contains("phase      2 of 3, canary at 25% of traffic"),
            "{text}"
        );
        assert!(text.contains("ended with States.Timeout"), "{text}");
        assert!(
            text.contains("failed     rollback: SNS: access denied (NotificationFailed)"),
            "{text}"
        );
        assert!(!text.contains("waiting"), "{text}");
    }
}
