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
    if dir.is_dir() {
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

use invoke_proto::DecodeError;
use invoke_proto::bytes::{Bytes, BytesMut};
use invoke_proto::eventstream::{HeaderValue, Headers, Message, MessageDecoder, encode};
use proptest::prelude::*;

/// Any header value; timestamps stay within what `aws-smithy-types` can represent
pub fn header_value() -> impl Strategy<Value = HeaderValue> {
    prop_oneof![
        any::<bool>().prop_map(HeaderValue::Bool),
        any::<i8>().prop_map(HeaderValue::Byte),
        any::<i16>().prop_map(HeaderValue::Short),
        any::<i32>().prop_map(HeaderValue::Int),
        any::<i64>().prop_map(HeaderValue::Long),
        proptest::collection::vec(any::<u8>(), 0..40)
            .prop_map(|v| HeaderValue::ByteArray(v.into())),
        ".{0,20}".prop_map(HeaderValue::from),
        (-1_000_000_000_000_000i64..1_000_000_000_000_000).prop_map(HeaderValue::Timestamp),
        any::<[u8; 16]>().prop_map(HeaderValue::Uuid),
    ]
}

/// Any message with distinct header names
pub fn message() -> impl Strategy<Value = Message> {
    (
        proptest::collection::btree_map("[a-zA-Z:_-]{1,12}|.{1,8}", header_value(), 0..8),
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(headers, payload)| {
            let mut b = Headers::builder();
            for (name, value) in headers {
                b.push(name, value).unwrap();
            }
            Message::new(b.build().unwrap(), payload)
        })
}

/// The wire form of `messages` back to back
pub fn wire(messages: &[Message]) -> Bytes {
    let mut w = BytesMut::new();
    for m in messages {
        encode(m, &mut w).unwrap();
    }
    w.freeze()
}

/// Decodes `wire` fed as chunks ending at `cuts`: the messages and the final outcome
pub fn decode_at(wire: &Bytes, cuts: &[usize]) -> (Vec<Message>, Result<(), DecodeError>) {
    let mut d = MessageDecoder::new();
    let mut out = Vec::new();
    let mut start = 0;
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c.min(&wire.len()).to_owned()).collect();
    bounds.sort_unstable();
    bounds.push(wire.len());
    for end in bounds {
        d.feed(wire.slice(start..end.max(start)));
        start = end.max(start);
        loop {
            match d.next_message() {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(e) => return (out, Err(e)),
            }
        }
    }
    let end = d.finish();
    (out, end)
}
