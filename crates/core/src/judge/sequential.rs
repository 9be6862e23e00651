//! Sequential judging of one metric: anytime-valid e-processes that accumulate over the
//! whole canary, so the false-rollback rate stays at or below the tier's p-value however
//! often the controller looks.
//!
//! - Counters, live baseline: [`ShareTest`] on the canary's share of each interval's events.
//! - Distributions: for each compared percentile q, an [`ExceedanceTest`] on how often a new
//!   canary sample exceeds (1 + tolerance) × an upper confidence bound of the baseline's
//!   q-quantile (null rate 1 − q); lower-is-worse mirrors it. The bound holds uniformly over
//!   looks (its error, at most [`BASELINE_ALPHA`], adds to the guarantee). The percentiles'
//!   e-values are averaged, which is again an e-value.
//! - At 100 % traffic there is no live baseline: the comparison is against the baseline
//!   observed earlier in the canary, widened for drift (the baseline's own trend between the
//!   first and last third of its intervals) and, for counts, for overdispersion (quasi-
//!   likelihood with the baseline's between-interval dispersion). That guarantee is weaker —
//!   it assumes the baseline would have stayed within the allowance — and reports say so.
//!
//! A later e-process continues from the earlier one by multiplication (a product of
//! sequential e-processes is an e-process), so evidence gathered at 5 % still counts at 25 %.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::Direction;
use crate::config::MetricKind;
use crate::observe::Observation;
use crate::sequential::{ExceedanceTest, PeriodTest, ShareTest};
use crate::stats::special::norm_ppf;
use crate::stats::{Counts, percentile};

/// Error budget of the baseline's quantile and rate bounds, spent over looks as
/// 6/(π² t²) at look t.
pub const BASELINE_ALPHA: f64 = 0.001;

/// The per-metric state carried between looks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct MetricState {
    share: Option<ShareTest>,
    stale_rate: Option<ExceedanceTest>,
    /// Per percentile (as fraction) the exceedance test.
    quantiles: Vec<(f64, Direction, ExceedanceTest)>,
    /// Per percentile (in percent) and direction the per-period test (summaries).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    periods: Vec<(f64, Direction, PeriodTest)>,
    /// Per-interval baseline summaries, for drift and dispersion: (median or rate, events,
    /// total).
    baseline_intervals: Vec<(f64, u64, u64)>,
    /// Largest log e-value reached (the anytime p-value is exp(−max)).
    max_log_e: f64,
}

/// Sequential state of all metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SequentialState {
    /// Looks taken.
    pub looks: u32,
    /// Per metric.
    pub metrics: BTreeMap<String, MetricState>,
}

/// What one metric's e-process says now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequentialEvidence {
    /// Anytime-valid p-value (1 / largest e-value so far).
    pub p_value: f64,
    /// Current e-value.
    pub e_value: f64,
    /// Whether the latest update compared against a baseline observed earlier.
    pub stale_baseline: bool,
    /// What the e-value tests, in words.
    pub description: String,
}

/// The most baseline intervals a metric's state keeps (the newest): enough for the drift
/// and overdispersion estimates, and a bound on the state Step Functions carries (a few
/// kilobytes per metric however long the canary runs).
const MAX_BASELINE_INTERVALS: usize = 240;

impl MetricState {
    fn record_baseline(&mut self, interval: (f64, u64, u64)) {
        if self.baseline_intervals.len() >= MAX_BASELINE_INTERVALS {
            let excess = self.baseline_intervals.len() + 1 - MAX_BASELINE_INTERVALS;
            self.baseline_intervals.drain(..excess);
        }
        self.baseline_intervals.push(interval);
    }

    /// Overdispersion of the baseline's per-interval counts (1 when Poisson-like).
    pub fn dispersion(&self) -> f64 {
        dispersion(&self.baseline_intervals)
    }

    /// Relative drift of the baseline's per-interval medians (distributions).
    pub fn drift(&self) -> f64 {
        let medians: Vec<f64> = self.baseline_intervals.iter().map(|i| i.0).collect();
        drift(&medians)
    }
}

fn z_for_look(look: u32) -> f64 {
    let t = f64::from(look.max(1));
    norm_ppf(1.0 - BASELINE_ALPHA * 6.0 / (std::f64::consts::PI.powi(2) * t * t))
}

/// Upper (or lower) confidence bound of the q-quantile of an ascending sample.
fn quantile_bound(sorted: &[f64], q: f64, z: f64, upper: bool) -> Option<f64> {
    let n = sorted.len() as f64;
    let spread = z * (n * q * (1.0 - q)).sqrt();
    if upper {
        let k = (n * q + spread).ceil();
        (k >= 1.0 && k <= n).then(|| sorted[k as usize - 1])
    } else {
        let k = (n * q - spread).floor();
        (k >= 1.0).then(|| sorted[k as usize - 1])
    }
}

/// Relative trend of the baseline between the first and last third of its intervals (>= 0).
fn drift(values: &[f64]) -> f64 {
    let k = values.len() / 3;
    if k == 0 {
        return 0.0;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (early, late) = (mean(&values[..k]), mean(&values[values.len() - k..]));
    if early <= 0.0 {
        0.0
    } else {
        ((late - early) / early).abs()
    }
}

/// Pearson dispersion of per-interval counts around their pooled rate (>= 1).
fn dispersion(intervals: &[(f64, u64, u64)]) -> f64 {
    let (events, total): (u64, u64) = intervals.iter().fold((0, 0), |a, i| (a.0 + i.1, a.1 + i.2));
    let used: Vec<_> = intervals.iter().filter(|i| i.2 > 0).collect();
    if total == 0 || events == 0 || used.len() < 3 {
        return 1.0;
    }
    let p = events as f64 / total as f64;
    let chi2: f64 = used
        .iter()
        .map(|i| {
            let e = i.2 as f64 * p;
            (i.1 as f64 - e).powi(2) / (e * (1.0 - p))
        })
        .sum();
    (chi2 / (used.len() - 1) as f64).max(1.0)
}

/// Feeds one look's new observations into a metric's state and returns its evidence.
/// `baseline_all` holds every baseline observation so far (for quantile and rate bounds);
/// `live` is false at full traffic.
#[allow(clippy::too_many_arguments)]
pub fn update_metric(
    st: &mut MetricState,
    kind: MetricKind,
    direction: Direction,
    tolerance: (f64, f64),
    percentiles: &[f64],
    look: u32,
    new_baseline: Option<&Observation>,
    new_canary: Option<&Observation>,
    baseline_all: Option<&Observation>,
    live: bool,
    warming_up: bool,
) -> SequentialEvidence {
    let (tol_up, tol_down) = tolerance;
    let z = z_for_look(look);
    let mut stale = false;
    let description;
    match (kind, new_canary, baseline_all) {
        (MetricKind::Counter, Some(Observation::Counts(c)), Some(Observation::Counts(b_all))) => {
            if let Some(Observation::Counts(b)) = new_baseline {
                if live {
                    st.record_baseline((b.rate().unwrap_or(0.0), b.events, b.total));
                }
                if live && st.share.is_none() {
                    let tol = if direction == Direction::LowerIsWorse {
                        tol_down
                    } else {
                        tol_up
                    };
                    st.share = ShareTest::new(direction, tol).ok();
                }
                if live && let Some(s) = &mut st.share {
                    s.update(*c, *b);
                }
            }
            if !live && direction != Direction::LowerIsWorse {
                stale = true;
                if st.stale_rate.is_none() {
                    // One bound, fixed when the live baseline ends.
                    let z_once = norm_ppf(1.0 - BASELINE_ALPHA);
                    st.stale_rate = stale_rate_test(b_all, &st.baseline_intervals, tol_up, z_once);
                }
                if let Some(t) = &mut st.stale_rate {
                    t.update(c.events as f64, c.total.saturating_sub(c.events) as f64);
                }
            }
            description = if stale {
                "anytime-valid: canary rate vs the earlier baseline's upper bound (drift and overdispersion allowed)".to_string()
            } else {
                "anytime-valid: mixture test on the canary's share of events given its traffic share".to_string()
            };
        }
        (_, Some(Observation::Samples(c)), Some(Observation::Samples(b_all))) => {
            // Callers that keep the history sorted (backtests) save the sort.
            let mut sorted = b_all.clone();
            if !sorted.is_sorted_by(|a, b| a <= b) {
                sorted.sort_unstable_by(f64::total_cmp);
            }
            if live
                && let Some(Observation::Samples(b)) = new_baseline
                && !b.is_empty()
            {
                let mut s = b.clone();
                s.sort_unstable_by(f64::total_cmp);
                st.record_baseline((percentile(&s, 50.0), 0, 0));
            }
            let allowance = if live {
                1.0
            } else {
                stale = true;
                let medians: Vec<f64> = st.baseline_intervals.iter().map(|i| i.0).collect();
                1.0 + drift(&medians)
            };
            let qs = super::periods::or_median(percentiles);
            if st.quantiles.is_empty() {
                for &p in &qs {
                    let q = p / 100.0;
                    if matches!(direction, Direction::HigherIsWorse | Direction::Either)
                        && let Ok(t) = ExceedanceTest::new(1.0 - q)
                    {
                        st.quantiles.push((q, Direction::HigherIsWorse, t));
                    }
                    if matches!(direction, Direction::LowerIsWorse | Direction::Either)
                        && let Ok(t) = ExceedanceTest::new(q)
                    {
                        st.quantiles.push((q, Direction::LowerIsWorse, t));
                    }
                }
            }
            for (q, dir, test) in &mut st.quantiles {
                if warming_up && *q > 0.5 {
                    continue;
                }
                let upper = *dir == Direction::HigherIsWorse;
                let Some(bound) = quantile_bound(&sorted, *q, z, upper) else {
                    continue;
                };
                let (hits, n) = if upper {
                    let limit = bound * (1.0 + tol_up) * allowance;
                    (c.iter().filter(|&&x| x > limit).count(), c.len())
                } else {
                    let limit = bound * (1.0 - tol_down) / allowance;
                    (c.iter().filter(|&&x| x < limit).count(), c.len())
                };
                test.update(hits as f64, (n - hits) as f64);
            }
            description = format!(
                "anytime-valid: how often canary samples exceed (1 + tolerance) x the baseline's upper-bounded {} percentile(s){}",
                qs.iter()
                    .map(|p| format!("p{p}"))
                    .collect::<Vec<_>>()
                    .join("/"),
                if stale {
                    ", against the earlier baseline widened for drift"
                } else {
                    ""
                }
            );
        }
        (_, Some(Observation::Periods(c)), Some(Observation::Periods(b_all))) => {
            let qs = super::periods::or_median(percentiles);
            if st.periods.is_empty() {
                for &q in &qs {
                    if matches!(direction, Direction::HigherIsWorse | Direction::Either) {
                        st.periods
                            .push((q, Direction::HigherIsWorse, PeriodTest::default()));
                    }
                    if matches!(direction, Direction::LowerIsWorse | Direction::Either) {
                        st.periods
                            .push((q, Direction::LowerIsWorse, PeriodTest::default()));
                    }
                }
            }
            if live {
                if let Some(Observation::Periods(b)) = new_baseline {
                    let medians: Vec<f64> = b
                        .periods
                        .iter()
                        .filter_map(|p| p.percentile(50.0))
                        .collect();
                    if !medians.is_empty() {
                        let mut m = medians;
                        m.sort_unstable_by(f64::total_cmp);
                        st.record_baseline((percentile(&m, 50.0), 0, 0));
                    }
                    let pairs = super::periods::paired(b, c);
                    for (q, dir, test) in &mut st.periods {
                        if warming_up && *q > 50.0 {
                            continue;
                        }
                        let up = *dir == Direction::HigherIsWorse;
                        let tol = if up { tol_up } else { tol_down };
                        for (bp, cp) in &pairs {
                            if let Some((tails, level)) =
                                super::periods::ladder(bp, cp, *q, up, tol)
                            {
                                test.update_ladder(&tails, level);
                            }
                        }
                    }
                }
            } else {
                stale = true;
                let medians: Vec<f64> = st.baseline_intervals.iter().map(|i| i.0).collect();
                let allowance = 1.0 + drift(&medians);
                for (q, dir, test) in &mut st.periods {
                    if warming_up && *q > 50.0 {
                        continue;
                    }
                    let up = *dir == Direction::HigherIsWorse;
                    let mut earlier = super::periods::values(b_all, *q);
                    earlier.sort_unstable_by(f64::total_cmp);
                    let Some(bound) = quantile_bound(&earlier, 0.5, z, up) else {
                        continue;
                    };
                    for cv in super::periods::values(c, *q) {
                        let exceeded = if up {
                            cv > bound * (1.0 + tol_up) * allowance
                        } else {
                            cv < bound * (1.0 - tol_down) / allowance
                        };
                        test.update(exceeded, 0.5);
                    }
                }
            }
            description = format!(
                "anytime-valid: per-period comparison of the canary's {} with the baseline's percentiles (the period is the unit; exact null probability per period){}",
                qs.iter()
                    .map(|p| format!("p{p}"))
                    .collect::<Vec<_>>()
                    .join("/"),
                if stale {
                    ", against an upper bound of the earlier baseline's per-period median, widened for drift"
                } else {
                    ""
                }
            );
        }
        _ => description = "anytime-valid: no new observations".to_string(),
    }
    let mut description = description;
    if warming_up && !matches!(kind, MetricKind::Counter) {
        description.push_str(
            "; warm-up (the phase's first minute, new instances cold): percentiles above p50 not counted at this look",
        );
    }
    let log_e = current_log_e(st);
    st.max_log_e = st.max_log_e.max(log_e);
    SequentialEvidence {
        p_value: (-st.max_log_e).exp().min(1.0),
        e_value: log_e.exp(),
        stale_baseline: stale,
        description,
    }
}

/// The metric's current log e-value: the share test times the stale-baseline test (the
/// latter starts at 1 when the live baseline ends), or the mean of the quantiles' e-values.
fn current_log_e(st: &MetricState) -> f64 {
    if !st.periods.is_empty() {
        let mean =
            st.periods.iter().map(|(_, _, t)| t.e_value()).sum::<f64>() / st.periods.len() as f64;
        return mean.ln();
    }
    if !st.quantiles.is_empty() {
        let mean = st
            .quantiles
            .iter()
            .map(|(_, _, t)| t.e_value())
            .sum::<f64>()
            / st.quantiles.len() as f64;
        return mean.ln();
    }
    let share = st.share.as_ref().map_or(0.0, |s| s.e_value().ln());
    let stale = st.stale_rate.as_ref().map_or(0.0, |t| t.e_value().ln());
    share + stale
}

/// The stale-baseline rate test: H0: canary rate <= (1 + tol) × an upper bound of the
/// earlier baseline rate, with quasi-likelihood dispersion from the baseline's intervals.
fn stale_rate_test(
    b_all: &Counts,
    intervals: &[(f64, u64, u64)],
    tol: f64,
    z: f64,
) -> Option<ExceedanceTest> {
    if b_all.total == 0 {
        return None;
    }
    let (k, n) = (b_all.events as f64, b_all.total as f64);
    // Wilson-type upper bound, positive even with no events.
    let ucb = (k + z * z / 2.0 + z * (k + z * z / 4.0).sqrt()) / n;
    // Per-interval rates of a few events each are too noisy to measure drift; overdispersion
    // (below) carries the between-interval variation instead.
    let p0 = (ucb * (1.0 + tol)).min(0.5);
    let mut t = ExceedanceTest::new(p0).ok()?;
    t.dispersion = dispersion(intervals);
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_bounds_bracket_the_quantile() {
        let x: Vec<f64> = (1..=1000).map(f64::from).collect();
        let up = quantile_bound(&x, 0.5, 3.0, true).expect("upper");
        let lo = quantile_bound(&x, 0.5, 3.0, false).expect("lower");
        assert!(lo < 500.0 && up > 500.0, "{lo} {up}");
        assert_eq!(quantile_bound(&x[..10], 0.99, 3.0, true), None);
    }

    #[test]
    fn drift_and_dispersion_are_measured() {
        assert!((drift(&[10.0, 10.0, 10.0, 12.0, 12.0, 12.0]) - 0.2).abs() < 1e-12);
        let steady = [
            (0.0, 3, 3000),
            (0.0, 4, 3000),
            (0.0, 3, 3000),
            (0.0, 4, 3000),
        ];
        assert_eq!(dispersion(&steady), 1.0);
        let bursty = [
            (0.0, 0, 3000),
            (0.0, 30, 3000),
            (0.0, 1, 3000),
            (0.0, 25, 3000),
        ];
        assert!(dispersion(&bursty) > 5.0);
    }
}
