//! The `phase` Lambda function: one step of the canary per invocation (start, look, apply an
//! approval, report to CodeDeploy, …) as the state machine asks. Clients are built once;
//! the step itself lives in `canary_gate_core::step::ops`, and errors become `Diagnostic`s
//! whose `error_type` the state machine's Retry/Catch match (`Transient`, `AliasConflict`,
//! `MetricsUnavailable`, `InvalidConfig`, …).

use std::time::{SystemTime, UNIX_EPOCH};

use canary_gate_aws::{CloudWatchMetrics, CodeDeployHook, LambdaAliasRouter, SnsNotifier};
use canary_gate_core::emf;
use canary_gate_core::ports::{LifecycleHook, MetricsSource, Notifier, TrafficRouter};
use canary_gate_core::step::ops::{PhaseEvent, PhaseResponse, Ports, handle};
use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn, tracing};

/// Handles one event with the given adapters; the clock is passed in for testability.
async fn handler<M, R, N, H>(
    ports: Ports<'_, M, R, N, H>,
    event: PhaseEvent,
    now_epoch: i64,
) -> Result<PhaseResponse, Diagnostic>
where
    M: MetricsSource,
    R: TrafficRouter,
    N: Notifier,
    H: LifecycleHook,
{
    match handle(event, now_epoch, ports).await {
        Ok(resp) => {
            if let Some(exec) = &resp.execution {
                let (function, alias) = exec
                    .config
                    .target
                    .as_ref()
                    .map(|t| (t.function_name.as_str(), t.alias.as_str()))
                    .unwrap_or_default();
                tracing::info!(
                    function,
                    alias,
                    phase = exec.run.phase,
                    weight = exec.run.weight(&exec.config),
                    decision = resp.action.as_str(),
                    "{}",
                    resp.summary
                );
                if let Some(d) = &exec.last_decision {
                    for rec in emf::decision_records(d, function, alias, now_epoch * 1000) {
                        println!("{rec}");
                    }
                }
            }
            Ok(resp)
        }
        Err(e) => {
            tracing::error!(error_type = e.error_type(), "{e}");
            Err(Diagnostic {
                error_type: e.error_type().to_string(),
                error_message: e.to_string(),
            })
        }
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let sdk = canary_gate_aws::sdk_config().await;
    let topic = std::env::var("CANARY_GATE_TOPIC_ARN").map_err(|_| {
        Error::from(
            "CANARY_GATE_TOPIC_ARN is not set: the phase function needs the notification topic",
        )
    })?;
    let metrics = CloudWatchMetrics::new(aws_sdk_cloudwatch::Client::new(&sdk));
    let router = LambdaAliasRouter::new(aws_sdk_lambda::Client::new(&sdk));
    let channels = canary_gate_aws::parse_channel_topics(
        &std::env::var(canary_gate_aws::CHANNEL_TOPICS_ENV).unwrap_or_default(),
    )?;
    let notifier = SnsNotifier::new(aws_sdk_sns::Client::new(&sdk), topic).with_channels(channels);
    let hook = CodeDeployHook::new(aws_sdk_codedeploy::Client::new(&sdk));
    lambda_runtime::run(service_fn(|event: LambdaEvent<PhaseEvent>| {
        let ports = Ports {
            metrics: &metrics,
            router: &router,
            notifier: &notifier,
            hook: &hook,
        };
        handler(ports, event.payload, now())
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use canary_gate_core::ports::PortError;
    use canary_gate_core::sim::{Fleet, MetricNames, Scenario, SimulatedLambda};

    struct NoHook;

    impl LifecycleHook for NoHook {
        async fn report(&self, _d: &str, _h: &str, _ok: bool) -> Result<(), PortError> {
            Ok(())
        }
    }

    fn event(name: &str) -> PhaseEvent {
        let path = format!(
            "{}/../../events/phase/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&path).expect("sample event"))
            .expect("event parses")
    }

    fn sim() -> SimulatedLambda {
        let c = canary_gate_core::config::CanaryConfig::from_json(include_str!(
            "../../../examples/demo-config.json"
        ))
        .expect("config");
        let names = MetricNames {
            latency: "latency".into(),
            errors: "errors".into(),
        };
        SimulatedLambda::new(
            Fleet::new(Scenario::healthy(50.0), names, 2),
            c.target.as_ref().expect("target"),
            0,
            60,
        )
    }

    #[tokio::test]
    async fn sample_events_drive_a_start_and_a_look() {
        let s = sim();
        let ports = || Ports {
            metrics: &s,
            router: &s,
            notifier: &s,
            hook: &NoHook,
        };
        let started = handler(ports(), event("start"), 0).await.expect("start");
        assert_eq!(started.wait_seconds, 60);
        s.run_until(60);
        let look = PhaseEvent::Look {
            execution: started.execution.expect("execution"),
        };
        let out = handler(ports(), look, 60).await.expect("look");
        assert_eq!(out.action.as_str(), "continue");
        assert!(out.execution.expect("state").last_decision.is_some());
    }

    #[tokio::test]
    async fn errors_become_diagnostics_with_stable_types() {
        let s = sim();
        let ports = Ports {
            metrics: &s,
            router: &s,
            notifier: &s,
            hook: &NoHook,
        };
        let mut e = serde_json::to_value(event("start")).expect("json");
        e["config"]["target"]["canary_version"] = "41".into();
        let bad: PhaseEvent = serde_json::from_value(e).expect("event");
        let d = handler(ports, bad, 0).await.expect_err("invalid config");
        assert_eq!(d.error_type, "InvalidConfig");
        assert!(
            d.error_message.contains("target.canary_version"),
            "{}",
            d.error_message
        );
    }
}

#[cfg(test)]
mod sample_events {
    use super::*;

    #[test]
    fn every_sample_event_parses() {
        let dir = format!("{}/../../events/phase", env!("CARGO_MANIFEST_DIR"));
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("events dir") {
            let path = entry.expect("entry").path();
            let text = std::fs::read_to_string(&path).expect("read");
            let parsed: Result<PhaseEvent, _> = serde_json::from_str(&text);
            assert!(parsed.is_ok(), "{}: {:?}", path.display(), parsed.err());
            n += 1;
        }
        assert!(
            n >= 7,
            "sample events for every op the state machine sends, found {n}"
        );
    }
}
