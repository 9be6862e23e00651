//! Policy rules on hand-built judge reports.

use super::*;
use crate::config::Direction;
use crate::config::{AnalysisMethod, CanaryConfig, MetricKind};
use crate::judge::{MetricReport, SideStats};
use crate::stats::TestKind;

fn config() -> CanaryConfig {
    CanaryConfig::from_json(include_str!(
        "../../../../examples/canary-monitor-hook.json"
    ))
    .expect("seed config")
}

fn metric(
    name: &str,
    critical: bool,
    verdict: Verdict,
    severity: Option<Severity>,
    n: u64,
) -> MetricReport {
    let side = SideStats::Rate {
        events: 0,
        total: n,
        rate: 0.0,
    };
    MetricReport {
        name: name.to_string(),
        kind: MetricKind::Counter,
        critical,
        direction: Direction::HigherIsWorse,
        test: TestKind::ChiSquare,
        method: AnalysisMethod::FixedHorizon,
        guarantee: String::new(),
        baseline: Some(side.clone()),
        canary: Some(side),
        result: None,
        changes: Vec::new(),
        headline: None,
        shift: None,
        power: None,
        verdict,
        severity,
        reason: String::new(),
    }
}

fn state(phase: usize, elapsed: u64) -> PhaseState {
    PhaseState {
        phase,
        elapsed_in_phase_seconds: elapsed,
        total_elapsed_seconds: elapsed,
        hold_seconds: 0,
    }
}

fn report(metrics: Vec<MetricReport>) -> JudgeReport {
    JudgeReport::new(metrics, true)
}

#[test]
fn passing_phase_advances_to_next_weight_after_its_duration() {
    let c = config();
    let d = decide(
        &c,
        report(vec![metric("error-rate", true, Verdict::Pass, None, 600)]),
        &state(2, 300),
    );
    assert_eq!(d.action, Action::Advance);
    assert_eq!(d.canary_weight, 25.0);
    assert_eq!(d.next_weight, 100.0);
    assert_eq!(
        d.wait_seconds, 120,
        "hold_before_full_traffic applies before 100%"
    );
    let d = decide(
        &c,
        report(vec![metric("error-rate", true, Verdict::Pass, None, 600)]),
        &state(2, 120),
    );
    assert_eq!(d.action, Action::Continue);
    assert_eq!(d.next_weight, 25.0);
}

#[test]
fn last_phase_promotes() {
    let d = decide(
        &config(),
        report(vec![metric("e", true, Verdict::Pass, None, 5000)]),
        &state(3, 300),
    );
    assert_eq!(d.action, Action::Promote);
    assert_eq!(d.next_weight, 100.0);
}

#[test]
fn insufficient_samples_extend_never_advance() {
    let c = config();
    let d = decide(
        &c,
        report(vec![metric("e", true, Verdict::Pass, None, 50)]),
        &state(1, 300),
    );
    assert_eq!(d.action, Action::Extend);
    assert!(
        d.reason.contains("50 canary samples of the 100"),
        "{}",
        d.reason
    );
    let d = decide(
        &c,
        report(vec![metric("e", true, Verdict::Pass, None, 50)]),
        &state(1, 100),
    );
    assert_eq!(d.action, Action::Continue);
}

#[test]
fn missing_or_broken_critical_data_blocks_advancing() {
    let c = config();
    for verdict in [Verdict::NoData, Verdict::Error] {
        let r = report(vec![
            metric("lat", true, verdict, None, 0),
            metric("e", true, Verdict::Pass, None, 5000),
        ]);
        let d = decide(&c, r, &state(1, 300));
        assert_eq!(d.action, Action::Extend, "{verdict:?}");
    }
}

#[test]
fn insufficient_data_past_timeout_rolls_back() {
    let c = config();
    let mut s = state(1, 300);
    s.total_elapsed_seconds = c.timeout_seconds;
    let d = decide(
        &c,
        report(vec![metric("e", true, Verdict::Pass, None, 10)]),
        &s,
    );
    assert_eq!(d.action, Action::Rollback);
    assert!(d.reason.contains("timeout"), "{}", d.reason);
}

#[test]
fn an_advance_waiting_for_approval_past_the_timeout_rolls_back() {
    let mut c = config();
    c.traffic_advancing.auto_advance_on_pass = false;
    c.auto_rollback.requires_ops_confirmation = false;
    let healthy = || report(vec![metric("e", true, Verdict::Pass, None, 5000)]);
    let before = decide(&c, healthy(), &state(1, 300));
    assert_eq!(before.action, Action::Advance);
    assert!(before.requires_approval);
    let mut s = state(1, 300);
    s.total_elapsed_seconds = c.timeout_seconds;
    let d = decide(&c, healthy(), &s);
    assert_eq!(d.action, Action::Rollback, "{}", d.reason);
    assert!(!d.requires_approval);
    assert!(d.reason.contains("waits for an operator"), "{}", d.reason);
}

#[test]
fn critical_rollback_tier_rolls_back_with_confirmation_when_configured() {
    let c = config();
    let r = report(vec![metric(
        "e",
        true,
        Verdict::Fail,
        Some(Severity::Rollback),
        5000,
    )]);
    let d = decide(&c, r, &state(2, 30));
    assert_eq!(d.action, Action::Rollback);
    assert_eq!(d.next_weight, 0.0);
    assert!(d.requires_approval, "seed config asks for ops confirmation");
}

#[test]
fn critical_hold_tier_holds_then_rolls_back_after_soak_window() {
    let c = config();
    let r = || {
        report(vec![metric(
            "e",
            true,
            Verdict::Fail,
            Some(Severity::Hold),
            5000,
        )])
    };
    let d = decide(&c, r(), &state(2, 300));
    assert_eq!(d.action, Action::Hold);
    let mut s = state(2, 300);
    s.hold_seconds = 300;
    assert_eq!(decide(&c, r(), &s).action, Action::Rollback);
}

#[test]
fn several_failures_roll_back_but_non_critical_alone_do_not_block() {
    let c = config();
    let r = report(vec![
        metric("lat", true, Verdict::Fail, Some(Severity::Hold), 5000),
        metric("cpu", false, Verdict::Fail, Some(Severity::Hold), 5000),
    ]);
    assert_eq!(decide(&c, r, &state(2, 10)).action, Action::Rollback);
    let r = report(vec![
        metric("e", true, Verdict::Pass, None, 5000),
        metric("cpu", false, Verdict::Fail, Some(Severity::Rollback), 5000),
    ]);
    let d = decide(&c, r, &state(2, 300));
    assert_eq!(d.action, Action::Advance);
    assert!(d.reason.contains("cpu"), "{}", d.reason);
}

#[test]
fn disabled_auto_rollback_holds_for_an_operator() {
    let mut c = config();
    c.auto_rollback.enabled = false;
    let r = report(vec![metric(
        "e",
        true,
        Verdict::Fail,
        Some(Severity::Rollback),
        5000,
    )]);
    let d = decide(&c, r, &state(2, 30));
    assert_eq!(d.action, Action::Hold);
    assert!(d.requires_approval);
}

#[test]
fn approval_before_full_traffic_when_asked() {
    let mut c = config();
    c.traffic_advancing.requires_approval_before_full_traffic = true;
    let ok = || report(vec![metric("e", true, Verdict::Pass, None, 5000)]);
    assert!(!decide(&c, ok(), &state(1, 300)).requires_approval);
    assert!(decide(&c, ok(), &state(2, 300)).requires_approval);
    c.traffic_advancing.auto_advance_on_pass = false;
    assert!(decide(&c, ok(), &state(1, 300)).requires_approval);
}

#[test]
fn sequential_evidence_leaning_bad_extends_instead_of_advancing_and_times_out_to_rollback() {
    let c = config();
    let leaning = |method: AnalysisMethod, critical: bool| {
        let mut m = metric("e", critical, Verdict::Warning, None, 5000);
        m.method = method;
        report(vec![m])
    };
    let end_of_phase = state(2, 300);
    let d = decide(&c, leaning(AnalysisMethod::Sequential, true), &end_of_phase);
    assert_eq!(d.action, Action::Extend, "{}", d.reason);
    assert!(
        d.reason.contains("lean toward a regression"),
        "{}",
        d.reason
    );
    // A fixed-horizon warning (significant but below the threshold) and a non-critical
    // metric's do not block.
    let d = decide(
        &c,
        leaning(AnalysisMethod::FixedHorizon, true),
        &end_of_phase,
    );
    assert_ne!(d.action, Action::Extend, "{}", d.reason);
    let d = decide(
        &c,
        leaning(AnalysisMethod::Sequential, false),
        &end_of_phase,
    );
    assert_ne!(d.action, Action::Extend, "{}", d.reason);
    // Still leaning at the canary's timeout: never promoted.
    let mut late = end_of_phase;
    late.total_elapsed_seconds = c.timeout_seconds;
    let d = decide(&c, leaning(AnalysisMethod::Sequential, true), &late);
    assert_eq!(d.action, Action::Rollback, "{}", d.reason);
}

#[test]
fn a_live_holdback_keeps_part_of_the_traffic_on_the_baseline_until_promotion() {
    let mut c = CanaryConfig::from_json(include_str!("../../../../examples/demo-config.json"))
        .expect("demo config");
    c.traffic_advancing.live_holdback_percent = 5.0;
    let pass = || report(vec![metric("e", true, Verdict::Pass, None, 5000)]);
    let d = decide(&c, pass(), &state(2, 300));
    assert_eq!(d.action, Action::Advance);
    assert_eq!(d.next_weight, 95.0, "{}", d.reason);
    assert!(d.reason.contains("live holdback of 5%"), "{}", d.reason);
    let d = decide(&c, pass(), &state(3, 300));
    assert_eq!(
        (d.action, d.canary_weight, d.next_weight),
        (Action::Promote, 95.0, 100.0)
    );
    // The final phase has a live baseline beside it.
    assert!(crate::look::baseline_is_live(c.phase_weight(2)));
    c.traffic_advancing.live_holdback_percent = 25.0;
    let e = c.validate().expect_err("too large");
    assert_eq!(e.path, "traffic_advancing.live_holdback_percent");
}
