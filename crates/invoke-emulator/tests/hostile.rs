//! The emulator under hostile or unlucky clients, over real loopback sockets: slow and idle
//! connections, oversized or unsigned bodies, foreign signatures, invalid header bytes,
//! oversized heads, the connection limit, and clients that leave mid-stream
//!
//! Raw TCP clients write exactly the bytes each case needs. Timeouts are configured short
//! where a case waits for one; every wait has a generous guard against hanging, never a
//! timing assertion.

mod support;

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use invoke_emulator::{Emulator, FunctionError, Invocation, ResponseStream, ServerLimits};
use invoke_proto::{Credentials, InvokeParams, SigningScope, sign};
use support::{guarded, request, send};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const KEY: &str = "AKIDHOSTILE";
const SECRET: &str = "hostile-secret";
/// Long enough never to be reached during a test
const NEVER: Duration = Duration::from_secs(3600);
const STREAM_PATH: &str = "/2021-11-15/functions/echo/response-streaming-invocations";

/// Limits with every timeout out of reach; each test shortens the one it exercises
fn limits() -> ServerLimits {
    ServerLimits {
        header_read_timeout: NEVER,
        body_read_timeout: NEVER,
        idle_timeout: NEVER,
        write_timeout: NEVER,
        ..ServerLimits::default()
    }
}

/// The built-in functions without auth under `limits`, and the emulator's log lines
async fn logged_builtins(limits: ServerLimits) -> (Emulator, mpsc::UnboundedReceiver<String>) {
    let (tx, lines) = mpsc::unbounded_channel::<String>();
    let tx = Mutex::new(tx);
    let emu = Emulator::builder()
        .builtins()
        .no_auth()
        .log_sink(move |line| {
            let _ = tx.lock().unwrap().send(line.to_owned());
        })
        .limits(limits)
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    (emu, lines)
}

async fn start(builder: invoke_emulator::Builder, limits: ServerLimits) -> Emulator {
    builder
        .builtins()
        .quiet()
        .limits(limits)
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// Reads until the server closes the connection (EOF or reset); the bytes read
async fn until_closed(s: &mut TcpStream) -> Vec<u8> {
    slowly_until_closed(s, Duration::ZERO).await
}

/// [`until_closed`], waiting `pause` after each read: a slow reader
async fn slowly_until_closed(s: &mut TcpStream, pause: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
}

/// The built-ins without auth, closing connections idle for `idle`
async fn closing_idle_connections(idle: Duration) -> Emulator {
    start(
        Emulator::builder().no_auth(),
        ServerLimits {
            idle_timeout: idle,
            ..limits()
        },
    )
    .await
}

/// One response with a `Content-Length` body, read from `s`
#[derive(Debug)]
struct Answer {
    status: u16,
    /// The head, lower-cased
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn error_type(&self) -> Option<&str> {
        self.head
            .lines()
            .find_map(|l| l.strip_prefix("x-amzn-errortype: "))
    }

    /// Asserts that this is the refusal `status` with `X-Amzn-ErrorType` `error_type`
    /// (lower-cased)
    fn assert_refused(&self, status: u16, error_type: &str) {
        assert_eq!(
            (self.status, self.error_type()),
            (status, Some(error_type)),
            "{self:?}"
        );
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
}

async fn read_answer(s: &mut TcpStream) -> Answer {
    let mut raw = Vec::new();
    let split = read_head_into(s, &mut raw).await;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head[9..12].parse().unwrap();
    let len = content_length(&head).unwrap_or(0);
    read_up_to(s, &mut raw, split + 4 + len).await;
    let body = raw[split + 4..].to_vec();
    Answer { status, head, body }
}

/// Reads from `s` into `got` until it holds a whole head; where the head's blank line starts
async fn read_head_into(s: &mut TcpStream, got: &mut Vec<u8>) -> usize {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            return i;
        }
        let n = s.read(&mut buf).await.expect("read the head");
        assert!(
            n > 0,
            "closed before a response: {:?}",
            String::from_utf8_lossy(got)
        );
        got.extend_from_slice(&buf[..n]);
    }
}

/// The `Content-Length` of a lower-cased head, if it has one
fn content_length(head: &str) -> Option<usize> {
    head.lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map(|v| v.trim().parse().unwrap())
}

/// Reads from `s` into `got` until it holds at least `len` bytes
async fn read_up_to(s: &mut TcpStream, got: &mut Vec<u8>, len: usize) {
    let mut buf = [0u8; 4096];
    while got.len() < len {
        let n = s.read(&mut buf).await.expect("read the body");
        assert!(n > 0, "closed after {} of {len} bytes", got.len());
        got.extend_from_slice(&buf[..n]);
    }
}

/// The head (with the final blank line) of `req` as HTTP/1.1 bytes
fn head_bytes(req: &http::Request<Bytes>) -> Vec<u8> {
    let mut head = format!(
        "{} {} HTTP/1.1\r\n",
        req.method(),
        req.uri().path_and_query().unwrap()
    )
    .into_bytes();
    for (n, v) in req.headers() {
        head.extend_from_slice(n.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(v.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// `req` signed with `key`/`secret` for `region` and `service`, now
fn signed(
    mut req: http::Request<Bytes>,
    key: &str,
    secret: &str,
    region: &str,
    service: &str,
) -> http::Request<Bytes> {
    sign(
        &mut req,
        &Credentials::new(key, secret, None),
        &SigningScope::new(region, service),
        SystemTime::now(),
    )
    .unwrap();
    req
}

/// A request to echo whose body is 6 MiB of JSON (the limit), to send head only
fn big_request(emu: &Emulator) -> http::Request<Bytes> {
    let mut payload = vec![b' '; 6 * 1024 * 1024];
    payload[0] = b'1';
    request(emu, &InvokeParams::new("echo", payload))
}

/// [`big_request`] as a buffered `Invoke`: its answer is the 6 MiB echoed with a
/// `Content-Length`, far more than a 16 KiB receive buffer and the server's send buffer hold
fn big_buffered_request(emu: &Emulator) -> http::Request<Bytes> {
    let mut req = big_request(emu);
    *req.uri_mut() = format!("{}/2015-03-31/functions/echo/invocations", emu.url())
        .parse()
        .unwrap();
    req
}

/// A client with a 16 KiB receive buffer, connected to `emu`
async fn small_window(emu: &Emulator) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    socket.connect(emu.addr()).await.unwrap()
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    let emu = closing_idle_connections(Duration::from_millis(300)).await;
    // kept alive after a response, then idle
    let mut s = TcpStream::connect(emu.addr()).await.unwrap();
    let req = request(&emu, &InvokeParams::new("echo", "{}"));
    s.write_all(&head_bytes(&req)).await.unwrap();
    s.write_all(req.body()).await.unwrap();
    let got = guarded("idle after a response", until_closed(&mut s)).await;
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn a_head_sent_slowly_is_cut_by_the_header_timeout() {
    let emu = start(
        Emulator::builder().no_auth(),
        ServerLimits {
            header_read_timeout: Duration::from_millis(300),
            ..limits()
        },
    )
    .await;
    // connected, never a byte sent
    let mut s = TcpStream::connect(emu.addr()).await.unwrap();
    assert!(
        guarded("nothing sent", until_closed(&mut s))
            .await
            .is_empty()
    );
    let mut s = TcpStream::connect(emu.addr()).await.unwrap();
    guarded("slow head", slowloris(&mut s)).await;
    // the same on a kept-alive connection, for its next request: its first byte ends the
    // idle time and starts the header timeout
    let mut s = TcpStream::connect(emu.addr()).await.unwrap();
    assert_eq!(echo_on(&emu, &mut s).await, 200);
    guarded("slow second head", slowloris(&mut s)).await;
    emu.shutdown().await;
}

/// Sends the start of a request head on `s`, then a byte of it every 50 ms (pacing, not
/// waiting for readiness) until the server hangs up; panics if it answers instead
async fn slowloris(s: &mut TcpStream) {
    s.write_all(format!("POST {STREAM_PATH} HTTP/1.1\r\nhost: x\r\nx-slow: ").as_bytes())
        .await
        .unwrap();
    loop {
        if s.write_all(b"a").await.is_err() {
            return;
        }
        let mut buf = [0u8; 64];
        match tokio::time::timeout(Duration::from_millis(50), s.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return,
            Ok(Ok(_)) => panic!("an answer to a head never completed"),
            Err(_) => {}
        }
    }
}

#[tokio::test]
async fn a_body_sent_slowly_gets_408_after_the_body_timeout() {
    let emu = start(
        Emulator::builder().no_auth(),
        ServerLimits {
            body_read_timeout: Duration::from_millis(300),
            ..limits()
        },
    )
    .await;
    let mut s = TcpStream::connect(emu.addr()).await.unwrap();
    s.write_all(
        format!("POST {STREAM_PATH} HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{{\"a\":")
            .as_bytes(),
    )
    .await
    .unwrap();
    let a = guarded("slow body", read_answer(&mut s)).await;
    assert_eq!(
        (a.status, a.error_type()),
        (408, Some("requesttimeoutexception")),
        "{a:?}"
    );
    assert_eq!(a.json()["Type"], "User");
    guarded("close after 408", until_closed(&mut s)).await;
    emu.shutdown().await;
}

#[tokio::test]
async fn a_content_length_over_the_limit_is_refused_before_the_body() {
    let emu = start(Emulator::builder().no_auth(), limits()).await;
    let mut s = TcpStream::connect(emu.addr()).await.unwrap();
    s.write_all(
        format!(
            "POST {STREAM_PATH} HTTP/1.1\r\nhost: x\r\ncontent-length: 10737418240\r\n\r\n{{}}"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let a = guarded("10 GiB announced", read_answer(&mut s)).await;
    assert_eq!(
        (a.status, a.error_type()),
        (413, Some("requesttoolargeexception")),
        "{a:?}"
    );
    // too long to drain: the connection closes
    guarded("close after 413", until_closed(&mut s)).await;
    emu.shutdown().await;
}

/// Sends only the head of `req` (whose body is announced) and reads the answer
async fn head_only(emu: &Emulator, req: &http::Request<Bytes>) -> Answer {
    let mut s = TcpStream::connect(emu.addr()).await.unwrap();
    s.write_all(&head_bytes(req)).await.unwrap();
    guarded("answer without the body", read_answer(&mut s)).await
}

#[tokio::test]
async fn requests_are_authenticated_before_the_body_is_read() {
    // any signature: an unsigned request is refused without its body
    let emu = start(Emulator::builder(), limits()).await;
    let a = head_only(&emu, &big_request(&emu)).await;
    assert_eq!(
        (a.status, a.error_type()),
        (403, Some("missingauthenticationtokenexception")),
        "{a:?}"
    );
    let stale = {
        let mut req = big_request(&emu);
        sign(
            &mut req,
            &Credentials::new(KEY, SECRET, None),
            &SigningScope::lambda("us-east-1"),
            SystemTime::now() - Duration::from_secs(600),
        )
        .unwrap();
        req
    };
    let a = head_only(&emu, &stale).await;
    assert_eq!(
        (a.status, a.error_type()),
        (403, Some("invalidsignatureexception")),
        "{a:?}"
    );
    let mut malformed = big_request(&emu);
    malformed.headers_mut().insert(
        "authorization",
        "AWS4-HMAC-SHA256 nonsense".parse().unwrap(),
    );
    let a = head_only(&emu, &malformed).await;
    assert_eq!(
        (a.status, a.error_type()),
        (400, Some("incompletesignatureexception")),
        "{a:?}"
    );
    emu.shutdown().await;
    // with keys: an unknown key is refused without the body
    let emu = start(Emulator::builder().credentials(KEY, SECRET), limits()).await;
    let req = signed(
        big_request(&emu),
        "AKIDUNKNOWN",
        SECRET,
        "us-east-1",
        "lambda",
    );
    let a = head_only(&emu, &req).await;
    assert_eq!(
        (a.status, a.error_type()),
        (403, Some("unrecognizedclientexception")),
        "{a:?}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn a_refused_body_is_drained_so_the_client_reads_the_answer() {
    // a client that writes its whole 6 MiB body before reading, as most do
    let emu = start(Emulator::builder(), limits()).await;
    let req = big_request(&emu);
    let mut s = TcpStream::connect(emu.addr()).await.unwrap();
    let exchange = async {
        s.write_all(&head_bytes(&req)).await.unwrap();
        s.write_all(req.body())
            .await
            .expect("the body is read, not reset");
        read_answer(&mut s).await
    };
    let a = guarded("unsigned 6 MiB", exchange).await;
    assert_eq!(a.status, 403, "{a:?}");
    // the connection stays usable
    serves_a_signed_echo(&emu, &mut s).await;
    emu.shutdown().await;
}

/// Sends a signed `echo` invocation on `s` and checks that it is answered 200
async fn serves_a_signed_echo(emu: &Emulator, s: &mut TcpStream) {
    let req = signed(
        request(emu, &InvokeParams::new("echo", "{}")),
        KEY,
        SECRET,
        "us-east-1",
        "lambda",
    );
    s.write_all(&head_bytes(&req)).await.unwrap();
    s.write_all(req.body()).await.unwrap();
    let a = guarded("next request", read_answer(s)).await;
    assert_eq!(a.status, 200, "{a:?}");
}

#[tokio::test]
async fn signatures_for_another_region_or_service_are_refused() {
    let emu = start(
        Emulator::builder()
            .credentials(KEY, SECRET)
            .region("us-east-1"),
        limits(),
    )
    .await;
    let ok = signed(
        request(&emu, &InvokeParams::new("echo", "{}")),
        KEY,
        SECRET,
        "us-east-1",
        "lambda",
    );
    assert_eq!(send(&emu, ok).await.status(), 200);
    for (region, service, message) in [
        (
            "eu-west-1",
            "lambda",
            "Credential should be scoped to a valid region, not 'eu-west-1'. ",
        ),
        (
            "us-east-1",
            "s3",
            "Credential should be scoped to correct service: 'lambda'. ",
        ),
    ] {
        let req = signed(
            request(&emu, &InvokeParams::new("echo", "{}")),
            KEY,
            SECRET,
            region,
            service,
        );
        let a = head_only(&emu, &req).await;
        assert_eq!(
            (a.status, a.error_type()),
            (403, Some("invalidsignatureexception")),
            "{region}/{service}: {a:?}"
        );
        assert_eq!(a.json()["message"], message);
    }
    emu.shutdown().await;
    // any signature: the service is checked, the region is not
    let emu = start(Emulator::builder(), limits()).await;
    let other_region = signed(
        request(&emu, &InvokeParams::new("echo", "{}")),
        "ANY",
        "any",
        "eu-west-1",
        "lambda",
    );
    assert_eq!(send(&emu, other_region).await.status(), 200);
    let s3 = signed(
        request(&emu, &InvokeParams::new("echo", "{}")),
        "ANY",
        "any",
        "us-east-1",
        "s3",
    );
    let a = head_only(&emu, &s3).await;
    assert_eq!(
        (a.status, a.error_type()),
        (403, Some("invalidsignatureexception")),
        "{a:?}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn header_bytes_that_are_not_visible_ascii_are_invalid_values() {
    let emu = start(Emulator::builder().no_auth(), limits()).await;
    for (name, status) in [
        ("x-amz-invocation-type", 400),
        ("x-amz-log-type", 400),
        ("x-amz-client-context", 400),
        ("x-amz-tenant-id", 400),
        ("content-type", 415),
    ] {
        let mut req = request(&emu, &InvokeParams::new("echo", "{}"));
        req.headers_mut()
            .insert(name, http::HeaderValue::from_bytes(b"\xff").unwrap());
        let mut s = TcpStream::connect(emu.addr()).await.unwrap();
        s.write_all(&head_bytes(&req)).await.unwrap();
        s.write_all(req.body()).await.unwrap();
        let a = guarded(name, read_answer(&mut s)).await;
        assert_eq!(a.status, status, "{name}: {a:?}");
        assert!(a.error_type().is_some(), "{name}: {a:?}");
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn oversized_heads_are_answered_in_the_services_shape_below_hypers_limits() {
    let emu = start(Emulator::builder().no_auth(), limits()).await;
    let exchange = |head: String| {
        let addr = emu.addr();
        async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(head.as_bytes()).await.unwrap();
            guarded("oversized head", read_answer(&mut s)).await
        }
    };
    // a 10 KiB request target: the emulator's 414
    let long = "q".repeat(10 * 1024);
    let a = exchange(format!(
        "POST {STREAM_PATH}?x={long} HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n"
    ))
    .await;
    assert_eq!(
        (a.status, a.error_type()),
        (414, Some("uritoolongexception")),
        "{a:?}"
    );
    assert_eq!(a.json()["Type"], "User");
    // 100 KiB of header fields: the emulator's 431
    let big = "h".repeat(100 * 1024);
    let a = exchange(format!(
        "POST {STREAM_PATH} HTTP/1.1\r\nhost: x\r\nx-big: {big}\r\ncontent-length: 0\r\n\r\n"
    ))
    .await;
    assert_eq!(
        (a.status, a.error_type()),
        (431, Some("requestheaderfieldstoolargeexception")),
        "{a:?}"
    );
    assert!(
        a.json()["message"]
            .as_str()
            .unwrap()
            .contains("header fields")
    );
    // past hyper's own limits, hyper answers alone: no service error shape (README)
    let huge = "q".repeat(70 * 1024);
    let a = exchange(format!(
        "POST {STREAM_PATH}?x={huge} HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n"
    ))
    .await;
    assert_eq!((a.status, a.error_type()), (414, None), "{a:?}");
    let fields = "x-h: v\r\n".repeat(101);
    let a = exchange(format!(
        "POST {STREAM_PATH} HTTP/1.1\r\nhost: x\r\n{fields}\r\n"
    ))
    .await;
    assert_eq!((a.status, a.error_type()), (431, None), "{a:?}");
    let a = exchange("POST /\x01 HTTP/1.1\r\nhost: x\r\n\r\n".to_owned()).await;
    assert_eq!((a.status, a.error_type()), (400, None), "{a:?}");
    let a = exchange(format!(
        "POST {STREAM_PATH} HTTP/1.1\r\nhost: x\r\ncontent-length: abc\r\n\r\n{{}}"
    ))
    .await;
    assert_eq!((a.status, a.error_type()), (400, None), "{a:?}");
    // a malformed chunk is a body error, which the emulator sees: the service's shape
    let a = exchange(format!(
        "POST {STREAM_PATH} HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n"
    ))
    .await;
    assert_eq!(
        (a.status, a.error_type()),
        (400, Some("invalidparametervalueexception")),
        "{a:?}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn limits_too_far_off_to_be_times_mean_no_limit() {
    // `serve --header-timeout 1e19`: no deadline can be that far; the connection is served
    let emu = start(
        Emulator::builder().no_auth(),
        ServerLimits {
            header_read_timeout: Duration::MAX,
            body_read_timeout: Duration::MAX,
            idle_timeout: Duration::MAX,
            write_timeout: Duration::MAX,
            ..ServerLimits::default()
        },
    )
    .await;
    let mut s = TcpStream::connect(emu.addr()).await.unwrap();
    for _ in 0..2 {
        assert_eq!(echo_on(&emu, &mut s).await, 200);
    }
    emu.shutdown().await;
}

/// One keep-alive request on `s`: the status
async fn echo_on(emu: &Emulator, s: &mut TcpStream) -> u16 {
    let req = request(emu, &InvokeParams::new("echo", "{}"));
    let mut head = head_bytes(&req);
    // a buffered Invoke: a Content-Length body, read by `read_answer`
    let path = b"/2015-03-31/functions/echo/invocations";
    let at = head.windows(4).position(|w| w == b"/202").unwrap();
    let end = at + head[at..].iter().position(|b| *b == b' ').unwrap();
    head.splice(at..end, path.iter().copied());
    s.write_all(&head).await.unwrap();
    s.write_all(req.body()).await.unwrap();
    guarded("keep-alive request", read_answer(s)).await.status
}

#[tokio::test]
async fn at_the_connection_limit_the_longest_idle_connection_makes_room() {
    let emu = start(
        Emulator::builder().no_auth(),
        ServerLimits {
            max_connections: 2,
            ..limits()
        },
    )
    .await;
    let mut one = TcpStream::connect(emu.addr()).await.unwrap();
    assert_eq!(echo_on(&emu, &mut one).await, 200);
    let mut two = TcpStream::connect(emu.addr()).await.unwrap();
    assert_eq!(echo_on(&emu, &mut two).await, 200);
    // both idle and kept alive: a third connection is served, the one idle longer closed
    let mut three = TcpStream::connect(emu.addr()).await.unwrap();
    assert_eq!(echo_on(&emu, &mut three).await, 200);
    assert!(guarded("evicted", until_closed(&mut one)).await.is_empty());
    assert_eq!(echo_on(&emu, &mut two).await, 200, "the younger one stays");
    // two and three are idle: four and five, connected without a request yet, take their
    // places; a connection that has not sent its first request is never closed to make
    // room, so six waits in the backlog until four has been served and is idle in turn
    let mut four = TcpStream::connect(emu.addr()).await.unwrap();
    let mut five = TcpStream::connect(emu.addr()).await.unwrap();
    let mut six = TcpStream::connect(emu.addr()).await.unwrap();
    assert_eq!(
        echo_on(&emu, &mut four).await,
        200,
        "four was not closed for six"
    );
    assert_eq!(
        echo_on(&emu, &mut six).await,
        200,
        "six was served once four was idle"
    );
    assert_eq!(
        echo_on(&emu, &mut five).await,
        200,
        "five was not closed for six"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn a_stream_the_client_left_is_logged_with_the_bytes_sent() {
    let (tx, mut lines) = mpsc::unbounded_channel::<String>();
    let tx = Mutex::new(tx);
    let (hold_tx, hold_rx) = tokio::sync::watch::channel(false);
    let emu = Emulator::builder()
        .no_auth()
        .function("once", move |_: Invocation, out: ResponseStream| {
            let mut hold = hold_rx.clone();
            async move {
                out.write("hello").await;
                let _ = hold.wait_for(|v| *v).await;
                Ok::<(), FunctionError>(())
            }
        })
        .log_sink(move |line| {
            let _ = tx.lock().unwrap().send(line.to_owned());
        })
        .limits(limits())
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let resp = send(&emu, request(&emu, &InvokeParams::new("once", "{}"))).await;
    let mut body = resp.into_body();
    let mut got = 0;
    // the whole first message: a PayloadChunk of "hello"
    let frame_len = {
        let mut b = bytes::BytesMut::new();
        invoke_proto::encode_payload_chunk(b"hello", &mut b).unwrap();
        b.len()
    };
    while got < frame_len {
        use http_body_util::BodyExt as _;
        let f = guarded("first chunk", body.frame()).await.unwrap().unwrap();
        got += f.into_data().unwrap().len();
    }
    drop(body); // the client leaves mid-stream
    let line = guarded("the log line", async {
        loop {
            let l = lines.recv().await.unwrap();
            if l.contains("once") {
                return l;
            }
        }
    })
    .await;
    assert!(
        line.contains("InvokeWithResponseStream once -> 200, connection closed mid-stream")
            && line.contains(&format!("after {frame_len} bytes sent (5 payload bytes)")),
        "{line}"
    );
    hold_tx.send(true).unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn streams_an_injected_fault_ends_are_logged() {
    let (emu, mut lines) = logged_builtins(limits()).await;
    for (fault, logged) in [
        (
            "close-after=150",
            "injected fault: connection closed after 150 bytes sent",
        ),
        ("exception", "injected fault: exception mid-stream after"),
        (
            "end-early",
            "injected fault: ended without InvokeComplete after",
        ),
    ] {
        let mut req = request(&emu, &InvokeParams::new("count", r#"{"n":3,"size":100}"#));
        req.headers_mut()
            .insert("x-emulator-fault", fault.parse().unwrap());
        let resp = send(&emu, req).await;
        assert_eq!(resp.status(), 200);
        // to its end, or the cut the fault makes
        let _ = guarded(fault, http_body_util::BodyExt::collect(resp.into_body())).await;
        let line = guarded("the log line", lines.recv()).await.unwrap();
        assert!(
            line.contains("InvokeWithResponseStream count -> 200, ") && line.contains(logged),
            "{fault}: {line}"
        );
    }
    emu.shutdown().await;
}

/// Every streamed invocation logs one line, once its stream ended: a complete stream (whose
/// body hyper drops as soon as its last frame is out) logged a second line, "connection
/// closed mid-stream", and a fault that cut the stream after the function ended logged the
/// function's end and the cut as two lines
#[tokio::test]
async fn every_stream_logs_one_line() {
    let (emu, mut lines) = logged_builtins(limits()).await;
    // a 116-byte PayloadChunk of 10 bytes, then the InvokeComplete: the fault cuts that
    let cases = [
        (r#"{"n":3,"size":100}"#, None, "300 payload bytes in "),
        (
            r#"{"n":1,"size":10}"#,
            Some("close-after=150"),
            "injected fault: connection closed after 150 bytes sent (10 payload bytes)",
        ),
        (
            r#"{"n":3,"size":100}"#,
            Some("exception"),
            "injected fault: exception mid-stream after ",
        ),
    ];
    for (payload, fault, logged) in cases {
        let mut req = request(&emu, &InvokeParams::new("count", payload));
        if let Some(fault) = fault {
            req.headers_mut()
                .insert("x-emulator-fault", fault.parse().unwrap());
        }
        let resp = send(&emu, req).await;
        let id = resp.headers()["x-amzn-requestid"]
            .to_str()
            .unwrap()
            .to_owned();
        let _ = guarded(
            "the stream",
            http_body_util::BodyExt::collect(resp.into_body()),
        )
        .await;
        // then a request of its own, whose line shows that every line before it was written
        let mut s = TcpStream::connect(emu.addr()).await.unwrap();
        assert_eq!(echo_on(&emu, &mut s).await, 200);
        let mut mine = Vec::new();
        loop {
            let line = guarded("the log lines", lines.recv()).await.unwrap();
            if line.contains(" Invoke echo -> 200") {
                break;
            }
            mine.push(line);
        }
        assert_eq!(mine.len(), 1, "{fault:?}: {mine:#?}");
        assert!(
            mine[0].starts_with(&format!("{id} InvokeWithResponseStream count -> 200, "))
                && mine[0].contains(logged),
            "{fault:?}: {}",
            mine[0]
        );
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn a_client_that_left_before_the_response_is_logged() {
    let (tx, mut lines) = mpsc::unbounded_channel::<String>();
    let tx = Mutex::new(tx);
    let (started_tx, mut started) = mpsc::unbounded_channel::<()>();
    let emu = Emulator::builder()
        .no_auth()
        .function("silent", move |_: Invocation, _: ResponseStream| {
            let started = started_tx.clone();
            async move {
                let _ = started.send(());
                std::future::pending::<()>().await;
                Ok::<(), FunctionError>(())
            }
        })
        .log_sink(move |line| {
            let _ = tx.lock().unwrap().send(line.to_owned());
        })
        .limits(limits())
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let req = request(&emu, &InvokeParams::new("silent", "{}"));
    let mut s = TcpStream::connect(emu.addr()).await.unwrap();
    s.write_all(&head_bytes(&req)).await.unwrap();
    s.write_all(req.body()).await.unwrap();
    guarded("the function starts", started.recv())
        .await
        .unwrap();
    drop(s); // the client leaves while the function has not answered
    let line = guarded("the log line", lines.recv()).await.unwrap();
    assert!(
        line.contains("InvokeWithResponseStream silent -> connection closed before the response"),
        "{line}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn a_burst_of_connections_is_queued_not_dropped() {
    let emu = start(
        Emulator::builder().no_auth(),
        ServerLimits {
            max_connections: 1,
            ..limits()
        },
    )
    .await;
    // the only connection served holds a stalled stream: nothing more is accepted
    let mut req = request(&emu, &InvokeParams::new("echo", "{}"));
    req.headers_mut()
        .insert("x-emulator-fault", "stall".parse().unwrap());
    let stalled = send(&emu, req).await;
    // 500 clients connect at once: the kernel queues them in the listen backlog (a backlog of
    // 128 would drop the SYNs of all but the first 129, whose connects then never complete)
    let mut queued = Vec::new();
    for i in 0..500 {
        let s = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(emu.addr()))
            .await
            .unwrap_or_else(|_| panic!("connection {i} dropped, not queued"))
            .unwrap();
        queued.push(s);
    }
    // the slot frees and the other clients give up: the queued connections are accepted in
    // turn, and the last is served
    let mut last = queued.pop().unwrap();
    drop(stalled);
    drop(queued);
    assert_eq!(echo_on(&emu, &mut last).await, 200);
    emu.shutdown().await;
}

#[tokio::test]
async fn client_text_in_the_log_cannot_forge_or_flood_lines() {
    let (emu, mut lines) = logged_builtins(limits()).await;
    // a function name and a qualifier decoded to a line break, and a 6 KiB function name
    let long = "x".repeat(6 * 1024);
    for target in [
        "/2021-11-15/functions/a%0Aforged-line/response-streaming-invocations".to_owned(),
        format!("{STREAM_PATH}?Qualifier=%0Aforged-line"),
        format!("/2021-11-15/functions/{long}/response-streaming-invocations"),
    ] {
        let mut s = TcpStream::connect(emu.addr()).await.unwrap();
        s.write_all(
            format!("POST {target} HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{{}}")
                .as_bytes(),
        )
        .await
        .unwrap();
        let a = guarded("refusal", read_answer(&mut s)).await;
        assert!(a.status >= 400, "{a:?}");
        let line = guarded("log line", lines.recv()).await.unwrap();
        assert!(!line.contains('\n'), "{line:?}");
        assert!(line.len() < 2048, "{} bytes: {line:.200}", line.len());
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn a_client_that_never_reads_its_stream_is_closed_after_the_write_timeout() {
    let (emu, mut lines) = logged_builtins(ServerLimits {
        write_timeout: Duration::from_millis(300),
        ..limits()
    })
    .await;
    // 64 MiB, far more than the socket buffers hold; the client reads none of it
    let params = InvokeParams::new("count", r#"{"n":1024,"size":65536}"#);
    let req = request(&emu, &params);
    let mut s = TcpStream::connect(emu.addr()).await.unwrap();
    s.write_all(&head_bytes(&req)).await.unwrap();
    s.write_all(req.body()).await.unwrap();
    // Without the timeout the function waits on this client forever and nothing is logged
    let line = guarded("the log line", lines.recv()).await.unwrap();
    assert!(
        line.contains("InvokeWithResponseStream count -> 200, connection closed mid-stream"),
        "{line}"
    );
    // what the client can still read ends well short of the stream
    let got = guarded("the end of the connection", until_closed(&mut s)).await;
    assert!(got.len() < 32 << 20, "{} bytes", got.len());
    emu.shutdown().await;
}

/// A response still going out to a slow reader is not idle: the idle timeout runs from its
/// last byte written, not from when its body ended (hyper takes a buffered `Invoke`'s
/// 6 MiB body at once; read over a time well past the idle timeout, it arrives whole)
#[tokio::test]
async fn a_response_still_being_sent_is_not_idle() {
    let emu = closing_idle_connections(Duration::from_millis(300)).await;
    let req = big_buffered_request(&emu);
    let mut s = small_window(&emu).await;
    s.write_all(&head_bytes(&req)).await.unwrap();
    s.write_all(req.body()).await.unwrap();
    // a slow reader: at most 16 KiB (its buffer) every 5 ms, about 2 s for the response
    let slowly = slowly_until_closed(&mut s, Duration::from_millis(5));
    let got = guarded("the whole response, then the idle close", slowly).await;
    let split = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&got[..split]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains(&format!("content-length: {}\r\n", req.body().len())),
        "{head}"
    );
    assert_eq!(
        got.len() - split,
        req.body().len(),
        "the response was cut before its end"
    );
    emu.shutdown().await;
}

/// What a function that floods a client that reads nothing got to write: its writes are held
/// back once a few hundred KiB wait for the client (the socket buffers aside), so it cannot
/// finish 64 MiB and times out; before, 128 writes of any size were queued (and framed) for
/// the client, 128 MiB here, so it finished at once
#[tokio::test]
async fn a_function_writing_to_a_client_that_reads_nothing_is_held_back() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    #[derive(Debug, PartialEq)]
    enum End {
        WroteAll,
        Dropped,
    }
    struct Guard(mpsc::UnboundedSender<End>);
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = self.0.send(End::Dropped);
        }
    }
    let (end_tx, mut ends) = mpsc::unbounded_channel::<End>();
    let written = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&written);
    let config = invoke_emulator::FunctionConfig {
        timeout: Duration::from_millis(500),
        ..invoke_emulator::FunctionConfig::default()
    };
    let flood = move |_: Invocation, out: ResponseStream| {
        let guard = Guard(end_tx.clone());
        let counted = Arc::clone(&counted);
        async move {
            let mib = Bytes::from(vec![b'x'; 1 << 20]);
            for _ in 0..64 {
                out.write(mib.clone()).await;
                counted.fetch_add(1 << 20, Ordering::SeqCst);
            }
            let _ = guard.0.send(End::WroteAll);
            Ok::<(), FunctionError>(())
        }
    };
    let emu = start(
        Emulator::builder()
            .no_auth()
            .function_with("flood", flood, config),
        limits(),
    )
    .await;
    let req = request(&emu, &InvokeParams::new("flood", "{}"));
    let mut s = small_window(&emu).await;
    s.write_all(&head_bytes(&req)).await.unwrap();
    s.write_all(req.body()).await.unwrap();
    // the client reads nothing
    let end = guarded("the function's end", ends.recv()).await.unwrap();
    let written = written.load(Ordering::SeqCst);
    assert_eq!(end, End::Dropped, "{written} bytes written");
    // the socket buffers, hyper's write buffer, one frame and 1 MiB queued
    assert!(written < 16 << 20, "{written} bytes written");
    drop(s);
    emu.shutdown().await;
}

/// An emulator under `limits` that checks signatures (any well-formed one passes), and an
/// unsigned request for it with a 1000-byte body: refused before its body is read, which is
/// then drained
async fn refusing(limits: ServerLimits) -> (Emulator, http::Request<Bytes>) {
    let emu = start(Emulator::builder(), limits).await;
    let req = request(&emu, &InvokeParams::new("echo", vec![b' '; 1000]));
    (emu, req)
}

/// A refused request's body sent slowly, within the body-read timeout, is drained under that
/// timeout alone: the header and idle timeouts of its connection (here far shorter) do not
/// cut it, so the client sends it whole, reads the refusal and uses the connection again.
/// Before, the first body bytes after the refusal counted as the next request's head, and
/// the header timeout closed the connection under the client (a reset)
#[tokio::test]
async fn a_refused_body_sent_slowly_is_drained_under_the_body_timeout_alone() {
    let (emu, req) = refusing(ServerLimits {
        header_read_timeout: Duration::from_millis(100),
        idle_timeout: Duration::from_millis(100),
        ..limits()
    })
    .await;
    let mut s = TcpStream::connect(emu.addr()).await.unwrap();
    let exchange = async {
        s.write_all(&head_bytes(&req)).await.unwrap();
        // a client that writes its whole body before reading: 100 bytes every 50 ms, ten
        // times (pacing, not waiting for readiness), well past the header timeout
        for piece in req.body().chunks(100) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            s.write_all(piece)
                .await
                .expect("the body is drained, not reset");
        }
        read_answer(&mut s).await
    };
    let a = guarded("unsigned, sent slowly", exchange).await;
    assert_eq!(
        (a.status, a.error_type()),
        (403, Some("missingauthenticationtokenexception")),
        "{a:?}"
    );
    // the body was read to its end: the connection takes the next request
    serves_a_signed_echo(&emu, &mut s).await;
    emu.shutdown().await;
}

/// At the connection limit, a connection still taking in the body of a refused request is
/// not closed to make room, though its answer went out: the connections that come meanwhile
/// wait in turn, none dropped, and the first is served as soon as that body's end arrived,
/// with nothing after it (hyper tells a `Content-Length` body's end only when more bytes
/// come: the drain used to wait for them, or for the body timeout, out of reach here)
#[tokio::test]
async fn a_connection_draining_a_refused_body_is_not_closed_to_make_room() {
    for chunked in [false, true] {
        let (emu, mut req) = refusing(ServerLimits {
            max_connections: 1,
            ..limits()
        })
        .await;
        let (start, end) = if chunked {
            req.headers_mut().remove("content-length");
            req.headers_mut()
                .insert("transfer-encoding", "chunked".parse().unwrap());
            let body = req.body();
            let mut start = b"64\r\n".to_vec();
            start.extend_from_slice(&body[..100]);
            let mut end = b"\r\n384\r\n".to_vec();
            end.extend_from_slice(&body[100..]);
            end.extend_from_slice(b"\r\n0\r\n\r\n");
            (start, end)
        } else {
            (req.body()[..100].to_vec(), req.body()[100..].to_vec())
        };
        let mut draining = TcpStream::connect(emu.addr()).await.unwrap();
        draining.write_all(&head_bytes(&req)).await.unwrap();
        draining.write_all(&start).await.unwrap();
        let a = guarded("unsigned, body cut short", read_answer(&mut draining)).await;
        assert_eq!(a.status, 403, "chunked {chunked}: {a:?}");
        // answered, its body's end awaited: two more connect, the first of them is
        // accepted and waits for room, the second stays queued (not accepted in its place)
        let mut first = TcpStream::connect(emu.addr()).await.unwrap();
        let mut second = TcpStream::connect(emu.addr()).await.unwrap();
        draining
            .write_all(&end)
            .await
            .expect("the body is drained, not reset");
        serves_a_signed_echo(&emu, &mut first).await;
        serves_a_signed_echo(&emu, &mut second).await;
        // the drained connection, idle then, made room for the first
        assert!(
            guarded("closed for room", until_closed(&mut draining))
                .await
                .is_empty()
        );
        emu.shutdown().await;
    }
}

/// Once a refused request's body has all arrived, its connection's idle timeout runs: a
/// client that then sends nothing is closed after it, not held until the body timeout
#[tokio::test]
async fn a_connection_goes_idle_when_a_refused_body_has_all_arrived() {
    let (emu, req) = refusing(ServerLimits {
        idle_timeout: Duration::from_millis(100),
        ..limits()
    })
    .await;
    let mut s = TcpStream::connect(emu.addr()).await.unwrap();
    s.write_all(&head_bytes(&req)).await.unwrap();
    let a = guarded("unsigned, no body yet", read_answer(&mut s)).await;
    assert_eq!(a.status, 403, "{a:?}");
    s.write_all(req.body()).await.unwrap();
    assert!(
        guarded("idle after the body", until_closed(&mut s))
            .await
            .is_empty()
    );
    emu.shutdown().await;
}

/// The built-ins and `pause`, which writes `a`, is silent for `{"ms":N}` milliseconds (600
/// when not given), then writes `b`; without auth, under `limits`
async fn with_a_pausing_function(limits: ServerLimits) -> Emulator {
    let pause = |inv: Invocation, out: ResponseStream| async move {
        let ms = serde_json::from_slice::<serde_json::Value>(&inv.payload)
            .ok()
            .and_then(|v| v["ms"].as_u64())
            .unwrap_or(600);
        out.write(Bytes::from_static(b"a")).await;
        tokio::time::sleep(Duration::from_millis(ms)).await;
        out.write(Bytes::from_static(b"b")).await;
        Ok::<(), FunctionError>(())
    };
    start(
        Emulator::builder().no_auth().function("pause", pause),
        limits,
    )
    .await
}

/// The number of complete streamed answers in `got`, and whether all of `got` is made of
/// them: each a 200 head and a chunked body ending in its last chunk, with the final event
fn whole_streams(got: &[u8]) -> (usize, bool) {
    let text = String::from_utf8_lossy(got);
    let heads = text.matches("HTTP/1.1 200").count();
    let ends = text.matches("InvokeComplete").count();
    (heads, heads == ends && got.ends_with(b"\r\n0\r\n\r\n"))
}

/// The write timeout runs only while the client takes nothing: a function silent for longer
/// than it, to a client that read all it was sent, is not cut
#[tokio::test]
async fn a_silent_function_is_not_cut_by_the_write_timeout() {
    let emu = with_a_pausing_function(ServerLimits {
        write_timeout: Duration::from_millis(200),
        idle_timeout: Duration::from_millis(100),
        ..limits()
    })
    .await;
    let req = request(&emu, &InvokeParams::new("pause", "{}"));
    let mut s = TcpStream::connect(emu.addr()).await.unwrap();
    s.write_all(&head_bytes(&req)).await.unwrap();
    s.write_all(req.body()).await.unwrap();
    let got = guarded("a silent function's stream", until_closed(&mut s)).await;
    assert_eq!(
        whole_streams(&got),
        (1, true),
        "{}",
        String::from_utf8_lossy(&got)
    );
    emu.shutdown().await;
}

/// A write the client takes stops the write timeout that an earlier one it did not take
/// started: a client that reads a long stream slowly but steadily is not cut, though its
/// stream's writes wait for it far longer in all than the timeout. (Paused clock: time moves
/// only when every task waits, so the pauses between reads take no real time and are never
/// stretched by a busy machine. A write waits until the client took about half the server's
/// send buffer, up to 4 MiB on Linux: here at most about 130 ms of 1 s)
#[tokio::test(start_paused = true)]
async fn a_client_reading_slowly_is_not_cut_by_the_write_timeout() {
    let emu = start(
        Emulator::builder().no_auth(),
        ServerLimits {
            write_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_millis(100),
            ..limits()
        },
    )
    .await;
    // 32 MiB, far more than the socket buffers hold, through a 16 KiB receive buffer read
    // every millisecond: about 2 s of writes that wait for the client
    let req = request(
        &emu,
        &InvokeParams::new("count", r#"{"n":512,"size":65536}"#),
    );
    let mut s = small_window(&emu).await;
    s.write_all(&head_bytes(&req)).await.unwrap();
    s.write_all(req.body()).await.unwrap();
    let slowly = slowly_until_closed(&mut s, Duration::from_millis(1));
    let got = guarded("a slowly read stream", slowly).await;
    assert!(got.len() > 32 << 20, "{} bytes", got.len());
    assert_eq!(
        whole_streams(&got),
        (1, true),
        "cut after {} bytes",
        got.len()
    );
    emu.shutdown().await;
}

/// A request whose head came along with the one before it (pipelined) is busy while its
/// function runs, not idle: a function silent for longer than the idle timeout completes
#[tokio::test]
async fn a_pipelined_request_is_busy_not_idle_while_its_function_runs() {
    let emu = with_a_pausing_function(ServerLimits {
        idle_timeout: Duration::from_millis(100),
        ..limits()
    })
    .await;
    let quick = request(&emu, &InvokeParams::new("pause", r#"{"ms":0}"#));
    let slow = request(&emu, &InvokeParams::new("pause", r#"{"ms":300}"#));
    let mut both = head_bytes(&quick);
    both.extend_from_slice(quick.body());
    both.extend_from_slice(&head_bytes(&slow));
    both.extend_from_slice(slow.body());
    let mut s = TcpStream::connect(emu.addr()).await.unwrap();
    s.write_all(&both).await.unwrap();
    // both answered whole, then the idle timeout closes the connection
    let got = guarded("two streams", until_closed(&mut s)).await;
    assert_eq!(
        whole_streams(&got),
        (2, true),
        "{}",
        String::from_utf8_lossy(&got)
    );
    emu.shutdown().await;
}

/// The first bytes of a next request, arriving while a response is still going out, start
/// that request's head: when the response's last bytes leave, the connection is not idle,
/// and a head completed later than the idle timeout is answered (the header timeout out of
/// reach)
#[tokio::test]
async fn a_head_begun_while_a_response_goes_out_is_not_idle() {
    let emu = closing_idle_connections(Duration::from_millis(100)).await;
    let big = big_buffered_request(&emu);
    let mut s = small_window(&emu).await;
    s.write_all(&head_bytes(&big)).await.unwrap();
    s.write_all(big.body()).await.unwrap();
    // the echo's head arrived: its whole body is with hyper, which ended the response
    let mut got = Vec::new();
    let split = guarded("the echo's head", read_head_into(&mut s, &mut got)).await;
    let head = String::from_utf8_lossy(&got[..split]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let (body, len) = (split + 4, content_length(&head).expect("a Content-Length"));
    let next = request(&emu, &InvokeParams::new("echo", "{}"));
    let mut next_bytes = head_bytes(&next);
    next_bytes.extend_from_slice(next.body());
    let (begun, rest) = next_bytes.split_at(20);
    s.write_all(begun).await.unwrap();
    guarded("the echo", read_up_to(&mut s, &mut got, body + len)).await;
    assert_eq!(got.len(), body + len, "nothing after the echo yet");
    // the echo all sent, the rest of the head comes after three idle timeouts
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.write_all(rest).await.unwrap();
    let answer = guarded("the second answer", until_closed(&mut s)).await;
    assert_eq!(
        whole_streams(&answer),
        (1, true),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    emu.shutdown().await;
}

/// A refused request logs one line: its request id, operation and function, then the
/// status, error code and message it was answered with
#[tokio::test]
async fn a_refusal_is_logged_with_its_status_code_and_message() {
    let (emu, mut lines) = logged_builtins(limits()).await;
    let mut throttled = request(&emu, &InvokeParams::new("echo", "{}"));
    throttled
        .headers_mut()
        .insert("x-emulator-fault", "throttle".parse().unwrap());
    let cases = [
        (
            request(&emu, &InvokeParams::new("nope", "{}")),
            "InvokeWithResponseStream nope -> 404 ResourceNotFoundException: Function not found: arn:aws:lambda:us-east-1:",
        ),
        (
            throttled,
            "InvokeWithResponseStream echo -> 429 TooManyRequestsException: Rate Exceeded.",
        ),
    ];
    for (req, logged) in cases {
        let resp = send(&emu, req).await;
        let id = resp.headers()["x-amzn-requestid"].to_str().unwrap();
        let line = guarded("the log line", lines.recv()).await.unwrap();
        assert!(line.starts_with(&format!("{id} {logged}")), "{line}");
    }
    emu.shutdown().await;
}

/// The emulator's own head limits, at their edges: a request target of 8 KiB and header
/// fields of 64 KiB (names, values and 4 bytes a field) pass; one byte more is refused
#[tokio::test]
async fn head_limits_hold_at_exactly_their_size() {
    let emu = start(Emulator::builder().no_auth(), limits()).await;
    let exchange = |target: String, extra: String| {
        let addr = emu.addr();
        async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let head = format!(
                "POST {target} HTTP/1.1\r\nhost: x\r\n{extra}content-length: 2\r\n\r\n{{}}"
            );
            s.write_all(head.as_bytes()).await.unwrap();
            guarded("a head at the limit", read_answer(&mut s)).await
        }
    };
    let query = |len: usize| {
        format!(
            "{STREAM_PATH}?x={}",
            "q".repeat(len - STREAM_PATH.len() - 3)
        )
    };
    let a = exchange(query(8192), String::new()).await;
    assert_eq!(a.status, 200, "{a:?}");
    let a = exchange(query(8193), String::new()).await;
    a.assert_refused(414, "uritoolongexception");
    assert!(
        a.json()["message"].as_str().unwrap().contains("8193 bytes"),
        "{a:?}"
    );
    // a target in absolute form counts its authority too (`x`, one byte)
    let a = exchange(format!("http://x{}", query(8191)), String::new()).await;
    assert_eq!(a.status, 200, "{a:?}");
    let a = exchange(format!("http://x{}", query(8192)), String::new()).await;
    a.assert_refused(414, "uritoolongexception");
    assert!(
        a.json()["message"].as_str().unwrap().contains("8193 bytes"),
        "{a:?}"
    );
    // host (4 + 1 + 4) and content-length (14 + 1 + 4) take 28 bytes, x-big's name and
    // framing 9
    let field = |len: usize| format!("x-big: {}\r\n", "h".repeat(len - 28 - 9));
    let a = exchange(STREAM_PATH.to_owned(), field(65536)).await;
    assert_eq!(a.status, 200, "{a:?}");
    let a = exchange(STREAM_PATH.to_owned(), field(65537)).await;
    a.assert_refused(431, "requestheaderfieldstoolargeexception");
    assert!(
        a.json()["message"]
            .as_str()
            .unwrap()
            .contains("65537 bytes"),
        "{a:?}"
    );
    emu.shutdown().await;
}

/// A body refused for its announced size is still taken in, up to 12 MiB, so the client
/// reads the answer and the connection serves its next request; past 12 MiB the connection
/// closes after the answer
#[tokio::test]
async fn a_body_refused_for_its_size_is_drained_up_to_12_mib() {
    let emu = start(Emulator::builder().no_auth(), limits()).await;
    for (len, kept) in [(12 << 20, true), ((12 << 20) + 1, false)] {
        let mut s = TcpStream::connect(emu.addr()).await.unwrap();
        s.write_all(
            format!("POST {STREAM_PATH} HTTP/1.1\r\nhost: x\r\ncontent-length: {len}\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
        let a = guarded("over the request limit", read_answer(&mut s)).await;
        a.assert_refused(413, "requesttoolargeexception");
        // the body follows the answer (a client that writes it all before reading would
        // be reset, not answered, were it not taken in)
        let body = vec![b' '; len];
        let sent = s.write_all(&body).await;
        if kept {
            sent.expect("the body is drained");
            assert_eq!(echo_on(&emu, &mut s).await, 200, "{len} bytes drained");
        } else {
            // closed: what was written is thrown away, or the write fails
            assert!(
                guarded("closed", until_closed(&mut s)).await.is_empty(),
                "{len} bytes"
            );
        }
    }
    emu.shutdown().await;
}

/// A chunked body, whose size no header announces, is held to the same 6 MiB as a
/// `Content-Length` one: exactly 6 MiB is served, one byte more is refused with 413
/// `RequestTooLargeException` once read that far
#[tokio::test]
async fn a_chunked_body_is_held_to_the_request_limit() {
    let emu = start(Emulator::builder().no_auth(), limits()).await;
    for (len, refused) in [(6 << 20, false), ((6 << 20) + 1, true)] {
        // a JSON number followed by spaces
        let mut payload = vec![b' '; len];
        payload[0] = b'1';
        let mut s = TcpStream::connect(emu.addr()).await.unwrap();
        let head = format!(
            "POST {STREAM_PATH} HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n{len:x}\r\n"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&payload).await.unwrap();
        s.write_all(b"\r\n0\r\n\r\n").await.unwrap();
        if refused {
            let a = guarded("a chunked body over the limit", read_answer(&mut s)).await;
            a.assert_refused(413, "requesttoolargeexception");
        } else {
            let mut first = [0u8; 12];
            guarded("a chunked body at the limit", s.read_exact(&mut first))
                .await
                .unwrap();
            assert_eq!(&first, b"HTTP/1.1 200");
        }
    }
    emu.shutdown().await;
}
