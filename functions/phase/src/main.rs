//! The `phase` Lambda function: one step of the canary per invocation (start, look, apply an
//! approval, report to CodeDeploy, …) as the state machine asks. Clients are built once;
//! the step itself lives in `canary_gate_core::step::ops`, and errors become `Diagnostic`s
//! whose `error_type` the state machine's Retry/Catch match (`Transient`, `AliasConflict`,
//! `MetricsUnavailable`, `InvalidConfig`, …).

use std::time::{SystemTime, UNIX_EPOCH};

use canary_gate_aws::{
    CloudWatchMetrics, CodeDeployHook, InvocationDurations, LambdaAliasRouter, SnsNotifier,
};
use canary_gate_core::emf;
use canary_gate_core::ports::{LifecycleHook, MetricsSource, Notifier, TrafficRouter};
use canary_gate_core::step::ops::{PhaseEvent, PhaseResponse, Ports, handle};
use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn, tracing};

/// Handles one event with the given adapters; the clock is passed in for testability.
async fn handler<M, R, N, H>(
    ports: Ports<'_, M, R, N, H>,
    event: PhaseEvent,
    now_epoch: i64,
) -> Result<PhaseResponse, Diagnostic>
where
    M: MetricsSource,
    R: TrafficRouter,
    N: Notifier,
    H: LifecycleHook,
{
    match handle(event, now_epoch, ports).await {
        Ok(resp) => {
            if let Some(exec) = &resp.execution {
                let (function, alias) = exec
                    .config
                    .target
                    .as_ref()
                    .map(|t| (t.function_name.as_str(), t.alias.as_str()))
                    .unwrap_or_default();
                tracing::info!(
                    function,
                    alias,
                    phase = exec.run.phase,
                    weight = exec.run.weight(&exec.config),
                    decision = resp.action.as_str(),
                    "{}",
                    resp.summary
                );
                if let Some(d) = &exec.last_decision {
                    for rec in emf::decision_records(d, function, alias, now_epoch * 1000) {
                        println!("{rec}");
                    }
                }
            }
            Ok(resp)
        }
        Err(e) => {
            tracing::error!(error_type = e.error_type(), "{e}");
            Err(Diagnostic {
                error_type: e.error_type().to_string(),
                error_message: e.to_string(),
            })
        }
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let sdk = canary_gate_aws::sdk_config().await;
    let topic = std::env::var("CANARY_GATE_TOPIC_ARN").map_err(|_| {
        Error::from(
            "CANARY_GATE_TOPIC_ARN is not set: the phase function needs the notification topic",
        )
    })?;
    let metrics = CloudWatchMetrics::new(aws_sdk_cloudwatch::Client::new(&sdk))
        .with_invocation_durations(InvocationDurations::new(
            aws_sdk_cloudwatchlogs::Client::new(&sdk),
        ));
    let router = LambdaAliasRouter::new(aws_sdk_lambda::Client::new(&sdk));
    let channels = canary_gate_aws::parse_channel_topics(
        &std::env::var(canary_gate_aws::CHANNEL_TOPICS_ENV).unwrap_or_default(),
    )?;
    let notifier = SnsNotifier::new(aws_sdk_sns::Client::new(&sdk), topic).with_channels(channels);
    let hook = CodeDeployHook::new(aws_sdk_codedeploy::Client::new(&sdk));
    lambda_runtime::run(service_fn(|event: LambdaEvent<PhaseEvent>| {
        let ports = Ports {
            metrics: &metrics,
            router: &router,
            notifier: &notifier,
            hook: &hook,
        };
        handler(ports, event.payload, now())
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use canary_gate_core::ports::PortError;
    use canary_gate_core::sim::{Fleet, MetricNames, Scenario, SimulatedLambda};

    struct NoHook;

    impl LifecycleHook for NoHook {
        async fn report(&self, _d: &str, _h: &str, _ok: bool) -> Result<(), PortError> {
            Ok(())
        }
    }

    fn event(name: &str) -> PhaseEvent {
        let path = format!(
            "{}/../../events/phase/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&path).expect("sample event"))
            .expect("event parses")
    }

    fn sim() -> SimulatedLambda {
        let c = canary_gate_core::config::CanaryConfig::from_json(include_str!(
            "../../../examples/demo-config.json"
        ))
        .expect("config");
        let names = MetricNames {
            latency: "latency".into(),
            errors: "errors".into(),
        };
        SimulatedLambda::new(
            Fleet::new(Scenario::healthy(50.0), names, 2),
            c.target.as_ref().expect("target"),
            0,
            60,
        )
    }

    #[tokio::test]
    async fn sample_events_drive_a_start_and_a_look() {
        let s = sim();
        let ports = || Ports {
            metrics: &s,
            router: &s,
            notifier: &s,
            hook: &NoHook,
        };
        let started = handler(ports(), event("start"), 0).await.expect("start");
        assert_eq!(started.wait_seconds, 60);
        s.run_until(60);
        let look = PhaseEvent::Look {
            execution: started.execution.expect("execution"),
        };
        let out = handler(ports(), look, 60).await.expect("look");
        assert_eq!(out.action.as_str(), "continue");
        assert!(out.execution.expect("state").last_decision.is_some());
    }

    #[tokio::test]
    async fn errors_become_diagnostics_with_stable_types() {
        let s = sim();
        let ports = Ports {
            metrics: &s,
            router: &s,
            notifier: &s,
            hook: &NoHook,
        };
        let mut e = serde_json::to_value(event("start")).expect("json");
        e["config"]["target"]["canary_version"] = "41".into();
        let bad: PhaseEvent = serde_json::from_value(e).expect("event");
        let d = handler(ports, bad, 0).await.expect_err("invalid config");
        assert_eq!(d.error_type, "InvalidConfig");
        assert!(
            d.error_message.contains("target.canary_version"),
            "{}",
            d.error_message
        );
    }
}

#[cfg(test)]
mod sample_events {
    use super::*;

    #[test]
    fn every_sample_event_parses() {
        let dir = format!("{}/../../events/phase", env!("CARGO_MANIFEST_DIR"));
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("events dir") {
            let path = entry.expect("entry").path();
            let text = std::fs::read_to_string(&path).expect("read");
            let parsed: Result<PhaseEvent, _> = serde_json::from_str(&text);
            assert!(parsed.is_ok(), "{}: {:?}", path.display(), parsed.err());
            n += 1;
        }
        assert!(
            n >= 7,
            "sample events for every op the state machine sends, found {n}"
        );
    }
}

/// The state machine's paths as the `phase` function answers them: each path drives the real
/// handler over the simulated fleet exactly as `infra/statemachine/canary.asl.json` would
/// (the `Decide` choice, waits, retries and catches), and records every event the machine
/// sends and every answer it gets back — the serialised `PhaseResponse`, or the error object
/// `{"errorType", "errorMessage"}` that Lambda returns for a `Diagnostic`. The recordings are
/// golden files in `tests/statemachine/paths/`, which `tests/statemachine/test_paths.py`
/// replays through the state machine executed by moto. After an intended change, regenerate
/// them with `UPDATE_GOLDEN=1 cargo test -p phase statemachine_paths`.
#[cfg(test)]
mod statemachine_paths {
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    use canary_gate_core::config::{CanaryConfig, Target};
    use canary_gate_core::notify::Notification;
    use canary_gate_core::policy::Action;
    use canary_gate_core::ports::{Fetched, PortError, TimeRange};
    use canary_gate_core::sim::{Fleet, MetricNames, Scenario, SimulatedLambda, run_ready};
    use serde_json::{Value, json};

    use super::*;

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
    }

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
    }

    /// Metrics from the simulated fleet, or a scripted failure.
    struct Metrics<'a> {
        sim: &'a SimulatedLambda,
        fail: Option<PortError>,
    }

    impl MetricsSource for Metrics<'_> {
        async fn fetch(
            &self,
            config: &CanaryConfig,
            target: &Target,
            range: TimeRange,
        ) -> Result<Fetched, PortError> {
            match &self.fail {
                Some(e) => Err(e.clone()),
                None => self.sim.fetch(config, target, range).await,
            }
        }
    }

    /// CodeDeploy, recording what was reported.
    #[derive(Default)]
    struct Hook(Mutex<Vec<(String, String, bool)>>);

    impl LifecycleHook for Hook {
        async fn report(&self, d: &str, h: &str, ok: bool) -> Result<(), PortError> {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).push((
                d.to_string(),
                h.to_string(),
                ok,
            ));
            Ok(())
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
                let exec: canary_gate_core::step::Execution =
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
    }

    impl Machine {
        /// Invokes the handler as the task `state` does and records the exchange.
        fn invoke(&mut self, state: &str, event: Value) -> Result<PhaseResponse, Diagnostic> {
            let parsed: PhaseEvent = serde_json::from_value(event.clone())
                .unwrap_or_else(|e| panic!("{state} sends an event the function accepts: {e}"));
            let metrics = Metrics {
                sim: &self.sim,
                fail: self.fail.take(),
            };
            let ports = Ports {
                metrics: &metrics,
                router: &self.sim,
                notifier: &self.sim,
                hook: &self.hook,
            };
            let out = run_ready(handler(ports, parsed, self.now))
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
                let back: canary_gate_core::step::Execution = serde_json::from_value(exec.clone())
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
            hook: Hook::default(),
            now: T0,
            steps: Vec::new(),
            fail: None,
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
        let mut resp = match m.invoke("Initialise", start) {
            Ok(r) => r,
            Err(d) => {
                let mut failed = input.clone();
                failed["hook"] = hook;
                failed["error"] = caught(&d);
                let event =
                    json!({"op": "start-failed", "input": failed, "executionId": EXECUTION_ID});
                m.invoke("StartFailed", event)
                    .expect("start-failed answers");
                return "CanaryFailed";
            }
        };
        let mut looks = 0;
        let mut answers = script.answers.iter();
        loop {
            let exec =
                serde_json::to_value(resp.execution.as_ref().expect("execution")).expect("json");
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
                    run_ready(m.sim.set_canary_weight(target, 50.0, &alias.revision_id))
                        .expect("ready")
                        .expect("another writer shifts the alias");
                }
                None => {}
            }
            let look = json!({"op": "look", "execution": exec});
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

    fn golden(rec: &Recording) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/statemachine/paths");
        let path: PathBuf = dir.join(format!("{}.json", rec.name));
        let actual = rec.to_json();
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(&dir).expect("paths dir");
            std::fs::write(&path, &actual).expect("write golden");
        }
        let expected = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (create it with UPDATE_GOLDEN=1)", path.display()));
        if expected != actual {
            let line = expected
                .lines()
                .zip(actual.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
            panic!(
                "{} differs from what the handler answers now (first at line {}); trace: {:?}",
                path.display(),
                line + 1,
                rec.trace()
            );
        }
    }

    /// The demo config with 120 s phases, so a path takes a few looks per phase.
    fn config(edit: impl FnOnce(&mut Value)) -> Value {
        let mut c: Value = serde_json::from_str(include_str!("../../../examples/demo-config.json"))
            .expect("config");
        for phase in c["canary_phases"].as_array_mut().expect("phases") {
            phase["duration_seconds"] = 120.into();
        }
        edit(&mut c);
        c
    }

    fn hook() -> Option<Value> {
        Some(json!({"deploymentId": "d-ABCDEF123", "lifecycleEventHookExecutionId": "hook-1"}))
    }

    fn reported(rec: &Recording) -> Vec<bool> {
        rec.hook
            .0
            .lock()
            .expect("lock")
            .iter()
            .map(|r| r.2)
            .collect()
    }

    fn assert_alias(rec: &Recording, version: &str, split: Option<f64>) {
        let alias = rec.sim.alias();
        assert_eq!(alias.version, version, "{}: alias version", rec.name);
        assert_eq!(
            alias.additional.map(|a| a.1),
            split,
            "{}: alias split",
            rec.name
        );
    }

    #[test]
    fn promote() {
        let rec = record(
            "promote",
            "A healthy canary started by hand (no CodeDeploy hook): 5 % -> 25 % -> 100 %, promoted.",
            config(|_| {}),
            None,
            Scenario::healthy(50.0),
            Script::default(),
        );
        golden(&rec);
        assert_eq!(rec.end, "CanaryPromoted");
        assert_eq!(rec.weights(), [5.0, 25.0, 100.0]);
        assert_eq!(rec.count("Analyse:advance"), 2);
        assert_eq!(
            rec.trace().last().map(String::as_str),
            Some("Promoted:promote")
        );
        assert_alias(&rec, "42", None);
        assert!(reported(&rec).is_empty(), "no hook, no report");
    }

    #[test]
    fn rollback() {
        let rec = record(
            "rollback",
            "Errors x5 on the canary, started by a CodeDeploy hook: a hold, then a rollback; CodeDeploy hears Failed.",
            config(|_| {}),
            hook(),
            Scenario::healthy(50.0).with_regression(1.0, 5.0),
            Script::default(),
        );
        golden(&rec);
        assert_eq!(rec.end, "CanaryRolledBack");
        let trace = rec.trace();
        let hold = trace
            .iter()
            .position(|t| t == "Analyse:hold")
            .expect("a hold");
        assert_eq!(trace[hold + 1], "Analyse:rollback", "{trace:?}");
        assert_eq!(
            trace.last().map(String::as_str),
            Some("RolledBack:rollback")
        );
        assert_alias(&rec, "41", None);
        assert_eq!(reported(&rec), [false]);
        assert!(!rec.notified("rollback").is_empty());
    }

    #[test]
    fn extend() {
        let rec = record(
            "extend",
            "10 requests/s: phases end with too few canary samples and are extended before advancing.",
            config(|_| {}),
            None,
            Scenario::healthy(10.0),
            Script::default(),
        );
        golden(&rec);
        assert!(rec.count("Analyse:extend") >= 2, "{:?}", rec.trace());
        let trace = rec.trace();
        let first = trace
            .iter()
            .position(|t| t == "Analyse:extend")
            .expect("extend");
        let advance = trace
            .iter()
            .position(|t| t == "Analyse:advance")
            .expect("advance");
        assert!(first < advance, "extended before advancing: {trace:?}");
        assert_eq!(rec.end, "CanaryPromoted");
        assert_alias(&rec, "42", None);
    }

    #[test]
    fn error_hold() {
        let rec = record(
            "error-hold",
            "CloudWatch throttles one look (retried), then metrics are unavailable for one look: hold, then the canary goes on and is promoted.",
            config(|_| {}),
            None,
            Scenario::healthy(50.0),
            Script {
                faults: vec![(1, Fault::Throttled), (2, Fault::MetricsDown)],
                ..Script::default()
            },
        );
        golden(&rec);
        let trace = rec.trace();
        assert_eq!(
            trace[..5],
            [
                "Initialise:continue",
                "Analyse!Transient",
                "Analyse:continue",
                "Analyse!MetricsUnavailable",
                "HoldOnError:hold"
            ],
            "{trace:?}"
        );
        assert_eq!(trace[5], "Analyse:advance", "{trace:?}");
        assert_eq!(rec.end, "CanaryPromoted");
        let held = &rec.steps[4]["response"];
        assert_eq!(held["waitSeconds"], 60);
        let summary = held["summary"].as_str().expect("summary");
        assert!(
            summary.contains("not authorized to perform cloudwatch:GetMetricData")
                && !summary.contains("errorType"),
            "the summary quotes the error's message: {summary}"
        );
    }

    #[test]
    fn error_rollback() {
        let rec = record(
            "error-rollback",
            "Metrics unavailable from the second look on: holds until the failures outlast timeout_seconds (300 s), then a rollback.",
            config(|c| c["timeout_seconds"] = 300.into()),
            None,
            Scenario::healthy(50.0),
            Script {
                metrics_down_from: Some(2),
                ..Script::default()
            },
        );
        golden(&rec);
        assert_eq!(rec.count("HoldOnError:hold"), 5, "{:?}", rec.trace());
        assert_eq!(rec.count("HoldOnError:rollback"), 1, "{:?}", rec.trace());
        assert_eq!(rec.end, "CanaryRolledBack");
        let last = rec
            .steps
            .iter()
            .rev()
            .find(|s| s["state"] == "HoldOnError")
            .expect("step");
        assert!(
            last["response"]["summary"]
                .as_str()
                .expect("summary")
                .starts_with("looks have failed for 300 s (limit 300 s): rolled back"),
            "{last}"
        );
        assert_alias(&rec, "41", None);
    }

    fn approval_before_full_traffic(c: &mut Value) {
        c["traffic_advancing"]["requires_approval_before_full_traffic"] = true.into();
    }

    #[test]
    fn approval_apply() {
        let rec = record(
            "approval-apply",
            "Approval before 100 %: the advance waits for an operator, who approves; promoted.",
            config(approval_before_full_traffic),
            None,
            Scenario::healthy(50.0),
            Script {
                answers: vec![Answer::Approve],
                ..Script::default()
            },
        );
        golden(&rec);
        let trace = rec.trace();
        let ask = trace
            .iter()
            .position(|t| t == "AwaitApproval:advance")
            .expect("ask");
        assert_eq!(trace[ask - 1], "Analyse:advance");
        assert_eq!(trace[ask + 1], "ApplyApproved:advance");
        assert_eq!(rec.steps[ask]["response"]["awaitingApproval"], true);
        assert_eq!(rec.weights(), [5.0, 25.0, 100.0]);
        assert_eq!(rec.end, "CanaryPromoted");
        let asked = rec.notified("needs_approval");
        let tokens: Vec<_> = asked
            .iter()
            .filter_map(|n| n.attributes.get("task_token"))
            .collect();
        assert_eq!(tokens, [TASK_TOKEN], "one request carries the token");
        // The pending shift is announced when it happens, not when it is asked for.
        let shifts = rec.notified("phase_complete");
        assert_eq!(shifts.len(), 2, "5 -> 25 % and the approved 25 -> 100 %");
        assert!(
            shifts[1]
                .body
                .starts_with("operator approved: advance (canary at 100%)"),
            "{}",
            shifts[1].body
        );
    }

    #[test]
    fn approval_reject() {
        let rec = record(
            "approval-reject",
            "Approval before 100 %: the operator rejects the first request (the canary holds at 25 %) and approves the next; promoted.",
            config(approval_before_full_traffic),
            None,
            Scenario::healthy(50.0),
            Script {
                answers: vec![Answer::Reject, Answer::Approve],
                ..Script::default()
            },
        );
        golden(&rec);
        let trace = rec.trace();
        let reject = trace
            .iter()
            .position(|t| t == "ApplyRejection:hold")
            .expect("reject");
        assert_eq!(trace[reject - 1], "AwaitApproval:advance");
        assert_eq!(
            trace[reject + 1..reject + 4],
            [
                "Analyse:advance",
                "AwaitApproval:advance",
                "ApplyApproved:advance"
            ],
            "{trace:?}"
        );
        let exec = &rec.steps[reject]["response"]["execution"];
        assert_eq!(exec["run"]["phase"], 2, "rejected: still in phase 2");
        assert_eq!(rec.weights(), [5.0, 25.0, 100.0]);
        assert_eq!(rec.end, "CanaryPromoted");
    }

    #[test]
    fn approval_timeout() {
        let rec = record(
            "approval-timeout",
            "Rollback needs an operator's confirmation and nobody answers within rollback_timeout_seconds (2 s): the safe default rolls back.",
            config(|c| {
                c["auto_rollback"]["requires_ops_confirmation"] = true.into();
                c["auto_rollback"]["rollback_timeout_seconds"] = 2.into();
            }),
            None,
            Scenario::healthy(50.0).with_regression(1.0, 5.0),
            Script {
                answers: vec![Answer::TimesOut],
                ..Script::default()
            },
        );
        golden(&rec);
        let trace = rec.trace();
        let n = trace.len();
        assert_eq!(
            trace[n - 4..],
            [
                "Analyse:rollback",
                "AwaitApproval:rollback",
                "ApplySafeDefault:rollback",
                "RolledBack:rollback"
            ],
            "{trace:?}"
        );
        assert_eq!(rec.steps[n - 4]["response"]["awaitingApproval"], true);
        // Told once, when the rollback happened, not when it was proposed.
        let told = rec.notified("rollback");
        assert_eq!(told.len(), 1, "{told:?}");
        assert!(told[0].body.contains("safe default"), "{}", told[0].body);
        assert_eq!(rec.end, "CanaryRolledBack");
        assert_alias(&rec, "41", None);
    }

    #[test]
    fn conflict() {
        let rec = record(
            "conflict",
            "Someone else shifts the alias to 50 % during phase 2 (canary started by a CodeDeploy hook): AliasConflict, canary-gate stops without writing and reports Failed.",
            config(|_| {}),
            hook(),
            Scenario::healthy(50.0),
            Script {
                faults: vec![(3, Fault::AliasChangedByOthers)],
                ..Script::default()
            },
        );
        golden(&rec);
        let trace = rec.trace();
        assert_eq!(
            trace[trace.len() - 2..],
            ["Analyse!AliasConflict", "Conflict:hold"],
            "{trace:?}"
        );
        assert_eq!(rec.end, "CanaryFailed");
        assert_alias(&rec, "41", Some(50.0));
        assert_eq!(reported(&rec), [false]);
    }

    #[test]
    fn start_failed() {
        let rec = record(
            "start-failed",
            "A CodeDeploy hook starts a canary whose config names the same version twice: InvalidConfig, CodeDeploy hears Failed, the alias is untouched.",
            config(|c| c["target"]["canary_version"] = "41".into()),
            hook(),
            Scenario::healthy(50.0),
            Script::default(),
        );
        golden(&rec);
        assert_eq!(
            rec.trace(),
            ["Initialise!InvalidConfig", "StartFailed:rollback"]
        );
        assert_eq!(rec.end, "CanaryFailed");
        let sent = &rec.steps[1]["event"]["input"];
        assert_eq!(sent["error"]["Error"], "InvalidConfig");
        assert_eq!(sent["hook"], hook().expect("hook"));
        assert_alias(&rec, "41", None);
        assert_eq!(reported(&rec), [false]);
    }
}
