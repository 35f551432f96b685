//! Parameters + endpoint -> the unsigned HTTP request; no signing, no clock

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request};

use crate::endpoint::Endpoint;
use crate::names::{
    CONTENT_TYPE_OCTET_STREAM, QUALIFIER_QUERY, STREAM_PATH_PREFIX, STREAM_PATH_SUFFIX,
    X_AMZ_CLIENT_CONTEXT, X_AMZ_INVOCATION_TYPE, X_AMZ_LOG_TYPE, X_AMZ_TENANT_ID,
};
use crate::params::{BuildError, InvokeParams};
use crate::percent;

/// The path and query of the request for `params`
pub(crate) fn path_and_query(params: &InvokeParams) -> String {
    let name = params.function_name();
    let qualifier = params.get_qualifier();
    let mut p = String::with_capacity(
        STREAM_PATH_PREFIX.len()
            + name.len()
            + STREAM_PATH_SUFFIX.len()
            + qualifier.map_or(0, |q| QUALIFIER_QUERY.len() + q.len() + 2),
    );
    p.push_str(STREAM_PATH_PREFIX);
    percent::push_encoded(&mut p, name, false);
    p.push_str(STREAM_PATH_SUFFIX);
    if let Some(q) = qualifier {
        p.push('?');
        p.push_str(QUALIFIER_QUERY);
        p.push('=');
        percent::push_encoded(&mut p, q, false);
    }
    p
}

/// Builds the unsigned `InvokeWithResponseStream` request
///
/// Validates `params` first. Sets `Host` (so that the value signed is the value sent),
/// `Content-Type: application/octet-stream`, `Content-Length`, and the `X-Amz-*` headers of
/// the parameters that are set. Sign it with [`sign`](crate::sign) before
/// sending.
///
/// # Errors
///
/// [`BuildError`] naming the first invalid parameter.
pub fn build_request(
    params: &InvokeParams,
    endpoint: &Endpoint,
) -> Result<Request<Bytes>, BuildError> {
    params.validate()?;
    let authority = endpoint.authority_bytes();
    let uri = endpoint.uri_with_authority(authority.clone(), &path_and_query(params))?;
    let mut req = Request::new(params.payload().clone());
    *req.method_mut() = Method::POST;
    *req.uri_mut() = uri;
    let h = req.headers_mut();
    let value = |name: &'static str, s: &str| {
        HeaderValue::from_str(s).map_err(|_| BuildError::HeaderValue { name })
    };
    h.insert(
        HOST,
        HeaderValue::from_maybe_shared(authority)
            .map_err(|_| BuildError::HeaderValue { name: "host" })?,
    );
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(CONTENT_TYPE_OCTET_STREAM),
    );
    h.insert(CONTENT_LENGTH, HeaderValue::from(params.payload().len()));
    if let Some(t) = params.get_invocation_type() {
        h.insert(X_AMZ_INVOCATION_TYPE, HeaderValue::from_static(t.as_str()));
    }
    if let Some(t) = params.get_log_type() {
        h.insert(X_AMZ_LOG_TYPE, HeaderValue::from_static(t.as_str()));
    }
    if let Some(c) = params.client_context_base64() {
        h.insert(X_AMZ_CLIENT_CONTEXT, value(X_AMZ_CLIENT_CONTEXT, &c)?);
    }
    if let Some(t) = params.get_tenant_id() {
        h.insert(X_AMZ_TENANT_ID, value(X_AMZ_TENANT_ID, t)?);
    }
    Ok(req)
}

/// `trace_id` as the value of an `X-Amzn-Trace-Id` header: every byte as given but control
/// characters and non-ASCII bytes, which are percent-encoded, as the AWS SDKs send the trace
/// of the Lambda function they run in (`_X_AMZN_TRACE_ID`); always a valid header value
///
/// ```
/// use invoke_proto::trace_id_value;
///
/// let id = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
/// assert_eq!(trace_id_value(id), id);
/// assert_eq!(trace_id_value("Root=1\n\u{e9}"), "Root=1%0A%C3%A9");
/// ```
pub fn trace_id_value(trace_id: &str) -> HeaderValue {
    let plain = |b: u8| (b' '..=b'~').contains(&b);
    let value = if trace_id.bytes().all(plain) {
        HeaderValue::from_str(trace_id)
    } else {
        let mut encoded = String::with_capacity(trace_id.len() + 8);
        for b in trace_id.bytes() {
            if plain(b) {
                encoded.push(char::from(b));
            } else {
                percent::push_escaped(&mut encoded, b);
            }
        }
        HeaderValue::from_str(&encoded)
    };
    value.expect("spaces and visible ASCII only")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::{EndpointConfig, resolve_endpoint};
    use crate::params::{InvocationType, LogType};

    #[test]
    fn labels_encode_as_the_sdks_do() {
        for (name, seg) in [
            ("my-function", "my-function"),
            ("my-function:prod", "my-function%3Aprod"),
            ("my-function:$LATEST", "my-function%3A%24LATEST"),
            (
                "123456789012:function:my-function",
                "123456789012%3Afunction%3Amy-function",
            ),
            (
                "arn:aws:lambda:us-west-2:123456789012:function:my-function:7",
                "arn%3Aaws%3Alambda%3Aus-west-2%3A123456789012%3Afunction%3Amy-function%3A7",
            ),
            ("my_fn.v2", "my_fn.v2"),
        ] {
            assert_eq!(percent::encode(name), seg);
        }
    }

    #[test]
    fn request_shape() {
        let ep = resolve_endpoint(&EndpointConfig::default().with_region("us-east-1")).unwrap();
        let p = InvokeParams::new("arn:aws:lambda:us-east-1:123456789012:function:f", "{}")
            .qualifier("$LATEST")
            .log_type(LogType::Tail)
            .invocation_type(InvocationType::DryRun)
            .client_context(r#"{"custom":{"a":"b"}}"#)
            .tenant_id("t-1");
        let r = build_request(&p, &ep).unwrap();
        assert_eq!(r.method(), Method::POST);
        assert_eq!(
            r.uri().to_string(),
            "https://lambda.us-east-1.amazonaws.com/2021-11-15/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Af/response-streaming-invocations?Qualifier=%24LATEST"
        );
        let h = r.headers();
        assert_eq!(h["host"], "lambda.us-east-1.amazonaws.com");
        assert_eq!(h["content-type"], "application/octet-stream");
        assert_eq!(h["content-length"], "2");
        assert_eq!(h["x-amz-log-type"], "Tail");
        assert_eq!(h["x-amz-invocation-type"], "DryRun");
        assert_eq!(h["x-amz-client-context"], "eyJjdXN0b20iOnsiYSI6ImIifX0=");
        assert_eq!(h["x-amz-tenant-id"], "t-1");
        assert_eq!(r.body(), "{}");
        let bare = build_request(&InvokeParams::new("f", ""), &ep).unwrap();
        assert_eq!(
            bare.headers().len(),
            3,
            "only host, content type and length"
        );
        assert_eq!(bare.uri().query(), None);
        let local =
            resolve_endpoint(&EndpointConfig::default().with_custom("http://127.0.0.1:9001"))
                .unwrap();
        let r = build_request(&InvokeParams::new("f", ""), &local).unwrap();
        assert_eq!(r.headers()["host"], "127.0.0.1:9001");
        assert!(build_request(&InvokeParams::new("", ""), &local).is_err());
    }

    proptest::proptest! {
        /// Any text gives a valid value of spaces and visible ASCII, in which only the bytes
        /// outside those are escaped: decoding each `%XX` the text put there gives it back
        #[test]
        fn trace_values_escape_only_what_a_header_cannot_hold(id in ".{0,64}") {
            let value = trace_id_value(&id);
            let bytes = value.as_bytes();
            proptest::prop_assert!(bytes.iter().all(|b| (b' '..=b'~').contains(b)));
            let mut back = Vec::new();
            let mut i = 0;
            let escaped_in_input = |b: u8| !(b' '..=b'~').contains(&b);
            let mut input = id.bytes().peekable();
            while i < bytes.len() {
                let next = *input.peek().expect("no more output than input");
                if escaped_in_input(next) {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                    proptest::prop_assert_eq!(bytes[i], b'%');
                    back.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 3;
                } else {
                    back.push(bytes[i]);
                    i += 1;
                }
                input.next();
            }
            proptest::prop_assert_eq!(back, id.as_bytes());
        }
    }
}
