//! The metric observation model: what one version produced for one metric during an interval
//! or an analysis window, and a window pairing both versions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{CanaryConfig, MetricKind};
use crate::error::ConfigError;
use crate::stats::Counts;

/// Observations of one metric on one version: raw samples (histogram and gauge metrics) or
/// events out of a total (counter metrics).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Observation {
    /// One value per request (histogram) or per reading (gauge).
    Samples(Vec<f64>),
    /// Events out of a total.
    Counts(Counts),
}

impl Observation {
    /// How many samples or trials the observation holds.
    pub fn size(&self) -> u64 {
        match self {
            Observation::Samples(s) => s.len() as u64,
            Observation::Counts(c) => c.total,
        }
    }

    /// An empty observation of the shape a metric kind needs.
    pub fn empty(kind: MetricKind) -> Self {
        match kind {
            MetricKind::Counter => Observation::Counts(Counts::default()),
            MetricKind::Histogram | MetricKind::Gauge => Observation::Samples(Vec::new()),
        }
    }

    /// Appends another interval's observation of the same shape; a shape mismatch is an error.
    pub fn extend(&mut self, other: &Observation) -> Result<(), String> {
        match (self, other) {
            (Observation::Samples(a), Observation::Samples(b)) => {
                a.extend_from_slice(b);
                Ok(())
            }
            (Observation::Counts(a), Observation::Counts(b)) => {
                match (a.events.checked_add(b.events), a.total.checked_add(b.total)) {
                    (Some(events), Some(total)) => {
                        a.events = events;
                        a.total = total;
                        Ok(())
                    }
                    _ => Err("the counts' sum overflows".to_string()),
                }
            }
            _ => Err("cannot combine samples with counts".to_string()),
        }
    }
}

/// All metrics of one version, keyed by metric name.
pub type SideObservations = BTreeMap<String, Observation>;

/// One analysis window: both versions' observations for the current phase.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// 1-based phase the window belongs to. Default: 1.
    #[serde(default = "default_phase")]
    pub phase: usize,
    /// Seconds since the phase started. Default: the phase's full duration (an end-of-phase
    /// look).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_seconds: Option<u64>,
    /// The baseline version's observations.
    #[serde(default, deserialize_with = "unique_metrics")]
    pub baseline: SideObservations,
    /// The canary version's observations.
    #[serde(default, deserialize_with = "unique_metrics")]
    pub canary: SideObservations,
}

/// Reads one side's observations, refusing a metric named twice (JSON parsers disagree on
/// which one wins, so neither may).
pub fn unique_metrics<'de, D>(d: D) -> Result<SideObservations, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Side;
    impl<'de> serde::de::Visitor<'de> for Side {
        type Value = SideObservations;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object of observations by metric name")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = SideObservations::new();
            while let Some((name, obs)) = map.next_entry::<String, Observation>()? {
                if out.contains_key(&name) {
                    return Err(serde::de::Error::custom(format!(
                        "metric `{name}` appears twice"
                    )));
                }
                out.insert(name, obs);
            }
            Ok(out)
        }
    }
    d.deserialize_map(Side)
}

/// Refuses anything after the one JSON document.
pub(crate) fn end(
    de: &mut serde_json::Deserializer<serde_json::de::StrRead<'_>>,
) -> Result<(), ConfigError> {
    de.end()
        .map_err(|e| ConfigError::new("$", format!("trailing data after the document: {e}")))
}

fn default_phase() -> usize {
    1
}

impl Window {
    /// Parses a window and checks it against a configuration: the phase exists, every metric
    /// name is one of the config's, each observation has the shape of its metric's kind, and
    /// counts and samples are well-formed. Errors name the JSON path at fault.
    pub fn from_json(text: &str, config: &CanaryConfig) -> Result<Self, ConfigError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let w: Self = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
            ConfigError::new(
                e.path().to_string(),
                shape_hint(&e.into_inner().to_string()),
            )
        })?;
        end(de)?;
        if w.phase == 0 || w.phase > config.canary_phases.len() {
            return Err(ConfigError::new(
                "phase",
                format!(
                    "must be between 1 and {} (the config's phases)",
                    config.canary_phases.len()
                ),
            ));
        }
        check_side("baseline", &w.baseline, config)?;
        check_side("canary", &w.canary, config)?;
        Ok(w)
    }
}

/// Checks one side's observations against the config.
pub fn check_side(
    side: &str,
    obs: &SideObservations,
    config: &CanaryConfig,
) -> Result<(), ConfigError> {
    for (name, o) in obs {
        let at = format!("{side}.{name}");
        let Some(metric) = config.metric(name) else {
            let known: Vec<&str> = config.metrics.iter().map(|m| m.name.as_str()).collect();
            return Err(ConfigError::new(
                at,
                format!("not a metric of the config (known: {})", known.join(", ")),
            ));
        };
        match (metric.kind, o) {
            (MetricKind::Counter, Observation::Counts(c)) => {
                if c.total > crate::stats::MAX_COUNT {
                    return Err(ConfigError::new(
                        format!("{at}.total"),
                        format!(
                            "{} is more than 2^53, the largest count the statistics hold exactly",
                            c.total
                        ),
                    ));
                }
                if c.events > c.total {
                    return Err(ConfigError::new(
                        format!("{at}.events"),
                        format!("events ({}) exceed total ({})", c.events, c.total),
                    ));
                }
            }
            (MetricKind::Histogram | MetricKind::Gauge, Observation::Samples(s)) => {
                if let Some(i) = s.iter().position(|x| !x.is_finite()) {
                    return Err(ConfigError::new(
                        format!("{at}[{i}]"),
                        "must be a finite number",
                    ));
                }
            }
            (MetricKind::Counter, Observation::Samples(_)) => {
                return Err(ConfigError::new(
                    at,
                    "a counter metric takes {\"events\": k, \"total\": n}, not an array",
                ));
            }
            (_, Observation::Counts(_)) => {
                return Err(ConfigError::new(
                    at,
                    "a histogram or gauge metric takes an array of numbers, not counts",
                ));
            }
        }
    }
    Ok(())
}

fn shape_hint(message: &str) -> String {
    if message.contains("did not match any variant") {
        "expected an array of numbers (histogram, gauge) or {\"events\": k, \"total\": n} (counter)"
            .to_string()
    } else {
        message.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> CanaryConfig {
        CanaryConfig::from_json(include_str!("../../../examples/canary-monitor-hook.json"))
            .expect("seed config")
    }

    #[test]
    fn parses_samples_and_counts() {
        let w = Window::from_json(
            r#"{"phase": 2, "baseline": {"response-latency": [1, 2.5], "error-rate": {"events": 1, "total": 10}},
                "canary": {"response-latency": [3]}}"#,
            &config(),
        )
        .expect("valid window");
        assert_eq!(w.phase, 2);
        assert_eq!(w.baseline["response-latency"].size(), 2);
        assert_eq!(
            w.baseline["error-rate"],
            Observation::Counts(Counts {
                events: 1,
                total: 10
            })
        );
    }

    #[test]
    fn rejects_wrong_shapes_with_paths() {
        let c = config();
        let e = Window::from_json(r#"{"canary": {"error-rate": [1, 2]}}"#, &c).unwrap_err();
        assert_eq!(e.path, "canary.error-rate");
        let e = Window::from_json(r#"{"canary": {"latency": [1]}}"#, &c).unwrap_err();
        assert_eq!(e.path, "canary.latency");
        assert!(e.message.contains("response-latency"), "{e}");
        let e = Window::from_json(
            r#"{"baseline": {"error-rate": {"events": 5, "total": 2}}}"#,
            &c,
        )
        .unwrap_err();
        assert_eq!(e.path, "baseline.error-rate.events");
        let e = Window::from_json(r#"{"phase": 4}"#, &c).unwrap_err();
        assert_eq!(e.path, "phase");
        let e = Window::from_json(r#"{"canary": {"error-rate": "x"}}"#, &c).unwrap_err();
        assert_eq!(e.path, "canary.error-rate");
    }

    #[test]
    fn extend_accumulates_and_refuses_mixed_shapes() {
        let mut a = Observation::Counts(Counts {
            events: 1,
            total: 10,
        });
        a.extend(&Observation::Counts(Counts {
            events: 2,
            total: 5,
        }))
        .expect("same shape");
        assert_eq!(
            a,
            Observation::Counts(Counts {
                events: 3,
                total: 15
            })
        );
        assert!(a.extend(&Observation::Samples(vec![1.0])).is_err());
    }
}

#[cfg(test)]
mod strict_inputs {
    //! Windows, timeline lines and configs are read strictly: what two parsers would read
    //! differently is refused with the place named.
    use crate::config::CanaryConfig;
    use crate::controller::Interval;
    use crate::observe::Window;

    fn config() -> CanaryConfig {
        CanaryConfig::from_json(include_str!("../../../examples/demo-config.json")).expect("config")
    }

    #[test]
    fn a_metric_named_twice_is_refused() {
        let c = config();
        let line = r#"{"at_seconds": 60, "baseline": {"errors": {"events": 90, "total": 100}, "errors": {"events": 0, "total": 100}}}"#;
        let e = Interval::from_json(line, &c).expect_err("duplicate");
        assert!(e.message.contains("`errors` appears twice"), "{e:?}");
        assert!(e.path.contains("baseline"), "{e:?}");
        let w = r#"{"phase": 1, "canary": {"errors": {"events": 1, "total": 9}, "errors": {"events": 0, "total": 9}}}"#;
        let e = Window::from_json(w, &c).expect_err("duplicate");
        assert!(e.path.contains("canary"), "{e:?}");
    }

    #[test]
    fn unknown_keys_in_counts_and_trailing_documents_are_refused() {
        let c = config();
        let line =
            r#"{"at_seconds": 60, "canary": {"errors": {"events": 1, "total": 9, "totl": 90}}}"#;
        assert!(Interval::from_json(line, &c).is_err());
        let two = r#"{"at_seconds": 60} {"at_seconds": 120}"#;
        let e = Interval::from_json(two, &c).expect_err("two intervals on a line");
        assert!(e.message.contains("trailing"), "{e:?}");
        let text = include_str!("../../../examples/demo-config.json");
        let e = CanaryConfig::from_json(&format!("{text}\n{{}}")).expect_err("trailing config");
        assert_eq!(e.path, "$");
        assert!(
            CanaryConfig::from_json(&format!("{text}\n\n")).is_ok(),
            "whitespace is fine"
        );
    }
}
