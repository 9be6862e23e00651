//! The CodeDeploy hooks and the post-promotion soak over the real adapters: CodeDeploy's
//! `GetDeployment` and `PutLifecycleEventHookExecutionStatus` replayed with responses shaped
//! like AWS's documented JSON (moto answers the status call with HTTP 500), Step Functions,
//! the Lambda alias, CloudWatch and SNS → SQS against a real moto server.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, Runtime};
use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
use aws_smithy_types::body::SdkBody;
use canary_gate_aws::{
    CloudWatchMetrics, CodeDeployHook, LambdaAliasRouter, SnsNotifier, StepFunctionsExecutions,
};
use canary_gate_core::config::CanaryConfig;
use canary_gate_core::hooks::{self, HookKind, HookPorts, HookSettings};
use canary_gate_core::ports::{
    Claim, Deployments, Executions, PortError, RunStatus, TrafficRouter,
};
use canary_gate_core::soak::{self, SoakPorts, SoakStatus};
use serde_json::{Value, json};
use support::Moto;

const APPSPEC: &str = r#"{"version":0.0,"Resources":[{"OrdersApi":{"Type":"AWS::Lambda::Function","Properties":{"Name":"orders-api","Alias":"live","CurrentVersion":"1","TargetVersion":"2"}}}],"Hooks":[{"BeforeAllowTraffic":"CodeDeployHook_canary-gate-before"},{"AfterAllowTraffic":"CodeDeployHook_canary-gate-after"}]}"#;
const CREATED: i64 = 1_795_000_000;

fn event(status: u16, headers: &[(&str, &str)], body: &str) -> ReplayEvent {
    let req = http::Request::builder()
        .uri("https://example.invalid/")
        .body(SdkBody::empty())
        .expect("request");
    let mut resp = http::Response::builder().status(status);
    for (k, v) in headers {
        resp = resp.header(*k, *v);
    }
    ReplayEvent::new(
        req,
        resp.body(SdkBody::from(body.to_string()))
            .expect("response"),
    )
}

const JSON: (&str, &str) = ("content-type", "application/x-amz-json-1.1");

/// `GetDeployment` as AWS documents it, for a deployment SAM's `DeploymentPreference` made.
fn get_deployment_body() -> String {
    json!({
        "deploymentInfo": {
            "applicationName": "orders-ServerlessDeploymentApplication-1A2B3C",
            "deploymentGroupName": "orders-OrdersApiDeploymentGroup-4D5E6F",
            "deploymentConfigName": "CodeDeployDefault.LambdaAllAtOnce",
            "deploymentId": "d-EXAMPLE11",
            "revision": {
                "revisionType": "AppSpecContent",
                "appSpecContent": {
                    "content": APPSPEC,
                    "sha256": "6e1e5b1f0b1ad6e7a4b8a1b7bd0c3d9f8f6a8c2e0b5e0a5c9f3d2b1a0e9d8c7b"
                }
            },
            "status": "InProgress",
            "createTime": CREATED,
            "creator": "user",
            "ignoreApplicationStopFailures": false,
            "updateOutdatedInstancesOnly": false,
            "deploymentStyle": {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
            "computePlatform": "Lambda"
        }
    })
    .to_string()
}

fn codedeploy(events: Vec<ReplayEvent>) -> (CodeDeployHook, StaticReplayClient) {
    let http = StaticReplayClient::new(events);
    let conf = aws_sdk_codedeploy::Config::builder()
        .behavior_version_latest()
        .region(aws_sdk_codedeploy::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_codedeploy::config::Credentials::for_tests())
        .http_client(http.clone())
        .build();
    (
        CodeDeployHook::new(aws_sdk_codedeploy::Client::from_conf(conf)),
        http,
    )
}

fn bodies(http: &StaticReplayClient) -> Vec<(String, Value)> {
    http.actual_requests()
        .map(|r| {
            let target = r
                .headers()
                .get("x-amz-target")
                .unwrap_or_default()
                .to_string();
            let body = std::str::from_utf8(r.body().bytes().expect("body")).expect("utf-8");
            (target, serde_json::from_str(body).expect("json body"))
        })
        .collect()
}

#[tokio::test]
async fn get_deployment_yields_status_creation_time_and_appspec() {
    let (cd, http) = codedeploy(vec![event(200, &[JSON], &get_deployment_body())]);
    let d = cd.deployment("d-EXAMPLE11").await.expect("deployment");
    assert_eq!(d.status.as_deref(), Some("InProgress"));
    assert_eq!(d.create_epoch, Some(CREATED));
    assert_eq!(d.app_spec.as_deref(), Some(APPSPEC));
    let sent = bodies(&http);
    assert_eq!(sent[0].0, "CodeDeploy_20141006.GetDeployment");
    assert_eq!(sent[0].1["deploymentId"], "d-EXAMPLE11");
}

#[tokio::test]
async fn an_unknown_deployment_is_not_found() {
    let (cd, _) = codedeploy(vec![event(
        400,
        &[JSON],
        r#"{"__type":"DeploymentDoesNotExistException","message":"The deployment d-MISSING could not be found."}"#,
    )]);
    let err = cd.deployment("d-MISSING").await.expect_err("missing");
    assert!(matches!(err, PortError::NotFound(_)), "{err:?}");
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
        / 60
        * 60
}

/// moto with state machines executed, `orders-api` versions 1 and 2 and alias `live` → 1.
async fn moto() -> (Moto, aws_config::SdkConfig, String) {
    let moto = Moto::start();
    moto.post_json(
        "/moto-api/config",
        r#"{"stepfunctions": {"execute_state_machine": true}, "lambda": {"use_docker": false}}"#,
    );
    let sdk = moto.sdk().await;
    let role = moto.create_role("canary-gate");
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let zip = include_bytes!("fixtures/function.zip").to_vec();
    lambda
        .create_function()
        .function_name("orders-api")
        .runtime(Runtime::Providedal2023)
        .role(&role)
        .handler("bootstrap")
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(zip.clone()))
                .build(),
        )
        .send()
        .await
        .expect("function");
    lambda
        .publish_version()
        .function_name("orders-api")
        .send()
        .await
        .expect("version 1");
    let mut changed = zip;
    changed.push(b' ');
    lambda
        .update_function_code()
        .function_name("orders-api")
        .zip_file(Blob::new(changed))
        .send()
        .await
        .expect("update");
    lambda
        .publish_version()
        .function_name("orders-api")
        .send()
        .await
        .expect("version 2");
    lambda
        .create_alias()
        .function_name("orders-api")
        .name("live")
        .function_version("1")
        .send()
        .await
        .expect("alias");
    (moto, sdk, role)
}

/// A state machine that ends in success with its input as output, like `Promoted`.
async fn pass_machine(
    sdk: &aws_config::SdkConfig,
    role: &str,
    name: &str,
) -> StepFunctionsExecutions {
    let sfn = aws_sdk_sfn::Client::new(sdk);
    let arn = sfn
        .create_state_machine()
        .name(name)
        .definition(
            json!({"StartAt": "Promoted", "States": {"Promoted": {"Type": "Pass", "End": true}}})
                .to_string(),
        )
        .role_arn(role)
        .send()
        .await
        .expect("state machine")
        .state_machine_arn()
        .to_string();
    StepFunctionsExecutions::new(sfn, arn)
}

async fn until_finished(ex: &StepFunctionsExecutions, id: &str) -> RunStatus {
    for _ in 0..100 {
        let info = ex.describe(id).await.expect("describe");
        if info.status.is_finished() {
            return info.status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("execution {id} did not finish in 10 s");
}

fn hook_config() -> String {
    let mut v: Value =
        serde_json::from_str(include_str!("../../../examples/demo-config.json")).expect("json");
    v.as_object_mut().expect("object").remove("target");
    v.to_string()
}

#[tokio::test]
async fn before_and_after_allow_traffic_over_the_real_clients() {
    let (_moto, sdk, role) = moto().await;
    let ex = pass_machine(&sdk, &role, "canary-hooks").await;
    let router = LambdaAliasRouter::new(aws_sdk_lambda::Client::new(&sdk));
    let deployment = event(200, &[JSON], &get_deployment_body());
    let (cd, http) = codedeploy(vec![deployment]);
    let e = json!({"DeploymentId": "d-EXAMPLE11", "LifecycleEventHookExecutionId": "h-before"});
    let settings = |kind| HookSettings {
        kind,
        config: Some(hook_config()),
    };
    let ports = |cd| HookPorts {
        deployments: cd,
        executions: &ex,
        router: &router,
        hook: cd,
    };
    let out = hooks::handle(
        &e,
        &settings(HookKind::BeforeAllowTraffic),
        CREATED + 5,
        ports(&cd),
    )
    .await
    .expect("started");
    assert_eq!(out.reported, None);
    let id = out.execution.expect("execution");
    assert!(
        id.ends_with(&format!(":orders-api-live-v2-{CREATED}")),
        "{id}"
    );
    let info = ex.describe(&id).await.expect("describe");
    let input = info.input.expect("input");
    assert_eq!(input["hook"]["deploymentId"], "d-EXAMPLE11");
    assert_eq!(input["config"]["target"]["canary_version"], "2");
    assert_eq!(
        bodies(&http).len(),
        1,
        "only GetDeployment: the state machine reports"
    );

    // The pass machine "promotes"; the alias is moved as the canary would have.
    assert_eq!(until_finished(&ex, &id).await, RunStatus::Succeeded);
    let c = CanaryConfig::from_json(&input["config"].to_string()).expect("config");
    let t = c.target.expect("target");
    let alias = router.read(&t).await.expect("alias");
    router
        .promote(&t, &alias.revision_id, &Claim::Unchanged)
        .await
        .expect("promote");

    let (cd, http) = codedeploy(vec![
        event(200, &[JSON], &get_deployment_body()),
        event(
            200,
            &[JSON],
            r#"{"lifecycleEventHookExecutionId":"h-after"}"#,
        ),
    ]);
    let e = json!({"DeploymentId": "d-EXAMPLE11", "LifecycleEventHookExecutionId": "h-after"});
    let out = hooks::handle(
        &e,
        &settings(HookKind::AfterAllowTraffic),
        CREATED + 900,
        ports(&cd),
    )
    .await
    .expect("checked");
    assert_eq!(out.reported, Some(true), "{}", out.summary);
    let sent = bodies(&http);
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[1].0,
        "CodeDeploy_20141006.PutLifecycleEventHookExecutionStatus"
    );
    assert_eq!(
        sent[1].1,
        json!({"deploymentId": "d-EXAMPLE11", "lifecycleEventHookExecutionId": "h-after", "status": "Succeeded"})
    );
}

#[tokio::test]
async fn a_malformed_config_reports_failed_over_the_real_client() {
    let (_moto, sdk, role) = moto().await;
    let ex = pass_machine(&sdk, &role, "canary-bad").await;
    let router = LambdaAliasRouter::new(aws_sdk_lambda::Client::new(&sdk));
    let (cd, http) = codedeploy(vec![
        event(200, &[JSON], &get_deployment_body()),
        event(200, &[JSON], r#"{"lifecycleEventHookExecutionId":"h-1"}"#),
    ]);
    let settings = HookSettings {
        kind: HookKind::BeforeAllowTraffic,
        config: Some(r#"{"metrics": [{"name": "latency", "type": "histgram"}]}"#.into()),
    };
    let e = json!({"DeploymentId": "d-EXAMPLE11", "LifecycleEventHookExecutionId": "h-1"});
    let f = hooks::handle(
        &e,
        &settings,
        CREATED,
        HookPorts {
            deployments: &cd,
            executions: &ex,
            router: &router,
            hook: &cd,
        },
    )
    .await
    .expect_err("invalid");
    assert_eq!(f.error_type(), "InvalidConfig");
    assert!(f.to_string().contains("metrics[0].type"), "{f}");
    assert!(f.reported);
    assert_eq!(bodies(&http)[1].1["status"], "Failed");
    assert!(
        ex.list(false, 10).await.expect("list").is_empty(),
        "nothing started"
    );
}

fn dims(pairs: &[(&str, &str)]) -> Vec<Dimension> {
    pairs
        .iter()
        .map(|(k, v)| Dimension::builder().name(*k).value(*v).build())
        .collect()
}

#[tokio::test]
async fn a_regression_after_promotion_is_rolled_back_and_announced() {
    let (moto, sdk, role) = moto().await;
    let ex = pass_machine(&sdk, &role, "canary-soak").await;
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let router = LambdaAliasRouter::new(lambda.clone());
    let t_now = now();
    let promoted = t_now - 900;
    let started = promoted - 900;

    // Errors per minute: the baseline (v1) before the promotion, the promoted v2 after.
    let cw = aws_sdk_cloudwatch::Client::new(&sdk);
    for minute in 0..30 {
        let at = started + minute * 60;
        let (version, errors) = if at < promoted {
            ("1", 2.0)
        } else {
            ("2", 60.0)
        };
        let d = dims(&[
            ("FunctionName", "orders-api"),
            ("Resource", "orders-api:live"),
            ("ExecutedVersion", version),
        ]);
        for (name, value) in [("Errors", errors), ("Invocations", 1000.0)] {
            cw.put_metric_data()
                .namespace("AWS/Lambda")
                .metric_data(
                    MetricDatum::builder()
                        .metric_name(name)
                        .set_dimensions(Some(d.clone()))
                        .timestamp(DateTime::from_secs(at))
                        .value(value)
                        .build(),
                )
                .send()
                .await
                .expect("put metric data");
        }
    }

    // The canary's final state, as the `Promoted` state passes it on.
    let config = json!({
        "target": {"function_name": "orders-api", "alias": "live", "baseline_version": "1", "canary_version": "2"},
        "post_promotion_soak_seconds": 1800,
        "metrics": [{"name": "errors", "type": "counter", "threshold_percent_increase": 20,
                     "critical": true, "source": {"lambda": {"metric": "Errors"}}}],
        "notifications": {"on_rollback": ["ops"]}
    });
    let config = CanaryConfig::from_json(&config.to_string()).expect("config");
    let exec = json!({
        "config": config,
        "run": {"phase": 3, "started_at": 0, "phase_started_at": 600, "hold_started_at": null,
                "pending_advance_at": null, "looks": 15, "outcome": "promoted"},
        "startedEpoch": started,
        "aliasRevision": "r",
        "history": [],
        "lastLookEpoch": promoted
    });
    let id = ex
        .start(
            "orders-api-live-v2-1",
            &json!({"execution": exec, "action": "promote"}),
        )
        .await
        .expect("start");
    assert_eq!(until_finished(&ex, &id).await, RunStatus::Succeeded);
    let t = config.target.clone().expect("target");
    let alias = router.read(&t).await.expect("alias");
    router
        .promote(&t, &alias.revision_id, &Claim::Unchanged)
        .await
        .expect("promoted");

    let sns = aws_sdk_sns::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let topic = sns
        .create_topic()
        .name("canary-gate")
        .send()
        .await
        .expect("topic");
    let topic = topic.topic_arn().expect("arn").to_string();
    let queue = sqs
        .create_queue()
        .queue_name("ops")
        .send()
        .await
        .expect("queue");
    let queue = queue.queue_url().expect("url").to_string();
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint("arn:aws:sqs:us-east-1:123456789012:ops")
        .send()
        .await
        .expect("subscribe");
    let mut metrics = CloudWatchMetrics::new(cw);
    metrics.ingestion_delay_seconds = 0;
    let notifier = SnsNotifier::new(sns, &topic);
    let ports = || SoakPorts {
        executions: &ex,
        metrics: &metrics,
        router: &router,
        notifier: &notifier,
    };
    let r = soak::check(t_now, 300, ports()).await.expect("check");
    assert_eq!(r.status, SoakStatus::RolledBack, "{}", r.summary);
    assert!(r.summary.contains("errors"), "{}", r.summary);
    let alias = router.read(&t).await.expect("alias");
    assert_eq!(
        (alias.version.as_str(), alias.additional.clone()),
        ("1", None)
    );
    let msgs = sqs
        .receive_message()
        .queue_url(&queue)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("receive");
    let envelopes: Vec<Value> = msgs
        .messages()
        .iter()
        .map(|m| serde_json::from_str(m.body().expect("body")).expect("envelope"))
        .collect();
    assert_eq!(envelopes.len(), 1);
    assert!(
        envelopes[0]["Subject"]
            .as_str()
            .is_some_and(|s| s.contains("rolled back to v1")),
        "{}",
        envelopes[0]
    );
    assert_eq!(
        envelopes[0]["MessageAttributes"]["stage"]["Value"],
        "post_promotion_soak"
    );

    // Running again does no harm: the alias moved on, nothing is written or sent.
    let again = soak::check(t_now + 60, 300, ports()).await.expect("check");
    assert_eq!(again.status, SoakStatus::Idle, "{}", again.summary);
    assert_eq!(router.read(&t).await.expect("alias").version, "1");
    drop(moto);
}
