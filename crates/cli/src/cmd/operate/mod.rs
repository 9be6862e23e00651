//! The operator's commands against a deployed stack: `start`, `status`, `history`, `approve`,
//! `reject`, `abort` and `promote`. They talk to Step Functions (the canary's state lives in
//! its execution), to the Lambda alias (overrides) and to SNS (override notifications), with
//! the standard AWS environment (`AWS_REGION`, `AWS_PROFILE`, `AWS_ENDPOINT_URL`, …).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use canary_gate_aws::{
    LambdaAliasRouter, SnsNotifier, StepFunctionsExecutions, parse_channel_topics,
};
use canary_gate_core::operator;
use canary_gate_core::operator::approver;
use canary_gate_core::policy::Action;
use canary_gate_core::ports::Executions;

use crate::input::{TargetArgs, load_config_with_target};

/// Where the deployed stack is: the state machine (for `start`, execution names and listing)
/// and the notification topic (for override notifications).
#[derive(Debug, Clone, clap::Args)]
pub struct StackArgs {
    /// The canary state machine's ARN (stack output `StateMachineArn`).
    #[arg(long, env = "CANARY_GATE_STATE_MACHINE_ARN")]
    state_machine: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Names an execution: its ARN, or its name (with `--state-machine`). Without it, the most
/// recent execution of the state machine.
#[derive(Debug, Clone, clap::Args)]
pub struct ExecutionArgs {
    /// Execution ARN or name; default: the most recent execution of the state machine.
    execution: Option<String>,
    #[command(flatten)]
    stack: StackArgs,
}

/// The stack's approver function, through which the commands that change a canary go.
#[derive(Debug, Clone, clap::Args)]
pub struct ApproverArgs {
    /// The stack's approver function (name or ARN; stack output `ApproverFunctionArn`). The
    /// command is then run by it, for your verified AWS identity, which it records; the
    /// stack's operator policy allows nothing else. Without it, the command calls Step
    /// Functions, Lambda and SNS itself and records `--actor` unverified.
    #[arg(long, env = "CANARY_GATE_APPROVER_FUNCTION")]
    approver: Option<String>,
}

/// Arguments of `start`.
#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// The canary config (JSON); `--function`, `--alias` and the versions override its target.
    #[arg(long)]
    config: PathBuf,
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    via: ApproverArgs,
    /// A name kept beside your verified identity (with --approver).
    #[arg(long, value_parser = plain_text)]
    actor: Option<String>,
}

/// Arguments of `approve` and `reject`.
#[derive(Debug, clap::Args)]
pub struct AnswerArgs {
    #[command(flatten)]
    target: ExecutionArgs,
    /// A note kept with the answer.
    #[arg(long, default_value = "", value_parser = plain_text)]
    comment: String,
    /// Who answers (default: the caller's AWS identity). With --approver, a name kept beside
    /// the verified identity.
    #[arg(long, value_parser = plain_text)]
    actor: Option<String>,
    #[command(flatten)]
    via: ApproverArgs,
}

/// A free-text flag (`--actor`, `--reason`, `--comment`): one line of plain text
/// ([`operator::plain_text`], the rule the approver applies too). clap names the flag in the
/// error.
fn plain_text(s: &str) -> Result<String, String> {
    operator::plain_text(s).map(|()| s.to_string())
}

/// Arguments of `abort` and `promote`.
#[derive(Debug, clap::Args)]
pub struct OverrideArgs {
    #[command(flatten)]
    target: ExecutionArgs,
    /// Why (kept in the execution history and the notification).
    #[arg(long, default_value = "", value_parser = plain_text)]
    reason: String,
    /// Who runs it (default: the caller's AWS identity). With --approver, a name kept beside
    /// the verified identity.
    #[arg(long, value_parser = plain_text)]
    actor: Option<String>,
    #[command(flatten)]
    via: ApproverArgs,
    /// The notification topic (stack output `NotificationTopicArn`; not needed with
    /// --approver, which notifies on the stack's topic).
    #[arg(long, env = "CANARY_GATE_TOPIC_ARN")]
    topic_arn: Option<String>,
    /// Channel-to-topic map, `name=topic-arn,…`, as deployed.
    #[arg(long, env = "CANARY_GATE_CHANNEL_TOPICS", default_value = "")]
    channel_topics: String,
}

/// Arguments of `promote`.
#[derive(Debug, clap::Args)]
pub struct PromoteArgs {
    #[command(flatten)]
    args: OverrideArgs,
    /// Promote even while a critical gate fails (audited and notified as forced).
    #[arg(long)]
    force: bool,
}

/// `promote`: the override to 100 %.
pub fn promote(args: &PromoteArgs) -> Result<ExitCode> {
    override_canary(&args.args, Action::Promote, args.force)
}

pub(super) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub(super) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub(super) async fn sdk() -> aws_config::SdkConfig {
    canary_gate_aws::sdk_config().await
}

fn executions(sdk: &aws_config::SdkConfig, stack: &StackArgs) -> StepFunctionsExecutions {
    StepFunctionsExecutions::new(
        aws_sdk_sfn::Client::new(sdk),
        stack.state_machine.clone().unwrap_or_default(),
    )
}

/// `arn:aws:states:R:A:stateMachine:M` + `name` → `arn:aws:states:R:A:execution:M:name`.
fn execution_arn(state_machine: &str, name: &str) -> Option<String> {
    let (prefix, machine) = state_machine.rsplit_once(":stateMachine:")?;
    Some(format!("{prefix}:execution:{machine}:{name}"))
}

/// Resolves the execution the command is about.
async fn resolve(ex: &StepFunctionsExecutions, args: &ExecutionArgs) -> Result<String> {
    let machine = args.stack.state_machine.as_deref();
    match (&args.execution, machine) {
        (Some(id), _) if id.starts_with("arn:") => Ok(id.clone()),
        (Some(name), Some(m)) => execution_arn(m, name).ok_or_else(|| {
            anyhow!("--state-machine: `{m}` is not a state machine ARN (arn:…:stateMachine:NAME)")
        }),
        (Some(name), None) => bail!(
            "execution `{name}` is a name, not an ARN: pass --state-machine (or set CANARY_GATE_STATE_MACHINE_ARN)"
        ),
        (None, Some(_)) => {
            let recent = ex.list(false, 20).await?;
            let pick = recent
                .iter()
                .find(|e| !e.status.is_finished())
                .or(recent.first())
                .ok_or_else(|| anyhow!("the state machine has no executions yet"))?;
            Ok(pick.id.clone())
        }
        (None, None) => bail!(
            "name the execution (ARN), or pass --state-machine (or set CANARY_GATE_STATE_MACHINE_ARN) for the most recent one"
        ),
    }
}

/// Who runs the command: `--actor`, else the caller's AWS identity, else the local user.
async fn actor(sdk: &aws_config::SdkConfig, given: &Option<String>) -> String {
    if let Some(a) = given {
        return a.clone();
    }
    match aws_sdk_sts::Client::new(sdk)
        .get_caller_identity()
        .send()
        .await
    {
        Ok(id) if id.arn().is_some() => id.arn().unwrap_or_default().to_string(),
        _ => std::env::var("USER").unwrap_or_else(|_| "unknown".to_string()),
    }
}

/// `start`: starts a canary execution.
pub fn start(args: &StartArgs) -> Result<ExitCode> {
    let config = load_config_with_target(&args.config, &args.target)?;
    if let Some(function) = &args.via.approver {
        return runtime()?.block_on(async {
            let sdk = sdk().await;
            let command = approver::Command::Start {
                config: serde_json::to_value(&config)?,
            };
            let out = via_approver(&sdk, function, &command, args.actor.as_deref()).await?;
            if args.stack.json {
                println!("{out}");
            } else {
                let t = config.target.as_ref().context("target")?;
                println!(
                    "started canary of {}:{} v{} → v{} as {}\nexecution {}",
                    t.function_name,
                    t.alias,
                    t.baseline_version,
                    t.canary_version,
                    out["verified_identity"].as_str().unwrap_or("?"),
                    out["execution"].as_str().unwrap_or("?"),
                );
            }
            Ok(ExitCode::SUCCESS)
        });
    }
    if args.stack.state_machine.is_none() {
        bail!("--state-machine is required (or set CANARY_GATE_STATE_MACHINE_ARN)");
    }
    runtime()?.block_on(async {
        let sdk = sdk().await;
        let ex = executions(&sdk, &args.stack);
        let id = operator::start(&ex, &config, now()).await?;
        if args.stack.json {
            println!("{}", serde_json::json!({ "execution": id }));
        } else {
            let t = config.target.as_ref().context("target")?;
            println!(
                "started canary of {}:{} v{} → v{}\nexecution {id}",
                t.function_name, t.alias, t.baseline_version, t.canary_version
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `status`: where a canary stands.
pub fn status(args: &ExecutionArgs) -> Result<ExitCode> {
    runtime()?.block_on(async {
        let sdk = sdk().await;
        let ex = executions(&sdk, &args.stack);
        let id = resolve(&ex, args).await?;
        let info = ex.describe(&id).await?;
        let events = ex.history(&id).await?;
        let st = operator::status(&info, &events, now());
        if args.stack.json {
            println!("{}", serde_json::to_string_pretty(&st)?);
        } else {
            print!("{}", render_status(&st, now()));
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `history`: the decisions of a canary, newest last.
pub fn history(args: &ExecutionArgs) -> Result<ExitCode> {
    runtime()?.block_on(async {
        let sdk = sdk().await;
        let ex = executions(&sdk, &args.stack);
        let id = resolve(&ex, args).await?;
        let events = ex.history(&id).await?;
        let decisions = operator::decisions(&events);
        if args.stack.json {
            println!("{}", serde_json::to_string_pretty(&decisions)?);
        } else {
            print!("{}", render_history(&decisions));
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `approve` / `reject`: answers the confirmation the canary waits for.
pub fn answer(args: &AnswerArgs, approve: bool) -> Result<ExitCode> {
    runtime()?.block_on(async {
        let sdk = sdk().await;
        let ex = executions(&sdk, &args.target.stack);
        let id = resolve(&ex, &args.target).await?;
        if let Some(function) = &args.via.approver {
            let command = if approve {
                approver::Command::Approve { execution: id.clone(), comment: args.comment.clone() }
            } else {
                approver::Command::Reject { execution: id.clone(), comment: args.comment.clone() }
            };
            let out = via_approver(&sdk, function, &command, args.actor.as_deref()).await?;
            let who = out["verified_identity"].as_str().unwrap_or("?").to_string();
            let action = out["answered"]["action"].as_str().unwrap_or("?").to_string();
            tracing_line(if approve { "approve" } else { "reject" }, &id, &who, &action);
            if args.target.stack.json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                let verb = if approve { "approved" } else { "rejected" };
                println!("{verb} the pending {action} of {id} as {who} (verified by the approver)");
            }
            return Ok(ExitCode::SUCCESS);
        }
        let who = actor(&sdk, &args.actor).await;
        let pending = operator::answer(&ex, &id, approve, &who, &args.comment, now()).await?;
        tracing_line(
            if approve { "approve" } else { "reject" },
            &id,
            &who,
            pending.action.as_str(),
        );
        let verb = if approve { "approved" } else { "rejected" };
        if args.target.stack.json {
            println!(
                "{}",
                serde_json::json!({ "execution": id, "answer": verb, "action": pending.action, "actor": who })
            );
        } else {
            println!("{verb} the pending {} of {id} as {who}", pending.action.as_str());
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `abort` and `promote`: the audited overrides.
pub fn override_canary(args: &OverrideArgs, action: Action, force: bool) -> Result<ExitCode> {
    if let Some(function) = &args.via.approver {
        return runtime()?.block_on(async {
            let sdk = sdk().await;
            let ex = executions(&sdk, &args.target.stack);
            let id = resolve(&ex, &args.target).await?;
            let command = if action == Action::Promote {
                approver::Command::Promote {
                    execution: id.clone(),
                    reason: args.reason.clone(),
                    force,
                }
            } else {
                approver::Command::Abort {
                    execution: id.clone(),
                    reason: args.reason.clone(),
                }
            };
            let out = via_approver(&sdk, function, &command, args.actor.as_deref()).await?;
            let who = out["verified_identity"].as_str().unwrap_or("?").to_string();
            tracing_line(
                action.as_str(),
                &id,
                &who,
                if force { "forced" } else { "" },
            );
            if args.target.stack.json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                let o = &out["override"];
                let what = if action == Action::Promote {
                    "promoted to 100%"
                } else {
                    "rolled back to the baseline"
                };
                println!(
                    "{what} by {who} (verified by the approver; canary was at {}%)",
                    o["weight_before"]
                );
                if o["stopped"] == true {
                    println!("stopped execution {id}");
                }
                if let Some(e) = o["notification_error"].as_str() {
                    eprintln!("warning: the override stands, but its notification failed: {e}");
                }
            }
            Ok(ExitCode::SUCCESS)
        });
    }
    let topic = args.topic_arn.clone().ok_or_else(|| {
        anyhow!(
            "--topic-arn is required (or set CANARY_GATE_TOPIC_ARN): every override is notified"
        )
    })?;
    let channels = parse_channel_topics(&args.channel_topics).map_err(|e| anyhow!(e))?;
    runtime()?.block_on(async {
        let sdk = sdk().await;
        let ex = executions(&sdk, &args.target.stack);
        let id = resolve(&ex, &args.target).await?;
        let who = actor(&sdk, &args.actor).await;
        let router = LambdaAliasRouter::new(aws_sdk_lambda::Client::new(&sdk));
        let notifier =
            SnsNotifier::new(aws_sdk_sns::Client::new(&sdk), topic).with_channels(channels);
        let out = operator::override_canary(
            &ex,
            &router,
            &notifier,
            &id,
            action,
            &who,
            &args.reason,
            force,
            now(),
        )
        .await?;
        tracing_line(
            action.as_str(),
            &id,
            &who,
            if out.forced { "forced" } else { "" },
        );
        if args.target.stack.json {
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            let what = if action == Action::Promote {
                "promoted to 100%"
            } else {
                "rolled back to the baseline"
            };
            println!(
                "{what} by {who} (canary was at {}%){}",
                out.weight_before,
                if out.forced {
                    format!(
                        " — FORCED past failing critical gates: {}",
                        out.failing_gates.join(", ")
                    )
                } else {
                    String::new()
                }
            );
            if out.stopped {
                println!("stopped execution {id}");
            }
        }
        if let Some(e) = &out.notification_error {
            eprintln!("warning: the override stands, but its notification failed: {e}");
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Runs `command` through the stack's approver function: signs the identity proof for it
/// with the caller's credentials, invokes the function once (no retries: a command must not
/// run twice) and returns its answer, or its refusal as the error.
async fn via_approver(
    sdk: &aws_config::SdkConfig,
    function: &str,
    command: &approver::Command,
    claimed: Option<&str>,
) -> Result<serde_json::Value> {
    let request = canary_gate_aws::approver_request(sdk, command, claimed)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    // The approver's own calls are bounded (an override's notification by 25 s); it has 60 s.
    let patient = aws_sdk_lambda::config::Builder::from(sdk)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(std::time::Duration::from_secs(70))
                .operation_timeout(std::time::Duration::from_secs(70))
                .build(),
        )
        .build();
    let out = aws_sdk_lambda::Client::from_conf(patient)
        .invoke()
        .function_name(function)
        .payload(aws_sdk_lambda::primitives::Blob::new(serde_json::to_vec(
            &request,
        )?))
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "cannot invoke the approver function {function}: {}",
                aws_sdk_lambda::error::DisplayErrorContext(e)
            )
        })?;
    let payload: serde_json::Value = match out.payload() {
        Some(b) => serde_json::from_slice(b.as_ref())
            .with_context(|| format!("the approver function {function} answered with no JSON"))?,
        None => serde_json::Value::Null,
    };
    if out.function_error().is_some() {
        bail!(
            "the approver refused ({}): {}",
            payload["errorType"].as_str().unwrap_or("error"),
            payload["errorMessage"].as_str().unwrap_or("no message")
        );
    }
    Ok(payload)
}

/// The audit line every operator action writes to standard error.
fn tracing_line(command: &str, execution: &str, actor: &str, detail: &str) {
    eprintln!(
        "{}",
        serde_json::json!({
            "audit": "canary-gate operator", "command": command, "execution": execution,
            "actor": actor, "detail": detail, "epoch": now(),
        })
    );
}

mod render;

use render::{render_history, render_status};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_names_become_arns_of_the_machine() {
        assert_eq!(
            execution_arn("arn:aws:states:eu-west-1:1:stateMachine:canary", "run-1").as_deref(),
            Some("arn:aws:states:eu-west-1:1:execution:canary:run-1")
        );
        assert_eq!(execution_arn("not-an-arn", "x"), None);
    }
}
