//! The randomness of the retry backoff, for the adapters to pass to the core's driver

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::atomic::{AtomicU64, Ordering};

/// A uniform value in `[0, 1)` for the backoff's full jitter (the `jitter` argument of
/// `InvokeDriver::handle_failure` and `handle_error_body`): a counter hashed with the
/// standard library's randomly keyed hasher, so threads and processes draw apart
///
/// ```
/// let j = invoke_config::jitter();
/// assert!((0.0..1.0).contains(&j));
/// ```
#[must_use]
#[allow(clippy::cast_precision_loss)] // 53 bits fit an f64 exactly
pub fn jitter() -> f64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    #[test]
    fn jitter_is_spread_over_zero_to_one() {
        let draws: Vec<f64> = (0..256).map(|_| super::jitter()).collect();
        assert!(draws.iter().all(|j| (0.0..1.0).contains(j)), "{draws:?}");
        // both halves drawn, and no value repeated
        assert!(draws.iter().any(|j| *j < 0.5) && draws.iter().any(|j| *j >= 0.5));
        let mut sorted = draws.clone();
        sorted.sort_by(f64::total_cmp);
        sorted.dedup();
        assert_eq!(sorted.len(), draws.len());
    }
}
