//! Judging a histogram metric from per-period percentile summaries (CloudWatch's per-minute
//! statistics). The period is the unit: a summary is not a set of independent samples, so
//! nothing here expands one into pseudo-samples.
//!
//! In each period both versions report percentiles of their own requests. For a compared
//! canary percentile q, the baseline's percentiles at or above q form a ladder; the period's
//! level is the highest rung the canary's q-percentile exceeds by more than the tolerance.
//! Each rung's null probability is exact and distribution-free (two samples of one
//! distribution of the period's sizes: [`order_statistic_exceeds`]), so a canary median above
//! the baseline's p75 in a period of 150 requests is as strong as evidence gets, and a
//! canary p95 a little above the baseline's is what chance gives half the time.
//!
//! - Sequential: each compared percentile has a [`PeriodTest`] over the periods (odds-ratio
//!   mixture on the ladder), averaged over percentiles.
//! - Fixed horizon: each period's level is a p-value (the exact probability of reaching that
//!   rung); Fisher's method combines the periods; Bonferroni over the compared percentiles.
//! - Without a live baseline (100 %), periods cannot be paired: the canary's per-period
//!   values are compared with the earlier baseline's per-period values (Mann-Whitney on
//!   periods; sequentially, exceedance of an upper bound of their median).

use statrs::distribution::{ChiSquared, ContinuousCDF};

use super::model::{Change, MetricReport, SideStats};
use crate::config::{Direction, MetricConfig};
use crate::observe::{Period, Periods};
use crate::stats::{self, Alternative, Method, TestKind, TestResult, order_statistic_exceeds};

/// Pairs of (baseline, canary) periods with the same start.
pub(crate) fn paired<'a>(b: &'a Periods, c: &'a Periods) -> Vec<(&'a Period, &'a Period)> {
    let by_start: std::collections::BTreeMap<i64, &Period> =
        b.periods.iter().map(|p| (p.start, p)).collect();
    c.periods
        .iter()
        .filter_map(|cp| by_start.get(&cp.start).map(|bp| (*bp, cp)))
        .collect()
}

/// One period's ladder for canary percentile `q` (percent): each rung's null probability
/// (decreasing) and the highest rung reached, if any. `None` when either side lacks the
/// percentiles to compare.
pub(crate) fn ladder(
    b: &Period,
    c: &Period,
    q: f64,
    higher_is_worse: bool,
    tol: f64,
) -> Option<(Vec<f64>, Option<usize>)> {
    let cv = c.percentile(q)?;
    let mut rungs: Vec<(f64, f64)> = b
        .stats
        .keys()
        .filter_map(|k| crate::observe::percentile_key(k))
        .filter(|&p| {
            if higher_is_worse {
                p >= q - 1e-9
            } else {
                p <= q + 1e-9
            }
        })
        .filter_map(|p| b.percentile(p).map(|v| (p, v)))
        .collect();
    rungs.sort_by(|x, y| x.0.total_cmp(&y.0));
    if !higher_is_worse {
        rungs.reverse();
    }
    if rungs.is_empty() || b.n == 0 || c.n == 0 {
        return None;
    }
    let kc = crate::observe::nearest_rank(c.n, q / 100.0);
    let mut tails = Vec::with_capacity(rungs.len());
    let mut level = None;
    for (i, (p, bv)) in rungs.iter().enumerate() {
        let kb = crate::observe::nearest_rank(b.n, p / 100.0);
        let above = order_statistic_exceeds(c.n, kc, b.n, kb);
        let (t, reached) = if higher_is_worse {
            (above, cv > bv * (1.0 + tol))
        } else {
            (1.0 - above, cv < bv * (1.0 - tol))
        };
        // The rungs are nested only while the probabilities fall; a rung that is no rarer
        // than the one below adds nothing.
        if tails.last().is_some_and(|&last: &f64| t > last) {
            break;
        }
        tails.push(t);
        if reached {
            level = Some(i);
        }
    }
    Some((tails, level))
}

/// The median of some values (`None` when empty).
fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable_by(f64::total_cmp);
    Some(stats::percentile(&v, 50.0))
}

/// Each period's `q`-percentile.
pub(crate) fn values(p: &Periods, q: f64) -> Vec<f64> {
    p.periods.iter().filter_map(|x| x.percentile(q)).collect()
}

fn side(p: &Periods, qs: &[f64]) -> SideStats {
    SideStats::Periods {
        periods: p.periods.len(),
        n: p.total(),
        percentiles: qs
            .iter()
            .filter_map(|&q| median(values(p, q)).map(|v| (q, v)))
            .collect(),
    }
}

/// The fixed-horizon judgement of per-period summaries; `live` when the baseline's periods
/// ran beside the canary's.
pub(crate) fn judge_fixed(
    m: &MetricConfig,
    report: &mut MetricReport,
    b: &Periods,
    c: &Periods,
    live: bool,
) -> Result<(), String> {
    let qs = compared(m);
    report.test = TestKind::PeriodPercentiles;
    report.baseline = Some(side(b, &qs));
    report.canary = Some(side(c, &qs));
    let pairs = paired(b, c);
    if live && pairs.is_empty() {
        return Err("no period has summaries from both versions".to_string());
    }
    report.changes = qs
        .iter()
        .filter_map(|&q| {
            let (vb, vc) = if live {
                (
                    median(pairs.iter().filter_map(|(x, _)| x.percentile(q)).collect())?,
                    median(pairs.iter().filter_map(|(_, y)| y.percentile(q)).collect())?,
                )
            } else {
                (median(values(b, q))?, median(values(c, q))?)
            };
            Some(Change::new(format!("p{q}"), vb, vc))
        })
        .collect();
    let direction = m.direction();
    let sides: &[bool] = match direction {
        Direction::HigherIsWorse => &[true],
        Direction::LowerIsWorse => &[false],
        Direction::Either => &[true, false],
    };
    let tol = |up: bool| m.practical_threshold(up);
    let mut best: Option<(f64, f64)> = None;
    let mut tests = 0usize;
    for &q in &qs {
        for &up in sides {
            let (stat, p) = if live {
                let mut fisher = 0.0;
                let mut used = 0usize;
                for (bp, cp) in &pairs {
                    if let Some((tails, level)) = ladder(bp, cp, q, up, tol(up)) {
                        let p = level.map_or(1.0, |l| tails[l]).max(1e-300);
                        fisher += -2.0 * p.ln();
                        used += 1;
                    }
                }
                if used == 0 {
                    continue;
                }
                let chi = ChiSquared::new(2.0 * used as f64).map_err(|e| e.to_string())?;
                (fisher, chi.sf(fisher))
            } else {
                let (vb, vc) = (values(b, q), values(c, q));
                if vb.is_empty() || vc.is_empty() {
                    continue;
                }
                let alt = if up {
                    Alternative::Greater
                } else {
                    Alternative::Less
                };
                let r = stats::mann_whitney_u(&vc, &vb, alt).map_err(|e| e.to_string())?;
                (r.statistic, r.p_value)
            };
            tests += 1;
            if best.is_none_or(|(_, bp)| p < bp) {
                best = Some((stat, p));
            }
        }
    }
    let Some((statistic, p)) = best else {
        return Err(format!(
            "the summaries lack the compared percentiles ({})",
            qs.iter()
                .map(|q| format!("p{q}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    report.result = Some(TestResult {
        test: TestKind::PeriodPercentiles,
        statistic,
        p_value: (p * tests as f64).min(1.0),
        alternative: super::fixed::alternative_for(direction),
        method: if live {
            Method::Exact
        } else {
            Method::Asymptotic
        },
        effect_size: None,
    });
    Ok(())
}

/// The percentiles a metric compares (its configured ones, else the median).
pub(crate) fn compared(m: &MetricConfig) -> Vec<f64> {
    or_median(&m.percentiles())
}

/// `percentiles`, or the median when there are none.
pub(crate) fn or_median(percentiles: &[f64]) -> Vec<f64> {
    if percentiles.is_empty() {
        vec![50.0]
    } else {
        percentiles.to_vec()
    }
}
