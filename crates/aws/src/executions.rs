//! Step Functions behind [`Executions`]: starting canary executions, reading their state and
//! history, answering `.waitForTaskToken` approvals and stopping them. Used by the operator
//! commands and by the functions that start canaries (CodeDeploy hooks).

use aws_sdk_sfn::Client;
use aws_sdk_sfn::primitives::DateTime;
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent as SdkEvent, HistoryEventType};
use canary_gate_core::ports::{
    ExecutionInfo, Executions, HistoryEvent, HistoryKind, PortError, RunStatus,
};
use serde_json::Value;

use crate::error::classify;

/// Step Functions' limit on the `error` of a failure or stop.
const MAX_ERROR: usize = 256;
/// Step Functions' limit on the `cause` of a failure or stop.
const MAX_CAUSE: usize = 32_768;

/// Executions of one canary state machine.
#[derive(Debug, Clone)]
pub struct StepFunctionsExecutions {
    client: Client,
    state_machine_arn: String,
}

impl StepFunctionsExecutions {
    /// An adapter for the state machine `state_machine_arn` (needed by `start` and `list`;
    /// the other calls name an execution).
    pub fn new(client: Client, state_machine_arn: impl Into<String>) -> Self {
        Self {
            client,
            state_machine_arn: state_machine_arn.into(),
        }
    }

    /// The state machine this adapter starts and lists executions of.
    pub fn state_machine_arn(&self) -> &str {
        &self.state_machine_arn
    }
}

fn status_of(s: &ExecutionStatus) -> RunStatus {
    match s {
        ExecutionStatus::Running | ExecutionStatus::PendingRedrive => RunStatus::Running,
        ExecutionStatus::Succeeded => RunStatus::Succeeded,
        ExecutionStatus::TimedOut => RunStatus::TimedOut,
        ExecutionStatus::Aborted => RunStatus::Aborted,
        _ => RunStatus::Failed,
    }
}

fn epoch(t: &DateTime) -> i64 {
    t.secs()
}

fn json(text: Option<&str>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(t).ok())
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// Maps one SDK history event; `state` is the state most recently entered, which task events
/// belong to.
fn map_event(e: &SdkEvent, state: &mut Option<String>) -> HistoryEvent {
    let mut out = HistoryEvent {
        epoch: epoch(e.timestamp()),
        kind: HistoryKind::Other,
        state: state.clone(),
        detail: None,
        error: None,
        cause: None,
    };
    let failure = |error: Option<&str>, cause: Option<&str>, out: &mut HistoryEvent| {
        out.kind = HistoryKind::Failed;
        out.error = error.map(str::to_string);
        out.cause = cause.map(str::to_string);
    };
    if let Some(d) = e.state_entered_event_details() {
        *state = Some(d.name().to_string());
        out.kind = HistoryKind::StateEntered;
        out.state = state.clone();
        out.detail = json(d.input());
    } else if let Some(d) = e.state_exited_event_details() {
        out.kind = HistoryKind::StateExited;
        out.state = Some(d.name().to_string());
        out.detail = json(d.output());
    } else if let Some(d) = e.task_scheduled_event_details() {
        out.kind = HistoryKind::TaskScheduled;
        out.detail = json(Some(d.parameters()));
    } else if let Some(d) = e.task_failed_event_details() {
        failure(d.error(), d.cause(), &mut out);
    } else if let Some(d) = e.task_timed_out_event_details() {
        failure(d.error(), d.cause(), &mut out);
    } else if let Some(d) = e.lambda_function_failed_event_details() {
        failure(d.error(), d.cause(), &mut out);
    } else if let Some(d) = e.execution_failed_event_details() {
        failure(d.error(), d.cause(), &mut out);
    } else if let Some(d) = e.execution_aborted_event_details() {
        failure(d.error(), d.cause(), &mut out);
    } else if let Some(d) = e.execution_timed_out_event_details() {
        failure(d.error(), d.cause(), &mut out);
    } else if matches!(
        e.r#type(),
        HistoryEventType::ExecutionAborted
            | HistoryEventType::ExecutionFailed
            | HistoryEventType::ExecutionTimedOut
    ) {
        out.kind = HistoryKind::Failed;
    }
    out
}

impl Executions for StepFunctionsExecutions {
    async fn start(&self, name: &str, input: &Value) -> Result<String, PortError> {
        let out = self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(name)
            .input(input.to_string())
            .send()
            .await
            .map_err(classify)?;
        Ok(out.execution_arn().to_string())
    }

    async fn describe(&self, id: &str) -> Result<ExecutionInfo, PortError> {
        let d = self
            .client
            .describe_execution()
            .execution_arn(id)
            .send()
            .await
            .map_err(classify)?;
        Ok(ExecutionInfo {
            id: d.execution_arn().to_string(),
            name: d.name().unwrap_or_default().to_string(),
            status: status_of(d.status()),
            started_epoch: epoch(d.start_date()),
            stopped_epoch: d.stop_date().map(epoch),
            input: json(d.input()),
            output: json(d.output()),
            error: d.error().map(str::to_string),
            cause: d.cause().map(str::to_string),
        })
    }

    async fn history(&self, id: &str) -> Result<Vec<HistoryEvent>, PortError> {
        let mut events = Vec::new();
        let mut state = None;
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .get_execution_history()
                .execution_arn(id)
                .max_results(1000)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(classify)?;
            events.extend(page.events().iter().map(|e| map_event(e, &mut state)));
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(events)
    }

    async fn list(&self, running_only: bool, max: usize) -> Result<Vec<ExecutionInfo>, PortError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        while out.len() < max {
            let mut req = self
                .client
                .list_executions()
                .state_machine_arn(&self.state_machine_arn)
                .max_results((max - out.len()).min(1000) as i32)
                .set_next_token(token.take());
            if running_only {
                req = req.status_filter(ExecutionStatus::Running);
            }
            let page = req.send().await.map_err(classify)?;
            out.extend(page.executions().iter().map(|e| ExecutionInfo {
                id: e.execution_arn().to_string(),
                name: e.name().to_string(),
                status: status_of(e.status()),
                started_epoch: epoch(e.start_date()),
                stopped_epoch: e.stop_date().map(epoch),
                input: None,
                output: None,
                error: None,
                cause: None,
            }));
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        out.sort_by_key(|e| std::cmp::Reverse(e.started_epoch));
        out.truncate(max);
        Ok(out)
    }

    async fn answer(
        &self,
        task_token: &str,
        outcome: Result<Value, (String, String)>,
    ) -> Result<(), PortError> {
        match outcome {
            Ok(output) => self
                .client
                .send_task_success()
                .task_token(task_token)
                .output(output.to_string())
                .send()
                .await
                .map(|_| ())
                .map_err(classify),
            Err((error, cause)) => self
                .client
                .send_task_failure()
                .task_token(task_token)
                .error(truncate(&error, MAX_ERROR))
                .cause(truncate(&cause, MAX_CAUSE))
                .send()
                .await
                .map(|_| ())
                .map_err(classify),
        }
    }

    async fn stop(&self, id: &str, error: &str, cause: &str) -> Result<(), PortError> {
        self.client
            .stop_execution()
            .execution_arn(id)
            .error(truncate(error, MAX_ERROR))
            .cause(truncate(cause, MAX_CAUSE))
            .send()
            .await
            .map(|_| ())
            .map_err(classify)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("añb", 2), "a");
        assert_eq!(truncate("añb", 3), "añ");
    }

    #[test]
    fn every_execution_status_maps() {
        assert_eq!(status_of(&ExecutionStatus::Running), RunStatus::Running);
        assert_eq!(status_of(&ExecutionStatus::Succeeded), RunStatus::Succeeded);
        assert_eq!(status_of(&ExecutionStatus::Aborted), RunStatus::Aborted);
        assert_eq!(status_of(&ExecutionStatus::TimedOut), RunStatus::TimedOut);
        assert_eq!(status_of(&ExecutionStatus::Failed), RunStatus::Failed);
        assert!(!RunStatus::Running.is_finished());
        assert!(RunStatus::Aborted.is_finished());
    }
}
