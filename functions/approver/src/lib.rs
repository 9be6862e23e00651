//! The `approver` function's handling of one event: parse the [`ApproverRequest`], run it with
//! [`canary_gate_core::operator::approver::handle`], and turn a refusal into a `Diagnostic`
//! whose `errorType` says what kind it is (`InvalidRequest`, `Unverified`, `Refused`,
//! `Transient`, `CommandFailed`). The function logs who did what, never the proof.

use canary_gate_core::operator::approver::{
    ApproverError, ApproverOutcome, ApproverRequest, StackTarget, handle,
};
use canary_gate_core::ports::{Executions, IdentityVerifier, Notifier, TrafficRouter};
use canary_gate_lambda::diagnostic;
use lambda_runtime::{Diagnostic, tracing};
use serde_json::Value;

/// The adapters a command may use.
pub struct Ports<'a, V, E, R, N> {
    /// STS.
    pub verifier: &'a V,
    /// The state machine's executions.
    pub executions: &'a E,
    /// The target's alias (overrides).
    pub router: &'a R,
    /// SNS (override notifications).
    pub notifier: &'a N,
}

/// The `errorType` of each refusal.
pub fn error_type(e: &ApproverError) -> &'static str {
    match e {
        ApproverError::Invalid { .. } => "InvalidRequest",
        ApproverError::Unverified(_) => "Unverified",
        ApproverError::Refused(_) => "Refused",
        ApproverError::Port(p) if p.is_transient() => "Transient",
        ApproverError::Port(_) => "CommandFailed",
        ApproverError::Operator(_) => "CommandFailed",
    }
}

/// Handles one invocation.
pub async fn handler<V, E, R, N>(
    ports: Ports<'_, V, E, R, N>,
    stack: &StackTarget,
    event: Value,
    now_epoch: i64,
) -> Result<ApproverOutcome, Diagnostic>
where
    V: IdentityVerifier,
    E: Executions,
    R: TrafficRouter,
    N: Notifier,
{
    let request: ApproverRequest = serde_json::from_value(event).map_err(|e| {
        diagnostic(
            "InvalidRequest",
            format!("invalid request: the event must be {{\"command\": \"<json>\", \"proof\": {{\"headers\": [...], \"body\": \"...\"}}}}: {e}"),
        )
    })?;
    match handle(
        &request,
        stack,
        ports.verifier,
        ports.executions,
        ports.router,
        ports.notifier,
        now_epoch,
    )
    .await
    {
        Ok(out) => {
            tracing::info!(
                audit = "canary-gate approver",
                command = out.command.as_str(),
                execution = out.execution.as_str(),
                verified_identity = out.verified_identity.as_str(),
                claimed_actor = out.claimed_actor.as_deref().unwrap_or(""),
                "{} by {}",
                out.command,
                out.verified_identity
            );
            Ok(out)
        }
        Err(e) => Err(diagnostic(error_type(&e), &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use canary_gate_core::operator::approver::check_proof;

    /// The sample events' signing time, 2026-12-07T22:41:35Z.
    const SIGNED_AT: i64 = 1_796_683_295;

    fn sample(name: &str) -> Value {
        let path = format!(
            "{}/../../events/approver/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&path).expect("sample event"))
            .expect("event parses")
    }

    #[test]
    fn every_sample_event_is_a_request_whose_proof_binds_its_command() {
        for name in ["start", "approve", "reject", "abort", "promote"] {
            let r: ApproverRequest = serde_json::from_value(sample(name)).expect(name);
            let command: Value = serde_json::from_str(&r.command).expect("command JSON");
            assert_eq!(command["command"], name);
            check_proof(&r.proof, &r.command, SIGNED_AT).expect(name);
            let err = check_proof(&r.proof, &r.command, SIGNED_AT + 3_600).expect_err("an hour on");
            assert_eq!(error_type(&err), "Unverified");
        }
    }

    #[test]
    fn refusals_have_stable_error_types() {
        use canary_gate_core::ports::PortError;
        let invalid = ApproverError::Invalid {
            field: "command.execution".into(),
            reason: "missing".into(),
        };
        assert_eq!(error_type(&invalid), "InvalidRequest");
        assert_eq!(error_type(&ApproverError::Refused("x".into())), "Refused");
        assert_eq!(
            error_type(&ApproverError::Port(PortError::Throttled("sts".into()))),
            "Transient"
        );
        assert_eq!(
            error_type(&ApproverError::Port(PortError::Rejected("sts".into()))),
            "CommandFailed"
        );
    }
}
