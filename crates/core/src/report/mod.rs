//! Human-readable renderings of decisions: the text report for terminals and logs.

mod text;

pub use text::render_decision_text;
