//! Reading `GetMetricData` answers strictly, page by page. Every query's `StatusCode` is read:
//!
//! - `Complete`: its datapoints are the whole answer.
//! - `PartialData`: more datapoints follow on the page that `NextToken` names; the adapter
//!   follows it, and a query still partial on the last page is refused as
//!   [`PortError::Unavailable`] (asking again later may complete it).
//! - `Forbidden`: the caller may not read that metric (a cross-account or permission
//!   problem): [`PortError::Rejected`], since asking again will not help.
//! - `InternalError`, an unknown status or none at all: [`PortError::Unavailable`].
//!
//! A query with no result at all, a result for a query that was not asked, timestamps and
//! values of different lengths, a value that is not finite, or one timestamp with two values
//! are refused too: a partial answer never becomes data.

use std::collections::BTreeMap;
use std::ops::Range;

use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
use aws_sdk_cloudwatch::types::{MessageData, StatusCode};
use canary_gate_core::ports::PortError;

use super::plan::Query;

/// Values per query, keyed by the period's timestamp.
pub(super) type Series = BTreeMap<i64, f64>;

/// Pages followed for one request before the answer is refused (a `NextToken` that never
/// runs out would otherwise hold the caller until its timeout).
pub(super) const MAX_PAGES: usize = 100;

/// The answers to every query, collected over the pages of each request.
pub(super) struct Answers<'q> {
    queries: &'q [Query],
    series: Vec<Series>,
    /// Whether a result for the query has been seen.
    seen: Vec<bool>,
    /// Whether the query's latest result said `PartialData`.
    partial: Vec<bool>,
}

/// The `Messages` of a page or a result, for an error's text.
fn messages(m: &[MessageData]) -> String {
    if m.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = m
        .iter()
        .map(|m| {
            format!(
                "{}: {}",
                m.code().unwrap_or("message"),
                m.value().unwrap_or_default()
            )
        })
        .collect();
    format!(" ({})", parts.join("; "))
}

impl<'q> Answers<'q> {
    /// Nothing read yet for `queries`, whose ids are `q0`, `q1`, … in this order.
    pub(super) fn new(queries: &'q [Query]) -> Self {
        Self {
            queries,
            series: vec![Series::new(); queries.len()],
            seen: vec![false; queries.len()],
            partial: vec![false; queries.len()],
        }
    }

    /// Reads one page of the answer to the request that asked `asked` (indexes into the
    /// queries).
    pub(super) fn read_page(
        &mut self,
        asked: Range<usize>,
        page: &GetMetricDataOutput,
    ) -> Result<(), PortError> {
        let page_messages = messages(page.messages());
        for r in page.metric_data_results() {
            let id = r.id().unwrap_or_default();
            let idx = id
                .strip_prefix('q')
                .and_then(|i| i.parse::<usize>().ok())
                .filter(|i| asked.contains(i))
                .ok_or_else(|| {
                    PortError::Unavailable(format!(
                        "GetMetricData answered for query `{id}`, which was not asked{page_messages}"
                    ))
                })?;
            let q = &self.queries[idx];
            let why = format!("{}{}{page_messages}", q.describe(), messages(r.messages()));
            match r.status_code() {
                Some(StatusCode::Complete) => self.partial[idx] = false,
                Some(StatusCode::PartialData) => self.partial[idx] = true,
                Some(StatusCode::Forbidden) => {
                    return Err(PortError::Rejected(format!(
                        "{why}: GetMetricData answered Forbidden"
                    )));
                }
                Some(StatusCode::InternalError) => {
                    return Err(PortError::Unavailable(format!(
                        "{why}: GetMetricData answered InternalError"
                    )));
                }
                other => {
                    return Err(PortError::Unavailable(format!(
                        "{why}: GetMetricData answered status `{}`, not Complete",
                        other.map_or("none", StatusCode::as_str)
                    )));
                }
            }
            self.seen[idx] = true;
            let (times, values) = (r.timestamps(), r.values());
            if times.len() != values.len() {
                return Err(PortError::Unavailable(format!(
                    "{why}: {} timestamps but {} values",
                    times.len(),
                    values.len()
                )));
            }
            let s = &mut self.series[idx];
            for (t, v) in times.iter().zip(values) {
                if !v.is_finite() {
                    return Err(PortError::Rejected(format!(
                        "{why}: value {v} at {} is not a number",
                        t.secs()
                    )));
                }
                if let Some(before) = s.insert(t.secs(), *v)
                    && before != *v
                {
                    return Err(PortError::Unavailable(format!(
                        "{why}: two values ({before} and {v}) for the period at {}",
                        t.secs()
                    )));
                }
            }
        }
        Ok(())
    }

    /// After the last page of the request that asked `asked`: every query answered, none
    /// left partial.
    pub(super) fn check_complete(&self, asked: Range<usize>) -> Result<(), PortError> {
        for idx in asked {
            let q = &self.queries[idx];
            if !self.seen[idx] {
                return Err(PortError::Unavailable(format!(
                    "{}: GetMetricData returned no result for it",
                    q.describe()
                )));
            }
            if self.partial[idx] {
                return Err(PortError::Unavailable(format!(
                    "{}: GetMetricData answered PartialData with no further page",
                    q.describe()
                )));
            }
        }
        Ok(())
    }

    /// The series, one per query.
    pub(super) fn into_series(self) -> Vec<Series> {
        self.series
    }
}
