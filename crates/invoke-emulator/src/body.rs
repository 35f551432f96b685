//! The streamed response body: function output -> event-stream messages (encoded by
//! `invoke-proto`), with injected faults

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame, SizeHint};
use invoke_proto::{InvokeComplete, ServiceError, ServiceErrorKind, encode_payload_chunk};

use crate::fault::Faults;
use crate::function::{EXIT_ERROR, FunctionError, LogTail, Output, OutputRx, UNHANDLED};

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
    /// The function's result, once it ended
    result: Option<Result<(), FunctionError>>,
    /// Why the queued frames end the stream without its `InvokeComplete` (an injected
    /// exception)
    cut_by: Option<&'static str>,
    /// An output received before the body started
    first: Option<Output>,
    /// The `close-after` limit was reached and the connection given a chance to flush
    cut_armed: bool,
    /// Called once, when the stream ended (see [`StreamEnd`]); taken then
    on_end: Option<OnEnd>,
}

/// How a stream ended, for its log line
#[derive(Debug)]
pub(crate) struct StreamEnd<'a> {
    /// The function's result, if it had ended
    pub(crate) result: Option<&'a Result<(), FunctionError>>,
    /// Why the stream ended without its `InvokeComplete` (a fault, the connection closed),
    /// if it did
    pub(crate) cut: Option<&'a str>,
    /// Body bytes sent
    pub(crate) sent: u64,
    /// Payload bytes the function streamed
    pub(crate) payload: u64,
}

/// Called once when a stream ends: its last frame handed to hyper, cut by a fault, or the
/// body dropped before its end (the client went away, or the emulator stopped)
pub(crate) type OnEnd = Box<dyn FnOnce(StreamEnd<'_>) + Send + Sync>;

/// Called once when the function ends, with its result and the payload bytes it streamed
pub(crate) type OnDone = Box<dyn FnOnce(&Result<(), FunctionError>, u64) + Send + Sync>;

impl FrameBody {
    pub(crate) fn new(
        first: Option<Output>,
        rx: OutputRx,
        faults: Faults,
        log: Option<Arc<Mutex<LogTail>>>,
        max_payload: u64,
        on_end: OnEnd,
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
            result: None,
            cut_by: None,
            on_end: Some(on_end),
        }
    }

    fn finish(&mut self, result: Result<(), FunctionError>) {
        let log = self
            .log
            .as_ref()
            .and_then(|l| l.lock().ok().map(|l| l.contents()));
        self.queue
            .push_back(invoke_complete(&result, log.as_deref()));
        self.result = Some(result);
        self.state = State::Finished;
        self.rx.close();
    }

    /// Ends the body after what is queued, with no `InvokeComplete`, for the reason `why`
    fn end_without_complete(&mut self, why: &'static str) {
        self.state = State::Finished;
        self.cut_by = Some(why);
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
            self.finish(Err(e));
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
            self.after_write();
        }
    }

    /// The faults that follow the first write, and the delay after each
    fn after_write(&mut self) {
        if self.chunks == 1 {
            if self.faults.exception {
                self.queue.push_back(exception(&ServiceError::new(
                    ServiceErrorKind::Service,
                    "injected fault: exception mid-stream",
                )));
                self.end_without_complete("injected fault: exception mid-stream");
            } else if self.faults.end_early {
                // the body's end follows the chunk: a clean end, with no InvokeComplete
                self.end_without_complete("injected fault: ended without InvokeComplete");
            } else if self.faults.stall_mid_frame {
                let half = invoke_complete(&Ok(()), None);
                self.queue.push_back(half.slice(..half.len() / 2));
                self.state = State::Stalled;
            } else if self.faults.oversize {
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
        if let Some(d) = self.faults.chunk_delay {
            self.delay = Some(Box::pin(tokio::time::sleep(d)));
        }
    }

    /// Reports, once, that the stream ended: `cut` says why if it ended without its
    /// `InvokeComplete`
    fn end(&mut self, cut: Option<&str>) {
        if let Some(f) = self.on_end.take() {
            f(StreamEnd {
                result: self.result.as_ref(),
                cut,
                sent: self.sent,
                payload: self.payload,
            });
        }
    }
}

impl Drop for FrameBody {
    fn drop(&mut self) {
        // (a stream that ended reported it already)
        self.end(Some(if self.state == State::Stalled {
            "injected stall, then the connection closed"
        } else {
            "connection closed mid-stream"
        }));
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
                        this.end(Some("injected fault: connection closed"));
                        return Poll::Ready(Some(Err(Cut("injected fault: connection closed"))));
                    }
                    if (b.len() as u64) > left {
                        let rest = b.split_off(left as usize);
                        this.queue.push_front(rest);
                    }
                }
                this.sent += b.len() as u64;
                // the last frame: hyper drops the body once it has it (`is_end_stream`)
                if this.is_end_stream() {
                    this.end(this.cut_by);
                }
                return Poll::Ready(Some(Ok(Frame::data(b))));
            }
            match this.state {
                State::Finished => {
                    this.end(this.cut_by);
                    return Poll::Ready(None);
                }
                State::Stalled => {
                    let ends = this.stall_ends.get_or_insert_with(|| {
                        Box::pin(tokio::time::sleep(crate::FunctionConfig::MAX_TIMEOUT))
                    });
                    if ends.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    this.end(Some("injected stall: given up"));
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
                Poll::Ready(Some(Output::Done(r))) => this.finish(r),
                Poll::Ready(None) => this.finish(Err(FunctionError::new(
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::function::{ResponseStream, output_channel};

    /// What a stream reported of its end: (the function's result was known, why it was cut,
    /// body bytes sent)
    type Ends = Arc<Mutex<Vec<(bool, Option<String>, u64)>>>;

    /// A body with the `stall` fault, and its function's first write
    async fn stalled_after_a_write() -> (FrameBody, ResponseStream, Ends) {
        let faults = Faults {
            stall_mid_frame: true,
            ..Faults::default()
        };
        let (body, out, ends) = body(faults);
        out.write("first").await;
        (body, out, ends)
    }

    fn body(faults: Faults) -> (FrameBody, ResponseStream, Ends) {
        let (tx, rx) = output_channel();
        let ends = Ends::default();
        let seen = Arc::clone(&ends);
        let on_end: OnEnd = Box::new(move |end: StreamEnd<'_>| {
            let cut = end.cut.map(str::to_owned);
            seen.lock()
                .unwrap()
                .push((end.result.is_some(), cut, end.sent));
        });
        let body = FrameBody::new(None, rx, faults, None, u64::MAX, on_end);
        (body, ResponseStream::new(tx, Arc::default()), ends)
    }

    /// A stall that gives up ends the stream once, with its reason, and dropping the body
    /// afterwards reports nothing more
    #[tokio::test(start_paused = true)]
    async fn a_stall_given_up_reports_its_end_once() {
        let (mut body, _out, ends) = stalled_after_a_write().await;
        let mut sent = 0;
        let mut frames = 0;
        let cut = loop {
            // a few frames (the chunk, half a frame), then the cut: a body that keeps giving
            // frames fails the test instead of hanging it
            frames += 1;
            assert!(frames < 100, "no cut after {frames} frames");
            // the clock moves on by itself while nothing else is left to do
            let frame = tokio::time::timeout(Duration::from_secs(3600), body.frame())
                .await
                .expect("the stall gives up within 15 minutes")
                .expect("a frame or the cut");
            match frame {
                Ok(f) => sent += f.into_data().unwrap().len() as u64,
                Err(cut) => break cut,
            }
        };
        assert_eq!(cut.0, "injected stall: given up");
        drop(body);
        assert_eq!(
            *ends.lock().unwrap(),
            [(false, Some("injected stall: given up".to_owned()), sent)]
        );
    }

    /// A stalled stream whose client leaves reports that, naming the stall
    #[tokio::test]
    async fn a_stalled_stream_the_client_left_names_the_stall() {
        let (mut body, _out, ends) = stalled_after_a_write().await;
        // the chunk, then half a frame (each within 30 s, so a body that never gives them
        // fails the test instead of hanging it)
        for _ in 0..2 {
            tokio::time::timeout(Duration::from_secs(30), body.frame())
                .await
                .expect("a frame within 30 s")
                .unwrap()
                .unwrap();
        }
        drop(body);
        let ends = ends.lock().unwrap();
        assert_eq!(ends.len(), 1, "{ends:?}");
        assert_eq!(
            ends[0].1.as_deref(),
            Some("injected stall, then the connection closed")
        );
    }
}
