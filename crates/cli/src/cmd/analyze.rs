//! `canary-gate analyze`: judge one analysis window and print the decision.

use std::process::ExitCode;

use anyhow::{Context, Result};
use canary_gate_core::look;
use canary_gate_core::observe::Window;
use canary_gate_core::report::render_decision_text;

use super::{AnalyzeArgs, Format};
use crate::input::{load_config, read_text};

/// Runs the analysis.
pub fn run(args: &AnalyzeArgs) -> Result<ExitCode> {
    let config = load_config(&args.config)?;
    let window = Window::from_json(&read_text(&args.window)?, &config)
        .with_context(|| format!("invalid window {}", args.window.display()))?;
    let decision = look::decide_window(&config, &window);
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&decision)?),
        Format::Text => print!("{}", render_decision_text(&config, &decision)),
    }
    Ok(ExitCode::SUCCESS)
}
