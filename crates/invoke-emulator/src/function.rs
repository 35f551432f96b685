//! Functions the emulator hosts: the handler contract and the built-in functions

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};

use crate::body::MAX_CHUNK_PAYLOAD;

/// What a function sees of one invocation
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Invocation {
    /// The request id (`x-amzn-RequestId`, `Lambda-Runtime-Aws-Request-Id`)
    pub request_id: String,
    /// The function name the request resolved to
    pub function_name: String,
    /// The ARN as invoked (qualified when a qualifier was given)
    pub invoked_function_arn: String,
    /// The event; `{}` when the request carried an empty payload
    pub payload: Bytes,
    /// The client context, decoded from base64 (JSON text)
    pub client_context: Option<String>,
    /// `X-Amz-Tenant-Id`
    pub tenant_id: Option<String>,
    /// The caller's `X-Amzn-Trace-Id` (a process function's `Lambda-Runtime-Trace-Id`; a
    /// new one when the caller sent none)
    pub trace_id: Option<String>,
    /// Time left before the invocation times out
    pub timeout: Duration,
}

/// The error code a function failure is reported with (`ErrorCode` of the final event,
/// `X-Amz-Function-Error` of `Invoke`)
pub(crate) const UNHANDLED: &str = "Unhandled";

/// The error type of a function whose runtime process exited (or whose output ended without
/// a result)
pub(crate) const EXIT_ERROR: &str = "Runtime.ExitError";

/// The error type of an invocation (or a process's init) that ran out of time
pub(crate) const TIMED_OUT: &str = "Sandbox.Timedout";

/// A function failure, reported in the stream's final event as `ErrorCode: Unhandled` with
/// `ErrorDetails: {"errorType":..,"errorMessage":..}`, or with the error document a function
/// process reported, as it sent it
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionError {
    /// The error type (e.g. `Error`, `Runtime.ExitError`, `Sandbox.Timedout`)
    pub error_type: String,
    /// The error message
    pub error_message: String,
    /// The runtime's error document (JSON text, bounded), reported instead of one built from
    /// the type and the message
    document: Option<Arc<str>>,
}

impl FunctionError {
    /// A function error of `error_type` with `error_message`
    pub fn new(error_type: impl Into<String>, error_message: impl Into<String>) -> Self {
        Self {
            error_type: error_type.into(),
            error_message: error_message.into(),
            document: None,
        }
    }

    /// Reports `document` (valid JSON, checked by the caller) as the error details
    pub(crate) fn with_document(mut self, document: String) -> Self {
        self.document = Some(document.into());
        self
    }

    /// The `ErrorDetails` JSON text (and the body of a failed `Invoke`): the runtime's error
    /// document as it was sent, else `{"errorType":..,"errorMessage":..}`
    pub fn details(&self) -> String {
        match &self.document {
            Some(d) => d.to_string(),
            None => json!({"errorType": self.error_type, "errorMessage": self.error_message})
                .to_string(),
        }
    }

    /// `TYPE: MESSAGE` for a log line, the message cut to at most 512 bytes, control
    /// characters escaped (a multi-line or hostile message stays on its line)
    pub(crate) fn summary(&self) -> String {
        const MAX: usize = 512;
        let m = &self.error_message;
        let mut end = m.len().min(MAX);
        while !m.is_char_boundary(end) {
            end -= 1;
        }
        let mut out = String::new();
        crate::server::push_escaped(&mut out, self.error_type.chars());
        out.push_str(": ");
        crate::server::push_escaped(&mut out, m[..end].chars());
        if end < m.len() {
            out.push_str("... (");
            out.push_str(&m.len().to_string());
            out.push_str(" bytes)");
        }
        out
    }
}

/// A content type that is not a valid HTTP header value, refused by
/// [`ResponseStream::set_content_type`]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("content type {0:?} is not a valid HTTP header value")]
pub struct InvalidContentType(String);

/// What a running function sends to the invoking client
#[derive(Debug)]
pub(crate) enum Output {
    /// The response content type, before any chunk (default `application/octet-stream`)
    Head { content_type: HeaderValue },
    /// Bytes the function wrote
    Chunk(Bytes),
    /// The function returned
    Done(Result<(), FunctionError>),
}

/// Bytes of a function's output that may wait for its response at once (see
/// [`output_channel`])
///
/// Room for 15 writes of 64 KiB: with 256 KiB (3 of them) the function and the response took
/// turns at every frame, and `count` streamed 64 KiB chunks about 30% slower (`--bench
/// emulator`: 0.6 x the minimal server against 0.9 x).
const OUTPUT_BUDGET: usize = 1024 * 1024;

/// What a queued message counts for besides its bytes (its place in the queue, its buffer's
/// bookkeeping), so that a flood of tiny writes is bounded as well
const MESSAGE_COST: usize = 256;

/// What `output` counts for in [`OUTPUT_BUDGET`]: the function's result nothing (it is sent
/// once, and must never wait), the rest their bytes and [`MESSAGE_COST`], at most the whole
/// budget (a larger write waits until nothing else is queued)
fn cost(output: &Output) -> u32 {
    let bytes = match output {
        Output::Head { content_type } => content_type.len(),
        Output::Chunk(c) => c.len(),
        Output::Done(_) => return 0,
    };
    let cost = bytes.saturating_add(MESSAGE_COST).min(OUTPUT_BUDGET);
    u32::try_from(cost).unwrap_or(u32::MAX)
}

/// The way from a running function to its response, bounded in bytes: at most
/// [`OUTPUT_BUDGET`] of output (each write counted with [`MESSAGE_COST`]) waits to be taken
/// at once, or one larger write alone. A write beyond that waits until the response takes
/// what is queued, and the response takes the next write only once it sent the last one
/// (see [`FrameBody`](crate::body::FrameBody)), so a client that reads slowly, or not at
/// all, slows the function down instead of piling its output up in the emulator.
pub(crate) fn output_channel() -> (OutputTx, OutputRx) {
    let (tx, rx) = mpsc::unbounded_channel();
    let budget = Arc::new(Semaphore::new(OUTPUT_BUDGET));
    (
        OutputTx {
            tx,
            budget: Arc::clone(&budget),
        },
        OutputRx { rx, budget },
    )
}

/// The function's end of [`output_channel`]
#[derive(Debug, Clone)]
pub(crate) struct OutputTx {
    tx: mpsc::UnboundedSender<Output>,
    /// Bytes that may still be queued; closed once the receiver is
    budget: Arc<Semaphore>,
}

impl OutputTx {
    /// Queues `output` once the budget has room for it (always an await point); whether it
    /// was queued (not when the receiver closed or went away)
    async fn send(&self, output: Output) -> bool {
        match self.budget.acquire_many(cost(&output)).await {
            // given back by the receiver when it takes the message
            Ok(permit) => permit.forget(),
            Err(_) => return false,
        }
        self.tx.send(output).is_ok()
    }

    /// Queues the function's result at once, whatever is queued before it
    pub(crate) fn finish(&self, result: Result<(), FunctionError>) {
        let _ = self.tx.send(Output::Done(result));
    }

    /// Whether the receiver went away or closed
    fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Completes once the receiver went away or closed
    async fn closed(&self) {
        self.tx.closed().await;
    }
}

/// The response's end of [`output_channel`]
#[derive(Debug)]
pub(crate) struct OutputRx {
    rx: mpsc::UnboundedReceiver<Output>,
    budget: Arc<Semaphore>,
}

impl OutputRx {
    /// The next output, its room given back to the function
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Output>> {
        let polled = self.rx.poll_recv(cx);
        if let Poll::Ready(Some(output)) = &polled {
            self.budget.add_permits(cost(output) as usize);
        }
        polled
    }

    /// The next output; `None` once the function's end went away, or once closed and empty
    pub(crate) async fn recv(&mut self) -> Option<Output> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Takes no more output: a write waiting for room, and every later one, returns at once
    /// (what is queued can still be received)
    pub(crate) fn close(&mut self) {
        self.rx.close();
        self.budget.close();
    }
}

impl Drop for OutputRx {
    fn drop(&mut self) {
        // a write waiting for room must not wait for ever
        self.budget.close();
    }
}

/// Where a function writes its response; every write reaches the client as its own chunk
/// event (a write over [`MAX_CHUNK_PAYLOAD`] as several) as soon as the client takes what came
/// before: a write waits while 1 MiB of output waits for a slow client
#[derive(Debug, Clone)]
pub struct ResponseStream {
    tx: OutputTx,
    log: Arc<Mutex<LogTail>>,
}

impl ResponseStream {
    pub(crate) fn new(tx: OutputTx, log: Arc<Mutex<LogTail>>) -> Self {
        Self { tx, log }
    }

    /// Sets the response `Content-Type`; only before the first write
    ///
    /// # Errors
    ///
    /// `content_type` is not a valid HTTP header value (it holds a control character, for
    /// example); nothing is sent and the response keeps its content type.
    pub async fn set_content_type(
        &self,
        content_type: impl Into<String>,
    ) -> Result<(), InvalidContentType> {
        let content_type = content_type.into();
        let value = HeaderValue::try_from(content_type.as_str())
            .map_err(|_| InvalidContentType(content_type))?;
        self.tx
            .send(Output::Head {
                content_type: value,
            })
            .await;
        Ok(())
    }

    /// Streams `chunk` to the client
    ///
    /// Waits while the client is slow (backpressure): at most 1 MiB of the function's
    /// output waits for the client at once (or one larger write alone, once the client took
    /// what came before it). A client that went away does not stop a Rust function: like the
    /// real service, it runs to completion and its output is dropped. (A
    /// [`ProcessFunction`](crate::ProcessFunction)'s process is killed instead, to free its
    /// slot.)
    ///
    /// Always an await point: a function that writes in a loop (empty chunks, or to a client
    /// that went away) still lets its timeout and the emulator's shutdown end it.
    pub async fn write(&self, chunk: impl Into<Bytes>) {
        let chunk = chunk.into();
        let sent = !chunk.is_empty() && self.tx.send(Output::Chunk(chunk)).await;
        if !sent {
            tokio::task::yield_now().await;
        }
    }

    /// Whether the invoking client went away (its response was dropped or finished), so
    /// that what is written is dropped
    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Appends a line to the function's log (returned with `LogType: Tail`)
    pub fn log(&self, line: &str) {
        if let Ok(mut l) = self.log.lock() {
            l.push(line.as_bytes());
            l.push(b"\n");
        }
    }

    /// Appends text as it is (lines already ended) to the function's log
    pub(crate) fn log_text(&self, text: &str) {
        if let Ok(mut l) = self.log.lock() {
            l.push(text.as_bytes());
        }
    }

    /// Says that the function gets the invocation later than the call, when
    /// [`began`](Self::began) says so: until then its timeout does not run (a process
    /// function's wait for a process and the process's start, which its init timeout bounds)
    pub(crate) fn defer_clock(&self) {
        if let Ok(mut l) = self.log.lock() {
            l.deferred = true;
        }
    }

    /// Records that the function got the invocation only now (a process's `/next` handed it
    /// out): its timeout and `Duration` run from here, not from the call. `init` is how long
    /// the process this invocation started took to initialize (its `REPORT` line's
    /// `Init Duration`).
    pub(crate) fn began(&self, init: Option<Duration>) {
        if let Ok(mut l) = self.log.lock() {
            l.began = Some(tokio::time::Instant::now());
            l.init = init;
        }
    }

    /// Completes once the invoking client went away (its response was dropped or finished)
    pub(crate) async fn closed(&self) {
        self.tx.closed().await;
    }
}

/// The last bytes of a function's log, at most 4 KiB, and what its timeout and `REPORT` line
/// need to know from the handler
#[derive(Debug, Default)]
pub(crate) struct LogTail {
    buf: std::collections::VecDeque<u8>,
    /// When the function got the invocation, if later than the call
    /// ([`ResponseStream::began`])
    pub(crate) began: Option<tokio::time::Instant>,
    /// The function gets the invocation later than the call ([`ResponseStream::defer_clock`])
    deferred: bool,
    /// The initialization of the process a cold start began, for `Init Duration`
    pub(crate) init: Option<Duration>,
}

impl LogTail {
    /// Bytes `LogType: Tail` returns
    pub(crate) const MAX: usize = 4096;

    /// When the invocation's time began: when the function got it, `called` unless that is
    /// deferred; `None` while a deferred start has not come
    pub(crate) fn began(&self, called: tokio::time::Instant) -> Option<tokio::time::Instant> {
        match (self.began, self.deferred) {
            (Some(t), _) => Some(t),
            (None, true) => None,
            (None, false) => Some(called),
        }
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        let bytes = &bytes[bytes.len().saturating_sub(Self::MAX)..];
        let over = (self.buf.len() + bytes.len()).saturating_sub(Self::MAX);
        self.buf.drain(..over);
        self.buf.extend(bytes);
    }

    /// The kept bytes, from the first character boundary (a cut UTF-8 sequence at the front
    /// is skipped)
    pub(crate) fn contents(&self) -> Vec<u8> {
        let cut = self
            .buf
            .iter()
            .take(3)
            .take_while(|b| (**b & 0xC0) == 0x80)
            .count();
        self.buf.iter().skip(cut).copied().collect()
    }
}

/// The future a handler returns
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), FunctionError>> + Send>>;

/// A function body: an async closure that writes to a [`ResponseStream`]
pub trait Handler: Send + Sync + 'static {
    /// Runs one invocation
    fn call(&self, invocation: Invocation, out: ResponseStream) -> HandlerFuture;
}

impl<F, Fut> Handler for F
where
    F: Fn(Invocation, ResponseStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), FunctionError>> + Send + 'static,
{
    fn call(&self, invocation: Invocation, out: ResponseStream) -> HandlerFuture {
        Box::pin(self(invocation, out))
    }
}

/// The built-in functions, by name: `echo`, `count`, `fail`
pub fn builtin(name: &str) -> Option<Arc<dyn Handler>> {
    match name {
        "echo" => Some(Arc::new(echo)),
        "count" => Some(Arc::new(count)),
        "fail" => Some(Arc::new(fail)),
        _ => None,
    }
}

/// Names of the built-in functions
pub const BUILTINS: [&str; 3] = ["echo", "count", "fail"];

/// `echo`: streams the request payload back in chunks of at most 1 KiB
///
/// # Errors
///
/// Never.
pub async fn echo(inv: Invocation, out: ResponseStream) -> Result<(), FunctionError> {
    out.log(&format!("echo: {} bytes", inv.payload.len()));
    let mut rest = inv.payload;
    while !rest.is_empty() {
        let n = rest.len().min(1024);
        out.write(rest.split_to(n)).await;
    }
    Ok(())
}

/// Largest write of `count`: larger sizes are cut to it, so a request cannot make the
/// emulator allocate more
const COUNT_MAX_SIZE: usize = 16 << 20;

fn field(payload: &Value, name: &str) -> Result<u64, FunctionError> {
    match payload.get(name) {
        None | Some(Value::Null) => Ok(0),
        Some(v) => v.as_u64().ok_or_else(|| {
            FunctionError::new(
                "InvalidInput",
                format!("{name} must be a non-negative integer"),
            )
        }),
    }
}

fn parse(payload: &[u8]) -> Result<Value, FunctionError> {
    serde_json::from_slice(payload)
        .map_err(|e| FunctionError::new("InvalidInput", format!("payload is not JSON: {e}")))
}

/// `count`: payload `{"n":N,"size":S,"delay_ms":D}` -> N blocks of S bytes (S capped at
/// 16 MiB), D ms apart; byte `i` of the whole stream is `b'a' + i % 26`. Stops early once the
/// client went away.
///
/// A block is written [`MAX_CHUNK_PAYLOAD`] bytes at a time (the chunk events one write of S
/// bytes would make too): the function holds a pattern of that size, not of S. The
/// `delay-ms` fault follows each of these writes.
///
/// # Errors
///
/// `InvalidInput` if the payload is not such a JSON object.
pub async fn count(inv: Invocation, out: ResponseStream) -> Result<(), FunctionError> {
    let p = parse(&inv.payload)?;
    let (n, size, delay) = (field(&p, "n")?, field(&p, "size")?, field(&p, "delay_ms")?);
    let size = usize::try_from(size)
        .unwrap_or(usize::MAX)
        .min(COUNT_MAX_SIZE);
    out.log(&format!("count: {n} chunks of {size} bytes"));
    // The pattern repeats every 26 bytes: precompute one period-aligned buffer and slice it
    let piece = size.min(MAX_CHUNK_PAYLOAD);
    let pattern: Bytes = (0..piece + 26)
        .map(|i| b'a' + (i % 26) as u8)
        .collect::<Vec<u8>>()
        .into();
    let mut offset: u64 = 0;
    // empty writes send nothing: none are made (a huge N would only spin until the timeout)
    let n = if size == 0 { 0 } else { n };
    for k in 0..n {
        if k > 0 && delay > 0 && !out.is_closed() {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let mut left = size;
        while left > 0 {
            // no one would see the rest (nor would the stream limit let it through)
            if out.is_closed() {
                return Ok(());
            }
            let len = left.min(piece);
            let start = (offset % 26) as usize;
            out.write(pattern.slice(start..start + len)).await;
            offset += len as u64;
            left -= len;
        }
    }
    Ok(())
}

/// `fail`: payload `{"after":N}` -> N chunks of `chunk\n`, then a function error (the chunks
/// stop early once the client went away)
///
/// # Errors
///
/// Always: `Error` after the chunks, or `InvalidInput` for a bad payload.
pub async fn fail(inv: Invocation, out: ResponseStream) -> Result<(), FunctionError> {
    let p = parse(&inv.payload)?;
    let after = field(&p, "after")?;
    for _ in 0..after {
        if out.is_closed() {
            break;
        }
        out.write(Bytes::from_static(b"chunk\n")).await;
    }
    out.log("fail: failing on purpose");
    Err(FunctionError::new(
        "Error",
        format!("failed after {after} chunks"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The log keeps its last 4 KiB, from a character boundary: a character cut at the
    /// front (1 to 3 of its bytes left) is dropped, so the tail is valid UTF-8
    #[test]
    fn the_log_tail_keeps_its_last_4_kib_from_a_character_boundary() {
        for ch in ["é", "€", "𝄞"] {
            let width = ch.len();
            // `dots` ASCII bytes at the end move where the 4 KiB start in a character
            for dots in 0..width {
                let mut tail = LogTail::default();
                tail.push(ch.repeat(3000).as_bytes());
                tail.push(".".repeat(dots).as_bytes());
                let kept = tail.contents();
                let cut = (LogTail::MAX - dots) % width;
                assert_eq!(kept.len(), LogTail::MAX - cut, "{ch} then {dots} dots");
                let text = std::str::from_utf8(&kept).expect("valid UTF-8");
                assert!(text.starts_with(ch), "{ch} then {dots} dots");
            }
        }
    }

    fn invocation(payload: &'static str) -> Invocation {
        Invocation {
            request_id: "id".to_owned(),
            function_name: "f".to_owned(),
            invoked_function_arn: "arn:aws:lambda:us-east-1:123456789012:function:f".to_owned(),
            payload: Bytes::from_static(payload.as_bytes()),
            client_context: None,
            tenant_id: None,
            trace_id: None,
            timeout: Duration::from_secs(900),
        }
    }

    #[test]
    fn a_summary_stays_on_its_line_and_is_bounded() {
        let e = FunctionError::new("Type\nForged", "line one\nline two\u{1b}[31m");
        let s = e.summary();
        assert_eq!(s, "Type\\nForged: line one\\nline two\\u{1b}[31m");
        assert!(!s.chars().any(char::is_control));
        let long = FunctionError::new("E", "é".repeat(600));
        let s = long.summary();
        assert!(s.ends_with("... (1200 bytes)"), "{s}");
        assert_eq!(s.len(), "E: ".len() + 512 + "... (1200 bytes)".len());
        // byte 512 inside a character: cut before it
        let odd = FunctionError::new("E", format!("a{}", "é".repeat(600)));
        let s = odd.summary();
        assert_eq!(s.len(), "E: ".len() + 511 + "... (1201 bytes)".len(), "{s}");
    }

    /// Endless writes to a client that went away end at once (they used to spin without an
    /// await point, holding a worker thread until the process exited)
    #[tokio::test]
    async fn count_and_fail_stop_once_the_client_went_away() {
        let (tx, rx) = output_channel();
        drop(rx);
        let out = ResponseStream::new(tx, Arc::default());
        let endless = r#"{"n":18446744073709551615,"size":1}"#;
        count(invocation(endless), out.clone()).await.unwrap();
        let e = fail(invocation(r#"{"after":18446744073709551615}"#), out)
            .await
            .unwrap_err();
        assert_eq!(e.error_type, "Error");
    }

    /// With the clock paused, time moves only while every task waits: a timeout that fires
    /// shows that the writer is waiting
    #[tokio::test(start_paused = true)]
    async fn writes_wait_once_the_budget_is_queued_and_go_on_as_it_is_taken() {
        const WRITES: usize = 64;
        let wait = Duration::from_secs(60);
        let (tx, mut rx) = output_channel();
        let out = ResponseStream::new(tx, Arc::default());
        let mut writer = tokio::spawn(async move {
            for _ in 0..WRITES {
                out.write(vec![b'x'; MAX_CHUNK_PAYLOAD]).await;
            }
            // larger than the whole budget: it waits until nothing else is queued
            out.write(vec![b'y'; 4 * OUTPUT_BUDGET]).await;
        });
        let waiting = tokio::time::timeout(wait, &mut writer).await;
        assert!(waiting.is_err(), "the writer waits for room");
        // what is queued now, taken without letting the writer run
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut queued = 0;
        while let Poll::Ready(Some(Output::Chunk(c))) = rx.poll_recv(&mut cx) {
            queued += c.len();
        }
        assert!(queued <= OUTPUT_BUDGET, "{queued}");
        assert!(queued >= OUTPUT_BUDGET / 2, "{queued}");
        // taken as it comes, the rest arrives whole
        let mut taken = queued;
        while taken < WRITES * MAX_CHUNK_PAYLOAD {
            match rx.recv().await {
                Some(Output::Chunk(c)) => taken += c.len(),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(taken, WRITES * MAX_CHUNK_PAYLOAD);
        match rx.recv().await {
            Some(Output::Chunk(c)) => assert_eq!(c.len(), 4 * OUTPUT_BUDGET),
            other => panic!("{other:?}"),
        }
        writer.await.unwrap();
        // a writer waiting for room returns once the output is dropped
        let (tx, rx) = output_channel();
        let out = ResponseStream::new(tx, Arc::default());
        let mut writer = tokio::spawn(async move {
            for _ in 0..WRITES {
                out.write(vec![b'x'; MAX_CHUNK_PAYLOAD]).await;
            }
        });
        let waiting = tokio::time::timeout(wait, &mut writer).await;
        assert!(waiting.is_err(), "the writer waits for room");
        drop(rx);
        tokio::time::timeout(wait, writer)
            .await
            .expect("the writer returned")
            .unwrap();
    }

    /// `delay_ms` falls between blocks, not before the first (with the clock paused, time
    /// moves only by the sleeps)
    #[tokio::test(start_paused = true)]
    async fn count_waits_its_delay_between_blocks() {
        let (tx, mut rx) = output_channel();
        let out = ResponseStream::new(tx, Arc::default());
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(Output::Chunk(c)) = rx.recv().await {
                got.extend_from_slice(&c);
            }
            got
        });
        let start = tokio::time::Instant::now();
        let inv = invocation(r#"{"n":3,"size":4,"delay_ms":1000}"#);
        count(inv, out).await.unwrap();
        let took = start.elapsed();
        assert!(
            took >= Duration::from_secs(2) && took < Duration::from_secs(3),
            "{took:?}"
        );
        assert_eq!(reader.await.unwrap(), b"abcdefghijkl");
    }

    /// Empty writes are await points too: a timeout around the function ends it
    #[tokio::test]
    async fn empty_writes_let_a_timeout_end_the_function() {
        let (tx, _rx) = output_channel();
        let out = ResponseStream::new(tx, Arc::default());
        let endless = async {
            loop {
                out.write(Bytes::new()).await;
            }
        };
        let ran = tokio::time::timeout(Duration::from_millis(50), endless).await;
        assert!(ran.is_err(), "the timeout ended it");
        // `count` makes no empty writes at all: any number of them ends at once
        let none = invocation(r#"{"n":18446744073709551615,"size":0}"#);
        count(none, out.clone()).await.unwrap();
    }
}
