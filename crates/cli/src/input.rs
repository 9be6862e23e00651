//! Reading the CLI's inputs: config files, sample files (one number per line) and
//! `EVENTS/TOTAL` count arguments, with errors that say where the bad input is.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use canary_gate_core::config::CanaryConfig;
use canary_gate_core::stats::Counts;

/// Reads a file to a string, naming it on failure.
pub fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Loads and validates a config file.
pub fn load_config(path: &Path) -> Result<CanaryConfig> {
    let text = read_text(path)?;
    CanaryConfig::from_json(&text).with_context(|| format!("invalid config {}", path.display()))
}

/// The options that override the config's target, shared by the commands that act on one
/// function (`start`, `record`).
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// The function (overrides the config's `target.function_name`).
    #[arg(long)]
    pub function: Option<String>,
    /// The alias callers invoke (overrides `target.alias`).
    #[arg(long)]
    pub alias: Option<String>,
    /// The baseline version (overrides `target.baseline_version`).
    #[arg(long)]
    pub baseline_version: Option<String>,
    /// The canary version (overrides `target.canary_version`).
    #[arg(long)]
    pub canary_version: Option<String>,
}

/// Loads and validates a config file after setting the target fields given on the command
/// line, so that the validation sees, and its errors name, the target as the command will
/// use it.
pub fn load_config_with_target(path: &Path, given: &TargetArgs) -> Result<CanaryConfig> {
    let text = read_text(path)?;
    let mut value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("invalid config {}: not JSON", path.display()))?;
    let overrides = [
        ("function_name", &given.function),
        ("alias", &given.alias),
        ("baseline_version", &given.baseline_version),
        ("canary_version", &given.canary_version),
    ];
    if overrides.iter().any(|(_, v)| v.is_some()) {
        let target = value
            .as_object_mut()
            .ok_or_else(|| anyhow!("invalid config {}: not a JSON object", path.display()))?
            .entry("target")
            .or_insert_with(|| serde_json::json!({}));
        for (field, given) in overrides {
            if let (Some(v), Some(t)) = (given, target.as_object_mut()) {
                t.insert(field.to_string(), v.clone().into());
            }
        }
    }
    CanaryConfig::from_json(&value.to_string()).with_context(|| {
        format!(
            "invalid config {} (with the command line's target options applied)",
            path.display()
        )
    })
}

/// Reads one number per line; blank lines and lines starting with `#` are skipped.
pub fn read_samples(path: &Path) -> Result<Vec<f64>> {
    let text = read_text(path)?;
    parse_samples(&text).with_context(|| format!("in {}", path.display()))
}

fn parse_samples(text: &str) -> Result<Vec<f64>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let v: f64 = line
            .parse()
            .with_context(|| format!("line {}: {line:?} is not a number", i + 1))?;
        if !v.is_finite() {
            bail!("line {}: {line:?} is not a finite number", i + 1);
        }
        out.push(v);
    }
    if out.is_empty() {
        bail!("no numbers found (expected one number per line)");
    }
    Ok(out)
}

/// The highest request rate the simulator takes: every request is drawn, so 10⁴ per second
/// is already 6·10⁵ samples per version and look.
pub const MAX_RPS: f64 = 10_000.0;

/// Parses a `--rps` value: a finite rate in (0, [`MAX_RPS`]].
pub fn parse_rps(s: &str) -> std::result::Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if v.is_finite() && v > 0.0 && v <= MAX_RPS {
        Ok(v)
    } else {
        Err(format!(
            "{s:?} is not a request rate in (0, {MAX_RPS}] per second"
        ))
    }
}

/// Parses `EVENTS/TOTAL`, e.g. `91/2845`.
pub fn parse_counts(s: &str) -> Result<Counts> {
    let (e, t) = s
        .split_once('/')
        .with_context(|| format!("{s:?} is not EVENTS/TOTAL (e.g. 91/2845)"))?;
    let events: u64 = e
        .trim()
        .parse()
        .with_context(|| format!("{s:?}: events {e:?} is not a whole number"))?;
    let total: u64 = t
        .trim()
        .parse()
        .with_context(|| format!("{s:?}: total {t:?} is not a whole number"))?;
    Counts::new(events, total).with_context(|| format!("{s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_rates_are_finite_positive_and_bounded() {
        assert_eq!(parse_rps("50"), Ok(50.0));
        assert_eq!(parse_rps("0.5"), Ok(0.5));
        for bad in ["nan", "inf", "-inf", "0", "-5", "1e9", "fast"] {
            let e = parse_rps(bad).expect_err(bad);
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn samples_skip_blanks_and_comments_and_name_bad_lines() {
        assert_eq!(
            parse_samples("# ms\n1\n\n2.5\n").expect("valid"),
            vec![1.0, 2.5]
        );
        let e = parse_samples("1\nx\n").expect_err("bad line");
        assert!(format!("{e:#}").contains("line 2"), "{e:#}");
        assert!(parse_samples("\n").is_err());
        assert!(parse_samples("nan\n").is_err());
    }

    #[test]
    fn counts_parse_and_reject_nonsense() {
        assert_eq!(
            parse_counts("91/2845").expect("valid"),
            Counts {
                events: 91,
                total: 2845
            }
        );
        assert!(parse_counts("91").is_err());
        assert!(parse_counts("5/2").is_err());
        assert!(parse_counts("a/2").is_err());
    }
}
