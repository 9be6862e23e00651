//! `canary-gate backtest`: replay recorded timelines (JSON Lines, one analysis interval per
//! line) through the judge and policy, printing one record per look and a closing line.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use canary_gate_core::backtest::{Backtest, Ending, LookRecord};
use canary_gate_core::config::CanaryConfig;
use canary_gate_core::controller::Interval;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use super::Format;
use crate::input::load_config;

/// Arguments of `backtest`.
#[derive(Debug, clap::Args)]
pub struct BacktestArgs {
    /// The canary config (JSON). A config without target or metric sources is fine.
    #[arg(long)]
    config: PathBuf,
    /// Timeline file(s), JSON Lines: {"at_seconds": T, "baseline": {...}, "canary": {...}}.
    /// Repeat the option to replay several; each gets its own closing line.
    #[arg(long, required = true, num_args = 1..)]
    timeline: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
}

/// Runs the backtest(s).
pub fn run(args: &BacktestArgs) -> Result<ExitCode> {
    let config = load_config(&args.config)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let many = args.timeline.len() > 1;
    // A bar on a terminal for long runs; indicatif draws nothing when stderr is not a
    // terminal, so piped and scripted runs stay quiet.
    let progress = if many {
        ProgressBar::new(args.timeline.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} timelines · {elapsed} elapsed, {eta} left",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    for path in &args.timeline {
        let (looks, ending) = replay_file(&config, path)?;
        progress.inc(1);
        let tag = many.then(|| path.display().to_string());
        match args.format {
            Format::Json => {
                for look in &looks {
                    writeln!(out, "{}", tagged(serde_json::to_value(look)?, &tag))?;
                }
                writeln!(out, "{}", tagged(serde_json::to_value(&ending)?, &tag))?;
            }
            Format::Text => write_text(&mut out, path, &looks, &ending)?,
        }
    }
    progress.finish_and_clear();
    Ok(ExitCode::SUCCESS)
}

fn tagged(mut v: Value, tag: &Option<String>) -> Value {
    if let (Some(t), Value::Object(map)) = (tag, &mut v) {
        map.insert("timeline".to_string(), Value::String(t.clone()));
    }
    v
}

/// Replays one timeline file; input errors name the file and line.
pub fn replay_file(config: &CanaryConfig, path: &Path) -> Result<(Vec<LookRecord>, Ending)> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut bt = Backtest::new();
    let mut looks = Vec::new();
    let mut last_at: Option<u64> = None;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{} line {}", path.display(), i + 1);
        let interval = Interval::from_json(&line, config).with_context(at)?;
        if let Some(prev) = last_at
            && interval.at_seconds <= prev
        {
            bail!(
                "{}: at_seconds {} is not after {prev}; lines must be in time order",
                at(),
                interval.at_seconds
            );
        }
        last_at = Some(interval.at_seconds);
        if bt.outcome().is_some() {
            break;
        }
        if let Some(look) = bt.step(config, &interval) {
            looks.push(look);
        }
    }
    Ok((looks, bt.finish()))
}

fn write_text(out: &mut impl Write, path: &Path, looks: &[LookRecord], end: &Ending) -> Result<()> {
    writeln!(out, "Timeline {}", path.display())?;
    writeln!(
        out,
        "{:>7}  {:>5}  {:>6}  {:<9} reason",
        "time", "phase", "weight", "action"
    )?;
    for l in looks {
        writeln!(
            out,
            "{:>6}s  {:>5}  {:>5}%  {:<9} {}",
            l.at_seconds,
            l.phase,
            l.canary_weight,
            l.action.as_str(),
            l.reason
        )?;
    }
    writeln!(
        out,
        "OUTCOME: {} at {} s — {}\n",
        end.outcome, end.at_seconds, end.reason
    )?;
    Ok(())
}
