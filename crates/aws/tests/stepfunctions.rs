//! The Step Functions adapter against a real moto server over HTTP, with moto executing the
//! state machines: start, describe, list, history, answering a task token, stopping; and the
//! operator commands of `canary_gate_core::operator` on top of it.
//!
//! moto keeps one execution per state machine reliably (a second `StartExecution` on the same
//! machine fails inside moto), so each scenario creates its own machine.

mod support;

use aws_sdk_sfn::Client as Sfn;
use canary_gate_aws::StepFunctionsExecutions;
use canary_gate_core::config::CanaryConfig;
use canary_gate_core::operator::{self, OperatorError};
use canary_gate_core::ports::{Executions, HistoryKind, RunStatus};
use serde_json::{Value, json};
use support::Moto;

async fn wait_for<F: Fn(&Vec<canary_gate_core::ports::HistoryEvent>) -> bool>(
    ex: &StepFunctionsExecutions,
    id: &str,
    what: F,
) -> Vec<canary_gate_core::ports::HistoryEvent> {
    for _ in 0..100 {
        let events = ex.history(id).await.expect("history");
        if what(&events) {
            return events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("execution {id} did not get there in 10 s");
}

fn config() -> CanaryConfig {
    CanaryConfig::from_json(include_str!("../../../examples/demo-config.json")).expect("config")
}

#[tokio::test]
async fn an_execution_is_started_read_answered_and_finishes() {
    let (_moto, sdk, role) = Moto::with_state_machines().await;
    let sfn = Sfn::new(&sdk);
    let machine = support::approval_machine(&sfn, &role, "canary-approve").await;
    let ex = StepFunctionsExecutions::new(sfn, &machine);

    let input = json!({"config": {"target": {"function_name": "orders-api", "alias": "live"}}});
    let id = ex
        .start("orders-api-live-v42-1", &input)
        .await
        .expect("start");
    assert!(id.ends_with(":orders-api-live-v42-1"), "{id}");

    let info = ex.describe(&id).await.expect("describe");
    assert_eq!(info.status, RunStatus::Running);
    assert_eq!(info.name, "orders-api-live-v42-1");
    assert_eq!(info.input, Some(input));
    assert!(info.started_epoch > 1_700_000_000);

    let running = ex.list(true, 10).await.expect("list");
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].id, id);

    let events = wait_for(&ex, &id, |ev| {
        ev.iter().any(|e| e.kind == HistoryKind::TaskScheduled)
    })
    .await;
    let entered = events
        .iter()
        .find(|e| e.kind == HistoryKind::StateEntered)
        .expect("state entered");
    assert_eq!(entered.state.as_deref(), Some("AwaitApproval"));
    let pending = operator::pending_approval(&events).expect("an approval waits");
    assert_eq!(pending.action.as_str(), "promote");
    assert!(!pending.task_token.is_empty());

    let answered = operator::answer(&ex, &id, true, "alice", "ship it", 1_800_000_000)
        .await
        .expect("approved");
    assert_eq!(answered.task_token, pending.task_token);
    let mut info = ex.describe(&id).await.expect("describe");
    for _ in 0..100 {
        if info.status.is_finished() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        info = ex.describe(&id).await.expect("describe");
    }
    assert_eq!(info.status, RunStatus::Succeeded);
    let output = info.output.expect("output");
    assert_eq!(output["approval"]["approvedBy"], "alice");
    assert_eq!(output["approval"]["comment"], "ship it");
    assert!(ex.list(true, 10).await.expect("list").is_empty());
    let err = operator::answer(&ex, &id, true, "alice", "", 0)
        .await
        .expect_err("nothing waits any more");
    assert!(matches!(err, OperatorError::NotRunning { .. }), "{err}");
}

#[tokio::test]
async fn a_rejection_fails_the_waiting_task_with_the_rejected_error() {
    let (_moto, sdk, role) = Moto::with_state_machines().await;
    let sfn = Sfn::new(&sdk);
    let machine = support::approval_machine(&sfn, &role, "canary-reject").await;
    let ex = StepFunctionsExecutions::new(sfn, &machine);
    let id = ex.start("reject-1", &json!({})).await.expect("start");
    wait_for(&ex, &id, |ev| {
        ev.iter().any(|e| e.kind == HistoryKind::TaskScheduled)
    })
    .await;
    operator::answer(&ex, &id, false, "bob", "not tonight", 0)
        .await
        .expect("rejected");
    let events = wait_for(&ex, &id, |ev| {
        ev.iter()
            .any(|e| e.kind == HistoryKind::Failed && e.error.as_deref() == Some("Rejected"))
    })
    .await;
    // moto keeps the error name of a task failure but not its cause.
    let failure = events
        .iter()
        .find(|e| e.error.as_deref() == Some("Rejected"))
        .expect("failure");
    assert_eq!(failure.state.as_deref(), Some("AwaitApproval"));
}

#[tokio::test]
async fn a_stop_aborts_the_execution() {
    let (_moto, sdk, role) = Moto::with_state_machines().await;
    let sfn = Sfn::new(&sdk);
    let definition = json!({
        "StartAt": "Soak",
        "States": {"Soak": {"Type": "Wait", "Seconds": 600, "End": true}}
    });
    let machine = sfn
        .create_state_machine()
        .name("canary-stop")
        .definition(definition.to_string())
        .role_arn(&role)
        .send()
        .await
        .expect("state machine")
        .state_machine_arn()
        .to_string();
    let ex = StepFunctionsExecutions::new(sfn, &machine);
    let id = ex.start("stop-1", &json!({})).await.expect("start");
    ex.stop(&id, operator::ABORTED_ERROR, "rolled back by alice: pager")
        .await
        .expect("stop");
    let mut info = ex.describe(&id).await.expect("describe");
    for _ in 0..100 {
        if info.status.is_finished() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        info = ex.describe(&id).await.expect("describe");
    }
    // moto drops the error and cause of a stop (AWS keeps them; the operator tests in the
    // core check what the commands send).
    assert_eq!(info.status, RunStatus::Aborted);
    assert!(info.stopped_epoch.is_some());
    assert!(ex.list(true, 10).await.expect("list").is_empty());
}

#[tokio::test]
async fn start_refuses_a_second_canary_on_the_same_alias() {
    let (_moto, sdk, role) = Moto::with_state_machines().await;
    let sfn = Sfn::new(&sdk);
    let machine = support::approval_machine(&sfn, &role, "canary-start").await;
    let ex = StepFunctionsExecutions::new(sfn, &machine);
    let c = config();
    let id = operator::start(&ex, &c, 1_800_000_000)
        .await
        .expect("start");
    assert!(id.ends_with(":orders-api-live-v42-1800000000"), "{id}");
    let info = ex.describe(&id).await.expect("describe");
    let input: Value = info.input.expect("input");
    assert_eq!(input["config"]["target"]["canary_version"], "42");
    let err = operator::start(&ex, &c, 1_800_000_060)
        .await
        .expect_err("second canary");
    match err {
        OperatorError::AlreadyRunning { execution, .. } => assert_eq!(execution, id),
        other => panic!("unexpected: {other}"),
    }
}
