//! Typed service errors: every modeled error of `InvokeWithResponseStream`, common unmodeled
//! ones, and `Unknown`

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Response, StatusCode};
use serde_json::Value;

use crate::names::{CONTENT_TYPE_JSON, RETRY_AFTER, X_AMZN_ERROR_TYPE, X_AMZN_REQUEST_ID};

/// How a client should treat an error when deciding to retry
///
/// Retry only before the first byte of the stream reached the caller: once a `PayloadChunk`
/// was delivered the function has run, and a synchronous invoke is not idempotent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetryPolicy {
    /// Never retry automatically
    Never,
    /// Retry at most once or twice
    Limited,
    /// Retry with backoff (honouring `Retry-After` when given)
    Backoff,
}

macro_rules! error_kinds {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $status:literal, $retry:ident, $member:ident; )*) => {
        /// The error a response or an in-stream exception names
        ///
        /// One variant per modeled error of `InvokeWithResponseStream` (botocore model
        /// 2026-08-07), the common unmodeled front-end errors, and `Unknown`.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ServiceErrorKind {
            $( $(#[$doc])* $variant, )*
            /// Any other code; the code is kept in [`ServiceError::code`]
            Unknown,
        }

        impl ServiceErrorKind {
            /// The kind for an error code (already stripped of namespace and suffix)
            pub fn from_code(code: &str) -> Self {
                match code {
                    $( $code => Self::$variant, )*
                    _ => Self::Unknown,
                }
            }

            /// The error code, `None` for `Unknown`
            pub fn code(&self) -> Option<&'static str> {
                match self {
                    $( Self::$variant => Some($code), )*
                    Self::Unknown => None,
                }
            }

            /// The HTTP status the model gives this error, `None` for `Unknown`
            pub fn modeled_status(&self) -> Option<u16> {
                match self {
                    $( Self::$variant => Some($status), )*
                    Self::Unknown => None,
                }
            }

            /// The body member the service writes the message in (`message` or `Message`)
            fn message_member(&self) -> &'static str {
                match self {
                    $( Self::$variant => stringify!($member), )*
                    Self::Unknown => "message",
                }
            }

            fn policy(&self) -> Option<RetryPolicy> {
                match self {
                    $( Self::$variant => Some(RetryPolicy::$retry), )*
                    Self::Unknown => None,
                }
            }
        }

        /// Every known kind, in model order then the unmodeled ones
        #[cfg(test)]
        pub(crate) const ALL_KINDS: &[ServiceErrorKind] = &[ $( ServiceErrorKind::$variant, )* ];
    };
}

error_kinds! {
    /// Lambda lacks the EC2 permissions to set up VPC networking
    Ec2AccessDenied = "EC2AccessDeniedException", 502, Never, Message;
    /// EC2 throttled Lambda during function initialisation
    Ec2Throttled = "EC2ThrottledException", 502, Backoff, Message;
    /// Unexpected EC2 client error during setup (`EC2ErrorCode` kept)
    Ec2Unexpected = "EC2UnexpectedException", 502, Limited, Message;
    /// Read or write error on the attached file system
    EfsIo = "EFSIOException", 410, Never, Message;
    /// No network connection to the file system
    EfsMountConnectivity = "EFSMountConnectivityException", 408, Limited, Message;
    /// File system mount refused
    EfsMountFailure = "EFSMountFailureException", 403, Never, Message;
    /// File system mount timed out
    EfsMountTimeout = "EFSMountTimeoutException", 408, Limited, Message;
    /// Network interface quota reached
    EniLimitReached = "ENILimitReachedException", 502, Never, Message;
    /// A request parameter is invalid
    InvalidParameterValue = "InvalidParameterValueException", 400, Never, message;
    /// The body is not valid JSON, or a header is invalid
    InvalidRequestContent = "InvalidRequestContentException", 400, Never, message;
    /// Runtime or runtime version unsupported
    InvalidRuntime = "InvalidRuntimeException", 502, Never, Message;
    /// A security group of the VPC configuration is invalid
    InvalidSecurityGroupId = "InvalidSecurityGroupIDException", 502, Never, Message;
    /// A subnet of the VPC configuration is invalid
    InvalidSubnetId = "InvalidSubnetIDException", 502, Never, Message;
    /// The deployment package cannot be unzipped
    InvalidZipFile = "InvalidZipFileException", 502, Never, Message;
    /// KMS access denied while decrypting environment variables
    KmsAccessDenied = "KMSAccessDeniedException", 502, Never, Message;
    /// The KMS key is disabled
    KmsDisabled = "KMSDisabledException", 502, Never, Message;
    /// The KMS key state does not allow Decrypt
    KmsInvalidState = "KMSInvalidStateException", 502, Never, Message;
    /// The KMS key was not found
    KmsNotFound = "KMSNotFoundException", 502, Never, Message;
    /// The function has no published version
    NoPublishedVersion = "NoPublishedVersionException", 400, Never, Message;
    /// Lambda stopped a recursive invocation loop
    RecursiveInvocation = "RecursiveInvocationException", 400, Never, Message;
    /// The payload exceeds the invoke request size quota
    RequestTooLarge = "RequestTooLargeException", 413, Never, message;
    /// The resource exists already or another operation on it is in progress
    ResourceConflict = "ResourceConflictException", 409, Backoff, message;
    /// The function, version or alias does not exist
    ResourceNotFound = "ResourceNotFoundException", 404, Never, Message;
    /// The function is inactive; wait and retry
    ResourceNotReady = "ResourceNotReadyException", 502, Backoff, message;
    /// No network connection to the S3 Files access point
    S3FilesMountConnectivity = "S3FilesMountConnectivityException", 408, Limited, Message;
    /// S3 Files mount refused
    S3FilesMountFailure = "S3FilesMountFailureException", 403, Never, Message;
    /// S3 Files mount timed out
    S3FilesMountTimeout = "S3FilesMountTimeoutException", 408, Limited, Message;
    /// The serialised request entity is too large
    SerializedRequestEntityTooLarge = "SerializedRequestEntityTooLargeException", 413, Never, message;
    /// Internal service error
    Service = "ServiceException", 500, Backoff, Message;
    /// The request would exceed a service quota
    ServiceQuotaExceeded = "ServiceQuotaExceededException", 402, Never, Message;
    /// The SnapStart `afterRestore()` hook failed
    SnapStart = "SnapStartException", 400, Never, Message;
    /// Lambda is still initialising the function
    SnapStartNotReady = "SnapStartNotReadyException", 409, Backoff, Message;
    /// Lambda could not regenerate the SnapStart snapshot
    SnapStartRegenerationFailure = "SnapStartRegenerationFailureException", 409, Never, Message;
    /// The snapshot could not be restored in time
    SnapStartTimeout = "SnapStartTimeoutException", 408, Limited, Message;
    /// The configured subnets have no free IP addresses
    SubnetIpAddressLimitReached = "SubnetIPAddressLimitReachedException", 502, Never, Message;
    /// Throttled; see [`ServiceError::reason`] and [`ServiceError::retry_after`]
    TooManyRequests = "TooManyRequestsException", 429, Backoff, message;
    /// The request body content type is not JSON
    UnsupportedMediaType = "UnsupportedMediaTypeException", 415, Never, message;
    /// Unmodeled: the security token or access key is not valid
    UnrecognizedClient = "UnrecognizedClientException", 403, Never, message;
    /// Unmodeled: the caller may not invoke this function
    AccessDenied = "AccessDeniedException", 403, Never, Message;
    /// Unmodeled: the request signature does not match
    InvalidSignature = "InvalidSignatureException", 403, Never, message;
    /// Unmodeled: the session token has expired (refresh credentials, then retry)
    ExpiredToken = "ExpiredTokenException", 403, Never, message;
    /// Unmodeled: the `Authorization` header is malformed
    IncompleteSignature = "IncompleteSignatureException", 400, Never, message;
    /// Unmodeled: the request was not signed
    MissingAuthenticationToken = "MissingAuthenticationTokenException", 403, Never, message;
    /// Unmodeled: no operation at this method and path
    UnknownOperation = "UnknownOperationException", 404, Never, Message;
}

/// The throttling codes of the AWS SDKs' standard retry mode (botocore's list)
fn is_throttling_code(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestThrottledException"
            | "ProvisionedThroughputExceededException"
            | "TransactionInProgressException"
            | "RequestLimitExceeded"
            | "BandwidthLimitExceeded"
            | "LimitExceededException"
            | "RequestThrottled"
            | "SlowDown"
    )
}

/// Number of modeled errors of the operation (the first entries of [`ALL_KINDS`])
#[cfg(test)]
pub(crate) const MODELED_ERRORS: usize = 37;

/// Longest excerpt of an unparseable body kept in an error
const EXCERPT_LEN: usize = 256;

/// An error the service returned, before the stream or inside it
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceError {
    /// Which error
    pub kind: ServiceErrorKind,
    /// The error code as sent, stripped of namespace and suffix; empty if none was found
    pub code: String,
    /// HTTP status; `None` for an error that arrived inside the stream
    pub status: Option<u16>,
    /// `message` or `Message` of the body
    pub message: Option<String>,
    /// `Type` of the body (`User` on client errors)
    pub error_type: Option<String>,
    /// `Reason` of the body (throttling reason)
    pub reason: Option<String>,
    /// `EC2ErrorCode` of the body
    pub ec2_error_code: Option<String>,
    /// `Retry-After` header, in seconds
    pub retry_after_header: Option<String>,
    /// `x-amzn-RequestId` header
    pub request_id: Option<String>,
    /// Start of a body that was not a JSON object (lossy UTF-8, at most 256 bytes)
    pub body_excerpt: Option<String>,
}

impl ServiceError {
    /// An error of a known kind, as a server answers it
    ///
    /// The code and the HTTP status come from the kind ([`ServiceErrorKind::code`],
    /// [`ServiceErrorKind::modeled_status`]); `Type` is `User` for a 4xx status and `Service` for a
    /// 5xx one. An `Unknown` kind has an empty code and no status: a response made from it
    /// has status 500 and no `X-Amzn-ErrorType`.
    pub fn new(kind: ServiceErrorKind, message: impl Into<String>) -> Self {
        let status = kind.modeled_status();
        Self {
            code: kind.code().unwrap_or_default().to_owned(),
            error_type: status.map(|s| if s >= 500 { "Service" } else { "User" }.to_owned()),
            kind,
            status,
            message: Some(message.into()),
            reason: None,
            ec2_error_code: None,
            retry_after_header: None,
            request_id: None,
            body_excerpt: None,
        }
    }

    /// The same error asking the client to wait `after` before retrying (`Retry-After`, in
    /// whole seconds, rounded up)
    #[must_use]
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        self.retry_after_header = Some(secs.to_string());
        self
    }

    /// The same error with a `Reason` (the throttling reason of `TooManyRequestsException`)
    #[must_use]
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// The same error with a request id (`x-amzn-RequestId`)
    #[must_use]
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    /// The JSON body the service writes for this error: `Type`, the message under the
    /// member name the model gives this error (`message` or `Message`), `Reason` and
    /// `EC2ErrorCode` when set
    pub fn to_json_body(&self) -> String {
        let mut body = serde_json::Map::new();
        if let Some(t) = &self.error_type {
            body.insert("Type".into(), Value::from(t.as_str()));
        }
        if let Some(m) = &self.message {
            body.insert(self.kind.message_member().into(), Value::from(m.as_str()));
        }
        if let Some(r) = &self.reason {
            body.insert("Reason".into(), Value::from(r.as_str()));
        }
        if let Some(c) = &self.ec2_error_code {
            body.insert("EC2ErrorCode".into(), Value::from(c.as_str()));
        }
        Value::Object(body).to_string()
    }

    /// This error as the HTTP response the service sends
    ///
    /// Status: [`status`](Self::status), else the kind's modeled status, else 500. Headers:
    /// `Content-Type: application/json`, `X-Amzn-ErrorType` (the code, when not empty),
    /// `x-amzn-RequestId` and `Retry-After` when set. Body: [`to_json_body`](Self::to_json_body).
    /// A code, request id or `Retry-After` value that cannot be a header value is left out.
    pub fn to_response(&self) -> Response<Bytes> {
        let status = self
            .status
            .or_else(|| self.kind.modeled_status())
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = Response::new(Bytes::from(self.to_json_body()));
        *resp.status_mut() = status;
        let h = resp.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_JSON));
        let optional = [
            (
                X_AMZN_ERROR_TYPE,
                Some(self.code.as_str()).filter(|c| !c.is_empty()),
            ),
            (X_AMZN_REQUEST_ID, self.request_id.as_deref()),
            (RETRY_AFTER, self.retry_after_header.as_deref()),
        ];
        for (name, value) in optional {
            if let Some(v) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
                h.insert(name, v);
            }
        }
        resp
    }

    /// Builds an error from what the response carried
    ///
    /// `header_code` is the raw `X-Amzn-ErrorType` value (or `:exception-type`), if any;
    /// the body's `code`, `Code` and `__type` are the fallbacks, as in the AWS restJson1
    /// protocol ([spec](https://smithy.io/2.0/aws/protocols/aws-restjson1-protocol.html#operation-error-serialization)).
    pub(crate) fn from_parts(
        status: Option<u16>,
        header_code: Option<&str>,
        body: &[u8],
        request_id: Option<String>,
        retry_after_header: Option<String>,
    ) -> Self {
        let json = serde_json::from_slice::<Value>(body)
            .ok()
            .filter(Value::is_object);
        let field = |names: &[&str]| -> Option<String> {
            let obj = json.as_ref()?.as_object()?;
            names
                .iter()
                .find_map(|n| obj.get(*n).and_then(Value::as_str))
                .map(str::to_owned)
        };
        let code = header_code
            .map(str::to_owned)
            .or_else(|| field(&["code", "Code", "__type"]))
            .map(|c| sanitize_code(&c).to_owned())
            .unwrap_or_default();
        let body_excerpt = (json.is_none() && !body.is_empty()).then(|| excerpt(body));
        Self {
            kind: ServiceErrorKind::from_code(&code),
            message: field(&["message", "Message"]),
            error_type: field(&["Type"]),
            reason: field(&["Reason"]),
            ec2_error_code: field(&["EC2ErrorCode"]),
            code,
            status,
            retry_after_header,
            request_id,
            body_excerpt,
        }
    }

    /// How to treat this error for retries
    ///
    /// Unknown codes: `Backoff` for 503 and 504, and for the throttling and transient codes
    /// of the AWS SDKs' standard retry mode (botocore's lists: `ThrottlingException`,
    /// `SlowDown`, `RequestTimeout`, ...), else `Never`.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.kind.policy().unwrap_or_else(|| {
            let standard = is_throttling_code(&self.code)
                || matches!(
                    self.code.as_str(),
                    "RequestTimeout" | "RequestTimeoutException" | "PriorRequestNotComplete"
                );
            if standard || matches!(self.status, Some(503 | 504)) {
                RetryPolicy::Backoff
            } else {
                RetryPolicy::Never
            }
        })
    }

    /// Whether the service throttled the request: `TooManyRequestsException`,
    /// `EC2ThrottledException`, or a throttling code of the AWS SDKs' standard retry mode
    /// (`ThrottlingException`, `SlowDown`, ...); the errors that slow down a
    /// [`RateLimiter`](crate::RateLimiter)
    pub fn is_throttling(&self) -> bool {
        matches!(
            self.kind,
            ServiceErrorKind::TooManyRequests | ServiceErrorKind::Ec2Throttled
        ) || is_throttling_code(&self.code)
    }

    /// Whether a retry may succeed (before any stream byte reached the caller)
    pub fn is_retryable(&self) -> bool {
        self.retry_policy() != RetryPolicy::Never
    }

    /// The delay the service asked for in `Retry-After`, if any and a number of seconds (at
    /// most a day: a longer wait asked for is a day's)
    pub fn retry_after(&self) -> Option<Duration> {
        const DAY: f64 = 86_400.0;
        let v = self.retry_after_header.as_deref()?.trim();
        let secs: f64 = v.parse().ok()?;
        // `try_`: no panic on `-0`
        Some(secs)
            .filter(|s| s.is_finite())
            .and_then(|s| Duration::try_from_secs_f64(s.min(DAY)).ok())
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = if self.code.is_empty() {
            "unknown error"
        } else {
            &self.code
        };
        write!(f, "{code}")?;
        if let Some(s) = self.status {
            write!(f, " (HTTP {s})")?;
        }
        if let Some(m) = &self.message {
            write!(f, ": {m}")?;
        } else if let Some(b) = &self.body_excerpt {
            write!(f, ": body {b:?}")?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " [request id {id}]")?;
        }
        Ok(())
    }
}

impl std::error::Error for ServiceError {}

/// Strips an error code as restJson1 asks: cut at the first `:`, keep what follows a `#`
pub(crate) fn sanitize_code(code: &str) -> &str {
    let code = code.split(':').next().unwrap_or(code);
    code.rsplit('#').next().unwrap_or(code).trim()
}

/// The start of a body as text: at most [`EXCERPT_LEN`] bytes of lossy UTF-8, then `…` if
/// anything was left out
pub(crate) fn excerpt(body: &[u8]) -> String {
    let lossy = String::from_utf8_lossy(&body[..body.len().min(EXCERPT_LEN)]);
    let mut s = String::with_capacity(EXCERPT_LEN + 3);
    let mut cut = body.len() > EXCERPT_LEN;
    for ch in lossy.chars() {
        if s.len() + ch.len_utf8() > EXCERPT_LEN {
            cut = true;
            break;
        }
        s.push(ch);
    }
    if cut {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind, its code in the header (plain and namespaced) or in the body (`__type`,
    /// `code`), the message in either spelling
    #[test]
    fn every_error_head() {
        for kind in ALL_KINDS {
            let code = kind.code().unwrap();
            let status = kind.modeled_status().unwrap();
            for (hdr, body) in [
                (
                    Some(code.to_owned()),
                    r#"{"Type":"User","Message":"m"}"#.to_owned(),
                ),
                (
                    Some(format!("aws.lambda#{code}:http://internal/")),
                    r#"{"message":"m"}"#.to_owned(),
                ),
                (
                    None,
                    format!(r#"{{"__type":"aws.lambda#{code}","message":"m"}}"#),
                ),
                (None, format!(r#"{{"code":"{code}","Message":"m"}}"#)),
            ] {
                let mut headers = http::HeaderMap::new();
                headers.insert(X_AMZN_REQUEST_ID, HeaderValue::from_static("req-1"));
                if let Some(h) = &hdr {
                    headers.insert(X_AMZN_ERROR_TYPE, HeaderValue::from_str(h).unwrap());
                }
                let status_code = StatusCode::from_u16(status).unwrap();
                let crate::ResponseHead::Error(e) =
                    crate::parse_response_head(status_code, &headers).unwrap()
                else {
                    panic!("{status} is an error")
                };
                let err = e.into_error(body.as_bytes());
                assert_eq!(&err.kind, kind, "{hdr:?} {body}");
                assert_eq!(err.code, code);
                assert_eq!(err.message.as_deref(), Some("m"));
                assert_eq!(err.status, Some(status));
                assert_eq!(err.request_id.as_deref(), Some("req-1"));
                assert!(err.to_string().contains(code));
            }
        }
    }

    #[test]
    fn every_kind_survives_its_response_and_exception() {
        for kind in ALL_KINDS {
            let e = ServiceError::new(kind.clone(), "m")
                .with_request_id("r")
                .with_retry_after(Duration::from_secs(3));
            let (parts, body) = e.to_response().into_parts();
            assert_eq!(Some(parts.status.as_u16()), kind.modeled_status());
            let crate::ResponseHead::Error(head) =
                crate::parse_response_head(parts.status, &parts.headers).unwrap()
            else {
                panic!("{kind:?} is not an error head");
            };
            assert_eq!(head.into_error(&body), e);
            let m = e.to_exception_message().unwrap();
            let mut stream = crate::InvokeStream::new();
            stream.feed(m.to_bytes().unwrap());
            let Err(crate::StreamError::Exception(got)) = stream.next_event() else {
                panic!("{kind:?} is not an exception");
            };
            assert_eq!((&got.kind, got.message.as_deref()), (kind, Some("m")));
        }
    }

    #[test]
    fn responses_carry_the_modeled_status_code_and_member() {
        let r = ServiceError::new(ServiceErrorKind::ResourceNotFound, "Function not found: f")
            .with_request_id("rid")
            .to_response();
        assert_eq!(r.status(), 404);
        assert_eq!(r.headers()["x-amzn-errortype"], "ResourceNotFoundException");
        assert_eq!(r.headers()["x-amzn-requestid"], "rid");
        assert_eq!(r.headers()["content-type"], "application/json");
        assert!(!r.headers().contains_key("retry-after"));
        assert_eq!(
            r.body(),
            r#"{"Message":"Function not found: f","Type":"User"}"#
        );
        let r = ServiceError::new(ServiceErrorKind::TooManyRequests, "Rate Exceeded.")
            .with_reason("CallerRateLimitExceeded")
            .with_retry_after(Duration::from_millis(1500))
            .to_response();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "2");
        assert_eq!(
            r.body(),
            r#"{"Reason":"CallerRateLimitExceeded","Type":"User","message":"Rate Exceeded."}"#
        );
        let r = ServiceError::new(ServiceErrorKind::Service, "boom").to_response();
        assert_eq!(r.status(), 500);
        assert_eq!(r.body(), r#"{"Message":"boom","Type":"Service"}"#);
        let r = ServiceError::new(ServiceErrorKind::Unknown, "?").to_response();
        assert_eq!(r.status(), 500);
        assert!(!r.headers().contains_key("x-amzn-errortype"));
        let bad = ServiceError::new(ServiceErrorKind::Service, "x").with_request_id("a\nb");
        assert!(!bad.to_response().headers().contains_key("x-amzn-requestid"));
    }

    /// Throttles: Lambda's two, and the standard retry mode's codes of unknown errors; not
    /// other retryable errors
    #[test]
    fn throttling_errors_are_told_apart() {
        for (status, code, throttling) in [
            (429, "TooManyRequestsException", true),
            (502, "EC2ThrottledException", true),
            (400, "ThrottlingException", true),
            (503, "SlowDown", true),
            (400, "RequestLimitExceeded", true),
            (500, "ServiceException", false),
            (503, "", false),
            (408, "RequestTimeoutException", false),
            (502, "ResourceNotReadyException", false),
            (404, "ResourceNotFoundException", false),
        ] {
            let code = (!code.is_empty()).then_some(code);
            let e = ServiceError::from_parts(Some(status), code, b"{}", None, None);
            assert_eq!(e.is_throttling(), throttling, "{status} {code:?}");
            if throttling {
                assert!(e.is_retryable(), "{code:?}");
            }
        }
    }

    #[test]
    fn codes_are_sanitized() {
        for raw in [
            "ResourceNotFoundException",
            "ResourceNotFoundException:http://internal.amazon.com/coral/com.amazonaws.lambda/",
            "aws.lambda#ResourceNotFoundException",
            "aws.lambda#ResourceNotFoundException:http://x",
        ] {
            assert_eq!(sanitize_code(raw), "ResourceNotFoundException");
        }
    }

    #[test]
    fn every_kind_round_trips_its_code() {
        assert_eq!(ALL_KINDS.len(), MODELED_ERRORS + 7);
        for k in ALL_KINDS {
            assert_eq!(&ServiceErrorKind::from_code(k.code().unwrap()), k);
        }
        assert_eq!(
            ServiceErrorKind::from_code("Nope"),
            ServiceErrorKind::Unknown
        );
    }

    #[test]
    fn excerpt_is_bounded_and_utf8_safe() {
        let body = "é".repeat(1000);
        let e = excerpt(body.as_bytes());
        assert!(e.len() <= EXCERPT_LEN + 3 && e.ends_with('…') && !e.contains('\u{fffd}'));
        // invalid bytes become 3-byte replacement characters: still bounded (fuzz finding)
        let e = excerpt(&[0xff; 86]);
        assert!(e.len() <= EXCERPT_LEN + 3, "{}", e.len());
        let e = excerpt(&[0x80; 300]);
        assert!(e.starts_with('\u{fffd}') && e.len() <= EXCERPT_LEN + 3);
        assert_eq!(excerpt(b"short"), "short");
    }

    /// A body of exactly [`EXCERPT_LEN`] bytes is whole; one byte more is cut, as is one
    /// whose last character would straddle the limit
    #[test]
    fn excerpt_cuts_at_the_limit() {
        let whole = "a".repeat(EXCERPT_LEN);
        assert_eq!(excerpt(whole.as_bytes()), whole);
        let longer = "a".repeat(EXCERPT_LEN + 1);
        assert_eq!(excerpt(longer.as_bytes()), format!("{whole}…"));
        // a two-byte character ending exactly at the limit fits; one byte later it does not
        let fits = format!("{}é", "a".repeat(EXCERPT_LEN - 2));
        assert_eq!(excerpt(fits.as_bytes()), fits);
        let straddles = format!("{}é", "a".repeat(EXCERPT_LEN - 1));
        assert_eq!(
            excerpt(straddles.as_bytes()),
            format!("{}…", "a".repeat(EXCERPT_LEN - 1))
        );
    }
}
