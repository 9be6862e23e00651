//! `canary-gate record`: fetch a past window of a real function's per-version CloudWatch data
//! — the queries a deployed look makes, one `GetMetricData` exchange per interval, and Logs
//! Insights for `per_invocation` durations — into a timeline that `canary-gate backtest`
//! replays. Progress and the source's notes go to standard error; the timeline is written
//! only once every interval has been fetched (`--out` through a temporary file renamed into
//! place), so a failed recording changes nothing.

mod window;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use canary_gate_aws::{CloudWatchMetrics, InvocationDurations};
use canary_gate_core::config::{CanaryConfig, LambdaStatistic, MetricSource, Target};
use canary_gate_core::record::{Recorded, Window, record};

use super::operate::{now, runtime, sdk};
use crate::input::{TargetArgs, load_config_with_target};
use window::{Asked, at, parse_time, window};

/// Arguments of `record`.
#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    /// The canary config (JSON): its metrics say what to fetch, its target which function,
    /// alias and versions (the options below override them).
    #[arg(long)]
    config: PathBuf,
    /// Start of the window: RFC 3339 (`2026-11-23T10:00:00Z`, offsets allowed) or epoch
    /// seconds, on a minute boundary, at most 15 days ago.
    #[arg(long, value_parser = parse_time)]
    start: i64,
    /// End of the window (exclusive), like `--start`; at least 120 s ago.
    #[arg(long, value_parser = parse_time)]
    end: i64,
    /// Seconds per interval, a multiple of 60 (default: the config's
    /// `analysis.look_interval_seconds`).
    #[arg(long)]
    interval_seconds: Option<u64>,
    /// Where to write the timeline (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    target: TargetArgs,
}

/// Records the window and writes the timeline.
pub fn run(args: &RecordArgs) -> Result<ExitCode> {
    let config = load_config_with_target(&args.config, &args.target)?;
    let target = config.target.clone().context(
        "the config has no target: add one, or pass --function, --alias, --baseline-version and --canary-version",
    )?;
    check_sources(&config)?;
    let w = window(
        &Asked {
            start: args.start,
            end: args.end,
            interval: args.interval_seconds,
            look_interval: config.analysis.look_interval_seconds,
        },
        now(),
    )?;
    let out = args.out.as_deref().map(Output::prepare).transpose()?;
    eprintln!(
        "recording {}:{} (baseline version {}, canary version {}) from {} to {}: {} interval(s) of {} s",
        target.function_name,
        target.alias,
        target.baseline_version,
        target.canary_version,
        at(w.start),
        at(w.end()),
        w.intervals,
        w.interval_seconds
    );
    describe_logs_metrics(&config);
    let recorded = runtime()?.block_on(fetch(&config, &target, w))?;
    summarise(&config, &target, &recorded);
    let mut text = String::new();
    for r in &recorded {
        text.push_str(&serde_json::to_string(&r.interval)?);
        text.push('\n');
    }
    match out {
        Some(out) => {
            out.commit(text.as_bytes())?;
            eprintln!(
                "wrote {} interval(s) to {}",
                recorded.len(),
                out.path.display()
            );
        }
        None => std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .context("cannot write the timeline to standard output")?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Refuses metrics that nothing can be fetched for, naming them.
fn check_sources(config: &CanaryConfig) -> Result<()> {
    let missing: Vec<&str> = config
        .metrics
        .iter()
        .filter(|m| m.source.is_none())
        .map(|m| m.name.as_str())
        .collect();
    if !missing.is_empty() {
        bail!(
            "metric(s) without a source: {}; record fetches every metric of the config, so give each a source or leave it out",
            missing.join(", ")
        );
    }
    Ok(())
}

/// Says which metrics come from Logs Insights: slower, and bounded by the log retention.
fn describe_logs_metrics(config: &CanaryConfig) {
    for m in &config.metrics {
        if let Some(MetricSource::Lambda(l)) = &m.source
            && l.per_invocation
            && l.metric == LambdaStatistic::Duration
        {
            eprintln!(
                "{}: per-invocation durations from the REPORT lines of the function's log group (Logs Insights, two queries per interval); the log group's retention bounds what can be recorded",
                m.name
            );
        }
    }
}

/// The adapter a deployed look uses, minus the ingestion delay: the window has settled.
async fn fetch(config: &CanaryConfig, target: &Target, w: Window) -> Result<Vec<Recorded>> {
    let sdk = sdk().await;
    let metrics = CloudWatchMetrics::new(aws_sdk_cloudwatch::Client::new(&sdk))
        .with_invocation_durations(InvocationDurations::new(
            aws_sdk_cloudwatchlogs::Client::new(&sdk),
        ))
        .with_ingestion_delay(0);
    // A few progress lines, not one per interval of a long window.
    let every = w.intervals.div_ceil(20).max(1);
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    let recorded = record(&metrics, config, target, w, |n, r| {
        for note in &r.notes {
            let count = seen.entry(note.clone()).or_default();
            if *count == 0 {
                eprintln!("interval {n}/{}: {note}", w.intervals);
            }
            *count += 1;
        }
        if n % every == 0 || n == w.intervals {
            eprintln!("interval {n}/{}", w.intervals);
        }
    })
    .await
    .context("recording stopped; nothing was written")?;
    for (note, count) in seen.iter().filter(|(_, c)| **c > 1) {
        eprintln!("in {count} of {} intervals: {note}", w.intervals);
    }
    Ok(recorded)
}

/// Per metric and side, in how many intervals it had data; a warning for a side that had
/// none at all (usually a wrong version or alias).
fn summarise(config: &CanaryConfig, target: &Target, recorded: &[Recorded]) {
    let n = recorded.len();
    let mut any = (false, false);
    for m in &config.metrics {
        let with = |side: fn(&Recorded) -> &canary_gate_core::observe::SideObservations| {
            recorded
                .iter()
                .filter(|r| side(r).get(&m.name).is_some_and(|o| o.size() > 0))
                .count()
        };
        let (b, c) = (with(|r| &r.interval.baseline), with(|r| &r.interval.canary));
        any = (any.0 || b > 0, any.1 || c > 0);
        eprintln!(
            "{}: data for the baseline in {b} of {n} intervals, for the canary in {c}",
            m.name
        );
    }
    for (has, side, version) in [
        (any.0, "baseline", &target.baseline_version),
        (any.1, "canary", &target.canary_version),
    ] {
        if !has {
            eprintln!(
                "warning: no data for the {side} (version {version}) in the whole window: check the version, the alias ({}) and the window",
                target.alias
            );
        }
    }
}

/// `--out`: a temporary file beside the target, created before any request (so a path that
/// cannot be written fails at once) and renamed over the target only at the end.
struct Output {
    path: PathBuf,
    temp: PathBuf,
}

impl Output {
    fn prepare(path: &Path) -> Result<Self> {
        if path.is_dir() {
            bail!("--out: {} is a directory", path.display());
        }
        let name = path
            .file_name()
            .with_context(|| format!("--out: {} names no file", path.display()))?;
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".{}.tmp", std::process::id()));
        let temp = path.with_file_name(temp_name);
        std::fs::File::create(&temp)
            .with_context(|| format!("--out: cannot write {}", temp.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            temp,
        })
    }

    fn commit(&self, bytes: &[u8]) -> Result<()> {
        std::fs::write(&self.temp, bytes)
            .with_context(|| format!("--out: cannot write {}", self.temp.display()))?;
        std::fs::rename(&self.temp, &self.path).with_context(|| {
            format!(
                "--out: cannot move {} to {}",
                self.temp.display(),
                self.path.display()
            )
        })
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        // After a successful rename there is nothing left to remove.
        let _ = std::fs::remove_file(&self.temp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_without_a_source_are_refused_by_name() {
        let c = CanaryConfig::from_json(
            r#"{"metrics": [{"name": "errors", "type": "counter", "source": {"lambda": {"metric": "Errors"}}},
                            {"name": "latency", "type": "histogram"}]}"#,
        )
        .expect("config");
        let e = format!("{:#}", check_sources(&c).expect_err("refused"));
        assert!(e.contains("without a source: latency"), "{e}");
    }
}
