//! The config a hook runs, and whether its longest canary fits CodeDeploy's hour.

use serde_json::Value;

use super::*;
use crate::config::{CanaryConfig, Target};

/// The longest a canary of `config` can run, in seconds, or why it has no bound.
///
/// A phase advances once its soak is over and its data suffice; a failing critical metric
/// holds it for at most its soak again before the rollback, and missing data extend it until
/// `timeout_seconds`, counted from the start. So the run ends within the longer of
/// `timeout_seconds` and twice the phases' soak, plus `hold_before_full_traffic`, one
/// `auto_rollback.rollback_timeout_seconds` per approval the config asks for, and one look
/// interval for the last look. With `auto_rollback.enabled: false` a failing canary waits
/// for an operator without limit.
pub fn longest_canary_seconds(config: &CanaryConfig) -> Result<(u64, String), String> {
    if !config.auto_rollback.enabled {
        return Err(
            "auto_rollback.enabled is false, so a failing canary holds for an operator without a time limit"
                .into(),
        );
    }
    let soak: u64 = config
        .canary_phases
        .iter()
        .map(|p| p.duration_seconds)
        .sum();
    let ta = &config.traffic_advancing;
    let reaches_full = config
        .canary_phases
        .iter()
        .any(|p| p.traffic_percentage >= 100.0);
    let advances = config.canary_phases.len().saturating_sub(1) as u64;
    let mut approvals = if !ta.auto_advance_on_pass {
        advances
    } else if reaches_full && ta.requires_approval_before_full_traffic {
        1
    } else {
        0
    };
    if config.auto_rollback.requires_ops_confirmation {
        approvals += 1;
    }
    let hold = if reaches_full {
        ta.hold_before_full_traffic
    } else {
        0
    };
    let ramp = config.timeout_seconds.max(2 * soak);
    let waits = approvals * config.auto_rollback.rollback_timeout_seconds;
    let look = config.analysis.look_interval_seconds;
    let longest = ramp + hold + waits + look;
    Ok((
        longest,
        format!(
            "max(timeout_seconds {}, 2 x phases {soak}) + hold_before_full_traffic {hold} + {approvals} approval wait(s) x {} + look interval {look}",
            config.timeout_seconds, config.auto_rollback.rollback_timeout_seconds
        ),
    ))
}

/// Refuses a config whose longest run does not fit `budget` seconds.
pub fn check_budget(config: &CanaryConfig, budget: u64) -> Result<u64, HookError> {
    match longest_canary_seconds(config) {
        Ok((longest, _)) if longest <= budget => Ok(longest),
        Ok((longest, detail)) => Err(HookError::TooLong {
            longest,
            budget,
            detail,
        }),
        Err(detail) => Err(HookError::TooLong {
            longest: u64::MAX,
            budget,
            detail,
        }),
    }
}

/// The config of the function's environment with its target taken from the AppSpec. A
/// target in the config may add `routing` and `canary_alias`; a function, alias or version
/// it names must agree with the AppSpec.
pub fn config_for(text: Option<&str>, spec: &AppSpecTarget) -> Result<CanaryConfig, HookError> {
    let text = text.filter(|t| !t.trim().is_empty()).ok_or_else(|| {
        HookError::Config(ConfigError::new("$", format!("{CONFIG_ENV} is not set")))
    })?;
    let mut doc: Value = serde_json::from_str(text)
        .map_err(|e| HookError::Config(ConfigError::new("$", format!("not valid JSON: {e}"))))?;
    let Some(obj) = doc.as_object_mut() else {
        return Err(HookError::Config(ConfigError::new(
            "$",
            "must be a JSON object",
        )));
    };
    let target = obj
        .entry("target")
        .or_insert_with(|| Value::Object(Default::default()));
    let Some(target) = target.as_object_mut() else {
        return Err(HookError::Config(ConfigError::new(
            "target",
            "must be an object",
        )));
    };
    for (field, value, from) in [
        ("function_name", &spec.function_name, "Name"),
        ("alias", &spec.alias, "Alias"),
        ("baseline_version", &spec.current_version, "CurrentVersion"),
        ("canary_version", &spec.target_version, "TargetVersion"),
    ] {
        match target.get(field) {
            Some(Value::String(given)) if given != value => {
                return Err(HookError::Config(ConfigError::new(
                    format!("target.{field}"),
                    format!(
                        "is {given:?} but the deployment's AppSpec has {from} {value:?}; leave it out to take it from the AppSpec"
                    ),
                )));
            }
            _ => {
                target.insert(field.to_string(), Value::String(value.clone()));
            }
        }
    }
    CanaryConfig::from_json(&doc.to_string()).map_err(HookError::Config)
}

pub(super) fn target_of(spec: &AppSpecTarget, config: Option<&CanaryConfig>) -> Target {
    config.and_then(|c| c.target.clone()).unwrap_or(Target {
        function_name: spec.function_name.clone(),
        alias: spec.alias.clone(),
        baseline_version: spec.current_version.clone(),
        canary_version: spec.target_version.clone(),
        routing: Default::default(),
        canary_alias: None,
    })
}
