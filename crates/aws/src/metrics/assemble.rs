//! Turning each query's series into the core's observations, one per metric and side.
//!
//! Missing data is never evidence: a period counts only when every query the metric needs has
//! a datapoint for it. A minute with `Invocations` but no `Errors` datapoint is a minute
//! without an observation of errors, not a minute with zero errors; the minutes left out are
//! named in the notes, and a side with no complete minute has no data for the metric at all.
//! Counts are checked where they are formed: negative counts, more events than trials in a
//! period, and totals too large to count exactly are refused with the metric named.

use canary_gate_core::config::{CanaryConfig, MetricKind};
use canary_gate_core::observe::{Observation, SideObservations};
use canary_gate_core::ports::{Fetched, PortError};
use canary_gate_core::stats::Counts;

use super::answer::Series;
use super::plan::{Query, Role, Side};

/// Counts above this are not summed exactly in `f64` (2^53).
const MAX_EXACT: f64 = 9_007_199_254_740_992.0;

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

/// One value per sample from the periods where the sample count and all five statistics have
/// a datapoint. Returns the periods left out too.
fn histogram(
    metric: &str,
    side: Side,
    stats: [&Series; 6],
) -> Result<(Vec<f64>, usize), PortError> {
    let [n, min, p50, p95, p99, max] = stats;
    let (mut values, mut gaps) = (Vec::new(), 0);
    for t in periods(stats) {
        let (Some(c), Some(a), Some(b), Some(p), Some(d), Some(e)) = (
            n.get(&t),
            min.get(&t),
            p50.get(&t),
            p95.get(&t),
            p99.get(&t),
            max.get(&t),
        ) else {
            gaps += 1;
            continue;
        };
        let c = count(metric, side, "a sample count", t, *c)?;
        values.extend(expand_percentiles(c.round() as usize, *a, *b, *p, *d, *e));
    }
    Ok((values, gaps))
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
                MetricKind::Histogram if role(&Role::Stat("n")).is_some() => {
                    let stat = |name: &'static str| role(&Role::Stat(name));
                    let (Some(n), Some(min), Some(p50), Some(p95), Some(p99), Some(max)) = (
                        stat("n"),
                        stat("min"),
                        stat("p50"),
                        stat("p95"),
                        stat("p99"),
                        stat("max"),
                    ) else {
                        continue;
                    };
                    let (values, gaps) = histogram(&m.name, side, [n, min, p50, p95, p99, max])?;
                    let note = format!(
                        "{}: from CloudWatch percentile statistics (min/p50/p95/p99/max with sample counts), not per-invocation durations",
                        m.name
                    );
                    if !values.is_empty() && !out.notes.contains(&note) {
                        out.notes.push(note);
                    }
                    (
                        (!values.is_empty()).then_some(Observation::Samples(values)),
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
