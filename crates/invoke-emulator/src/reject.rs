//! Rejections: the error responses the emulator answers a request with, built by
//! `invoke-proto` as the service sends them (not to be confused with the
//! [injected faults](crate::fault))

use std::time::Duration;

use http::Response;
use invoke_proto::{ServiceError, ServiceErrorKind};

use crate::body::{RespBody, full};

/// Why a request was refused: a service error sent instead of a stream, before any stream
/// byte (boxed: it is large, and `?` boxes a `ServiceError` on the way)
pub(crate) type Rejection = Box<ServiceError>;

/// 400, kind `InvalidParameterValue`
pub(crate) fn invalid_parameter(message: impl Into<String>) -> Rejection {
    Box::new(ServiceError::new(
        ServiceErrorKind::InvalidParameterValue,
        message,
    ))
}

/// 404, kind `ResourceNotFound`, for the function (or qualifier) `arn`
pub(crate) fn not_found(arn: &str) -> Rejection {
    Box::new(ServiceError::new(
        ServiceErrorKind::ResourceNotFound,
        format!("Function not found: {arn}"),
    ))
}

/// 404, kind `ResourceNotFound`: a function ARN names a region other than the endpoint's
pub(crate) fn other_region(arn_region: &str, region: &str) -> Rejection {
    Box::new(ServiceError::new(
        ServiceErrorKind::ResourceNotFound,
        format!("Functions from '{arn_region}' are not reachable in this region ('{region}')"),
    ))
}

/// 429, kind `TooManyRequests`, with `reason`; retry after 1 s
pub(crate) fn throttled(reason: &str) -> Rejection {
    Box::new(
        ServiceError::new(ServiceErrorKind::TooManyRequests, "Rate Exceeded.")
            .with_reason(reason)
            .with_retry_after(Duration::from_secs(1)),
    )
}

/// 400, kind `InvalidRequestContent`: the payload is not JSON
pub(crate) fn payload_not_json() -> Rejection {
    Box::new(ServiceError::new(
        ServiceErrorKind::InvalidRequestContent,
        "Could not parse request body into json: Could not parse payload into json",
    ))
}

/// `STATUS CODE: message`, for the log
pub(crate) fn summary(r: &ServiceError) -> String {
    format!(
        "{} {}: {}",
        r.status.or_else(|| r.kind.modeled_status()).unwrap_or(500),
        r.code,
        r.message.as_deref().unwrap_or_default()
    )
}

/// The rejection as an HTTP response
pub(crate) fn response(r: ServiceError, request_id: &str) -> Response<RespBody> {
    r.with_request_id(request_id).to_response().map(full)
}

/// A refusal the service's model has no error for, in the service's shape all the same:
/// `status`, `X-Amzn-ErrorType: code`, a JSON body with `Type` and `message`
pub(crate) fn http_error(status: u16, code: &str, message: impl Into<String>) -> Rejection {
    let mut e = ServiceError::new(ServiceErrorKind::Unknown, message);
    code.clone_into(&mut e.code);
    e.status = Some(status);
    e.error_type = Some(if status >= 500 { "Service" } else { "User" }.to_owned());
    Box::new(e)
}

/// 408, `RequestTimeoutException`: the body did not arrive within `timeout`
pub(crate) fn body_timeout(timeout: Duration) -> Rejection {
    http_error(
        408,
        "RequestTimeoutException",
        format!(
            "The request body did not arrive within {:.1} seconds",
            timeout.as_secs_f64()
        ),
    )
}

/// 414, `UriTooLongException`: a request target of `len` bytes, over `max`
pub(crate) fn uri_too_long(len: usize, max: usize) -> Rejection {
    http_error(
        414,
        "UriTooLongException",
        format!("The request URI is {len} bytes long, over the limit of {max} bytes"),
    )
}

/// 431, `RequestHeaderFieldsTooLargeException`: header fields of `len` bytes, over `max`
pub(crate) fn headers_too_large(len: usize, max: usize) -> Rejection {
    http_error(
        431,
        "RequestHeaderFieldsTooLargeException",
        format!("The request header fields are {len} bytes long, over the limit of {max} bytes"),
    )
}
