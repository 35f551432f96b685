//! Benchmarks only; see `benches/`
