//! Identity proofs against a real moto server: the CLI's signed, unsent `GetCallerIdentity`
//! and the approver's replay of it. moto answers `GetCallerIdentity` with the IAM user that
//! owns the request's access key (it does not check signatures; AWS does, so a forged proof is
//! tested at the approver's checks and by STS itself, not here).

mod support;

use canary_gate_aws::{StsIdentityVerifier, sign_identity_proof};
use canary_gate_core::operator::approver::{BINDING_HEADER, PROOF_BODY, binding, check_proof};
use canary_gate_core::ports::{IdentityVerifier, PortError};
use support::Moto;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[tokio::test]
async fn a_signed_proof_names_its_signer_and_only_at_its_own_host() {
    let moto = Moto::start();
    let sdk = moto.sdk().await;
    let alice = moto.create_user_with_key("alice");
    let bob = moto.create_user_with_key("bob");
    let command = r#"{"command":"approve","execution":"arn:exec:1"}"#;

    let proof = sign_identity_proof(&support::sdk_as(&sdk, &alice), &binding(command))
        .await
        .expect("signed");
    assert_eq!(proof.body, PROOF_BODY);
    let header = |name: &str| {
        proof
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} in {:?}", proof.headers))
    };
    assert_eq!(header(BINDING_HEADER), binding(command));
    assert_eq!(header("host"), moto.endpoint.trim_start_matches("http://"));
    let auth = header("authorization");
    assert!(auth.contains(&format!("Credential={}/", alice.0)), "{auth}");
    assert!(auth.contains(BINDING_HEADER), "the hash is signed: {auth}");
    check_proof(&proof, command, now()).expect("the approver's own checks pass");
    check_proof(
        &proof,
        r#"{"command":"approve","execution":"arn:exec:2"}"#,
        now(),
    )
    .expect_err("bound to its command");

    // The approver runs with its own (here: moto's default) credentials; the identity is the
    // signer's, not the approver's.
    let verifier = StsIdentityVerifier::new(&sdk);
    let id = verifier.verify(&proof).await.expect("verified");
    assert_eq!(id.arn, "arn:aws:iam::123456789012:user/alice");
    assert_eq!(id.account, "123456789012");
    let bobs = sign_identity_proof(&support::sdk_as(&sdk, &bob), &binding(command))
        .await
        .expect("signed");
    let id = verifier.verify(&bobs).await.expect("verified");
    assert_eq!(id.arn, "arn:aws:iam::123456789012:user/bob");

    // The same server under another name is another host: the signature would not hold, so
    // the proof is not sent there.
    let elsewhere = support::faults::sdk_at(&moto.endpoint.replace("127.0.0.1", "localhost")).await;
    match StsIdentityVerifier::new(&elsewhere).verify(&proof).await {
        Err(PortError::Rejected(m)) => {
            assert!(m.contains("the proof was signed for 127.0.0.1:"), "{m}");
            assert!(m.contains("verifies at localhost:"), "{m}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn without_credentials_no_proof_is_made() {
    let moto = Moto::start();
    let mut builder = moto.sdk().await.to_builder();
    builder.set_credentials_provider(None);
    let sdk = builder.build();
    let err = sign_identity_proof(&sdk, "00")
        .await
        .expect_err("no credentials");
    assert!(
        err.to_string().contains("cannot sign the identity proof"),
        "{err}"
    );
}
