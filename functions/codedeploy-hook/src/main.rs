//! The `codedeploy-hook` Lambda function, for SAM `DeploymentPreference` hooks. One binary
//! serves both lifecycle events; the template deploys it twice, naming the event in
//! `CANARY_GATE_HOOK` (`BeforeAllowTraffic` or `AfterAllowTraffic`), because CodeDeploy's
//! event does not say which hook invoked it.
//!
//! Environment: `CANARY_GATE_HOOK`, `CANARY_GATE_CONFIG` (the canary config as JSON; its
//! `target` comes from the deployment's AppSpec) and `CANARY_GATE_STATE_MACHINE_ARN`.
//! Clients are built once; the logic lives in `canary_gate_core::hooks`. Wrong settings do
//! not stop the function from starting: each invocation then reports Failed to CodeDeploy,
//! so a deployment never waits out the hook's hour. Errors become `Diagnostic`s with stable
//! `error_type`s (`MalformedEvent`, `InvalidAppSpec`, `InvalidConfig`, `CanaryTooLong`, …).

use canary_gate_core::hooks::{
    self, CONFIG_ENV, HOOK_ENV, HookError, HookKind, HookOutcome, HookPorts, HookSettings,
};
use canary_gate_core::ports::{Deployments, Executions, LifecycleHook, TrafficRouter};
use canary_gate_lambda::{Clients, diagnostic, env, now};
use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn, tracing};
use serde_json::Value;

/// The environment variable naming the canary state machine.
const STATE_MACHINE_ENV: &str = "CANARY_GATE_STATE_MACHINE_ARN";

/// Handles one event; `settings` is `Err` when the environment is wrong.
async fn handler<D, E, R, H>(
    ports: HookPorts<'_, D, E, R, H>,
    settings: &Result<HookSettings, String>,
    event: Value,
    now_epoch: i64,
) -> Result<HookOutcome, Diagnostic>
where
    D: Deployments,
    E: Executions,
    R: TrafficRouter,
    H: LifecycleHook,
{
    let result = match settings {
        Ok(s) => hooks::handle(&event, s, now_epoch, ports).await,
        Err(e) => Err(hooks::refuse(&event, HookError::Settings(e.clone()), ports.hook).await),
    };
    match result {
        Ok(out) => {
            tracing::info!(
                hook = out.hook.as_str(),
                deployment_id = out.deployment_id,
                function = out.function,
                alias = out.alias,
                baseline_version = out.baseline_version,
                canary_version = out.canary_version,
                reported = ?out.reported,
                execution = ?out.execution,
                "{}",
                out.summary
            );
            Ok(out)
        }
        Err(f) => {
            tracing::warn!(reported = f.reported, "the hook failed");
            Err(diagnostic(f.error_type(), &f))
        }
    }
}

/// Reads the settings from the environment.
fn settings(var: impl Fn(&str) -> Option<String>) -> Result<HookSettings, String> {
    let kind: HookKind = var(HOOK_ENV)
        .ok_or_else(|| format!("{HOOK_ENV} is not set (BeforeAllowTraffic or AfterAllowTraffic)"))?
        .parse()?;
    Ok(HookSettings {
        kind,
        config: var(CONFIG_ENV),
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let clients = Clients::load().await;
    let machine = env::var(STATE_MACHINE_ENV);
    // Wrong settings do not stop the function: each invocation then reports Failed.
    let settings = match &machine {
        Some(_) => settings(env::var),
        None => Err(format!("{STATE_MACHINE_ENV} is not set")),
    };
    let codedeploy = clients.codedeploy();
    let executions = clients.executions(machine.unwrap_or_default());
    let router = clients.router();
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let ports = HookPorts {
            deployments: &codedeploy,
            executions: &executions,
            router: &router,
            hook: &codedeploy,
        };
        handler(ports, &settings, event.payload, now())
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use canary_gate_core::config::CanaryConfig;
    use canary_gate_core::ports::DeploymentInfo;
    use canary_gate_core::sim::{
        Fleet, MetricNames, Scenario, SimulatedCodeDeploy, SimulatedExecutions, SimulatedLambda,
    };

    const CREATED: i64 = 1_795_000_000;

    fn event(name: &str) -> Value {
        let path = format!(
            "{}/../../events/codedeploy-hook/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&path).expect("sample event"))
            .expect("event parses")
    }

    fn config_without_target() -> String {
        let mut v: Value =
            serde_json::from_str(include_str!("../../../examples/demo-config.json")).expect("json");
        v.as_object_mut().expect("object").remove("target");
        v.to_string()
    }

    struct World {
        cd: SimulatedCodeDeploy,
        sfn: SimulatedExecutions,
        lambda: SimulatedLambda,
    }

    fn world() -> World {
        let cd = SimulatedCodeDeploy::new();
        cd.add(
            "d-EXAMPLE11",
            DeploymentInfo {
                status: Some("InProgress".into()),
                create_epoch: Some(CREATED),
                app_spec: Some(
                    r#"{"version":0.0,"Resources":[{"OrdersApi":{"Type":"AWS::Lambda::Function","Properties":{"Name":"orders-api","Alias":"live","CurrentVersion":"41","TargetVersion":"42"}}}]}"#
                        .into(),
                ),
            },
        );
        let c = CanaryConfig::from_json(include_str!("../../../examples/demo-config.json"))
            .expect("config");
        let names = MetricNames {
            latency: "latency".into(),
            errors: "errors".into(),
        };
        let lambda = SimulatedLambda::new(
            Fleet::new(Scenario::healthy(50.0), names, 1),
            c.target.as_ref().expect("target"),
            CREATED,
            60,
        );
        World {
            cd,
            sfn: SimulatedExecutions::new(),
            lambda,
        }
    }

    impl World {
        fn ports(
            &self,
        ) -> HookPorts<
            '_,
            SimulatedCodeDeploy,
            SimulatedExecutions,
            SimulatedLambda,
            SimulatedCodeDeploy,
        > {
            HookPorts {
                deployments: &self.cd,
                executions: &self.sfn,
                router: &self.lambda,
                hook: &self.cd,
            }
        }
    }

    fn env(hook: &'static str) -> impl Fn(&str) -> Option<String> {
        move |k| match k {
            "CANARY_GATE_HOOK" => Some(hook.to_string()),
            "CANARY_GATE_CONFIG" => Some(config_without_target()),
            _ => None,
        }
    }

    #[tokio::test]
    async fn sample_events_start_the_canary_and_check_after_traffic() {
        let w = world();
        let before = settings(env("BeforeAllowTraffic"));
        let out = handler(
            w.ports(),
            &before,
            event("before-allow-traffic"),
            CREATED + 5,
        )
        .await
        .expect("started");
        assert_eq!(out.reported, None);
        assert_eq!(w.sfn.all().len(), 1);
        assert!(w.cd.reports().is_empty());

        let after = settings(env("AfterAllowTraffic"));
        let out = handler(
            w.ports(),
            &after,
            event("after-allow-traffic"),
            CREATED + 900,
        )
        .await
        .expect("checked");
        assert_eq!(out.reported, Some(false), "the canary is still running");
        let r = w.cd.reports();
        assert_eq!(r.len(), 1);
        assert!(!r[0].succeeded);
    }

    #[tokio::test]
    async fn the_malformed_sample_names_its_missing_field() {
        let w = world();
        let s = settings(env("BeforeAllowTraffic"));
        let d = handler(w.ports(), &s, event("malformed"), CREATED)
            .await
            .expect_err("malformed");
        assert_eq!(d.error_type, "MalformedEvent");
        assert!(
            d.error_message.contains("LifecycleEventHookExecutionId"),
            "{}",
            d.error_message
        );
        assert!(w.sfn.all().is_empty() && w.cd.reports().is_empty());
    }

    #[tokio::test]
    async fn wrong_settings_report_failed_instead_of_hanging() {
        let w = world();
        let s = settings(|k| (k == "CANARY_GATE_HOOK").then(|| "PreTraffic".to_string()));
        assert!(s.as_ref().is_err_and(|e| e.contains("PreTraffic")));
        let d = handler(w.ports(), &s, event("before-allow-traffic"), CREATED)
            .await
            .expect_err("refused");
        assert_eq!(d.error_type, "InvalidSettings");
        assert!(
            d.error_message.contains("reported Failed"),
            "{}",
            d.error_message
        );
        assert!(!w.cd.reports()[0].succeeded);
        assert!(settings(|_| None).is_err_and(|e| e.contains(HOOK_ENV)));
    }

    #[test]
    fn every_sample_event_is_a_json_object() {
        let dir = format!(
            "{}/../../events/codedeploy-hook",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("events dir") {
            let path = entry.expect("entry").path();
            let v: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
            assert!(v.is_object(), "{}", path.display());
            let well_formed = hooks::parse_event(&v).is_ok();
            let name = path
                .file_stem()
                .expect("name")
                .to_string_lossy()
                .to_string();
            assert_eq!(well_formed, name != "malformed", "{}", path.display());
            names.push(name);
        }
        names.sort();
        assert_eq!(
            names,
            ["after-allow-traffic", "before-allow-traffic", "malformed"]
        );
    }
}
