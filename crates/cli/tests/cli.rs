//! End-to-end tests of the `canary-gate` binary on the shipped examples.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_canary-gate"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("binary runs")
}

/// A directory of this test process's own under the system's temporary directory.
fn scratch(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir
}

fn stdout_ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn analyze(window: &str) -> Value {
    let text = stdout_ok(&[
        "analyze",
        "--config",
        "examples/canary-monitor-hook.json",
        "--window",
        &format!("examples/windows/{window}.json"),
    ]);
    serde_json::from_str(&text).expect("decision JSON")
}

#[test]
fn regression_window_rolls_back_with_evidence() {
    let d = analyze("regression");
    assert_eq!(d["action"], "rollback");
    let metrics = d["report"]["metrics"].as_array().expect("metrics");
    let latency = metrics
        .iter()
        .find(|m| m["name"] == "response-latency")
        .expect("latency");
    assert_eq!(latency["verdict"], "fail");
    assert_eq!(latency["severity"], "rollback");
    assert!(latency["result"]["p_value"].as_f64().expect("p") < 0.001);
    let errors = metrics
        .iter()
        .find(|m| m["name"] == "error-rate")
        .expect("errors");
    assert_eq!(errors["verdict"], "fail");
    assert_eq!(errors["canary"]["events"], 91);
    assert_eq!(errors["baseline"]["total"], 2812);

    let text = stdout_ok(&[
        "analyze",
        "--config",
        "examples/canary-monitor-hook.json",
        "--window",
        "examples/windows/regression.json",
        "--format",
        "text",
    ]);
    assert!(text.contains("VERDICT: ROLLBACK"), "{text}");
    assert!(
        text.contains(
            "✗ response-latency (sequential test; Mann-Whitney U for context) [critical]"
        ),
        "{text}"
    );
    assert!(text.contains("anytime-valid p-value"), "{text}");
    assert!(text.contains("REGRESSION ANALYSIS"), "{text}");
    assert!(text.contains("3.20% (91 / 2,845)"), "{text}");
}

#[test]
fn healthy_window_advances() {
    let d = analyze("healthy");
    assert_eq!(d["action"], "advance", "{}", d["reason"]);
    assert_eq!(d["next_weight"], 100.0);
}

#[test]
fn identical_samples_advance_with_either_method() {
    let dir = scratch("cg-cli-eq");
    let healthy: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("examples/windows/healthy.json")).expect("window"),
    )
    .expect("json");
    let mut window = healthy.clone();
    window["canary"] = healthy["baseline"].clone();
    let path = dir.join("equal.json");
    std::fs::write(&path, window.to_string()).expect("write");
    let mut config: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("examples/canary-monitor-hook.json")).expect("config"),
    )
    .expect("json");
    for method in ["sequential", "fixed-horizon"] {
        config["analysis"] = serde_json::json!({ "method": method });
        let cfg = dir.join(format!("{method}.json"));
        std::fs::write(&cfg, config.to_string()).expect("write");
        let d: Value = serde_json::from_str(&stdout_ok(&[
            "analyze",
            "--config",
            cfg.to_str().expect("path"),
            "--window",
            path.to_str().expect("path"),
        ]))
        .expect("decision");
        assert_eq!(d["action"], "advance", "{method}: {}", d["reason"]);
    }
}

#[test]
fn insufficient_window_extends() {
    let d = analyze("insufficient");
    assert_eq!(d["action"], "extend", "{}", d["reason"]);
    assert_eq!(d["canary_samples"], 50);
    assert_eq!(d["min_samples"], 100);
}

#[test]
fn test_command_prints_the_fixed_json_contract() {
    let v: Value = serde_json::from_str(&stdout_ok(&[
        "test",
        "chi-square",
        "--canary",
        "91/2845",
        "--baseline",
        "4/2812",
    ]))
    .expect("json");
    for key in ["statistic", "p_value", "effect_size"] {
        assert!(v[key].is_number(), "{key} missing in {v}");
    }
    assert!(v["p_value"].as_f64().expect("p") < 1e-10);

    let dir = scratch("cg-cli");
    let (c, b) = (dir.join("c.txt"), dir.join("b.txt"));
    std::fs::write(&c, "5\n6\n7\n8\n").expect("write");
    std::fs::write(&b, "1\n2\n3\n4\n").expect("write");
    let v: Value = serde_json::from_str(&stdout_ok(&[
        "test",
        "mann-whitney-u",
        "--canary",
        c.to_str().expect("path"),
        "--baseline",
        b.to_str().expect("path"),
        "--alternative",
        "greater",
    ]))
    .expect("json");
    // scipy.stats.mannwhitneyu([5,6,7,8], [1,2,3,4], alternative='greater'): U = 16, exact
    // p = 1/70.
    assert_eq!(v["statistic"], 16.0);
    assert!(
        (v["p_value"].as_f64().expect("p") - 1.0 / 70.0).abs() < 1e-12,
        "{v}"
    );
    assert_eq!(v["effect_size"], 1.0);
    // The 16 differences run 1..=7; their median is 4 and the 95 % interval the extremes.
    let hl = &v["hodges_lehmann"];
    assert_eq!(
        (
            &hl["estimate"],
            &hl["lower"],
            &hl["upper"],
            &hl["confidence"]
        ),
        (&json!(4.0), &json!(1.0), &json!(7.0), &json!(0.95)),
        "{v}"
    );
}

#[test]
fn bad_input_is_named_and_fails() {
    let out = run(&[
        "test",
        "fisher-exact",
        "--canary",
        "5/2",
        "--baseline",
        "1/10",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--canary") && err.contains("exceed"), "{err}");

    let dir = scratch("cg-cli-bad");
    let bad = dir.join("bad.json");
    std::fs::write(
        &bad,
        r#"{"canary_phases": [{"traffic_percentage": 25}, {"traffic_percentage": 10}],
            "metrics": [{"name": "l", "type": "histogram"}]}"#,
    )
    .expect("write");
    let out = run(&["validate", bad.to_str().expect("path")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("canary_phases[1].traffic_percentage"), "{err}");
}

/// Configs that parse but must not run: each is refused by `validate` with the field named,
/// and the file is left as it was.
#[test]
fn hostile_configs_are_refused_naming_the_field() {
    let demo: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("examples/demo-config.json")).expect("demo config"),
    )
    .expect("demo config is JSON");
    let dir = scratch("cg-cli-hostile");
    let cases: [(&str, Value, &str); 9] = [
        ("/auto_rollback", json!([false]), "auto_rollback"),
        (
            "/statistical_thresholds/min_effect_size",
            json!(3),
            "statistical_thresholds.min_effect_size",
        ),
        ("/timeout_seconds", json!(u64::MAX), "timeout_seconds"),
        (
            "/canary_phases/0/duration_seconds",
            json!(u64::MAX),
            "canary_phases[0].duration_seconds",
        ),
        (
            "/canary_phases/0/min_samples",
            json!(u64::MAX),
            "canary_phases[0].min_samples",
        ),
        (
            "/traffic_advancing/hold_before_full_traffic",
            json!(u64::MAX - 59),
            "traffic_advancing.hold_before_full_traffic",
        ),
        (
            "/metrics/0/name",
            json!("lat\u{1b}[31mency"),
            "metrics[0].name",
        ),
        (
            "/canary_phases/0/purpose",
            json!("first\nexposure"),
            "canary_phases[0].purpose",
        ),
        ("/canary_phases/0", json!([5, 300]), "canary_phases[0]"),
    ];
    for (pointer, value, field) in cases {
        let mut config = demo.clone();
        *config.pointer_mut(pointer).expect(pointer) = value;
        let file = dir.join("hostile.json");
        let text = serde_json::to_string_pretty(&config).expect("json");
        std::fs::write(&file, &text).expect("write");
        let out = run(&["validate", file.to_str().expect("path")]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{pointer} accepted: {err}");
        assert!(err.contains(&format!("{field}:")), "{pointer}: {err}");
        assert!(out.stdout.is_empty(), "{pointer}: printed a config");
        assert_eq!(
            std::fs::read_to_string(&file).expect("read back"),
            text,
            "{pointer}: file changed"
        );
    }
}

/// Counts past 2^53 (which a double no longer holds exactly, and whose sums over looks could
/// wrap) are refused with the field named, not judged.
#[test]
fn counts_past_two_to_the_53_are_refused() {
    let mut window: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("examples/windows/healthy.json")).expect("window"),
    )
    .expect("JSON");
    window["canary"]["error-rate"] = json!({"events": 1, "total": u64::MAX});
    let dir = scratch("cg-cli-counts");
    let file = dir.join("window.json");
    std::fs::write(&file, window.to_string()).expect("write");
    let out = run(&[
        "analyze",
        "--config",
        "examples/canary-monitor-hook.json",
        "--window",
        file.to_str().expect("path"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted: {err}");
    assert!(err.contains("canary.error-rate.total"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn schema_is_json_schema() {
    let v: Value = serde_json::from_str(&stdout_ok(&["schema"])).expect("schema JSON");
    assert!(v["properties"]["canary_phases"].is_object(), "{v}");
    assert!(
        v["required"]
            .as_array()
            .expect("required")
            .iter()
            .any(|r| r == "metrics")
    );
}

#[test]
fn demo_healthy_promotes_and_regression_rolls_back() {
    let healthy = stdout_ok(&["demo", "--scenario", "healthy"]);
    assert!(
        healthy.contains("FINAL VERDICT") && healthy.contains("PROMOTED"),
        "{healthy}"
    );
    for weight in ["at   5%: advance", "at  25%: advance", "at 100%: promote"] {
        assert!(healthy.contains(weight), "missing {weight:?} in\n{healthy}");
    }
    let bad = stdout_ok(&["demo", "--scenario", "regression"]);
    assert!(bad.contains("ROLLED BACK"), "{bad}");
    assert!(bad.contains("--- SNS message"), "{bad}");
    assert!(
        bad.contains("Subject: canary-gate: orders-api v42 rolled back at 5%"),
        "{bad}"
    );
    assert!(bad.contains("event=rollback"), "{bad}");
}

#[test]
fn backtest_replays_a_simulated_timeline_to_an_outcome() {
    let dir = scratch("cg-cli-bt");
    for (scenario, outcome, aggregate) in [
        ("healthy", "promoted", false),
        ("regression", "rolled_back", false),
        ("healthy", "promoted", true),
        ("regression", "rolled_back", true),
    ] {
        let mut args = vec![
            "simulate",
            "--config",
            "examples/demo-config.json",
            "--scenario",
            scenario,
            "--looks",
            "16",
        ];
        if aggregate {
            args.push("--aggregate");
        }
        let timeline = stdout_ok(&args);
        assert_eq!(timeline.lines().count(), 16);
        let first: Value =
            serde_json::from_str(timeline.lines().next().expect("line")).expect("json");
        assert_eq!(
            first["canary"]["latency"]["periods"].is_array(),
            aggregate,
            "per-period summaries exactly with --aggregate: {first}"
        );
        let path = dir.join(format!("{scenario}-{aggregate}.jsonl"));
        std::fs::write(&path, &timeline).expect("write timeline");
        let out = stdout_ok(&[
            "backtest",
            "--config",
            "examples/demo-config.json",
            "--timeline",
            path.to_str().expect("path"),
        ]);
        let lines: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        let last = lines.last().expect("closing line");
        assert_eq!(last["outcome"], outcome, "{out}");
        for look in &lines[..lines.len() - 1] {
            for key in ["at_seconds", "phase", "canary_weight", "action"] {
                assert!(!look[key].is_null(), "{key} missing in {look}");
            }
        }
    }
}

#[test]
fn backtest_names_the_bad_line() {
    let dir = scratch("cg-cli-btbad");
    let path = dir.join("bad.jsonl");
    std::fs::write(
        &path,
        "{\"at_seconds\": 60, \"baseline\": {}, \"canary\": {}}\n{\"at_seconds\": 120, \"canary\": {\"errors\": [1]}}\n",
    )
    .expect("write");
    let out = run(&[
        "backtest",
        "--config",
        "examples/demo-config.json",
        "--timeline",
        path.to_str().expect("path"),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2") && err.contains("canary.errors"),
        "{err}"
    );
}
