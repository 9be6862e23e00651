//! Proving and verifying who runs an operator command, with STS `GetCallerIdentity`.
//!
//! - [`sign_identity_proof`] (the CLI): the SDK builds and signs a `GetCallerIdentity` request
//!   with the caller's credentials, with the command's hash as an extra signed header; the
//!   signed request is captured just before it would be sent, and never sent.
//! - [`StsIdentityVerifier`] (the approver function): sends that request to STS exactly as it
//!   was signed (its headers in place of the client's own) and reads the identity STS answers
//!   with. The SDK does the sending, retrying and parsing; no signature is made or checked
//!   here — STS checks it.
//!
//! The proof is only valid at the host it was signed for, so the CLI and the approver must
//! use the same STS endpoint: the regional one of the stack's region (both SDKs' default for
//! the same `AWS_REGION`), or the same `AWS_ENDPOINT_URL` for an emulator.

use std::sync::{Arc, Mutex};

use aws_sdk_sts::config::interceptors::{
    BeforeTransmitInterceptorContextMut, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_sts::config::{ConfigBag, Credentials, Intercept, RuntimeComponents};
use aws_sdk_sts::error::BoxError;
use canary_gate_core::operator::approver::{ApproverRequest, BINDING_HEADER, Command, signable};
use canary_gate_core::ports::{IdentityProof, IdentityVerifier, PortError, VerifiedIdentity};

use crate::classify;

/// The host of a URI (`https://sts.eu-west-1.amazonaws.com/` → `sts.eu-west-1.amazonaws.com`),
/// with its port when it has one.
fn authority(uri: &str) -> String {
    let rest = uri.split_once("://").map_or(uri, |(_, r)| r);
    rest.split(['/', '?'])
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Adds the command's hash before signing, and captures the signed request instead of
/// sending it.
#[derive(Debug)]
struct Capture {
    binding: String,
    captured: Arc<Mutex<Option<IdentityProof>>>,
}

/// The error that stops the captured request from being sent.
#[derive(Debug, thiserror::Error)]
#[error("identity proof captured; not sent")]
struct Captured;

impl Intercept for Capture {
    fn name(&self) -> &'static str {
        "CaptureIdentityProof"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        context
            .request_mut()
            .headers_mut()
            .insert(BINDING_HEADER, self.binding.clone());
        Ok(())
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let mut headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect();
        if !headers.iter().any(|(k, _)| k == "host") {
            headers.push(("host".into(), authority(request.uri())));
        }
        let body = request
            .body()
            .bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        if let Ok(mut slot) = self.captured.lock() {
            *slot = Some(IdentityProof { headers, body });
        }
        Err(Box::new(Captured))
    }
}

/// Signs, without sending, an STS `GetCallerIdentity` request that carries `binding` (the
/// command's hash) in a signed header: the proof of who the caller is, for one command.
pub async fn sign_identity_proof(
    sdk: &aws_config::SdkConfig,
    binding: &str,
) -> Result<IdentityProof, PortError> {
    let captured = Arc::new(Mutex::new(None));
    let config = aws_sdk_sts::config::Builder::from(sdk)
        .interceptor(Capture {
            binding: binding.to_string(),
            captured: captured.clone(),
        })
        .build();
    let sent = aws_sdk_sts::Client::from_conf(config)
        .get_caller_identity()
        .send()
        .await;
    let proof = captured.lock().ok().and_then(|mut c| c.take());
    match (proof, sent) {
        (Some(p), _) => Ok(p),
        (None, Err(e)) => Err(PortError::Rejected(format!(
            "cannot sign the identity proof (are AWS credentials configured?): {}",
            aws_sdk_sts::error::DisplayErrorContext(e)
        ))),
        (None, Ok(_)) => Err(PortError::Rejected(
            "the identity proof was sent instead of captured".into(),
        )),
    }
}

/// The request the approver function takes for `command`: its text, with the name the caller
/// claims, and a proof signed with the credentials of `sdk`.
pub async fn approver_request(
    sdk: &aws_config::SdkConfig,
    command: &Command,
    claimed_actor: Option<&str>,
) -> Result<ApproverRequest, PortError> {
    let s = signable(command, claimed_actor);
    Ok(ApproverRequest {
        proof: sign_identity_proof(sdk, &s.binding).await?,
        command: s.text,
    })
}

/// Puts the proof's headers in place of the client's own just before sending, and refuses to
/// send it to another host than it was signed for.
#[derive(Debug)]
struct Replay {
    proof: IdentityProof,
}

/// The proof was signed for another STS endpoint.
#[derive(Debug, thiserror::Error)]
#[error(
    "the proof was signed for {signed}, but this approver verifies at {here}: run the CLI with the stack's region"
)]
struct WrongHost {
    signed: String,
    here: String,
}

impl Intercept for Replay {
    fn name(&self) -> &'static str {
        "ReplayIdentityProof"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        let here = authority(request.uri());
        let signed = self
            .proof
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("host"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        if signed != here {
            return Err(Box::new(WrongHost { signed, here }));
        }
        let own: Vec<String> = request
            .headers()
            .iter()
            .map(|(k, _)| k.to_string())
            .collect();
        for name in own {
            request.headers_mut().remove(name);
        }
        for (name, value) in &self.proof.headers {
            if name.eq_ignore_ascii_case("host") {
                continue;
            }
            request
                .headers_mut()
                .try_insert(name.clone(), value.clone())
                .map_err(|e| -> BoxError { format!("proof header `{name}`: {e}").into() })?;
        }
        Ok(())
    }
}

/// Verifies identity proofs with STS.
#[derive(Debug, Clone)]
pub struct StsIdentityVerifier {
    sdk: aws_config::SdkConfig,
}

impl StsIdentityVerifier {
    /// A verifier that sends proofs to the STS endpoint of `sdk` (its region, or
    /// `AWS_ENDPOINT_URL`).
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self { sdk: sdk.clone() }
    }
}

impl IdentityVerifier for StsIdentityVerifier {
    async fn verify(&self, proof: &IdentityProof) -> Result<VerifiedIdentity, PortError> {
        // The client's own signature is replaced by the proof's; its credentials sign nothing
        // that is sent.
        let config = aws_sdk_sts::config::Builder::from(&self.sdk)
            .credentials_provider(Credentials::new("unused", "unused", None, None, "replay"))
            .interceptor(Replay {
                proof: proof.clone(),
            })
            .build();
        let out = aws_sdk_sts::Client::from_conf(config)
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| {
                let mut source = std::error::Error::source(&e);
                let mut wrong_host = None;
                while let Some(s) = source {
                    if let Some(w) = s.downcast_ref::<WrongHost>() {
                        wrong_host = Some(w.to_string());
                        break;
                    }
                    source = s.source();
                }
                match wrong_host {
                    Some(m) => PortError::Rejected(m),
                    None => classify(e),
                }
            })?;
        let arn = out
            .arn()
            .ok_or_else(|| PortError::Rejected("STS answered without an ARN".into()))?;
        Ok(VerifiedIdentity {
            arn: arn.to_string(),
            account: out.account().unwrap_or_default().to_string(),
            user_id: out.user_id().unwrap_or_default().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::authority;

    #[test]
    fn authorities_keep_the_port_and_drop_the_path() {
        assert_eq!(
            authority("https://sts.eu-west-1.amazonaws.com/"),
            "sts.eu-west-1.amazonaws.com"
        );
        assert_eq!(authority("http://127.0.0.1:5000/?x=1"), "127.0.0.1:5000");
        assert_eq!(authority("http://127.0.0.1:5000"), "127.0.0.1:5000");
    }
}
