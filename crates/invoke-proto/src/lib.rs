//! Sans-IO protocol core for AWS Lambda `InvokeWithResponseStream`
//!
//! This crate carries one invocation end to end without doing any IO, reading a clock or
//! the environment, or spawning anything: the caller owns sockets and time and passes bytes
//! in, so any transport (the planned ureq and hyper adapters, the emulator, or your own
//! runtime) drives it with a few lines. Data flows one way:
//!
//! [`InvokeParams`] → [`build_request`] → [`sigv4::sign`] → (transport) →
//! [`parse_response_head`] → body bytes → [`InvokeStream`] → [`Event`]s
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use invoke_proto::bytes::{Bytes, BytesMut};
//! use invoke_proto::credentials::Credentials;
//! use invoke_proto::endpoint::{resolve, EndpointConfig};
//! use invoke_proto::eventstream::{encode, Headers, Message};
//! use invoke_proto::http::{HeaderMap, StatusCode};
//! use invoke_proto::sigv4::{sign, SigningScope};
//! use invoke_proto::{build_request, parse_response_head, Event, InvokeParams, LogType, ResponseHead};
//!
//! // 1. Parameters -> validated, signed request (time and credentials are passed in)
//! let endpoint = resolve(&EndpointConfig::default().with_region("us-east-1"))?;
//! let params = InvokeParams::new("my-function", r#"{"hello":"world"}"#)
//!     .qualifier("$LATEST")
//!     .log_type(LogType::Tail);
//! let mut request = build_request(&params, &endpoint)?;
//! let creds = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None);
//! let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_705_320_000);
//! sign(&mut request, &creds, &SigningScope::lambda(endpoint.region()), now)?;
//! assert!(request.headers().contains_key("authorization"));
//! assert_eq!(
//!     request.uri().path(),
//!     "/2021-11-15/functions/my-function/response-streaming-invocations"
//! );
//!
//! // 2. (a transport sends it; here, a canned response) -> response head
//! let mut headers = HeaderMap::new();
//! headers.insert("x-amz-executed-version", "$LATEST".parse()?);
//! let ResponseHead::Stream(head) = parse_response_head(StatusCode::OK, &headers)? else {
//!     unreachable!("a 200 is a stream")
//! };
//! assert_eq!(head.meta.executed_version.as_deref(), Some("$LATEST"));
//!
//! // 3. Body bytes, in whatever chunks they arrive -> events
//! let event = |kind: &'static str, payload: &'static str| -> Result<Bytes, Box<dyn std::error::Error>> {
//!     let mut h = Headers::builder();
//!     h.push(":event-type", kind)?.push(":message-type", "event")?;
//!     Ok(Message::new(h.build()?, payload).to_bytes()?)
//! };
//! let mut body = BytesMut::new();
//! body.extend_from_slice(&event("PayloadChunk", "Hello, ")?);
//! body.extend_from_slice(&event("PayloadChunk", "world")?);
//! body.extend_from_slice(&event("InvokeComplete", r#"{"LogResult":"aGk="}"#)?);
//! let body = body.freeze();
//!
//! let mut stream = head.into_stream();
//! let mut text = Vec::new();
//! for chunk in body.chunks(7) {
//!     stream.feed(body.slice_ref(chunk)); // zero copy where a message lies in one chunk
//!     while let Some(event) = stream.next_event()? {
//!         match event {
//!             Event::PayloadChunk(bytes) => text.extend_from_slice(&bytes),
//!             Event::InvokeComplete(done) => {
//!                 assert!(!done.is_error());
//!                 assert_eq!(done.decoded_log()?.as_deref(), Some(&b"hi"[..]));
//!             }
//!             _ => {}
//!         }
//!     }
//! }
//! stream.finish()?; // a body that ends before InvokeComplete is an error, never a clean end
//! assert_eq!(text, b"Hello, world");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! In scope: parameters and their validation, endpoints, request building, SigV4, response
//! heads and typed service errors, the `application/vnd.amazon.eventstream` codec
//! ([`eventstream`]) and Lambda's events. Out of scope: sockets, TLS, timeouts, retries
//! (each [`ServiceError`] says whether and when to retry), reading credentials, the
//! environment or the clock: adapters do those.
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
pub use stream::{Event, EventDecoder, InvokeComplete, InvokeStream, StreamError};
