//! Which way a metric gets worse: the direction every test of the metric looks in.

use serde::{Deserialize, Serialize};

/// Which way a metric gets worse.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Larger values are worse (latency, errors).
    #[default]
    HigherIsWorse,
    /// Smaller values are worse (throughput, conversions).
    LowerIsWorse,
    /// A change either way is a regression.
    Either,
}
