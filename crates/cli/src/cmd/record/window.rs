//! The window `record` may fetch, checked before any request, with errors that name the
//! option to change: minute boundaries and whole-minute intervals (CloudWatch's 1-minute
//! periods), a window that has settled and is still held at 1-minute resolution, and a
//! bounded number of intervals (one `GetMetricData` exchange each).

use anyhow::{Result, bail};
use aws_sdk_cloudwatch::primitives::{DateTime, DateTimeFormat};
use canary_gate_aws::DEFAULT_INGESTION_DELAY_SECONDS;
use canary_gate_core::record::Window;

/// CloudWatch's period, and so the grain of starts and intervals.
const MINUTE: i64 = 60;
/// CloudWatch keeps 1-minute datapoints for 15 days (5-minute ones for 63 days, hourly ones
/// for 455 days); a deployed canary judges 1-minute periods.
pub const ONE_MINUTE_RETENTION_SECONDS: i64 = 15 * 86_400;
/// The longest interval: a day, as for the config's `analysis.look_interval_seconds`.
const MAX_INTERVAL_SECONDS: u64 = 86_400;
/// At most this many intervals per recording: one `GetMetricData` exchange each (billed per
/// metric queried), and a week of 1-minute looks.
pub const MAX_INTERVALS: u64 = 10_000;

/// What the command line asked for.
#[derive(Debug, Clone, Copy)]
pub struct Asked {
    /// `--start`, epoch seconds.
    pub start: i64,
    /// `--end`, epoch seconds.
    pub end: i64,
    /// `--interval-seconds`, when given.
    pub interval: Option<u64>,
    /// The config's `analysis.look_interval_seconds` (the default interval).
    pub look_interval: u64,
}

/// Parses `--start` / `--end`: whole epoch seconds, or RFC 3339 with `Z` or an offset.
pub fn parse_time(s: &str) -> std::result::Result<i64, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(secs);
    }
    let t = DateTime::from_str(s, DateTimeFormat::DateTimeWithOffset).map_err(|e| {
        format!("{s:?} is neither RFC 3339 (2026-11-23T10:00:00Z) nor epoch seconds: {e}")
    })?;
    if t.subsec_nanos() != 0 {
        return Err(format!(
            "{s:?} has a fraction of a second; give whole seconds"
        ));
    }
    Ok(t.secs())
}

/// An epoch second as RFC 3339 (UTC), for messages.
pub fn at(epoch: i64) -> String {
    DateTime::from_secs(epoch)
        .fmt(DateTimeFormat::DateTime)
        .unwrap_or_else(|_| format!("{epoch} (epoch seconds)"))
}

/// The checked window at clock time `now`.
pub fn window(a: &Asked, now: i64) -> Result<Window> {
    let (interval, named) = match a.interval {
        Some(i) => (i, format!("--interval-seconds: {i}")),
        None => (
            a.look_interval,
            format!(
                "--interval-seconds not given, and the config's analysis.look_interval_seconds ({})",
                a.look_interval
            ),
        ),
    };
    if interval == 0 || interval % MINUTE as u64 != 0 || interval > MAX_INTERVAL_SECONDS {
        bail!(
            "{named} is not a whole number of minutes up to a day (CloudWatch's periods are 1 minute); use a multiple of 60 such as {}",
            (interval / MINUTE as u64).clamp(1, 1_440) * MINUTE as u64
        );
    }
    if a.start % MINUTE != 0 {
        bail!(
            "--start: {} is not on a minute boundary (CloudWatch's periods start on the minute); use {}",
            at(a.start),
            at(a.start - a.start.rem_euclid(MINUTE))
        );
    }
    if a.end <= a.start {
        bail!(
            "--end ({}) is not after --start ({})",
            at(a.end),
            at(a.start)
        );
    }
    let oldest = now - ONE_MINUTE_RETENTION_SECONDS;
    if a.start < oldest {
        bail!(
            "--start: {} is more than 15 days ago; CloudWatch keeps 1-minute datapoints for 15 days (the earliest start now is about {})",
            at(a.start),
            at(oldest - oldest.rem_euclid(MINUTE) + MINUTE)
        );
    }
    let latest = now - DEFAULT_INGESTION_DELAY_SECONDS;
    if a.end > latest {
        bail!(
            "--end: {} is less than {DEFAULT_INGESTION_DELAY_SECONDS} s ago (or still to come); CloudWatch may still be ingesting the most recent minutes, so end at {} or earlier",
            at(a.end),
            at(latest - latest.rem_euclid(MINUTE))
        );
    }
    let span = a.end - a.start;
    let step = interval as i64;
    if span % step != 0 {
        let shorter = a.start + span / step * step;
        bail!(
            "--end: the window ({span} s) is not a whole number of {step} s intervals; use --end {}{}",
            at(shorter + step),
            if shorter > a.start {
                format!(" or {}", at(shorter))
            } else {
                String::new()
            }
        );
    }
    let intervals = (span / step) as u64;
    if intervals > MAX_INTERVALS {
        bail!(
            "--start/--end: the window holds {intervals} intervals of {step} s, more than the {MAX_INTERVALS} a recording may have; record it in parts or pass a longer --interval-seconds"
        );
    }
    Ok(Window {
        start: a.start,
        interval_seconds: interval,
        intervals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn asked(start: i64, end: i64, interval: Option<u64>) -> Asked {
        Asked {
            start,
            end,
            interval,
            look_interval: 60,
        }
    }

    fn refused(a: Asked) -> String {
        format!("{:#}", window(&a, NOW).expect_err("refused"))
    }

    #[test]
    fn times_are_rfc3339_with_offsets_or_epoch_seconds() {
        assert_eq!(parse_time("1799996400"), Ok(1_799_996_400));
        assert_eq!(parse_time("2027-01-15T08:00:00Z"), Ok(1_800_000_000));
        assert_eq!(parse_time("2027-01-15T09:00:00+01:00"), Ok(1_800_000_000));
        assert!(parse_time("2027-01-15T08:00:00.5Z").is_err());
        let e = parse_time("yesterday").expect_err("not a time");
        assert!(e.contains("RFC 3339") && e.contains("epoch seconds"), "{e}");
        assert_eq!(at(1_800_000_000), "2027-01-15T08:00:00Z");
    }

    #[test]
    fn a_settled_window_of_whole_intervals_is_cut_into_them() {
        let start = NOW - 3600;
        let w = window(&asked(start, start + 1800, Some(300)), NOW).expect("valid");
        assert_eq!((w.start, w.interval_seconds, w.intervals), (start, 300, 6));
        let w = window(&asked(start, start + 600, None), NOW).expect("default interval");
        assert_eq!((w.interval_seconds, w.intervals), (60, 10));
    }

    #[test]
    fn bad_windows_are_refused_naming_the_option() {
        let start = NOW - 3600;
        let e = refused(asked(start, start + 600, Some(90)));
        assert!(
            e.starts_with("--interval-seconds: 90") && e.contains("60"),
            "{e}"
        );
        let e = refused(Asked {
            look_interval: 30,
            ..asked(start, start + 600, None)
        });
        assert!(e.contains("analysis.look_interval_seconds (30)"), "{e}");
        let e = refused(asked(start + 30, start + 630, None));
        assert!(
            e.starts_with("--start:") && e.contains("minute boundary"),
            "{e}"
        );
        let e = refused(asked(start, start, None));
        assert!(
            e.starts_with("--end") && e.contains("not after --start"),
            "{e}"
        );
        let e = refused(asked(start, start + 450, Some(300)));
        assert!(e.starts_with("--end: the window (450 s)"), "{e}");
        let e = refused(asked(NOW - 8 * 86_400, NOW - 3600, None));
        assert!(e.contains("more than the 10000"), "{e}");
        let e = refused(asked(NOW - 16 * 86_400, NOW - 16 * 86_400 + 600, None));
        assert!(e.starts_with("--start:") && e.contains("15 days"), "{e}");
        let e = refused(asked(NOW - 600, NOW - 60, None));
        assert!(e.starts_with("--end:") && e.contains("ingesting"), "{e}");
    }
}
