//! The `phase` function's contract with the state machine: one event type per state that
//! invokes it (`op`), and one response shape that the `Decide` choice reads.
//!
//! Events come back from Step Functions as JSON: [`PhaseEvent::from_value`] parses them
//! strictly and validates the carried [`Execution`], so a malformed or tampered state is an
//! `InvalidState` error naming the JSON path, never a panic later on.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::StepError;
use crate::policy::Action;
use crate::state::{DeliveryFailure, Execution, HookRef, parse_value};

/// The events the state machine sends to the `phase` function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum PhaseEvent {
    /// Validate the config, check the alias and shift the first share.
    #[serde(rename_all = "camelCase")]
    Start {
        /// The canary config as JSON (validated here, with JSON-path errors).
        config: Value,
        /// The CodeDeploy hook that started the canary, if any.
        #[serde(default)]
        hook: Option<HookRef>,
        /// The Step Functions execution id: the canary's hold on the alias names it.
        #[serde(default)]
        execution_id: Option<String>,
    },
    /// One analysis step.
    Look {
        /// The state carried between steps.
        execution: Execution,
    },
    /// A look failed after its retries: hold, notify, and roll back once failures outlast
    /// the canary's timeout.
    Error {
        /// The state carried between steps.
        execution: Execution,
        /// The caught error (`Error`, `Cause`).
        #[serde(default)]
        error: Value,
    },
    /// Publish an approval request carrying the task token.
    #[serde(rename_all = "camelCase")]
    RequestApproval {
        /// The state carried between steps.
        execution: Execution,
        /// The action awaiting approval.
        action: Action,
        /// The Step Functions task token to answer with.
        task_token: String,
    },
    /// The operator approved the pending action.
    Apply {
        /// The state carried between steps.
        execution: Execution,
        /// The approved action.
        action: Action,
        /// The operator's answer (who, when).
        #[serde(default)]
        approval: Value,
    },
    /// Nobody answered in time: apply the safe default (a pending rollback happens, a
    /// pending advance or promotion does not).
    Timeout {
        /// The state carried between steps.
        execution: Execution,
        /// The action that waited.
        action: Action,
    },
    /// The operator rejected the pending action: it does not happen; the canary goes on.
    Reject {
        /// The state carried between steps.
        execution: Execution,
        /// The rejected action.
        action: Action,
        /// The rejection as caught.
        #[serde(default)]
        error: Value,
    },
    /// Someone else changed the alias: notify and stop.
    Conflict {
        /// The state carried between steps.
        execution: Execution,
        /// The caught error.
        #[serde(default)]
        error: Value,
    },
    /// The canary ended: report to CodeDeploy when it started the canary.
    Finish {
        /// The state carried between steps.
        execution: Execution,
        /// Promoted (true) or rolled back (false).
        succeeded: bool,
    },
    /// `start` failed: report Failed to CodeDeploy when a hook started the canary.
    StartFailed {
        /// The state machine's input plus the caught error.
        input: Value,
    },
}

/// What the `phase` function returns to the state machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseResponse {
    /// The state to carry on (absent for `finish`, `conflict` and `start-failed`).
    pub execution: Option<Execution>,
    /// Seconds for the `Soak` wait.
    pub wait_seconds: u64,
    /// The action decided or applied (`continue`, `advance`, `rollback`, …).
    pub action: Action,
    /// Whether the state machine must wait for an operator.
    pub awaiting_approval: bool,
    /// One line for the execution history.
    pub summary: String,
    /// Notifications and CodeDeploy reports that failed (the step itself succeeded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<DeliveryFailure>,
}

impl PhaseEvent {
    /// Parses an event as the state machine sends it, validating its carried state.
    pub fn from_value(value: &Value) -> Result<Self, StepError> {
        let event: Self = match parse_value(value) {
            Ok(event) => event,
            Err(e) => {
                // An internally tagged event's errors stop at the event itself: a carried state
                // that does not parse is parsed again on its own, for the path inside it.
                if let Some(exec) = value.get("execution") {
                    parse_value::<Execution>(exec)
                        .map_err(|e| StepError::InvalidState(e.under("$.execution")))?;
                }
                return Err(StepError::InvalidState(e));
            }
        };
        if let Some(exec) = event.execution() {
            exec.validate()
                .map_err(|e| StepError::InvalidState(e.under("$.execution")))?;
        }
        Ok(event)
    }

    /// The carried state, for the events that have one.
    pub fn execution(&self) -> Option<&Execution> {
        match self {
            PhaseEvent::Start { .. } | PhaseEvent::StartFailed { .. } => None,
            PhaseEvent::Look { execution }
            | PhaseEvent::Error { execution, .. }
            | PhaseEvent::RequestApproval { execution, .. }
            | PhaseEvent::Apply { execution, .. }
            | PhaseEvent::Timeout { execution, .. }
            | PhaseEvent::Reject { execution, .. }
            | PhaseEvent::Conflict { execution, .. }
            | PhaseEvent::Finish { execution, .. } => Some(execution),
        }
    }
}
