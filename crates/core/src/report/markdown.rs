//! The Markdown rendering, for pull requests and tickets.

use std::fmt::Write as _;

use super::model::CanaryReport;
use super::text::{change_cell, recommendation, side_line, test_name, verdict_word};
use crate::config::AnalysisMethod;
use crate::format::fmt_p;
use crate::judge::{MetricReport, Verdict};

fn mark(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "✅",
        Verdict::Warning => "⚠️",
        Verdict::Fail => "❌",
        Verdict::NoData | Verdict::Error => "❔",
    }
}

/// Escapes the characters that would break a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Renders a report as Markdown.
pub fn render_markdown(r: &CanaryReport) -> String {
    crate::format::printable(&markdown(r))
}

fn markdown(r: &CanaryReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## canary-gate: {} — {}\n", r.title, r.verdict());
    if let Some(o) = &r.outcome {
        let _ = writeln!(
            out,
            "**Outcome:** {} at {} s — {}\n",
            o.outcome.replace('_', " "),
            o.at_seconds,
            cell(&o.reason)
        );
    }
    if let Some(d) = &r.latest {
        let phases = r.config.canary_phases.len();
        let _ = writeln!(
            out,
            "**Phase {} of {phases}** · {}% of traffic on the canary · {} canary samples (minimum {}) · {} baseline samples\n",
            d.phase,
            d.canary_weight,
            d.canary_samples,
            d.min_samples,
            d.report.baseline_requests()
        );
        if !d.report.baseline_is_live {
            let _ = writeln!(
                out,
                "> No live baseline in this phase: compared with the baseline observed earlier.\n"
            );
        }
        let _ = writeln!(
            out,
            "| | metric | test | baseline | canary | change | p-value | effect size | verdict |"
        );
        let _ = writeln!(
            out,
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
        );
        for m in &d.report.metrics {
            metric_row(&mut out, m);
        }
        let _ = writeln!(
            out,
            "\n**Verdict: {}** — {}\n",
            verdict_word(d.action),
            cell(&d.reason)
        );
        let failing: Vec<&MetricReport> = d
            .report
            .metrics
            .iter()
            .filter(|m| m.verdict == Verdict::Fail)
            .collect();
        if !failing.is_empty() {
            let _ = writeln!(out, "### Regression analysis\n");
            for m in &failing {
                let _ = writeln!(
                    out,
                    "- **{}**: {} ({})",
                    m.name,
                    cell(&m.reason),
                    cell(&m.guarantee)
                );
            }
            let _ = writeln!(out);
        }
        let _ = writeln!(out, "**Recommendation:** {}\n", recommendation(d, &failing));
    }
    if r.timeline.len() > 1 || r.latest.is_none() {
        let _ = writeln!(out, "### Timeline\n");
        let _ = writeln!(
            out,
            "| time (s) | phase | canary weight | action | reason |"
        );
        let _ = writeln!(out, "| --- | --- | --- | --- | --- |");
        for l in &r.timeline {
            let _ = writeln!(
                out,
                "| {} | {} | {}% | {} | {} |",
                l.at_seconds,
                l.phase,
                l.canary_weight,
                l.action.as_str(),
                cell(&l.reason)
            );
        }
    }
    out
}

fn metric_row(out: &mut String, m: &MetricReport) {
    let test = match m.method {
        AnalysisMethod::Sequential => format!("sequential ({} for context)", test_name(m.test)),
        AnalysisMethod::FixedHorizon => test_name(m.test).to_string(),
    };
    let side = |s: &Option<crate::judge::SideStats>| {
        s.as_ref()
            .map_or("no data".to_string(), |s| side_line(m.kind, s))
    };
    let change = change_cell(m);
    let p = m.result.map(|r| fmt_p(r.p_value)).unwrap_or_default();
    let effect = m
        .result
        .and_then(|r| r.effect_size)
        .map(|e| format!("{:.3}", e.value))
        .unwrap_or_default();
    let critical = if m.critical { " (critical)" } else { "" };
    let _ = writeln!(
        out,
        "| {} | {}{critical} | {} | {} | {} | {} | {} | {} | {} |",
        mark(m.verdict),
        cell(&m.name),
        test,
        cell(&side(&m.baseline)),
        cell(&side(&m.canary)),
        cell(&change),
        p,
        effect,
        cell(&m.reason)
    );
}
