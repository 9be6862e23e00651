//! The recording loop (`canary_gate_core::record`, what `canary-gate record` runs) over the
//! CloudWatch adapter with answers the emulator cannot give, replayed through the real SDK
//! clients: `Duration` percentile summaries (moto answers HTTP 500 for percentile
//! statistics) and per-invocation durations from Logs Insights. Each interval is its own
//! exchange over its own range, and the period starts come through as CloudWatch gave them.

use aws_sdk_cloudwatch::config::{Credentials, Region};
use aws_sdk_cloudwatch::primitives::{DateTime, DateTimeFormat};
use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
use aws_smithy_types::body::SdkBody;
use canary_gate_aws::{CloudWatchMetrics, InvocationDurations};
use canary_gate_core::backtest::Backtest;
use canary_gate_core::config::CanaryConfig;
use canary_gate_core::controller::Interval;
use canary_gate_core::observe::{Observation, summary_percentiles};
use canary_gate_core::record::{Window, record};
use canary_gate_core::stats::Counts;

/// A minute boundary: 2026-11-18T11:06:00Z.
const T0: i64 = 1_794_999_960;

fn event(content_type: &str, body: &str) -> ReplayEvent {
    let req = http::Request::builder()
        .uri("https://example.invalid/")
        .body(SdkBody::empty())
        .expect("request");
    let resp = http::Response::builder()
        .status(200)
        .header("content-type", content_type)
        .body(SdkBody::from(body.to_string()))
        .expect("response");
    ReplayEvent::new(req, resp)
}

fn iso(t: i64) -> String {
    DateTime::from_secs(t)
        .fmt(DateTimeFormat::DateTime)
        .expect("rfc 3339")
}

/// A `GetMetricData` answer with one datapoint per query, all in the period starting at
/// `t`, in the order the queries were planned.
fn answer(t: i64, values: &[f64]) -> ReplayEvent {
    let members: String = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "<member><Id>q{i}</Id><Label>q{i}</Label><Timestamps><member>{}</member></Timestamps><Values><member>{v}</member></Values><StatusCode>Complete</StatusCode></member>",
                iso(t)
            )
        })
        .collect();
    event(
        "text/xml",
        &format!(
            r#"<GetMetricDataResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><GetMetricDataResult><MetricDataResults>{members}</MetricDataResults><Messages/></GetMetricDataResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></GetMetricDataResponse>"#
        ),
    )
}

/// One side's `Duration` answer: the sample count, then the summary percentiles ascending,
/// growing linearly from the median (enough for a summary in order).
fn duration_side(n: f64, median: f64) -> Vec<f64> {
    let qs = summary_percentiles(&[50.0, 95.0, 99.0]);
    std::iter::once(n)
        .chain(qs.iter().map(|p| (median * p / 50.0 * 10.0).round() / 10.0))
        .collect()
}

/// A CloudWatch client whose answers come from `http`.
fn cloudwatch(http: &StaticReplayClient) -> aws_sdk_cloudwatch::Client {
    aws_sdk_cloudwatch::Client::from_conf(
        aws_sdk_cloudwatch::Config::builder()
            .behavior_version_latest()
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::for_tests())
            .http_client(http.clone())
            .build(),
    )
}

fn demo_config() -> CanaryConfig {
    CanaryConfig::from_json(include_str!("../../../examples/demo-config.json")).expect("config")
}

/// The bodies of the requests a replay client was sent.
fn bodies(http: &StaticReplayClient) -> Vec<String> {
    http.actual_requests()
        .map(|r| String::from_utf8_lossy(r.body().bytes().unwrap_or_default()).to_string())
        .collect()
}

#[tokio::test]
async fn recorded_duration_summaries_keep_their_period_starts_and_counts() {
    // Plan order for the demo config: latency baseline (SampleCount and the summary
    // percentiles), latency canary, then Errors and Invocations of each side.
    let interval = |t: i64, n: f64, median: f64| {
        let mut v = duration_side(n, median);
        v.extend(duration_side(n / 4.0, median * 1.1));
        v.extend([2.0, n, 1.0, n / 4.0]);
        answer(t, &v)
    };
    let http = StaticReplayClient::new(vec![
        interval(T0, 400.0, 42.0),
        interval(T0 + 60, 480.0, 44.0),
    ]);
    let adapter = CloudWatchMetrics::new(cloudwatch(&http)).with_ingestion_delay(0);
    let c = demo_config();
    let t = c.target.clone().expect("target");
    let window = Window {
        start: T0,
        interval_seconds: 60,
        intervals: 2,
    };
    let mut progress = Vec::new();
    let got = record(&adapter, &c, &t, window, |n, r| {
        progress.push((n, r.interval.at_seconds))
    })
    .await
    .expect("recorded");
    assert_eq!(progress, vec![(1, 60), (2, 120)]);

    for (r, (start, n)) in got.iter().zip([(T0, 400), (T0 + 60, 480)]) {
        let (Observation::Periods(b), Observation::Periods(k)) = (
            &r.interval.baseline["latency"],
            &r.interval.canary["latency"],
        ) else {
            panic!("per-period summaries: {:?}", r.interval)
        };
        assert_eq!(
            (b.periods.len(), b.periods[0].start, k.periods[0].start),
            (1, start, start),
            "one period per side, its start as CloudWatch gave it"
        );
        assert_eq!((b.periods[0].n, k.periods[0].n), (n, n / 4));
        assert_eq!(
            r.interval.canary["errors"],
            Observation::Counts(Counts {
                events: 1,
                total: n / 4
            })
        );
        assert!(
            r.notes.iter().any(|n| n.contains("per period")),
            "{:?}",
            r.notes
        );
    }

    // One exchange per interval, over that interval's range only.
    let sent = bodies(&http);
    assert_eq!(sent.len(), 2);
    for (b, start) in sent.iter().zip([T0, T0 + 60]) {
        let form = |t: i64| iso(t).replace(':', "%3A");
        assert!(
            b.contains(&format!("StartTime={}", form(start)))
                && b.contains(&format!("EndTime={}", form(start + 60))),
            "{b}"
        );
    }

    // The lines read back as the timeline `backtest` replays, and replay.
    let mut bt = Backtest::new();
    for r in &got {
        let line = serde_json::to_string(&r.interval).expect("line");
        assert!(
            line.contains(&format!(r#""periods":[{{"start":{}"#, r.range.start)),
            "{line}"
        );
        let back = Interval::from_json(&line, &c).expect("a valid timeline line");
        assert_eq!(back, r.interval);
        assert!(bt.step(&c, &back).is_some(), "a look per line");
    }
}

fn logs(body: &str) -> ReplayEvent {
    event("application/x-amz-json-1.1", body)
}

/// `GetQueryResults`, complete, with one `REPORT` row per duration.
fn rows(version: &str, durations: &[f64]) -> ReplayEvent {
    let rows: Vec<String> = durations
        .iter()
        .map(|d| {
            format!(
                r#"[{{"field":"@duration","value":"{d}"}},{{"field":"@logStream","value":"2026/11/18/[{version}]7c1e0f"}}]"#
            )
        })
        .collect();
    logs(&format!(
        r#"{{"status":"Complete","results":[{}]}}"#,
        rows.join(",")
    ))
}

#[tokio::test]
async fn per_invocation_durations_are_recorded_per_interval_from_logs_insights() {
    let http = StaticReplayClient::new(vec![
        logs(r#"{"queryId":"b-1"}"#),
        rows("41", &[10.0, 11.0]),
        logs(r#"{"queryId":"c-1"}"#),
        rows("42", &[20.0]),
        logs(r#"{"queryId":"b-2"}"#),
        rows("41", &[12.0]),
        logs(r#"{"queryId":"c-2"}"#),
        rows("42", &[21.0, 22.0]),
    ]);
    let reader = InvocationDurations::new(aws_sdk_cloudwatchlogs::Client::from_conf(
        aws_sdk_cloudwatchlogs::Config::builder()
            .behavior_version_latest()
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::for_tests())
            .http_client(http.clone())
            .build(),
    ));
    // No GetMetricData: the config's only metric is read from the logs.
    let unused = cloudwatch(&StaticReplayClient::new(vec![]));
    let adapter = CloudWatchMetrics::new(unused)
        .with_invocation_durations(reader)
        .with_ingestion_delay(0);
    let mut v: serde_json::Value =
        serde_json::from_str(include_str!("../../../examples/demo-config.json")).expect("json");
    v["metrics"] = serde_json::json!([{
        "name": "latency", "type": "histogram", "percentiles": [50, 95, 99],
        "threshold_percent_increase": 10, "statistical_test": "mann-whitney-u", "critical": true,
        "source": {"lambda": {"metric": "Duration", "per_invocation": true}}
    }]);
    let c = CanaryConfig::from_json(&v.to_string()).expect("config");
    let t = c.target.clone().expect("target");
    let window = Window {
        start: T0,
        interval_seconds: 60,
        intervals: 2,
    };
    let got = record(&adapter, &c, &t, window, |_, _| {})
        .await
        .expect("recorded");
    let samples: Vec<(Observation, Observation)> = got
        .iter()
        .map(|r| {
            (
                r.interval.baseline["latency"].clone(),
                r.interval.canary["latency"].clone(),
            )
        })
        .collect();
    assert_eq!(
        samples,
        vec![
            (
                Observation::Samples(vec![10.0, 11.0]),
                Observation::Samples(vec![20.0])
            ),
            (
                Observation::Samples(vec![12.0]),
                Observation::Samples(vec![21.0, 22.0])
            ),
        ]
    );
    assert!(
        got[0].notes[0].contains("per-invocation durations from REPORT log lines"),
        "{:?}",
        got[0].notes
    );
    let starts: Vec<(i64, i64)> = bodies(&http)
        .into_iter()
        .filter(|b| b.contains("queryString"))
        .map(|b| {
            let v: serde_json::Value = serde_json::from_str(&b).expect("StartQuery body");
            (
                v["startTime"].as_i64().expect("start"),
                v["endTime"].as_i64().expect("end"),
            )
        })
        .collect();
    assert_eq!(
        starts,
        vec![
            (T0, T0 + 60),
            (T0, T0 + 60),
            (T0 + 60, T0 + 120),
            (T0 + 60, T0 + 120)
        ],
        "both versions' queries over each interval's own range"
    );
}
