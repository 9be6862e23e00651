//! Metrics that measure volume: a canary at 5 % serves 1/19 of the baseline's requests by
//! design, so throughput-like histograms and gauges are judged per traffic share unless the
//! config says otherwise.

use super::{CanaryConfig, MetricConfig, MetricKind};

impl MetricConfig {
    /// Whether the metric counts volume (its name says throughput, requests, invocations,
    /// rps, …): a histogram or gauge whose values follow the traffic a version receives.
    pub fn measures_volume(&self) -> bool {
        const VOLUME: [&str; 10] = [
            "throughput",
            "requests",
            "invocations",
            "rps",
            "qps",
            "tps",
            "volume",
            "traffic",
            "calls",
            "count",
        ];
        // Words of a per-request quantity: "request-latency" is no volume.
        const PER_UNIT: [&str; 12] = [
            "latency", "duration", "time", "ms", "seconds", "error", "errors", "rate", "ratio",
            "percent", "size", "bytes",
        ];
        let name = self.name.to_ascii_lowercase();
        let words: Vec<&str> = name
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        self.kind != MetricKind::Counter
            && words.iter().any(|w| VOLUME.contains(w))
            && !words.iter().any(|w| PER_UNIT.contains(w))
    }
}

/// Sets `per_traffic_share` on every volume metric whose entry in `raw` (the config as
/// written) does not say; returns a note for each.
pub(super) fn infer_per_traffic_share(
    config: &mut CanaryConfig,
    raw: &serde_json::Value,
) -> Vec<String> {
    let mut notes = Vec::new();
    for (i, m) in config.metrics.iter_mut().enumerate() {
        let explicit = raw["metrics"][i].get("per_traffic_share").is_some();
        if !explicit && m.measures_volume() {
            m.per_traffic_share = true;
            notes.push(format!(
                "metrics[{i}] ({}): judged per traffic share, because its name says it measures volume (set per_traffic_share to choose)",
                m.name
            ));
        }
    }
    notes
}
