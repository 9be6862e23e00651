//! `canary-gate demo`: a whole canary on a simulated Lambda fleet, in accelerated time, through
//! the same controller, judge and policy the Lambda functions run. No AWS account needed.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use canary_gate_core::config::CanaryConfig;
use canary_gate_core::controller::Outcome;
use canary_gate_core::notify;
use canary_gate_core::policy::Action;
use canary_gate_core::sim::{Fleet, MetricNames, Regression, Scenario, SimulatedLambda, run_ready};
use canary_gate_core::step;
use clap::ValueEnum;

use crate::input::load_config;

const DEMO_CONFIG: &str = include_str!("../../../../examples/demo-config.json");

/// What the simulated canary does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DemoScenario {
    /// The canary behaves like the baseline.
    Healthy,
    /// p95 latency doubles and errors rise from 0.12 % to 3.2 %.
    Regression,
    /// Latency +25 %.
    Latency,
    /// Error rate ×3.
    Errors,
    /// Healthy at first; latency and errors grow from minute 7.
    Late,
    /// Healthy, with load swinging ±60 % and a shared error burst hitting both versions.
    Noisy,
    /// Only 0.2 requests per second: phases extend for lack of data, then roll back.
    LowTraffic,
}

/// Arguments of `demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Scenario to simulate.
    #[arg(long, value_enum, default_value_t = DemoScenario::Healthy)]
    scenario: DemoScenario,
    /// Config to run (default: the built-in demo config, examples/demo-config.json).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Requests per second to the alias (at most 10000).
    #[arg(long, default_value_t = 50.0, value_parser = crate::input::parse_rps)]
    rps: f64,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print the full report at every look, not only when a phase ends.
    #[arg(long)]
    verbose: bool,
    /// Write the canary's final execution state (JSON, as the state machine would hold it)
    /// to this file, e.g. for `canary-gate report`.
    #[arg(long)]
    save: Option<PathBuf>,
}

pub fn scenario(kind: DemoScenario, rps: f64) -> Scenario {
    let healthy = Scenario::healthy(rps);
    match kind {
        DemoScenario::Healthy => healthy,
        DemoScenario::Regression => healthy.with_regression(387.0 / 185.0, 3.2 / 0.12),
        DemoScenario::Latency => healthy.with_regression(1.25, 1.0),
        DemoScenario::Errors => healthy.with_regression(1.0, 3.0),
        DemoScenario::Late => Scenario {
            regression: Some(Regression {
                starts_at: 420,
                ramp_seconds: 300,
                latency_factor: 1.5,
                error_factor: 5.0,
            }),
            ..healthy
        },
        DemoScenario::Noisy => Scenario {
            load_swing: 0.6,
            swing_period_seconds: 480.0,
            shared_error_bursts: vec![(240, 420, 10.0)],
            ..healthy
        },
        DemoScenario::LowTraffic => Scenario::healthy(0.2),
    }
}

/// Runs the demo.
pub fn run(args: &DemoArgs) -> Result<ExitCode> {
    let config = match &args.config {
        Some(path) => load_config(path)?,
        None => CanaryConfig::from_json(DEMO_CONFIG).context("built-in demo config")?,
    };
    let target = config
        .target
        .clone()
        .context("the demo config needs a target")?;
    let names = MetricNames::for_config(&config)
        .context("the config needs a histogram metric (latencies) and a counter metric (errors)")?;
    let fleet = Fleet::new(scenario(args.scenario, args.rps), names, args.seed);
    let look = config.analysis.look_interval_seconds;
    let sim = SimulatedLambda::new(fleet, &target, 0, look);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(
        out,
        "canary-gate demo: {}:{} v{} -> v{}, scenario {:?}, {} req/s, seed {}",
        target.function_name,
        target.alias,
        target.baseline_version,
        target.canary_version,
        args.scenario,
        args.rps,
        args.seed
    )?;
    writeln!(
        out,
        "(simulated Lambda fleet in accelerated time; the same steps the phase function runs)\n"
    )?;
    let mut exec = ready(step::start(config.clone(), 0, None, &sim))?;
    writeln!(
        out,
        "[   0 s] alias {} now routes {}% to v{}",
        target.alias,
        exec.run.weight(&config),
        target.canary_version
    )?;
    let mut now: i64 = 0;
    let mut wait = look;
    let mut seen = 0;
    let limit = (config.timeout_seconds + 4 * look) as i64;
    while exec.run.outcome.is_none() && now < limit {
        now += wait as i64;
        sim.run_until(now);
        let step = ready(step::look(exec, now, &sim, &sim, &sim))?;
        let last = step.execution.history.last().cloned();
        if let Some(l) = &last {
            writeln!(
                out,
                "[{:>4} s] phase {} at {:>3}%: {:<8} {}",
                l.at_seconds,
                l.phase,
                l.canary_weight,
                l.action.as_str(),
                l.reason
            )?;
        }
        let phase_end = matches!(
            step.action,
            Action::Advance | Action::Promote | Action::Rollback
        );
        if phase_end || args.verbose {
            writeln!(out, "\n{}", step.report)?;
        }
        let published = sim.published();
        for n in &published[seen..] {
            if matches!(n.event, notify::Event::Rollback | notify::Event::Promoted) {
                writeln!(out, "--- SNS message (to {}) ---", n.channels.join(", "))?;
                writeln!(out, "Subject: {}", n.subject)?;
                let attrs: Vec<String> = n
                    .attributes
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                writeln!(out, "Attributes: {}", attrs.join(" "))?;
                writeln!(out, "---\n")?;
            } else {
                writeln!(out, "(notify {}: {})\n", n.channels.join(", "), n.subject)?;
            }
        }
        seen = published.len();
        exec = step.execution;
        if step.awaiting_approval {
            writeln!(out, "(demo operator approves: {})", step.action.as_str())?;
            exec = ready(step::apply_approved(exec, step.action, now, &sim))?;
        }
        wait = step.wait_seconds;
    }
    if let Some(path) = &args.save {
        std::fs::write(path, serde_json::to_string_pretty(&exec)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let alias = sim.alias();
    let verdict = match exec.run.outcome {
        Some(Outcome::Promoted) => "PROMOTED: the canary version now takes all traffic",
        Some(Outcome::RolledBack) => "ROLLED BACK: all traffic is back on the baseline version",
        None => "INCOMPLETE: the demo stopped before a final decision",
    };
    writeln!(
        out,
        "FINAL VERDICT after {now} s: {verdict} (alias {} -> v{})",
        target.alias, alias.version
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Drives a step over the simulated fleet, whose futures never wait.
fn ready<T>(f: impl std::future::Future<Output = Result<T, step::StepError>>) -> Result<T> {
    match run_ready(f) {
        Some(r) => r.map_err(|e| anyhow::anyhow!("{e} ({})", e.error_type())),
        None => anyhow::bail!("a simulated step waited unexpectedly"),
    }
}
