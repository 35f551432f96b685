//! `InvokeStream`: response body bytes in, Lambda events out

use base64::Engine as _;
use bytes::Bytes;
use serde_json::Value;

use crate::error::DecodeError;
use crate::eventstream::{Limits, Message, MessageDecoder};
use crate::service_error::{ServiceError, excerpt};

/// One event of the response stream
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Bytes the function wrote; a slice of the received body (zero copy). Chunk boundaries
    /// carry no meaning: concatenate.
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
        if payload.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        let json: Value = serde_json::from_slice(payload).map_err(|_| bad())?;
        let obj = json.as_object().ok_or_else(bad)?;
        let field = |n: &str| -> Result<Option<String>, StreamError> {
            match obj.get(n) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(bad()),
            }
        };
        Ok(Self {
            error_code: field("ErrorCode")?,
            error_details: field("ErrorDetails")?,
            log_result: field("LogResult")?,
        })
    }
}

/// A failure of the response stream; terminal
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The event-stream framing is broken, or the body ended inside a message
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The body ended cleanly but without `InvokeComplete`: the stream was cut short
    #[error("stream ended after {bytes} bytes and {chunks} payload chunks without InvokeComplete")]
    MissingInvokeComplete {
        /// Payload chunks delivered before the end
        chunks: u64,
        /// Body bytes received
        bytes: u64,
    },
    /// An `exception` message: the service reported a modeled error mid-stream
    #[error("exception in stream: {0}")]
    Exception(Box<ServiceError>),
    /// An `error` message: the service reported an unmodeled error mid-stream
    #[error("error in stream: {code}: {message}")]
    Error {
        /// `:error-code`
        code: String,
        /// `:error-message`
        message: String,
    },
    /// A message without a `:message-type` header
    #[error("message at byte offset {offset} has no :message-type header")]
    MissingMessageType {
        /// Start of the message
        offset: u64,
    },
    /// A message whose `:message-type` is not `event`, `exception` or `error`
    #[error("message at byte offset {offset} has unknown :message-type {message_type:?}")]
    UnknownMessageType {
        /// Start of the message
        offset: u64,
        /// The value found
        message_type: String,
    },
    /// An `event` message without an `:event-type` header
    #[error("event at byte offset {offset} has no :event-type header")]
    MissingEventType {
        /// Start of the message
        offset: u64,
    },
    /// The `InvokeComplete` payload is not a JSON object of optional strings
    #[error("InvokeComplete payload is not valid: {excerpt:?}")]
    InvalidInvokeComplete {
        /// The start of the payload
        excerpt: String,
    },
    /// `LogResult` is not valid base64
    #[error("InvokeComplete LogResult is not valid base64")]
    InvalidLogResult,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Streaming,
    Complete,
    Failed(StreamError),
}

/// Turns the body of a 200 response into [`Event`]s, without IO
///
/// Feed every body chunk with [`feed`](Self::feed), then call
/// [`next_event`](Self::next_event) until it returns `Ok(None)`; at the end of the body call
/// [`finish`](Self::finish). After `InvokeComplete` the stream is done: further messages or
/// bytes are ignored (protocol.md §4.10) and counted in
/// [`ignored_bytes`](Self::ignored_bytes). Errors are terminal and repeated on every later
/// call.
#[derive(Debug)]
pub struct InvokeStream {
    decoder: MessageDecoder,
    state: State,
    chunks: u64,
    ignored: u64,
}

impl Default for InvokeStream {
    fn default() -> Self {
        Self::new()
    }
}

impl InvokeStream {
    /// A stream decoder with the default [`Limits`]
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    /// A stream decoder with the given [`Limits`]
    pub fn with_limits(limits: Limits) -> Self {
        Self {
            decoder: MessageDecoder::with_limits(limits),
            state: State::Streaming,
            chunks: 0,
            ignored: 0,
        }
    }

    /// Hands over the next chunk of the response body
    pub fn feed(&mut self, chunk: Bytes) {
        match self.state {
            State::Streaming => self.decoder.feed(chunk),
            State::Complete => self.ignored += chunk.len() as u64,
            State::Failed(_) => {}
        }
    }

    /// Whether `InvokeComplete` was received
    pub fn is_complete(&self) -> bool {
        self.state == State::Complete
    }

    /// Body bytes received after `InvokeComplete` and ignored
    pub fn ignored_bytes(&self) -> u64 {
        self.ignored
    }

    /// The next event, `Ok(None)` when more bytes are needed or the stream is complete
    ///
    /// # Errors
    ///
    /// Any [`StreamError`] but `MissingInvokeComplete`; after one, the same error forever.
    pub fn next_event(&mut self) -> Result<Option<Event>, StreamError> {
        match &self.state {
            State::Failed(e) => return Err(e.clone()),
            State::Complete => return Ok(None),
            State::Streaming => {}
        }
        let offset = self.decoder.offset();
        let result = self
            .decoder
            .next_message()
            .map_err(StreamError::from)
            .and_then(|m| m.map(|m| self.event(m, offset)).transpose());
        result.inspect_err(|e| self.state = State::Failed(e.clone()))
    }

    /// Declares the end of the body
    ///
    /// # Errors
    ///
    /// [`StreamError::Decode`] with `Truncated` if the body stopped inside a message,
    /// [`StreamError::MissingInvokeComplete`] if it stopped cleanly before `InvokeComplete`,
    /// or an earlier error.
    pub fn finish(&mut self) -> Result<(), StreamError> {
        let err = match &self.state {
            State::Complete => return Ok(()),
            State::Failed(e) => return Err(e.clone()),
            State::Streaming => match self.decoder.finish() {
                Err(e) => StreamError::Decode(e),
                Ok(()) => StreamError::MissingInvokeComplete {
                    chunks: self.chunks,
                    bytes: self.decoder.offset(),
                },
            },
        };
        self.state = State::Failed(err.clone());
        Err(err)
    }

    fn event(&mut self, m: Message, offset: u64) -> Result<Event, StreamError> {
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
                return Err(StreamError::Error {
                    code: headers
                        .get_str(":error-code")
                        .unwrap_or_default()
                        .to_owned(),
                    message: headers
                        .get_str(":error-message")
                        .unwrap_or_default()
                        .to_owned(),
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
                self.chunks += 1;
                Ok(Event::PayloadChunk(m.payload))
            }
            Some("InvokeComplete") => {
                let complete = InvokeComplete::parse(&m.payload)?;
                self.state = State::Complete;
                self.ignored = self.decoder.buffered() as u64;
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
