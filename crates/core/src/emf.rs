//! CloudWatch Embedded Metric Format lines about canary-gate's own decisions, so users can
//! graph and alarm on them: `CanaryDecision` (count, by action) and, per compared metric,
//! its p-value and effect size. Printed to standard output by the Lambda functions, where
//! CloudWatch Logs turns them into metrics.

use serde_json::{Value, json};

use crate::policy::Decision;

/// The namespace of canary-gate's own metrics.
pub const NAMESPACE: &str = "CanaryGate";

/// EMF records for one decision taken at `timestamp_ms` (Unix epoch milliseconds).
pub fn decision_records(
    d: &Decision,
    function: &str,
    alias: &str,
    timestamp_ms: i64,
) -> Vec<Value> {
    let mut out = vec![json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function", "Alias", "Action"], ["Function", "Alias"]],
                "Metrics": [{"Name": "CanaryDecision", "Unit": "Count"}, {"Name": "CanaryWeight", "Unit": "Percent"}]
            }]
        },
        "Function": function,
        "Alias": alias,
        "Action": d.action.as_str(),
        "Phase": d.phase,
        "CanaryDecision": 1,
        "CanaryWeight": d.next_weight,
    })];
    for m in &d.report.metrics {
        let Some(r) = m.result else { continue };
        let mut rec = json!({
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [["Function", "Alias", "Metric"]],
                    "Metrics": [{"Name": "PValue", "Unit": "None"}, {"Name": "EffectSize", "Unit": "None"}]
                }]
            },
            "Function": function,
            "Alias": alias,
            "Metric": m.name,
            "Verdict": format!("{:?}", m.verdict).to_lowercase(),
            "PValue": r.p_value,
        });
        match r.effect_size {
            Some(e) if e.value.is_finite() => rec["EffectSize"] = json!(e.value),
            // EMF needs every declared metric present; drop the declaration instead.
            _ => {
                rec["_aws"]["CloudWatchMetrics"][0]["Metrics"] =
                    json!([{"Name": "PValue", "Unit": "None"}])
            }
        }
        out.push(rec);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CanaryConfig;
    use crate::controller::{Interval, Replay};
    use crate::sim::{Fleet, MetricNames, Scenario};

    #[test]
    fn records_declare_every_metric_they_carry() {
        let c = CanaryConfig::from_json(include_str!("../../../examples/demo-config.json"))
            .expect("config");
        let mut fleet = Fleet::new(
            Scenario::healthy(50.0),
            MetricNames {
                latency: "latency".into(),
                errors: "errors".into(),
            },
            1,
        );
        let interval: Interval = fleet.interval(60, 60, 5.0);
        let d = Replay::new().step(&c, &interval).expect("decision");
        let recs = decision_records(&d, "orders-api", "live", 1_700_000_000_000);
        assert_eq!(recs.len(), 3, "one decision record and one per metric");
        for r in &recs {
            let declared = &r["_aws"]["CloudWatchMetrics"][0];
            for m in declared["Metrics"].as_array().expect("metrics") {
                let name = m["Name"].as_str().expect("name");
                assert!(r[name].is_number(), "{name} declared but missing in {r}");
            }
            for set in declared["Dimensions"].as_array().expect("dims") {
                for dim in set.as_array().expect("dim set") {
                    assert!(
                        r[dim.as_str().expect("dim")].is_string()
                            || r[dim.as_str().expect("dim")].is_number()
                    );
                }
            }
        }
        assert_eq!(recs[0]["Action"], "continue");
        assert_eq!(recs[0]["CanaryDecision"], 1);
    }
}
