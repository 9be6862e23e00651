//! Tests of configuration parsing, defaults and validation errors.

use super::*;

const SEED: &str = include_str!("../../../../examples/canary-monitor-hook.json");

fn minimal() -> serde_json::Value {
    serde_json::json!({
        "metrics": [{"name": "latency", "type": "histogram"}]
    })
}

fn err_of(v: serde_json::Value) -> ConfigError {
    match CanaryConfig::from_json(&v.to_string()) {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e,
    }
}

#[test]
fn seed_config_is_accepted_as_written() {
    let c = CanaryConfig::from_json(SEED).expect("seed config parses");
    assert_eq!(c.canary_phases.len(), 3);
    assert_eq!(c.canary_phases[1].traffic_percentage, 25.0);
    assert_eq!(c.canary_phases[2].min_samples, 1000);
    assert_eq!(c.metrics.len(), 4);
    let err = c.metric("error-rate").expect("error-rate metric");
    assert_eq!(err.kind, MetricKind::Counter);
    assert_eq!(err.test(), TestKind::ChiSquare);
    assert!(err.critical);
    let throughput = c.metric("throughput").expect("throughput metric");
    assert_eq!(throughput.direction(), Direction::LowerIsWorse);
    assert_eq!(throughput.practical_threshold(false), 0.1);
    assert_eq!(c.statistical_thresholds.rollback_p_value, 0.001);
    assert_eq!(c.traffic_advancing.hold_before_full_traffic, 120);
    assert!(c.auto_rollback.requires_ops_confirmation);
    assert_eq!(
        c.notifications.on_rollback,
        vec!["slack-ops", "email-team-lead"]
    );
    assert!(c.target.is_none());
}

#[test]
fn defaults_are_the_documented_ones() {
    let c = CanaryConfig::from_json(&minimal().to_string()).expect("minimal config");
    assert!(c.enabled);
    assert_eq!(c.timeout_seconds, 1800);
    let weights: Vec<f64> = c
        .canary_phases
        .iter()
        .map(|p| p.traffic_percentage)
        .collect();
    assert_eq!(weights, vec![5.0, 25.0, 100.0]);
    assert!(
        c.canary_phases
            .iter()
            .all(|p| p.duration_seconds == 300 && p.min_samples == 100)
    );
    assert_eq!(c.statistical_thresholds, StatisticalThresholds::default());
    assert_eq!(c.statistical_thresholds.pass_p_value, 0.05);
    assert_eq!(c.analysis.look_interval_seconds, 60);
    let m = &c.metrics[0];
    assert_eq!(m.percentiles(), vec![50.0, 95.0, 99.0]);
    assert_eq!(m.test(), TestKind::MannWhitneyU);
    assert_eq!(m.direction(), Direction::HigherIsWorse);
    assert!(!m.critical);
    assert!(c.auto_rollback.enabled && !c.auto_rollback.requires_ops_confirmation);
}

#[test]
fn unknown_field_names_its_path() {
    let mut v = minimal();
    v["metrics"][0]["thresold_percent_increase"] = 10.into();
    let e = err_of(v);
    assert_eq!(e.path, "metrics[0].thresold_percent_increase");
    assert!(e.message.contains("thresold_percent_increase"), "{e}");
}

#[test]
fn unknown_top_level_field_is_rejected() {
    let mut v = minimal();
    v["canary_phasez"] = serde_json::json!([]);
    let e = err_of(v);
    assert_eq!(e.path, "canary_phasez");
    assert!(e.message.contains("unknown field"), "{e}");
}

#[test]
fn wrong_type_names_its_path() {
    let mut v = minimal();
    v["statistical_thresholds"] = serde_json::json!({"pass_p_value": "high"});
    let e = err_of(v);
    assert_eq!(e.path, "statistical_thresholds.pass_p_value");
}

#[test]
fn traffic_must_increase() {
    let mut v = minimal();
    v["canary_phases"] = serde_json::json!([
        {"traffic_percentage": 25}, {"traffic_percentage": 10}
    ]);
    let e = err_of(v);
    assert_eq!(e.path, "canary_phases[1].traffic_percentage");
    assert!(e.message.contains("increase"), "{e}");
}

#[test]
fn weights_outside_0_to_100_are_rejected() {
    for w in [0.0, -5.0, 100.5] {
        let mut v = minimal();
        v["canary_phases"] = serde_json::json!([{"traffic_percentage": w}]);
        let e = err_of(v);
        assert_eq!(e.path, "canary_phases[0].traffic_percentage", "weight {w}");
    }
}

#[test]
fn p_value_tiers_out_of_order_are_rejected() {
    let mut v = minimal();
    v["statistical_thresholds"] =
        serde_json::json!({"pass_p_value": 0.01, "warning_p_value": 0.05});
    let e = err_of(v);
    assert_eq!(e.path, "statistical_thresholds.warning_p_value");
    assert!(e.message.contains("out of order"), "{e}");

    let mut v = minimal();
    v["statistical_thresholds"] = serde_json::json!({"rollback_p_value": 0.02});
    assert_eq!(err_of(v).path, "statistical_thresholds.rollback_p_value");
}

#[test]
fn test_must_fit_metric_type() {
    let mut v = minimal();
    v["metrics"] = serde_json::json!([
        {"name": "latency", "type": "histogram"},
        {"name": "errors", "type": "counter", "statistical_test": "mann-whitney-u"}
    ]);
    let e = err_of(v);
    assert_eq!(e.path, "metrics[1].statistical_test");
    assert!(e.message.contains("counter"), "{e}");

    let mut v = minimal();
    v["metrics"][0]["statistical_test"] = "fisher-exact".into();
    assert_eq!(err_of(v).path, "metrics[0].statistical_test");
}

#[test]
fn canary_version_equal_to_baseline_is_rejected() {
    let mut v = minimal();
    v["target"] = serde_json::json!({
        "function_name": "orders-api", "alias": "live",
        "baseline_version": "41", "canary_version": "41"
    });
    let e = err_of(v);
    assert_eq!(e.path, "target.canary_version");
    assert!(e.message.contains("baseline_version"), "{e}");
}

#[test]
fn duplicate_metric_names_and_bad_percentiles_are_rejected() {
    let mut v = minimal();
    v["metrics"] = serde_json::json!([
        {"name": "latency", "type": "histogram"}, {"name": "latency", "type": "gauge"}
    ]);
    assert_eq!(err_of(v).path, "metrics[1].name");

    let mut v = minimal();
    v["metrics"][0]["percentiles"] = serde_json::json!([50, 100]);
    assert_eq!(err_of(v).path, "metrics[0].percentiles[1]");
}

#[test]
fn zero_min_samples_and_empty_metrics_are_rejected() {
    let mut v = minimal();
    v["canary_phases"] = serde_json::json!([{"traffic_percentage": 100, "min_samples": 0}]);
    assert_eq!(err_of(v).path, "canary_phases[0].min_samples");

    let v = serde_json::json!({"metrics": []});
    assert_eq!(err_of(v).path, "metrics");

    // The approval wait's timeout: Step Functions needs 1..=99999999 seconds.
    for bad in [0_u64, 100_000_000] {
        let mut v = minimal();
        v["auto_rollback"] = serde_json::json!({"rollback_timeout_seconds": bad});
        assert_eq!(err_of(v).path, "auto_rollback.rollback_timeout_seconds");
    }
}

#[test]
fn sources_must_fit_the_metric_type() {
    let mut v = minimal();
    v["metrics"][0]["source"] = serde_json::json!({"lambda": {"metric": "Errors"}});
    let e = err_of(v);
    assert_eq!(e.path, "metrics[0].source");

    let mut v = minimal();
    v["metrics"][0]["source"] =
        serde_json::json!({"lambda": {"metric": "Duration", "per_invocation": true}});
    let c = CanaryConfig::from_json(&v.to_string()).expect("valid lambda source");
    assert!(matches!(c.metrics[0].source, Some(MetricSource::Lambda(_))));
}

#[test]
fn counters_need_events_and_totals_from_their_source() {
    let mut v = minimal();
    v["metrics"] = serde_json::json!([{
        "name": "orders", "type": "counter",
        "source": {"cloudwatch": {"namespace": "Shop", "metric_name": "Orders"}}
    }]);
    let e = err_of(v);
    assert_eq!(e.path, "metrics[0].source");
    assert!(e.message.contains("ratio"), "{e}");
}

#[test]
fn two_alias_routing_needs_a_canary_alias() {
    let mut v = minimal();
    v["target"] = serde_json::json!({
        "function_name": "orders-api", "alias": "live", "routing": "two-aliases",
        "baseline_version": "41", "canary_version": "42"
    });
    assert_eq!(err_of(v).path, "target.canary_alias");
}

#[test]
fn schema_describes_the_config() {
    let schema = CanaryConfig::json_schema();
    let text = schema.to_string();
    for field in [
        "canary_phases",
        "statistical_thresholds",
        "min_effect_size",
        "target",
    ] {
        assert!(text.contains(field), "schema lacks {field}");
    }
}

#[test]
fn post_promotion_soak_defaults_to_an_hour_and_is_bounded() {
    let c = CanaryConfig::from_json(&minimal().to_string()).expect("minimal");
    assert_eq!(c.post_promotion_soak_seconds, 3600);
    let mut off = minimal();
    off["post_promotion_soak_seconds"] = 0.into();
    let c = CanaryConfig::from_json(&off.to_string()).expect("0 turns the soak off");
    assert_eq!(c.post_promotion_soak_seconds, 0);
    for bad in [30, 8 * 24 * 3600] {
        let mut v = minimal();
        v["post_promotion_soak_seconds"] = bad.into();
        let e = err_of(v);
        assert_eq!(e.path, "post_promotion_soak_seconds");
        assert!(e.message.contains(&bad.to_string()), "{e}");
    }
    let mut v = minimal();
    v["post_promotion_soak_seconds"] = (-5).into();
    assert_eq!(err_of(v).path, "post_promotion_soak_seconds");
    let schema = CanaryConfig::json_schema();
    let doc = schema["properties"]["post_promotion_soak_seconds"]["description"]
        .as_str()
        .expect("documented in the schema");
    assert!(doc.contains("Default: 3600"), "{doc}");
}
