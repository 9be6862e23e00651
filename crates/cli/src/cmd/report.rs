//! `canary-gate report`: render a result (an `analyze` decision, `backtest` output or a
//! canary's execution state) as text, Markdown or a self-contained HTML page.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use canary_gate_core::report::{CanaryReport, render_html, render_markdown, render_text};
use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressStyle};

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
    // Steps on a terminal for long canaries (a long backtest or execution takes a while to
    // parse and plot); indicatif draws nothing when stderr is not a terminal.
    let progress = ProgressBar::new(4);
    progress.set_style(
        ProgressStyle::with_template("{bar:20} {msg} · {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    progress.set_message(format!("reading {}", args.input.display()));
    let config = args.config.as_deref().map(load_config).transpose()?;
    let text = read_text(&args.input)?;
    progress.inc(1);
    progress.set_message("building the report model");
    let report = CanaryReport::from_input(&text, config).with_context(|| {
        format!(
            "cannot read {} as a canary-gate result",
            args.input.display()
        )
    })?;
    progress.inc(1);
    progress.set_message(format!("rendering {:?}", args.format).to_lowercase());
    let rendered = match args.format {
        ReportFormat::Text => render_text(&report),
        ReportFormat::Markdown => render_markdown(&report),
        ReportFormat::Html => render_html(&report),
    };
    progress.inc(1);
    progress.set_message("writing");
    match &args.output {
        Some(path) => std::fs::write(path, rendered)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{rendered}"),
    }
    progress.finish_and_clear();
    Ok(ExitCode::SUCCESS)
}
