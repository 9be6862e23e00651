//! Turning each query's series into the core's observations, one per metric and side.
//!
//! Missing data is never evidence: a period counts only when every query the metric needs has
//! a datapoint for it. A minute with `Invocations` but no `Errors` datapoint is a minute
//! without an observation of errors, not a minute with zero errors; the minutes left out are
//! named in the notes, and a side with no complete minute has no data for the metric at all.
//! Counts are checked where they are formed: negative counts, more events than trials in a
//! period, and totals too large to count exactly are refused with the metric named.

use canary_gate_core::config::{CanaryConfig, MetricKind};
use std::collections::BTreeMap;

use canary_gate_core::observe::{Observation, Period, Periods, SideObservations};
use canary_gate_core::ports::{Fetched, PortError};
use canary_gate_core::stats::Counts;

use super::answer::Series;
use super::plan::{Query, Role, Side};

/// Counts above this are not summed exactly in `f64` (2^53).
const MAX_EXACT: f64 = 9_007_199_254_740_992.0;

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Baseline => "baseline",
        Side::Canary => "canary",
    }
}

/// The periods any of `series` has a datapoint for.
fn periods<'a>(series: impl IntoIterator<Item = &'a Series>) -> std::collections::BTreeSet<i64> {
    series.into_iter().flat_map(|s| s.keys().copied()).collect()
}

/// A count as CloudWatch summed it: finite, not negative, exactly representable.
fn count(metric: &str, side: Side, what: &str, t: i64, v: f64) -> Result<f64, PortError> {
    if v.is_finite() && (0.0..=MAX_EXACT).contains(&v) {
        Ok(v)
    } else {
        Err(PortError::Rejected(format!(
            "metric `{metric}` ({}): {what} of {v} in the period at {t} is not a count",
            side_name(side)
        )))
    }
}

/// Events over trials from the periods where the events, the total and any extra total all
/// have a datapoint; `None` when no period does. Returns the periods left out too.
fn counts(
    metric: &str,
    side: Side,
    events: &Series,
    total: &Series,
    extra: Option<&Series>,
) -> Result<(Option<Counts>, usize), PortError> {
    let (mut k, mut n, mut gaps) = (0.0_f64, 0.0_f64, 0);
    for t in periods([events, total].into_iter().chain(extra)) {
        let extra_here = match extra {
            Some(s) => s.get(&t).copied(),
            None => Some(0.0),
        };
        let (Some(e), Some(v), Some(x)) =
            (events.get(&t).copied(), total.get(&t).copied(), extra_here)
        else {
            gaps += 1;
            continue;
        };
        let e = count(metric, side, "an event count", t, e)?;
        let trials = count(metric, side, "a total", t, v)? + count(metric, side, "a total", t, x)?;
        if e > trials {
            return Err(PortError::Rejected(format!(
                "metric `{metric}` ({}): {e} events out of {trials} in the period at {t}; events cannot exceed the total",
                side_name(side)
            )));
        }
        k += e;
        n += trials;
    }
    if n > MAX_EXACT {
        return Err(PortError::Rejected(format!(
            "metric `{metric}` ({}): a total of {n} is too large to count",
            side_name(side)
        )));
    }
    if n <= 0.0 {
        return Ok((None, gaps));
    }
    let c = Counts::new(k.round() as u64, n.round() as u64).map_err(|e| {
        PortError::Rejected(format!("metric `{metric}` ({}): {e}", side_name(side)))
    })?;
    Ok((Some(c), gaps))
}

/// One summary per period where the sample count and every percentile have a datapoint.
/// Returns the periods left out too.
fn summaries(
    metric: &str,
    side: Side,
    n: &Series,
    percentiles: &[(&str, &Series)],
) -> Result<(Periods, usize), PortError> {
    let (mut out, mut gaps) = (Periods::default(), 0);
    for t in periods(std::iter::once(n).chain(percentiles.iter().map(|(_, s)| *s))) {
        let Some(c) = n.get(&t) else {
            gaps += 1;
            continue;
        };
        let c = count(metric, side, "a sample count", t, *c)?;
        let stats: Option<BTreeMap<String, f64>> = percentiles
            .iter()
            .map(|(k, s)| s.get(&t).map(|v| ((*k).to_string(), *v)))
            .collect();
        let Some(stats) = stats else {
            gaps += 1;
            continue;
        };
        if c < 1.0 {
            continue;
        }
        if let Some((k, v)) = stats.iter().find(|(_, v)| !(v.is_finite() && **v >= 0.0)) {
            return Err(PortError::Rejected(format!(
                "metric `{metric}` ({}): {k} of {v} in the period at {t} is not a duration",
                side_name(side)
            )));
        }
        out.periods.push(Period {
            start: t,
            n: c.round() as u64,
            stats,
        });
    }
    Ok((out, gaps))
}

/// The observations of every metric and side, with notes on how they were formed.
pub(super) fn assemble(
    config: &CanaryConfig,
    queries: &[Query],
    series: &[Series],
) -> Result<Fetched, PortError> {
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
            let (obs, gaps) = match m.kind {
                MetricKind::Counter => {
                    let (Some(events), Some(total)) = (role(&Role::Events), role(&Role::Total))
                    else {
                        continue;
                    };
                    let extra = role(&Role::ExtraTotal);
                    let (c, gaps) = counts(&m.name, side, events, total, extra)?;
                    (c.map(Observation::Counts), gaps)
                }
                MetricKind::Histogram if role(&Role::Count).is_some() => {
                    let Some(n) = role(&Role::Count) else {
                        continue;
                    };
                    let percentiles: Vec<(&str, &Series)> = mine
                        .iter()
                        .filter_map(|(q, s)| match &q.role {
                            Role::Percentile(k) => Some((k.as_str(), *s)),
                            _ => None,
                        })
                        .collect();
                    let (p, gaps) = summaries(&m.name, side, n, &percentiles)?;
                    let note = format!(
                        "{}: CloudWatch's per-minute percentile statistics, judged per period (the period is the unit; no per-request samples)",
                        m.name
                    );
                    if !p.periods.is_empty() && !out.notes.contains(&note) {
                        out.notes.push(note);
                    }
                    (
                        (!p.periods.is_empty()).then_some(Observation::Periods(p)),
                        gaps,
                    )
                }
                _ => {
                    let Some(s) = role(&Role::Samples) else {
                        continue;
                    };
                    let values: Vec<f64> = s.values().copied().collect();
                    (
                        (!values.is_empty()).then_some(Observation::Samples(values)),
                        0,
                    )
                }
            };
            if gaps > 0 {
                out.notes.push(format!(
                    "{}: {}: {gaps} period(s) without every datapoint the metric needs left out (no data, not zero)",
                    m.name,
                    side_name(side)
                ));
            }
            let Some(obs) = obs else { continue };
            let map: &mut SideObservations = if side == Side::Canary {
                &mut out.canary
            } else {
                &mut out.baseline
            };
            map.insert(m.name.clone(), obs);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(points: &[(i64, f64)]) -> Series {
        points.iter().copied().collect()
    }

    #[test]
    fn a_period_lacking_a_percentile_is_left_out_and_counts_are_checked() {
        let n = series(&[(0, 150.0), (60, 140.0)]);
        let p50 = series(&[(0, 40.0), (60, 42.0)]);
        let p95 = series(&[(0, 180.0)]);
        let (p, gaps) =
            summaries("latency", Side::Canary, &n, &[("p50", &p50), ("p95", &p95)]).expect("ok");
        assert_eq!(gaps, 1);
        assert_eq!(p.periods.len(), 1);
        assert_eq!((p.periods[0].start, p.periods[0].n), (0, 150));
        assert_eq!(p.periods[0].percentile(95.0), Some(180.0));
        let err = summaries(
            "latency",
            Side::Baseline,
            &series(&[(0, -3.0)]),
            &[("p50", &p50)],
        )
        .expect_err("negative count");
        assert!(err.to_string().contains("`latency` (baseline)"), "{err}");
    }

    #[test]
    fn a_minute_without_an_errors_datapoint_is_left_out_not_counted_as_zero() {
        let errors = series(&[(0, 3.0)]);
        let invocations = series(&[(0, 10.0), (60, 10.0), (120, 10.0)]);
        let (c, gaps) = counts("errors", Side::Canary, &errors, &invocations, None).expect("ok");
        assert_eq!(
            c,
            Some(Counts {
                events: 3,
                total: 10
            })
        );
        assert_eq!(gaps, 2);
        let (c, gaps) =
            counts("errors", Side::Canary, &Series::new(), &invocations, None).expect("ok");
        assert_eq!((c, gaps), (None, 3), "no errors datapoint at all: no data");
    }

    #[test]
    fn more_events_than_trials_and_negative_counts_are_refused_by_name() {
        let err = counts(
            "conversions",
            Side::Baseline,
            &series(&[(0, 40.0)]),
            &series(&[(0, 30.0)]),
            None,
        )
        .expect_err("events > total");
        assert!(matches!(err, PortError::Rejected(_)), "{err:?}");
        assert!(
            err.to_string().contains("`conversions` (baseline)"),
            "{err}"
        );
        let err = counts(
            "errors",
            Side::Canary,
            &series(&[(0, -1.0)]),
            &series(&[(0, 30.0)]),
            None,
        )
        .expect_err("negative");
        assert!(err.to_string().contains("`errors`"), "{err}");
    }

    #[test]
    fn throttles_count_over_invocations_plus_throttles_where_both_exist() {
        let throttles = series(&[(0, 5.0), (60, 2.0)]);
        let invocations = series(&[(0, 15.0)]);
        let (c, gaps) = counts(
            "throttles",
            Side::Canary,
            &throttles,
            &invocations,
            Some(&throttles),
        )
        .expect("ok");
        assert_eq!(
            c,
            Some(Counts {
                events: 5,
                total: 20
            })
        );
        assert_eq!(gaps, 1);
    }
}
