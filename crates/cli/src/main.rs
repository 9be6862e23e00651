//! The canary-gate command-line tool.
fn main() {}
