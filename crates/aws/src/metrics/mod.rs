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
//! - Every query's `StatusCode` is read (`PartialData` is followed through `NextToken`,
//!   `Forbidden` and `InternalError` become errors): a partial answer never becomes data.
//! - Periods without datapoints are absent ("no data"), never zeros — for counters, a period
//!   counts only when both the events and the total have a datapoint — and the most recent
//!   minutes that CloudWatch may still be ingesting are left out
//!   ([`DEFAULT_INGESTION_DELAY_SECONDS`]).

mod answer;
mod assemble;
mod plan;

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::MetricDataQuery;
use canary_gate_core::config::{CanaryConfig, MetricConfig, Target};
use canary_gate_core::observe::Observation;
use canary_gate_core::ports::{Fetched, MetricsSource, PortError, TimeRange};

use crate::error::classify;
use crate::insights::{InvocationDurations, MAX_ROWS};
use answer::{Answers, MAX_PAGES, Series};
use assemble::assemble;
use plan::{Query, per_invocation, plan, to_sdk};

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

impl CloudWatchMetrics {
    /// Every query's series: one request per 500 queries, each followed through its pages.
    async fn run(&self, queries: &[Query], range: TimeRange) -> Result<Vec<Series>, PortError> {
        let mut answers = Answers::new(queries);
        for (chunk_no, chunk) in queries.chunks(MAX_QUERIES).enumerate() {
            let base = chunk_no * MAX_QUERIES;
            let asked = base..base + chunk.len();
            let sdk: Vec<MetricDataQuery> = chunk
                .iter()
                .enumerate()
                .map(|(i, q)| to_sdk(base + i, q, self.period_seconds))
                .collect();
            let mut token: Option<String> = None;
            for page in 0.. {
                if page == MAX_PAGES {
                    return Err(PortError::Unavailable(format!(
                        "GetMetricData: still more pages after {MAX_PAGES}"
                    )));
                }
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
                answers.read_page(asked.clone(), &resp)?;
                token = resp
                    .next_token()
                    .filter(|t| !t.is_empty())
                    .map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
            answers.check_complete(asked)?;
        }
        Ok(answers.into_series())
    }
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
                assemble(&rest, &queries, &series)?
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
