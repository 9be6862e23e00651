//! The `phase` Lambda function's entry point: builds the clients once and hands every event
//! to [`phase::handler`].
//!
//! Environment: `CANARY_GATE_TOPIC_ARN` (notifications), optionally
//! `CANARY_GATE_CHANNEL_TOPICS`, and the stack's target `CANARY_GATE_TARGET_FUNCTION` /
//! `CANARY_GATE_TARGET_ALIAS`: a start whose config names another function, alias or topic is
//! refused ([`phase::Scope`]).

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
    let mut topics = vec![topic.clone()];
    topics.extend(
        canary_gate_lambda::aws::parse_channel_topics(
            &env::var(canary_gate_lambda::aws::CHANNEL_TOPICS_ENV).unwrap_or_default(),
        )?
        .into_values(),
    );
    let scope = phase::Scope {
        function: env::var("CANARY_GATE_TARGET_FUNCTION"),
        alias: env::var("CANARY_GATE_TARGET_ALIAS"),
        topics,
    };
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
        let scope = &scope;
        async move {
            scope.check(&event.payload)?;
            phase::handler(ports, &event.payload, now()).await
        }
    }))
    .await
}
