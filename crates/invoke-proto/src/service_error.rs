//! Typed service errors: every modeled error of `InvokeWithResponseStream`, common unmodeled
//! ones, and `Unknown`

use std::fmt;
use std::time::Duration;

use serde_json::Value;

/// How a client should treat an error when deciding to retry (protocol.md §3.5)
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
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $status:literal, $retry:ident; )*) => {
        /// The error a response or an in-stream exception names
        ///
        /// One variant per modeled error of `InvokeWithResponseStream` (botocore model
        /// 2026-08-07), the common unmodeled front-end errors, and `Unknown`.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorKind {
            $( $(#[$doc])* $variant, )*
            /// Any other code; the code is kept in [`ServiceError::code`]
            Unknown,
        }

        impl ErrorKind {
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

            fn policy(&self) -> Option<RetryPolicy> {
                match self {
                    $( Self::$variant => Some(RetryPolicy::$retry), )*
                    Self::Unknown => None,
                }
            }
        }

        /// Every known kind, in model order then the unmodeled ones
        pub const ALL_KINDS: &[ErrorKind] = &[ $( ErrorKind::$variant, )* ];
    };
}

error_kinds! {
    /// Lambda lacks the EC2 permissions to set up VPC networking
    Ec2AccessDenied = "EC2AccessDeniedException", 502, Never;
    /// EC2 throttled Lambda during function initialisation
    Ec2Throttled = "EC2ThrottledException", 502, Backoff;
    /// Unexpected EC2 client error during setup (`EC2ErrorCode` kept)
    Ec2Unexpected = "EC2UnexpectedException", 502, Limited;
    /// Read or write error on the attached file system
    EfsIo = "EFSIOException", 410, Never;
    /// No network connection to the file system
    EfsMountConnectivity = "EFSMountConnectivityException", 408, Limited;
    /// File system mount refused
    EfsMountFailure = "EFSMountFailureException", 403, Never;
    /// File system mount timed out
    EfsMountTimeout = "EFSMountTimeoutException", 408, Limited;
    /// Network interface quota reached
    EniLimitReached = "ENILimitReachedException", 502, Never;
    /// A request parameter is invalid
    InvalidParameterValue = "InvalidParameterValueException", 400, Never;
    /// The body is not valid JSON, or a header is invalid
    InvalidRequestContent = "InvalidRequestContentException", 400, Never;
    /// Runtime or runtime version unsupported
    InvalidRuntime = "InvalidRuntimeException", 502, Never;
    /// A security group of the VPC configuration is invalid
    InvalidSecurityGroupId = "InvalidSecurityGroupIDException", 502, Never;
    /// A subnet of the VPC configuration is invalid
    InvalidSubnetId = "InvalidSubnetIDException", 502, Never;
    /// The deployment package cannot be unzipped
    InvalidZipFile = "InvalidZipFileException", 502, Never;
    /// KMS access denied while decrypting environment variables
    KmsAccessDenied = "KMSAccessDeniedException", 502, Never;
    /// The KMS key is disabled
    KmsDisabled = "KMSDisabledException", 502, Never;
    /// The KMS key state does not allow Decrypt
    KmsInvalidState = "KMSInvalidStateException", 502, Never;
    /// The KMS key was not found
    KmsNotFound = "KMSNotFoundException", 502, Never;
    /// The function has no published version
    NoPublishedVersion = "NoPublishedVersionException", 400, Never;
    /// Lambda stopped a recursive invocation loop
    RecursiveInvocation = "RecursiveInvocationException", 400, Never;
    /// The payload exceeds the invoke request size quota
    RequestTooLarge = "RequestTooLargeException", 413, Never;
    /// The resource exists already or another operation on it is in progress
    ResourceConflict = "ResourceConflictException", 409, Backoff;
    /// The function, version or alias does not exist
    ResourceNotFound = "ResourceNotFoundException", 404, Never;
    /// The function is inactive; wait and retry
    ResourceNotReady = "ResourceNotReadyException", 502, Backoff;
    /// No network connection to the S3 Files access point
    S3FilesMountConnectivity = "S3FilesMountConnectivityException", 408, Limited;
    /// S3 Files mount refused
    S3FilesMountFailure = "S3FilesMountFailureException", 403, Never;
    /// S3 Files mount timed out
    S3FilesMountTimeout = "S3FilesMountTimeoutException", 408, Limited;
    /// The serialised request entity is too large
    SerializedRequestEntityTooLarge = "SerializedRequestEntityTooLargeException", 413, Never;
    /// Internal service error
    Service = "ServiceException", 500, Backoff;
    /// The request would exceed a service quota
    ServiceQuotaExceeded = "ServiceQuotaExceededException", 402, Never;
    /// The SnapStart `afterRestore()` hook failed
    SnapStart = "SnapStartException", 400, Never;
    /// Lambda is still initialising the function
    SnapStartNotReady = "SnapStartNotReadyException", 409, Backoff;
    /// Lambda could not regenerate the SnapStart snapshot
    SnapStartRegenerationFailure = "SnapStartRegenerationFailureException", 409, Never;
    /// The snapshot could not be restored in time
    SnapStartTimeout = "SnapStartTimeoutException", 408, Limited;
    /// The configured subnets have no free IP addresses
    SubnetIpAddressLimitReached = "SubnetIPAddressLimitReachedException", 502, Never;
    /// Throttled; see [`ServiceError::reason`] and [`ServiceError::retry_after`]
    TooManyRequests = "TooManyRequestsException", 429, Backoff;
    /// The request body content type is not JSON
    UnsupportedMediaType = "UnsupportedMediaTypeException", 415, Never;
    /// Unmodeled: the security token or access key is not valid
    UnrecognizedClient = "UnrecognizedClientException", 403, Never;
    /// Unmodeled: the caller may not invoke this function
    AccessDenied = "AccessDeniedException", 403, Never;
    /// Unmodeled: the request signature does not match
    InvalidSignature = "InvalidSignatureException", 403, Never;
    /// Unmodeled: the session token has expired (refresh credentials, then retry)
    ExpiredToken = "ExpiredTokenException", 403, Never;
    /// Unmodeled: the `Authorization` header is malformed
    IncompleteSignature = "IncompleteSignatureException", 400, Never;
    /// Unmodeled: the request was not signed
    MissingAuthenticationToken = "MissingAuthenticationTokenException", 403, Never;
}

/// Number of modeled errors of the operation (the first entries of [`ALL_KINDS`])
pub const MODELED_ERRORS: usize = 37;

/// Longest excerpt of an unparseable body kept in an error
const EXCERPT_LEN: usize = 256;

/// An error the service returned, before the stream or inside it
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceError {
    /// Which error
    pub kind: ErrorKind,
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
    /// Builds an error from what the response carried
    ///
    /// `header_code` is the raw `X-Amzn-ErrorType` value (or `:exception-type`), if any;
    /// the body's `code`, `Code` and `__type` are the fallbacks (protocol.md §3.1).
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
            kind: ErrorKind::from_code(&code),
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

    /// How to treat this error for retries (protocol.md §3.5)
    ///
    /// Unknown codes: `Backoff` for 503 and 504 and throttling-like codes, else `Never`.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.kind.policy().unwrap_or_else(|| {
            let throttling = matches!(
                self.code.as_str(),
                "Throttling" | "ThrottlingException" | "RequestLimitExceeded" | "RequestThrottled"
            );
            if throttling || matches!(self.status, Some(503 | 504)) {
                RetryPolicy::Backoff
            } else {
                RetryPolicy::Never
            }
        })
    }

    /// Whether a retry may succeed (before any stream byte reached the caller)
    pub fn is_retryable(&self) -> bool {
        self.retry_policy() != RetryPolicy::Never
    }

    /// The delay the service asked for in `Retry-After`, if any and well-formed
    pub fn retry_after(&self) -> Option<Duration> {
        let v = self.retry_after_header.as_deref()?.trim();
        let secs: f64 = v.parse().ok()?;
        (0.0..86_400.0)
            .contains(&secs)
            .then(|| Duration::from_secs_f64(secs))
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
pub fn sanitize_code(code: &str) -> &str {
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
        assert_eq!(ALL_KINDS.len(), MODELED_ERRORS + 6);
        for k in ALL_KINDS {
            assert_eq!(&ErrorKind::from_code(k.code().unwrap()), k);
        }
        assert_eq!(ErrorKind::from_code("Nope"), ErrorKind::Unknown);
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
}
