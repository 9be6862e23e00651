//! Anytime-valid (sequential) tests: their false-alarm guarantee holds however often the
//! controller looks, unlike a fixed-horizon test repeated at every look.

pub mod counts;
pub mod quantiles;

pub use counts::CountSequentialTest;
pub use quantiles::QuantileConfidenceSequence;

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
