//! `canary-gate demo`: a whole canary on a simulated Lambda fleet, in accelerated time, through
//! the same controller, judge and policy the Lambda functions run. No AWS account needed.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use canary_gate_core::config::{CanaryConfig, MetricKind};
use canary_gate_core::controller::{Outcome, Replay};
use canary_gate_core::notify;
use canary_gate_core::policy::Action;
use canary_gate_core::report::render_decision_text;
use canary_gate_core::sim::{Fleet, MetricNames, Regression, Scenario};
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
    /// Requests per second to the alias.
    #[arg(long, default_value_t = 50.0)]
    rps: f64,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print the full report at every look, not only when a phase ends.
    #[arg(long)]
    verbose: bool,
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
    let name_of = |kind: MetricKind| {
        config
            .metrics
            .iter()
            .find(|m| m.kind == kind)
            .map(|m| m.name.clone())
    };
    let names = MetricNames {
        latency: name_of(MetricKind::Histogram).context("the demo needs a histogram metric")?,
        errors: name_of(MetricKind::Counter).context("the demo needs a counter metric")?,
    };
    let mut fleet = Fleet::new(scenario(args.scenario, args.rps), names, args.seed);
    let mut replay = Replay::new();
    let look = config.analysis.look_interval_seconds;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let target = config
        .target
        .as_ref()
        .map(|t| {
            format!(
                "{}:{} v{} -> v{}",
                t.function_name, t.alias, t.baseline_version, t.canary_version
            )
        })
        .unwrap_or_else(|| "simulated function".to_string());
    writeln!(
        out,
        "canary-gate demo: {target}, scenario {:?}, {} req/s, seed {}",
        args.scenario, args.rps, args.seed
    )?;
    writeln!(
        out,
        "(simulated fleet, accelerated time: one look every {look} s of simulated time)\n"
    )?;
    let limit = config.timeout_seconds + look * 2;
    let mut at = 0;
    while replay.state.outcome.is_none() && at < limit {
        at += look;
        let weight = replay.state.weight(&config);
        let interval = fleet.interval(at, look, weight);
        let Some(d) = replay.step(&config, &interval) else {
            break;
        };
        writeln!(
            out,
            "[{:>4} s] phase {} at {:>3}%: {:<8} {}",
            at,
            d.phase,
            d.canary_weight,
            d.action.as_str(),
            d.reason
        )?;
        let phase_end = matches!(
            d.action,
            Action::Advance | Action::Promote | Action::Rollback
        );
        if phase_end || args.verbose {
            let text = render_decision_text(&config, &d);
            writeln!(out, "\n{text}")?;
            for n in notify::compose(&config, &d, &text) {
                if n.event == notify::Event::Rollback || n.event == notify::Event::Promoted {
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
        }
    }
    let verdict = match replay.state.outcome {
        Some(Outcome::Promoted) => "PROMOTED: the canary version now takes all traffic",
        Some(Outcome::RolledBack) => "ROLLED BACK: all traffic is back on the baseline version",
        None => "INCOMPLETE: the demo stopped before a final decision",
    };
    writeln!(out, "FINAL VERDICT after {at} s: {verdict}")?;
    Ok(ExitCode::SUCCESS)
}
