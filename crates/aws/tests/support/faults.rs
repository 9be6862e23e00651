//! The fault-injecting proxy (`tests/faults/proxy.py`) between the SDK clients and moto:
//! started on a free loopback port per test, configured through its control endpoint, and
//! killed and reaped when dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_cloudwatch::config::Credentials;

/// A running fault proxy in front of one upstream.
pub struct FaultProxy {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    port: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port()
}

/// One HTTP/1.1 exchange with `Connection: close`; returns the body.
fn exchange(port: u16, method: &str, path: &str, body: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    assert!(
        out.starts_with("HTTP/1.0 200") || out.starts_with("HTTP/1.1 200"),
        "{path}: {out}"
    );
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

impl FaultProxy {
    /// Starts the proxy in front of `upstream` (`http://127.0.0.1:PORT`), with no faults.
    pub fn start(upstream: &str) -> Self {
        Self::spawn(upstream, &[])
    }

    /// Starts the proxy keeping alias revisions as AWS does (`--alias-revisions`): a new
    /// `RevisionId` per alias write and a stale one refused, which moto does not do.
    pub fn with_alias_revisions(upstream: &str) -> Self {
        Self::spawn(upstream, &["--alias-revisions"])
    }

    fn spawn(upstream: &str, extra: &[&str]) -> Self {
        let port = free_port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/faults/proxy.py");
        let child = Command::new("python3")
            .args([script, "--port", &port.to_string(), "--upstream", upstream])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the fault proxy ({e})"));
        let proxy = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
        };
        super::wait_for_port(port, "the fault proxy");
        proxy
    }

    /// Replaces the rules (a JSON list, see `tests/faults/proxy.py`) and resets the counts.
    pub fn set(&self, rules: serde_json::Value) {
        exchange(self.port, "POST", "/__faults/rules", &rules.to_string());
    }

    /// Clears every fault.
    pub fn clear(&self) {
        self.set(serde_json::json!([]));
    }

    /// How many requests of `op` reached the proxy since the rules were last set.
    pub fn calls(&self, op: &str) -> u64 {
        let body = exchange(self.port, "GET", "/__faults/calls", "");
        let v: serde_json::Value = serde_json::from_str(&body).expect("calls json");
        v[op].as_u64().unwrap_or(0)
    }

    /// SDK config through the proxy, with the production timeouts and retries.
    pub async fn sdk(&self) -> SdkConfig {
        sdk_at(&self.endpoint).await
    }
}

/// SDK config for an endpoint on 127.0.0.1 with throwaway credentials and the production
/// timeouts and retries (`canary_gate_aws::with_limits`).
pub async fn sdk_at(endpoint: &str) -> SdkConfig {
    canary_gate_aws::with_limits(aws_config::defaults(BehaviorVersion::latest()))
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .load()
        .await
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
