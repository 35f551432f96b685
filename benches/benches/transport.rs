//! Transport benchmark: the clients side by side against one loopback server, on the same bytes
//!
//! The server answers every request with a pre-built HTTP/1.1 response: a 200 head, then a
//! chunked body of pre-encoded `PayloadChunk` messages and a final `InvokeComplete`, written
//! with one `write_all` from the server's own thread, which serves every connection (so it
//! costs the client side nothing, runs as fast as the socket takes it, and meets every client
//! in the same place; see [`serve`]). Payload messages are grouped into HTTP chunks of at most 64 KiB
//! (one message per chunk when a message is larger).
//!
//! Clients, each on the bench's main thread (async ones on a current-thread runtime, so every
//! task of theirs runs there): `invoke-blocking` (its `Response` iterator), `invoke-tokio`
//! (its `Response` stream), the official
//! `aws-sdk-lambda` (retries and stalled-stream protection as shipped, its `recv()` loop),
//! and raw hyper and raw ureq clients that only count body bytes (the transport limits), and
//! "raw hyper+crc", raw hyper that also runs CRC-32 over every body byte (the least a client
//! that checks the messages' CRCs can spend), "raw hyper+sign", raw hyper that signs each
//! request with SigV4 first (the headers `invoke-tokio` sends, signed by the same code: the
//! least a client of the real service can spend before its request goes out; "raw
//! ureq+sign" the same over raw ureq, as `invoke-blocking`), "raw hyper+proto", raw hyper
//! that also classifies the head and decodes the body with `invoke-proto` (events and CRCs
//! checked: all that a correct client must do, with nothing else), and "raw hyper inline",
//! raw hyper polling its connection within the call as `invoke-tokio` does rather than on a
//! task of its own (diagnostic rows, measured after the others).
//! Samples of the clients are interleaved; the table shows medians. Client CPU time is the
//! main thread's CPU time (the server's share is excluded).
//!
//! Built with `--features count-allocations` (`benches/allocations.sh`), it also counts what
//! each call asks of the allocator on the client's thread, where every client does all its
//! work: blocks, bytes, and the most bytes held at once. The counting allocator slows every
//! allocation, so that build's times are not the release's.
//!
//! `cargo bench -p invoke-benches --bench transport`; JSON for `benches/report.py` goes to
//! `target/criterion/transport.json`, with the host it ran on (see [`host`]).
//! `TRANSPORT_SAMPLES` overrides the samples per client and throughput workload (default 9),
//! `TRANSPORT_TTFE_CALLS` the calls per client for the time to first event (default 200);
//! `TRANSPORT_ONLY` (client names, comma separated) and `TRANSPORT_WORKLOAD` (`w64KiB`,
//! `w256B`, `ttfe16B`) narrow a run down for profiling;
//! `TRANSPORT_PIN=1` pins the client and the server to two cores (see [`pinned_cores`]);
//! `TRANSPORT_TTFE_PAUSE_US=N` sleeps N µs before each call of the time to first event,
//! outside its timing (a diagnostic: the calls then start from idle cores, as spaced-out calls
//! do, instead of back to back); `TRANSPORT_ONE_PHASE=1` interleaves every selected client's
//! calls in one phase (see [`Phase`]), so that a goal row and a diagnostic one, the floor of
//! a goal, compare within the same rounds; `TRANSPORT_SHUFFLE=1` orders the calls of every
//! round anew, as the diagnostic rounds always are (see [`Shuffle`]).
#![allow(missing_docs)]

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use cpu_time::ThreadTime;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use invoke_proto::{
    EndpointConfig, Event, InvokeComplete, InvokeParams, STREAM_PATH_PREFIX, STREAM_PATH_SUFFIX,
    encode_payload_chunk, resolve_endpoint,
};
use tokio::runtime::Runtime;

const MIB: usize = 1 << 20;
/// Largest HTTP chunk the server writes (unless one message is larger)
const HTTP_CHUNK: usize = 64 * 1024;
/// Test credentials (the server checks no signature; the clients sign as usual)
const KEY: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// Calls per client for the time to first event (unless `TRANSPORT_TTFE_CALLS` says)
const TTFE_CALLS: usize = 200;

/// One workload: `count` payload messages of `size` bytes, served as function `name`
#[derive(Clone, Copy)]
struct Workload {
    name: &'static str,
    size: usize,
    count: usize,
}

const WORKLOADS: [Workload; 3] = [
    Workload {
        name: "w64KiB",
        size: 64 * 1024,
        count: 256 * MIB / (64 * 1024),
    },
    Workload {
        name: "w256B",
        size: 256,
        count: 64 * MIB / 256,
    },
    Workload {
        name: "ttfe16B",
        size: 16,
        count: 1,
    },
];

impl Workload {
    fn payload_bytes(self) -> u64 {
        (self.size * self.count) as u64
    }

    /// Payload messages plus `InvokeComplete`
    fn messages(self) -> u64 {
        self.count as u64 + 1
    }

    /// The whole HTTP response (head and chunked body) and the length of the decoded body
    fn response(self) -> (Bytes, u64) {
        let pattern: Vec<u8> = (0..self.size + 26).map(|i| b'a' + (i % 26) as u8).collect();
        let mut frames = Vec::with_capacity(self.count + 1);
        for k in 0..self.count {
            let start = (k * self.size) % 26;
            let mut frame = BytesMut::new();
            encode_payload_chunk(&pattern[start..start + self.size], &mut frame).unwrap();
            frames.push(frame);
        }
        let mut complete = BytesMut::new();
        Event::InvokeComplete(InvokeComplete::success())
            .encode(&mut complete)
            .unwrap();
        frames.push(complete);
        let body_len: usize = frames.iter().map(BytesMut::len).sum();
        let mut out = Vec::with_capacity(body_len + body_len / 1000 + 4096);
        out.extend_from_slice(
            b"HTTP/1.1 200 OK\r\n\
              Content-Type: application/octet-stream\r\n\
              X-Amz-Executed-Version: $LATEST\r\n\
              x-amzn-RequestId: 6f1d2c3b-0000-4000-8000-000000000000\r\n\
              Transfer-Encoding: chunked\r\n\r\n",
        );
        let mut chunk: Vec<u8> = Vec::with_capacity(HTTP_CHUNK);
        let flush = |chunk: &mut Vec<u8>, out: &mut Vec<u8>| {
            if !chunk.is_empty() {
                write!(out, "{:x}\r\n", chunk.len()).unwrap();
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
                chunk.clear();
            }
        };
        for frame in &frames {
            if chunk.len() + frame.len() > HTTP_CHUNK {
                flush(&mut chunk, &mut out);
            }
            chunk.extend_from_slice(frame);
        }
        flush(&mut chunk, &mut out);
        out.extend_from_slice(b"0\r\n\r\n");
        (out.into(), body_len as u64)
    }
}

/// Connections the server accepted (a client that keeps its connection warm adds none per call)
static ACCEPTED: AtomicU64 = AtomicU64::new(0);

/// Longest wait for a request's head or the socket's room for the response
const SERVER_WAIT: Duration = Duration::from_secs(600);

/// The loopback server: keep-alive, the canned response of the function named in the path;
/// every connection is served by the same thread (a current-thread runtime, a task per
/// connection)
///
/// One thread for all: clients whose calls are interleaved then meet the same server thread
/// in the same place. With a thread per connection, each client had its own server thread,
/// which the scheduler put on the client's core or the other one, run by run: on a 2-core VM
/// the time to first event of one client against another swung between 0.57 and 2.9 x from
/// run to run, while the same runs against one server thread gave 1.13 to 1.15 x.
fn serve(responses: Arc<HashMap<String, Bytes>>, pin: Option<core_affinity::CoreId>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        pin_to(pin);
        current_thread().block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                ACCEPTED.fetch_add(1, Ordering::Relaxed);
                let responses = Arc::clone(&responses);
                tokio::spawn(async move {
                    let _ = connection(stream, &responses).await;
                });
            }
        });
    });
    addr
}

async fn connection(
    stream: tokio::net::TcpStream,
    responses: &HashMap<String, Bytes>,
) -> std::io::Result<()> {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
    stream.set_nodelay(true)?;
    let (reader, mut writer) = stream.into_split();
    let mut reader = tokio::io::BufReader::new(reader);
    let mut line = String::new();
    loop {
        // request line, headers, then Content-Length bytes of body
        let head = tokio::time::timeout(SERVER_WAIT, async {
            line.clear();
            if reader.read_line(&mut line).await? == 0 {
                return Ok(None);
            }
            let path = line.split(' ').nth(1).unwrap_or_default().to_owned();
            let mut length = 0u64;
            loop {
                line.clear();
                if reader.read_line(&mut line).await? == 0 || line.len() > 16 * 1024 {
                    return Ok(None);
                }
                let header = line.trim_end();
                if header.is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                    assert!(
                        !name.eq_ignore_ascii_case("transfer-encoding"),
                        "chunked requests are not expected"
                    );
                }
            }
            tokio::io::copy(
                &mut (&mut reader).take(length.min(MIB as u64)),
                &mut tokio::io::sink(),
            )
            .await?;
            Ok::<_, std::io::Error>(Some(path))
        });
        let Some(path) = head.await?? else {
            return Ok(());
        };
        let function = path
            .strip_prefix(STREAM_PATH_PREFIX)
            .and_then(|p| p.split('?').next())
            .and_then(|p| p.strip_suffix(STREAM_PATH_SUFFIX))
            .unwrap_or_default();
        let response = match responses.get(function) {
            Some(response) => &response[..],
            None => b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
        };
        tokio::time::timeout(SERVER_WAIT, writer.write_all(response)).await??;
    }
}

/// What one call saw
struct Outcome {
    /// Payload bytes for the typed clients, body bytes for the raw ones
    bytes: u64,
    /// From the call to the first payload event (first body byte for the raw clients)
    first: Duration,
}

/// Counts what a call receives, from its start: the top of every `Transport::call`, before
/// the client makes its request
struct Tally {
    start: Instant,
    bytes: u64,
    first: Option<Duration>,
}

impl Tally {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            bytes: 0,
            first: None,
        }
    }

    fn bytes(&mut self, len: usize) {
        self.first.get_or_insert_with(|| self.start.elapsed());
        self.bytes += len as u64;
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::PayloadChunk(b) => self.bytes(b.len()),
            Event::InvokeComplete(c) => assert!(!c.is_error()),
            _ => {}
        }
    }

    fn outcome(self) -> Outcome {
        Outcome {
            bytes: self.bytes,
            first: self.first.unwrap_or_default(),
        }
    }
}

/// One call measured: wall and client-thread CPU time
struct Sample {
    wall: Duration,
    cpu: Duration,
    first: Duration,
    /// Connections the call opened
    opened: u64,
    /// What the call asked of the allocator (`count-allocations` builds)
    allocations: Option<Allocations>,
}

/// What a call asked of the allocator on the client's thread
#[derive(Clone, Copy)]
struct Allocations {
    /// Blocks allocated (a `realloc` counts as one)
    blocks: u64,
    /// Bytes allocated, all blocks together
    bytes: u64,
    /// The most bytes the call held at one time (its own allocations only)
    peak_bytes: u64,
}

/// Runs `call`, counting its allocations when the bench is built to
fn counted(call: impl FnOnce() -> Outcome) -> (Outcome, Option<Allocations>) {
    #[cfg(feature = "count-allocations")]
    {
        let mut outcome = None;
        let info = allocation_counter::measure(|| outcome = Some(call()));
        let allocations = Allocations {
            blocks: info.count_total,
            bytes: info.bytes_total,
            peak_bytes: info.bytes_max,
        };
        (outcome.expect("the call ran"), Some(allocations))
    }
    #[cfg(not(feature = "count-allocations"))]
    (call(), None)
}

/// The rounds a client's calls are made in: the clients of one phase take turns, call by call,
/// and each phase runs after the one before
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The clients the goals compare, first
    Goal,
    /// The diagnostic rows, among themselves, in a new order each round: what a client's first
    /// event costs depends on the call before it (raw hyper+crc's took 47 to 55 µs after raw
    /// hyper inline's, 54 to 65 after raw ureq+sign's, on 2026-12-06), so a floor row and its
    /// baseline must follow the same mix of calls
    Diagnostic,
    /// "raw ureq+deadline", alone: it starts a resolver thread on every call, whose end lands
    /// in the next client's call (the time to first event of the client after it rose by
    /// about 0.06 x in the first rounds; in the diagnostic ones, raw hyper+crc came after it,
    /// and raw hyper+sign's ratio to it fell from about 1.2 to 1.05 to 1.08 x)
    Alone,
}

/// The order of a round's calls: a fixed sequence of permutations (xorshift64, Fisher-Yates),
/// so that each client of the phase follows each other about as often, itself included
/// (across the end of a round), in the same orders in every run
struct Shuffle(u64);

impl Shuffle {
    fn shuffle(&mut self, items: &mut [usize]) {
        for i in (1..items.len()).rev() {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            items.swap(i, (self.0 % (i as u64 + 1)) as usize);
        }
    }
}

/// A client under test
trait Transport {
    fn name(&self) -> &'static str;
    /// Whether `Outcome::bytes` counts the decoded payload (else the HTTP body)
    fn typed(&self) -> bool;
    /// When its calls are made (see `main`)
    fn phase(&self) -> Phase {
        Phase::Goal
    }
    fn call(&mut self, function: &str) -> Outcome;
}

fn measure(t: &mut dyn Transport, w: Workload, expect: (u64, u64)) -> Sample {
    let accepted = ACCEPTED.load(Ordering::Relaxed);
    let cpu = ThreadTime::now();
    let start = Instant::now();
    let (outcome, allocations) = counted(|| t.call(w.name));
    let wall = start.elapsed();
    let cpu = cpu.elapsed();
    let want = if t.typed() { expect.0 } else { expect.1 };
    assert_eq!(outcome.bytes, want, "{} on {}", t.name(), w.name);
    Sample {
        wall,
        cpu,
        first: outcome.first,
        opened: ACCEPTED.load(Ordering::Relaxed) - accepted,
        allocations,
    }
}

// ---------------------------------------------------------------------------------------
// invoke-blocking: the Response iterator, as users drive it

struct Blocking(invoke_blocking::Client);

impl Blocking {
    fn new(url: &str) -> Self {
        let endpoint = resolve_endpoint(
            &EndpointConfig::default()
                .with_region("us-east-1")
                .with_custom(url),
        )
        .unwrap();
        let client = invoke_blocking::Client::builder(endpoint)
            .credentials(invoke_proto::Credentials::new(KEY, SECRET, None))
            .proxy_env(invoke_blocking::ProxyEnv::none())
            .build()
            .unwrap();
        Self(client)
    }
}

impl Transport for Blocking {
    fn name(&self) -> &'static str {
        "invoke-blocking"
    }
    fn typed(&self) -> bool {
        true
    }
    fn call(&mut self, function: &str) -> Outcome {
        let mut tally = Tally::new();
        for event in self.0.invoke(&InvokeParams::new(function, "{}")).unwrap() {
            tally.event(event.unwrap());
        }
        tally.outcome()
    }
}

// ---------------------------------------------------------------------------------------
// aws-sdk-lambda: current release, default retries and stalled-stream protection

struct Sdk {
    rt: Runtime,
    client: aws_sdk_lambda::Client,
}

impl Sdk {
    fn new(url: &str) -> Self {
        let rt = current_thread();
        let conf = rt.block_on(
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("us-east-1"))
                .endpoint_url(url)
                .credentials_provider(aws_credential_types::Credentials::new(
                    KEY, SECRET, None, None, "bench",
                ))
                // the SDK's own hyper 1 client, without a TLS stack (the server is plain http)
                .http_client(aws_smithy_http_client::Builder::new().build_http())
                .load(),
        );
        let client = aws_sdk_lambda::Client::new(&conf);
        Self { rt, client }
    }
}

impl Transport for Sdk {
    fn name(&self) -> &'static str {
        "aws-sdk-lambda"
    }
    fn typed(&self) -> bool {
        true
    }
    fn call(&mut self, function: &str) -> Outcome {
        use aws_sdk_lambda::types::InvokeWithResponseStreamResponseEvent as E;
        let mut tally = Tally::new();
        self.rt.block_on(async {
            let mut out = self
                .client
                .invoke_with_response_stream()
                .function_name(function)
                .payload(aws_sdk_lambda::primitives::Blob::new("{}"))
                .send()
                .await
                .unwrap();
            while let Some(event) = out.event_stream.recv().await.unwrap() {
                match event {
                    E::PayloadChunk(chunk) => {
                        tally.bytes(chunk.payload.map_or(0, |b| b.as_ref().len()));
                    }
                    E::InvokeComplete(c) => assert!(c.error_code.is_none()),
                    _ => {}
                }
            }
            tally.outcome()
        })
    }
}

// ---------------------------------------------------------------------------------------
// raw hyper 1: one kept connection, counts body bytes; "raw hyper+crc" also runs CRC-32 over
// every body byte, as any client that checks the messages' CRCs must (the floor of the 64 KiB
// goal: a decoder can cost no less than this); "raw hyper+sign" signs each request with SigV4
// first, as any client of the real service must (the floor of the first-event goal: the
// request invoke-tokio sends, signed by the same code); "raw hyper+proto" signs as well, then
// classifies the head and decodes the body with invoke-proto's `InvokeStream` (the floor of
// both goals: the protocol's whole work, on raw hyper); "raw hyper inline" polls its
// connection itself, as invoke-tokio does, instead of spawning it as a task (what that way of
// driving hyper saves, without a decoder)

type HyperConnection =
    hyper::client::conn::http1::Connection<TokioIo<tokio::net::TcpStream>, Full<Bytes>>;

/// What a raw hyper row does besides sending its request and counting the body's bytes
#[derive(Clone, Copy, PartialEq, Eq)]
enum Extra {
    /// Nothing: "raw hyper"
    None,
    /// A CRC-32 over every body byte: "raw hyper+crc"
    Crc,
    /// Signs each request first: "raw hyper+sign"
    Sign,
    /// Polls its connection within the call: "raw hyper inline"
    Inline,
    /// Signs each request, classifies the head and decodes the body with `invoke-proto`,
    /// events and CRCs as the clients check them: "raw hyper+proto"
    Proto,
}

struct RawHyper {
    rt: Runtime,
    addr: SocketAddr,
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    extra: Extra,
    /// The inline connection (`None` once it ended, or on a task)
    conn: Option<HyperConnection>,
    /// "raw hyper+sign" and "raw hyper+proto" only: their credentials (the key derived
    /// once, as a client's are)
    sign: Option<invoke_proto::Credentials>,
}

impl RawHyper {
    fn new(addr: SocketAddr, extra: Extra) -> Self {
        let inline = extra == Extra::Inline;
        let rt = current_thread();
        let (sender, conn) = rt.block_on(async {
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            if inline {
                return (sender, Some(conn));
            }
            tokio::spawn(conn);
            (sender, None)
        });
        Self {
            rt,
            addr,
            sender,
            extra,
            conn,
            sign: matches!(extra, Extra::Sign | Extra::Proto)
                .then(|| invoke_proto::Credentials::new(KEY, SECRET, None)),
        }
    }

    /// The request of a call: the path, the host and the payload; for the rows that sign
    /// ("raw hyper+sign", "raw hyper+proto") the headers invoke-tokio sends, signed at this
    /// moment
    fn request(&self, function: &str) -> hyper::Request<Full<Bytes>> {
        let path = format!("{STREAM_PATH_PREFIX}{function}{STREAM_PATH_SUFFIX}");
        let body = Bytes::from_static(b"{}");
        let Some(credentials) = &self.sign else {
            return hyper::Request::post(path)
                .header("host", self.addr.to_string())
                .body(Full::new(body))
                .unwrap();
        };
        let builder = http::Request::post(path).header("host", self.addr.to_string());
        let mut req = signed(builder, body, credentials);
        // unsigned, as invoke-tokio's (same length)
        req.headers_mut().insert(
            "user-agent",
            http::HeaderValue::from_static("raw-hyper+si/0.1.0"),
        );
        req.map(Full::new)
    }
}

/// The request `builder` began with `body`, the headers the clients add (content type and
/// length), signed now with `credentials` as the clients sign
fn signed(
    builder: http::request::Builder,
    body: Bytes,
    credentials: &invoke_proto::Credentials,
) -> http::Request<Bytes> {
    let mut req = builder
        .header("content-type", "application/octet-stream")
        .header("content-length", body.len())
        .body(body)
        .unwrap();
    invoke_proto::sign(
        &mut req,
        credentials,
        &invoke_proto::SigningScope::lambda("us-east-1"),
        std::time::SystemTime::now(),
    )
    .unwrap();
    req
}

/// Lets hyper work on an inline connection (`None` once it ended)
fn drive(conn: &mut Option<HyperConnection>, cx: &mut std::task::Context<'_>) {
    if let Some(c) = conn
        && std::pin::Pin::new(c).poll(cx).is_ready()
    {
        *conn = None;
    }
}

impl Transport for RawHyper {
    fn name(&self) -> &'static str {
        match self.extra {
            Extra::None => "raw hyper",
            Extra::Crc => "raw hyper+crc",
            Extra::Sign => "raw hyper+sign",
            Extra::Inline => "raw hyper inline",
            Extra::Proto => "raw hyper+proto",
        }
    }
    fn typed(&self) -> bool {
        self.extra == Extra::Proto
    }
    // the diagnostic rows get rounds of their own, so the goal rows are measured as before
    // they came
    fn phase(&self) -> Phase {
        if self.extra == Extra::None {
            Phase::Goal
        } else {
            Phase::Diagnostic
        }
    }
    fn call(&mut self, function: &str) -> Outcome {
        let mut tally = Tally::new();
        let req = self.request(function);
        let sender = &mut self.sender;
        let conn = &mut self.conn;
        if self.extra != Extra::Inline {
            return self.rt.block_on(async {
                sender.ready().await.unwrap();
                let (head, mut body) = sender.send_request(req).await.unwrap().into_parts();
                // only "raw hyper+crc" makes one, only "raw hyper+proto" decodes: raw hyper
                // does what it did before the rows came
                let mut crc = (self.extra == Extra::Crc).then(crc32fast::Hasher::new);
                let mut events = (self.extra == Extra::Proto).then(|| {
                    match invoke_proto::parse_response_head(head.status, &head.headers) {
                        Ok(invoke_proto::ResponseHead::Stream(head)) => head.into_stream(),
                        other => panic!("not a stream head: {other:?}"),
                    }
                });
                while let Some(frame) = body.frame().await {
                    if let Ok(data) = frame.unwrap().into_data() {
                        if let Some(crc) = &mut crc {
                            crc.update(&data);
                        }
                        let Some(events) = &mut events else {
                            tally.bytes(data.len());
                            continue;
                        };
                        events.feed(data);
                        while let Some(event) = events.next_event().unwrap() {
                            tally.event(event);
                        }
                    }
                }
                std::hint::black_box(crc.map(crc32fast::Hasher::finalize));
                if let Some(events) = &mut events {
                    events.finish().unwrap();
                }
                tally.outcome()
            });
        }
        self.rt.block_on(async {
            std::future::poll_fn(|cx| {
                drive(conn, cx);
                sender.poll_ready(cx)
            })
            .await
            .unwrap();
            let mut response = std::pin::pin!(sender.send_request(req));
            let response = std::future::poll_fn(|cx| {
                drive(conn, cx);
                response.as_mut().poll(cx)
            })
            .await
            .unwrap();
            let mut body = response.into_body();
            loop {
                let frame = std::future::poll_fn(|cx| {
                    use hyper::body::Body as _;
                    if let std::task::Poll::Ready(f) = std::pin::Pin::new(&mut body).poll_frame(cx)
                    {
                        return std::task::Poll::Ready(f);
                    }
                    drive(conn, cx);
                    std::pin::Pin::new(&mut body).poll_frame(cx)
                })
                .await;
                let Some(frame) = frame else {
                    break;
                };
                if let Ok(data) = frame.unwrap().into_data() {
                    tally.bytes(data.len());
                }
            }
            tally.outcome()
        })
    }
}

// ---------------------------------------------------------------------------------------
// raw ureq 3: the agent's pool, counts body bytes

struct RawUreq {
    name: &'static str,
    phase: Phase,
    agent: ureq::Agent,
    base: String,
    buf: Vec<u8>,
    /// "raw ureq+sign": signs each request with these first (the headers invoke-blocking
    /// sends, signed by the same code)
    sign: Option<invoke_proto::Credentials>,
}

impl Transport for RawUreq {
    fn name(&self) -> &'static str {
        self.name
    }
    fn typed(&self) -> bool {
        false
    }
    fn phase(&self) -> Phase {
        self.phase
    }
    fn call(&mut self, function: &str) -> Outcome {
        let mut tally = Tally::new();
        let url = format!(
            "{}{STREAM_PATH_PREFIX}{function}{STREAM_PATH_SUFFIX}",
            self.base
        );
        let response = match &self.sign {
            None => self.agent.post(&url).send(&b"{}"[..]).unwrap(),
            Some(credentials) => {
                let req = signed(
                    http::Request::post(url),
                    Bytes::from_static(b"{}"),
                    credentials,
                );
                self.agent.run(req.map(|b| b.to_vec())).unwrap()
            }
        };
        let mut reader = response.into_body().into_reader();
        loop {
            let n = reader.read(&mut self.buf).unwrap();
            if n == 0 {
                break;
            }
            tally.bytes(n);
        }
        tally.outcome()
    }
}

// ---------------------------------------------------------------------------------------
// invoke-tokio: its Response stream, on a current-thread runtime like the SDK

struct Tokio {
    rt: Runtime,
    client: invoke_tokio::Client,
}

impl Tokio {
    fn new(url: &str) -> Self {
        let endpoint = resolve_endpoint(
            &EndpointConfig::default()
                .with_region("us-east-1")
                .with_custom(url),
        )
        .unwrap();
        let rt = current_thread();
        let client = rt.block_on(async {
            invoke_tokio::Client::builder(endpoint)
                .credentials(invoke_proto::Credentials::new(KEY, SECRET, None))
                .proxy_env(invoke_tokio::ProxyEnv::none())
                .build()
                .unwrap()
        });
        Self { rt, client }
    }
}

impl Transport for Tokio {
    fn name(&self) -> &'static str {
        "invoke-tokio"
    }
    fn typed(&self) -> bool {
        true
    }
    fn call(&mut self, function: &str) -> Outcome {
        use futures_core::Stream as _;
        let mut tally = Tally::new();
        self.rt.block_on(async {
            let response = self
                .client
                .invoke(&InvokeParams::new(function, "{}"))
                .await
                .unwrap();
            let mut events = std::pin::pin!(response);
            while let Some(event) = std::future::poll_fn(|cx| events.as_mut().poll_next(cx)).await {
                tally.event(event.unwrap());
            }
            tally.outcome()
        })
    }
}

fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn percentile(mut v: Vec<Duration>, p: usize) -> Duration {
    v.sort();
    v[(v.len() * p / 100).min(v.len() - 1)]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[allow(clippy::cast_precision_loss, clippy::too_many_lines)]
fn main() {
    let samples: usize = std::env::var("TRANSPORT_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(9);
    let ttfe_calls: usize = std::env::var("TRANSPORT_TTFE_CALLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(TTFE_CALLS);
    let ttfe_pause = std::env::var("TRANSPORT_TTFE_PAUSE_US")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_micros);
    let one_phase = std::env::var_os("TRANSPORT_ONE_PHASE").is_some_and(|v| v == "1");
    let shuffle_all = std::env::var_os("TRANSPORT_SHUFFLE").is_some_and(|v| v == "1");
    let phase_of = |c: &dyn Transport| if one_phase { Phase::Goal } else { c.phase() };
    let mut responses = HashMap::new();
    let mut expect = HashMap::new();
    let workload = std::env::var("TRANSPORT_WORKLOAD").ok();
    let selected = |w: &Workload| workload.as_ref().is_none_or(|only| only == w.name);
    for w in WORKLOADS.iter().filter(|w| selected(w)) {
        let (response, body) = w.response();
        responses.insert(w.name.to_owned(), response);
        expect.insert(w.name, (w.payload_bytes(), body));
    }
    // the client thread measures on one core, the server answers from another
    let (client_core, server_core) = pinned_cores().unzip();
    pin_to(client_core);
    let addr = serve(Arc::new(responses), server_core);
    let url = format!("http://{addr}");
    let mut clients: Vec<Box<dyn Transport>> = vec![
        Box::new(Blocking::new(&url)),
        Box::new(Sdk::new(&url)),
        Box::new(RawHyper::new(addr, Extra::None)),
        Box::new(RawHyper::new(addr, Extra::Crc)),
        Box::new(RawHyper::new(addr, Extra::Sign)),
        Box::new(RawHyper::new(addr, Extra::Inline)),
        Box::new(RawHyper::new(addr, Extra::Proto)),
        Box::new(RawUreq {
            name: "raw ureq",
            phase: Phase::Goal,
            agent: ureq::Agent::new_with_defaults(),
            base: url.clone(),
            buf: vec![0; 64 * 1024],
            sign: None,
        }),
        // diagnostic: the same signing each request first (the first-event goal's floor)
        Box::new(RawUreq {
            name: "raw ureq+sign",
            phase: Phase::Diagnostic,
            agent: ureq::Agent::new_with_defaults(),
            base: url.clone(),
            buf: vec![0; 64 * 1024],
            sign: Some(invoke_proto::Credentials::new(KEY, SECRET, None)),
        }),
        // diagnostic: the same with an overall deadline, as invoke-blocking sets one; ureq 3.5
        // then resolves the host on a new thread on every call, pooled connection or not
        Box::new(RawUreq {
            name: "raw ureq+deadline",
            phase: Phase::Alone,
            agent: ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(15 * 60)))
                .build()
                .new_agent(),
            base: url.clone(),
            buf: vec![0; 64 * 1024],
            sign: None,
        }),
        Box::new(Tokio::new(&url)),
    ];
    // for profiling one client on one workload: TRANSPORT_ONLY=name (or names, comma
    // separated), TRANSPORT_WORKLOAD=name
    if let Ok(only) = std::env::var("TRANSPORT_ONLY") {
        clients.retain(|c| only.split(',').any(|name| name == c.name()));
    }
    let mut json = serde_json::Map::new();
    for w in WORKLOADS.into_iter().filter(selected) {
        let throughput = w.count > 1;
        let rounds = if throughput { samples } else { ttfe_calls };
        let pause = ttfe_pause.filter(|_| !throughput);
        let mut got: Vec<Vec<Sample>> = clients.iter().map(|_| Vec::new()).collect();
        // a warm-up call each (connection, pools, page faults), then interleaved rounds, phase
        // by phase (see `Phase`)
        for c in &mut clients {
            measure(c.as_mut(), w, expect[w.name]);
        }
        let mut order = Shuffle(0x9e37_79b9_7f4a_7c15);
        for phase in [Phase::Goal, Phase::Diagnostic, Phase::Alone] {
            let mut members: Vec<usize> = (0..clients.len())
                .filter(|&i| phase_of(clients[i].as_ref()) == phase)
                .collect();
            for _ in 0..rounds {
                if phase == Phase::Diagnostic || shuffle_all {
                    order.shuffle(&mut members);
                }
                for &i in &members {
                    if let Some(pause) = pause {
                        std::thread::sleep(pause);
                    }
                    got[i].push(measure(clients[i].as_mut(), w, expect[w.name]));
                }
            }
        }
        let mib = w.payload_bytes() as f64 / MIB as f64;
        let mut rows = serde_json::Map::new();
        println!(
            "\n{} ({} x {} B payload messages, {rounds} calls per client)",
            w.name, w.count, w.size
        );
        if throughput {
            println!(
                "{:<18} {:>10} {:>12} {:>14} {:>12}",
                "client", "MiB/s", "msgs/s", "CPU ms/MiB", "connections"
            );
        } else {
            println!(
                "{:<18} {:>12} {:>12} {:>12}",
                "client", "median µs", "p90 µs", "connections"
            );
        }
        for (c, g) in clients.iter().zip(got) {
            let wall = median(g.iter().map(|s| s.wall).collect());
            let cpu = median(g.iter().map(|s| s.cpu).collect());
            let firsts: Vec<Duration> = g.iter().map(|s| s.first).collect();
            let first10 = percentile(firsts.clone(), 10);
            let (first50, first90) = (median(firsts.clone()), percentile(firsts, 90));
            let opened: u64 = g.iter().map(|s| s.opened).sum();
            let mut row = serde_json::json!({
                "mib_per_s": mib / wall.as_secs_f64(),
                "msgs_per_s": w.messages() as f64 / wall.as_secs_f64(),
                "cpu_ms_per_mib": cpu.as_secs_f64() * 1e3 / mib,
                "ttfe_median_us": micros(first50),
                "ttfe_p90_us": micros(first90),
                // the calls least disturbed by anything else running: for comparing builds
                "ttfe_p10_us": micros(first10),
                "cpu_us_min": micros(g.iter().map(|s| s.cpu).min().unwrap_or_default()),
                "connections_opened": opened,
            });
            let counts: Vec<Allocations> = g.iter().filter_map(|s| s.allocations).collect();
            if !counts.is_empty() {
                let median_of = |f: fn(&Allocations) -> u64| {
                    let mut v: Vec<u64> = counts.iter().map(f).collect();
                    v.sort_unstable();
                    v[v.len() / 2]
                };
                let (blocks, bytes, peak) = (
                    median_of(|a| a.blocks),
                    median_of(|a| a.bytes),
                    median_of(|a| a.peak_bytes),
                );
                let fewest = counts.iter().map(|a| a.blocks).min().unwrap_or(0);
                let most = counts.iter().map(|a| a.blocks).max().unwrap_or(0);
                row["allocations"] = serde_json::json!({
                    "blocks_median": blocks,
                    "blocks_min": fewest,
                    "blocks_max": most,
                    "bytes_median": bytes,
                    "peak_bytes_median": peak,
                    "peak_bytes_max": counts.iter().map(|a| a.peak_bytes).max(),
                });
                println!(
                    "{:<18} allocations per call: {blocks} blocks (min {fewest}, max {most}), \
                     {bytes} bytes, peak {peak} bytes held",
                    c.name(),
                );
            }
            if throughput {
                println!(
                    "{:<18} {:>10.0} {:>12.0} {:>14.3} {opened:>12}",
                    c.name(),
                    row["mib_per_s"].as_f64().unwrap(),
                    row["msgs_per_s"].as_f64().unwrap(),
                    row["cpu_ms_per_mib"].as_f64().unwrap(),
                );
            } else {
                println!(
                    "{:<18} {:>12.1} {:>12.1} {opened:>12}",
                    c.name(),
                    micros(first50),
                    micros(first90)
                );
            }
            rows.insert(c.name().to_owned(), row);
        }
        json.insert(
            w.name.to_owned(),
            serde_json::json!({"payload_bytes": w.payload_bytes(), "messages": w.messages(), "calls": rounds, "clients": rows}),
        );
    }
    let host = host();
    println!(
        "\nhost: {} (family {}, model {}); CRC-32 ({}): {:.1} GiB/s over 64 KiB in cache",
        host["cpu"].as_str().unwrap_or("?"),
        host["family"].as_str().unwrap_or("?"),
        host["model"].as_str().unwrap_or("?"),
        host["crc_kernel"].as_str().unwrap_or("?"),
        host["crc32fast_gib_per_s"].as_f64().unwrap_or(0.0),
    );
    json.insert("host".to_owned(), host);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/criterion");
    std::fs::create_dir_all(&dir).unwrap();
    // a counting build's timings are not the release's: they go elsewhere
    let file = dir.join(if cfg!(feature = "count-allocations") {
        "transport-allocations.json"
    } else {
        "transport.json"
    });
    std::fs::write(&file, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    println!("\nwrote {}", file.display());
}

/// What the run ran on, for `transport.json`: the CPU as `/proc/cpuinfo` names it, the
/// instructions that decide the speed of the CRC every client checking messages must run (so
/// the floor of the 64 KiB goal), the L2 cache per core, and `crc32fast`'s speed over 64 KiB
/// in cache measured now. Figures from hosts that differ here are not comparable: a VM that
/// shows QEMU's generic `EPYC` model (no AVX-512, no VPCLMULQDQ) ran the CRC at about a
/// sixth of the speed of one showing its host's AVX-512 (9 against 53 GiB/s).
fn host() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == name).then(|| v.trim().to_owned())
            })
            .unwrap_or_else(|| "?".to_owned())
    };
    let l2 = std::fs::read_to_string("/sys/devices/system/cpu/cpu0/cache/index2/size")
        .map_or_else(|_| "?".to_owned(), |s| s.trim().to_owned());
    #[cfg(target_arch = "x86_64")]
    let crc_kernel = if std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("vpclmulqdq")
    {
        "AVX-512 VPCLMULQDQ"
    } else if std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("vpclmulqdq")
    {
        "AVX2 VPCLMULQDQ"
    } else if std::arch::is_x86_feature_detected!("pclmulqdq") {
        "128-bit PCLMULQDQ"
    } else {
        "table"
    };
    #[cfg(not(target_arch = "x86_64"))]
    let crc_kernel = std::env::consts::ARCH;
    let buf = vec![0x5au8; 64 * 1024];
    let start = Instant::now();
    let mut rounds = 0u32;
    while start.elapsed() < Duration::from_millis(200) {
        for _ in 0..64 {
            std::hint::black_box(crc32fast::hash(std::hint::black_box(&buf)));
        }
        rounds += 64;
    }
    // 64 KiB a round: 16,384 rounds a GiB
    let gib = f64::from(rounds) / 16_384.0;
    serde_json::json!({
        "cpu": field("model name"),
        "family": field("cpu family"),
        "model": field("model"),
        "l2_per_core": l2,
        "crc_kernel": crc_kernel,
        "crc32fast_gib_per_s": gib / start.elapsed().as_secs_f64(),
    })
}

/// With `TRANSPORT_PIN=1`, the cores the client thread and the server thread are pinned to:
/// the first two the process may use. Left to the scheduler (the default, as the issues'
/// baselines were measured), the two sides sometimes share a core or move between cores, and
/// a run's round trips swing between about 25 and 110 us on a 2-core VM; pinned, they stay
/// within a few microseconds, so the time to first event compares the clients' own costs.
fn pinned_cores() -> Option<(core_affinity::CoreId, core_affinity::CoreId)> {
    if !std::env::var("TRANSPORT_PIN").is_ok_and(|v| v == "1") {
        return None;
    }
    let cores = core_affinity::get_core_ids()?;
    match cores.as_slice() {
        [client, server, ..] => Some((*client, *server)),
        _ => None,
    }
}

/// Pins the calling thread to `core` (if any)
fn pin_to(core: Option<core_affinity::CoreId>) {
    if let Some(core) = core {
        core_affinity::set_for_current(core);
    }
}
