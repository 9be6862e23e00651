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
    ExecutionInfo, Executions, MetricsSource, Notifier, PortError, RunStatus, TimeRange,
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

/// One scheduled run at `now_epoch`; runs come every `schedule_seconds` (the notification of
/// a watched failure is sent by the run that first sees it, i.e. when its look settled after
/// the previous run).
pub async fn check<E, M, R, N>(
    now_epoch: i64,
    schedule_seconds: i64,
    p: SoakPorts<'_, E, M, R, N>,
) -> Result<SoakReport, SoakError>
where
    E: Executions,
    M: MetricsSource,
    R: TrafficRouter,
    N: Notifier,
{
    let recent = p
        .executions
        .list(false, RECENT_EXECUTIONS)
        .await
        .map_err(SoakError::Executions)?;
    if let Some(running) = recent.iter().find(|e| e.status == RunStatus::Running) {
        return Ok(SoakReport::idle(format!(
            "canary {} is running: no post-promotion soak while a canary decides",
            running.id
        )));
    }
    let Some(latest) = recent.iter().find(|e| e.status == RunStatus::Succeeded) else {
        return Ok(SoakReport::idle(format!(
            "no promoted canary among the {} most recent executions",
            recent.len()
        )));
    };
    let info = p
        .executions
        .describe(&latest.id)
        .await
        .map_err(SoakError::Executions)?;
    let promotion = promotion_of(&info)?;
    let config = &promotion.state.config;
    let Some(target) = config.target.clone() else {
        return Err(SoakError::Unreadable {
            id: info.id,
            message: "no target".into(),
        });
    };
    let promoted = promotion.promoted_epoch;
    let soak = config.post_promotion_soak_seconds as i64;
    let soak_end = promoted + soak;
    let mut out = SoakReport {
        status: SoakStatus::Idle,
        summary: String::new(),
        execution: Some(info.id.clone()),
        target: Some(target.clone()),
        promoted_epoch: Some(promoted),
        soak_ends_epoch: Some(soak_end),
        looks: 0,
        report: None,
        notification_failures: Vec::new(),
    };
    let version = format!(
        "{}:{} v{}",
        target.function_name, target.alias, target.canary_version
    );
    if soak == 0 {
        out.summary = format!("{version}: post_promotion_soak_seconds is 0 (no soak)");
        return Ok(out);
    }
    let horizon = now_epoch - SETTLE_SECONDS;
    if horizon >= soak_end + FINAL_CHECK_GRACE_SECONDS {
        out.summary = format!("{version}: the soak ended at {soak_end}");
        return Ok(out);
    }
    let alias = p.router.read(&target).await.map_err(SoakError::Routing)?;
    let split = alias.additional.as_ref().filter(|(_, w)| *w > 0.0);
    if alias.version != target.canary_version || split.is_some() {
        out.summary = format!(
            "{version}: alias {} now points at version {}{}; someone moved on, nothing to soak",
            target.alias,
            alias.version,
            split
                .map(|(v, w)| format!(" with {w}% to {v}"))
                .unwrap_or_default()
        );
        return Ok(out);
    }
    let step = look_seconds(config);
    let ends = look_ends(promoted, soak_end, step, horizon);
    if ends.is_empty() {
        out.status = SoakStatus::Watching;
        out.summary = format!(
            "{version}: soaking until {soak_end}; the first look settles at {}",
            promoted + step.min(soak) + SETTLE_SECONDS
        );
        return Ok(out);
    }
    let fetch = |start: i64, end: i64| p.metrics.fetch(config, &target, TimeRange { start, end });
    let baseline = fetch(promotion.state.started_epoch, promoted)
        .await
        .map_err(SoakError::Metrics)?;
    let sequential = config.analysis.method == AnalysisMethod::Sequential;
    let mut state: SequentialState = promotion.state.run.sequential.clone();
    let mut canary = SideObservations::new();
    let mut first_failing: Option<usize> = None;
    let mut judged: Option<(usize, JudgeReport, SoakFinding)> = None;
    let mut start = promoted;
    for (i, &end) in ends.iter().enumerate() {
        let newest = i + 1 == ends.len();
        let chunk = fetch(start, end).await.map_err(SoakError::Metrics)?;
        start = end;
        look::merge(&mut canary, &chunk.canary);
        if !sequential && !newest {
            continue;
        }
        let final_look = end >= soak_end;
        let input = look::judge_input(look::Windows {
            canary_weight: 100.0,
            baseline: &baseline.baseline,
            canary: &canary,
            earlier_baseline: Some(&baseline.baseline),
            latest: sequential.then_some(Latest {
                baseline: &chunk.baseline,
                canary: &chunk.canary,
                baseline_all: &baseline.baseline,
            }),
            shift_estimate: newest,
            phase_complete: final_look,
        });
        let report = judge::judge_with_state(config, &input, &mut state);
        let f = policy::soak_finding(&report, final_look);
        if f != SoakFinding::Healthy && first_failing.is_none() {
            first_failing = Some(i);
        }
        let stop = matches!(f, SoakFinding::Regressed(_));
        judged = Some((i, report, f));
        if stop {
            break;
        }
    }
    let Some((at, report, f)) = judged else {
        return Ok(out);
    };
    out.looks = at + 1;
    let final_look = ends[at] >= soak_end;
    // Only the run that first sees the first failing look tells people about it.
    let first_seen_now =
        first_failing.is_some_and(|i| ends[i] + SETTLE_SECONDS > now_epoch - schedule_seconds);
    let may_roll_back = policy::rollback_mode(config) == RollbackMode::Automatic;
    let (status, action, why) = match &f {
        SoakFinding::Healthy if final_look => (
            SoakStatus::Passed,
            Action::Promote,
            "the soak passed".to_string(),
        ),
        SoakFinding::Healthy => (
            SoakStatus::Watching,
            Action::Continue,
            "healthy so far".to_string(),
        ),
        SoakFinding::Suspect(why) => (SoakStatus::Suspect, Action::Hold, why.clone()),
        SoakFinding::Regressed(why) if may_roll_back => {
            (SoakStatus::RolledBack, Action::Rollback, why.clone())
        }
        SoakFinding::Regressed(why) => (
            SoakStatus::RegressionNeedsOperator,
            Action::Hold,
            format!("{why}; auto_rollback asks for an operator, so the alias stays"),
        ),
    };
    let decision = Decision {
        action,
        phase: config.canary_phases.len(),
        canary_weight: 100.0,
        next_weight: if action == Action::Rollback {
            0.0
        } else {
            100.0
        },
        reason: format!(
            "post-promotion soak, look {} of up to {} ({} s after promotion): {why}",
            at + 1,
            look_ends(promoted, soak_end, step, soak_end).len(),
            ends[at] - promoted
        ),
        requires_approval: false,
        wait_seconds: 0,
        canary_samples: report.canary_requests(),
        min_samples: 0,
        report,
    };
    let text = render_decision_text(config, &decision);
    out.status = status;
    out.summary = format!("{version}: {}", decision.reason);
    out.report = Some(text.clone());
    let notify_now = match status {
        SoakStatus::RolledBack => match p.router.rollback(&target, &alias.revision_id).await {
            Ok(_) => true,
            Err(PortError::Conflict { .. }) => {
                out.status = SoakStatus::Idle;
                out.summary = format!(
                    "{version}: alias {} changed while rolling back; the other writer wins",
                    target.alias
                );
                return Ok(out);
            }
            Err(e) => return Err(SoakError::Routing(e)),
        },
        SoakStatus::Suspect | SoakStatus::RegressionNeedsOperator => first_seen_now,
        _ => false,
    };
    if notify_now {
        let news = match status {
            SoakStatus::RolledBack => SoakNews::RolledBack,
            SoakStatus::RegressionNeedsOperator => SoakNews::NeedsOperator,
            _ => SoakNews::Suspect,
        };
        for n in notify::soak(config, &decision, &text, news) {
            if let Err(e) = p.notifier.publish(&n).await {
                out.notification_failures
                    .push(DeliveryFailure::notification(n.event.as_str(), e));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
