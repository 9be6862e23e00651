//! The text rendering of a decision: header, per-metric evidence with ✓/⚠/✗, the verdict and
//! what to do next.

use std::fmt::Write as _;

use crate::config::{AnalysisMethod, CanaryConfig, MetricKind};
use crate::format::{fmt_p, fmt_value};
use crate::judge::{MetricReport, Severity, SideStats, Verdict};
use crate::policy::{Action, Decision};
use crate::stats::{Alternative, EffectKind, Method, TestKind};

/// Renders a decision as a plain-text report.
pub fn render_decision_text(config: &CanaryConfig, d: &Decision) -> String {
    crate::format::printable(&decision_text(config, d))
}

fn decision_text(config: &CanaryConfig, d: &Decision) -> String {
    let mut out = String::new();
    let phases = config.canary_phases.len();
    let phase = &config.canary_phases[d.phase.clamp(1, phases) - 1];
    let purpose = phase
        .purpose
        .as_deref()
        .map(|p| format!(" ({p})"))
        .unwrap_or_default();
    let _ = writeln!(out, "Canary phase {} of {phases}{purpose}", d.phase);
    let _ = writeln!(
        out,
        "Traffic: {}% to canary · phase duration {} s",
        fmt_value(d.canary_weight),
        phase.duration_seconds
    );
    let _ = writeln!(
        out,
        "Samples: canary {} vs baseline {} (phase minimum {})",
        group(d.canary_samples),
        group(d.report.baseline_requests()),
        group(d.min_samples)
    );
    if !d.report.baseline_is_live {
        let _ = writeln!(
            out,
            "Note: no live baseline in this phase; compared against the baseline observed earlier."
        );
    }
    let _ = writeln!(out, "\nRESULTS:");
    for m in &d.report.metrics {
        metric_block(&mut out, m);
    }
    let _ = writeln!(out, "\nVERDICT: {} — {}", verdict_word(d.action), d.reason);
    if d.requires_approval {
        let _ = writeln!(out, "Waiting for an operator's approval before acting.");
    }
    let regressions: Vec<&MetricReport> = d
        .report
        .metrics
        .iter()
        .filter(|m| m.verdict == Verdict::Fail)
        .collect();
    if !regressions.is_empty() {
        let _ = writeln!(out, "\nREGRESSION ANALYSIS:");
        for (i, m) in regressions.iter().enumerate() {
            let change = m
                .headline
                .as_ref()
                .map(|h| {
                    format!(
                        "{} {} vs baseline {}{}",
                        h.statistic,
                        fmt_stat(m.kind, h.canary),
                        fmt_stat(m.kind, h.baseline),
                        fmt_relative(h.relative)
                    )
                })
                .unwrap_or_default();
            let sure = m
                .result
                .map(|r| format!("p = {} ({})", fmt_p(r.p_value), m.guarantee))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{}. {}{}: {change}; {sure}",
                i + 1,
                m.name,
                if m.critical { " [critical]" } else { "" }
            );
        }
    }
    let _ = writeln!(out, "\nRECOMMENDATION: {}", recommendation(d, &regressions));
    out
}

fn metric_block(out: &mut String, m: &MetricReport) {
    let mark = match m.verdict {
        Verdict::Pass => "✓",
        Verdict::Warning => "⚠",
        Verdict::Fail => "✗",
        Verdict::NoData | Verdict::Error => "?",
    };
    let critical = if m.critical { " [critical]" } else { "" };
    let test = match m.method {
        AnalysisMethod::Sequential => format!("sequential test; {} for context", test_name(m.test)),
        AnalysisMethod::FixedHorizon => test_name(m.test).to_string(),
    };
    let _ = writeln!(out, "{mark} {} ({test}){critical}", m.name);
    if let (Some(c), Some(b)) = (&m.canary, &m.baseline) {
        let _ = writeln!(out, "    Canary:   {}", side_line(m.kind, c));
        let _ = writeln!(out, "    Baseline: {}", side_line(m.kind, b));
    }
    if let Some(r) = m.result {
        let kind = if r.method == Method::AnytimeValid {
            "anytime-valid p-value"
        } else {
            "p-value"
        };
        let side = match r.alternative {
            Alternative::TwoSided => "two-sided",
            Alternative::Greater => "one-sided, canary higher",
            Alternative::Less => "one-sided, canary lower",
        };
        let mut line = format!("    {kind}: {} ({side})", fmt_p(r.p_value));
        if let Some(e) = r.effect_size {
            let _ = write!(line, " · {}: {:.3}", effect_name(e.kind), e.value);
        }
        if let Some(s) = m.shift {
            let _ = write!(
                line,
                " · shift {} [{}, {}]",
                fmt_value(s.estimate),
                fmt_value(s.lower),
                fmt_value(s.upper)
            );
        }
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "    Test: {}", m.guarantee);
    if let Some(p) = m.power {
        let _ = writeln!(
            out,
            "    Smallest change these samples detect (80% power): {:.1}% of the baseline",
            p.mde_relative * 100.0
        );
    }
    let tier = match (m.verdict, m.severity) {
        (Verdict::Fail, Some(Severity::Rollback)) => "FAIL (rollback tier)",
        (Verdict::Fail, _) => "FAIL",
        (Verdict::Warning, _) => "WARNING",
        (Verdict::Pass, _) => "PASS",
        (Verdict::NoData, _) => "NO DATA",
        (Verdict::Error, _) => "ERROR",
    };
    let _ = writeln!(out, "    {tier} - {}", m.reason);
}

pub(crate) fn side_line(kind: MetricKind, s: &SideStats) -> String {
    match s {
        SideStats::Distribution {
            summary,
            percentiles,
            ..
        } => {
            let mut parts: Vec<String> = percentiles
                .iter()
                .map(|(p, v)| format!("p{} {}", fmt_value(*p), fmt_value(*v)))
                .collect();
            if kind == MetricKind::Gauge || parts.is_empty() {
                parts.insert(0, format!("mean {}", fmt_value(summary.mean)));
            }
            format!("{} (n = {})", parts.join("  "), group(summary.n as u64))
        }
        SideStats::Periods {
            periods,
            n,
            percentiles,
        } => {
            let parts: Vec<String> = percentiles
                .iter()
                .map(|(p, v)| format!("p{} {}", fmt_value(*p), fmt_value(*v)))
                .collect();
            format!(
                "{} (median of {periods} periods; n = {})",
                parts.join("  "),
                group(*n)
            )
        }
        SideStats::Rate {
            events,
            total,
            rate,
        } => {
            format!(
                "{} ({} / {})",
                fmt_percent(*rate),
                group(*events),
                group(*total)
            )
        }
    }
}

pub(crate) fn fmt_stat(kind: MetricKind, v: f64) -> String {
    if kind == MetricKind::Counter {
        fmt_percent(v)
    } else {
        fmt_value(v)
    }
}

pub(crate) fn fmt_percent(rate: f64) -> String {
    format!("{:.2}%", rate * 100.0)
}

pub(crate) fn fmt_relative(r: f64) -> String {
    if r.is_finite() {
        format!(" ({:+.1}%)", r * 100.0)
    } else {
        " (up from zero)".to_string()
    }
}

/// Thousands separators for counts.
pub(crate) fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

pub(crate) fn test_name(t: TestKind) -> &'static str {
    match t {
        TestKind::MannWhitneyU => "Mann-Whitney U",
        TestKind::KolmogorovSmirnov => "Kolmogorov-Smirnov",
        TestKind::ChiSquare => "Chi-Square",
        TestKind::TwoProportionZ => "two-proportion z",
        TestKind::FisherExact => "Fisher exact",
        TestKind::PeriodPercentiles => "per-period percentile comparison",
    }
}

pub(crate) fn effect_name(k: EffectKind) -> &'static str {
    match k {
        EffectKind::CliffsDelta => "Cliff's delta",
        EffectKind::KsDistance => "KS distance",
        EffectKind::CohensH => "Cohen's h",
    }
}

pub(crate) fn verdict_word(a: Action) -> &'static str {
    match a {
        Action::Continue => "CONTINUE",
        Action::Extend => "EXTEND",
        Action::Hold => "HOLD",
        Action::Advance => "ADVANCE",
        Action::Rollback => "ROLLBACK",
        Action::Promote => "PROMOTE",
    }
}

pub(crate) fn recommendation(d: &Decision, regressions: &[&MetricReport]) -> String {
    let worst = regressions
        .first()
        .map(|m| m.name.as_str())
        .unwrap_or("the failing metric");
    match d.action {
        Action::Rollback => format!(
            "roll back to the baseline version; start with {worst}: compare the canary's logs and \
             traces with the baseline's for the same period, then re-run the canary after a fix"
        ),
        Action::Hold => format!(
            "traffic stays at {}% while {worst} is watched; abort to roll back now, or wait for \
             the next look",
            fmt_value(d.canary_weight)
        ),
        Action::Extend => "keep the phase running until it has enough traffic; for a low-traffic \
                           function, lower the phase's min_samples or lengthen its duration"
            .to_string(),
        Action::Continue => "nothing to do: the phase is still soaking".to_string(),
        Action::Advance => format!(
            "shift the canary to {}%{}",
            fmt_value(d.next_weight),
            if d.wait_seconds > 0 {
                format!(" after {} s", d.wait_seconds)
            } else {
                String::new()
            }
        ),
        Action::Promote => "send all traffic to the canary version; keep the baseline version \
                            for a quick rollback during the post-promotion soak"
            .to_string(),
    }
}

/// Renders a whole report as text: the latest decision (when there is one), the timeline of
/// looks and the outcome.
pub fn render_text(r: &super::model::CanaryReport) -> String {
    crate::format::printable(&whole_text(r))
}

fn whole_text(r: &super::model::CanaryReport) -> String {
    let mut out = format!("canary-gate: {} — {}\n\n", r.title, r.verdict());
    if let Some(d) = &r.latest {
        out.push_str(&decision_text(&r.config, d));
    }
    if r.timeline.len() > 1 || r.latest.is_none() {
        let _ = writeln!(out, "\nTIMELINE:");
        for l in &r.timeline {
            let _ = writeln!(
                out,
                "{:>6} s  phase {}  {:>5}%  {:<8} {}",
                l.at_seconds,
                l.phase,
                fmt_value(l.canary_weight),
                l.action.as_str(),
                l.reason
            );
        }
    }
    if let Some(o) = &r.outcome {
        let _ = writeln!(
            out,
            "\nOUTCOME: {} at {} s — {}",
            o.outcome.replace('_', " "),
            o.at_seconds,
            o.reason
        );
    }
    out
}

/// "p95 185 → 387 (+109.2%)" for a metric's deciding change, or empty.
pub(crate) fn change_cell(m: &MetricReport) -> String {
    m.headline
        .as_ref()
        .map(|h| {
            format!(
                "{} {} → {}{}",
                h.statistic,
                fmt_stat(m.kind, h.baseline),
                fmt_stat(m.kind, h.canary),
                fmt_relative(h.relative)
            )
        })
        .unwrap_or_default()
}
