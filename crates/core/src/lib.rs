//! canary-gate's pure decision engine: configuration, metric observations, statistical tests,
//! the per-metric judge, the phase policy and the report model.
//!
//! Nothing here performs I/O or knows about AWS: the same functions run inside a Lambda, the
//! CLI, backtests and tests.

pub mod backtest;
pub mod config;
pub mod controller;
pub mod emf;
pub mod error;
pub mod format;
pub mod hooks;
pub mod judge;
pub mod look;
pub mod notify;
pub mod observe;
pub mod operator;
pub mod policy;
pub mod ports;
pub mod record;
pub mod report;
pub mod sequential;
pub mod sim;
pub mod soak;
pub mod state;
pub mod stats;
pub mod step;

pub use error::{ConfigError, StatsError};
