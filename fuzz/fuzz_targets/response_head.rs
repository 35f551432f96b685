//! Classifying a response head and turning an error head into a `ServiceError` never panics
//!
//! Input, read with `arbitrary::Unstructured`: a status code in 100..=999, then up to 16
//! headers, then the body (all the bytes left). Each header name is either one of the names
//! `parse_response_head` reads (in any letter case) or arbitrary bytes, and each value either
//! one of a few telling values (`Retry-After` numbers, namespaced error codes) or arbitrary
//! bytes; pairs the `http` crate refuses are skipped, and repeated names are appended.
//!
//! Checked: 200 is `Stream`, 204 is `DryRun`, 400..=599 is `Error` with that status, any
//! other status is `UnexpectedStatus` with it; the metadata is the first value of its header,
//! trimmed, when that is non-empty visible ASCII. For errors: the status, request id and
//! `Retry-After` of the head reach the `ServiceError`; the code is `X-Amzn-ErrorType` sanitized
//! when that header is present, and the kind matches the code; an empty body gives no
//! excerpt; the excerpt, when present, is at most 256 bytes plus an ellipsis; `retry_after()`
//! is `None` or at most a day; `is_retryable()` agrees with the policy; `Display` names the
//! code or "unknown error", the status and the request id.
#![no_main]

use std::time::Duration;

use arbitrary::{Result, Unstructured};
use invoke_proto::bytes::Bytes;
use invoke_proto::fuzzing::sanitize_code;
use invoke_proto::http::StatusCode;
use invoke_proto::http::header::{HeaderMap, HeaderName, HeaderValue};
use invoke_proto::{
    ResponseError, ResponseHead, ResponseMeta, RetryPolicy, ServiceErrorKind, parse_response_head,
};
use libfuzzer_sys::fuzz_target;

/// The names `parse_response_head` reads, in the case AWS sends them
const NAMES: &[&str] = &[
    "X-Amzn-ErrorType",
    "x-amzn-RequestId",
    "Retry-After",
    "Content-Type",
    "X-Amz-Executed-Version",
];

/// Values worth trying for those names
const VALUES: &[&str] = &[
    "",
    "  ",
    "0",
    "5",
    " 2.5 ",
    "86399.999",
    "86400",
    "1e300",
    "-1",
    "NaN",
    "inf",
    "Fri, 07 Aug 2026 12:00:00 GMT",
    "TooManyRequestsException",
    "ResourceNotFoundException:http://internal.amazon.com/coral/com.amazonaws.lambda/",
    "aws.lambda#ServiceException",
    "aws.lambda#Throttling:x#y",
    "ThrottlingException",
    "Nope",
    "a#b:c",
    "6f0c8e1a-56f1-4c3b-9b6e-1d2e3f4a5b6c",
    "application/json",
    "$LATEST",
];

/// Longest body excerpt, in bytes, before the ellipsis
const EXCERPT_LEN: usize = 256;

fuzz_target!(|data: &[u8]| {
    let _ = run(Unstructured::new(data));
});

fn run(mut u: Unstructured<'_>) -> Result<()> {
    let code = u.int_in_range(100..=999u16)?;
    let status = StatusCode::from_u16(code).expect("100..=999 is a valid status");
    let mut headers = HeaderMap::new();
    for _ in 0..u.int_in_range(0..=16u8)? {
        let Some(name) = header_name(&mut u)? else {
            continue;
        };
        let Some(value) = header_value(&mut u)? else {
            continue;
        };
        headers.append(name, value);
    }
    let body = u.take_rest();

    let head = parse_response_head(status, &headers);
    match (code, head) {
        (200, Ok(ResponseHead::Stream(h))) => {
            check_meta(&h.meta, &headers);
            // a 200 body is an event stream: any bytes must be handled without a panic
            let mut stream = h.into_stream();
            stream.feed(Bytes::copy_from_slice(body));
            while let Ok(Some(_)) = stream.next_event() {}
            let _ = stream.finish();
        }
        (204, Ok(ResponseHead::DryRun(h))) => check_meta(&h.meta, &headers),
        (400..=599, Ok(ResponseHead::Error(h))) => {
            assert_eq!(h.status(), code);
            check_error(h.into_error(body), code, &headers, body);
        }
        (_, Err(ResponseError::UnexpectedStatus(s))) => {
            assert!(!matches!(code, 200 | 204 | 400..=599), "{code} refused");
            assert_eq!(s, code);
        }
        (_, other) => panic!("status {code} classified as {other:?}"),
    }
    Ok(())
}

fn header_name(u: &mut Unstructured<'_>) -> Result<Option<HeaderName>> {
    let bytes: Vec<u8> = if u.ratio(3, 4)? {
        let name = *u.choose(NAMES)?;
        // HeaderName lower-cases; vary the case to be sure nothing else depends on it
        match u.int_in_range(0..=2u8)? {
            0 => name.as_bytes().to_vec(),
            1 => name.to_ascii_lowercase().into_bytes(),
            _ => name.to_ascii_uppercase().into_bytes(),
        }
    } else {
        u.arbitrary::<&[u8]>()?.to_vec()
    };
    Ok(HeaderName::from_bytes(&bytes).ok())
}

fn header_value(u: &mut Unstructured<'_>) -> Result<Option<HeaderValue>> {
    if u.ratio(1, 2)? {
        return Ok(Some(HeaderValue::from_static(u.choose(VALUES)?)));
    }
    Ok(HeaderValue::from_bytes(u.arbitrary::<&[u8]>()?).ok())
}

/// What `parse_response_head` should make of a header: its first value, trimmed, if it is
/// visible ASCII and non-empty after trimming
fn expected(headers: &HeaderMap, name: &str) -> Option<String> {
    let v = headers.get(name)?.to_str().ok()?.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

/// The function's own `Content-Type`: any bytes, read lossily, trimmed, non-empty
fn expected_content_type(headers: &HeaderMap) -> Option<String> {
    let v = String::from_utf8_lossy(headers.get("content-type")?.as_bytes())
        .trim()
        .to_owned();
    (!v.is_empty()).then_some(v)
}

fn check_meta(meta: &ResponseMeta, headers: &HeaderMap) {
    assert_eq!(
        meta.executed_version,
        expected(headers, "x-amz-executed-version")
    );
    assert_eq!(meta.content_type, expected_content_type(headers));
    assert_eq!(meta.request_id, expected(headers, "x-amzn-requestid"));
}

fn check_error(err: invoke_proto::ServiceError, code: u16, headers: &HeaderMap, body: &[u8]) {
    assert_eq!(err.status, Some(code));
    assert_eq!(err.request_id, expected(headers, "x-amzn-requestid"));
    assert_eq!(err.retry_after_header, expected(headers, "retry-after"));

    // the code: the header wins, sanitized; the kind follows the code
    if let Some(header_code) = expected(headers, "x-amzn-errortype") {
        assert_eq!(err.code, sanitize_code(&header_code));
    }
    assert!(
        !err.code.contains([':', '#']) && err.code.trim() == err.code,
        "code not sanitized: {:?}",
        err.code
    );
    assert_eq!(err.kind, ServiceErrorKind::from_code(&err.code));
    if err.kind != ServiceErrorKind::Unknown {
        assert_eq!(err.kind.code(), Some(err.code.as_str()));
    }

    // the excerpt of a body that is not a JSON object
    if body.is_empty() {
        assert_eq!(err.body_excerpt, None, "excerpt of an empty body");
    }
    if let Some(excerpt) = &err.body_excerpt {
        let text = excerpt.strip_suffix('…').unwrap_or(excerpt);
        assert!(
            text.len() <= EXCERPT_LEN,
            "body excerpt is {} bytes (body {} bytes): {excerpt:?}",
            text.len(),
            body.len()
        );
        let lossy = String::from_utf8_lossy(body);
        if body.len() <= EXCERPT_LEN && lossy.len() <= EXCERPT_LEN {
            assert_eq!(excerpt, &lossy, "short body not kept whole");
        } else if body.len() <= EXCERPT_LEN {
            // invalid bytes became 3-byte replacement characters: a prefix of the text
            assert!(
                excerpt.ends_with('…') && lossy.starts_with(text),
                "expanded short body: {excerpt:?}"
            );
        } else {
            assert!(
                excerpt.ends_with('…'),
                "long body excerpt lacks the ellipsis"
            );
        }
    }

    // Retry-After: absent, or a well-formed delay of at most a day (a longer one is a day's)
    match err.retry_after() {
        None => {}
        Some(d) => {
            assert!(
                err.retry_after_header.is_some(),
                "retry_after without a header"
            );
            assert!(
                d <= Duration::from_secs(86_400),
                "retry_after {d:?} is more than a day"
            );
        }
    }
    let policy = err.retry_policy();
    assert_eq!(err.is_retryable(), policy != RetryPolicy::Never);
    if err.kind == ServiceErrorKind::Unknown && matches!(code, 503 | 504) {
        assert!(err.is_retryable(), "unknown {code} error not retryable");
    }

    let shown = err.to_string();
    let name = if err.code.is_empty() {
        "unknown error"
    } else {
        err.code.as_str()
    };
    assert!(
        shown.starts_with(name),
        "{shown:?} does not start with the code"
    );
    assert!(
        shown.contains(&format!("(HTTP {code})")),
        "{shown:?} lacks the status"
    );
    if let Some(id) = &err.request_id {
        assert!(
            shown.contains(id.as_str()),
            "{shown:?} lacks the request id"
        );
    }
}
