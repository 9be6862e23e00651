//! Judge classification on controlled data.

use super::*;
use crate::config::CanaryConfig;
use crate::observe::{Observation, SideObservations};
use crate::stats::{Counts, TestKind};

fn config(metric: serde_json::Value) -> CanaryConfig {
    CanaryConfig::from_json(&serde_json::json!({"metrics": [metric]}).to_string()).expect("config")
}

/// A deterministic, smooth sample: `n` quantiles of a log-normal with the given median.
fn lognormal(n: usize, median: f64) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let u = (i as f64 + 0.5) / n as f64;
            // Inverse normal CDF by bisection on erf (good enough for test data).
            let z = statrs::function::erf::erf_inv(2.0 * u - 1.0) * std::f64::consts::SQRT_2;
            median * (0.5 * z).exp()
        })
        .collect()
}

fn sides(name: &str, b: Observation, c: Observation) -> (SideObservations, SideObservations) {
    (
        SideObservations::from([(name.to_string(), b)]),
        SideObservations::from([(name.to_string(), c)]),
    )
}

fn judge_one(c: &CanaryConfig, b: Observation, k: Observation) -> MetricReport {
    let name = c.metrics[0].name.clone();
    let (base, can) = sides(&name, b, k);
    let input = JudgeInput {
        baseline: &base,
        canary: &can,
        canary_share: 0.25,
        baseline_share: 0.75,
        baseline_is_live: true,
        latest: None,
        shift_estimate: true,
        phase_complete: true,
        check_split: true,
    };
    judge(c, &input).metrics.remove(0)
}

fn latency_metric() -> serde_json::Value {
    serde_json::json!({"name": "lat", "type": "histogram", "threshold_percent_increase": 10, "critical": true})
}

#[test]
fn large_shift_fails_at_rollback_tier() {
    let c = config(latency_metric());
    let m = judge_one(
        &c,
        Observation::Samples(lognormal(2000, 40.0)),
        Observation::Samples(lognormal(2000, 80.0)),
    );
    assert_eq!(m.verdict, Verdict::Fail, "{}", m.reason);
    assert_eq!(m.severity, Some(Severity::Rollback));
    let h = m.headline.expect("headline");
    assert!(
        (h.relative - 1.0).abs() < 0.05,
        "about +100 %: {}",
        h.relative
    );
    assert!(m.shift.is_some() && m.power.is_some());
}

#[test]
fn significant_but_small_increase_is_not_a_failure() {
    let c = config(latency_metric());
    let m = judge_one(
        &c,
        Observation::Samples(lognormal(20000, 40.0)),
        Observation::Samples(lognormal(20000, 40.8)),
    );
    let p = m.result.expect("test ran").p_value;
    assert!(
        p < 0.05,
        "the +2 % shift is significant with 20k samples: p = {p}"
    );
    assert_ne!(m.verdict, Verdict::Fail, "{}", m.reason);
    assert!(m.reason.contains("below"), "{}", m.reason);
}

#[test]
fn improvement_passes_and_direction_is_respected() {
    let c = config(latency_metric());
    let m = judge_one(
        &c,
        Observation::Samples(lognormal(2000, 80.0)),
        Observation::Samples(lognormal(2000, 40.0)),
    );
    assert_eq!(m.verdict, Verdict::Pass, "{}", m.reason);

    // Raw values (not per traffic share), so only the direction decides.
    let c = config(serde_json::json!({
        "name": "throughput", "type": "gauge", "threshold_percent_decrease": 10,
        "per_traffic_share": false
    }));
    let m = judge_one(
        &c,
        Observation::Samples(lognormal(200, 100.0)),
        Observation::Samples(lognormal(200, 50.0)),
    );
    assert_eq!(
        m.verdict,
        Verdict::Fail,
        "a drop is worse for lower-is-worse: {}",
        m.reason
    );
}

#[test]
fn per_traffic_share_compares_per_unit_of_traffic() {
    // The canary at 25 % serves a third of the baseline's 75 %: equal per unit of share.
    let c = config(serde_json::json!({
        "name": "invocations", "type": "gauge", "threshold_percent_decrease": 10,
        "per_traffic_share": true
    }));
    let m = judge_one(
        &c,
        Observation::Samples(lognormal(60, 750.0)),
        Observation::Samples(lognormal(60, 250.0)),
    );
    assert_eq!(m.verdict, Verdict::Pass, "{}", m.reason);
    let h = m.headline.expect("headline");
    assert!(h.relative.abs() < 1e-9, "{}", h.relative);
}

#[test]
fn a_volume_metric_is_judged_per_traffic_share_unless_the_config_says_otherwise() {
    // The seed config's `throughput` gauge: the canary at 25 % serves a third of the
    // baseline's volume by design, which alone must not fail it.
    let c = config(serde_json::json!({
        "name": "throughput", "type": "gauge", "threshold_percent_decrease": 10
    }));
    assert!(c.metrics[0].per_traffic_share, "inferred from the name");
    let m = judge_one(
        &c,
        Observation::Samples(lognormal(60, 750.0)),
        Observation::Samples(lognormal(60, 250.0)),
    );
    assert_eq!(m.verdict, Verdict::Pass, "{}", m.reason);
    // Said explicitly, the raw volumes are compared (and the split fails it).
    let raw = config(serde_json::json!({
        "name": "throughput", "type": "gauge", "threshold_percent_decrease": 10,
        "per_traffic_share": false
    }));
    assert!(!raw.metrics[0].per_traffic_share);
    let m = judge_one(
        &raw,
        Observation::Samples(lognormal(60, 750.0)),
        Observation::Samples(lognormal(60, 250.0)),
    );
    assert_eq!(m.verdict, Verdict::Fail, "{}", m.reason);
    // A per-request quantity is no volume, whatever else its name says.
    for name in [
        "request-latency",
        "requests-duration-ms",
        "error-count-rate",
    ] {
        let other = config(serde_json::json!({
            "name": name, "type": "histogram", "threshold_percent_increase": 10
        }));
        assert!(!other.metrics[0].per_traffic_share, "{name}");
    }
    let rps = config(serde_json::json!({
        "name": "requests_per_second", "type": "gauge", "threshold_percent_decrease": 10
    }));
    assert!(rps.metrics[0].per_traffic_share);
}

#[test]
fn counters_fail_on_rate_increase_and_pass_on_no_events() {
    let c = config(serde_json::json!({
        "name": "errors", "type": "counter", "threshold_percent_increase": 5, "critical": true
    }));
    let m = judge_one(
        &c,
        Observation::Counts(Counts {
            events: 4,
            total: 2812,
        }),
        Observation::Counts(Counts {
            events: 91,
            total: 2845,
        }),
    );
    assert_eq!(m.verdict, Verdict::Fail, "{}", m.reason);
    assert_eq!(m.severity, Some(Severity::Rollback));
    let m = judge_one(
        &c,
        Observation::Counts(Counts {
            events: 0,
            total: 2812,
        }),
        Observation::Counts(Counts {
            events: 0,
            total: 2845,
        }),
    );
    assert_eq!(m.verdict, Verdict::Pass, "{}", m.reason);
}

#[test]
fn fisher_past_its_limit_is_answered_by_the_z_test_and_says_so() {
    let c = config(serde_json::json!({
        "name": "conversions", "type": "counter", "statistical_test": "fisher-exact",
        "direction": "lower-is-worse", "critical": true
    }));
    let count = |events, total| Observation::Counts(Counts { events, total });
    // Small tables: Fisher runs.
    let m = judge_one(&c, count(300, 3000), count(200, 3000));
    assert_eq!(m.result.map(|r| r.test), Some(TestKind::FisherExact));
    // Both margins in the millions: the z-test answers, and the report names it.
    let m = judge_one(&c, count(3_000_000, 6_000_000), count(2_900_000, 6_000_000));
    let r = m.result.expect("a test ran");
    assert_eq!(r.test, TestKind::TwoProportionZ);
    assert_eq!(m.verdict, Verdict::Fail, "{}", m.reason);
}

#[test]
fn absolute_threshold_breach_fails_even_without_significance() {
    let c = config(serde_json::json!({
        "name": "errors", "type": "counter", "absolute_threshold": 1.0, "critical": true
    }));
    let m = judge_one(
        &c,
        Observation::Counts(Counts {
            events: 2,
            total: 100,
        }),
        Observation::Counts(Counts {
            events: 2,
            total: 100,
        }),
    );
    assert_eq!(m.verdict, Verdict::Fail, "{}", m.reason);
    assert!(m.reason.contains("absolute threshold"), "{}", m.reason);
}

#[test]
fn missing_or_empty_side_is_no_data() {
    let c = config(latency_metric());
    let m = judge_one(
        &c,
        Observation::Samples(vec![]),
        Observation::Samples(lognormal(10, 1.0)),
    );
    assert_eq!(m.verdict, Verdict::NoData);
    assert!(m.reason.contains("baseline"), "{}", m.reason);
    let empty = SideObservations::new();
    let input = JudgeInput {
        baseline: &empty,
        canary: &empty,
        canary_share: 0.05,
        baseline_share: 0.95,
        baseline_is_live: true,
        latest: None,
        shift_estimate: true,
        phase_complete: true,
        check_split: true,
    };
    assert_eq!(judge(&c, &input).metrics[0].verdict, Verdict::NoData);
}

mod stopped_reporting {
    //! A critical metric that stops reporting (what the CloudWatch adapter delivers when a
    //! version's Errors or Invocations query returns no datapoints) never lets a canary be
    //! promoted on its earlier evidence.
    use crate::backtest::Backtest;
    use crate::config::CanaryConfig;
    use crate::controller::Outcome;
    use crate::policy::Action;
    use crate::sim::{Fleet, MetricNames, Scenario};

    /// A recorded timeline replayed by the backtest, one interval a minute at the weight
    /// the canary is at, until it ends or its timeout has passed.
    fn run(seed: u64, drop_errors_after_first: bool) -> (Option<Outcome>, Vec<Action>) {
        let c = CanaryConfig::from_json(include_str!("../../../../examples/demo-config.json"))
            .expect("config");
        let names = MetricNames::for_config(&c).expect("names");
        let errors = names.errors.clone();
        let mut fleet = Fleet::new(
            Scenario::healthy(50.0).with_regression(1.0, 3.0),
            names,
            seed,
        );
        let mut b = Backtest::new();
        let mut actions = Vec::new();
        let mut at = 0;
        while b.outcome().is_none() && at <= c.timeout_seconds {
            at += 60;
            let mut interval = fleet.interval(at, 60, b.weight(&c));
            if drop_errors_after_first && at > 60 {
                interval.canary.remove(&errors);
            }
            if let Some(look) = b.step(&c, &interval) {
                actions.push(look.action);
            }
        }
        (b.outcome(), actions)
    }

    #[test]
    fn a_canary_whose_errors_stop_reporting_never_advances() {
        for seed in 0..5 {
            let full = run(seed, false);
            assert_eq!(
                full.0,
                Some(Outcome::RolledBack),
                "seed {seed}: full data {:?}",
                full.1
            );
            let (outcome, actions) = run(seed, true);
            assert_ne!(outcome, Some(Outcome::Promoted), "seed {seed}");
            assert!(
                !actions.contains(&Action::Advance) && !actions.contains(&Action::Promote),
                "seed {seed}: advanced on missing errors: {actions:?}"
            );
            assert!(
                actions.contains(&Action::Extend),
                "seed {seed}: {actions:?}"
            );
        }
    }
}

mod sample_ratio {
    //! The realised split against the alias weight.
    use super::*;

    fn counts(canary_total: u64, baseline_total: u64) -> JudgeReport {
        let c = config(serde_json::json!({
            "name": "errors", "type": "counter", "threshold_percent_increase": 5, "critical": true
        }));
        let (base, can) = sides(
            "errors",
            Observation::Counts(Counts {
                events: 1,
                total: baseline_total,
            }),
            Observation::Counts(Counts {
                events: 0,
                total: canary_total,
            }),
        );
        let input = JudgeInput {
            baseline: &base,
            canary: &can,
            canary_share: 0.05,
            baseline_share: 0.95,
            baseline_is_live: true,
            latest: None,
            shift_estimate: false,
            phase_complete: false,
            check_split: true,
        };
        judge(&c, &input)
    }

    #[test]
    fn a_split_near_the_weight_passes_and_a_far_one_is_flagged() {
        // 5 % of 20,000 requests is 1,000; Poisson noise is about 31.
        assert_eq!(counts(1_000, 19_000).sample_ratio_mismatch, None);
        assert_eq!(counts(1_080, 18_920).sample_ratio_mismatch, None);
        // Straddling a shift: off by less than half the share is not a routing problem.
        assert_eq!(counts(600, 19_400).sample_ratio_mismatch, None);
        let none = counts(0, 20_000)
            .sample_ratio_mismatch
            .expect("no canary traffic");
        assert_eq!((none.canary, none.baseline), (0, 20_000));
        assert!((none.expected_share - 0.05).abs() < 1e-12);
        let double = counts(2_500, 17_500)
            .sample_ratio_mismatch
            .expect("too much");
        assert!(double.z > 5.0 && (double.observed_share - 0.125).abs() < 1e-12);
        // Too few requests say nothing.
        assert_eq!(counts(0, 150).sample_ratio_mismatch, None);
    }

    #[test]
    fn a_wrong_split_holds_and_never_advances() {
        let c = CanaryConfig::from_json(include_str!("../../../../examples/demo-config.json"))
            .expect("config");
        let mut report = counts(0, 20_000);
        report.metrics.clear();
        let state = crate::policy::PhaseState {
            phase: 1,
            elapsed_in_phase_seconds: 10_000,
            total_elapsed_seconds: 600,
            hold_seconds: 0,
        };
        let d = crate::policy::decide(&c, report.clone(), &state);
        assert_eq!(d.action, crate::policy::Action::Hold, "{}", d.reason);
        assert!(d.reason.contains("sample-ratio mismatch"), "{}", d.reason);
        let late = crate::policy::PhaseState {
            total_elapsed_seconds: c.timeout_seconds,
            ..state
        };
        let d = crate::policy::decide(&c, report, &late);
        assert_eq!(d.action, crate::policy::Action::Rollback, "{}", d.reason);
    }
}

mod periods {
    //! Per-period summaries (CloudWatch's statistics): the period is the unit.
    use super::*;
    use crate::config::AnalysisMethod;
    use crate::judge::sequential::SequentialState;
    use crate::observe::{Periods, summary_percentiles};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn sequential_config() -> CanaryConfig {
        let mut c = config(latency_metric());
        c.analysis.method = AnalysisMethod::Sequential;
        c
    }

    /// One period of `n` log-normal values (median `median`, sigma 0.9) as a summary.
    fn period(rng: &mut StdRng, start: i64, n: usize, median: f64) -> Observation {
        let v: Vec<f64> = (0..n)
            .map(|_| {
                let (u1, u2): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random());
                let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                median * (0.9 * z).exp()
            })
            .collect();
        let qs = summary_percentiles(&[50.0, 95.0, 99.0]);
        Observation::Periods(Periods {
            periods: vec![Periods::summarise(start, &v, &qs).expect("values")],
        })
    }

    /// Runs `looks` one-minute looks at 5 % and returns the reports.
    fn run(seed: u64, looks: i64, canary_median: f64, warm_first: bool) -> Vec<MetricReport> {
        let c = sequential_config();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut state = SequentialState::default();
        let mut all = SideObservations::new();
        let (mut phase_b, mut phase_c) = (SideObservations::new(), SideObservations::new());
        let mut out = Vec::new();
        for t in 0..looks {
            let (b, k) = sides(
                "lat",
                period(&mut rng, t * 60, 2850, 40.0),
                period(&mut rng, t * 60, 150, canary_median),
            );
            crate::look::merge(&mut all, &b);
            crate::look::merge(&mut phase_b, &b);
            crate::look::merge(&mut phase_c, &k);
            let input = JudgeInput {
                baseline: &phase_b,
                canary: &phase_c,
                canary_share: 0.05,
                baseline_share: 0.95,
                baseline_is_live: true,
                latest: Some(Latest {
                    baseline: &b,
                    canary: &k,
                    baseline_all: &all,
                    warming_up: warm_first && t == 0,
                }),
                shift_estimate: false,
                phase_complete: false,
                check_split: false,
            };
            out.push(judge_with_state(&c, &input, &mut state).metrics.remove(0));
        }
        out
    }

    #[test]
    fn a_median_two_and_a_half_times_higher_is_a_rollback_at_the_first_period() {
        // In warm-up, too: the median still counts.
        let r = run(1, 1, 100.0, true);
        assert_eq!(r[0].severity, Some(Severity::Rollback), "{}", r[0].reason);
        assert_eq!(r[0].test, TestKind::PeriodPercentiles);
        assert!(r[0].guarantee.contains("per-period"), "{}", r[0].guarantee);
        assert!(r[0].guarantee.contains("warm-up"), "{}", r[0].guarantee);
    }

    #[test]
    fn healthy_streams_rarely_reach_the_warning_tier() {
        // 200 A/A streams of 20 periods: the anytime p-value may fall below 0.01 in at most
        // 1 % of them (expected ≤ 2); 6 bounds a binomial(200, 0.01) tail at < 0.5 %.
        let failed = (0..200)
            .filter(|&s| {
                run(100 + s, 20, 40.0, false)
                    .iter()
                    .any(|m| m.verdict == Verdict::Fail)
            })
            .count();
        assert!(failed <= 6, "{failed} of 200 healthy streams failed");
    }

    #[test]
    fn a_moderate_shift_is_found_within_twenty_periods() {
        let found = (0..20)
            .filter(|&s| {
                run(500 + s, 20, 40.0 * 1.3, false)
                    .iter()
                    .any(|m| m.severity == Some(Severity::Rollback))
            })
            .count();
        assert!(found >= 18, "{found} of 20");
    }

    #[test]
    fn summaries_parse_strictly() {
        let c = config(latency_metric());
        let ok = r#"{"canary": {"lat": {"periods": [{"start": 0, "n": 150, "stats": {"p50": 40, "p95": 180}}]}}}"#;
        assert!(crate::observe::Window::from_json(ok, &c).is_ok());
        for (bad, path) in [
            (
                r#"{"canary": {"lat": {"periods": [{"start": 0, "n": 150, "stats": {"p50": 40, "p95": 30}}]}}}"#,
                "canary.lat.periods[0].stats.p95",
            ),
            (
                r#"{"canary": {"lat": {"periods": [{"start": 0, "n": 0, "stats": {"p50": 40}}]}}}"#,
                "canary.lat.periods[0].n",
            ),
            (
                r#"{"canary": {"lat": {"periods": [{"start": 0, "n": 5, "stats": {"median": 40}}]}}}"#,
                "canary.lat.periods[0].stats.median",
            ),
            (
                r#"{"canary": {"lat": {"periods": [{"start": 0, "n": 5, "stats": {"p50": 1}}, {"start": 0, "n": 5, "stats": {"p50": 1}}]}}}"#,
                "canary.lat.periods[1].start",
            ),
        ] {
            let e = crate::observe::Window::from_json(bad, &c).expect_err(bad);
            assert_eq!(e.path, path, "{e}");
        }
    }
}

#[test]
fn a_hold_follows_the_evidence_now_and_clears_when_it_fades() {
    let c = config(latency_metric());
    let th = &c.statistical_thresholds;
    let m = &c.metrics[0];
    let base = judge_one(
        &c,
        Observation::Samples(lognormal(200, 40.0)),
        Observation::Samples(lognormal(200, 40.0)),
    );
    let ev = |p_value: f64, e_value: f64| sequential::SequentialEvidence {
        p_value,
        e_value,
        stale_baseline: false,
        description: "test".into(),
    };
    let mut held = base.clone();
    evidence::classify_sequential(m, th, &mut held, &ev(1.0 / 150.0, 150.0));
    assert_eq!(held.severity, Some(Severity::Hold), "{}", held.reason);
    let mut faded = base.clone();
    evidence::classify_sequential(m, th, &mut faded, &ev(1.0 / 150.0, 2.0));
    assert_eq!(faded.verdict, Verdict::Pass, "{}", faded.reason);
    assert!(faded.reason.contains("faded"), "{}", faded.reason);
    // The rollback tier is reached once and stays: Ville's bound is on the running maximum.
    let mut rolled = base;
    evidence::classify_sequential(m, th, &mut rolled, &ev(1e-4, 1.5));
    assert_eq!(
        rolled.severity,
        Some(Severity::Rollback),
        "{}",
        rolled.reason
    );
}
