//! `canary-gate analyze`: judge one analysis window and print the decision.

use std::process::ExitCode;

use anyhow::{Context, Result};
use canary_gate_core::judge::sequential::SequentialState;
use canary_gate_core::judge::{self, Latest};
use canary_gate_core::look;
use canary_gate_core::observe::Window;
use canary_gate_core::policy::{self, PhaseState};
use canary_gate_core::report::render_decision_text;

use super::{AnalyzeArgs, Format};
use crate::input::{load_config, read_text};

/// Runs the analysis.
pub fn run(args: &AnalyzeArgs) -> Result<ExitCode> {
    let config = load_config(&args.config)?;
    let window = Window::from_json(&read_text(&args.window)?, &config)
        .with_context(|| format!("invalid window {}", args.window.display()))?;
    let phase = &config.canary_phases[window.phase - 1];
    // A single window holds the phase's baseline (live, or the earlier one at 100 %) and is
    // one look of the sequential tests.
    let input = look::judge_input(look::Windows {
        canary_weight: config.phase_weight(window.phase - 1),
        baseline: &window.baseline,
        canary: &window.canary,
        earlier_baseline: None,
        latest: Some(Latest {
            baseline: &window.baseline,
            canary: &window.canary,
            baseline_all: &window.baseline,
            warming_up: false,
        }),
        shift_estimate: true,
        phase_complete: window
            .elapsed_seconds
            .is_none_or(|e| e >= phase.duration_seconds),
        // A window given to `analyze` may be assembled by hand, with no alias behind it.
        routed: false,
    });
    let report = judge::judge_with_state(&config, &input, &mut SequentialState::default());
    let elapsed = window.elapsed_seconds.unwrap_or(phase.duration_seconds);
    let state = PhaseState {
        phase: window.phase,
        elapsed_in_phase_seconds: elapsed,
        total_elapsed_seconds: config.canary_phases[..window.phase - 1]
            .iter()
            .map(|p| p.duration_seconds)
            .sum::<u64>()
            + elapsed,
        hold_seconds: 0,
    };
    let decision = policy::decide(&config, report, &state);
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&decision)?),
        Format::Text => print!("{}", render_decision_text(&config, &decision)),
    }
    Ok(ExitCode::SUCCESS)
}
