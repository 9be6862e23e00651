//! The `phase` Lambda function's handler: one step of the canary per invocation (start, look,
//! apply an approval, report to CodeDeploy, …) as the state machine asks. The step itself
//! lives in `canary_gate_core::step::ops`; here the event is parsed strictly (a malformed
//! carried state is `InvalidState`), the outcome logged — every failed notification or
//! CodeDeploy report with its cause — and errors become `Diagnostic`s whose `error_type` the
//! state machine's Retry/Catch match (`Transient`, `AliasConflict`, `MetricsUnavailable`,
//! `InvalidConfig`, `InvalidState`, `HookReportFailed`, …).

use canary_gate_core::emf;
use canary_gate_core::ports::{LifecycleHook, MetricsSource, Notifier, TrafficRouter};
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
    H: LifecycleHook,
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
