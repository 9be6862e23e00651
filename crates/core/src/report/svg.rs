//! Inline SVG plots for the HTML report, drawn directly (no scripts, fonts or fetches):
//! empirical CDFs with percentile markers, event rates with 95 % intervals, and the
//! timeline of the canary's weight and decisions.

use std::fmt::Write as _;

use crate::backtest::LookRecord;
use crate::format::fmt_value;
use crate::policy::Action;

const W: f64 = 560.0;
const H: f64 = 260.0;
const PAD_L: f64 = 56.0;
const PAD_R: f64 = 16.0;
const PAD_T: f64 = 16.0;
const PAD_B: f64 = 40.0;
pub(crate) const BASELINE_COLOR: &str = "#4062bb";
pub(crate) const CANARY_COLOR: &str = "#e0603a";

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn open(out: &mut String, label: &str) {
    let _ = write!(
        out,
        r#"<svg width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" aria-label="{}">"#,
        escape(label)
    );
    let _ = write!(
        out,
        r##"<rect x="0" y="0" width="{W}" height="{H}" fill="#ffffff"/>"##
    );
}

fn axes(out: &mut String, x_label: &str, y_label: &str) {
    let (x0, y0, x1, y1) = (PAD_L, H - PAD_B, W - PAD_R, PAD_T);
    let _ = write!(
        out,
        r##"<path d="M{x0} {y1} L{x0} {y0} L{x1} {y0}" stroke="#333" fill="none"/>"##
    );
    let _ = write!(
        out,
        r##"<text x="{}" y="{}" font-size="12" text-anchor="middle" fill="#333">{}</text>"##,
        (x0 + x1) / 2.0,
        H - 8.0,
        escape(x_label)
    );
    let _ = write!(
        out,
        r##"<text x="14" y="{}" font-size="12" text-anchor="middle" fill="#333" transform="rotate(-90 14 {})">{}</text>"##,
        (y0 + y1) / 2.0,
        (y0 + y1) / 2.0,
        escape(y_label)
    );
}

fn tick_x(out: &mut String, x: f64, label: &str) {
    let y0 = H - PAD_B;
    let _ = write!(
        out,
        r##"<path d="M{x:.1} {y0} L{x:.1} {}" stroke="#333"/>"##,
        y0 + 4.0
    );
    let _ = write!(
        out,
        r##"<text x="{x:.1}" y="{}" font-size="10" text-anchor="middle" fill="#333">{}</text>"##,
        y0 + 15.0,
        escape(label)
    );
}

fn tick_y(out: &mut String, y: f64, label: &str) {
    let _ = write!(
        out,
        r##"<path d="M{} {y:.1} L{PAD_L} {y:.1}" stroke="#333"/>"##,
        PAD_L - 4.0
    );
    let _ = write!(
        out,
        r##"<text x="{}" y="{:.1}" font-size="10" text-anchor="end" fill="#333">{}</text>"##,
        PAD_L - 6.0,
        y + 3.0,
        escape(label)
    );
}

/// Empirical CDFs of both sides from their 0..100 percentile sketches, with dashed markers at
/// the compared percentiles.
pub fn ecdf(label: &str, baseline: &[f64], canary: &[f64], marks: &[(f64, f64, f64)]) -> String {
    let mut out = String::new();
    open(&mut out, label);
    // Up to the 99th percentile: the far tail would squeeze everything else into a corner.
    let top = |s: &[f64]| s.get(99).copied().unwrap_or(f64::NAN);
    let lo = baseline
        .first()
        .copied()
        .unwrap_or(0.0)
        .min(canary.first().copied().unwrap_or(0.0));
    let hi = top(baseline).max(top(canary)) * 1.05;
    let span = if hi > lo { hi - lo } else { 1.0 };
    let x = |v: f64| PAD_L + (v.clamp(lo, hi) - lo) / span * (W - PAD_L - PAD_R);
    let y = |q: f64| (H - PAD_B) - q * (H - PAD_B - PAD_T);
    axes(&mut out, "value", "cumulative share");
    for i in 0..=4 {
        let v = lo + span * f64::from(i) / 4.0;
        tick_x(&mut out, x(v), &fmt_value(v));
        let q = f64::from(i) / 4.0;
        tick_y(&mut out, y(q), &format!("{q:.2}"));
    }
    for (sketch, color, name) in [
        (baseline, BASELINE_COLOR, "baseline"),
        (canary, CANARY_COLOR, "canary"),
    ] {
        let points: Vec<String> = sketch
            .iter()
            .enumerate()
            .take(100)
            .map(|(k, v)| format!("{:.1},{:.1}", x(*v), y(k as f64 / 100.0)))
            .collect();
        let _ = write!(
            out,
            r#"<polyline class="{name}" points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
            points.join(" ")
        );
    }
    for &(p, vb, vc) in marks {
        for (v, color) in [(vb, BASELINE_COLOR), (vc, CANARY_COLOR)] {
            let _ = write!(
                out,
                r#"<path d="M{0:.1} {1:.1} L{0:.1} {2:.1}" stroke="{color}" stroke-dasharray="4 3"/>"#,
                x(v),
                y(p / 100.0),
                H - PAD_B
            );
        }
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" font-size="10" fill="#333">p{}</text>"##,
            x(vc) + 3.0,
            y(p / 100.0) - 3.0,
            fmt_value(p)
        );
    }
    legend(&mut out);
    out.push_str("</svg>");
    out
}

fn legend(out: &mut String) {
    for (i, (name, color)) in [("baseline", BASELINE_COLOR), ("canary", CANARY_COLOR)]
        .iter()
        .enumerate()
    {
        let yy = PAD_T + 8.0 + i as f64 * 16.0;
        let _ = write!(
            out,
            r#"<rect x="{}" y="{}" width="12" height="4" fill="{color}"/>"#,
            W - 110.0,
            yy - 4.0
        );
        let _ = write!(
            out,
            r##"<text x="{}" y="{yy}" font-size="11" fill="#333">{name}</text>"##,
            W - 92.0
        );
    }
}

/// Wilson 95 % interval of a rate.
pub fn wilson(events: u64, total: u64) -> (f64, f64) {
    if total == 0 {
        return (0.0, 1.0);
    }
    let (k, n, z) = (events as f64, total as f64, 1.959_963_984_540_054);
    let p = k / n;
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / (1.0 + z * z / n);
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Both sides' event rates as points with 95 % intervals.
pub fn rates(label: &str, baseline: (u64, u64), canary: (u64, u64)) -> String {
    let mut out = String::new();
    open(&mut out, label);
    let sides = [
        ("baseline", baseline, BASELINE_COLOR),
        ("canary", canary, CANARY_COLOR),
    ];
    let hi = sides
        .iter()
        .map(|s| wilson(s.1.0, s.1.1).1)
        .fold(0.0, f64::max)
        .max(1e-6)
        * 1.1;
    let y = |r: f64| (H - PAD_B) - r / hi * (H - PAD_B - PAD_T);
    axes(&mut out, "version", "event rate (95% interval)");
    for i in 0..=4 {
        let r = hi * f64::from(i) / 4.0;
        tick_y(&mut out, y(r), &format!("{:.2}%", r * 100.0));
    }
    for (i, (name, (k, n), color)) in sides.iter().enumerate() {
        let x = PAD_L + (W - PAD_L - PAD_R) * (0.3 + 0.4 * i as f64);
        let (lo, up) = wilson(*k, *n);
        let rate = if *n > 0 { *k as f64 / *n as f64 } else { 0.0 };
        let _ = write!(
            out,
            r#"<path class="{name}" d="M{x:.1} {:.1} L{x:.1} {:.1}" stroke="{color}" stroke-width="3"/>"#,
            y(lo),
            y(up)
        );
        let _ = write!(
            out,
            r#"<circle cx="{x:.1}" cy="{:.1}" r="6" fill="{color}"/>"#,
            y(rate)
        );
        let _ = write!(
            out,
            r##"<text x="{x:.1}" y="{:.1}" font-size="11" text-anchor="middle" fill="#333">{name}: {:.2}% ({k}/{n})</text>"##,
            H - PAD_B + 15.0,
            rate * 100.0
        );
    }
    out.push_str("</svg>");
    out
}

/// The canary's weight over time with one marker per look, coloured by action.
pub fn timeline(looks: &[LookRecord]) -> String {
    let mut out = String::new();
    open(&mut out, "canary weight and decisions over time");
    let t_max = looks.iter().map(|l| l.at_seconds).max().unwrap_or(1).max(1) as f64;
    let x = |t: f64| PAD_L + t / t_max * (W - PAD_L - PAD_R);
    let y = |w: f64| (H - PAD_B) - w / 100.0 * (H - PAD_B - PAD_T);
    axes(&mut out, "seconds since start", "canary weight (%)");
    for w in [0.0, 25.0, 50.0, 75.0, 100.0] {
        tick_y(&mut out, y(w), &format!("{w}"));
    }
    for i in 0..=4 {
        let t = t_max * f64::from(i) / 4.0;
        tick_x(&mut out, x(t), &format!("{t:.0}"));
    }
    let mut path = format!(
        "M{:.1} {:.1}",
        x(0.0),
        y(looks.first().map_or(0.0, |l| l.canary_weight))
    );
    for l in looks {
        let _ = write!(
            path,
            " L{:.1} {:.1}",
            x(l.at_seconds as f64),
            y(l.canary_weight)
        );
    }
    let _ = write!(
        out,
        r#"<path class="weight" d="{path}" fill="none" stroke="{CANARY_COLOR}" stroke-width="2"/>"#
    );
    for l in looks {
        let color = match l.action {
            Action::Rollback => "#c0392b",
            Action::Promote | Action::Advance => "#27ae60",
            Action::Hold | Action::Extend => "#e6a700",
            Action::Continue => "#7f8c8d",
        };
        let _ = write!(
            out,
            r#"<circle class="look" cx="{:.1}" cy="{:.1}" r="4" fill="{color}"><title>{} s: {}</title></circle>"#,
            x(l.at_seconds as f64),
            y(l.canary_weight),
            l.at_seconds,
            escape(l.action.as_str())
        );
    }
    out.push_str("</svg>");
    out
}
