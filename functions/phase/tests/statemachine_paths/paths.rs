//! The recorded paths, one test each: the golden recording and what it must show.

use super::*;

fn golden(rec: &Recording) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/statemachine/paths");
    let path: PathBuf = dir.join(format!("{}.json", rec.name));
    let actual = rec.to_json();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(&dir).expect("paths dir");
        std::fs::write(&path, &actual).expect("write golden");
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (create it with UPDATE_GOLDEN=1)", path.display()));
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs from what the handler answers now (first at line {}); trace: {:?}",
            path.display(),
            line + 1,
            rec.trace()
        );
    }
}

/// The demo config with 120 s phases, so a path takes a few looks per phase.
fn config(edit: impl FnOnce(&mut Value)) -> Value {
    let mut c: Value = serde_json::from_str(include_str!("../../../../examples/demo-config.json"))
        .expect("config");
    for phase in c["canary_phases"].as_array_mut().expect("phases") {
        phase["duration_seconds"] = 120.into();
    }
    edit(&mut c);
    c
}

fn hook() -> Option<Value> {
    Some(json!({"deploymentId": "d-ABCDEF123", "lifecycleEventHookExecutionId": "hook-1"}))
}

fn reported(rec: &Recording) -> Vec<bool> {
    rec.hook
        .0
        .lock()
        .expect("lock")
        .iter()
        .map(|r| r.2)
        .collect()
}

fn assert_alias(rec: &Recording, version: &str, split: Option<f64>) {
    let alias = rec.sim.alias();
    assert_eq!(alias.version, version, "{}: alias version", rec.name);
    assert_eq!(
        alias.additional.map(|a| a.1),
        split,
        "{}: alias split",
        rec.name
    );
}

#[test]
fn promote() {
    let rec = record(
        "promote",
        "A healthy canary started by hand (no CodeDeploy hook): 5 % -> 25 % -> 100 %, promoted.",
        config(|_| {}),
        None,
        Scenario::healthy(50.0),
        Script::default(),
    );
    golden(&rec);
    assert_eq!(rec.end, "CanaryPromoted");
    assert_eq!(rec.weights(), [5.0, 25.0, 100.0]);
    assert_eq!(rec.count("Analyse:advance"), 2);
    assert_eq!(
        rec.trace().last().map(String::as_str),
        Some("Promoted:promote")
    );
    assert_alias(&rec, "42", None);
    assert!(reported(&rec).is_empty(), "no hook, no report");
}

#[test]
fn rollback() {
    let rec = record(
        "rollback",
        "Errors x5 on the canary, started by a CodeDeploy hook: a hold, then a rollback; CodeDeploy hears Failed.",
        config(|_| {}),
        hook(),
        Scenario::healthy(50.0).with_regression(1.0, 5.0),
        Script::default(),
    );
    golden(&rec);
    assert_eq!(rec.end, "CanaryRolledBack");
    let trace = rec.trace();
    let hold = trace
        .iter()
        .position(|t| t == "Analyse:hold")
        .expect("a hold");
    assert_eq!(trace[hold + 1], "Analyse:rollback", "{trace:?}");
    assert_eq!(
        trace.last().map(String::as_str),
        Some("RolledBack:rollback")
    );
    assert_alias(&rec, "41", None);
    assert_eq!(reported(&rec), [false]);
    assert!(!rec.notified("rollback").is_empty());
}

#[test]
fn extend() {
    let rec = record(
        "extend",
        "10 requests/s: phases end with too few canary samples and are extended before advancing.",
        config(|_| {}),
        None,
        Scenario::healthy(10.0),
        Script::default(),
    );
    golden(&rec);
    assert!(rec.count("Analyse:extend") >= 2, "{:?}", rec.trace());
    let trace = rec.trace();
    let first = trace
        .iter()
        .position(|t| t == "Analyse:extend")
        .expect("extend");
    let advance = trace
        .iter()
        .position(|t| t == "Analyse:advance")
        .expect("advance");
    assert!(first < advance, "extended before advancing: {trace:?}");
    assert_eq!(rec.end, "CanaryPromoted");
    assert_alias(&rec, "42", None);
}

#[test]
fn died_after_writing() {
    let rec = record(
        "died-after-writing",
        "The start's process is killed after its alias write landed, and a look that advances times out after its write: each is retried with the event it was sent, recognises its own write and carries on; promoted with no write twice.",
        config(|_| {}),
        None,
        Scenario::healthy(50.0),
        Script {
            faults: vec![(2, Fault::TimesOutAfterWriting)],
            start_killed: true,
            ..Script::default()
        },
    );
    golden(&rec);
    let trace = rec.trace();
    assert_eq!(
        trace[..2],
        ["Initialise!Runtime.ExitError", "Initialise:continue"]
    );
    let died = trace
        .iter()
        .position(|t| t == "Analyse!Sandbox.Timedout")
        .expect("the look that died");
    assert_eq!(trace[died + 1], "Analyse:advance", "{trace:?}");
    assert_eq!(
        rec.steps[died]["event"],
        rec.steps[died + 1]["event"],
        "the same look again"
    );
    assert_eq!(rec.end, "CanaryPromoted");
    assert_eq!(rec.weights(), [5.0, 25.0, 100.0]);
    // The start, two advances and the promotion: four writes, as without the failures.
    assert_eq!(rec.sim.alias().revision_id, "rev-5");
    assert_alias(&rec, "42", None);
}

#[test]
fn errors_stop_reporting() {
    let rec = record(
        "errors-stop-reporting",
        "The canary fails 3x as often as the baseline and its errors metric stops reporting after the first look (CloudWatch returns no datapoints for it): the canary never advances on the missing metric, extends, and is rolled back at its timeout (600 s here).",
        config(|c| c["timeout_seconds"] = 600.into()),
        None,
        Scenario::healthy(50.0).with_regression(1.0, 3.0),
        Script {
            errors_stop_after: Some(1),
            ..Script::default()
        },
    );
    golden(&rec);
    let trace = rec.trace();
    assert!(
        !trace
            .iter()
            .any(|t| t.ends_with(":advance") || t.ends_with(":promote")),
        "{trace:?}"
    );
    assert_eq!(rec.weights(), [5.0, 0.0], "{trace:?}");
    assert_eq!(rec.end, "CanaryRolledBack");
    assert_alias(&rec, "41", None);
    assert!(!rec.notified("rollback").is_empty());
}

#[test]
fn error_hold() {
    let rec = record(
        "error-hold",
        "CloudWatch throttles one look (retried), then metrics are unavailable for one look: hold, then the canary goes on and is promoted.",
        config(|_| {}),
        None,
        Scenario::healthy(50.0),
        Script {
            faults: vec![(1, Fault::Throttled), (2, Fault::MetricsDown)],
            ..Script::default()
        },
    );
    golden(&rec);
    let trace = rec.trace();
    assert_eq!(
        trace[..5],
        [
            "Initialise:continue",
            "Analyse!Transient",
            "Analyse:continue",
            "Analyse!MetricsUnavailable",
            "HoldOnError:hold"
        ],
        "{trace:?}"
    );
    assert_eq!(trace[5], "Analyse:advance", "{trace:?}");
    assert_eq!(rec.end, "CanaryPromoted");
    let held = &rec.steps[4]["response"];
    assert_eq!(held["waitSeconds"], 60);
    let summary = held["summary"].as_str().expect("summary");
    assert!(
        summary.contains("not authorized to perform cloudwatch:GetMetricData")
            && !summary.contains("errorType"),
        "the summary quotes the error's message: {summary}"
    );
}

#[test]
fn error_rollback() {
    let rec = record(
        "error-rollback",
        "Metrics unavailable from the second look on: holds until the failures outlast timeout_seconds (300 s), then a rollback.",
        config(|c| c["timeout_seconds"] = 300.into()),
        None,
        Scenario::healthy(50.0),
        Script {
            metrics_down_from: Some(2),
            ..Script::default()
        },
    );
    golden(&rec);
    assert_eq!(rec.count("HoldOnError:hold"), 5, "{:?}", rec.trace());
    assert_eq!(rec.count("HoldOnError:rollback"), 1, "{:?}", rec.trace());
    assert_eq!(rec.end, "CanaryRolledBack");
    let last = rec
        .steps
        .iter()
        .rev()
        .find(|s| s["state"] == "HoldOnError")
        .expect("step");
    assert!(
        last["response"]["summary"]
            .as_str()
            .expect("summary")
            .starts_with("looks have failed for 300 s (limit 300 s): rolled back"),
        "{last}"
    );
    assert_alias(&rec, "41", None);
}

fn approval_before_full_traffic(c: &mut Value) {
    c["traffic_advancing"]["requires_approval_before_full_traffic"] = true.into();
}

#[test]
fn approval_apply() {
    let rec = record(
        "approval-apply",
        "Approval before 100 %: the advance waits for an operator, who approves; promoted.",
        config(approval_before_full_traffic),
        None,
        Scenario::healthy(50.0),
        Script {
            answers: vec![Answer::Approve],
            ..Script::default()
        },
    );
    golden(&rec);
    let trace = rec.trace();
    let ask = trace
        .iter()
        .position(|t| t == "AwaitApproval:advance")
        .expect("ask");
    assert_eq!(trace[ask - 1], "Analyse:advance");
    assert_eq!(trace[ask + 1], "ApplyApproved:advance");
    assert_eq!(rec.steps[ask]["response"]["awaitingApproval"], true);
    assert_eq!(rec.weights(), [5.0, 25.0, 100.0]);
    assert_eq!(rec.end, "CanaryPromoted");
    let asked = rec.notified("needs_approval");
    // The task token is a bearer credential: no message or answer carries it (operators'
    // answers find it in the execution history).
    for n in &asked {
        let text = serde_json::to_string(n).expect("json");
        assert!(!text.contains(TASK_TOKEN), "{text}");
    }
    assert!(
        !rec.to_json()
            .contains(&format!("`canary-gate approve --token {TASK_TOKEN}`"))
    );
    // The pending shift is announced when it happens, not when it is asked for.
    let shifts = rec.notified("phase_complete");
    assert_eq!(shifts.len(), 2, "5 -> 25 % and the approved 25 -> 100 %");
    assert!(
        shifts[1]
            .body
            .starts_with("operator approved: advance (canary at 100%)"),
        "{}",
        shifts[1].body
    );
}

#[test]
fn approval_reject() {
    let rec = record(
        "approval-reject",
        "Approval before 100 %: the operator rejects the first request (the canary holds at 25 %) and approves the next; promoted.",
        config(approval_before_full_traffic),
        None,
        Scenario::healthy(50.0),
        Script {
            answers: vec![Answer::Reject, Answer::Approve],
            ..Script::default()
        },
    );
    golden(&rec);
    let trace = rec.trace();
    let reject = trace
        .iter()
        .position(|t| t == "ApplyRejection:hold")
        .expect("reject");
    assert_eq!(trace[reject - 1], "AwaitApproval:advance");
    assert_eq!(
        trace[reject + 1..reject + 4],
        [
            "Analyse:advance",
            "AwaitApproval:advance",
            "ApplyApproved:advance"
        ],
        "{trace:?}"
    );
    let exec = &rec.steps[reject]["response"]["execution"];
    assert_eq!(exec["run"]["phase"], 2, "rejected: still in phase 2");
    assert_eq!(rec.weights(), [5.0, 25.0, 100.0]);
    assert_eq!(rec.end, "CanaryPromoted");
}

#[test]
fn approval_timeout() {
    let rec = record(
        "approval-timeout",
        "Rollback needs an operator's confirmation and nobody answers within rollback_timeout_seconds (2 s): the safe default rolls back.",
        config(|c| {
            c["auto_rollback"]["requires_ops_confirmation"] = true.into();
            c["auto_rollback"]["rollback_timeout_seconds"] = 2.into();
        }),
        None,
        Scenario::healthy(50.0).with_regression(1.0, 5.0),
        Script {
            answers: vec![Answer::TimesOut],
            ..Script::default()
        },
    );
    golden(&rec);
    let trace = rec.trace();
    let n = trace.len();
    assert_eq!(
        trace[n - 4..],
        [
            "Analyse:rollback",
            "AwaitApproval:rollback",
            "ApplySafeDefault:rollback",
            "RolledBack:rollback"
        ],
        "{trace:?}"
    );
    assert_eq!(rec.steps[n - 4]["response"]["awaitingApproval"], true);
    // Told once, when the rollback happened, not when it was proposed.
    let told = rec.notified("rollback");
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].body.contains("safe default"), "{}", told[0].body);
    assert_eq!(rec.end, "CanaryRolledBack");
    assert_alias(&rec, "41", None);
}

#[test]
fn conflict() {
    let rec = record(
        "conflict",
        "Someone else shifts the alias to 50 % during phase 2 (canary started by a CodeDeploy hook): AliasConflict, canary-gate stops without writing and reports Failed.",
        config(|_| {}),
        hook(),
        Scenario::healthy(50.0),
        Script {
            faults: vec![(3, Fault::AliasChangedByOthers)],
            ..Script::default()
        },
    );
    golden(&rec);
    let trace = rec.trace();
    assert_eq!(
        trace[trace.len() - 2..],
        ["Analyse!AliasConflict", "Conflict:hold"],
        "{trace:?}"
    );
    assert_eq!(rec.end, "CanaryFailed");
    assert_alias(&rec, "41", Some(50.0));
    assert_eq!(reported(&rec), [false]);
}

#[test]
fn start_failed() {
    let rec = record(
        "start-failed",
        "A CodeDeploy hook starts a canary whose config names the same version twice: InvalidConfig, CodeDeploy hears Failed, the alias is untouched.",
        config(|c| c["target"]["canary_version"] = "41".into()),
        hook(),
        Scenario::healthy(50.0),
        Script::default(),
    );
    golden(&rec);
    assert_eq!(
        rec.trace(),
        ["Initialise!InvalidConfig", "StartFailed:rollback"]
    );
    assert_eq!(rec.end, "CanaryFailed");
    let sent = &rec.steps[1]["event"]["input"];
    assert_eq!(sent["error"]["Error"], "InvalidConfig");
    assert_eq!(sent["hook"], hook().expect("hook"));
    assert_alias(&rec, "41", None);
    assert_eq!(reported(&rec), [false]);
}
