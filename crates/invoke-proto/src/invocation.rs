//! `InvokeDriver`: one invocation from the first attempt to the last event, with retries

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};

use crate::clock::{CLOCK_SKEW_ERRORS, ClockSkew, parse_http_date};
use crate::credentials::Credentials;
use crate::error::SignError;
use crate::eventstream::Limits;
use crate::params::InvocationType;
use crate::rate_limit::RateLimiter;
use crate::response::{ErrorHead, ResponseError, ResponseHead, ResponseMeta, parse_response_head};
use crate::retry::{
    AttemptFailure, GiveUp, RetryConfig, RetryDecision, RetryQuota, TransportFailure, decide,
};
use crate::service_error::ServiceError;
use crate::sigv4::{SigningScope, sign};
use crate::stream::{Event, InvokeStream, StreamError};

/// The most bytes of an error body worth reading
pub const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Why an invocation failed, as the driver sees it
///
/// For [`Transport`](Self::Transport) the adapter holds the underlying error (it reported
/// the failure) and should return that, with this kind.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvokeError {
    /// The request could not be signed
    Sign(SignError),
    /// The service answered with an error
    Service(Box<ServiceError>),
    /// The response head has a status this operation never answers with
    Response(ResponseError),
    /// The response stream failed (framing, in-stream exception, truncation, no
    /// `InvokeComplete`)
    Stream(StreamError),
    /// The transport failed
    Transport(TransportFailure),
}

impl fmt::Display for InvokeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sign(e) => fmt::Display::fmt(e, f),
            Self::Service(e) => fmt::Display::fmt(e, f),
            Self::Response(e) => fmt::Display::fmt(e, f),
            Self::Stream(e) => fmt::Display::fmt(e, f),
            Self::Transport(kind) => fmt::Display::fmt(kind, f),
        }
    }
}

impl std::error::Error for InvokeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Sign(e) => e.source(),
            Self::Service(e) => e.source(),
            Self::Response(e) => e.source(),
            Self::Stream(e) => e.source(),
            Self::Transport(_) => None,
        }
    }
}

impl From<SignError> for InvokeError {
    fn from(e: SignError) -> Self {
        Self::Sign(e)
    }
}

impl From<ResponseError> for InvokeError {
    fn from(e: ResponseError) -> Self {
        Self::Response(e)
    }
}

impl From<StreamError> for InvokeError {
    fn from(e: StreamError) -> Self {
        Self::Stream(e)
    }
}

/// What the transport should do next, from [`InvokeDriver::poll`]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DriverAction {
    /// Sign the request with [`InvokeDriver::sign`] and send it; this is attempt `attempt`
    /// (1-based)
    Send {
        /// The attempt number, 1 for the first
        attempt: u32,
    },
    /// Wait this long before the next attempt, then poll again
    Sleep(Duration),
    /// Read the body of the error response, at most `limit` bytes, then call
    /// [`InvokeDriver::handle_error_body`]
    ReadErrorBody {
        /// The most bytes to read
        limit: usize,
    },
    /// A successful response head arrived ([`InvokeDriver::meta`]); no retry happens any
    /// more
    Head,
    /// Read body bytes and [`feed`](InvokeDriver::feed) them, or report the end of the body
    ReadBody,
    /// An event for the caller
    Event(Event),
    /// The invocation finished: the stream ended with `InvokeComplete`, or a `DryRun`
    /// passed
    Done,
    /// The invocation failed; no more attempts
    Fail(InvokeError),
}

#[derive(Debug)]
enum State {
    /// Next: send an attempt
    Ready,
    /// An attempt was handed out; waiting for its head or failure
    Sent,
    /// Next: sleep this long, then `Ready`
    Backoff(Duration),
    /// An error head arrived; waiting for its body
    ErrorBody(ErrorHead),
    /// A success head arrived and was not yet announced; `None` for a `DryRun`
    Head(Option<Box<InvokeStream>>),
    /// Decoding the body (boxed: the decoder is most of the driver's size, and transports
    /// move the driver around in their futures before the body starts)
    Streaming(Box<InvokeStream>),
    Done,
    Failed(InvokeError),
}

/// One invocation from the first attempt to the last event, with retries, signing and
/// decoding, as a state machine that tells the transport what to do next (sans-IO)
///
/// The driver owns the policy (what to retry, how long to wait, when to stop) and the
/// decoding; the transport owns sockets, timers, the clock and credentials. Loop:
///
/// - [`poll`](InvokeDriver::poll) returns the next [`DriverAction`];
/// - [`DriverAction::Send`]: get credentials and the time, call
///   [`sign`](InvokeDriver::sign) for the freshly signed request of this attempt, send it,
///   then report the response head with [`handle_head`](InvokeDriver::handle_head) or a
///   failure with [`handle_failure`](InvokeDriver::handle_failure);
/// - [`DriverAction::Sleep`]: wait, then poll again;
/// - [`DriverAction::ReadErrorBody`]: read at most `limit` bytes of the error body, then
///   [`handle_error_body`](InvokeDriver::handle_error_body) (or `handle_failure`);
/// - [`DriverAction::Head`]: the response is here; its metadata is
///   [`meta`](InvokeDriver::meta). Hand it to the caller, then keep polling;
/// - [`DriverAction::ReadBody`]: read some body bytes and [`feed`](InvokeDriver::feed) them,
///   or report the end with [`end_of_body`](InvokeDriver::end_of_body) or a failure;
/// - [`DriverAction::Event`]: hand the event to the caller;
/// - [`DriverAction::Done`] and [`DriverAction::Fail`] are terminal and repeat.
///
/// Retries happen only before a successful response head arrived: from then on the
/// function is running, and invoking it again could repeat its side effects, so every
/// failure (a cut, a timeout, before or after the first event) is the caller's error.
///
/// ```
/// use std::sync::Arc;
/// use std::time::{Duration, Instant, SystemTime};
/// use invoke_proto::bytes::Bytes;
/// use invoke_proto::Credentials;
/// use invoke_proto::{resolve_endpoint, EndpointConfig};
/// use invoke_proto::http::{HeaderMap, StatusCode};
/// use invoke_proto::{
///     build_request, DriverAction, Event, InvokeDriver, InvokeParams, RetryConfig, RetryQuota,
///     SigningScope, TransportFailure,
/// };
///
/// let endpoint = resolve_endpoint(&EndpointConfig::default().with_custom("http://127.0.0.1:9001"))?;
/// let request = build_request(&InvokeParams::new("f", "{}"), &endpoint)?;
/// let quota = Arc::new(RetryQuota::default());
/// let mut driver =
///     InvokeDriver::new(request, SigningScope::lambda("us-east-1"), RetryConfig::default(), quota);
/// let creds = Credentials::new("AKID", "secret", None);
///
/// // Attempt 1: the connection is refused; the driver asks for a pause, then attempt 2
/// assert_eq!(driver.poll(), DriverAction::Send { attempt: 1 });
/// let _signed = driver.sign(&creds, SystemTime::now())?;
/// driver.handle_failure(TransportFailure::Connect, Instant::now(), 0.5);
/// assert_eq!(driver.poll(), DriverAction::Sleep(Duration::from_millis(500)));
/// assert_eq!(driver.poll(), DriverAction::Send { attempt: 2 });
/// let _signed = driver.sign(&creds, SystemTime::now())?;
/// driver.handle_head(StatusCode::OK, &HeaderMap::new(), Instant::now());
/// assert_eq!(driver.poll(), DriverAction::Head);
/// assert_eq!(driver.poll(), DriverAction::ReadBody);
/// driver.end_of_body(); // cut before InvokeComplete: an error, never a clean end
/// assert!(matches!(driver.poll(), DriverAction::Fail(_)));
/// assert_eq!(driver.attempts(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct InvokeDriver {
    request: Request<Bytes>,
    scope: Arc<SigningScope>,
    config: RetryConfig,
    quota: Arc<RetryQuota>,
    limiter: Option<Arc<RateLimiter>>,
    /// When the next attempt asks the limiter for its token (the time the transport's sleep
    /// ends), until it has it
    token_at: Option<Instant>,
    /// The failure a retry waits to answer, reported if its token comes too late
    retrying: Option<InvokeError>,
    limits: Limits,
    deadline: Option<Instant>,
    state: State,
    attempts: u32,
    /// What the last retry took from the quota, refunded on success
    last_retry_cost: u32,
    meta: Option<ResponseMeta>,
    body_bytes: u64,
    events: u64,
    give_up: Option<GiveUp>,
    /// The client's offset to the service's clock, if it corrects its clock
    skew: Option<Arc<ClockSkew>>,
    /// When the current attempt was signed: this host's clock, and the time it was signed
    /// with (the offset of that moment applied)
    signed_at: Option<(SystemTime, SystemTime)>,
    /// The `Date` of the current attempt's error head (with a [`ClockSkew`] only)
    service_date: Option<SystemTime>,
    /// An attempt was already signed anew after a refusal for its time
    skew_retried: bool,
}

impl InvokeDriver {
    /// A driver for `request` (built by [`build_request`](crate::build_request), unsigned)
    ///
    /// `quota` is the client's retry quota, shared by all its invocations. `scope` can be
    /// an `Arc` a client keeps, so that an invocation does not copy it.
    pub fn new(
        request: Request<Bytes>,
        scope: impl Into<Arc<SigningScope>>,
        config: RetryConfig,
        quota: Arc<RetryQuota>,
    ) -> Self {
        Self {
            request,
            scope: scope.into(),
            config,
            quota,
            limiter: None,
            token_at: None,
            retrying: None,
            limits: Limits::default(),
            deadline: None,
            state: State::Ready,
            attempts: 0,
            last_retry_cost: 0,
            meta: None,
            body_bytes: 0,
            events: 0,
            give_up: None,
            skew: None,
            signed_at: None,
            service_date: None,
            skew_retried: false,
        }
    }

    /// Signs on the service's clock as `skew` has it, and learns from an attempt the
    /// service refuses for its signing time ([`CLOCK_SKEW_ERRORS`] with a `Date` header):
    /// when the attempt was signed a minute or more from that `Date`, it is retried
    /// once, signed anew, as the AWS SDKs correct a host's clock (see
    /// [`MIN_SKEW_CORRECTION`](crate::MIN_SKEW_CORRECTION)). `skew` is the client's,
    /// shared by its invocations, so the calls after it start from the corrected clock.
    #[must_use]
    pub fn with_clock_skew(mut self, skew: Arc<ClockSkew>) -> Self {
        self.skew = Some(skew);
        self
    }

    /// No retry is scheduled whose wait would end at or after `deadline`
    #[must_use]
    pub fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Paces the attempts with the client's [`RateLimiter`] (the AWS SDKs' `adaptive` retry
    /// mode), shared by all its invocations: every attempt takes a token before it is sent,
    /// the first from `now`, a retry when its backoff ends; without one, [`poll`](Self::poll)
    /// says [`DriverAction::Sleep`] and asks again after it (the driver counts the time from
    /// `now` and the sleeps it asked for). Every attempt's outcome goes to the limiter.
    ///
    /// A retry whose token would come at or after the [deadline](Self::with_deadline) is not
    /// made: its failure is reported. A first attempt whose token would come that late
    /// waits until the deadline and goes without one (the transport's overall timeout then
    /// ends it).
    #[must_use]
    pub fn with_rate_limiter(mut self, limiter: Arc<RateLimiter>, now: Instant) -> Self {
        if matches!(self.state, State::Ready) && self.attempts == 0 {
            self.token_at = Some(now);
        }
        self.limiter = Some(limiter);
        self
    }

    /// The limiter's answer for the next attempt, when it needs a token: `None` to go on and
    /// send, else what to do first (sleep, or give up)
    fn pace(&mut self) -> Option<DriverAction> {
        let (at, limiter) = (self.token_at?, self.limiter.as_ref()?);
        let Err(wait) = limiter.try_acquire(at) else {
            self.token_at = None;
            self.retrying = None;
            return None;
        };
        let next = at.checked_add(wait);
        match self.deadline {
            Some(deadline) if next.is_none_or(|n| n >= deadline) => {
                self.token_at = None;
                match self.retrying.take() {
                    Some(error) => {
                        self.quota.refund(self.last_retry_cost);
                        self.last_retry_cost = 0;
                        Some(self.fail(error, GiveUp::Deadline))
                    }
                    None => Some(DriverAction::Sleep(deadline.saturating_duration_since(at))),
                }
            }
            _ => {
                self.token_at = Some(next.unwrap_or(at));
                Some(DriverAction::Sleep(wait))
            }
        }
    }

    /// Decodes the body with these [`Limits`] instead of the defaults
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The next thing to do
    pub fn poll(&mut self) -> DriverAction {
        match &mut self.state {
            State::Ready => {
                if let Some(action) = self.pace() {
                    return action;
                }
                self.attempts += 1;
                self.state = State::Sent;
                DriverAction::Send {
                    attempt: self.attempts,
                }
            }
            // The transport has not reported the attempt's outcome yet: ask again
            State::Sent => DriverAction::Send {
                attempt: self.attempts,
            },
            State::Backoff(d) => {
                let d = *d;
                self.state = State::Ready;
                DriverAction::Sleep(d)
            }
            State::ErrorBody(_) => DriverAction::ReadErrorBody {
                limit: ERROR_BODY_LIMIT,
            },
            State::Head(stream) => {
                self.state = match stream.take() {
                    Some(s) => State::Streaming(s),
                    None => State::Done,
                };
                DriverAction::Head
            }
            State::Streaming(stream) => match stream.next_event() {
                Ok(Some(event)) => {
                    self.events += 1;
                    DriverAction::Event(event)
                }
                Ok(None) if stream.is_complete() => {
                    self.state = State::Done;
                    DriverAction::Done
                }
                Ok(None) => DriverAction::ReadBody,
                Err(e) => self.fail(InvokeError::Stream(e), GiveUp::NotRetryable),
            },
            State::Done => DriverAction::Done,
            State::Failed(e) => DriverAction::Fail(e.clone()),
        }
    }

    /// The request of the current attempt, signed with `credentials` at `now`
    ///
    /// Call it after [`DriverAction::Send`]; every attempt is signed afresh (a new
    /// `X-Amz-Date`, the credentials of the moment).
    ///
    /// # Errors
    ///
    /// [`SignError`]; the invocation then fails with it (unless it was over already).
    pub fn sign(
        &mut self,
        credentials: &Credentials,
        now: SystemTime,
    ) -> Result<Request<Bytes>, SignError> {
        let mut request = copy_for_signing(&self.request);
        let at = match &self.skew {
            Some(skew) => {
                let at = skew.apply(now);
                self.signed_at = Some((now, at));
                at
            }
            None => now,
        };
        match sign(&mut request, credentials, &self.scope, at) {
            Ok(()) => Ok(request),
            Err(e) => {
                // called out of turn (an invocation already over), it changes nothing
                if matches!(self.state, State::Sent) {
                    self.fail(InvokeError::Sign(e.clone()), GiveUp::NotRetryable);
                }
                Err(e)
            }
        }
    }

    /// The request of the current attempt as built, without a signature: for a client that
    /// does not sign (an endpoint that checks none); call it after [`DriverAction::Send`]
    pub fn unsigned_request(&self) -> Request<Bytes> {
        copy_for_signing(&self.request)
    }

    /// Reports the response head of the current attempt, arrived at `now` (the time serves
    /// the [`RateLimiter`] if there is one)
    pub fn handle_head(&mut self, status: StatusCode, headers: &HeaderMap, now: Instant) {
        if !matches!(self.state, State::Sent) {
            return;
        }
        let head = parse_response_head(status, headers);
        if !matches!(head, Ok(ResponseHead::Error(_))) {
            // an error head is judged with its body
            self.update_limiter(now, false);
        }
        match head {
            Ok(ResponseHead::Stream(head)) => {
                // the metadata stays here, where `meta` finds it, not in the stream as well
                self.meta = Some(head.meta);
                self.quota.on_success(self.last_retry_cost);
                self.state = State::Head(Some(Box::new(InvokeStream::with_limits(self.limits))));
            }
            Ok(ResponseHead::DryRun(_)) if !self.is_dry_run() => {
                // 204 answers only a DryRun: for an invocation it would be a clean end
                // without `InvokeComplete`
                self.fail(
                    InvokeError::Response(ResponseError::UnexpectedStatus(204)),
                    GiveUp::NotRetryable,
                );
            }
            Ok(ResponseHead::DryRun(head)) => {
                self.meta = Some(head.meta);
                self.quota.on_success(self.last_retry_cost);
                self.state = State::Head(None);
            }
            Ok(ResponseHead::Error(head)) => {
                if self.skew.is_some() {
                    self.service_date = headers
                        .get(http::header::DATE)
                        .and_then(|d| parse_http_date(d.to_str().ok()?));
                }
                self.state = State::ErrorBody(head);
            }
            Err(e) => {
                self.fail(InvokeError::Response(e), GiveUp::NotRetryable);
            }
        }
    }

    /// Reports the error body (at most the limit asked for) of the current attempt; `now`
    /// and `jitter` (uniform in `[0, 1)`) serve the retry decision
    /// (ignored in any other state than waiting for an error body)
    pub fn handle_error_body(&mut self, body: &[u8], now: Instant, jitter: f64) {
        let head = match std::mem::replace(&mut self.state, State::Ready) {
            State::ErrorBody(head) => head,
            other => {
                self.state = other;
                return;
            }
        };
        let error = head.into_error(body);
        self.update_limiter(now, error.is_throttling());
        let failure = if self.clock_corrected(&error) {
            AttemptFailure::ClockSkew(&error)
        } else {
            AttemptFailure::Service(&error)
        };
        self.retry_or_fail(failure, now, jitter);
    }

    /// Whether `error` refused the current attempt for its signing time and the service's
    /// `Date` corrected the clock enough for one attempt signed anew (once an invocation)
    fn clock_corrected(&mut self, error: &ServiceError) -> bool {
        let (Some(skew), Some((local, signed)), Some(date)) =
            (&self.skew, self.signed_at, self.service_date.take())
        else {
            return false;
        };
        let corrected = !self.skew_retried
            && CLOCK_SKEW_ERRORS.contains(&error.code.as_str())
            && skew.learn(local, signed, date);
        self.skew_retried |= corrected;
        corrected
    }

    /// Reports a transport failure of the current attempt (connect, send, head, error
    /// body or stream body); `now` and `jitter` (uniform in `[0, 1)`) serve the retry
    /// decision
    pub fn handle_failure(&mut self, failure: TransportFailure, now: Instant, jitter: f64) {
        match &self.state {
            State::Sent => {
                self.update_limiter(now, false);
                self.retry_or_fail(AttemptFailure::Transport(failure), now, jitter);
            }
            State::ErrorBody(_) => {
                // The head already said what the error is: its code (and `Retry-After`)
                // decide, so an error that is never retried is not retried for want of its
                // body (judged as an empty one)
                self.handle_error_body(b"", now, jitter);
            }
            // A success head means the function started: sending again could run it twice
            // (a silent function and a short idle timeout would even overlap two runs)
            State::Streaming(_) | State::Head(_) => {
                let why = if self.events > 0 {
                    GiveUp::EventsDelivered
                } else {
                    GiveUp::NotRetryable
                };
                self.fail(InvokeError::Transport(failure), why);
            }
            State::Ready | State::Backoff(_) => {
                self.fail(InvokeError::Transport(failure), GiveUp::NotRetryable);
            }
            State::Done | State::Failed(_) => {}
        }
    }

    /// Hands over body bytes of the stream (also before [`poll`](Self::poll) announced the
    /// head; ignored when there is no stream to feed)
    pub fn feed(&mut self, chunk: Bytes) {
        if let State::Streaming(stream) | State::Head(Some(stream)) = &mut self.state {
            self.body_bytes += chunk.len() as u64;
            stream.feed(chunk);
        }
    }

    /// The next event if the bytes fed so far hold it whole; `None` otherwise, and whenever
    /// [`poll`](Self::poll) would have anything else to say (read more, the end, a failure)
    ///
    /// A transport that hands events to a writer can write those that arrived together and
    /// flush once, before it waits for the network: `ready_event` until `None`, flush, then
    /// [`poll`](Self::poll). It never changes what `poll` does next besides taking the event
    /// (a decoding error it meets stays for `poll` to report).
    pub fn ready_event(&mut self) -> Option<Event> {
        let State::Streaming(stream) = &mut self.state else {
            return None;
        };
        let event = stream.next_event().ok().flatten()?;
        self.events += 1;
        Some(event)
    }

    /// Reports the clean end of the stream's body
    ///
    /// Events fed but not yet handed out are not lost: [`poll`](Self::poll) returns them,
    /// then [`Done`](DriverAction::Done), or the error the end of the body revealed.
    pub fn end_of_body(&mut self) {
        if let State::Streaming(stream) | State::Head(Some(stream)) = &mut self.state {
            // The stream keeps the outcome (complete, or failed) behind its undrained events
            let _ = stream.finish();
        }
    }

    /// Whether the request asks for a `DryRun`
    fn is_dry_run(&self) -> bool {
        self.request
            .headers()
            .get(crate::names::X_AMZ_INVOCATION_TYPE)
            .is_some_and(|v| v.as_bytes() == InvocationType::DryRun.as_str().as_bytes())
    }

    /// Attempts started so far
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The metadata of the successful response, once its head arrived
    pub fn meta(&self) -> Option<&ResponseMeta> {
        self.meta.as_ref()
    }

    /// Takes the metadata of the successful response out of the driver (then
    /// [`meta`](Self::meta) is `None`), for a transport that keeps it itself
    pub fn take_meta(&mut self) -> Option<ResponseMeta> {
        self.meta.take()
    }

    /// Body bytes of the stream received so far
    pub fn body_bytes(&self) -> u64 {
        self.body_bytes
    }

    /// Events handed out so far
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Why the last failure was not retried, once the invocation failed
    pub fn give_up_reason(&self) -> Option<GiveUp> {
        self.give_up
    }

    fn retry_or_fail(&mut self, failure: AttemptFailure<'_>, now: Instant, jitter: f64) {
        let remaining = self.deadline.map(|d| d.saturating_duration_since(now));
        match decide(
            failure,
            self.attempts,
            &self.config,
            &self.quota,
            remaining,
            jitter,
        ) {
            RetryDecision::Retry { delay, cost } => {
                self.last_retry_cost = cost;
                self.state = State::Backoff(delay);
                if self.limiter.is_some() {
                    // the token is asked for when the backoff ends (now, if that overflows)
                    self.token_at = Some(now.checked_add(delay).unwrap_or(now));
                    self.retrying = Some(attempt_error(failure));
                }
            }
            RetryDecision::GiveUp(why) => {
                self.fail(attempt_error(failure), why);
            }
        }
    }

    /// Hands an attempt's outcome to the rate limiter, if any
    fn update_limiter(&self, now: Instant, throttled: bool) {
        if let Some(l) = &self.limiter {
            l.update(now, throttled);
        }
    }

    fn fail(&mut self, error: InvokeError, why: GiveUp) -> DriverAction {
        self.give_up = Some(why);
        self.state = State::Failed(error.clone());
        DriverAction::Fail(error)
    }
}

/// The error a failed attempt is reported as
fn attempt_error(failure: AttemptFailure<'_>) -> InvokeError {
    match failure {
        AttemptFailure::Service(e) | AttemptFailure::ClockSkew(e) => {
            InvokeError::Service(Box::new(e.clone()))
        }
        AttemptFailure::Transport(t) => InvokeError::Transport(t),
    }
}

/// A copy of `request` whose header map has room for the headers signing adds
/// (`X-Amz-Date`, `Authorization`, a session token), one a transport adds (`User-Agent`),
/// and the free slot hyper's `HeaderMap::entry` lookups need (an `entry` call grows a full
/// map even when it inserts nothing): a clone's map is full, so the first insert would
/// move it
fn copy_for_signing(request: &Request<Bytes>) -> Request<Bytes> {
    let mut copy = Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.extensions_mut() = request.extensions().clone();
    let headers = copy.headers_mut();
    headers.reserve(request.headers().len() + 5);
    for (name, value) in request.headers() {
        headers.append(name.clone(), value.clone());
    }
    copy
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use http::HeaderValue;

    use super::*;
    use crate::endpoint::{EndpointConfig, resolve_endpoint};
    use crate::eventstream::{Headers, Message};
    use crate::params::InvokeParams;
    use crate::request::build_request;
    use crate::stream::InvokeComplete;

    fn driver(config: RetryConfig, quota: &Arc<RetryQuota>) -> InvokeDriver {
        driver_for(&InvokeParams::new("f", "{}"), config, quota)
    }

    /// A driver for `params` at a loopback endpoint
    fn driver_for(
        params: &InvokeParams,
        config: RetryConfig,
        quota: &Arc<RetryQuota>,
    ) -> InvokeDriver {
        let ep =
            resolve_endpoint(&EndpointConfig::default().with_custom("http://127.0.0.1:9")).unwrap();
        let req = build_request(params, &ep).unwrap();
        InvokeDriver::new(
            req,
            SigningScope::lambda("us-east-1"),
            config,
            Arc::clone(quota),
        )
    }

    fn creds() -> Credentials {
        Credentials::new("AKID", "secret", None)
    }

    fn event(kind: &'static str, payload: &'static str) -> Bytes {
        let mut h = Headers::builder();
        h.push(":event-type", kind)
            .unwrap()
            .push(":message-type", "event")
            .unwrap();
        Message::new(h.build().unwrap(), payload)
            .to_bytes()
            .unwrap()
    }

    fn not_found_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "x-amzn-errortype",
            HeaderValue::from_static("ResourceNotFoundException"),
        );
        h
    }

    fn throttle_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "x-amzn-errortype",
            HeaderValue::from_static("TooManyRequestsException"),
        );
        h.insert("retry-after", HeaderValue::from_static("1"));
        h
    }

    /// A throttle's head that asks for no wait: the retry's backoff is the policy's
    fn throttle_headers_without_retry_after() -> HeaderMap {
        let mut h = throttle_headers();
        h.remove("retry-after");
        h
    }

    /// A limiter a throttle turned on at `start`: 0.5 tokens a second, none in the bucket
    fn throttled_limiter(start: Instant) -> Arc<RateLimiter> {
        let limiter = Arc::new(RateLimiter::new(start));
        limiter.update(start, true);
        limiter
    }

    /// A limiter that is on makes the first attempt wait for its token, asking again after
    /// each wait; attempts that start together take the tokens in turn; a limiter that is
    /// off makes no one wait
    #[test]
    fn the_rate_limiter_paces_first_attempts() {
        let quota = Arc::new(RetryQuota::default());
        let start = Instant::now();
        let secs = Duration::from_secs;
        let off = Arc::new(RateLimiter::new(start));
        let mut d = driver(RetryConfig::default(), &quota).with_rate_limiter(off, start);
        assert_eq!(d.poll(), DriverAction::Send { attempt: 1 });
        // 0.5 tokens a second: the first token after 2 s, the second after 4
        let limiter = throttled_limiter(start);
        let mut first =
            driver(RetryConfig::default(), &quota).with_rate_limiter(Arc::clone(&limiter), start);
        let mut second =
            driver(RetryConfig::default(), &quota).with_rate_limiter(Arc::clone(&limiter), start);
        assert_eq!(first.poll(), DriverAction::Sleep(secs(2)));
        assert_eq!(second.poll(), DriverAction::Sleep(secs(2)));
        assert_eq!(first.poll(), DriverAction::Send { attempt: 1 });
        assert_eq!(
            second.poll(),
            DriverAction::Sleep(secs(2)),
            "the token was taken"
        );
        assert_eq!(second.poll(), DriverAction::Send { attempt: 1 });
    }

    /// A limiter given once the attempts started takes no token for a first attempt: the
    /// retries take theirs
    #[test]
    fn a_rate_limiter_given_after_the_first_attempt_paces_only_the_retries() {
        let quota = Arc::new(RetryQuota::default());
        let start = Instant::now();
        let limiter = throttled_limiter(start);
        let mut d = driver(RetryConfig::default(), &quota);
        assert_eq!(d.poll(), DriverAction::Send { attempt: 1 });
        d.handle_failure(TransportFailure::Connect, start, 0.0);
        assert_eq!(d.poll(), DriverAction::Sleep(Duration::ZERO));
        let mut d = d.with_rate_limiter(Arc::clone(&limiter), start);
        assert_eq!(d.poll(), DriverAction::Send { attempt: 2 });
        d.handle_failure(TransportFailure::Connect, start, 0.0);
        // the backoff (none), then the wait for the first token the limiter gives: 2 s
        assert_eq!(d.poll(), DriverAction::Sleep(Duration::ZERO));
        assert_eq!(d.poll(), DriverAction::Sleep(Duration::from_secs(2)));
        assert_eq!(d.poll(), DriverAction::Send { attempt: 3 });
    }

    /// A backoff past the clock's end (a policy without a ceiling) panics nowhere: the
    /// token is asked for as if now
    #[test]
    fn an_endless_backoff_with_a_rate_limiter_panics_nowhere() {
        let quota = Arc::new(RetryQuota::default());
        let start = Instant::now();
        let config = RetryConfig::default()
            .with_initial_backoff(Duration::MAX)
            .with_max_backoff(Duration::MAX);
        let mut d = driver(config, &quota).with_rate_limiter(throttled_limiter(start), start);
        assert_eq!(d.poll(), DriverAction::Sleep(Duration::from_secs(2)));
        assert_eq!(d.poll(), DriverAction::Send { attempt: 1 });
        d.handle_failure(TransportFailure::Connect, start, 1.0);
        assert_eq!(d.poll(), DriverAction::Sleep(Duration::MAX));
        assert_eq!(d.poll(), DriverAction::Sleep(Duration::from_secs(2)));
    }

    /// A signing error fails the attempt it was asked for; asked after the invocation
    /// ended, it leaves the end as it was (found by the fuzz target `invoke_driver`)
    #[test]
    fn a_signing_error_out_of_turn_changes_nothing() {
        let quota = Arc::new(RetryQuota::default());
        let too_late = SystemTime::UNIX_EPOCH + Duration::from_secs(300_000_000_000);
        let mut d = driver(RetryConfig::default(), &quota);
        assert_eq!(d.poll(), DriverAction::Send { attempt: 1 });
        assert!(d.sign(&creds(), too_late).is_err());
        assert!(matches!(d.poll(), DriverAction::Fail(InvokeError::Sign(_))));
        let mut d = driver(RetryConfig::default(), &quota);
        assert_eq!(d.poll(), DriverAction::Send { attempt: 1 });
        d.handle_head(StatusCode::NOT_FOUND, &not_found_headers(), Instant::now());
        assert!(matches!(d.poll(), DriverAction::ReadErrorBody { .. }));
        d.handle_error_body(b"{}", Instant::now(), 0.0);
        let ended = d.poll();
        assert!(
            matches!(ended, DriverAction::Fail(InvokeError::Service(_))),
            "{ended:?}"
        );
        assert!(d.sign(&creds(), too_late).is_err());
        assert_eq!(d.poll(), ended);
    }

    /// The head and body of a refusal for the signing time, the service's clock at `date`
    /// (`None`: no `Date` header), with `code`
    fn refuse_for_time(d: &mut InvokeDriver, code: &'static str, date: Option<&str>) {
        let mut h = HeaderMap::new();
        h.insert("x-amzn-errortype", HeaderValue::from_static(code));
        if let Some(date) = date {
            h.insert("date", HeaderValue::from_str(date).unwrap());
        }
        let now = Instant::now();
        d.handle_head(StatusCode::FORBIDDEN, &h, now);
        assert!(matches!(d.poll(), DriverAction::ReadErrorBody { .. }));
        d.handle_error_body(br#"{"message":"Signature expired"}"#, now, 0.0);
    }

    /// The `X-Amz-Date` the driver signs an attempt with at `now`
    fn signed_date(d: &mut InvokeDriver, now: SystemTime) -> String {
        let r = d.sign(&creds(), now).unwrap();
        r.headers()["x-amz-date"].to_str().unwrap().to_owned()
    }

    /// A refusal for the signing time whose `Date` is ten minutes ahead moves the client's
    /// clock: one more attempt, signed on the service's clock, and the next invocation starts
    /// there; a second refusal is not retried. No `Date`, another code, a `Date` within a
    /// minute of what the offset already says, or no `ClockSkew`: no retry, as before.
    #[test]
    fn a_refusal_for_time_corrects_the_clock_and_is_retried_once() {
        let quota = Arc::new(RetryQuota::default());
        let skew = Arc::new(ClockSkew::new());
        // 2024-01-15T12:00:00Z on this host; the service says 12:10:00
        let local = SystemTime::UNIX_EPOCH + Duration::from_secs(1_705_320_000);
        let ahead = "Mon, 15 Jan 2024 12:10:00 GMT";
        let mut d = driver(RetryConfig::default(), &quota).with_clock_skew(Arc::clone(&skew));
        assert_eq!(d.poll(), DriverAction::Send { attempt: 1 });
        assert_eq!(signed_date(&mut d, local), "20240115T120000Z");
        refuse_for_time(&mut d, "InvalidSignatureException", Some(ahead));
        assert!(matches!(d.poll(), DriverAction::Sleep(_)), "a retry");
        assert_eq!(d.poll(), DriverAction::Send { attempt: 2 });
        assert_eq!(signed_date(&mut d, local), "20240115T121000Z");
        // refused again, even further off: the invocation fails with the refusal
        refuse_for_time(
            &mut d,
            "InvalidSignatureException",
            Some("Mon, 15 Jan 2024 13:00:00 GMT"),
        );
        match d.poll() {
            DriverAction::Fail(InvokeError::Service(e)) => {
                assert_eq!(e.code, "InvalidSignatureException");
            }
            other => panic!("not the refusal: {other:?}"),
        }
        // the next invocation of the client signs on the service's clock at once
        let mut next = driver(RetryConfig::default(), &quota).with_clock_skew(Arc::clone(&skew));
        assert_eq!(next.poll(), DriverAction::Send { attempt: 1 });
        assert_eq!(signed_date(&mut next, local), "20240115T121000Z");

        // two calls of a client signed before either refusal came: both are retried
        let shared = Arc::new(ClockSkew::new());
        let mut calls: Vec<InvokeDriver> = (0..2)
            .map(|_| driver(RetryConfig::default(), &quota).with_clock_skew(Arc::clone(&shared)))
            .collect();
        for d in &mut calls {
            assert_eq!(d.poll(), DriverAction::Send { attempt: 1 });
            assert_eq!(signed_date(d, local), "20240115T120000Z");
        }
        for d in &mut calls {
            refuse_for_time(d, "InvalidSignatureException", Some(ahead));
            assert!(matches!(d.poll(), DriverAction::Sleep(_)), "a retry");
            assert_eq!(d.poll(), DriverAction::Send { attempt: 2 });
            assert_eq!(signed_date(d, local), "20240115T121000Z");
        }

        for (code, date, with_skew) in [
            ("InvalidSignatureException", None, true),
            ("AccessDeniedException", Some(ahead), true),
            (
                "InvalidSignatureException",
                Some("Mon, 15 Jan 2024 12:00:59 GMT"),
                true,
            ),
            ("InvalidSignatureException", Some(ahead), false),
        ] {
            let fresh = driver(RetryConfig::default(), &quota);
            let mut d = if with_skew {
                fresh.with_clock_skew(Arc::new(ClockSkew::new()))
            } else {
                fresh
            };
            assert_eq!(d.poll(), DriverAction::Send { attempt: 1 });
            signed_date(&mut d, local);
            refuse_for_time(&mut d, code, date);
            assert!(
                matches!(d.poll(), DriverAction::Fail(InvokeError::Service(_))),
                "{code} {date:?} {with_skew}"
            );
        }
    }

    /// A throttle turns the limiter on; the retry then waits for its token after the
    /// backoff (`Retry-After`: 1 s, which earned half a token; a second more for the rest)
    #[test]
    fn a_throttle_turns_the_rate_limiter_on_and_its_retry_waits_for_a_token() {
        let quota = Arc::new(RetryQuota::default());
        let start = Instant::now();
        let limiter = Arc::new(RateLimiter::new(start));
        let mut d =
            driver(RetryConfig::default(), &quota).with_rate_limiter(Arc::clone(&limiter), start);
        assert_eq!(d.poll(), DriverAction::Send { attempt: 1 });
        d.handle_head(StatusCode::TOO_MANY_REQUESTS, &throttle_headers(), start);
        assert!(!limiter.is_enabled(), "judged with its body");
        assert!(matches!(d.poll(), DriverAction::ReadErrorBody { .. }));
        d.handle_error_body(br#"{"message":"Rate exceeded"}"#, start, 0.0);
        assert!(limiter.is_enabled());
        assert_eq!(d.poll(), DriverAction::Sleep(Duration::from_secs(1)));
        assert_eq!(d.poll(), DriverAction::Sleep(Duration::from_secs(1)));
        assert_eq!(d.poll(), DriverAction::Send { attempt: 2 });
    }

    /// A throttle after answers at 20 a second cuts the send rate to about 14; the
    /// success of the retry lets it grow back
    #[test]
    fn a_success_lets_the_send_rate_grow_back() {
        let quota = Arc::new(RetryQuota::default());
        let start = Instant::now();
        let limiter = Arc::new(crate::rate_limit::tests::answering_20_a_second(start));
        let at = |ms| start + Duration::from_millis(ms);
        let mut d = driver(RetryConfig::default(), &quota)
            .with_rate_limiter(Arc::clone(&limiter), at(2000));
        assert_eq!(d.poll(), DriverAction::Send { attempt: 1 });
        let throttle = throttle_headers_without_retry_after();
        d.handle_head(StatusCode::TOO_MANY_REQUESTS, &throttle, at(2000));
        assert!(matches!(d.poll(), DriverAction::ReadErrorBody { .. }));
        d.handle_error_body(b"{}", at(2000), 0.0);
        let cut = limiter.send_rate();
        assert!((13.0..15.0).contains(&cut), "{cut}");
        // the bucket held a token (earned while the limiter was off): no wait
        assert_eq!(d.poll(), DriverAction::Sleep(Duration::ZERO));
        assert_eq!(d.poll(), DriverAction::Send { attempt: 2 });
        d.handle_head(StatusCode::OK, &HeaderMap::new(), at(2200));
        assert_eq!(d.poll(), DriverAction::Head);
        assert!(limiter.send_rate() > cut, "{cut}");
    }

    /// Errors that are not throttles, and transport failures, leave the limiter off
    #[test]
    fn other_failures_leave_the_rate_limiter_off() {
        let quota = Arc::new(RetryQuota::default());
        let start = Instant::now();
        let limiter = Arc::new(RateLimiter::new(start));
        let mut d = driver(RetryConfig::default().with_max_attempts(5), &quota)
            .with_rate_limiter(Arc::clone(&limiter), start);
        assert_eq!(d.poll(), DriverAction::Send { attempt: 1 });
        d.handle_failure(TransportFailure::Connect, start, 0.0);
        assert_eq!(d.poll(), DriverAction::Sleep(Duration::ZERO));
        assert_eq!(d.poll(), DriverAction::Send { attempt: 2 });
        d.handle_head(StatusCode::SERVICE_UNAVAILABLE, &HeaderMap::new(), start);
        assert!(matches!(d.poll(), DriverAction::ReadErrorBody { .. }));
        d.handle_error_body(b"", start, 0.0);
        assert_eq!(d.poll(), DriverAction::Sleep(Duration::ZERO));
        assert!(!limiter.is_enabled());
    }

    /// A retry whose token would come at or after the deadline is not made: the failure is
    /// reported, for the deadline, and the quota keeps what the retry would have taken; a
    /// first attempt whose token would come that late waits for the deadline and goes
    /// without one
    #[test]
    fn a_token_past_the_deadline_ends_the_retries() {
        let quota = Arc::new(RetryQuota::default());
        let start = Instant::now();
        let at = |s| start + Duration::from_secs(s);
        let limiter = throttled_limiter(start);
        let with = |deadline, now| {
            driver(RetryConfig::default(), &quota)
                .with_deadline(deadline)
                .with_rate_limiter(Arc::clone(&limiter), now)
        };
        let throttle = throttle_headers_without_retry_after();
        let full = quota.available();
        // a token after 2 s, within the 3 s
        let mut d = with(at(3), start);
        assert_eq!(d.poll(), DriverAction::Sleep(Duration::from_secs(2)));
        assert_eq!(d.poll(), DriverAction::Send { attempt: 1 });
        // throttled at 2 s: retried at once (no backoff), but the next token is 2 s away,
        // of the 1 s left
        d.handle_head(StatusCode::TOO_MANY_REQUESTS, &throttle, at(2));
        d.handle_error_body(b"{}", at(2), 0.0);
        assert_eq!(d.poll(), DriverAction::Sleep(Duration::ZERO));
        assert!(matches!(
            d.poll(),
            DriverAction::Fail(InvokeError::Service(_))
        ));
        assert_eq!(d.give_up_reason(), Some(GiveUp::Deadline));
        assert_eq!(quota.available(), full, "refunded");
        // one made at 2 s whose deadline is 1 s away waits for that, then goes
        let mut d = with(at(3), at(2));
        assert_eq!(d.poll(), DriverAction::Sleep(Duration::from_secs(1)));
        assert_eq!(d.poll(), DriverAction::Send { attempt: 1 });
        // it took no token: the next one, with time enough, waits 2 s for it, and so does
        // its retry
        let mut d = with(at(60), at(2));
        assert_eq!(d.poll(), DriverAction::Sleep(Duration::from_secs(2)));
        assert_eq!(d.poll(), DriverAction::Send { attempt: 1 });
        d.handle_head(StatusCode::TOO_MANY_REQUESTS, &throttle, at(4));
        d.handle_error_body(b"{}", at(4), 0.0);
        assert_eq!(d.poll(), DriverAction::Sleep(Duration::ZERO));
        assert_eq!(d.poll(), DriverAction::Sleep(Duration::from_secs(2)));
        assert_eq!(d.poll(), DriverAction::Send { attempt: 2 });
        assert!(quota.available() < full, "the retry's cost taken");
    }

    /// A driver whose first attempt got a 200 head, announced
    fn streaming(quota: &Arc<RetryQuota>) -> InvokeDriver {
        let mut d = driver(RetryConfig::default(), quota);
        send(&mut d, 1, 0);
        d.handle_head(StatusCode::OK, &HeaderMap::new(), Instant::now());
        assert_eq!(d.poll(), DriverAction::Head);
        d
    }

    /// Runs the send step: sign at a fixed time, check the signature is fresh
    fn send(d: &mut InvokeDriver, attempt: u32, at: u64) -> Request<Bytes> {
        assert_eq!(d.poll(), DriverAction::Send { attempt });
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_705_320_000 + at);
        d.sign(&creds(), now).unwrap()
    }

    /// A signed request keeps room for a transport's header and a lookup: hyper's
    /// `HeaderMap::entry` grows a full map (reallocating and rehashing it) even when it
    /// inserts nothing, a few microseconds on every call
    #[test]
    fn a_signed_request_has_room_for_the_transport() {
        use crate::params::LogType;
        let every = InvokeParams::new("f", "{}")
            .qualifier("1")
            .log_type(LogType::Tail)
            .invocation_type(InvocationType::RequestResponse)
            .client_context(r#"{"custom":{}}"#)
            .tenant_id("t");
        for params in [InvokeParams::new("f", "{}"), every] {
            for token in [None, Some("t0ken".to_owned())] {
                let quota = Arc::new(RetryQuota::default());
                let mut d = driver_for(&params, RetryConfig::default(), &quota);
                assert_eq!(d.poll(), DriverAction::Send { attempt: 1 });
                let credentials = Credentials::new("AKID", "secret", token);
                let mut signed = d.sign(&credentials, SystemTime::UNIX_EPOCH).unwrap();
                signed.headers_mut().insert(
                    http::header::USER_AGENT,
                    HeaderValue::from_static("transport/1"),
                );
                let h = signed.headers();
                assert!(h.len() < h.capacity(), "{} of {}", h.len(), h.capacity());
            }
        }
    }

    /// The metadata of the 200 head, then taken out once; the stream still decodes
    #[test]
    fn take_meta_hands_the_head_metadata_over_once() {
        let quota = Arc::new(RetryQuota::default());
        let scope = Arc::new(SigningScope::lambda("us-east-1"));
        let ep =
            resolve_endpoint(&EndpointConfig::default().with_custom("http://127.0.0.1:9")).unwrap();
        let req = build_request(&InvokeParams::new("f", "{}"), &ep).unwrap();
        let mut d = InvokeDriver::new(req, Arc::clone(&scope), RetryConfig::default(), quota);
        assert_eq!(Arc::strong_count(&scope), 2, "the driver shares the scope");
        send(&mut d, 1, 0);
        let mut h = HeaderMap::new();
        h.insert("x-amzn-requestid", HeaderValue::from_static("req-1"));
        d.handle_head(StatusCode::OK, &h, Instant::now());
        assert_eq!(d.poll(), DriverAction::Head);
        assert_eq!(
            d.meta().and_then(|m| m.request_id.as_deref()),
            Some("req-1")
        );
        let meta = d.take_meta().expect("metadata of the head");
        assert_eq!(meta.request_id.as_deref(), Some("req-1"));
        assert!(d.meta().is_none() && d.take_meta().is_none());
        d.feed(event("InvokeComplete", "{}"));
        assert!(matches!(
            d.poll(),
            DriverAction::Event(Event::InvokeComplete(c)) if c == InvokeComplete::default()
        ));
        assert_eq!(d.poll(), DriverAction::Done);
    }

    #[test]
    fn drivers_move_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<InvokeDriver>();
        send_sync::<DriverAction>();
        send_sync::<InvokeError>();
    }

    #[test]
    fn throttled_twice_then_streams() {
        let quota = Arc::new(RetryQuota::default());
        let mut d = driver(RetryConfig::default(), &quota);
        let t0 = Instant::now();
        let mut dates = vec![];
        for attempt in 1..=2 {
            let req = send(&mut d, attempt, u64::from(attempt));
            dates.push(req.headers()["x-amz-date"].clone());
            d.handle_head(
                StatusCode::TOO_MANY_REQUESTS,
                &throttle_headers(),
                Instant::now(),
            );
            assert_eq!(
                d.poll(),
                DriverAction::ReadErrorBody {
                    limit: ERROR_BODY_LIMIT
                }
            );
            d.handle_error_body(br#"{"message":"Rate exceeded"}"#, t0, 0.9);
            assert_eq!(d.poll(), DriverAction::Sleep(Duration::from_secs(1)));
        }
        assert_eq!(quota.available(), 490);
        let req = send(&mut d, 3, 3);
        dates.push(req.headers()["x-amz-date"].clone());
        assert_eq!(dates[0], "20240115T120001Z");
        assert_eq!(dates[2], "20240115T120003Z", "re-signed on every attempt");
        let mut h = HeaderMap::new();
        h.insert("x-amz-executed-version", HeaderValue::from_static("7"));
        d.handle_head(StatusCode::OK, &h, Instant::now());
        assert_eq!(quota.available(), 495, "a success refunds its last retry");
        assert_eq!(d.poll(), DriverAction::Head);
        assert_eq!(d.meta().unwrap().executed_version.as_deref(), Some("7"));
        assert_eq!(d.poll(), DriverAction::ReadBody);
        let mut body = BytesMut::new();
        body.extend_from_slice(&event("PayloadChunk", "hi"));
        body.extend_from_slice(&event("InvokeComplete", "{}"));
        let body = body.freeze();
        d.feed(body.slice(..5));
        assert_eq!(d.poll(), DriverAction::ReadBody);
        d.feed(body.slice(5..));
        assert_eq!(
            d.poll(),
            DriverAction::Event(Event::PayloadChunk(Bytes::from_static(b"hi")))
        );
        assert!(matches!(
            d.poll(),
            DriverAction::Event(Event::InvokeComplete(_))
        ));
        assert_eq!(d.poll(), DriverAction::Done);
        assert_eq!(d.poll(), DriverAction::Done);
        assert_eq!(d.attempts(), 3);
        assert_eq!(d.events(), 2);
    }

    #[test]
    fn attempts_run_out() {
        let quota = Arc::new(RetryQuota::default());
        let mut d = driver(RetryConfig::default(), &quota);
        let now = Instant::now();
        for attempt in 1..=3 {
            send(&mut d, attempt, 0);
            d.handle_failure(TransportFailure::Connect, now, 0.0);
            if attempt < 3 {
                assert_eq!(d.poll(), DriverAction::Sleep(Duration::ZERO));
            }
        }
        assert_eq!(
            d.poll(),
            DriverAction::Fail(InvokeError::Transport(TransportFailure::Connect))
        );
        assert_eq!(d.give_up_reason(), Some(GiveUp::AttemptsExhausted));
        assert_eq!(d.attempts(), 3);
        // Nothing moves a failed driver
        d.handle_head(StatusCode::OK, &HeaderMap::new(), Instant::now());
        assert!(matches!(d.poll(), DriverAction::Fail(_)));
        assert_eq!(quota.available(), 490, "two retries paid, no success");
    }

    #[test]
    fn service_errors_that_do_not_retry() {
        let quota = Arc::new(RetryQuota::default());
        let mut d = driver(RetryConfig::default(), &quota);
        send(&mut d, 1, 0);
        d.handle_head(StatusCode::NOT_FOUND, &not_found_headers(), Instant::now());
        // 64 KiB, as documented: a service error's JSON whole, a proxy's page cut short
        assert_eq!(d.poll(), DriverAction::ReadErrorBody { limit: 64 * 1024 });
        d.handle_error_body(br#"{"Message":"Function not found"}"#, Instant::now(), 0.0);
        let DriverAction::Fail(InvokeError::Service(e)) = d.poll() else {
            panic!("not a service error")
        };
        assert_eq!(e.code, "ResourceNotFoundException");
        assert_eq!(e.message.as_deref(), Some("Function not found"));
        assert_eq!(d.give_up_reason(), Some(GiveUp::NotRetryable));
        assert_eq!(d.attempts(), 1);
        // A failure while reading the error body retries
        let mut d = driver(RetryConfig::default(), &quota);
        send(&mut d, 1, 0);
        d.handle_head(
            StatusCode::SERVICE_UNAVAILABLE,
            &HeaderMap::new(),
            Instant::now(),
        );
        d.handle_failure(TransportFailure::BodyRead, Instant::now(), 0.0);
        assert_eq!(d.poll(), DriverAction::Sleep(Duration::ZERO));
        assert_eq!(d.poll(), DriverAction::Send { attempt: 2 });
    }

    #[test]
    fn no_retry_once_an_event_was_delivered() {
        let quota = Arc::new(RetryQuota::default());
        let mut d = streaming(&quota);
        d.feed(event("PayloadChunk", "x"));
        assert!(matches!(d.poll(), DriverAction::Event(_)));
        assert_eq!(d.poll(), DriverAction::ReadBody);
        d.handle_failure(TransportFailure::BodyRead, Instant::now(), 0.0);
        assert_eq!(
            d.poll(),
            DriverAction::Fail(InvokeError::Transport(TransportFailure::BodyRead))
        );
        assert_eq!(d.give_up_reason(), Some(GiveUp::EventsDelivered));
        assert_eq!(d.attempts(), 1);
        assert_eq!(d.body_bytes(), event("PayloadChunk", "x").len() as u64);
        // ... nor once body bytes arrived, even before a whole event (no event reached the
        // caller: not worth retrying, rather than too late to)
        let mut d = streaming(&quota);
        d.feed(event("PayloadChunk", "x").slice(..3));
        d.feed(event("PayloadChunk", "x").slice(3..5));
        assert_eq!(d.body_bytes(), 5);
        assert_eq!(d.poll(), DriverAction::ReadBody);
        d.handle_failure(TransportFailure::IdleTimeout, Instant::now(), 0.0);
        assert!(matches!(d.poll(), DriverAction::Fail(_)));
        assert_eq!(d.give_up_reason(), Some(GiveUp::NotRetryable));
        // ... nor after a success head without any byte: the function is running
        let mut d = streaming(&quota);
        assert_eq!(d.poll(), DriverAction::ReadBody);
        d.handle_failure(TransportFailure::IdleTimeout, Instant::now(), 0.0);
        assert_eq!(
            d.poll(),
            DriverAction::Fail(InvokeError::Transport(TransportFailure::IdleTimeout))
        );
        assert_eq!(d.give_up_reason(), Some(GiveUp::NotRetryable));
        assert_eq!((d.attempts(), d.body_bytes()), (1, 0));
        // ... nor when a transport reports an error body out of turn: the stream goes on
        let mut d = streaming(&quota);
        d.feed(event("PayloadChunk", "x"));
        assert!(matches!(d.poll(), DriverAction::Event(_)));
        d.handle_error_body(b"{}", Instant::now(), 0.0);
        assert_eq!(d.poll(), DriverAction::ReadBody);
        d.feed(event("InvokeComplete", "{}"));
        assert!(matches!(
            d.poll(),
            DriverAction::Event(Event::InvokeComplete(_))
        ));
        assert_eq!(d.poll(), DriverAction::Done);
        d.handle_error_body(b"{}", Instant::now(), 0.0);
        assert_eq!(d.poll(), DriverAction::Done);
        assert_eq!(d.attempts(), 1);
    }

    #[test]
    fn ready_events_are_the_ones_fed_whole() {
        let quota = Arc::new(RetryQuota::default());
        let mut d = driver(RetryConfig::default(), &quota);
        assert_eq!(d.ready_event(), None, "no stream yet");
        assert_eq!(d.poll(), DriverAction::Send { attempt: 1 });
        let mut d = streaming(&quota);
        let b = event("PayloadChunk", "b");
        d.feed(event("PayloadChunk", "a"));
        d.feed(b.slice(..5));
        assert_eq!(
            d.ready_event(),
            Some(Event::PayloadChunk(Bytes::from_static(b"a")))
        );
        assert_eq!(d.ready_event(), None, "b is not whole");
        assert_eq!(d.poll(), DriverAction::ReadBody);
        d.feed(b.slice(5..));
        d.feed(event("InvokeComplete", "{}"));
        assert_eq!(
            d.ready_event(),
            Some(Event::PayloadChunk(Bytes::from_static(b"b")))
        );
        assert!(matches!(d.ready_event(), Some(Event::InvokeComplete(_))));
        assert_eq!(d.ready_event(), None, "the end is poll's to say");
        assert_eq!(d.poll(), DriverAction::Done);
        assert_eq!(d.events(), 3);
        // a broken message: no event, and the failure stays for poll
        let mut d = streaming(&quota);
        let mut bad = event("PayloadChunk", "x").to_vec();
        *bad.last_mut().unwrap() ^= 1;
        d.feed(Bytes::from(bad));
        assert_eq!(d.ready_event(), None);
        assert!(matches!(
            d.poll(),
            DriverAction::Fail(InvokeError::Stream(StreamError::Decode(_)))
        ));
    }

    #[test]
    fn stream_errors_and_dry_run() {
        let quota = Arc::new(RetryQuota::default());
        let mut d = streaming(&quota);
        let mut bad = event("PayloadChunk", "x").to_vec();
        *bad.last_mut().unwrap() ^= 1;
        d.feed(Bytes::from(bad));
        assert!(matches!(
            d.poll(),
            DriverAction::Fail(InvokeError::Stream(StreamError::Decode(_)))
        ));

        let dry = InvokeParams::new("f", "{}").invocation_type(InvocationType::DryRun);
        let mut d = driver_for(&dry, RetryConfig::default(), &quota);
        send(&mut d, 1, 0);
        d.handle_head(StatusCode::NO_CONTENT, &HeaderMap::new(), Instant::now());
        assert_eq!(d.poll(), DriverAction::Head);
        assert_eq!(d.poll(), DriverAction::Done);

        // 204 to an invocation that is not a DryRun: never a clean end without events
        let mut d = driver(RetryConfig::default(), &quota);
        send(&mut d, 1, 0);
        d.handle_head(StatusCode::NO_CONTENT, &HeaderMap::new(), Instant::now());
        assert_eq!(
            d.poll(),
            DriverAction::Fail(InvokeError::Response(ResponseError::UnexpectedStatus(204)))
        );

        let mut d = driver(RetryConfig::default(), &quota);
        send(&mut d, 1, 0);
        d.handle_head(StatusCode::FOUND, &HeaderMap::new(), Instant::now());
        assert_eq!(
            d.poll(),
            DriverAction::Fail(InvokeError::Response(ResponseError::UnexpectedStatus(302)))
        );
    }

    #[test]
    fn an_error_body_that_cannot_be_read_is_judged_by_its_head() {
        let quota = Arc::new(RetryQuota::default());
        // a 404 is never retried, body or not
        let mut d = driver(RetryConfig::default(), &quota);
        send(&mut d, 1, 0);
        d.handle_head(StatusCode::NOT_FOUND, &not_found_headers(), Instant::now());
        assert!(matches!(d.poll(), DriverAction::ReadErrorBody { .. }));
        d.handle_failure(TransportFailure::BodyRead, Instant::now(), 0.0);
        match d.poll() {
            DriverAction::Fail(InvokeError::Service(e)) => {
                assert_eq!(e.code, "ResourceNotFoundException");
            }
            other => panic!("not the service error: {other:?}"),
        }
        assert_eq!(d.attempts(), 1);
        assert_eq!(quota.available(), RetryQuota::default().available());
        // a throttle is retried after its Retry-After
        let mut d = driver(RetryConfig::default(), &quota);
        send(&mut d, 1, 0);
        d.handle_head(
            StatusCode::TOO_MANY_REQUESTS,
            &throttle_headers(),
            Instant::now(),
        );
        assert!(matches!(d.poll(), DriverAction::ReadErrorBody { .. }));
        d.handle_failure(TransportFailure::IdleTimeout, Instant::now(), 0.0);
        assert_eq!(d.poll(), DriverAction::Sleep(Duration::from_secs(1)));
    }

    #[test]
    fn events_fed_before_the_end_of_the_body_are_not_lost() {
        let quota = Arc::new(RetryQuota::default());
        let payload = |e: DriverAction| match e {
            DriverAction::Event(Event::PayloadChunk(p)) => p,
            other => panic!("not a chunk: {other:?}"),
        };
        // the end reported before the events were polled
        let mut d = streaming(&quota);
        d.feed(event("PayloadChunk", "a"));
        d.feed(event("InvokeComplete", "{}"));
        d.end_of_body();
        assert_eq!(payload(d.poll()), "a");
        assert!(matches!(
            d.poll(),
            DriverAction::Event(Event::InvokeComplete(_))
        ));
        assert_eq!(d.poll(), DriverAction::Done);
        // bytes fed before the head was announced
        let mut d = driver(RetryConfig::default(), &quota);
        send(&mut d, 1, 0);
        d.handle_head(StatusCode::OK, &HeaderMap::new(), Instant::now());
        d.feed(event("PayloadChunk", "b"));
        assert_eq!(d.poll(), DriverAction::Head);
        assert_eq!(payload(d.poll()), "b");
        // a body cut short: the event that arrived, then the error
        let mut d = streaming(&quota);
        d.feed(event("PayloadChunk", "c"));
        d.end_of_body();
        assert_eq!(payload(d.poll()), "c");
        assert!(matches!(
            d.poll(),
            DriverAction::Fail(InvokeError::Stream(
                StreamError::MissingInvokeComplete { .. }
            ))
        ));
    }

    #[test]
    fn deadline_and_quota_stop_retries() {
        let quota = Arc::new(RetryQuota::new(4));
        let mut d = driver(RetryConfig::default(), &quota);
        send(&mut d, 1, 0);
        d.handle_failure(TransportFailure::Connect, Instant::now(), 0.0);
        assert!(matches!(d.poll(), DriverAction::Fail(_)));
        assert_eq!(d.give_up_reason(), Some(GiveUp::QuotaExhausted));

        let quota = Arc::new(RetryQuota::default());
        let now = Instant::now();
        let mut d =
            driver(RetryConfig::default(), &quota).with_deadline(now + Duration::from_millis(10));
        send(&mut d, 1, 0);
        d.handle_head(
            StatusCode::TOO_MANY_REQUESTS,
            &throttle_headers(),
            Instant::now(),
        );
        d.handle_error_body(b"{}", now, 0.0);
        assert!(matches!(
            d.poll(),
            DriverAction::Fail(InvokeError::Service(_))
        ));
        assert_eq!(d.give_up_reason(), Some(GiveUp::Deadline));
    }

    /// Each attempt signs a copy of the request with everything of it: method, URI, version,
    /// every value of every header in order, extensions and body
    #[test]
    fn attempts_sign_a_full_copy_of_the_request() {
        #[derive(Clone, Debug, PartialEq)]
        struct Tag(u32);
        let mut req = http::Request::put("http://127.0.0.1:9/a/b?q=1")
            .version(http::Version::HTTP_10)
            .header("x-multi", "one")
            .header("x-multi", "two")
            .header("content-type", "application/octet-stream")
            .body(Bytes::from_static(b"payload"))
            .unwrap();
        req.extensions_mut().insert(Tag(7));
        let quota = Arc::new(RetryQuota::default());
        let mut d = InvokeDriver::new(
            req.clone(),
            SigningScope::lambda("us-east-1"),
            RetryConfig::default(),
            quota,
        );
        assert_eq!(d.poll(), DriverAction::Send { attempt: 1 });
        let signed = d.sign(&creds(), SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(signed.method(), req.method());
        assert_eq!(signed.uri(), req.uri());
        assert_eq!(signed.version(), req.version());
        assert_eq!(signed.body(), req.body());
        assert_eq!(signed.extensions().get::<Tag>(), Some(&Tag(7)));
        let multi: Vec<_> = signed.headers().get_all("x-multi").iter().collect();
        assert_eq!(multi, ["one", "two"]);
        assert_eq!(signed.headers()["content-type"], "application/octet-stream");
        assert!(signed.headers().contains_key("authorization"));
        assert!(signed.headers().contains_key("x-amz-date"));
        assert_eq!(signed.headers().len(), req.headers().len() + 2);
    }

    #[test]
    fn an_unsigned_request_is_the_request_as_built() {
        let quota = Arc::new(RetryQuota::default());
        let mut d = driver(RetryConfig::default(), &quota);
        assert_eq!(d.poll(), DriverAction::Send { attempt: 1 });
        let unsigned = d.unsigned_request();
        assert_eq!(unsigned.method(), d.request.method());
        assert_eq!(unsigned.uri(), d.request.uri());
        assert_eq!(unsigned.headers(), d.request.headers());
        assert_eq!(unsigned.body(), d.request.body());
        assert!(!unsigned.headers().contains_key(http::header::AUTHORIZATION));
    }

    #[test]
    fn sign_errors_fail_the_invocation() {
        let quota = Arc::new(RetryQuota::default());
        let mut d = driver(RetryConfig::default(), &quota);
        assert_eq!(d.poll(), DriverAction::Send { attempt: 1 });
        let bad = Credentials::new("", "secret", None);
        assert!(d.sign(&bad, SystemTime::UNIX_EPOCH).is_err());
        assert!(matches!(d.poll(), DriverAction::Fail(InvokeError::Sign(_))));
    }

    /// What the simulated service does with one attempt
    #[derive(Debug, Clone)]
    enum Attempt {
        /// The transport fails before a head
        Fails(TransportFailure),
        /// An error head with this status and code, then its body (or a cut)
        Error(u16, &'static str, bool),
        /// A 200 head, then this many chunks, then the end: `InvokeComplete`, a clean end
        /// without it, or a failure
        Stream(usize, Option<TransportFailure>, bool),
    }

    fn attempt() -> impl proptest::strategy::Strategy<Value = Attempt> {
        use proptest::prelude::*;
        let failure = prop_oneof![
            Just(TransportFailure::Connect),
            Just(TransportFailure::Send),
            Just(TransportFailure::HeadTimeout),
            Just(TransportFailure::BodyRead),
            Just(TransportFailure::IdleTimeout),
            Just(TransportFailure::Tls),
        ];
        let code = prop_oneof![
            Just((429, "TooManyRequestsException")),
            Just((500, "ServiceException")),
            Just((502, "EC2UnexpectedException")),
            Just((404, "ResourceNotFoundException")),
            Just((503, "")),
        ];
        prop_oneof![
            failure.clone().prop_map(Attempt::Fails),
            (code, any::<bool>()).prop_map(|((s, c), cut)| Attempt::Error(s, c, cut)),
            (0usize..4, proptest::option::of(failure), any::<bool>())
                .prop_map(|(n, f, complete)| Attempt::Stream(n, f, complete)),
        ]
    }

    proptest::proptest! {
        /// Whatever the service and the network do, the driver ends, within the attempts,
        /// waits at most the maximum backoff, never sends again once a success head
        /// arrived, and keeps the quota within its capacity
        #[test]
        fn driver_invariants(
            script in proptest::collection::vec(attempt(), 1..8),
            max_attempts in 1u32..5,
            capacity in 0u32..40,
            jitter in 0.0f64..1.0,
        ) {
            let quota = Arc::new(RetryQuota::new(capacity));
            let config = RetryConfig::new()
                .with_max_attempts(max_attempts)
                .with_max_backoff(Duration::from_secs(3));
            let mut d = driver(config, &quota);
            let now = Instant::now();
            let mut events = 0u32;
            let mut streamed = false;
            let mut current: Option<Attempt> = None;
            let mut body: Vec<Bytes> = vec![];
            let mut terminal = None;
            for _ in 0..200 {
                match d.poll() {
                    DriverAction::Send { attempt } => {
                        proptest::prop_assert_eq!(events, 0, "a send after an event");
                        proptest::prop_assert!(!streamed, "a send after a success head");
                        proptest::prop_assert!(attempt <= max_attempts);
                        d.sign(&creds(), SystemTime::UNIX_EPOCH + Duration::from_secs(1_705_320_000)).unwrap();
                        let a = script[(attempt as usize - 1) % script.len()].clone();
                        match &a {
                            Attempt::Fails(f) => d.handle_failure(*f, now, jitter),
                            Attempt::Error(status, code, _) => {
                                let mut h = HeaderMap::new();
                                if !code.is_empty() {
                                    h.insert("x-amzn-errortype", HeaderValue::from_static(code));
                                }
                                d.handle_head(StatusCode::from_u16(*status).unwrap(), &h, Instant::now());
                            }
                            Attempt::Stream(n, _, complete) => {
                                d.handle_head(StatusCode::OK, &HeaderMap::new(), Instant::now());
                                body = (0..*n).map(|_| event("PayloadChunk", "x")).collect();
                                if *complete {
                                    body.push(event("InvokeComplete", "{}"));
                                }
                                body.reverse();
                            }
                        }
                        current = Some(a);
                    }
                    DriverAction::Sleep(delay) => {
                        proptest::prop_assert!(delay <= Duration::from_secs(3));
                    }
                    DriverAction::ReadErrorBody { .. } => match current {
                        Some(Attempt::Error(_, _, true)) => {
                            d.handle_failure(TransportFailure::BodyRead, now, jitter);
                        }
                        _ => d.handle_error_body(b"{}", now, jitter),
                    },
                    DriverAction::Head => streamed = true,
                    DriverAction::ReadBody => match body.pop() {
                        Some(b) => d.feed(b),
                        None => match current {
                            Some(Attempt::Stream(_, Some(f), _)) => d.handle_failure(f, now, jitter),
                            _ => d.end_of_body(),
                        },
                    },
                    DriverAction::Event(_) => events += 1,
                    action @ (DriverAction::Done | DriverAction::Fail(_)) => {
                        terminal = Some(action);
                        break;
                    }
                }
                proptest::prop_assert!(quota.available() <= capacity);
            }
            proptest::prop_assert!(terminal.is_some(), "the driver ends");
            proptest::prop_assert!(d.attempts() <= max_attempts);
            proptest::prop_assert_eq!(d.poll(), terminal.unwrap(), "terminal actions repeat");
        }
    }
}
