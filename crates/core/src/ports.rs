//! The ports through which the engine reaches the outside world: metrics, the alias's traffic
//! routing, notifications and CodeDeploy lifecycle hooks. Adapters (CloudWatch, Lambda, SNS,
//! CodeDeploy, the simulated fleet, test fakes) implement these traits; they speak core types
//! and return [`PortError`], never an SDK type.
//!
//! The traits use `async fn` but need no particular runtime: the Lambda functions run them on
//! tokio, tests and the demo can run them on any executor.

use std::future::Future;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::{CanaryConfig, Target};
use crate::notify::Notification;
use crate::observe::SideObservations;

/// A failure at a port, classified so that callers (and the state machine's Retry/Catch) can
/// react to the kind, not to a message.
#[derive(Debug, Clone, Error, PartialEq, Eq, Serialize, Deserialize)]
pub enum PortError {
    /// Someone else changed the alias since we read it (its `RevisionId` moved on). We never
    /// overwrite another writer's change.
    #[error("alias changed concurrently: expected revision {expected}, found {found}")]
    Conflict {
        /// The revision we read.
        expected: String,
        /// The revision now in place.
        found: String,
    },
    /// The service throttled us; retry with backoff.
    #[error("throttled: {0}")]
    Throttled(String),
    /// A transient failure (network, 5xx); retry.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// The function, alias, topic or deployment does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request was rejected as invalid (permissions, bad parameters); do not retry.
    #[error("rejected: {0}")]
    Rejected(String),
}

impl PortError {
    /// Whether retrying may help.
    pub fn is_transient(&self) -> bool {
        matches!(self, PortError::Throttled(_) | PortError::Unavailable(_))
    }
}

/// The time range of one metrics fetch, in seconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    /// Inclusive start.
    pub start: i64,
    /// Exclusive end.
    pub end: i64,
}

/// Observations of both versions over a time range.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Fetched {
    /// The baseline version's observations, by metric name. A metric without datapoints is
    /// absent or empty ("no data"), never zero.
    pub baseline: SideObservations,
    /// The canary version's observations.
    pub canary: SideObservations,
    /// How the data was obtained, for the report (e.g. "latency: percentile statistics with
    /// sample counts, not per-invocation durations").
    pub notes: Vec<String>,
    /// Where the data end when the source leaves out the most recent minutes (CloudWatch may
    /// still be ingesting them); `None` when it covers the whole range asked for.
    #[serde(default)]
    pub through: Option<i64>,
}

/// Reads both versions' metrics.
pub trait MetricsSource {
    /// Fetches every metric of `config` for both versions of `target` over `range`.
    fn fetch(
        &self,
        config: &CanaryConfig,
        target: &Target,
        range: TimeRange,
    ) -> impl Future<Output = Result<Fetched, PortError>> + Send;
}

/// An alias as read: where it points and how it splits traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AliasState {
    /// The version the alias points at (the primary).
    pub version: String,
    /// The additional version and its weight in percent, when routing is split.
    pub additional: Option<(String, f64)>,
    /// The alias's revision; every write must name it.
    pub revision_id: String,
    /// The canary that holds (or last released) the alias, as its description records it.
    /// Written in the same `UpdateAlias` as the routing, under the same revision check, so a
    /// claim and the split it covers land together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<AliasClaim>,
}

/// What the alias's description says of canaries: which execution holds it, until when the
/// hold counts if that execution never ends it (it crashed, or was stopped outside
/// canary-gate), or which one released it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasClaim {
    /// The Step Functions execution (its id) that holds or released the alias, or the
    /// operator who took it over.
    pub holder: String,
    /// `Some`: held until then (seconds since the Unix epoch); `None`: released.
    pub until_epoch: Option<i64>,
}

/// What a write does to the alias's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Writes this claim, in the same `UpdateAlias` as the routing.
    Set(AliasClaim),
    /// Leaves the description as it is (a canary run without an execution id).
    Unchanged,
}

/// The prefix of every alias description canary-gate writes.
const CLAIM_PREFIX: &str = "canary-gate";
/// Lambda's limit for an alias description.
const DESCRIPTION_LIMIT: usize = 256;

impl AliasClaim {
    /// A hold by `holder` until `until_epoch`.
    pub fn hold(holder: &str, until_epoch: i64) -> Self {
        Self {
            holder: holder.to_string(),
            until_epoch: Some(until_epoch),
        }
    }

    /// A release by `holder`.
    pub fn release(holder: &str) -> Self {
        Self {
            holder: holder.to_string(),
            until_epoch: None,
        }
    }

    fn head(until_epoch: Option<i64>) -> String {
        match until_epoch {
            Some(t) => format!("{CLAIM_PREFIX} holds until {t} for "),
            None => format!("{CLAIM_PREFIX} released by "),
        }
    }

    /// The alias description that records this claim. A holder too long for Lambda's 256
    /// characters is cut from the front (an execution id ends with its unique name).
    pub fn description(&self) -> String {
        let head = Self::head(self.until_epoch);
        let holder = tail(&self.holder, DESCRIPTION_LIMIT - head.len());
        format!("{head}{holder}")
    }

    /// The claim an alias description records; any other description (a user's own, an
    /// empty one) records none.
    pub fn parse(description: &str) -> Option<AliasClaim> {
        let rest = description.strip_prefix(CLAIM_PREFIX)?;
        let (until_epoch, holder) = if let Some(held) = rest.strip_prefix(" holds until ") {
            let (until, holder) = held.split_once(" for ")?;
            (Some(until.parse().ok()?), holder)
        } else {
            (None, rest.strip_prefix(" released by ")?)
        };
        (!holder.is_empty()).then(|| AliasClaim {
            holder: holder.to_string(),
            until_epoch,
        })
    }

    /// Whether this claim is `holder`'s (an execution id), allowing for the cut a long id
    /// takes to fit the description.
    pub fn is_by(&self, holder: &str) -> bool {
        let head = Self::head(self.until_epoch);
        self.holder == tail(holder, DESCRIPTION_LIMIT - head.len())
    }

    /// Whether the claim is a hold still in force at `now_epoch`.
    pub fn holds_at(&self, now_epoch: i64) -> bool {
        self.until_epoch.is_some_and(|t| t > now_epoch)
    }
}

/// The last `max` bytes of `s`, on a character boundary.
fn tail(s: &str, max: usize) -> &str {
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

impl AliasState {
    /// The weight in percent that `version` receives through this alias.
    pub fn weight_of(&self, version: &str) -> f64 {
        match &self.additional {
            Some((v, w)) if v == version => *w,
            Some((_, w)) if self.version == version => 100.0 - w,
            None if self.version == version => 100.0,
            _ => 0.0,
        }
    }
}

/// Reads and sets the alias's routing. Every write carries the revision read before it and
/// fails with [`PortError::Conflict`] instead of overwriting someone else's change. Writes
/// set absolute weights, so repeating one is harmless. Each write also sets the alias's
/// [`Claim`] (its description) in the same request.
pub trait TrafficRouter {
    /// Reads the alias.
    fn read(&self, target: &Target) -> impl Future<Output = Result<AliasState, PortError>> + Send;

    /// Points the alias at the baseline with `canary_weight` percent (0 < w < 100) routed to
    /// the canary version.
    fn set_canary_weight(
        &self,
        target: &Target,
        canary_weight: f64,
        revision_id: &str,
        claim: &Claim,
    ) -> impl Future<Output = Result<AliasState, PortError>> + Send;

    /// Points the alias at the canary version with no split (promotion).
    fn promote(
        &self,
        target: &Target,
        revision_id: &str,
        claim: &Claim,
    ) -> impl Future<Output = Result<AliasState, PortError>> + Send;

    /// Points the alias at the baseline version with no split (rollback).
    fn rollback(
        &self,
        target: &Target,
        revision_id: &str,
        claim: &Claim,
    ) -> impl Future<Output = Result<AliasState, PortError>> + Send;
}

/// Publishes notifications.
pub trait Notifier {
    /// Publishes one message.
    fn publish(&self, n: &Notification) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// Reports the outcome of a CodeDeploy lifecycle hook.
pub trait LifecycleHook {
    /// `PutLifecycleEventHookExecutionStatus` with Succeeded or Failed.
    fn report(
        &self,
        deployment_id: &str,
        hook_execution_id: &str,
        succeeded: bool,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// A CodeDeploy deployment as `GetDeployment` describes it, reduced to what the hooks need.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeploymentInfo {
    /// The deployment's status (`InProgress`, `Succeeded`, `Failed`, `Stopped`, …).
    pub status: Option<String>,
    /// When the deployment was created (seconds since the Unix epoch).
    pub create_epoch: Option<i64>,
    /// The revision's AppSpec text (`revision.appSpecContent.content`), JSON or YAML.
    pub app_spec: Option<String>,
}

/// Reads CodeDeploy deployments (the AppSpec of a Lambda deployment names the function,
/// alias and both versions).
pub trait Deployments {
    /// `GetDeployment`.
    fn deployment(
        &self,
        deployment_id: &str,
    ) -> impl Future<Output = Result<DeploymentInfo, PortError>> + Send;
}

/// How a canary execution stands in the orchestrator (Step Functions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    /// Still going.
    Running,
    /// Ended in success (promoted).
    Succeeded,
    /// Ended in failure (rolled back, conflict, error).
    Failed,
    /// Ran past the state machine's own time limit.
    TimedOut,
    /// Stopped from outside (an operator's abort or promote).
    Aborted,
}

impl RunStatus {
    /// Whether the execution has ended.
    pub fn is_finished(self) -> bool {
        self != RunStatus::Running
    }
}

/// One canary execution as the orchestrator describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionInfo {
    /// Its id (the execution ARN in AWS).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Where it stands.
    pub status: RunStatus,
    /// When it started (seconds since the Unix epoch).
    pub started_epoch: i64,
    /// When it ended.
    pub stopped_epoch: Option<i64>,
    /// Its input (absent in listings).
    pub input: Option<serde_json::Value>,
    /// Its output, once succeeded.
    pub output: Option<serde_json::Value>,
    /// The error it ended with, if any.
    pub error: Option<String>,
    /// The cause it ended with, if any.
    pub cause: Option<String>,
}

/// The kinds of history event the operator commands read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryKind {
    /// A state was entered (`detail`: its input).
    StateEntered,
    /// A state was left (`detail`: its output).
    StateExited,
    /// A task was scheduled (`detail`: its parameters, e.g. the payload with a task token).
    TaskScheduled,
    /// A task, a Lambda invocation or the execution failed, timed out or was aborted
    /// (`error`, `cause`).
    Failed,
    /// Anything else.
    Other,
}

/// One event of an execution's history, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEvent {
    /// When (seconds since the Unix epoch).
    pub epoch: i64,
    /// What.
    pub kind: HistoryKind,
    /// The state, for state events (and the task's state for task events, when known).
    pub state: Option<String>,
    /// The event's JSON detail, parsed.
    pub detail: Option<serde_json::Value>,
    /// Error name of a failure.
    pub error: Option<String>,
    /// Cause of a failure.
    pub cause: Option<String>,
}

/// A signed, unsent STS `GetCallerIdentity` request: what a caller hands the approver to
/// prove who it is (see [`crate::operator::approver`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityProof {
    /// The request's headers as signed (names lower-case), `Authorization` among them.
    pub headers: Vec<(String, String)>,
    /// The request's body.
    pub body: String,
}

/// Who STS says signed a proof.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifiedIdentity {
    /// The caller's ARN (`arn:aws:iam::…:user/…` or `arn:aws:sts::…:assumed-role/…/…`).
    pub arn: String,
    /// Its account.
    pub account: String,
    /// Its unique id.
    pub user_id: String,
}

/// Verifies a caller's identity from a signed request (STS in AWS).
pub trait IdentityVerifier {
    /// Sends `proof` to the identity service; the signer's identity. `Rejected`: the service
    /// refused the signature (forged, expired, or for another endpoint).
    fn verify(
        &self,
        proof: &IdentityProof,
    ) -> impl Future<Output = Result<VerifiedIdentity, PortError>> + Send;
}

/// Starts, inspects, answers and stops canary executions (Step Functions in AWS).
pub trait Executions {
    /// Starts an execution named `name` with `input`; returns its id.
    fn start(
        &self,
        name: &str,
        input: &serde_json::Value,
    ) -> impl Future<Output = Result<String, PortError>> + Send;

    /// Describes one execution, with its input and output.
    fn describe(&self, id: &str) -> impl Future<Output = Result<ExecutionInfo, PortError>> + Send;

    /// The execution's whole history, oldest first.
    fn history(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Vec<HistoryEvent>, PortError>> + Send;

    /// The most recent executions, newest first (at most `max`), optionally only running ones.
    fn list(
        &self,
        running_only: bool,
        max: usize,
    ) -> impl Future<Output = Result<Vec<ExecutionInfo>, PortError>> + Send;

    /// Answers a `.waitForTaskToken` task: `Ok(output)` succeeds it, `Err((error, cause))`
    /// fails it.
    fn answer(
        &self,
        task_token: &str,
        outcome: Result<serde_json::Value, (String, String)>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Stops a running execution with an error and a cause (kept in its history).
    fn stop(
        &self,
        id: &str,
        error: &str,
        cause: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}
