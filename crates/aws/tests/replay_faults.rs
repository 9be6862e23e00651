//! Answers the emulator cannot give, replayed through the real SDK clients in the shapes AWS
//! documents: `GetMetricData` pages joined by `NextToken` with per-query `PartialData`, a
//! `Forbidden` result with its messages, a result missing or malformed; and an `UpdateAlias`
//! whose answer is lost after it landed (moto keeps an alias's `RevisionId` on update, AWS
//! moves it).

use aws_sdk_cloudwatch::config::{Credentials, Region};
use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
use aws_smithy_types::body::SdkBody;
use canary_gate_aws::{CloudWatchMetrics, LambdaAliasRouter};
use canary_gate_core::config::CanaryConfig;
use canary_gate_core::observe::Observation;
use canary_gate_core::ports::{Claim, Fetched, MetricsSource, PortError, TimeRange, TrafficRouter};
use canary_gate_core::stats::Counts;

fn event(status: u16, content_type: &str, body: &str) -> ReplayEvent {
    let req = http::Request::builder()
        .uri("https://example.invalid/")
        .body(SdkBody::empty())
        .expect("request");
    let resp = http::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(SdkBody::from(body.to_string()))
        .expect("response");
    ReplayEvent::new(req, resp)
}

/// One result of `GetMetricData` (`MetricDataResult`), with datapoints at `minutes` past
/// 10:00.
fn result(id: &str, points: &[(u32, f64)], status: &str, messages: &str) -> String {
    let times: String = points
        .iter()
        .map(|(m, _)| format!("<member>2026-11-22T10:{m:02}:00Z</member>"))
        .collect();
    let values: String = points
        .iter()
        .map(|(_, v)| format!("<member>{v}</member>"))
        .collect();
    format!(
        "<member><Id>{id}</Id><Label>{id}</Label><Timestamps>{times}</Timestamps><Values>{values}</Values><StatusCode>{status}</StatusCode>{messages}</member>"
    )
}

fn page(results: &[String], next_token: Option<&str>) -> ReplayEvent {
    let token = next_token
        .map(|t| format!("<NextToken>{t}</NextToken>"))
        .unwrap_or_default();
    event(
        200,
        "text/xml",
        &format!(
            r#"<GetMetricDataResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><GetMetricDataResult><MetricDataResults>{}</MetricDataResults>{token}<Messages/></GetMetricDataResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></GetMetricDataResponse>"#,
            results.join("")
        ),
    )
}

/// Fetches the `errors` counter (q0/q1: baseline Errors/Invocations, q2/q3: the canary's)
/// over replayed pages; returns the result and the request bodies sent.
async fn fetch(pages: Vec<ReplayEvent>) -> (Result<Fetched, PortError>, Vec<String>) {
    let http = StaticReplayClient::new(pages);
    let conf = aws_sdk_cloudwatch::Config::builder()
        .behavior_version_latest()
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::for_tests())
        .http_client(http.clone())
        .build();
    let mut adapter = CloudWatchMetrics::new(aws_sdk_cloudwatch::Client::from_conf(conf));
    adapter.ingestion_delay_seconds = 0;
    let c = CanaryConfig::from_json(
        r#"{"target": {"function_name": "orders-api", "alias": "live", "baseline_version": "1", "canary_version": "2"},
            "metrics": [{"name": "errors", "type": "counter", "critical": true, "source": {"lambda": {"metric": "Errors"}}}]}"#,
    )
    .expect("config");
    let t = c.target.clone().expect("target");
    let range = TimeRange {
        start: 1_795_000_000,
        end: 1_795_000_600,
    };
    let got = adapter.fetch(&c, &t, range).await;
    let bodies = http
        .actual_requests()
        .map(|r| String::from_utf8_lossy(r.body().bytes().unwrap_or_default()).to_string())
        .collect();
    (got, bodies)
}

fn complete(id: &str, points: &[(u32, f64)]) -> String {
    result(id, points, "Complete", "")
}

#[tokio::test]
async fn partial_data_is_followed_through_next_token_and_joined() {
    let (got, bodies) = fetch(vec![
        page(
            &[
                result("q0", &[(0, 1.0)], "PartialData", ""),
                result("q1", &[(0, 100.0)], "PartialData", ""),
                result("q2", &[(0, 4.0)], "PartialData", ""),
                result("q3", &[(0, 10.0)], "PartialData", ""),
            ],
            Some("page-2"),
        ),
        page(
            &[
                complete("q0", &[(1, 2.0)]),
                complete("q1", &[(1, 100.0)]),
                complete("q2", &[(1, 6.0)]),
                complete("q3", &[(1, 10.0)]),
            ],
            None,
        ),
    ])
    .await;
    let got = got.expect("two pages");
    assert_eq!(
        got.baseline["errors"],
        Observation::Counts(Counts {
            events: 3,
            total: 200
        })
    );
    assert_eq!(
        got.canary["errors"],
        Observation::Counts(Counts {
            events: 10,
            total: 20
        })
    );
    assert_eq!(bodies.len(), 2);
    assert!(bodies[1].contains("NextToken=page-2"), "{}", bodies[1]);
}

#[tokio::test]
async fn partial_data_on_the_last_page_is_refused_as_unavailable() {
    let (got, _) = fetch(vec![page(
        &[
            complete("q0", &[(0, 1.0)]),
            complete("q1", &[(0, 100.0)]),
            result("q2", &[(0, 0.0)], "PartialData", ""),
            complete("q3", &[(0, 10.0)]),
        ],
        None,
    )])
    .await;
    let err = got.expect_err("partial");
    assert!(matches!(err, PortError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("metric `errors` (canary"), "{err}");
}

#[tokio::test]
async fn forbidden_is_rejected_with_the_metric_and_the_messages() {
    let denied = "<Messages><member><Code>Forbidden</Code><Value>not authorized to read account 111122223333</Value></member></Messages>";
    let (got, _) = fetch(vec![page(
        &[
            complete("q0", &[(0, 1.0)]),
            complete("q1", &[(0, 100.0)]),
            result("q2", &[], "Forbidden", denied),
            complete("q3", &[(0, 10.0)]),
        ],
        None,
    )])
    .await;
    let err = got.expect_err("forbidden");
    assert!(matches!(err, PortError::Rejected(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("metric `errors` (canary") && text.contains("not authorized"),
        "{text}"
    );
}

#[tokio::test]
async fn a_missing_result_or_mismatched_datapoints_are_refused() {
    let (got, _) = fetch(vec![page(
        &[
            complete("q0", &[(0, 1.0)]),
            complete("q1", &[(0, 100.0)]),
            complete("q3", &[(0, 10.0)]),
        ],
        None,
    )])
    .await;
    let err = got.expect_err("q2 missing");
    assert!(err.to_string().contains("no result"), "{err}");

    let lopsided = "<member><Id>q2</Id><Timestamps><member>2026-11-22T10:00:00Z</member></Timestamps><Values/><StatusCode>Complete</StatusCode></member>".to_string();
    let (got, _) = fetch(vec![page(
        &[
            complete("q0", &[(0, 1.0)]),
            complete("q1", &[(0, 100.0)]),
            lopsided,
            complete("q3", &[(0, 10.0)]),
        ],
        None,
    )])
    .await;
    let err = got.expect_err("1 timestamp, 0 values");
    assert!(
        err.to_string().contains("1 timestamps but 0 values"),
        "{err}"
    );
}

const JSON: &str = "application/json";

fn alias(revision: &str, weight: Option<f64>) -> String {
    let routing = weight
        .map(|w| format!(r#","RoutingConfig":{{"AdditionalVersionWeights":{{"2":{w}}}}}"#))
        .unwrap_or_default();
    format!(
        r#"{{"AliasArn":"arn:aws:lambda:us-east-1:123456789012:function:orders-api:live","Name":"live","FunctionVersion":"1","RevisionId":"{revision}"{routing}}}"#
    )
}

fn router(events: Vec<ReplayEvent>) -> (LambdaAliasRouter, StaticReplayClient) {
    let http = StaticReplayClient::new(events);
    let conf = aws_sdk_lambda::Config::builder()
        .behavior_version_latest()
        .region(aws_sdk_lambda::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_lambda::config::Credentials::for_tests())
        .http_client(http.clone())
        .build();
    (
        LambdaAliasRouter::new(aws_sdk_lambda::Client::from_conf(conf)),
        http,
    )
}

fn target() -> canary_gate_core::config::Target {
    CanaryConfig::from_json(include_str!("../../../examples/demo-config.json"))
        .expect("config")
        .target
        .expect("target")
}

#[tokio::test]
async fn a_write_that_landed_before_its_answer_was_lost_is_recognised_as_ours() {
    let mut t = target();
    t.baseline_version = "1".into();
    t.canary_version = "2".into();
    let (router, http) = router(vec![
        event(200, JSON, &alias("rev-1", None)),
        event(
            503,
            JSON,
            r#"{"Type":"Service","message":"Service unavailable"}"#,
        ),
        event(200, JSON, &alias("rev-2", Some(0.05))),
    ]);
    let got = router
        .set_canary_weight(&t, 5.0, "rev-1", &Claim::Unchanged)
        .await
        .expect("its own write");
    assert_eq!(got.revision_id, "rev-2");
    assert_eq!(got.weight_of("2"), 5.0);
    assert_eq!(
        http.actual_requests().count(),
        3,
        "UpdateAlias was not resent"
    );
}

#[tokio::test]
async fn after_a_lost_answer_a_different_routing_is_a_conflict() {
    let mut t = target();
    t.baseline_version = "1".into();
    t.canary_version = "2".into();
    let (router, _) = router(vec![
        event(200, JSON, &alias("rev-1", None)),
        event(
            503,
            JSON,
            r#"{"Type":"Service","message":"Service unavailable"}"#,
        ),
        event(200, JSON, &alias("rev-9", Some(0.5))),
    ]);
    let err = router
        .set_canary_weight(&t, 5.0, "rev-1", &Claim::Unchanged)
        .await
        .expect_err("someone else's routing");
    assert!(matches!(err, PortError::Conflict { .. }), "{err:?}");
}

/// The alias as GetAlias answers it, with a description.
fn described(revision: &str, weight: f64, description: &str) -> String {
    let id = format!(r#""RevisionId":"{revision}""#);
    alias(revision, Some(weight)).replace(&id, &format!(r#"{id},"Description":"{description}""#))
}

#[tokio::test]
async fn after_a_lost_answer_the_same_routing_under_another_canarys_hold_is_a_conflict() {
    use canary_gate_core::ports::AliasClaim;
    let mut t = target();
    t.baseline_version = "1".into();
    t.canary_version = "2".into();
    let ours = AliasClaim::hold(
        "arn:aws:states:us-east-1:1:execution:canary-gate:a",
        2_000_000_000,
    );
    let theirs = AliasClaim::hold(
        "arn:aws:states:us-east-1:1:execution:canary-gate:b",
        2_000_000_000,
    );
    for (found, mine) in [(&ours, true), (&theirs, false)] {
        let (router, http) = router(vec![
            event(200, JSON, &alias("rev-1", None)),
            event(
                503,
                JSON,
                r#"{"Type":"Service","message":"Service unavailable"}"#,
            ),
            event(200, JSON, &described("rev-2", 0.05, &found.description())),
        ]);
        let got = router
            .set_canary_weight(&t, 5.0, "rev-1", &Claim::Set(ours.clone()))
            .await;
        assert_eq!(
            http.actual_requests().count(),
            3,
            "UpdateAlias was not resent"
        );
        let sent = http.actual_requests().nth(1).expect("the UpdateAlias");
        let body = std::str::from_utf8(sent.body().bytes().expect("body")).expect("utf8");
        assert!(
            body.contains(&ours.description()),
            "the hold is written: {body}"
        );
        match got {
            Ok(a) => {
                assert!(mine, "another canary's write taken for ours");
                assert_eq!(a.claim.as_ref(), Some(&ours));
            }
            Err(e) => {
                assert!(!mine, "our own write refused: {e}");
                assert!(matches!(e, PortError::Conflict { .. }), "{e:?}");
            }
        }
    }
}
