//! The CloudWatch adapter under injected faults: the fault proxy (`tests/faults/proxy.py`)
//! between the SDK client and a real moto server throttles, fails, resets, hangs or rewrites
//! `GetMetricData` answers (per-query `PartialData`/`Forbidden`/`InternalError`, dropped
//! datapoints). Faults that clear are retried and the data come back whole; faults that
//! persist surface as the right `PortError`; a partial answer never becomes data.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use canary_gate_aws::CloudWatchMetrics;
use canary_gate_core::config::CanaryConfig;
use canary_gate_core::observe::Observation;
use canary_gate_core::ports::{Fetched, MetricsSource, PortError, TimeRange};
use canary_gate_core::stats::Counts;
use serde_json::json;
use support::Moto;
use support::faults::FaultProxy;

fn minute_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
        / 60
        * 60
}

async fn put(
    cw: &aws_sdk_cloudwatch::Client,
    ns: &str,
    name: &str,
    d: &[(&str, &str)],
    at: i64,
    value: f64,
) {
    let dims: Vec<Dimension> = d
        .iter()
        .map(|(k, v)| Dimension::builder().name(*k).value(*v).build())
        .collect();
    cw.put_metric_data()
        .namespace(ns)
        .metric_data(
            MetricDatum::builder()
                .metric_name(name)
                .set_dimensions(Some(dims))
                .timestamp(DateTime::from_secs(at))
                .value(value)
                .build(),
        )
        .send()
        .await
        .expect("put metric data");
}

fn config() -> CanaryConfig {
    CanaryConfig::from_json(
        r#"{"target": {"function_name": "orders-api", "alias": "live", "baseline_version": "1", "canary_version": "2"},
            "metrics": [{"name": "errors", "type": "counter", "critical": true, "source": {"lambda": {"metric": "Errors"}}},
                        {"name": "conversions", "type": "counter", "direction": "lower-is-worse",
                         "source": {"ratio": {"numerator": {"namespace": "Shop", "metric_name": "Orders", "version_dimension": "Version"},
                                              "denominator": {"namespace": "Shop", "metric_name": "Visits", "version_dimension": "Version"}}}}]}"#,
    )
    .expect("config")
}

/// Moto with five minutes of both versions' data, the proxy in front of it, and an adapter
/// that reads through the proxy.
struct Bench {
    _moto: Moto,
    proxy: FaultProxy,
    adapter: CloudWatchMetrics,
    range: TimeRange,
}

impl Bench {
    async fn new() -> Self {
        let moto = Moto::start();
        let cw = aws_sdk_cloudwatch::Client::new(&moto.sdk().await);
        let t0 = minute_now() - 600;
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
        }
        let proxy = FaultProxy::start(&moto.endpoint);
        let mut adapter =
            CloudWatchMetrics::new(aws_sdk_cloudwatch::Client::new(&proxy.sdk().await));
        adapter.ingestion_delay_seconds = 0;
        Self {
            _moto: moto,
            proxy,
            adapter,
            range: TimeRange {
                start: t0,
                end: t0 + 300,
            },
        }
    }

    async fn fetch(&self) -> Result<Fetched, PortError> {
        let c = config();
        let t = c.target.clone().expect("target");
        tokio::time::timeout(
            Duration::from_secs(60),
            self.adapter.fetch(&c, &t, self.range),
        )
        .await
        .expect("the fetch returned within 60 s")
    }
}

fn counts(events: u64, total: u64) -> Observation {
    Observation::Counts(Counts { events, total })
}

/// The whole data, as moto holds them.
fn assert_whole(got: &Fetched) {
    assert_eq!(got.baseline["errors"], counts(10, 5000));
    assert_eq!(got.canary["errors"], counts(25, 500));
    assert_eq!(got.canary["conversions"], counts(150, 3000));
}

#[tokio::test]
async fn faults_that_clear_are_retried_and_the_data_come_back_whole() {
    let b = Bench::new().await;
    for (rule, requests) in [
        (
            json!({"op": "GetMetricData", "fault": "throttle", "calls": [1, 2]}),
            3,
        ),
        (
            json!({"op": "GetMetricData", "fault": "status", "status": 503, "calls": [1]}),
            2,
        ),
        (
            json!({"op": "GetMetricData", "fault": "status", "status": 500, "code": "InternalFailure", "calls": [1]}),
            2,
        ),
        (
            json!({"op": "GetMetricData", "fault": "reset", "calls": [1]}),
            2,
        ),
        (
            json!({"op": "GetMetricData", "fault": "hang", "seconds": 30, "calls": [1]}),
            2,
        ),
        (
            json!({"op": "GetMetricData", "fault": "stall", "seconds": 30, "calls": [1]}),
            2,
        ),
    ] {
        b.proxy.set(json!([rule]));
        let got = b.fetch().await.unwrap_or_else(|e| panic!("{rule}: {e}"));
        assert_whole(&got);
        assert_eq!(b.proxy.calls("GetMetricData"), requests, "{rule}");
    }
}

#[tokio::test]
async fn faults_that_persist_are_transient_errors_after_bounded_attempts() {
    let b = Bench::new().await;
    for (rule, throttled) in [
        (json!({"op": "GetMetricData", "fault": "throttle"}), true),
        (
            json!({"op": "GetMetricData", "fault": "status", "status": 503}),
            false,
        ),
        (json!({"op": "GetMetricData", "fault": "reset"}), false),
        (
            json!({"op": "GetMetricData", "fault": "hang", "seconds": 60}),
            false,
        ),
    ] {
        b.proxy.set(json!([rule]));
        let err = b
            .fetch()
            .await
            .expect_err("no data under a persistent fault");
        assert!(err.is_transient(), "{rule}: {err}");
        assert_eq!(
            matches!(err, PortError::Throttled(_)),
            throttled,
            "{rule}: {err}"
        );
        let n = b.proxy.calls("GetMetricData");
        assert!((1..=3).contains(&n), "{rule}: {n} attempts, at most 3");
    }
}

#[tokio::test]
async fn per_query_statuses_are_read_never_taken_as_data() {
    let b = Bench::new().await;
    // PartialData with a further page: the adapter follows NextToken, and the second page
    // (moto's whole answer) completes every query.
    b.proxy.set(
        json!([{"op": "GetMetricData", "fault": "partial", "next_token": true, "calls": [1]}]),
    );
    assert_whole(&b.fetch().await.expect("paged"));
    assert_eq!(
        b.proxy.calls("GetMetricData"),
        2,
        "the NextToken page was asked for"
    );

    for (rule, transient) in [
        (
            json!({"op": "GetMetricData", "fault": "partial", "metric": "Errors"}),
            true,
        ),
        (
            json!({"op": "GetMetricData", "fault": "internal", "metric": "Errors"}),
            true,
        ),
        (
            json!({"op": "GetMetricData", "fault": "forbidden", "metric": "Errors"}),
            false,
        ),
    ] {
        b.proxy.set(json!([rule]));
        let err = b.fetch().await.expect_err("refused");
        assert_eq!(err.is_transient(), transient, "{rule}: {err}");
        if !transient {
            assert!(matches!(err, PortError::Rejected(_)), "{rule}: {err}");
        }
        assert!(
            err.to_string().contains("metric `errors`"),
            "{rule}: names the metric: {err}"
        );
        assert_eq!(
            b.proxy.calls("GetMetricData"),
            1,
            "{rule}: not retried as if transport"
        );
    }
}

#[tokio::test]
async fn dropped_datapoints_are_no_data_not_zeros() {
    let b = Bench::new().await;
    // Every Errors datapoint of the canary dropped: the canary has no error observation at
    // all, not 0 errors out of 500.
    b.proxy.set(json!([{"op": "GetMetricData", "fault": "drop", "metric": "Errors", "dimension": "ExecutedVersion=2"}]));
    let got = b.fetch().await.expect("fetch");
    assert!(
        !got.canary.contains_key("errors"),
        "{:?}",
        got.canary.get("errors")
    );
    assert_eq!(
        got.baseline["errors"],
        counts(10, 5000),
        "the baseline is whole"
    );
    assert!(
        got.notes
            .iter()
            .any(|n| n.starts_with("errors: canary: 5 period(s)")),
        "{:?}",
        got.notes
    );

    // Two of five minutes kept: only those two minutes count, on both sides of the ratio.
    b.proxy.set(json!([{"op": "GetMetricData", "fault": "drop", "metric": "Errors", "dimension": "ExecutedVersion=2", "keep_first": 2}]));
    let got = b.fetch().await.expect("fetch");
    assert_eq!(
        got.canary["errors"],
        counts(10, 200),
        "errors and invocations of 2 minutes"
    );

    // The denominator dropped instead: no trials, no data.
    b.proxy.set(json!([{"op": "GetMetricData", "fault": "drop", "metric": "Invocations", "dimension": "ExecutedVersion=2"}]));
    let got = b.fetch().await.expect("fetch");
    assert!(!got.canary.contains_key("errors"));
    assert_eq!(got.canary["conversions"], counts(150, 3000));
}

#[tokio::test]
async fn more_events_than_trials_from_a_ratio_source_are_refused_by_name() {
    let moto = Moto::start();
    let cw = aws_sdk_cloudwatch::Client::new(&moto.sdk().await);
    let t0 = minute_now() - 300;
    for version in ["1", "2"] {
        put(&cw, "Shop", "Orders", &[("Version", version)], t0, 40.0).await;
        put(&cw, "Shop", "Visits", &[("Version", version)], t0, 30.0).await;
    }
    let mut adapter = CloudWatchMetrics::new(cw);
    adapter.ingestion_delay_seconds = 0;
    let mut c = config();
    c.metrics.retain(|m| m.name == "conversions");
    let t = c.target.clone().expect("target");
    let err = adapter
        .fetch(
            &c,
            &t,
            TimeRange {
                start: t0 - 60,
                end: t0 + 120,
            },
        )
        .await
        .expect_err("40 orders out of 30 visits");
    assert!(matches!(err, PortError::Rejected(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("metric `conversions`") && text.contains("cannot exceed"),
        "{text}"
    );
}
