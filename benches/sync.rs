//! Placeholder; replaced by the sync benchmark.
fn main() {}
