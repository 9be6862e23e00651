//! The report model shared by the text, Markdown and HTML renderings: the latest decision
//! with its full evidence (when the input has one), the timeline of looks, and the outcome.
//! It is built from any result canary-gate produces: an `analyze` decision, `backtest`
//! output (JSON Lines), or a canary's execution state (the Step Functions output).

use serde_json::Value;

use crate::backtest::Ending;
use crate::config::CanaryConfig;
use crate::policy::Decision;
use crate::state::{Execution, LookRecord, StepOutput};

/// Everything a report shows.
#[derive(Debug, Clone, PartialEq)]
pub struct CanaryReport {
    /// The config the canary ran with.
    pub config: CanaryConfig,
    /// "orders-api:live v41 → v42", or a generic title without a target.
    pub title: String,
    /// The decision with full evidence (the latest look), when the input carries one.
    pub latest: Option<Decision>,
    /// The looks, oldest first.
    pub timeline: Vec<LookRecord>,
    /// `promoted`, `rolled_back`, `incomplete` or `in progress`, with the reason.
    pub outcome: Option<Ending>,
}

/// Why an input could not be read as a result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

fn title(config: &CanaryConfig) -> String {
    config.target.as_ref().map_or_else(
        || "canary".to_string(),
        |t| {
            format!(
                "{}:{} v{} → v{}",
                t.function_name, t.alias, t.baseline_version, t.canary_version
            )
        },
    )
}

impl CanaryReport {
    /// A report of one decision (an `analyze` result or the latest look of a canary).
    pub fn from_decision(config: CanaryConfig, decision: Decision, at_seconds: u64) -> Self {
        let timeline = vec![LookRecord::from_decision(at_seconds, &decision)];
        Self {
            title: title(&config),
            config,
            latest: Some(decision),
            timeline,
            outcome: None,
        }
    }

    /// Reads any result file: a decision (`analyze`), JSON Lines from `backtest`, a canary
    /// execution state or a `phase` step output. `config` is needed for inputs that do not
    /// carry one (decisions and backtests).
    pub fn from_input(text: &str, config: Option<CanaryConfig>) -> Result<Self, InputError> {
        let trimmed = text.trim();
        if let Ok(v) = serde_json::from_str::<Value>(trimmed) {
            if v.get("report").is_some() && v.get("action").is_some() {
                let d: Decision = serde_json::from_value(v)
                    .map_err(|e| InputError(format!("not a decision: {e}")))?;
                let config = config.ok_or_else(|| {
                    InputError("--config is needed to render an analyze result".into())
                })?;
                return Ok(Self::from_decision(config, d, 0));
            }
            let exec_value = if v.get("execution").is_some() {
                v["execution"].clone()
            } else {
                v
            };
            if exec_value.get("run").is_some() {
                let exec = Execution::from_value(&exec_value)
                    .map_err(|e| InputError(format!("not a canary execution state: {e}")))?;
                return Ok(Self::from_execution(exec));
            }
            return Err(InputError(
                "unrecognised input: expected an analyze decision, backtest JSON Lines or a canary execution".into(),
            ));
        }
        let config = config
            .ok_or_else(|| InputError("--config is needed to render backtest output".into()))?;
        let mut timeline = Vec::new();
        let mut outcome = None;
        for (i, line) in trimmed
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let v: Value = serde_json::from_str(line)
                .map_err(|e| InputError(format!("line {}: {e}", i + 1)))?;
            if v.get("outcome").is_some() {
                outcome = Some(
                    serde_json::from_value(v)
                        .map_err(|e| InputError(format!("line {}: {e}", i + 1)))?,
                );
            } else {
                timeline.push(
                    serde_json::from_value(v)
                        .map_err(|e| InputError(format!("line {}: {e}", i + 1)))?,
                );
            }
        }
        if timeline.is_empty() {
            return Err(InputError("no looks in the input".into()));
        }
        Ok(Self {
            title: title(&config),
            config,
            latest: None,
            timeline,
            outcome,
        })
    }

    /// A report of a canary's execution state.
    pub fn from_execution(exec: Execution) -> Self {
        let outcome = exec.run.outcome.map(|o| Ending {
            outcome: match o {
                crate::controller::Outcome::Promoted => "promoted".to_string(),
                crate::controller::Outcome::RolledBack => "rolled_back".to_string(),
            },
            at_seconds: exec.history.last().map_or(0, |l| l.at_seconds),
            reason: exec
                .history
                .last()
                .map(|l| l.reason.clone())
                .unwrap_or_default(),
        });
        let latest = exec.last_decision.map(|d| *d);
        Self {
            title: title(&exec.config),
            config: exec.config,
            latest,
            timeline: exec.history,
            outcome,
        }
    }

    /// A report of a step's output (the latest decision is not kept in the state, so this is
    /// the execution's report).
    pub fn from_step(out: StepOutput) -> Self {
        Self::from_execution(out.execution)
    }

    /// The headline: what happened, in a few words.
    pub fn verdict(&self) -> String {
        if let Some(o) = &self.outcome {
            return match o.outcome.as_str() {
                "promoted" => "PROMOTED".to_string(),
                "rolled_back" => "ROLLED BACK".to_string(),
                other => other.to_uppercase(),
            };
        }
        self.latest
            .as_ref()
            .map(|d| d.action.as_str().to_uppercase())
            .or_else(|| {
                self.timeline
                    .last()
                    .map(|l| l.action.as_str().to_uppercase())
            })
            .unwrap_or_default()
    }
}
