//! Placeholder, replaced by the query benchmarks.
fn main() {}
