//! Step logic over the simulated Lambda and small hand-written fakes.

use super::*;
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
        failures.iter().any(|f| f.starts_with("rollback")),
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
