//! How numbers read in reports and messages: p-values and measured values; and text made
//! safe to print.

use std::fmt::Write as _;

/// Text as reports, `status`, `history` and notifications print it: line breaks kept, every
/// other control character (escape sequences, carriage returns, NULs, …, which could rewrite
/// a terminal or forge a line) shown as `\u{..}`. Names in a config are refused when they
/// hold one; this is for the text that comes from elsewhere (AWS messages, an execution's
/// history, an operator's reason).
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// Formats a p-value for prose: fixed notation down to 1e-4, scientific below.
pub fn fmt_p(p: f64) -> String {
    if p >= 1e-4 {
        format!("{p:.4}")
    } else {
        format!("{p:.1e}")
    }
}

/// Formats a measured value with about four significant digits.
pub fn fmt_value(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    if !(1e-3..1e7).contains(&a) {
        return format!("{v:.3e}");
    }
    let decimals = if a >= 1000.0 {
        0
    } else if a >= 100.0 {
        1
    } else if a >= 10.0 {
        2
    } else if a >= 1.0 {
        3
    } else {
        (3.0 - a.log10().floor()) as usize
    };
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_are_shown_escaped_and_line_breaks_kept() {
        assert_eq!(
            printable("a\u{1b}[2Jb\rc\u{0}d\u{7f}e\u{9b}f\tg\nh"),
            "a\\u{1b}[2Jb\\u{d}c\\u{0}d\\u{7f}e\\u{9b}f\\u{9}g\nh"
        );
        let plain = "p95 +12 % — rollback\n";
        assert_eq!(printable(plain), plain);
        assert_eq!(printable(&printable("x\u{1b}")), printable("x\u{1b}"));
    }
}
