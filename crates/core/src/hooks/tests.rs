//! The CodeDeploy hooks over the simulated CodeDeploy, orchestrator and Lambda alias,
//! including a whole deployment: BeforeAllowTraffic starts the canary, the phase steps run
//! it to a promotion and report, AfterAllowTraffic checks the result.

use serde_json::json;

use super::*;
use crate::policy::Action;
use crate::ports::{Claim, DeploymentInfo};
use crate::sim::{
    Fleet, MetricNames, Scenario, SimulatedCodeDeploy, SimulatedExecutions, SimulatedLambda,
    run_ready,
};
use crate::step::ops::{PhaseEvent, Ports, handle as phase};

const APPSPEC: &str = r#"{"version":0.0,"Resources":[{"OrdersApi":{"Type":"AWS::Lambda::Function","Properties":{"Name":"orders-api","Alias":"live","CurrentVersion":"41","TargetVersion":"42"}}}],"Hooks":[{"BeforeAllowTraffic":"CodeDeployHook_canary-gate-before"},{"AfterAllowTraffic":"CodeDeployHook_canary-gate-after"}]}"#;
const CREATED: i64 = 1_800_000_000;

fn ready<T>(f: impl std::future::Future<Output = T>) -> T {
    run_ready(f).expect("in-memory ports never wait")
}

/// The demo config without its target (the AppSpec supplies it).
fn config_text() -> String {
    let mut v: Value =
        serde_json::from_str(include_str!("../../../../examples/demo-config.json")).expect("json");
    v.as_object_mut().expect("object").remove("target");
    v.to_string()
}

fn settings(kind: HookKind) -> HookSettings {
    HookSettings {
        kind,
        config: Some(config_text()),
    }
}

fn codedeploy() -> SimulatedCodeDeploy {
    let cd = SimulatedCodeDeploy::new();
    cd.add(
        "d-1",
        DeploymentInfo {
            status: Some("InProgress".into()),
            create_epoch: Some(CREATED),
            app_spec: Some(APPSPEC.into()),
        },
    );
    cd
}

fn lambda() -> SimulatedLambda {
    let c = CanaryConfig::from_json(include_str!("../../../../examples/demo-config.json"))
        .expect("config");
    let names = MetricNames {
        latency: "latency".into(),
        errors: "errors".into(),
    };
    SimulatedLambda::new(
        Fleet::new(Scenario::healthy(50.0), names, 3),
        c.target.as_ref().expect("target"),
        CREATED,
        60,
    )
}

fn event(hook_execution: &str) -> Value {
    json!({"DeploymentId": "d-1", "LifecycleEventHookExecutionId": hook_execution})
}

struct World {
    cd: SimulatedCodeDeploy,
    sfn: SimulatedExecutions,
    fn_: SimulatedLambda,
}

impl World {
    fn new() -> Self {
        let sfn = SimulatedExecutions::new();
        sfn.set_clock(CREATED + 5);
        Self {
            cd: codedeploy(),
            sfn,
            fn_: lambda(),
        }
    }

    fn ports(
        &self,
    ) -> HookPorts<'_, SimulatedCodeDeploy, SimulatedExecutions, SimulatedLambda, SimulatedCodeDeploy>
    {
        HookPorts {
            deployments: &self.cd,
            executions: &self.sfn,
            router: &self.fn_,
            hook: &self.cd,
        }
    }

    fn run(&self, event: &Value, settings: &HookSettings) -> Result<HookOutcome, Box<HookFailure>> {
        ready(handle(event, settings, CREATED + 5, self.ports())).map_err(Box::new)
    }
}

#[test]
fn before_allow_traffic_starts_one_canary_and_reports_nothing_yet() {
    let w = World::new();
    let out = w
        .run(&event("h-before"), &settings(HookKind::BeforeAllowTraffic))
        .expect("started");
    assert_eq!(out.reported, None, "the state machine reports when it ends");
    assert_eq!(
        (
            out.function.as_str(),
            out.alias.as_str(),
            out.baseline_version.as_str(),
            out.canary_version.as_str()
        ),
        ("orders-api", "live", "41", "42")
    );
    let all = w.sfn.all();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].name, format!("orders-api-live-v42-{CREATED}"));
    assert_eq!(out.execution.as_deref(), Some(all[0].id.as_str()));
    let input = all[0].input.clone().expect("input");
    assert_eq!(input["hook"]["deploymentId"], "d-1");
    assert_eq!(input["hook"]["lifecycleEventHookExecutionId"], "h-before");
    assert_eq!(input["config"]["target"]["baseline_version"], "41");
    assert_eq!(input["config"]["target"]["canary_version"], "42");
    assert!(CanaryConfig::from_json(&input["config"].to_string()).is_ok());
    assert!(w.cd.reports().is_empty());

    // A retried invocation finds the same canary instead of starting a second one.
    let again = w
        .run(&event("h-before"), &settings(HookKind::BeforeAllowTraffic))
        .expect("idempotent");
    assert_eq!(again.execution, out.execution);
    assert_eq!(w.sfn.all().len(), 1);
    assert!(w.cd.reports().is_empty());
}

#[test]
fn malformed_events_name_the_field_and_cannot_report() {
    let w = World::new();
    let s = settings(HookKind::BeforeAllowTraffic);
    for (e, field) in [
        (
            json!({"LifecycleEventHookExecutionId": "h"}),
            "DeploymentId",
        ),
        (
            json!({"DeploymentId": "d-1"}),
            "LifecycleEventHookExecutionId",
        ),
        (
            json!({"DeploymentId": "d-1", "LifecycleEventHookExecutionId": ""}),
            "LifecycleEventHookExecutionId",
        ),
        (
            json!({"DeploymentId": 7, "LifecycleEventHookExecutionId": "h"}),
            "DeploymentId",
        ),
        (json!(["d-1"]), "$"),
    ] {
        let f = w.run(&e, &s).expect_err("malformed");
        assert_eq!(f.error_type(), "MalformedEvent");
        assert!(
            matches!(f.error, HookError::Event { field: got, .. } if got == field),
            "{f}"
        );
        assert!(f.to_string().contains(field), "{f}");
        assert!(!f.reported);
    }
    assert!(w.cd.reports().is_empty() && w.sfn.all().is_empty());
}

fn failed_with(w: &World, s: &HookSettings, hook: &str) -> Box<HookFailure> {
    let f = w.run(&event(hook), s).expect_err("refused");
    assert!(f.reported, "{f}");
    let r = w.cd.reports();
    let last = r.last().expect("a report");
    assert_eq!(
        (last.hook_execution_id.as_str(), last.succeeded),
        (hook, false)
    );
    f
}

#[test]
fn invalid_configs_report_failed_with_the_json_path() {
    let w = World::new();
    let mut v: Value = serde_json::from_str(&config_text()).expect("json");
    v["canary_phases"][1]["traffic_percentage"] = 200.into();
    let s = HookSettings {
        kind: HookKind::BeforeAllowTraffic,
        config: Some(v.to_string()),
    };
    let f = failed_with(&w, &s, "h1");
    assert_eq!(f.error_type(), "InvalidConfig");
    assert!(
        f.to_string()
            .contains("canary_phases[1].traffic_percentage"),
        "{f}"
    );
    assert!(f.to_string().contains("reported Failed"), "{f}");

    let s = HookSettings {
        kind: HookKind::BeforeAllowTraffic,
        config: None,
    };
    let f = failed_with(&w, &s, "h2");
    assert!(f.to_string().contains(CONFIG_ENV), "{f}");

    let mut v: Value = serde_json::from_str(&config_text()).expect("json");
    v["target"] = json!({"canary_version": "40"});
    let s = HookSettings {
        kind: HookKind::BeforeAllowTraffic,
        config: Some(v.to_string()),
    };
    let f = failed_with(&w, &s, "h3");
    assert!(f.to_string().contains("target.canary_version"), "{f}");
    assert!(f.to_string().contains("TargetVersion \"42\""), "{f}");
    assert!(w.sfn.all().is_empty(), "nothing started");
}

#[test]
fn unreadable_or_missing_appspecs_report_failed() {
    let w = World::new();
    let s = settings(HookKind::BeforeAllowTraffic);
    w.cd.add(
        "d-1",
        DeploymentInfo {
            app_spec: Some(APPSPEC.replace(r#","TargetVersion":"42""#, "")),
            create_epoch: Some(CREATED),
            status: None,
        },
    );
    let f = failed_with(&w, &s, "h1");
    assert_eq!(f.error_type(), "InvalidAppSpec");
    assert!(
        f.to_string()
            .contains("Resources[0].OrdersApi.Properties.TargetVersion"),
        "{f}"
    );
    w.cd.add("d-1", DeploymentInfo::default());
    let f = failed_with(&w, &s, "h2");
    assert!(
        f.to_string().contains("revision.appSpecContent.content"),
        "{f}"
    );
    assert!(w.sfn.all().is_empty());
}

#[test]
fn an_unknown_deployment_fails_and_says_the_report_failed_too() {
    let w = World::new();
    let e = json!({"DeploymentId": "d-404", "LifecycleEventHookExecutionId": "h"});
    let f = w
        .run(&e, &settings(HookKind::BeforeAllowTraffic))
        .expect_err("unknown");
    assert_eq!(f.error_type(), "DeploymentUnavailable");
    assert!(!f.reported);
    assert!(
        f.to_string()
            .contains("reporting Failed to CodeDeploy failed too"),
        "{f}"
    );
}

#[test]
fn canaries_that_cannot_fit_the_hour_are_refused() {
    let c = CanaryConfig::from_json(include_str!("../../../../examples/demo-config.json"))
        .expect("config");
    let (longest, detail) = longest_canary_seconds(&c).expect("bounded");
    assert_eq!(longest, 1800 + 60, "{detail}");
    assert!(check_budget(&c, HOOK_BUDGET_SECONDS).is_ok());

    let w = World::new();
    for (path, value, what) in [
        (
            &["timeout_seconds"][..],
            json!(3600),
            "timeout_seconds 3600",
        ),
        (
            &["canary_phases", "2", "duration_seconds"][..],
            json!(1200),
            "2 x phases 1800",
        ),
        (
            &["traffic_advancing", "auto_advance_on_pass"][..],
            json!(false),
            "2 approval wait(s)",
        ),
        (
            &["auto_rollback", "enabled"][..],
            json!(false),
            "without a time limit",
        ),
    ] {
        let mut v: Value = serde_json::from_str(&config_text()).expect("json");
        let mut at = &mut v;
        for p in &path[..path.len() - 1] {
            at = match p.parse::<usize>() {
                Ok(i) => &mut at[i],
                Err(_) => &mut at[*p],
            };
        }
        at[path[path.len() - 1]] = value;
        if what.contains("approval") {
            v["auto_rollback"]["rollback_timeout_seconds"] = 900.into();
        }
        let s = HookSettings {
            kind: HookKind::BeforeAllowTraffic,
            config: Some(v.to_string()),
        };
        let f = failed_with(&w, &s, &format!("h-{what}"));
        assert_eq!(f.error_type(), "CanaryTooLong");
        assert!(f.to_string().contains(what), "{f}");
        assert!(f.to_string().contains("3600 s"), "{f}");
    }
    assert!(w.sfn.all().is_empty());
}

#[test]
fn a_second_canary_on_the_alias_is_refused() {
    let w = World::new();
    let c = CanaryConfig::from_json(include_str!("../../../../examples/demo-config.json"))
        .expect("config");
    ready(w.sfn.start("by-hand", &json!({"config": c, "hook": null}))).expect("start");
    let f = failed_with(&w, &settings(HookKind::BeforeAllowTraffic), "h1");
    assert_eq!(f.error_type(), "CanaryInProgress");
    assert!(f.to_string().contains("by-hand"), "{f}");
    assert_eq!(w.sfn.all().len(), 1);
}

#[test]
fn a_disabled_canary_lets_codedeploy_go_on() {
    let w = World::new();
    let mut v: Value = serde_json::from_str(&config_text()).expect("json");
    v["enabled"] = false.into();
    let s = HookSettings {
        kind: HookKind::BeforeAllowTraffic,
        config: Some(v.to_string()),
    };
    let out = w.run(&event("h1"), &s).expect("ok");
    assert_eq!(out.reported, Some(true));
    assert!(w.sfn.all().is_empty());
    assert!(w.cd.reports()[0].succeeded);
}

/// Runs the canary the way the state machine would: `start`, looks until the end, `finish`.
fn run_state_machine(w: &World, input: &Value) -> bool {
    let ports = || Ports {
        metrics: &w.fn_,
        router: &w.fn_,
        notifier: &w.fn_,
        hook: &w.cd,
    };
    let start = PhaseEvent::Start {
        config: input["config"].clone(),
        hook: serde_json::from_value(input["hook"].clone()).expect("hook"),
        execution_id: None,
    };
    let mut now = CREATED + 10;
    let mut resp = ready(phase(start, now, ports())).expect("start");
    while !resp.action.is_final() {
        now += resp.wait_seconds as i64;
        w.fn_.run_until(now);
        let exec = resp.execution.clone().expect("execution");
        resp = ready(phase(PhaseEvent::Look { execution: exec }, now, ports())).expect("look");
        assert!(now < CREATED + 3600, "the canary ends within the hour");
    }
    let succeeded = resp.action == Action::Promote;
    let exec = resp.execution.expect("execution");
    ready(phase(
        PhaseEvent::Finish {
            execution: exec,
            succeeded,
        },
        now,
        ports(),
    ))
    .expect("finish");
    succeeded
}

#[test]
fn a_whole_deployment_is_gated_and_checked_after_traffic() {
    let w = World::new();
    let before = w
        .run(&event("h-before"), &settings(HookKind::BeforeAllowTraffic))
        .expect("started");
    let id = before.execution.expect("execution");
    let input = w.sfn.all()[0].input.clone().expect("input");
    assert!(
        run_state_machine(&w, &input),
        "a healthy canary is promoted"
    );
    w.sfn
        .finish(&id, RunStatus::Succeeded, Some(json!({})), CREATED + 1_000);
    let r = w.cd.reports();
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0].hook_execution_id.as_str(), r[0].succeeded),
        ("h-before", true)
    );

    let after = w
        .run(&event("h-after"), &settings(HookKind::AfterAllowTraffic))
        .expect("checked");
    assert_eq!(after.reported, Some(true), "{}", after.summary);
    assert_eq!(after.execution.as_deref(), Some(id.as_str()));
    let r = w.cd.reports();
    assert_eq!(
        (r[1].hook_execution_id.as_str(), r[1].succeeded),
        ("h-after", true)
    );
}

#[test]
fn after_allow_traffic_fails_a_split_alias_or_a_failed_canary() {
    let w = World::new();
    let s = settings(HookKind::AfterAllowTraffic);
    // No canary ran for this deployment, and the alias still serves the baseline.
    let out = w.run(&event("h1"), &s).expect("checked");
    assert_eq!(out.reported, Some(false));
    assert!(
        out.summary.contains("not at the target version 42"),
        "{}",
        out.summary
    );

    let t = CanaryConfig::from_json(include_str!("../../../../examples/demo-config.json"))
        .expect("config")
        .target
        .expect("target");
    let rev = w.fn_.alias().revision_id;
    let split = ready(w.fn_.set_canary_weight(&t, 25.0, &rev, &Claim::Unchanged)).expect("split");
    let out = w.run(&event("h2"), &s).expect("checked");
    assert_eq!(out.reported, Some(false));
    assert!(
        out.summary.contains("25% routed to version 42"),
        "{}",
        out.summary
    );

    ready(w.fn_.promote(&t, &split.revision_id, &Claim::Unchanged)).expect("promote");
    let out = w.run(&event("h3"), &s).expect("checked");
    assert_eq!(out.reported, Some(false));
    assert!(
        out.summary.contains("no canary execution"),
        "{}",
        out.summary
    );

    let started = w
        .run(&event("h-before"), &settings(HookKind::BeforeAllowTraffic))
        .expect("started");
    let id = started.execution.expect("id");
    let out = w.run(&event("h4"), &s).expect("checked");
    assert_eq!(out.reported, Some(false), "still running is not succeeded");
    w.sfn.finish(&id, RunStatus::Failed, None, CREATED + 100);
    let out = w.run(&event("h5"), &s).expect("checked");
    assert_eq!(out.reported, Some(false));
    assert!(out.summary.contains("Failed"), "{}", out.summary);
    assert!(w.cd.reports().iter().all(|r| !r.succeeded));
}

#[test]
fn hook_names_parse_from_the_environment() {
    assert_eq!(
        "BeforeAllowTraffic".parse(),
        Ok(HookKind::BeforeAllowTraffic)
    );
    assert_eq!(
        " AfterAllowTraffic".parse(),
        Ok(HookKind::AfterAllowTraffic)
    );
    let e = "PreTraffic"
        .parse::<HookKind>()
        .expect_err("SAM's name is not the event's");
    assert!(e.contains(HOOK_ENV) && e.contains("PreTraffic"), "{e}");
}

#[test]
fn a_function_with_wrong_settings_still_reports_failed() {
    let cd = codedeploy();
    let f = ready(refuse(
        &event("h1"),
        HookError::Settings("CANARY_GATE_STATE_MACHINE_ARN is not set".into()),
        &cd,
    ));
    assert!(f.reported);
    assert_eq!(f.error_type(), "InvalidSettings");
    assert!(!cd.reports()[0].succeeded);
    let f = ready(refuse(&json!({}), HookError::Settings("x".into()), &cd));
    assert!(!f.reported && f.report_error.is_none());
    assert_eq!(cd.reports().len(), 1);
}

#[test]
fn no_canary_starts_for_a_deployment_that_has_ended() {
    let w = World::new();
    w.cd.add(
        "d-1",
        DeploymentInfo {
            status: Some("Stopped".into()),
            create_epoch: Some(CREATED),
            app_spec: Some(APPSPEC.into()),
        },
    );
    let f = failed_with(&w, &settings(HookKind::BeforeAllowTraffic), "h1");
    assert!(f.to_string().contains("is Stopped"), "{f}");
    assert!(w.sfn.all().is_empty());
}
