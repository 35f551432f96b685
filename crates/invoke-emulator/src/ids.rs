//! Random identifiers: request ids, trace ids, extension ids

use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};

/// `len` random lower-case hex digits (std's randomly keyed hasher; not for secrets)
pub(crate) fn random_hex(len: usize) -> String {
    let mut s = String::with_capacity(len + 16);
    while s.len() < len {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(s.len());
        let _ = write!(s, "{:016x}", h.finish());
    }
    s.truncate(len);
    s
}

/// A random UUID in 8-4-4-4-12 form, version 4 variant bits set
pub(crate) fn uuid() -> String {
    let hex = random_hex(32);
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_uniqueness() {
        let (a, b) = (uuid(), uuid());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4');
        assert_eq!(random_hex(5).len(), 5);
    }
}
