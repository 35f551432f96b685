//! Interop tests of the emulator against independent official peers
//!
//! The tests in `tests/` drive the emulator with the official AWS SDK for Rust
//! (`aws-sdk-lambda`), and run a function built on the official `lambda_runtime` crate
//! (`src/bin/stream_fn.rs`) behind it. Nothing here is published: the crate only exists so
//! that `cargo test -p invoke-interop` builds those peers, which the default `cargo test`
//! never compiles.
