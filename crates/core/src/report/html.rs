//! The HTML rendering: one self-contained page (inline CSS and SVG; no scripts, fonts or
//! network fetches) with the verdict, the per-metric evidence, plots of both versions'
//! distributions and rates, and the timeline of weights and decisions.

use std::fmt::Write as _;

use super::model::CanaryReport;
use super::svg;
use super::text::{change_cell, recommendation, side_line, test_name, verdict_word};
use crate::format::fmt_p;
use crate::judge::{MetricReport, SideStats, Verdict};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#222;max-width:1180px}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:24px 0 8px}.sub{color:#555;margin-bottom:16px}\
.verdict{display:inline-block;padding:4px 10px;border-radius:4px;color:#fff;font-weight:600}\
.bad{background:#c0392b}.good{background:#27ae60}.warn{background:#e6a700}.info{background:#7f8c8d}\
table{border-collapse:collapse;width:100%;font-size:13px}th,td{border:1px solid #ddd;padding:5px 7px;text-align:left;vertical-align:top}\
th{background:#f4f4f4}.plots{display:flex;flex-wrap:wrap;gap:16px}.plot{border:1px solid #ddd;padding:8px}\
.plot h3{font-size:13px;margin:0 0 6px}.note{background:#fff8e1;border-left:4px solid #e6a700;padding:6px 10px}";

/// Renders a report as a self-contained HTML page.
pub fn render_html(r: &CanaryReport) -> String {
    let verdict = r.verdict();
    let class = match verdict.as_str() {
        "ROLLBACK" | "ROLLED BACK" | "HOLD" => "bad",
        "PROMOTE" | "PROMOTED" | "ADVANCE" => "good",
        "EXTEND" => "warn",
        _ => "info",
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>canary-gate: {}</title><style>{STYLE}</style></head><body>",
        esc(&r.title)
    );
    let _ = write!(out, "<h1>canary-gate: {}</h1>", esc(&r.title));
    let _ = write!(
        out,
        "<div class=\"sub\"><span class=\"verdict {class}\" id=\"verdict\">{}</span>",
        esc(&verdict)
    );
    if let Some(o) = &r.outcome {
        let _ = write!(out, " at {} s — {}", o.at_seconds, esc(&o.reason));
    }
    out.push_str("</div>");
    if let Some(d) = &r.latest {
        let _ = write!(
            out,
            "<p>Phase {} of {} · {}% of traffic on the canary · {} canary samples (minimum {}) · {} baseline samples</p>",
            d.phase,
            r.config.canary_phases.len(),
            d.canary_weight,
            d.canary_samples,
            d.min_samples,
            d.report.baseline_requests()
        );
        if !d.report.baseline_is_live {
            out.push_str("<p class=\"note\">No live baseline in this phase: compared with the baseline observed earlier in the canary.</p>");
        }
        out.push_str("<h2>Metrics</h2><table><tr><th></th><th>metric</th><th>test</th><th>baseline</th><th>canary</th><th>change</th><th>p-value</th><th>effect size</th><th>verdict</th></tr>");
        for m in &d.report.metrics {
            metric_row(&mut out, m);
        }
        out.push_str("</table>");
        let _ = write!(
            out,
            "<p><strong>Verdict: {}</strong> — {}</p>",
            verdict_word(d.action),
            esc(&d.reason)
        );
        let failing: Vec<&MetricReport> = d
            .report
            .metrics
            .iter()
            .filter(|m| m.verdict == Verdict::Fail)
            .collect();
        if !failing.is_empty() {
            out.push_str("<h2>Regression analysis</h2><ul>");
            for m in &failing {
                let _ = write!(
                    out,
                    "<li><strong>{}</strong>: {} <em>({})</em></li>",
                    esc(&m.name),
                    esc(&m.reason),
                    esc(&m.guarantee)
                );
            }
            out.push_str("</ul>");
        }
        let _ = write!(
            out,
            "<p><strong>Recommendation:</strong> {}</p>",
            esc(&recommendation(d, &failing))
        );
        out.push_str("<h2>Distributions and rates</h2><div class=\"plots\">");
        for m in &d.report.metrics {
            if let Some(plot) = plot(m) {
                let _ = write!(
                    out,
                    "<div class=\"plot\"><h3>{}</h3>{plot}</div>",
                    esc(&m.name)
                );
            }
        }
        out.push_str("</div>");
    }
    if r.timeline.len() > 1 {
        out.push_str("<h2>Timeline</h2><div class=\"plots\"><div class=\"plot\"><h3>canary weight and decisions</h3>");
        out.push_str(&svg::timeline(&r.timeline));
        out.push_str("</div></div><table><tr><th>time (s)</th><th>phase</th><th>weight</th><th>action</th><th>reason</th></tr>");
        for l in &r.timeline {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}%</td><td>{}</td><td>{}</td></tr>",
                l.at_seconds,
                l.phase,
                l.canary_weight,
                l.action.as_str(),
                esc(&l.reason)
            );
        }
        out.push_str("</table>");
    }
    out.push_str("</body></html>\n");
    out
}

fn plot(m: &MetricReport) -> Option<String> {
    match (&m.baseline, &m.canary) {
        (
            Some(SideStats::Distribution {
                sketch: sb,
                percentiles: pb,
                ..
            }),
            Some(SideStats::Distribution {
                sketch: sc,
                percentiles: pc,
                ..
            }),
        ) if !sb.is_empty() && !sc.is_empty() => {
            let marks: Vec<(f64, f64, f64)> = pb
                .iter()
                .zip(pc)
                .map(|(&(p, b), &(_, c))| (p, b, c))
                .collect();
            Some(svg::ecdf(
                &format!("empirical CDFs of {}", m.name),
                sb,
                sc,
                &marks,
            ))
        }
        (
            Some(SideStats::Rate {
                events: kb,
                total: nb,
                ..
            }),
            Some(SideStats::Rate {
                events: kc,
                total: nc,
                ..
            }),
        ) => Some(svg::rates(
            &format!("event rates of {}", m.name),
            (*kb, *nb),
            (*kc, *nc),
        )),
        _ => None,
    }
}

fn metric_row(out: &mut String, m: &MetricReport) {
    let (mark, class) = match m.verdict {
        Verdict::Pass => ("✓", "good"),
        Verdict::Warning => ("⚠", "warn"),
        Verdict::Fail => ("✗", "bad"),
        Verdict::NoData | Verdict::Error => ("?", "info"),
    };
    let side = |s: &Option<SideStats>| {
        s.as_ref()
            .map_or("no data".to_string(), |s| side_line(m.kind, s))
    };
    let change = change_cell(m);
    let _ = write!(
        out,
        "<tr><td><span class=\"verdict {class}\">{mark}</span></td><td>{}{}</td><td>{}<br><small>{}</small></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        esc(&m.name),
        if m.critical {
            " <small>(critical)</small>"
        } else {
            ""
        },
        test_name(m.test),
        esc(&m.guarantee),
        esc(&side(&m.baseline)),
        esc(&side(&m.canary)),
        esc(&change),
        m.result.map(|r| fmt_p(r.p_value)).unwrap_or_default(),
        m.result
            .and_then(|r| r.effect_size)
            .map(|e| format!("{:.3}", e.value))
            .unwrap_or_default(),
        esc(&m.reason)
    );
}
