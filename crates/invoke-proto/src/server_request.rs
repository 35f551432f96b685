//! The server side of the request: method, path, query, headers and body back into
//! validated [`InvokeParams`], the inverse of [`build_request`](crate::build_request)

use std::borrow::Cow;

use base64::Engine as _;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, Method, Uri};
use std::fmt;

use crate::names::{
    INVOKE_PATH_PREFIX, INVOKE_PATH_SUFFIX, QUALIFIER_QUERY, STREAM_PATH_PREFIX,
    STREAM_PATH_SUFFIX, X_AMZ_CLIENT_CONTEXT, X_AMZ_INVOCATION_TYPE, X_AMZ_LOG_TYPE,
    X_AMZ_TENANT_ID,
};
use crate::params::{
    BuildError, InvocationType, InvokeParams, LogType, MAX_PAYLOAD_LEN, Parameter,
};
use crate::percent;
use crate::service_error::{ServiceError, ServiceErrorKind};

/// The operation a request calls
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `POST /2021-11-15/functions/{FunctionName}/response-streaming-invocations`
    InvokeWithResponseStream,
    /// `POST /2015-03-31/functions/{FunctionName}/invocations`, the buffered `Invoke`
    Invoke,
}

impl Operation {
    /// The operation's name
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvokeWithResponseStream => "InvokeWithResponseStream",
            Self::Invoke => "Invoke",
        }
    }

    /// The name the service's messages give the operation: `InvokeFunction` for `Invoke`
    /// (as in its "Request must be smaller than 6291456 bytes for the InvokeFunction
    /// operation")
    pub fn service_name(self) -> &'static str {
        match self {
            Self::InvokeWithResponseStream => "InvokeWithResponseStream",
            Self::Invoke => "InvokeFunction",
        }
    }

    /// The `X-Amz-Invocation-Type` values the operation takes, in the order the service's
    /// messages list them (`Invoke` also takes `Event`)
    pub fn invocation_types(self) -> &'static [&'static str] {
        const SYNCHRONOUS: [&str; 2] = [
            InvocationType::RequestResponse.as_str(),
            InvocationType::DryRun.as_str(),
        ];
        const ALL: [&str; 3] = [EVENT, SYNCHRONOUS[0], SYNCHRONOUS[1]];
        match self {
            Self::InvokeWithResponseStream => &SYNCHRONOUS,
            Self::Invoke => &ALL,
        }
    }
}

/// The `X-Amz-Invocation-Type` of an asynchronous `Invoke` (not an [`InvocationType`]: a
/// client of the streaming operation never sends it)
const EVENT: &str = "Event";

/// A request matched to an operation, its `FunctionName` path label decoded
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The operation
    pub operation: Operation,
    /// The percent-decoded `{FunctionName}` label, not yet validated
    pub function_name: String,
}

/// A parsed, validated request
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParsedRequest {
    /// The operation
    pub operation: Operation,
    /// The parameters, validated as [`InvokeParams::validate`] does
    pub params: InvokeParams,
    /// Whether it is an asynchronous `Invoke` (`X-Amz-Invocation-Type: Event`), whose
    /// payload is at most [`MAX_EVENT_PAYLOAD_LEN`]
    pub asynchronous: bool,
}

/// Largest payload of an asynchronous (`Event`) `Invoke`: 1 MiB (1,048,576 bytes), against
/// [`MAX_PAYLOAD_LEN`] for synchronous invocations
pub const MAX_EVENT_PAYLOAD_LEN: usize = 1024 * 1024;

/// Why a received request is refused, before any function runs
///
/// [`to_service_error`](Self::to_service_error) gives the error the service answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// No operation at this method and path
    UnknownOperation {
        /// The request method
        method: String,
        /// The request path
        path: String,
    },
    /// The `{FunctionName}` label is not valid percent-encoded UTF-8
    FunctionNameEncoding,
    /// A query parameter is not valid percent-encoded UTF-8
    QueryEncoding {
        /// The parameter
        name: &'static str,
    },
    /// The body is longer than the invocation accepts (a server reading the body with a
    /// bound reports this itself)
    BodyTooLarge {
        /// The limit: [`MAX_PAYLOAD_LEN`], or [`MAX_EVENT_PAYLOAD_LEN`] for an `Event`
        max: usize,
        /// The operation asked for (its name is in the service's message)
        operation: Operation,
    },
    /// The `Content-Type` is not one the service accepts for the payload
    UnsupportedMediaType {
        /// The header value
        content_type: String,
    },
    /// `X-Amz-Invocation-Type` is not a value of the enum
    InvocationType {
        /// The header value
        value: String,
        /// The operation asked for (`Invoke` also takes `Event`)
        operation: Operation,
    },
    /// `X-Amz-Log-Type` is not a value of the enum
    LogType {
        /// The header value
        value: String,
    },
    /// `X-Amz-Client-Context` is not base64 of a JSON object
    ClientContext,
    /// A parameter breaks a rule of the model (the same rules the client checks)
    Invalid(BuildError),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownOperation { method, path } => write!(f, "no operation at {method} {path}"),
            Self::FunctionNameEncoding => {
                f.write_str("FunctionName is not valid percent-encoded utf-8")
            }
            Self::QueryEncoding { name } => write!(f, "{name} is not valid percent-encoded utf-8"),
            Self::BodyTooLarge { max, .. } => write!(f, "request body over {max} bytes"),
            Self::UnsupportedMediaType { content_type } => {
                write!(f, "unsupported content type {content_type:?}")
            }
            Self::InvocationType { value, operation } => {
                let (last, rest) = operation
                    .invocation_types()
                    .split_last()
                    .expect("every operation takes some");
                write!(
                    f,
                    "invalid X-Amz-Invocation-Type {value:?}: expected {} or {last}",
                    rest.join(", ")
                )
            }
            Self::LogType { value } => {
                write!(f, "invalid X-Amz-Log-Type {value:?}: expected None or Tail")
            }
            Self::ClientContext => {
                f.write_str("X-Amz-Client-Context is not base64 of a JSON object")
            }
            Self::Invalid(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for RequestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Invalid(e) => e.source(),
            _ => None,
        }
    }
}

impl From<BuildError> for RequestError {
    fn from(e: BuildError) -> Self {
        Self::Invalid(e)
    }
}

impl RequestError {
    /// The error the service answers this refusal with
    ///
    /// `UnknownOperationException` (404), `RequestTooLargeException` (413) for a body or
    /// payload over the limit, `UnsupportedMediaTypeException` (415),
    /// `InvalidRequestContentException` (400) for a client context that is not Base64 JSON, else
    /// `InvalidParameterValueException` (400), with the message the service writes.
    pub fn to_service_error(&self) -> ServiceError {
        let kind = match self {
            Self::UnknownOperation { .. } => ServiceErrorKind::UnknownOperation,
            Self::BodyTooLarge { .. }
            | Self::Invalid(BuildError::TooLong {
                parameter: Parameter::Payload,
                ..
            }) => ServiceErrorKind::RequestTooLarge,
            Self::UnsupportedMediaType { .. } => ServiceErrorKind::UnsupportedMediaType,
            // as the service answers it (smithy-rs's test against real Lambda expects this)
            Self::ClientContext => ServiceErrorKind::InvalidRequestContent,
            _ => ServiceErrorKind::InvalidParameterValue,
        };
        ServiceError::new(kind, self.service_message())
    }

    /// The message the service writes for this refusal
    fn service_message(&self) -> String {
        match self {
            Self::FunctionNameEncoding => {
                "FunctionName is not a valid percent-encoded UTF-8 string".to_owned()
            }
            Self::BodyTooLarge { max, operation } => format!(
                "Request must be smaller than {max} bytes for the {} operation",
                operation.service_name()
            ),
            Self::UnsupportedMediaType { content_type } => {
                format!("Unsupported content type: {content_type}")
            }
            Self::InvocationType { value, operation } => enum_violation(
                value,
                "invocationType",
                &operation.invocation_types().join(", "),
            ),
            Self::LogType { value } => enum_violation(value, "logType", "None, Tail"),
            Self::ClientContext => {
                "Client context must be a valid Base64-encoded JSON object.".to_owned()
            }
            other => other.to_string(),
        }
    }
}

impl From<&RequestError> for ServiceError {
    fn from(e: &RequestError) -> Self {
        e.to_service_error()
    }
}

/// The service's message for a header outside its enum
fn enum_violation(value: &str, member: &str, allowed: &str) -> String {
    format!(
        "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: \
         Member must satisfy enum value set: [{allowed}]"
    )
}

/// Media types the service accepts for the payload (empty: no `Content-Type`)
const ACCEPTED_MEDIA_TYPES: &[&str] = &[
    "",
    "application/octet-stream",
    "binary/octet-stream",
    "application/json",
    "application/x-amz-json-1.1",
];

/// The value of header `name`, absent or as text: a value that is not visible ASCII is
/// read lossily (each byte that is not UTF-8 becomes U+FFFD), so that it fails the header's
/// validation like any other invalid value instead of passing as absent
fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<Cow<'a, str>> {
    let v = headers.get(name)?;
    Some(match v.to_str() {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(v.as_bytes()),
    })
}

/// The `{FunctionName}` label of `path` between `prefix` and `suffix`
fn label<'a>(path: &'a str, prefix: &str, suffix: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(prefix)?.strip_suffix(suffix)?;
    (!rest.is_empty() && !rest.contains('/')).then_some(rest)
}

/// Matches a request to an operation by method and path, and decodes its `FunctionName`
///
/// Only the route: a server can answer unknown paths before reading a body or checking a
/// signature, then call [`Route::parse`].
///
/// # Errors
///
/// [`RequestError::UnknownOperation`] or [`RequestError::FunctionNameEncoding`].
pub fn parse_route(method: &Method, path: &str) -> Result<Route, RequestError> {
    let found = if method == Method::POST {
        label(path, STREAM_PATH_PREFIX, STREAM_PATH_SUFFIX)
            .map(|l| (Operation::InvokeWithResponseStream, l))
            .or_else(|| {
                label(path, INVOKE_PATH_PREFIX, INVOKE_PATH_SUFFIX).map(|l| (Operation::Invoke, l))
            })
    } else {
        None
    };
    let Some((operation, raw)) = found else {
        return Err(RequestError::UnknownOperation {
            method: method.to_string(),
            path: path.to_owned(),
        });
    };
    let function_name = percent::decode(raw).ok_or(RequestError::FunctionNameEncoding)?;
    Ok(Route {
        operation,
        function_name,
    })
}

/// The percent-decoded value of query parameter `name` (its name compared decoded too, as
/// the signature's canonical query reads it: `%51ualifier` is `Qualifier`)
fn query_param(query: Option<&str>, name: &'static str) -> Result<Option<String>, RequestError> {
    let Some(raw) = query.and_then(|q| {
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let matches = if k.contains('%') {
                percent::decode(k).is_some_and(|k| k == name)
            } else {
                k == name
            };
            matches.then_some(v)
        })
    }) else {
        return Ok(None);
    };
    percent::decode(raw)
        .map(Some)
        .ok_or(RequestError::QueryEncoding { name })
}

impl Route {
    /// The validated parameters of the routed request, from its query, headers and body
    ///
    /// Checks the `Content-Type`, then reads `X-Amz-Invocation-Type`, `X-Amz-Log-Type`,
    /// `X-Amz-Client-Context` (base64 of a JSON object) from the headers, `Qualifier` from
    /// the query and `X-Amz-Tenant-Id`, then checks every parameter with
    /// [`InvokeParams::validate`]. A header value
    /// that is not visible ASCII is refused as an invalid value of that header (read lossily,
    /// it fails the same checks). `Invoke` also accepts the invocation type
    /// `Event` (with a payload of at most [`MAX_EVENT_PAYLOAD_LEN`]), which leaves
    /// [`InvokeParams::get_invocation_type`] unset and sets
    /// [`ParsedRequest::asynchronous`].
    ///
    /// # Errors
    ///
    /// The first [`RequestError`] found, in that order.
    pub fn parse(
        self,
        query: Option<&str>,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<ParsedRequest, RequestError> {
        if let Some(ct) = header_text(headers, CONTENT_TYPE.as_str()) {
            let media = ct.split(';').next().unwrap_or("").trim();
            if !ACCEPTED_MEDIA_TYPES
                .iter()
                .any(|m| m.eq_ignore_ascii_case(media))
            {
                return Err(RequestError::UnsupportedMediaType {
                    content_type: ct.into_owned(),
                });
            }
        }
        let payload_len = body.len();
        let mut params = InvokeParams::new(self.function_name, body);
        let mut asynchronous = false;
        let invocation_type = header_text(headers, X_AMZ_INVOCATION_TYPE);
        match invocation_type.as_deref() {
            None => {}
            Some(t) if t == InvocationType::RequestResponse.as_str() => {
                params = params.invocation_type(InvocationType::RequestResponse);
            }
            Some(t) if t == InvocationType::DryRun.as_str() => {
                params = params.invocation_type(InvocationType::DryRun);
            }
            Some(EVENT) if self.operation == Operation::Invoke => {
                if payload_len > MAX_EVENT_PAYLOAD_LEN {
                    return Err(RequestError::BodyTooLarge {
                        max: MAX_EVENT_PAYLOAD_LEN,
                        operation: self.operation,
                    });
                }
                asynchronous = true;
            }
            Some(other) => {
                return Err(RequestError::InvocationType {
                    value: other.to_owned(),
                    operation: self.operation,
                });
            }
        }
        match header_text(headers, X_AMZ_LOG_TYPE).as_deref() {
            None => {}
            Some(t) if t == LogType::None.as_str() => params = params.log_type(LogType::None),
            Some(t) if t == LogType::Tail.as_str() => params = params.log_type(LogType::Tail),
            Some(other) => {
                return Err(RequestError::LogType {
                    value: other.to_owned(),
                });
            }
        }
        if let Some(cc) = header_text(headers, X_AMZ_CLIENT_CONTEXT) {
            let json = base64::engine::general_purpose::STANDARD
                .decode(cc.trim())
                .ok()
                .filter(|d| {
                    serde_json::from_slice::<serde_json::Value>(d).is_ok_and(|v| v.is_object())
                })
                .ok_or(RequestError::ClientContext)?;
            params = params.client_context(json);
        }
        if let Some(q) = query_param(query, QUALIFIER_QUERY)? {
            params = params.qualifier(q);
        }
        if let Some(t) = header_text(headers, X_AMZ_TENANT_ID) {
            params = params.tenant_id(t);
        }
        params.validate()?;
        Ok(ParsedRequest {
            operation: self.operation,
            params,
            asynchronous,
        })
    }
}

/// Parses a received request back into its operation and validated parameters: the inverse
/// of [`build_request`](crate::build_request)
///
/// [`parse_route`] then [`Route::parse`]. The body must be the whole payload; a server
/// should read at most [`MAX_PAYLOAD_LEN`] bytes of it and answer
/// [`RequestError::BodyTooLarge`] beyond.
///
/// # Errors
///
/// The first [`RequestError`] found.
pub fn parse_request(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<ParsedRequest, RequestError> {
    parse_route(method, uri.path())?.parse(uri.query(), headers, body)
}

impl RequestError {
    /// [`RequestError::BodyTooLarge`] with the service's limit, for a request to `operation`
    pub fn body_too_large(operation: Operation) -> Self {
        Self::BodyTooLarge {
            max: MAX_PAYLOAD_LEN,
            operation,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
    ) -> Result<ParsedRequest, RequestError> {
        let mut h = HeaderMap::new();
        for (n, v) in headers {
            h.insert(
                http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        parse_request(
            &method,
            &uri.parse().unwrap(),
            &h,
            Bytes::from_static(b"{}"),
        )
    }

    const STREAM: &str = "/2021-11-15/functions/f/response-streaming-invocations";
    const INVOKE: &str = "/2015-03-31/functions/f/invocations";

    #[test]
    fn operations_are_named_as_the_model_and_the_service_name_them() {
        assert_eq!(
            Operation::InvokeWithResponseStream.as_str(),
            "InvokeWithResponseStream"
        );
        assert_eq!(Operation::Invoke.as_str(), "Invoke");
        assert_eq!(
            Operation::InvokeWithResponseStream.service_name(),
            "InvokeWithResponseStream"
        );
        assert_eq!(Operation::Invoke.service_name(), "InvokeFunction");
    }

    #[test]
    fn routes() {
        let r = parse("POST", "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Af/invocations", &[]).unwrap();
        assert_eq!(r.operation, Operation::Invoke);
        assert_eq!(
            r.params.function_name(),
            "arn:aws:lambda:us-east-1:123456789012:function:f"
        );
        assert_eq!(
            parse("POST", STREAM, &[]).unwrap().operation,
            Operation::InvokeWithResponseStream
        );
        for (m, p) in [
            ("GET", STREAM),
            (
                "POST",
                "/2021-11-15/functions//response-streaming-invocations",
            ),
            (
                "POST",
                "/2021-11-15/functions/a/b/response-streaming-invocations",
            ),
            ("POST", "/2021-11-15/functions/f"),
        ] {
            let e = parse(m, p, &[]).unwrap_err();
            assert!(
                matches!(e, RequestError::UnknownOperation { .. }),
                "{m} {p}: {e:?}"
            );
            let s = e.to_service_error();
            assert_eq!(
                (s.status, s.code.as_str()),
                (Some(404), "UnknownOperationException")
            );
        }
        assert_eq!(
            parse(
                "POST",
                "/2021-11-15/functions/f%zz/response-streaming-invocations",
                &[]
            ),
            Err(RequestError::FunctionNameEncoding)
        );
    }

    #[test]
    fn header_and_query_errors_map_to_the_services_errors() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], u16, &'a str);
        let cases: &[Case<'_>] = &[
            (
                "",
                &[("content-type", "text/plain")],
                415,
                "UnsupportedMediaTypeException",
            ),
            (
                "",
                &[("x-amz-invocation-type", "Event")],
                400,
                "InvalidParameterValueException",
            ),
            (
                "",
                &[("x-amz-log-type", "Full")],
                400,
                "InvalidParameterValueException",
            ),
            (
                "",
                &[("x-amz-client-context", "not base64!")],
                400,
                "InvalidRequestContentException",
            ),
            (
                "",
                &[("x-amz-client-context", "WzFd")],
                400,
                "InvalidRequestContentException",
            ),
            ("?Qualifier=%zz", &[], 400, "InvalidParameterValueException"),
            (
                "?Qualifier=a%20b",
                &[],
                400,
                "InvalidParameterValueException",
            ),
            (
                "",
                &[("x-amz-tenant-id", "bad!")],
                400,
                "InvalidParameterValueException",
            ),
        ];
        for (query, headers, status, code) in cases {
            let e = parse("POST", &format!("{STREAM}{query}"), headers);
            let Err(e) = e else {
                panic!("{query} {headers:?} accepted");
            };
            let s = e.to_service_error();
            assert_eq!((s.status, s.code.as_str()), (Some(*status), *code), "{e}");
        }
        // accepted variants
        for ct in ["application/json; charset=utf-8", "Binary/Octet-Stream", ""] {
            parse("POST", STREAM, &[("content-type", ct)]).unwrap();
        }
        let r = parse(
            "POST",
            "/2015-03-31/functions/f/invocations?Qualifier=%24LATEST",
            &[
                ("x-amz-invocation-type", "Event"),
                ("x-amz-log-type", "Tail"),
            ],
        )
        .unwrap();
        assert_eq!(r.params.get_invocation_type(), None);
        assert_eq!(r.params.get_log_type(), Some(LogType::Tail));
        assert_eq!(r.params.get_qualifier(), Some("$LATEST"));
        // the name read as the signature reads it: `%51ualifier` is `Qualifier`
        let r = parse("POST", &format!("{STREAM}?%51ualifier=prod"), &[]).unwrap();
        assert_eq!(r.params.get_qualifier(), Some("prod"));
        let e = parse("POST", STREAM, &[("x-amz-log-type", "Full")]).unwrap_err();
        assert_eq!(
            e.to_service_error().message.as_deref(),
            Some(
                "1 validation error detected: Value 'Full' at 'logType' failed to satisfy \
                 constraint: Member must satisfy enum value set: [None, Tail]"
            )
        );
        let big =
            RequestError::body_too_large(Operation::InvokeWithResponseStream).to_service_error();
        assert_eq!(
            (big.status, big.kind),
            (Some(413), ServiceErrorKind::RequestTooLarge)
        );
    }

    #[test]
    fn refusals_name_the_operation_asked_for() {
        let big =
            RequestError::body_too_large(Operation::InvokeWithResponseStream).to_service_error();
        assert!(
            big.message
                .unwrap()
                .ends_with("6291456 bytes for the InvokeWithResponseStream operation")
        );
        // the buffered Invoke: its own name in the message, and `Event` in its enum
        let big = RequestError::body_too_large(Operation::Invoke).to_service_error();
        assert!(
            big.message
                .unwrap()
                .ends_with("for the InvokeFunction operation")
        );
        // each operation takes exactly the invocation types it lists
        for op in [Operation::InvokeWithResponseStream, Operation::Invoke] {
            let uri = match op {
                Operation::InvokeWithResponseStream => STREAM,
                Operation::Invoke => INVOKE,
            };
            for t in op.invocation_types() {
                let parsed = parse("POST", uri, &[("x-amz-invocation-type", t)]).unwrap();
                assert_eq!(parsed.asynchronous, *t == "Event", "{t}");
            }
            for t in ["Event", "RequestResponse", "DryRun", "Later", "dryrun"] {
                if !op.invocation_types().contains(&t) {
                    let e = parse("POST", uri, &[("x-amz-invocation-type", t)]).unwrap_err();
                    assert!(matches!(e, RequestError::InvocationType { .. }), "{t}");
                }
            }
        }
        // Event: Invoke only, with a payload of at most 1 MiB
        let invoke = |payload: Bytes| {
            let mut h = HeaderMap::new();
            h.insert(X_AMZ_INVOCATION_TYPE, "Event".parse().unwrap());
            let uri = INVOKE.parse().unwrap();
            parse_request(&Method::POST, &uri, &h, payload)
        };
        let at_most = invoke(Bytes::from(vec![b' '; MAX_EVENT_PAYLOAD_LEN])).unwrap();
        assert!(at_most.asynchronous);
        assert_eq!(at_most.params.get_invocation_type(), None);
        assert!(!parse("POST", INVOKE, &[]).unwrap().asynchronous);
        let over = invoke(Bytes::from(vec![b' '; MAX_EVENT_PAYLOAD_LEN + 1])).unwrap_err();
        assert_eq!(
            over,
            RequestError::BodyTooLarge {
                max: MAX_EVENT_PAYLOAD_LEN,
                operation: Operation::Invoke
            }
        );
        assert_eq!(
            over.to_service_error().message.as_deref(),
            Some("Request must be smaller than 1048576 bytes for the InvokeFunction operation")
        );
        // the allowed values in the service's message and in ours
        for (uri, value, service_set, ours) in [
            (
                STREAM,
                "Event",
                "[RequestResponse, DryRun]",
                "expected RequestResponse or DryRun",
            ),
            (
                INVOKE,
                "Later",
                "[Event, RequestResponse, DryRun]",
                "expected Event, RequestResponse or DryRun",
            ),
        ] {
            let e = parse("POST", uri, &[("x-amz-invocation-type", value)]).unwrap_err();
            let message = e.to_service_error().message.unwrap();
            assert!(
                message.ends_with(&format!("enum value set: {service_set}")),
                "{message}"
            );
            assert!(
                e.to_string().ends_with(&format!("\"{value}\": {ours}")),
                "{e}"
            );
        }
    }

    #[test]
    fn header_values_that_are_not_visible_ascii_are_invalid_not_absent() {
        let with = |name: &str, value: &[u8]| {
            let mut h = HeaderMap::new();
            h.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_bytes(value).unwrap(),
            );
            parse_request(
                &Method::POST,
                &STREAM.parse().unwrap(),
                &h,
                Bytes::from_static(b"{}"),
            )
        };
        for (name, status) in [
            ("x-amz-invocation-type", 400),
            ("x-amz-log-type", 400),
            ("x-amz-client-context", 400),
            ("x-amz-tenant-id", 400),
            ("content-type", 415),
        ] {
            for value in [&b"\xff"[..], b"Tail\xff", "caf\u{e9}".as_bytes()] {
                let e = with(name, value).expect_err(name);
                assert_eq!(e.to_service_error().status, Some(status), "{name}: {e}");
            }
        }
        let e = with("x-amz-invocation-type", b"\xff").unwrap_err();
        assert_eq!(
            e,
            RequestError::InvocationType {
                value: "\u{fffd}".into(),
                operation: Operation::InvokeWithResponseStream,
            }
        );
        // valid values still pass
        with("x-amz-log-type", b"Tail").unwrap();
    }
}
