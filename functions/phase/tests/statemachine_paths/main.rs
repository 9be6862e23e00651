//! The state machine's paths as the `phase` function answers them: each path drives the real
//! handler over the simulated fleet exactly as `infra/statemachine/canary.asl.json` would
//! (the `Decide` choice, waits, retries and catches), and records every event the machine
//! sends and every answer it gets back — the serialised `PhaseResponse`, or the error object
//! `{"errorType", "errorMessage"}` that Lambda returns for a `Diagnostic`. The recordings are
//! golden files in `tests/statemachine/paths/`, which `tests/statemachine/test_paths.py`
//! replays through the state machine executed by moto. After an intended change, regenerate
//! them with `UPDATE_GOLDEN=1 cargo test -p phase --test statemachine_paths`.

mod paths;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use canary_gate_core::config::{CanaryConfig, Target};
use canary_gate_core::notify::Notification;
use canary_gate_core::policy::Action;
use canary_gate_core::ports::{Claim, Fetched, PortError, TimeRange};
use canary_gate_core::sim::{Fleet, MetricNames, Scenario, SimulatedLambda, run_ready};
use serde_json::{Value, json};

use canary_gate_core::ports::{LifecycleHook, MetricsSource, TrafficRouter};
use canary_gate_core::step::ops::{PhaseEvent, PhaseResponse, Ports};
use lambda_runtime::Diagnostic;
use phase::handler;

/// 2026-01-01T00:00:00Z: every recorded canary starts here.
const T0: i64 = 1_767_225_600;
/// Step Functions passes at most 256 KiB between states.
const STATE_LIMIT: usize = 256 * 1024;
/// Stand-ins for what only the running state machine knows; the moto test puts the real
/// values in before comparing.
const EXECUTION_ID: &str = "EXECUTION_ID";
const TASK_TOKEN: &str = "TASK_TOKEN";
/// Seconds an operator takes to answer.
const ANSWER_AFTER: i64 = 30;

/// What goes wrong at a look.
#[derive(Clone, Copy)]
enum Fault {
    /// Metrics cannot be read (not retriable): `MetricsUnavailable`.
    MetricsDown,
    /// CloudWatch throttles once: `Transient`, retried by the machine.
    Throttled,
    /// Someone else shifts the alias before the look.
    AliasChangedByOthers,
    /// The function does the look (its alias write lands) and then times out before
    /// answering: Step Functions sees `Sandbox.Timedout` and retries the same look.
    TimesOutAfterWriting,
}

/// What Lambda reports for a function that timed out and for one whose process was killed.
const TIMED_OUT: &str = "Sandbox.Timedout";
const KILLED: &str = "Runtime.ExitError";

/// An operator's answer to an approval request.
#[derive(Clone, Copy)]
enum Answer {
    Approve,
    Reject,
    TimesOut,
}

/// How a path unfolds: faults by look (1-based), metrics failing at every look from some
/// look on, and the operator's answers in order.
#[derive(Default)]
struct Script {
    faults: Vec<(u32, Fault)>,
    metrics_down_from: Option<u32>,
    answers: Vec<Answer>,
    /// The start's process is killed after its alias write landed, before it answers.
    start_killed: bool,
    /// The canary's `errors` metric stops reporting after this look (1-based): what the
    /// CloudWatch adapter returns then — the minutes before the stop, none after it.
    errors_stop_after: Option<u32>,
}

/// Metrics from the simulated fleet, or a scripted failure.
struct Metrics<'a> {
    sim: &'a SimulatedLambda,
    fail: Option<PortError>,
    /// The canary's `errors` have no datapoints from this epoch on.
    errors_stop: Option<i64>,
}

impl MetricsSource for Metrics<'_> {
    async fn fetch(
        &self,
        config: &CanaryConfig,
        target: &Target,
        range: TimeRange,
    ) -> Result<Fetched, PortError> {
        if let Some(e) = &self.fail {
            return Err(e.clone());
        }
        let mut fetched = self.sim.fetch(config, target, range).await?;
        if let Some(stop) = self.errors_stop.filter(|&stop| range.end > stop) {
            let before = TimeRange {
                start: range.start,
                end: stop,
            };
            match (range.start < stop).then_some(()) {
                Some(()) => {
                    let early = self.sim.fetch(config, target, before).await?;
                    match early.canary.get("errors") {
                        Some(o) => fetched.canary.insert("errors".into(), o.clone()),
                        None => fetched.canary.remove("errors"),
                    };
                }
                None => {
                    fetched.canary.remove("errors");
                }
            }
        }
        Ok(fetched)
    }
}

/// CodeDeploy, recording what was reported; its deployment is the one of the recorded
/// canary's target (a hook builds its canary's config from the deployment's AppSpec).
struct Hook(Mutex<Vec<(String, String, bool)>>, Target);

impl LifecycleHook for Hook {
    async fn report(&self, d: &str, h: &str, ok: bool) -> Result<(), PortError> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((d.to_string(), h.to_string(), ok));
        Ok(())
    }
}

impl canary_gate_core::ports::Deployments for Hook {
    async fn deployment(
        &self,
        _id: &str,
    ) -> Result<canary_gate_core::ports::DeploymentInfo, PortError> {
        Ok(canary_gate_core::sim::lambda_deployment(&self.1))
    }
}

/// One recorded path.
struct Recording {
    name: &'static str,
    about: &'static str,
    input: Value,
    steps: Vec<Value>,
    end: &'static str,
    sim: SimulatedLambda,
    hook: Hook,
}

impl Recording {
    /// Pretty at the top, one step per line: diffs show which answer changed. Keys are
    /// sorted, whether or not serde_json's `preserve_order` is on in this build.
    fn to_json(&self) -> String {
        let field = |v: &Value| serde_json::to_string(&sorted(v.clone())).expect("json");
        let steps: Vec<String> = self
            .steps
            .iter()
            .map(|s| format!("    {}", field(s)))
            .collect();
        format!(
            "{{\n  \"path\": {},\n  \"about\": {},\n  \"end\": {},\n  \"input\": {},\n  \"steps\": [\n{}\n  ]\n}}\n",
            field(&json!(self.name)),
            field(&json!(self.about)),
            field(&json!(self.end)),
            field(&self.input),
            steps.join(",\n")
        )
    }

    /// `State:action` for answers, `State!ErrorType` for errors.
    fn trace(&self) -> Vec<String> {
        self.steps
            .iter()
            .map(|s| {
                let state = s["state"].as_str().expect("state");
                match (&s["response"], &s["error"]) {
                    (Value::Object(r), _) => {
                        format!("{state}:{}", r["action"].as_str().expect("action"))
                    }
                    (_, Value::Object(e)) => {
                        format!("{state}!{}", e["errorType"].as_str().expect("type"))
                    }
                    _ => panic!("step without response or error: {s}"),
                }
            })
            .collect()
    }

    fn count(&self, step: &str) -> usize {
        self.trace().iter().filter(|t| *t == step).count()
    }

    /// The canary's weight after each answer that carries the execution.
    fn weights(&self) -> Vec<f64> {
        let mut out: Vec<f64> = Vec::new();
        for s in &self.steps {
            let Some(exec) = s["response"].get("execution").filter(|e| !e.is_null()) else {
                continue;
            };
            let exec: canary_gate_core::state::Execution =
                serde_json::from_value(exec.clone()).expect("execution");
            let w = exec.run.weight(&exec.config);
            if out.last() != Some(&w) {
                out.push(w);
            }
        }
        out
    }

    fn notified(&self, event: &str) -> Vec<Notification> {
        self.sim
            .published()
            .into_iter()
            .filter(|n| n.attributes.get("event").map(String::as_str) == Some(event))
            .collect()
    }
}

/// Plays the state machine against the handler.
struct Machine {
    sim: SimulatedLambda,
    hook: Hook,
    now: i64,
    steps: Vec<Value>,
    fail: Option<PortError>,
    errors_stop: Option<i64>,
}

impl Machine {
    /// Invokes the handler as the task `state` does and records the exchange.
    fn invoke(&mut self, state: &str, event: Value) -> Result<PhaseResponse, Diagnostic> {
        PhaseEvent::from_value(&event)
            .unwrap_or_else(|e| panic!("{state} sends an event the function accepts: {e}"));
        let metrics = Metrics {
            sim: &self.sim,
            fail: self.fail.take(),
            errors_stop: self.errors_stop,
        };
        let ports = Ports {
            metrics: &metrics,
            router: &self.sim,
            notifier: &self.sim,
            hook: &self.hook,
        };
        let out = run_ready(handler(ports, &event, self.now))
            .expect("the simulated fleet answers at once");
        // The execution sent is the one the previous answer carried (the moto test checks
        // that the machine passes it on): record the rest of the event only.
        let mut sent = event;
        sent.as_object_mut().expect("object").remove("execution");
        let (key, answer) = match &out {
            Ok(r) => ("response", serde_json::to_value(r).expect("json")),
            Err(d) => ("error", serde_json::to_value(d).expect("json")),
        };
        if let Some(exec) = answer.get("execution").filter(|e| !e.is_null()) {
            // The state must survive the trip through the machine unchanged.
            let back: canary_gate_core::state::Execution = serde_json::from_value(exec.clone())
                .unwrap_or_else(|e| panic!("{state} answers a state it cannot read back: {e}"));
            assert_eq!(
                &serde_json::to_value(back).expect("json"),
                exec,
                "{state}: the state changes when read back"
            );
        }
        let size = answer.to_string().len();
        assert!(
            size < STATE_LIMIT,
            "{state} answers {size} bytes, over Step Functions' 256 KiB state limit"
        );
        self.steps.push(json!({
            "state": state,
            "atSeconds": self.now - T0,
            "event": sent,
            key: answer,
        }));
        out
    }

    /// Invokes the handler as the task `state` does, lets everything it does land, and
    /// records the answer Lambda gives when the function dies before answering: the error
    /// `error_type` (what the state machine's retriers see).
    fn invoke_dying(&mut self, state: &str, event: Value, error_type: &str) {
        let ports = Ports {
            metrics: &Metrics {
                sim: &self.sim,
                fail: None,
                errors_stop: self.errors_stop,
            },
            router: &self.sim,
            notifier: &self.sim,
            hook: &self.hook,
        };
        run_ready(handler(ports, &event, self.now))
            .expect("the simulated fleet answers at once")
            .unwrap_or_else(|e| panic!("{state}: the attempt that dies succeeds first: {e:?}"));
        let mut sent = event;
        sent.as_object_mut().expect("object").remove("execution");
        self.steps.push(json!({
            "state": state,
            "atSeconds": self.now - T0,
            "event": sent,
            "error": {
                "errorType": error_type,
                "errorMessage": "the function ended before answering",
            },
        }));
    }

    fn elapse(&mut self, seconds: i64) {
        self.now += seconds;
        self.sim.run_until(self.now);
    }
}

fn sorted(mut v: Value) -> Value {
    match &mut v {
        Value::Object(map) => {
            map.sort_keys();
            for item in map.values_mut() {
                *item = sorted(item.take());
            }
        }
        Value::Array(items) => {
            for item in items.iter_mut() {
                *item = sorted(item.take());
            }
        }
        _ => {}
    }
    v
}

/// The error a Catch with `ResultPath: $.error` stores for a function error: the
/// `errorType` as `Error`, the whole error object as JSON text as `Cause`.
fn caught(d: &Diagnostic) -> Value {
    json!({
        "Error": d.error_type,
        "Cause": serde_json::to_string(d).expect("json"),
    })
}

/// Drives one canary through the machine: Initialise, then Soak → Analyse → Decide until
/// the canary ends, with the catches and the approval wait as the machine has them.
fn record(
    name: &'static str,
    about: &'static str,
    config: Value,
    hook: Option<Value>,
    scenario: Scenario,
    script: Script,
) -> Recording {
    let parsed = CanaryConfig::from_json(&config.to_string());
    // An invalid config still needs a target for the simulated alias.
    let target = match &parsed {
        Ok(c) => c.target.clone().expect("target"),
        Err(_) => serde_json::from_value(config["target"].clone()).expect("target"),
    };
    let names = MetricNames {
        latency: "latency".into(),
        errors: "errors".into(),
    };
    let mut m = Machine {
        sim: SimulatedLambda::new(Fleet::new(scenario, names, 2), &target, T0, 60),
        hook: Hook(Mutex::default(), target.clone()),
        now: T0,
        steps: Vec::new(),
        fail: None,
        errors_stop: None,
    };
    let mut input = json!({ "config": config });
    if let Some(h) = &hook {
        input["hook"] = h.clone();
    }
    let end = drive(&mut m, &input, &target, &script);
    Recording {
        name,
        about,
        input,
        steps: m.steps,
        end,
        sim: m.sim,
        hook: m.hook,
    }
}

fn drive(m: &mut Machine, input: &Value, target: &Target, script: &Script) -> &'static str {
    // The machine defaults a missing hook to null before Initialise.
    let hook = input.get("hook").cloned().unwrap_or(Value::Null);
    let start = json!({
        "op": "start",
        "config": input["config"],
        "hook": hook,
        "executionId": EXECUTION_ID,
    });
    if script.start_killed {
        m.invoke_dying("Initialise", start.clone(), KILLED);
        // Initialise's retrier for a function that died: the same start, 2 s later.
        m.elapse(2);
    }
    let mut resp = match m.invoke("Initialise", start) {
        Ok(r) => r,
        Err(d) => {
            let mut failed = input.clone();
            failed["hook"] = hook;
            failed["error"] = caught(&d);
            let event = json!({"op": "start-failed", "input": failed, "executionId": EXECUTION_ID});
            m.invoke("StartFailed", event)
                .expect("start-failed answers");
            return "CanaryFailed";
        }
    };
    let mut looks = 0;
    let mut answers = script.answers.iter();
    loop {
        let exec = serde_json::to_value(resp.execution.as_ref().expect("execution")).expect("json");
        let action = resp.action;
        if resp.awaiting_approval {
            let ask = json!({"op": "request-approval", "execution": exec, "action": action, "taskToken": TASK_TOKEN});
            m.invoke("AwaitApproval", ask)
                .expect("request-approval answers");
            let answer = *answers.next().expect("the script answers every request");
            resp = match answer {
                Answer::Approve => {
                    m.elapse(ANSWER_AFTER);
                    let approval = json!({"approvedBy": "alice"});
                    let event = json!({"op": "apply", "execution": exec, "action": action, "approval": approval});
                    m.invoke("ApplyApproved", event)
                }
                Answer::Reject => {
                    m.elapse(ANSWER_AFTER);
                    let error = json!({"Error": "Rejected", "Cause": "rejected by alice"});
                    let event = json!({"op": "reject", "execution": exec, "action": action, "error": error});
                    m.invoke("ApplyRejection", event)
                }
                Answer::TimesOut => {
                    let limit = exec["config"]["auto_rollback"]["rollback_timeout_seconds"]
                        .as_i64()
                        .expect("the wait's TimeoutSecondsPath resolves");
                    m.elapse(limit);
                    let event = json!({"op": "timeout", "execution": exec, "action": action});
                    m.invoke("ApplySafeDefault", event)
                }
            }
            .expect("the answer applies");
            continue;
        }
        match action {
            Action::Rollback | Action::Promote => {
                let succeeded = action == Action::Promote;
                let state = if succeeded { "Promoted" } else { "RolledBack" };
                let event = json!({"op": "finish", "execution": exec, "succeeded": succeeded});
                m.invoke(state, event).expect("finish answers");
                return if succeeded {
                    "CanaryPromoted"
                } else {
                    "CanaryRolledBack"
                };
            }
            _ => {}
        }
        m.elapse(resp.wait_seconds as i64);
        looks += 1;
        if script.metrics_down_from.is_some_and(|from| looks >= from) {
            m.fail = Some(metrics_down());
        }
        match script.faults.iter().find(|(n, _)| *n == looks).map(|f| f.1) {
            Some(Fault::MetricsDown) => m.fail = Some(metrics_down()),
            Some(Fault::Throttled) => {
                m.fail = Some(PortError::Throttled("GetMetricData: Rate exceeded".into()));
            }
            Some(Fault::AliasChangedByOthers) => {
                let alias = m.sim.alias();
                run_ready(m.sim.set_canary_weight(
                    target,
                    50.0,
                    &alias.revision_id,
                    &Claim::Unchanged,
                ))
                .expect("ready")
                .expect("another writer shifts the alias");
            }
            Some(Fault::TimesOutAfterWriting) => {}
            None => {}
        }
        let look = json!({"op": "look", "execution": exec});
        if script.errors_stop_after == Some(looks) {
            m.errors_stop = Some(m.now);
        }
        if script
            .faults
            .iter()
            .any(|&(n, f)| n == looks && matches!(f, Fault::TimesOutAfterWriting))
        {
            m.invoke_dying("Analyse", look.clone(), TIMED_OUT);
            // Analyse's retrier for a function that died: the same look, 5 s later.
            m.elapse(5);
        }
        resp = match m.invoke("Analyse", look.clone()) {
            Ok(r) => r,
            // Retry on Transient: the same event again after the backoff.
            Err(d) if d.error_type == "Transient" => {
                m.elapse(5);
                m.invoke("Analyse", look).expect("the retry succeeds")
            }
            Err(d) if d.error_type == "AliasConflict" => {
                let event = json!({"op": "conflict", "execution": exec, "error": caught(&d)});
                m.invoke("Conflict", event).expect("conflict answers");
                return "CanaryFailed";
            }
            Err(d) => {
                let event = json!({"op": "error", "execution": exec, "error": caught(&d)});
                m.invoke("HoldOnError", event).expect("error answers")
            }
        };
    }
}

fn metrics_down() -> PortError {
    PortError::Rejected(
        "GetMetricData: AccessDeniedException: not authorized to perform cloudwatch:GetMetricData"
            .into(),
    )
}
