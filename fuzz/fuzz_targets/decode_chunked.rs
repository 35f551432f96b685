//! Streaming must equal one-shot decoding, whatever the chunking
//!
//! Input layout: `[n] [spec; n] [stream...]`. The first byte says how many chunk specs
//! follow (fewer if the input is shorter); the rest is the byte stream. Each spec byte gives
//! a chunk size in its low 7 bits (0 feeds an empty chunk) and, in its high bit, "do not drain
//! `next_message` after this chunk" so that several chunks queue up. The specs repeat until the
//! stream is used up; with no specs, or only empty ones, the stream is fed as one chunk.
//!
//! The stream is decoded three ways: fed whole, fed chunk by chunk (each chunk its own
//! `Bytes`), and through `decode` on a `BytesMut` that the chunks are appended to. All three
//! must return the same messages at the same offsets and end the same way: `Ok`, or the
//! same error with the same offset. Chunked feeding also checks that a message lying inside one
//! chunk is handed out zero-copy, a message split across chunks is assembled, and that an error
//! stays put while more chunks are fed.
#![no_main]

use std::ops::Range;

use invoke_proto::DecodeError;
use invoke_proto::bytes::{Bytes, BytesMut};
use invoke_proto::{Message, MessageDecoder};
use libfuzzer_sys::fuzz_target;

/// Messages with their start offsets, and how the stream ended
type Outcome = (Vec<(u64, Message)>, Result<(), DecodeError>);

/// One chunk of the stream: its byte range and whether to drain after it
struct Chunk {
    range: Range<usize>,
    drain: bool,
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let (specs, stream) = rest.split_at(usize::from(n).min(rest.len()));
    let wire = Bytes::copy_from_slice(stream);
    let chunks = chunks(specs, wire.len());

    let whole = decode_whole(&wire);
    let fed = decode_fed(&wire, &chunks);
    assert_eq!(fed, whole, "chunked feed() differs from one-shot");
    let tokio = decode_tokio_style(&wire, &chunks);
    assert_eq!(tokio, whole, "chunked decode() differs from one-shot");
});

fn chunks(specs: &[u8], len: usize) -> Vec<Chunk> {
    let mut out = Vec::new();
    let mut pos = 0;
    if specs.iter().any(|s| s & 0x7f != 0) {
        for &spec in specs.iter().cycle() {
            if pos == len {
                break;
            }
            let end = (pos + usize::from(spec & 0x7f)).min(len);
            out.push(Chunk {
                range: pos..end,
                drain: spec & 0x80 == 0,
            });
            pos = end;
        }
    }
    if pos < len || out.is_empty() {
        out.push(Chunk {
            range: pos..len,
            drain: true,
        });
    }
    out
}

fn decode_whole(wire: &Bytes) -> Outcome {
    let mut d = MessageDecoder::new();
    d.feed(wire.clone());
    let mut out = Vec::new();
    loop {
        let start = d.offset();
        match d.next_message() {
            Ok(Some(m)) => out.push((start, m)),
            Ok(None) => return (out, d.finish()),
            Err(e) => return (out, Err(e)),
        }
    }
}

fn decode_fed(wire: &Bytes, chunks: &[Chunk]) -> Outcome {
    let mut d = MessageDecoder::new();
    let mut out = Vec::new();
    let mut error: Option<DecodeError> = None;
    let mut fed = 0;
    for (i, chunk) in chunks.iter().enumerate() {
        d.feed(wire.slice(chunk.range.clone()));
        fed = chunk.range.end;
        let last = i + 1 == chunks.len();
        if !(chunk.drain || last) {
            continue;
        }
        loop {
            let start = d.offset();
            match d.next_message() {
                Ok(Some(m)) => {
                    assert!(error.is_none(), "a message after an error");
                    check_copying(wire, chunks, start, &m);
                    out.push((start, m));
                }
                Ok(None) => {
                    assert!(error.is_none(), "Ok(None) after an error");
                    assert_eq!(d.offset() + d.buffered() as u64, fed as u64);
                    break;
                }
                Err(e) => {
                    match &error {
                        None => error = Some(e),
                        Some(first) => assert_eq!(&e, first, "error changed"),
                    }
                    break;
                }
            }
        }
    }
    assert_eq!(fed, wire.len());
    match error {
        Some(e) => {
            assert_eq!(d.finish().as_ref(), Err(&e), "finish forgot the error");
            (out, Err(e))
        }
        None => (out, d.finish()),
    }
}

/// A message inside one chunk is a slice of it; one that spans chunks is a fresh buffer
fn check_copying(wire: &Bytes, chunks: &[Chunk], start: u64, m: &Message) {
    let span = start as usize..(start + m.wire_len()) as usize;
    let inside_one = chunks
        .iter()
        .any(|c| c.range.start <= span.start && span.end <= c.range.end);
    let range = wire.as_ptr_range();
    for part in [m.headers.as_wire(), &m.payload] {
        if !part.is_empty() {
            assert_eq!(
                range.contains(&part.as_ptr()),
                inside_one,
                "message at {span:?}: zero copy expected {inside_one}"
            );
        }
    }
}

fn decode_tokio_style(wire: &Bytes, chunks: &[Chunk]) -> Outcome {
    let mut d = MessageDecoder::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        buf.extend_from_slice(&wire[chunk.range.clone()]);
        if !(chunk.drain || i + 1 == chunks.len()) {
            continue;
        }
        loop {
            let start = d.offset();
            match d.decode(&mut buf) {
                Ok(Some(m)) => out.push((start, m)),
                Ok(None) => break,
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
    match d.decode_eof(&mut buf) {
        Ok(None) => (out, Ok(())),
        Ok(Some(m)) => panic!("decode_eof found a message decode missed: {m:?}"),
        Err(e) => (out, Err(e)),
    }
}
