//! Proptest strategies for event-stream values

use invoke_proto::{HeaderValue, Headers, Message};
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
                b.push(name, value).expect("generated headers are valid");
            }
            Message::new(b.build().expect("names are distinct"), payload)
        })
}

/// Cut points in a byte stream whose length is not known yet, see [`cuts`]
#[derive(Debug, Clone)]
pub struct Cuts(Vec<prop::sample::Index>);

impl Cuts {
    /// The cut positions in a stream of `len` bytes, each in `0..=len`, for
    /// [`pieces`](crate::pieces) and the `*_at` drivers
    pub fn within(&self, len: usize) -> Vec<usize> {
        self.0.iter().map(|i| i.index(len + 1)).collect()
    }
}

/// Up to `max` cut points
pub fn cuts(max: usize) -> impl Strategy<Value = Cuts> {
    proptest::collection::vec(any::<prop::sample::Index>(), 0..max).prop_map(Cuts)
}
