//! Two-sample statistical tests with the conventions of `scipy.stats`: the canary is always the
//! first sample, so `Alternative::Greater` means "the canary is stochastically greater than (or
//! has a higher event rate than) the baseline".

pub mod contingency;
pub mod describe;
pub mod kolmogorov;
pub mod ks;
pub mod mann_whitney;
pub mod order;
mod pairwise;
pub mod power;
pub mod shift;
pub mod special;

use serde::{Deserialize, Serialize};

pub use contingency::{FISHER_MAX_TERMS, chi_square_2x2, fisher_exact, two_proportion_z};
pub use describe::{Summary, percentile};
pub use ks::ks_2samp;
pub use mann_whitney::mann_whitney_u;
pub use order::order_statistic_exceeds;
pub use power::{Power, counts_power, samples_power};
pub use shift::{ShiftEstimate, hodges_lehmann, mann_whitney_with_shift};

use crate::error::StatsError;

/// The alternative hypothesis, phrased about the canary (first sample) relative to the baseline.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Alternative {
    /// The two sides differ in either direction.
    #[default]
    TwoSided,
    /// The canary is larger (slower, more errors) than the baseline.
    Greater,
    /// The canary is smaller than the baseline.
    Less,
}

/// How a p-value was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Exact null distribution.
    Exact,
    /// Large-sample normal or chi-square approximation.
    Asymptotic,
    /// Anytime-valid: 1 / the largest e-value so far (sequential tests).
    AnytimeValid,
}

/// Which test produced a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TestKind {
    /// Mann-Whitney U (Wilcoxon rank-sum).
    MannWhitneyU,
    /// Two-sample Kolmogorov-Smirnov.
    KolmogorovSmirnov,
    /// Pearson chi-square on a 2x2 table with Yates' correction.
    ChiSquare,
    /// Pooled two-proportion z-test.
    TwoProportionZ,
    /// Fisher's exact test on a 2x2 table.
    FisherExact,
    /// Per-period comparison of percentile summaries (the period is the unit; each period's
    /// exceedance has its exact distribution-free null probability).
    PeriodPercentiles,
}

/// The standardized effect size a test reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EffectKind {
    /// Cliff's delta = 2U/(n1 n2) - 1, in [-1, 1]; positive when the canary tends to be larger.
    CliffsDelta,
    /// The KS distance D, in [0, 1].
    KsDistance,
    /// Cohen's h = 2 asin sqrt(p_canary) - 2 asin sqrt(p_baseline).
    CohensH,
}

/// A standardized effect size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EffectSize {
    /// What the value measures.
    pub kind: EffectKind,
    /// The value.
    pub value: f64,
}

/// The outcome of one two-sample test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    /// The test that ran.
    pub test: TestKind,
    /// The test statistic as scipy reports it (U of the canary, D, chi-square, z, odds ratio).
    pub statistic: f64,
    /// The p-value for `alternative`.
    pub p_value: f64,
    /// The alternative hypothesis tested.
    pub alternative: Alternative,
    /// Exact or asymptotic p-value.
    pub method: Method,
    /// The standardized effect size, where the test defines one.
    pub effect_size: Option<EffectSize>,
}

/// The largest count an observation may carry: 2^53, the largest integer a double holds
/// exactly (rates and test statistics are computed in doubles). Sums of counts below it
/// cannot wrap a `u64` in any number of looks a run can have.
pub const MAX_COUNT: u64 = 1 << 53;

/// Events out of a total, for count (counter) metrics.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct Counts {
    /// Number of events (errors, throttles, conversions).
    pub events: u64,
    /// Number of trials (invocations, visits).
    pub total: u64,
}

impl Counts {
    /// Builds counts, rejecting `events > total`.
    pub fn new(events: u64, total: u64) -> Result<Self, StatsError> {
        if events > total {
            return Err(StatsError::EventsExceedTotal { events, total });
        }
        Ok(Self { events, total })
    }

    /// The event rate, or `None` when there were no trials.
    pub fn rate(&self) -> Option<f64> {
        (self.total > 0).then(|| self.events as f64 / self.total as f64)
    }
}

/// Checks a sample (non-empty, finite; errors name `side`) and returns it sorted ascending.
pub fn checked_sorted(sample: &[f64], side: &'static str) -> Result<Vec<f64>, StatsError> {
    if sample.is_empty() {
        return Err(StatsError::EmptySample { side });
    }
    if sample.iter().any(|x| !x.is_finite()) {
        return Err(StatsError::NonFinite { side });
    }
    let mut sorted = sample.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    Ok(sorted)
}
