//! The error of an invocation

use std::io;

use invoke_proto::{
    BuildError, InvokeComplete, ResponseError, ServiceError, SignError, StreamError,
};

pub use invoke_proto::TransportFailure;

/// Any error of this crate's boxed sources (credential providers, transport errors)
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why an invocation failed
///
/// Errors that happen while the response streams reach the caller as `Err` items of the
/// event iterator, or as the `io::Error` of the payload reader (get this type back with
/// [`Error::from_io`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client configuration is not usable (a bad proxy URL, for example)
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// The invocation parameters are not valid; nothing was sent
    #[error(transparent)]
    InvalidParams(#[from] BuildError),
    /// The credentials provider failed
    #[error("credentials: {0}")]
    Credentials(#[source] BoxError),
    /// The request could not be signed
    #[error(transparent)]
    Sign(#[from] SignError),
    /// The service answered with an error (after `attempts` attempts)
    #[error("{error} (after {attempts} attempt{})", plural(*attempts))]
    Service {
        /// The typed error, with its code, message, request id and retry hints
        error: Box<ServiceError>,
        /// Attempts made
        attempts: u32,
    },
    /// The response head is not one this operation answers with (such as a 3xx status)
    #[error(transparent)]
    Response(#[from] ResponseError),
    /// The response stream failed: broken framing, an in-stream exception, truncation, or
    /// no `InvokeComplete`
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// The function failed: its `InvokeComplete` carries an `ErrorCode` (only from the
    /// payload reader; the event iterator yields that `InvokeComplete` as an event)
    #[error("function error {}: {}", .0.error_code.as_deref().unwrap_or_default(), .0.error_details.as_deref().unwrap_or_default())]
    Function(InvokeComplete),
    /// The connection failed or timed out
    #[error("{kind} ({address}) after {attempts} attempt{}", plural(*attempts))]
    Transport {
        /// What failed
        kind: TransportFailure,
        /// The endpoint (`host:port`) the client talked to
        address: String,
        /// Attempts made
        attempts: u32,
        /// The transport's error
        #[source]
        source: BoxError,
    },
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

impl Error {
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

    /// This error as an `io::Error` whose kind says what happened
    pub(crate) fn into_io(self) -> io::Error {
        let kind = match &self {
            Self::Transport {
                kind: TransportFailure::IdleTimeout | TransportFailure::Deadline,
                ..
            } => io::ErrorKind::TimedOut,
            Self::Transport { .. } => io::ErrorKind::ConnectionAborted,
            Self::Stream(StreamError::MissingInvokeComplete { .. } | StreamError::Decode(_)) => {
                io::ErrorKind::UnexpectedEof
            }
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, self)
    }
}
