//! Arbitrary message → `Headers::builder()` → `encode` → decode → the same message
//!
//! Header names are 1..=255 bytes of UTF-8 and values any of the ten wire types (`Bool` covers
//! types 0 and 1), so the builder may only reject a repeated name (at `build`) or a value over
//! 32,767 bytes (at `push`); those inputs are skipped after checking that the rejection is
//! exactly that. Otherwise the encoded bytes must decode, in one shot, twice back to back and
//! byte by byte, to a message equal to the original, with the same typed headers in order;
//! one byte short, they must fail as `Truncated`.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use invoke_proto::bytes::{Bytes, BytesMut};
use invoke_proto::{DecodeError, EncodeError};
use invoke_proto::{
    Header, HeaderValue, Headers, MAX_HEADER_NAME_LEN, MAX_HEADER_VALUE_LEN, Message,
    MessageDecoder, encode_message,
};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    headers: Vec<ArbHeader>,
    payload: Vec<u8>,
}

#[derive(Debug, Arbitrary)]
struct ArbHeader {
    name: Name,
    value: Value,
}

/// 1 to 255 bytes of UTF-8
#[derive(Debug)]
struct Name(String);

impl<'a> Arbitrary<'a> for Name {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let mut s = String::arbitrary(u)?;
        let mut cut = s.len().min(MAX_HEADER_NAME_LEN);
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        if s.is_empty() {
            // a one-letter name: repeats are likely, which exercises duplicate rejection
            s.push(char::from(b'a' + u.int_in_range(0..=3)?));
        }
        Ok(Self(s))
    }
}

#[derive(Debug, Arbitrary)]
enum Value {
    Bool(bool),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    ByteArray(Vec<u8>),
    String(String),
    Timestamp(i64),
    Uuid([u8; 16]),
}

impl From<Value> for HeaderValue {
    fn from(v: Value) -> Self {
        match v {
            Value::Bool(v) => Self::Bool(v),
            Value::Byte(v) => Self::Byte(v),
            Value::Short(v) => Self::Short(v),
            Value::Int(v) => Self::Int(v),
            Value::Long(v) => Self::Long(v),
            Value::ByteArray(v) => Self::ByteArray(Bytes::from(v)),
            Value::String(v) => Self::from(v),
            Value::Timestamp(v) => Self::Timestamp(v),
            Value::Uuid(v) => Self::Uuid(v),
        }
    }
}

fuzz_target!(|input: Input| {
    let expected: Vec<Header> = input
        .headers
        .into_iter()
        .map(|h| Header::new(h.name.0, HeaderValue::from(h.value)))
        .collect();
    let Some(headers) = build(&expected) else {
        return;
    };
    assert_eq!(headers.len(), expected.len());
    assert_eq!(headers.iter().collect::<Vec<_>>(), expected);
    for h in &expected {
        assert_eq!(headers.get(&h.name).as_ref(), Some(&h.value));
        assert_eq!(headers.get_str(&h.name), h.value.as_str());
    }
    assert_eq!(
        Headers::from_wire(headers.as_wire().clone()).as_ref(),
        Ok(&headers)
    );
    assert_eq!(Headers::try_from(expected.clone()).as_ref(), Ok(&headers));

    let message = Message::new(headers, input.payload);
    let mut wire = BytesMut::new();
    match encode_message(&message, &mut wire) {
        Ok(()) => {}
        Err(EncodeError::LimitExceeded { len, max, .. }) if len > u64::from(max) => return,
        Err(e) => panic!("encode rejected a valid message: {e:?}"),
    }
    let wire = wire.freeze();
    assert_eq!(wire.len() as u64, message.wire_len());
    assert_eq!(message.to_bytes().as_ref(), Ok(&wire));

    // one shot, and twice back to back
    let mut d = MessageDecoder::new();
    d.feed(wire.clone());
    assert_eq!(d.next_message(), Ok(Some(message.clone())));
    assert_eq!(d.next_message(), Ok(None));
    d.feed(wire.clone());
    assert_eq!(d.next_message(), Ok(Some(message.clone())));
    assert_eq!(d.next_message(), Ok(None));
    assert_eq!(d.finish(), Ok(()));
    assert_eq!(d.offset(), 2 * wire.len() as u64);

    // byte by byte: nothing until the last byte
    let mut d = MessageDecoder::new();
    for (i, b) in wire.iter().enumerate() {
        d.feed(Bytes::copy_from_slice(&[*b]));
        let got = d.next_message().expect("a valid message failed to decode");
        if i + 1 < wire.len() {
            assert_eq!(got, None, "message before its last byte");
        } else {
            let got = got.expect("no message after the last byte");
            assert_eq!(got, message);
            assert_eq!(got.headers.iter().collect::<Vec<_>>(), expected);
        }
    }
    assert_eq!(d.finish(), Ok(()));

    // one byte short
    let mut d = MessageDecoder::new();
    d.feed(wire.slice(..wire.len() - 1));
    assert_eq!(d.next_message(), Ok(None));
    assert_eq!(
        d.finish(),
        Err(DecodeError::Truncated {
            offset: 0,
            buffered: wire.len() - 1
        })
    );
});

/// Builds the header block; `None` when the builder rightly refuses it
fn build(headers: &[Header]) -> Option<Headers> {
    let mut b = Headers::builder();
    for h in headers {
        if let Err(e) = b.push(&h.name, h.value.clone()) {
            let len = match &h.value {
                HeaderValue::ByteArray(v) => v.len(),
                HeaderValue::String(v) => v.len(),
                _ => 0,
            };
            assert_eq!(
                e,
                EncodeError::HeaderValueTooLong {
                    name: h.name.to_string(),
                    len,
                    max: MAX_HEADER_VALUE_LEN
                },
                "push rejected a valid header"
            );
            assert!(len > MAX_HEADER_VALUE_LEN);
            return None;
        }
    }
    // the first header whose name already appeared
    let repeat = headers
        .iter()
        .enumerate()
        .find(|(i, h)| headers[..*i].iter().any(|p| p.name == h.name));
    match (b.build(), repeat) {
        (Ok(built), None) => Some(built),
        (Err(e), Some((_, h))) => {
            assert_eq!(
                e,
                EncodeError::DuplicateHeader {
                    name: h.name.to_string()
                }
            );
            None
        }
        (Ok(_), Some((i, h))) => panic!("duplicate {:?} at index {i} accepted", h.name),
        (Err(e), None) => panic!("build rejected distinct names: {e:?}"),
    }
}
