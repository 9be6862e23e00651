//! One scheduled soak run, in stages: find the latest promotion, check there is a soak to
//! watch, judge the settled looks, then act on the finding (roll back, notify).

use super::*;

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
    let promotion = match latest_promotion(p.executions).await? {
        Ok(promotion) => promotion,
        Err(idle) => return Ok(idle),
    };
    let soak = match Soak::of(&promotion, now_epoch, p.router).await? {
        Ok(soak) => soak,
        Err(report) => return Ok(report),
    };
    let Some(judged) = judge_looks(&soak, &promotion, p.metrics).await? else {
        return Ok(soak.out);
    };
    act(
        soak,
        judged,
        &promotion.state.config,
        now_epoch - schedule_seconds,
        p.router,
        p.notifier,
    )
    .await
}

/// The latest promotion, or the idle report saying why there is none to soak.
async fn latest_promotion<E: Executions>(
    executions: &E,
) -> Result<Result<Promotion, SoakReport>, SoakError> {
    let recent = executions
        .list(false, RECENT_EXECUTIONS)
        .await
        .map_err(SoakError::Executions)?;
    if let Some(running) = recent.iter().find(|e| e.status == RunStatus::Running) {
        return Ok(Err(SoakReport::idle(format!(
            "canary {} is running: no post-promotion soak while a canary decides",
            running.id
        ))));
    }
    let Some(latest) = recent.iter().find(|e| e.status == RunStatus::Succeeded) else {
        return Ok(Err(SoakReport::idle(format!(
            "no promoted canary among the {} most recent executions",
            recent.len()
        ))));
    };
    let info = executions
        .describe(&latest.id)
        .await
        .map_err(SoakError::Executions)?;
    promotion_of(&info).map(Ok)
}

/// An active soak: what it watches, until when, and the looks settled so far.
struct Soak {
    target: Target,
    promoted: i64,
    soak_end: i64,
    step: i64,
    ends: Vec<i64>,
    /// The alias revision read now: a rollback writes only over it.
    revision: String,
    /// "orders-api:live v42", for summaries.
    version: String,
    out: SoakReport,
}

impl Soak {
    /// The soak at `now_epoch`, or the report of why there is nothing to judge now.
    async fn of<R: TrafficRouter>(
        promotion: &Promotion,
        now_epoch: i64,
        router: &R,
    ) -> Result<Result<Soak, SoakReport>, SoakError> {
        let config = &promotion.state.config;
        let Some(target) = config.target.clone() else {
            return Err(SoakError::Unreadable {
                id: promotion.execution_id.clone(),
                message: "no target".into(),
            });
        };
        let promoted = promotion.promoted_epoch;
        let soak = config.post_promotion_soak_seconds as i64;
        let soak_end = promoted + soak;
        let mut out = SoakReport {
            status: SoakStatus::Idle,
            summary: String::new(),
            execution: Some(promotion.execution_id.clone()),
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
            return Ok(Err(out));
        }
        let horizon = now_epoch - SETTLE_SECONDS;
        if horizon >= soak_end + FINAL_CHECK_GRACE_SECONDS {
            out.summary = format!("{version}: the soak ended at {soak_end}");
            return Ok(Err(out));
        }
        let alias = router.read(&target).await.map_err(SoakError::Routing)?;
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
            return Ok(Err(out));
        }
        let step = look_seconds(config);
        let ends = look_ends(promoted, soak_end, step, horizon);
        if ends.is_empty() {
            out.status = SoakStatus::Watching;
            out.summary = format!(
                "{version}: soaking until {soak_end}; the first look settles at {}",
                promoted + step.min(soak) + SETTLE_SECONDS
            );
            return Ok(Err(out));
        }
        Ok(Ok(Soak {
            target,
            promoted,
            soak_end,
            step,
            ends,
            revision: alias.revision_id,
            version,
            out,
        }))
    }
}

/// The newest look judged (index into the looks), its report and finding, and the first
/// look that did not look healthy.
struct Judged {
    at: usize,
    report: JudgeReport,
    finding: SoakFinding,
    first_failing: Option<usize>,
}

/// Judges the settled looks: with sequential analysis every look again from the promotion
/// (continuing the e-processes), else the newest one; stops at a regression.
async fn judge_looks<M: MetricsSource>(
    soak: &Soak,
    promotion: &Promotion,
    metrics: &M,
) -> Result<Option<Judged>, SoakError> {
    let config = &promotion.state.config;
    let fetch =
        |start: i64, end: i64| metrics.fetch(config, &soak.target, TimeRange { start, end });
    let baseline = fetch(promotion.state.started_epoch, soak.promoted)
        .await
        .map_err(SoakError::Metrics)?;
    let sequential = config.analysis.method == AnalysisMethod::Sequential;
    let mut state: SequentialState = promotion.state.run.sequential.clone();
    let mut canary = SideObservations::new();
    let mut first_failing: Option<usize> = None;
    let mut judged: Option<(usize, JudgeReport, SoakFinding)> = None;
    let mut start = soak.promoted;
    for (i, &end) in soak.ends.iter().enumerate() {
        let newest = i + 1 == soak.ends.len();
        let chunk = fetch(start, end).await.map_err(SoakError::Metrics)?;
        start = end;
        look::merge(&mut canary, &chunk.canary);
        if !sequential && !newest {
            continue;
        }
        let final_look = end >= soak.soak_end;
        let input = look::judge_input(look::Windows {
            canary_weight: 100.0,
            baseline: &baseline.baseline,
            canary: &canary,
            earlier_baseline: Some(&baseline.baseline),
            latest: sequential.then_some(Latest {
                baseline: &chunk.baseline,
                canary: &chunk.canary,
                baseline_all: &baseline.baseline,
                warming_up: false,
            }),
            shift_estimate: newest,
            phase_complete: final_look,
            routed: true,
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
    Ok(judged.map(|(at, report, finding)| Judged {
        at,
        report,
        finding,
        first_failing,
    }))
}

/// Acts on the finding: the decision for the report, a rollback when the policy allows it,
/// and the notifications of what the previous run (at `previous_run`) had not seen.
async fn act<R: TrafficRouter, N: Notifier>(
    soak: Soak,
    judged: Judged,
    config: &CanaryConfig,
    previous_run: i64,
    router: &R,
    notifier: &N,
) -> Result<SoakReport, SoakError> {
    let Soak {
        target,
        promoted,
        soak_end,
        step,
        ends,
        revision,
        version,
        mut out,
    } = soak;
    let Judged {
        at,
        report,
        finding,
        first_failing,
    } = judged;
    out.looks = at + 1;
    let final_look = ends[at] >= soak_end;
    // Only the run that first sees the first failing look tells people about it.
    let first_seen_now = first_failing.is_some_and(|i| ends[i] + SETTLE_SECONDS > previous_run);
    let may_roll_back = policy::rollback_mode(config) == RollbackMode::Automatic;
    let (status, action, why) = match &finding {
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
    let news = match status {
        SoakStatus::RolledBack => {
            match router.rollback(&target, &revision, &Claim::Unchanged).await {
                Ok(_) => Some(SoakNews::RolledBack),
                Err(PortError::Conflict { .. }) => {
                    out.status = SoakStatus::Idle;
                    out.summary = format!(
                        "{version}: alias {} changed while rolling back; the other writer wins",
                        target.alias
                    );
                    return Ok(out);
                }
                Err(e) => return Err(SoakError::Routing(e)),
            }
        }
        SoakStatus::RegressionNeedsOperator if first_seen_now => Some(SoakNews::NeedsOperator),
        SoakStatus::Suspect if first_seen_now => Some(SoakNews::Suspect),
        _ => None,
    };
    if let Some(news) = news {
        for n in notify::soak(config, &decision, &text, news) {
            if let Err(e) = notifier.publish(&n).await {
                out.notification_failures
                    .push(DeliveryFailure::notification(n.event.as_str(), e));
            }
        }
    }
    Ok(out)
}
