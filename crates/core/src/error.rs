//! Error types of the core: configuration problems (with the JSON path at fault) and
//! statistical preconditions.

use thiserror::Error;

/// A statistical test could not run on the data given.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum StatsError {
    /// A sample was empty.
    #[error("the {side} sample is empty")]
    EmptySample {
        /// `canary` or `baseline`.
        side: &'static str,
    },
    /// A sample held NaN or an infinity.
    #[error("the {side} sample contains a non-finite value")]
    NonFinite {
        /// `canary` or `baseline`.
        side: &'static str,
    },
    /// More events than trials.
    #[error("events ({events}) exceed total ({total})")]
    EventsExceedTotal {
        /// Events.
        events: u64,
        /// Total.
        total: u64,
    },
    /// A count test had a side with no trials.
    #[error("the {side} side has no trials (total = 0)")]
    NoTrials {
        /// `canary` or `baseline`.
        side: &'static str,
    },
    /// Fisher's exact test sums the hypergeometric law over every table with the observed
    /// margins; past its limits that takes too long (or the counts pass what a double holds
    /// exactly), and with margins that large the asymptotic tests are accurate.
    #[error(
        "this 2x2 table is too large for Fisher's exact test ({what}); use chi-square or two-proportion-z, which are accurate with margins this large"
    )]
    TooLarge {
        /// Which limit, in words.
        what: String,
    },
    /// The test is undefined for this data (for example a 2x2 table with an empty margin).
    #[error("{0}")]
    Undefined(String),
}

/// A configuration file was rejected. `path` is the JSON path of the offending value
/// (for example `canary_phases[1].traffic_percentage`).
#[derive(Debug, Error, Clone, PartialEq)]
#[error("{path}: {message}")]
pub struct ConfigError {
    /// JSON path of the offending value; `$` for the document itself.
    pub path: String,
    /// What is wrong, in words.
    pub message: String,
}

impl ConfigError {
    /// Builds an error for `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}
