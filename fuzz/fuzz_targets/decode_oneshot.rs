//! One-shot decoding of arbitrary bytes
//!
//! The whole input is fed as one chunk to a [`MessageDecoder`], `next_message` is drained,
//! then `finish` is called. It must never panic, and:
//!
//! - every message re-encodes to exactly the bytes it was decoded from (`offset()` before
//!   and after it), and its headers and payload are slices of the fed chunk (zero copy);
//! - an error names the right place: prelude, length, limit and CRC errors the first byte of
//!   the message, header errors a byte inside its header block;
//! - errors are sticky: `next_message` and `finish` return the same error again, even after
//!   more bytes are fed, and nothing stays buffered;
//! - at the end, `offset() + buffered()` is the input length; `finish` is `Ok` exactly when
//!   nothing is left, else `Truncated` with the leftover count;
//! - the tokio-util style `decode`/`decode_eof` on one `BytesMut` gives the same result;
//! - tighter [`Limits`] only ever cut the result short with `LimitExceeded` at a message
//!   that really is over them; everything before that is identical.
#![no_main]

use invoke_proto::DecodeError;
use invoke_proto::LimitKind;
use invoke_proto::bytes::{Bytes, BytesMut};
use invoke_proto::{Limits, Message, MessageDecoder, PRELUDE_LEN, encode_message_with_limits};
use libfuzzer_sys::fuzz_target;

/// Small enough that fuzz inputs cross them often
const TIGHT: Limits = Limits {
    max_message_len: 48,
    max_headers_len: 20,
};

/// Messages with their start offsets, and how the stream ended
type Outcome = (Vec<(u64, Message)>, Result<(), DecodeError>);

fuzz_target!(|data: &[u8]| {
    let wire = Bytes::copy_from_slice(data);
    let default = decode(&wire, Limits::default());
    assert_eq!(
        decode_tokio_style(&wire),
        default,
        "decode() differs from feed()"
    );
    let tight = decode(&wire, TIGHT);
    check_tight(&wire, &default, &tight);
});

fn decode(wire: &Bytes, limits: Limits) -> Outcome {
    let mut d = MessageDecoder::with_limits(limits);
    d.feed(wire.clone());
    let mut out = Vec::new();
    loop {
        let start = d.offset();
        match d.next_message() {
            Ok(Some(m)) => {
                let end = d.offset();
                check_message(wire, &limits, start, end, &m);
                out.push((start, m));
            }
            Ok(None) => {
                assert_eq!(d.offset() + d.buffered() as u64, wire.len() as u64);
                let end = d.finish();
                match &end {
                    Ok(()) => assert_eq!(d.offset(), wire.len() as u64),
                    Err(DecodeError::Truncated { offset, buffered }) => {
                        assert_eq!(*offset, d.offset());
                        assert!(*buffered > 0);
                        assert_eq!(offset + *buffered as u64, wire.len() as u64);
                    }
                    Err(e) => panic!("finish after Ok(None) failed with a non-truncation: {e:?}"),
                }
                if let Err(e) = &end {
                    check_sticky(&mut d, e);
                }
                return (out, end);
            }
            Err(e) => {
                assert_eq!(
                    d.offset(),
                    start,
                    "a failed message must not advance offset()"
                );
                check_error_offset(wire, start, &e);
                check_sticky(&mut d, &e);
                return (out, Err(e));
            }
        }
    }
}

/// The message decoded from `wire[start..end]` re-encodes to exactly those bytes
fn check_message(wire: &Bytes, limits: &Limits, start: u64, end: u64, m: &Message) {
    let (s, e) = (start as usize, end as usize);
    assert!(s < e && e <= wire.len(), "bad offsets {s}..{e}");
    assert_eq!(m.wire_len(), end - start);
    let mut re = BytesMut::new();
    encode_message_with_limits(m, limits, &mut re).expect("a decoded message must re-encode");
    assert_eq!(
        &re[..],
        &wire[s..e],
        "re-encoding differs from the decoded bytes"
    );
    // zero copy out of the single fed chunk
    let range = wire.as_ptr_range();
    for part in [m.headers.as_wire(), &m.payload] {
        assert!(
            part.is_empty() || range.contains(&part.as_ptr()),
            "message at {s}..{e} was copied out of the single chunk"
        );
    }
    // typed iteration sees every header, and lookups agree with it
    let mut n = 0;
    for h in &m.headers {
        assert_eq!(m.headers.get(&h.name), Some(h.value.clone()));
        n += 1;
    }
    assert_eq!(m.headers.len(), n);
}

fn check_error_offset(wire: &Bytes, start: u64, e: &DecodeError) {
    match e {
        DecodeError::HeaderName { offset, .. }
        | DecodeError::HeaderType { offset, .. }
        | DecodeError::HeaderLength { offset, .. }
        | DecodeError::InvalidUtf8 { offset } => {
            // the prelude was accepted, so its headers_length is meaningful
            let s = start as usize;
            let headers_len = u32::from_be_bytes(wire[s + 4..s + 8].try_into().unwrap());
            let block = start + PRELUDE_LEN as u64..start + PRELUDE_LEN as u64 + headers_len as u64;
            assert!(
                block.contains(offset),
                "header error outside the block {block:?}: {e:?}"
            );
        }
        DecodeError::Truncated { .. } => panic!("next_message returned Truncated: {e:?}"),
        _ => assert_eq!(
            e.offset(),
            start,
            "message-level error not at message start: {e:?}"
        ),
    }
}

fn check_sticky(d: &mut MessageDecoder, e: &DecodeError) {
    assert_eq!(d.next_message().as_ref(), Err(e), "error not sticky");
    d.feed(Bytes::from_static(b"\0\0\0\x10more bytes"));
    assert_eq!(
        d.next_message().as_ref(),
        Err(e),
        "error not sticky after feed"
    );
    assert_eq!(d.finish().as_ref(), Err(e), "finish forgot the error");
    assert_eq!(d.buffered(), 0, "bytes kept after an error");
}

/// The same input through `decode`/`decode_eof` on one `BytesMut`
fn decode_tokio_style(wire: &Bytes) -> Outcome {
    let mut d = MessageDecoder::new();
    let mut buf = BytesMut::from(&wire[..]);
    let mut out = Vec::new();
    loop {
        let start = d.offset();
        match d.decode(&mut buf) {
            Ok(Some(m)) => out.push((start, m)),
            Ok(None) => {
                return match d.decode_eof(&mut buf) {
                    Ok(None) => (out, Ok(())),
                    Ok(Some(m)) => panic!("decode_eof found a message decode missed: {m:?}"),
                    Err(e) => (out, Err(e)),
                };
            }
            Err(e) => {
                assert_eq!(
                    d.decode(&mut buf).as_ref(),
                    Err(&e),
                    "decode error not sticky"
                );
                return (out, Err(e));
            }
        }
    }
}

/// Tighter limits stop at the first message over them and change nothing else
fn check_tight(wire: &Bytes, default: &Outcome, tight: &Outcome) {
    let Err(DecodeError::LimitExceeded {
        offset,
        kind,
        len,
        max,
    }) = tight.1
    else {
        assert_eq!(tight, default, "limits changed more than a LimitExceeded");
        return;
    };
    let before = default.0.iter().take_while(|(s, _)| *s < offset).count();
    assert_eq!(
        tight.0[..],
        default.0[..before],
        "messages before the limit differ"
    );
    assert!(
        default
            .1
            .as_ref()
            .err()
            .is_none_or(|e| e.offset() >= offset),
        "default limits failed earlier: {:?} vs limit at {offset}",
        default.1
    );
    let o = offset as usize;
    let field = match kind {
        LimitKind::Message => 0,
        LimitKind::Headers => 4,
        other => panic!("the decoder reported a {other:?} limit"),
    };
    assert_eq!(
        len,
        u32::from_be_bytes(wire[o + field..o + field + 4].try_into().unwrap())
    );
    let limit = match kind {
        LimitKind::Headers => TIGHT.max_headers_len,
        _ => TIGHT.max_message_len,
    };
    assert_eq!(max, limit);
    assert!(len > max, "{len} is within the limit {max}");
    if let Some((start, m)) = default.0.get(before) {
        assert_eq!(*start, offset, "the over-limit message starts elsewhere");
        let actual = match kind {
            LimitKind::Headers => m.headers.as_wire().len() as u64,
            _ => m.wire_len(),
        };
        assert_eq!(u64::from(len), actual);
    }
}
