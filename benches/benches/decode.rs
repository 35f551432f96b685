//! Event-stream decode throughput: invoke-proto vs aws-smithy-eventstream vs the CRC limit
//!
//! Streams of Lambda `PayloadChunk` messages (protocol.md §4.7) with payloads of 16 B, 256 B,
//! 4 KiB, 64 KiB and 1 MiB, about 64 MiB each, fed (a) as one buffer and (b) as 1,500-byte
//! `Bytes` chunks, each its own allocation as if read from a socket. Smithy is fed the way
//! its own receiver (`aws-smithy-http`) feeds it: chunks pushed on a `SegmentedBuf`.
//! `crc32fast::hash` over the whole stream is the physical limit: every byte must be
//! CRC-checked. `benches/report.py` turns the results into the README table.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::hint::black_box;
use std::time::Duration;

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use bytes::{Bytes, BytesMut};
use bytes_utils::SegmentedBuf;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use invoke_proto::{Headers, Message, MessageDecoder, encode_message};

const STREAM_BYTES: usize = 64 * 1024 * 1024;
const CHUNK: usize = 1500;
const PAYLOADS: [(usize, &str); 5] = [
    (16, "16B"),
    (256, "256B"),
    (4096, "4KiB"),
    (65536, "64KiB"),
    (1 << 20, "1MiB"),
];

struct Stream {
    whole: Bytes,
    chunks: Vec<Bytes>,
    messages: usize,
}

fn stream(payload: usize) -> Stream {
    let mut h = Headers::builder();
    h.push(":event-type", "PayloadChunk").unwrap();
    h.push(":content-type", "application/octet-stream").unwrap();
    h.push(":message-type", "event").unwrap();
    let body: Vec<u8> = (0..payload).map(|i| b'a' + (i % 26) as u8).collect();
    let m = Message::new(h.build().unwrap(), body);
    let messages = STREAM_BYTES.div_ceil(m.wire_len() as usize);
    let mut w = BytesMut::with_capacity(messages * m.wire_len() as usize);
    for _ in 0..messages {
        encode_message(&m, &mut w).unwrap();
    }
    let whole = w.freeze();
    let chunks = whole.chunks(CHUNK).map(Bytes::copy_from_slice).collect();
    Stream {
        whole,
        chunks,
        messages,
    }
}

fn ours<'a>(chunks: impl Iterator<Item = &'a Bytes>) -> usize {
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

fn smithy<'a>(chunks: impl Iterator<Item = &'a Bytes>) -> usize {
    let mut d = MessageFrameDecoder::new();
    let mut buf = SegmentedBuf::new();
    let mut n = 0;
    for c in chunks {
        buf.push(c.clone());
        while let DecodedFrame::Complete(m) = d.decode_frame(&mut buf).unwrap() {
            black_box(&m);
            n += 1;
        }
    }
    n
}

fn decode(c: &mut Criterion) {
    let mut meta = serde_json::Map::new();
    for (payload, name) in PAYLOADS {
        let s = stream(payload);
        let mut g = c.benchmark_group(format!("decode_{name}"));
        g.throughput(Throughput::Bytes(s.whole.len() as u64));
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
        let whole = [s.whole.clone()];
        assert_eq!(ours(whole.iter()), s.messages);
        assert_eq!(ours(s.chunks.iter()), s.messages);
        assert_eq!(smithy(whole.iter()), s.messages);
        assert_eq!(smithy(s.chunks.iter()), s.messages);
        g.bench_function("crc32fast_hash", |b| {
            b.iter(|| crc32fast::hash(black_box(&s.whole)));
        });
        g.bench_function("invoke_proto_one_buffer", |b| {
            b.iter(|| ours(whole.iter()));
        });
        g.bench_function("smithy_one_buffer", |b| {
            b.iter(|| smithy(whole.iter()));
        });
        g.bench_function("invoke_proto_1500B_chunks", |b| {
            b.iter(|| ours(s.chunks.iter()));
        });
        g.bench_function("smithy_1500B_chunks", |b| {
            b.iter(|| smithy(s.chunks.iter()));
        });
        g.finish();
        meta.insert(
            format!("decode_{name}"),
            serde_json::json!({"bytes": s.whole.len(), "messages": s.messages}),
        );
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/criterion");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("decode-streams.json"),
        serde_json::to_vec(&meta).unwrap(),
    )
    .unwrap();
}

criterion_group!(benches, decode);
criterion_main!(benches);
