//! What an execution's history says: the latest canary state, the decisions taken, a pending approval and the status `canary-gate status` shows.

use super::*;

/// The latest canary state in an execution: the `execution` of the newest state output that
/// carries one.
pub fn latest_execution(events: &[HistoryEvent]) -> Option<Execution> {
    events
        .iter()
        .rev()
        .filter(|e| e.kind == HistoryKind::StateExited)
        .filter_map(|e| e.detail.as_ref()?.get("execution"))
        // A state that does not validate is not the canary's (and would mislead).
        .find_map(|v| Execution::from_value(v).ok())
}

/// The decisions of a canary, oldest first: every state output with an action, and the
/// operator stops.
pub fn decisions(events: &[HistoryEvent]) -> Vec<DecisionEntry> {
    let mut out = Vec::new();
    for e in events {
        match e.kind {
            HistoryKind::StateExited => {
                let Some(detail) = &e.detail else { continue };
                let Some(action) = detail.get("action").and_then(Value::as_str) else {
                    continue;
                };
                let exec: Option<Execution> = detail
                    .get("execution")
                    .and_then(|v| Execution::from_value(v).ok());
                let summary = detail
                    .get("summary")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| {
                        exec.as_ref()
                            .and_then(|x| x.history.last().map(|l| l.reason.clone()))
                    })
                    .unwrap_or_else(|| "canary started".to_string());
                out.push(DecisionEntry {
                    epoch: e.epoch,
                    state: e.state.clone().unwrap_or_default(),
                    action: action.to_string(),
                    phase: exec.as_ref().map(|x| x.run.phase),
                    weight: exec.as_ref().map(|x| x.run.weight(&x.config)),
                    summary,
                    failures: exec.map(|x| x.delivery_failures).unwrap_or_default(),
                });
            }
            HistoryKind::Failed
                if matches!(
                    e.error.as_deref(),
                    Some(ABORTED_ERROR) | Some(PROMOTED_ERROR)
                ) =>
            {
                let promoted = e.error.as_deref() == Some(PROMOTED_ERROR);
                out.push(DecisionEntry {
                    epoch: e.epoch,
                    state: "Operator".to_string(),
                    action: if promoted { "promote" } else { "rollback" }.to_string(),
                    phase: None,
                    weight: Some(if promoted { 100.0 } else { 0.0 }),
                    summary: e.cause.clone().unwrap_or_default(),
                    failures: Vec::new(),
                });
            }
            _ => {}
        }
    }
    out
}

/// The approval an execution waits for: the newest scheduled task carrying a task token
/// whose state has not been left since.
pub fn pending_approval(events: &[HistoryEvent]) -> Option<PendingApproval> {
    let (index, event) = events
        .iter()
        .enumerate()
        .rev()
        .find(|(_, e)| e.kind == HistoryKind::TaskScheduled && token_of(e).is_some())?;
    let state = event.state.as_deref();
    let answered = events[index + 1..].iter().any(|e| {
        (e.kind == HistoryKind::StateExited && e.state.as_deref() == state)
            || e.kind == HistoryKind::Failed
    });
    if answered {
        return None;
    }
    let payload = event.detail.as_ref()?.get("Payload")?;
    let action = payload
        .get("action")
        .cloned()
        .and_then(|a| serde_json::from_value(a).ok())
        .unwrap_or(Action::Continue);
    Some(PendingApproval {
        task_token: token_of(event)?.to_string(),
        action,
        requested_epoch: event.epoch,
    })
}

fn token_of(e: &HistoryEvent) -> Option<&str> {
    e.detail
        .as_ref()?
        .get("Payload")?
        .get("taskToken")?
        .as_str()
}

/// Builds the status of an execution from its description and history at `now_epoch`.
pub fn status(info: &ExecutionInfo, events: &[HistoryEvent], now_epoch: i64) -> CanaryStatus {
    let exec = latest_execution(events);
    let input_target = info
        .input
        .as_ref()
        .and_then(|i| i.get("config"))
        .and_then(|c| c.get("target"));
    let target_field = |name: &str| -> Option<String> {
        match &exec {
            Some(x) => x.config.target.as_ref().map(|t| match name {
                "function_name" => t.function_name.clone(),
                "alias" => t.alias.clone(),
                "baseline_version" => t.baseline_version.clone(),
                _ => t.canary_version.clone(),
            }),
            None => input_target
                .and_then(|t| t.get(name))
                .and_then(Value::as_str)
                .map(str::to_string),
        }
    };
    let running = info.status == RunStatus::Running;
    let (phase_left, timeout_left) = match (&exec, running) {
        (Some(x), true) => {
            let phase = &x.config.canary_phases[x.run.phase - 1];
            let phase_end =
                x.started_epoch + (x.run.phase_started_at + phase.duration_seconds) as i64;
            let timeout_end = x.started_epoch + x.config.timeout_seconds as i64;
            (
                Some((phase_end - now_epoch).max(0)),
                Some((timeout_end - now_epoch).max(0)),
            )
        }
        _ => (None, None),
    };
    let mut weight = exec.as_ref().map(|x| x.run.weight(&x.config));
    let last_decision = decisions(events).pop();
    if let Some(d) = &last_decision
        && d.state == "Operator"
    {
        weight = d.weight;
    }
    CanaryStatus {
        execution: info.id.clone(),
        name: info.name.clone(),
        status: info.status,
        started_epoch: info.started_epoch,
        stopped_epoch: info.stopped_epoch,
        function: target_field("function_name"),
        alias: target_field("alias"),
        baseline_version: target_field("baseline_version"),
        canary_version: target_field("canary_version"),
        phase: exec
            .as_ref()
            .map(|x| (x.run.phase, x.config.canary_phases.len())),
        weight,
        last_decision,
        phase_left_seconds: phase_left,
        timeout_left_seconds: timeout_left,
        pending_approval: if running {
            pending_approval(events)
        } else {
            None
        },
        delivery_failures: exec.map(|x| x.delivery_failures).unwrap_or_default(),
        error: info.error.clone(),
        cause: info.cause.clone(),
    }
}
