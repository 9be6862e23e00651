//! The `approver` Lambda function's entry point: builds the clients once and hands every
//! event to [`approver::handler`].
//!
//! Environment: `CANARY_GATE_STATE_MACHINE_ARN` (the executions it starts and answers),
//! `CANARY_GATE_TOPIC_ARN` and optionally `CANARY_GATE_CHANNEL_TOPICS` (override
//! notifications), and the stack's target `CANARY_GATE_TARGET_FUNCTION` /
//! `CANARY_GATE_TARGET_ALIAS`: a start whose config names another function or alias is refused.

use canary_gate_core::operator::approver::StackTarget;
use canary_gate_lambda::{Clients, env, now};
use lambda_runtime::{Error, LambdaEvent, service_fn, tracing};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let clients = Clients::load().await;
    let machine = env::required(
        "CANARY_GATE_STATE_MACHINE_ARN",
        "the approver starts and answers its executions",
    )?;
    let topic = env::required(
        "CANARY_GATE_TOPIC_ARN",
        "the approver notifies every override",
    )?;
    let stack = StackTarget {
        function: env::var("CANARY_GATE_TARGET_FUNCTION"),
        alias: env::var("CANARY_GATE_TARGET_ALIAS"),
    };
    let verifier = clients.identity();
    let executions = clients.executions(machine);
    let router = clients.router();
    let notifier = clients.notifier(topic)?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let ports = approver::Ports {
            verifier: &verifier,
            executions: &executions,
            router: &router,
            notifier: &notifier,
        };
        approver::handler(ports, &stack, event.payload, now())
    }))
    .await
}
