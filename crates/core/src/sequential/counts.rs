//! Mixture sequential test on the canary's share of events (placeholder until implemented).
use serde::{Deserialize, Serialize};

/// Sequential test that the canary's event rate is at most `1 + tolerance` times the baseline's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountSequentialTest {
    /// Relative tolerance.
    pub tolerance: f64,
    /// Type-I error bound.
    pub alpha: f64,
}
