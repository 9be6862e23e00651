//! SNS and CodeDeploy both down while a regressed canary rolls back: the rollback happens,
//! and every failed delivery is in the step's output, in the carried state and in `status`.

use super::*;
use crate::operator;
use crate::ports::{ExecutionInfo, HistoryEvent, HistoryKind, LifecycleHook, RunStatus};
use crate::state::DeliveryKind;
use crate::step::ops::{PhaseEvent, Ports, handle};

/// CodeDeploy refusing every report.
struct BrokenHook;

impl LifecycleHook for BrokenHook {
    async fn report(&self, _d: &str, _h: &str, _ok: bool) -> Result<(), PortError> {
        Err(PortError::Rejected(
            "PutLifecycleEventHookExecutionStatus: AccessDenied".into(),
        ))
    }
}

impl crate::ports::Deployments for BrokenHook {
    async fn deployment(&self, _id: &str) -> Result<crate::ports::DeploymentInfo, PortError> {
        Ok(crate::sim::lambda_deployment(
            &config().target.expect("target"),
        ))
    }
}

fn exited(epoch: i64, state: &str, output: serde_json::Value) -> HistoryEvent {
    HistoryEvent {
        epoch,
        kind: HistoryKind::StateExited,
        state: Some(state.to_string()),
        detail: Some(output),
        error: None,
        cause: None,
    }
}

#[test]
fn rollback_happens_with_sns_and_codedeploy_down_and_the_failures_show() {
    let s = sim(Scenario::healthy(50.0).with_regression(2.1, 26.0));
    let hook = HookRef {
        deployment_id: "d-1".into(),
        lifecycle_event_hook_execution_id: "h-1".into(),
    };
    let ports = || Ports {
        metrics: &s,
        router: &s,
        notifier: &BrokenNotifier,
        hook: &BrokenHook,
    };
    let exec = ready(start(config(), 0, Some(hook), &s)).expect("starts");
    let mut history = Vec::new();
    let mut event = PhaseEvent::Look { execution: exec };
    let mut now = 0;
    let last = loop {
        now += 60;
        s.run_until(now);
        let r = ready(handle(event, now, ports())).expect("a look succeeds without SNS");
        let exec = r.execution.clone().expect("state");
        history.push(exited(
            now,
            "Analyse",
            serde_json::to_value(&r).expect("json"),
        ));
        if exec.run.outcome.is_some() || now >= 1800 {
            break r;
        }
        event = PhaseEvent::Look { execution: exec };
    };
    assert_eq!(last.action, Action::Rollback);
    let alias = s.alias();
    assert_eq!((alias.version.as_str(), alias.additional), ("41", None));
    // The step's output and the carried state name each failed notification and its cause.
    assert!(
        last.failures
            .iter()
            .any(|f| f.kind == DeliveryKind::Notification && f.what == "rollback"),
        "{:?}",
        last.failures
    );
    assert!(
        last.failures
            .iter()
            .all(|f| f.cause.contains("SNS is down"))
    );
    let exec = last.execution.clone().expect("state");
    assert_eq!(exec.delivery_failures, last.failures);

    // The state machine's RolledBack state reports to CodeDeploy, which refuses: a stable
    // error the machine retries, and the alias stays rolled back.
    let err = ready(handle(
        PhaseEvent::Finish {
            execution: exec.clone(),
            succeeded: false,
        },
        now + 1,
        ports(),
    ))
    .expect_err("report refused");
    assert_eq!(err.error_type(), "HookReportFailed");
    assert!(err.to_string().contains("AccessDenied"), "{err}");
    assert_eq!(s.alias().additional, None);

    // A conflict's report is not retried: its failure is carried in the output.
    let r = ready(handle(
        PhaseEvent::Conflict {
            execution: exec,
            error: serde_json::Value::Null,
        },
        now + 2,
        ports(),
    ))
    .expect("conflict handled");
    assert!(
        r.failures
            .iter()
            .any(|f| f.kind == DeliveryKind::HookReport && f.what == "d-1"),
        "{:?}",
        r.failures
    );

    // `status` and `history` show them.
    let info = ExecutionInfo {
        id: "arn:exec:1".into(),
        name: "canary".into(),
        status: RunStatus::Failed,
        started_epoch: 0,
        stopped_epoch: Some(now + 10),
        input: None,
        output: None,
        error: Some("HookReportFailed".into()),
        cause: Some(err.to_string()),
    };
    let st = operator::status(&info, &history, now + 10);
    assert_eq!(st.delivery_failures, last.failures);
    assert_eq!(st.error.as_deref(), Some("HookReportFailed"));
    let decisions = operator::decisions(&history);
    let rolled_back = decisions.last().expect("decisions");
    assert_eq!(rolled_back.action, "rollback");
    assert_eq!(rolled_back.failures, last.failures);
}
