//! `canary-gate simulate`: write a synthetic metric timeline (the backtest's JSON Lines format)
//! from the simulated fleet, with the canary's weight following the config's phase durations.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use canary_gate_core::sim::{Fleet, MetricNames};

use super::demo::{DemoScenario, scenario};
use crate::input::load_config;

/// Arguments of `simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Config whose phases set the weights and whose first histogram and counter metrics
    /// receive latencies and errors.
    #[arg(long)]
    config: PathBuf,
    /// Scenario to simulate.
    #[arg(long, value_enum, default_value_t = DemoScenario::Healthy)]
    scenario: DemoScenario,
    /// Number of intervals (looks).
    #[arg(long, default_value_t = 15)]
    looks: u64,
    /// Requests per second to the alias (at most 10000).
    #[arg(long, default_value_t = 50.0, value_parser = crate::input::parse_rps)]
    rps: f64,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write histogram metrics as one percentile summary per interval
    /// (`{"periods": [{"start", "n", "stats"}]}`, the shape of CloudWatch's per-minute
    /// statistics that a deployed canary judges) instead of per-request samples.
    #[arg(long)]
    aggregate: bool,
}

/// Writes the timeline to standard output.
pub fn run(args: &SimulateArgs) -> Result<ExitCode> {
    let config = load_config(&args.config)?;
    let names = MetricNames::for_config(&config)
        .context("the config needs a histogram metric (latencies) and a counter metric (errors)")?;
    let mut fleet = Fleet::new(scenario(args.scenario, args.rps), names, args.seed);
    let look = config.analysis.look_interval_seconds;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for i in 1..=args.looks {
        let at = i * look;
        let mut phase_end = 0;
        let index = config
            .canary_phases
            .iter()
            .position(|p| {
                phase_end += p.duration_seconds;
                at <= phase_end
            })
            .unwrap_or(config.canary_phases.len() - 1);
        let weight = config.phase_weight(index);
        let mut interval = fleet.interval(at, look, weight);
        if args.aggregate {
            let start = (at - look) as i64;
            canary_gate_core::observe::summarise_side(&mut interval.baseline, &config, start);
            canary_gate_core::observe::summarise_side(&mut interval.canary, &config, start);
        }
        writeln!(out, "{}", serde_json::to_string(&interval)?)?;
    }
    Ok(ExitCode::SUCCESS)
}
