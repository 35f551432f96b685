//! The streamed response body: function output -> event-stream messages (encoded by
//! `invoke-proto`), with injected faults

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use crate::fault::Faults;
use crate::function::{EXIT_ERROR, FunctionError, LogTail, Output, OutputRx, UNHANDLED};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame, SizeHint};
use invoke_proto::{InvokeComplete, ServiceError, ServiceErrorKind, encode_payload_chunk};

/// Largest payload of one chunk event message; longer writes are split
pub const MAX_CHUNK_PAYLOAD: usize = 64 * 1024;

/// The error that cuts a response short (a fault, or the response-size limit)
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Cut(pub(crate) &'static str);

/// The body type of every response
pub(crate) type RespBody = http_body_util::combinators::BoxBody<Bytes, Cut>;

/// A complete body
pub(crate) fn full(b: impl Into<Bytes>) -> RespBody {
    http_body_util::Full::new(b.into())
        .map_err(|never| match never {})
        .boxed()
}

/// Encodes the final event for a function's result, with the log tail when asked
pub(crate) fn invoke_complete(result: &Result<(), FunctionError>, log: Option<&[u8]>) -> Bytes {
    let mut complete = match result {
        Ok(()) => InvokeComplete::success(),
        Err(e) => InvokeComplete::failure(UNHANDLED, e.details()),
    };
    if let Some(log) = log {
        complete = complete.with_log(log);
    }
    complete
        .to_message()
        .to_bytes()
        .expect("the final event is within the limits")
}

/// An in-stream exception message, as the service sends a modeled error mid-stream
pub(crate) fn exception(error: &ServiceError) -> Bytes {
    error
        .to_exception_message()
        .and_then(|m| m.to_bytes())
        .expect("a short code and message are within the limits")
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    Streaming,
    /// Everything queued is the last of it
    Finished,
    /// Hold the connection open, sending nothing more
    Stalled,
}

/// Streams a function's output as event-stream frames, applying [`Faults`]
///
/// A write is framed one chunk event ([`MAX_CHUNK_PAYLOAD`]) at a time, as hyper asks for
/// the next frame, and the next output is taken from the function only once the last one was
/// all framed: what the emulator holds for a client that does not read is the function's
/// queued output (bounded, see [`output_channel`](crate::function::output_channel)), the
/// write being framed (the function's own buffer, not a copy), one frame, and hyper's write
/// buffer.
pub(crate) struct FrameBody {
    rx: OutputRx,
    faults: Faults,
    log: Option<Arc<Mutex<LogTail>>>,
    queue: VecDeque<Bytes>,
    /// What is left to frame of the write taken last
    pending: Bytes,
    /// Chunk events framed
    frames: u64,
    state: State,
    /// Body bytes sent
    sent: u64,
    /// Function bytes streamed
    payload: u64,
    max_payload: u64,
    chunks: u64,
    delay: Option<Pin<Box<tokio::time::Sleep>>>,
    /// When a stalled body gives up and closes the connection: after Lambda's longest run
    /// ([`FunctionConfig::MAX_TIMEOUT`](crate::FunctionConfig::MAX_TIMEOUT)), as a truncated
    /// stream
    stall_ends: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Called once, with the result and the payload bytes, when the function ends
    on_done: Option<OnDone>,
    /// An output received before the body started
    first: Option<Output>,
    /// The `close-after` limit was reached and the connection given a chance to flush
    cut_armed: bool,
    /// The body ended (completely, or cut by a fault on purpose)
    ended: bool,
    /// Called once if the stream ends before its `InvokeComplete`: the body dropped (the
    /// connection closed mid-stream) or an injected fault ended it
    on_cut_off: Option<OnCutOff>,
}

/// Called once when a stream ends without its `InvokeComplete`, with why, the body bytes
/// sent and the payload bytes the function had streamed by then
pub(crate) type OnCutOff = Box<dyn FnOnce(&str, u64, u64) + Send + Sync>;

/// Called once when the function ends, with its result and the payload bytes it streamed
pub(crate) type OnDone = Box<dyn FnOnce(&Result<(), FunctionError>, u64) + Send + Sync>;

impl FrameBody {
    pub(crate) fn new(
        first: Option<Output>,
        rx: OutputRx,
        faults: Faults,
        log: Option<Arc<Mutex<LogTail>>>,
        max_payload: u64,
        on_done: OnDone,
    ) -> Self {
        Self {
            first,
            cut_armed: false,
            rx,
            faults,
            log,
            queue: VecDeque::new(),
            pending: Bytes::new(),
            frames: 0,
            state: State::Streaming,
            sent: 0,
            payload: 0,
            max_payload,
            chunks: 0,
            delay: None,
            stall_ends: None,
            on_done: Some(on_done),
            ended: false,
            on_cut_off: None,
        }
    }

    /// Calls `f` if the body is dropped before its end (the client went away, or the
    /// emulator stopped, mid-stream) or an injected fault ends it
    pub(crate) fn on_cut_off(mut self, f: OnCutOff) -> Self {
        self.on_cut_off = Some(f);
        self
    }

    fn finish(&mut self, result: &Result<(), FunctionError>) {
        if let Some(f) = self.on_done.take() {
            f(result, self.payload);
        }
        let log = self
            .log
            .as_ref()
            .and_then(|l| l.lock().ok().map(|l| l.contents()));
        self.queue
            .push_back(invoke_complete(result, log.as_deref()));
        self.state = State::Finished;
        self.rx.close();
    }

    fn on_chunk(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        self.payload += chunk.len() as u64;
        if self.payload > self.max_payload {
            let e = FunctionError::new(
                "Function.ResponseSizeTooLarge",
                format!(
                    "Response payload size exceeded maximum allowed payload size ({} bytes).",
                    self.max_payload
                ),
            );
            self.finish(&Err(e));
            return;
        }
        self.chunks += 1;
        self.pending = chunk;
        self.frame_pending();
    }

    /// Frames the next chunk event of the pending write; after its last, applies what follows
    /// a write
    fn frame_pending(&mut self) {
        let piece = self
            .pending
            .split_to(self.pending.len().min(MAX_CHUNK_PAYLOAD));
        let mut frame = BytesMut::new();
        encode_payload_chunk(&piece, &mut frame).expect("a 64 KiB chunk is within the limits");
        if self.faults.corrupt_crc && self.frames == 0 {
            let last = frame.len() - 1;
            frame[last] ^= 0xff;
        }
        self.frames += 1;
        self.queue.push_back(frame.freeze());
        if self.pending.is_empty() {
            self.after_chunk();
        }
    }

    /// The faults that follow the first write, and the delay after each
    fn after_chunk(&mut self) {
        let f = &self.faults;
        if self.chunks == 1 {
            if f.exception {
                self.queue.push_back(exception(&ServiceError::new(
                    ServiceErrorKind::Service,
                    "injected fault: exception mid-stream",
                )));
                self.state = State::Finished;
                self.rx.close();
            } else if f.stall_mid_frame {
                let half = invoke_complete(&Ok(()), None);
                self.queue.push_back(half.slice(..half.len() / 2));
                self.state = State::Stalled;
            } else if f.oversize {
                // A valid prelude announcing 25 MiB, over the 24 MiB + 128 KiB limit clients enforce
                let mut b = BytesMut::new();
                encode_payload_chunk(&[], &mut b).expect("an empty chunk is within the limits");
                b[0..4].copy_from_slice(&(25u32 << 20).to_be_bytes());
                let crc = crc32fast::hash(&b[0..8]);
                b[8..12].copy_from_slice(&crc.to_be_bytes());
                self.queue.push_back(b.freeze().slice(..12));
                self.state = State::Stalled;
            }
        }
        if let Some(d) = f.chunk_delay {
            self.delay = Some(Box::pin(tokio::time::sleep(d)));
        }
        if self.chunks == 1 && self.faults.exception {
            self.cut_off("injected fault: exception mid-stream");
        }
    }
}

impl FrameBody {
    /// Reports, once, that the stream ends without its `InvokeComplete`
    fn cut_off(&mut self, why: &str) {
        if let Some(f) = self.on_cut_off.take() {
            f(why, self.sent, self.payload);
        }
    }
}

impl Drop for FrameBody {
    fn drop(&mut self) {
        if !self.ended {
            self.cut_off("connection closed mid-stream");
        }
    }
}

impl Body for FrameBody {
    type Data = Bytes;
    type Error = Cut;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Cut>>> {
        let this = &mut *self;
        loop {
            if let Some(mut b) = this.queue.pop_front() {
                if let Some(limit) = this.faults.close_after {
                    let left = limit.saturating_sub(this.sent);
                    if left == 0 {
                        this.queue.push_front(b);
                        // Let the connection flush what was sent before cutting it
                        if !this.cut_armed {
                            this.cut_armed = true;
                            cx.waker().wake_by_ref();
                            return Poll::Pending;
                        }
                        this.ended = true;
                        this.cut_off("injected fault: connection closed");
                        return Poll::Ready(Some(Err(Cut("injected fault: connection closed"))));
                    }
                    if (b.len() as u64) > left {
                        let rest = b.split_off(left as usize);
                        this.queue.push_front(rest);
                    }
                }
                this.sent += b.len() as u64;
                return Poll::Ready(Some(Ok(Frame::data(b))));
            }
            match this.state {
                State::Finished => {
                    this.ended = true;
                    return Poll::Ready(None);
                }
                State::Stalled => {
                    let ends = this.stall_ends.get_or_insert_with(|| {
                        Box::pin(tokio::time::sleep(crate::FunctionConfig::MAX_TIMEOUT))
                    });
                    if ends.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    this.ended = true;
                    this.cut_off("injected stall: given up");
                    return Poll::Ready(Some(Err(Cut("injected stall: given up"))));
                }
                State::Streaming => {}
            }
            if !this.pending.is_empty() {
                this.frame_pending();
                continue;
            }
            if let Some(d) = &mut this.delay {
                if d.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.delay = None;
            }
            let next = match this.first.take() {
                Some(o) => Poll::Ready(Some(o)),
                None => this.rx.poll_recv(cx),
            };
            match next {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Output::Head { .. })) => {}
                Poll::Ready(Some(Output::Chunk(c))) => this.on_chunk(c),
                Poll::Ready(Some(Output::Done(r))) => this.finish(&r),
                Poll::Ready(None) => this.finish(&Err(FunctionError::new(
                    EXIT_ERROR,
                    "the function ended without a result",
                ))),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.state == State::Finished && self.queue.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
