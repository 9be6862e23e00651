//! The canary configuration: phases, metrics, statistical thresholds and the rules of the ramp.
//!
//! It accepts the seed `canary-monitor-hook.json` as written and adds what a Lambda canary needs
//! (target, metric sources, directions, absolute thresholds, analysis method). Every default is
//! written next to the field it belongs to; [`CanaryConfig::from_json`] rejects unknown fields
//! and invalid values with the JSON path at fault.

mod direction;
mod raw;
mod source;
mod volume;

pub use direction::Direction;
mod validate;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use source::{
    CloudWatchMetric, LambdaMetric, LambdaStatistic, MetricSource, RatioSource, Routing, Target,
};

use crate::error::ConfigError;
use crate::stats::TestKind;

/// The longest wait the state machine's `Soak` state is sent, and so the longest look
/// interval a config may ask for: a day. Step Functions refuses longer waits with an error
/// no state catches.
pub const MAX_WAIT_SECONDS: u64 = 86_400;

/// A whole canary configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CanaryConfig {
    /// Whether the canary analysis runs at all. Default: `true`.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Wall-clock budget of the whole canary in seconds; a canary still without enough data
    /// when it runs out is rolled back (never promoted). Default: 1800.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    /// The Lambda function, alias and versions. Optional: `analyze` and `backtest` run without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// The traffic ramp. Default: 5 % for 300 s, 25 % for 300 s, 100 % for 300 s, each needing
    /// 100 canary samples.
    #[serde(default = "default_phases")]
    pub canary_phases: Vec<Phase>,
    /// The metrics to compare; at least one.
    pub metrics: Vec<MetricConfig>,
    /// p-value tiers and the minimum effect size.
    #[serde(default)]
    pub statistical_thresholds: StatisticalThresholds,
    /// How looks are analysed (fixed-horizon or sequential tests, look interval).
    #[serde(default)]
    pub analysis: Analysis,
    /// When and how traffic advances.
    #[serde(default)]
    pub traffic_advancing: TrafficAdvancing,
    /// Whether and how a failing canary is rolled back.
    #[serde(default)]
    pub auto_rollback: AutoRollback,
    /// Which channels hear of which events.
    #[serde(default)]
    pub notifications: Notifications,
    /// After a promotion, how long the `soak-check` function keeps comparing the promoted
    /// version with the baseline observed before the promotion, rolling back to the previous
    /// version on a regression. `0` turns the post-promotion soak off; otherwise at least
    /// `analysis.look_interval_seconds` and at most 604800 (7 days). Default: 3600.
    #[serde(default = "default_post_promotion_soak")]
    pub post_promotion_soak_seconds: u64,
    /// Who may answer approvals and run overrides (checked by the stack's approver function,
    /// against the verified identity that started the canary).
    #[serde(default, skip_serializing_if = "Approvals::is_default")]
    pub approvals: Approvals,
}

/// Rules for the people who answer a canary's approvals.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Approvals {
    /// Refuse an approval, a rejection or a promotion by the identity that started the canary
    /// (four eyes). The approver function compares verified AWS identities (the full ARN, so
    /// two sessions of one role with different session names are different people); a canary
    /// started by a CodeDeploy hook has no human starter. Default: `false`.
    #[serde(default)]
    pub forbid_self_approval: bool,
}

impl Approvals {
    fn is_default(&self) -> bool {
        self == &Self::default()
    }
}

/// One step of the traffic ramp.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// 1-based position in the ramp; optional, but when given it must equal the position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<u32>,
    /// Share of the alias's traffic sent to the canary, in percent (0 < w <= 100).
    pub traffic_percentage: f64,
    /// Soak time of the phase in seconds before it may advance. Default: 300.
    #[serde(default = "default_phase_duration")]
    pub duration_seconds: u64,
    /// Canary samples (requests) needed before the phase may advance. Default: 100.
    #[serde(default = "default_min_samples")]
    pub min_samples: u64,
    /// Free text shown in reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
}

/// The shape of a metric's observations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MetricKind {
    /// One value per request (latency); compared as distributions.
    Histogram,
    /// Events out of a total (errors out of invocations); compared as rates.
    Counter,
    /// Periodic readings (CPU, throughput); compared as distributions of readings.
    Gauge,
}

/// One compared metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricConfig {
    /// Name used in windows, timelines and reports; unique within the config.
    pub name: String,
    /// Observation shape.
    #[serde(rename = "type")]
    pub kind: MetricKind,
    /// Percentiles reported and compared for histograms (each 0 < p < 100).
    /// Default: `[50, 95, 99]` for histograms, none for other kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentiles: Option<Vec<f64>>,
    /// Relative increase (percent) that matters in practice; smaller significant increases
    /// pass. Default: none (any significant increase counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_percent_increase: Option<f64>,
    /// Relative decrease (percent) that matters in practice. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_percent_decrease: Option<f64>,
    /// Fixed-horizon test. Default: `mann-whitney-u` for histograms and gauges, `chi-square`
    /// for counters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistical_test: Option<TestKind>,
    /// A failing critical metric holds or rolls back the canary; a non-critical one only warns.
    /// Default: `false`.
    #[serde(default)]
    pub critical: bool,
    /// Which way is worse. Default: from the thresholds given (only a decrease threshold:
    /// `lower-is-worse`; both: `either`; otherwise `higher-is-worse`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// A hard limit on the canary's headline value regardless of the baseline: for histograms
    /// the highest configured percentile, for gauges the mean, for counters the event rate in
    /// percent. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absolute_threshold: Option<f64>,
    /// Compare per unit of traffic share (for throughput-like metrics whose level follows the
    /// share a version receives): each side's values are divided by its traffic share.
    /// Default: `false`.
    #[serde(default)]
    pub per_traffic_share: bool,
    /// Where the metric comes from in AWS. Optional: `analyze` and `backtest` read windows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<MetricSource>,
}

impl MetricConfig {
    /// The fixed-horizon test used for this metric.
    pub fn test(&self) -> TestKind {
        self.statistical_test.unwrap_or(match self.kind {
            MetricKind::Counter => TestKind::ChiSquare,
            MetricKind::Histogram | MetricKind::Gauge => TestKind::MannWhitneyU,
        })
    }

    /// The percentiles compared (empty for counters and gauges without explicit percentiles).
    pub fn percentiles(&self) -> Vec<f64> {
        match (&self.percentiles, self.kind) {
            (Some(p), _) => p.clone(),
            (None, MetricKind::Histogram) => vec![50.0, 95.0, 99.0],
            (None, _) => Vec::new(),
        }
    }

    /// Which way the metric gets worse.
    pub fn direction(&self) -> Direction {
        self.direction.unwrap_or(
            match (
                self.threshold_percent_increase,
                self.threshold_percent_decrease,
            ) {
                (None, Some(_)) => Direction::LowerIsWorse,
                (Some(_), Some(_)) => Direction::Either,
                _ => Direction::HigherIsWorse,
            },
        )
    }

    /// The practical threshold (as a fraction, 0.1 = 10 %) for a change in the given direction.
    pub fn practical_threshold(&self, worse_when_higher: bool) -> f64 {
        let pct = if worse_when_higher {
            self.threshold_percent_increase
        } else {
            self.threshold_percent_decrease
        };
        pct.unwrap_or(0.0) / 100.0
    }
}

/// The p-value tiers: `p >= pass_p_value` passes, `warning_p_value <= p < pass_p_value` warns,
/// `rollback_p_value <= p < warning_p_value` fails (hold), `p < rollback_p_value` fails at the
/// rollback tier. Only changes in the worse direction that clear the practical threshold and
/// the minimum effect size count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatisticalThresholds {
    /// Default: 0.05.
    #[serde(default = "default_pass_p")]
    pub pass_p_value: f64,
    /// Default: 0.01.
    #[serde(default = "default_warning_p")]
    pub warning_p_value: f64,
    /// Default: 0.001.
    #[serde(default = "default_rollback_p")]
    pub rollback_p_value: f64,
    /// Minimum |Cliff's delta| (Mann-Whitney) or KS distance for a distribution metric to fail.
    /// Count metrics are gated by their practical threshold on the rate instead: rare events
    /// give tiny standardized effects (0.12 % -> 0.36 % errors is Cohen's h = 0.05) even when
    /// the rate triples. Default: 0.2.
    #[serde(default = "default_min_effect")]
    pub min_effect_size: f64,
}

impl Default for StatisticalThresholds {
    fn default() -> Self {
        Self {
            pass_p_value: default_pass_p(),
            warning_p_value: default_warning_p(),
            rollback_p_value: default_rollback_p(),
            min_effect_size: default_min_effect(),
        }
    }
}

/// How the judge treats repeated looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AnalysisMethod {
    /// One fixed-horizon test per look on the data of the current phase. Its error rate holds
    /// for a single look only: looking every minute inflates false rollbacks.
    FixedHorizon,
    /// Anytime-valid tests over the whole canary: the false-rollback rate stays at or below
    /// the tier's p-value however often the controller looks.
    #[default]
    Sequential,
}

/// Analysis settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Analysis {
    /// Test family. Default: `sequential`.
    #[serde(default)]
    pub method: AnalysisMethod,
    /// Seconds between looks. Default: 60.
    #[serde(default = "default_look_interval")]
    pub look_interval_seconds: u64,
}

impl Default for Analysis {
    fn default() -> Self {
        Self {
            method: AnalysisMethod::default(),
            look_interval_seconds: default_look_interval(),
        }
    }
}

/// When traffic moves forward.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrafficAdvancing {
    /// Advance without a human when a phase passes. Default: `true`.
    #[serde(default = "default_true")]
    pub auto_advance_on_pass: bool,
    /// Seconds to wait before shifting to 100 %. Default: 0.
    #[serde(default)]
    pub hold_before_full_traffic: u64,
    /// Ask an operator before shifting to 100 %. Default: `false`.
    #[serde(default)]
    pub requires_approval_before_full_traffic: bool,
    /// Percent of the traffic that stays on the baseline through a 100 % phase (a live
    /// holdback, at most 20): the final phase then compares against a baseline running beside
    /// the canary, so level changes within it (load, a shared dependency, time of day) hit
    /// both versions alike. Promotion still moves all traffic. Default: 0 (the final phase
    /// compares against the baseline observed earlier).
    #[serde(default)]
    pub live_holdback_percent: f64,
}

impl Default for TrafficAdvancing {
    fn default() -> Self {
        Self {
            auto_advance_on_pass: true,
            hold_before_full_traffic: 0,
            requires_approval_before_full_traffic: false,
            live_holdback_percent: 0.0,
        }
    }
}

/// Rollback behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoRollback {
    /// Roll back automatically on a failing critical metric; when `false` the canary holds and
    /// asks an operator. Default: `true`.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Wait for an operator's confirmation before rolling back. Default: `false`.
    #[serde(default)]
    pub requires_ops_confirmation: bool,
    /// How long to wait for that confirmation before rolling back anyway (the safe default).
    /// Default: 60.
    #[serde(default = "default_rollback_timeout")]
    pub rollback_timeout_seconds: u64,
}

impl Default for AutoRollback {
    fn default() -> Self {
        Self {
            enabled: true,
            requires_ops_confirmation: false,
            rollback_timeout_seconds: default_rollback_timeout(),
        }
    }
}

/// Channels per event; each entry names a channel (an SNS topic name or ARN once deployed).
/// Defaults: empty lists.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Notifications {
    /// A phase passed and traffic advanced.
    #[serde(default)]
    pub on_phase_complete: Vec<String>,
    /// A metric failed.
    #[serde(default)]
    pub on_regression_detected: Vec<String>,
    /// The canary was rolled back.
    #[serde(default)]
    pub on_rollback: Vec<String>,
    /// The canary was promoted to 100 %.
    #[serde(default)]
    pub on_promoted: Vec<String>,
    /// An operator's approval is needed.
    #[serde(default)]
    pub on_needs_approval: Vec<String>,
}

impl CanaryConfig {
    /// The canary's alias weight during a phase (0-based index): the phase's
    /// `traffic_percentage`, less the live holdback in a 100 % phase.
    pub fn phase_weight(&self, index: usize) -> f64 {
        let Some(p) = self.canary_phases.get(index) else {
            return 100.0;
        };
        let holdback = self.traffic_advancing.live_holdback_percent;
        if p.traffic_percentage >= 100.0 && holdback > 0.0 {
            100.0 - holdback
        } else {
            p.traffic_percentage
        }
    }

    /// Parses and validates a configuration. Errors name the JSON path at fault.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        Self::from_json_with_notes(text).map(|(config, _)| config)
    }

    /// Like [`Self::from_json`], also saying what was decided for the config where it is
    /// silent: a histogram or gauge whose name says it measures volume (throughput,
    /// requests, invocations, …) without `per_traffic_share` is judged per traffic share,
    /// because a canary at 5 % serves 1/19 of the baseline's volume by design.
    pub fn from_json_with_notes(text: &str) -> Result<(Self, Vec<String>), ConfigError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let mut config: Self = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { "$".to_string() } else { path };
            ConfigError::new(path, e.into_inner().to_string())
        })?;
        crate::observe::end(de)?;
        let raw: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
        config.check_written(&raw, "$")?;
        let notes = volume::infer_per_traffic_share(&mut config, &raw);
        validate::validate(&config)?;
        Ok((config, notes))
    }

    /// Validates a configuration that was built or deserialised without [`Self::from_json`]
    /// (a carried state, say). Errors name the JSON path at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate::validate(self)
    }

    /// Checks the document this config was read from for what serde lets through: an array
    /// where the config has an object, and control characters in any text. `path` is the
    /// document's place (`$`, or where a carried state holds it).
    pub fn check_written(&self, raw: &serde_json::Value, path: &str) -> Result<(), ConfigError> {
        let canonical = serde_json::to_value(self).unwrap_or_default();
        raw::check(raw, &canonical, path)
    }

    /// Looks up a metric by name.
    pub fn metric(&self, name: &str) -> Option<&MetricConfig> {
        self.metrics.iter().find(|m| m.name == name)
    }

    /// The JSON Schema of the configuration.
    pub fn json_schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(CanaryConfig)).unwrap_or_default()
    }
}

fn default_true() -> bool {
    true
}
fn default_timeout_seconds() -> u64 {
    1800
}
fn default_phase_duration() -> u64 {
    300
}
fn default_min_samples() -> u64 {
    100
}
fn default_phases() -> Vec<Phase> {
    [5.0, 25.0, 100.0]
        .iter()
        .map(|&w| Phase {
            phase: None,
            traffic_percentage: w,
            duration_seconds: default_phase_duration(),
            min_samples: default_min_samples(),
            purpose: None,
        })
        .collect()
}
fn default_pass_p() -> f64 {
    0.05
}
fn default_warning_p() -> f64 {
    0.01
}
fn default_rollback_p() -> f64 {
    0.001
}
fn default_min_effect() -> f64 {
    0.2
}
fn default_look_interval() -> u64 {
    60
}
fn default_rollback_timeout() -> u64 {
    60
}
fn default_post_promotion_soak() -> u64 {
    3600
}

#[cfg(test)]
mod tests;
