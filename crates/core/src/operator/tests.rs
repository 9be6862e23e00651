//! Operator commands over an in-memory orchestrator and the simulated Lambda.

use std::sync::Mutex;

use super::*;
use crate::notify::{Event, Notification};
use crate::sim::{Fleet, MetricNames, Scenario, SimulatedLambda, run_ready};
use crate::step::{look, start as start_canary};

pub(super) fn config() -> CanaryConfig {
    CanaryConfig::from_json(include_str!("../../../../examples/demo-config.json"))
        .expect("demo config")
}

pub(super) fn sim(scenario: Scenario) -> SimulatedLambda {
    let c = config();
    let names = MetricNames {
        latency: "latency".into(),
        errors: "errors".into(),
    };
    SimulatedLambda::new(
        Fleet::new(scenario, names, 5),
        c.target.as_ref().expect("target"),
        1_000,
        60,
    )
}

pub(super) fn ready<T>(f: impl std::future::Future<Output = T>) -> T {
    run_ready(f).expect("in-memory ports never wait")
}

/// A task token and how it was answered.
pub(super) type Answer = (String, Result<Value, (String, String)>);

/// One execution kept in memory, recording what the commands did to it.
pub(super) struct Fake {
    pub(super) info: Mutex<ExecutionInfo>,
    pub(super) events: Mutex<Vec<HistoryEvent>>,
    pub(super) answers: Mutex<Vec<Answer>>,
    pub(super) started: Mutex<Vec<(String, Value)>>,
}

impl Fake {
    pub(super) fn new(status: RunStatus, input: Value) -> Self {
        Self {
            info: Mutex::new(ExecutionInfo {
                id: "arn:exec:1".into(),
                name: "orders-api-live-v42-0".into(),
                status,
                started_epoch: 1_000,
                stopped_epoch: None,
                input: Some(input),
                output: None,
                error: None,
                cause: None,
            }),
            events: Mutex::new(Vec::new()),
            answers: Mutex::new(Vec::new()),
            started: Mutex::new(Vec::new()),
        }
    }

    fn push(&self, kind: HistoryKind, state: &str, epoch: i64, detail: Value) {
        self.events.lock().expect("lock").push(HistoryEvent {
            epoch,
            kind,
            state: Some(state.into()),
            detail: Some(detail),
            error: None,
            cause: None,
        });
    }

    /// Records a `phase` response as the state machine's state output.
    fn exit(&self, state: &str, epoch: i64, exec: &Execution, action: &str, summary: &str) {
        let mut detail = json!({
            "execution": exec, "waitSeconds": 60, "action": action, "awaitingApproval": false,
        });
        // `Initialise` selects no summary from the phase response.
        if !summary.is_empty() {
            detail["summary"] = summary.into();
        }
        self.push(HistoryKind::StateExited, state, epoch, detail);
    }
}

impl Executions for Fake {
    async fn start(&self, name: &str, input: &Value) -> Result<String, PortError> {
        self.started
            .lock()
            .expect("lock")
            .push((name.into(), input.clone()));
        Ok(format!("arn:exec:{name}"))
    }

    async fn describe(&self, _id: &str) -> Result<ExecutionInfo, PortError> {
        Ok(self.info.lock().expect("lock").clone())
    }

    async fn history(&self, _id: &str) -> Result<Vec<HistoryEvent>, PortError> {
        Ok(self.events.lock().expect("lock").clone())
    }

    async fn list(&self, running_only: bool, _max: usize) -> Result<Vec<ExecutionInfo>, PortError> {
        let info = self.info.lock().expect("lock").clone();
        Ok(if running_only && info.status != RunStatus::Running {
            vec![]
        } else {
            vec![info]
        })
    }

    async fn answer(
        &self,
        token: &str,
        outcome: Result<Value, (String, String)>,
    ) -> Result<(), PortError> {
        self.answers
            .lock()
            .expect("lock")
            .push((token.into(), outcome));
        Ok(())
    }

    async fn stop(&self, _id: &str, error: &str, cause: &str) -> Result<(), PortError> {
        let mut info = self.info.lock().expect("lock");
        info.status = RunStatus::Aborted;
        info.error = Some(error.into());
        info.cause = Some(cause.into());
        self.events.lock().expect("lock").push(HistoryEvent {
            epoch: 9_999,
            kind: HistoryKind::Failed,
            state: None,
            detail: None,
            error: Some(error.into()),
            cause: Some(cause.into()),
        });
        Ok(())
    }
}

/// A notifier whose every publish fails.
struct BrokenNotifier;

impl Notifier for BrokenNotifier {
    async fn publish(&self, _n: &Notification) -> Result<(), PortError> {
        Err(PortError::Unavailable("SNS is down".into()))
    }
}

/// A running canary on `s`: started at epoch 1000, with one look at 1060.
pub(super) fn running(s: &SimulatedLambda) -> (Fake, Execution) {
    let c = config();
    let fake = Fake::new(RunStatus::Running, json!({ "config": &c, "hook": null }));
    let exec = ready(start_canary(c, 1_000, None, s)).expect("starts");
    fake.exit("Initialise", 1_000, &exec, "continue", "");
    s.run_until(1_060);
    let out = ready(look(exec, 1_060, s, s, s)).expect("look");
    let reason = out.execution.history.last().expect("look").reason.clone();
    fake.exit(
        "Analyse",
        1_060,
        &out.execution,
        out.action.as_str(),
        &reason,
    );
    (fake, out.execution)
}

#[test]
fn status_shows_phase_weight_last_decision_and_time_left() {
    let s = sim(Scenario::healthy(50.0));
    let (fake, exec) = running(&s);
    let info = fake.info.lock().expect("lock").clone();
    let st = status(&info, &fake.events.lock().expect("lock"), 1_100);
    assert_eq!(st.status, RunStatus::Running);
    assert_eq!(st.function.as_deref(), Some("orders-api"));
    assert_eq!(st.alias.as_deref(), Some("live"));
    assert_eq!(st.canary_version.as_deref(), Some("42"));
    assert_eq!(st.phase, Some((1, 3)));
    assert_eq!(st.weight, Some(5.0));
    let last = st.last_decision.expect("a decision");
    assert_eq!(last.state, "Analyse");
    assert_eq!(
        last.action,
        exec.history.last().expect("look").action.as_str()
    );
    // Phase 1 soaks 300 s from the start (epoch 1000): 200 s are left at 1100.
    assert_eq!(st.phase_left_seconds, Some(200));
    assert_eq!(st.timeout_left_seconds, Some(1_800 - 100));
    assert!(st.pending_approval.is_none());
}

#[test]
fn status_before_the_first_step_reads_the_target_from_the_input() {
    let fake = Fake::new(RunStatus::Running, json!({ "config": config() }));
    let info = fake.info.lock().expect("lock").clone();
    let st = status(&info, &[], 1_000);
    assert_eq!(st.function.as_deref(), Some("orders-api"));
    assert_eq!(st.phase, None);
    assert_eq!(st.weight, None);
    assert!(st.last_decision.is_none());
}

#[test]
fn history_lists_every_decision_oldest_first() {
    let s = sim(Scenario::healthy(50.0));
    let (fake, _) = running(&s);
    let d = decisions(&fake.events.lock().expect("lock"));
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].state, "Initialise");
    assert_eq!(d[0].summary, "canary started");
    assert_eq!(d[0].weight, Some(5.0));
    assert_eq!(d[1].state, "Analyse");
    assert!(d[0].epoch < d[1].epoch);
}

pub(super) fn request_approval(fake: &Fake, token: &str, action: &str) {
    fake.push(
        HistoryKind::StateEntered,
        "AwaitApproval",
        1_070,
        json!({ "action": action }),
    );
    fake.push(
        HistoryKind::TaskScheduled,
        "AwaitApproval",
        1_070,
        json!({ "FunctionName": "phase", "Payload": { "op": "request-approval", "action": action, "taskToken": token } }),
    );
}

#[test]
fn approval_answers_the_pending_task_token_with_who_and_when() {
    let s = sim(Scenario::healthy(50.0));
    let (fake, _) = running(&s);
    request_approval(&fake, "tok-1", "promote");
    let p = pending_approval(&fake.events.lock().expect("lock")).expect("pending");
    assert_eq!(p.task_token, "tok-1");
    assert_eq!(p.action, Action::Promote);

    let answered = ready(answer(
        &fake,
        "arn:exec:1",
        true,
        "alice",
        "looks good",
        1_080,
    ))
    .expect("approved");
    assert_eq!(answered.task_token, "tok-1");
    let answers = fake.answers.lock().expect("lock").clone();
    assert_eq!(answers.len(), 1);
    let output = answers[0].1.clone().expect("success");
    assert_eq!(output["approvedBy"], "alice");
    assert_eq!(output["approvedAt"], 1_080);
}

#[test]
fn rejection_fails_the_task_with_the_error_the_state_machine_catches() {
    let s = sim(Scenario::healthy(50.0));
    let (fake, _) = running(&s);
    request_approval(&fake, "tok-2", "rollback");
    ready(answer(
        &fake,
        "arn:exec:1",
        false,
        "bob",
        "false alarm",
        1_080,
    ))
    .expect("rejected");
    let answers = fake.answers.lock().expect("lock").clone();
    let (error, cause) = answers[0].1.clone().expect_err("failure");
    assert_eq!(error, REJECTED_ERROR);
    assert!(
        cause.contains("bob") && cause.contains("false alarm"),
        "{cause}"
    );
}

#[test]
fn an_answered_or_absent_approval_is_not_pending() {
    let s = sim(Scenario::healthy(50.0));
    let (fake, exec) = running(&s);
    let err = ready(answer(&fake, "arn:exec:1", true, "a", "", 0)).expect_err("nothing waits");
    assert!(matches!(err, OperatorError::NoPendingApproval(_)), "{err}");
    request_approval(&fake, "tok-3", "advance");
    fake.exit("AwaitApproval", 1_090, &exec, "advance", "approved");
    assert!(pending_approval(&fake.events.lock().expect("lock")).is_none());
}

#[test]
fn answering_an_ended_execution_is_refused() {
    let fake = Fake::new(RunStatus::Succeeded, json!({}));
    let err = ready(answer(&fake, "arn:exec:1", true, "a", "", 0)).expect_err("ended");
    assert!(matches!(
        err,
        OperatorError::NotRunning {
            status: RunStatus::Succeeded,
            ..
        }
    ));
    assert!(fake.answers.lock().expect("lock").is_empty());
}

#[test]
fn abort_stops_rolls_back_and_notifies_who() {
    let s = sim(Scenario::healthy(50.0));
    let (fake, _) = running(&s);
    assert_eq!(s.alias().additional, Some(("42".to_string(), 5.0)));
    let out = ready(override_canary(
        &fake,
        &s,
        &s,
        "arn:exec:1",
        Action::Rollback,
        "arn:aws:iam::1:user/alice",
        "customer reports",
        false,
        1_100,
    ))
    .expect("aborted");
    assert!(out.stopped);
    assert_eq!(out.weight_before, 5.0);
    let alias = s.alias();
    assert_eq!(alias.version, "41");
    assert_eq!(alias.additional, None);
    let info = fake.info.lock().expect("lock").clone();
    assert_eq!(info.status, RunStatus::Aborted);
    assert_eq!(info.error.as_deref(), Some(ABORTED_ERROR));
    let cause = info.cause.expect("cause");
    assert!(
        cause.contains("alice") && cause.contains("customer reports"),
        "{cause}"
    );
    let sent = s.published();
    let n = sent.last().expect("notified");
    assert_eq!(n.event, Event::Rollback);
    assert_eq!(n.attributes["actor"], "arn:aws:iam::1:user/alice");
    assert_eq!(n.attributes["override"], "rollback");
    assert_eq!(n.channels, vec!["ops".to_string(), "team-lead".to_string()]);
    // The stop shows up in the history as the operator's decision.
    let d = decisions(&fake.events.lock().expect("lock"));
    let last = d.last().expect("entry");
    assert_eq!(
        (last.state.as_str(), last.action.as_str()),
        ("Operator", "rollback")
    );
}

#[test]
fn abort_stands_when_the_notification_fails_and_can_be_repeated() {
    let s = sim(Scenario::healthy(50.0));
    let (fake, _) = running(&s);
    let out = ready(override_canary(
        &fake,
        &s,
        &BrokenNotifier,
        "arn:exec:1",
        Action::Rollback,
        "alice",
        "",
        false,
        1_100,
    ))
    .expect("aborted even though SNS is down");
    assert!(
        out.notification_error
            .expect("reported")
            .contains("SNS is down")
    );
    assert_eq!(s.alias().additional, None);
    // Running abort again on the execution it stopped sets the same state again.
    let again = ready(override_canary(
        &fake,
        &s,
        &s,
        "arn:exec:1",
        Action::Rollback,
        "alice",
        "",
        false,
        1_200,
    ))
    .expect("idempotent");
    assert!(!again.stopped);
    assert_eq!(s.alias().version, "41");
}

#[test]
fn promote_is_refused_while_a_critical_gate_fails_unless_forced() {
    let s = sim(Scenario::healthy(50.0).with_regression(2.5, 1.0));
    let (fake, exec) = running(&s);
    let failing = failing_critical_gates(&exec);
    assert_eq!(failing, vec!["latency".to_string()]);
    let before = s.alias();
    let err = ready(override_canary(
        &fake,
        &s,
        &s,
        "arn:exec:1",
        Action::Promote,
        "alice",
        "",
        false,
        1_100,
    ))
    .expect_err("refused");
    assert!(matches!(&err, OperatorError::CriticalGatesFailing(m) if m == &failing));
    assert!(err.to_string().contains("--force"));
    assert_eq!(s.alias(), before, "a refused promotion changes nothing");
    assert_eq!(fake.info.lock().expect("lock").status, RunStatus::Running);

    let out = ready(override_canary(
        &fake,
        &s,
        &s,
        "arn:exec:1",
        Action::Promote,
        "alice",
        "hotfix verified by hand",
        true,
        1_100,
    ))
    .expect("forced");
    assert!(out.forced);
    let alias = s.alias();
    assert_eq!(
        (alias.version.as_str(), alias.additional.clone()),
        ("42", None)
    );
    let info = fake.info.lock().expect("lock").clone();
    assert_eq!(info.error.as_deref(), Some(PROMOTED_ERROR));
    let cause = info.cause.expect("cause");
    assert!(cause.contains("forced") && cause.contains("latency") && cause.contains("alice"));
    let n = s.published().pop().expect("notified");
    assert_eq!(n.event, Event::Promoted);
    assert!(
        n.subject.contains("force-promoted by operator alice"),
        "{}",
        n.subject
    );
    assert_eq!(n.attributes["severity"], "critical");
}

#[test]
fn promote_of_a_healthy_canary_needs_no_force() {
    let s = sim(Scenario::healthy(50.0));
    let (fake, exec) = running(&s);
    assert!(failing_critical_gates(&exec).is_empty());
    let out = ready(override_canary(
        &fake,
        &s,
        &s,
        "arn:exec:1",
        Action::Promote,
        "alice",
        "",
        false,
        1_100,
    ))
    .expect("promoted");
    assert!(!out.forced);
    assert_eq!(s.alias().version, "42");
}

#[test]
fn overrides_of_ended_executions_are_refused() {
    let s = sim(Scenario::healthy(50.0));
    let (fake, _) = running(&s);
    fake.info.lock().expect("lock").status = RunStatus::Succeeded;
    let before = s.alias();
    let err = ready(override_canary(
        &fake,
        &s,
        &s,
        "arn:exec:1",
        Action::Rollback,
        "alice",
        "",
        false,
        1_100,
    ))
    .expect_err("ended");
    assert!(matches!(err, OperatorError::NotRunning { .. }));
    assert_eq!(s.alias(), before);
}

#[test]
fn start_refuses_a_second_canary_on_the_same_alias() {
    let c = config();
    let fake = Fake::new(RunStatus::Running, json!({ "config": &c }));
    let err = ready(start(&fake, &c, 5_000)).expect_err("one canary per alias");
    assert!(matches!(err, OperatorError::AlreadyRunning { .. }), "{err}");
    assert!(fake.started.lock().expect("lock").is_empty());

    fake.info.lock().expect("lock").status = RunStatus::Succeeded;
    let id = ready(start(&fake, &c, 5_000)).expect("starts");
    let started = fake.started.lock().expect("lock").clone();
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].0, "orders-api-live-v42-5000");
    assert_eq!(id, "arn:exec:orders-api-live-v42-5000");
    assert_eq!(started[0].1["config"]["target"]["canary_version"], "42");
    assert!(started[0].1["hook"].is_null());
}

#[test]
fn execution_names_use_allowed_characters_and_fit() {
    let mut c = config();
    let t = c.target.as_mut().expect("target");
    t.function_name =
        "arn:aws:lambda:eu-west-1:123:function:a-very-long-function-name-indeed".into();
    let name = execution_name(&c, 1_700_000_000);
    assert!(name.len() <= 80, "{name}");
    assert!(name.ends_with("-1700000000"));
    assert!(
        name.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'),
        "{name}"
    );
}
