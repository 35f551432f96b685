//! Emulator streaming throughput: 256 MiB from `count` to a raw hyper client over loopback,
//! against a minimal hyper server writing the same pre-encoded frames (the limit of this
//! transport), in the same run. Reports MiB/s, messages/s and time to first byte (the
//! median of 21 one-chunk responses, the same bytes from both servers).
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame, Incoming};
use hyper_util::rt::TokioIo;
use invoke_emulator::Emulator;
use invoke_proto::{
    CONTENT_TYPE_OCTET_STREAM, Event, InvokeComplete, STREAM_PATH_PREFIX, STREAM_PATH_SUFFIX,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

const TOTAL: usize = 256 * 1024 * 1024;

fn frame(event: &Event) -> Bytes {
    let mut w = BytesMut::new();
    event.encode(&mut w).unwrap();
    w.freeze()
}

/// The body the minimal server sends: the pre-encoded frames, one per poll
struct Frames {
    frames: Arc<Vec<Bytes>>,
    next: usize,
}

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let i = self.next;
        self.next += 1;
        Poll::Ready(self.frames.get(i).cloned().map(|b| Ok(Frame::data(b))))
    }
}

/// A hyper server that answers every request with `frames`
async fn minimal_server(frames: Arc<Vec<Bytes>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let _ = stream.set_nodelay(true);
            let frames = Arc::clone(&frames);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req| {
                    let body = Frames {
                        frames: Arc::clone(&frames),
                        next: 0,
                    };
                    async move { Ok::<_, Infallible>(hyper::Response::new(body)) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// One streamed invocation: (body bytes, time to first byte)
async fn fetch(addr: SocketAddr, n: usize, size: usize) -> (usize, Duration) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let body = format!(r#"{{"n":{n},"size":{size}}}"#);
    let req = hyper::Request::post(format!("{STREAM_PATH_PREFIX}count{STREAM_PATH_SUFFIX}"))
        .header("host", addr.to_string())
        .header("content-type", CONTENT_TYPE_OCTET_STREAM)
        .body(http_body_util::Full::new(Bytes::from(body)))
        .unwrap();
    let start = Instant::now();
    let resp = sender.send_request(req).await.unwrap();
    let mut body: Incoming = resp.into_body();
    let mut got = 0;
    let mut ttfb = None;
    while let Some(f) = body.frame().await {
        if let Ok(d) = f.unwrap().into_data() {
            ttfb.get_or_insert_with(|| start.elapsed());
            got += d.len();
        }
    }
    (got, ttfb.unwrap_or_default())
}

fn emulator_vs_minimal(crit: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let emu = rt.block_on(async {
        Emulator::builder()
            .builtins()
            .no_auth()
            .quiet()
            .max_response_bytes(1 << 30)
            .start("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap()
    });
    let mut meta = serde_json::Map::new();
    for (size, name) in [(64 * 1024, "64KiB"), (256, "256B")] {
        let count = TOTAL / size;
        // the same bytes count sends: byte i of the stream is b'a' + i % 26
        let pattern: Bytes = (0..size + 26)
            .map(|i| b'a' + (i % 26) as u8)
            .collect::<Vec<u8>>()
            .into();
        let mut frames: Vec<Bytes> = (0..count)
            .map(|k| {
                let start = (k * size) % 26;
                frame(&Event::PayloadChunk(pattern.slice(start..start + size)))
            })
            .collect();
        frames.push(frame(&Event::InvokeComplete(InvokeComplete::success())));
        let bytes: usize = frames.iter().map(Bytes::len).sum();
        // for the time to first byte, the same one-chunk response `count` sends for `n: 1`
        let one = vec![frames[0].clone(), frames[count].clone()];
        let minimal = rt.block_on(minimal_server(Arc::new(frames)));
        let minimal_one = rt.block_on(minimal_server(Arc::new(one)));
        // both send exactly the same bytes
        assert_eq!(rt.block_on(fetch(emu.addr(), count, size)).0, bytes);
        assert_eq!(rt.block_on(fetch(minimal, count, size)).0, bytes);
        let mut g = crit.benchmark_group(format!("stream_{name}"));
        g.throughput(Throughput::Bytes(bytes as u64));
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(8));
        g.bench_function("emulator", |b| {
            b.to_async(&rt).iter(|| fetch(emu.addr(), count, size));
        });
        g.bench_function("minimal_hyper", |b| {
            b.to_async(&rt).iter(|| fetch(minimal, count, size));
        });
        g.finish();
        // time to first byte: the median of 21 one-chunk responses, the same bytes from both
        let one_bytes = rt.block_on(fetch(minimal_one, 1, size)).0;
        assert_eq!(rt.block_on(fetch(emu.addr(), 1, size)).0, one_bytes);
        let ttfb = |addr| {
            let mut runs: Vec<Duration> = (0..21)
                .map(|_| rt.block_on(fetch(addr, 1, size)).1)
                .collect();
            runs.sort();
            runs[runs.len() / 2]
        };
        let (e, m) = (ttfb(emu.addr()), ttfb(minimal_one));
        println!("{name}: time to first byte, emulator {e:?}, minimal hyper {m:?}");
        meta.insert(
            format!("stream_{name}"),
            serde_json::json!({"bytes": bytes, "messages": count + 1, "ttfb_emulator_us": e.as_micros(), "ttfb_minimal_us": m.as_micros()}),
        );
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/criterion");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("emulator-streams.json"),
        serde_json::to_vec(&meta).unwrap(),
    )
    .unwrap();
    rt.block_on(emu.shutdown());
}

criterion_group!(benches, emulator_vs_minimal);
criterion_main!(benches);
