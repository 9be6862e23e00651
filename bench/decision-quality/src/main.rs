//! Decision-quality benchmark: runs each scenario kind many times through the closed loop
//! (simulated fleet → controller → judge → policy → weights) with each analysis method, and
//! reports per scenario the share rolled back, the share promoted and the time to detect.
//!
//! Usage: `decision-quality [RUNS] [--json] [--only=TEXT] [--config=NAME]` (default 200 runs
//! per scenario, config and method;
//! `--only` keeps the scenarios whose name contains TEXT; the configs are
//! `examples/demo-config.json`, the same with a 5 % live holdback in its 100 % phase, and the
//! seed config `examples/canary-monitor-hook.json`).

use std::time::Instant;

use canary_gate_core::config::{AnalysisMethod, CanaryConfig, MetricKind};
use canary_gate_core::controller::{Outcome, Replay};
use canary_gate_core::observe::summarise_side;
use canary_gate_core::policy::Action;
use canary_gate_core::sim::{Fleet, MetricNames, Regression, Scenario, VersionProfile};

const CONFIGS: [(&str, &str); 2] = [
    ("demo", include_str!("../../../examples/demo-config.json")),
    (
        "seed",
        include_str!("../../../examples/canary-monitor-hook.json"),
    ),
];
const RPS: f64 = 50.0;

struct Kind {
    name: &'static str,
    /// Whether a rollback is the right answer.
    regression: bool,
    scenario: fn() -> Scenario,
}

fn kinds() -> Vec<Kind> {
    vec![
        Kind {
            name: "healthy",
            regression: false,
            scenario: || Scenario::healthy(RPS),
        },
        Kind {
            name: "healthy, load swings + shared error bursts",
            regression: false,
            scenario: || Scenario {
                load_swing: 0.6,
                swing_period_seconds: 480.0,
                shared_error_bursts: vec![(180, 300, 10.0), (600, 720, 5.0)],
                ..Scenario::healthy(RPS)
            },
        },
        Kind {
            name: "healthy, time-of-day drift +20 %/h",
            regression: false,
            scenario: || Scenario {
                latency_drift_per_hour: 0.2,
                ..Scenario::healthy(RPS)
            },
        },
        Kind {
            name: "healthy, low traffic (5 req/s: phases extend)",
            regression: false,
            scenario: || Scenario::healthy(5.0),
        },
        Kind {
            name: "healthy, cold canary after each shift (5 % of its requests +200-1000 ms for a minute)",
            regression: false,
            scenario: || Scenario {
                warmup_share: Some(0.05),
                ..Scenario::healthy(RPS)
            },
        },
        Kind {
            name: "healthy, cold canary after each shift (10 %)",
            regression: false,
            scenario: || Scenario {
                warmup_share: Some(0.10),
                ..Scenario::healthy(RPS)
            },
        },
        Kind {
            name: "healthy, 4 instances per version, latency factor sd 10 %",
            regression: false,
            scenario: || Scenario {
                instances: Some((4, 0.10)),
                ..Scenario::healthy(RPS)
            },
        },
        Kind {
            name: "healthy, 4 instances per version, latency factor sd 20 %",
            regression: false,
            scenario: || Scenario {
                instances: Some((4, 0.20)),
                ..Scenario::healthy(RPS)
            },
        },
        Kind {
            name: "sub-threshold +3 % latency",
            regression: false,
            scenario: || Scenario::healthy(RPS).with_regression(1.03, 1.0),
        },
        Kind {
            name: "severe: p95 x2, errors 0.12 % -> 3.2 %",
            regression: true,
            scenario: || Scenario::healthy(RPS).with_regression(387.0 / 185.0, 3.2 / 0.12),
        },
        Kind {
            name: "latency +25 %",
            regression: true,
            scenario: || Scenario::healthy(RPS).with_regression(1.25, 1.0),
        },
        Kind {
            name: "p99-only tail regression (3 % of canary requests +400 ms, not 1 %)",
            regression: true,
            scenario: || Scenario {
                canary: VersionProfile {
                    cold_start_share: 0.03,
                    ..VersionProfile::typical()
                },
                ..Scenario::healthy(RPS)
            },
        },
        Kind {
            name: "errors x2",
            regression: true,
            scenario: || Scenario::healthy(RPS).with_regression(1.0, 2.0),
        },
        Kind {
            name: "errors x3",
            regression: true,
            scenario: || Scenario::healthy(RPS).with_regression(1.0, 3.0),
        },
        Kind {
            name: "errors x3, low traffic (5 req/s)",
            regression: true,
            scenario: || Scenario::healthy(5.0).with_regression(1.0, 3.0),
        },
        Kind {
            name: "late, growing regression (from 7 min)",
            regression: true,
            scenario: || Scenario {
                regression: Some(Regression {
                    starts_at: 420,
                    ramp_seconds: 240,
                    latency_factor: 1.5,
                    error_factor: 5.0,
                }),
                ..Scenario::healthy(RPS)
            },
        },
    ]
}

struct Tally {
    rolled_back: usize,
    promoted: usize,
    advanced_short: usize,
    detect_seconds: Vec<u64>,
}

fn run_once(
    config: &CanaryConfig,
    scenario: Scenario,
    seed: u64,
    aggregate: bool,
) -> (Option<Outcome>, u64, bool) {
    let Some(names) = MetricNames::for_config(config) else {
        panic!("the config needs a histogram and a counter metric");
    };
    let gauges = |volume: bool| {
        config
            .metrics
            .iter()
            .filter(move |m| m.kind == MetricKind::Gauge && m.per_traffic_share == volume)
            .map(|m| m.name.clone())
    };
    let starts = scenario.regression.as_ref().map_or(0, |r| r.starts_at);
    let mut fleet =
        Fleet::new(scenario, names, seed).with_gauges(gauges(true).next(), gauges(false).collect());
    let mut replay = Replay::new();
    let look = config.analysis.look_interval_seconds;
    let mut at = 0;
    let mut short_advance = false;
    while replay.state.outcome.is_none() && at < config.timeout_seconds + look {
        at += look;
        let weight = replay.state.weight(config);
        let mut interval = fleet.interval(at, look, weight);
        if aggregate {
            let start = (at - look) as i64;
            summarise_side(&mut interval.baseline, config, start);
            summarise_side(&mut interval.canary, config, start);
        }
        if let Some(d) = replay.step(config, &interval)
            && matches!(d.action, Action::Advance | Action::Promote)
            && d.canary_samples < d.min_samples
        {
            short_advance = true;
        }
    }
    (
        replay.state.outcome,
        at.saturating_sub(starts),
        short_advance,
    )
}

fn percentile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    Some(sorted[i])
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs: u64 = args.iter().find_map(|a| a.parse().ok()).unwrap_or(200);
    let json = args.iter().any(|a| a == "--json");
    let mut configs = Vec::new();
    for (name, text) in CONFIGS {
        match CanaryConfig::from_json(text) {
            Ok(c) => configs.push((name, c)),
            Err(e) => {
                eprintln!("{name} config invalid: {e}");
                std::process::exit(1);
            }
        }
    }
    // The demo config with a 5 % live holdback through its 100 % phase.
    if let Some((_, demo)) = configs.iter().find(|(n, _)| *n == "demo") {
        let mut held = demo.clone();
        held.traffic_advancing.live_holdback_percent = 5.0;
        configs.push(("demo, 5 % holdback", held));
    }
    let which = args
        .iter()
        .find_map(|a| a.strip_prefix("--config="))
        .map(str::to_string);
    configs.retain(|(n, _)| which.as_deref().is_none_or(|w| w == *n));
    let methods = [
        (AnalysisMethod::FixedHorizon, false),
        (AnalysisMethod::Sequential, false),
        (AnalysisMethod::FixedHorizon, true),
        (AnalysisMethod::Sequential, true),
    ];
    let only = args
        .iter()
        .find_map(|a| a.strip_prefix("--only="))
        .map(str::to_string);
    let started = Instant::now();
    let mut rows = Vec::new();
    if !json {
        println!("{runs} runs per scenario and method, {RPS} req/s, one look per minute\n");
        println!(
            "| scenario | config | method | rolled back | promoted | median detect (s) | p90 detect (s) | advanced short of data |"
        );
        println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    }
    for kind in kinds() {
        if only.as_deref().is_some_and(|o| !kind.name.contains(o)) {
            continue;
        }
        for ((config_name, base), (method, aggregate)) in configs
            .iter()
            .flat_map(|c| methods.iter().map(move |m| (c, *m)))
        {
            let mut config = base.clone();
            config.analysis.method = method;
            let mut t = Tally {
                rolled_back: 0,
                promoted: 0,
                advanced_short: 0,
                detect_seconds: Vec::new(),
            };
            for seed in 0..runs {
                let (outcome, detect, short) =
                    run_once(&config, (kind.scenario)(), seed, aggregate);
                t.advanced_short += usize::from(short);
                match outcome {
                    Some(Outcome::RolledBack) => {
                        t.rolled_back += 1;
                        t.detect_seconds.push(detect);
                    }
                    Some(Outcome::Promoted) => t.promoted += 1,
                    None => {}
                }
            }
            t.detect_seconds.sort_unstable();
            let share = |n: usize| 100.0 * n as f64 / runs as f64;
            let fmt = |v: Option<u64>| v.map_or("-".to_string(), |s| s.to_string());
            let method_name = match (method, aggregate) {
                (AnalysisMethod::FixedHorizon, false) => "fixed every look, per-request samples",
                (AnalysisMethod::Sequential, false) => "sequential, per-request samples",
                (AnalysisMethod::FixedHorizon, true) => "fixed every look, per-minute summaries",
                (AnalysisMethod::Sequential, true) => "sequential, per-minute summaries",
            };
            if json {
                rows.push(serde_json::json!({
                    "scenario": kind.name, "config": config_name, "regression": kind.regression, "method": method_name,
                    "runs": runs, "rolled_back_pct": share(t.rolled_back), "promoted_pct": share(t.promoted),
                    "median_detect_s": percentile(&t.detect_seconds, 0.5),
                    "p90_detect_s": percentile(&t.detect_seconds, 0.9),
                    "advanced_short_of_data": t.advanced_short,
                }));
            } else {
                println!(
                    "| {} | {} | {} | {:.1} % | {:.1} % | {} | {} | {} |",
                    kind.name,
                    config_name,
                    method_name,
                    share(t.rolled_back),
                    share(t.promoted),
                    fmt(percentile(&t.detect_seconds, 0.5)),
                    fmt(percentile(&t.detect_seconds, 0.9)),
                    t.advanced_short
                );
            }
        }
    }
    if json {
        println!("{}", serde_json::Value::Array(rows));
    } else {
        println!("\nwall time {:.1} s", started.elapsed().as_secs_f64());
    }
}
