//! Response-stream decode throughput: `InvokeStream` and `MessageDecoder` against the official
//! SDK's decoder and the CRC limit
//!
//! Streams of about 48 MiB of Lambda `PayloadChunk` messages (the three headers Lambda sends)
//! ending with an `InvokeComplete`, with payloads of 16 B, 256 B, 4 KiB, 64 KiB and 1 MiB, fed
//! (a) as one buffer and (b) as 1,500-byte `Bytes` chunks, each its own allocation made before
//! timing, as if read from a socket. Each client is fed chunk by chunk and drained after every
//! chunk:
//!
//! - `InvokeStream`: `feed`, then `next_event` until `Ok(None)`, `finish` at the end;
//! - `MessageDecoder`: `feed`, then `next_message` until `Ok(None)`, `finish` at the end;
//! - smithy, as `aws-sdk-lambda` 1.x reads this stream: chunks pushed on a `SegmentedBuf`,
//!   `MessageFrameDecoder::decode_frame` until incomplete (`aws-smithy-http`'s receiver), then
//!   the generated unmarshaller's work per message: `parse_response_headers`, the
//!   `:content-type` check and a `Blob` of the payload;
//! - `crc32fast::hash` over the whole stream in one buffer: the physical limit, since every
//!   byte must be CRC-checked.
//!
//! Samples of all clients are interleaved (one pass of each in turn) so that the noise of a
//! shared machine hits them alike; each figure is the median pass. A pass is timed on the CPU:
//! wall time minus the time the thread waited for a CPU (Linux's `/proc/thread-self/schedstat`;
//! plain wall time where that is missing), so that other processes preempting the bench do not
//! count. `benches/report.py` turns
//! the results (`target/criterion/decode-streams.json`) into the README table. Run without
//! `--bench` (as `cargo test --benches` does), it checks every client on small streams and
//! measures nothing.

#![allow(missing_docs)]
#![allow(clippy::cast_precision_loss)] // throughput figures

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_eventstream::smithy::parse_response_headers;
use aws_smithy_types::Blob;
use bytes::{Buf, Bytes, BytesMut};
use bytes_utils::SegmentedBuf;

use invoke_proto::{Headers, InvokeStream, Message, MessageDecoder, encode_message};

const STREAM_BYTES: usize = 48 * 1024 * 1024;
const CHUNK: usize = 1500;
const SAMPLES: usize = 21;
const PAYLOADS: [(usize, &str); 5] = [
    (16, "16B"),
    (256, "256B"),
    (4096, "4KiB"),
    (65536, "64KiB"),
    (1 << 20, "1MiB"),
];

/// One response body, whole and cut into separately allocated chunks
struct Stream {
    whole: [Bytes; 1],
    chunks: Vec<Bytes>,
    /// Messages, `InvokeComplete` included
    messages: usize,
}

fn message(event_type: &'static str, content_type: &'static str, payload: Vec<u8>) -> Message {
    let mut h = Headers::builder();
    h.push(":event-type", event_type).unwrap();
    h.push(":content-type", content_type).unwrap();
    h.push(":message-type", "event").unwrap();
    Message::new(h.build().unwrap(), payload)
}

fn stream(payload: usize, bytes: usize) -> Stream {
    let body = (0..payload).map(|i| b'a' + (i % 26) as u8).collect();
    let chunk = message("PayloadChunk", "application/octet-stream", body);
    let chunks = bytes.div_ceil(chunk.wire_len() as usize);
    let mut w = BytesMut::with_capacity((chunks + 1) * chunk.wire_len() as usize);
    for _ in 0..chunks {
        encode_message(&chunk, &mut w).unwrap();
    }
    let complete = message("InvokeComplete", "application/json", b"{}".to_vec());
    encode_message(&complete, &mut w).unwrap();
    let whole = w.freeze();
    Stream {
        chunks: whole.chunks(CHUNK).map(Bytes::copy_from_slice).collect(),
        whole: [whole],
        messages: chunks + 1,
    }
}

fn invoke_stream(chunks: &[Bytes]) -> usize {
    let mut s = InvokeStream::new();
    let mut n = 0;
    for c in chunks {
        s.feed(c.clone());
        while let Some(event) = s.next_event().unwrap() {
            black_box(&event);
            n += 1;
        }
    }
    s.finish().unwrap();
    assert!(s.is_complete());
    n
}

fn message_decoder(chunks: &[Bytes]) -> usize {
    let mut d = MessageDecoder::new();
    let mut n = 0;
    for c in chunks {
        d.feed(c.clone());
        while let Some(m) = d.next_message().unwrap() {
            black_box(&m);
            n += 1;
        }
    }
    d.finish().unwrap();
    n
}

fn smithy(chunks: &[Bytes]) -> usize {
    let mut d = MessageFrameDecoder::new();
    let mut buf = SegmentedBuf::new();
    let mut n = 0;
    for c in chunks {
        buf.push(c.clone());
        while let DecodedFrame::Complete(m) = d.decode_frame(&mut buf).unwrap() {
            let headers = parse_response_headers(&m).unwrap();
            assert_eq!(headers.message_type.as_str(), "event");
            match headers.smithy_type.as_str() {
                "PayloadChunk" => {
                    let ct = headers.content_type().unwrap_or_default();
                    assert_eq!(ct, "application/octet-stream");
                    black_box(Blob::new(m.payload().as_ref()));
                }
                "InvokeComplete" => {
                    let v: serde_json::Value = serde_json::from_slice(m.payload()).unwrap();
                    black_box(v);
                }
                other => panic!("unexpected event {other}"),
            }
            n += 1;
        }
    }
    assert_eq!(buf.remaining(), 0);
    n
}

/// The clients in the order of the JSON file and the table
const CLIENTS: [&str; 7] = [
    "crc32fast_one_buffer",
    "message_decoder_one_buffer",
    "invoke_stream_one_buffer",
    "smithy_one_buffer",
    "message_decoder_1500B_chunks",
    "invoke_stream_1500B_chunks",
    "smithy_1500B_chunks",
];

/// One pass of `client` over `s`; returns the messages seen
fn pass(client: &str, s: &Stream) -> usize {
    let (whole, chunks) = (&s.whole[..], &s.chunks[..]);
    match client {
        "crc32fast_one_buffer" => {
            black_box(crc32fast::hash(black_box(&whole[0])));
            s.messages
        }
        "message_decoder_one_buffer" => message_decoder(whole),
        "invoke_stream_one_buffer" => invoke_stream(whole),
        "smithy_one_buffer" => smithy(whole),
        "message_decoder_1500B_chunks" => message_decoder(chunks),
        "invoke_stream_1500B_chunks" => invoke_stream(chunks),
        "smithy_1500B_chunks" => smithy(chunks),
        _ => unreachable!("{client}"),
    }
}

/// Time this thread has spent runnable but waiting for a CPU; zero where unknown
fn run_delay() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// [`timed_pass`] run `depth` frames deeper in the stack
///
/// Both decoders' speed swings by up to 40% with where the stack lies relative to the static
/// data they read (reproducible with `setarch -R` and a varying environment size; 4K aliasing
/// of stores and loads, most likely), so each round of samples runs at another depth instead
/// of letting one process's stack position decide the ratio.
#[inline(never)]
fn at_depth(depth: usize, client: &str, s: &Stream) -> Duration {
    let frame = black_box([0u8; 192]);
    if depth == 0 {
        return timed_pass(client, s);
    }
    at_depth(depth - 1, client, s) + Duration::from_nanos(u64::from(black_box(frame)[0]))
}

/// Time on the CPU of one pass of `client` over `s`
fn timed_pass(client: &str, s: &Stream) -> Duration {
    let waited = run_delay();
    let start = Instant::now();
    black_box(pass(client, s));
    let wall = start.elapsed();
    wall.saturating_sub(run_delay().saturating_sub(waited))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn main() {
    let measure = std::env::args().any(|a| a == "--bench");
    let (bytes, samples) = if measure {
        (STREAM_BYTES, SAMPLES)
    } else {
        (256 * 1024, 1)
    };
    let mut results = serde_json::Map::new();
    for (payload, name) in PAYLOADS {
        let s = stream(payload, bytes);
        // Warm-up pass, and every client must see every message
        for client in CLIENTS {
            assert_eq!(pass(client, &s), s.messages, "{client} {name}");
        }
        if !measure {
            continue;
        }
        let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(samples); CLIENTS.len()];
        for round in 0..samples {
            for (client, t) in CLIENTS.iter().zip(&mut times) {
                t.push(at_depth(round, client, &s));
            }
        }
        let mut medians = serde_json::Map::new();
        for (client, t) in CLIENTS.iter().zip(times) {
            let m = median(t).as_secs_f64();
            println!(
                "decode_{name}/{client}: {:>9.3} ms  {:>8.0} MiB/s  {:>6.2} M msgs/s",
                m * 1e3,
                s.whole[0].len() as f64 / m / f64::from(1 << 20),
                s.messages as f64 / m / 1e6
            );
            medians.insert((*client).to_owned(), m.into());
        }
        results.insert(
            format!("decode_{name}"),
            serde_json::json!({
                "bytes": s.whole[0].len(),
                "messages": s.messages,
                "samples": samples,
                "median_seconds": medians,
            }),
        );
    }
    if measure {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/criterion");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("decode-streams.json"),
            serde_json::to_vec_pretty(&results).unwrap(),
        )
        .unwrap();
    }
}
