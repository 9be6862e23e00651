//! A simulated Lambda fleet for the local demo and the decision-quality benchmark: requests
//! arrive at a (possibly swinging) rate, the alias weight splits them between the versions,
//! and each version draws latencies (with cold-start tails) and errors from its own profile.
//! Everything random comes from a seeded generator, so a run is reproducible.

mod lambda;
mod services;

pub use lambda::SimulatedLambda;
pub use services::{HookReport, SimulatedCodeDeploy, SimulatedExecutions, lambda_deployment};

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::controller::Interval;
use crate::observe::Observation;
use crate::stats::Counts;

/// How one version behaves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionProfile {
    /// Median latency in ms of a warm invocation.
    pub median_ms: f64,
    /// Log-normal shape parameter of warm latencies.
    pub sigma: f64,
    /// Share of invocations that are cold starts.
    pub cold_start_share: f64,
    /// Extra latency of a cold start in ms (itself log-normal with sigma 0.3).
    pub cold_start_ms: f64,
    /// Probability that an invocation fails.
    pub error_rate: f64,
}

impl VersionProfile {
    /// A typical healthy API function: p50 ≈ 42 ms, p95 ≈ 185 ms, 0.12 % errors, 1 % cold
    /// starts adding ≈ 400 ms.
    pub fn typical() -> Self {
        Self {
            median_ms: 42.0,
            sigma: (185.0_f64 / 42.0).ln() / 1.644_853_626_951_472_2,
            cold_start_share: 0.01,
            cold_start_ms: 400.0,
            error_rate: 0.0012,
        }
    }
}

/// A change of the canary that starts at some time and may grow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Regression {
    /// Seconds after the start when it begins.
    pub starts_at: u64,
    /// Seconds it takes to reach full size (0: at once).
    pub ramp_seconds: u64,
    /// Latency multiplier at full size (1 = none).
    pub latency_factor: f64,
    /// Error-rate multiplier at full size (1 = none).
    pub error_factor: f64,
}

/// The traffic and the two versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// Mean requests per second to the alias.
    pub requests_per_second: f64,
    /// Relative amplitude of a sinusoidal load swing (0 = steady).
    pub load_swing: f64,
    /// Period of the swing in seconds.
    pub swing_period_seconds: f64,
    /// Intervals `[from, to)` in seconds when both versions' error rates are multiplied
    /// (a shared downstream failure), and by how much.
    pub shared_error_bursts: Vec<(u64, u64, f64)>,
    /// Slow drift of both versions' latency: relative change per hour (time of day).
    pub latency_drift_per_hour: f64,
    /// The baseline's behaviour.
    pub baseline: VersionProfile,
    /// The canary's behaviour before any regression.
    pub canary: VersionProfile,
    /// A regression of the canary, if any.
    pub regression: Option<Regression>,
    /// The canary's instances start cold after every weight increase: in the interval after
    /// the increase, this share of its requests carry an extra 200–1000 ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup_share: Option<f64>,
    /// Requests are served by a few instances per version, each with a persistent latency
    /// factor exp(sd · N(0, 1)): `(instances per version, sd)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<(usize, f64)>,
}

impl Scenario {
    /// Both versions alike at the given load.
    pub fn healthy(requests_per_second: f64) -> Self {
        Self {
            requests_per_second,
            load_swing: 0.0,
            swing_period_seconds: 600.0,
            shared_error_bursts: Vec::new(),
            latency_drift_per_hour: 0.0,
            baseline: VersionProfile::typical(),
            canary: VersionProfile::typical(),
            regression: None,
            warmup_share: None,
            instances: None,
        }
    }

    /// The same load with a canary regression from the start.
    pub fn with_regression(mut self, latency_factor: f64, error_factor: f64) -> Self {
        self.regression = Some(Regression {
            starts_at: 0,
            ramp_seconds: 0,
            latency_factor,
            error_factor,
        });
        self
    }
}

/// Names of the metrics the fleet reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricNames {
    /// Histogram metric that receives per-request latencies.
    pub latency: String,
    /// Counter metric that receives errors out of invocations.
    pub errors: String,
}

impl MetricNames {
    /// The config's first histogram metric (latencies) and first counter metric (errors);
    /// `None` when it lacks either.
    pub fn for_config(config: &crate::config::CanaryConfig) -> Option<Self> {
        use crate::config::MetricKind;
        let first = |kind: MetricKind| {
            config
                .metrics
                .iter()
                .find(|m| m.kind == kind)
                .map(|m| m.name.clone())
        };
        Some(Self {
            latency: first(MetricKind::Histogram)?,
            errors: first(MetricKind::Counter)?,
        })
    }
}

/// The simulated fleet.
#[derive(Debug, Clone)]
pub struct Fleet {
    scenario: Scenario,
    names: MetricNames,
    rng: StdRng,
    /// The canary weight of the previous interval (warm-up follows an increase).
    last_weight: f64,
    /// Per version (baseline, canary) the instances' latency factors.
    factors: [Vec<f64>; 2],
    /// A gauge that measures volume: one reading per interval, the version's requests per
    /// second.
    volume: Option<String>,
    /// Gauges with one reading per interval that do not depend on the version (CPU usage):
    /// 40 × exp(0.1 · N(0, 1)) for both.
    readings: Vec<String>,
}

impl Fleet {
    /// A fleet with a seed.
    pub fn new(scenario: Scenario, names: MetricNames, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let factors = match scenario.instances {
            Some((n, sd)) if n > 0 => {
                let mut draw = || (0..n).map(|_| (sd * normal(&mut rng)).exp()).collect();
                [draw(), draw()]
            }
            _ => [Vec::new(), Vec::new()],
        };
        Self {
            scenario,
            names,
            rng,
            last_weight: 0.0,
            factors,
            volume: None,
            readings: Vec::new(),
        }
    }

    /// Also reports a volume gauge (requests per second per version) and gauges of readings
    /// alike for both versions.
    pub fn with_gauges(mut self, volume: Option<String>, readings: Vec<String>) -> Self {
        self.volume = volume;
        self.readings = readings;
        self
    }

    /// Simulates `seconds` of traffic ending at `at` with `canary_weight` percent of the
    /// requests going to the canary.
    pub fn interval(&mut self, at: u64, seconds: u64, canary_weight: f64) -> Interval {
        let s = &self.scenario;
        let mid = at as f64 - seconds as f64 / 2.0;
        let load =
            1.0 + s.load_swing * (2.0 * std::f64::consts::PI * mid / s.swing_period_seconds).sin();
        let mean = (s.requests_per_second * seconds as f64 * load).max(0.0);
        let requests = poisson(&mut self.rng, mean);
        let share = (canary_weight / 100.0).clamp(0.0, 1.0);
        let to_canary = binomial(&mut self.rng, requests, share);
        let burst = s
            .shared_error_bursts
            .iter()
            .filter(|(from, to, _)| (*from..*to).contains(&at))
            .map(|b| b.2)
            .product::<f64>();
        let drift = 1.0 + s.latency_drift_per_hour * mid / 3600.0;
        let (lat_factor, err_factor) = match &s.regression {
            Some(r) if at > r.starts_at => {
                let grown = if r.ramp_seconds == 0 {
                    1.0
                } else {
                    ((at - r.starts_at) as f64 / r.ramp_seconds as f64).min(1.0)
                };
                (
                    1.0 + (r.latency_factor - 1.0) * grown,
                    1.0 + (r.error_factor - 1.0) * grown,
                )
            }
            _ => (1.0, 1.0),
        };
        let baseline = s.baseline.clone();
        let canary = s.canary.clone();
        let warm = if canary_weight > self.last_weight {
            s.warmup_share.unwrap_or(0.0)
        } else {
            0.0
        };
        self.last_weight = canary_weight;
        let b = self.side(&baseline, requests - to_canary, drift, burst, 0, 0.0);
        let c = self.side(
            &canary,
            to_canary,
            drift * lat_factor,
            burst * err_factor,
            1,
            warm,
        );
        let mut interval = Interval {
            at_seconds: at,
            ..Interval::default()
        };
        for (obs, n) in [
            (&mut interval.baseline, requests - to_canary),
            (&mut interval.canary, to_canary),
        ] {
            if n == 0 {
                continue;
            }
            if let Some(v) = &self.volume {
                obs.insert(
                    v.clone(),
                    Observation::Samples(vec![n as f64 / seconds as f64]),
                );
            }
            for g in &self.readings {
                let reading = 40.0 * (0.1 * normal(&mut self.rng)).exp();
                obs.insert(g.clone(), Observation::Samples(vec![reading]));
            }
        }
        for (obs, (lat, errs)) in [(&mut interval.baseline, b), (&mut interval.canary, c)] {
            obs.insert(self.names.latency.clone(), Observation::Samples(lat));
            obs.insert(self.names.errors.clone(), Observation::Counts(errs));
        }
        interval
    }

    fn side(
        &mut self,
        p: &VersionProfile,
        n: u64,
        latency_factor: f64,
        error_factor: f64,
        version: usize,
        cold_share: f64,
    ) -> (Vec<f64>, Counts) {
        let error_rate = (p.error_rate * error_factor).min(1.0);
        let mut latencies = Vec::with_capacity(n as usize);
        let mut errors = 0;
        for _ in 0..n {
            let mut ms = p.median_ms * (p.sigma * normal(&mut self.rng)).exp();
            if self.rng.random::<f64>() < p.cold_start_share {
                ms += p.cold_start_ms * (0.3 * normal(&mut self.rng)).exp();
            }
            let instances = self.factors[version].len();
            if instances > 0 {
                ms *= self.factors[version][self.rng.random_range(0..instances)];
            }
            if cold_share > 0.0 && self.rng.random::<f64>() < cold_share {
                ms += 200.0 + 800.0 * self.rng.random::<f64>();
            }
            latencies.push((ms * latency_factor * 10.0).round() / 10.0);
            if self.rng.random::<f64>() < error_rate {
                errors += 1;
            }
        }
        (
            latencies,
            Counts {
                events: errors,
                total: n,
            },
        )
    }
}

/// Runs a future that completes without waiting on anything, such as the steps of
/// [`crate::step`] over [`SimulatedLambda`]. Returns `None` if the future would wait.
pub fn run_ready<F: Future>(future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

/// Standard normal draw (Box-Muller).
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Poisson draw: exact by inversion for small means, normal approximation above 500.
fn poisson(rng: &mut StdRng, mean: f64) -> u64 {
    if mean <= 0.0 {
        return 0;
    }
    if mean > 500.0 {
        return (mean + mean.sqrt() * normal(rng)).round().max(0.0) as u64;
    }
    let limit = (-mean).exp();
    let mut k = 0;
    let mut prod: f64 = rng.random();
    while prod > limit {
        k += 1;
        prod *= rng.random::<f64>();
    }
    k
}

/// Binomial draw by summing Bernoulli trials (n is at most a few thousand per interval here).
fn binomial(rng: &mut StdRng, n: u64, p: f64) -> u64 {
    if p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return n;
    }
    (0..n).filter(|_| rng.random::<f64>() < p).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> MetricNames {
        MetricNames {
            latency: "latency".into(),
            errors: "errors".into(),
        }
    }

    fn totals(i: &Interval) -> (u64, u64) {
        let t = |side: &crate::observe::SideObservations| side["errors"].size();
        (t(&i.baseline), t(&i.canary))
    }

    #[test]
    fn weight_splits_traffic_and_seed_reproduces() {
        let mut a = Fleet::new(Scenario::healthy(50.0), names(), 7);
        let mut b = Fleet::new(Scenario::healthy(50.0), names(), 7);
        let ia = a.interval(60, 60, 25.0);
        assert_eq!(ia, b.interval(60, 60, 25.0));
        let (base, can) = totals(&ia);
        let share = can as f64 / (base + can) as f64;
        assert!(
            (base + can).abs_diff(3000) < 250,
            "about 3000 requests, got {}",
            base + can
        );
        assert!((share - 0.25).abs() < 0.03, "canary share {share}");
        let (base, can) = totals(&a.interval(120, 60, 100.0));
        assert_eq!(base, 0);
        assert!(can > 2700);
    }

    #[test]
    fn regression_scales_canary_latency_and_errors() {
        let scenario = Scenario::healthy(200.0).with_regression(2.0, 20.0);
        let mut f = Fleet::new(scenario, names(), 3);
        let i = f.interval(60, 60, 50.0);
        let median = |o: &Observation| match o {
            Observation::Samples(s) => {
                let mut s = s.clone();
                s.sort_by(f64::total_cmp);
                s[s.len() / 2]
            }
            _ => panic!("latency is samples"),
        };
        let ratio = median(&i.canary["latency"]) / median(&i.baseline["latency"]);
        assert!((1.8..2.2).contains(&ratio), "median ratio {ratio}");
        let rate = |o: &Observation| match o {
            Observation::Counts(c) => c.rate().unwrap_or(0.0),
            _ => panic!("errors are counts"),
        };
        assert!(rate(&i.canary["errors"]) > 0.01);
    }

    #[test]
    fn a_cold_canary_is_slow_only_in_the_interval_after_an_increase() {
        let scenario = Scenario {
            warmup_share: Some(0.2),
            ..Scenario::healthy(200.0)
        };
        let mut f = Fleet::new(scenario, names(), 5);
        let p95 = |o: &Observation| match o {
            Observation::Samples(s) => {
                let mut s = s.clone();
                s.sort_by(f64::total_cmp);
                s[s.len() * 95 / 100]
            }
            _ => panic!("latency is samples"),
        };
        let first = f.interval(60, 60, 50.0);
        let second = f.interval(120, 60, 50.0);
        let (cold, warm) = (
            p95(&first.canary["latency"]),
            p95(&second.canary["latency"]),
        );
        assert!(cold > 2.0 * warm, "cold p95 {cold}, warm p95 {warm}");
        let third = f.interval(180, 60, 100.0);
        assert!(
            p95(&third.canary["latency"]) > 2.0 * warm,
            "cold again after the increase"
        );
    }

    #[test]
    fn instances_carry_a_persistent_latency_factor() {
        let scenario = Scenario {
            instances: Some((1, 0.5)),
            ..Scenario::healthy(200.0)
        };
        let mut f = Fleet::new(scenario.clone(), names(), 11);
        let median = |o: &Observation| match o {
            Observation::Samples(s) => {
                let mut s = s.clone();
                s.sort_by(f64::total_cmp);
                s[s.len() / 2]
            }
            _ => panic!("latency is samples"),
        };
        // One instance per version: the ratio of medians is the ratio of the two factors,
        // the same in every interval.
        let r1 = {
            let i = f.interval(60, 60, 50.0);
            median(&i.canary["latency"]) / median(&i.baseline["latency"])
        };
        let r2 = {
            let i = f.interval(120, 60, 50.0);
            median(&i.canary["latency"]) / median(&i.baseline["latency"])
        };
        assert!((r1 / r2 - 1.0).abs() < 0.15, "{r1} vs {r2}");
        assert!((r1 - 1.0).abs() > 0.05, "the factors differ: {r1}");
    }
}
