//! Per-invocation durations from the function's `REPORT` log lines, through CloudWatch Logs
//! Insights — for `Duration` metrics whose config sets `per_invocation`. Each side is one
//! query over `/aws/lambda/<function>`, told apart by the version in the log stream name
//! (`2026/11/23/[42]0f1e…`). Cold starts (lines with an `Init Duration`) are counted and left
//! out of the samples, since their latency measures initialisation, not the code under test;
//! the report's notes say how many.

use std::time::Duration;

use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::types::QueryStatus;
use canary_gate_core::config::Target;
use canary_gate_core::ports::{PortError, TimeRange};

use crate::error::classify;

/// Logs Insights returns at most this many rows per query.
pub const MAX_ROWS: i32 = 10_000;

/// One version's invocations in a window.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VersionDurations {
    /// Durations in milliseconds of warm invocations.
    pub warm: Vec<f64>,
    /// Cold starts (left out of `warm`).
    pub cold: u64,
    /// The query hit its row limit: the samples are the first `MAX_ROWS` lines.
    pub truncated: bool,
}

/// Reads `REPORT` lines with Logs Insights.
#[derive(Debug, Clone)]
pub struct InvocationDurations {
    client: Client,
    /// Pause between `GetQueryResults` polls (default 1 s).
    pub poll_interval: Duration,
    /// Give up on a query after this long (default 60 s).
    pub max_wait: Duration,
    /// Rows per query (default and maximum [`MAX_ROWS`]).
    pub limit: i32,
}

/// The log group of a function given by name or ARN (qualifier ignored).
pub fn log_group(function: &str) -> String {
    let name = match function.split_once(":function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest),
        None => function,
    };
    format!("/aws/lambda/{name}")
}

/// The query for one version's `REPORT` lines.
pub fn query_for(version: &str, limit: i32) -> String {
    // `like "[42]"` is a substring match on the bracketed version: it cannot match `[142]`.
    let escaped = version.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        "fields @duration, @initDuration, @logStream\n| filter @type = \"REPORT\" and @logStream like \"[{escaped}]\"\n| limit {limit}"
    )
}

/// Turns result rows (field, value pairs) into durations.
pub fn parse_rows(rows: &[Vec<(String, String)>], limit: i32) -> VersionDurations {
    let mut out = VersionDurations {
        truncated: rows.len() >= limit as usize,
        ..VersionDurations::default()
    };
    for row in rows {
        let field = |name: &str| row.iter().find(|(f, _)| f == name).map(|(_, v)| v.as_str());
        let cold = field("@initDuration").is_some_and(|v| !v.trim().is_empty());
        let Some(duration) = field("@duration").and_then(|v| v.trim().parse::<f64>().ok()) else {
            continue;
        };
        if !duration.is_finite() || duration < 0.0 {
            continue;
        }
        if cold {
            out.cold += 1;
        } else {
            out.warm.push(duration);
        }
    }
    out
}

impl InvocationDurations {
    /// Reads with `client`, with the default poll interval, wait and limit.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            poll_interval: Duration::from_secs(1),
            max_wait: Duration::from_secs(60),
            limit: MAX_ROWS,
        }
    }

    async fn run(
        &self,
        group: &str,
        query: &str,
        range: TimeRange,
    ) -> Result<Vec<Vec<(String, String)>>, PortError> {
        let started = self
            .client
            .start_query()
            .log_group_name(group)
            .start_time(range.start)
            .end_time(range.end)
            .query_string(query)
            .limit(self.limit)
            .send()
            .await
            .map_err(classify)?;
        let id = started
            .query_id()
            .ok_or_else(|| PortError::Unavailable("StartQuery returned no query id".into()))?
            .to_string();
        let deadline = tokio::time::Instant::now() + self.max_wait;
        loop {
            let page = self
                .client
                .get_query_results()
                .query_id(&id)
                .send()
                .await
                .map_err(classify)?;
            match page.status() {
                Some(QueryStatus::Complete) => {
                    return Ok(page
                        .results()
                        .iter()
                        .map(|row| {
                            row.iter()
                                .map(|f| {
                                    (
                                        f.field().unwrap_or_default().to_string(),
                                        f.value().unwrap_or_default().to_string(),
                                    )
                                })
                                .collect()
                        })
                        .collect());
                }
                Some(QueryStatus::Failed | QueryStatus::Cancelled | QueryStatus::Timeout) => {
                    return Err(PortError::Unavailable(format!(
                        "Logs Insights query on {group} ended {:?}",
                        page.status()
                    )));
                }
                _ if tokio::time::Instant::now() >= deadline => {
                    // Best effort: free the concurrency slot.
                    let _ = self.client.stop_query().query_id(&id).send().await;
                    return Err(PortError::Unavailable(format!(
                        "Logs Insights query on {group} did not finish in {} s",
                        self.max_wait.as_secs()
                    )));
                }
                _ => tokio::time::sleep(self.poll_interval).await,
            }
        }
    }

    /// Both versions' invocations of `target` over `range`: (baseline, canary).
    pub async fn fetch(
        &self,
        target: &Target,
        range: TimeRange,
    ) -> Result<(VersionDurations, VersionDurations), PortError> {
        let group = log_group(&target.function_name);
        let baseline_q = query_for(&target.baseline_version, self.limit);
        let canary_q = query_for(&target.canary_version, self.limit);
        // One after the other: each query may hold one of the account's concurrent Logs
        // Insights slots, and a look has time for both.
        let baseline = self.run(&group, &baseline_q, range).await?;
        let canary = self.run(&group, &canary_q, range).await?;
        Ok((
            parse_rows(&baseline, self.limit),
            parse_rows(&canary, self.limit),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(duration: &str, init: Option<&str>) -> Vec<(String, String)> {
        let mut r = vec![
            ("@duration".to_string(), duration.to_string()),
            ("@logStream".to_string(), "2026/11/23/[42]abc".to_string()),
        ];
        if let Some(i) = init {
            r.push(("@initDuration".to_string(), i.to_string()));
        }
        r
    }

    #[test]
    fn log_groups_come_from_names_and_arns() {
        assert_eq!(log_group("orders-api"), "/aws/lambda/orders-api");
        assert_eq!(
            log_group("arn:aws:lambda:eu-west-1:1:function:orders-api:live"),
            "/aws/lambda/orders-api"
        );
    }

    #[test]
    fn queries_match_one_bracketed_version() {
        let q = query_for("42", 500);
        assert!(q.contains(r#"@logStream like "[42]""#), "{q}");
        assert!(q.contains(r#"@type = "REPORT""#), "{q}");
        assert!(q.ends_with("| limit 500"), "{q}");
        assert!(query_for("$LATEST", 10).contains(r#""[$LATEST]""#));
    }

    #[test]
    fn cold_starts_are_counted_apart_and_bad_rows_skipped() {
        let rows = vec![
            row("12.5", None),
            row("250.1", Some("180.2")),
            row("13.0", Some("")),
            row("n/a", None),
            row("-1", None),
        ];
        let d = parse_rows(&rows, 10);
        assert_eq!(d.warm, vec![12.5, 13.0]);
        assert_eq!(d.cold, 1);
        assert!(!d.truncated);
        assert!(parse_rows(&rows, 5).truncated);
    }
}
