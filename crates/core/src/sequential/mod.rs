//! Anytime-valid (sequential) tests: their false-alarm guarantee holds however often the
//! controller looks, unlike a fixed-horizon test repeated at every look.

pub mod counts;
pub mod quantiles;

pub use counts::CountSequentialTest;
pub use quantiles::QuantileConfidenceSequence;
