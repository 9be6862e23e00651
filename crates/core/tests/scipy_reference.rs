//! Every statistical test against reference values computed by scipy
//! (`tests/fixtures/gen_stats_fixtures.py` wrote `stats_reference.json`).
//!
//! Agreement is required to 1e-6 relative. p-values below 1e-300 are compared with an
//! absolute floor of 1e-300 because both sides are then underflowing to zero at different
//! points; no fixture currently needs it, but the floor keeps the check meaningful if one does.

use std::collections::BTreeMap;

use canary_gate_core::stats::{
    self, Alternative, Counts, TestResult, hodges_lehmann, ks_2samp, mann_whitney_u, percentile,
};
use serde_json::Value;

const REL: f64 = 1e-6;
const ABS_FLOOR: f64 = 1e-300;

fn fixtures() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/stats_reference.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture file"))
        .expect("fixture JSON")
}

fn samples(f: &Value) -> BTreeMap<String, Vec<f64>> {
    serde_json::from_value(f["samples"].clone()).expect("samples")
}

fn alt(v: &Value) -> Alternative {
    match v.as_str().expect("alternative") {
        "greater" => Alternative::Greater,
        "less" => Alternative::Less,
        _ => Alternative::TwoSided,
    }
}

fn close(what: &str, got: f64, want: f64, worst: &mut f64) {
    let err = if want.abs() < ABS_FLOOR {
        (got - want).abs()
    } else {
        ((got - want) / want).abs()
    };
    *worst = worst.max(if want.abs() < ABS_FLOOR { 0.0 } else { err });
    assert!(
        err <= REL || (got - want).abs() <= ABS_FLOOR,
        "{what}: got {got:e}, scipy {want:e} (relative error {err:e})"
    );
}

fn counts(v: &Value) -> Counts {
    Counts {
        events: v[0].as_u64().expect("events"),
        total: v[1].as_u64().expect("total"),
    }
}

fn check_result(what: &str, r: &TestResult, case: &Value, worst: &mut f64) {
    close(
        &format!("{what} statistic"),
        r.statistic,
        case["statistic"].as_f64().expect("statistic"),
        worst,
    );
    close(
        &format!("{what} p-value"),
        r.p_value,
        case["p_value"].as_f64().expect("p"),
        worst,
    );
    if let Some(e) = case["effect_size"].as_f64() {
        close(
            &format!("{what} effect size"),
            r.effect_size.expect("effect").value,
            e,
            worst,
        );
    }
}

#[test]
fn mann_whitney_matches_scipy() {
    let f = fixtures();
    let s = samples(&f);
    let mut worst = 0.0;
    let cases = f["mann_whitney_u"].as_array().expect("cases");
    for case in cases {
        let (a, b) = (
            case["canary"].as_str().expect("a"),
            case["baseline"].as_str().expect("b"),
        );
        let r = mann_whitney_u(&s[a], &s[b], alt(&case["alternative"])).expect("runs");
        check_result(
            &format!("MWU {a} vs {b} {}", case["alternative"]),
            &r,
            case,
            &mut worst,
        );
    }
    assert!(cases.len() >= 39);
    eprintln!(
        "Mann-Whitney: {} cases, worst relative error {worst:e}",
        cases.len()
    );
}

#[test]
fn kolmogorov_smirnov_matches_scipy() {
    let f = fixtures();
    let s = samples(&f);
    let mut worst = 0.0;
    let cases = f["kolmogorov_smirnov"].as_array().expect("cases");
    for case in cases {
        let (a, b) = (
            case["canary"].as_str().expect("a"),
            case["baseline"].as_str().expect("b"),
        );
        let r = ks_2samp(&s[a], &s[b], alt(&case["alternative"])).expect("runs");
        check_result(
            &format!("KS {a} vs {b} {}", case["alternative"]),
            &r,
            case,
            &mut worst,
        );
    }
    assert!(cases.len() >= 51);
    eprintln!(
        "Kolmogorov-Smirnov: {} cases, worst relative error {worst:e}",
        cases.len()
    );
}

#[test]
fn count_tests_match_scipy() {
    let f = fixtures();
    let mut worst = 0.0;
    for case in f["chi_square"].as_array().expect("cases") {
        let r = stats::chi_square_2x2(counts(&case["canary"]), counts(&case["baseline"]));
        if case["undefined"].as_bool() == Some(true) {
            assert!(r.is_err(), "chi-square {case} must be undefined");
        } else {
            check_result(&format!("chi2 {case}"), &r.expect("runs"), case, &mut worst);
        }
    }
    for case in f["two_proportion_z"].as_array().expect("cases") {
        let r = stats::two_proportion_z(
            counts(&case["canary"]),
            counts(&case["baseline"]),
            alt(&case["alternative"]),
        );
        if case["undefined"].as_bool() == Some(true) {
            assert!(r.is_err(), "z {case} must be undefined");
        } else {
            check_result(&format!("z {case}"), &r.expect("runs"), case, &mut worst);
        }
    }
    for case in f["fisher_exact"].as_array().expect("cases") {
        let r = stats::fisher_exact(
            counts(&case["canary"]),
            counts(&case["baseline"]),
            alt(&case["alternative"]),
        )
        .expect("runs");
        close(
            &format!("fisher p {case}"),
            r.p_value,
            case["p_value"].as_f64().expect("p"),
            &mut worst,
        );
        match &case["statistic"] {
            Value::Null => assert!(r.statistic.is_nan(), "{case}"),
            Value::String(s) if s == "inf" => assert!(r.statistic.is_infinite(), "{case}"),
            v => close(
                &format!("fisher odds {case}"),
                r.statistic,
                v.as_f64().expect("odds"),
                &mut worst,
            ),
        }
    }
    eprintln!("count tests: worst relative error {worst:e}");
}

#[test]
fn hodges_lehmann_and_percentiles_match_numpy() {
    let f = fixtures();
    let s = samples(&f);
    let mut worst = 0.0;
    for case in f["hodges_lehmann"].as_array().expect("cases") {
        let (a, b) = (
            case["canary"].as_str().expect("a"),
            case["baseline"].as_str().expect("b"),
        );
        let r = hodges_lehmann(&s[a], &s[b], 0.95).expect("runs");
        close(
            &format!("HL {a}"),
            r.estimate,
            case["estimate"].as_f64().expect("est"),
            &mut worst,
        );
        close(
            &format!("HL lower {a}"),
            r.lower,
            case["lower"].as_f64().expect("lo"),
            &mut worst,
        );
        close(
            &format!("HL upper {a}"),
            r.upper,
            case["upper"].as_f64().expect("hi"),
            &mut worst,
        );
    }
    for case in f["percentiles"].as_array().expect("cases") {
        let mut x = s[case["sample"].as_str().expect("sample")].clone();
        x.sort_by(f64::total_cmp);
        for (q, v) in case["q"]
            .as_array()
            .expect("q")
            .iter()
            .zip(case["values"].as_array().expect("v"))
        {
            close(
                "percentile",
                percentile(&x, q.as_f64().expect("q")),
                v.as_f64().expect("v"),
                &mut worst,
            );
        }
    }
}

#[test]
fn order_statistic_comparisons_match_scipy() {
    let f = fixtures();
    let cases = f["order_statistic_exceeds"].as_array().expect("cases");
    assert!(cases.len() >= 10, "fixture has the order-statistic cases");
    let mut worst = 0.0_f64;
    for case in cases {
        let n = |k: &str| case[k].as_u64().expect(k);
        let got = stats::order_statistic_exceeds(n("nc"), n("kc"), n("nb"), n("kb"));
        close(
            &format!("order statistics {case}"),
            got,
            case["p"].as_f64().expect("p"),
            &mut worst,
        );
    }
}
