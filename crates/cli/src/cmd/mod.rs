//! Command-line definitions and dispatch.

mod analyze;
mod backtest;
mod config;
mod demo;
mod operate;
mod record;
mod report;
mod simulate;
mod test;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use canary_gate_core::policy::Action;
use clap::{Parser, Subcommand, ValueEnum};

/// Statistical canary analysis for AWS Lambda.
#[derive(Debug, Parser)]
#[command(name = "canary-gate", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one two-sample statistical test and print the result as JSON.
    Test(test::TestArgs),
    /// Judge one analysis window against a config and print the decision.
    Analyze(AnalyzeArgs),
    /// Replay recorded metric timelines through the judge and policy.
    Backtest(backtest::BacktestArgs),
    /// Run a whole canary on a simulated Lambda fleet (no AWS account needed).
    Demo(demo::DemoArgs),
    /// Render a result (analyze, backtest, canary execution) as text, Markdown or HTML.
    Report(report::ReportArgs),
    /// Write a synthetic metric timeline (JSON Lines) for backtests.
    Simulate(simulate::SimulateArgs),
    /// Fetch a past window of a function's per-version CloudWatch data into a timeline for
    /// backtests (the queries a deployed canary makes).
    Record(record::RecordArgs),
    /// Start a canary on the deployed stack (a Step Functions execution).
    Start(operate::StartArgs),
    /// Where a deployed canary stands: phase, traffic, last decision, time left.
    Status(operate::ExecutionArgs),
    /// The decisions of a deployed canary, newest last.
    History(operate::ExecutionArgs),
    /// Approve the action a deployed canary waits for (rollback, or the step to 100 %).
    Approve(operate::AnswerArgs),
    /// Reject the action a deployed canary waits for; the canary goes on without it.
    Reject(operate::AnswerArgs),
    /// Roll a deployed canary back now (audited and notified).
    Abort(operate::OverrideArgs),
    /// Promote a deployed canary to 100 % now; refused while a critical gate fails unless
    /// --force (audited and notified).
    Promote(operate::PromoteArgs),
    /// Print the JSON Schema of the canary config.
    Schema,
    /// Check a config file; prints the config with every default filled in.
    Validate {
        /// The config file (JSON).
        config: PathBuf,
    },
}

/// Output format of reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// Machine-readable JSON.
    #[default]
    Json,
    /// A readable report.
    Text,
}

/// Arguments of `analyze`.
#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// The canary config (JSON).
    #[arg(long)]
    config: PathBuf,
    /// The analysis window: {"phase": N, "elapsed_seconds": S, "baseline": {...}, "canary": {...}}.
    #[arg(long)]
    window: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Test(args) => test::run(&args),
        Command::Analyze(args) => analyze::run(&args),
        Command::Backtest(args) => backtest::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Report(args) => report::run(&args),
        Command::Simulate(args) => simulate::run(&args),
        Command::Record(args) => record::run(&args),
        Command::Start(args) => operate::start(&args),
        Command::Status(args) => operate::status(&args),
        Command::History(args) => operate::history(&args),
        Command::Approve(args) => operate::answer(&args, true),
        Command::Reject(args) => operate::answer(&args, false),
        Command::Abort(args) => operate::override_canary(&args, Action::Rollback, false),
        Command::Promote(args) => operate::promote(&args),
        Command::Schema => config::schema(),
        Command::Validate { config } => config::validate(&config),
    }
}
