//! One invocation: the driver loop over ureq, the event iterator and the payload reader

use std::io::{self, Read};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use invoke_proto::{DriverAction, Event, InvokeDriver, InvokeError, TransportFailure};

use invoke_config::{
    COLLECT_LIMIT, Collected, Collector, DRAIN_LIMIT, DRAIN_WAIT, PayloadCursor,
    ProvidedCredentials, ReaderFailure, ResponseInfo, Started, Timeouts, jitter,
};

use crate::buffers::BodyBuffer;
use crate::client::Inner;
use crate::credentials::exchanges_by;
use crate::drain::{deadline_by, reads_by};
use crate::error::{BoxError, Error};

/// What the caller gets next
enum Progress {
    Head,
    Event(Event),
    Done,
}

/// How late after the call's deadline its first attempt may end, when it runs under the
/// agent's own overall timeout (see `Call::send`)
const AGENT_DEADLINE_SLACK: Duration = Duration::from_millis(1);

/// The state of one invocation between the driver and ureq
pub(crate) struct Call {
    inner: Arc<Inner>,
    driver: InvokeDriver,
    deadline: Instant,
    /// This invocation's timeouts: the client's, with those its options changed
    timeouts: Timeouts,
    /// This invocation's own credentials (its options'), in place of the client's
    credentials: Option<Arc<ProvidedCredentials>>,
    span: tracing::Span,
    body: Option<ureq::BodyReader<'static>>,
    /// The error behind the last transport failure reported to the driver
    last_error: Option<BoxError>,
    status: u16,
    buf: BodyBuffer,
    finished: bool,
}

impl Call {
    pub(crate) fn new(inner: Arc<Inner>, started: Started, span: tracing::Span) -> Self {
        Self {
            buf: BodyBuffer::new(Arc::clone(&inner.buffers)),
            inner,
            driver: started.driver,
            deadline: started.deadline,
            timeouts: started.timeouts,
            credentials: started.credentials,
            span,
            body: None,
            last_error: None,
            status: 0,
            finished: false,
        }
    }

    /// Runs the attempts until a response head (or the final error)
    pub(crate) fn start(mut self) -> Result<Response, Error> {
        let span = self.span.clone();
        let _entered = span.enter();
        match self.step()? {
            Progress::Head => {}
            // The driver announces a head before anything else
            Progress::Event(_) | Progress::Done => {
                return Err(Error::Config("driver skipped the response head".into()));
            }
        }
        let meta = self.driver.meta().cloned().unwrap_or_default();
        if let Some(id) = &meta.request_id {
            span.record("request_id", id.as_str());
        }
        Ok(Response {
            info: ResponseInfo::new(meta, self.status, self.driver.attempts()),
            call: self,
            failure: None,
        })
    }

    /// Drives the invocation up to the next thing for the caller; the caller has entered
    /// the invocation's span
    fn step(&mut self) -> Result<Progress, Error> {
        loop {
            let action = self.driver.poll();
            if let Some(progress) = self.act(action)? {
                return Ok(progress);
            }
        }
    }

    /// Carries out one driver action; what the caller gets, if anything
    fn act(&mut self, action: DriverAction) -> Result<Option<Progress>, Error> {
        // no read of the connection waits past the deadline (see `drain`)
        let _deadline = deadline_by(self.deadline);
        let progress = match action {
            DriverAction::Send { attempt } => {
                self.send(attempt).inspect_err(|_| self.end())?;
                None
            }
            DriverAction::Sleep(d) => {
                tracing::debug!(delay_ms = d.as_millis(), "waiting before the next attempt");
                std::thread::sleep(d);
                None
            }
            DriverAction::ReadErrorBody { limit } => {
                self.read_error_body(limit);
                None
            }
            DriverAction::Head => {
                self.span.record("attempts", self.driver.attempts());
                Some(Progress::Head)
            }
            DriverAction::ReadBody => {
                self.read_body();
                None
            }
            DriverAction::Event(e) => Some(Progress::Event(e)),
            DriverAction::Done => {
                self.finished = true;
                self.drain();
                tracing::debug!(
                    bytes = self.driver.body_bytes(),
                    events = self.driver.events(),
                    "stream complete"
                );
                Some(Progress::Done)
            }
            DriverAction::Fail(e) => {
                self.end();
                return Err(self.error(e));
            }
            other => {
                self.end();
                return Err(Error::Config(format!(
                    "unsupported driver action {other:?}"
                )));
            }
        };
        Ok(progress)
    }

    /// The invocation failed: nothing more to read or hand out
    fn end(&mut self) {
        self.finished = true;
        self.body = None;
        self.span.record("attempts", self.driver.attempts());
    }

    fn send(&mut self, attempt: u32) -> Result<(), Error> {
        let span = tracing::debug_span!("attempt", attempt, status = tracing::field::Empty);
        let _entered = span.enter();
        let credentials = if let Some(own) = &self.credentials {
            Ok(Some(Arc::clone(own)))
        } else {
            let _by = exchanges_by(self.deadline);
            self.inner.credentials()
        };
        let credentials = match credentials {
            Ok(credentials) => credentials,
            // cut short by the deadline (or failed as it passed): the deadline's error
            Err(e) if Instant::now() >= self.deadline => {
                tracing::debug!(error = %e, "no credentials before the deadline");
                self.fail(TransportFailure::Deadline, Box::new(e));
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let request = match credentials {
            Some(provided) => self.driver.sign(&provided.credentials, SystemTime::now())?,
            None => self.driver.unsigned_request(),
        };
        let (parts, body) = request.into_parts();
        let request = http::Request::from_parts(parts, &body[..]);
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        // The agent's timeouts are the client's: an attempt starting within a millisecond of
        // a call with the client's timeouts keeps them (the deadline then passes at most that
        // late), sparing the request ureq's per-request copy of its whole configuration
        let agent = self.inner.invoker.timeouts;
        let own = self.timeouts != agent;
        let late = agent.overall.checked_sub(remaining);
        let request = if !own && late.is_some_and(|late| late <= AGENT_DEADLINE_SLACK) {
            request
        } else {
            let request = self.inner.agent.configure_request(request);
            let request = if own {
                // This call's connect, head and idle timeouts as the agent has the client's
                // (see `ClientBuilder::build`), except that the per-read and per-write ones
                // are not cut below the overall timeout (`client::per_io_timeout`): the
                // deadline, not a read's timeout, then ends a call at its deadline (a system
                // call may set the socket's timeout before each read, as ureq's time left
                // changes)
                let t = self.timeouts;
                request
                    .timeout_resolve(Some(t.connect))
                    .timeout_connect(Some(t.connect))
                    .timeout_send_request(Some(t.head))
                    .timeout_send_body(Some(t.head))
                    .timeout_recv_response(Some(t.head))
                    .timeout_per_read(Some(t.idle))
                    .timeout_per_write(Some(t.idle))
            } else {
                request
            };
            request.timeout_global(Some(remaining)).build()
        };
        let _hold = (!body.is_empty()).then(crate::tcp::hold_next_write);
        match self.inner.agent.run(request) {
            Ok(response) => {
                let (parts, body) = response.into_parts();
                self.status = parts.status.as_u16();
                span.record("status", self.status);
                self.body = Some(body.into_reader());
                self.driver
                    .handle_head(parts.status, &parts.headers, Instant::now());
            }
            Err(e) => {
                let kind = classify(&e, true);
                tracing::debug!(%kind, error = %e, "attempt failed");
                // the next attempt looks the name up again: the address that failed (refused,
                // silent, or now a host whose certificate does not match) is not reused
                self.inner.addresses.clear();
                self.fail(kind, Box::new(e));
            }
        }
        Ok(())
    }

    fn read_error_body(&mut self, limit: usize) {
        let Some(body) = self.body.take() else {
            self.fail(TransportFailure::Other, "no response body".into());
            return;
        };
        let mut bytes = Vec::new();
        match body.take(limit as u64).read_to_end(&mut bytes) {
            Ok(_) => {
                tracing::debug!(status = self.status, bytes = bytes.len(), "error response");
                self.driver
                    .handle_error_body(&bytes, Instant::now(), jitter());
            }
            Err(e) => self.fail(classify_io(&e, false), Box::new(e)),
        }
    }

    fn read_body(&mut self) {
        let Some(body) = self.body.as_mut() else {
            self.driver.end_of_body();
            return;
        };
        match self.buf.read(body) {
            Ok(None) => {
                self.body = None;
                self.driver.end_of_body();
            }
            Ok(Some(bytes)) => self.driver.feed(bytes),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                self.body = None;
                let kind = classify_io(&e, false);
                tracing::debug!(%kind, error = %e, "body read failed");
                self.fail(kind, Box::new(e));
            }
        }
    }

    fn fail(&mut self, kind: TransportFailure, error: BoxError) {
        self.last_error = Some(error);
        self.driver.handle_failure(kind, Instant::now(), jitter());
    }

    /// Reads the end of the body so the connection goes back to the pool: at most
    /// [`DRAIN_LIMIT`] bytes within [`DRAIN_WAIT`], else the connection is closed
    fn drain(&mut self) {
        if let Some(mut body) = self.body.take() {
            let _by = reads_by(Instant::now() + DRAIN_WAIT);
            self.buf.discard(&mut body, DRAIN_LIMIT);
        }
    }

    fn error(&mut self, e: InvokeError) -> Error {
        let attempts = self.driver.attempts();
        let error = Error::from_invoke(e, attempts, &self.inner.address, self.last_error.take());
        tracing::debug!(
            error = %error,
            attempts,
            bytes = self.driver.body_bytes(),
            events = self.driver.events(),
            "invocation failed"
        );
        error
    }
}

/// Classifies a ureq error; `before_head` while no response head arrived
fn classify(e: &ureq::Error, before_head: bool) -> TransportFailure {
    use ureq::Timeout;
    match e {
        ureq::Error::Timeout(t) => match t {
            Timeout::Connect | Timeout::Resolve => TransportFailure::ConnectTimeout,
            Timeout::Global => TransportFailure::Deadline,
            _ if before_head => TransportFailure::HeadTimeout,
            _ => TransportFailure::IdleTimeout,
        },
        ureq::Error::Io(io) if is_tls(io) => TransportFailure::Tls,
        // a ureq error inside (a timeout from below TLS) tells more than the kind
        ureq::Error::Io(io) => classify_io(io, before_head),
        // ureq 3's text names the proxy's status ("proxy server responded 407/...");
        // without one (no answer) the proxy is tried again
        ureq::Error::ConnectProxyFailed(why) => why
            .strip_prefix("proxy server responded ")
            .and_then(|rest| rest.get(..3)?.parse().ok())
            .map_or(TransportFailure::Connect, TransportFailure::of_proxy_answer),
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => TransportFailure::Connect,
        ureq::Error::Tls(_)
        | ureq::Error::TlsRequired
        | ureq::Error::Pem(_)
        | ureq::Error::Rustls(_) => TransportFailure::Tls,
        ureq::Error::Protocol(_) | ureq::Error::LargeResponseHeader(..) => {
            TransportFailure::Protocol
        }
        _ => TransportFailure::Other,
    }
}

/// Classifies an `io::Error` of a body read, looking inside for a ureq error
fn classify_io(e: &io::Error, before_head: bool) -> TransportFailure {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<ureq::Error>())
    {
        Some(u) => classify(u, before_head),
        None if is_tls(e) => TransportFailure::Tls,
        None => classify_io_kind(e.kind(), before_head),
    }
}

/// Whether rustls failed (a certificate or handshake error surfaces as an `io::Error`)
fn is_tls(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
}

fn classify_io_kind(kind: io::ErrorKind, before_head: bool) -> TransportFailure {
    use io::ErrorKind as K;
    match kind {
        K::ConnectionRefused
        | K::AddrNotAvailable
        | K::HostUnreachable
        | K::NetworkUnreachable
        | K::NetworkDown => TransportFailure::Connect,
        K::TimedOut | K::WouldBlock if before_head => TransportFailure::HeadTimeout,
        K::TimedOut | K::WouldBlock => TransportFailure::IdleTimeout,
        _ if before_head => TransportFailure::Send,
        _ => TransportFailure::BodyRead,
    }
}

/// The response to an invocation: its metadata, then its events
///
/// Iterate for the events as they arrive (`Result<Event, Error>`; an error ends the
/// iteration), or read the payload with [`into_reader`](Self::into_reader). The last event
/// of a complete stream is `InvokeComplete`; a stream that ends without it yields an error.
pub struct Response {
    info: ResponseInfo,
    call: Call,
    /// How the events ended, if the iteration handed out an error or a function error: a
    /// payload reader made afterwards fails with it instead of ending cleanly
    failure: Option<ReaderFailure>,
}

/// The metadata, status and attempts: `response.request_id()`, `response.attempts()` and the
/// other [`ResponseInfo`] accessors
impl std::ops::Deref for Response {
    type Target = ResponseInfo;

    fn deref(&self) -> &ResponseInfo {
        &self.info
    }
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl Response {
    /// An `io::Read` over the payload bytes
    ///
    /// It ends (returns 0) only after a successful `InvokeComplete`; a function error, an
    /// in-stream exception, a broken or truncated stream, or a stream without
    /// `InvokeComplete` is an error, from which [`Error::from_io`] gives this crate's error
    /// (for a function error, [`Error::function_error`] has `ErrorCode` and
    /// `ErrorDetails`). After an error every read fails again.
    ///
    /// Made after the iteration handed out some events, it reads the payload of the rest;
    /// made after the iteration ended with an error or a function error, every read fails.
    pub fn into_reader(mut self) -> PayloadReader {
        let cursor = self
            .failure
            .take()
            .map_or_else(PayloadCursor::new, PayloadCursor::failed);
        PayloadReader {
            response: self,
            cursor,
        }
    }

    /// The whole payload and the `InvokeComplete`, once the events ended: for a caller that
    /// wants the result rather than the stream (the log tail with it, when asked for)
    ///
    /// Up to [`COLLECT_LIMIT`] bytes (the largest response the service streams); see
    /// [`collect_payload_up_to`](Self::collect_payload_up_to). Made after some events were
    /// taken, it gathers the payload of the rest.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), invoke_blocking::Error> {
    /// # let client = invoke_blocking::Client::from_env()?;
    /// use invoke_blocking::invoke_proto::{InvokeParams, LogType};
    ///
    /// let params = InvokeParams::new("my-function", "{}").log_type(LogType::Tail);
    /// let collected = client.invoke(&params)?.collect_payload()?;
    /// println!("{}", String::from_utf8_lossy(&collected.payload));
    /// if let Ok(Some(log)) = collected.complete.decoded_log() {
    ///     eprintln!("{}", String::from_utf8_lossy(&log));
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// Every error of the events; [`Error::Function`] for a function error (with its
    /// `ErrorCode` and `ErrorDetails`); [`Error::EventsEnded`] when the events had already
    /// ended before.
    pub fn collect_payload(self) -> Result<Collected, Error> {
        self.collect_payload_up_to(COLLECT_LIMIT)
    }

    /// As [`collect_payload`](Self::collect_payload), holding at most `limit` bytes: a
    /// longer payload is [`Error::PayloadTooLarge`], found before the chunk that passes the
    /// limit is held, and the response is dropped with its connection
    ///
    /// # Errors
    ///
    /// As [`collect_payload`](Self::collect_payload), and [`Error::PayloadTooLarge`].
    pub fn collect_payload_up_to(mut self, limit: usize) -> Result<Collected, Error> {
        let mut collector = Collector::new(limit);
        loop {
            if let Some(collected) = collector.take(self.next())? {
                return Ok(collected);
            }
        }
    }

    /// The next event if it has arrived already: decoded from bytes this response has
    /// read, so that taking it does not wait for the network; `None` when
    /// [`next`](Iterator::next) would have to read (or has the end or an error to report)
    ///
    /// For a caller that writes events somewhere and flushes: write the ready ones, flush
    /// once, then call `next`, which waits. Events that arrived together then cost one
    /// flush, and none waits in a buffer while the connection is idle.
    pub fn next_ready(&mut self) -> Option<Event> {
        if self.call.finished {
            return None;
        }
        let event = self.call.driver.ready_event()?;
        Some(self.note(event))
    }

    /// Remembers a function error's `InvokeComplete` on its way to the caller
    fn note(&mut self, event: Event) -> Event {
        if let Event::InvokeComplete(complete) = &event {
            self.failure = ReaderFailure::function(complete);
        }
        event
    }
}

impl Iterator for Response {
    type Item = Result<Event, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.call.finished {
            return None;
        }
        loop {
            // Events already decoded go out without entering the span: nothing is logged
            // for them, and a subscriber's enter and exit would cost more than the event
            let action = match self.call.driver.poll() {
                DriverAction::Event(e) => return Some(Ok(self.note(e))),
                action => action,
            };
            let span = self.call.span.clone();
            let _entered = span.enter();
            match self.call.act(action) {
                Ok(None) => {}
                // The driver never retries after a success head; should a future one, the
                // metadata follows the new head
                Ok(Some(Progress::Head)) => {
                    self.info = ResponseInfo::new(
                        self.call.driver.meta().cloned().unwrap_or_default(),
                        self.call.status,
                        self.call.driver.attempts(),
                    );
                }
                Ok(Some(Progress::Event(e))) => return Some(Ok(self.note(e))),
                Ok(Some(Progress::Done)) => return None,
                Err(e) => {
                    self.failure = Some(ReaderFailure::of(&e));
                    return Some(Err(e));
                }
            }
        }
    }
}

/// The payload of a response as an `io::Read`, from [`Response::into_reader`]
pub struct PayloadReader {
    response: Response,
    cursor: PayloadCursor,
}

impl std::fmt::Debug for PayloadReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayloadReader")
            .field("response", &self.response)
            .field("buffered", &self.cursor.buffered())
            .finish_non_exhaustive()
    }
}

impl PayloadReader {
    /// The response metadata
    pub fn response(&self) -> &Response {
        &self.response
    }
}

impl Read for PayloadReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(bytes) = self.cursor.next_bytes(out.len()) {
                let bytes = bytes?;
                out[..bytes.len()].copy_from_slice(&bytes);
                return Ok(bytes.len());
            }
            self.cursor.handle(self.response.next())?;
        }
    }
}

/// Reads without copying: `fill_buf` gives the rest of the current `PayloadChunk` (so
/// `lines()` and `read_until` work on the payload as it streams), with the same ends and
/// errors as `read`
impl io::BufRead for PayloadReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.cursor.needs_event() {
            self.cursor.handle(self.response.next())?;
        }
        self.cursor.fill()
    }

    fn consume(&mut self, amount: usize) {
        self.cursor.consume(amount);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn responses_and_readers_move_between_threads() {
        fn send<T: Send>() {}
        fn send_sync<T: Send + Sync>() {}
        send::<super::Response>();
        send::<super::PayloadReader>();
        send_sync::<crate::Client>();
        send_sync::<crate::Error>();
    }

    #[test]
    fn failures_are_classified_by_what_failed_and_when() {
        use super::{classify, classify_io};
        use invoke_proto::TransportFailure as F;
        use std::io::{Error as IoError, ErrorKind as K};

        for (e, want) in [
            (ureq::Error::HostNotFound, F::Connect),
            (ureq::Error::ConnectionFailed, F::Connect),
            (ureq::Error::TlsRequired, F::Tls),
            (ureq::Error::LargeResponseHeader(1, 2), F::Protocol),
            (
                ureq::Error::Io(IoError::other(rustls::Error::General("x".into()))),
                F::Tls,
            ),
        ] {
            assert_eq!(classify(&e, true), want, "{e}");
        }
        let tls = IoError::other(rustls::Error::General("bad certificate".into()));
        assert_eq!(classify_io(&tls, false), F::Tls);
        for (kind, before_head, want) in [
            (K::ConnectionRefused, true, F::Connect),
            (K::TimedOut, true, F::HeadTimeout),
            (K::WouldBlock, true, F::HeadTimeout),
            (K::TimedOut, false, F::IdleTimeout),
            (K::WouldBlock, false, F::IdleTimeout),
            (K::BrokenPipe, true, F::Send),
            (K::UnexpectedEof, false, F::BodyRead),
        ] {
            assert_eq!(
                classify_io(&IoError::from(kind), before_head),
                want,
                "{kind:?} {before_head}"
            );
        }
    }
}
