//! `canary-gate record` as a user runs it — the binary with the standard AWS environment —
//! against a real moto server on 127.0.0.1: AWS/Lambda `Invocations` and `Errors` per
//! `ExecutedVersion` put for a past window as Lambda publishes them, recorded into a
//! timeline, and that timeline backtested against a hand-built one with the same counts.
//!
//! moto answers HTTP 500 for percentile statistics, so the config here has counter metrics
//! only; `Duration` summaries are recorded over replayed CloudWatch answers in
//! `crates/aws/tests/record.rs`. Windows that must be refused are checked here too, with
//! an `--out` file that has to stay as it was.

#[path = "../../aws/tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use serde_json::{Value, json};
use support::Moto;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A directory of this test process's own under the system's temporary directory.
fn scratch(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir
}

/// Runs the binary with the AWS environment pointed at `endpoint`.
fn cli(endpoint: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_canary-gate"))
        .args(args)
        .current_dir(root())
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("binary runs")
}

fn ok(endpoint: &str, args: &[&str]) -> (String, String) {
    let out = cli(endpoint, args);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{args:?} failed: {err}");
    (String::from_utf8(out.stdout).expect("utf-8"), err)
}

fn now_minute() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
        / 60
        * 60
}

/// One counter metric, phases of 5 % and 25 % (5 minutes each) before full traffic. The
/// target is a placeholder: the test names the real one on the command line.
const CONFIG: &str = r#"{
  "target": {"function_name": "placeholder", "alias": "placeholder", "baseline_version": "41", "canary_version": "42"},
  "timeout_seconds": 1800,
  "canary_phases": [
    {"traffic_percentage": 5, "duration_seconds": 300, "min_samples": 100},
    {"traffic_percentage": 25, "duration_seconds": 300, "min_samples": 100},
    {"traffic_percentage": 100, "duration_seconds": 300, "min_samples": 100}
  ],
  "metrics": [
    {"name": "errors", "type": "counter", "threshold_percent_increase": 20, "statistical_test": "chi-square",
     "critical": true, "source": {"lambda": {"metric": "Errors"}}}
  ],
  "auto_rollback": {"enabled": true, "requires_ops_confirmation": false}
}"#;

/// Invocations and errors per minute of the window: (baseline, canary) as (errors, total).
/// The split follows the phases (5 %, then 25 % from minute 5); the canary's error rate jumps
/// from about 0.4 % to 12 % when it gets 25 %.
fn minute(i: i64) -> [(u64, u64); 2] {
    if i < 5 {
        [(1, 950), (u64::from(i == 2), 50)]
    } else {
        [(1, 750), (30, 250)]
    }
}

const MINUTES: i64 = 10;

fn dims(pairs: &[(&str, &str)]) -> Vec<Dimension> {
    pairs
        .iter()
        .map(|(k, v)| Dimension::builder().name(*k).value(*v).build())
        .collect()
}

fn datum(name: &str, d: &[(&str, &str)], at: i64, value: f64) -> MetricDatum {
    MetricDatum::builder()
        .metric_name(name)
        .set_dimensions(Some(dims(d)))
        .timestamp(DateTime::from_secs(at))
        .value(value)
        .build()
}

/// Puts the window's datapoints, plus what must not be recorded: the per-function and
/// per-alias aggregates Lambda publishes beside the per-version ones, and minutes just
/// outside the window.
async fn put_history(moto: &Moto, t0: i64) {
    let cw = aws_sdk_cloudwatch::Client::new(&moto.sdk().await);
    for i in -1..=MINUTES {
        let at = t0 + i * 60;
        let outside = !(0..MINUTES).contains(&i);
        let mut data = Vec::new();
        for (version, (errors, total)) in ["1", "2"].into_iter().zip(minute(i)) {
            let (errors, total) = if outside {
                (500.0, 1000.0)
            } else {
                (errors as f64, total as f64)
            };
            let d = [
                ("FunctionName", "orders-api"),
                ("Resource", "orders-api:live"),
                ("ExecutedVersion", version),
            ];
            data.push(datum("Errors", &d, at, errors));
            data.push(datum("Invocations", &d, at, total));
        }
        for d in [
            &[("FunctionName", "orders-api")][..],
            &[
                ("FunctionName", "orders-api"),
                ("Resource", "orders-api:live"),
            ][..],
        ] {
            data.push(datum("Errors", d, at, 999.0));
            data.push(datum("Invocations", d, at, 1000.0));
        }
        cw.put_metric_data()
            .namespace("AWS/Lambda")
            .set_metric_data(Some(data))
            .send()
            .await
            .expect("put metric data");
    }
}

/// The timeline the recording should equal: the same counts, one line per minute.
fn hand_built() -> String {
    (0..MINUTES)
        .map(|i| {
            let [(be, bn), (ce, cn)] = minute(i);
            json!({
                "at_seconds": (i + 1) * 60,
                "baseline": {"errors": {"events": be, "total": bn}},
                "canary": {"errors": {"events": ce, "total": cn}},
            })
            .to_string()
                + "\n"
        })
        .collect()
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

fn backtest(endpoint: &str, config: &Path, timeline: &Path) -> Vec<Value> {
    let (out, _) = ok(
        endpoint,
        &[
            "backtest",
            "--config",
            config.to_str().expect("path"),
            "--timeline",
            timeline.to_str().expect("path"),
        ],
    );
    lines(&out)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recorded_window_backtests_like_the_same_counts_built_by_hand() {
    let moto = Moto::start();
    let t0 = now_minute() - 3600;
    put_history(&moto, t0).await;
    let dir = scratch("cg-record");
    let config = dir.join("config.json");
    std::fs::write(&config, CONFIG).expect("config");
    let out = dir.join("recorded.jsonl");
    let end = DateTime::from_secs(t0 + MINUTES * 60)
        .fmt(aws_sdk_cloudwatch::primitives::DateTimeFormat::DateTime)
        .expect("rfc 3339");
    let mut args = record_args(&config, t0, &end);
    args.extend(["--out".to_string(), out.to_str().expect("path").to_string()]);
    let (stdout, stderr) = ok(&moto.endpoint, &strs(&args));
    assert!(stdout.is_empty(), "the timeline goes to --out: {stdout}");
    assert!(stderr.contains("interval 10/10"), "{stderr}");
    assert!(
        stderr
            .contains("errors: data for the baseline in 10 of 10 intervals, for the canary in 10"),
        "{stderr}"
    );
    let recorded = std::fs::read_to_string(&out).expect("timeline");
    let got = lines(&recorded);
    assert_eq!(got.len(), MINUTES as usize, "one line per interval");
    let ats: Vec<i64> = got
        .iter()
        .map(|l| l["at_seconds"].as_i64().expect("at"))
        .collect();
    assert_eq!(ats, (1..=MINUTES).map(|i| i * 60).collect::<Vec<_>>());
    let sum = |side: &str, field: &str| -> u64 {
        got.iter()
            .map(|l| l[side]["errors"][field].as_u64().expect("count"))
            .sum()
    };
    let put = |version: usize, pick: fn((u64, u64)) -> u64| -> u64 {
        (0..MINUTES).map(|i| pick(minute(i)[version])).sum()
    };
    assert_eq!(sum("baseline", "events"), put(0, |c| c.0));
    assert_eq!(sum("baseline", "total"), put(0, |c| c.1));
    assert_eq!(sum("canary", "events"), put(1, |c| c.0));
    assert_eq!(sum("canary", "total"), put(1, |c| c.1));
    assert_eq!(
        (sum("baseline", "total"), sum("canary", "total")),
        (8_500, 1_500),
        "the per-version series only: no aggregates, nothing outside the window"
    );

    let by_hand = dir.join("by-hand.jsonl");
    std::fs::write(&by_hand, hand_built()).expect("write");
    let from_record = backtest(&moto.endpoint, &config, &out);
    assert_eq!(
        from_record,
        backtest(&moto.endpoint, &config, &by_hand),
        "the same decisions, evidence and outcome"
    );
    let actions: Vec<(i64, i64, &str)> = from_record[..from_record.len() - 1]
        .iter()
        .map(|l| {
            (
                l["at_seconds"].as_i64().expect("at"),
                l["phase"].as_i64().expect("phase"),
                l["action"].as_str().expect("action"),
            )
        })
        .collect();
    assert_eq!(
        actions,
        vec![
            (60, 1, "continue"),
            (120, 1, "continue"),
            (180, 1, "continue"),
            (240, 1, "continue"),
            (300, 1, "advance"),
            (360, 2, "rollback"),
        ],
        "{from_record:#?}"
    );
    let end = from_record.last().expect("closing line");
    assert_eq!(
        (end["outcome"].as_str(), end["at_seconds"].as_i64()),
        (Some("rolled_back"), Some(360))
    );

    // The same window, with the end as epoch seconds, to standard output: the same timeline.
    let (stdout, _) = ok(
        &moto.endpoint,
        &strs(&record_args(&config, t0, &end_secs(t0))),
    );
    assert_eq!(stdout, recorded);
}

/// `record` of the test's window, naming the real target on the command line.
fn record_args(config: &Path, t0: i64, end: &str) -> Vec<String> {
    [
        "record",
        "--config",
        config.to_str().expect("path"),
        "--start",
        &t0.to_string(),
        "--end",
        end,
        "--function",
        "orders-api",
        "--alias",
        "live",
        "--baseline-version",
        "1",
        "--canary-version",
        "2",
    ]
    .map(str::to_string)
    .to_vec()
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn end_secs(t0: i64) -> String {
    (t0 + MINUTES * 60).to_string()
}

/// Refused windows and a failed recording leave `--out` as it was, with no temporary file.
#[test]
fn refused_windows_and_failed_fetches_change_nothing() {
    let dir = scratch("cg-record-bad");
    let config = dir.join("config.json");
    std::fs::write(&config, CONFIG).expect("config");
    let no_target = dir.join("no-target.json");
    let mut v: Value = serde_json::from_str(CONFIG).expect("json");
    v.as_object_mut().expect("object").remove("target");
    std::fs::write(&no_target, v.to_string()).expect("config");
    let out = dir.join("keep.jsonl");
    std::fs::write(&out, "kept\n").expect("out");
    let t0 = now_minute() - 3600;
    let (start, end) = (t0.to_string(), end_secs(t0));
    let (old, old_end) = (t0 - 16 * 86_400, t0 - 16 * 86_400 + 600);
    let (old, old_end) = (old.to_string(), old_end.to_string());
    let recent = (now_minute() + 60).to_string();
    let c = config.to_str().expect("path");
    let o = out.to_str().expect("path");
    // Nothing listens on port 9 of the loopback: every request fails to connect.
    let closed = "http://127.0.0.1:9";
    for (args, says) in [
        (
            vec!["--config", c, "--start", &end, "--end", &start],
            "--end",
        ),
        (
            vec![
                "--config",
                c,
                "--start",
                &start,
                "--end",
                &end,
                "--interval-seconds",
                "90",
            ],
            "--interval-seconds: 90",
        ),
        (
            vec!["--config", c, "--start", &old, "--end", &old_end],
            "15 days",
        ),
        (
            vec!["--config", c, "--start", &start, "--end", &recent],
            "ingesting",
        ),
        (
            vec![
                "--config",
                no_target.to_str().expect("path"),
                "--start",
                &start,
                "--end",
                &end,
            ],
            "--function",
        ),
        (
            vec!["--config", c, "--start", "noon", "--end", &end],
            "--start",
        ),
        (
            vec!["--config", c, "--start", &start, "--end", &end],
            "nothing was written",
        ),
    ] {
        let mut all = vec!["record"];
        all.extend(&args);
        all.extend(["--out", o]);
        let res = cli(closed, &all);
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(!res.status.success(), "{args:?} should fail");
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(
            std::fs::read_to_string(&out).expect("out"),
            "kept\n",
            "{args:?}"
        );
        let left: Vec<_> = std::fs::read_dir(&dir)
            .expect("dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "{args:?} left {left:?}");
    }
}
