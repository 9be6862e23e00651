//! The approver: the operator commands (`start`, `approve`, `reject`, `abort`, `promote`) as
//! the stack's approver function runs them, for a caller whose AWS identity it has verified.
//!
//! Lambda does not tell a function who invoked it, so the caller proves it: the CLI signs an
//! STS `GetCallerIdentity` request with its own credentials, without sending it, and hands the
//! signed request to the approver with the command (the pattern Vault's and EKS's IAM
//! authentication use). The approver checks that the signature covers this very command (the
//! SHA-256 of the command's exact text is a signed header, [`BINDING_HEADER`]) and is fresh,
//! then sends the request to STS itself: STS checks the signature and answers with the
//! signer's identity. A proof is good for one command, for [`MAX_PROOF_AGE_SECONDS`].
//!
//! What it then records: the verified ARN as the actor of the answer or override, with the
//! name the caller claimed (`--actor`) kept beside it. It refuses an approval, a rejection or a
//! promotion by the identity that started the canary when the config's
//! `approvals.forbid_self_approval` asks it to (an abort is always allowed: rolling back is
//! never the risky side).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::{Actor, OperatorError, OverrideOutcome, PendingApproval};
use crate::config::CanaryConfig;
use crate::policy::Action;
use crate::ports::{
    Executions, IdentityProof, IdentityVerifier, Notifier, PortError, TrafficRouter,
};

/// The signed header that carries the SHA-256 (lower-case hex) of the command's text.
pub const BINDING_HEADER: &str = "x-canary-gate-command";
/// The body of the one STS request a proof may be: `GetCallerIdentity`.
pub const PROOF_BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";
/// How old (or how far in the future) a proof's signing time may be. STS itself accepts 15
/// minutes; a command is signed the moment before it is sent.
pub const MAX_PROOF_AGE_SECONDS: i64 = 300;
/// The key under which `start` records the verified starter in the execution input.
pub const STARTED_BY: &str = "started_by";

/// One operator command as the approver function receives it: the command's text (JSON of a
/// [`Command`]) exactly as the caller signed its hash, and the proof of who the caller is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproverRequest {
    /// The JSON text of the [`Command`]; its SHA-256 is in the proof's [`BINDING_HEADER`].
    pub command: String,
    /// The signed, unsent STS `GetCallerIdentity` request.
    pub proof: IdentityProof,
}

/// What the caller asks for. Written as JSON with its kind under `command`; read back by
/// `handle`, which names the field at fault.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Start a canary with this config (validated; its target must be the stack's).
    Start {
        /// The canary config.
        config: Value,
    },
    /// Approve the pending approval of an execution.
    Approve {
        /// The execution (ARN).
        execution: String,
        /// A note kept with the answer.
        #[serde(default)]
        comment: String,
    },
    /// Reject it.
    Reject {
        /// The execution (ARN).
        execution: String,
        /// A note kept with the answer.
        #[serde(default)]
        comment: String,
    },
    /// Roll back now.
    Abort {
        /// The execution (ARN).
        execution: String,
        /// Why.
        #[serde(default)]
        reason: String,
    },
    /// Promote to 100 % now.
    Promote {
        /// The execution (ARN).
        execution: String,
        /// Why.
        #[serde(default)]
        reason: String,
        /// Even while critical gates fail (audited).
        #[serde(default)]
        force: bool,
    },
}

/// Wraps a command as the CLI sends it: its text and the hash the proof must sign.
#[derive(Debug, Clone)]
pub struct Signable {
    /// The command's JSON text.
    pub text: String,
    /// The SHA-256 of the text, lower-case hex: the value of [`BINDING_HEADER`].
    pub binding: String,
}

/// The command's text and the binding to sign, with who the caller claims to be.
pub fn signable(command: &Command, claimed_actor: Option<&str>) -> Signable {
    let mut v = serde_json::to_value(command).unwrap_or(Value::Null);
    if let (Some(name), Some(map)) = (claimed_actor, v.as_object_mut()) {
        map.insert("claimed_actor".into(), Value::String(name.to_string()));
    }
    let text = v.to_string();
    Signable {
        binding: binding(&text),
        text,
    }
}

/// The SHA-256 of `text`, lower-case hex.
pub fn binding(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Why the approver did nothing.
#[derive(Debug, Error)]
pub enum ApproverError {
    /// The request is malformed; names the field.
    #[error("invalid request: {field}: {reason}")]
    Invalid {
        /// The field (`command`, `proof.headers`, `config.…`).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The identity could not be verified (a bad, stale or unbound proof, or STS said no).
    #[error("identity not verified: {0}")]
    Unverified(String),
    /// The caller may not do this.
    #[error("refused: {0}")]
    Refused(String),
    /// STS or another AWS API is unavailable; retrying may help.
    #[error("{0}")]
    Port(PortError),
    /// The command itself failed.
    #[error("{0}")]
    Operator(#[from] OperatorError),
}

/// What the approver did, returned to the caller.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApproverOutcome {
    /// The command (`start`, `approve`, …).
    pub command: String,
    /// The execution it acted on (for `start`: the one it started).
    pub execution: String,
    /// The verified caller (an IAM or STS ARN).
    pub verified_identity: String,
    /// The name the caller gave (`--actor`), if any: a claim, never checked.
    pub claimed_actor: Option<String>,
    /// For `approve` / `reject`: what was answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered: Option<PendingApproval>,
    /// For `abort` / `promote`: what the override did.
    #[serde(skip_serializing_if = "Option::is_none", rename = "override")]
    pub override_outcome: Option<OverrideOutcome>,
}

/// The stack the approver belongs to: the target its canaries may name.
#[derive(Debug, Clone, Default)]
pub struct StackTarget {
    /// `CANARY_GATE_TARGET_FUNCTION`; `None`: not checked.
    pub function: Option<String>,
    /// `CANARY_GATE_TARGET_ALIAS`; `None`: not checked.
    pub alias: Option<String>,
}

fn header<'a>(proof: &'a IdentityProof, name: &str) -> Option<&'a str> {
    proof
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// `20261207T224135Z` → epoch seconds.
fn amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3_600 + mi * 60 + se)
}

/// Checks what the approver can check of a proof before STS sees it: the request is
/// `GetCallerIdentity`, it is signed with SigV4 over the host, its time and the command's hash,
/// the hash is this command's, and the signing time is within [`MAX_PROOF_AGE_SECONDS`].
pub fn check_proof(
    proof: &IdentityProof,
    command_text: &str,
    now_epoch: i64,
) -> Result<(), ApproverError> {
    let unverified = |m: String| Err(ApproverError::Unverified(m));
    if proof.body != PROOF_BODY {
        return unverified(format!(
            "proof.body: the proof must be the STS request `{PROOF_BODY}`"
        ));
    }
    let Some(auth) = header(proof, "authorization") else {
        return unverified(
            "proof.headers: no Authorization header (the request is not signed)".into(),
        );
    };
    if !auth.starts_with("AWS4-HMAC-SHA256 ") {
        return unverified(
            "proof.headers.authorization: not an AWS Signature Version 4 signature".into(),
        );
    }
    let signed: Vec<&str> = auth
        .split(',')
        .filter_map(|part| part.trim().strip_prefix("SignedHeaders="))
        .flat_map(|list| list.split(';'))
        .collect();
    for needed in ["host", "x-amz-date", BINDING_HEADER] {
        if !signed.contains(&needed) {
            return unverified(format!(
                "proof.headers.authorization: the signature does not cover `{needed}`"
            ));
        }
    }
    match header(proof, BINDING_HEADER) {
        Some(h) if h == binding(command_text) => {}
        Some(_) => {
            return unverified(format!(
                "proof.headers.{BINDING_HEADER}: the proof was signed for another command"
            ));
        }
        None => return unverified(format!("proof.headers: no {BINDING_HEADER} header")),
    }
    let Some(signed_at) = header(proof, "x-amz-date").and_then(amz_date) else {
        return unverified("proof.headers.x-amz-date: missing or not YYYYMMDDTHHMMSSZ".into());
    };
    if (now_epoch - signed_at).abs() > MAX_PROOF_AGE_SECONDS {
        return unverified(format!(
            "proof.headers.x-amz-date: signed {} s from now; a proof is good for {MAX_PROOF_AGE_SECONDS} s",
            now_epoch - signed_at
        ));
    }
    Ok(())
}

fn invalid(field: &str, reason: impl Into<String>) -> ApproverError {
    ApproverError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// The verified identity that started `execution`, from its input (set only by the approver).
async fn starter<E: Executions>(
    executions: &E,
    execution: &str,
) -> Result<(Option<String>, bool), ApproverError> {
    let info = executions
        .describe(execution)
        .await
        .map_err(OperatorError::from)?;
    let input = info.input.unwrap_or(Value::Null);
    let by = input
        .get(STARTED_BY)
        .and_then(|s| s.get("verified_identity"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let forbid = input
        .get("config")
        .and_then(|c| c.get("approvals"))
        .and_then(|a| a.get("forbid_self_approval"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok((by, forbid))
}

/// Runs one command for a verified caller.
pub async fn handle<V, E, R, N>(
    request: &ApproverRequest,
    stack: &StackTarget,
    verifier: &V,
    executions: &E,
    router: &R,
    notifier: &N,
    now_epoch: i64,
) -> Result<ApproverOutcome, ApproverError>
where
    V: IdentityVerifier,
    E: Executions,
    R: TrafficRouter,
    N: Notifier,
{
    let mut value: Value = serde_json::from_str(&request.command)
        .map_err(|e| invalid("command", format!("not JSON: {e}")))?;
    let claimed = match value
        .as_object_mut()
        .and_then(|m| m.remove("claimed_actor"))
    {
        None => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(invalid("command.claimed_actor", "must be a string")),
    };
    let command = parse_command(value)?;
    let claimed_text = claimed.as_deref().map(|c| ("claimed_actor", c));
    for (field, text) in command_texts(&command).into_iter().chain(claimed_text) {
        super::plain_text(text).map_err(|reason| invalid(&format!("command.{field}"), reason))?;
    }
    check_proof(&request.proof, &request.command, now_epoch)?;
    let identity = verifier.verify(&request.proof).await.map_err(|e| match e {
        PortError::Rejected(m) | PortError::NotFound(m) => ApproverError::Unverified(m),
        other => ApproverError::Port(other),
    })?;
    let actor = Actor::verified(&identity.arn, claimed.as_deref());
    let mut out = ApproverOutcome {
        command: String::new(),
        execution: String::new(),
        verified_identity: identity.arn.clone(),
        claimed_actor: claimed.clone(),
        answered: None,
        override_outcome: None,
    };
    match command {
        Command::Start { config } => {
            let config = CanaryConfig::from_json(&config.to_string())
                .map_err(|e| invalid("command.config", e.to_string()))?;
            let target = config.target.as_ref().ok_or_else(|| {
                invalid(
                    "command.config.target",
                    "a canary started here needs a target",
                )
            })?;
            if let Some(f) = &stack.function
                && &target.function_name != f
            {
                return Err(invalid(
                    "command.config.target.function_name",
                    format!(
                        "`{}` is not this stack's function `{f}`",
                        target.function_name
                    ),
                ));
            }
            if let Some(a) = &stack.alias
                && &target.alias != a
            {
                return Err(invalid(
                    "command.config.target.alias",
                    format!("`{}` is not this stack's alias `{a}`", target.alias),
                ));
            }
            out.command = "start".into();
            out.execution = super::start_by(executions, &config, now_epoch, Some(&actor)).await?;
        }
        Command::Approve { execution, comment } => {
            out.answered =
                Some(answer(executions, &execution, true, &actor, &comment, now_epoch).await?);
            out.command = "approve".into();
            out.execution = execution;
        }
        Command::Reject { execution, comment } => {
            out.answered =
                Some(answer(executions, &execution, false, &actor, &comment, now_epoch).await?);
            out.command = "reject".into();
            out.execution = execution;
        }
        Command::Abort { execution, reason } => {
            out.command = "abort".into();
            out.override_outcome = Some(
                super::override_canary(
                    executions,
                    router,
                    notifier,
                    &execution,
                    Action::Rollback,
                    &actor.display(),
                    &reason,
                    false,
                    now_epoch,
                )
                .await?,
            );
            out.execution = execution;
        }
        Command::Promote {
            execution,
            reason,
            force,
        } => {
            refuse_self(executions, &execution, &identity.arn, "promote").await?;
            out.command = "promote".into();
            out.override_outcome = Some(
                super::override_canary(
                    executions,
                    router,
                    notifier,
                    &execution,
                    Action::Promote,
                    &actor.display(),
                    &reason,
                    force,
                    now_epoch,
                )
                .await?,
            );
            out.execution = execution;
        }
    }
    Ok(out)
}

/// Reads a [`Command`] from its JSON, naming the field that is wrong (an internally tagged
/// enum would lose the path, so the tag is read first).
fn parse_command(mut value: Value) -> Result<Command, ApproverError> {
    fn fields<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, ApproverError> {
        serde_path_to_error::deserialize(v).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." {
                "command".into()
            } else {
                format!("command.{path}")
            };
            invalid(&field, e.inner().to_string())
        })
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Answer {
        execution: String,
        #[serde(default)]
        comment: String,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Override {
        execution: String,
        #[serde(default)]
        reason: String,
        #[serde(default)]
        force: bool,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Start {
        config: Value,
    }
    let map = value
        .as_object_mut()
        .ok_or_else(|| invalid("command", "must be a JSON object"))?;
    let tag = match map.remove("command") {
        Some(Value::String(t)) => t,
        _ => {
            return Err(invalid(
                "command.command",
                "must be one of start, approve, reject, abort, promote",
            ));
        }
    };
    let rest = value;
    Ok(match tag.as_str() {
        "start" => Command::Start {
            config: fields::<Start>(rest)?.config,
        },
        "approve" | "reject" => {
            let a: Answer = fields(rest)?;
            if tag == "approve" {
                Command::Approve {
                    execution: a.execution,
                    comment: a.comment,
                }
            } else {
                Command::Reject {
                    execution: a.execution,
                    comment: a.comment,
                }
            }
        }
        "abort" | "promote" => {
            let o: Override = fields(rest)?;
            if tag == "promote" {
                Command::Promote {
                    execution: o.execution,
                    reason: o.reason,
                    force: o.force,
                }
            } else if o.force {
                return Err(invalid("command.force", "only a promotion can be forced"));
            } else {
                Command::Abort {
                    execution: o.execution,
                    reason: o.reason,
                }
            }
        }
        other => {
            return Err(invalid(
                "command.command",
                format!("unknown command `{other}`: one of start, approve, reject, abort, promote"),
            ));
        }
    })
}

/// `approve` / `reject`, after the four-eyes check.
async fn answer<E: Executions>(
    executions: &E,
    execution: &str,
    approve: bool,
    actor: &Actor,
    comment: &str,
    now_epoch: i64,
) -> Result<PendingApproval, ApproverError> {
    let what = if approve { "approve" } else { "reject" };
    refuse_self(executions, execution, &actor.identity, what).await?;
    Ok(super::answer_as(executions, execution, approve, actor, comment, now_epoch).await?)
}

fn command_texts(c: &Command) -> Vec<(&'static str, &str)> {
    match c {
        Command::Start { .. } => vec![],
        Command::Approve { execution, comment } | Command::Reject { execution, comment } => {
            vec![("execution", execution), ("comment", comment)]
        }
        Command::Abort { execution, reason }
        | Command::Promote {
            execution, reason, ..
        } => {
            vec![("execution", execution), ("reason", reason)]
        }
    }
}

async fn refuse_self<E: Executions>(
    executions: &E,
    execution: &str,
    caller: &str,
    what: &str,
) -> Result<(), ApproverError> {
    let (by, forbid) = starter(executions, execution).await?;
    if forbid && by.as_deref() == Some(caller) {
        return Err(ApproverError::Refused(format!(
            "{caller} started this canary and its config sets approvals.forbid_self_approval: another identity must {what} it"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
