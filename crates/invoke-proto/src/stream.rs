//! `InvokeStream`: response body bytes in, Lambda events out

use std::collections::VecDeque;
use std::fmt;

use base64::Engine as _;
use bytes::Bytes;
use serde_json::Value;

use crate::error::DecodeError;
use crate::eventstream::{BlockCache, Limits, MESSAGE_OVERHEAD, Message, MessageDecoder};
use crate::response::ResponseMeta;
use crate::service_error::{ServiceError, excerpt};

/// One event of the response stream
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Bytes the function wrote; a slice of the received body (zero copy). Chunk boundaries
    /// carry no meaning: concatenate.
    ///
    /// [`InvokeStream`] may hand one message out as several events: a `PayloadChunk`
    /// message of 16 KiB or more, with the headers of the `PayloadChunk` before it, that
    /// arrived split over two to four body chunks comes as its slices of those chunks, once
    /// its CRC was checked over all of them, instead of being copied together.
    /// [`EventDecoder`] gives one event per message.
    PayloadChunk(Bytes),
    /// The last event: the invocation finished, successfully or not
    InvokeComplete(InvokeComplete),
    /// An `event` message of a type this crate does not know, passed through untouched
    /// (forward compatibility: the stream goes on)
    Unknown {
        /// Its `:event-type`
        event_type: String,
        /// The whole message
        message: Message,
    },
}

/// The `InvokeComplete` event: how the invocation ended
///
/// Each field is the payload's string; a field of another JSON type is kept as its JSON
/// text (`"ErrorCode":5` gives `"5"`), so no unexpected form loses a failure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvokeComplete {
    /// Present when the function failed (`Unhandled`, or a runtime's error type)
    pub error_code: Option<String>,
    /// Details of the failure, usually JSON text; do not parse strictly
    pub error_details: Option<String>,
    /// Base64 of the last 4 KB of the execution log, with `LogType::Tail`
    pub log_result: Option<String>,
}

impl InvokeComplete {
    /// Whether the function failed: any non-empty `ErrorCode`
    pub fn is_error(&self) -> bool {
        self.error_code.as_deref().is_some_and(|c| !c.is_empty())
    }

    /// The log tail decoded from base64
    ///
    /// # Errors
    ///
    /// [`StreamError::InvalidLogResult`] if `LogResult` is not valid base64.
    pub fn decoded_log(&self) -> Result<Option<Vec<u8>>, StreamError> {
        self.log_result
            .as_deref()
            .map(|l| {
                base64::engine::general_purpose::STANDARD
                    .decode(l.trim())
                    .map_err(|_| StreamError::InvalidLogResult)
            })
            .transpose()
    }

    fn parse(payload: &[u8]) -> Result<Self, StreamError> {
        let bad = || StreamError::InvalidInvokeComplete {
            excerpt: excerpt(payload),
        };
        // an empty object, what a successful invocation usually sends, needs no JSON parser
        if payload.iter().all(u8::is_ascii_whitespace) || payload == b"{}" {
            return Ok(Self::default());
        }
        let json: Value = serde_json::from_slice(payload).map_err(|_| bad())?;
        let obj = json.as_object().ok_or_else(bad)?;
        // the fields' format is unconfirmed (protocol.md §4.8): a field that is not a string
        // is kept as its JSON text, so that an `ErrorCode` of another type still marks a
        // failure and structured `ErrorDetails` still reach the caller
        let field = |n: &str| match obj.get(n) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(crate::json::to_text(other)),
        };
        Ok(Self {
            error_code: field("ErrorCode"),
            error_details: field("ErrorDetails"),
            log_result: field("LogResult"),
        })
    }
}

/// A failure of the response stream; terminal
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamError {
    /// The event-stream framing is broken, or the body ended inside a message
    Decode(DecodeError),
    /// The body ended cleanly but without `InvokeComplete`: the stream was cut short
    MissingInvokeComplete {
        /// `PayloadChunk` messages delivered before the end (an [`InvokeStream`] may have
        /// handed one out as several events)
        chunks: u64,
        /// Body bytes received
        bytes: u64,
    },
    /// An `exception` message: the service reported a modeled error mid-stream
    Exception(Box<ServiceError>),
    /// An `error` message: the service reported an unmodeled error mid-stream
    Error {
        /// `:error-code`
        code: String,
        /// `:error-message`
        message: String,
    },
    /// A message without a `:message-type` header of type string
    MissingMessageType {
        /// Start of the message
        offset: u64,
    },
    /// A message whose `:message-type` is not `event`, `exception` or `error`
    UnknownMessageType {
        /// Start of the message
        offset: u64,
        /// The value found
        message_type: String,
    },
    /// An `event` message without an `:event-type` header of type string
    MissingEventType {
        /// Start of the message
        offset: u64,
    },
    /// The `InvokeComplete` payload is not a JSON object
    InvalidInvokeComplete {
        /// The start of the payload
        excerpt: String,
    },
    /// `LogResult` is not valid base64
    InvalidLogResult,
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Decode(e) => fmt::Display::fmt(e, f),
            Self::MissingInvokeComplete { chunks, bytes } => write!(
                f,
                "stream ended after {bytes} bytes and {chunks} payload chunks without InvokeComplete"
            ),
            Self::Exception(e) => write!(f, "exception in stream: {e}"),
            Self::Error { code, message } => write!(f, "error in stream: {code}: {message}"),
            Self::MissingMessageType { offset } => write!(
                f,
                "message at byte offset {offset} has no :message-type header of type string"
            ),
            Self::UnknownMessageType {
                offset,
                message_type,
            } => write!(
                f,
                "message at byte offset {offset} has unknown :message-type {message_type:?}"
            ),
            Self::MissingEventType { offset } => {
                write!(
                    f,
                    "event at byte offset {offset} has no :event-type header of type string"
                )
            }
            Self::InvalidInvokeComplete { excerpt } => {
                write!(f, "InvokeComplete payload is not valid: {excerpt:?}")
            }
            Self::InvalidLogResult => f.write_str("InvokeComplete LogResult is not valid base64"),
        }
    }
}

impl std::error::Error for StreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Decode(e) => e.source(),
            _ => None,
        }
    }
}

impl From<DecodeError> for StreamError {
    fn from(e: DecodeError) -> Self {
        Self::Decode(e)
    }
}

/// Turns event-stream [`Message`]s into Lambda [`Event`]s: the event layer without the framing
///
/// [`InvokeStream`] is a [`MessageDecoder`] feeding one of these; a framing layer of your own
/// (a `tokio_util::codec::Decoder` around [`MessageDecoder::decode`], say) can use it the same
/// way. Hand it every message of one response body in order: it counts their bytes for the
/// offsets in its errors. `InvokeComplete` ends the stream: a client stops there, as
/// [`InvokeStream`] does (it ignores and counts the bytes after it), and calls
/// [`finish`](Self::finish) at the end of the body. The decoder itself goes on classifying
/// whatever it is handed after `InvokeComplete`, for tools that inspect a whole body; such
/// events are not part of the invocation's output.
///
/// Lambda sends an identical header block with every `PayloadChunk`; the decoder remembers the
/// last one, so a repeated block is recognised by one comparison instead of header lookups.
///
/// ```
/// use invoke_proto::bytes::Bytes;
/// use invoke_proto::{Headers, Message, MessageDecoder};
/// use invoke_proto::{Event, EventDecoder};
///
/// let mut h = Headers::builder();
/// h.push(":message-type", "event")?.push(":event-type", "PayloadChunk")?;
/// let wire = Message::new(h.build()?, "hi").to_bytes()?;
///
/// let (mut messages, mut events) = (MessageDecoder::new(), EventDecoder::new());
/// messages.feed(wire);
/// while let Some(message) = messages.next_message()? {
///     assert_eq!(events.decode_message(message)?, Event::PayloadChunk(Bytes::from("hi")));
/// }
/// messages.finish()?;
/// assert!(events.finish().is_err(), "no InvokeComplete: the stream was cut short");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct EventDecoder {
    /// Stream position of the next message
    offset: u64,
    /// `PayloadChunk` events decoded
    chunks: u64,
    complete: bool,
    /// Whether the last message decoded was a `PayloadChunk`
    last_was_chunk: bool,
    /// The header block of the last `PayloadChunk`
    chunk_headers: BlockCache,
}

impl EventDecoder {
    /// A decoder at the start of a response body
    pub fn new() -> Self {
        Self::default()
    }

    /// The event a message carries
    ///
    /// # Errors
    ///
    /// [`StreamError::Exception`] and [`StreamError::Error`] for the service's in-stream
    /// `exception` and `error` messages; `MissingMessageType`, `UnknownMessageType`,
    /// `MissingEventType` or `InvalidInvokeComplete` for a malformed message. Each ends the
    /// stream.
    #[inline]
    pub fn decode_message(&mut self, message: Message) -> Result<Event, StreamError> {
        let offset = self.offset;
        if self.repeated_chunk(&message, None, 0) {
            return Ok(Event::PayloadChunk(message.payload));
        }
        self.classify(message, offset)
    }

    /// Declares the end of the body
    ///
    /// # Errors
    ///
    /// [`StreamError::MissingInvokeComplete`] if no `InvokeComplete` was decoded.
    pub fn finish(&self) -> Result<(), StreamError> {
        if self.complete {
            return Ok(());
        }
        Err(StreamError::MissingInvokeComplete {
            chunks: self.chunks,
            bytes: self.offset,
        })
    }

    /// Whether an `InvokeComplete` was decoded
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Stream position just past the last message decoded
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// `PayloadChunk` messages decoded so far
    pub fn payload_chunks(&self) -> u64 {
        self.chunks
    }

    /// Counts `message` in; whether it is a `PayloadChunk` with the header block of the last
    /// one (else [`classify`](Self::classify) it)
    ///
    /// `repeat_of`: the caller knows that `message` has the header block of the message
    /// before it, this long, so that one comparison is enough for both (see
    /// [`InvokeStream`]); its headers may then be left out if that message was a
    /// `PayloadChunk`. `more`: payload bytes of the message handed over apart from it.
    #[inline]
    fn repeated_chunk(&mut self, message: &Message, repeat_of: Option<usize>, more: usize) -> bool {
        let (hit, headers_len) = match repeat_of {
            Some(len) if self.last_was_chunk => (true, len),
            _ => {
                let wire = message.headers.as_wire();
                (self.chunk_headers.matches(wire), wire.len())
            }
        };
        self.offset += (MESSAGE_OVERHEAD + headers_len + message.payload.len() + more) as u64;
        self.chunks += u64::from(hit);
        self.last_was_chunk = hit;
        hit
    }

    /// Classifies a message, counted in at `offset`, by its `:message-type` and `:event-type`
    /// headers
    fn classify(&mut self, m: Message, offset: u64) -> Result<Event, StreamError> {
        let headers = &m.headers;
        match headers.get_str(":message-type") {
            Some("event") => {}
            Some("exception") => {
                let code = headers.get_str(":exception-type");
                return Err(StreamError::Exception(Box::new(ServiceError::from_parts(
                    None, code, &m.payload, None, None,
                ))));
            }
            Some("error") => {
                let text = |name| headers.get_str(name).unwrap_or_default().to_owned();
                return Err(StreamError::Error {
                    code: text(":error-code"),
                    message: text(":error-message"),
                });
            }
            Some(other) => {
                return Err(StreamError::UnknownMessageType {
                    offset,
                    message_type: other.to_owned(),
                });
            }
            None => return Err(StreamError::MissingMessageType { offset }),
        }
        match headers.get_str(":event-type") {
            Some("PayloadChunk") => {
                self.chunk_headers.remember(headers.as_wire());
                self.last_was_chunk = true;
                self.chunks += 1;
                Ok(Event::PayloadChunk(m.payload))
            }
            Some("InvokeComplete") => {
                let complete = InvokeComplete::parse(&m.payload)?;
                self.complete = true;
                Ok(Event::InvokeComplete(complete))
            }
            Some(other) => Ok(Event::Unknown {
                event_type: other.to_owned(),
                message: m,
            }),
            None => Err(StreamError::MissingEventType { offset }),
        }
    }
}

/// Where an [`InvokeStream`] is; kept apart from the error so that the hot path tests a byte
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Streaming,
    Complete,
    Failed,
}

/// Turns the body of a 200 response into [`Event`]s, without IO
///
/// Feed every body chunk with [`feed`](Self::feed), then call
/// [`next_event`](Self::next_event) until it returns `Ok(None)`; at the end of the body call
/// [`finish`](Self::finish). After `InvokeComplete` the stream is done: further messages or
/// bytes are ignored and counted in [`ignored_bytes`](Self::ignored_bytes). Errors are
/// terminal and repeated on every later call. Nothing fed is lost: events still undrained
/// when `finish` is called are returned by later `next_event` calls, whatever `finish`
/// returned.
///
/// Copies are rare. A message inside one chunk comes as slices of it. A `PayloadChunk` of
/// 16 KiB or more whose headers repeat the previous `PayloadChunk`'s (as Lambda's do) and
/// that spans two to four chunks comes as several events, slices of those chunks (see
/// [`Event::PayloadChunk`]); until its last bytes arrive, the stream holds on to up to four
/// chunks. Other messages that span chunks (short ones, the first `PayloadChunk`, one spread
/// over more chunks, other events) are copied together once.
#[derive(Debug)]
pub struct InvokeStream {
    decoder: MessageDecoder,
    events: EventDecoder,
    state: State,
    /// The terminal error, once `state` is `Failed`
    error: Option<StreamError>,
    meta: ResponseMeta,
    /// Events that [`finish`](Self::finish) decoded before the caller drained them
    pending: VecDeque<Event>,
    /// Body bytes fed
    fed: u64,
}

impl Default for InvokeStream {
    fn default() -> Self {
        Self::new()
    }
}

impl InvokeStream {
    /// A stream decoder with the default [`Limits`] and empty [`ResponseMeta`]
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    /// A stream decoder with the given [`Limits`] and empty [`ResponseMeta`]
    pub fn with_limits(limits: Limits) -> Self {
        Self::with_meta(limits, ResponseMeta::default())
    }

    /// A stream decoder for the body of a response with the given metadata
    pub(crate) fn with_meta(limits: Limits, meta: ResponseMeta) -> Self {
        Self {
            decoder: MessageDecoder::with_limits(limits),
            events: EventDecoder::new(),
            state: State::Streaming,
            error: None,
            meta,
            pending: VecDeque::new(),
            fed: 0,
        }
    }

    /// Metadata of the response this body belongs to (empty for [`InvokeStream::new`])
    pub fn meta(&self) -> &ResponseMeta {
        &self.meta
    }

    /// Hands over the next chunk of the response body
    pub fn feed(&mut self, chunk: Bytes) {
        self.fed += chunk.len() as u64;
        if self.state == State::Streaming {
            self.decoder.feed(chunk);
        }
    }

    /// Whether `InvokeComplete` was received
    ///
    /// True once it was decoded, by [`next_event`](Self::next_event) or by
    /// [`finish`](Self::finish) (which keeps it, and the events before it, for `next_event`).
    pub fn is_complete(&self) -> bool {
        self.state == State::Complete
    }

    /// Body bytes received after `InvokeComplete` and ignored
    pub fn ignored_bytes(&self) -> u64 {
        match self.state {
            State::Complete => self.fed - self.events.offset(),
            _ => 0,
        }
    }

    /// The next event, `Ok(None)` when more bytes are needed or the stream is complete
    ///
    /// # Errors
    ///
    /// Any [`StreamError`]; after one, the same error forever. Events decoded before an error
    /// are returned before it.
    #[inline]
    pub fn next_event(&mut self) -> Result<Option<Event>, StreamError> {
        if !self.pending.is_empty() {
            return Ok(self.pending.pop_front());
        }
        match self.state {
            State::Streaming => self.pull(),
            State::Complete => Ok(None),
            State::Failed => Err(self.error()),
        }
    }

    /// Declares the end of the body
    ///
    /// Events fed but not yet drained are decoded now and kept for
    /// [`next_event`](Self::next_event): a body whose `InvokeComplete` was fed ends cleanly
    /// even if it was never drained, and the events before an error are not lost.
    ///
    /// # Errors
    ///
    /// [`StreamError::Decode`] with `Truncated` if the body stopped inside a message,
    /// [`StreamError::MissingInvokeComplete`] if it stopped cleanly before `InvokeComplete`,
    /// or an earlier error, or one found in the undrained bytes.
    pub fn finish(&mut self) -> Result<(), StreamError> {
        if self.state == State::Streaming {
            // An error at the end (truncation) comes back from next_message after the
            // messages before it, so the loop below sees both in order
            let _ = self.decoder.finish();
            while self.state == State::Streaming {
                match self.pull() {
                    Ok(Some(event)) => self.pending.push_back(event),
                    Ok(None) => {
                        if let Err(e) = self.events.finish() {
                            self.fail(e);
                        }
                    }
                    Err(_) => {}
                }
            }
        }
        match self.state {
            State::Failed => Err(self.error()),
            _ => Ok(()),
        }
    }

    /// Decodes the next message into an event, moving to `Complete` or `Failed` as it says
    #[inline]
    fn pull(&mut self) -> Result<Option<Event>, StreamError> {
        // the rest of a long PayloadChunk that came in pieces
        if let Some(piece) = self.decoder.take_rest() {
            return Ok(Some(Event::PayloadChunk(piece)));
        }
        // After a PayloadChunk, a message with the same header block is one too: the
        // decoder need not cut its headers out (nor copy it together, if long)
        self.decoder
            .elide_repeated_headers(self.events.last_was_chunk);
        match self.decoder.next_message() {
            Ok(Some(message)) => {
                let offset = self.events.offset();
                // The message decoder compared this header block with the previous one
                // already: if that was a PayloadChunk, so is this
                let repeat_of = self.decoder.repeated_headers_len();
                let more = self.decoder.rest_len();
                if self.events.repeated_chunk(&message, repeat_of, more) {
                    // The hot path, written out so the event is built in place
                    return Ok(Some(Event::PayloadChunk(message.payload)));
                }
                self.classified(message, offset)
            }
            Ok(None) => Ok(None),
            Err(e) => Err(self.fail(StreamError::Decode(e))),
        }
    }

    /// The event of a message whose header block is not the cached `PayloadChunk` block
    fn classified(&mut self, message: Message, offset: u64) -> Result<Option<Event>, StreamError> {
        match self.events.classify(message, offset) {
            Ok(event) => {
                if self.events.is_complete() {
                    self.state = State::Complete;
                }
                Ok(Some(event))
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Ends the stream with `e`
    #[cold]
    fn fail(&mut self, e: StreamError) -> StreamError {
        self.state = State::Failed;
        self.error = Some(e.clone());
        e
    }

    /// The terminal error
    #[cold]
    fn error(&self) -> StreamError {
        self.error
            .clone()
            .unwrap_or(StreamError::MissingInvokeComplete {
                chunks: self.events.payload_chunks(),
                bytes: self.events.offset(),
            })
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use http::{HeaderMap, StatusCode};

    use super::*;
    use crate::eventstream::{Headers, encode};
    use crate::response::{ResponseHead, parse_response_head};

    fn message(headers: &[(&str, &str)], payload: &str) -> Message {
        let mut h = Headers::builder();
        for (name, value) in headers {
            h.push(name, (*value).to_owned()).unwrap();
        }
        Message::new(h.build().unwrap(), payload.to_owned())
    }

    fn chunk(payload: &str) -> Message {
        message(
            &[
                (":event-type", "PayloadChunk"),
                (":content-type", "application/octet-stream"),
                (":message-type", "event"),
            ],
            payload,
        )
    }

    fn complete() -> Message {
        message(
            &[
                (":message-type", "event"),
                (":event-type", "InvokeComplete"),
            ],
            "{}",
        )
    }

    fn wire(messages: &[Message]) -> Bytes {
        let mut w = BytesMut::new();
        for m in messages {
            encode(m, &mut w).unwrap();
        }
        w.freeze()
    }

    fn chunk_event(payload: &'static str) -> Event {
        Event::PayloadChunk(Bytes::from_static(payload.as_bytes()))
    }

    fn drain(s: &mut InvokeStream) -> (Vec<Event>, Option<StreamError>) {
        let mut events = Vec::new();
        loop {
            match s.next_event() {
                Ok(Some(e)) => events.push(e),
                Ok(None) => return (events, None),
                Err(e) => return (events, Some(e)),
            }
        }
    }

    #[test]
    fn finish_keeps_undrained_events_and_sees_invoke_complete() {
        let body = wire(&[chunk("a"), chunk("b"), complete(), chunk("late")]);
        for size in [1, 5, body.len()] {
            let mut s = InvokeStream::new();
            for c in body.chunks(size) {
                s.feed(body.slice_ref(c));
            }
            s.feed(Bytes::from_static(b"trailing junk, not a message"));
            s.finish().expect("InvokeComplete was fed: a clean end");
            assert!(s.is_complete());
            let (events, err) = drain(&mut s);
            assert_eq!(err, None);
            assert_eq!(
                events,
                [
                    chunk_event("a"),
                    chunk_event("b"),
                    Event::InvokeComplete(InvokeComplete::default())
                ],
                "chunk size {size}"
            );
            assert_eq!(
                s.ignored_bytes(),
                chunk("late").wire_len() + b"trailing junk, not a message".len() as u64
            );
            s.finish().unwrap();
        }
    }

    #[test]
    fn no_event_is_lost_wherever_draining_stops() {
        let messages = [chunk("one"), chunk("two"), chunk("three"), complete()];
        let body = wire(&messages);
        let want: Vec<Event> = ["one", "two", "three"]
            .into_iter()
            .map(chunk_event)
            .chain([Event::InvokeComplete(InvokeComplete::default())])
            .collect();
        for size in [1, 2, 3, 5, 8, 13, 40, 64, body.len()] {
            let chunks: Vec<_> = body.chunks(size).collect();
            for drained in 0..=chunks.len() {
                let mut s = InvokeStream::new();
                let mut got = Vec::new();
                for (i, c) in chunks.iter().enumerate() {
                    s.feed(body.slice_ref(c));
                    if i < drained {
                        got.extend(drain(&mut s).0);
                    }
                }
                s.finish().expect("InvokeComplete was fed");
                let (rest, err) = drain(&mut s);
                got.extend(rest);
                assert_eq!(err, None);
                assert_eq!(got, want, "chunk size {size}, drained {drained} chunks");
            }
        }
    }

    #[test]
    fn chunks_decoded_without_their_headers_count_every_byte() {
        // the decoder leaves out the headers of a chunk that repeats the chunk before it
        let other_chunk = message(
            &[(":message-type", "event"), (":event-type", "PayloadChunk")],
            "other",
        );
        let bad = message(&[(":message-type", "strange")], "x");
        let chunks = [chunk("a"), chunk("bb"), chunk(""), chunk("dddd")];
        let mut all = chunks.to_vec();
        all.extend([other_chunk.clone(), other_chunk, chunk("e"), bad.clone()]);
        let body = wire(&all);
        let at = body.len() as u64 - bad.wire_len();
        for size in [1, 7, body.len()] {
            let mut s = InvokeStream::new();
            let mut events = Vec::new();
            let mut err = None;
            for c in body.chunks(size) {
                s.feed(body.slice_ref(c));
                let (got, end) = drain(&mut s);
                events.extend(got);
                if end.is_some() {
                    err = end;
                    break;
                }
            }
            let want: Vec<Event> = ["a", "bb", "", "dddd", "other", "other", "e"]
                .into_iter()
                .map(chunk_event)
                .collect();
            assert_eq!(events, want, "chunk size {size}");
            assert_eq!(err, Some(strange_at(at)), "chunk size {size}");
        }
        // a body that stops after such chunks: every byte is counted
        let body = wire(&chunks);
        let mut s = InvokeStream::new();
        s.feed(body.clone());
        let (events, end) = drain(&mut s);
        assert_eq!((events.len(), end), (4, None));
        assert_eq!(
            s.finish().unwrap_err(),
            StreamError::MissingInvokeComplete {
                chunks: 4,
                bytes: body.len() as u64
            }
        );
    }

    /// The error of a message whose `:message-type` is `strange`, at `offset`
    fn strange_at(offset: u64) -> StreamError {
        StreamError::UnknownMessageType {
            offset,
            message_type: "strange".into(),
        }
    }

    /// A `PayloadChunk` of `len` bytes that differ from their neighbours
    fn long_chunk(len: usize, seed: u8) -> Message {
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8 ^ seed).collect();
        Message::new(chunk("").headers, payload)
    }

    /// Feeds `body` in `size`-byte slices, draining after each; the events and the error
    fn fed_in(body: &Bytes, size: usize) -> (Vec<Event>, Option<StreamError>) {
        let mut s = InvokeStream::new();
        let mut events = Vec::new();
        for c in body.chunks(size) {
            s.feed(body.slice_ref(c));
            let (got, err) = drain(&mut s);
            events.extend(got);
            if err.is_some() {
                return (events, err);
            }
        }
        let end = s.finish().err();
        events.extend(drain(&mut s).0);
        (events, end)
    }

    /// The payload chunks' bytes, concatenated
    fn concatenated(events: &[Event]) -> Vec<u8> {
        let mut all = Vec::new();
        for e in events {
            if let Event::PayloadChunk(b) = e {
                all.extend_from_slice(b);
            }
        }
        all
    }

    #[test]
    fn long_chunks_spanning_reads_come_in_pieces_not_copied() {
        let messages = [
            chunk("first"),
            long_chunk(40_000, 1),
            long_chunk(70_000, 2),
            chunk("short"),
            long_chunk(20_000, 3),
            complete(),
        ];
        let body = wire(&messages);
        let want: Vec<u8> = messages[..5]
            .iter()
            .flat_map(|m| m.payload.to_vec())
            .collect();
        let inside = body.as_ptr_range();
        for size in [24_000, 30_001, 65_536, 100_003] {
            let (events, err) = fed_in(&body, size);
            assert_eq!(err, None, "chunk size {size}");
            assert_eq!(concatenated(&events), want, "chunk size {size}");
            assert_eq!(
                events.last(),
                Some(&Event::InvokeComplete(InvokeComplete::default()))
            );
            // no message spans more than four reads here: every payload is a slice of them
            for e in &events[..events.len() - 1] {
                let Event::PayloadChunk(b) = e else {
                    panic!("not a payload chunk: {e:?}")
                };
                assert!(!b.is_empty(), "chunk size {size}: an empty piece");
                assert!(inside.contains(&b.as_ptr()), "chunk size {size}: copied");
            }
            assert!(
                events.len() > messages.len(),
                "chunk size {size}: not split"
            );
        }
        // spread over more than four reads, a message is copied together and comes whole
        let (events, err) = fed_in(&body, 4_000);
        assert_eq!(err, None);
        let whole: Vec<Event> = messages[..5]
            .iter()
            .map(|m| Event::PayloadChunk(m.payload.clone()))
            .chain([Event::InvokeComplete(InvokeComplete::default())])
            .collect();
        assert_eq!(events, whole);
    }

    #[test]
    fn a_long_message_in_pieces_is_checked_before_any_piece_is_given() {
        let messages = [chunk("a"), long_chunk(40_000, 1), long_chunk(40_000, 2)];
        let body = wire(&messages);
        let second = (messages[0].wire_len() + messages[1].wire_len()) as usize;
        // a payload byte in the second read of the third message, then its trailing CRC
        // (9,000-byte reads: held in four pieces, then copied together)
        for (at, size) in [second + 35_000, body.len() - 2]
            .into_iter()
            .flat_map(|at| [(at, 30_000), (at, 9_000)])
        {
            let mut bad = body.to_vec();
            bad[at] ^= 0x20;
            let bad = Bytes::from(bad);
            let (events, err) = fed_in(&bad, size);
            assert!(
                matches!(
                    err,
                    Some(StreamError::Decode(DecodeError::MessageCrc { offset, .. }))
                        if offset == second as u64
                ),
                "byte {at}, reads of {size}: {err:?}"
            );
            let mut want = b"a".to_vec();
            want.extend_from_slice(&messages[1].payload);
            assert_eq!(concatenated(&events), want, "byte {at}");
        }
    }

    #[test]
    fn long_messages_of_other_kinds_come_whole_and_offsets_count_every_piece() {
        let mut h = Headers::builder();
        h.push(":message-type", "event").unwrap();
        h.push(":event-type", "SomethingNew").unwrap();
        let unknown = Message::new(h.build().unwrap(), vec![7u8; 50_000]);
        let bad = message(&[(":message-type", "strange")], "x");
        let messages = [
            chunk("a"),
            long_chunk(50_000, 1),
            unknown.clone(),
            long_chunk(50_000, 2),
            bad,
        ];
        let body = wire(&messages);
        let at: u64 = messages[..4].iter().map(Message::wire_len).sum();
        for size in [20_000, 33_333] {
            let (events, err) = fed_in(&body, size);
            assert_eq!(err, Some(strange_at(at)), "chunk size {size}");
            let unknowns: Vec<_> = events
                .iter()
                .filter(|e| matches!(e, Event::Unknown { .. }))
                .collect();
            assert_eq!(
                unknowns,
                [&Event::Unknown {
                    event_type: "SomethingNew".into(),
                    message: unknown.clone()
                }]
            );
            let mut want = b"a".to_vec();
            want.extend_from_slice(&messages[1].payload);
            want.extend_from_slice(&messages[3].payload);
            assert_eq!(concatenated(&events), want, "chunk size {size}");
        }
        // cut short after pieces: every byte is counted, nothing is lost
        let body = wire(&messages[..2]);
        let mut s = InvokeStream::new();
        for c in body.chunks(30_000) {
            s.feed(body.slice_ref(c));
        }
        assert_eq!(
            s.finish(),
            Err(StreamError::MissingInvokeComplete {
                chunks: 2,
                bytes: body.len() as u64
            })
        );
        let (events, _) = drain(&mut s);
        assert_eq!(concatenated(&events).len(), 50_001);
    }

    #[test]
    fn finish_keeps_undrained_events_before_an_error() {
        let body = wire(&[chunk("a"), chunk("b")]);
        let mut s = InvokeStream::new();
        s.feed(body.clone());
        let err = s.finish().unwrap_err();
        assert_eq!(
            err,
            StreamError::MissingInvokeComplete {
                chunks: 2,
                bytes: body.len() as u64
            }
        );
        let (events, end) = drain(&mut s);
        assert_eq!(events, [chunk_event("a"), chunk_event("b")]);
        assert_eq!(end, Some(err.clone()), "then the error");
        assert_eq!(s.finish().unwrap_err(), err);

        let mut s = InvokeStream::new();
        s.feed(body.clone());
        s.feed(wire(&[complete()]).slice(..20));
        let err = s.finish().unwrap_err();
        assert_eq!(
            err,
            StreamError::Decode(DecodeError::Truncated {
                offset: body.len() as u64,
                buffered: 20
            })
        );
        let (events, end) = drain(&mut s);
        assert_eq!(events, [chunk_event("a"), chunk_event("b")]);
        assert_eq!(end, Some(err));
    }

    #[test]
    fn messages_kept_by_finish_are_classified_afresh_after_an_error() {
        // `finish` decodes all three messages, then fails on the junk; the two identical
        // InvokeComplete header blocks must not make the first look like a repeated chunk
        let mut body = BytesMut::from(&wire(&[chunk("a"), complete(), complete()])[..]);
        body.extend_from_slice(&[0; 12]);
        let mut s = InvokeStream::new();
        s.feed(body.freeze());
        s.finish().expect("InvokeComplete came before the junk");
        let (events, err) = drain(&mut s);
        assert_eq!(err, None);
        assert_eq!(
            events,
            [
                chunk_event("a"),
                Event::InvokeComplete(InvokeComplete::default())
            ]
        );
    }

    #[test]
    fn event_decoder_on_a_message_decoder() {
        let reordered = message(
            &[
                (":message-type", "event"),
                (":event-type", "PayloadChunk"),
                ("extra", "1"),
            ],
            "c",
        );
        let heartbeat = message(
            &[(":message-type", "event"), (":event-type", "Heartbeat")],
            "",
        );
        let messages = [
            chunk("a"),
            chunk("b"),
            reordered,
            chunk("d"),
            heartbeat.clone(),
            complete(),
        ];
        let body = wire(&messages);
        let mut decoder = MessageDecoder::new();
        let mut events = EventDecoder::new();
        let mut got = Vec::new();
        for c in body.chunks(3) {
            decoder.feed(body.slice_ref(c));
            while let Some(m) = decoder.next_message().unwrap() {
                got.push(events.decode_message(m).unwrap());
            }
        }
        decoder.finish().unwrap();
        events.finish().unwrap();
        assert!(events.is_complete());
        assert_eq!(events.offset(), body.len() as u64);
        assert_eq!(events.payload_chunks(), 4);
        assert_eq!(
            got,
            [
                chunk_event("a"),
                chunk_event("b"),
                chunk_event("c"),
                chunk_event("d"),
                Event::Unknown {
                    event_type: "Heartbeat".into(),
                    message: heartbeat
                },
                Event::InvokeComplete(InvokeComplete::default()),
            ]
        );
    }

    #[test]
    fn repeated_blocks_classified_like_the_first_in_any_chunking() {
        let heartbeat = message(
            &[(":message-type", "event"), (":event-type", "Heartbeat")],
            "",
        );
        let other_chunk = message(
            &[(":event-type", "PayloadChunk"), (":message-type", "event")],
            "e",
        );
        let body = wire(&[
            chunk("a"),
            heartbeat.clone(),
            heartbeat.clone(),
            chunk("b"),
            chunk("c"),
            heartbeat.clone(),
            chunk("d"),
            other_chunk.clone(),
            other_chunk,
            complete(),
        ]);
        let unknown = || Event::Unknown {
            event_type: "Heartbeat".into(),
            message: heartbeat.clone(),
        };
        let want = [
            chunk_event("a"),
            unknown(),
            unknown(),
            chunk_event("b"),
            chunk_event("c"),
            unknown(),
            chunk_event("d"),
            chunk_event("e"),
            chunk_event("e"),
            Event::InvokeComplete(InvokeComplete::default()),
        ];
        for size in 1..=body.len() {
            let mut s = InvokeStream::new();
            let mut got = Vec::new();
            for c in body.chunks(size) {
                s.feed(body.slice_ref(c));
                got.extend(drain(&mut s).0);
            }
            s.finish().unwrap();
            assert_eq!(got, want, "chunk size {size}");
        }
    }

    #[test]
    fn event_decoder_cache_never_hides_an_error() {
        let exception = message(
            &[
                (":message-type", "exception"),
                (":exception-type", "ServiceException"),
            ],
            r#"{"message":"boom"}"#,
        );
        let error = message(
            &[
                (":message-type", "error"),
                (":error-code", "InternalFailure"),
                (":error-message", "oops"),
            ],
            "",
        );
        let no_type = message(&[(":event-type", "PayloadChunk")], "x");
        for (bad, offset) in [(exception, false), (error, false), (no_type, true)] {
            let mut events = EventDecoder::new();
            let first = chunk("a");
            let at = first.wire_len();
            events.decode_message(first.clone()).unwrap();
            events.decode_message(first).unwrap();
            let err = events.decode_message(bad).unwrap_err();
            match err {
                StreamError::Exception(e) => {
                    assert_eq!(e.code, "ServiceException");
                    assert_eq!(e.message.as_deref(), Some("boom"));
                }
                StreamError::Error { code, message } => {
                    assert_eq!(
                        (code.as_str(), message.as_str()),
                        ("InternalFailure", "oops")
                    );
                }
                StreamError::MissingMessageType { offset: o } => {
                    assert!(offset);
                    assert_eq!(o, 2 * at);
                }
                other => panic!("{other}"),
            }
            assert_eq!(
                events.finish().unwrap_err(),
                StreamError::MissingInvokeComplete {
                    chunks: 2,
                    bytes: events.offset()
                }
            );
        }
    }

    #[test]
    fn response_meta_survives_into_stream() {
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-executed-version", "7".parse().unwrap());
        headers.insert("content-type", "text/plain".parse().unwrap());
        headers.insert("x-amzn-requestid", "req-1".parse().unwrap());
        let Ok(ResponseHead::Stream(head)) = parse_response_head(StatusCode::OK, &headers) else {
            panic!("a 200 is a stream")
        };
        let want = head.meta.clone();
        assert_eq!(want.request_id.as_deref(), Some("req-1"));
        assert_eq!(head.clone().into_stream().meta(), &want);
        assert_eq!(head.into_stream_with(Limits::UNLIMITED).meta(), &want);
        assert_eq!(InvokeStream::new().meta(), &ResponseMeta::default());
    }
}
