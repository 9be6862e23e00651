//! The post-promotion soak over the simulated Lambda and orchestrator: a canary is run to its
//! promotion by the phase steps, then the scheduled check runs every five minutes.

use serde_json::json;

use super::*;
use crate::controller::Outcome;
use crate::notify::Notification;
use crate::sim::{
    Fleet, MetricNames, Regression, Scenario, SimulatedExecutions, SimulatedLambda, run_ready,
};
use crate::step::{look, start};

fn ready<T>(f: impl std::future::Future<Output = T>) -> T {
    run_ready(f).expect("in-memory ports never wait")
}

fn config(edit: impl FnOnce(&mut serde_json::Value)) -> CanaryConfig {
    let mut v: serde_json::Value =
        serde_json::from_str(include_str!("../../../../examples/demo-config.json")).expect("json");
    v["post_promotion_soak_seconds"] = 1800.into();
    edit(&mut v);
    CanaryConfig::from_json(&v.to_string()).expect("config")
}

/// A canary promoted on the simulated fleet, recorded as a succeeded execution.
struct Promoted {
    fleet: SimulatedLambda,
    sfn: SimulatedExecutions,
    at: i64,
    published: usize,
}

fn promoted(c: CanaryConfig, regression_at: Option<i64>) -> Promoted {
    let mut scenario = Scenario::healthy(50.0);
    scenario.regression = regression_at.map(|at| Regression {
        starts_at: at as u64,
        ramp_seconds: 0,
        latency_factor: 2.5,
        error_factor: 1.0,
    });
    let names = MetricNames {
        latency: "latency".into(),
        errors: "errors".into(),
    };
    let fleet = SimulatedLambda::new(
        Fleet::new(scenario, names, 11),
        c.target.as_ref().expect("target"),
        0,
        60,
    );
    let mut exec = ready(start(c, 0, None, &fleet)).expect("start");
    let mut now = 0;
    let mut wait = 60;
    while exec.run.outcome.is_none() {
        now += wait as i64;
        assert!(now < 3600, "the canary ends");
        fleet.run_until(now);
        let out = ready(look(exec, now, &fleet, &fleet, &fleet)).expect("look");
        wait = out.wait_seconds;
        exec = out.execution;
    }
    assert_eq!(exec.run.outcome, Some(Outcome::Promoted));
    if let Some(r) = regression_at {
        assert!(now < r, "promoted at {now}, before the regression at {r}");
    }
    let sfn = SimulatedExecutions::new();
    sfn.insert(ExecutionInfo {
        id: "arn:exec:promoted".into(),
        name: "orders-api-live-v42-0".into(),
        status: RunStatus::Succeeded,
        started_epoch: 0,
        stopped_epoch: Some(now + 3),
        input: Some(json!({"config": exec.config, "hook": null})),
        output: Some(json!({
            "execution": exec, "waitSeconds": 1, "action": "promote",
            "awaitingApproval": false, "summary": "promoted"
        })),
        error: None,
        cause: None,
    });
    let published = fleet.published().len();
    Promoted {
        fleet,
        sfn,
        at: now,
        published,
    }
}

impl Promoted {
    fn check(&self, now: i64) -> SoakReport {
        self.fleet.run_until(now);
        ready(check(
            now,
            300,
            SoakPorts {
                executions: &self.sfn,
                metrics: &self.fleet,
                router: &self.fleet,
                notifier: &self.fleet,
            },
        ))
        .expect("check")
    }

    /// Runs the check every five minutes from the promotion until `until`.
    fn every_five_minutes(&self, until: i64) -> Vec<(i64, SoakReport)> {
        let mut out = Vec::new();
        let mut now = self.at;
        while now < until {
            now += 300;
            out.push((now, self.check(now)));
        }
        out
    }

    fn new_notifications(&self) -> Vec<Notification> {
        self.fleet.published()[self.published..].to_vec()
    }
}

#[test]
fn looks_are_fixed_after_the_promotion_and_settle_before_they_count() {
    let c = config(|_| {});
    assert_eq!(
        look_seconds(&c),
        120,
        "1800 s in at most 24 looks, whole minutes"
    );
    let c = config(|v| v["post_promotion_soak_seconds"] = 600.into());
    assert_eq!(look_seconds(&c), 60);
    assert_eq!(look_ends(1_000, 1_300, 120, 1_100), Vec::<i64>::new());
    assert_eq!(look_ends(1_000, 1_300, 120, 1_250), vec![1_120, 1_240]);
    assert_eq!(
        look_ends(1_000, 1_300, 120, 5_000),
        vec![1_120, 1_240, 1_300]
    );
}

#[test]
fn a_healthy_promotion_soaks_passes_and_goes_idle() {
    let p = promoted(config(|_| {}), None);
    let runs = p.every_five_minutes(p.at + 1800 + SETTLE_SECONDS + FINAL_CHECK_GRACE_SECONDS + 600);
    let statuses: Vec<SoakStatus> = runs.iter().map(|(_, r)| r.status).collect();
    assert!(
        statuses.iter().all(|s| matches!(
            s,
            SoakStatus::Watching | SoakStatus::Passed | SoakStatus::Idle
        )),
        "{statuses:?}"
    );
    assert_eq!(statuses[0], SoakStatus::Watching);
    assert!(statuses.contains(&SoakStatus::Passed), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&SoakStatus::Idle));
    let first_pass = statuses
        .iter()
        .position(|s| *s == SoakStatus::Passed)
        .expect("passed");
    assert!(
        statuses[..first_pass]
            .iter()
            .all(|s| *s == SoakStatus::Watching)
    );
    let (when, last_watch) = &runs[first_pass - 1];
    assert!(last_watch.looks >= 1 && *when < p.at + 1800 + SETTLE_SECONDS);
    assert!(
        last_watch
            .report
            .as_deref()
            .is_some_and(|r| r.contains("post-promotion soak"))
    );
    assert_eq!(p.fleet.alias().version, "42");
    assert!(p.new_notifications().is_empty(), "a healthy soak is quiet");
}

#[test]
fn a_regression_after_promotion_rolls_back_once_and_notifies() {
    let p = promoted(config(|_| {}), Some(1_500));
    let runs = p.every_five_minutes(p.at + 1800);
    let rolled: Vec<&(i64, SoakReport)> = runs
        .iter()
        .filter(|(_, r)| r.status == SoakStatus::RolledBack)
        .collect();
    assert_eq!(
        rolled.len(),
        1,
        "{:?}",
        runs.iter().map(|r| r.1.status).collect::<Vec<_>>()
    );
    let (when, r) = rolled[0];
    assert!(
        *when <= 1_500 + 600 + SETTLE_SECONDS + 300,
        "caught quickly, at {when}"
    );
    assert!(r.summary.contains("latency"), "{}", r.summary);
    let alias = p.fleet.alias();
    assert_eq!(
        (alias.version.as_str(), alias.additional.clone()),
        ("41", None)
    );
    let later: Vec<SoakStatus> = runs
        .iter()
        .filter(|(t, _)| t > when)
        .map(|(_, r)| r.status)
        .collect();
    assert!(later.iter().all(|s| *s == SoakStatus::Idle), "{later:?}");
    let sent = p.new_notifications();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].event, notify::Event::Rollback);
    assert_eq!(sent[0].attributes["stage"], "post_promotion_soak");
    assert!(
        sent[0].subject.contains("rolled back to v41"),
        "{}",
        sent[0].subject
    );
    assert_eq!(
        sent[0].channels,
        vec!["ops".to_string(), "team-lead".to_string()]
    );
}

#[test]
fn without_automatic_rollback_a_regression_is_notified_once_and_left_alone() {
    let c = config(|v| v["auto_rollback"]["requires_ops_confirmation"] = true.into());
    let p = promoted(c, Some(1_500));
    let runs = p.every_five_minutes(p.at + 1800);
    assert!(
        runs.iter()
            .any(|(_, r)| r.status == SoakStatus::RegressionNeedsOperator),
        "{:?}",
        runs.iter().map(|r| r.1.status).collect::<Vec<_>>()
    );
    assert_eq!(p.fleet.alias().version, "42", "the alias stays");
    let sent = p.new_notifications();
    assert_eq!(sent.len(), 1, "one notification, not one per run: {sent:?}");
    assert_eq!(sent[0].event, notify::Event::RegressionDetected);
}

#[test]
fn nothing_happens_while_a_canary_runs_or_after_someone_moved_on() {
    let p = promoted(config(|_| {}), Some(1_500));
    ready(p.sfn.start("next-canary", &json!({}))).expect("start");
    p.sfn.set_clock(p.at + 10);
    let r = p.check(p.at + 1_500);
    assert_eq!(r.status, SoakStatus::Idle);
    assert!(r.summary.contains("next-canary"), "{}", r.summary);
    assert_eq!(p.fleet.alias().version, "42");

    let p = promoted(config(|_| {}), Some(1_500));
    let t = p.fleet.alias();
    let target = config(|_| {}).target.expect("target");
    ready(
        p.fleet
            .set_canary_weight(&target, 10.0, &t.revision_id, &Claim::Unchanged),
    )
    .expect("someone splits");
    let before = p.fleet.alias();
    let r = p.check(p.at + 1_500);
    assert_eq!(r.status, SoakStatus::Idle);
    assert!(r.summary.contains("moved on"), "{}", r.summary);
    assert_eq!(p.fleet.alias(), before, "never overwritten");
    assert!(p.new_notifications().is_empty());
}

#[test]
fn no_promotion_no_soak_or_an_unreadable_output_are_told_apart() {
    let sfn = SimulatedExecutions::new();
    let p = promoted(
        config(|v| v["post_promotion_soak_seconds"] = 0.into()),
        None,
    );
    let ports = |e| SoakPorts {
        executions: e,
        metrics: &p.fleet,
        router: &p.fleet,
        notifier: &p.fleet,
    };
    let r = ready(check(5_000, 300, ports(&sfn))).expect("idle");
    assert_eq!(r.status, SoakStatus::Idle);
    assert!(r.summary.contains("no promoted canary"), "{}", r.summary);
    let r = ready(check(p.at + 600, 300, ports(&p.sfn))).expect("idle");
    assert!(r.summary.contains("no soak"), "{}", r.summary);

    sfn.insert(ExecutionInfo {
        id: "arn:exec:odd".into(),
        name: "odd".into(),
        status: RunStatus::Succeeded,
        started_epoch: 0,
        stopped_epoch: Some(10),
        input: None,
        output: Some(json!({"approval": {}})),
        error: None,
        cause: None,
    });
    let e = ready(check(5_000, 300, ports(&sfn))).expect_err("unreadable");
    assert_eq!(e.error_type(), "UnreadableExecution");
}
