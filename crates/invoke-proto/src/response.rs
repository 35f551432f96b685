//! The response head: a stream, a DryRun result, or an error whose body is still to come

use http::header::{CONTENT_TYPE, HeaderName};
use http::{HeaderMap, StatusCode};
use std::fmt;

use crate::eventstream::Limits;
use crate::names::{RETRY_AFTER, X_AMZ_EXECUTED_VERSION, X_AMZN_ERROR_TYPE, X_AMZN_REQUEST_ID};
use crate::service_error::ServiceError;
use crate::stream::InvokeStream;

/// What went wrong with a response head itself
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseError {
    /// A status this operation never answers with (1xx, 3xx, or a 2xx other than 200 and 204)
    UnexpectedStatus(u16),
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnexpectedStatus(status) => write!(f, "unexpected HTTP status {status}"),
        }
    }
}

impl std::error::Error for ResponseError {}

/// The head of an `InvokeWithResponseStream` response, classified
#[derive(Debug)]
#[non_exhaustive]
pub enum ResponseHead {
    /// 200: the body is an event stream
    Stream(StreamHead),
    /// 204: a `DryRun` invocation passed; there is no body
    DryRun(DryRunHead),
    /// 4xx/5xx: read the body (bounded) and hand it to [`ErrorHead::into_error`]
    Error(ErrorHead),
}

/// Metadata of a successful response
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseMeta {
    /// `X-Amz-Executed-Version`: the version that ran
    pub executed_version: Option<String>,
    /// `Content-Type`: the function's own stream content type (not the framing)
    pub content_type: Option<String>,
    /// `x-amzn-RequestId`
    pub request_id: Option<String>,
}

/// A 200 response head; its body is an event stream
#[derive(Debug, Clone)]
pub struct StreamHead {
    /// Response metadata
    pub meta: ResponseMeta,
}

impl StreamHead {
    /// The decoder for the body, with the default [`Limits`]; it keeps the metadata
    /// ([`InvokeStream::meta`])
    pub fn into_stream(self) -> InvokeStream {
        self.into_stream_with(Limits::default())
    }

    /// The decoder for the body, with the given [`Limits`]; it keeps the metadata
    /// ([`InvokeStream::meta`])
    pub fn into_stream_with(self, limits: Limits) -> InvokeStream {
        InvokeStream::with_meta(limits, self.meta)
    }
}

/// A 204 response head: the `DryRun` passed
#[derive(Debug, Clone)]
pub struct DryRunHead {
    /// Response metadata
    pub meta: ResponseMeta,
}

/// An error response head
#[derive(Debug, Clone)]
pub struct ErrorHead {
    status: u16,
    error_type: Option<String>,
    request_id: Option<String>,
    retry_after: Option<String>,
}

impl ErrorHead {
    /// The HTTP status
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The typed error, given the response body
    ///
    /// Any body is accepted: JSON, HTML from a proxy, empty, garbage. Adapters should read
    /// at most a bounded prefix of a huge body (64 KiB is plenty); a body that is not a JSON
    /// object is kept as a 256-byte excerpt.
    pub fn into_error(self, body: &[u8]) -> ServiceError {
        ServiceError::from_parts(
            Some(self.status),
            self.error_type.as_deref(),
            body,
            self.request_id,
            self.retry_after,
        )
    }
}

/// The response headers read on every call, as names ready for lookup (a `&str` name is
/// parsed again on each lookup)
const EXECUTED_VERSION: HeaderName = HeaderName::from_static(X_AMZ_EXECUTED_VERSION);
const REQUEST_ID: HeaderName = HeaderName::from_static(X_AMZN_REQUEST_ID);
const ERROR_TYPE: HeaderName = HeaderName::from_static(X_AMZN_ERROR_TYPE);
const RETRY_AFTER_NAME: HeaderName = HeaderName::from_static(RETRY_AFTER);

/// The trimmed text of header `name`, `None` when absent, empty or not visible ASCII
fn header(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// The function's own `Content-Type`, trimmed; bytes that are not ASCII (which a runtime
/// passes on as the function set them) read lossily rather than dropping the value
fn content_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(CONTENT_TYPE)?;
    let text = String::from_utf8_lossy(value.as_bytes());
    Some(text.trim().to_owned()).filter(|v| !v.is_empty())
}

/// Classifies a response head
///
/// Never looks at `Content-Type` to decide how to read the body: a 200 body is always an
/// event stream, whatever `Content-Type` says (it is the function's own content type).
///
/// # Errors
///
/// [`ResponseError::UnexpectedStatus`] for 1xx, 3xx and 2xx other than 200 and 204.
pub fn parse_response_head(
    status: StatusCode,
    headers: &HeaderMap,
) -> Result<ResponseHead, ResponseError> {
    let meta = || ResponseMeta {
        executed_version: header(headers, &EXECUTED_VERSION),
        content_type: content_type(headers),
        request_id: header(headers, &REQUEST_ID),
    };
    match status.as_u16() {
        200 => Ok(ResponseHead::Stream(StreamHead { meta: meta() })),
        204 => Ok(ResponseHead::DryRun(DryRunHead { meta: meta() })),
        s @ 400..=599 => Ok(ResponseHead::Error(ErrorHead {
            status: s,
            error_type: header(headers, &ERROR_TYPE),
            request_id: header(headers, &REQUEST_ID),
            retry_after: header(headers, &RETRY_AFTER_NAME),
        })),
        s => Err(ResponseError::UnexpectedStatus(s)),
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_static(value));
        }
        h
    }

    #[test]
    fn heads_by_status() {
        let h = headers(&[
            ("x-amz-executed-version", " 7 "),
            ("content-type", "text/plain"),
            ("x-amzn-requestid", "req-1"),
        ]);
        let want = ResponseMeta {
            executed_version: Some("7".to_owned()),
            content_type: Some("text/plain".to_owned()),
            request_id: Some("req-1".to_owned()),
        };
        let Ok(ResponseHead::Stream(head)) = parse_response_head(StatusCode::OK, &h) else {
            panic!("200 is a stream");
        };
        assert_eq!(head.meta, want);
        let Ok(ResponseHead::DryRun(head)) = parse_response_head(StatusCode::NO_CONTENT, &h) else {
            panic!("204 is a dry run");
        };
        assert_eq!(head.meta, want);
        // empty values are absent
        let blank = headers(&[("x-amz-executed-version", " "), ("content-type", "")]);
        let Ok(ResponseHead::Stream(head)) = parse_response_head(StatusCode::OK, &blank) else {
            panic!("200 is a stream");
        };
        assert_eq!(head.meta, ResponseMeta::default());
    }

    #[test]
    fn error_heads_keep_their_status_and_headers() {
        let h = headers(&[
            ("x-amzn-errortype", "TooManyRequestsException"),
            ("x-amzn-requestid", "req-2"),
            ("retry-after", "3"),
        ]);
        for status in [400, 429, 500, 599] {
            let code = StatusCode::from_u16(status).unwrap();
            let Ok(ResponseHead::Error(head)) = parse_response_head(code, &h) else {
                panic!("{status} is an error");
            };
            assert_eq!(head.status(), status);
            let e = head.into_error(b"{\"message\":\"slow down\"}");
            assert_eq!(e.status, Some(status));
            assert_eq!(e.code, "TooManyRequestsException");
            assert_eq!(e.message.as_deref(), Some("slow down"));
            assert_eq!(e.request_id.as_deref(), Some("req-2"));
            assert_eq!(e.retry_after_header.as_deref(), Some("3"));
        }
    }

    #[test]
    fn other_statuses_are_unexpected() {
        for status in [100, 201, 206, 301, 302, 304, 399] {
            let code = StatusCode::from_u16(status).unwrap();
            let e = parse_response_head(code, &HeaderMap::new()).unwrap_err();
            assert_eq!(e, ResponseError::UnexpectedStatus(status));
            assert_eq!(e.to_string(), format!("unexpected HTTP status {status}"));
        }
    }
}
