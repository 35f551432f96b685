//! Sans-IO protocol core for AWS Lambda `InvokeWithResponseStream`
//!
//! This crate turns bytes into typed values and back without doing any IO, reading a clock
//! or the environment, or spawning anything: the caller owns sockets and time and passes
//! bytes in. Today it holds the `application/vnd.amazon.eventstream` codec
//! ([`eventstream`]): an incremental, zero-copy decoder that takes the response body in
//! chunks of any size, and the matching encoder.
//!
//! ```
//! use invoke_proto::bytes::{Bytes, BytesMut};
//! use invoke_proto::eventstream::{encode, Headers, Message, MessageDecoder};
//!
//! // What Lambda sends: a PayloadChunk event (protocol.md §4.7)
//! let mut headers = Headers::builder();
//! headers
//!     .push(":event-type", "PayloadChunk")?
//!     .push(":content-type", "application/octet-stream")?
//!     .push(":message-type", "event")?;
//! let message = Message::new(headers.build()?, "Hello");
//! let mut wire = BytesMut::new();
//! encode(&message, &mut wire)?;
//! assert_eq!(wire.len(), 111);
//!
//! // The body arrives in arbitrary pieces; messages come out whole
//! let wire = wire.freeze();
//! let mut decoder = MessageDecoder::new();
//! decoder.feed(wire.slice(..50));
//! assert!(decoder.next_message()?.is_none()); // need more bytes: not an error
//! decoder.feed(wire.slice(50..));
//! let got = decoder.next_message()?.expect("one whole message");
//! decoder.finish()?; // end of input exactly after a message
//! assert_eq!(got.headers.get_str(":event-type"), Some("PayloadChunk"));
//! assert_eq!(got.payload, Bytes::from_static(b"Hello"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! In scope: framing, CRCs, limits, typed errors. Out of scope: sockets, TLS, timeouts,
//! retries, reading credentials or the clock (adapters do those).
#![cfg_attr(fuzzing, allow(missing_docs))]

pub mod credentials;
pub mod endpoint;
pub mod error;
pub mod eventstream;
pub mod params;
pub mod request;
pub mod response;
pub mod service_error;
pub mod sigv4;
pub mod stream;

pub use bytes;
pub use credentials::Credentials;
pub use error::{DecodeError, EncodeError};
pub use http;
pub use params::{BuildError, InvocationType, InvokeParams, LogType};
pub use request::build_request;
pub use response::{
    DryRunHead, ErrorHead, ResponseError, ResponseHead, ResponseMeta, StreamHead,
    parse_response_head,
};
pub use service_error::{ErrorKind, RetryPolicy, ServiceError};
pub use sigv4::{SignError, SigningScope, SigningSettings, sign};
pub use stream::{Event, InvokeComplete, InvokeStream, StreamError};
