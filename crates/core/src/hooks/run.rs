//! The two hooks' work: `BeforeAllowTraffic` starts this deployment's canary, `AfterAllowTraffic` checks its outcome.

use serde_json::json;

use super::budget::target_of;
use super::*;

/// What both hooks read first: the deployment, its AppSpec and the config.
struct Deployment {
    spec: AppSpecTarget,
    status: Option<String>,
    create_epoch: Option<i64>,
    /// The config, or why it is invalid.
    config: Result<CanaryConfig, HookError>,
}

async fn read_deployment<D: Deployments>(
    ids: &HookRef,
    settings: &HookSettings,
    deployments: &D,
) -> Result<Deployment, HookError> {
    let id = &ids.deployment_id;
    let info = deployments
        .deployment(id)
        .await
        .map_err(|error| HookError::Deployment {
            deployment_id: id.clone(),
            error,
        })?;
    let text = info.app_spec.ok_or_else(|| HookError::AppSpec {
        deployment_id: id.clone(),
        error: AppSpecError {
            path: "revision.appSpecContent.content".into(),
            message: "missing: the deployment carries no AppSpec content".into(),
        },
    })?;
    let spec = appspec::parse(&text).map_err(|error| HookError::AppSpec {
        deployment_id: id.clone(),
        error,
    })?;
    let config = config_for(settings.config.as_deref(), &spec);
    Ok(Deployment {
        spec,
        status: info.status,
        create_epoch: info.create_epoch,
        config,
    })
}

fn outcome(
    kind: HookKind,
    ids: &HookRef,
    target: &Target,
    reported: Option<bool>,
    execution: Option<String>,
    summary: String,
) -> HookOutcome {
    HookOutcome {
        hook: kind,
        deployment_id: ids.deployment_id.clone(),
        lifecycle_event_hook_execution_id: ids.lifecycle_event_hook_execution_id.clone(),
        reported,
        function: target.function_name.clone(),
        alias: target.alias.clone(),
        baseline_version: target.baseline_version.clone(),
        canary_version: target.canary_version.clone(),
        execution,
        summary,
    }
}

/// The execution name of this deployment's canary: the operator's naming with the
/// deployment's creation time, so that a retried invocation finds (and Step Functions
/// deduplicates) the same execution.
pub fn deployment_execution_name(config: &CanaryConfig, create_epoch: i64) -> String {
    execution_name(config, create_epoch)
}

pub(super) async fn before<D, E, R, H>(
    ids: &HookRef,
    settings: &HookSettings,
    now_epoch: i64,
    ports: &HookPorts<'_, D, E, R, H>,
) -> Result<HookOutcome, HookError>
where
    D: Deployments,
    E: Executions,
{
    let kind = HookKind::BeforeAllowTraffic;
    let d = read_deployment(ids, settings, ports.deployments).await?;
    if let Some(status) = d.status.as_deref().filter(|s| ENDED.contains(s)) {
        return Err(HookError::Deployment {
            deployment_id: ids.deployment_id.clone(),
            error: PortError::Rejected(format!(
                "the deployment is {status}: no canary is started for it"
            )),
        });
    }
    let config = d.config?;
    let target = target_of(&d.spec, Some(&config));
    if !config.enabled {
        return Ok(outcome(
            kind,
            ids,
            &target,
            Some(true),
            None,
            "canary analysis is disabled (enabled: false): CodeDeploy shifts traffic without a canary".into(),
        ));
    }
    let longest = check_budget(&config, HOOK_BUDGET_SECONDS)?;
    let name = deployment_execution_name(&config, d.create_epoch.unwrap_or(now_epoch));
    for running in ports
        .executions
        .list(true, RECENT_EXECUTIONS)
        .await
        .map_err(HookError::Executions)?
    {
        if running.name == name {
            return Ok(outcome(
                kind,
                ids,
                &target,
                None,
                Some(running.id.clone()),
                format!(
                    "canary {} already runs for deployment {}; it reports when it ends",
                    running.id, ids.deployment_id
                ),
            ));
        }
        if let Some(execution) = canary_on_alias(ports.executions, &running.id, &target)
            .await
            .map_err(HookError::Executions)?
        {
            return Err(HookError::CanaryInProgress {
                function: target.function_name.clone(),
                alias: target.alias.clone(),
                execution,
            });
        }
    }
    let input = json!({ "config": &config, "hook": ids });
    let id = ports
        .executions
        .start(&name, &input)
        .await
        .map_err(HookError::Executions)?;
    Ok(outcome(
        kind,
        ids,
        &target,
        None,
        Some(id.clone()),
        format!(
            "canary {id} started for {}:{} v{} -> v{} (at most {longest} s); it reports to CodeDeploy when it ends",
            target.function_name, target.alias, target.baseline_version, target.canary_version
        ),
    ))
}

pub(super) async fn after<D, E, R, H>(
    ids: &HookRef,
    settings: &HookSettings,
    ports: &HookPorts<'_, D, E, R, H>,
) -> Result<HookOutcome, HookError>
where
    D: Deployments,
    E: Executions,
    R: TrafficRouter,
{
    let kind = HookKind::AfterAllowTraffic;
    let d = read_deployment(ids, settings, ports.deployments).await?;
    let config = d.config?;
    let target = target_of(&d.spec, Some(&config));
    let alias = ports
        .router
        .read(&target)
        .await
        .map_err(HookError::Routing)?;
    let split = alias.additional.as_ref().filter(|(_, w)| *w > 0.0);
    if alias.version != target.canary_version || split.is_some() {
        let how = match split {
            Some((v, w)) => format!("version {} with {w}% routed to version {v}", alias.version),
            None => format!("version {}", alias.version),
        };
        return Ok(outcome(
            kind,
            ids,
            &target,
            Some(false),
            None,
            format!(
                "alias {} points at {how}, not at the target version {} alone",
                target.alias, target.canary_version
            ),
        ));
    }
    if !config.enabled {
        return Ok(outcome(
            kind,
            ids,
            &target,
            Some(true),
            None,
            format!(
                "alias {} serves version {}; canary analysis is disabled (enabled: false)",
                target.alias, target.canary_version
            ),
        ));
    }
    let Some(create) = d.create_epoch else {
        return Err(HookError::Deployment {
            deployment_id: ids.deployment_id.clone(),
            error: PortError::Rejected("the deployment has no createTime".into()),
        });
    };
    let name = deployment_execution_name(&config, create);
    let found = ports
        .executions
        .list(false, RECENT_EXECUTIONS)
        .await
        .map_err(HookError::Executions)?
        .into_iter()
        .find(|e| e.name == name);
    let Some(found) = found else {
        return Ok(outcome(
            kind,
            ids,
            &target,
            Some(false),
            None,
            format!(
                "no canary execution {name} for deployment {} among the {RECENT_EXECUTIONS} most recent",
                ids.deployment_id
            ),
        ));
    };
    let info = ports
        .executions
        .describe(&found.id)
        .await
        .map_err(HookError::Executions)?;
    let started_by = info
        .input
        .as_ref()
        .and_then(|i| i.get("hook"))
        .and_then(|h| h.get("deploymentId"))
        .and_then(Value::as_str);
    if started_by != Some(ids.deployment_id.as_str()) {
        return Ok(outcome(
            kind,
            ids,
            &target,
            Some(false),
            Some(info.id.clone()),
            format!(
                "execution {} was not started by deployment {} (its hook names {:?})",
                info.id, ids.deployment_id, started_by
            ),
        ));
    }
    let ok = info.status == RunStatus::Succeeded;
    let summary = if ok {
        format!(
            "alias {} serves version {} alone and canary {} succeeded",
            target.alias, target.canary_version, info.id
        )
    } else {
        format!(
            "canary {} is {:?}, not succeeded{}",
            info.id,
            info.status,
            info.error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        )
    };
    Ok(outcome(
        kind,
        ids,
        &target,
        Some(ok),
        Some(info.id),
        summary,
    ))
}
