//! Helpers for the crate's unit tests

use std::time::{Duration, Instant};

/// Waits for `done`, failing the test after 30 s: a broken lock, list or count fails
/// the test that waits on it rather than hanging it
pub(crate) fn wait_for(what: &str, done: impl Fn() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < give_up, "never {what}");
        std::thread::yield_now();
    }
}
