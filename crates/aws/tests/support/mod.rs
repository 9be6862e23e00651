//! Test support: a real moto server (the local AWS-API emulator) on 127.0.0.1 and a free
//! port, started per test binary and stopped (killed and reaped) when dropped, plus SDK
//! clients pointed at it with throwaway credentials, and the fault proxy ([`faults`]).

#![allow(dead_code)]

pub mod faults;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_lambda::config::{Credentials, SharedCredentialsProvider};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, Runtime};

/// A running moto server.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    port: u16,
}

impl Moto {
    /// Starts `moto_server` on a free loopback port and waits until it answers.
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("free port")
            .local_addr()
            .expect("addr")
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start moto_server ({e}); install it with: pip install 'moto[server]'"
                )
            });
        let moto = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
        };
        wait_for_port(port, "moto_server");
        moto
    }

    /// A POST with a form body to moto's query API (moto does not check signatures).
    pub fn post_form(&self, body: &str, service: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        let req = format!(
            "POST / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/x-www-form-urlencoded\r\nAuthorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        );
        s.write_all(req.as_bytes()).expect("send");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        out
    }

    /// A POST with a JSON body to one of moto's own endpoints (`/moto-api/...`).
    pub fn post_json(&self, path: &str, body: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        );
        s.write_all(req.as_bytes()).expect("send");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        let status = out.split_whitespace().nth(1).unwrap_or_default();
        assert!(status.starts_with('2'), "{path}: {out}");
        out
    }

    /// Creates the IAM user `name` with an access key; returns the key id and the secret.
    pub fn create_user_with_key(&self, name: &str) -> (String, String) {
        let resp = self.post_form(
            &format!("Action=CreateUser&Version=2010-05-08&UserName={name}"),
            "iam",
        );
        assert!(resp.contains("<Arn>"), "user not created: {resp}");
        let resp = self.post_form(
            &format!("Action=CreateAccessKey&Version=2010-05-08&UserName={name}"),
            "iam",
        );
        let field = |tag: &str| {
            resp.split(&format!("<{tag}>"))
                .nth(1)
                .and_then(|r| r.split(&format!("</{tag}>")).next())
                .unwrap_or_else(|| panic!("no {tag} in {resp}"))
                .to_string()
        };
        (field("AccessKeyId"), field("SecretAccessKey"))
    }

    /// Creates an IAM role Lambda functions can name.
    pub fn create_role(&self, name: &str) -> String {
        let resp = self.post_form(
            &format!("Action=CreateRole&Version=2010-05-08&RoleName={name}&AssumeRolePolicyDocument=%7B%7D"),
            "iam",
        );
        assert!(resp.contains("<Arn>"), "role not created: {resp}");
        format!("arn:aws:iam::123456789012:role/{name}")
    }

    /// Creates `orders-api` with versions 1 and 2 and the alias `live` on version 1.
    pub async fn function_with_two_versions(&self, lambda: &aws_sdk_lambda::Client) {
        let role = self.create_role("canary-gate-test");
        let zip = include_bytes!("../fixtures/function.zip");
        lambda
            .create_function()
            .function_name("orders-api")
            .runtime(Runtime::Providedal2023)
            .role(role)
            .handler("bootstrap")
            .code(
                FunctionCode::builder()
                    .zip_file(Blob::new(zip.to_vec()))
                    .build(),
            )
            .send()
            .await
            .expect("create function");
        lambda
            .publish_version()
            .function_name("orders-api")
            .send()
            .await
            .expect("version 1");
        let mut changed = zip.to_vec();
        changed.push(b' ');
        lambda
            .update_function_code()
            .function_name("orders-api")
            .zip_file(Blob::new(changed))
            .send()
            .await
            .expect("update");
        lambda
            .publish_version()
            .function_name("orders-api")
            .send()
            .await
            .expect("version 2");
        lambda
            .create_alias()
            .function_name("orders-api")
            .name("live")
            .function_version("1")
            .send()
            .await
            .expect("alias");
    }

    /// moto with state machines executed and Lambda answered without containers, and the
    /// stub function `canary-gate-phase` that [`approval_machine`]s name; returns the SDK
    /// config and the role state machines run as.
    pub async fn with_state_machines() -> (Self, SdkConfig, String) {
        let moto = Self::start();
        moto.post_json(
            "/moto-api/config",
            r#"{"stepfunctions": {"execute_state_machine": true}, "lambda": {"use_docker": false}}"#,
        );
        let sdk = moto.sdk().await;
        let role = moto.create_role("canary-gate-states");
        aws_sdk_lambda::Client::new(&sdk)
            .create_function()
            .function_name("canary-gate-phase")
            .runtime(Runtime::Providedal2023)
            .role(&role)
            .handler("bootstrap")
            .code(
                FunctionCode::builder()
                    .zip_file(Blob::new(
                        include_bytes!("../fixtures/function.zip").to_vec(),
                    ))
                    .build(),
            )
            .send()
            .await
            .expect("function");
        (moto, sdk, role)
    }

    /// Shared SDK config for this server, with the production timeouts and retries.
    pub async fn sdk(&self) -> SdkConfig {
        faults::sdk_at(&self.endpoint).await
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sdk` with the credentials `key` (an access key id and secret, as
/// [`Moto::create_user_with_key`] makes them).
pub fn sdk_as(sdk: &SdkConfig, key: &(String, String)) -> SdkConfig {
    sdk.to_builder()
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            &key.0, &key.1, None, None, "test",
        )))
        .build()
}

/// A machine that waits for an approval through a task token, like `AwaitApproval`.
pub async fn approval_machine(sfn: &aws_sdk_sfn::Client, role: &str, name: &str) -> String {
    let definition = serde_json::json!({
        "StartAt": "AwaitApproval",
        "States": {
            "AwaitApproval": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {
                    "FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:canary-gate-phase",
                    "Payload": {"op": "request-approval", "action": "promote", "taskToken.$": "$$.Task.Token"}
                },
                "ResultPath": "$.approval",
                "Next": "Done"
            },
            "Done": {"Type": "Succeed"}
        }
    });
    sfn.create_state_machine()
        .name(name)
        .definition(definition.to_string())
        .role_arn(role)
        .send()
        .await
        .expect("state machine")
        .state_machine_arn()
        .to_string()
}

/// Waits until something listens on 127.0.0.1:`port`; panics naming `what` after 30 s.
pub fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
