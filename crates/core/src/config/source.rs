//! Where a canary runs (the target function and alias) and where each metric comes from
//! (AWS/Lambda shorthands, any CloudWatch metric, or a ratio of two metrics).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The Lambda function, alias and versions under test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Function name or ARN.
    pub function_name: String,
    /// The alias that callers invoke (e.g. `live`).
    pub alias: String,
    /// The version currently serving (the baseline).
    pub baseline_version: String,
    /// The new version (the canary); must differ from the baseline.
    pub canary_version: String,
    /// How the two sides are split and told apart. Default: `weighted-alias`.
    #[serde(default)]
    pub routing: Routing,
    /// With `two-aliases` routing: the alias that serves the canary version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_alias: Option<String>,
}

/// How traffic reaches the two versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Routing {
    /// One alias with weighted routing (`AdditionalVersionWeights`); the sides are told apart
    /// by the `ExecutedVersion` dimension under `FunctionName` + `Resource` (function:alias).
    #[default]
    WeightedAlias,
    /// Two aliases (the baseline's `alias` and `canary_alias`); the sides are told apart by
    /// the `Resource` dimension.
    TwoAliases,
}

/// Where a metric's observations come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum MetricSource {
    /// A metric of the `AWS/Lambda` namespace for each side of the target.
    Lambda(LambdaMetric),
    /// Any CloudWatch metric; the sides differ by `version_dimension`.
    Cloudwatch(CloudWatchMetric),
    /// A business KPI as events over trials (e.g. conversions / visits), both CloudWatch
    /// metrics summed per interval; used with counter metrics.
    Ratio(RatioSource),
}

/// An `AWS/Lambda` metric by its shorthand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LambdaMetric {
    /// Which metric.
    pub metric: LambdaStatistic,
    /// For `Duration`: read per-invocation durations from the function's `REPORT` log lines
    /// (CloudWatch Logs Insights) instead of percentile statistics. Default: `false`.
    #[serde(default)]
    pub per_invocation: bool,
}

/// The `AWS/Lambda` metrics canary-gate knows how to read per version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum LambdaStatistic {
    /// Execution time in milliseconds (a histogram metric).
    Duration,
    /// Invocations that ended in a function error, out of `Invocations` (a counter metric).
    Errors,
    /// Throttled requests, out of `Invocations` plus throttles (a counter metric).
    Throttles,
    /// Invocations per interval (a gauge; compared per unit of traffic share).
    Invocations,
    /// Concurrent executions (a gauge; compared per unit of traffic share).
    ConcurrentExecutions,
}

/// A CloudWatch metric identified by namespace, name and dimensions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CloudWatchMetric {
    /// Namespace, e.g. `Orders`.
    pub namespace: String,
    /// Metric name, e.g. `CheckoutLatency`.
    pub metric_name: String,
    /// Dimensions shared by both sides.
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    /// The dimension whose value is the version (`ExecutedVersion`, `Version`, …); each side
    /// adds it with its own version. Default: `ExecutedVersion`.
    #[serde(default = "default_version_dimension")]
    pub version_dimension: String,
    /// CloudWatch statistic (`Sum`, `Average`, `p99`, …). Default: `Sum`.
    #[serde(default = "default_statistic")]
    pub statistic: String,
}

/// A ratio of two CloudWatch metrics: numerator events over denominator trials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RatioSource {
    /// The events (e.g. conversions).
    pub numerator: CloudWatchMetric,
    /// The trials (e.g. visits).
    pub denominator: CloudWatchMetric,
}

fn default_version_dimension() -> String {
    "ExecutedVersion".to_string()
}

fn default_statistic() -> String {
    "Sum".to_string()
}
