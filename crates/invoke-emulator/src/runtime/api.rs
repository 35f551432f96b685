//! The [Runtime API](https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html) server of
//! one function process
//!
//! Routes, under `/2018-06-01`:
//!
//! | route | behaviour |
//! |---|---|
//! | `GET /runtime/invocation/next` | long-polls; `200`, body = event, `Lambda-Runtime-*` headers (empty ones omitted) |
//! | `POST /runtime/invocation/{id}/response` | buffered (`Content-Length`) or streamed (mode header `streaming` and/or chunked): `202 {"status":"OK"}` |
//! | `POST /runtime/invocation/{id}/error` | fails the invocation with the reported error document, kept whole ([`errordoc`]): `202`; `413` over 1 MiB |
//! | `POST /runtime/init/error` | fails the pending invocation, the process is replaced: `202`; `403` once `/next` was served |
//!
//! Reports (`/response`, `/error`, `/init/error`) run in their own task, counted in
//! [`Runtime::reports`]: a runtime may exit as soon as it has sent one, and what it sent must
//! still arrive whole even though the connection closes before the answer is written.
//!
//! A `/response` whose `Content-Type` is longer than 1 KiB is refused (`400
//! InvalidContentType`) and fails the invocation with `Runtime.InvalidResponseContentType`,
//! rather than reach the client.
//!
//! A request id that is not the current invocation's is `400 InvalidRequestID`; a second
//! `/response` or `/error` for it (or one for an earlier invocation) is
//! `403 InvalidStateTransition`. Errors are JSON `{"errorMessage":..,"errorType":..}` as the RIE
//! sends them. `POST /2020-01-01/extension/register` answers `200` with a
//! `Lambda-Extension-Identifier`, and `GET /2020-01-01/extension/event/next` never answers.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{CONTENT_TYPE, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot, watch};
use tokio::time::Instant;

use super::errordoc;
use super::errorlines::ErrorLines;
use crate::body::{RespBody, full};
use crate::function::{FunctionError, Invocation, ResponseStream};
use crate::ids::{random_hex, uuid};

const MODE: &str = "lambda-runtime-function-response-mode";
const ERROR_TYPE: &str = "lambda-runtime-function-error-type";
const ERROR_BODY: &str = "lambda-runtime-function-error-body";
/// Largest buffered `/response` body, as the RIE enforces
const MAX_BUFFERED: usize = 6 * 1024 * 1024;
/// Longest `Content-Type` of a `/response` passed on to the client
const MAX_CONTENT_TYPE: usize = 1024;
/// Finished request ids remembered, to tell a late report (403) from a wrong id (400)
const REMEMBERED: usize = 64;

/// How an invocation ended, as the runtime reported it
#[derive(Debug)]
pub(super) struct Finished {
    pub(super) result: Result<(), FunctionError>,
    /// The process cannot serve another invocation
    pub(super) replace: bool,
}

impl Finished {
    fn keep(result: Result<(), FunctionError>) -> Self {
        Self {
            result,
            replace: false,
        }
    }

    pub(super) fn replace(result: Result<(), FunctionError>) -> Self {
        Self {
            result,
            replace: true,
        }
    }
}

/// The invocation a process is serving
pub(super) struct Active {
    inv: Invocation,
    out: ResponseStream,
    trace_id: String,
    done: Mutex<Option<oneshot::Sender<Finished>>>,
    /// A `/response` or `/error` has started
    claimed: AtomicBool,
}

impl Active {
    pub(super) fn new(
        inv: Invocation,
        out: ResponseStream,
        done: oneshot::Sender<Finished>,
    ) -> Arc<Self> {
        let trace_id = inv.trace_id.clone().unwrap_or_else(|| {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            format!(
                "Root=1-{:08x}-{};Parent={};Sampled=0",
                now.as_secs(),
                random_hex(24),
                random_hex(16)
            )
        });
        Arc::new(Self {
            inv,
            out,
            trace_id,
            done: Mutex::new(Some(done)),
            claimed: AtomicBool::new(false),
        })
    }

    fn finish(&self, f: Finished) {
        if let Some(tx) = self.done.lock().ok().and_then(|mut d| d.take()) {
            let _ = tx.send(f);
        }
    }
}

/// The Runtime API state of one process
pub(super) struct Runtime {
    /// When the process was about to be started (made just before it), the start of its
    /// initialization
    created: Instant,
    function_name: String,
    handler: String,
    slot: Mutex<Slot>,
    wake: Notify,
    /// Reports being handled
    reports: watch::Sender<usize>,
}

#[derive(Default)]
struct Slot {
    /// Offered, not yet handed out by `/next`
    pending: Option<Arc<Active>>,
    /// Handed out by the last `/next`
    current: Option<Arc<Active>>,
    /// A `/next` was answered
    initialized: bool,
    /// `/init/error` came while nothing was pending
    init_error: Option<FunctionError>,
    finished: VecDeque<String>,
}

impl Runtime {
    pub(super) fn new(function_name: String, handler: String) -> Self {
        Self {
            created: Instant::now(),
            function_name,
            handler,
            slot: Mutex::new(Slot::default()),
            wake: Notify::new(),
            reports: watch::Sender::new(0),
        }
    }

    /// Whether the process has polled `/next` (its initialization is over)
    pub(super) fn initialized(&self) -> bool {
        self.slot().initialized
    }

    /// The number of reports (`/response`, `/error`, `/init/error`) being handled
    pub(super) fn reports(&self) -> watch::Receiver<usize> {
        self.reports.subscribe()
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues the invocation for the process's next `/next`
    pub(super) fn offer(&self, active: Arc<Active>) {
        let mut s = self.slot();
        if let Some(e) = s.init_error.take() {
            active.finish(Finished::replace(Err(e)));
            return;
        }
        s.pending = Some(active);
        drop(s);
        self.wake.notify_one();
    }

    fn take_pending(&self) -> Option<Arc<Active>> {
        let mut s = self.slot();
        let a = s.pending.take()?;
        if let Some(prev) = s.current.replace(Arc::clone(&a)) {
            if s.finished.len() == REMEMBERED {
                s.finished.pop_front();
            }
            s.finished.push_back(prev.inv.request_id.clone());
        }
        let cold = !s.initialized;
        s.initialized = true;
        drop(s);
        // the invocation's time runs from now; the one that waited for the process's
        // initialization reports it
        a.out.began(cold.then(|| self.created.elapsed()));
        Some(a)
    }

    /// The current invocation, if `id` is its id and nothing was reported for it yet
    fn claim(&self, id: &str) -> Result<Arc<Active>, Rejected> {
        let s = self.slot();
        if let Some(a) = s.current.as_ref().filter(|a| a.inv.request_id == id) {
            if a.claimed.swap(true, Ordering::AcqRel) {
                return Err(Rejected::State);
            }
            return Ok(Arc::clone(a));
        }
        if s.finished.iter().any(|f| f == id) {
            Err(Rejected::State)
        } else {
            Err(Rejected::UnknownId)
        }
    }
}

/// Why a report for a request id was refused
enum Rejected {
    /// Not an invocation of this process
    UnknownId,
    /// Already reported
    State,
}

impl Rejected {
    fn response(&self, id: &str) -> Response<RespBody> {
        match self {
            Self::UnknownId => api_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestID",
                &format!("Invalid request ID: {id}"),
            ),
            Self::State => state_error(id),
        }
    }
}

fn api_error(status: StatusCode, error_type: &str, message: &str) -> Response<RespBody> {
    json_response(
        status,
        &json!({"errorMessage": message, "errorType": error_type}),
    )
}

fn state_error(id: &str) -> Response<RespBody> {
    api_error(
        StatusCode::FORBIDDEN,
        "InvalidStateTransition",
        &format!("Invalid state transition: a result was already reported for {id}"),
    )
}

fn json_response(status: StatusCode, v: &serde_json::Value) -> Response<RespBody> {
    let mut r = Response::new(full(v.to_string()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn accepted() -> Response<RespBody> {
    json_response(StatusCode::ACCEPTED, &json!({"status": "OK"}))
}

/// Serves the Runtime API until the task is aborted (which closes every connection)
pub(super) async fn serve(listener: TcpListener, rt: Arc<Runtime>) {
    let handler = move |req| handle(Arc::clone(&rt), req);
    crate::listen::serve(listener, None, handler, std::future::pending()).await;
}

async fn handle(
    rt: Arc<Runtime>,
    req: Request<Incoming>,
) -> Result<Response<RespBody>, Infallible> {
    let path = req.uri().path().to_owned();
    let post = req.method() == Method::POST;
    let get = req.method() == Method::GET;
    let invocation = path
        .strip_prefix("/2018-06-01/runtime/invocation/")
        .and_then(|r| r.split_once('/'))
        .filter(|(id, _)| !id.is_empty());
    let resp = match (path.as_str(), invocation) {
        ("/2018-06-01/runtime/invocation/next", _) if get => next(&rt).await,
        ("/2018-06-01/runtime/init/error", _) if post => report(rt, Report::InitError, req).await,
        (_, Some((id, "response"))) if post => {
            let id = id.to_owned();
            report(rt, Report::Response(id), req).await
        }
        (_, Some((id, "error"))) if post => {
            let id = id.to_owned();
            report(rt, Report::Error(id), req).await
        }
        ("/2020-01-01/extension/register", _) if post => register_extension(&rt),
        ("/2020-01-01/extension/event/next", _) if get => {
            std::future::pending::<Response<RespBody>>().await
        }
        _ => api_error(
            StatusCode::NOT_FOUND,
            "InvalidRequest",
            &format!("no route for {} {path}", req.method()),
        ),
    };
    Ok(resp)
}

/// A report from the runtime
enum Report {
    /// `/invocation/{id}/response`
    Response(String),
    /// `/invocation/{id}/error`
    Error(String),
    /// `/init/error`
    InitError,
}

/// Counts a report in [`Runtime::reports`] while it lives
struct Reporting(Arc<Runtime>);

impl Reporting {
    fn new(rt: Arc<Runtime>) -> Self {
        rt.reports.send_modify(|n| *n += 1);
        Self(rt)
    }
}

impl Drop for Reporting {
    fn drop(&mut self) {
        self.0.reports.send_modify(|n| *n -= 1);
    }
}

/// Handles a report in its own task, so that it completes even when hyper drops the
/// request's future (a runtime that exits right after sending closes the connection before
/// the answer is written)
async fn report(rt: Arc<Runtime>, kind: Report, req: Request<Incoming>) -> Response<RespBody> {
    let reporting = Reporting::new(rt);
    let task = tokio::spawn(async move {
        let rt = &reporting.0;
        match kind {
            Report::Response(id) => response(rt, &id, req).await,
            Report::Error(id) => invocation_error(rt, &id, req).await,
            Report::InitError => init_error(rt, req).await,
        }
    });
    task.await.unwrap_or_else(|_| {
        api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "the report could not be handled",
        )
    })
}

async fn next(rt: &Runtime) -> Response<RespBody> {
    let a = loop {
        let notified = rt.wake.notified();
        if let Some(a) = rt.take_pending() {
            break a;
        }
        notified.await;
    };
    let inv = &a.inv;
    let client_context = inv.client_context.as_deref().map(|c| {
        // Compact, so that a pretty-printed context still fits in a header
        serde_json::from_str::<serde_json::Value>(c)
            .map_or_else(|_| c.to_owned(), |v| v.to_string())
    });
    let mut headers = HeaderMap::new();
    let pairs = [
        (
            "lambda-runtime-aws-request-id",
            Some(inv.request_id.clone()),
        ),
        (
            "lambda-runtime-deadline-ms",
            Some(deadline_ms(inv.timeout).to_string()),
        ),
        (
            "lambda-runtime-invoked-function-arn",
            Some(inv.invoked_function_arn.clone()),
        ),
        ("lambda-runtime-trace-id", Some(a.trace_id.clone())),
        ("lambda-runtime-client-context", client_context),
        ("lambda-runtime-aws-tenant-id", inv.tenant_id.clone()),
        ("content-type", Some("application/json".to_owned())),
    ];
    for (name, value) in pairs {
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            continue;
        };
        if let Ok(v) = HeaderValue::from_bytes(value.as_bytes()) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
    let mut r = Response::new(full(inv.payload.clone()));
    *r.headers_mut() = headers;
    r
}

/// `Lambda-Runtime-Deadline-Ms` for an invocation handed out now: its timeout runs from here.
/// At most `i64::MAX` (a timeout without limit), which every runtime can read (Go's is an
/// `int64`, Rust's a `u64`).
fn deadline_ms(timeout: Duration) -> u64 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_add(timeout)
        .as_millis();
    u64::try_from(ms).map_or(i64::MAX.unsigned_abs(), |ms| {
        ms.min(i64::MAX.unsigned_abs())
    })
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn response(rt: &Runtime, id: &str, req: Request<Incoming>) -> Response<RespBody> {
    let active = match rt.claim(id) {
        Ok(a) => a,
        Err(r) => {
            drain(req.into_body()).await;
            return r.response(id);
        }
    };
    let (parts, mut body) = req.into_parts();
    let mode = header(&parts.headers, MODE);
    if let Some(m) = mode.filter(|m| !m.eq_ignore_ascii_case("streaming")) {
        active.finish(Finished::keep(Err(FunctionError::new(
            "Runtime.InvalidResponseModeHeader",
            format!("RequestId: {id} Error: invalid response mode header value: {m}"),
        ))));
        let m = m.to_owned();
        drain(body).await;
        return api_error(
            StatusCode::BAD_REQUEST,
            "InvalidFunctionResponseMode",
            &format!("Invalid response mode: {m}"),
        );
    }
    let content_type_len = parts.headers.get(CONTENT_TYPE).map_or(0, HeaderValue::len);
    if content_type_len > MAX_CONTENT_TYPE {
        let message = format!(
            "the response Content-Type has {content_type_len} bytes, more than {MAX_CONTENT_TYPE}"
        );
        active.finish(Finished::keep(Err(FunctionError::new(
            "Runtime.InvalidResponseContentType",
            format!("RequestId: {id} Error: {message}"),
        ))));
        drain(body).await;
        return api_error(StatusCode::BAD_REQUEST, "InvalidContentType", &message);
    }
    let chunked = parts.headers.get_all(TRANSFER_ENCODING).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.to_ascii_lowercase().contains("chunked"))
    });
    let out = &active.out;
    if let Some(ct) = header(&parts.headers, CONTENT_TYPE.as_str()) {
        // A header hyper parsed and `to_str` accepted is a valid header value
        let _ = out.set_content_type(ct).await;
    }
    let mut lines = ErrorLines::default();
    let mut trailers = None;
    if mode.is_some() || chunked {
        // Streamed: every body frame goes on as it arrives
        loop {
            match body.frame().await {
                None => break,
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => out.write(lines.feed(data)).await,
                    Err(frame) => {
                        if let Ok(t) = frame.into_trailers() {
                            trailers = Some(t);
                        }
                    }
                },
                Some(Err(e)) => {
                    out.write(lines.finish().0).await;
                    active.finish(Finished::replace(Err(FunctionError::new(
                        "Runtime.TruncatedResponse",
                        format!("RequestId: {id} Error: the response body was cut short: {e}"),
                    ))));
                    return api_error(
                        StatusCode::BAD_REQUEST,
                        "TruncatedHTTPRequest",
                        &format!("The response body was cut short: {e}"),
                    );
                }
            }
        }
    } else {
        match Limited::new(body, MAX_BUFFERED).collect().await {
            Ok(c) => {
                trailers = c.trailers().cloned();
                out.write(lines.feed(c.to_bytes())).await;
            }
            Err(e) => return buffered_failure(&active, id, &*e),
        }
    }
    let (rest, in_body) = lines.finish();
    out.write(rest).await;
    // an error type that is not visible ASCII (a Latin-1 class name) is still an error
    let lossy = |t: &HeaderMap, name| {
        t.get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let from_trailers = trailers.and_then(|t| {
        let error_type = lossy(&t, ERROR_TYPE)?;
        Some(errordoc::from_report(
            &error_type,
            &lossy(&t, ERROR_BODY).unwrap_or_default(),
        ))
    });
    active.finish(Finished::keep(match from_trailers.or(in_body) {
        Some(e) => Err(e),
        None => Ok(()),
    }));
    accepted()
}

/// A buffered body that was too large or could not be read
fn buffered_failure(
    active: &Active,
    id: &str,
    e: &(dyn std::error::Error + Send + Sync + 'static),
) -> Response<RespBody> {
    let too_large = e
        .downcast_ref::<http_body_util::LengthLimitError>()
        .is_some();
    let (error_type, status, api_type) = if too_large {
        (
            "Function.ResponseSizeTooLarge",
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
        )
    } else {
        (
            "Runtime.TruncatedResponse",
            StatusCode::BAD_REQUEST,
            "TruncatedHTTPRequest",
        )
    };
    let message = if too_large {
        format!(
            "Response payload size exceeded maximum allowed payload size ({MAX_BUFFERED} bytes)."
        )
    } else {
        format!("RequestId: {id} Error: the response body was cut short: {e}")
    };
    active.finish(Finished {
        result: Err(FunctionError::new(error_type, message.clone())),
        replace: !too_large,
    });
    api_error(status, api_type, &message)
}

/// Time to read a refused request's body or an error report: both are small, and a client
/// sending one slowly holds a connection (any local process can reach the Runtime API)
const SMALL_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads and drops a refused request's body, so the runtime sees the answer rather than a
/// reset connection: at most [`MAX_BUFFERED`] bytes within [`SMALL_BODY_TIMEOUT`], none kept
async fn drain(mut body: Incoming) {
    let discard = async {
        let mut left = MAX_BUFFERED;
        while let Some(Ok(frame)) = body.frame().await {
            let n = frame.data_ref().map_or(0, bytes::Bytes::len);
            match left.checked_sub(n) {
                Some(rest) => left = rest,
                None => return,
            }
        }
    };
    let _ = tokio::time::timeout(SMALL_BODY_TIMEOUT, discard).await;
}

/// The error an `/error` or `/init/error` report carries (see [`errordoc`]) and the answer
/// to it: `202`, `413` for a document over the limit, `400` for a body cut short
async fn read_report(headers: &HeaderMap, body: Incoming) -> (FunctionError, Response<RespBody>) {
    let error_type = header(headers, ERROR_TYPE);
    let read = Limited::new(body, errordoc::MAX_DOCUMENT).collect();
    let read = match tokio::time::timeout(SMALL_BODY_TIMEOUT, read).await {
        Ok(read) => read,
        Err(_) => Err(format!("not sent within {SMALL_BODY_TIMEOUT:?}").into()),
    };
    match read {
        Ok(c) => (
            errordoc::from_document(error_type, &c.to_bytes()),
            accepted(),
        ),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            let e = errordoc::too_large(error_type);
            let r = api_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                &e.error_message,
            );
            (e, r)
        }
        Err(e) => {
            let r = api_error(
                StatusCode::BAD_REQUEST,
                "TruncatedHTTPRequest",
                &format!("The error document was cut short: {e}"),
            );
            (errordoc::cut_short(error_type, &e), r)
        }
    }
}

async fn invocation_error(rt: &Runtime, id: &str, req: Request<Incoming>) -> Response<RespBody> {
    let active = match rt.claim(id) {
        Ok(a) => a,
        Err(r) => {
            drain(req.into_body()).await;
            return r.response(id);
        }
    };
    let (parts, body) = req.into_parts();
    let (e, answer) = read_report(&parts.headers, body).await;
    active.finish(Finished::keep(Err(e)));
    answer
}

async fn init_error(rt: &Runtime, req: Request<Incoming>) -> Response<RespBody> {
    let refused = || {
        api_error(
            StatusCode::FORBIDDEN,
            "InvalidStateTransition",
            "Invalid state transition: init/error after initialization",
        )
    };
    // refused before the document is read (and then drained, not kept)
    if rt.initialized() {
        drain(req.into_body()).await;
        return refused();
    }
    let (parts, body) = req.into_parts();
    let (e, answer) = read_report(&parts.headers, body).await;
    let mut s = rt.slot();
    if s.initialized {
        return refused();
    }
    match s.pending.take() {
        Some(a) => a.finish(Finished::replace(Err(e))),
        None => s.init_error = Some(e),
    }
    answer
}

fn register_extension(rt: &Runtime) -> Response<RespBody> {
    let id = uuid();
    let mut r = json_response(
        StatusCode::OK,
        &json!({
            "functionName": rt.function_name,
            "functionVersion": "$LATEST",
            "handler": rt.handler,
        }),
    );
    if let Ok(v) = HeaderValue::from_str(&id) {
        r.headers_mut().insert("lambda-extension-identifier", v);
    }
    r
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// The status line of the answer to `method path` on a fresh connection, or `None` if
    /// none came within a minute (of the paused clock)
    async fn status(addr: std::net::SocketAddr, method: &str, path: &str) -> Option<String> {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
        s.write_all(head.as_bytes()).await.unwrap();
        let mut got = Vec::new();
        let read = async {
            let mut buf = [0; 1024];
            while !got.windows(2).any(|w| w == b"\r\n") {
                let n = s.read(&mut buf).await.unwrap();
                assert!(n > 0, "closed without an answer: {method} {path}");
                got.extend_from_slice(&buf[..n]);
            }
        };
        tokio::time::timeout(Duration::from_secs(60), read)
            .await
            .ok()?;
        let line = got.split(|b| *b == b'\r').next().unwrap();
        Some(String::from_utf8_lossy(line).into_owned())
    }

    /// Each route answers its own method only; the extension event long poll never answers
    #[tokio::test(start_paused = true)]
    async fn routes_answer_their_own_method() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let rt = Arc::new(Runtime::new("f".to_owned(), String::new()));
        let server = tokio::spawn(serve(listener, rt));
        let not_found = Some("HTTP/1.1 404 Not Found".to_owned());
        for (method, path) in [
            ("POST", "/2018-06-01/runtime/invocation/next"),
            ("GET", "/2018-06-01/runtime/init/error"),
            ("GET", "/2018-06-01/runtime/invocation/abc/response"),
            ("GET", "/2018-06-01/runtime/invocation/abc/error"),
            ("POST", "/2018-06-01/runtime/invocation//response"),
            ("GET", "/2020-01-01/extension/register"),
            ("POST", "/2020-01-01/extension/event/next"),
            ("GET", "/2018-06-01/runtime/invocation/abc/other"),
        ] {
            assert_eq!(
                status(addr, method, path).await,
                not_found,
                "{method} {path}"
            );
        }
        let unknown = Some("HTTP/1.1 400 Bad Request".to_owned());
        for path in ["response", "error"] {
            let path = format!("/2018-06-01/runtime/invocation/abc/{path}");
            assert_eq!(status(addr, "POST", &path).await, unknown, "{path}");
        }
        let registered = status(addr, "POST", "/2020-01-01/extension/register").await;
        assert_eq!(registered.as_deref(), Some("HTTP/1.1 200 OK"));
        assert_eq!(
            status(addr, "GET", "/2020-01-01/extension/event/next").await,
            None
        );
        assert_eq!(
            status(addr, "GET", "/2018-06-01/runtime/invocation/next").await,
            None
        );
        server.abort();
    }

    #[test]
    fn the_deadline_header_fits_every_runtime() {
        let now = || {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis()
        };
        let before = now();
        let d = u128::from(deadline_ms(Duration::from_secs(3)));
        assert!(d >= before + 3000 && d <= now() + 3000, "{d}");
        assert_eq!(deadline_ms(Duration::MAX), i64::MAX.unsigned_abs());
    }
}
