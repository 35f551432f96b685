//! Canonical request and string to sign (steps 1 and 2 of the signing process)

use std::borrow::Cow;
use std::ops::Range;

use http::uri::Uri;
use http::{HeaderMap, HeaderName, HeaderValue};

use super::key::{push_hex, sha256};
use super::{SignedHeaders, SigningSettings};
use crate::error::SignError;
use crate::percent::{hex_value, push_encoded, push_encoded_byte};

/// The algorithm name that starts the string to sign and the `Authorization` value
pub(crate) const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Header names the signer sets itself; a request's own values for them are replaced
pub(crate) const X_AMZ_DATE: &str = "x-amz-date";
pub(crate) const X_AMZ_SECURITY_TOKEN: &str = "x-amz-security-token";
pub(crate) const X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";

/// A canonical request, with the position of its signed-headers line
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CanonicalRequest {
    /// The canonical request text
    pub(crate) text: String,
    /// Where the signed-headers list sits in `text`
    signed_headers: Range<usize>,
    /// The request has an `X-Amz-Security-Token` header (to be replaced or removed)
    pub(crate) had_security_token: bool,
}

impl CanonicalRequest {
    /// The `;`-separated list of signed header names
    pub(crate) fn signed_headers(&self) -> &str {
        &self.text[self.signed_headers.clone()]
    }
}

/// Headers that are never signed, as the AWS SDKs skip them: the signature itself, headers that
/// proxies add or change, and hop-by-hop headers
fn never_signed(name: &str) -> bool {
    matches!(
        name,
        "authorization"
            | "user-agent"
            | "x-amzn-trace-id"
            | "transfer-encoding"
            | "connection"
            | "keep-alive"
            | "te"
            | "trailer"
            | "upgrade"
            | "expect"
    ) || name.starts_with("proxy-")
}

/// Removes dot segments and empty segments from an absolute path (RFC 3986 §5.2.4, as
/// the AWS signers apply it: `//` collapses too)
pub(crate) fn normalize_path(path: &str) -> Cow<'_, str> {
    if path.is_empty() {
        return Cow::Borrowed("/");
    }
    let path = if path.starts_with('/') {
        Cow::Borrowed(path)
    } else {
        Cow::Owned(format!("/{path}"))
    };
    if !(path.contains('.') || path.contains("//")) {
        return path;
    }
    let mut kept: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                kept.pop();
            }
            other => kept.push(other),
        }
    }
    let mut out = String::with_capacity(path.len());
    for segment in &kept {
        out.push('/');
        out.push_str(segment);
    }
    let trailing = ["/", "/.", "/..", "/./", "/../"]
        .iter()
        .any(|end| path.ends_with(end));
    if out.is_empty() || (trailing && !out.ends_with('/')) {
        out.push('/');
    }
    Cow::Owned(out)
}

/// Appends the canonical URI: the (optionally normalised) path with every byte other
/// than `/` and the unreserved characters percent-encoded, so that an already encoded
/// `%3A` becomes `%253A` (the non-S3 "double encoding")
pub(crate) fn push_canonical_uri(out: &mut String, path: &str, normalize: bool) {
    let path = if normalize {
        normalize_path(path)
    } else if path.is_empty() {
        Cow::Borrowed("/")
    } else {
        Cow::Borrowed(path)
    };
    push_encoded(out, &path, true);
}

/// Appends a query component decoded as `application/x-www-form-urlencoded` (`%XX`
/// sequences and `+` for a space, as smithy-rs reads it) and encoded again with the
/// unreserved set
fn push_query_component(out: &mut String, component: &str) {
    let bytes = component.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match (hex_value(bytes[i + 1]), hex_value(bytes[i + 2])) {
                    (Some(hi), Some(lo)) => {
                        i += 2;
                        hi << 4 | lo
                    }
                    _ => b'%',
                }
            }
            b'+' => b' ',
            other => other,
        };
        push_encoded_byte(out, b);
        i += 1;
    }
}

/// The query component re-encoded, as a new string
fn query_component(component: &str) -> String {
    let mut out = String::with_capacity(component.len());
    push_query_component(&mut out, component);
    out
}

/// Appends the canonical query string: `name=value` pairs, each side decoded and encoded
/// again with the unreserved set, sorted by name then value, joined by `&`
pub(crate) fn push_canonical_query(out: &mut String, query: &str) {
    let mut pairs = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")));
    let Some(first) = pairs.next() else {
        return;
    };
    let Some(second) = pairs.next() else {
        // one pair: nothing to sort
        push_query_component(out, first.0);
        out.push('=');
        push_query_component(out, first.1);
        return;
    };
    let mut encoded: Vec<(String, String)> = [first, second]
        .into_iter()
        .chain(pairs)
        .map(|(k, v)| (query_component(k), query_component(v)))
        .collect();
    encoded.sort_unstable();
    for (i, (k, v)) in encoded.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
}

/// Appends a header value with leading and trailing spaces removed and inner runs of
/// spaces collapsed to one
fn push_trimmed(out: &mut String, value: &str) {
    // most values (dates, hosts, lengths, media types) have no space at all: one `memchr`
    if !value.as_bytes().contains(&b' ')
        || !(value.starts_with(' ') || value.ends_with(' ') || value.contains("  "))
    {
        out.push_str(value);
        return;
    }
    let mut space = false;
    for part in value.split(' ').filter(|s| !s.is_empty()) {
        if space {
            out.push(' ');
        }
        out.push_str(part);
        space = true;
    }
}

/// The host to sign when the request has no `Host` header: the URI host, with the port
/// unless it is the scheme's default
pub(crate) fn host_from_uri(uri: &Uri) -> Result<Cow<'_, str>, SignError> {
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or(SignError::MissingHost)?;
    let Some(port) = uri.port_u16() else {
        return Ok(Cow::Borrowed(host));
    };
    let default = match uri.scheme_str() {
        Some("http") => Some(80),
        Some("https") => Some(443),
        _ => None,
    };
    if default == Some(port) {
        Ok(Cow::Borrowed(host))
    } else {
        Ok(Cow::Owned(format!("{host}:{port}")))
    }
}

/// Signed headers kept on the stack while the canonical request is built; more go to the heap
const INLINE: usize = 16;

/// Where a signed header's value comes from
#[derive(Clone, Copy)]
enum Source<'a> {
    /// The one value of this header in the request
    One(&'a HeaderValue),
    /// Every value of this header in the request (more than one), joined with `,`
    Many(&'a HeaderName),
    /// A value the signer supplies
    Value(&'a str),
}

/// A header value to sign as text
fn header_str<'v>(name: &str, value: &'v HeaderValue) -> Result<&'v str, SignError> {
    std::str::from_utf8(value.as_bytes()).map_err(|_| SignError::HeaderValue {
        name: name.to_owned(),
    })
}

/// Builds the canonical request
///
/// `headers` are the request's headers; `added` are the headers the signer sets
/// (`x-amz-date`, and `x-amz-security-token` / `x-amz-content-sha256` when they are to be
/// signed), whose names must be lower case. The request's own `x-amz-date` and
/// `x-amz-security-token` (and `x-amz-content-sha256` when `settings` adds it) are left
/// out: the signer replaces them.
///
/// # Errors
///
/// [`SignError::HeaderValue`] when a header value to sign is not UTF-8,
/// [`SignError::MissingHost`] when there is neither a `Host` header nor a URI authority.
pub(crate) fn canonical_request(
    method: &str,
    uri: &Uri,
    headers: &HeaderMap,
    added: &[(&'static str, &str)],
    settings: SigningSettings,
    payload_hash: &str,
) -> Result<CanonicalRequest, SignError> {
    let replaced = |name: &str| {
        name == X_AMZ_DATE
            || name == X_AMZ_SECURITY_TOKEN
            || (settings.payload_checksum_header && name == X_AMZ_CONTENT_SHA256)
    };
    let mut host = None;
    // on the stack for the usual handful of headers
    let empty = ("", Source::Value(""));
    let mut inline = [empty; INLINE];
    let mut heap = Vec::new();
    let most = headers.keys_len() + 1 + added.len();
    let slots = if most <= INLINE {
        &mut inline[..]
    } else {
        heap.resize(most, empty);
        &mut heap[..]
    };
    // one pass over the headers, no lookups: a header's values come one after the other
    let mut n = 0;
    let (mut has_host, mut had_security_token) = (false, false);
    for (name, value) in headers {
        let name_str = name.as_str();
        if n > 0 && slots[n - 1].0 == name_str {
            slots[n - 1].1 = Source::Many(name);
            continue;
        }
        has_host |= *name == http::header::HOST;
        had_security_token |= name_str == X_AMZ_SECURITY_TOKEN;
        let listed = settings.headers == SignedHeaders::Every || !never_signed(name_str);
        if listed && !replaced(name_str) {
            slots[n] = (name_str, Source::One(value));
            n += 1;
        }
    }
    if !has_host {
        host = Some(host_from_uri(uri)?);
    }
    for entry in host
        .as_deref()
        .map(|h| ("host", Source::Value(h)))
        .into_iter()
        .chain(added.iter().map(|&(n, v)| (n, Source::Value(v))))
    {
        slots[n] = entry;
        n += 1;
    }
    let signed = &mut slots[..n];
    // names are distinct: header map keys are, and the added ones were filtered out
    signed.sort_unstable_by(|a, b| a.0.cmp(b.0));

    let query = uri.query().unwrap_or("");
    let mut text = String::with_capacity(
        method.len()
            + uri.path().len() * 3 / 2
            + query.len() * 3 / 2
            + signed.len() * 48
            + payload_hash.len()
            + 16,
    );
    text.push_str(method);
    text.push('\n');
    push_canonical_uri(&mut text, uri.path(), settings.normalize_path);
    text.push('\n');
    push_canonical_query(&mut text, query);
    text.push('\n');
    for (name, source) in signed.iter() {
        text.push_str(name);
        text.push(':');
        match source {
            Source::One(value) => push_trimmed(&mut text, header_str(name, value)?),
            Source::Many(header) => {
                for (i, value) in headers.get_all(*header).iter().enumerate() {
                    let value = header_str(name, value)?;
                    if i > 0 {
                        text.push(',');
                    }
                    push_trimmed(&mut text, value);
                }
            }
            Source::Value(value) => push_trimmed(&mut text, value),
        }
        text.push('\n');
    }
    text.push('\n');
    let start = text.len();
    for (i, (name, _)) in signed.iter().enumerate() {
        if i > 0 {
            text.push(';');
        }
        text.push_str(name);
    }
    let signed_headers = start..text.len();
    text.push('\n');
    text.push_str(payload_hash);
    Ok(CanonicalRequest {
        text,
        signed_headers,
        had_security_token,
    })
}

/// The string to sign: algorithm, `X-Amz-Date`, credential scope
/// (`<yyyymmdd>/<region>/<service>/aws4_request`) and the hex SHA-256 of the canonical
/// request, one per line; with where the credential scope sits in it
pub(crate) fn string_to_sign(
    amz_date: &str,
    region: &str,
    service: &str,
    canonical_request: &str,
) -> (String, Range<usize>) {
    let mut out =
        String::with_capacity(ALGORITHM.len() + amz_date.len() + region.len() + service.len() + 90);
    out.push_str(ALGORITHM);
    out.push('\n');
    out.push_str(amz_date);
    out.push('\n');
    let start = out.len();
    out.push_str(&amz_date[..8]);
    out.push('/');
    out.push_str(region);
    out.push('/');
    out.push_str(service);
    out.push_str("/aws4_request");
    let scope = start..out.len();
    out.push('\n');
    push_hex(&mut out, &sha256(canonical_request.as_bytes()));
    (out, scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(path: &str, normalize: bool) -> String {
        let mut out = String::new();
        push_canonical_uri(&mut out, path, normalize);
        out
    }

    fn query(q: &str) -> String {
        let mut out = String::new();
        push_canonical_query(&mut out, q);
        out
    }

    #[test]
    fn path_is_encoded_twice() {
        assert_eq!(
            uri(
                "/2021-11-15/functions/my-function%3Aprod/response-streaming-invocations",
                true
            ),
            "/2021-11-15/functions/my-function%253Aprod/response-streaming-invocations"
        );
        assert_eq!(
            uri("/test/@connections/JBDvjfGEIAMCERw%3D", true),
            "/test/%40connections/JBDvjfGEIAMCERw%253D"
        );
        assert_eq!(uri("/example/$delete", true), "/example/%24delete");
        assert_eq!(uri("/\u{1234}", true), "/%E1%88%B4");
    }

    #[test]
    fn path_normalization() {
        for (path, normalized, raw) in [
            ("", "/", "/"),
            ("/", "/", "/"),
            ("//example//", "/example/", "//example//"),
            ("/example/..", "/", "/example/.."),
            ("/example1/example2/../..", "/", "/example1/example2/../.."),
            ("/./", "/", "/./"),
            ("/example/.", "/example/", "/example/."),
            ("/a/./b/../c", "/a/c", "/a/./b/../c"),
            ("/../a", "/a", "/../a"),
            ("/my_fn.v2/x", "/my_fn.v2/x", "/my_fn.v2/x"),
        ] {
            assert_eq!(uri(path, true), normalized, "{path}");
            assert_eq!(uri(path, false), raw, "{path}");
        }
    }

    #[test]
    fn query_canonical_form() {
        assert_eq!(query(""), "");
        assert_eq!(query("Qualifier=%24LATEST"), "Qualifier=%24LATEST");
        assert_eq!(query("Qualifier=$LATEST"), "Qualifier=%24LATEST");
        assert_eq!(query("b=2&a=1&a=0"), "a=0&a=1&b=2");
        assert_eq!(query("acl"), "acl=");
        assert_eq!(query("a=%7e&b=x+y&c=%2"), "a=~&b=x%20y&c=%252");
        assert_eq!(query("%e1%88%b4=v&&"), "%E1%88%B4=v");
        assert_eq!(query("%"), "%25=");
        assert_eq!(query("a=%4"), "a=%254");
    }

    #[test]
    fn header_values_are_trimmed() {
        let mut out = String::new();
        push_trimmed(&mut out, "  a   b  c ");
        assert_eq!(out, "a b c");
        out.clear();
        push_trimmed(&mut out, "   ");
        assert_eq!(out, "");
        out.clear();
        push_trimmed(&mut out, "\"a\tb\"");
        assert_eq!(out, "\"a\tb\"");
    }

    #[test]
    fn host_and_port() {
        let host = |u: &str| host_from_uri(&u.parse().unwrap()).map(Cow::into_owned);
        assert_eq!(
            host("https://lambda.us-east-1.amazonaws.com/").unwrap(),
            "lambda.us-east-1.amazonaws.com"
        );
        assert_eq!(host("https://example.com:443/").unwrap(), "example.com");
        assert_eq!(host("http://example.com:80/").unwrap(), "example.com");
        assert_eq!(host("http://localhost:9001/").unwrap(), "localhost:9001");
        assert_eq!(host("https://example.com:80/").unwrap(), "example.com:80");
        assert_eq!(host("/only/a/path"), Err(SignError::MissingHost));
    }

    #[test]
    fn never_signed_headers() {
        for name in [
            "authorization",
            "user-agent",
            "x-amzn-trace-id",
            "transfer-encoding",
            "expect",
            "proxy-authorization",
            "te",
        ] {
            assert!(never_signed(name), "{name}");
        }
        for name in [
            "content-type",
            "content-length",
            "x-amz-log-type",
            "x-amz-user-agent",
            "host",
        ] {
            assert!(!never_signed(name), "{name}");
        }
    }
}
