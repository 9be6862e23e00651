//! `schema` and `validate`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use canary_gate_core::config::CanaryConfig;

use crate::input::load_config;

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
    let config = load_config(path)?;
    eprintln!("{}: valid", path.display());
    println!("{}", serde_json::to_string_pretty(&config)?);
    Ok(ExitCode::SUCCESS)
}
