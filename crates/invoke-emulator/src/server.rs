//! Request handling, one stage per function, in the order a request meets them
//!
//! 1. [`check_head_size`]: the request target and the header fields within the emulator's
//!    limits, below hyper's own (which answer without the service's error shape)
//! 2. route: [`parse_route`] finds the operation the method and path name, and the function
//!    name in the path
//! 3. [`check_content_length`]: an announced body over the request limit is refused at once
//! 4. authorize the head: [`Auth::check_head`](crate::Auth) checks the `Authorization`, the
//!    date, the credential scope and the access key, before any body byte is read
//! 5. [`read_body`]: the payload, at most the request limit, within the body-read timeout;
//!    then the signature, which covers the body
//! 6. parse: [`Route::parse`] reads the content type, the `X-Amz-*` headers and the
//!    `Qualifier` into validated [`InvokeParams`], and refuses an `Event` payload over 1 MiB
//! 7. [`resolve`]: a function ARN of another region is not found; else the hosted function,
//!    the qualifier, the ARN and the executed version; then [`check_json`] and, for a
//!    `DryRun`, the answer ([`dry_run`])
//! 8. [`admit`]: injected faults, throttling and the concurrency limit
//! 9. [`run`]: the handler, spawned under its timeout, holding the concurrency slots until it
//!    returns or times out (never while a client is slow to take its output)
//! 10. [`respond`]: the head once the function set its content type or first wrote, then its
//!     output streamed as event-stream messages ([`FrameBody`]) or collected into one body
//!     ([`respond_buffered`]); an asynchronous `Invoke` (`Event`) gets its 202 at once and
//!     the function runs on in the background ([`accept_event`]). At most 1 MiB of output
//!     wait for the response at once ([`output_channel`]): a function writing to a client
//!     that reads slowly, or not at all, waits for it
//!
//! Every request logs one line (no payloads, client text escaped and bounded). A stage that
//! refuses the request returns a [`Rejection`] (a service error); [`handle`] logs it and
//! answers with it. A buffered `Invoke` logs when its function ends ([`completion_log`]), an
//! asynchronous one when its output was all read ([`accept_event`]), a stream once it ended,
//! complete or not ([`stream_log`]: a fault, a stall, the client gone). A body left unread by
//! a refusal is drained in the background ([`Unread`]). The wire names (routes, headers,
//! error codes) all come from `invoke-proto`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, EXPECT};
use http::request::Parts;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Limited};
use hyper::body::{Body as _, Incoming};
use invoke_proto::{
    CONTENT_TYPE_OCTET_STREAM, InvocationType, InvokeParams, LogType, MAX_PAYLOAD_LEN, Operation,
    RequestError, Route, X_AMZ_EXECUTED_VERSION, X_AMZ_FUNCTION_ERROR, X_AMZ_LOG_RESULT,
    X_AMZN_REQUEST_ID, parse_function_name, parse_route, partition_id,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::auth::Auth;
use crate::body::{FrameBody, OnDone, OnEnd, RespBody, StreamEnd, full};
use crate::config::FunctionConfig;
use crate::fault::Faults;
use crate::function::{
    EXIT_ERROR, FunctionError, Handler, Invocation, LogTail, Output, OutputRx, ResponseStream,
    TIMED_OUT, UNHANDLED, output_channel,
};
use crate::listen::{Connection, ServerLimits};
use crate::reject::{self, Rejection};

/// The request header that injects faults into one invocation (see [`crate::fault`])
const FAULT_HEADER: &str = "x-emulator-fault";
/// Largest buffered (`Invoke`) response: 6 MiB + 100 bytes, as the service enforces
const MAX_BUFFERED_RESPONSE: usize = 6 * 1024 * 1024 + 100;
/// The account id in the ARNs the emulator reports
pub(crate) const ACCOUNT: &str = "123456789012";
/// Longest request target (path and query) answered in the service's error shape; hyper
/// itself answers a bare 414 past 65,534 bytes
const MAX_URI_LEN: usize = 8 * 1024;
/// Longest header section (names, values, and 4 bytes of framing per field) answered in the
/// service's error shape; hyper itself answers a bare 431 past about 400 KiB of head, or
/// past 100 fields
const MAX_HEADERS_LEN: usize = 64 * 1024;
/// Most body bytes read and discarded after a refusal that left the body unread
const DRAIN_LIMIT: u64 = 2 * MAX_PAYLOAD_LEN as u64;

/// Where log lines go instead of stderr
pub(crate) type LogSink = Arc<dyn Fn(&str) + Send + Sync>;

/// A hosted function: its handler, its configuration and the state of its limits
pub(crate) struct FunctionEntry {
    handler: Arc<dyn Handler>,
    config: FunctionConfig,
    permits: Option<Arc<Semaphore>>,
    throttle_left: AtomicU32,
}

impl FunctionEntry {
    pub(crate) fn new(handler: Arc<dyn Handler>, config: FunctionConfig) -> Self {
        let permits = config
            .concurrency
            .map(|n| Arc::new(Semaphore::new(n.min(FunctionConfig::MAX_CONCURRENCY))));
        Self {
            permits,
            throttle_left: AtomicU32::new(
                config
                    .throttle_next
                    .max(config.faults.throttle_next.unwrap_or(0)),
            ),
            handler,
            config,
        }
    }
}

/// Everything a request handler needs
pub(crate) struct Shared {
    pub(crate) functions: HashMap<String, FunctionEntry>,
    pub(crate) auth: Auth,
    pub(crate) region: String,
    pub(crate) require_json: bool,
    pub(crate) max_response: u64,
    pub(crate) quiet: bool,
    pub(crate) limits: ServerLimits,
    pub(crate) log_sink: Option<LogSink>,
    /// Slots for asynchronous invocations ([`ServerLimits::max_event_invocations`])
    pub(crate) event_slots: Arc<Semaphore>,
    /// Turns true when the emulator stops (or its sender is dropped): running invocations
    /// are abandoned then
    pub(crate) stop: watch::Receiver<bool>,
    /// How far the emulator's clock runs ahead of the host's
    pub(crate) clock_ahead: Duration,
}

impl Shared {
    /// The time on the emulator's clock
    fn now(&self) -> SystemTime {
        let now = SystemTime::now();
        now.checked_add(self.clock_ahead).unwrap_or(now)
    }

    /// `response` with the `Date` of the emulator's clock when it runs apart from the host's
    /// (hyper writes the host's otherwise)
    fn dated(&self, mut response: Response<RespBody>) -> Response<RespBody> {
        if !self.clock_ahead.is_zero()
            && let Ok(date) = invoke_proto::format_http_date(self.now())
            && let Ok(value) = http::HeaderValue::from_str(&date)
        {
            response.headers_mut().insert(http::header::DATE, value);
        }
        response
    }

    fn log(&self, line: &str) {
        if self.quiet {
            return;
        }
        match &self.log_sink {
            Some(sink) => sink(line),
            // queued: a stderr nobody reads must not hold up the server
            None => crate::write_stderr_line(line),
        }
    }
}

/// One request in flight: what the stages after routing share
struct Call {
    shared: Arc<Shared>,
    operation: Operation,
    request_id: String,
    started: Instant,
    /// The caller's `X-Amzn-Trace-Id`, passed on to the function as the RIE does
    trace_id: Option<String>,
}

/// Answers one HTTP request: routes it, runs the stages, answers a rejection
pub(crate) async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<RespBody>, Infallible> {
    let request_id = crate::ids::uuid();
    let route = check_head_size(&req).and_then(|()| {
        parse_route(req.method(), req.uri().path()).map_err(|e| Box::new(e.to_service_error()))
    });
    let route = match route {
        Ok(route) => route,
        Err(r) => {
            shared.log(&format!(
                "{request_id} {} {} -> {}",
                req.method(),
                printable(req.uri().path()),
                printable(&reject::summary(&r))
            ));
            // hyper closes the connection if the body is left unread; `Unread` drains it
            let (parts, body) = req.into_parts();
            drop(Unread::new(body, &parts, &shared.limits));
            return Ok(shared.dated(reject::response(*r, &request_id)));
        }
    };
    // decoded from the path and not validated yet: shown escaped and cut short
    let function = printable(&route.function_name);
    let call = Call {
        shared,
        operation: route.operation,
        request_id,
        started: Instant::now(),
        trace_id: trace_id(req.headers()),
    };
    let unanswered = Unanswered(Some((&call, &function)));
    let answer = invoke(&call, req, route).await;
    unanswered.answered();
    let response = match answer {
        Ok(resp) => resp,
        Err(r) => {
            call.shared.log(&format!(
                "{} {} {function} -> {}",
                call.request_id,
                call.operation.as_str(),
                printable(&reject::summary(&r))
            ));
            reject::response(*r, &call.request_id)
        }
    };
    Ok(call.shared.dated(response))
}

/// The caller's `X-Amzn-Trace-Id`: one value of visible ASCII, at most
/// [`MAX_TRACE_ID_LEN`] bytes, else none
fn trace_id(headers: &http::HeaderMap) -> Option<String> {
    let mut values = headers.get_all("x-amzn-trace-id").iter();
    let value = values.next().filter(|_| values.next().is_none())?;
    let text = value.to_str().ok()?;
    (!text.is_empty()
        && text.len() <= MAX_TRACE_ID_LEN
        && text.bytes().all(|b| b.is_ascii_graphic()))
    .then(|| text.to_owned())
}

/// Longest `X-Amzn-Trace-Id` passed on to a function (X-Ray's own limit is far below)
const MAX_TRACE_ID_LEN: usize = 1024;

/// Longest text from a client (a path, a function name, a refusal quoting a value) in a
/// log line, in characters
const MAX_LOGGED_CHARS: usize = 512;

/// `text` for a log line: control characters escaped, at most [`MAX_LOGGED_CHARS`]
/// characters (then `...`), so that a client can neither forge nor flood log lines
fn printable(text: &str) -> String {
    let mut out = String::new();
    push_escaped(&mut out, text.chars().take(MAX_LOGGED_CHARS));
    if text.chars().nth(MAX_LOGGED_CHARS).is_some() {
        out.push_str("...");
    }
    out
}

/// Appends `chars` to `out`, control characters escaped (`\n`, `\u{1b}`): a log line stays
/// one line
pub(crate) fn push_escaped(out: &mut String, chars: impl Iterator<Item = char>) {
    for c in chars {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
}

/// Logs a request whose connection closed before it was answered (hyper then drops the
/// handler), unless [`answered`](Self::answered)
struct Unanswered<'a>(Option<(&'a Call, &'a str)>);

impl Unanswered<'_> {
    fn answered(mut self) {
        self.0 = None;
    }
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        if let Some((call, function)) = self.0.take() {
            call.shared.log(&format!(
                "{} {} {function} -> connection closed before the response, after {:.1} ms",
                call.request_id,
                call.operation.as_str(),
                call.started.elapsed().as_secs_f64() * 1000.0
            ));
        }
    }
}

/// The stages after routing, in order
async fn invoke(
    call: &Call,
    req: Request<Incoming>,
    route: Route,
) -> Result<Response<RespBody>, Rejection> {
    let (parts, body) = req.into_parts();
    let body = Unread::new(body, &parts, &call.shared.limits);
    check_content_length(&parts, call.operation)?;
    let signature = call
        .shared
        .auth
        .check_head(&parts, &call.shared.region, call.shared.now())?;
    let payload = read_body(body, call.operation, call.shared.limits.body_read_timeout).await?;
    if let Some(signature) = signature {
        signature.verify(&payload)?;
    }
    let parsed = route
        .parse(parts.uri.query(), &parts.headers, payload)
        .map_err(|e| e.to_service_error())?;
    let params = parsed.params;
    let target = resolve(&call.shared, &params)?;
    check_json(&call.shared, params.payload())?;
    if params.get_invocation_type() == Some(InvocationType::DryRun) {
        return Ok(dry_run(call, &target));
    }
    let admitted = admit(target.entry, &parts)?;
    if parsed.asynchronous {
        let event = Arc::clone(&call.shared.event_slots)
            .try_acquire_owned()
            .map_err(|_| reject::throttled("ConcurrentInvocationLimitExceeded"))?;
        let slots = Slots {
            _function: admitted.permit,
            _event: Some(event),
        };
        let running = run(call, &target, &params, slots, Synchronous::No);
        return Ok(accept_event(call, &target, running));
    }
    let slots = Slots {
        _function: admitted.permit,
        _event: None,
    };
    let running = run(call, &target, &params, slots, Synchronous::Yes);
    let log_tail = params.get_log_type() == Some(LogType::Tail);
    Ok(respond(call, &target, running, admitted.faults, log_tail).await)
}

/// 414 for a request target over [`MAX_URI_LEN`], 431 for header fields over
/// [`MAX_HEADERS_LEN`], in the service's error shape
fn check_head_size(req: &Request<Incoming>) -> Result<(), Rejection> {
    let uri = req.uri();
    let uri_len = uri.path_and_query().map_or(0, |p| p.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len());
    if uri_len > MAX_URI_LEN {
        return Err(reject::uri_too_long(uri_len, MAX_URI_LEN));
    }
    let headers_len: usize = req
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    if headers_len > MAX_HEADERS_LEN {
        return Err(reject::headers_too_large(headers_len, MAX_HEADERS_LEN));
    }
    Ok(())
}

/// The announced body length, when there is a valid `Content-Length`
fn content_length(parts: &Parts) -> Option<u64> {
    parts
        .headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// 413, kind `RequestTooLarge`, for a `Content-Length` over the request limit, before any
/// body byte is read
fn check_content_length(parts: &Parts, operation: Operation) -> Result<(), Rejection> {
    match content_length(parts) {
        Some(len) if len > MAX_PAYLOAD_LEN as u64 => Err(Box::new(
            RequestError::body_too_large(operation).to_service_error(),
        )),
        _ => Ok(()),
    }
}

/// A request body not read yet
///
/// Dropped unread (the request was refused before its body was needed), it is read and
/// discarded in the background, at most [`DRAIN_LIMIT`] bytes within the body-read timeout,
/// so that a client still sending its body reads the refusal rather than a reset
/// connection. That budget alone bounds the drain: meanwhile the connection's head and idle
/// timeouts do not run ([`Connection::draining_body`]). A body announced longer than that,
/// or held back by `Expect: 100-continue`, is not drained: hyper closes the connection after
/// the answer.
struct Unread {
    body: Option<Incoming>,
    /// Whether and for how long to drain the body if it is dropped unread
    drain: Option<Duration>,
    /// The connection the request came on (none outside a listener, as in unit tests)
    connection: Option<Connection>,
}

impl Unread {
    fn new(body: Incoming, parts: &Parts, limits: &ServerLimits) -> Self {
        let expects_continue = parts
            .headers
            .get(EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let drain = !expects_continue && content_length(parts).is_none_or(|n| n <= DRAIN_LIMIT);
        Self {
            body: Some(body),
            drain: drain.then_some(limits.body_read_timeout),
            connection: parts.extensions.get::<Connection>().cloned(),
        }
    }

    fn take(mut self) -> Incoming {
        self.body.take().expect("taken once")
    }
}

impl Drop for Unread {
    fn drop(&mut self) {
        let (Some(mut body), Some(timeout)) = (self.body.take(), self.drain) else {
            return;
        };
        if body.is_end_stream() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        // taken now, before the answer goes out and the connection looks idle
        let draining = self.connection.take().map(|c| c.draining_body());
        runtime.spawn(tokio::time::timeout(timeout, async move {
            let _draining = draining;
            let mut left = DRAIN_LIMIT;
            while let Some(Ok(frame)) = body.frame().await {
                let n = frame.data_ref().map_or(0, Bytes::len) as u64;
                left = left.saturating_sub(n);
                // a body whose announced length is all here has ended: hyper would say so
                // only once the client sends more (its next request), which may be long
                if left == 0 || body.is_end_stream() {
                    break;
                }
            }
        }));
    }
}

/// The request body, read whole because the signature covers it; at most the request limit
/// (413, kind `RequestTooLarge`, beyond), within `timeout` (408 past it)
async fn read_body(
    body: Unread,
    operation: Operation,
    timeout: Duration,
) -> Result<Bytes, Rejection> {
    let read = Limited::new(body.take(), MAX_PAYLOAD_LEN).collect();
    match tokio::time::timeout(timeout, read).await {
        Err(_) => Err(reject::body_timeout(timeout)),
        Ok(Ok(b)) => Ok(b.to_bytes()),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(Box::new(
                RequestError::body_too_large(operation).to_service_error(),
            ))
        }
        Ok(Err(e)) => Err(reject::invalid_parameter(format!(
            "could not read the request body: {e}"
        ))),
    }
}

/// The hosted function a request resolved to
struct Target<'a> {
    /// The bare function name
    name: &'a str,
    entry: &'a FunctionEntry,
    /// The ARN as invoked, qualified when a qualifier was given
    arn: String,
    /// `X-Amz-Executed-Version`: a numeric qualifier, else `$LATEST`
    executed_version: String,
}

/// The hosted function named by the parameters (a name, a partial or a full ARN) and its
/// qualifier; a 404 for an unknown function or qualifier
fn resolve<'a>(shared: &'a Shared, params: &'a InvokeParams) -> Result<Target<'a>, Rejection> {
    let parsed = parse_function_name(params.function_name())
        .ok_or_else(|| reject::invalid_parameter("invalid FunctionName"))?;
    let qualifier = params.get_qualifier().or(parsed.qualifier);
    // a function ARN of another region: the service looks no further
    if let Some(region) = parsed.region
        && region != shared.region
    {
        return Err(reject::other_region(region, &shared.region));
    }
    // the ARN as the service writes it: the partition of the region, the account invoked
    let region = parsed.region.unwrap_or(&shared.region);
    // a full ARN of another partition (`arn:aws-cn:` in `us-east-1`) names no function here
    // (the service's wording for this case is unconfirmed)
    if parsed.partition.is_some_and(|p| p != partition_id(region)) {
        return Err(reject::not_found(params.function_name()));
    }
    let account = parsed.account.unwrap_or(ACCOUNT);
    let mut arn = format!(
        "arn:{}:lambda:{region}:{account}:function:{}",
        partition_id(region),
        parsed.name
    );
    let entry = shared
        .functions
        .get(parsed.name)
        .ok_or_else(|| reject::not_found(&arn))?;
    if let Some(q) = qualifier {
        arn = format!("{arn}:{q}");
        if q != "$LATEST" && !entry.config.qualifiers.iter().any(|x| x == q) {
            return Err(reject::not_found(&arn));
        }
    }
    let executed_version = match qualifier {
        Some(q) if q.bytes().all(|b| b.is_ascii_digit()) => q.to_owned(),
        _ => "$LATEST".to_owned(),
    };
    Ok(Target {
        name: parsed.name,
        entry,
        arn,
        executed_version,
    })
}

/// 400, kind `InvalidRequestContent`, for a non-empty payload that is not JSON, when the
/// emulator requires JSON as `Invoke` does
fn check_json(shared: &Shared, payload: &Bytes) -> Result<(), Rejection> {
    if shared.require_json
        && !payload.is_empty()
        && serde_json::from_slice::<serde_json::Value>(payload).is_err()
    {
        return Err(reject::payload_not_json());
    }
    Ok(())
}

/// The answer to a `DryRun`: 204, nothing run
fn dry_run(call: &Call, target: &Target<'_>) -> Response<RespBody> {
    call.shared.log(&format!(
        "{} DryRun {} -> 204",
        call.request_id, target.name
    ));
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header(X_AMZN_REQUEST_ID, &call.request_id)
        .header(X_AMZ_EXECUTED_VERSION, &target.executed_version)
        .body(full(Bytes::new()))
        .expect("valid response")
}

/// What admission grants an invocation
struct Admitted {
    /// The function's faults combined with the request's `x-emulator-fault`
    faults: Faults,
    /// The function's concurrency slot, held until the function returns or times out
    permit: Option<OwnedSemaphorePermit>,
}

/// The concurrency slots an invocation takes: held by its run until the function returns or
/// times out (or the emulator stops), never by its response, so that a client slow to read
/// it (or a stalled stream) holds none; only held, never read
struct Slots {
    /// The function's own ([`FunctionConfig::concurrency`])
    _function: Option<OwnedSemaphorePermit>,
    /// An asynchronous invocation's ([`ServerLimits::max_event_invocations`])
    _event: Option<OwnedSemaphorePermit>,
}

/// Whether the function may run now: a `throttle` fault, a pending `throttle_next` or a full
/// concurrency limit answer a 429 throttling error
///
/// A request's `throttle=N` arms the function's counter to at least N before it is read, so
/// that this request and the next N-1 of the function are throttled.
fn admit(entry: &FunctionEntry, parts: &Parts) -> Result<Admitted, Rejection> {
    let mut faults = entry.config.faults.clone();
    if let Some(spec) = parts.headers.get(FAULT_HEADER) {
        let spec = spec
            .to_str()
            .map_err(|_| reject::invalid_parameter("the fault header is not visible ASCII"))?;
        let requested = Faults::parse(spec).map_err(reject::invalid_parameter)?;
        if let Some(n) = requested.throttle_next {
            entry.throttle_left.fetch_max(n, Ordering::Relaxed);
        }
        faults = faults.merge(&requested);
    }
    let throttled = faults.throttle
        || entry
            .throttle_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
    if throttled {
        return Err(reject::throttled("CallerRateLimitExceeded"));
    }
    let permit =
        match &entry.permits {
            None => None,
            Some(sem) => Some(Arc::clone(sem).try_acquire_owned().map_err(|_| {
                reject::throttled("ReservedFunctionConcurrentInvocationLimitExceeded")
            })?),
        };
    Ok(Admitted { faults, permit })
}

/// The answer to an asynchronous `Invoke`: 202 with an empty body at once, as the service
/// answers once the event is queued; the function runs on (holding its event slot, see
/// [`run`]), its output is read and dropped, and its end is logged like any invocation's
fn accept_event(call: &Call, target: &Target<'_>, mut running: Running) -> Response<RespBody> {
    let shared = Arc::clone(&call.shared);
    let id = call.request_id.clone();
    let function = target.name.to_owned();
    let started = call.started;
    let limit = call.shared.max_response;
    tokio::spawn(async move {
        let mut bytes: u64 = 0;
        let result = loop {
            match running.rx.recv().await {
                Some(Output::Head { .. }) => {}
                Some(Output::Chunk(c)) => {
                    bytes += c.len() as u64;
                    // past the response limit, as for a stream, what follows is not taken:
                    // the function sees its output closed (a function that writes on and on
                    // would otherwise run at full speed until its timeout)
                    if bytes > limit {
                        running.rx.close();
                    }
                }
                // over the limit, the invocation failed, as a stream does, whatever the
                // function returned (it may have, before the output was closed); closed
                // here, its result could no longer be sent
                Some(Output::Done(_)) | None if bytes > limit => {
                    break Err(FunctionError::new(
                        "Function.ResponseSizeTooLarge",
                        format!("the response was larger than {limit} bytes"),
                    ));
                }
                Some(Output::Done(r)) => break r,
                None => {
                    break Err(FunctionError::new(
                        EXIT_ERROR,
                        "the function ended without a result",
                    ));
                }
            }
        };
        shared.log(&format!(
            "{id} Invoke (Event) {function} -> 202, {bytes} payload bytes discarded, ran {:.1} ms, {}",
            started.elapsed().as_secs_f64() * 1000.0,
            outcome(&result)
        ));
    });
    Response::builder()
        .status(StatusCode::ACCEPTED)
        .header(X_AMZN_REQUEST_ID, &call.request_id)
        .body(full(Bytes::new()))
        .expect("valid response")
}

/// A started invocation: where its output arrives, and its log
struct Running {
    rx: OutputRx,
    log: Arc<Mutex<LogTail>>,
}

/// Whether the caller waits for the function's answer
#[derive(Clone, Copy, PartialEq, Eq)]
enum Synchronous {
    /// `RequestResponse`, and every `InvokeWithResponseStream`
    Yes,
    /// An asynchronous `Invoke` (`Event`)
    No,
}

/// Spawns the handler under the function's timeout (`Sandbox.Timedout` past it); `slots` are
/// held until the handler returns or times out, even when the client went away, and no
/// longer: they are freed before the result is queued behind the output the client has yet
/// to take
fn run(
    call: &Call,
    target: &Target<'_>,
    params: &InvokeParams,
    slots: Slots,
    sync: Synchronous,
) -> Running {
    let timeout = target.entry.config.timeout;
    let payload = params.payload();
    let invocation = Invocation {
        request_id: call.request_id.clone(),
        function_name: target.name.to_owned(),
        invoked_function_arn: target.arn.clone(),
        payload: if payload.is_empty() {
            Bytes::from_static(b"{}")
        } else {
            payload.clone()
        },
        // validated as UTF-8 JSON by `Route::parse`; the service passes it on for
        // synchronous invocations only
        client_context: params
            .get_client_context()
            .filter(|_| sync == Synchronous::Yes)
            .map(|c| String::from_utf8_lossy(c).into_owned()),
        tenant_id: params.get_tenant_id().map(str::to_owned),
        trace_id: call.trace_id.clone(),
        timeout,
    };
    let (tx, rx) = output_channel();
    let id = call.request_id.clone();
    let mut log = LogTail::default();
    // the lines the service writes around the function's own, as its log tail shows them
    log.push(
        format!(
            "START RequestId: {id} Version: {}\n",
            target.executed_version
        )
        .as_bytes(),
    );
    let log = Arc::new(Mutex::new(log));
    let out = ResponseStream::new(tx.clone(), Arc::clone(&log));
    let handler = Arc::clone(&target.entry.handler);
    let mut stop = call.shared.stop.clone();
    let ran_log = Arc::clone(&log);
    tokio::spawn(async move {
        let run = async {
            let called = tokio::time::Instant::now();
            let ran = run_for(handler.call(invocation, out), timeout, called, &ran_log).await;
            let result = ran.unwrap_or_else(|| {
                let seconds = timeout.as_secs_f64();
                // the line the service writes into the log when it ends the function
                if let Ok(mut log) = ran_log.lock() {
                    let line = format!(
                        "{} {id} Task timed out after {seconds:.2} seconds\n",
                        log_time(SystemTime::now())
                    );
                    log.push(line.as_bytes());
                }
                Err(FunctionError::new(
                    TIMED_OUT,
                    format!("RequestId: {id} Error: Task timed out after {seconds:.2} seconds"),
                ))
            });
            if let Ok(mut log) = ran_log.lock() {
                let ran = log.began.unwrap_or(called).elapsed();
                let line = report(&id, ran, log.init, result.as_ref().err());
                log.push(line.as_bytes());
            }
            // the function is over: its slots go now, not once a slow client took its output
            drop(slots);
            // queued whatever is queued before it: nothing here waits for the client
            tx.finish(result);
        };
        // the emulator stopping abandons the run (its handler is dropped), whoever waits
        tokio::select! {
            () = run => {}
            _ = stop.wait_for(|stopped| *stopped) => {}
        }
    });
    Running { rx, log }
}

/// Runs `call` until `timeout` after the function got the invocation: when it was called, or
/// later if the handler says so ([`ResponseStream::began`]: a process function's invocation
/// begins when `/next` hands it out, its process's start and the wait for one not counted);
/// `None` once the time is up
async fn run_for<F: Future>(
    call: F,
    timeout: Duration,
    called: tokio::time::Instant,
    log: &Mutex<LogTail>,
) -> Option<F::Output> {
    let began = || log.lock().map_or(Some(called), |l| l.began(called));
    tokio::pin!(call);
    loop {
        // not begun yet: look again after `timeout` (the time then runs from the start)
        let deadline = began()
            .unwrap_or_else(tokio::time::Instant::now)
            .checked_add(timeout);
        // a timeout too long for the clock never ends the call
        let Some(deadline) = deadline else {
            return Some(call.await);
        };
        tokio::select! {
            biased;
            out = &mut call => return Some(out),
            () = tokio::time::sleep_until(deadline) => {
                let end = began().and_then(|b| b.checked_add(timeout));
                if end.is_some_and(|d| d <= tokio::time::Instant::now()) {
                    return None;
                }
            }
        }
    }
}

/// `t` as the service's log lines write it: UTC, milliseconds, `2024-01-15T12:00:03.123Z`
fn log_time(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// The `END` and `REPORT` lines that close an invocation's log, as the service writes them
/// (without the memory figures, which an emulator has no honest value for): `Duration` is
/// `ran`, from when the function got the invocation; after a cold start, `Init Duration`
/// (the process's start to its first `/next`), which `Billed Duration` includes (as for
/// custom runtimes); `Status: timeout` after a timeout and `Status: error` with the error
/// type when the runtime process exited; an error the function or its runtime reported adds
/// no status
fn report(
    id: &str,
    ran: Duration,
    init: Option<Duration>,
    error: Option<&FunctionError>,
) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let duration = ms(ran);
    let billed = ran
        .saturating_add(init.unwrap_or_default())
        .as_nanos()
        .div_ceil(1_000_000)
        .max(1);
    let init = init.map_or_else(String::new, |d| format!("\tInit Duration: {:.2} ms", ms(d)));
    let status = match error.map(|e| e.error_type.as_str()) {
        Some(TIMED_OUT) => "\tStatus: timeout".to_owned(),
        Some(t @ EXIT_ERROR) => format!("\tStatus: error\tError Type: {t}"),
        _ => String::new(),
    };
    format!(
        "END RequestId: {id}\nREPORT RequestId: {id}\tDuration: {duration:.2} ms\tBilled Duration: \
         {billed} ms{init}{status}\t\n"
    )
}

/// The response to a running invocation: the head waits for the function's content type or
/// its first output, then the body streams (`InvokeWithResponseStream`) or is collected
/// (`Invoke`)
async fn respond(
    call: &Call,
    target: &Target<'_>,
    mut running: Running,
    faults: Faults,
    log_tail: bool,
) -> Response<RespBody> {
    let first = running.rx.recv().await;
    let content_type = match &first {
        Some(Output::Head { content_type }) => content_type.clone(),
        _ => HeaderValue::from_static(CONTENT_TYPE_OCTET_STREAM),
    };
    let head = Response::builder()
        .status(StatusCode::OK)
        .header(X_AMZN_REQUEST_ID, &call.request_id)
        .header(X_AMZ_EXECUTED_VERSION, &target.executed_version)
        .header(CONTENT_TYPE, content_type);
    match call.operation {
        Operation::InvokeWithResponseStream => {
            let body = FrameBody::new(
                first.filter(|o| !matches!(o, Output::Head { .. })),
                running.rx,
                faults,
                log_tail.then_some(running.log),
                call.shared.max_response,
                stream_log(call, target.name),
            );
            head.body(body.boxed()).expect("valid response")
        }
        Operation::Invoke => {
            let on_done = completion_log(call, target.name);
            respond_buffered(head, first, running, log_tail, on_done).await
        }
    }
}

/// `Invoke`: the whole output (at most 6 MiB + 100 bytes) in one body; a function error is
/// the body `{"errorType":..,"errorMessage":..}` with `X-Amz-Function-Error: Unhandled`
async fn respond_buffered(
    mut head: http::response::Builder,
    first: Option<Output>,
    mut running: Running,
    log_tail: bool,
    on_done: OnDone,
) -> Response<RespBody> {
    let mut buf = BytesMut::new();
    let mut next = first;
    let result = loop {
        match next {
            Some(Output::Head { .. }) => {}
            Some(Output::Chunk(c)) => {
                if buf.len() + c.len() > MAX_BUFFERED_RESPONSE {
                    running.rx.close();
                    break Err(FunctionError::new(
                        "Function.ResponseSizeTooLarge",
                        format!(
                            "Response payload size exceeded maximum allowed payload size ({MAX_BUFFERED_RESPONSE} bytes)."
                        ),
                    ));
                }
                buf.extend_from_slice(&c);
            }
            Some(Output::Done(r)) => break r,
            None => {
                break Err(FunctionError::new(
                    EXIT_ERROR,
                    "the function ended without a result",
                ));
            }
        }
        next = running.rx.recv().await;
    };
    on_done(&result, buf.len() as u64);
    if log_tail {
        let tail = running.log.lock().map(|l| l.contents()).unwrap_or_default();
        head = head.header(
            X_AMZ_LOG_RESULT,
            base64::engine::general_purpose::STANDARD.encode(tail),
        );
    }
    let body = match result {
        Ok(()) => buf.freeze(),
        Err(e) => {
            head = head.header(X_AMZ_FUNCTION_ERROR, UNHANDLED);
            Bytes::from(e.details())
        }
    };
    head.body(full(body)).expect("valid response")
}

/// A function's result in a log line: `ok`, or `function error TYPE: MESSAGE` (bounded,
/// escaped)
fn outcome(result: &Result<(), FunctionError>) -> String {
    match result {
        Ok(()) => "ok".to_owned(),
        Err(e) => format!("function error {}", e.summary()),
    }
}

/// The log line of a buffered `Invoke`, written once the function ends: payload bytes,
/// duration, outcome
fn completion_log(call: &Call, function: &str) -> OnDone {
    let shared = Arc::clone(&call.shared);
    let id = call.request_id.clone();
    let operation = call.operation;
    let started = call.started;
    let function = function.to_owned();
    Box::new(move |result: &Result<(), FunctionError>, bytes: u64| {
        shared.log(&format!(
            "{id} {} {function} -> 200, {bytes} payload bytes in {:.1} ms, {}",
            operation.as_str(),
            started.elapsed().as_secs_f64() * 1000.0,
            outcome(result)
        ));
    })
}

/// The one log line of a stream, written once it ended: the payload bytes, the time and the
/// function's outcome; for a stream that ended without its `InvokeComplete` (an injected
/// fault, a stall given up, the connection closed), why, the bytes sent by then, and the
/// function's outcome if it had ended
fn stream_log(call: &Call, function: &str) -> OnEnd {
    let shared = Arc::clone(&call.shared);
    let id = call.request_id.clone();
    let operation = call.operation;
    let started = call.started;
    let function = function.to_owned();
    Box::new(move |end: StreamEnd<'_>| {
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let operation = operation.as_str();
        let StreamEnd {
            result,
            cut,
            sent,
            payload,
        } = end;
        let line = match cut {
            None => format!(
                "{id} {operation} {function} -> 200, {payload} payload bytes in {ms:.1} ms, {}",
                result.map_or_else(|| "no result".to_owned(), outcome)
            ),
            Some(why) => {
                let mut line = format!(
                    "{id} {operation} {function} -> 200, {why} after {sent} bytes sent \
                     ({payload} payload bytes) in {ms:.1} ms"
                );
                if let Some(r) = result {
                    line.push_str(", the function had ended: ");
                    line.push_str(&outcome(r));
                }
                line
            }
        };
        shared.log(&line);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_plain_trace_header_is_passed_on() {
        let headers = |values: &[&str]| {
            let mut h = http::HeaderMap::new();
            for v in values {
                h.append("x-amzn-trace-id", http::HeaderValue::from_str(v).unwrap());
            }
            trace_id(&h)
        };
        assert_eq!(
            headers(&["Root=1-a;Sampled=0"]).as_deref(),
            Some("Root=1-a;Sampled=0")
        );
        assert_eq!(headers(&[]), None);
        assert_eq!(headers(&[""]), None);
        assert_eq!(headers(&["Root=1-a", "Root=1-b"]), None);
        assert_eq!(headers(&["Root=1 a"]), None);
        assert_eq!(headers(&[&"x".repeat(MAX_TRACE_ID_LEN + 1)]), None);
        assert!(headers(&[&"x".repeat(MAX_TRACE_ID_LEN)]).is_some());
    }
}
