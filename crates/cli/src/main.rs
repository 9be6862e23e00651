//! `canary-gate`: statistical canary analysis for AWS Lambda from the shell — statistical
//! tests, config checks and offline analysis with the same engine the Lambda functions run.

mod cmd;
mod input;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cmd::Cli::parse();
    match cmd::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
