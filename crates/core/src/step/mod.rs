//! One canary step over the ports: the logic behind the `phase` Lambda function, the local
//! demo and the tests. `start` shifts the first share of traffic; `look` fetches both
//! versions' metrics, judges, decides, applies the decision to the alias and notifies.
//!
//! Safety rules live here: the alias must still be as we left it (otherwise stop and report,
//! never overwrite another writer), weights are set, never added, and a failed notification
//! is recorded but never blocks or undoes a rollback.

pub mod events;
pub mod ops;

use thiserror::Error;

use crate::config::AnalysisMethod;
use crate::config::{CanaryConfig, Target};
use crate::controller::{Outcome, RunState};
use crate::judge::Latest;
use crate::look;
use crate::notify::{self, Notification};
use crate::policy::{Action, Decision};
use crate::ports::{AliasState, MetricsSource, Notifier, PortError, TimeRange, TrafficRouter};
use crate::report::render_decision_text;
pub use crate::state::{DeliveryFailure, Execution, HookRef, StepOutput};
use crate::state::{HISTORY_LIMIT, LookRecord, StateError};

/// Why a step could not complete.
#[derive(Debug, Error, PartialEq)]
pub enum StepError {
    /// The config is invalid.
    #[error("invalid config: {0}")]
    Config(crate::error::ConfigError),
    /// The config has no target.
    #[error("the config has no target: a deployed canary needs function_name, alias and versions")]
    NoTarget,
    /// The alias is not in the state canary-gate left it in.
    #[error("alias {alias} was changed by someone else: {detail}")]
    AliasConflict {
        /// Alias name.
        alias: String,
        /// What differs.
        detail: String,
    },
    /// Another canary already splits this alias's traffic.
    #[error(
        "alias {alias} already routes {weight}% to version {version}: another canary is in progress"
    )]
    CanaryInProgress {
        /// Alias name.
        alias: String,
        /// The version receiving the split.
        version: String,
        /// Its weight.
        weight: f64,
    },
    /// Another canary's hold on the alias is in force (during its 100 % phase, say, when no
    /// split shows it).
    #[error(
        "alias {alias} is held by canary {holder} until {until_epoch} (its description says so): another canary is in progress"
    )]
    AliasHeld {
        /// Alias name.
        alias: String,
        /// The execution holding it.
        holder: String,
        /// When the hold lapses if that execution never ends it.
        until_epoch: i64,
    },
    /// The CodeDeploy lifecycle hook in the execution input names no deployment of this
    /// canary: nothing is reported to CodeDeploy for it.
    #[error("hook: deployment {deployment_id} is not a deployment of this canary: {reason}")]
    UnverifiedHook {
        /// The deployment the input named.
        deployment_id: String,
        /// Why it is not this canary's.
        reason: String,
    },
    /// The alias does not point at the baseline version.
    #[error("alias {alias} points at version {found}, not at the baseline version {expected}")]
    UnexpectedBaseline {
        /// Alias name.
        alias: String,
        /// The configured baseline.
        expected: String,
        /// What the alias points at.
        found: String,
    },
    /// The canary already ended.
    #[error("the canary has already ended ({0:?})")]
    Finished(Outcome),
    /// Metrics could not be read.
    #[error("metrics unavailable: {0}")]
    Metrics(PortError),
    /// The alias could not be read or written.
    #[error("traffic routing failed: {0}")]
    Routing(PortError),
    /// CodeDeploy did not take a lifecycle status.
    #[error("reporting to CodeDeploy failed: {0}")]
    HookReport(PortError),
    /// The state the state machine carried is malformed.
    #[error("{0}")]
    InvalidState(StateError),
}

impl StepError {
    /// A stable name for Step Functions `Retry`/`Catch` (`ErrorEquals`).
    pub fn error_type(&self) -> &'static str {
        match self {
            StepError::Config(_) | StepError::NoTarget => "InvalidConfig",
            StepError::AliasConflict { .. } | StepError::Routing(PortError::Conflict { .. }) => {
                "AliasConflict"
            }
            StepError::CanaryInProgress { .. } | StepError::AliasHeld { .. } => "CanaryInProgress",
            StepError::UnexpectedBaseline { .. } => "UnexpectedBaseline",
            StepError::Finished(_) => "CanaryFinished",
            StepError::InvalidState(_) => "InvalidState",
            StepError::UnverifiedHook { .. } => "InvalidHook",
            StepError::Metrics(e) | StepError::Routing(e) | StepError::HookReport(e)
                if e.is_transient() =>
            {
                "Transient"
            }
            StepError::HookReport(_) => "HookReportFailed",
            StepError::Metrics(_) => "MetricsUnavailable",
            StepError::Routing(_) => "RoutingFailed",
        }
    }
}

fn target_of(config: &CanaryConfig) -> Result<&Target, StepError> {
    config.target.as_ref().ok_or(StepError::NoTarget)
}

/// Starts a canary without an execution id (tests, the demo): as [`start_for`], with no
/// hold written on the alias.
pub async fn start<R: TrafficRouter>(
    config: CanaryConfig,
    now_epoch: i64,
    hook: Option<HookRef>,
    router: &R,
) -> Result<Execution, StepError> {
    start_for(None, config, now_epoch, hook, router).await
}

/// Starts a canary run by execution `owner`: checks that no other canary holds the alias
/// (its claim, written with every routing change, in force) and that the alias points at
/// the baseline with no split, then routes the first phase's share to the canary and
/// records `owner`'s hold in the same write.
///
/// A start retried after its write landed (the function timed out or crashed before
/// answering) finds the alias held by `owner` and routing the first share: it carries on
/// from that revision without writing again. Two starts at once cannot both win: both name
/// the revision they read, and the alias takes only the first write.
pub async fn start_for<R: TrafficRouter>(
    owner: Option<String>,
    config: CanaryConfig,
    now_epoch: i64,
    hook: Option<HookRef>,
    router: &R,
) -> Result<Execution, StepError> {
    let target = target_of(&config)?.clone();
    let alias = router.read(&target).await.map_err(StepError::Routing)?;
    let run = RunState::new(0);
    let weight = run.weight(&config);
    let mut exec = Execution {
        config,
        run,
        started_epoch: now_epoch,
        alias_revision: alias.revision_id.clone(),
        history: Vec::new(),
        hook,
        error_since: None,
        last_look_epoch: None,
        data_through_epoch: None,
        last_decision: None,
        delivery_failures: Vec::new(),
        owner,
        held_until: None,
    };
    if let Some(claim) = &alias.claim {
        if exec.owner.is_some() && exec.wrote(&alias) {
            if claim.holds_at(now_epoch) && routes_as(&alias, &target, weight) {
                // Our own start, retried after its write landed.
                exec.adopt(&alias);
                return Ok(exec);
            }
            return Err(StepError::AliasConflict {
                alias: target.alias.clone(),
                detail: format!(
                    "this canary's start wrote revision {} but the alias no longer routes {weight}% to version {}",
                    alias.revision_id, target.canary_version
                ),
            });
        }
        if claim.holds_at(now_epoch) {
            return Err(StepError::AliasHeld {
                alias: target.alias.clone(),
                holder: claim.holder.clone(),
                until_epoch: claim.until_epoch.unwrap_or_default(),
            });
        }
    }
    if let Some((version, weight)) = &alias.additional
        && *weight > 0.0
    {
        return Err(StepError::CanaryInProgress {
            alias: target.alias.clone(),
            version: version.clone(),
            weight: *weight,
        });
    }
    if alias.version != target.baseline_version {
        return Err(StepError::UnexpectedBaseline {
            alias: target.alias.clone(),
            expected: target.baseline_version.clone(),
            found: alias.version.clone(),
        });
    }
    apply_weight(
        &mut exec,
        router,
        &target,
        weight,
        &alias.revision_id,
        now_epoch,
    )
    .await?;
    Ok(exec)
}

/// Sets the canary's share to `weight` (the canary alone at 100 %) from `revision`, holding
/// the alias for this execution, and records the write in `exec`: the new revision and the
/// end of the hold it set, so that a later look can tell this write from one it never heard
/// of.
async fn apply_weight<R: TrafficRouter>(
    exec: &mut Execution,
    router: &R,
    target: &Target,
    weight: f64,
    revision: &str,
    now_epoch: i64,
) -> Result<(), StepError> {
    let claim = exec.hold(now_epoch);
    let after = if weight >= 100.0 {
        router.promote(target, revision, &claim).await
    } else {
        router
            .set_canary_weight(target, weight, revision, &claim)
            .await
    }
    .map_err(StepError::Routing)?;
    exec.alias_revision = after.revision_id;
    exec.written(&claim);
    Ok(())
}

/// Whether the alias routes `weight` % to the canary exactly as canary-gate writes it: the
/// baseline with the canary as its additional version, the canary alone at 100 %, the
/// baseline alone at 0 %.
fn routes_as(alias: &AliasState, target: &Target, weight: f64) -> bool {
    let canary = &target.canary_version;
    match &alias.additional {
        _ if weight >= 100.0 => alias.version == *canary && alias.additional.is_none(),
        _ if weight <= 0.0 => {
            alias.version == target.baseline_version && alias.additional.is_none()
        }
        Some((v, w)) => {
            alias.version == target.baseline_version && v == canary && (w - weight).abs() < 1e-6
        }
        None => false,
    }
}

/// Checks that the alias is as canary-gate left it.
fn check_alias(exec: &Execution, target: &Target, alias: &AliasState) -> Result<(), StepError> {
    let expected = exec.run.weight(&exec.config);
    let actual = alias.weight_of(&target.canary_version);
    if alias.revision_id != exec.alias_revision || (actual - expected).abs() > 1e-6 {
        return Err(StepError::AliasConflict {
            alias: target.alias.clone(),
            detail: format!(
                "expected revision {} with {expected}% on version {}, found revision {} with {actual}%",
                exec.alias_revision, target.canary_version, alias.revision_id
            ),
        });
    }
    Ok(())
}

/// Takes one look at `now_epoch`: fetch, judge, decide, apply and notify.
pub async fn look<M, R, N>(
    mut exec: Execution,
    now_epoch: i64,
    metrics: &M,
    router: &R,
    notifier: &N,
) -> Result<StepOutput, StepError>
where
    M: MetricsSource,
    R: TrafficRouter,
    N: Notifier,
{
    if let Some(o) = exec.run.outcome {
        return Err(StepError::Finished(o));
    }
    let target = target_of(&exec.config)?.clone();
    let alias = router.read(&target).await.map_err(StepError::Routing)?;
    // A step retried after its alias write succeeded (the Lambda timed out or crashed before
    // answering) finds the alias changed by its own earlier attempt: it judges again and
    // accepts the alias only if it routes exactly as this look's decision would set it.
    let conflict = check_alias(&exec, &target, &alias).err();

    let at = (now_epoch - exec.started_epoch).max(0) as u64;
    let phase_start = exec.started_epoch + exec.run.phase_started_at as i64;
    let ranges = look::ranges(
        look::Clock {
            started: exec.started_epoch,
            phase_start,
            data_through: exec.data_through_epoch,
            now: now_epoch,
        },
        exec.run.full_traffic(&exec.config),
        exec.config.analysis.method == AnalysisMethod::Sequential,
    );
    let fetch = |range: TimeRange| metrics.fetch(&exec.config, &target, range);
    let fetched = fetch(ranges.phase).await.map_err(StepError::Metrics)?;
    let earlier = match ranges.earlier {
        Some(r) => Some(fetch(r).await.map_err(StepError::Metrics)?),
        None => None,
    };
    let sequential = match ranges.sequential {
        Some((increment, all)) => Some((
            fetch(increment).await.map_err(StepError::Metrics)?,
            fetch(all).await.map_err(StepError::Metrics)?,
        )),
        None => None,
    };
    let input = look::judge_input(look::Windows {
        canary_weight: exec.run.weight(&exec.config),
        baseline: &fetched.baseline,
        canary: &fetched.canary,
        earlier_baseline: earlier.as_ref().map(|e| &e.baseline),
        latest: sequential.as_ref().map(|(latest, all)| Latest {
            baseline: &latest.baseline,
            canary: &latest.canary,
            baseline_all: &all.baseline,
            warming_up: ranges
                .sequential
                .is_some_and(|(inc, _)| look::warming_up(inc.start, phase_start)),
        }),
        shift_estimate: true,
        phase_complete: exec.run.phase_complete(&exec.config, at),
        routed: true,
    });
    let (mut decision, _) = exec.run.look(&exec.config, at, &input);
    exec.error_since = None;
    exec.last_look_epoch = Some(now_epoch);
    if let Some((latest, _)) = &sequential {
        exec.data_through_epoch = Some(latest.through.unwrap_or(now_epoch));
    }
    let mut awaiting_approval = decision.requires_approval;
    if let Some(conflict) = conflict {
        let writes = !awaiting_approval
            && matches!(
                decision.action,
                Action::Advance | Action::Promote | Action::Rollback
            );
        let decided = exec.run.weight(&exec.config);
        if writes && routes_as(&alias, &target, decided) && exec.wrote(&alias) {
            // Our own write: carry on from it without writing again.
            exec.adopt(&alias);
        } else if exec.lost_own_write(&alias) {
            // The alias was last written by this execution (its claim says so), by an
            // attempt whose answer never reached the state machine, and this look decides
            // otherwise: rather than guess which of the two is current, roll back — from the
            // revision just read, with this execution's release. A canary is never left
            // holding traffic that no decision accounts for.
            let found = alias.weight_of(&target.canary_version);
            let after = router
                .rollback(&target, &alias.revision_id, &exec.release())
                .await
                .map_err(StepError::Routing)?;
            exec.run.apply_action(Action::Rollback, at, 0);
            exec.alias_revision = after.revision_id;
            decision.reason = format!(
                "rolled back: the alias routes {found}% to version {} as an earlier attempt of this execution left it (revision {}), not {decided}% as this look decided ({}: {})",
                target.canary_version,
                alias.revision_id,
                decision.action.as_str(),
                decision.reason
            );
            decision.action = Action::Rollback;
            decision.next_weight = 0.0;
            decision.requires_approval = false;
            awaiting_approval = false;
        } else {
            return Err(conflict);
        }
    } else if !awaiting_approval {
        apply(&mut exec, &target, &decision, &alias, now_epoch, router).await?;
    }
    let report = render_decision_text(&exec.config, &decision);
    let notification_failures =
        publish_all(notifier, notify::compose(&exec.config, &decision, &report)).await;
    exec.delivery_failures = notification_failures.clone();
    exec.history.push(LookRecord::from_decision(at, &decision));
    exec.last_decision = Some(Box::new(decision.clone()));
    if exec.history.len() > HISTORY_LIMIT {
        exec.history.remove(0);
    }
    Ok(StepOutput {
        action: decision.action,
        awaiting_approval,
        // After a shift the new weight needs a full interval of traffic before the next look.
        wait_seconds: if decision.action.is_final() {
            1
        } else {
            decision
                .wait_seconds
                .max(exec.config.analysis.look_interval_seconds)
        },
        report,
        notification_failures,
        execution: exec,
    })
}

/// Applies a decision to the alias. Rollback and promotion clear the routing; advance sets
/// the next weight; the other actions leave the alias alone.
async fn apply<R: TrafficRouter>(
    exec: &mut Execution,
    target: &Target,
    d: &Decision,
    alias: &AliasState,
    now_epoch: i64,
    router: &R,
) -> Result<(), StepError> {
    let revision = &alias.revision_id;
    let after = match d.action {
        Action::Rollback => router
            .rollback(target, revision, &exec.release())
            .await
            .map_err(StepError::Routing)?,
        Action::Promote => router
            .promote(target, revision, &exec.release())
            .await
            .map_err(StepError::Routing)?,
        Action::Advance => {
            return apply_weight(exec, router, target, d.next_weight, revision, now_epoch).await;
        }
        Action::Continue | Action::Extend | Action::Hold => return Ok(()),
    };
    exec.alias_revision = after.revision_id;
    Ok(())
}

/// Publishes every notification; failures are collected, never raised.
async fn publish_all<N: Notifier>(
    notifier: &N,
    notifications: Vec<Notification>,
) -> Vec<DeliveryFailure> {
    let mut failures = Vec::new();
    for n in &notifications {
        if let Err(e) = notifier.publish(n).await {
            failures.push(DeliveryFailure::notification(n.event.as_str(), e));
        }
    }
    failures
}

/// Applies an answer to an approval request (after `.waitForTaskToken`): like
/// [`apply_override`], but an advance or promotion first checks that the alias is as
/// canary-gate left it (the revision and split it last wrote). An approval given after
/// someone else changed the alias during the wait is an `AliasConflict`, and nothing is
/// written. A retry of an approval whose write succeeded finds the alias already as the
/// approval wants it and carries on from it without writing again. A rollback always goes
/// ahead.
pub async fn apply_approved<R: TrafficRouter>(
    exec: Execution,
    action: Action,
    now_epoch: i64,
    router: &R,
) -> Result<Execution, StepError> {
    let target = target_of(&exec.config)?.clone();
    let alias = router.read(&target).await.map_err(StepError::Routing)?;
    let at = (now_epoch - exec.started_epoch).max(0) as u64;
    let mut after = exec.clone();
    let (effective, _, _) = after.run.apply_action(action, at, 0);
    if matches!(effective, Action::Advance | Action::Promote) {
        if alias.revision_id != exec.alias_revision
            && routes_as(&alias, &target, after.run.weight(&after.config))
            && exec.wrote(&alias)
        {
            // Our own write, retried: carry on from it.
            after.adopt(&alias);
            return Ok(after);
        }
        check_alias(&exec, &target, &alias)?;
    }
    write_override(exec, action, now_epoch, router, &target, &alias).await
}

/// Applies an operator's decision at `now_epoch`: an approved advance, rollback or promotion,
/// an abort (`rollback`) or a forced `promote`. Used by the operator commands (a person
/// taking control) and, through [`apply_approved`], after `.waitForTaskToken`; other actions
/// change nothing.
pub async fn apply_override<R: TrafficRouter>(
    exec: Execution,
    action: Action,
    now_epoch: i64,
    router: &R,
) -> Result<Execution, StepError> {
    let target = target_of(&exec.config)?.clone();
    let alias = router.read(&target).await.map_err(StepError::Routing)?;
    write_override(exec, action, now_epoch, router, &target, &alias).await
}

/// Applies `action` to the alias as it was just read (`alias`), with its revision.
async fn write_override<R: TrafficRouter>(
    mut exec: Execution,
    action: Action,
    now_epoch: i64,
    router: &R,
    target: &Target,
    alias: &AliasState,
) -> Result<Execution, StepError> {
    let at = (now_epoch - exec.started_epoch).max(0) as u64;
    let (effective, _, _) = exec.run.apply_action(action, at, 0);
    let revision = &alias.revision_id;
    let after = match effective {
        Action::Rollback => router.rollback(target, revision, &exec.release()).await,
        Action::Promote => router.promote(target, revision, &exec.release()).await,
        Action::Advance => {
            let weight = exec.run.weight(&exec.config);
            apply_weight(&mut exec, router, target, weight, revision, now_epoch).await?;
            return Ok(exec);
        }
        Action::Continue | Action::Extend | Action::Hold => return Ok(exec),
    }
    .map_err(StepError::Routing)?;
    exec.alias_revision = after.revision_id;
    Ok(exec)
}

#[cfg(test)]
mod tests;
