//! The protocol's strings in one place: routes, HTTP header names, event-stream header names
//! and values
//!
//! Both sides of the wire use these: the client ([`build_request`](crate::build_request),
//! the stream decoder) and the server side (the request parser, the event encoders, error
//! responses).

// ===== routes =====

/// Path prefix of `InvokeWithResponseStream` (API version 2021-11-15)
pub const STREAM_PATH_PREFIX: &str = "/2021-11-15/functions/";
/// Path suffix of `InvokeWithResponseStream`
pub const STREAM_PATH_SUFFIX: &str = "/response-streaming-invocations";
/// Path prefix of the buffered `Invoke` operation (API version 2015-03-31)
pub const INVOKE_PATH_PREFIX: &str = "/2015-03-31/functions/";
/// Path suffix of the buffered `Invoke` operation
pub const INVOKE_PATH_SUFFIX: &str = "/invocations";
/// Query parameter naming the version or alias
pub const QUALIFIER_QUERY: &str = "Qualifier";

// ===== HTTP request and response headers (lower case, as `http` stores them) =====

/// Request header: `RequestResponse` or `DryRun` (and `Event` for `Invoke`)
pub const X_AMZ_INVOCATION_TYPE: &str = "x-amz-invocation-type";
/// Request header: `None` or `Tail`
pub const X_AMZ_LOG_TYPE: &str = "x-amz-log-type";
/// Request header: base64 of the client context JSON
pub const X_AMZ_CLIENT_CONTEXT: &str = "x-amz-client-context";
/// Request header: the tenant of a tenant-isolated function
pub const X_AMZ_TENANT_ID: &str = "x-amz-tenant-id";
/// Request header: the caller's X-Ray trace (never signed, as proxies may change it)
pub const X_AMZN_TRACE_ID: &str = "x-amzn-trace-id";
/// Response header: the version that ran
pub const X_AMZ_EXECUTED_VERSION: &str = "x-amz-executed-version";
/// Response header of `Invoke`: set when the function failed
pub const X_AMZ_FUNCTION_ERROR: &str = "x-amz-function-error";
/// Response header of `Invoke`: base64 of the log tail
pub const X_AMZ_LOG_RESULT: &str = "x-amz-log-result";
/// Response header: the request id
pub const X_AMZN_REQUEST_ID: &str = "x-amzn-requestid";
/// Error response header: the error code
pub const X_AMZN_ERROR_TYPE: &str = "x-amzn-errortype";
/// Error response header: seconds to wait before retrying
pub const RETRY_AFTER: &str = "retry-after";

// ===== media types =====

/// Media type of opaque bytes (request payloads, `PayloadChunk` messages)
pub const CONTENT_TYPE_OCTET_STREAM: &str = "application/octet-stream";
/// Media type of JSON (error bodies, `InvokeComplete` and `exception` payloads)
pub const CONTENT_TYPE_JSON: &str = "application/json";
/// Media type of an event-stream body
pub const CONTENT_TYPE_EVENT_STREAM: &str = "application/vnd.amazon.eventstream";

// ===== event-stream headers =====

/// Event-stream header: `event`, `exception` or `error`
pub const MESSAGE_TYPE_HEADER: &str = ":message-type";
/// Event-stream header of an `event` message: which event
pub const EVENT_TYPE_HEADER: &str = ":event-type";
/// Event-stream header: the media type of the payload
pub const CONTENT_TYPE_HEADER: &str = ":content-type";
/// Event-stream header of an `exception` message: the error code
pub const EXCEPTION_TYPE_HEADER: &str = ":exception-type";
/// Event-stream header of an `error` message: the error code
pub const ERROR_CODE_HEADER: &str = ":error-code";
/// Event-stream header of an `error` message: the error message
pub const ERROR_MESSAGE_HEADER: &str = ":error-message";

/// `:message-type` of an event
pub const MESSAGE_TYPE_EVENT: &str = "event";
/// `:message-type` of a modeled error in the stream
pub const MESSAGE_TYPE_EXCEPTION: &str = "exception";
/// `:message-type` of an unmodeled error in the stream
pub const MESSAGE_TYPE_ERROR: &str = "error";

/// `:event-type` of a piece of the function's response
pub const EVENT_PAYLOAD_CHUNK: &str = "PayloadChunk";
/// `:event-type` of the last event
pub const EVENT_INVOKE_COMPLETE: &str = "InvokeComplete";

// ===== JSON members =====

/// `InvokeComplete` member: the function's error code
pub(crate) const JSON_ERROR_CODE: &str = "ErrorCode";
/// `InvokeComplete` member: the function's error details
pub(crate) const JSON_ERROR_DETAILS: &str = "ErrorDetails";
/// `InvokeComplete` member: base64 of the log tail
pub(crate) const JSON_LOG_RESULT: &str = "LogResult";
