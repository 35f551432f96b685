//! `ClientError`: the error a transport's client reports, the same for every transport

use std::fmt;
use std::io;
use std::path::PathBuf;

use bytes::Bytes;

use invoke_proto::{
    BuildError, EndpointError, Event, InvokeComplete, InvokeError, ResponseError, ServiceError,
    SignError, StreamError, TransportFailure,
};

use crate::config::ConfigError;

/// A boxed error source of a transport (credential providers, sockets, TLS)
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why an invocation failed, as a transport's client reports it
///
/// The transports (`invoke-blocking`, `invoke-tokio`) export it as their `Error`. Errors
/// that happen while the response streams reach the caller as `Err` items of the events,
/// or as the `io::Error` of the payload reader (get this type back with
/// [`ClientError::from_io`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// The client configuration is not usable (a bad proxy URL or CA bundle, for example)
    Config(String),
    /// The shared settings (environment, config files) are not valid
    Settings(ConfigError),
    /// No endpoint follows from the settings (no region, a bad endpoint URL, ...)
    Endpoint(EndpointError),
    /// A CA bundle (`AWS_CA_BUNDLE`, `ca_bundle`) cannot be read or holds no valid
    /// certificate
    CaBundle {
        /// The file
        path: PathBuf,
        /// What is wrong with it
        reason: String,
    },
    /// The invocation parameters are not valid; nothing was sent
    InvalidParams(BuildError),
    /// The credentials provider failed; its error (a [`crate::CredentialsError`] from the
    /// default chain) is the [source](std::error::Error::source)
    Credentials(BoxError),
    /// The request could not be signed
    Sign(SignError),
    /// The service answered with an error (after `attempts` attempts)
    Service {
        /// The typed error, with its code, message, request id and retry hints
        error: Box<ServiceError>,
        /// Attempts made
        attempts: u32,
    },
    /// The response head is not one this operation answers with (such as a 3xx status)
    Response(ResponseError),
    /// The response stream failed: broken framing, an in-stream exception, truncation, or
    /// no `InvokeComplete`
    Stream(StreamError),
    /// The function failed: its `InvokeComplete` carries an `ErrorCode` (only from the
    /// payload reader; the events yield that `InvokeComplete` as an event)
    Function(InvokeComplete),
    /// `collect_payload` met a payload longer than it may hold; the response was dropped
    /// (its connection closed)
    PayloadTooLarge {
        /// The most it could hold, in bytes
        limit: usize,
    },
    /// `collect_payload` was called on a response whose events had already ended: the
    /// caller took them to their end (the `InvokeComplete`, or the error) before
    EventsEnded,
    /// The connection failed or timed out
    Transport {
        /// What failed
        kind: TransportFailure,
        /// The endpoint (`host:port`) the client talked to
        address: String,
        /// Attempts made
        attempts: u32,
        /// The transport's error
        source: BoxError,
    },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(why) => write!(f, "invalid client configuration: {why}"),
            Self::Settings(e) => fmt::Display::fmt(e, f),
            Self::Endpoint(e) => fmt::Display::fmt(e, f),
            Self::CaBundle { path, reason } => write!(f, "CA bundle {}: {reason}", path.display()),
            Self::InvalidParams(e) => fmt::Display::fmt(e, f),
            Self::Credentials(_) => f.write_str("no credentials to sign with"),
            Self::Sign(e) => fmt::Display::fmt(e, f),
            Self::Service { error, attempts } => {
                write!(f, "{error} (after {attempts} attempt{})", plural(*attempts))
            }
            Self::Response(e) => fmt::Display::fmt(e, f),
            Self::Stream(e) => fmt::Display::fmt(e, f),
            Self::Function(complete) => write!(
                f,
                "function error {}: {}",
                complete.error_code.as_deref().unwrap_or_default(),
                complete.error_details.as_deref().unwrap_or_default()
            ),
            Self::PayloadTooLarge { limit } => write!(
                f,
                "the payload is longer than the {limit} bytes it may be collected up to"
            ),
            Self::EventsEnded => f.write_str(
                "the response's events had already ended when its payload was to be collected",
            ),
            Self::Transport {
                kind,
                address,
                attempts,
                ..
            } => write!(
                f,
                "{kind} ({address}) after {attempts} attempt{}",
                plural(*attempts)
            ),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // the wrapped errors are shown as this one: their source is its source
            Self::Settings(e) => e.source(),
            Self::Endpoint(e) => e.source(),
            Self::InvalidParams(e) => e.source(),
            Self::Sign(e) => e.source(),
            Self::Response(e) => e.source(),
            Self::Stream(e) => e.source(),
            Self::Credentials(source) | Self::Transport { source, .. } => Some(&**source),
            Self::Config(_)
            | Self::CaBundle { .. }
            | Self::Service { .. }
            | Self::Function(_)
            | Self::PayloadTooLarge { .. }
            | Self::EventsEnded => None,
        }
    }
}

/// `From` each wrapped error for [`ClientError`]
macro_rules! from_wrapped {
    ($($variant:ident($wrapped:ty)),* $(,)?) => {
        $(impl From<$wrapped> for ClientError {
            fn from(e: $wrapped) -> Self {
                Self::$variant(e)
            }
        })*
    };
}

from_wrapped!(
    Settings(ConfigError),
    Endpoint(EndpointError),
    InvalidParams(BuildError),
    Sign(SignError),
    Response(ResponseError),
    Stream(StreamError),
);

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

impl ClientError {
    /// The service error, when the service answered with one (before or inside the stream)
    pub fn service_error(&self) -> Option<&ServiceError> {
        match self {
            Self::Service { error, .. } | Self::Stream(StreamError::Exception(error)) => {
                Some(error)
            }
            _ => None,
        }
    }

    /// The function's `InvokeComplete` (with `ErrorCode` and `ErrorDetails`), when the
    /// function failed
    pub fn function_error(&self) -> Option<&InvokeComplete> {
        match self {
            Self::Function(c) => Some(c),
            _ => None,
        }
    }

    /// The transport failure kind, for a transport error
    pub fn transport_failure(&self) -> Option<TransportFailure> {
        match self {
            Self::Transport { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// Attempts made, when the error ended the attempts
    pub fn attempts(&self) -> Option<u32> {
        match self {
            Self::Service { attempts, .. } | Self::Transport { attempts, .. } => Some(*attempts),
            _ => None,
        }
    }

    /// This crate's error inside an `io::Error` of the payload reader
    pub fn from_io(error: &io::Error) -> Option<&Self> {
        error.get_ref()?.downcast_ref::<Self>()
    }

    /// This error as an `io::Error` whose kind says what happened (for payload readers)
    pub fn into_io(self) -> io::Error {
        io::Error::new(self.io_kind(), self)
    }

    /// The kind of `io::Error` a payload reader returns for this error
    pub fn io_kind(&self) -> io::ErrorKind {
        match self {
            Self::Transport {
                kind: TransportFailure::IdleTimeout | TransportFailure::Deadline,
                ..
            } => io::ErrorKind::TimedOut,
            Self::Transport { .. } => io::ErrorKind::ConnectionAborted,
            Self::Stream(StreamError::MissingInvokeComplete { .. } | StreamError::Decode(_)) => {
                io::ErrorKind::UnexpectedEof
            }
            _ => io::ErrorKind::Other,
        }
    }
}

impl ClientError {
    /// The error an invocation ended with: the driver's `error` after `attempts` attempts;
    /// for a transport failure, `source` is the error the transport reported the failure
    /// for (its kind's name when `None`) and `address` the endpoint's `host:port`
    pub fn from_invoke(
        error: InvokeError,
        attempts: u32,
        address: &str,
        source: Option<BoxError>,
    ) -> Self {
        match error {
            InvokeError::Sign(e) => Self::Sign(e),
            InvokeError::Service(error) => Self::Service { error, attempts },
            InvokeError::Response(e) => Self::Response(e),
            InvokeError::Stream(e) => Self::Stream(e),
            InvokeError::Transport(kind) => Self::Transport {
                kind,
                address: address.to_owned(),
                attempts,
                source: source.unwrap_or_else(|| kind.to_string().into()),
            },
            other => Self::Config(other.to_string()),
        }
    }
}

/// How the events of a response failed, remembered when its iterator or stream handed the
/// failure out, for a payload reader made afterwards ([`PayloadCursor::failed`])
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderFailure {
    kind: io::ErrorKind,
    message: String,
}

impl ReaderFailure {
    /// The failure of a response whose events ended with `error`
    pub fn of(error: &ClientError) -> Self {
        Self {
            kind: error.io_kind(),
            message: error.to_string(),
        }
    }

    /// The failure of a response whose `InvokeComplete` reports a function error; `None`
    /// when it reports success
    pub fn function(complete: &InvokeComplete) -> Option<Self> {
        complete
            .is_error()
            .then(|| Self::of(&ClientError::Function(complete.clone())))
    }
}

/// The payload reader's state over the events of a response: bytes of `PayloadChunk`s,
/// then the end after a successful `InvokeComplete`, or an error (repeated on every later
/// read) for a function error, an in-stream exception, a broken or truncated stream
///
/// A transport's reader asks [`next_bytes`](Self::next_bytes) and, when it says `None`,
/// hands over the next event with [`handle`](Self::handle).
///
/// ```
/// use invoke_config::{ClientError, PayloadCursor};
/// use invoke_proto::Event;
/// use invoke_proto::bytes::Bytes;
///
/// let mut cursor = PayloadCursor::new();
/// assert!(cursor.next_bytes(8).is_none()); // nothing buffered: the next event is needed
/// cursor.handle(Some(Ok(Event::PayloadChunk(Bytes::from_static(b"hello")))))?;
/// assert_eq!(&cursor.next_bytes(3).unwrap()?[..], b"hel");
/// assert_eq!(&cursor.next_bytes(8).unwrap()?[..], b"lo");
/// cursor.handle(None)?; // the events ended (after InvokeComplete)
/// assert!(cursor.next_bytes(8).unwrap()?.is_empty()); // end of the payload
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct PayloadCursor {
    chunk: Bytes,
    state: CursorState,
}

#[derive(Debug, Default)]
enum CursorState {
    #[default]
    Reading,
    Ended,
    /// The error already returned
    Failed(io::ErrorKind, String),
}

impl PayloadCursor {
    /// A cursor before the first event
    pub fn new() -> Self {
        Self::default()
    }

    /// A cursor for a response whose events already ended in a failure before the reader
    /// was made: its iterator or stream handed out `error`, or an `InvokeComplete` with a
    /// function error (see [`ReaderFailure::function`]). Every read fails with it (without
    /// the source: the caller had that), never a clean end.
    ///
    /// ```
    /// use invoke_config::{ClientError, PayloadCursor, ReaderFailure};
    ///
    /// let seen = ClientError::Config("the stream broke".into());
    /// let mut cursor = PayloadCursor::failed(ReaderFailure::of(&seen));
    /// let error = cursor.next_bytes(8).unwrap().unwrap_err();
    /// assert_eq!(error.to_string(), seen.to_string());
    /// assert!(cursor.next_bytes(8).unwrap().is_err()); // and again
    /// ```
    pub fn failed(failure: ReaderFailure) -> Self {
        Self {
            chunk: Bytes::new(),
            state: CursorState::Failed(failure.kind, failure.message),
        }
    }

    /// At most `max` buffered payload bytes (empty at the end, or when `max` is 0), the
    /// error of a failed payload, or `None` when the next event is needed
    ///
    /// # Errors
    ///
    /// The error [`handle`](Self::handle) returned, again.
    pub fn next_bytes(&mut self, max: usize) -> Option<io::Result<Bytes>> {
        if !self.chunk.is_empty() {
            let n = max.min(self.chunk.len());
            return Some(Ok(self.chunk.split_to(n)));
        }
        match &self.state {
            CursorState::Reading if max > 0 => None,
            CursorState::Reading | CursorState::Ended => Some(Ok(Bytes::new())),
            CursorState::Failed(kind, message) => Some(Err(io::Error::new(*kind, message.clone()))),
        }
    }

    /// Whether the next event is needed before [`fill`](Self::fill) has anything to give:
    /// no payload bytes buffered, and the payload neither ended nor failed
    pub fn needs_event(&self) -> bool {
        self.chunk.is_empty() && matches!(self.state, CursorState::Reading)
    }

    /// The payload bytes buffered, without copying (empty at the end of the payload), or
    /// the error of a failed payload: a `BufRead`'s `fill_buf` once
    /// [`needs_event`](Self::needs_event) is false (before that, it is empty as well)
    ///
    /// ```
    /// use invoke_config::PayloadCursor;
    /// use invoke_proto::Event;
    /// use invoke_proto::bytes::Bytes;
    ///
    /// let mut cursor = PayloadCursor::new();
    /// assert!(cursor.needs_event());
    /// cursor.handle(Some(Ok(Event::PayloadChunk(Bytes::from_static(b"one\ntwo")))))?;
    /// assert_eq!(cursor.fill()?, b"one\ntwo");
    /// cursor.consume(4);
    /// assert_eq!(cursor.fill()?, b"two");
    /// cursor.consume(3);
    /// assert!(cursor.needs_event());
    /// cursor.handle(None)?; // the events ended (after InvokeComplete)
    /// assert!(!cursor.needs_event());
    /// assert!(cursor.fill()?.is_empty()); // end of the payload
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The error [`handle`](Self::handle) returned, again.
    pub fn fill(&self) -> io::Result<&[u8]> {
        match &self.state {
            CursorState::Failed(kind, message) if self.chunk.is_empty() => {
                Err(io::Error::new(*kind, message.clone()))
            }
            _ => Ok(&self.chunk),
        }
    }

    /// Marks `n` of the bytes [`fill`](Self::fill) gave as read (at most as many as it gave)
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.chunk.len());
        bytes::Buf::advance(&mut self.chunk, n);
    }

    /// Takes the next event of the response, `None` when the events ended
    ///
    /// # Errors
    ///
    /// The `io::Error` for the reader to return: a function error
    /// ([`ClientError::Function`]) or the events' error, inside (see
    /// [`ClientError::from_io`]).
    pub fn handle(&mut self, next: Option<Result<Event, ClientError>>) -> io::Result<()> {
        let error = match next {
            Some(Ok(Event::PayloadChunk(bytes))) => {
                self.chunk = bytes;
                return Ok(());
            }
            Some(Ok(Event::InvokeComplete(c))) if c.is_error() => ClientError::Function(c),
            Some(Ok(_)) => return Ok(()),
            Some(Err(e)) => e,
            None => {
                self.state = CursorState::Ended;
                return Ok(());
            }
        };
        let error = error.into_io();
        self.state = CursorState::Failed(error.kind(), error.to_string());
        Err(error)
    }

    /// Payload bytes taken from an event and not read yet
    pub fn buffered(&self) -> usize {
        self.chunk.len()
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn shown_with_attempts_and_the_transport_error_as_source() {
        let e = ClientError::Transport {
            kind: TransportFailure::Connect,
            address: "127.0.0.1:9".into(),
            attempts: 3,
            source: "connection refused".into(),
        };
        assert_eq!(
            e.to_string(),
            format!(
                "{} (127.0.0.1:9) after 3 attempts",
                TransportFailure::Connect
            )
        );
        assert_eq!(e.source().unwrap().to_string(), "connection refused");
        let e = ClientError::Credentials("no provider had any".into());
        assert_eq!(e.to_string(), "no credentials to sign with");
        assert_eq!(e.source().unwrap().to_string(), "no provider had any");
        // wrapped errors are shown as themselves, their source is the source
        let e = ClientError::from(BuildError::from(EndpointError::MissingRegion));
        assert_eq!(
            e.to_string(),
            "cannot build the request URI: Invalid Configuration: Missing Region"
        );
        assert_eq!(
            e.source().unwrap().to_string(),
            "Invalid Configuration: Missing Region"
        );
        let e = ClientError::from(ConfigError::from(crate::config::ProfileFileError::Read {
            path: "/x".into(),
            message: "denied".into(),
        }));
        assert_eq!(e.to_string(), "could not read profile file `/x`: denied");
        assert!(e.source().is_none());
    }

    fn throttled() -> Box<ServiceError> {
        Box::new(ServiceError::new(
            invoke_proto::ServiceErrorKind::TooManyRequests,
            "slow down",
        ))
    }

    /// The `InvokeComplete` of a function that failed
    fn failed() -> InvokeComplete {
        InvokeComplete {
            error_code: Some("Unhandled".into()),
            error_details: Some("boom".into()),
            ..InvokeComplete::default()
        }
    }

    fn transport(kind: TransportFailure) -> ClientError {
        ClientError::Transport {
            kind,
            address: "127.0.0.1:9".into(),
            attempts: 2,
            source: "reset".into(),
        }
    }

    /// What each accessor finds in each kind of error, and the `io::ErrorKind` a payload
    /// reader gives it
    #[test]
    fn accessors_and_io_kinds() {
        use io::ErrorKind as K;
        let failed = failed();
        let cases = [
            (
                ClientError::Service {
                    error: throttled(),
                    attempts: 3,
                },
                true,
                None,
                Some(3),
                K::Other,
            ),
            (
                ClientError::Stream(StreamError::Exception(throttled())),
                true,
                None,
                None,
                K::Other,
            ),
            (
                transport(TransportFailure::IdleTimeout),
                false,
                Some(TransportFailure::IdleTimeout),
                Some(2),
                K::TimedOut,
            ),
            (
                transport(TransportFailure::Deadline),
                false,
                Some(TransportFailure::Deadline),
                Some(2),
                K::TimedOut,
            ),
            (
                transport(TransportFailure::BodyRead),
                false,
                Some(TransportFailure::BodyRead),
                Some(2),
                K::ConnectionAborted,
            ),
            (
                ClientError::Stream(StreamError::MissingInvokeComplete {
                    chunks: 1,
                    bytes: 5,
                }),
                false,
                None,
                None,
                K::UnexpectedEof,
            ),
            (
                ClientError::Stream(StreamError::Decode(invoke_proto::DecodeError::Truncated {
                    offset: 0,
                    buffered: 3,
                })),
                false,
                None,
                None,
                K::UnexpectedEof,
            ),
            (
                ClientError::Function(failed.clone()),
                false,
                None,
                None,
                K::Other,
            ),
            (
                ClientError::PayloadTooLarge { limit: 8 },
                false,
                None,
                None,
                K::Other,
            ),
            (ClientError::EventsEnded, false, None, None, K::Other),
        ];
        for (e, service, failure, attempts, kind) in cases {
            let name = format!("{e:?}");
            assert_eq!(e.service_error().is_some(), service, "{name}");
            if service {
                assert_eq!(
                    e.service_error().unwrap().message.as_deref(),
                    Some("slow down")
                );
            }
            assert_eq!(e.transport_failure(), failure, "{name}");
            assert_eq!(e.attempts(), attempts, "{name}");
            assert_eq!(e.io_kind(), kind, "{name}");
            assert_eq!(
                e.function_error(),
                matches!(e, ClientError::Function(_)).then_some(&failed),
                "{name}"
            );
            // through a payload reader's io::Error and back
            let text = e.to_string();
            let io = e.into_io();
            assert_eq!(io.kind(), kind);
            assert_eq!(ClientError::from_io(&io).unwrap().to_string(), text);
        }
        assert!(ClientError::from_io(&io::Error::other("not ours")).is_none());
    }

    #[test]
    fn only_a_failed_invoke_complete_fails_a_reader() {
        assert_eq!(ReaderFailure::function(&InvokeComplete::default()), None);
        let failed = failed();
        let failure = ReaderFailure::function(&failed).unwrap();
        assert_eq!(failure, ReaderFailure::of(&ClientError::Function(failed)));
        let mut cursor = PayloadCursor::failed(failure);
        let e = cursor.next_bytes(8).unwrap().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Other);
    }

    #[test]
    fn payload_cursor_steps() {
        let mut c = PayloadCursor::new();
        // a read of nothing needs no event
        assert!(c.next_bytes(0).unwrap().unwrap().is_empty());
        assert!(c.next_bytes(4).is_none());
        c.handle(Some(Ok(Event::PayloadChunk(Bytes::from_static(b"hello")))))
            .unwrap();
        assert_eq!(c.buffered(), 5);
        assert_eq!(&c.next_bytes(2).unwrap().unwrap()[..], b"he");
        assert_eq!(c.buffered(), 3);
        assert!(c.next_bytes(0).unwrap().unwrap().is_empty());
        assert_eq!(&c.next_bytes(9).unwrap().unwrap()[..], b"llo");
        assert_eq!(c.buffered(), 0);
        // a successful InvokeComplete is no failure; the end of the events is the end
        c.handle(Some(Ok(Event::InvokeComplete(InvokeComplete::default()))))
            .unwrap();
        assert!(c.next_bytes(4).is_none());
        c.handle(None).unwrap();
        assert!(c.next_bytes(4).unwrap().unwrap().is_empty());
        // a failed one fails the read, with the function error inside, and every later one
        let mut c = PayloadCursor::new();
        let failed = failed();
        let e = c
            .handle(Some(Ok(Event::InvokeComplete(failed.clone()))))
            .unwrap_err();
        assert_eq!(
            ClientError::from_io(&e).and_then(ClientError::function_error),
            Some(&failed)
        );
        let again = c.next_bytes(4).unwrap().unwrap_err();
        assert_eq!((again.kind(), again.to_string()), (e.kind(), e.to_string()));
    }

    /// The buffered view: an error, once returned, stays (never an empty fill that reads as
    /// the end); a consume past what was given stops at its end
    #[test]
    fn fill_repeats_a_failure_and_consume_stops_at_the_chunk() {
        let mut c = PayloadCursor::new();
        c.handle(Some(Ok(Event::PayloadChunk(Bytes::from_static(b"abc")))))
            .unwrap();
        c.consume(100);
        assert!(c.needs_event());
        assert_eq!(c.buffered(), 0);
        let failed = InvokeComplete {
            error_code: Some("Unhandled".to_owned()),
            ..InvokeComplete::default()
        };
        let e = c
            .handle(Some(Ok(Event::InvokeComplete(failed))))
            .unwrap_err();
        assert!(!c.needs_event());
        for _ in 0..2 {
            let again = c.fill().unwrap_err();
            assert_eq!((again.kind(), again.to_string()), (e.kind(), e.to_string()));
        }
        let mut c = PayloadCursor::failed(ReaderFailure::of(&ClientError::Config("x".into())));
        assert!(!c.needs_event());
        assert!(c.fill().is_err());
        c.consume(1);
        assert!(c.fill().is_err());
    }

    /// Payload bytes still buffered when the events fail (a caller that handed an event on
    /// before reading them all) are read first, through either view; the error comes after
    #[test]
    fn bytes_buffered_before_a_failure_are_read_first() {
        let fail = |c: &mut PayloadCursor| {
            c.handle(Some(Ok(Event::PayloadChunk(Bytes::from_static(b"abc")))))
                .unwrap();
            c.handle(Some(Err(ClientError::Config("broken".into()))))
                .unwrap_err();
        };
        let mut c = PayloadCursor::new();
        fail(&mut c);
        assert!(!c.needs_event());
        assert_eq!(c.fill().unwrap(), b"abc");
        c.consume(3);
        assert!(c.fill().unwrap_err().to_string().contains("broken"));
        let mut c = PayloadCursor::new();
        fail(&mut c);
        assert_eq!(&c.next_bytes(8).unwrap().unwrap()[..], b"abc");
        assert!(c.next_bytes(8).unwrap().is_err());
    }
}
