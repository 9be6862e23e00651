//! The `soak-check` Lambda function, run by an EventBridge schedule: after a promotion it
//! keeps comparing the promoted version with the baseline observed before the promotion for
//! the config's `post_promotion_soak_seconds`, and rolls the alias back to the previous
//! version on a regression, notifying. Idle when no soak is active; running twice does no
//! harm. The logic lives in `canary_gate_core::soak`.
//!
//! Environment: `CANARY_GATE_STATE_MACHINE_ARN` (whose latest succeeded execution says what
//! was promoted), `CANARY_GATE_TOPIC_ARN` and optionally `CANARY_GATE_CHANNEL_TOPICS`
//! (notifications), `CANARY_GATE_SCHEDULE_MINUTES` (the schedule's rate; default 5).

use canary_gate_core::ports::{Executions, MetricsSource, Notifier, TrafficRouter};
use canary_gate_core::soak::{self, SoakPorts, SoakReport};
use canary_gate_lambda::{Clients, diagnostic, env, now};
use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn, tracing};
use serde::Deserialize;

// The soak's looks must settle at least as long as CloudWatch delays datapoints.
const _: () =
    assert!(soak::SETTLE_SECONDS >= canary_gate_lambda::aws::DEFAULT_INGESTION_DELAY_SECONDS);

/// The schedule's rate in minutes when `CANARY_GATE_SCHEDULE_MINUTES` is not set.
const DEFAULT_SCHEDULE_MINUTES: i64 = 5;

/// The parts of an EventBridge scheduled event that are logged; any other event (a manual
/// test invocation) is accepted too.
#[derive(Debug, Default, Deserialize)]
struct Trigger {
    #[serde(rename = "detail-type", default)]
    detail_type: Option<String>,
    #[serde(default)]
    time: Option<String>,
}

async fn handler<E, M, R, N>(
    ports: SoakPorts<'_, E, M, R, N>,
    trigger: Trigger,
    schedule_seconds: i64,
    now_epoch: i64,
) -> Result<SoakReport, Diagnostic>
where
    E: Executions,
    M: MetricsSource,
    R: TrafficRouter,
    N: Notifier,
{
    match soak::check(now_epoch, schedule_seconds, ports).await {
        Ok(r) => {
            let (function, alias, version) = r
                .target
                .as_ref()
                .map(|t| {
                    (
                        t.function_name.as_str(),
                        t.alias.as_str(),
                        t.canary_version.as_str(),
                    )
                })
                .unwrap_or_default();
            tracing::info!(
                trigger = trigger.detail_type.as_deref().unwrap_or("direct"),
                time = trigger.time.as_deref().unwrap_or(""),
                status = r.status.as_str(),
                function,
                alias,
                version,
                looks = r.looks,
                "{}",
                r.summary
            );
            for f in &r.notification_failures {
                tracing::warn!(
                    error_type = f.kind.error_type(),
                    what = f.what.as_str(),
                    cause = f.cause.as_str(),
                    "notification failed"
                );
            }
            Ok(r)
        }
        Err(e) => Err(diagnostic(e.error_type(), &e)),
    }
}

/// The schedule's rate in seconds, from `CANARY_GATE_SCHEDULE_MINUTES`.
fn schedule_seconds(minutes: Option<String>) -> Result<i64, String> {
    match minutes {
        None => Ok(DEFAULT_SCHEDULE_MINUTES * 60),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(m) if m > 0 => Ok(m * 60),
            _ => Err(format!(
                "CANARY_GATE_SCHEDULE_MINUTES must be a positive number of minutes, got {v:?}"
            )),
        },
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let clients = Clients::load().await;
    let machine = env::required(
        "CANARY_GATE_STATE_MACHINE_ARN",
        "soak-check reads its executions",
    )?;
    let topic = env::required(
        "CANARY_GATE_TOPIC_ARN",
        "soak-check needs the notification topic",
    )?;
    let schedule = schedule_seconds(env::var("CANARY_GATE_SCHEDULE_MINUTES"))?;
    let executions = clients.executions(machine);
    // The soak only judges looks that have settled (`soak::SETTLE_SECONDS`), so the adapter
    // must not cut the end of each look off again.
    let metrics = clients.metrics().with_ingestion_delay(0);
    let router = clients.router();
    let notifier = clients.notifier(topic)?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        // Any event starts a check; only an EventBridge event's time and type are logged.
        let trigger = serde_json::from_value(event.payload).unwrap_or_default();
        let ports = SoakPorts {
            executions: &executions,
            metrics: &metrics,
            router: &router,
            notifier: &notifier,
        };
        handler(ports, trigger, schedule, now())
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use canary_gate_core::ports::{ExecutionInfo, RunStatus};
    use canary_gate_core::sim::{
        Fleet, MetricNames, Scenario, SimulatedExecutions, SimulatedLambda,
    };
    use canary_gate_core::soak::SoakStatus;
    use serde_json::json;

    fn schedule_event() -> serde_json::Value {
        let path = format!(
            "{}/../../events/soak-check/schedule.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&path).expect("sample event"))
            .expect("event parses")
    }

    fn lambda() -> SimulatedLambda {
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

    #[test]
    fn the_sample_is_an_eventbridge_scheduled_event() {
        let t: Trigger = serde_json::from_value(schedule_event()).expect("trigger");
        assert_eq!(t.detail_type.as_deref(), Some("Scheduled Event"));
        assert_eq!(t.time.as_deref(), Some("2026-11-22T10:05:00Z"));
    }

    #[tokio::test]
    async fn the_scheduled_event_is_idle_without_a_promotion() {
        let sfn = SimulatedExecutions::new();
        let fleet = lambda();
        let ports = || SoakPorts {
            executions: &sfn,
            metrics: &fleet,
            router: &fleet,
            notifier: &fleet,
        };
        let trigger = serde_json::from_value(schedule_event()).expect("trigger");
        let r = handler(ports(), trigger, 300, 10_000).await.expect("idle");
        assert_eq!(r.status, SoakStatus::Idle);
        assert_eq!(fleet.alias().version, "41");

        sfn.insert(ExecutionInfo {
            id: "arn:exec:1".into(),
            name: "x".into(),
            status: RunStatus::Succeeded,
            started_epoch: 0,
            stopped_epoch: Some(1),
            input: None,
            output: Some(json!({"summary": "no state"})),
            error: None,
            cause: None,
        });
        let d = handler(ports(), Trigger::default(), 300, 10_000)
            .await
            .expect_err("unreadable");
        assert_eq!(d.error_type, "UnreadableExecution");
        assert!(
            d.error_message.contains("arn:exec:1"),
            "{}",
            d.error_message
        );
    }

    #[tokio::test]
    async fn a_malformed_promoted_state_is_invalid_state_naming_the_field() {
        let sfn = SimulatedExecutions::new();
        let fleet = lambda();
        let config = canary_gate_core::config::CanaryConfig::from_json(include_str!(
            "../../../examples/demo-config.json"
        ))
        .expect("config");
        let exec = canary_gate_core::step::start(config, 0, None, &fleet)
            .await
            .expect("start");
        let mut state = serde_json::to_value(&exec).expect("json");
        state["run"]["phase"] = json!(7);
        sfn.insert(ExecutionInfo {
            id: "arn:exec:tampered".into(),
            name: "tampered".into(),
            status: RunStatus::Succeeded,
            started_epoch: 0,
            stopped_epoch: Some(1),
            input: None,
            output: Some(json!({ "execution": state })),
            error: None,
            cause: None,
        });
        let before = fleet.alias();
        let ports = SoakPorts {
            executions: &sfn,
            metrics: &fleet,
            router: &fleet,
            notifier: &fleet,
        };
        let d = handler(ports, Trigger::default(), 300, 10_000)
            .await
            .expect_err("invalid state");
        assert_eq!(d.error_type, "InvalidState");
        assert!(
            d.error_message.contains("$.execution.run.phase"),
            "{}",
            d.error_message
        );
        assert_eq!(fleet.alias(), before, "nothing written");
        assert!(fleet.published().is_empty(), "nobody notified");
    }

    #[test]
    fn the_schedule_rate_is_read_and_checked() {
        assert_eq!(schedule_seconds(None), Ok(300));
        assert_eq!(schedule_seconds(Some("10".into())), Ok(600));
        assert!(schedule_seconds(Some("0".into())).is_err());
        assert!(schedule_seconds(Some("5m".into())).is_err_and(|e| e.contains("5m")));
    }
}
