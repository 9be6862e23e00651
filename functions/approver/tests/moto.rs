//! The approver function's handler against a real moto server that executes the state
//! machine: STS names the signer of each proof (moto answers `GetCallerIdentity` with the IAM
//! user that owns the access key), Step Functions holds the waiting approval. The requests are
//! made as the CLI makes them ([`canary_gate_aws::approver_request`]).

#[path = "../../../crates/aws/tests/support/mod.rs"]
mod support;

use aws_config::SdkConfig;
use canary_gate_aws::{
    LambdaAliasRouter, SnsNotifier, StepFunctionsExecutions, StsIdentityVerifier, approver_request,
};
use canary_gate_core::config::CanaryConfig;
use canary_gate_core::operator::approver::{Command, StackTarget};
use canary_gate_core::operator::pending_approval;
use canary_gate_core::ports::{Executions, HistoryKind, RunStatus};
use serde_json::{Value, json};
use support::Moto;

fn now() -> i64 {
    canary_gate_lambda::now()
}

struct Stack {
    moto: Moto,
    sdk: SdkConfig,
    machine: String,
    alice: SdkConfig,
    bob: SdkConfig,
}

async fn stack() -> Stack {
    let (moto, sdk, role) = Moto::with_state_machines().await;
    let machine = support::approval_machine(&aws_sdk_sfn::Client::new(&sdk), &role, "canary").await;
    let alice = support::sdk_as(&sdk, &moto.create_user_with_key("alice"));
    let bob = support::sdk_as(&sdk, &moto.create_user_with_key("bob"));
    Stack {
        moto,
        sdk,
        machine,
        alice,
        bob,
    }
}

impl Stack {
    fn executions(&self) -> StepFunctionsExecutions {
        StepFunctionsExecutions::new(aws_sdk_sfn::Client::new(&self.sdk), &self.machine)
    }

    /// One invocation of the approver, as the deployed function runs it (its own
    /// credentials are moto's default ones, not the caller's).
    async fn invoke(&self, event: Value) -> Result<Value, lambda_runtime::Diagnostic> {
        let verifier = StsIdentityVerifier::new(&self.sdk);
        let executions = self.executions();
        let router = LambdaAliasRouter::new(aws_sdk_lambda::Client::new(&self.sdk));
        let notifier = SnsNotifier::new(
            aws_sdk_sns::Client::new(&self.sdk),
            "arn:aws:sns:us-east-1:123456789012:canary-gate",
        );
        let ports = approver::Ports {
            verifier: &verifier,
            executions: &executions,
            router: &router,
            notifier: &notifier,
        };
        let stack = StackTarget {
            function: Some("orders-api".into()),
            alias: Some("live".into()),
        };
        approver::handler(ports, &stack, event, now())
            .await
            .map(|o| serde_json::to_value(o).expect("json"))
    }

    async fn request(&self, as_: &SdkConfig, command: &Command, claimed: Option<&str>) -> Value {
        serde_json::to_value(
            approver_request(as_, command, claimed)
                .await
                .expect("signed"),
        )
        .expect("json")
    }
}

fn config() -> Value {
    let mut c: Value = serde_json::to_value(
        CanaryConfig::from_json(include_str!("../../../examples/demo-config.json"))
            .expect("config"),
    )
    .expect("json");
    c["target"]["baseline_version"] = json!("1");
    c["target"]["canary_version"] = json!("2");
    c["approvals"] = json!({ "forbid_self_approval": true });
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approval_records_the_verified_identity_and_the_starter_may_not_give_it() {
    let s = stack().await;
    let ex = s.executions();

    // Alice starts the canary through the approver; the input records her verified ARN.
    let start = Command::Start { config: config() };
    let out = s
        .invoke(s.request(&s.alice, &start, Some("Alice A.")).await)
        .await
        .expect("started");
    let id = out["execution"].as_str().expect("execution").to_string();
    assert_eq!(
        out["verified_identity"],
        "arn:aws:iam::123456789012:user/alice"
    );
    let input = ex
        .describe(&id)
        .await
        .expect("describe")
        .input
        .expect("input");
    assert_eq!(
        input["started_by"]["verified_identity"],
        "arn:aws:iam::123456789012:user/alice"
    );
    assert_eq!(input["started_by"]["claimed_actor"], "Alice A.");

    let mut pending = None;
    for _ in 0..100 {
        let events = ex.history(&id).await.expect("history");
        if events.iter().any(|e| e.kind == HistoryKind::TaskScheduled) {
            pending = pending_approval(&events);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(pending.is_some(), "the execution waits for an approval");

    // Alice may not approve her own canary (the config asks for four eyes), whatever name she
    // claims; nothing is answered.
    let approve = Command::Approve {
        execution: id.clone(),
        comment: "ship it".into(),
    };
    let err = s
        .invoke(s.request(&s.alice, &approve, Some("Bob B.")).await)
        .await
        .expect_err("own canary");
    assert_eq!(err.error_type, "Refused");
    assert!(
        err.error_message.contains("user/alice started this canary"),
        "{}",
        err.error_message
    );

    // A proof of Bob's made for another command does not carry this one.
    let other = Command::Approve {
        execution: format!("{id}-other"),
        comment: "ship it".into(),
    };
    let mut forged = s.request(&s.bob, &other, None).await;
    forged["command"] = s.request(&s.bob, &approve, None).await["command"].clone();
    let err = s
        .invoke(forged)
        .await
        .expect_err("bound to another command");
    assert_eq!(err.error_type, "Unverified");
    assert_eq!(
        ex.describe(&id).await.expect("describe").status,
        RunStatus::Running
    );

    // Bob approves; the state machine gets his verified ARN, and his claimed name beside it.
    let out = s
        .invoke(s.request(&s.bob, &approve, Some("Bob B.")).await)
        .await
        .expect("approved");
    assert_eq!(out["command"], "approve");
    assert_eq!(
        out["verified_identity"],
        "arn:aws:iam::123456789012:user/bob"
    );
    let mut info = ex.describe(&id).await.expect("describe");
    for _ in 0..100 {
        if info.status.is_finished() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        info = ex.describe(&id).await.expect("describe");
    }
    assert_eq!(info.status, RunStatus::Succeeded);
    let approval = &info.output.expect("output")["approval"];
    assert_eq!(approval["approvedBy"], "arn:aws:iam::123456789012:user/bob");
    assert_eq!(approval["verified"], true);
    assert_eq!(approval["claimedActor"], "Bob B.");
    assert_eq!(approval["comment"], "ship it");
    drop(s.moto);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_start_for_another_function_or_a_malformed_event_changes_nothing() {
    let s = stack().await;
    let mut c = config();
    c["target"]["function_name"] = json!("payments-api");
    let err = s
        .invoke(
            s.request(&s.alice, &Command::Start { config: c }, None)
                .await,
        )
        .await
        .expect_err("another function");
    assert_eq!(err.error_type, "InvalidRequest");
    assert!(
        err.error_message
            .contains("command.config.target.function_name"),
        "{}",
        err.error_message
    );
    let err = s
        .invoke(json!({ "command": "{}" }))
        .await
        .expect_err("no proof");
    assert_eq!(err.error_type, "InvalidRequest");
    assert!(
        err.error_message.contains("missing field `proof`"),
        "{}",
        err.error_message
    );
    assert!(
        s.executions()
            .list(false, 10)
            .await
            .expect("list")
            .is_empty(),
        "nothing started"
    );
}
