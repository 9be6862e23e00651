//! CloudWatch metrics for both versions, behind [`MetricsSource`]: one `GetMetricData`
//! exchange per look for every query of both sides (batched by the API's 500-query limit,
//! following `NextToken`).
//!
//! - AWS/Lambda shorthands: the sides are told apart by `ExecutedVersion` under
//!   `FunctionName` + `Resource` (function:alias) for weighted-alias routing, or by
//!   `Resource` (function:alias vs function:canary_alias) for two aliases.
//! - Counters read `Errors` (or `Throttles`) as events over `Invocations` (plus throttles).
//! - Histograms read percentile statistics with their sample counts and expand each period
//!   into that many values along the piecewise-linear quantile function through its minimum,
//!   p50, p95, p99 and maximum — an approximation the report names in its notes. `Duration`
//!   metrics with `per_invocation` read every invocation's duration from the `REPORT` log
//!   lines instead ([`InvocationDurations`]). Gauges and custom metrics use one value per
//!   period.
//! - Periods without datapoints are absent ("no data"), never zeros, and the most recent
//!   minutes that CloudWatch may still be ingesting are left out
//!   ([`DEFAULT_INGESTION_DELAY_SECONDS`]).

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use canary_gate_core::config::{
    CanaryConfig, CloudWatchMetric, LambdaStatistic, MetricConfig, MetricKind, MetricSource,
    Routing, Target,
};
use canary_gate_core::observe::{Observation, SideObservations};
use canary_gate_core::ports::{Fetched, MetricsSource, PortError, TimeRange};
use canary_gate_core::stats::Counts;

use crate::error::classify;
use crate::insights::{InvocationDurations, MAX_ROWS};

/// `GetMetricData` accepts at most this many queries per request.
pub const MAX_QUERIES: usize = 500;
/// Default: CloudWatch may still be ingesting the last two minutes.
pub const DEFAULT_INGESTION_DELAY_SECONDS: i64 = 120;

/// Reads metrics from CloudWatch.
#[derive(Debug, Clone)]
pub struct CloudWatchMetrics {
    client: Client,
    /// Per-invocation durations (Logs Insights), for metrics that ask for them.
    invocations: Option<InvocationDurations>,
    /// Seconds per datapoint (default 60).
    pub period_seconds: i32,
    /// Most recent seconds left out of every fetch (default 120).
    pub ingestion_delay_seconds: i64,
}

/// Which side a query serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Baseline,
    Canary,
}

/// What a query's values become.
#[derive(Debug, Clone, PartialEq)]
enum Role {
    Events,
    Total,
    /// Added to the total (throttled requests never count as invocations).
    ExtraTotal,
    Samples,
    Stat(&'static str),
}

#[derive(Debug, Clone)]
struct Query {
    metric: String,
    side: Side,
    role: Role,
    namespace: String,
    name: String,
    dimensions: Vec<(String, String)>,
    stat: String,
}

impl CloudWatchMetrics {
    /// An adapter with the default period and ingestion delay.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            invocations: None,
            period_seconds: 60,
            ingestion_delay_seconds: DEFAULT_INGESTION_DELAY_SECONDS,
        }
    }
}

impl CloudWatchMetrics {
    /// Reads `Duration` metrics with `per_invocation` from the `REPORT` log lines.
    pub fn with_invocation_durations(mut self, reader: InvocationDurations) -> Self {
        self.invocations = Some(reader);
        self
    }

    /// Sets how many seconds at the end of each range are left out as still being ingested
    /// (0 for callers that only ask for ranges that have settled).
    pub fn with_ingestion_delay(mut self, seconds: i64) -> Self {
        self.ingestion_delay_seconds = seconds;
        self
    }
}

/// Whether a metric is read from `REPORT` lines instead of `GetMetricData`.
fn per_invocation(m: &MetricConfig) -> bool {
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
fn plan(config: &CanaryConfig, target: &Target) -> Vec<Query> {
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
                            for (role, stat) in [
                                (Role::Stat("n"), "SampleCount"),
                                (Role::Stat("min"), "Minimum"),
                                (Role::Stat("p50"), "p50"),
                                (Role::Stat("p95"), "p95"),
                                (Role::Stat("p99"), "p99"),
                                (Role::Stat("max"), "Maximum"),
                            ] {
                                out.push(q(role, "AWS/Lambda", "Duration", dims.clone(), stat));
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

fn to_sdk(id: usize, q: &Query, period: i32) -> MetricDataQuery {
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

/// Values per query, keyed by the period's timestamp.
type Series = BTreeMap<i64, f64>;

impl CloudWatchMetrics {
    async fn run(&self, queries: &[Query], range: TimeRange) -> Result<Vec<Series>, PortError> {
        let mut series: Vec<Series> = vec![Series::new(); queries.len()];
        for (chunk_no, chunk) in queries.chunks(MAX_QUERIES).enumerate() {
            let base = chunk_no * MAX_QUERIES;
            let sdk: Vec<MetricDataQuery> = chunk
                .iter()
                .enumerate()
                .map(|(i, q)| to_sdk(base + i, q, self.period_seconds))
                .collect();
            let mut token: Option<String> = None;
            loop {
                let resp = self
                    .client
                    .get_metric_data()
                    .start_time(DateTime::from_secs(range.start))
                    .end_time(DateTime::from_secs(range.end))
                    .set_metric_data_queries(Some(sdk.clone()))
                    .set_next_token(token.clone())
                    .send()
                    .await
                    .map_err(classify)?;
                for r in resp.metric_data_results() {
                    let Some(idx) = r
                        .id()
                        .and_then(|id| id.strip_prefix('q'))
                        .and_then(|i| i.parse::<usize>().ok())
                    else {
                        continue;
                    };
                    if let Some(s) = series.get_mut(idx) {
                        for (t, v) in r.timestamps().iter().zip(r.values()) {
                            s.insert(t.secs(), *v);
                        }
                    }
                }
                token = resp.next_token().map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
        }
        Ok(series)
    }
}

/// Expands one period's percentile summary into `n` values along the piecewise-linear
/// quantile function through (0, min), (.5, p50), (.95, p95), (.99, p99), (1, max).
pub fn expand_percentiles(n: usize, min: f64, p50: f64, p95: f64, p99: f64, max: f64) -> Vec<f64> {
    let knots = [(0.0, min), (0.5, p50), (0.95, p95), (0.99, p99), (1.0, max)];
    (0..n)
        .map(|i| {
            let q = (i as f64 + 0.5) / n as f64;
            let k = knots
                .windows(2)
                .find(|w| q <= w[1].0)
                .unwrap_or(&knots[3..5]);
            let ((q0, v0), (q1, v1)) = (k[0], k[1]);
            v0 + (v1 - v0) * (q - q0) / (q1 - q0)
        })
        .collect()
}

fn assemble(config: &CanaryConfig, queries: &[Query], series: &[Series]) -> Fetched {
    let mut out = Fetched::default();
    for m in &config.metrics {
        for side in [Side::Baseline, Side::Canary] {
            let mine: Vec<(&Query, &Series)> = queries
                .iter()
                .zip(series)
                .filter(|(q, _)| q.metric == m.name && q.side == side)
                .collect();
            if mine.is_empty() {
                continue;
            }
            let role = |r: &Role| mine.iter().find(|(q, _)| &q.role == r).map(|(_, s)| *s);
            let obs = match m.kind {
                MetricKind::Counter => {
                    let events = role(&Role::Events);
                    let total = role(&Role::Total);
                    let extra = role(&Role::ExtraTotal);
                    // Only periods where the denominator has a datapoint count.
                    let (mut k, mut n) = (0.0, 0.0);
                    if let Some(total) = total {
                        for (t, v) in total {
                            n += v + extra.and_then(|e| e.get(t)).unwrap_or(&0.0);
                            k += events.and_then(|e| e.get(t)).unwrap_or(&0.0);
                        }
                    }
                    if n <= 0.0 {
                        continue;
                    }
                    Observation::Counts(Counts {
                        events: k.round() as u64,
                        total: n.round() as u64,
                    })
                }
                MetricKind::Histogram if role(&Role::Stat("n")).is_some() => {
                    let get = |name: &'static str| role(&Role::Stat(name));
                    let mut values = Vec::new();
                    if let (Some(n), Some(min), Some(p50), Some(p95), Some(p99), Some(max)) = (
                        get("n"),
                        get("min"),
                        get("p50"),
                        get("p95"),
                        get("p99"),
                        get("max"),
                    ) {
                        for (t, count) in n {
                            if let (Some(a), Some(b), Some(c), Some(d), Some(e)) =
                                (min.get(t), p50.get(t), p95.get(t), p99.get(t), max.get(t))
                            {
                                values.extend(expand_percentiles(
                                    count.round() as usize,
                                    *a,
                                    *b,
                                    *c,
                                    *d,
                                    *e,
                                ));
                            }
                        }
                    }
                    if values.is_empty() {
                        continue;
                    }
                    if !out.notes.iter().any(|n| n.starts_with(&m.name)) {
                        out.notes.push(format!(
                            "{}: from CloudWatch percentile statistics (min/p50/p95/p99/max with sample counts), not per-invocation durations",
                            m.name
                        ));
                    }
                    Observation::Samples(values)
                }
                _ => {
                    let Some(s) = role(&Role::Samples) else {
                        continue;
                    };
                    if s.is_empty() {
                        continue;
                    }
                    Observation::Samples(s.values().copied().collect())
                }
            };
            let map: &mut SideObservations = if side == Side::Canary {
                &mut out.canary
            } else {
                &mut out.baseline
            };
            map.insert(m.name.clone(), obs);
        }
    }
    out
}

impl MetricsSource for CloudWatchMetrics {
    async fn fetch(
        &self,
        config: &CanaryConfig,
        target: &Target,
        range: TimeRange,
    ) -> Result<Fetched, PortError> {
        let end = range.end - self.ingestion_delay_seconds;
        if end <= range.start {
            return Ok(Fetched {
                through: Some(range.start),
                ..Fetched::default()
            });
        }
        let range = TimeRange {
            start: range.start,
            end,
        };
        let (from_logs, from_metrics): (Vec<&MetricConfig>, Vec<&MetricConfig>) =
            config.metrics.iter().partition(|m| per_invocation(m));
        let mut out = if from_metrics.is_empty() {
            Fetched::default()
        } else {
            let mut rest = config.clone();
            rest.metrics.retain(|m| !per_invocation(m));
            let queries = plan(&rest, target);
            if queries.is_empty() {
                Fetched::default()
            } else {
                let series = self.run(&queries, range).await?;
                assemble(&rest, &queries, &series)
            }
        };
        out.through = Some(end);
        if from_logs.is_empty() {
            return Ok(out);
        }
        let reader = self.invocations.as_ref().ok_or_else(|| {
            PortError::Rejected(
                "a metric asks for per-invocation durations but this reader has no Logs Insights access"
                    .into(),
            )
        })?;
        let (baseline, canary) = reader.fetch(target, range).await?;
        for m in from_logs {
            out.baseline
                .insert(m.name.clone(), Observation::Samples(baseline.warm.clone()));
            out.canary
                .insert(m.name.clone(), Observation::Samples(canary.warm.clone()));
            let truncated = if baseline.truncated || canary.truncated {
                format!(" (the first {MAX_ROWS} lines per version: sample truncated)")
            } else {
                String::new()
            };
            out.notes.push(format!(
                "{}: per-invocation durations from REPORT log lines (Logs Insights): {} baseline and {} canary warm invocations; cold starts left out: {} and {}{truncated}",
                m.name,
                baseline.warm.len(),
                canary.warm.len(),
                baseline.cold,
                canary.cold
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_expansion_follows_the_summary() {
        let v = expand_percentiles(1000, 10.0, 40.0, 180.0, 330.0, 900.0);
        assert_eq!(v.len(), 1000);
        let mut s = v.clone();
        s.sort_by(f64::total_cmp);
        assert!((s[499] - 40.0).abs() < 1.0, "median {}", s[499]);
        assert!((s[949] - 180.0).abs() < 3.0, "p95 {}", s[949]);
        assert!(s[0] >= 10.0 && s[999] <= 900.0);
    }

    #[test]
    fn plans_both_sides_with_the_routing_dimensions() {
        let c = CanaryConfig::from_json(include_str!("../../../examples/demo-config.json"))
            .expect("config");
        let t = c.target.clone().expect("target");
        let q = plan(&c, &t);
        // latency: 6 statistics per side; errors: 2 per side.
        assert_eq!(q.len(), 16);
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
