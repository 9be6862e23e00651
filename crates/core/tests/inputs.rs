//! Property tests of what users hand the CLI and the Lambdas: configs, `analyze` windows and
//! `backtest` timeline lines — random JSON, and valid documents with one value anywhere
//! replaced by a random one. None may panic; a refusal names the JSON path at fault; what is
//! accepted is judged without a panic.
//!
//! Cases per property: `PROPTEST_CASES` (default 2,048).

mod support;

use canary_gate_core::backtest::Backtest;
use canary_gate_core::config::CanaryConfig;
use canary_gate_core::controller::Interval;
use canary_gate_core::look;
use canary_gate_core::observe::{self, Window};
use canary_gate_core::report::render_decision_text;
use canary_gate_core::sim::{Fleet, MetricNames, Scenario};
use proptest::prelude::*;
use serde_json::Value;
use support::mutate::{cases, document, leaf, paths, replace};

const DEMO: &str = include_str!("../../../examples/demo-config.json");
const HOOK: &str = include_str!("../../../examples/canary-monitor-hook.json");
const WINDOW: &str = include_str!("../../../examples/windows/regression.json");

fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("example parses")
}

/// The regression window with each metric's samples cut to their first 60 (the structure
/// is what the mutations probe; judging hundreds of samples per case only costs time).
fn window() -> Value {
    let mut doc = json(WINDOW);
    for side in ["baseline", "canary"] {
        for (_, samples) in doc[side].as_object_mut().expect("side").iter_mut() {
            if let Some(a) = samples.as_array_mut() {
                a.truncate(60);
            }
        }
    }
    doc
}

fn demo() -> CanaryConfig {
    CanaryConfig::from_json(DEMO).expect("demo config")
}

/// Two timeline lines of the demo config's metrics: per-request samples, and the per-minute
/// summaries the CloudWatch path delivers.
fn timeline_lines() -> Vec<Value> {
    let c = demo();
    let names = MetricNames {
        latency: "latency".into(),
        errors: "errors".into(),
    };
    let mut fleet = Fleet::new(Scenario::healthy(20.0), names, 3);
    let samples = fleet.interval(60, 60, 5.0);
    let mut summarised = fleet.interval(120, 60, 5.0);
    observe::summarise_side(&mut summarised.baseline, &c, 60);
    observe::summarise_side(&mut summarised.canary, &c, 60);
    [samples, summarised]
        .iter()
        .map(|i| serde_json::to_value(i).expect("json"))
        .collect()
}

/// A path into `doc`, chosen by `pick`: with `shallow`, among the first three levels, where
/// the structure (rather than sample values) lives.
fn path_in(doc: &Value, pick: &prop::sample::Index, shallow: bool) -> Vec<Value> {
    let mut all = Vec::new();
    paths(doc, &mut all, &mut Vec::new());
    let short: Vec<Vec<Value>> = all.iter().filter(|p| p.len() <= 3).cloned().collect();
    pick.get(if shallow { &short } else { &all }).clone()
}

/// A config refused names a path; one accepted is valid.
fn config_case(text: &str) -> Result<(), TestCaseError> {
    match CanaryConfig::from_json(text) {
        Ok(c) => prop_assert!(c.validate().is_ok(), "accepted but invalid: {text}"),
        Err(e) => prop_assert!(
            !e.path.is_empty() && !e.message.is_empty(),
            "{e:?} for {text}"
        ),
    }
    Ok(())
}

/// A window is parsed against `config` and, when accepted, judged as `analyze` judges it.
fn window_case(config: &CanaryConfig, text: &str) -> Result<(), TestCaseError> {
    let window = match Window::from_json(text, config) {
        Ok(w) => w,
        Err(e) => {
            prop_assert!(!e.path.is_empty() && !e.message.is_empty(), "{e:?}");
            return Ok(());
        }
    };
    let decision = look::decide_window(config, &window);
    let _ = render_decision_text(config, &decision);
    Ok(())
}

/// A timeline line is parsed against the demo config and, when accepted, stepped through a
/// backtest (twice, so that the second look compares with the first).
fn line_case(text: &str) -> Result<(), TestCaseError> {
    let c = demo();
    match Interval::from_json(text, &c) {
        Ok(i) => {
            let mut bt = Backtest::new();
            let _ = bt.step(&c, &i);
            let _ = bt.step(&c, &i);
            let _ = bt.finish();
        }
        Err(e) => prop_assert!(!e.path.is_empty() && !e.message.is_empty(), "{e:?}"),
    }
    Ok(())
}

thread_local! {
    static LINES: Vec<Value> = timeline_lines();
    static WINDOW_DOC: Value = window();
    static HOOK_CONFIG: CanaryConfig = CanaryConfig::from_json(HOOK).expect("hook config");
}

proptest! {
    #![proptest_config(cases(2048))]

    #[test]
    fn random_json_as_any_input_never_panics(doc in document()) {
        let text = doc.to_string();
        config_case(&text)?;
        HOOK_CONFIG.with(|c| window_case(c, &text))?;
        line_case(&text)?;
    }

    #[test]
    fn a_config_with_one_value_replaced_never_panics_and_a_refusal_names_a_path(
        which in any::<bool>(),
        pick in any::<prop::sample::Index>(),
        with in leaf(),
    ) {
        let mut doc = json(if which { DEMO } else { HOOK });
        let path = path_in(&doc, &pick, false);
        replace(&mut doc, &path, with);
        config_case(&doc.to_string())?;
    }

    #[test]
    fn a_window_with_one_value_replaced_never_panics(
        pick in any::<prop::sample::Index>(),
        shallow in any::<bool>(),
        with in leaf(),
    ) {
        let mut doc = WINDOW_DOC.with(Clone::clone);
        let path = path_in(&doc, &pick, shallow);
        replace(&mut doc, &path, with);
        HOOK_CONFIG.with(|c| window_case(c, &doc.to_string()))?;
    }

    #[test]
    fn a_timeline_line_with_one_value_replaced_never_panics(
        which in 0usize..2,
        pick in any::<prop::sample::Index>(),
        shallow in any::<bool>(),
        with in leaf(),
    ) {
        let mut doc = LINES.with(|l| l[which].clone());
        let path = path_in(&doc, &pick, shallow);
        replace(&mut doc, &path, with);
        line_case(&doc.to_string())?;
    }
}

#[test]
fn the_unmutated_inputs_are_accepted() {
    // The mutation properties start from inputs taken as they are.
    for text in [DEMO, HOOK] {
        CanaryConfig::from_json(text).expect("config");
    }
    HOOK_CONFIG.with(|c| {
        Window::from_json(WINDOW, c).expect("window");
        Window::from_json(&window().to_string(), c).expect("cut window");
    });
    let c = demo();
    for line in timeline_lines() {
        Interval::from_json(&line.to_string(), &c).expect("line");
    }
}
