//! Sans-IO protocol core for AWS Lambda `InvokeWithResponseStream`
//!
//! This crate carries one invocation end to end without doing any IO, reading a clock or
//! the environment, or spawning anything: the caller owns sockets and time and passes bytes
//! in, so any transport (the planned ureq and hyper adapters, the emulator, or your own
//! runtime) drives it with a few lines. Data flows one way:
//!
//! [`InvokeParams`] → [`build_request`] → [`sign`] → (transport) →
//! [`parse_response_head`] → body bytes → [`InvokeStream`] → [`Event`]s
//!
//! Every public item is at the crate root. The server side of each step is here too, for
//! emulators and tests: [`parse_request`] turns a received request back into
//! [`InvokeParams`], [`Event::encode`] and [`encode_payload_chunk`] write the response
//! stream, and [`ServiceError::to_response`] writes an error response.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use invoke_proto::bytes::BytesMut;
//! use invoke_proto::http::{HeaderMap, StatusCode};
//! use invoke_proto::{
//!     build_request, parse_response_head, resolve_endpoint, sign, Credentials, EndpointConfig,
//!     Event, InvokeComplete, InvokeParams, LogType, ResponseHead,
//! };
//!
//! // 1. Parameters -> validated, signed request (time and credentials are passed in)
//! let endpoint = resolve_endpoint(&EndpointConfig::default().with_region("us-east-1"))?;
//! let params = InvokeParams::new("my-function", r#"{"hello":"world"}"#)
//!     .qualifier("$LATEST")
//!     .log_type(LogType::Tail);
//! let mut request = build_request(&params, &endpoint)?;
//! let creds = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None);
//! let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_705_320_000);
//! sign(&mut request, &creds, &endpoint.signing_scope(), now)?;
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
//! // 3. Body bytes, in whatever chunks they arrive -> events (here, the body a server
//! //    would write with this crate's encoders)
//! let mut body = BytesMut::new();
//! invoke_proto::encode_payload_chunk(b"Hello, ", &mut body)?;
//! invoke_proto::encode_payload_chunk(b"world", &mut body)?;
//! Event::InvokeComplete(InvokeComplete::success().with_log(b"hi")).encode(&mut body)?;
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
//! ([`MessageDecoder`], [`Message`], [`encode_message`]) and Lambda's events, on both
//! sides of the wire. Out of scope: sockets, TLS, timeouts, retries
//! (each [`ServiceError`] says whether and when to retry), reading credentials, the
//! environment or the clock: adapters do those.
//!
//! Features choose the SHA-256 / HMAC-SHA256 backend of the signer: `rustcrypto` (the
//! default, RustCrypto's `sha2` and `hmac`) or `ring` (which a rustls-based transport already
//! links; it wins when both are enabled). One of the two is required.
#![cfg_attr(fuzzing, allow(missing_docs))]

mod clock;
mod credentials;
mod endpoint;
mod error;
mod event_encode;
mod eventstream;
#[cfg(fuzzing)]
pub mod fuzzing;
mod invocation;
#[doc(hidden)]
pub mod json;
mod names;
mod params;
mod percent;
mod rate_limit;
mod request;
mod response;
mod retry;
mod server_request;
mod service_error;
mod sigv4;
mod stream;

pub use bytes;
pub use http;

pub use clock::{
    CLOCK_SKEW_ERRORS, ClockSkew, MAX_CLOCK_OFFSET, MIN_SKEW_CORRECTION, format_http_date,
    parse_http_date,
};
pub use credentials::Credentials;
pub use endpoint::{
    DEFAULT_SIGNING_REGION, Endpoint, EndpointConfig, EndpointError, Scheme, UrlProblem,
    partition_id, redact_url, regional_host, resolve_endpoint,
};
pub use error::{DecodeError, EncodeError, Error, HeaderNameProblem, LimitKind, SignError};
pub use event_encode::{MAX_PAYLOAD_CHUNK_LEN, encode_payload_chunk};
pub use eventstream::{
    Header, HeaderValue, Headers, HeadersBuilder, HeadersIter, Limits, MAX_HEADER_NAME_LEN,
    MAX_HEADER_VALUE_LEN, MAX_MESSAGE_PAYLOAD_LEN, MESSAGE_OVERHEAD, Message, MessageDecoder,
    PRELUDE_LEN, Prelude, Utf8Bytes, encode_message, encode_message_with_limits, format_uuid,
};
pub use invocation::{DriverAction, ERROR_BODY_LIMIT, InvokeDriver, InvokeError};
pub use names::{
    CONTENT_TYPE_EVENT_STREAM, CONTENT_TYPE_HEADER, CONTENT_TYPE_JSON, CONTENT_TYPE_OCTET_STREAM,
    ERROR_CODE_HEADER, ERROR_MESSAGE_HEADER, EVENT_INVOKE_COMPLETE, EVENT_PAYLOAD_CHUNK,
    EVENT_TYPE_HEADER, EXCEPTION_TYPE_HEADER, INVOKE_PATH_PREFIX, INVOKE_PATH_SUFFIX,
    MESSAGE_TYPE_ERROR, MESSAGE_TYPE_EVENT, MESSAGE_TYPE_EXCEPTION, MESSAGE_TYPE_HEADER,
    QUALIFIER_QUERY, RETRY_AFTER, STREAM_PATH_PREFIX, STREAM_PATH_SUFFIX, X_AMZ_CLIENT_CONTEXT,
    X_AMZ_EXECUTED_VERSION, X_AMZ_FUNCTION_ERROR, X_AMZ_INVOCATION_TYPE, X_AMZ_LOG_RESULT,
    X_AMZ_LOG_TYPE, X_AMZ_TENANT_ID, X_AMZN_ERROR_TYPE, X_AMZN_REQUEST_ID, X_AMZN_TRACE_ID,
};
pub use params::{
    BuildError, FunctionNameParts, InvocationType, InvokeParams, LogType, MAX_BARE_NAME_LEN,
    MAX_CLIENT_CONTEXT_LEN, MAX_FUNCTION_NAME_LEN, MAX_PAYLOAD_LEN, MAX_QUALIFIER_LEN,
    MAX_TENANT_ID_LEN, Parameter, parse_function_name,
};
pub use rate_limit::RateLimiter;
pub use request::{build_request, trace_id_value};
pub use response::{
    DryRunHead, ErrorHead, ResponseError, ResponseHead, ResponseMeta, StreamHead,
    parse_response_head,
};
pub use retry::{
    AttemptFailure, DEFAULT_RETRY_QUOTA, GiveUp, NO_RETRY_INCREMENT, RETRY_COST, RetryConfig,
    RetryDecision, RetryQuota, TIMEOUT_RETRY_COST, TransportFailure, backoff, decide,
};
pub use server_request::{
    MAX_EVENT_PAYLOAD_LEN, Operation, ParsedRequest, RequestError, Route, parse_request,
    parse_route,
};
pub use service_error::{RetryPolicy, ServiceError, ServiceErrorKind};
pub use sigv4::{
    SignedHead, SigningScope, SigningSettings, SigningSteps, VerifyError, check_signed_head,
    format_amz_date, parse_amz_date, sign, sign_with,
};
pub use stream::{Event, EventDecoder, InvokeComplete, InvokeStream, StreamError};
