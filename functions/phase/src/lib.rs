//! The `phase` Lambda function's handler: one step of the canary per invocation (start, look,
//! apply an approval, report to CodeDeploy, …) as the state machine asks. The step itself
//! lives in `canary_gate_core::step::ops`; here the event is parsed strictly (a malformed
//! carried state is `InvalidState`), the outcome logged — every failed notification or
//! CodeDeploy report with its cause — and errors become `Diagnostic`s whose `error_type` the
//! state machine's Retry/Catch match (`Transient`, `AliasConflict`, `MetricsUnavailable`,
//! `InvalidConfig`, `InvalidState`, `HookReportFailed`, …).

use canary_gate_core::emf;
use canary_gate_core::ports::{Deployments, LifecycleHook, MetricsSource, Notifier, TrafficRouter};
use canary_gate_core::step::ops::{PhaseResponse, Ports, handle_value};
use lambda_runtime::{Diagnostic, tracing};
use serde_json::Value;

/// Handles one event with the given adapters; the clock is passed in for testability.
pub async fn handler<M, R, N, H>(
    ports: Ports<'_, M, R, N, H>,
    event: &Value,
    now_epoch: i64,
) -> Result<PhaseResponse, Diagnostic>
where
    M: MetricsSource,
    R: TrafficRouter,
    N: Notifier,
    H: LifecycleHook + Deployments,
{
    let resp = handle_value(event, now_epoch, ports)
        .await
        .map_err(|e| canary_gate_lambda::diagnostic(e.error_type(), &e))?;
    for f in &resp.failures {
        tracing::warn!(
            error_type = f.kind.error_type(),
            what = f.what.as_str(),
            cause = f.cause.as_str(),
            "delivery failed; the step went on"
        );
    }
    if let Some(exec) = &resp.execution {
        let (function, alias) = exec
            .config
            .target
            .as_ref()
            .map(|t| (t.function_name.as_str(), t.alias.as_str()))
            .unwrap_or_default();
        tracing::info!(
            function,
            alias,
            phase = exec.run.phase,
            weight = exec.run.weight(&exec.config),
            decision = resp.action.as_str(),
            "{}",
            resp.summary
        );
        if let Some(d) = &exec.last_decision {
            for rec in emf::decision_records(d, function, alias, now_epoch * 1000) {
                println!("{rec}");
            }
        }
    } else {
        tracing::info!(decision = resp.action.as_str(), "{}", resp.summary);
    }
    Ok(resp)
}

/// What a stack lets its canaries touch: its target function and alias, and the topics it
/// may publish to (the stack's topic and the mapped channel topics). A start event whose
/// config names anything else is refused before any side effect, with the field named:
/// the execution input is not trusted to widen the stack's reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// The stack's target function (`CANARY_GATE_TARGET_FUNCTION`); `None`: not checked.
    pub function: Option<String>,
    /// The stack's target alias (`CANARY_GATE_TARGET_ALIAS`); `None`: not checked.
    pub alias: Option<String>,
    /// Topic ARNs a channel may name directly.
    pub topics: Vec<String>,
}

impl Scope {
    /// Checks a `start` event's config; other events carry the state the start produced.
    pub fn check(&self, event: &Value) -> Result<(), Diagnostic> {
        if event.get("op").and_then(Value::as_str) != Some("start") {
            return Ok(());
        }
        let config = &event["config"];
        let refuse = |field: String, message: String| {
            Err(canary_gate_lambda::diagnostic(
                "InvalidConfig",
                format!("{field}: {message}"),
            ))
        };
        for (key, want, what) in [
            ("function_name", &self.function, "target function"),
            ("alias", &self.alias, "target alias"),
        ] {
            let Some(want) = want else { continue };
            let got = config["target"][key].as_str().unwrap_or_default();
            if got != want {
                return refuse(
                    format!("config.target.{key}"),
                    format!(
                        "`{got}` is not this stack's {what} `{want}`; a stack runs canaries of its own target only"
                    ),
                );
            }
        }
        if let Some(channels) = config["notifications"].as_object() {
            for (event_name, list) in channels {
                for (i, channel) in list.as_array().into_iter().flatten().enumerate() {
                    let Some(c) = channel.as_str() else { continue };
                    if c.starts_with("arn:") && !self.topics.iter().any(|t| t == c) {
                        return refuse(
                            format!("config.notifications.{event_name}[{i}]"),
                            format!(
                                "topic `{c}` is neither this stack's topic nor a mapped channel topic"
                            ),
                        );
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod scope_tests {
    use super::*;
    use serde_json::json;

    fn scope() -> Scope {
        Scope {
            function: Some("orders-api".into()),
            alias: Some("live".into()),
            topics: vec!["arn:aws:sns:us-east-1:1:canary-gate-stack".into()],
        }
    }

    fn start(target: Value, notifications: Value) -> Value {
        json!({"op": "start", "config": {"target": target, "notifications": notifications}})
    }

    #[test]
    fn a_config_for_another_function_alias_or_topic_is_refused_by_field() {
        let ok_target = json!({"function_name": "orders-api", "alias": "live"});
        assert!(
            scope()
                .check(&start(
                    ok_target.clone(),
                    json!({"on_rollback": ["ops", "arn:aws:sns:us-east-1:1:canary-gate-stack"]})
                ))
                .is_ok()
        );
        for (event, field) in [
            (
                start(
                    json!({"function_name": "payments", "alias": "live"}),
                    json!({}),
                ),
                "config.target.function_name",
            ),
            (
                start(
                    json!({"function_name": "orders-api", "alias": "beta"}),
                    json!({}),
                ),
                "config.target.alias",
            ),
            (
                start(
                    ok_target,
                    json!({"on_rollback": ["ops", "arn:aws:sns:us-east-1:1:canary-gate-other"]}),
                ),
                "config.notifications.on_rollback[1]",
            ),
        ] {
            let d = scope().check(&event).expect_err(field);
            assert_eq!(d.error_type, "InvalidConfig");
            assert!(d.error_message.starts_with(field), "{}", d.error_message);
        }
    }

    #[test]
    fn other_events_and_an_unset_scope_are_not_checked() {
        let other = json!({"op": "look", "config": {"target": {"function_name": "x"}}});
        assert!(scope().check(&other).is_ok());
        let any = start(json!({"function_name": "x", "alias": "y"}), json!({}));
        assert!(Scope::default().check(&any).is_ok());
    }
}
