//! `schema` and `validate`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use canary_gate_core::config::CanaryConfig;

use crate::input::read_text;

/// Prints the config's JSON Schema.
pub fn schema() -> Result<ExitCode> {
    println!(
        "{}",
        serde_json::to_string_pretty(&CanaryConfig::json_schema())?
    );
    Ok(ExitCode::SUCCESS)
}

/// Validates a config and prints it with the defaults filled in.
pub fn validate(path: &Path) -> Result<ExitCode> {
    let text = read_text(path)?;
    let (config, notes) = CanaryConfig::from_json_with_notes(&text)
        .with_context(|| format!("invalid config {}", path.display()))?;
    eprintln!("{}: valid", path.display());
    for note in &notes {
        eprintln!("note: {note}");
    }
    println!("{}", serde_json::to_string_pretty(&config)?);
    Ok(ExitCode::SUCCESS)
}
