//! Converters between invoke-proto's messages and the official `aws-smithy-types` ones

use aws_smithy_types::DateTime;
use aws_smithy_types::event_stream::{
    Header as SmithyHeader, HeaderValue as SmithyValue, Message as SmithyMessage,
};
use invoke_proto::{HeaderValue, Headers, Message};

/// `m` as an `aws-smithy-types` message
pub fn to_smithy(m: &Message) -> SmithyMessage {
    let headers = m
        .headers
        .iter()
        .map(|h| {
            let v = match h.value {
                HeaderValue::Bool(b) => SmithyValue::Bool(b),
                HeaderValue::Byte(x) => SmithyValue::Byte(x),
                HeaderValue::Short(x) => SmithyValue::Int16(x),
                HeaderValue::Int(x) => SmithyValue::Int32(x),
                HeaderValue::Long(x) => SmithyValue::Int64(x),
                HeaderValue::ByteArray(b) => SmithyValue::ByteArray(b),
                HeaderValue::String(s) => SmithyValue::String(s.to_string().into()),
                HeaderValue::Timestamp(t) => SmithyValue::Timestamp(DateTime::from_millis(t)),
                HeaderValue::Uuid(u) => SmithyValue::Uuid(u128::from_be_bytes(u)),
            };
            SmithyHeader::new(h.name.to_string(), v)
        })
        .collect();
    SmithyMessage::new_from_parts(headers, m.payload.clone())
}

/// An `aws-smithy-types` message as ours
///
/// # Panics
///
/// On a header value type smithy added after this was written, or headers our builder
/// rejects (an empty or repeated name).
pub fn from_smithy(m: &SmithyMessage) -> Message {
    let mut b = Headers::builder();
    for h in m.headers() {
        let v = match h.value() {
            SmithyValue::Bool(b) => HeaderValue::Bool(*b),
            SmithyValue::Byte(x) => HeaderValue::Byte(*x),
            SmithyValue::Int16(x) => HeaderValue::Short(*x),
            SmithyValue::Int32(x) => HeaderValue::Int(*x),
            SmithyValue::Int64(x) => HeaderValue::Long(*x),
            SmithyValue::ByteArray(b) => HeaderValue::ByteArray(b.clone()),
            SmithyValue::String(s) => HeaderValue::from(s.as_str().to_owned()),
            SmithyValue::Timestamp(t) => {
                HeaderValue::Timestamp(t.to_millis().expect("timestamp in range"))
            }
            SmithyValue::Uuid(u) => HeaderValue::Uuid(u.to_be_bytes()),
            other => panic!("unknown smithy header value {other:?}"),
        };
        b.push(h.name().as_str(), v).expect("valid header");
    }
    Message::new(
        b.build().expect("distinct header names"),
        m.payload().clone(),
    )
}
