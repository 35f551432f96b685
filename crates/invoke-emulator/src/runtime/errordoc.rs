//! The error documents a function process reports, kept whole within bounds
//!
//! A runtime reports a failure with a document: the body of `/error` or `/init/error`, or
//! base64 in `Lambda-Runtime-Function-Error-Body` (an HTTP trailer, or `lambda_runtime`'s final
//! body line), its type in `Lambda-Runtime-Function-Error-Type`.
//!
//! - A document that is JSON is kept byte for byte, with `stackTrace`, `trace` and any other
//!   field the runtime put in it: it becomes `ErrorDetails` and the body of a failed `Invoke`,
//!   as the service returns it. Its `errorType` and `errorMessage` (else the type header) name
//!   the error in the log.
//! - Anything else (`lambda_runtime`'s plain-text stream errors, broken JSON, an empty body)
//!   becomes `{"errorType": <the type header, else Runtime.Unknown>, "errorMessage": <the
//!   text>}`. The RIE passes such bytes on unchanged; the emulator wraps them so that
//!   `ErrorDetails` is always JSON for clients that parse it.
//! - A document over [`MAX_DOCUMENT`] bytes is replaced by a short one with the type header
//!   and a message naming the limit (the runtime's request gets `413`).
//! - A type (header or `errorType`) is cut to [`MAX_TYPE`] bytes, control characters replaced
//!   by `?`: it reaches the client and the log.

use base64::Engine as _;
use serde_json::Value;

use crate::function::FunctionError;

/// Largest error document kept
pub(super) const MAX_DOCUMENT: usize = 1024 * 1024;
/// Longest error type kept, in bytes
pub(super) const MAX_TYPE: usize = 256;
/// The type when the runtime named none
const UNKNOWN: &str = "Runtime.Unknown";

/// `raw` trimmed, control characters replaced by `?`, cut to at most [`MAX_TYPE`] bytes on a
/// character boundary
pub(super) fn error_type(raw: &str) -> String {
    let mut out = String::new();
    for c in raw.trim().chars() {
        let c = if c.is_control() { '?' } else { c };
        if out.len() + c.len_utf8() > MAX_TYPE {
            break;
        }
        out.push(c);
    }
    out
}

/// The bounded type header, if it names one
fn header_type(header: Option<&str>) -> Option<String> {
    header.map(error_type).filter(|t| !t.is_empty())
}

/// The function error for a whole error document (see the module docs)
pub(super) fn from_document(header: Option<&str>, body: &[u8]) -> FunctionError {
    let header = header_type(header);
    if body.len() > MAX_DOCUMENT {
        return too_large(header.as_deref());
    }
    let json = serde_json::from_slice::<Value>(body).ok();
    if let (Some(v), Ok(text)) = (json, std::str::from_utf8(body)) {
        let field = |k: &str| v.get(k).and_then(Value::as_str);
        let t = field("errorType")
            .map(error_type)
            .filter(|t| !t.is_empty())
            .or(header)
            .unwrap_or_else(|| UNKNOWN.to_owned());
        let message = field("errorMessage").unwrap_or_default();
        return FunctionError::new(t, message).with_document(text.to_owned());
    }
    FunctionError::new(
        header.unwrap_or_else(|| UNKNOWN.to_owned()),
        String::from_utf8_lossy(body),
    )
}

/// The function error for an error type and a base64 document (JSON from Node and Go, plain
/// text from Rust; a body that is not base64 at all is taken as it is)
pub(super) fn from_report(error_type: &str, body: &str) -> FunctionError {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .unwrap_or_else(|_| body.as_bytes().to_vec());
    from_document(Some(error_type), &decoded)
}

/// The function error for a document over [`MAX_DOCUMENT`], which was not kept
pub(super) fn too_large(header: Option<&str>) -> FunctionError {
    FunctionError::new(
        header_type(header).unwrap_or_else(|| UNKNOWN.to_owned()),
        format!(
            "The error document exceeded the maximum allowed size ({MAX_DOCUMENT} bytes) and was dropped."
        ),
    )
}

/// The function error for a document whose body could not be read whole
pub(super) fn cut_short(header: Option<&str>, e: &dyn std::fmt::Display) -> FunctionError {
    FunctionError::new(
        header_type(header).unwrap_or_else(|| UNKNOWN.to_owned()),
        format!("The error document was cut short: {e}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_kept_as_sent() {
        let doc =
            "{ \"errorType\": \"E\", \"errorMessage\": \"m\", \"stackTrace\": [\"a\"], \"x\": {} }";
        let e = from_document(Some("Unhandled"), doc.as_bytes());
        assert_eq!(
            (e.error_type.as_str(), e.error_message.as_str()),
            ("E", "m")
        );
        assert_eq!(e.details(), doc);
        // JSON that is not an object, or names no type: as sent, typed by the header
        let e = from_document(Some("Function.X"), b"\"just a string\"");
        assert_eq!(e.error_type, "Function.X");
        assert_eq!(e.details(), "\"just a string\"");
        assert_eq!(from_document(None, b"[1]").error_type, UNKNOWN);
    }

    #[test]
    fn anything_else_is_wrapped_as_json() {
        for (header, body, t) in [
            (Some("T"), &b"plain text"[..], "T"),
            (None, b"{\"errorType\": \"cut", UNKNOWN),
            (Some(""), b"", UNKNOWN),
            (None, b"\xff\xfe", UNKNOWN),
        ] {
            let e = from_document(header, body);
            let v: Value = serde_json::from_str(&e.details()).unwrap();
            assert_eq!(v["errorType"], t);
            assert_eq!(v["errorMessage"], *String::from_utf8_lossy(body));
        }
        // nesting past serde_json's depth limit is not JSON here, and no stack overflow
        let deep = "[".repeat(100_000);
        let e = from_document(None, deep.as_bytes());
        assert_eq!(e.error_message.len(), 100_000);
    }

    #[test]
    fn types_and_documents_are_bounded() {
        let long = "é".repeat(1000);
        let t = error_type(&long);
        assert!(t.len() <= MAX_TYPE && t.len() > MAX_TYPE - 2, "{}", t.len());
        assert_eq!(error_type(" a\u{1b}[31mb\t"), "a?[31mb");
        let e = from_document(Some(&long), b"text");
        assert_eq!(e.error_type, t);
        // a document of exactly the limit is kept
        let doc = format!("\"{}\"", "x".repeat(MAX_DOCUMENT - 2));
        assert_eq!(from_document(Some("Big"), doc.as_bytes()).details(), doc);
        let doc = format!("\"{}\"", "x".repeat(MAX_DOCUMENT));
        let e = from_document(Some("Big"), doc.as_bytes());
        assert_eq!(e.error_type, "Big");
        assert!(e.details().len() < 1024);
        assert!(e.error_message.contains("1048576 bytes"));
    }

    #[test]
    fn reports_are_base64_or_text() {
        let b64 =
            base64::engine::general_purpose::STANDARD.encode(r#"{"errorType":"N","trace":[]}"#);
        let e = from_report("Function.X", &b64);
        assert_eq!(e.error_type, "N");
        assert_eq!(e.details(), r#"{"errorType":"N","trace":[]}"#);
        let e = from_report("Runtime.StreamError", "not base64!");
        assert_eq!(e.error_message, "not base64!");
    }
}
