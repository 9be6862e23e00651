//! Which `GetMetricData` queries a config needs, for both sides: the routing's dimensions for
//! the AWS/Lambda shorthands, the version dimension for custom metrics, and the role each
//! query's values play (events, total, one percentile statistic, plain samples).

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use canary_gate_core::config::{
    CanaryConfig, CloudWatchMetric, LambdaStatistic, MetricConfig, MetricSource, Routing, Target,
};
use canary_gate_core::observe::{key_of_percentile, summary_percentiles};

/// Which side a query serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    Baseline,
    Canary,
}

/// What a query's values become.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Role {
    Events,
    Total,
    /// Added to the total (throttled requests never count as invocations).
    ExtraTotal,
    Samples,
    /// The period's sample count (`SampleCount`).
    Count,
    /// One percentile statistic, by its stat key (`p95`).
    Percentile(String),
}

#[derive(Debug, Clone)]
pub(super) struct Query {
    pub(super) metric: String,
    pub(super) side: Side,
    pub(super) role: Role,
    pub(super) namespace: String,
    pub(super) name: String,
    pub(super) dimensions: Vec<(String, String)>,
    pub(super) stat: String,
}

impl Query {
    /// The query as an error message names it: the metric, the side and what was asked.
    pub(super) fn describe(&self) -> String {
        let side = match self.side {
            Side::Baseline => "baseline",
            Side::Canary => "canary",
        };
        format!(
            "metric `{}` ({side}: {}/{} {})",
            self.metric, self.namespace, self.name, self.stat
        )
    }
}

/// Whether a metric is read from `REPORT` lines instead of `GetMetricData`.
pub(super) fn per_invocation(m: &MetricConfig) -> bool {
    matches!(
        &m.source,
        Some(MetricSource::Lambda(l)) if l.per_invocation && l.metric == LambdaStatistic::Duration
    )
}

fn lambda_dimensions(target: &Target, side: Side) -> Vec<(String, String)> {
    let f = &target.function_name;
    match (target.routing, side) {
        (Routing::WeightedAlias, s) => {
            let version = if s == Side::Canary {
                &target.canary_version
            } else {
                &target.baseline_version
            };
            vec![
                ("FunctionName".into(), f.clone()),
                ("Resource".into(), format!("{f}:{}", target.alias)),
                ("ExecutedVersion".into(), version.clone()),
            ]
        }
        (Routing::TwoAliases, Side::Baseline) => {
            vec![
                ("FunctionName".into(), f.clone()),
                ("Resource".into(), format!("{f}:{}", target.alias)),
            ]
        }
        (Routing::TwoAliases, Side::Canary) => {
            let alias = target.canary_alias.clone().unwrap_or_default();
            vec![
                ("FunctionName".into(), f.clone()),
                ("Resource".into(), format!("{f}:{alias}")),
            ]
        }
    }
}

fn custom_dimensions(m: &CloudWatchMetric, target: &Target, side: Side) -> Vec<(String, String)> {
    let version = if side == Side::Canary {
        &target.canary_version
    } else {
        &target.baseline_version
    };
    let mut d: Vec<(String, String)> = m
        .dimensions
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    d.push((m.version_dimension.clone(), version.clone()));
    d
}

/// The queries a config needs, both sides.
pub(super) fn plan(config: &CanaryConfig, target: &Target) -> Vec<Query> {
    let mut out = Vec::new();
    for m in &config.metrics {
        let Some(source) = &m.source else { continue };
        for side in [Side::Baseline, Side::Canary] {
            let q =
                |role: Role, ns: &str, name: &str, dims: Vec<(String, String)>, stat: &str| Query {
                    metric: m.name.clone(),
                    side,
                    role,
                    namespace: ns.to_string(),
                    name: name.to_string(),
                    dimensions: dims,
                    stat: stat.to_string(),
                };
            match source {
                MetricSource::Lambda(l) => {
                    let dims = lambda_dimensions(target, side);
                    match l.metric {
                        LambdaStatistic::Errors => {
                            out.push(q(Role::Events, "AWS/Lambda", "Errors", dims.clone(), "Sum"));
                            out.push(q(Role::Total, "AWS/Lambda", "Invocations", dims, "Sum"));
                        }
                        LambdaStatistic::Throttles => {
                            out.push(q(
                                Role::Events,
                                "AWS/Lambda",
                                "Throttles",
                                dims.clone(),
                                "Sum",
                            ));
                            out.push(q(
                                Role::Total,
                                "AWS/Lambda",
                                "Invocations",
                                dims.clone(),
                                "Sum",
                            ));
                            out.push(q(Role::ExtraTotal, "AWS/Lambda", "Throttles", dims, "Sum"));
                        }
                        LambdaStatistic::Duration => {
                            // Per period: the count and a ladder of percentiles (the judge
                            // compares periods; it never treats a summary as samples).
                            out.push(q(
                                Role::Count,
                                "AWS/Lambda",
                                "Duration",
                                dims.clone(),
                                "SampleCount",
                            ));
                            for p in summary_percentiles(&m.percentiles()) {
                                let key = key_of_percentile(p);
                                out.push(q(
                                    Role::Percentile(key.clone()),
                                    "AWS/Lambda",
                                    "Duration",
                                    dims.clone(),
                                    &key,
                                ));
                            }
                        }
                        LambdaStatistic::Invocations => {
                            out.push(q(Role::Samples, "AWS/Lambda", "Invocations", dims, "Sum"));
                        }
                        LambdaStatistic::ConcurrentExecutions => {
                            out.push(q(
                                Role::Samples,
                                "AWS/Lambda",
                                "ConcurrentExecutions",
                                dims,
                                "Maximum",
                            ));
                        }
                    }
                }
                MetricSource::Cloudwatch(c) => {
                    let dims = custom_dimensions(c, target, side);
                    out.push(q(
                        Role::Samples,
                        &c.namespace,
                        &c.metric_name,
                        dims,
                        &c.statistic,
                    ));
                }
                MetricSource::Ratio(r) => {
                    let (n, d) = (&r.numerator, &r.denominator);
                    out.push(q(
                        Role::Events,
                        &n.namespace,
                        &n.metric_name,
                        custom_dimensions(n, target, side),
                        "Sum",
                    ));
                    out.push(q(
                        Role::Total,
                        &d.namespace,
                        &d.metric_name,
                        custom_dimensions(d, target, side),
                        "Sum",
                    ));
                }
            }
        }
    }
    out
}

pub(super) fn to_sdk(id: usize, q: &Query, period: i32) -> MetricDataQuery {
    let dims: Vec<Dimension> = q
        .dimensions
        .iter()
        .map(|(k, v)| Dimension::builder().name(k).value(v).build())
        .collect();
    let metric = Metric::builder()
        .namespace(&q.namespace)
        .metric_name(&q.name)
        .set_dimensions(Some(dims))
        .build();
    let stat = MetricStat::builder()
        .metric(metric)
        .period(period)
        .stat(&q.stat)
        .build();
    MetricDataQuery::builder()
        .id(format!("q{id}"))
        .metric_stat(stat)
        .return_data(true)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_both_sides_with_the_routing_dimensions() {
        let c = CanaryConfig::from_json(include_str!("../../../../examples/demo-config.json"))
            .expect("config");
        let t = c.target.clone().expect("target");
        let q = plan(&c, &t);
        // latency: SampleCount and the 24 summary percentiles per side; errors: 2 per side.
        assert_eq!(q.len(), 2 * 25 + 4);
        let stats: Vec<&str> = q
            .iter()
            .filter(|q| q.side == Side::Canary && q.name == "Duration")
            .map(|q| q.stat.as_str())
            .collect();
        assert_eq!(stats[0], "SampleCount");
        assert!(
            stats.contains(&"p52.5") && stats.contains(&"p99.9"),
            "{stats:?}"
        );
        assert!(
            !stats.contains(&"Maximum"),
            "no pseudo-samples from min/max"
        );
        let canary_errors = q
            .iter()
            .find(|q| q.side == Side::Canary && q.name == "Errors")
            .expect("errors");
        assert!(
            canary_errors
                .dimensions
                .contains(&("ExecutedVersion".into(), "42".into()))
        );
        assert!(
            canary_errors
                .dimensions
                .contains(&("Resource".into(), "orders-api:live".into()))
        );
    }
}
