//! Differential decoding against the reference codec, `aws-smithy-eventstream` 0.60
//!
//! The same bytes go to our `MessageDecoder` (fed whole, then `finish`) and to smithy's
//! `MessageFrameDecoder` (called on the whole buffer until it stops) and, for the first
//! message, `read_message_from`. Message by message: if both accept, the headers (name, type,
//! value, in order) and the payload must be equal; if one accepts and the other rejects, it
//! must be one of the intentional differences below, identified by our error variant and
//! checked against what smithy decoded; otherwise the target panics. When both reject, the
//! errors are not compared (see "same outcome, different error").
//!
//! Intentional differences (smithy accepts, we reject; found in smithy's `frame.rs` and
//! checked with a probe). There are none the other way: smithy accepts everything we accept.
//!
//! 1. Empty header name. Smithy's `read_header_from` only checks `name_len >= remaining` and
//!    returns a header named `""`. We return `DecodeError::HeaderName { offset, problem:
//!    Empty }` ("bad header name at byte offset 12: empty") at the first such header: names
//!    are 1..=255 bytes.
//! 2. Repeated header name. Smithy keeps both in its `Vec<Header>`. We return
//!    `DecodeError::HeaderName { offset, problem: Duplicate }` at the first header whose name
//!    already appeared. (An empty name is reported first if the message has both.)
//! 3. Size limits. Smithy has none. We check `Limits` on the prelude: `LimitExceeded { kind:
//!    Message, len, max: 25296912 }` when `total_length` is over 24 MiB + 128 KiB + 16,
//!    `LimitExceeded { kind: Headers, len, max: 131072 }` when `headers_length` is over 128
//!    KiB. Inputs that large only occur with `-max_len` above 128 KiB.
//!
//! Same outcome, different error (not checked here):
//! - `headers_length == 1`: smithy rejects it in the prelude (`InvalidHeadersLength`, "invalid
//!   headers length"); we reject the one-byte block (`HeaderLength { needed: 3, available: 1 }`
//!   or `HeaderName { problem: Empty }`).
//! - `headers_length > total_length - 16`: smithy `InvalidHeadersLength`; we `Length`.
//! - `total_length < 16`: smithy `InvalidMessageLength`; we `Length`.
//! - Fewer bytes than `total_length`: `read_message_from` says `InvalidMessageLength` before it
//!   looks at the prelude CRC, `MessageFrameDecoder` says `Incomplete` forever (it checks the
//!   prelude CRC only once the whole frame is in, and a 4 GiB prelude just waits). We report
//!   `PreludeCrc`, `Length` or `LimitExceeded` as soon as 12 bytes are in, else `Truncated` at
//!   `finish`.
//! - A header running past `headers_length`: smithy reads it from whatever follows (payload,
//!   CRC, the next message) and then fails `InvalidHeaderValue` ("invalid header value") when
//!   the count overshoots, or `InvalidHeaderNameLength`/`InvalidHeadersLength` at the end of
//!   the buffer; we fail `HeaderLength { needed, available }` within the block.
//! - Smithy checks the message CRC after the headers, we before: a frame with a bad CRC and a
//!   bad header gets a header error from smithy (e.g. `InvalidHeaderValueType(10)`) and
//!   `MessageCrc` from us.
//! - Bad UTF-8 in a name or string value: smithy `InvalidUtf8String`; we `HeaderName {
//!   problem: InvalidUtf8 }` or `InvalidUtf8`. Type byte over 9: smithy
//!   `InvalidHeaderValueType(t)`; we `HeaderType { type_byte: t }`.
//! - An empty input: `read_message_from` fails (`InvalidMessageLength`, it needs 12 bytes);
//!   for us an empty stream is a valid stream of no messages. Neither yields a first message.
#![no_main]

use aws_smithy_eventstream::error::Error as SmithyError;
use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder, read_message_from};
use aws_smithy_types::event_stream::{
    Header as SHeader, HeaderValue as SValue, Message as SMessage,
};
use invoke_proto::DecodeError;
use invoke_proto::bytes::{Bytes, BytesMut};
use invoke_proto::{HeaderNameProblem, LimitKind};
use invoke_proto::{Limits, MESSAGE_OVERHEAD, Message, MessageDecoder, PRELUDE_LEN};
use invoke_testkit::smithy::to_smithy;
use libfuzzer_sys::fuzz_target;

/// How smithy's frame decoder stopped
#[derive(Debug)]
enum SmithyEnd {
    /// All bytes were used by complete messages
    Clean,
    /// `Incomplete` with bytes of an unfinished message left
    Leftover,
    /// A decoding error
    Error(#[allow(dead_code, reason = "shown through Debug")] SmithyError),
}

fuzz_target!(|data: &[u8]| {
    let (ours, our_end, stopped_at) = decode_ours(data);
    let (theirs, their_end) = decode_smithy(data);
    check_smithy_one_shot(data, theirs.first(), &their_end);

    for i in 0.. {
        match (ours.get(i), theirs.get(i)) {
            (Some((_, m)), Some(s)) => {
                assert_eq!(&to_smithy(m), s, "message {i} decodes differently");
            }
            (Some((start, m)), None) => {
                panic!(
                    "we accept message {i} at {start} ({m:?}) but smithy ends with {their_end:?}"
                );
            }
            (None, Some(s)) => {
                let Err(e) = &our_end else {
                    panic!("smithy decodes message {i} ({s:?}) after our clean end");
                };
                check_intentional(i, stopped_at, e, s);
                return;
            }
            (None, None) => {
                match (&our_end, &their_end) {
                    (Ok(()), SmithyEnd::Clean)
                    | (Err(_), SmithyEnd::Leftover | SmithyEnd::Error(_)) => {}
                    (Ok(()), other) => {
                        panic!("we end cleanly after {i} messages, smithy: {other:?}")
                    }
                    (Err(e), SmithyEnd::Clean) => {
                        panic!("smithy ends cleanly after {i} messages, we fail: {e:?}")
                    }
                }
                return;
            }
        }
    }
});

/// Our messages with their start offsets, how the stream ended, and `offset()` at the end
/// (after an error: the start of the message that failed)
fn decode_ours(data: &[u8]) -> (Vec<(u64, Message)>, Result<(), DecodeError>, u64) {
    let mut d = MessageDecoder::new();
    d.feed(Bytes::copy_from_slice(data));
    let mut out = Vec::new();
    loop {
        let start = d.offset();
        match d.next_message() {
            Ok(Some(m)) => out.push((start, m)),
            Ok(None) => return (out, d.finish(), d.offset()),
            Err(e) => return (out, Err(e), d.offset()),
        }
    }
}

/// Smithy's streaming decoder, called on the whole input until it stops
fn decode_smithy(data: &[u8]) -> (Vec<SMessage>, SmithyEnd) {
    let mut d = MessageFrameDecoder::new();
    let mut buf = BytesMut::from(data);
    let mut out = Vec::new();
    loop {
        let before = buf.len();
        match d.decode_frame(&mut buf) {
            Ok(DecodedFrame::Complete(m)) => out.push(m),
            Ok(DecodedFrame::Incomplete) if before == 0 => return (out, SmithyEnd::Clean),
            Ok(DecodedFrame::Incomplete) => return (out, SmithyEnd::Leftover),
            Err(e) => return (out, SmithyEnd::Error(e)),
        }
    }
}

/// Smithy's one-shot reader agrees with its streaming decoder on the first message
fn check_smithy_one_shot(data: &[u8], first: Option<&SMessage>, end: &SmithyEnd) {
    match (read_message_from(data), first) {
        (Ok(one), Some(first)) => assert_eq!(&one, first, "smithy one-shot differs from streaming"),
        (Err(_), None) => {}
        (Ok(one), None) => panic!("smithy one-shot accepts {one:?}, streaming ends {end:?}"),
        (Err(e), Some(first)) => panic!("smithy streaming accepts {first:?}, one-shot fails {e}"),
    }
}

/// Smithy accepted message `i`, which starts at byte `start`, and we failed on it with `e`:
/// it must be one of the documented differences, at the right place
fn check_intentional(i: usize, start: u64, e: &DecodeError, s: &SMessage) {
    let headers_len: usize = s.headers().iter().map(header_wire_len).sum();
    let total = MESSAGE_OVERHEAD + headers_len + s.payload().len();
    if let DecodeError::LimitExceeded {
        offset,
        kind,
        len,
        max,
    } = *e
    {
        let limits = Limits::default();
        let (actual, limit) = match kind {
            LimitKind::Message => (total, limits.max_message_len),
            LimitKind::Headers => (headers_len, limits.max_headers_len),
            other => panic!("message {i}: the decoder reported a {other:?} limit"),
        };
        assert_eq!(offset, start, "message {i}: {e:?} not at the message start");
        assert_eq!(
            len as usize, actual,
            "message {i}: {e:?} but smithy read {actual}"
        );
        assert!(
            max == limit && len > max,
            "message {i}: {e:?} is not over the default limit"
        );
        return;
    }
    // Our header name errors point at the header: the first empty name, else the first repeat
    let names: Vec<&str> = s.headers().iter().map(|h| h.name().as_str()).collect();
    let (problem, index) = if let Some(k) = names.iter().position(|n| n.is_empty()) {
        (HeaderNameProblem::Empty, k)
    } else if let Some(k) = (0..names.len()).find(|&k| names[..k].contains(&names[k])) {
        (HeaderNameProblem::Duplicate, k)
    } else {
        panic!(
            "smithy accepts message {i} ({s:?}), we reject it with {e:?}: not a known difference"
        );
    };
    let header_at = start
        + (PRELUDE_LEN
            + s.headers()[..index]
                .iter()
                .map(header_wire_len)
                .sum::<usize>()) as u64;
    assert_eq!(
        *e,
        DecodeError::HeaderName {
            offset: header_at,
            problem
        },
        "message {i} at {start}: expected header {index} to be reported ({s:?})"
    );
}

/// Bytes one smithy header takes on the wire
fn header_wire_len(h: &SHeader) -> usize {
    let value = match h.value() {
        SValue::Bool(_) => 0,
        SValue::Byte(_) => 1,
        SValue::Int16(_) => 2,
        SValue::Int32(_) => 4,
        SValue::Int64(_) | SValue::Timestamp(_) => 8,
        SValue::ByteArray(b) => 2 + b.len(),
        SValue::String(s) => 2 + s.as_bytes().len(),
        SValue::Uuid(_) => 16,
        other => panic!("smithy decoded an unknown header value {other:?}"),
    };
    1 + h.name().as_bytes().len() + 1 + value
}
