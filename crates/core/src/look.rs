//! One look's data, from the windows a caller observed to the judge's input. The `phase`
//! step (Lambda), the backtest replay, the post-promotion soak and `analyze` all build their
//! [`JudgeInput`] here, so a backtest and the Lambda judge the same data the same way by
//! construction.
//!
//! A look sees:
//! - the current phase's observations of both versions, at the canary's traffic share;
//! - once the canary takes all traffic there is no live baseline: the reference is the
//!   baseline observed before the phase ([`Windows::earlier_baseline`]);
//! - for the sequential tests, the increment since the previous look and every baseline
//!   observation so far ([`Latest`]).
//!
//! Observations of several intervals are combined by [`merge`] (and [`merge_sorted`] where
//! the sequential tests want the samples in order), the only place that does so.

use crate::config::CanaryConfig;
use crate::judge::sequential::SequentialState;
use crate::judge::{self, JudgeInput, Latest};
use crate::observe::{Observation, SideObservations, Window};
use crate::policy::{self, Decision, PhaseState};
use crate::ports::TimeRange;

/// How long after a weight increase the canary counts as warming up (its new instances
/// start cold): in the look whose data begin within this time of the phase's start, the
/// sequential tests leave out the tail percentiles (above p50); the median and counts still
/// count, so a severe regression is caught at the first look.
pub const WARMUP_SECONDS: i64 = 60;

/// Whether data beginning at `increment_start` fall in the warm-up of a phase that started
/// at `phase_start` (same clock).
pub fn warming_up(increment_start: i64, phase_start: i64) -> bool {
    increment_start < phase_start.saturating_add(WARMUP_SECONDS)
}

/// The windows of one look.
#[derive(Debug, Clone, Copy)]
pub struct Windows<'a> {
    /// The canary's traffic percentage while the phase's observations were made.
    pub canary_weight: f64,
    /// The baseline's observations in the current phase (or the analysis window).
    pub baseline: &'a SideObservations,
    /// The canary's observations in the current phase.
    pub canary: &'a SideObservations,
    /// The baseline observed before the phase: the reference once the canary takes all
    /// traffic. Without it a full-traffic look compares against `baseline`.
    pub earlier_baseline: Option<&'a SideObservations>,
    /// The sequential increment since the previous look.
    pub latest: Option<Latest<'a>>,
    /// Compute the Hodges-Lehmann shift and its interval.
    pub shift_estimate: bool,
    /// This look ends the phase (its soak time is over).
    pub phase_complete: bool,
    /// The observations were routed by the alias (a deployed canary, a recorded timeline):
    /// check the realised split against the weight.
    pub routed: bool,
}

/// Whether a canary at `canary_weight` % still has a live baseline beside it.
pub fn baseline_is_live(canary_weight: f64) -> bool {
    canary_weight < 100.0
}

/// The judge's input for one look: traffic shares from the weight, the live baseline while
/// there is one and the earlier baseline after, and the sequential increment.
pub fn judge_input(w: Windows<'_>) -> JudgeInput<'_> {
    let share = (w.canary_weight / 100.0).clamp(0.0, 1.0);
    let live = baseline_is_live(w.canary_weight);
    JudgeInput {
        baseline: if live {
            w.baseline
        } else {
            w.earlier_baseline.unwrap_or(w.baseline)
        },
        canary: w.canary,
        canary_share: share,
        baseline_share: if live { 1.0 - share } else { 1.0 },
        baseline_is_live: live,
        latest: w.latest,
        shift_estimate: w.shift_estimate,
        phase_complete: w.phase_complete,
        check_split: w.routed,
    }
}

/// The time ranges a deployed canary reads for one look at `now` (seconds since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ranges {
    /// The current phase.
    pub phase: TimeRange,
    /// Before the phase, when the canary takes all traffic (the earlier baseline).
    pub earlier: Option<TimeRange>,
    /// For sequential analysis: since the data the tests already took in, and the whole
    /// canary so far (every baseline observation).
    pub sequential: Option<(TimeRange, TimeRange)>,
}

/// Where a deployed canary stands when it looks, for [`ranges`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// When the canary started.
    pub started: i64,
    /// When the current phase started.
    pub phase_start: i64,
    /// Where the data the sequential tests took in end, if they took any.
    pub data_through: Option<i64>,
    /// Now.
    pub now: i64,
}

/// The ranges to read at a look.
pub fn ranges(clock: Clock, full_traffic: bool, sequential: bool) -> Ranges {
    let Clock {
        started,
        phase_start,
        data_through,
        now,
    } = clock;
    Ranges {
        phase: TimeRange {
            start: phase_start,
            end: now,
        },
        earlier: full_traffic.then_some(TimeRange {
            start: started,
            end: phase_start,
        }),
        sequential: sequential.then(|| {
            // Minutes the source left out (still being ingested) are read at the next look.
            let since = data_through.unwrap_or(phase_start).max(phase_start);
            (
                TimeRange {
                    start: since,
                    end: now,
                },
                TimeRange {
                    start: started,
                    end: now,
                },
            )
        }),
    }
}

/// Adds `from`'s observations to `into`, metric by metric. An observation whose shape does
/// not match what `into` holds (samples against counts) makes that metric unusable: it is
/// removed, so the judge sees no data for it — missing data is never evidence of health.
pub fn merge(into: &mut SideObservations, from: &SideObservations) {
    merge_with(into, from, false);
}

/// Like [`merge`], keeping samples in ascending order (one merge per interval), so the
/// sequential tests' quantile bounds need no sort of the whole history at each look.
pub fn merge_sorted(into: &mut SideObservations, from: &SideObservations) {
    merge_with(into, from, true);
}

fn merge_with(into: &mut SideObservations, from: &SideObservations, sorted: bool) {
    for (name, obs) in from {
        let ok = match (into.get_mut(name), obs) {
            (Some(Observation::Samples(have)), Observation::Samples(new)) if sorted => {
                merge_ascending(have, new);
                true
            }
            (Some(existing), _) => existing.extend(obs).is_ok(),
            (None, Observation::Samples(new)) if sorted => {
                let mut new = new.clone();
                new.sort_unstable_by(f64::total_cmp);
                into.insert(name.clone(), Observation::Samples(new));
                true
            }
            (None, _) => {
                into.insert(name.clone(), obs.clone());
                true
            }
        };
        if !ok {
            into.remove(name);
        }
    }
}

fn merge_ascending(have: &mut Vec<f64>, new: &[f64]) {
    let mut new = new.to_vec();
    new.sort_unstable_by(f64::total_cmp);
    let old = std::mem::take(have);
    let (mut i, mut j) = (0, 0);
    have.reserve(old.len() + new.len());
    while i < old.len() || j < new.len() {
        if j >= new.len() || (i < old.len() && old[i] <= new[j]) {
            have.push(old[i]);
            i += 1;
        } else {
            have.push(new[j]);
            j += 1;
        }
    }
}

/// Judges one window as `canary-gate analyze` does: the window holds the phase's baseline
/// (live, or the earlier one at 100 %) and is one look of the sequential tests; a window
/// may be assembled by hand, with no alias behind it, so its split is not checked.
pub fn decide_window(config: &CanaryConfig, window: &Window) -> Decision {
    let phase = &config.canary_phases[window.phase - 1];
    let input = judge_input(Windows {
        canary_weight: config.phase_weight(window.phase - 1),
        baseline: &window.baseline,
        canary: &window.canary,
        earlier_baseline: None,
        latest: Some(Latest {
            baseline: &window.baseline,
            canary: &window.canary,
            baseline_all: &window.baseline,
            warming_up: false,
        }),
        shift_estimate: true,
        phase_complete: window
            .elapsed_seconds
            .is_none_or(|e| e >= phase.duration_seconds),
        routed: false,
    });
    let report = judge::judge_with_state(config, &input, &mut SequentialState::default());
    let elapsed = window.elapsed_seconds.unwrap_or(phase.duration_seconds);
    let state = PhaseState {
        phase: window.phase,
        elapsed_in_phase_seconds: elapsed,
        total_elapsed_seconds: config.canary_phases[..window.phase - 1]
            .iter()
            .map(|p| p.duration_seconds)
            .sum::<u64>()
            + elapsed,
        hold_seconds: 0,
    };
    policy::decide(config, report, &state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Counts;

    fn side(pairs: &[(&str, Observation)]) -> SideObservations {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn merge_appends_samples_and_sums_counts() {
        let mut a = side(&[
            ("latency", Observation::Samples(vec![3.0, 1.0])),
            (
                "errors",
                Observation::Counts(Counts {
                    events: 1,
                    total: 10,
                }),
            ),
        ]);
        let b = side(&[
            ("latency", Observation::Samples(vec![2.0])),
            (
                "errors",
                Observation::Counts(Counts {
                    events: 2,
                    total: 5,
                }),
            ),
            ("new", Observation::Samples(vec![7.0])),
        ]);
        merge(&mut a, &b);
        assert_eq!(a["latency"], Observation::Samples(vec![3.0, 1.0, 2.0]));
        assert_eq!(
            a["errors"],
            Observation::Counts(Counts {
                events: 3,
                total: 15
            })
        );
        assert_eq!(a["new"], Observation::Samples(vec![7.0]));
    }

    #[test]
    fn merge_sorted_keeps_samples_in_order() {
        let mut a = SideObservations::new();
        merge_sorted(
            &mut a,
            &side(&[("l", Observation::Samples(vec![5.0, 1.0]))]),
        );
        merge_sorted(
            &mut a,
            &side(&[("l", Observation::Samples(vec![4.0, 0.5, 9.0]))]),
        );
        assert_eq!(a["l"], Observation::Samples(vec![0.5, 1.0, 4.0, 5.0, 9.0]));
    }

    #[test]
    fn a_shape_mismatch_leaves_the_metric_without_data() {
        let mut a = side(&[("l", Observation::Samples(vec![1.0]))]);
        merge(
            &mut a,
            &side(&[(
                "l",
                Observation::Counts(Counts {
                    events: 0,
                    total: 3,
                }),
            )]),
        );
        assert!(!a.contains_key("l"), "{a:?}");
    }

    #[test]
    fn full_traffic_compares_against_the_earlier_baseline() {
        let phase = side(&[("l", Observation::Samples(vec![1.0]))]);
        let earlier = side(&[("l", Observation::Samples(vec![2.0]))]);
        let w = |weight| Windows {
            canary_weight: weight,
            baseline: &phase,
            canary: &phase,
            earlier_baseline: Some(&earlier),
            latest: None,
            shift_estimate: false,
            phase_complete: false,
            routed: true,
        };
        let live = judge_input(w(25.0));
        assert!(live.baseline_is_live);
        assert!(std::ptr::eq(live.baseline, &phase));
        assert!((live.canary_share - 0.25).abs() < 1e-12);
        assert!((live.baseline_share - 0.75).abs() < 1e-12);
        let full = judge_input(w(100.0));
        assert!(!full.baseline_is_live);
        assert!(std::ptr::eq(full.baseline, &earlier));
        assert_eq!((full.canary_share, full.baseline_share), (1.0, 1.0));
    }

    #[test]
    fn ranges_read_the_increment_from_where_the_data_ended() {
        let clock = Clock {
            started: 1000,
            phase_start: 1600,
            data_through: Some(1900),
            now: 2000,
        };
        let r = ranges(clock, true, true);
        assert_eq!(
            r.phase,
            TimeRange {
                start: 1600,
                end: 2000
            }
        );
        assert_eq!(
            r.earlier,
            Some(TimeRange {
                start: 1000,
                end: 1600
            })
        );
        let (inc, all) = r.sequential.expect("sequential");
        assert_eq!(
            inc,
            TimeRange {
                start: 1900,
                end: 2000
            }
        );
        assert_eq!(
            all,
            TimeRange {
                start: 1000,
                end: 2000
            }
        );
        // Data from before the phase never counts as the phase's increment.
        let stale = ranges(
            Clock {
                data_through: Some(1200),
                ..clock
            },
            false,
            true,
        );
        assert_eq!(stale.sequential.expect("seq").0.start, 1600);
        assert_eq!(stale.earlier, None);
        assert!(ranges(clock, false, false).sequential.is_none());
    }
}
