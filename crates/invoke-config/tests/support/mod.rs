//! Shared helpers for the integration tests
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

/// The third-party vectors: `$INVOKE_TESTDATA`, else `../shared/testdata` beside the checkout
///
/// Returns `None` after printing a skip notice when they are absent; panics instead under
/// `CI=true`, where their absence is a failure.
pub fn testdata(sub: &str) -> Option<PathBuf> {
    let base = std::env::var_os("INVOKE_TESTDATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata"),
        PathBuf::from,
    );
    let dir = base.join(sub);
    if dir.exists() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "test vectors missing at {} (set INVOKE_TESTDATA)",
        dir.display()
    );
    eprintln!(
        "SKIPPED: test vectors not found at {} (set INVOKE_TESTDATA to run this test)",
        dir.display()
    );
    None
}

/// A JSON file of the suite
pub fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A JSON object of strings as pairs
pub fn string_pairs(v: &serde_json::Value) -> Vec<(String, String)> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}
