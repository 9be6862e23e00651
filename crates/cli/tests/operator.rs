//! The operator commands (`start`, `status`, `history`, `approve`, `reject`, `abort`,
//! `promote`) run as a user runs them — the `canary-gate` binary with the standard AWS
//! environment — against a real moto server on 127.0.0.1 that executes the state machines.
//!
//! moto keeps one execution per state machine reliably, so each scenario has its own machine.
//! The canary state an execution carries is made by the engine itself (a start and a look on
//! the simulated fleet) and placed in the execution by a `Pass` state, as the `phase`
//! function's output would be.

#[path = "../../aws/tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aws_sdk_lambda::types::AliasRoutingConfiguration;
use canary_gate_core::config::CanaryConfig;
use canary_gate_core::sim::{Fleet, MetricNames, Scenario, SimulatedLambda, run_ready};
use canary_gate_core::step::{look, start};
use serde_json::{Value, json};
use support::Moto;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the binary against moto.
fn cli(moto: &Moto, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_canary-gate"))
        .args(args)
        .current_dir(root())
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE")
        .env_remove("CANARY_GATE_STATE_MACHINE_ARN")
        .env_remove("CANARY_GATE_TOPIC_ARN")
        .env_remove("CANARY_GATE_CHANNEL_TOPICS")
        .output()
        .expect("binary runs")
}

fn ok(moto: &Moto, args: &[&str]) -> String {
    let out = cli(moto, args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn fails(moto: &Moto, args: &[&str]) -> String {
    let out = cli(moto, args);
    assert!(!out.status.success(), "{args:?} should fail");
    String::from_utf8(out.stderr).expect("utf-8")
}

/// moto with state machines executed, the target function `orders-api` (versions 1 and 2,
/// alias `live`) and the role state machines run as.
async fn moto() -> (Moto, aws_config::SdkConfig, String) {
    let moto = Moto::start();
    moto.post_json(
        "/moto-api/config",
        r#"{"stepfunctions": {"execute_state_machine": true}, "lambda": {"use_docker": false}}"#,
    );
    let sdk = moto.sdk().await;
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    moto.function_with_two_versions(&lambda).await;
    let role = moto.create_role("canary-gate-states");
    (moto, sdk, role)
}

async fn machine(sdk: &aws_config::SdkConfig, role: &str, name: &str, definition: Value) -> String {
    aws_sdk_sfn::Client::new(sdk)
        .create_state_machine()
        .name(name)
        .definition(definition.to_string())
        .role_arn(role)
        .send()
        .await
        .expect("state machine")
        .state_machine_arn()
        .to_string()
}

fn config() -> CanaryConfig {
    let mut c = CanaryConfig::from_json(include_str!("../../../examples/demo-config.json"))
        .expect("config");
    let t = c.target.as_mut().expect("target");
    t.baseline_version = "1".into();
    t.canary_version = "2".into();
    c
}

/// The state after a start and one look on the simulated fleet, as the `phase` function
/// returns it to the `Analyse` state.
fn analysed(scenario: Scenario, auto_rollback: bool) -> Value {
    let mut c = config();
    c.auto_rollback.enabled = auto_rollback;
    let names = MetricNames {
        latency: "latency".into(),
        errors: "errors".into(),
    };
    let sim = SimulatedLambda::new(
        Fleet::new(scenario, names, 5),
        c.target.as_ref().expect("target"),
        1_000,
        60,
    );
    let exec = run_ready(start(c, 1_000, None, &sim))
        .expect("ready")
        .expect("start");
    sim.run_until(1_060);
    let out = run_ready(look(exec, 1_060, &sim, &sim, &sim))
        .expect("ready")
        .expect("look");
    let summary = out.execution.history.last().expect("look").reason.clone();
    json!({
        "execution": out.execution,
        "waitSeconds": 60,
        "action": out.action,
        "awaitingApproval": false,
        "summary": summary,
    })
}

/// A canary in its soak: the `Analyse` output in place, then a long wait.
fn soaking(state: Value) -> Value {
    json!({
        "StartAt": "Analyse",
        "States": {
            "Analyse": {"Type": "Pass", "Result": state, "Next": "Soak"},
            "Soak": {"Type": "Wait", "Seconds": 600, "End": true}
        }
    })
}

/// Splits the alias 95/5 between versions 1 and 2, as a canary at phase 1 leaves it.
async fn split(sdk: &aws_config::SdkConfig) {
    aws_sdk_lambda::Client::new(sdk)
        .update_alias()
        .function_name("orders-api")
        .name("live")
        .function_version("1")
        .routing_config(
            AliasRoutingConfiguration::builder()
                .additional_version_weights("2", 0.05)
                .build(),
        )
        .send()
        .await
        .expect("split");
}

async fn alias(sdk: &aws_config::SdkConfig) -> (String, Option<f64>) {
    let a = aws_sdk_lambda::Client::new(sdk)
        .get_alias()
        .function_name("orders-api")
        .name("live")
        .send()
        .await
        .expect("alias");
    let weight = a
        .routing_config()
        .and_then(|r| r.additional_version_weights())
        .and_then(|w| w.get("2").copied());
    (a.function_version().unwrap_or_default().to_string(), weight)
}

/// A topic with a subscribed queue.
async fn topic(sdk: &aws_config::SdkConfig) -> (String, String) {
    let sns = aws_sdk_sns::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let topic = sns
        .create_topic()
        .name("canary-gate")
        .send()
        .await
        .expect("topic")
        .topic_arn()
        .expect("arn")
        .to_string();
    let url = sqs
        .create_queue()
        .queue_name("ops")
        .send()
        .await
        .expect("queue")
        .queue_url()
        .expect("url")
        .to_string();
    let arn = "arn:aws:sqs:us-east-1:123456789012:ops";
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(arn)
        .send()
        .await
        .expect("subscribe");
    (topic, url)
}

async fn messages(sdk: &aws_config::SdkConfig, url: &str) -> Vec<Value> {
    aws_sdk_sqs::Client::new(sdk)
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("receive")
        .messages()
        .iter()
        .map(|m| serde_json::from_str(m.body().expect("body")).expect("envelope"))
        .collect()
}

/// Polls `status` until it prints `what`.
fn wait_status(moto: &Moto, args: &[&str], what: &str) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        last = ok(moto, args);
        if last.contains(what) {
            return last;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("status never showed {what:?}; last:\n{last}");
}

#[tokio::test(flavor = "multi_thread")]
async fn start_status_approve_and_history() {
    let (moto, sdk, role) = moto().await;
    let definition = json!({
        "StartAt": "AwaitApproval",
        "States": {
            "AwaitApproval": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {
                    "FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:orders-api",
                    "Payload": {"op": "request-approval", "action": "promote", "taskToken.$": "$$.Task.Token"}
                },
                "ResultPath": "$.approval",
                "Next": "Done"
            },
            "Done": {"Type": "Succeed"}
        }
    });
    let sm = machine(&sdk, &role, "canary", definition).await;
    let start_args = [
        "start",
        "--state-machine",
        &sm,
        "--config",
        "examples/demo-config.json",
        "--baseline-version",
        "1",
        "--canary-version",
        "2",
    ];
    let started = ok(&moto, &start_args);
    assert!(
        started.contains("started canary of orders-api:live v1 → v2"),
        "{started}"
    );
    let exec = started
        .lines()
        .find_map(|l| l.strip_prefix("execution "))
        .expect("execution line")
        .to_string();
    assert!(
        exec.starts_with(
            "arn:aws:states:us-east-1:123456789012:execution:canary:orders-api-live-v2-"
        )
    );

    let err = fails(&moto, &start_args);
    assert!(
        err.contains("a canary is already running on orders-api:live"),
        "{err}"
    );

    let bad = fails(
        &moto,
        &[
            "start",
            "--state-machine",
            &sm,
            "--config",
            "examples/demo-config.json",
            "--canary-version",
            "41",
        ],
    );
    assert!(bad.contains("target.canary_version"), "{bad}");

    // Without an execution named: the most recent one of the machine.
    let status = wait_status(&moto, &["status", "--state-machine", &sm], "waiting");
    assert!(status.contains("RUNNING"), "{status}");
    assert!(
        status.contains("orders-api:live  baseline v1 → canary v2"),
        "{status}"
    );
    assert!(status.contains("for approval to promote"), "{status}");
    let json_status: Value =
        serde_json::from_str(&ok(&moto, &["status", &exec, "--json"])).expect("json");
    assert_eq!(json_status["status"], "RUNNING");
    assert_eq!(json_status["pending_approval"]["action"], "promote");

    let approved = ok(
        &moto,
        &[
            "approve",
            &exec,
            "--comment",
            "dashboards look fine",
            "--actor",
            "alice",
        ],
    );
    assert!(
        approved.contains("approved the pending promote"),
        "{approved}"
    );
    assert!(approved.contains("as alice"), "{approved}");
    wait_status(&moto, &["status", &exec], "SUCCEEDED");
    let err = fails(&moto, &["approve", &exec]);
    assert!(err.contains("has already ended"), "{err}");

    let history = ok(&moto, &["history", &exec]);
    assert_eq!(history, "no decisions yet\n");
    let name = exec.rsplit(':').next().expect("name");
    let err = fails(&moto, &["status", name]);
    assert!(err.contains("pass --state-machine"), "{err}");
    let by_name = ok(&moto, &["status", name, "--state-machine", &sm]);
    assert!(by_name.contains("SUCCEEDED"), "{by_name}");
}

#[tokio::test(flavor = "multi_thread")]
async fn promote_is_refused_on_a_failing_gate_then_forced_audited_and_notified() {
    let (moto, sdk, role) = moto().await;
    split(&sdk).await;
    let (topic, queue) = topic(&sdk).await;
    let state = analysed(Scenario::healthy(50.0).with_regression(2.5, 1.0), false);
    let sm = machine(&sdk, &role, "canary", soaking(state)).await;
    let exec = aws_sdk_sfn::Client::new(&sdk)
        .start_execution()
        .state_machine_arn(&sm)
        .name("regressed")
        .input("{}")
        .send()
        .await
        .expect("start")
        .execution_arn()
        .to_string();
    let history = {
        let mut h = String::new();
        for _ in 0..100 {
            h = ok(&moto, &["history", &exec]);
            if h.contains("Analyse") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        h
    };
    // With automatic rollback off, the failing gate holds the canary for an operator.
    assert!(
        history.contains("Analyse") && history.contains("hold") && history.contains("5%"),
        "{history}"
    );

    let err = fails(&moto, &["promote", &exec, "--topic-arn", &topic]);
    assert!(err.contains("critical metric(s) latency fail"), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert_eq!(
        alias(&sdk).await,
        ("1".to_string(), Some(0.05)),
        "refusal changes nothing"
    );
    assert!(messages(&sdk, &queue).await.is_empty());

    let err = fails(&moto, &["promote", &exec, "--force"]);
    assert!(err.contains("--topic-arn is required"), "{err}");

    let out = cli(
        &moto,
        &[
            "promote",
            &exec,
            "--force",
            "--reason",
            "hotfix verified",
            "--topic-arn",
            &topic,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FORCED past failing critical gates: latency"),
        "{stdout}"
    );
    let audit: Value = serde_json::from_str(
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .find(|l| l.contains("\"audit\""))
            .expect("audit line"),
    )
    .expect("audit JSON");
    assert_eq!(audit["command"], "promote");
    assert_eq!(audit["detail"], "forced");
    // The caller's identity as the emulator's STS reports it.
    let actor = audit["actor"].as_str().expect("actor").to_string();
    assert!(actor.starts_with("arn:aws:"), "{actor}");

    assert_eq!(
        alias(&sdk).await,
        ("2".to_string(), None),
        "promoted, routing cleared"
    );
    let sent = messages(&sdk, &queue).await;
    assert_eq!(sent.len(), 1);
    let m = &sent[0];
    assert!(
        m["Subject"]
            .as_str()
            .expect("subject")
            .contains("force-promoted by operator"),
        "{m}"
    );
    assert!(
        m["Message"]
            .as_str()
            .expect("body")
            .contains("hotfix verified"),
        "{m}"
    );
    assert_eq!(m["MessageAttributes"]["actor"]["Value"], actor.as_str());
    assert_eq!(m["MessageAttributes"]["override"]["Value"], "promote");
    assert_eq!(m["MessageAttributes"]["event"]["Value"], "promoted");
    assert_eq!(m["MessageAttributes"]["severity"]["Value"], "critical");
    wait_status(&moto, &["status", &exec], "ABORTED");
}

#[tokio::test(flavor = "multi_thread")]
async fn abort_rolls_back_now_and_notifies() {
    let (moto, sdk, role) = moto().await;
    split(&sdk).await;
    let (topic, queue) = topic(&sdk).await;
    let sm = machine(
        &sdk,
        &role,
        "canary",
        soaking(analysed(Scenario::healthy(50.0), true)),
    )
    .await;
    aws_sdk_sfn::Client::new(&sdk)
        .start_execution()
        .state_machine_arn(&sm)
        .name("healthy")
        .input("{}")
        .send()
        .await
        .expect("start");
    wait_status(
        &moto,
        &["status", "--state-machine", &sm],
        "phase      1 of 3",
    );
    // Free text with a control character is refused by flag, before anything is touched.
    for (flag, value) in [("--reason", "pager\u{1b}[2J"), ("--actor", "bob\rroot")] {
        let mut args = vec!["abort", "--state-machine", &sm, "--topic-arn", &topic];
        args.extend([flag, value]);
        let err = fails(&moto, &args);
        assert!(
            err.contains(flag) && err.contains("control character"),
            "{err}"
        );
    }
    assert_eq!(
        alias(&sdk).await,
        ("1".to_string(), Some(0.05)),
        "nothing changed"
    );
    assert!(messages(&sdk, &queue).await.is_empty(), "nothing sent");
    let out = ok(
        &moto,
        &[
            "abort",
            "--state-machine",
            &sm,
            "--reason",
            "pager",
            "--topic-arn",
            &topic,
            "--actor",
            "bob",
        ],
    );
    assert!(
        out.contains("rolled back to the baseline by bob (canary was at 5%)"),
        "{out}"
    );
    assert_eq!(alias(&sdk).await, ("1".to_string(), None));
    let sent = messages(&sdk, &queue).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["MessageAttributes"]["event"]["Value"], "rollback");
    assert_eq!(sent[0]["MessageAttributes"]["actor"]["Value"], "bob");
    assert!(
        sent[0]["Subject"]
            .as_str()
            .expect("subject")
            .contains("rolled back by operator bob"),
        "{}",
        sent[0]
    );
}
