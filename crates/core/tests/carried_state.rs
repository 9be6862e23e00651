//! Property tests of what comes back from Step Functions: random JSON, and valid events with
//! one value anywhere replaced by a random one, fed to every event of the `phase` step that
//! carries state and to the soak's reading of a promotion. None may panic; a refusal of the
//! carried state is `InvalidState` naming a JSON path, and changes nothing.
//!
//! Cases per property: `PROPTEST_CASES` (default 2,048, enough for a state mutated at random
//! to reach each of its own fields a few times).

mod support;

use canary_gate_core::config::CanaryConfig;
use canary_gate_core::ports::{AliasState, ExecutionInfo, LifecycleHook, PortError, RunStatus};
use canary_gate_core::sim::{Fleet, MetricNames, Scenario, SimulatedLambda, run_ready};
use canary_gate_core::soak;
use canary_gate_core::state::Execution;
use canary_gate_core::step::ops::{Ports, handle_value};
use canary_gate_core::step::{look, start};
use proptest::prelude::*;
use serde_json::{Value, json};
use support::mutate::{cases, document, leaf, paths, replace};

struct NoHook;

impl LifecycleHook for NoHook {
    async fn report(&self, _d: &str, _h: &str, _ok: bool) -> Result<(), PortError> {
        Ok(())
    }
}

impl canary_gate_core::ports::Deployments for NoHook {
    async fn deployment(
        &self,
        _id: &str,
    ) -> Result<canary_gate_core::ports::DeploymentInfo, PortError> {
        let demo = include_str!("../../../examples/demo-config.json");
        let c = canary_gate_core::config::CanaryConfig::from_json(demo).expect("demo config");
        Ok(canary_gate_core::sim::lambda_deployment(
            &c.target.expect("target"),
        ))
    }
}

fn sim() -> SimulatedLambda {
    let c = config();
    let names = MetricNames {
        latency: "latency".into(),
        errors: "errors".into(),
    };
    SimulatedLambda::new(
        Fleet::new(Scenario::healthy(50.0), names, 4),
        c.target.as_ref().expect("target"),
        0,
        60,
    )
}

fn config() -> CanaryConfig {
    CanaryConfig::from_json(include_str!("../../../examples/demo-config.json")).expect("config")
}

/// A state after a few looks: sequential state, history and a decision with full evidence.
fn valid_state() -> Value {
    let s = sim();
    let mut exec = run_ready(start(config(), 0, None, &s))
        .expect("ready")
        .expect("start");
    for now in [60, 120, 180] {
        s.run_until(now);
        exec = run_ready(look(exec, now, &s, &s, &s))
            .expect("ready")
            .expect("look")
            .execution;
    }
    serde_json::to_value(exec).expect("json")
}

/// Every event that carries a state, around `execution`.
fn events(execution: &Value) -> Vec<Value> {
    let e = execution.clone();
    vec![
        json!({"op": "look", "execution": e}),
        json!({"op": "error", "execution": e, "error": {"Error": "Transient", "Cause": "x"}}),
        json!({"op": "request-approval", "execution": e, "action": "advance", "taskToken": "t"}),
        json!({"op": "apply", "execution": e, "action": "advance", "approval": {}}),
        json!({"op": "timeout", "execution": e, "action": "rollback"}),
        json!({"op": "reject", "execution": e, "action": "promote"}),
        json!({"op": "conflict", "execution": e, "error": {}}),
        json!({"op": "finish", "execution": e, "succeeded": true}),
        json!({"op": "start-failed", "input": {"config": e["config"], "hook": e["hook"], "error": {}}}),
    ]
}

/// Feeds one event; panics (failing the property) only if the step panics, or if a refused
/// state changed the alias or notified anyone.
fn feed(event: &Value) -> Result<(), TestCaseError> {
    let s = sim();
    let before: AliasState = s.alias();
    let ports = Ports {
        metrics: &s,
        router: &s,
        notifier: &s,
        hook: &NoHook,
    };
    let out = run_ready(handle_value(event, 3600, ports)).expect("simulated steps never wait");
    if let Err(e) = out
        && e.error_type() == "InvalidState"
    {
        prop_assert!(e.to_string().contains("$"), "{e}");
        prop_assert_eq!(s.alias(), before, "a refused state wrote the alias");
        prop_assert!(s.published().is_empty(), "a refused state notified");
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(2048))]

    #[test]
    fn random_json_never_panics(doc in document()) {
        feed(&doc)?;
        let _ = Execution::from_value(&doc);
        let info = ExecutionInfo {
            id: "x".into(),
            name: "x".into(),
            status: RunStatus::Succeeded,
            started_epoch: 0,
            stopped_epoch: Some(1),
            input: None,
            output: Some(json!({ "execution": doc })),
            error: None,
            cause: None,
        };
        let _ = soak::promotion_of(&info);
    }

    #[test]
    fn one_mutated_value_anywhere_never_panics(
        pick in any::<prop::sample::Index>(),
        op in 0usize..9,
        with in leaf(),
        own_fields in any::<bool>(),
    ) {
        let state = STATE.with(Clone::clone);
        let event = &events(&state)[op];
        let mut all = Vec::new();
        paths(event, &mut all, &mut Vec::new());
        // Half the cases hit the state's own fields rather than the evidence it carries
        // (the decision's and history's many numbers), where indexing and arithmetic live.
        let own: Vec<Vec<Value>> = all
            .iter()
            .filter(|p| {
                !p.iter()
                    .any(|k| k == "lastDecision" || k == "history" || k == "sequential")
            })
            .cloned()
            .collect();
        let pool = if own_fields { &own } else { &all };
        let path = pick.get(pool).clone();
        let mut bad = event.clone();
        replace(&mut bad, &path, with);
        feed(&bad)?;
        if let Some(e) = bad.get("execution") {
            let _ = Execution::from_value(e);
        }
    }
}

thread_local! {
    static STATE: Value = valid_state();
}

#[test]
fn the_unmutated_events_are_accepted() {
    // The mutation property starts from events the step takes as they are.
    let state = valid_state();
    for event in events(&state) {
        let s = sim();
        let ports = Ports {
            metrics: &s,
            router: &s,
            notifier: &s,
            hook: &NoHook,
        };
        let out = run_ready(handle_value(&event, 3600, ports)).expect("ready");
        if let Err(e) = &out {
            assert_ne!(e.error_type(), "InvalidState", "{event}: {e}");
        }
    }
}
