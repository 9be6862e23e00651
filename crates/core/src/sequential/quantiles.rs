//! Time-uniform confidence sequences for quantiles (placeholder until implemented).
use serde::{Deserialize, Serialize};

/// A confidence sequence for the quantiles of one version's distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantileConfidenceSequence {
    /// Type-I error bound.
    pub alpha: f64,
}
