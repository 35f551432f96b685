//! Request handling: routing, validation, auth, dispatch to functions

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write as _;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use invoke_proto::{BuildError, InvocationType, InvokeParams, LogType};
use invoke_proto::{MAX_PAYLOAD_LEN, parse_function_name};
use tokio::sync::{Semaphore, mpsc};

use crate::auth::Auth;
use crate::body::{FrameBody, RespBody, full};
use crate::errors::ServiceFault;
use crate::fault::Faults;
use crate::function::{FunctionError, Handler, Invocation, LogTail, Output, ResponseStream};

/// Largest buffered (`Invoke`) response: 6 MiB + 100 bytes, as the service enforces
const MAX_BUFFERED_RESPONSE: usize = 6 * 1024 * 1024 + 100;
/// The account id in the ARNs the emulator reports
pub(crate) const ACCOUNT: &str = "123456789012";

/// How a hosted function runs
#[derive(Debug, Clone)]
pub struct FunctionConfig {
    /// Concurrent invocations allowed; more get 429 `TooManyRequestsException`
    pub concurrency: Option<usize>,
    /// Invocation timeout (the function is failed with `Sandbox.Timedout`)
    pub timeout: Duration,
    /// Faults applied to every invocation
    pub faults: Faults,
    /// Throttle this many requests before serving normally
    pub throttle_next: u32,
    /// Qualifiers (versions, aliases) accepted besides `$LATEST`
    pub qualifiers: Vec<String>,
}

impl Default for FunctionConfig {
    fn default() -> Self {
        Self {
            concurrency: None,
            timeout: Duration::from_secs(900),
            faults: Faults::default(),
            throttle_next: 0,
            qualifiers: Vec::new(),
        }
    }
}

pub(crate) struct FunctionEntry {
    pub(crate) handler: Arc<dyn Handler>,
    pub(crate) config: FunctionConfig,
    permits: Option<Arc<Semaphore>>,
    throttle_left: AtomicU32,
}

impl FunctionEntry {
    pub(crate) fn new(handler: Arc<dyn Handler>, config: FunctionConfig) -> Self {
        Self {
            permits: config.concurrency.map(|n| Arc::new(Semaphore::new(n))),
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
}

impl Shared {
    fn log(&self, line: &str) {
        if !self.quiet {
            // A closed stderr must not take the server down
            let _ = writeln!(std::io::stderr(), "{line}");
        }
    }
}

pub(crate) async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<RespBody>, Infallible> {
    let request_id = crate::ids::uuid();
    let path = req.uri().path().to_owned();
    let route = if req.method() != Method::POST {
        None
    } else if let Some(name) = segment(
        &path,
        "/2021-11-15/functions/",
        "/response-streaming-invocations",
    ) {
        Some((name, true))
    } else {
        segment(&path, "/2015-03-31/functions/", "/invocations").map(|n| (n, false))
    };
    let Some((name, streaming)) = route else {
        let f = ServiceFault::new(
            404,
            "UnknownOperationException",
            format!("no operation at {} {path}", req.method()),
        );
        return Ok(f.response(&request_id));
    };
    let started = Instant::now();
    match invoke(
        &shared,
        req,
        name.to_owned(),
        streaming,
        &request_id,
        started,
    )
    .await
    {
        Ok(resp) => Ok(resp),
        Err(fault) => {
            shared.log(&format!(
                "{request_id} {} {} -> {} {}: {}",
                if streaming {
                    "InvokeWithResponseStream"
                } else {
                    "Invoke"
                },
                percent_decode(name).unwrap_or_default(),
                fault.status,
                fault.code,
                fault.message
            ));
            Ok(fault.response(&request_id))
        }
    }
}

/// The `{FunctionName}` segment of `path` between `prefix` and `suffix`
fn segment<'a>(path: &'a str, prefix: &str, suffix: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(prefix)?.strip_suffix(suffix)?;
    (!rest.is_empty() && !rest.contains('/')).then_some(rest)
}

/// Percent-decodes a URI component; `None` on a malformed escape or non-UTF-8 result
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn header<'a>(req: &'a http::request::Parts, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

/// The percent-decoded value of query parameter `key`
fn query_param(query: Option<&str>, key: &str) -> Result<Option<String>, ServiceFault> {
    let Some(raw) = query.and_then(|q| {
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == key).then_some(v)
        })
    }) else {
        return Ok(None);
    };
    percent_decode(raw).map(Some).ok_or_else(|| {
        ServiceFault::invalid_parameter(format!("{key} is not valid percent-encoded UTF-8"))
    })
}

#[allow(clippy::too_many_lines)]
async fn invoke(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    raw_name: String,
    streaming: bool,
    request_id: &str,
    started: Instant,
) -> Result<Response<RespBody>, ServiceFault> {
    let (parts, body) = req.into_parts();
    let name = percent_decode(&raw_name).ok_or_else(|| {
        ServiceFault::invalid_parameter("FunctionName is not a valid percent-encoded UTF-8 string")
    })?;
    // The body is needed for the signature check; read at most the request limit
    let payload = match Limited::new(body, MAX_PAYLOAD_LEN).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(ServiceFault::new(
                413,
                "RequestTooLargeException",
                format!(
                    "Request must be smaller than {MAX_PAYLOAD_LEN} bytes for the InvokeWithResponseStream operation"
                ),
            ));
        }
        Err(e) => {
            return Err(ServiceFault::invalid_parameter(format!(
                "could not read the request body: {e}"
            )));
        }
    };
    shared.auth.check(&parts, &payload, SystemTime::now())?;
    if let Some(ct) = header(&parts, "content-type") {
        let media = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !matches!(
            media.as_str(),
            "" | "application/octet-stream"
                | "binary/octet-stream"
                | "application/json"
                | "application/x-amz-json-1.1"
        ) {
            return Err(ServiceFault::new(
                415,
                "UnsupportedMediaTypeException",
                format!("Unsupported content type: {ct}"),
            ));
        }
    }
    let mut params = InvokeParams::new(name.clone(), payload.clone());
    match header(&parts, "x-amz-invocation-type") {
        None => {}
        Some("RequestResponse") => params = params.invocation_type(InvocationType::RequestResponse),
        Some("DryRun") => params = params.invocation_type(InvocationType::DryRun),
        Some("Event") if !streaming => {}
        Some(other) => {
            return Err(ServiceFault::invalid_parameter(format!(
                "1 validation error detected: Value '{other}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [RequestResponse, DryRun]"
            )));
        }
    }
    let log_tail = match header(&parts, "x-amz-log-type") {
        None | Some("None") => false,
        Some("Tail") => {
            params = params.log_type(LogType::Tail);
            true
        }
        Some(other) => {
            return Err(ServiceFault::invalid_parameter(format!(
                "1 validation error detected: Value '{other}' at 'logType' failed to satisfy constraint: Member must satisfy enum value set: [None, Tail]"
            )));
        }
    };
    let mut client_context = None;
    if let Some(cc) = header(&parts, "x-amz-client-context") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(cc.trim())
            .ok()
            .and_then(|d| String::from_utf8(d).ok())
            .filter(|t| serde_json::from_str::<serde_json::Value>(t).is_ok_and(|v| v.is_object()))
            .ok_or_else(|| {
                ServiceFault::invalid_parameter(
                    "Client context must be a valid Base64-encoded JSON object.",
                )
            })?;
        params = params.client_context(decoded.clone());
        client_context = Some(decoded);
    }
    let qualifier = query_param(parts.uri.query(), "Qualifier")?;
    if let Some(q) = &qualifier {
        params = params.qualifier(q.clone());
    }
    let tenant_id = header(&parts, "x-amz-tenant-id").map(str::to_owned);
    if let Some(t) = &tenant_id {
        params = params.tenant_id(t.clone());
    }
    params.validate().map_err(|e| match e {
        BuildError::TooLong {
            parameter: invoke_proto::Parameter::Payload,
            ..
        } => ServiceFault::new(413, "RequestTooLargeException", e.to_string()),
        e => ServiceFault::invalid_parameter(e.to_string()),
    })?;

    // Resolve the function and its qualifier
    let parsed = parse_function_name(&name)
        .ok_or_else(|| ServiceFault::invalid_parameter("invalid FunctionName"))?;
    let qualifier = qualifier.or_else(|| parsed.qualifier.map(str::to_owned));
    let region = parsed.region.unwrap_or(&shared.region);
    let mut arn = format!("arn:aws:lambda:{region}:{ACCOUNT}:function:{}", parsed.name);
    let entry = shared
        .functions
        .get(parsed.name)
        .ok_or_else(|| ServiceFault::not_found(&arn))?;
    if let Some(q) = &qualifier {
        arn = format!("{arn}:{q}");
        if q != "$LATEST" && !entry.config.qualifiers.iter().any(|x| x == q) {
            return Err(ServiceFault::not_found(&arn));
        }
    }
    let executed_version = match qualifier.as_deref() {
        Some(q) if q.bytes().all(|b| b.is_ascii_digit()) => q.to_owned(),
        _ => "$LATEST".to_owned(),
    };
    if shared.require_json
        && !payload.is_empty()
        && serde_json::from_slice::<serde_json::Value>(&payload).is_err()
    {
        return Err(ServiceFault::new(
            400,
            "InvalidRequestContentException",
            "Could not parse request body into json: Could not parse payload into json",
        ));
    }
    if params.get_invocation_type() == Some(InvocationType::DryRun) {
        shared.log(&format!("{request_id} DryRun {} -> 204", parsed.name));
        return Ok(Response::builder()
            .status(StatusCode::NO_CONTENT)
            .header("x-amzn-RequestId", request_id)
            .header("X-Amz-Executed-Version", executed_version)
            .body(full(Bytes::new()))
            .expect("valid response"));
    }

    // Faults and throttling
    let mut faults = entry.config.faults.clone();
    if let Some(spec) = header(&parts, "x-emulator-fault") {
        faults = faults.merge(&Faults::parse(spec).map_err(ServiceFault::invalid_parameter)?);
    }
    let throttled = faults.throttle
        || entry
            .throttle_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
    if throttled {
        return Err(ServiceFault::throttled("CallerRateLimitExceeded"));
    }
    let permit = match &entry.permits {
        None => None,
        Some(sem) => Some(Arc::clone(sem).try_acquire_owned().map_err(|_| {
            ServiceFault::throttled("ReservedFunctionConcurrentInvocationLimitExceeded")
        })?),
    };

    // Run the function
    let invocation = Invocation {
        request_id: request_id.to_owned(),
        function_name: parsed.name.to_owned(),
        invoked_function_arn: arn,
        payload: if payload.is_empty() {
            Bytes::from_static(b"{}")
        } else {
            payload
        },
        client_context,
        tenant_id,
        timeout: entry.config.timeout,
    };
    let (tx, mut rx) = mpsc::channel(128);
    let log = Arc::new(Mutex::new(LogTail::default()));
    let out = ResponseStream::new(tx.clone(), Arc::clone(&log));
    let handler = Arc::clone(&entry.handler);
    let timeout = entry.config.timeout;
    let id = request_id.to_owned();
    tokio::spawn(async move {
        let _permit = permit;
        let result = match tokio::time::timeout(timeout, handler.call(invocation, out)).await {
            Ok(r) => r,
            Err(_) => Err(FunctionError::new(
                "Sandbox.Timedout",
                format!(
                    "RequestId: {id} Error: Task timed out after {:.2} seconds",
                    timeout.as_secs_f64()
                ),
            )),
        };
        let _ = tx.send(Output::Done(result)).await;
    });

    // The head waits for the function's content type, or its first output
    let first = rx.recv().await;
    let content_type = match &first {
        Some(Output::Head { content_type }) => content_type.clone(),
        _ => "application/octet-stream".to_owned(),
    };
    let head = Response::builder()
        .status(StatusCode::OK)
        .header("x-amzn-RequestId", request_id)
        .header("X-Amz-Executed-Version", &executed_version);
    let fname = parsed.name.to_owned();
    let id = request_id.to_owned();
    let logger = Arc::clone(shared);
    let on_done = move |result: &Result<(), FunctionError>, bytes: u64| {
        let outcome = match result {
            Ok(()) => "ok".to_owned(),
            Err(e) => format!("function error {}: {}", e.error_type, e.error_message),
        };
        logger.log(&format!(
            "{id} {} {fname} -> 200, {bytes} payload bytes in {:.1} ms, {outcome}",
            if streaming {
                "InvokeWithResponseStream"
            } else {
                "Invoke"
            },
            started.elapsed().as_secs_f64() * 1000.0
        ));
    };
    if streaming {
        let body = FrameBody::new(
            first.filter(|o| !matches!(o, Output::Head { .. })),
            rx,
            faults,
            log_tail.then_some(log),
            shared.max_response,
            Box::new(on_done),
        );
        return Ok(head
            .header("content-type", content_type)
            .body(http_body_util::BodyExt::boxed(body))
            .expect("valid response"));
    }
    // Buffered Invoke: collect everything
    let mut buf = BytesMut::new();
    let mut next = first;
    let result = loop {
        match next {
            Some(Output::Head { .. }) => {}
            Some(Output::Chunk(c)) => {
                if buf.len() + c.len() > MAX_BUFFERED_RESPONSE {
                    rx.close();
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
                    "Runtime.ExitError",
                    "the function ended without a result",
                ));
            }
        }
        next = rx.recv().await;
    };
    on_done(&result, buf.len() as u64);
    let mut head = head.header("content-type", content_type);
    if log_tail {
        let tail = log.lock().map(|l| l.contents()).unwrap_or_default();
        head = head.header(
            "X-Amz-Log-Result",
            base64::engine::general_purpose::STANDARD.encode(tail),
        );
    }
    let body = match result {
        Ok(()) => buf.freeze(),
        Err(e) => {
            head = head.header("X-Amz-Function-Error", "Unhandled");
            Bytes::from(e.details())
        }
    };
    Ok(head.body(full(body)).expect("valid response"))
}
