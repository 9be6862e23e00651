//! Step logic over the simulated Lambda and small hand-written fakes.

use super::*;
use crate::ports::{Claim, Fetched};
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
    ready(s.promote(&t, &rev, &Claim::Unchanged)).expect("promote by hand");
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
    ready(s.set_canary_weight(&t, 50.0, &rev, &Claim::Unchanged)).expect("foreign write");
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

    impl crate::ports::Deployments for RecordingHook {
        async fn deployment(&self, _id: &str) -> Result<crate::ports::DeploymentInfo, PortError> {
            Ok(crate::sim::lambda_deployment(
                &config().target.expect("target"),
            ))
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
    fn a_hook_naming_no_deployment_of_this_canary_is_refused_and_never_reported() {
        use crate::sim::{SimulatedCodeDeploy, lambda_deployment};
        let target = config().target.expect("target");
        let cd = SimulatedCodeDeploy::new();
        cd.add("d-1", lambda_deployment(&target));
        let mut other = target.clone();
        other.function_name = "payments".into();
        cd.add("d-payments", lambda_deployment(&other));
        let mut newer = target.clone();
        newer.canary_version = "43".into();
        cd.add("d-43", lambda_deployment(&newer));
        let with_hook = |op: &str, id: &str| {
            let mut e = sample_event("start");
            e["op"] = op.into();
            e["hook"] =
                serde_json::json!({"deploymentId": id, "lifecycleEventHookExecutionId": "h-1"});
            e
        };
        let run = |s: &SimulatedLambda, event: serde_json::Value| {
            let event: PhaseEvent = serde_json::from_value(event).expect("event parses");
            ready(handle(
                event,
                0,
                Ports {
                    metrics: s,
                    router: s,
                    notifier: s,
                    hook: &cd,
                },
            ))
        };
        for (id, why) in [
            ("d-missing", "GetDeployment"),
            ("d-payments", "Name is `payments`"),
            ("d-43", "TargetVersion is `43`"),
        ] {
            let s = sim(Scenario::healthy(50.0));
            let err = run(&s, with_hook("start", id)).expect_err(id);
            assert_eq!(err.error_type(), "InvalidHook", "{id}: {err}");
            assert!(err.to_string().contains(why), "{id}: {err}");
            assert_eq!(s.alias().additional, None, "{id}: nothing written");
            // The state machine's StartFailed: no report for a deployment not ours.
            let mut failed = serde_json::json!({"op": "start-failed"});
            failed["input"] = with_hook("start", id);
            failed["input"]["error"] = serde_json::json!({"Error": "InvalidHook", "Cause": "x"});
            let r = run(&s, failed).expect("start-failed answers");
            assert!(
                r.summary.contains("not reported to CodeDeploy"),
                "{id}: {}",
                r.summary
            );
        }
        assert!(cd.reports().is_empty(), "{:?}", cd.reports());
        // This canary's own deployment: started, and a failed start is reported.
        let s = sim(Scenario::healthy(50.0));
        run(&s, with_hook("start", "d-1")).expect("its own deployment");
        assert_eq!(s.alias().weight_of("42"), 5.0);
        let mut failed = serde_json::json!({"op": "start-failed"});
        failed["input"] = with_hook("start", "d-1");
        run(&s, failed).expect("start-failed");
        let reports = cd.reports();
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert_eq!(
            (reports[0].deployment_id.as_str(), reports[0].succeeded),
            ("d-1", false)
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
    ready(s.set_canary_weight(&t, 50.0, &rev, &Claim::Unchanged)).expect("foreign write");
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

const RUN_A: &str = "arn:aws:states:us-east-1:123456789012:execution:canary-gate:orders-api-live-1";
const RUN_B: &str = "arn:aws:states:us-east-1:123456789012:execution:canary-gate:orders-api-live-2";

fn start_as(
    owner: &str,
    c: CanaryConfig,
    now: i64,
    s: &SimulatedLambda,
) -> Result<Execution, StepError> {
    ready(start_for(Some(owner.to_string()), c, now, None, s))
}

/// The demo config for the next release: the version now promoted is the baseline.
fn next_release() -> CanaryConfig {
    let mut c = config();
    let t = c.target.as_mut().expect("target");
    t.baseline_version = "42".into();
    t.canary_version = "43".into();
    c
}

#[test]
fn a_start_retried_after_its_write_landed_carries_on_and_another_start_is_refused() {
    let s = sim(Scenario::healthy(50.0));
    let first = start_as(RUN_A, config(), 0, &s).expect("starts");
    let written = s.alias();
    assert_eq!(written.additional, Some(("42".to_string(), 5.0)));
    let claim = written.claim.clone().expect("the start records its hold");
    assert!(claim.is_by(RUN_A) && claim.holds_at(0));
    // The function crashed before answering; Step Functions retries the start.
    let again = start_as(RUN_A, config(), 20, &s).expect("the retry carries on");
    assert_eq!(s.alias(), written, "the retry writes nothing");
    assert_eq!(again.alias_revision, written.revision_id);
    assert_eq!(again.run, first.run);
    // A second execution for the same canary (a hook and a CLI start at once) is refused.
    let err = start_as(RUN_B, config(), 20, &s).expect_err("held by the first");
    assert_eq!(err.error_type(), "CanaryInProgress", "{err}");
    assert!(err.to_string().contains(RUN_A), "{err}");
    assert_eq!(s.alias(), written);
}

#[test]
fn a_start_during_another_canarys_full_traffic_phase_is_refused_until_it_ends() {
    let s = sim(Scenario::healthy(50.0));
    let mut exec = start_as(RUN_A, config(), 0, &s).expect("starts");
    let mut now = 0;
    let mut refused_at_full = 0;
    while exec.run.outcome.is_none() && now < 3600 {
        now += 60;
        s.run_until(now);
        exec = ready(look(exec, now, &s, &s, &s)).expect("look").execution;
        let alias = s.alias();
        if exec.run.outcome.is_none() && alias.version == "42" && alias.additional.is_none() {
            // 100 % on the canary, no split to see: only the hold tells.
            let before = s.alias();
            let err = start_as(RUN_B, next_release(), now, &s).expect_err("A holds the alias");
            assert_eq!(err.error_type(), "CanaryInProgress", "{err}");
            assert_eq!(s.alias(), before, "nothing written");
            refused_at_full += 1;
        }
    }
    assert_eq!(exec.run.outcome, Some(Outcome::Promoted));
    assert!(refused_at_full > 0, "the full-traffic phase was reached");
    let released = s.alias().claim.expect("released");
    assert!(released.is_by(RUN_A) && !released.holds_at(now));
    let next = start_as(RUN_B, next_release(), now + 60, &s).expect("the next canary starts");
    assert_eq!(s.alias().additional, Some(("43".to_string(), 5.0)));
    assert_eq!(next.owner.as_deref(), Some(RUN_B));
}

#[test]
fn a_hold_left_by_a_crashed_execution_lapses() {
    let s = sim(Scenario::healthy(50.0));
    let a = start_as(RUN_A, config(), 0, &s).expect("starts");
    // A's execution is stopped outside canary-gate; someone puts the alias back by hand,
    // leaving the description as it was.
    let t = config().target.expect("target");
    let rev = s.alias().revision_id;
    ready(s.rollback(&t, &rev, &Claim::Unchanged)).expect("by hand");
    let until = s
        .alias()
        .claim
        .and_then(|c| c.until_epoch)
        .expect("still held");
    assert!(
        until > a.started_epoch + 3_600,
        "covers the longest canary: {until}"
    );
    let err = start_as(RUN_B, config(), until - 1, &s).expect_err("still in force");
    assert_eq!(err.error_type(), "CanaryInProgress");
    start_as(RUN_B, config(), until, &s).expect("lapsed");
}

#[test]
fn a_look_does_not_take_another_canarys_identical_write_for_its_own() {
    // Two executions of the same canary both believe they started it; B's write replaced
    // A's with the same routing. A's look must stop, not carry on from B's write.
    let s = sim(Scenario::healthy(50.0));
    let a = start_as(RUN_A, config(), 0, &s).expect("A starts");
    let t = config().target.expect("target");
    let rev = s.alias().revision_id;
    let b_claim = Claim::Set(crate::ports::AliasClaim::hold(RUN_B, 10_000));
    ready(s.set_canary_weight(&t, 5.0, &rev, &b_claim)).expect("B's identical write");
    let mut exec = a;
    let mut now = 0;
    let err = loop {
        now += 60;
        s.run_until(now);
        match ready(look(exec, now, &s, &s, &s)) {
            Ok(out) => exec = out.execution,
            Err(e) => break e,
        }
        assert!(now < 3_600, "A never noticed");
    };
    assert_eq!(err.error_type(), "AliasConflict", "{err}");
    assert_eq!(s.alias().claim.expect("B's").holder, RUN_B);
}

#[test]
fn a_look_that_decides_otherwise_than_its_own_lost_write_rolls_back() {
    // An attempt of this execution advanced the alias to 25 % and died before answering;
    // the state machine caught the crash (HoldOnError) and the next look, with the state from
    // before the lost write, decides to continue at 5 %. The alias is this execution's (its
    // hold says so), so it is neither someone else's change (a Conflict would stop
    // monitoring a split) nor to be guessed at: the look rolls back.
    let s = sim(Scenario::healthy(50.0));
    let exec = start_as(RUN_A, config(), 0, &s).expect("starts");
    let t = config().target.expect("target");
    let rev = s.alias().revision_id;
    ready(s.set_canary_weight(&t, 25.0, &rev, &exec.hold(30))).expect("lost write");
    let lost = s.alias();
    s.run_until(60);
    let out = ready(look(exec, 60, &s, &s, &s)).expect("the look answers");
    assert_eq!(out.action, Action::Rollback);
    assert_eq!(out.execution.run.outcome, Some(Outcome::RolledBack));
    let alias = s.alias();
    assert_eq!(
        (alias.version.as_str(), alias.additional.clone()),
        ("41", None)
    );
    assert_ne!(alias.revision_id, lost.revision_id);
    assert_eq!(out.execution.alias_revision, alias.revision_id);
    let claim = alias.claim.expect("released");
    assert!(claim.is_by(RUN_A) && !claim.holds_at(60), "{claim:?}");
    let reason = &out.execution.history.last().expect("recorded").reason;
    assert!(
        reason.contains("25% to version 42") && reason.contains("earlier attempt"),
        "{reason}"
    );
}

#[test]
fn claims_read_back_from_the_description_they_write() {
    use crate::ports::AliasClaim;
    for claim in [
        AliasClaim::hold(RUN_A, 1_800_000_000),
        AliasClaim::release(RUN_B),
    ] {
        let d = claim.description();
        assert!(d.len() <= 256, "{d}");
        assert_eq!(AliasClaim::parse(&d), Some(claim.clone()), "{d}");
        assert!(claim.is_by(&claim.holder));
    }
    // A holder too long for Lambda's 256 characters is cut from the front, and still known.
    let long = format!(
        "arn:aws:states:us-east-1:1:execution:{}:run-7",
        "m".repeat(300)
    );
    let held = AliasClaim::parse(&AliasClaim::hold(&long, 5).description()).expect("parses");
    assert!(held.is_by(&long) && !held.is_by(RUN_A));
    assert!(held.holder.ends_with(":run-7"));
    // A user's own description is no claim.
    for d in [
        "",
        "live traffic",
        "canary-gate",
        "canary-gate holds until soon for x",
    ] {
        assert_eq!(AliasClaim::parse(d), None, "{d}");
    }
}

#[test]
fn text_from_outside_is_sent_and_printed_with_its_control_characters_escaped() {
    use crate::step::ops::{PhaseEvent, Ports, handle};
    let s = sim(Scenario::healthy(50.0));
    let exec = ready(start(config(), 0, None, &s)).expect("starts");
    struct NoHook;
    impl crate::ports::LifecycleHook for NoHook {
        async fn report(&self, _d: &str, _h: &str, _ok: bool) -> Result<(), PortError> {
            Ok(())
        }
    }
    impl crate::ports::Deployments for NoHook {
        async fn deployment(&self, id: &str) -> Result<crate::ports::DeploymentInfo, PortError> {
            Err(PortError::NotFound(id.into()))
        }
    }
    // A look failed; the caught cause carries an AWS message with escape sequences in it.
    let cause = "GetMetricData: upstream said \u{1b}[2J\u{1b}[31mall clear\r";
    let event = PhaseEvent::Error {
        execution: exec,
        error: serde_json::json!({"Error": "MetricsUnavailable", "Cause": cause}),
    };
    let ports = Ports {
        metrics: &s,
        router: &s,
        notifier: &s,
        hook: &NoHook,
    };
    let resp = ready(handle(event, 120, ports)).expect("holds");
    let sent = s.published();
    assert!(!sent.is_empty(), "the failed look is notified");
    for text in sent
        .iter()
        .flat_map(|n| [&n.subject, &n.body])
        .chain([&resp.summary])
    {
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
    }
    assert!(
        sent.iter()
            .any(|n| n.body.contains("\\u{1b}[2J\\u{1b}[31mall clear\\u{d}")),
        "the cause is shown, escaped: {sent:?}"
    );
}
