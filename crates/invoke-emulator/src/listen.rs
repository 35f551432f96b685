//! The accept loop every listener of the emulator shares (the endpoint and each process's
//! Runtime API): HTTP/1.1 connections, over TLS when asked, served by one handler, bounded in
//! number, with back-off on accept errors and timeouts on idle and slow clients
//!
//! Each connection is in one phase, which a watchdog running beside it times:
//!
//! - head: from the accept (the TLS handshake included) or from the first byte of a later
//!   request to the end of the request head, bounded by
//!   [`ServerLimits::header_read_timeout`]
//! - busy: the handler runs and the response body is produced; timed here only while the
//!   client reads none of the response, bounded by [`ServerLimits::write_timeout`] (the body
//!   read has its own timeout in the handler, the function its invocation timeout)
//! - draining: the body ended, hyper still sends what it has of it: bounded by the write
//!   timeout while the client reads nothing, else by the idle timeout counted from the last
//!   write; never evicted; idle once hyper flushed
//! - idle: kept alive after a response, waiting for the next request, bounded by
//!   [`ServerLimits::idle_timeout`]; an idle connection is also the one closed to make room
//!   when the connection limit is reached
//!
//! The body of a request the handler refused without reading it may still be arriving after
//! the answer. While the handler drains it ([`Connection::draining_body`], under its own
//! budget), its bytes do not start a head, the head and idle timeouts do not run, and the
//! connection is not closed to make room; the phase's timeout runs again from the drain's
//! end.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::body::RespBody;

/// How long the endpoint waits for clients, and how many it serves at once
///
/// The defaults suit SDK clients: the idle timeout is longer than the idle timeout of the
/// common connection pools (60 s in the Java SDK, 90 s in the Rust and Go ones), so that a
/// pool closes its idle connections before the emulator does and never sends a request on a
/// connection the emulator is closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Time from accepting a connection, or from the first byte of a later request on it,
    /// to the end of the request head (default 30 s); past it the connection is closed.
    /// Bounds clients that connect and send nothing, or send a head slowly (slowloris)
    pub header_read_timeout: Duration,
    /// Time to receive a request body once its head arrived (default 60 s); past it the
    /// request is answered 408 `RequestTimeoutException` and the connection closed. The body
    /// of a request refused before it was read is still taken in and dropped after the
    /// answer (at most 12 MiB), within this time alone: the header and idle timeouts wait
    /// for that drain's end
    pub body_read_timeout: Duration,
    /// Time a kept-alive connection may wait for its next request (default 120 s); past it
    /// the connection is closed
    pub idle_timeout: Duration,
    /// Time a response may wait for the client to take any of its bytes (default 120 s);
    /// past it the connection is closed. Bounds clients that start a stream and never read
    /// it: without this, a function's output would wait on such a client forever, even after
    /// the invocation ended
    pub write_timeout: Duration,
    /// Connections served at once (default 1024). When all are taken, a new connection
    /// closes the kept-alive one idle the longest; with none idle, new connections wait in
    /// the listen backlog until a connection ends or goes idle
    pub max_connections: usize,
    /// Asynchronous (`Event`) invocations running at once (default 256). Each is answered
    /// 202 at once and runs on in the background, so no connection bounds them; past this
    /// many, more are refused with 429 `TooManyRequestsException`
    /// (`ConcurrentInvocationLimitExceeded`)
    pub max_event_invocations: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(120),
            write_timeout: Duration::from_secs(120),
            max_connections: 1024,
            max_event_invocations: 256,
        }
    }
}

/// Connections the kernel completes and queues before they are accepted. The usual 128
/// overflows when a thousand clients connect at once: the kernel then drops their SYNs and
/// they retry a second later
const LISTEN_BACKLOG: u32 = 1024;

/// A listener on `addr` (address reuse on, as `TcpListener::bind` sets it) with a backlog of
/// [`LISTEN_BACKLOG`] (the kernel may cap it, at `net.core.somaxconn` on Linux)
pub(crate) fn bind(addr: std::net::SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Time a connection has to complete the TLS handshake
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// First and longest pause after a failed accept (out of file descriptors, for example)
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(5), Duration::from_secs(1));

/// Where a listener's connections come from: a [`TcpListener`], or a stand-in in tests
pub(crate) trait Accept: Send + Sync + 'static {
    /// The next connection
    fn accept(&self) -> impl Future<Output = io::Result<TcpStream>> + Send;
}

impl Accept for TcpListener {
    async fn accept(&self) -> io::Result<TcpStream> {
        TcpListener::accept(self).await.map(|(s, _)| s)
    }
}

/// Serves every connection `listener` accepts with `handler`, over TLS when `tls` is given,
/// until `stop` completes, then closes the open connections (streams included)
///
/// Under the default [`ServerLimits`] but for the idle timeout, 16 minutes: longer than the
/// longest invocation (15 minutes), for the Runtime API, whose runtime may leave its kept-alive
/// connection idle while the function runs.
pub(crate) async fn serve<H, F>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    handler: H,
    stop: impl Future<Output = ()>,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + 'static,
    F: Future<Output = Result<Response<RespBody>, Infallible>> + Send + 'static,
{
    let limits = ServerLimits {
        idle_timeout: Duration::from_secs(16 * 60),
        ..ServerLimits::default()
    };
    serve_with(listener, tls, handler, stop, limits).await;
}

/// As [`serve`], under `limits`
///
/// At most [`ServerLimits::max_connections`] are served at once. An accept error pauses
/// accepting, from 5 ms doubling up to 1 s while errors repeat, instead of spinning.
pub(crate) async fn serve_with<L, H, F>(
    listener: L,
    tls: Option<TlsAcceptor>,
    handler: H,
    stop: impl Future<Output = ()>,
    limits: ServerLimits,
) where
    L: Accept,
    H: Fn(Request<Incoming>) -> F + Clone + Send + 'static,
    F: Future<Output = Result<Response<RespBody>, Infallible>> + Send + 'static,
{
    let max = limits.max_connections.max(1);
    let pool = Arc::new(Pool {
        epoch: Instant::now(),
        idle: AtomicUsize::new(0),
        full: AtomicBool::new(false),
        became_idle: Notify::new(),
    });
    let mut connections = JoinSet::new();
    let mut watches: HashMap<tokio::task::Id, Arc<Watch>> = HashMap::new();
    // An accepted connection waiting for room (a connection that went busy meanwhile left
    // none to close); nothing more is accepted until it is placed
    let mut parked: Option<TcpStream> = None;
    let pause = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(pause, stop);
    let mut paused = false;
    let mut backoff = ACCEPT_BACKOFF.0;
    loop {
        let room = open_connections(&mut connections, &mut watches) < max;
        // SeqCst, paired with `Watch::shift`: either this load sees the connection that
        // went idle, or that connection sees `full` and wakes the loop
        pool.full.store(!room, Ordering::SeqCst);
        let evictable = !room && pool.idle.load(Ordering::SeqCst) > 0;
        if let Some(stream) = parked.take() {
            if room || (evictable && evict_longest_idle(&watches, &pool)) {
                let watch = Arc::new(Watch::new(&pool));
                let task = connection(
                    stream,
                    tls.clone(),
                    handler.clone(),
                    limits,
                    Arc::clone(&watch),
                    Arc::clone(&pool),
                );
                let id = connections.spawn(task).id();
                watches.insert(id, watch);
                continue;
            }
            parked = Some(stream);
        }
        let can_accept = parked.is_none() && (room || evictable);
        tokio::select! {
            () = &mut stop => break,
            () = &mut pause, if paused => paused = false,
            () = pool.became_idle.notified(), if !can_accept => {}
            accepted = listener.accept(), if !paused && can_accept => {
                if let Ok(stream) = accepted {
                    backoff = ACCEPT_BACKOFF.0;
                    let _ = stream.set_nodelay(true);
                    // placed at the top of the loop, under the state of that moment
                    parked = Some(stream);
                } else {
                    pause.as_mut().reset(Instant::now() + backoff);
                    paused = true;
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
                }
            }
            Some(done) = connections.join_next_with_id(), if !connections.is_empty() => {
                watches.remove(&ended(&done));
            }
        }
    }
    connections.shutdown().await;
}

/// How many connections are open: forgets first every one whose task ended. The set
/// counts an ended task until it is joined, and joining one per turn of the loop lags behind
/// many connections ending at once (all clients of a burst leaving together): the loop
/// would then see itself full, and close idle connections or leave new ones waiting, while
/// the descriptors of the ended ones were long freed
fn open_connections(
    connections: &mut JoinSet<()>,
    watches: &mut HashMap<tokio::task::Id, Arc<Watch>>,
) -> usize {
    while let Some(done) = connections.try_join_next_with_id() {
        watches.remove(&ended(&done));
    }
    connections.len()
}

/// The task of a connection that ended
fn ended(done: &Result<(tokio::task::Id, ()), tokio::task::JoinError>) -> tokio::task::Id {
    match done {
        Ok((id, ())) => *id,
        Err(e) => e.id(),
    }
}

/// Closes the connection idle the longest, to make room for a new one; whether one was
/// closed
fn evict_longest_idle(watches: &HashMap<tokio::task::Id, Arc<Watch>>, pool: &Pool) -> bool {
    // (one draining a refused body is not idle, though its response is done)
    let mut idle: Vec<&Arc<Watch>> = watches
        .values()
        .filter(|w| w.is(IDLE) && !w.is_draining_body())
        .collect();
    idle.sort_unstable_by_key(|w| w.since.load(Ordering::Relaxed));
    // a connection may leave the idle phase meanwhile: then the next one goes
    idle.into_iter().any(|w| w.shift(pool, IDLE, EVICTED))
}

/// Kept alive after a response, no request under way
const IDLE: u8 = 0;
/// Accepted (the TLS handshake included), or the first bytes of a later request arrived:
/// waiting for a complete request head
const HEAD: u8 = 1;
/// The handler runs or its response body is being produced
const BUSY: u8 = 2;
/// Closed to make room for a new connection
const EVICTED: u8 = 3;
/// The connection ended
const CLOSED: u8 = 4;
/// The response body ended, but hyper still has bytes of it to send: idle (and evictable)
/// only once they are flushed; its idle time runs from the last write
const DRAINING: u8 = 5;

/// What the connections of one listener share
struct Pool {
    /// The origin of [`Watch::since`]
    epoch: Instant,
    /// Connections in the idle phase (kept alive, waiting)
    idle: AtomicUsize,
    /// The listener is at its connection limit and waits for a connection to go idle
    full: AtomicBool,
    /// Woken when a connection goes idle while the listener is full
    became_idle: Notify,
}

impl Pool {
    /// Nanoseconds since [`epoch`](Self::epoch) (u64 holds 584 years of them)
    fn now(&self) -> u64 {
        Instant::now().duration_since(self.epoch).as_nanos() as u64
    }
}

/// The phase of one connection, and since when
struct Watch {
    phase: AtomicU8,
    /// Bodies of refused requests being drained ([`Connection::draining_body`])
    draining: AtomicUsize,
    /// Nanoseconds from [`Pool::epoch`] to the start of the phase
    since: AtomicU64,
    /// While the connection cannot write: 1 + nanoseconds from [`Pool::epoch`] to the first
    /// write that found the client not reading; 0 while writes go through
    stalled: AtomicU64,
    /// Woken on every phase change and when writes stall, for the watchdog to take the new
    /// deadline
    wake: Notify,
}

impl Watch {
    /// A connection accepted now: waiting for its first request head
    fn new(pool: &Pool) -> Self {
        Self {
            phase: AtomicU8::new(HEAD),
            draining: AtomicUsize::new(0),
            since: AtomicU64::new(pool.now()),
            stalled: AtomicU64::new(0),
            wake: Notify::new(),
        }
    }

    fn is(&self, phase: u8) -> bool {
        self.phase.load(Ordering::SeqCst) == phase
    }

    /// Whether the body of a refused request is being drained
    fn is_draining_body(&self) -> bool {
        self.draining.load(Ordering::SeqCst) > 0
    }

    /// The drain of a refused request's body ended: the head or idle timeout runs from now,
    /// and the connection may again be closed to make room
    fn drained(&self, pool: &Pool) {
        if self.draining.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.since.store(pool.now(), Ordering::Relaxed);
            if self.is(IDLE) && pool.full.load(Ordering::SeqCst) {
                pool.became_idle.notify_one();
            }
            self.wake.notify_one();
        }
    }

    /// Moves from phase `from` to `to` if the connection is in `from`; whether it moved
    fn shift(&self, pool: &Pool, from: u8, to: u8) -> bool {
        if self
            .phase
            .compare_exchange(from, to, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return false;
        }
        self.since.store(pool.now(), Ordering::Relaxed);
        if from == IDLE {
            pool.idle.fetch_sub(1, Ordering::SeqCst);
        }
        if to == IDLE {
            pool.idle.fetch_add(1, Ordering::SeqCst);
            if pool.full.load(Ordering::SeqCst) {
                pool.became_idle.notify_one();
            }
        }
        self.wake.notify_one();
        true
    }

    /// The handler was called: busy, from head, or from idle or draining (a head that
    /// arrived along with the previous request)
    fn busy(&self, pool: &Pool) {
        let _ = self.shift(pool, HEAD, BUSY)
            || self.shift(pool, IDLE, BUSY)
            || self.shift(pool, DRAINING, BUSY);
    }

    /// The connection ended
    fn close(&self, pool: &Pool) {
        if self.phase.swap(CLOSED, Ordering::SeqCst) == IDLE {
            pool.idle.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Notes how a write went: `stalled` when the client took none of it
    fn wrote(&self, pool: &Pool, stalled: bool) {
        if !stalled && self.is(DRAINING) {
            // the end of a response is still going out: not idle yet
            self.since.store(pool.now(), Ordering::Relaxed);
        }
        let since = self.stalled.load(Ordering::Relaxed);
        if stalled && since == 0 {
            self.stalled.store(pool.now() + 1, Ordering::Relaxed);
            self.wake.notify_one();
        } else if !stalled && since != 0 {
            self.stalled.store(0, Ordering::Relaxed);
        }
    }

    /// Completes when the connection has to close: its phase outlived its timeout, its
    /// writes stalled too long, or it was evicted
    async fn expired(&self, pool: &Pool, limits: &ServerLimits) {
        loop {
            // Created before the phase is read: a change after the read wakes it
            let changed = self.wake.notified();
            let stalled = self.stalled.load(Ordering::Relaxed);
            let timeout = match self.phase.load(Ordering::SeqCst) {
                BUSY | DRAINING if stalled != 0 => Some((stalled - 1, limits.write_timeout)),
                // a refused body is being drained, within the body-read timeout
                IDLE | HEAD | DRAINING if self.is_draining_body() => None,
                IDLE | DRAINING => Some((self.since.load(Ordering::Relaxed), limits.idle_timeout)),
                HEAD => Some((
                    self.since.load(Ordering::Relaxed),
                    limits.header_read_timeout,
                )),
                BUSY => None,
                _ => return,
            };
            // a limit too far off to be a time (`--header-timeout 1e19`) is no limit
            let deadline = timeout
                .and_then(|(since, t)| (pool.epoch + Duration::from_nanos(since)).checked_add(t));
            match deadline {
                Some(deadline) => {
                    if deadline <= Instant::now() {
                        return;
                    }
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline) => {}
                        () = changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }
}

/// The connection's stream, moving the connection from idle to head when request bytes
/// arrive (not while a refused body is drained), and noting writes the client does not take
struct Watched<S> {
    inner: S,
    watch: Arc<Watch>,
    pool: Arc<Pool>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        // the bytes of a refused body being drained are no request's head
        if buf.filled().len() > before && !self.watch.is_draining_body() {
            let _ = self.watch.shift(&self.pool, IDLE, HEAD)
                || self.watch.shift(&self.pool, DRAINING, HEAD);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch.wrote(&self.pool, polled.is_pending());
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch.wrote(&self.pool, polled.is_pending());
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    /// hyper flushes the stream once its own buffer is empty: a response that ended is
    /// then all sent, and its connection idle
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        if matches!(polled, Poll::Ready(Ok(()))) && self.watch.is(DRAINING) {
            self.watch.shift(&self.pool, DRAINING, IDLE);
        }
        polled
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The connection a request came on, as its handler finds it in the request's extensions
#[derive(Clone)]
pub(crate) struct Connection {
    watch: Arc<Watch>,
    pool: Arc<Pool>,
}

impl Connection {
    /// Says that the body of a refused request is being drained, until the guard is
    /// dropped: meanwhile the connection's head and idle timeouts do not run (the bytes that
    /// arrive are that body's, not the next request's head; the drain has its own time
    /// limit) and it is not closed to make room for another
    pub(crate) fn draining_body(&self) -> DrainingBody {
        self.watch.draining.fetch_add(1, Ordering::SeqCst);
        self.watch.wake.notify_one();
        DrainingBody(self.clone())
    }
}

/// Held while a refused request's body is drained ([`Connection::draining_body`])
pub(crate) struct DrainingBody(Connection);

impl Drop for DrainingBody {
    fn drop(&mut self) {
        self.0.watch.drained(&self.0.pool);
    }
}

/// A response body that moves its connection on once it ended (or was dropped): to
/// draining, and to idle once hyper flushed what it still had of it
struct Tracked {
    body: RespBody,
    /// Present until the move
    done: Option<(Arc<Watch>, Arc<Pool>)>,
}

impl Tracked {
    fn finish(&mut self) {
        if let Some((watch, pool)) = self.done.take() {
            watch.shift(&pool, BUSY, DRAINING);
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Body for Tracked {
    type Data = <RespBody as Body>::Data;
    type Error = <RespBody as Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Serves one connection until it closes or its watchdog expires: the TLS handshake (bounded
/// by [`HANDSHAKE_TIMEOUT`]) when `tls` is given, then HTTP/1.1
async fn connection<H, F>(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    handler: H,
    limits: ServerLimits,
    watch: Arc<Watch>,
    pool: Arc<Pool>,
) where
    H: Fn(Request<Incoming>) -> F + Send + 'static,
    F: Future<Output = Result<Response<RespBody>, Infallible>> + Send + 'static,
{
    let service = {
        let (watch, pool) = (Arc::clone(&watch), Arc::clone(&pool));
        service_fn(move |mut req: Request<Incoming>| {
            watch.busy(&pool);
            req.extensions_mut().insert(Connection {
                watch: Arc::clone(&watch),
                pool: Arc::clone(&pool),
            });
            let done = Some((Arc::clone(&watch), Arc::clone(&pool)));
            let response = handler(req);
            async move {
                let response = response.await?;
                Ok::<_, Infallible>(response.map(|body| Tracked { body, done }))
            }
        })
    };
    let serve = async {
        let mut http = http1::Builder::new();
        // The watchdog times the head, idle time apart; hyper's own timer would count both
        http.timer(TokioTimer::new()).header_read_timeout(None);
        let _ = match tls {
            None => {
                let io = Watched {
                    inner: stream,
                    watch: Arc::clone(&watch),
                    pool: Arc::clone(&pool),
                };
                http.serve_connection(TokioIo::new(io), service).await
            }
            Some(acceptor) => {
                let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                let Ok(Ok(stream)) = handshake.await else {
                    return;
                };
                let io = Watched {
                    inner: stream,
                    watch: Arc::clone(&watch),
                    pool: Arc::clone(&pool),
                };
                http.serve_connection(TokioIo::new(io), service).await
            }
        };
    };
    tokio::select! {
        () = serve => {}
        () = watch.expired(&pool, &limits) => {}
    }
    watch.close(&pool);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listener whose every accept fails as when the process is out of file descriptors
    struct OutOfDescriptors {
        calls: AtomicUsize,
        /// Notified once accept was called this many times
        enough: usize,
        reached: Notify,
    }

    impl Accept for OutOfDescriptors {
        async fn accept(&self) -> io::Result<TcpStream> {
            if self.calls.fetch_add(1, Ordering::SeqCst) + 1 == self.enough {
                self.reached.notify_one();
            }
            Err(io::Error::from_raw_os_error(24)) // EMFILE
        }
    }

    /// With the clock paused, time moves only while every task waits: accepting without a
    /// pause would call accept without end at one instant
    #[tokio::test(start_paused = true)]
    async fn accept_errors_back_off_instead_of_spinning() {
        let listener = Arc::new(OutOfDescriptors {
            calls: AtomicUsize::new(0),
            enough: 1000,
            reached: Notify::new(),
        });
        let handler = |_req: Request<Incoming>| async {
            Ok::<_, Infallible>(Response::new(crate::body::full("")))
        };
        let started = Instant::now();
        let stop = {
            let listener = Arc::clone(&listener);
            async move {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(10)) => {}
                    () = listener.reached.notified() => {}
                }
            }
        };
        serve_with(
            Arc::clone(&listener),
            None,
            handler,
            stop,
            ServerLimits::default(),
        )
        .await;
        let calls = listener.calls.load(Ordering::SeqCst);
        // 5 ms doubling to 1 s: 8 pauses fill the first 1.3 s, then one a second
        assert!(calls <= 20, "{calls} accepts in {:?}", started.elapsed());
        assert!(calls >= 10, "{calls} accepts in {:?}", started.elapsed());
    }

    /// Connections that all ended at once are no longer counted, though the loop joined
    /// none of them: counting them kept a burst's next clients from room (the set counts a
    /// task until it is joined)
    #[tokio::test]
    async fn connections_that_ended_are_not_counted_as_open() {
        let pool = Pool {
            epoch: Instant::now(),
            idle: AtomicUsize::new(0),
            full: AtomicBool::new(false),
            became_idle: Notify::new(),
        };
        let mut connections = JoinSet::new();
        let mut watches = HashMap::new();
        let (_open, still_open) = tokio::sync::watch::channel(());
        let ended = Arc::new(AtomicUsize::new(0));
        for i in 0..300 {
            let id = if i % 100 == 0 {
                let mut open = still_open.clone();
                connections.spawn(async move {
                    let _ = open.changed().await;
                })
            } else {
                let ended = Arc::clone(&ended);
                connections.spawn(async move {
                    ended.fetch_add(1, Ordering::SeqCst);
                })
            }
            .id();
            watches.insert(id, Arc::new(Watch::new(&pool)));
        }
        // on this single-threaded runtime a task that counted itself ended has returned
        while ended.load(Ordering::SeqCst) < 297 {
            tokio::task::yield_now().await;
        }
        assert_eq!(connections.len(), 300, "none was joined");
        assert_eq!(open_connections(&mut connections, &mut watches), 3);
        assert_eq!(
            watches.len(),
            3,
            "the watches of the ended ones are dropped"
        );
    }

    /// Sends one request on `s` and reads its whole answer (a `Content-Length: 2` body)
    async fn ask(s: &mut TcpStream) -> Vec<u8> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !got.ends_with(b"ok") {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        got
    }

    /// Whether the server closed `s` (rather than sent anything)
    async fn closed(s: &mut TcpStream) -> bool {
        use tokio::io::AsyncReadExt as _;
        matches!(s.read(&mut [0u8; 64]).await, Ok(0) | Err(_))
    }

    /// A listener served by [`serve`] (as each function process's Runtime API is) and
    /// answering every request `ok`; stops when the returned sender is dropped
    fn runtime_listener() -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let handler = |_req: Request<Incoming>| async {
            Ok::<_, Infallible>(Response::new(crate::body::full("ok")))
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(listener, None, handler, async {
            let _ = stopped.await;
        }));
        (addr, stop)
    }

    /// A runtime may leave its kept-alive connection idle while its function runs, up to
    /// the longest invocation (15 minutes): [`serve`] keeps it for 16. (Paused clock: time
    /// jumps to the next timer whenever every task waits.)
    #[tokio::test(start_paused = true)]
    async fn the_runtime_api_keeps_a_connection_idle_past_the_longest_invocation() {
        let (addr, _stop) = runtime_listener();
        let mut s = TcpStream::connect(addr).await.unwrap();
        assert!(ask(&mut s).await.starts_with(b"HTTP/1.1 200"));
        tokio::time::sleep(Duration::from_secs(15 * 60 + 59)).await;
        assert!(ask(&mut s).await.starts_with(b"HTTP/1.1 200"));
        // then idle past 16 minutes: closed
        let idle = Instant::now();
        assert!(closed(&mut s).await);
        let waited = idle.elapsed();
        assert!(
            waited >= Duration::from_secs(16 * 60) && waited < Duration::from_secs(16 * 60 + 1),
            "{waited:?}"
        );
    }

    /// The other limits of [`serve`] are the defaults: a connection that sends nothing is
    /// closed after the 30 s header timeout
    #[tokio::test(start_paused = true)]
    async fn the_runtime_api_closes_a_silent_connection_after_the_header_timeout() {
        let (addr, _stop) = runtime_listener();
        let mut s = TcpStream::connect(addr).await.unwrap();
        let connected = Instant::now();
        assert!(closed(&mut s).await);
        let waited = connected.elapsed();
        assert!(
            waited >= Duration::from_secs(30) && waited < Duration::from_secs(31),
            "{waited:?}"
        );
    }

    impl<T: Accept> Accept for Arc<T> {
        fn accept(&self) -> impl Future<Output = io::Result<TcpStream>> + Send {
            T::accept(self)
        }
    }
}
