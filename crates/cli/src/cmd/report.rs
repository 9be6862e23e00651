//! `canary-gate report`: render a result (an `analyze` decision, `backtest` output or a
//! canary's execution state) as text, Markdown or a self-contained HTML page.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use canary_gate_core::report::{CanaryReport, render_html, render_markdown, render_text};
use clap::ValueEnum;

use crate::input::{load_config, read_text};

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Plain text for terminals and logs.
    Text,
    /// Markdown for pull requests and tickets.
    Markdown,
    /// One self-contained HTML file with inline SVG plots.
    Html,
}

/// Arguments of `report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The result to render: `analyze` JSON, `backtest` JSON Lines, or a canary execution
    /// (Step Functions output).
    #[arg(long)]
    input: PathBuf,
    /// The config, for inputs that do not carry one (analyze and backtest results).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
    /// Write to this file instead of standard output.
    #[arg(long)]
    output: Option<PathBuf>,
}

/// Renders the report.
pub fn run(args: &ReportArgs) -> Result<ExitCode> {
    let config = args.config.as_deref().map(load_config).transpose()?;
    let text = read_text(&args.input)?;
    let report = CanaryReport::from_input(&text, config).with_context(|| {
        format!(
            "cannot read {} as a canary-gate result",
            args.input.display()
        )
    })?;
    let rendered = match args.format {
        ReportFormat::Text => render_text(&report),
        ReportFormat::Markdown => render_markdown(&report),
        ReportFormat::Html => render_html(&report),
    };
    match &args.output {
        Some(path) => std::fs::write(path, rendered)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{rendered}"),
    }
    Ok(ExitCode::SUCCESS)
}
