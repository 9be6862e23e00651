//! Human-readable renderings of decisions and canaries from one model: text for terminals
//! and logs, Markdown for pull requests and tickets, and a self-contained HTML page with
//! inline SVG plots.

mod html;
mod markdown;
mod model;
mod svg;
mod text;

pub use html::render_html;
pub use markdown::render_markdown;
pub use model::{CanaryReport, InputError};
pub use text::{render_decision_text, render_text};
