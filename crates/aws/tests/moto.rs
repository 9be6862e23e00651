//! Adapter tests against a real moto server over HTTP: CloudWatch metrics for both versions
//! and both routing shapes, the Lambda alias router (with the phase step on top), and SNS
//! read back through subscribed SQS queues, one topic per notification channel.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use canary_gate_aws::{CloudWatchMetrics, LambdaAliasRouter, SnsNotifier};
use canary_gate_core::config::{CanaryConfig, Routing};
use canary_gate_core::notify::{Event, Notification};
use canary_gate_core::observe::Observation;
use canary_gate_core::ports::{Claim, MetricsSource, Notifier, TimeRange, TrafficRouter};
use canary_gate_core::stats::Counts;
use support::Moto;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
        / 60
        * 60
}

fn dims(pairs: &[(&str, &str)]) -> Vec<Dimension> {
    pairs
        .iter()
        .map(|(k, v)| Dimension::builder().name(*k).value(*v).build())
        .collect()
}

async fn put(
    cw: &aws_sdk_cloudwatch::Client,
    ns: &str,
    name: &str,
    d: &[(&str, &str)],
    at: i64,
    value: f64,
) {
    cw.put_metric_data()
        .namespace(ns)
        .metric_data(
            MetricDatum::builder()
                .metric_name(name)
                .set_dimensions(Some(dims(d)))
                .timestamp(DateTime::from_secs(at))
                .value(value)
                .build(),
        )
        .send()
        .await
        .expect("put metric data");
}

fn config(extra_metrics: &str, routing: &str) -> CanaryConfig {
    CanaryConfig::from_json(&format!(
        r#"{{"target": {{"function_name": "orders-api", "alias": "live", "baseline_version": "1", "canary_version": "2",
             "routing": "{routing}", "canary_alias": "canary"}},
            "metrics": [{{"name": "errors", "type": "counter", "critical": true, "source": {{"lambda": {{"metric": "Errors"}}}}}},
                        {{"name": "conversions", "type": "counter", "direction": "lower-is-worse",
                          "source": {{"ratio": {{"numerator": {{"namespace": "Shop", "metric_name": "Orders", "version_dimension": "Version"}},
                                                 "denominator": {{"namespace": "Shop", "metric_name": "Visits", "version_dimension": "Version"}}}}}}}},
                        {{"name": "idle", "type": "gauge", "source": {{"cloudwatch": {{"namespace": "Shop", "metric_name": "NeverWritten"}}}}}}
                        {extra_metrics}]}}"#
    ))
    .expect("config")
}

#[tokio::test]
async fn cloudwatch_metrics_for_both_versions_and_routings() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    let cw = aws_sdk_cloudwatch::Client::new(&sdk);
    let t0 = now() - 600;
    for minute in 0..5 {
        let at = t0 + minute * 60;
        for (version, errors, invocations) in [("1", 2.0, 1000.0), ("2", 5.0, 100.0)] {
            let d = [
                ("FunctionName", "orders-api"),
                ("Resource", "orders-api:live"),
                ("ExecutedVersion", version),
            ];
            put(&cw, "AWS/Lambda", "Errors", &d, at, errors).await;
            put(&cw, "AWS/Lambda", "Invocations", &d, at, invocations).await;
            put(&cw, "Shop", "Orders", &[("Version", version)], at, 30.0).await;
            put(&cw, "Shop", "Visits", &[("Version", version)], at, 600.0).await;
        }
        for (alias, errors) in [("live", 1.0), ("canary", 7.0)] {
            let d = [
                ("FunctionName", "orders-api"),
                ("Resource", &*format!("orders-api:{alias}")),
            ];
            put(&cw, "AWS/Lambda", "Errors", &d, at, errors).await;
            put(&cw, "AWS/Lambda", "Invocations", &d, at, 200.0).await;
        }
    }
    let mut adapter = CloudWatchMetrics::new(cw.clone());
    adapter.ingestion_delay_seconds = 0;
    let c = config("", "weighted-alias");
    let t = c.target.clone().expect("target");
    let got = adapter
        .fetch(
            &c,
            &t,
            TimeRange {
                start: t0,
                end: t0 + 300,
            },
        )
        .await
        .expect("fetch");
    assert_eq!(
        got.baseline["errors"],
        Observation::Counts(Counts {
            events: 10,
            total: 5000
        })
    );
    assert_eq!(
        got.canary["errors"],
        Observation::Counts(Counts {
            events: 25,
            total: 500
        })
    );
    assert_eq!(
        got.canary["conversions"],
        Observation::Counts(Counts {
            events: 150,
            total: 3000
        })
    );
    assert!(
        !got.canary.contains_key("idle") && !got.baseline.contains_key("idle"),
        "no datapoints is no data, never zero"
    );

    // Two aliases: the sides differ by Resource.
    let c2 = config("", "two-aliases");
    let mut t2 = c2.target.clone().expect("target");
    assert_eq!(t2.routing, Routing::TwoAliases);
    t2.canary_alias = Some("canary".into());
    let got = adapter
        .fetch(
            &c2,
            &t2,
            TimeRange {
                start: t0,
                end: t0 + 300,
            },
        )
        .await
        .expect("fetch");
    assert_eq!(
        got.baseline["errors"],
        Observation::Counts(Counts {
            events: 5,
            total: 1000
        })
    );
    assert_eq!(
        got.canary["errors"],
        Observation::Counts(Counts {
            events: 35,
            total: 1000
        })
    );

    // The most recent minutes are left out: with a 3-minute delay only the first two of the
    // five minutes remain.
    adapter.ingestion_delay_seconds = 180;
    let got = adapter
        .fetch(
            &c,
            &t,
            TimeRange {
                start: t0,
                end: t0 + 300,
            },
        )
        .await
        .expect("fetch");
    assert_eq!(
        got.baseline["errors"],
        Observation::Counts(Counts {
            events: 4,
            total: 2000
        })
    );
}

#[tokio::test]
async fn more_than_500_queries_are_batched() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    let cw = aws_sdk_cloudwatch::Client::new(&sdk);
    let t0 = now() - 300;
    // 260 gauge metrics x 2 sides = 520 queries: two GetMetricData requests.
    let extra: String = (0..260)
        .map(|i| format!(r#",{{"name": "g{i}", "type": "gauge", "source": {{"cloudwatch": {{"namespace": "Many", "metric_name": "M{i}", "version_dimension": "Version"}}}}}}"#))
        .collect();
    for i in [0, 255, 259] {
        for v in ["1", "2"] {
            put(
                &cw,
                "Many",
                &format!("M{i}"),
                &[("Version", v)],
                t0,
                f64::from(i) + if v == "2" { 0.5 } else { 0.0 },
            )
            .await;
        }
    }
    let c = config(&extra, "weighted-alias");
    let t = c.target.clone().expect("target");
    let mut adapter = CloudWatchMetrics::new(cw);
    adapter.ingestion_delay_seconds = 0;
    let got = adapter
        .fetch(
            &c,
            &t,
            TimeRange {
                start: t0 - 60,
                end: t0 + 60,
            },
        )
        .await
        .expect("fetch");
    assert_eq!(
        got.canary["g259"],
        Observation::Samples(vec![259.5]),
        "a metric from the second batch"
    );
    assert_eq!(got.baseline["g0"], Observation::Samples(vec![0.0]));
    let keys: Vec<&String> = got.canary.keys().collect();
    assert_eq!(keys, ["g0", "g255", "g259"], "only metrics with datapoints");
}

#[tokio::test]
async fn alias_router_sets_weights_idempotently_promotes_and_rolls_back() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    moto.function_with_two_versions(&lambda).await;
    let c = config("", "weighted-alias");
    let t = c.target.clone().expect("target");
    let router = LambdaAliasRouter::new(lambda.clone());
    let a = router.read(&t).await.expect("read");
    assert_eq!((a.version.as_str(), a.additional.clone()), ("1", None));
    let b = router
        .set_canary_weight(&t, 25.0, &a.revision_id, &Claim::Unchanged)
        .await
        .expect("set 25%");
    let again = router
        .set_canary_weight(&t, 25.0, &b.revision_id, &Claim::Unchanged)
        .await
        .expect("set 25% again");
    let read = router.read(&t).await.expect("read");
    assert_eq!(
        read.weight_of("2"),
        25.0,
        "setting twice leaves 25%, not 50%"
    );
    assert_eq!(read.weight_of("1"), 75.0);
    let raw = lambda
        .get_alias()
        .function_name("orders-api")
        .name("live")
        .send()
        .await
        .expect("get");
    let weights = raw
        .routing_config()
        .and_then(|r| r.additional_version_weights())
        .expect("weights");
    assert_eq!(weights.get("2"), Some(&0.25));
    let p = router
        .promote(&t, &again.revision_id, &Claim::Unchanged)
        .await
        .expect("promote");
    let read = router.read(&t).await.expect("read");
    assert_eq!(
        (read.version.as_str(), read.additional.clone()),
        ("2", None)
    );
    router
        .rollback(&t, &p.revision_id, &Claim::Unchanged)
        .await
        .expect("rollback");
    let read = router.read(&t).await.expect("read");
    assert_eq!((read.version.as_str(), read.weight_of("1")), ("1", 100.0));
}

#[tokio::test]
async fn phase_step_refuses_to_overwrite_a_foreign_alias_change() {
    use canary_gate_core::step;
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    moto.function_with_two_versions(&lambda).await;
    let c = config("", "weighted-alias");
    let t = c.target.clone().expect("target");
    let router = LambdaAliasRouter::new(lambda.clone());
    let exec = step::start(c, now(), None, &router).await.expect("start");
    assert_eq!(router.read(&t).await.expect("read").weight_of("2"), 5.0);
    // Someone else moves the canary to 50 % behind canary-gate's back.
    let mut w = std::collections::HashMap::new();
    w.insert("2".to_string(), 0.5);
    lambda
        .update_alias()
        .function_name("orders-api")
        .name("live")
        .function_version("1")
        .routing_config(
            aws_sdk_lambda::types::AliasRoutingConfiguration::builder()
                .set_additional_version_weights(Some(w))
                .build(),
        )
        .send()
        .await
        .expect("foreign update");
    let metrics = CloudWatchMetrics::new(aws_sdk_cloudwatch::Client::new(&sdk));
    let sns = SnsNotifier::new(
        aws_sdk_sns::Client::new(&sdk),
        "arn:aws:sns:us-east-1:123456789012:none",
    );
    let err = step::look(exec, now() + 60, &metrics, &router, &sns)
        .await
        .expect_err("conflict");
    assert_eq!(err.error_type(), "AliasConflict");
    assert_eq!(
        router.read(&t).await.expect("read").weight_of("2"),
        50.0,
        "the foreign change stands"
    );
}

/// A topic with a subscribed SQS queue; returns the topic ARN and the queue URL.
async fn topic_with_queue(
    sns: &aws_sdk_sns::Client,
    sqs: &aws_sdk_sqs::Client,
    name: &str,
) -> (String, String) {
    let topic_arn = sns
        .create_topic()
        .name(name)
        .send()
        .await
        .expect("topic")
        .topic_arn()
        .expect("arn")
        .to_string();
    let queue_url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("queue")
        .queue_url()
        .expect("url")
        .to_string();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("attrs");
    let queue_arn = attrs
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .expect("queue arn");
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn)
        .send()
        .await
        .expect("subscribe");
    (topic_arn, queue_url)
}

/// The SNS envelopes waiting in a queue.
async fn received(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Vec<serde_json::Value> {
    let msgs = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("receive");
    msgs.messages()
        .iter()
        .map(|m| serde_json::from_str(m.body().expect("body")).expect("SNS envelope"))
        .collect()
}

fn rollback_notification(channels: &[&str]) -> Notification {
    Notification {
        event: Event::Rollback,
        subject: "canary-gate: orders-api v42 rolled back at 25% — p95 +109%".into(),
        body: "VERDICT: ROLLBACK — critical regression".into(),
        attributes: [
            ("event", "rollback"),
            ("severity", "critical"),
            ("function", "orders-api"),
            ("alias", "live"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        channels: channels.iter().map(|c| c.to_string()).collect(),
    }
}

#[tokio::test]
async fn sns_message_reaches_a_subscribed_queue_with_subject_body_and_attributes() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    let sns = aws_sdk_sns::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (topic_arn, queue_url) = topic_with_queue(&sns, &sqs, "canary-gate").await;
    let n = rollback_notification(&["ops"]);
    SnsNotifier::new(sns, &topic_arn)
        .publish(&n)
        .await
        .expect("publish");
    let envelopes = received(&sqs, &queue_url).await;
    assert_eq!(envelopes.len(), 1);
    let envelope = &envelopes[0];
    // SNS takes ASCII subjects: the dash is spelled as one.
    assert_eq!(
        envelope["Subject"],
        "canary-gate: orders-api v42 rolled back at 25% - p95 +109%"
    );
    assert_eq!(envelope["Message"], n.body);
    for (k, v) in &n.attributes {
        assert_eq!(
            envelope["MessageAttributes"][k]["Value"], *v,
            "attribute {k}"
        );
        assert_eq!(envelope["MessageAttributes"][k]["Type"], "String");
    }
    // The id subscribers de-duplicate on: the message's, and the same when it is sent again.
    assert_eq!(
        envelope["MessageAttributes"]["notification_id"]["Value"],
        n.id()
    );
    SnsNotifier::new(aws_sdk_sns::Client::new(&sdk), &topic_arn)
        .publish(&n)
        .await
        .expect("publish again");
    let again = received(&sqs, &queue_url).await;
    assert_eq!(again.len(), 1);
    assert_eq!(
        again[0]["MessageAttributes"]["notification_id"],
        envelope["MessageAttributes"]["notification_id"]
    );
}

#[tokio::test]
async fn each_channel_hears_through_its_own_topic_once() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    let sns = aws_sdk_sns::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (default_topic, default_queue) = topic_with_queue(&sns, &sqs, "canary-gate").await;
    let (ops_topic, ops_queue) = topic_with_queue(&sns, &sqs, "canary-gate-ops").await;
    let (lead_topic, lead_queue) = topic_with_queue(&sns, &sqs, "canary-gate-lead").await;
    let channels =
        canary_gate_aws::parse_channel_topics(&format!("ops={ops_topic}, oncall={ops_topic}"))
            .expect("map");
    let notifier = SnsNotifier::new(sns, &default_topic).with_channels(channels);

    // `ops` and `oncall` share a topic, the lead is named by ARN, `pager` has no mapping.
    let n = rollback_notification(&["ops", "oncall", &lead_topic]);
    notifier.publish(&n).await.expect("publish");
    assert_eq!(
        received(&sqs, &ops_queue).await.len(),
        1,
        "one message per topic"
    );
    let lead = received(&sqs, &lead_queue).await;
    assert_eq!(lead.len(), 1);
    assert_eq!(
        lead[0]["Subject"],
        canary_gate_aws::sns_subject(&n.subject).as_str()
    );
    assert!(received(&sqs, &default_queue).await.is_empty());

    notifier
        .publish(&rollback_notification(&["pager"]))
        .await
        .expect("publish");
    assert_eq!(received(&sqs, &default_queue).await.len(), 1);
    assert!(received(&sqs, &ops_queue).await.is_empty());

    // A topic that does not exist fails that topic only; the others still hear of it.
    let missing = "arn:aws:sns:us-east-1:123456789012:no-such-topic";
    let err = notifier
        .publish(&rollback_notification(&[missing, "ops"]))
        .await
        .expect_err("missing topic reported");
    assert!(!err.is_transient(), "{err}");
    assert_eq!(received(&sqs, &ops_queue).await.len(), 1);
}
