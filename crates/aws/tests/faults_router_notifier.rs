//! The Lambda alias router and the SNS notifier under injected faults: the fault proxy
//! (`tests/faults/proxy.py`) between the SDK clients and a real moto server. Faults that
//! clear are retried and the write lands once; faults that persist surface as transient
//! errors with the alias unchanged; a write whose answer was lost is recognised as landed.

mod support;

use std::time::Duration;

use canary_gate_aws::{LambdaAliasRouter, SnsNotifier};
use canary_gate_core::config::{CanaryConfig, Target};
use canary_gate_core::notify::{Event, Notification};
use canary_gate_core::ports::{Claim, Notifier, PortError, TrafficRouter};
use serde_json::json;
use support::Moto;
use support::faults::FaultProxy;

/// Bounds every call: a liveness guard, not a speed benchmark.
async fn within_60s<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("returned within 60 s")
}

fn target() -> Target {
    CanaryConfig::from_json(
        r#"{"target": {"function_name": "orders-api", "alias": "live", "baseline_version": "1", "canary_version": "2"},
            "metrics": [{"name": "errors", "type": "counter", "source": {"lambda": {"metric": "Errors"}}}]}"#,
    )
    .expect("config")
    .target
    .expect("target")
}

/// Moto with `orders-api` (versions 1 and 2, alias `live` on 1), the proxy in front, a router
/// through the proxy and one straight to moto to check what landed.
async fn alias_bench() -> (Moto, FaultProxy, LambdaAliasRouter, LambdaAliasRouter) {
    let moto = Moto::start();
    let direct = aws_sdk_lambda::Client::new(&moto.sdk().await);
    moto.function_with_two_versions(&direct).await;
    let proxy = FaultProxy::start(&moto.endpoint);
    let router = LambdaAliasRouter::new(aws_sdk_lambda::Client::new(&proxy.sdk().await));
    (moto, proxy, router, LambdaAliasRouter::new(direct))
}

#[tokio::test]
async fn alias_writes_under_faults_that_clear_land_once() {
    let (_moto, proxy, router, direct) = alias_bench().await;
    let t = target();
    let mut weight = 0.0;
    for (rule, updates) in [
        (
            json!({"op": "UpdateAlias", "fault": "throttle", "calls": [1]}),
            2,
        ),
        (
            json!({"op": "UpdateAlias", "fault": "status", "status": 503, "code": "ServiceException", "calls": [1]}),
            2,
        ),
        (
            json!({"op": "UpdateAlias", "fault": "reset", "calls": [1]}),
            2,
        ),
        (
            json!({"op": "UpdateAlias", "fault": "hang", "seconds": 30, "calls": [1]}),
            2,
        ),
        (
            json!({"op": "GetAlias", "fault": "throttle", "calls": [1]}),
            1,
        ),
        (json!({"op": "GetAlias", "fault": "reset", "calls": [1]}), 1),
        // The write reaches Lambda and only its answer is lost. moto keeps the revision on
        // update, so the adapter's re-read finds it unchanged and sends the (absolute) write
        // again; against AWS the re-read finds a new revision routing as asked and stops
        // there (replay_faults.rs shows that path).
        (
            json!({"op": "UpdateAlias", "fault": "status", "status": 503, "after": true, "calls": [1]}),
            2,
        ),
        (
            json!({"op": "UpdateAlias", "fault": "reset", "after": true, "calls": [1]}),
            2,
        ),
    ] {
        weight += 5.0;
        let before = direct.read(&t).await.expect("read");
        proxy.set(json!([rule]));
        let got = within_60s(router.set_canary_weight(
            &t,
            weight,
            &before.revision_id,
            &Claim::Unchanged,
        ))
        .await
        .unwrap_or_else(|e| panic!("{rule}: {e}"));
        let now = direct.read(&t).await.expect("read");
        assert_eq!(now.weight_of("2"), weight, "{rule}");
        assert_eq!(
            got.revision_id, now.revision_id,
            "{rule}: the state returned is the alias's"
        );
        assert_eq!(proxy.calls("UpdateAlias"), updates, "{rule}");
    }
}

#[tokio::test]
async fn alias_writes_under_faults_that_persist_fail_transient_and_change_nothing() {
    let (_moto, proxy, router, direct) = alias_bench().await;
    let t = target();
    for (rule, throttled) in [
        (json!({"op": "UpdateAlias", "fault": "throttle"}), true),
        (
            json!({"op": "UpdateAlias", "fault": "status", "status": 500}),
            false,
        ),
        (json!({"op": "UpdateAlias", "fault": "reset"}), false),
        (json!({"op": "GetAlias", "fault": "throttle"}), true),
    ] {
        let before = direct.read(&t).await.expect("read");
        proxy.set(json!([rule]));
        let err =
            within_60s(router.set_canary_weight(&t, 25.0, &before.revision_id, &Claim::Unchanged))
                .await
                .expect_err("persistent fault");
        assert!(err.is_transient(), "{rule}: {err}");
        assert_eq!(
            matches!(err, PortError::Throttled(_)),
            throttled,
            "{rule}: {err}"
        );
        let now = direct.read(&t).await.expect("read");
        assert_eq!(now, before, "{rule}: the alias is unchanged");
        assert!(proxy.calls("UpdateAlias") <= 3, "{rule}: bounded attempts");
    }
}

/// A topic with a subscribed SQS queue, made straight in moto.
async fn topic_with_queue(moto: &Moto) -> (String, String, aws_sdk_sqs::Client) {
    let sdk = moto.sdk().await;
    let sns = aws_sdk_sns::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let topic = sns
        .create_topic()
        .name("canary-gate")
        .send()
        .await
        .expect("topic");
    let topic_arn = topic.topic_arn().expect("arn").to_string();
    let queue = sqs
        .create_queue()
        .queue_name("canary-gate")
        .send()
        .await
        .expect("queue");
    let queue_url = queue.queue_url().expect("url").to_string();
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint("arn:aws:sqs:us-east-1:123456789012:canary-gate")
        .send()
        .await
        .expect("subscribe");
    (topic_arn, queue_url, sqs)
}

async fn delivered(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> usize {
    delivered_ids(sqs, queue_url).await.len()
}

/// The `notification_id` of every message on the queue (which is emptied).
async fn delivered_ids(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Vec<String> {
    let msgs = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("receive");
    for m in msgs.messages() {
        sqs.delete_message()
            .queue_url(queue_url)
            .receipt_handle(m.receipt_handle().expect("handle"))
            .send()
            .await
            .expect("delete");
    }
    msgs.messages()
        .iter()
        .map(|m| {
            let envelope: serde_json::Value =
                serde_json::from_str(m.body().expect("body")).expect("SNS envelope");
            envelope["MessageAttributes"]["notification_id"]["Value"]
                .as_str()
                .expect("notification_id attribute")
                .to_string()
        })
        .collect()
}

fn rollback() -> Notification {
    Notification {
        event: Event::Rollback,
        subject: "canary-gate: orders-api v2 rolled back".into(),
        body: "VERDICT: ROLLBACK".into(),
        attributes: [("event".to_string(), "rollback".to_string())]
            .into_iter()
            .collect(),
        channels: vec![],
    }
}

#[tokio::test]
async fn notifications_under_faults_are_retried_then_reported_transient() {
    let moto = Moto::start();
    let (topic_arn, queue_url, sqs) = topic_with_queue(&moto).await;
    let proxy = FaultProxy::start(&moto.endpoint);
    let notifier = SnsNotifier::new(aws_sdk_sns::Client::new(&proxy.sdk().await), &topic_arn);
    for (rule, publishes) in [
        (
            json!({"op": "Publish", "fault": "throttle", "calls": [1, 2]}),
            3,
        ),
        (
            json!({"op": "Publish", "fault": "status", "status": 500, "code": "InternalError", "calls": [1]}),
            2,
        ),
        (json!({"op": "Publish", "fault": "reset", "calls": [1]}), 2),
        (
            json!({"op": "Publish", "fault": "hang", "seconds": 30, "calls": [1]}),
            2,
        ),
    ] {
        proxy.set(json!([rule]));
        within_60s(notifier.publish(&rollback()))
            .await
            .unwrap_or_else(|e| panic!("{rule}: {e}"));
        assert_eq!(
            delivered(&sqs, &queue_url).await,
            1,
            "{rule}: delivered once"
        );
        assert_eq!(proxy.calls("Publish"), publishes, "{rule}");
    }
    // A publish that reached SNS but whose answer never came is sent again after the attempt
    // timeout: SNS delivers twice, and both carry the one id subscribers de-duplicate on.
    proxy.set(
        json!([{"op": "Publish", "fault": "hang", "after": true, "seconds": 30, "calls": [1]}]),
    );
    within_60s(notifier.publish(&rollback()))
        .await
        .expect("the second attempt is answered");
    assert_eq!(proxy.calls("Publish"), 2);
    assert_eq!(
        delivered_ids(&sqs, &queue_url).await,
        vec![rollback().id(), rollback().id()],
        "two deliveries of one message"
    );
    for (rule, throttled) in [
        (json!({"op": "Publish", "fault": "throttle"}), true),
        (
            json!({"op": "Publish", "fault": "status", "status": 503}),
            false,
        ),
        (
            json!({"op": "Publish", "fault": "hang", "seconds": 60}),
            false,
        ),
    ] {
        proxy.set(json!([rule]));
        let err = within_60s(notifier.publish(&rollback()))
            .await
            .expect_err("persistent fault");
        assert!(err.is_transient(), "{rule}: {err}");
        assert_eq!(
            matches!(err, PortError::Throttled(_)),
            throttled,
            "{rule}: {err}"
        );
        assert!(
            (1..=3).contains(&proxy.calls("Publish")),
            "{rule}: bounded attempts"
        );
        assert_eq!(delivered(&sqs, &queue_url).await, 0, "{rule}");
    }
}

/// Two starts of one canary at once (a CodeDeploy hook's execution and one started from the
/// CLI both got past the running-executions check): exactly one holds the alias, the other
/// is refused without writing; the winner's start, retried as after a crash, carries on.
#[tokio::test]
async fn two_starts_at_once_one_wins_and_a_retried_start_carries_on() {
    use canary_gate_core::step;
    let moto = Moto::start();
    let direct = aws_sdk_lambda::Client::new(&moto.sdk().await);
    moto.function_with_two_versions(&direct).await;
    // moto keeps one revision forever; the proxy keeps them as AWS does.
    let proxy = FaultProxy::with_alias_revisions(&moto.endpoint);
    let router = LambdaAliasRouter::new(aws_sdk_lambda::Client::new(&proxy.sdk().await));
    let c = CanaryConfig::from_json(include_str!("../../../examples/demo-config.json"))
        .expect("demo config");
    let mut c = c;
    let t = c.target.as_mut().expect("target");
    (t.baseline_version, t.canary_version) = ("1".into(), "2".into());
    let t = t.clone();
    let (hook_run, cli_run) = (
        "arn:aws:states:us-east-1:123456789012:execution:canary-gate:codedeploy-d-1",
        "arn:aws:states:us-east-1:123456789012:execution:canary-gate:orders-api-live-1",
    );
    let t0 = now();
    let (a, b) = tokio::join!(
        step::start_for(Some(hook_run.into()), c.clone(), t0, None, &router),
        step::start_for(Some(cli_run.into()), c.clone(), t0, None, &router),
    );
    let (winner, loser) = match (&a, &b) {
        (Ok(_), Err(e)) => (hook_run, e),
        (Err(e), Ok(_)) => (cli_run, e),
        // Which one wins is up to the interleaving; only one may.
        _ => panic!("exactly one start must win: {a:?} / {b:?}"),
    };
    assert!(
        matches!(loser.error_type(), "CanaryInProgress" | "AliasConflict"),
        "{loser}"
    );
    let alias = router.read(&t).await.expect("read");
    assert_eq!(alias.weight_of("2"), 5.0);
    let claim = alias.claim.clone().expect("the winner's hold");
    assert!(claim.is_by(winner), "{claim:?}");
    let raw = direct
        .get_alias()
        .function_name("orders-api")
        .name("live")
        .send()
        .await
        .expect("get");
    assert!(
        raw.description()
            .unwrap_or_default()
            .starts_with("canary-gate holds until "),
        "{:?}",
        raw.description()
    );
    // The winner's function crashed after UpdateAlias; Step Functions retries its start.
    let again = step::start_for(Some(winner.into()), c.clone(), t0 + 10, None, &router)
        .await
        .expect("the retry carries on");
    assert_eq!(again.alias_revision, alias.revision_id);
    assert_eq!(
        router.read(&t).await.expect("read"),
        alias,
        "nothing written"
    );
    // A third start, later, is refused too.
    let err = step::start_for(Some("arn:x:3".into()), c, t0 + 20, None, &router)
        .await
        .expect_err("held");
    assert_eq!(err.error_type(), "CanaryInProgress", "{err}");
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}
