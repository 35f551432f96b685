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
