//! Every adapter call returns, with a transient error, against an endpoint that accepts
//! connections and never answers — with the SDK config the Lambdas and the CLI use
//! (`canary_gate_aws::with_limits`). The 60 s guard is a liveness check, not a benchmark: the
//! operation timeout (25 s) is what ends each call.

mod support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use canary_gate_aws::{
    CloudWatchMetrics, LambdaAliasRouter, OPERATION_TIMEOUT, SnsNotifier, StepFunctionsExecutions,
};
use canary_gate_core::config::CanaryConfig;
use canary_gate_core::notify::{Event, Notification};
use canary_gate_core::ports::{
    Claim, Executions, MetricsSource, Notifier, PortError, TimeRange, TrafficRouter,
};

/// A port on 127.0.0.1 that accepts every connection and never writes a byte; the accepted
/// sockets are held open for as long as the thread lives.
fn silent_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            match stream {
                Ok(s) => held.push(s),
                Err(_) => break,
            }
        }
    });
    port
}

/// Runs `call` under the 60 s guard; returns its error and how long it took.
async fn bounded<T: std::fmt::Debug>(
    what: &str,
    call: impl std::future::Future<Output = Result<T, PortError>>,
) -> (PortError, Duration) {
    let start = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(60), call)
        .await
        .unwrap_or_else(|_| panic!("{what}: still waiting after 60 s"));
    let err = result.expect_err("a silent endpoint cannot answer");
    (err, start.elapsed())
}

#[tokio::test]
async fn calls_to_an_endpoint_that_never_answers_end_transient_within_the_bound() {
    let endpoint = format!("http://127.0.0.1:{}", silent_port());
    let sdk = support::faults::sdk_at(&endpoint).await;
    let c = CanaryConfig::from_json(include_str!("../../../examples/demo-config.json"))
        .expect("config");
    let t = c.target.clone().expect("target");

    let mut metrics = CloudWatchMetrics::new(aws_sdk_cloudwatch::Client::new(&sdk));
    metrics.ingestion_delay_seconds = 0;
    let router = LambdaAliasRouter::new(aws_sdk_lambda::Client::new(&sdk));
    let notifier = SnsNotifier::new(
        aws_sdk_sns::Client::new(&sdk),
        "arn:aws:sns:us-east-1:123456789012:canary-gate",
    );
    let executions = StepFunctionsExecutions::new(
        aws_sdk_sfn::Client::new(&sdk),
        "arn:aws:states:us-east-1:123456789012:stateMachine:canary-gate",
    );
    let note = Notification {
        event: Event::Rollback,
        subject: "rolled back".into(),
        body: "rolled back".into(),
        attributes: Default::default(),
        channels: vec![],
    };
    let range = TimeRange {
        start: 1_795_000_000,
        end: 1_795_000_600,
    };
    // All at once: each is bounded on its own.
    let results = tokio::join!(
        bounded("GetMetricData", metrics.fetch(&c, &t, range)),
        bounded("GetAlias", router.read(&t)),
        bounded(
            "UpdateAlias",
            router.set_canary_weight(&t, 5.0, "rev-1", &Claim::Unchanged)
        ),
        bounded("Publish", notifier.publish(&note)),
        bounded(
            "DescribeExecution",
            executions.describe("arn:aws:states:us-east-1:123456789012:execution:canary-gate:x")
        ),
    );
    for (what, (err, took)) in [
        ("GetMetricData", results.0),
        ("GetAlias", results.1),
        ("UpdateAlias", results.2),
        ("Publish", results.3),
        ("DescribeExecution", results.4),
    ] {
        assert!(err.is_transient(), "{what}: {err}");
        // Generous slack for a loaded machine; the point is that it ends.
        assert!(
            took <= OPERATION_TIMEOUT + Duration::from_secs(20),
            "{what} took {took:?}"
        );
    }
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let sdk = support::faults::sdk_at(&format!("http://127.0.0.1:{port}")).await;
    let c = CanaryConfig::from_json(include_str!("../../../examples/demo-config.json"))
        .expect("config");
    let t = c.target.clone().expect("target");
    let router = LambdaAliasRouter::new(aws_sdk_lambda::Client::new(&sdk));
    let (err, _) = bounded("GetAlias", router.read(&t)).await;
    assert!(matches!(err, PortError::Unavailable(_)), "{err}");
}
