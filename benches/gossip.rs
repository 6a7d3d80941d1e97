//! Placeholder; replaced by the gossip benchmark.
fn main() {}
