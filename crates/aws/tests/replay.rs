//! What the local emulator cannot answer, checked with the real SDK clients replaying
//! responses shaped like AWS's documented ones: percentile statistics of `Duration` (moto
//! answers HTTP 500) and a stale `RevisionId` rejected with `PreconditionFailedException`
//! (moto does not enforce revisions), and Logs Insights queries over `REPORT` lines.

use aws_sdk_cloudwatch::config::{Credentials, Region};
use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
use aws_smithy_types::body::SdkBody;
use canary_gate_aws::{CloudWatchMetrics, InvocationDurations, LambdaAliasRouter};
use canary_gate_core::config::CanaryConfig;
use canary_gate_core::observe::Observation;
use canary_gate_core::ports::{Claim, MetricsSource, PortError, TimeRange, TrafficRouter};

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

fn member(id: &str, value: f64) -> String {
    format!(
        "<member><Id>{id}</Id><Label>Duration</Label><Timestamps><member>2026-11-22T10:00:00Z</member></Timestamps><Values><member>{value}</member></Values><StatusCode>Complete</StatusCode></member>"
    )
}

/// A log-normal's percentile (median `median`, sigma 0.9) by the normal quantile.
fn lognormal_percentile(median: f64, percent: f64) -> f64 {
    let z = canary_gate_core::stats::special::norm_ppf(percent / 100.0);
    (median * (0.9 * z).exp() * 10.0).round() / 10.0
}

#[tokio::test]
async fn duration_percentiles_become_per_period_summaries_with_their_counts() {
    // Plan order for the demo config: latency baseline (SampleCount, then the summary
    // percentiles ascending), latency canary the same, then the error counts.
    let qs = canary_gate_core::observe::summary_percentiles(&[50.0, 95.0, 99.0]);
    let side = |n: f64, median: f64| {
        std::iter::once(n)
            .chain(qs.iter().map(move |&p| lognormal_percentile(median, p)))
            .collect::<Vec<f64>>()
    };
    let (baseline, canary) = (side(400.0, 42.0), side(100.0, 88.0));
    let per_side = baseline.len();
    let members: String = baseline
        .iter()
        .chain(canary.iter())
        .enumerate()
        .map(|(i, v)| member(&format!("q{i}"), *v))
        .chain((2 * per_side..2 * per_side + 4).map(|i| {
            // The error counts: a result for every query, without datapoints.
            format!("<member><Id>q{i}</Id><Label>Errors</Label><Timestamps/><Values/><StatusCode>Complete</StatusCode></member>")
        }))
        .collect();
    let xml = format!(
        r#"<GetMetricDataResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><GetMetricDataResult><MetricDataResults>{members}</MetricDataResults><Messages/></GetMetricDataResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></GetMetricDataResponse>"#
    );
    let http = StaticReplayClient::new(vec![event(200, &[("content-type", "text/xml")], &xml)]);
    let conf = aws_sdk_cloudwatch::Config::builder()
        .behavior_version_latest()
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::for_tests())
        .http_client(http.clone())
        .build();
    let mut adapter = CloudWatchMetrics::new(aws_sdk_cloudwatch::Client::from_conf(conf));
    adapter.ingestion_delay_seconds = 0;
    let c = CanaryConfig::from_json(include_str!("../../../examples/demo-config.json"))
        .expect("config");
    let t = c.target.clone().expect("target");
    let got = adapter
        .fetch(
            &c,
            &t,
            TimeRange {
                start: 1_795_000_000,
                end: 1_795_000_600,
            },
        )
        .await
        .expect("fetch");
    let Observation::Periods(b) = &got.baseline["latency"] else {
        panic!(
            "per-period summaries, not samples: {:?}",
            got.baseline["latency"]
        )
    };
    let Observation::Periods(k) = &got.canary["latency"] else {
        panic!("per-period summaries")
    };
    assert_eq!(
        (b.periods.len(), k.periods.len()),
        (1, 1),
        "one period each"
    );
    assert_eq!(
        (b.periods[0].n, k.periods[0].n),
        (400, 100),
        "the sample counts"
    );
    assert_eq!(
        b.periods[0].start, k.periods[0].start,
        "paired by the period's start"
    );
    assert_eq!(
        b.periods[0].stats.len(),
        qs.len(),
        "every percentile of the ladder"
    );
    assert_eq!(b.periods[0].percentile(50.0), Some(42.0));
    assert_eq!(
        k.periods[0].percentile(95.0),
        Some(lognormal_percentile(88.0, 95.0))
    );
    assert!(
        got.notes
            .iter()
            .any(|n| n.contains("percentile statistics") && n.contains("per period")),
        "{:?}",
        got.notes
    );
    assert!(
        !got.canary.contains_key("errors"),
        "no error datapoints: no data"
    );
    assert_eq!(
        http.actual_requests().count(),
        1,
        "one GetMetricData request per look"
    );
}

#[tokio::test]
async fn stale_revision_rejected_by_lambda_is_a_conflict() {
    let alias = r#"{"AliasArn":"arn:aws:lambda:us-east-1:123456789012:function:orders-api:live","Name":"live","FunctionVersion":"1","RevisionId":"rev-1"}"#;
    let http = StaticReplayClient::new(vec![
        event(200, &[("content-type", "application/json")], alias),
        event(
            412,
            &[
                ("content-type", "application/json"),
                ("x-amzn-errortype", "PreconditionFailedException"),
            ],
            r#"{"Type":"User","message":"The Revision Id provided does not match the latest Revision Id."}"#,
        ),
    ]);
    let conf = aws_sdk_lambda::Config::builder()
        .behavior_version_latest()
        .region(aws_sdk_lambda::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_lambda::config::Credentials::for_tests())
        .http_client(http)
        .build();
    let router = LambdaAliasRouter::new(aws_sdk_lambda::Client::from_conf(conf));
    let c = CanaryConfig::from_json(include_str!("../../../examples/demo-config.json"))
        .expect("config");
    let t = c.target.clone().expect("target");
    let err = router
        .set_canary_weight(&t, 5.0, "rev-1", &Claim::Unchanged)
        .await
        .expect_err("rejected");
    assert!(matches!(err, PortError::Conflict { .. }), "{err:?}");
}

#[tokio::test]
async fn codedeploy_hook_status_is_reported() {
    use canary_gate_aws::CodeDeployHook;
    use canary_gate_core::ports::LifecycleHook;
    let http = StaticReplayClient::new(vec![event(
        200,
        &[("content-type", "application/x-amz-json-1.1")],
        r#"{"lifecycleEventHookExecutionId":"h-1"}"#,
    )]);
    let conf = aws_sdk_codedeploy::Config::builder()
        .behavior_version_latest()
        .region(aws_sdk_codedeploy::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_codedeploy::config::Credentials::for_tests())
        .http_client(http.clone())
        .build();
    CodeDeployHook::new(aws_sdk_codedeploy::Client::from_conf(conf))
        .report("d-1", "h-1", false)
        .await
        .expect("reported");
    let sent: Vec<_> = http.actual_requests().collect();
    assert_eq!(sent.len(), 1);
    let body = std::str::from_utf8(sent[0].body().bytes().expect("body"))
        .expect("utf-8")
        .to_string();
    let v: serde_json::Value = serde_json::from_str(&body).expect("json body");
    assert_eq!(v["deploymentId"], "d-1");
    assert_eq!(v["lifecycleEventHookExecutionId"], "h-1");
    assert_eq!(v["status"], "Failed");
}

/// A Logs Insights result row as `GetQueryResults` returns it.
fn report_row(duration: f64, init: Option<f64>, version: &str) -> String {
    let mut fields = vec![
        format!(r#"{{"field":"@duration","value":"{duration}"}}"#),
        format!(r#"{{"field":"@logStream","value":"2026/11/23/[{version}]7c1e0f"}}"#),
    ];
    if let Some(i) = init {
        fields.push(format!(r#"{{"field":"@initDuration","value":"{i}"}}"#));
    }
    format!("[{}]", fields.join(","))
}

fn logs_json(body: &str) -> ReplayEvent {
    event(200, &[("content-type", "application/x-amz-json-1.1")], body)
}

fn per_invocation_config() -> CanaryConfig {
    let mut v: serde_json::Value =
        serde_json::from_str(include_str!("../../../examples/demo-config.json")).expect("json");
    v["metrics"] = serde_json::json!([{
        "name": "latency",
        "type": "histogram",
        "percentiles": [50, 95, 99],
        "threshold_percent_increase": 10,
        "statistical_test": "mann-whitney-u",
        "critical": true,
        "source": {"lambda": {"metric": "Duration", "per_invocation": true}}
    }]);
    CanaryConfig::from_json(&v.to_string()).expect("config")
}

fn unused_cloudwatch() -> aws_sdk_cloudwatch::Client {
    aws_sdk_cloudwatch::Client::from_conf(
        aws_sdk_cloudwatch::Config::builder()
            .behavior_version_latest()
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::for_tests())
            .http_client(StaticReplayClient::new(vec![]))
            .build(),
    )
}

#[tokio::test]
async fn per_invocation_durations_come_from_report_lines_without_cold_starts() {
    let baseline_rows = [
        report_row(10.0, None, "41"),
        report_row(12.0, None, "41"),
        report_row(300.0, Some(210.0), "41"),
    ];
    let canary_rows = [report_row(20.0, None, "42"), report_row(22.0, None, "42")];
    let http = StaticReplayClient::new(vec![
        logs_json(r#"{"queryId":"q-baseline"}"#),
        logs_json(r#"{"status":"Running","results":[]}"#),
        logs_json(&format!(
            r#"{{"status":"Complete","results":[{}],"statistics":{{"recordsMatched":3.0,"recordsScanned":900.0,"bytesScanned":90000.0}}}}"#,
            baseline_rows.join(",")
        )),
        logs_json(r#"{"queryId":"q-canary"}"#),
        logs_json(&format!(
            r#"{{"status":"Complete","results":[{}]}}"#,
            canary_rows.join(",")
        )),
    ]);
    let logs = aws_sdk_cloudwatchlogs::Client::from_conf(
        aws_sdk_cloudwatchlogs::Config::builder()
            .behavior_version_latest()
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::for_tests())
            .http_client(http.clone())
            .build(),
    );
    let mut reader = InvocationDurations::new(logs);
    reader.poll_interval = std::time::Duration::from_millis(1);
    let mut adapter = CloudWatchMetrics::new(unused_cloudwatch()).with_invocation_durations(reader);
    adapter.ingestion_delay_seconds = 120;
    let c = per_invocation_config();
    let t = c.target.clone().expect("target");
    let got = adapter
        .fetch(
            &c,
            &t,
            TimeRange {
                start: 1_795_000_000,
                end: 1_795_000_600,
            },
        )
        .await
        .expect("fetch");
    assert_eq!(
        got.baseline["latency"],
        Observation::Samples(vec![10.0, 12.0])
    );
    assert_eq!(
        got.canary["latency"],
        Observation::Samples(vec![20.0, 22.0])
    );
    assert_eq!(
        got.through,
        Some(1_795_000_480),
        "the data end where the query ended"
    );
    let note = got.notes.join("\n");
    assert!(
        note.contains("per-invocation durations from REPORT log lines"),
        "{note}"
    );
    assert!(note.contains("cold starts left out: 1 and 0"), "{note}");

    let requests: Vec<String> = http
        .actual_requests()
        .map(|r| String::from_utf8_lossy(r.body().bytes().unwrap_or_default()).to_string())
        .collect();
    assert_eq!(requests.len(), 5, "two queries, one polled twice");
    let start: serde_json::Value = serde_json::from_str(&requests[0]).expect("StartQuery body");
    assert_eq!(start["logGroupName"], "/aws/lambda/orders-api");
    assert_eq!(start["startTime"], 1_795_000_000);
    assert_eq!(start["endTime"], 1_795_000_480, "ingestion delay left out");
    assert!(
        start["queryString"]
            .as_str()
            .expect("query")
            .contains(r#"@logStream like "[41]""#)
    );
    let canary_start: serde_json::Value = serde_json::from_str(&requests[3]).expect("body");
    assert!(
        canary_start["queryString"]
            .as_str()
            .expect("query")
            .contains(r#"@logStream like "[42]""#)
    );
}

#[tokio::test]
async fn a_failed_insights_query_is_unavailable_and_a_missing_reader_is_refused() {
    let http = StaticReplayClient::new(vec![
        logs_json(r#"{"queryId":"q-1"}"#),
        logs_json(r#"{"status":"Failed","results":[]}"#),
    ]);
    let logs = aws_sdk_cloudwatchlogs::Client::from_conf(
        aws_sdk_cloudwatchlogs::Config::builder()
            .behavior_version_latest()
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::for_tests())
            .http_client(http)
            .build(),
    );
    let c = per_invocation_config();
    let t = c.target.clone().expect("target");
    let range = TimeRange {
        start: 1_795_000_000,
        end: 1_795_000_600,
    };
    let adapter = CloudWatchMetrics::new(unused_cloudwatch())
        .with_invocation_durations(InvocationDurations::new(logs));
    let err = adapter.fetch(&c, &t, range).await.expect_err("failed");
    assert!(err.is_transient(), "{err}");
    let err = CloudWatchMetrics::new(unused_cloudwatch())
        .fetch(&c, &t, range)
        .await
        .expect_err("no reader");
    assert!(matches!(err, PortError::Rejected(_)), "{err}");
}
