//! The handler over the simulated fleet, driven by the sample events in `events/phase/`.

use canary_gate_core::ports::{LifecycleHook, PortError};
use canary_gate_core::sim::{Fleet, MetricNames, Scenario, SimulatedLambda};
use canary_gate_core::step::ops::{PhaseEvent, Ports};
use phase::handler;
use serde_json::{Value, json};

struct NoHook;

impl LifecycleHook for NoHook {
    async fn report(&self, _d: &str, _h: &str, _ok: bool) -> Result<(), PortError> {
        Ok(())
    }
}

impl canary_gate_core::ports::Deployments for NoHook {
    async fn deployment(
        &self,
        _id: &str,
    ) -> Result<canary_gate_core::ports::DeploymentInfo, PortError> {
        let demo = include_str!("../../../examples/demo-config.json");
        let c = canary_gate_core::config::CanaryConfig::from_json(demo).expect("demo config");
        Ok(canary_gate_core::sim::lambda_deployment(
            &c.target.expect("target"),
        ))
    }
}

fn event(name: &str) -> Value {
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
    let started = handler(ports(), &event("start"), 0).await.expect("start");
    assert_eq!(started.wait_seconds, 60);
    s.run_until(60);
    let look = json!({"op": "look", "execution": started.execution.expect("execution")});
    let out = handler(ports(), &look, 60).await.expect("look");
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
    let mut e = event("start");
    e["config"]["target"]["canary_version"] = "41".into();
    let d = handler(ports, &e, 0).await.expect_err("invalid config");
    assert_eq!(d.error_type, "InvalidConfig");
    assert!(
        d.error_message.contains("target.canary_version"),
        "{}",
        d.error_message
    );
}

#[test]
fn every_sample_event_parses() {
    let dir = format!("{}/../../events/phase", env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("events dir") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        let value: Value = serde_json::from_str(&text).expect("json");
        let parsed = PhaseEvent::from_value(&value);
        assert!(parsed.is_ok(), "{}: {:?}", path.display(), parsed.err());
        n += 1;
    }
    assert!(
        n >= 7,
        "sample events for every op the state machine sends, found {n}"
    );
}

#[tokio::test]
async fn a_malformed_carried_state_is_invalid_state_naming_the_field() {
    let s = sim();
    let ports = || Ports {
        metrics: &s,
        router: &s,
        notifier: &s,
        hook: &NoHook,
    };
    let started = handler(ports(), &event("start"), 0).await.expect("start");
    let exec = serde_json::to_value(started.execution.expect("execution")).expect("json");
    let alias_before = s.alias();
    type Tamper = fn(&mut Value);
    let cases: [(&str, Tamper); 5] = [
        // Phase 0 or past the last phase used to index out of the config's phases.
        ("$.execution.run.phase", |e| e["run"]["phase"] = json!(0)),
        ("$.execution.run.phase", |e| e["run"]["phase"] = json!(9)),
        ("$.execution.run.phase", |e| {
            e["run"]["phase"] = json!("two")
        }),
        ("$.execution.config.canary_phases", |e| {
            e["config"]["canary_phases"] = json!([])
        }),
        ("$.execution.startedEpoch", |e| {
            e["startedEpoch"] = json!(i64::MAX)
        }),
    ];
    for (field, tamper) in cases {
        let mut bad = exec.clone();
        tamper(&mut bad);
        for op in ["look", "finish", "conflict", "error"] {
            let mut e = json!({"op": op, "execution": bad.clone(), "succeeded": true});
            if op == "finish" {
                e["succeeded"] = json!(true);
            }
            let d = handler(ports(), &e, 60).await.expect_err("invalid state");
            assert_eq!(d.error_type, "InvalidState", "{op}: {}", d.error_message);
            assert!(
                d.error_message.contains(field),
                "{op}: {} does not name {field}",
                d.error_message
            );
        }
    }
    assert_eq!(s.alias(), alias_before, "a refused state changes nothing");
    assert!(s.published().is_empty(), "and notifies nobody");
}

/// A `Write` into a shared buffer, for capturing the handler's logs.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_approval_token_is_in_no_log_line_at_debug_and_no_notification() {
    let token = "AQCEAAAAKgSECRETTOKEN0123456789";
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(lambda_runtime::tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing_subscriber::util::SubscriberInitExt::set_default(subscriber);
    let s = sim();
    let ports = Ports {
        metrics: &s,
        router: &s,
        notifier: &s,
        hook: &NoHook,
    };
    let mut e = event("request-approval");
    e["taskToken"] = token.into();
    let out = handler(ports, &e, 600).await.expect("approval requested");
    lambda_runtime::tracing::debug!("request-approval handled: {}", out.summary);
    let text = String::from_utf8(logs.0.lock().expect("buffer").clone()).expect("utf-8");
    assert!(
        text.contains("request-approval handled"),
        "the capture works: {text}"
    );
    assert!(!text.contains(token), "token in the logs: {text}");
    let published = s.published();
    assert!(!published.is_empty(), "the approval request was announced");
    for n in &published {
        let all = serde_json::to_string(n).expect("json");
        assert!(!all.contains(token), "token in a notification: {all}");
    }
}
