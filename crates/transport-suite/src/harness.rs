//! An emulator on 127.0.0.1 port 0 with the functions the cases call, on its own runtime

use std::io::{self, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use invoke_emulator::{
    Emulator, Faults, FunctionConfig, FunctionError, Invocation, ResponseStream,
};
use invoke_proto::{Credentials, RetryConfig};
use invoke_proto::{Endpoint, EndpointConfig, resolve_endpoint};

use crate::ClientConfig;

/// The access key the emulator accepts
pub const KEY: &str = "AKIDTRANSPORTSUITE";
/// Its secret
pub const SECRET: &str = "transport-suite-secret";

/// Chunks and their size written by the `streamer-*` functions
pub(crate) const STREAMER_CHUNKS: usize = 20;
pub(crate) const STREAMER_CHUNK: usize = 100;

/// A running emulator and what it counted
#[derive(Debug)]
pub struct Harness {
    emulator: Option<Emulator>,
    runtime: tokio::runtime::Runtime,
    invocations: Arc<AtomicUsize>,
}

/// Byte `i` of a `streamer-*` function's output
pub(crate) fn streamer_byte(i: usize) -> u8 {
    b'A' + (i % 26) as u8
}

impl Harness {
    /// Starts an emulator with the built-in functions, `empty`, `logger`, `lines` (five
    /// lines cut across four chunks) and one `streamer-<fault>` function per fault (each
    /// writes 20 chunks of 100 bytes and is counted), requiring signatures by [`KEY`]
    pub fn start() -> Self {
        Self::start_with(false, (KEY, SECRET), "us-east-1", Duration::ZERO)
    }

    /// As [`start`](Self::start), in `region`: the emulator refuses signatures scoped to
    /// another region
    pub fn start_in_region(region: &str) -> Self {
        Self::start_with(false, (KEY, SECRET), region, Duration::ZERO)
    }

    /// As [`start`](Self::start), serving https with a CA generated at start
    /// ([`ca_pem_path`](Self::ca_pem_path))
    pub fn start_tls() -> Self {
        Self::start_with(true, (KEY, SECRET), "us-east-1", Duration::ZERO)
    }

    /// As [`start`](Self::start), accepting only signatures by this key
    pub fn start_accepting(key: &str, secret: &str) -> Self {
        Self::start_with(false, (key, secret), "us-east-1", Duration::ZERO)
    }

    /// As [`start`](Self::start), the emulator's clock `by` ahead of this host's (a client's
    /// clock looks `by` behind to it)
    pub fn start_ahead(by: Duration) -> Self {
        Self::start_with(false, (KEY, SECRET), "us-east-1", by)
    }

    fn start_with(
        tls: bool,
        (key, secret): (&str, &str),
        region: &str,
        clock_ahead: Duration,
    ) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let invocations = Arc::new(AtomicUsize::new(0));
        let mut builder = Emulator::builder()
            .builtins()
            .credentials(key, secret)
            .region(region)
            .clock_ahead(clock_ahead)
            .quiet()
            .function("empty", |_: Invocation, _: ResponseStream| async {
                Ok::<(), FunctionError>(())
            })
            .function("logger", |_: Invocation, out: ResponseStream| async move {
                out.log("hello from the log");
                out.write("logged").await;
                Ok::<(), FunctionError>(())
            })
            // the caller's X-Amzn-Trace-Id as the function got it
            .function("trace", |inv: Invocation, out: ResponseStream| async move {
                out.write(inv.trace_id.unwrap_or_else(|| "none".to_owned()))
                    .await;
                Ok::<(), FunctionError>(())
            })
            .function("lines", |_: Invocation, out: ResponseStream| async move {
                // lines cut across chunks, the last one without its line break
                for chunk in LINES_CHUNKS {
                    out.write(*chunk).await;
                }
                Ok::<(), FunctionError>(())
            });
        for (name, spec) in [
            ("streamer", ""),
            ("streamer-close", "close-after=250"),
            ("streamer-cut", "close-after=0"),
            ("streamer-crc", "corrupt-crc"),
            ("streamer-stall", "stall"),
            ("streamer-oversize", "oversize"),
            ("streamer-exception", "exception"),
            ("streamer-end-early", "end-early"),
            ("streamer-delay", "delay-ms=5"),
            ("streamer-throttle", "throttle"),
            ("streamer-throttle2", "throttle=2"),
        ] {
            let counter = Arc::clone(&invocations);
            let config = FunctionConfig {
                faults: Faults::parse(spec).expect("fault spec"),
                ..FunctionConfig::default()
            };
            builder = builder.function_with(
                name,
                move |_: Invocation, out: ResponseStream| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    async move {
                        let all: Vec<u8> = (0..STREAMER_CHUNKS * STREAMER_CHUNK)
                            .map(streamer_byte)
                            .collect();
                        let all = Bytes::from(all);
                        for k in 0..STREAMER_CHUNKS {
                            out.write(all.slice(k * STREAMER_CHUNK..(k + 1) * STREAMER_CHUNK))
                                .await;
                        }
                        Ok::<(), FunctionError>(())
                    }
                },
                config,
            );
        }
        if tls {
            builder = builder.tls();
        }
        let emulator = runtime
            .block_on(builder.start("127.0.0.1:0".parse().expect("addr")))
            .expect("emulator starts");
        Self {
            emulator: Some(emulator),
            runtime,
            invocations,
        }
    }

    /// The emulator's endpoint
    pub fn endpoint(&self) -> Endpoint {
        endpoint(&self.emulator.as_ref().expect("running").url())
    }

    /// The emulator's address
    pub fn address(&self) -> std::net::SocketAddr {
        self.emulator.as_ref().expect("running").addr()
    }

    /// With TLS: the file holding the CA certificate (PEM) to trust
    pub fn ca_pem_path(&self) -> Option<std::path::PathBuf> {
        self.emulator
            .as_ref()
            .and_then(|e| e.ca_pem_path().map(std::path::Path::to_owned))
    }

    /// How many times the `streamer-*` functions ran
    pub fn invocations(&self) -> usize {
        self.invocations.load(Ordering::SeqCst)
    }

    /// A client configuration for this emulator: right credentials, fast retries, 60 s
    /// timeouts (a hang fails the case instead of blocking CI), no proxy
    pub fn config(&self) -> ClientConfig {
        config(self.endpoint())
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(e) = self.emulator.take() {
            self.runtime.block_on(e.shutdown());
        }
    }
}

/// The chunks function `lines` writes: the lines `one`, `two`, an empty one, `three` and
/// `four`, cut across chunks
pub(crate) const LINES_CHUNKS: &[&str] = &["one\ntw", "o\n", "\nthr", "ee\nfour"];

/// The endpoint of `url` in `us-east-1`
///
/// # Panics
///
/// If `url` is not an endpoint URL
pub fn endpoint(url: &str) -> Endpoint {
    resolve_endpoint(
        &EndpointConfig::default()
            .with_region("us-east-1")
            .with_custom(url),
    )
    .expect("endpoint")
}

/// A client configuration for `endpoint` (see [`Harness::config`])
pub fn config(endpoint: Endpoint) -> ClientConfig {
    ClientConfig {
        endpoint,
        credentials: Credentials::new(KEY, SECRET, None),
        retry: RetryConfig::new()
            .with_initial_backoff(Duration::from_millis(1))
            .with_max_backoff(Duration::from_millis(20)),
        connect_timeout: Duration::from_secs(60),
        head_timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(60),
        overall_timeout: Duration::from_secs(120),
        proxy_env: Vec::new(),
        ca_bundle: None,
        from_config: None,
    }
}

/// A loopback TCP forwarder that counts the connections it accepted and those the client
/// closed
#[derive(Debug)]
pub struct Forwarder {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    closed: Arc<(Mutex<usize>, Condvar)>,
    /// As a proxy: the first line of each connection's first request
    first_lines: Arc<Mutex<Vec<String>>>,
}

impl Forwarder {
    /// Forwards every connection to `target`
    pub fn start(target: SocketAddr) -> Self {
        Self::spawn(target, false)
    }

    /// An HTTP proxy that sends everything to `target`, whatever host a request names: it
    /// answers `CONNECT` itself (then relays the tunnel's bytes) and relays requests in
    /// absolute form as they are
    pub fn proxy_to(target: SocketAddr) -> Self {
        Self::spawn(target, true)
    }

    fn spawn(target: SocketAddr, proxy: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        let closed = Arc::new((Mutex::new(0), Condvar::new()));
        let closes = Arc::clone(&closed);
        let first_lines = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&first_lines);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let Ok(mut server) = TcpStream::connect(target) else {
                    continue;
                };
                if proxy {
                    let Some(head) = read_head(&mut client) else {
                        continue;
                    };
                    let line = head.lines().next().unwrap_or_default().to_owned();
                    let connect = line.starts_with("CONNECT ");
                    lines
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(line);
                    let relayed = if connect {
                        client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    } else {
                        server.write_all(head.as_bytes())
                    };
                    if relayed.is_err() {
                        continue;
                    }
                }
                for (from, to, upstream) in [(&client, &server, true), (&server, &client, false)] {
                    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
                        continue;
                    };
                    let closes = Arc::clone(&closes);
                    std::thread::spawn(move || {
                        let _ = io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Write);
                        if upstream {
                            // the client closed (or reset) its side
                            *closes.0.lock().unwrap_or_else(PoisonError::into_inner) += 1;
                            closes.1.notify_all();
                        }
                    });
                }
            }
        });
        Self {
            addr,
            accepted,
            closed,
            first_lines,
        }
    }

    /// As a [proxy](Self::proxy_to): the first line of each connection's first request
    /// (`CONNECT host:port HTTP/1.1`, or a request in absolute form)
    pub fn first_lines(&self) -> Vec<String> {
        self.first_lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until the client closed at least `n` connections, at most `timeout`; whether
    /// it did
    pub fn wait_closed(&self, n: usize, timeout: Duration) -> bool {
        let (count, changed) = &*self.closed;
        let guard = count.lock().unwrap_or_else(PoisonError::into_inner);
        let (guard, _) = changed
            .wait_timeout_while(guard, timeout, |c| *c < n)
            .unwrap_or_else(PoisonError::into_inner);
        *guard >= n
    }

    /// Connections the client closed so far
    pub fn closed(&self) -> usize {
        *self.closed.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where it listens
    pub fn address(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint URL of the forwarder
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connections accepted so far
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// A request head read from `s` up to its blank line, at most 16 KiB
fn read_head(s: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 || s.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    String::from_utf8(head).ok()
}
