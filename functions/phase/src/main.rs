//! The `phase` Lambda function's entry point: builds the clients once and hands every event
//! to [`phase::handler`].
//!
//! Environment: `CANARY_GATE_TOPIC_ARN` (notifications) and optionally
//! `CANARY_GATE_CHANNEL_TOPICS`.

use canary_gate_core::step::ops::Ports;
use canary_gate_lambda::{Clients, env, now};
use lambda_runtime::{Error, LambdaEvent, service_fn, tracing};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let clients = Clients::load().await;
    let topic = env::required(
        "CANARY_GATE_TOPIC_ARN",
        "the phase function needs the notification topic",
    )?;
    let metrics = clients.metrics();
    let router = clients.router();
    let notifier = clients.notifier(topic)?;
    let hook = clients.codedeploy();
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let ports = Ports {
            metrics: &metrics,
            router: &router,
            notifier: &notifier,
            hook: &hook,
        };
        async move { phase::handler(ports, &event.payload, now()).await }
    }))
    .await
}
