//! One invocation: the driver loop over hyper, the event stream and the payload reader

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_core::Stream;
use http_body_util::Full;
use hyper::body::Body as _;
use invoke_proto::{DriverAction, Event, InvokeDriver, InvokeError, TransportFailure};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::Instant;

use invoke_config::{
    COLLECT_LIMIT, Collected, Collector, DRAIN_LIMIT, DRAIN_WAIT, PayloadCursor,
    ProvidedCredentials, ReaderFailure, ResponseInfo, Started, Timeouts, jitter,
};

use crate::client::Inner;
use crate::connect::classify;
use crate::credentials::Source;
use crate::error::{BoxError, Error};
use crate::pool::{Lease, SentAt};
use crate::timer::{Timer, Timers};

/// The state of one invocation between the driver and hyper
pub(crate) struct Call {
    inner: Arc<Inner>,
    driver: InvokeDriver,
    deadline: Instant,
    /// This invocation's timeouts: the client's, with those its options changed
    timeouts: Timeouts,
    /// This invocation's own credentials (its options'), in place of the client's
    credentials: Option<Arc<ProvidedCredentials>>,
    span: tracing::Span,
    /// The response body with its connection, back to the pool once the body ended
    lease: Option<Lease>,
    /// The error behind the last transport failure reported to the driver
    last_error: Option<BoxError>,
    status: u16,
}

impl Call {
    pub(crate) fn new(inner: Arc<Inner>, started: Started, span: tracing::Span) -> Self {
        Self {
            inner,
            driver: started.driver,
            deadline: Instant::from_std(started.deadline),
            timeouts: started.timeouts,
            credentials: started.credentials,
            span,
            lease: None,
            last_error: None,
            status: 0,
        }
    }

    /// Runs the attempts until a response head (or the final error)
    ///
    /// Boxed: a `Call` is most of a kilobyte, and the invocation's future, then its
    /// [`Response`], hold only the pointer instead of the call itself (which an async
    /// function's `self` holds twice), copied at each move and return.
    pub(crate) async fn start(mut self: Box<Self>) -> Result<Response, Error> {
        let span = self.span.clone();
        // pinned where it is made and polled in the span: `Instrument` would move the
        // future (most of the invocation's) into its wrapper, and that again into this one
        let result = {
            let mut until_head = std::pin::pin!(self.until_head());
            std::future::poll_fn(|cx| {
                let _entered = span.enter();
                until_head.as_mut().poll(cx)
            })
            .await
        };
        span.record("attempts", self.driver.attempts());
        result?;
        let meta = self.driver.take_meta().unwrap_or_default();
        if let Some(id) = &meta.request_id {
            span.record("request_id", id.as_str());
        }
        if self
            .lease
            .as_ref()
            .is_some_and(|lease| lease.body.is_end_stream())
        {
            // a DryRun's 204: nothing to read, the connection is free now
            self.body_ended();
        }
        Ok(Response {
            info: ResponseInfo::new(meta, self.status, self.driver.attempts()),
            call: self,
            timer: None,
            timer_turn: OneTurn::default(),
            progressed: false,
            last_progress: Instant::now(),
            phase: Phase::Streaming,
            drained: 0,
            complete: false,
            failure: None,
        })
    }

    async fn until_head(&mut self) -> Result<(), Error> {
        loop {
            match self.driver.poll() {
                DriverAction::Send { attempt } => self.send(attempt).await?,
                DriverAction::Sleep(d) => {
                    tracing::debug!(delay_ms = d.as_millis(), "waiting before the next attempt");
                    tokio::time::sleep(d).await;
                }
                DriverAction::ReadErrorBody { limit } => self.read_error_body(limit).await,
                DriverAction::Head => return Ok(()),
                DriverAction::Fail(e) => return Err(self.error(e)),
                other => {
                    return Err(Error::Config(format!(
                        "unexpected driver action before the head: {other:?}"
                    )));
                }
            }
        }
    }

    async fn send(&mut self, attempt: u32) -> Result<(), Error> {
        let span = tracing::debug_span!("attempt", attempt, status = tracing::field::Empty);
        let inner = Arc::clone(&self.inner);
        // the call's own credentials, else the client's; static ones need no timer (a
        // `Sleep` costs a timer-wheel handle each time)
        let credentials = match (&self.credentials, &inner.credentials) {
            (Some(own), _) => Some(Arc::clone(own)),
            (None, Source::Static(credentials)) => Some(Arc::clone(credentials)),
            (None, Source::Unsigned) => None,
            (None, Source::Cached(_)) => {
                let got = tokio::time::timeout_at(self.deadline, inner.credentials.get()).await;
                let Ok(credentials) = got else {
                    self.fail(
                        TransportFailure::Deadline,
                        "no credentials before the deadline".into(),
                    );
                    return Ok(());
                };
                credentials.map_err(|e| Error::Credentials(Box::new(e)))?
            }
        };
        // the head timeout runs from sending (the pool sets `sent_at`)
        let sent_at = SentAt::default();
        // pinned where it is made, so the send future is stored once, not moved; the request
        // only as an argument: a local, even moved into that future, would keep a slot of its
        // own in this function's future (which every move of the invocation copies)
        let mut request_sent = std::pin::pin!(inner.pool.send(
            self.request(credentials)?,
            &sent_at,
            self.timeouts.connect
        ));
        // the shorter idle timeout bounds the head's wait too
        let mut window = HeadWindow {
            start: Instant::now(),
            length: self.timeouts.head.min(self.timeouts.idle),
            deadline: self.deadline,
            turn: OneTurn::default(),
        };
        let mut timer = None;
        let timers = &inner.pool.head_timers;
        let sent = tracing::Instrument::instrument(
            std::future::poll_fn(|cx| {
                window.poll(cx, request_sent.as_mut(), (&mut timer, timers), &sent_at)
            }),
            span.clone(),
        )
        .await;
        if let Some(timer) = timer {
            timers.put(timer);
        }
        let _entered = span.enter();
        match sent {
            Ok(Ok((parts, lease))) => {
                self.status = parts.status.as_u16();
                span.record("status", self.status);
                self.lease = Some(lease);
                self.driver
                    .handle_head(parts.status, &parts.headers, std::time::Instant::now());
            }
            Ok(Err(e)) => {
                let kind = classify(&*e, true);
                tracing::debug!(%kind, error = %e, "attempt failed");
                self.fail(kind, e);
            }
            Err((on_timeout, waited)) => {
                tracing::debug!(kind = %on_timeout, "attempt failed");
                self.fail(
                    on_timeout,
                    format!("no response head within {waited:?}").into(),
                );
            }
        }
        Ok(())
    }

    /// The request of the next attempt: signed with `credentials`, or as built when the
    /// client does not sign; with the proxy's credentials when it has any
    fn request(
        &mut self,
        credentials: Option<Arc<ProvidedCredentials>>,
    ) -> Result<http::Request<Full<Bytes>>, Error> {
        let request = match credentials {
            Some(provided) => self.driver.sign(&provided.credentials, SystemTime::now())?,
            None => self.driver.unsigned_request(),
        };
        let mut request = request.map(Full::new);
        if let Some(auth) = &self.inner.proxy_authorization {
            request
                .headers_mut()
                .insert(http::header::PROXY_AUTHORIZATION, auth.clone());
        }
        Ok(request)
    }

    async fn read_error_body(&mut self, limit: usize) {
        let Some(mut lease) = self.lease.take() else {
            self.fail(TransportFailure::Other, "no response body".into());
            return;
        };
        let mut bytes = Vec::new();
        let idle = self.timeouts.idle;
        loop {
            let by = (Instant::now() + idle).min(self.deadline);
            let frame = std::future::poll_fn(|cx| Pin::new(&mut lease.body).poll_frame(cx));
            match tokio::time::timeout_at(by, frame).await {
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        bytes.extend_from_slice(&data[..data.len().min(limit - bytes.len())]);
                        if bytes.len() >= limit {
                            break;
                        }
                    }
                }
                Ok(None) => {
                    lease.release();
                    break;
                }
                Ok(Some(Err(e))) => {
                    self.fail(classify(&e, false), Box::new(e));
                    return;
                }
                Err(_) if by == self.deadline => {
                    self.fail(
                        TransportFailure::Deadline,
                        "the deadline passed while the error body was read".into(),
                    );
                    return;
                }
                Err(_) => {
                    self.fail(
                        TransportFailure::IdleTimeout,
                        "the error body stalled".into(),
                    );
                    return;
                }
            }
        }
        tracing::debug!(status = self.status, bytes = bytes.len(), "error response");
        self.driver
            .handle_error_body(&bytes, std::time::Instant::now(), jitter());
    }

    /// Drops the body and its connection, closing it
    fn close(&mut self) {
        self.lease = None;
    }

    /// The body ended: its connection goes back to the pool
    fn body_ended(&mut self) {
        if let Some(lease) = self.lease.take() {
            lease.release();
        }
    }

    fn fail(&mut self, kind: TransportFailure, error: BoxError) {
        self.last_error = Some(error);
        self.driver
            .handle_failure(kind, std::time::Instant::now(), jitter());
    }

    fn error(&mut self, e: InvokeError) -> Error {
        self.close();
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Streaming,
    /// After `InvokeComplete`: reading the end of the body so the connection is reused
    Draining,
    Finished,
}

/// The response to an invocation: its metadata, then its events
///
/// A [`Stream`] of the events as they arrive (`Result<Event, Error>`; an error ends the
/// stream), or read the payload with [`into_async_read`](Self::into_async_read). The last
/// event of a complete stream is `InvokeComplete`; a stream that ends without it yields
/// an error. The body is read only while the stream is polled (nothing is read ahead
/// beyond hyper's buffers); dropping the response before its end closes the connection.
pub struct Response {
    info: ResponseInfo,
    call: Box<Call>,
    /// Fires at the deadline or after the idle timeout without body bytes, whichever comes
    /// first; when it fires, it is moved to `last_progress` + idle if bytes came since. Taken
    /// (from the client's kept timers, else made) when the body still has nothing ready a
    /// turn after it first had nothing: a body that is ready by then (as a short one often
    /// is) needs none. Given back when the response is dropped.
    timer: Option<Timer>,
    /// The timer is made a turn after the body first had nothing ready
    timer_turn: OneTurn,
    /// Bytes arrived since `last_progress` was taken
    progressed: bool,
    /// About when body bytes last arrived (taken when the body next had nothing ready)
    last_progress: Instant,
    phase: Phase,
    drained: usize,
    /// `InvokeComplete` was handed out: only the end of the body may follow
    complete: bool,
    /// How the events ended, if the stream handed out an error or a function error: a
    /// payload reader made afterwards fails with it instead of ending cleanly
    failure: Option<ReaderFailure>,
}

/// A caller that stops at `InvokeComplete` drops the response before the end of the body
/// was read: take that end if it is already here (no waiting), so the connection goes back
/// to the pool instead of being closed
impl Drop for Response {
    fn drop(&mut self) {
        if let Some(timer) = self.timer.take() {
            self.call.inner.pool.body_timers.put(timer);
        }
        if !self.complete || self.phase != Phase::Streaming {
            return;
        }
        let Some(lease) = self.call.lease.as_mut() else {
            return;
        };
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut drained = 0;
        loop {
            match Pin::new(&mut lease.body).poll_frame(&mut cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    drained += frame.data_ref().map_or(0, Bytes::len);
                    if drained > DRAIN_LIMIT {
                        return;
                    }
                }
                Poll::Ready(None) => {
                    self.call.body_ended();
                    return;
                }
                Poll::Ready(Some(Err(_))) | Poll::Pending => return,
            }
        }
    }
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
    /// The next event, as the `Stream` gives it (`None` once the events ended), without
    /// `futures` or `tokio-stream`: `while let Some(event) = response.next_event().await`
    ///
    /// Cancel-safe, as polling the stream is: dropping the future before it is ready loses
    /// no event.
    pub async fn next_event(&mut self) -> Option<Result<Event, Error>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// The whole payload and the `InvokeComplete`, once the events ended: for a caller that
    /// wants the result rather than the stream (the log tail with it, when asked for)
    ///
    /// Up to [`COLLECT_LIMIT`] bytes (the largest response the service streams); see
    /// [`collect_payload_up_to`](Self::collect_payload_up_to). Made after some events were
    /// taken, it gathers the payload of the rest. Dropping the future drops the response
    /// (and closes its connection).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), invoke_tokio::Error> {
    /// # let client = invoke_tokio::Client::from_env().await?;
    /// use invoke_tokio::invoke_proto::{InvokeParams, LogType};
    ///
    /// let params = InvokeParams::new("my-function", "{}").log_type(LogType::Tail);
    /// let collected = client.invoke(&params).await?.collect_payload().await?;
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
    pub async fn collect_payload(self) -> Result<Collected, Error> {
        self.collect_payload_up_to(COLLECT_LIMIT).await
    }

    /// As [`collect_payload`](Self::collect_payload), holding at most `limit` bytes: a
    /// longer payload is [`Error::PayloadTooLarge`], found before the chunk that passes the
    /// limit is held, and the response is dropped with its connection
    ///
    /// # Errors
    ///
    /// As [`collect_payload`](Self::collect_payload), and [`Error::PayloadTooLarge`].
    pub async fn collect_payload_up_to(mut self, limit: usize) -> Result<Collected, Error> {
        let mut collector = Collector::new(limit);
        loop {
            if let Some(collected) = collector.take(self.next_event().await)? {
                return Ok(collected);
            }
        }
    }

    /// The next event if it has arrived already: decoded from bytes this response has
    /// read, so that taking it does not wait (nor poll the connection); `None` when
    /// [`next_event`](Self::next_event) would have to read (or has the end or an error to
    /// report)
    ///
    /// For a caller that writes events somewhere and flushes: write the ready ones, flush
    /// once, then await `next_event`. Events that arrived together then cost one flush, and
    /// none waits in a buffer while the connection is idle.
    pub fn next_ready(&mut self) -> Option<Event> {
        if self.phase != Phase::Streaming {
            return None;
        }
        let event = self.call.driver.ready_event()?;
        Some(self.note(event))
    }

    /// Remembers an `InvokeComplete` (and a function error's, for a reader made afterwards)
    /// on its way to the caller
    fn note(&mut self, event: Event) -> Event {
        if let Event::InvokeComplete(complete) = &event {
            self.complete = true;
            self.failure = ReaderFailure::function(complete);
        }
        event
    }

    /// A `tokio::io::AsyncRead` over the payload bytes
    ///
    /// It ends (reads 0 bytes) only after a successful `InvokeComplete`; a function error,
    /// an in-stream exception, a broken or truncated stream, or a stream without
    /// `InvokeComplete` is an error, from which [`Error::from_io`] gives this crate's error
    /// (for a function error, [`Error::function_error`] has `ErrorCode` and
    /// `ErrorDetails`). After an error every read fails again.
    ///
    /// Made after the stream handed out some events, it reads the payload of the rest; made
    /// after the stream ended with an error or a function error, every read fails.
    pub fn into_async_read(mut self) -> PayloadReader {
        let cursor = self
            .failure
            .take()
            .map_or_else(PayloadCursor::new, PayloadCursor::failed);
        PayloadReader {
            response: self,
            cursor,
        }
    }

    /// The next body bytes, the end of the body, or a transport failure; arms the idle and
    /// deadline timers only when hyper has nothing ready, and checks the deadline before
    /// handing out bytes hyper had ready (a reader slower than the function never waits)
    fn poll_body(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Bytes>, (TransportFailure, BoxError)>> {
        let Some(lease) = self.call.lease.as_mut() else {
            return Poll::Ready(Ok(None));
        };
        loop {
            match Pin::new(&mut lease.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) if !data.is_empty() => {
                        self.progressed = true;
                        if Instant::now() >= self.call.deadline {
                            return Poll::Ready(Err(self.deadline_passed()));
                        }
                        return Poll::Ready(Ok(Some(data)));
                    }
                    _ => {}
                },
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Err((classify(&e, false), Box::new(e))));
                }
                Poll::Ready(None) => return Poll::Ready(Ok(None)),
                Poll::Pending => break,
            }
        }
        let idle = self.call.timeouts.idle;
        if self.progressed {
            // the bytes just taken arrived about now; the timer is moved only when it fires
            self.progressed = false;
            self.last_progress = Instant::now();
        }
        if self.timer.is_none() && self.timer_turn.yield_first(cx) {
            return Poll::Pending;
        }
        let deadline = self.call.deadline;
        let last_progress = self.last_progress;
        let timers = &self.call.inner.pool.body_timers;
        let timer = self
            .timer
            .get_or_insert_with(|| timers.take(deadline.min(last_progress + idle)));
        while timer.poll(cx).is_ready() {
            let now = Instant::now();
            if now >= deadline {
                return Poll::Ready(Err(self.deadline_passed()));
            }
            let due = self.last_progress + idle;
            if due <= now {
                return Poll::Ready(Err((
                    TransportFailure::IdleTimeout,
                    format!("no body bytes for {idle:?}").into(),
                )));
            }
            timer.reset(due.min(deadline));
        }
        Poll::Pending
    }

    /// The stream ends with `error`, which a payload reader made afterwards reports too
    fn failed(&mut self, error: Error) -> Error {
        self.phase = Phase::Finished;
        self.failure = Some(ReaderFailure::of(&error));
        error
    }

    /// The failure of a body read past the deadline
    fn deadline_passed(&self) -> (TransportFailure, BoxError) {
        let overall = self.call.timeouts.overall;
        (
            TransportFailure::Deadline,
            format!("the invocation took longer than {overall:?}").into(),
        )
    }

    /// The caller has every event: the end of the body is waited for at most [`DRAIN_WAIT`]
    fn start_draining(&mut self) {
        self.phase = Phase::Draining;
        let by = Instant::now() + DRAIN_WAIT;
        if by < self.call.deadline {
            self.call.deadline = by;
            if let Some(timer) = &mut self.timer
                && timer.deadline() > by
            {
                timer.reset(by);
            }
        }
    }

    /// Reads the rest of the body (normally only the end of the chunked encoding) so the
    /// connection goes back to the pool; gives up (closing it) past [`DRAIN_LIMIT`] bytes or
    /// the deadline [`start_draining`](Self::start_draining) set
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            match ready!(self.poll_body(cx)) {
                Ok(Some(bytes)) if self.drained + bytes.len() <= DRAIN_LIMIT => {
                    self.drained += bytes.len();
                }
                Ok(None) => {
                    self.call.body_ended();
                    return Poll::Ready(());
                }
                _ => {
                    self.call.close();
                    return Poll::Ready(());
                }
            }
        }
    }
}

impl Stream for Response {
    type Item = Result<Event, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let span = this.call.span.clone();
        let _entered = span.enter();
        loop {
            match this.phase {
                Phase::Finished => return Poll::Ready(None),
                Phase::Draining => {
                    ready!(this.poll_drain(cx));
                    this.phase = Phase::Finished;
                    return Poll::Ready(None);
                }
                Phase::Streaming => {}
            }
            match this.call.driver.poll() {
                DriverAction::Event(e) => return Poll::Ready(Some(Ok(this.note(e)))),
                DriverAction::ReadBody => match this.poll_body(cx) {
                    Poll::Ready(Ok(Some(bytes))) => this.call.driver.feed(bytes),
                    Poll::Ready(Ok(None)) => {
                        this.call.body_ended();
                        this.call.driver.end_of_body();
                    }
                    Poll::Ready(Err((kind, error))) => {
                        this.call.close();
                        tracing::debug!(%kind, error = %error, "body read failed");
                        this.call.fail(kind, error);
                    }
                    Poll::Pending => return Poll::Pending,
                },
                DriverAction::Done => {
                    tracing::debug!(
                        bytes = this.call.driver.body_bytes(),
                        events = this.call.driver.events(),
                        "stream complete"
                    );
                    this.start_draining();
                }
                DriverAction::Fail(e) => {
                    let error = this.call.error(e);
                    return Poll::Ready(Some(Err(this.failed(error))));
                }
                other => {
                    this.call.close();
                    return Poll::Ready(Some(Err(this.failed(Error::Config(format!(
                        "unexpected driver action after the head: {other:?}"
                    ))))));
                }
            }
        }
    }
}

/// How long an attempt waits for its response head: `length` from sending the request, as
/// the blocking client (connecting has its own timeout), and never past `deadline`
struct HeadWindow {
    start: Instant,
    length: Duration,
    deadline: Instant,
    /// The timer is first polled a turn after the request was written (the first poll
    /// of the send writes it)
    turn: OneTurn,
}

impl HeadWindow {
    /// The end of the window for a request sent at `sent`
    fn limit(&self, sent: Instant) -> Instant {
        sent.checked_add(self.length)
            .map_or(self.deadline, |l| l.min(self.deadline))
    }

    /// Polls `send` (a request handed to the pool, which sets `sent_at` while it is out on
    /// a connection) within the window; on timeout, which limit passed and the time waited.
    /// One timer (taken from `timers` when first needed, left in the `Option` for the
    /// caller to give back), moved when it fires before the window's end (while still
    /// connecting).
    fn poll<T>(
        &mut self,
        cx: &mut Context<'_>,
        send: Pin<&mut impl Future<Output = T>>,
        (timer, timers): (&mut Option<Timer>, &Timers),
        sent_at: &SentAt,
    ) -> Poll<Result<T, (TransportFailure, Duration)>> {
        if let Poll::Ready(sent) = send.poll(cx) {
            return Poll::Ready(Ok(sent));
        }
        if self.turn.yield_first(cx) {
            return Poll::Pending;
        }
        let timer = timer.get_or_insert_with(|| timers.take(self.limit(self.start)));
        while timer.poll(cx).is_ready() {
            let now = Instant::now();
            if now >= self.deadline {
                return Poll::Ready(Err((TransportFailure::Deadline, now - self.start)));
            }
            // still connecting: the window has not begun
            let limit = self.limit(sent_at.get().unwrap_or(now));
            if limit <= now {
                return Poll::Ready(Err((TransportFailure::HeadTimeout, self.length)));
            }
            timer.reset(limit);
        }
        Poll::Pending
    }
}

/// Puts off registering a timer by one turn of the runtime. Registering one with tokio's
/// timer wheel can wake the runtime's driver (a system call); a turn later, the runtime
/// has polled for IO meanwhile, and the timer is not made at all when what it guards is
/// ready by then.
#[derive(Default)]
struct OneTurn(bool);

impl OneTurn {
    /// True the first time only, having woken the task: the caller returns `Pending`
    /// without polling its timer and is polled again after the other tasks' turn
    fn yield_first(&mut self, cx: &mut Context<'_>) -> bool {
        if self.0 {
            return false;
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        true
    }
}

/// The payload of a response as a `tokio::io::AsyncRead`, from
/// [`Response::into_async_read`]
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

impl AsyncRead for PayloadReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if let Some(bytes) = this.cursor.next_bytes(out.remaining()) {
                out.put_slice(&bytes?);
                return Poll::Ready(Ok(()));
            }
            let next = ready!(Pin::new(&mut this.response).poll_next(cx));
            this.cursor.handle(next)?;
        }
    }
}

/// Reads without copying: `poll_fill_buf` gives the rest of the current `PayloadChunk` (so
/// `lines()` and `read_until` of `AsyncBufReadExt` work on the payload as it streams), with
/// the same ends and errors as `poll_read`
impl tokio::io::AsyncBufRead for PayloadReader {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        while this.cursor.needs_event() {
            let next = ready!(Pin::new(&mut this.response).poll_next(cx));
            this.cursor.handle(next)?;
        }
        Poll::Ready(this.cursor.fill())
    }

    fn consume(self: Pin<&mut Self>, amount: usize) {
        self.get_mut().cursor.consume(amount);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::{Instant, sleep};

    use super::{HeadWindow, OneTurn, SentAt, Timers};
    use crate::timer::Timer;
    use invoke_proto::TransportFailure;

    /// `send` polled in a 1 s head window (the deadline an hour away), `sent_at` the one
    /// the send sets; the outcome, and the head timer if one was taken
    async fn in_a_head_window<T>(
        send: impl Future<Output = T>,
        sent_at: &SentAt,
    ) -> (Result<T, (TransportFailure, Duration)>, Option<Timer>) {
        let mut window = HeadWindow {
            start: Instant::now(),
            length: Duration::from_secs(1),
            deadline: Instant::now() + Duration::from_secs(3600),
            turn: OneTurn::default(),
        };
        let (timers, mut timer) = (Timers::new(1), None);
        tokio::pin!(send);
        let outcome = std::future::poll_fn(|cx| {
            window.poll(cx, send.as_mut(), (&mut timer, &timers), sent_at)
        })
        .await;
        (outcome, timer)
    }

    /// A send that goes out on a reused connection, comes back unsent after 0.5 s, takes
    /// 2 s to connect anew, and has its head `head_after` after it went out again, polled
    /// in a 1 s head window (paused time: the runtime moves the clock)
    async fn given_back_then(head_after: Duration) -> Result<(), TransportFailure> {
        let sent_at = SentAt::default();
        let send = async {
            sent_at.set(Some(Instant::now()));
            sleep(Duration::from_millis(500)).await;
            sent_at.set(None);
            sleep(Duration::from_secs(2)).await;
            sent_at.set(Some(Instant::now()));
            sleep(head_after).await;
        };
        let (outcome, _) = in_a_head_window(send, &sent_at).await;
        outcome.map_err(|(failure, _)| failure)
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_given_back_unsent_gets_a_whole_head_window_when_it_goes_out_again() {
        assert_eq!(given_back_then(Duration::from_millis(900)).await, Ok(()));
        assert_eq!(
            given_back_then(Duration::from_millis(1100)).await,
            Err(TransportFailure::HeadTimeout)
        );
    }

    /// A head that is there by the runtime's next turn (a quick server) costs no timer: the
    /// window puts off taking one by a turn, and the head is ready when it is polled again
    #[tokio::test]
    async fn a_head_ready_by_the_next_turn_takes_no_timer() {
        let mut polls = 0;
        let send = std::future::poll_fn(|_| {
            polls += 1;
            if polls == 1 {
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        });
        let (outcome, timer) = in_a_head_window(send, &SentAt::default()).await;
        outcome.expect("the head");
        assert!(timer.is_none(), "a timer was taken");
    }

    /// The invocation's state is one allocation (`Box<Call>`), which neither the future of
    /// `invoke` nor the `Response` holds in place (they were 5.9 KB and 1.6 KB with it).
    /// The future is moved whole into `spawn`, `block_on`, `select!` or a
    /// `FuturesUnordered`, copied at each move, so what it holds across its awaits stays
    /// small too: with a connection's state boxed and requests passed only as arguments it
    /// went from 3,176 to 1,200 bytes (test build), and `invoke_with`'s is the same
    #[test]
    fn an_invocation_and_its_response_are_small_to_move() {
        use invoke_proto::{Credentials, EndpointConfig, InvokeParams, resolve_endpoint};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let endpoint = resolve_endpoint(
                &EndpointConfig::default()
                    .with_region("us-east-1")
                    .with_custom("http://127.0.0.1:9"),
            )
            .expect("endpoint");
            let client = crate::Client::builder(endpoint)
                .credentials(Credentials::new("AKID", "secret", None))
                .proxy_env(crate::ProxyEnv::none())
                .build()
                .expect("client");
            let params = InvokeParams::new("f", "{}");
            let invoke = client.invoke(&params);
            let size = std::mem::size_of_val(&invoke);
            assert!(size <= 1536, "the invoke future is {size} bytes");
            let options = crate::InvokeOptions::new().max_attempts(1);
            let size = std::mem::size_of_val(&client.invoke_with(&params, &options));
            assert!(size <= 1536, "the invoke_with future is {size} bytes");
            assert!(std::mem::size_of::<super::Response>() <= 256);
            assert!(
                std::mem::size_of::<super::Call>() > 512,
                "what boxing saves"
            );
        });
    }

    #[test]
    fn responses_and_readers_move_between_threads() {
        fn send<T: Send>() {}
        fn send_sync<T: Send + Sync>() {}
        send::<super::Response>();
        send::<super::PayloadReader>();
        send_sync::<crate::Client>();
        send_sync::<crate::Error>();
    }
}
