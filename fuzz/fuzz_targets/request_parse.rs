//! Parsing a received request never panics, and every request it accepts survives a round
//! trip through the client side
//!
//! Input, read with `arbitrary::Unstructured`: a method (mostly `POST`), a path (one of the
//! two routes around an arbitrary label, or arbitrary text), an optional query (mostly
//! `Qualifier=` and arbitrary text), up to 8 headers (names the parser reads, or arbitrary;
//! values arbitrary; pairs the `http` crate refuses are skipped), then the body (all the
//! bytes left).
//!
//! Checked: an accepted request's parameters validate, and `build_request` of them, parsed
//! again, gives the same parameters; only an `Invoke` is asynchronous, with a payload of at
//! most `MAX_EVENT_PAYLOAD_LEN`; every refusal maps to the service error status 400, 404,
//! 413 or 415.
#![no_main]

use arbitrary::{Result, Unstructured};
use invoke_proto::bytes::Bytes;
use invoke_proto::http::header::{HeaderMap, HeaderName, HeaderValue};
use invoke_proto::http::{Method, Uri};
use invoke_proto::{
    EndpointConfig, INVOKE_PATH_PREFIX, INVOKE_PATH_SUFFIX, MAX_EVENT_PAYLOAD_LEN, Operation,
    STREAM_PATH_PREFIX, STREAM_PATH_SUFFIX, X_AMZ_CLIENT_CONTEXT, X_AMZ_INVOCATION_TYPE,
    X_AMZ_LOG_TYPE, X_AMZ_TENANT_ID, build_request, parse_request, resolve_endpoint,
};
use libfuzzer_sys::fuzz_target;

/// Header names the parser reads
const NAMES: &[&str] = &[
    X_AMZ_INVOCATION_TYPE,
    X_AMZ_LOG_TYPE,
    X_AMZ_CLIENT_CONTEXT,
    X_AMZ_TENANT_ID,
    "content-type",
];

/// Values worth trying for them
const VALUES: &[&str] = &[
    "RequestResponse",
    "DryRun",
    "Event",
    "None",
    "Tail",
    "e30=",
    "eyJjdXN0b20iOnsiYSI6ImIifX0=",
    "WzFd",
    "application/json; charset=utf-8",
    "text/plain",
    "tenant-1",
];

fn request(mut u: Unstructured<'_>) -> Result<(Method, String, HeaderMap, Bytes)> {
    let method = if u.ratio(7, 8)? {
        Method::POST
    } else {
        Method::from_bytes(u.arbitrary::<&str>()?.as_bytes()).unwrap_or(Method::GET)
    };
    let label: &str = u.arbitrary()?;
    let mut uri = match u.int_in_range(0..=2)? {
        0 => format!("{STREAM_PATH_PREFIX}{label}{STREAM_PATH_SUFFIX}"),
        1 => format!("{INVOKE_PATH_PREFIX}{label}{INVOKE_PATH_SUFFIX}"),
        _ => format!("/{label}"),
    };
    if u.arbitrary()? {
        let query: &str = u.arbitrary()?;
        uri.push_str(if u.arbitrary()? { "?Qualifier=" } else { "?" });
        uri.push_str(query);
    }
    let mut headers = HeaderMap::new();
    for _ in 0..u.int_in_range(0..=8)? {
        let name = if u.ratio(3, 4)? {
            Some(HeaderName::from_static(u.choose(NAMES)?))
        } else {
            HeaderName::from_bytes(u.arbitrary::<&[u8]>()?).ok()
        };
        let value = if u.arbitrary()? {
            Some(HeaderValue::from_static(u.choose(VALUES)?))
        } else {
            HeaderValue::from_bytes(u.arbitrary::<&[u8]>()?).ok()
        };
        if let (Some(n), Some(v)) = (name, value) {
            headers.append(n, v);
        }
    }
    let body = Bytes::copy_from_slice(u.take_rest());
    Ok((method, uri, headers, body))
}

fuzz_target!(|data: &[u8]| {
    let Ok((method, uri, headers, body)) = request(Unstructured::new(data)) else {
        return;
    };
    let Ok(uri) = uri.parse::<Uri>() else {
        return;
    };
    match parse_request(&method, &uri, &headers, body) {
        Ok(parsed) => {
            parsed
                .params
                .validate()
                .expect("accepted parameters validate");
            let endpoint =
                resolve_endpoint(&EndpointConfig::default().with_region("us-east-1")).unwrap();
            let (parts, body) = build_request(&parsed.params, &endpoint)
                .expect("accepted parameters build")
                .into_parts();
            let again = parse_request(&parts.method, &parts.uri, &parts.headers, body)
                .expect("a built request parses");
            assert_eq!(again.operation, Operation::InvokeWithResponseStream);
            assert_eq!(again.params, parsed.params);
            assert!(!again.asynchronous);
            if parsed.asynchronous {
                assert_eq!(parsed.operation, Operation::Invoke);
                assert!(parsed.params.payload().len() <= MAX_EVENT_PAYLOAD_LEN);
            }
        }
        Err(e) => {
            let status = e.to_service_error().status;
            assert!(
                matches!(status, Some(400 | 404 | 413 | 415)),
                "{e}: status {status:?}"
            );
        }
    }
});
