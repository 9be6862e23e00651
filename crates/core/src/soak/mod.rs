//! The post-promotion soak: the logic behind the `soak-check` function, run on a schedule.
//!
//! A promoted canary keeps being compared with the baseline observed before its promotion
//! for `post_promotion_soak_seconds`; on a regression the alias goes back to the previous
//! version (which SAM's `AutoPublishAlias` keeps — versions are never deleted) and people
//! are notified. No storage of its own is needed:
//!
//! - **What was promoted, when**: the most recent SUCCEEDED execution of the canary state
//!   machine. Its output is the `Promoted` state's input, so it carries the canary's
//!   [`Execution`] state: config, versions, start, the time of the promoting look, and the
//!   sequential tests' state at promotion.
//! - **The comparison**: the judge of the full-traffic phase. The soak is cut into at most
//!   [`MAX_LOOKS`] looks at fixed times after the promotion (every
//!   [`look_seconds`], never shorter than the config's look interval), counted only once
//!   their data have settled in CloudWatch ([`SETTLE_SECONDS`]). With `sequential`
//!   analysis every run replays the looks so far, continuing the anytime-valid e-processes
//!   from the promotion: a run repeats its predecessor's looks and adds the new ones, so
//!   checking every few minutes does not inflate false rollbacks. The look that ends the soak
//!   adds the phase function's one pre-planned fixed-horizon comparison against the earlier
//!   baseline. With `fixed-horizon` analysis each run makes one comparison of everything
//!   since the promotion (and, as in the phase function, repeated looks inflate its error).
//! - **The rule**: a critical metric failing at the rollback tier, or two failing metrics of
//!   which one is critical, rolls back at once; a critical failure at the hold tier is
//!   watched (and notified once) and rolls back if it still fails when the soak ends.
//!
//! Safety and idempotence: nothing happens while a canary runs, and the alias is written only
//! when it still points at the promoted version alone, with the revision just read; a
//! concurrent writer wins. After a rollback the alias no longer points at the promoted
//! version, so later runs are idle. Notifications of a watched failure are sent only by the
//! run that first sees its first failing look (the look settled after the previous run).

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::{AnalysisMethod, CanaryConfig, Target};
use crate::judge::sequential::SequentialState;
use crate::judge::{self, JudgeReport, Latest};
use crate::look;
use crate::notify::{self, SoakNews};
use crate::observe::SideObservations;
use crate::policy::{self, Action, Decision, RollbackMode, SoakFinding};
use crate::ports::{
    Claim, ExecutionInfo, Executions, MetricsSource, Notifier, PortError, RunStatus, TimeRange,
    TrafficRouter,
};
use crate::report::render_decision_text;
use crate::state::{DeliveryFailure, Execution, StateError};

/// The most looks one soak is cut into (each is one metrics fetch per run).
pub const MAX_LOOKS: u64 = 24;

/// A look counts once this many seconds have passed since its end: CloudWatch's ingestion
/// delay plus a margin, so that every run sees the same data for the same look.
pub const SETTLE_SECONDS: i64 = 180;

/// After the soak's end (and settling) the final check still runs this long, so a run is
/// sure to make it with the schedule's rate of every 5 minutes; later runs are idle.
pub const FINAL_CHECK_GRACE_SECONDS: i64 = 900;

/// How many recent executions are searched for the latest promotion.
pub const RECENT_EXECUTIONS: usize = 20;

/// Where the soak stands after a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SoakStatus {
    /// No soak is active (nothing promoted, soak over or off, a canary running, the alias
    /// moved on).
    Idle,
    /// The promoted version is healthy so far.
    Watching,
    /// A critical metric fails at the hold tier; watched until the soak ends.
    Suspect,
    /// The soak ended without a regression.
    Passed,
    /// A regression: the alias went back to the previous version.
    RolledBack,
    /// A regression, but the config asks for an operator (`auto_rollback`): notified only.
    RegressionNeedsOperator,
}

impl SoakStatus {
    /// The snake-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            SoakStatus::Idle => "idle",
            SoakStatus::Watching => "watching",
            SoakStatus::Suspect => "suspect",
            SoakStatus::Passed => "passed",
            SoakStatus::RolledBack => "rolled_back",
            SoakStatus::RegressionNeedsOperator => "regression_needs_operator",
        }
    }
}

/// What one run found and did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SoakReport {
    /// The outcome.
    pub status: SoakStatus,
    /// One line for the log.
    pub summary: String,
    /// The promoting execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
    /// The target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// When the promoting look happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_epoch: Option<i64>,
    /// When the soak ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak_ends_epoch: Option<i64>,
    /// Looks judged in this run.
    pub looks: usize,
    /// The text report of the newest look, when one was judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    /// Notifications that could not be published (the run still succeeded).
    pub notification_failures: Vec<DeliveryFailure>,
}

impl SoakReport {
    fn idle(summary: impl Into<String>) -> Self {
        Self {
            status: SoakStatus::Idle,
            summary: summary.into(),
            execution: None,
            target: None,
            promoted_epoch: None,
            soak_ends_epoch: None,
            looks: 0,
            report: None,
            notification_failures: Vec::new(),
        }
    }
}

/// Why a run could not complete (it changed nothing).
#[derive(Debug, Error, PartialEq)]
pub enum SoakError {
    /// Step Functions failed.
    #[error("Step Functions: {0}")]
    Executions(PortError),
    /// The promoting execution's output is not a canary state.
    #[error("execution {id} has no readable canary state in its output: {message}")]
    Unreadable {
        /// The execution.
        id: String,
        /// Why.
        message: String,
    },
    /// The promoting execution's canary state is malformed.
    #[error("execution {id}: {error}")]
    InvalidState {
        /// The execution.
        id: String,
        /// What is wrong, and where.
        error: StateError,
    },
    /// Metrics could not be read.
    #[error("metrics unavailable: {0}")]
    Metrics(PortError),
    /// The alias could not be read or written.
    #[error("traffic routing failed: {0}")]
    Routing(PortError),
}

impl SoakError {
    /// A stable name for logs and alarms.
    pub fn error_type(&self) -> &'static str {
        match self {
            SoakError::Executions(e) | SoakError::Metrics(e) | SoakError::Routing(e)
                if e.is_transient() =>
            {
                "Transient"
            }
            SoakError::Executions(_) => "ExecutionsUnavailable",
            SoakError::Unreadable { .. } => "UnreadableExecution",
            SoakError::InvalidState { .. } => "InvalidState",
            SoakError::Metrics(_) => "MetricsUnavailable",
            SoakError::Routing(_) => "RoutingFailed",
        }
    }
}

/// A promotion found in a succeeded execution.
#[derive(Debug, Clone, PartialEq)]
pub struct Promotion {
    /// The execution.
    pub execution_id: String,
    /// The canary's state at the end.
    pub state: Execution,
    /// When the promoting look happened (or the execution ended, if unknown).
    pub promoted_epoch: i64,
}

/// Reads the promotion from a succeeded execution's description.
pub fn promotion_of(info: &ExecutionInfo) -> Result<Promotion, SoakError> {
    let unreadable = |message: String| SoakError::Unreadable {
        id: info.id.clone(),
        message,
    };
    let value = info
        .output
        .as_ref()
        .and_then(|o| o.get("execution"))
        .ok_or_else(|| unreadable("no `execution` in the output".into()))?;
    let state = Execution::from_value(value).map_err(|error| SoakError::InvalidState {
        id: info.id.clone(),
        error: error.under("$.execution"),
    })?;
    if state.config.target.is_none() {
        return Err(unreadable("the config has no target".into()));
    }
    let promoted_epoch = state
        .last_look_epoch
        .or(info.stopped_epoch)
        .ok_or_else(|| unreadable("no time of promotion".into()))?;
    Ok(Promotion {
        execution_id: info.id.clone(),
        state,
        promoted_epoch,
    })
}

/// Seconds between the soak's looks: the soak cut into at most [`MAX_LOOKS`], never shorter
/// than the look interval, in whole minutes (CloudWatch's period).
pub fn look_seconds(config: &CanaryConfig) -> i64 {
    let soak = config.post_promotion_soak_seconds;
    let s = config
        .analysis
        .look_interval_seconds
        .max(soak.div_ceil(MAX_LOOKS))
        .max(60);
    (s.div_ceil(60) * 60) as i64
}

/// The ends of the looks that have settled by `horizon`: every `step` seconds after the
/// promotion, the last one at the soak's end.
pub fn look_ends(promoted: i64, soak_end: i64, step: i64, horizon: i64) -> Vec<i64> {
    let mut out = Vec::new();
    let mut at = promoted;
    while at < soak_end {
        at = (at + step).min(soak_end);
        if at > horizon {
            break;
        }
        out.push(at);
    }
    out
}

/// The adapters a soak check needs.
pub struct SoakPorts<'a, E, M, R, N> {
    /// The canary state machine.
    pub executions: &'a E,
    /// Metrics.
    pub metrics: &'a M,
    /// The alias.
    pub router: &'a R,
    /// Notifications.
    pub notifier: &'a N,
}

mod check;

pub use check::check;

#[cfg(test)]
mod tests;
