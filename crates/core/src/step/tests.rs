//! Step logic over the simulated Lambda and small hand-written fakes.

use super::*;
use crate::ports::Fetched;
use crate::sim::{Fleet, MetricNames, Scenario, SimulatedLambda, run_ready};

fn config() -> CanaryConfig {
    CanaryConfig::from_json(include_str!("../../../../examples/demo-config.json"))
        .expect("demo config")
}

fn sim(scenario: Scenario) -> SimulatedLambda {
    let c = config();
    let names = MetricNames {
        latency: "latency".into(),
        errors: "errors".into(),
    };
    SimulatedLambda::new(
        Fleet::new(scenario, names, 9),
        c.target.as_ref().expect("target"),
        0,
        60,
    )
}

fn ready<T>(f: impl std::future::Future<Output = T>) -> T {
    run_ready(f).expect("simulated steps never wait")
}

/// A notifier whose every publish fails.
struct BrokenNotifier;

impl Notifier for BrokenNotifier {
    async fn publish(&self, _n: &Notification) -> Result<(), PortError> {
        Err(PortError::Unavailable("SNS is down".into()))
    }
}

#[test]
fn start_routes_the_first_share_and_refuses_a_second_canary() {
    let s = sim(Scenario::healthy(50.0));
    let exec = ready(start(config(), 0, None, &s)).expect("starts");
    let alias = s.alias();
    assert_eq!(alias.additional, Some(("42".to_string(), 5.0)));
    assert_eq!(alias.version, "41");
    assert_eq!(exec.alias_revision, alias.revision_id);
    let err = ready(start(config(), 0, None, &s)).expect_err("second canary refused");
    assert_eq!(err.error_type(), "CanaryInProgress");
}

#[test]
fn start_refuses_an_alias_not_on_the_baseline() {
    let s = sim(Scenario::healthy(50.0));
    let c = config();
    let t = c.target.clone().expect("target");
    let rev = s.alias().revision_id;
    ready(s.promote(&t, &rev)).expect("promote by hand");
    let err = ready(start(c, 0, None, &s)).expect_err("alias points at the canary");
    assert_eq!(err.error_type(), "UnexpectedBaseline");
}

#[test]
fn a_foreign_alias_change_stops_the_canary_without_writing() {
    let s = sim(Scenario::healthy(50.0));
    let exec = ready(start(config(), 0, None, &s)).expect("starts");
    let t = exec.config.target.clone().expect("target");
    // Someone else moves the weight to 50 %.
    let rev = s.alias().revision_id;
    ready(s.set_canary_weight(&t, 50.0, &rev)).expect("foreign write");
    let before = s.alias();
    s.run_until(60);
    let err = ready(look(exec, 60, &s, &s, &s)).expect_err("conflict");
    assert_eq!(err.error_type(), "AliasConflict");
    assert_eq!(
        s.alias(),
        before,
        "canary-gate must not overwrite the foreign change"
    );
}

#[test]
fn rollback_happens_even_when_notifications_fail() {
    let s = sim(Scenario::healthy(50.0).with_regression(2.1, 26.0));
    let mut exec = ready(start(config(), 0, None, &s)).expect("starts");
    let mut now = 0;
    let mut failures = Vec::new();
    while exec.run.outcome.is_none() && now < 1800 {
        now += 60;
        s.run_until(now);
        let out = ready(look(exec, now, &s, &s, &BrokenNotifier)).expect("look");
        failures.extend(out.notification_failures.clone());
        exec = out.execution;
    }
    assert_eq!(exec.run.outcome, Some(Outcome::RolledBack));
    let alias = s.alias();
    assert_eq!(alias.version, "41");
    assert_eq!(alias.additional, None, "routing cleared");
    assert!(
        failures
            .iter()
            .any(|f| f.what == "rollback" && f.kind.error_type() == "NotificationFailed"),
        "{failures:?}"
    );
}

#[test]
fn healthy_canary_walks_the_ramp_and_promotes() {
    let s = sim(Scenario::healthy(50.0));
    let mut exec = ready(start(config(), 0, None, &s)).expect("starts");
    let mut now = 0;
    let mut weights = vec![s.alias().weight_of("42")];
    let mut wait = 60;
    while exec.run.outcome.is_none() && now < 3600 {
        now += wait as i64;
        s.run_until(now);
        let out = ready(look(exec, now, &s, &s, &s)).expect("look");
        let w = s.alias().weight_of("42");
        if weights.last() != Some(&w) {
            weights.push(w);
        }
        wait = out.wait_seconds;
        exec = out.execution;
    }
    assert_eq!(exec.run.outcome, Some(Outcome::Promoted));
    assert_eq!(weights, vec![5.0, 25.0, 100.0]);
    assert_eq!(s.alias().version, "42");
    let events: Vec<_> = s.published().iter().map(|n| n.event).collect();
    assert!(events.contains(&notify::Event::Promoted), "{events:?}");
}

/// A metrics source that, like CloudWatch, leaves out the most recent `lag` seconds.
struct Lagging<'a> {
    sim: &'a SimulatedLambda,
    lag: i64,
}

impl MetricsSource for Lagging<'_> {
    async fn fetch(
        &self,
        config: &CanaryConfig,
        target: &Target,
        range: TimeRange,
    ) -> Result<Fetched, PortError> {
        let end = range.end - self.lag;
        if end <= range.start {
            return Ok(Fetched {
                through: Some(range.start),
                ..Fetched::default()
            });
        }
        let mut f = self
            .sim
            .fetch(
                config,
                target,
                TimeRange {
                    start: range.start,
                    end,
                },
            )
            .await?;
        f.through = Some(end);
        Ok(f)
    }
}

#[test]
fn sequential_looks_read_what_a_lagging_source_left_out_earlier() {
    // Looks every 60 s while the source lags 120 s: each increment must start where the
    // data seen so far end, not at the previous look, or it is always empty.
    let s = sim(Scenario::healthy(50.0).with_regression(2.5, 1.0));
    let lagging = Lagging { sim: &s, lag: 120 };
    let mut exec = ready(start(config(), 0, None, &s)).expect("starts");
    let mut now = 0;
    while exec.run.outcome.is_none() && now < 300 {
        now += 60;
        s.run_until(now);
        let out = ready(look(exec, now, &lagging, &s, &s)).expect("look");
        exec = out.execution;
        if now >= 180 {
            assert_eq!(
                exec.data_through_epoch,
                Some(now - 120),
                "the tests have taken in everything the source had"
            );
        }
    }
    assert_eq!(
        exec.run.outcome,
        Some(Outcome::RolledBack),
        "a 2.5x latency regression is rolled back in the 5 % phase: {:?}",
        exec.history.iter().map(|h| &h.reason).collect::<Vec<_>>()
    );
    assert_eq!(exec.run.phase, 1);
    assert!(exec.run.sequential.looks > 0);
}

#[test]
fn error_types_are_stable_names() {
    assert_eq!(
        StepError::Metrics(PortError::Throttled("x".into())).error_type(),
        "Transient"
    );
    assert_eq!(
        StepError::Metrics(PortError::Rejected("x".into())).error_type(),
        "MetricsUnavailable"
    );
    let conflict = PortError::Conflict {
        expected: "a".into(),
        found: "b".into(),
    };
    assert_eq!(StepError::Routing(conflict).error_type(), "AliasConflict");
}

mod ops_contract {
    use super::*;
    use crate::step::ops::{PhaseEvent, PhaseResponse, Ports, handle};
    use std::sync::Mutex;

    /// Records CodeDeploy reports.
    #[derive(Default)]
    struct RecordingHook(Mutex<Vec<(String, String, bool)>>);

    impl crate::ports::LifecycleHook for RecordingHook {
        async fn report(&self, d: &str, h: &str, ok: bool) -> Result<(), PortError> {
            self.0
                .lock()
                .expect("lock")
                .push((d.to_string(), h.to_string(), ok));
            Ok(())
        }
    }

    fn call(
        event: serde_json::Value,
        now: i64,
        s: &SimulatedLambda,
        hook: &RecordingHook,
    ) -> Result<PhaseResponse, StepError> {
        let event: PhaseEvent = serde_json::from_value(event).expect("event parses");
        ready(handle(
            event,
            now,
            Ports {
                metrics: s,
                router: s,
                notifier: s,
                hook,
            },
        ))
    }

    fn sample_event(name: &str) -> serde_json::Value {
        let path = format!(
            "{}/../../events/phase/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&path).expect("sample event")).expect("json")
    }

    #[test]
    fn start_event_from_events_dir_starts_the_canary() {
        let s = sim(Scenario::healthy(50.0));
        let hook = RecordingHook::default();
        let r = call(sample_event("start"), 0, &s, &hook).expect("start");
        assert_eq!(r.action, Action::Continue);
        assert!(!r.awaiting_approval);
        assert_eq!(r.wait_seconds, 60);
        assert_eq!(s.alias().weight_of("42"), 5.0);
    }

    #[test]
    fn invalid_config_fails_with_stable_error_type_and_path() {
        let s = sim(Scenario::healthy(50.0));
        let hook = RecordingHook::default();
        let mut e = sample_event("start");
        e["config"]["canary_phases"][0]["traffic_percentage"] = 150.into();
        let err = call(e, 0, &s, &hook).expect_err("invalid");
        assert_eq!(err.error_type(), "InvalidConfig");
        assert!(
            err.to_string()
                .contains("canary_phases[0].traffic_percentage"),
            "{err}"
        );
        assert_eq!(s.alias().additional, None, "nothing changed");
    }

    #[test]
    fn error_hold_then_rollback_after_timeout_and_finish_reports_to_codedeploy() {
        let s = sim(Scenario::healthy(50.0));
        let hook = RecordingHook::default();
        let mut start = sample_event("start");
        start["hook"] =
            serde_json::json!({"deploymentId": "d-1", "lifecycleEventHookExecutionId": "h-1"});
        let r = call(start, 0, &s, &hook).expect("start");
        let exec = serde_json::to_value(r.execution.expect("execution")).expect("json");
        let err = serde_json::json!({"Error": "MetricsUnavailable", "Cause": "boom"});
        let r = call(
            serde_json::json!({"op": "error", "execution": exec, "error": err}),
            60,
            &s,
            &hook,
        )
        .expect("hold");
        assert_eq!(r.action, Action::Hold);
        assert_eq!(s.alias().weight_of("42"), 5.0, "holding keeps the weight");
        let exec = serde_json::to_value(r.execution.expect("execution")).expect("json");
        let r = call(
            serde_json::json!({"op": "error", "execution": exec, "error": err}),
            60 + 1800,
            &s,
            &hook,
        )
        .expect("rollback");
        assert_eq!(r.action, Action::Rollback);
        assert_eq!(s.alias().additional, None);
        assert_eq!(s.alias().version, "41");
        let exec = serde_json::to_value(r.execution.expect("execution")).expect("json");
        call(
            serde_json::json!({"op": "finish", "execution": exec, "succeeded": false}),
            2000,
            &s,
            &hook,
        )
        .expect("finish");
        assert_eq!(
            hook.0.lock().expect("lock").as_slice(),
            &[("d-1".to_string(), "h-1".to_string(), false)]
        );
    }

    #[test]
    fn approval_request_keeps_the_token_out_of_messages_and_timeout_rolls_back_safely() {
        let s = sim(Scenario::healthy(50.0));
        let hook = RecordingHook::default();
        let r = call(sample_event("start"), 0, &s, &hook).expect("start");
        let exec = serde_json::to_value(r.execution.expect("execution")).expect("json");
        let r = call(
            serde_json::json!({"op": "request-approval", "execution": exec.clone(), "action": "rollback", "taskToken": "tok-123"}),
            60,
            &s,
            &hook,
        )
        .expect("request");
        assert!(r.awaiting_approval);
        let asked = s.published();
        let n = asked.last().expect("published");
        assert_eq!(n.attributes["event"], "needs_approval");
        // The token is a bearer credential: it goes into no message or response.
        assert!(
            !n.attributes.values().any(|v| v.contains("tok-123")),
            "{n:?}"
        );
        assert!(!n.subject.contains("tok-123") && !n.body.contains("tok-123"));
        assert!(!serde_json::to_string(&r).expect("json").contains("tok-123"));
        assert!(n.body.contains("canary-gate approve"), "{}", n.body);
        let r = call(
            serde_json::json!({"op": "timeout", "execution": exec.clone(), "action": "advance"}),
            120,
            &s,
            &hook,
        )
        .expect("timeout");
        assert_eq!(
            r.action,
            Action::Hold,
            "an unanswered advance does not happen"
        );
        assert_eq!(s.alias().weight_of("42"), 5.0);
        let r = call(
            serde_json::json!({"op": "timeout", "execution": exec, "action": "rollback"}),
            120,
            &s,
            &hook,
        )
        .expect("timeout");
        assert_eq!(r.action, Action::Rollback, "an unanswered rollback happens");
        assert_eq!(s.alias().additional, None);
    }
}

mod deliveries;

#[test]
fn an_approval_after_a_foreign_alias_change_writes_nothing_and_a_retried_one_writes_once() {
    let s = sim(Scenario::healthy(50.0));
    let exec = ready(start(config(), 0, None, &s)).expect("starts");
    let t = exec.config.target.clone().expect("target");
    // During the approval wait someone else moves the split to 50 %.
    let rev = s.alias().revision_id;
    ready(s.set_canary_weight(&t, 50.0, &rev)).expect("foreign write");
    let before = s.alias();
    for action in [Action::Advance, Action::Promote] {
        let err = ready(apply_approved(exec.clone(), action, 300, &s)).expect_err("conflict");
        assert_eq!(err.error_type(), "AliasConflict", "{action:?}");
        assert_eq!(s.alias(), before, "{action:?} overwrote a foreign change");
    }
    // An abort still rolls back.
    ready(apply_approved(exec, Action::Rollback, 300, &s)).expect("rollback goes ahead");
    assert_eq!(s.alias().version, "41");
    assert_eq!(s.alias().additional, None);

    // An approved advance whose answer was lost is retried with the old state.
    let s = sim(Scenario::healthy(50.0));
    let exec = ready(start(config(), 0, None, &s)).expect("starts");
    let first = ready(apply_approved(exec.clone(), Action::Advance, 300, &s)).expect("advance");
    let written = s.alias();
    assert_eq!(written.additional, Some(("42".to_string(), 25.0)));
    let again =
        ready(apply_approved(exec, Action::Advance, 305, &s)).expect("the retry carries on");
    assert_eq!(s.alias(), written, "the retry writes nothing");
    assert_eq!(again.alias_revision, written.revision_id);
    assert_eq!(again.run.phase, first.run.phase);
}

#[test]
fn a_look_retried_after_its_alias_write_carries_on_from_it() {
    // The phase Lambda times out (or crashes) after `UpdateAlias` succeeded: the state
    // machine retries the look with the state it sent before. The retry must recognise its
    // own write, not call it someone else's change and stop monitoring the split.
    let s = sim(Scenario::healthy(50.0));
    let mut exec = ready(start(config(), 0, None, &s)).expect("starts");
    let mut now = 0;
    let mut retried = 0;
    while exec.run.outcome.is_none() && now < 3600 {
        now += 60;
        s.run_until(now);
        let before = exec.clone();
        let first = ready(look(exec, now, &s, &s, &s)).expect("look");
        let wrote = first.execution.alias_revision != before.alias_revision;
        if !wrote {
            exec = first.execution;
            continue;
        }
        // The answer is lost; the retry comes a few seconds later with the old state.
        let alias = s.alias();
        let again = ready(look(before, now + 5, &s, &s, &s)).expect("the retry carries on");
        assert_eq!(again.action, first.action, "at {now}");
        assert_eq!(again.execution.alias_revision, alias.revision_id);
        assert_eq!(s.alias(), alias, "the retry writes nothing");
        assert_eq!(again.execution.run.phase, first.execution.run.phase);
        retried += 1;
        exec = again.execution;
    }
    assert_eq!(exec.run.outcome, Some(Outcome::Promoted));
    assert_eq!(
        retried, 3,
        "5 -> 25 %, 25 -> 100 % and the promotion were each retried"
    );
}
