//! Shared helpers for the integration tests
#![allow(dead_code, unreachable_pub)]

pub use invoke_testkit::testdata;

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
