//! `canary-gate test`: one statistical test from the shell, printed as a JSON object with at
//! least `statistic`, `p_value` and (where the test defines one) `effect_size`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use canary_gate_core::stats::{self, Alternative, TestResult};
use clap::ValueEnum;
use serde_json::{Value, json};

use crate::input::{parse_counts, read_samples};

/// The tests the command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TestName {
    /// Mann-Whitney U on two samples (files with one number per line).
    MannWhitneyU,
    /// Two-sample Kolmogorov-Smirnov on two samples.
    KolmogorovSmirnov,
    /// Chi-square with Yates' correction on EVENTS/TOTAL counts.
    ChiSquare,
    /// Pooled two-proportion z-test on EVENTS/TOTAL counts.
    TwoProportionZ,
    /// Fisher's exact test on EVENTS/TOTAL counts.
    FisherExact,
}

/// The `--alternative` values, about the canary relative to the baseline (scipy's meaning for
/// each test, with the canary as scipy's first sample).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AltArg {
    /// The sides differ.
    TwoSided,
    /// Canary greater (scipy's `alternative='greater'`).
    Greater,
    /// Canary less (scipy's `alternative='less'`).
    Less,
}

/// Arguments of `test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Which test.
    #[arg(value_enum)]
    test: TestName,
    /// Baseline: a file with one number per line (distribution tests) or EVENTS/TOTAL (count
    /// tests).
    #[arg(long)]
    baseline: String,
    /// Canary: as --baseline.
    #[arg(long)]
    canary: String,
    /// Alternative hypothesis about the canary (chi-square is two-sided only).
    #[arg(long, value_enum, default_value_t = AltArg::TwoSided)]
    alternative: AltArg,
}

/// Runs the test and prints its JSON.
pub fn run(args: &TestArgs) -> Result<ExitCode> {
    let alt = match args.alternative {
        AltArg::TwoSided => Alternative::TwoSided,
        AltArg::Greater => Alternative::Greater,
        AltArg::Less => Alternative::Less,
    };
    let out = match args.test {
        TestName::MannWhitneyU | TestName::KolmogorovSmirnov => {
            let b = read_samples(&PathBuf::from(&args.baseline)).context("--baseline")?;
            let c = read_samples(&PathBuf::from(&args.canary)).context("--canary")?;
            let (r, shift) = if args.test == TestName::MannWhitneyU {
                stats::mann_whitney_with_shift(&c, &b, alt, 0.95)?
            } else {
                (stats::ks_2samp(&c, &b, alt)?, None)
            };
            let mut v = result_json(&r);
            v["n_canary"] = json!(c.len());
            v["n_baseline"] = json!(b.len());
            if let Some(s) = shift {
                v["hodges_lehmann"] = serde_json::to_value(s)?;
            }
            v
        }
        TestName::ChiSquare | TestName::TwoProportionZ | TestName::FisherExact => {
            let b = parse_counts(&args.baseline).context("--baseline")?;
            let c = parse_counts(&args.canary).context("--canary")?;
            let r = match args.test {
                TestName::ChiSquare => {
                    if alt != Alternative::TwoSided {
                        bail!("--alternative: chi-square is two-sided only");
                    }
                    stats::chi_square_2x2(c, b)?
                }
                TestName::TwoProportionZ => stats::two_proportion_z(c, b, alt)?,
                _ => stats::fisher_exact(c, b, alt)?,
            };
            let mut v = result_json(&r);
            v["canary"] = json!({"events": c.events, "total": c.total, "rate": c.rate()});
            v["baseline"] = json!({"events": b.events, "total": b.total, "rate": b.rate()});
            v
        }
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}

fn result_json(r: &TestResult) -> Value {
    json!({
        "test": r.test,
        "statistic": r.statistic,
        "p_value": r.p_value,
        "effect_size": r.effect_size.map(|e| e.value),
        "effect_size_kind": r.effect_size.map(|e| e.kind),
        "alternative": r.alternative,
        "method": r.method,
    })
}
