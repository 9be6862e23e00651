//! Recording a past window of both versions' metrics as a backtest timeline: one
//! [`MetricsSource::fetch`] per interval — the same fetch a deployed look makes — each
//! becoming one [`Interval`] whose `at_seconds` is the interval's end counted from the
//! window's start. Observations are kept as the source returned them (per-period summaries
//! keep their epoch-second period starts, which is what pairs baseline and canary periods).
//! What the source says about how it obtained the data stays beside each interval: the
//! timeline line has no place for it.

use thiserror::Error;

use crate::config::{CanaryConfig, Target};
use crate::controller::Interval;
use crate::ports::{MetricsSource, PortError, TimeRange};

/// A past window cut into equal intervals `[start + i·interval, start + (i+1)·interval)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The window's start, in seconds since the Unix epoch.
    pub start: i64,
    /// Seconds per interval (at least 1).
    pub interval_seconds: u64,
    /// How many intervals.
    pub intervals: u64,
}

impl Window {
    /// The time range of the `index`-th interval (0-based).
    pub fn range(&self, index: u64) -> TimeRange {
        let start = self.start + (index * self.interval_seconds) as i64;
        TimeRange {
            start,
            end: start + self.interval_seconds as i64,
        }
    }

    /// Where the window ends (exclusive).
    pub fn end(&self) -> i64 {
        self.start + (self.intervals * self.interval_seconds) as i64
    }
}

/// One recorded interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// The timeline line.
    pub interval: Interval,
    /// The time range it was fetched for.
    pub range: TimeRange,
    /// How the source obtained the data (periods left out, approximations, truncation).
    pub notes: Vec<String>,
}

/// A fetch that failed, naming the interval it was for; nothing after it was fetched.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("interval {number} of {of} ({} to {}, epoch seconds)", range.start, range.end)]
pub struct RecordError {
    /// 1-based number of the interval.
    pub number: u64,
    /// How many intervals the window has.
    pub of: u64,
    /// Its time range.
    pub range: TimeRange,
    /// What the source said.
    #[source]
    pub source: PortError,
}

/// Fetches every interval of `window` in time order and returns them as timeline lines.
/// `progress` sees each interval as it arrives with its 1-based number. Stops at the first
/// failed fetch.
pub async fn record<M: MetricsSource>(
    source: &M,
    config: &CanaryConfig,
    target: &Target,
    window: Window,
    mut progress: impl FnMut(u64, &Recorded),
) -> Result<Vec<Recorded>, RecordError> {
    let mut out = Vec::new();
    for index in 0..window.intervals {
        let range = window.range(index);
        let fetched = source
            .fetch(config, target, range)
            .await
            .map_err(|source| RecordError {
                number: index + 1,
                of: window.intervals,
                range,
                source,
            })?;
        let mut notes = fetched.notes;
        // A source that leaves out minutes it may still be ingesting would make this
        // interval look quieter than it was; say so rather than pass it off as whole.
        if let Some(through) = fetched.through.filter(|t| *t < range.end) {
            notes.push(format!(
                "the source left out the last {} s of this interval (data only through {through})",
                range.end - through
            ));
        }
        let recorded = Recorded {
            interval: Interval {
                at_seconds: (index + 1) * window.interval_seconds,
                baseline: fetched.baseline,
                canary: fetched.canary,
            },
            range,
            notes,
        };
        progress(index + 1, &recorded);
        out.push(recorded);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::observe::Observation;
    use crate::ports::Fetched;
    use crate::sim::run_ready;
    use crate::stats::Counts;

    fn config() -> CanaryConfig {
        CanaryConfig::from_json(include_str!("../../../examples/demo-config.json"))
            .expect("demo config")
    }

    /// Errors counted from the range asked (so each interval is told apart), failing at one
    /// range start and lagging `lag` seconds behind the end asked for.
    struct Scripted {
        asked: Mutex<Vec<TimeRange>>,
        fail_at: Option<i64>,
        lag: i64,
    }

    impl Scripted {
        fn new() -> Self {
            Self {
                asked: Mutex::new(Vec::new()),
                fail_at: None,
                lag: 0,
            }
        }
    }

    impl MetricsSource for Scripted {
        async fn fetch(
            &self,
            _: &CanaryConfig,
            _: &Target,
            range: TimeRange,
        ) -> Result<Fetched, PortError> {
            self.asked.lock().expect("lock").push(range);
            if self.fail_at == Some(range.start) {
                return Err(PortError::Throttled("Rate exceeded".into()));
            }
            let minute = ((range.start - 1_800_000_000) / 60) as u64;
            let mut f = Fetched {
                notes: vec!["errors: counted".into()],
                through: Some(range.end - self.lag),
                ..Fetched::default()
            };
            f.baseline.insert(
                "errors".into(),
                Observation::Counts(Counts {
                    events: minute,
                    total: 1000,
                }),
            );
            Ok(f)
        }
    }

    fn window() -> Window {
        Window {
            start: 1_800_000_000,
            interval_seconds: 120,
            intervals: 3,
        }
    }

    #[test]
    fn one_fetch_per_interval_in_order_with_ends_counted_from_the_start() {
        let source = Scripted::new();
        let c = config();
        let t = c.target.clone().expect("target");
        let mut seen = Vec::new();
        let got = run_ready(record(&source, &c, &t, window(), |n, r| {
            seen.push((n, r.interval.at_seconds));
        }))
        .expect("ready")
        .expect("recorded");
        let asked = source.asked.lock().expect("lock").clone();
        assert_eq!(
            asked,
            vec![
                TimeRange {
                    start: 1_800_000_000,
                    end: 1_800_000_120
                },
                TimeRange {
                    start: 1_800_000_120,
                    end: 1_800_000_240
                },
                TimeRange {
                    start: 1_800_000_240,
                    end: 1_800_000_360
                },
            ]
        );
        assert_eq!(seen, vec![(1, 120), (2, 240), (3, 360)]);
        assert_eq!(window().end(), 1_800_000_360);
        assert_eq!(
            got[1].interval.baseline["errors"],
            Observation::Counts(Counts {
                events: 2,
                total: 1000
            }),
            "each line holds its own interval's data"
        );
        assert_eq!(got[2].notes, vec!["errors: counted".to_string()]);
    }

    #[test]
    fn a_failed_fetch_names_its_interval_and_stops_the_recording() {
        let source = Scripted {
            fail_at: Some(1_800_000_120),
            ..Scripted::new()
        };
        let c = config();
        let t = c.target.clone().expect("target");
        let e = run_ready(record(&source, &c, &t, window(), |_, _| {}))
            .expect("ready")
            .expect_err("throttled");
        assert_eq!((e.number, e.of, e.range.start), (2, 3, 1_800_000_120));
        assert!(e.source.is_transient());
        assert!(e.to_string().starts_with("interval 2 of 3"), "{e}");
        assert_eq!(
            source.asked.lock().expect("lock").len(),
            2,
            "nothing after it"
        );
    }

    #[test]
    fn a_source_that_leaves_out_recent_seconds_says_so_per_interval() {
        let source = Scripted {
            lag: 60,
            ..Scripted::new()
        };
        let c = config();
        let t = c.target.clone().expect("target");
        let got = run_ready(record(&source, &c, &t, window(), |_, _| {}))
            .expect("ready")
            .expect("recorded");
        assert!(
            got[0].notes[1].contains("left out the last 60 s"),
            "{:?}",
            got[0].notes
        );
    }
}
