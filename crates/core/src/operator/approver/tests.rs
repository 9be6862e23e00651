//! The approver over the in-memory orchestrator, with a verifier that plays STS: it knows
//! which access key belongs to whom and refuses a signature marked forged.

use serde_json::json;

use super::*;
use crate::operator::tests::{Fake, config, ready, request_approval, running, sim};
use crate::ports::{RunStatus, VerifiedIdentity};
use crate::sim::Scenario;

/// 2026-12-07T22:41:35Z.
const NOW: i64 = 1_796_683_295;

/// STS as the verifier sees it: the access key in the signature names the caller.
struct Sts;

impl IdentityVerifier for Sts {
    async fn verify(&self, proof: &IdentityProof) -> Result<VerifiedIdentity, PortError> {
        let auth = header(proof, "authorization").unwrap_or_default();
        if auth.contains("Signature=forged") {
            return Err(PortError::Rejected(
                "SignatureDoesNotMatch: the request signature we calculated does not match".into(),
            ));
        }
        let user = if auth.contains("Credential=AKIDALICE/") {
            "alice"
        } else {
            "bob"
        };
        Ok(VerifiedIdentity {
            arn: format!("arn:aws:iam::123456789012:user/{user}"),
            account: "123456789012".into(),
            user_id: format!("AIDA{user}"),
        })
    }
}

/// A proof as the CLI makes it: signed by `key` at `signed_at` over `headers`.
fn proof_for(text: &str, key: &str, signed_at: &str, signed_headers: &str) -> IdentityProof {
    IdentityProof {
        headers: vec![
            ("host".into(), "sts.us-east-1.amazonaws.com".into()),
            ("x-amz-date".into(), signed_at.into()),
            (BINDING_HEADER.into(), binding(text)),
            (
                "authorization".into(),
                format!(
                    "AWS4-HMAC-SHA256 Credential={key}/20261207/us-east-1/sts/aws4_request, SignedHeaders={signed_headers}, Signature=abc"
                ),
            ),
        ],
        body: PROOF_BODY.into(),
    }
}

const SIGNED: &str = "content-type;host;x-amz-date;x-canary-gate-command";

fn request(command: &Command, claimed: Option<&str>, key: &str) -> ApproverRequest {
    let s = signable(command, claimed);
    ApproverRequest {
        proof: proof_for(&s.text, key, "20261207T224135Z", SIGNED),
        command: s.text,
    }
}

fn run(
    fake: &Fake,
    s: &crate::sim::SimulatedLambda,
    r: &ApproverRequest,
) -> Result<ApproverOutcome, ApproverError> {
    ready(handle(r, &StackTarget::default(), &Sts, fake, s, s, NOW))
}

fn approve(execution: &str) -> Command {
    Command::Approve {
        execution: execution.into(),
        comment: "dashboards fine".into(),
    }
}

#[test]
fn signing_times_parse_as_utc_epochs() {
    assert_eq!(amz_date("20261207T224135Z"), Some(NOW));
    assert_eq!(amz_date("20000229T000000Z"), Some(951_782_400));
    assert_eq!(amz_date("2026-12-07T22:41:35Z"), None);
    assert_eq!(amz_date("20261307T224135Z"), None);
}

#[test]
fn an_approval_records_the_verified_identity_beside_the_claimed_name() {
    let s = sim(Scenario::healthy(50.0));
    let (fake, _) = running(&s);
    request_approval(&fake, "tok-1", "promote");
    let out = run(
        &fake,
        &s,
        &request(&approve("arn:exec:1"), Some("Alice Smith"), "AKIDALICE"),
    )
    .expect("approved");
    assert_eq!(out.command, "approve");
    assert_eq!(
        out.verified_identity,
        "arn:aws:iam::123456789012:user/alice"
    );
    assert_eq!(out.claimed_actor.as_deref(), Some("Alice Smith"));
    let answers = fake.answers.lock().expect("lock").clone();
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].0, "tok-1");
    let output = answers[0].1.clone().expect("success");
    assert_eq!(output["approvedBy"], "arn:aws:iam::123456789012:user/alice");
    assert_eq!(output["verified"], true);
    assert_eq!(output["claimedActor"], "Alice Smith");
    assert_eq!(output["comment"], "dashboards fine");
}

#[test]
fn a_rejection_names_the_verified_identity_in_its_cause() {
    let s = sim(Scenario::healthy(50.0));
    let (fake, _) = running(&s);
    request_approval(&fake, "tok-1", "promote");
    let reject = Command::Reject {
        execution: "arn:exec:1".into(),
        comment: "not today".into(),
    };
    run(&fake, &s, &request(&reject, None, "AKIDBOB")).expect("rejected");
    let answers = fake.answers.lock().expect("lock").clone();
    let (error, cause) = answers[0].1.clone().expect_err("failure");
    assert_eq!(error, crate::operator::REJECTED_ERROR);
    assert_eq!(
        cause,
        "rejected by arn:aws:iam::123456789012:user/bob (verified): not today"
    );
}

#[test]
fn proofs_that_do_not_prove_this_command_now_are_refused_before_anything_happens() {
    let s = sim(Scenario::healthy(50.0));
    let (fake, _) = running(&s);
    request_approval(&fake, "tok-1", "promote");
    let good = request(&approve("arn:exec:1"), None, "AKIDALICE");
    let cases: Vec<(&str, ApproverRequest, &str)> = vec![
        (
            "a proof signed for another command",
            ApproverRequest {
                command: signable(&approve("arn:exec:2"), None).text,
                proof: good.proof.clone(),
            },
            "signed for another command",
        ),
        (
            "a claimed name added after signing",
            ApproverRequest {
                command: signable(&approve("arn:exec:1"), Some("root-of-all-evil")).text,
                proof: good.proof.clone(),
            },
            "signed for another command",
        ),
        (
            "a binding header outside the signature",
            ApproverRequest {
                proof: proof_for(
                    &good.command,
                    "AKIDALICE",
                    "20261207T224135Z",
                    "host;x-amz-date",
                ),
                command: good.command.clone(),
            },
            "does not cover `x-canary-gate-command`",
        ),
        (
            "a proof signed six minutes ago",
            ApproverRequest {
                proof: proof_for(&good.command, "AKIDALICE", "20261207T223535Z", SIGNED),
                command: good.command.clone(),
            },
            "signed 360 s from now",
        ),
        (
            "another STS action",
            ApproverRequest {
                proof: IdentityProof {
                    body: "Action=AssumeRole&Version=2011-06-15".into(),
                    ..good.proof.clone()
                },
                command: good.command.clone(),
            },
            "proof.body",
        ),
        (
            "a signature STS refuses",
            ApproverRequest {
                proof: IdentityProof {
                    headers: good
                        .proof
                        .headers
                        .iter()
                        .map(|(k, v)| (k.clone(), v.replace("Signature=abc", "Signature=forged")))
                        .collect(),
                    ..good.proof.clone()
                },
                command: good.command.clone(),
            },
            "SignatureDoesNotMatch",
        ),
    ];
    for (what, r, says) in cases {
        let err = run(&fake, &s, &r).expect_err(what);
        assert!(
            matches!(err, ApproverError::Unverified(_)),
            "{what}: {err:?}"
        );
        assert!(err.to_string().contains(says), "{what}: {err}");
    }
    assert!(
        fake.answers.lock().expect("lock").is_empty(),
        "nothing was answered"
    );
    // The same command with its own proof goes through.
    run(&fake, &s, &good).expect("approved");
}

#[test]
fn the_starter_may_not_answer_or_promote_their_own_canary_when_the_config_says_so() {
    let s = sim(Scenario::healthy(50.0));
    let (fake, _) = running(&s);
    {
        let mut info = fake.info.lock().expect("lock");
        let input = info.input.as_mut().expect("input");
        input["config"]["approvals"] = json!({ "forbid_self_approval": true });
        input[STARTED_BY] = json!({ "verified_identity": "arn:aws:iam::123456789012:user/alice" });
    }
    request_approval(&fake, "tok-1", "promote");
    for command in [
        approve("arn:exec:1"),
        Command::Reject {
            execution: "arn:exec:1".into(),
            comment: String::new(),
        },
        Command::Promote {
            execution: "arn:exec:1".into(),
            reason: String::new(),
            force: false,
        },
    ] {
        let err =
            run(&fake, &s, &request(&command, Some("Bob"), "AKIDALICE")).expect_err("own canary");
        assert!(matches!(err, ApproverError::Refused(_)), "{err:?}");
        assert!(err.to_string().contains("another identity must"), "{err}");
    }
    assert!(fake.answers.lock().expect("lock").is_empty());
    assert_eq!(
        s.alias().additional,
        Some(("42".to_string(), 5.0)),
        "alias untouched"
    );
    // Someone else may; and the starter may always abort.
    run(&fake, &s, &request(&approve("arn:exec:1"), None, "AKIDBOB")).expect("bob approves");
    let abort = Command::Abort {
        execution: "arn:exec:1".into(),
        reason: "pager".into(),
    };
    let out = run(&fake, &s, &request(&abort, None, "AKIDALICE")).expect("alice aborts");
    assert_eq!(
        out.override_outcome.expect("override").actor,
        "arn:aws:iam::123456789012:user/alice (verified)"
    );
    assert_eq!(s.alias().additional, None);
}

#[test]
fn without_the_rule_the_starter_may_approve() {
    let s = sim(Scenario::healthy(50.0));
    let (fake, _) = running(&s);
    fake.info
        .lock()
        .expect("lock")
        .input
        .as_mut()
        .expect("input")[STARTED_BY] =
        json!({ "verified_identity": "arn:aws:iam::123456789012:user/alice" });
    request_approval(&fake, "tok-1", "promote");
    run(
        &fake,
        &s,
        &request(&approve("arn:exec:1"), None, "AKIDALICE"),
    )
    .expect("approved");
}

#[test]
fn a_start_records_the_verified_starter_and_refuses_another_target() {
    let s = sim(Scenario::healthy(50.0));
    let fake = Fake::new(RunStatus::Succeeded, json!({}));
    let stack = StackTarget {
        function: Some("orders-api".into()),
        alias: Some("live".into()),
    };
    let start = |config: Value| {
        let r = request(&Command::Start { config }, Some("Alice"), "AKIDALICE");
        ready(handle(&r, &stack, &Sts, &fake, &s, &s, NOW))
    };
    let mut other = serde_json::to_value(config()).expect("json");
    other["target"]["function_name"] = json!("payments-api");
    let err = start(other).expect_err("other function");
    assert!(
        err.to_string()
            .contains("command.config.target.function_name"),
        "{err}"
    );
    let mut other = serde_json::to_value(config()).expect("json");
    other["target"]["alias"] = json!("beta");
    let err = start(other).expect_err("other alias");
    assert!(
        err.to_string().contains("command.config.target.alias"),
        "{err}"
    );
    let mut bad = serde_json::to_value(config()).expect("json");
    bad["timeout_seconds"] = json!("soon");
    let err = start(bad).expect_err("bad config");
    assert!(
        err.to_string()
            .starts_with("invalid request: command.config:"),
        "{err}"
    );
    assert!(
        fake.started.lock().expect("lock").is_empty(),
        "nothing started"
    );

    let out = start(serde_json::to_value(config()).expect("json")).expect("started");
    assert_eq!(out.command, "start");
    let started = fake.started.lock().expect("lock").clone();
    assert_eq!(started.len(), 1);
    assert_eq!(out.execution, format!("arn:exec:{}", started[0].0));
    assert_eq!(
        started[0].1[STARTED_BY],
        json!({ "verified_identity": "arn:aws:iam::123456789012:user/alice", "claimed_actor": "Alice" })
    );
}

#[test]
fn malformed_commands_name_their_field() {
    let s = sim(Scenario::healthy(50.0));
    let (fake, _) = running(&s);
    let cases = [
        (
            r#"{"command": "approve"}"#,
            "command: missing field `execution`",
        ),
        (
            r#"{"command": "delete-stack", "execution": "x"}"#,
            "command.command: unknown command `delete-stack`",
        ),
        (
            r#"{"command": "abort", "execution": "x", "reason": 7}"#,
            "command.reason",
        ),
        (
            r#"{"command": "approve", "execution": "x", "claimed_actor": 7}"#,
            "command.claimed_actor",
        ),
        (
            "{\"command\": \"approve\", \"execution\": \"x\", \"claimed_actor\": \"a\\u001b[2J\"}",
            "command.claimed_actor",
        ),
        (
            "{\"command\": \"approve\", \"execution\": \"x\", \"comment\": \"a\\rb\"}",
            "command.comment",
        ),
        ("not json", "command: not JSON"),
    ];
    for (text, says) in cases {
        let r = ApproverRequest {
            command: text.into(),
            proof: proof_for(text, "AKIDALICE", "20261207T224135Z", SIGNED),
        };
        let err = run(&fake, &s, &r).expect_err(text);
        assert!(err.to_string().contains(says), "{text}: {err}");
    }
    assert!(fake.answers.lock().expect("lock").is_empty());
}
