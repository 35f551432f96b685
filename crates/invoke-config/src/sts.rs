//! STS `AssumeRole` / `AssumeRoleWithWebIdentity`: query-protocol requests, XML answers

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::credentials::HttpResponse;
use crate::time::parse_rfc3339;
use crate::{CredentialsError, ProvidedCredentials};

/// `application/x-www-form-urlencoded` value encoding (everything but unreserved characters)
pub(crate) fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The form body of an STS action
pub(crate) fn form(action: &str, params: &[(&str, &str)]) -> String {
    let mut body = format!("Action={action}&Version=2011-06-15");
    for (k, v) in params {
        let _ = write!(body, "&{k}={}", form_encode(v));
    }
    body
}

/// Text of each element, keyed by its path of local names (`AssumeRoleResult/Credentials/AccessKeyId`)
fn xml_texts(body: &str) -> Result<HashMap<String, String>, String> {
    let mut stack: Vec<&str> = Vec::new();
    let mut out: HashMap<String, String> = HashMap::new();
    for token in xmlparser::Tokenizer::from(body) {
        match token.map_err(|e| format!("invalid XML: {e}"))? {
            xmlparser::Token::ElementStart { local, .. } => {
                if stack.len() >= 32 {
                    return Err("invalid XML: nested too deeply".into());
                }
                stack.push(local.as_str());
            }
            xmlparser::Token::ElementEnd { end, .. } => match end {
                xmlparser::ElementEnd::Open => {}
                xmlparser::ElementEnd::Close(..) | xmlparser::ElementEnd::Empty => {
                    stack.pop();
                }
            },
            xmlparser::Token::Text { text } | xmlparser::Token::Cdata { text, .. } => {
                let key = stack.join("/");
                out.entry(key)
                    .or_default()
                    .push_str(&unescape(text.as_str()));
            }
            _ => {}
        }
    }
    Ok(out)
}

fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let c = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        if let Some(c) = c {
            out.push(c);
            rest = &rest[end + 1..];
        } else {
            out.push('&');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

fn find<'a>(texts: &'a HashMap<String, String>, suffix: &str) -> Option<&'a str> {
    texts
        .iter()
        .find(|(k, _)| k.ends_with(suffix))
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// STS errors modeled as `...Exception` types in the SDKs
const MODELED: [&str; 7] = [
    "ExpiredToken",
    "IDPCommunicationError",
    "IDPRejectedClaim",
    "InvalidIdentityToken",
    "MalformedPolicyDocument",
    "PackedPolicyTooLarge",
    "InvalidAuthorizationMessage",
];

/// Credentials from a successful answer
pub(crate) fn parse_success(
    action: &str,
    body: &[u8],
    provider: &'static str,
) -> Result<ProvidedCredentials, CredentialsError> {
    let fail = |m: String| CredentialsError::load(provider, format!("STS {action}: {m}"), false);
    let text = std::str::from_utf8(body).map_err(|_| fail("answer is not UTF-8".into()))?;
    let texts = xml_texts(text).map_err(fail)?;
    let get = |k: &str| find(&texts, &format!("Credentials/{k}"));
    let (Some(id), Some(secret), Some(token)) = (
        get("AccessKeyId"),
        get("SecretAccessKey"),
        get("SessionToken"),
    ) else {
        return Err(fail(
            "answer lacks AccessKeyId, SecretAccessKey or SessionToken".into(),
        ));
    };
    // without an Expiration, temporary credentials would be kept for good: taken as expired
    // instead (used for the call that loaded them, loaded again for the next), as aws-config
    let expiry = match get("Expiration") {
        Some(e) => parse_rfc3339(e).ok_or_else(|| fail(format!("invalid Expiration `{e}`")))?,
        None => std::time::SystemTime::UNIX_EPOCH,
    };
    let account_id = find(&texts, "AssumedRoleUser/Arn")
        .and_then(|arn| arn.split(':').nth(4))
        .filter(|a| !a.is_empty())
        .map(str::to_owned);
    Ok(ProvidedCredentials::new(
        invoke_proto::Credentials::new(id, secret, Some(token.to_owned())),
        Some(expiry),
        account_id,
        provider,
    ))
}

/// STS error codes that asking again may cure, whatever their status (STS throttles with
/// 400): standard mode's throttling codes, and botocore's `_retry.json` entry for STS
fn retryable_code(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "IDPCommunicationError" | "Throttling" | "ThrottlingException" | "RequestLimitExceeded"
        )
    )
}

/// Whether an STS answer is retried: a failed one that [`parse_error`] calls retryable
pub(crate) fn retryable_answer(r: &HttpResponse) -> bool {
    !r.status.is_success() && parse_error("", r.status.as_u16(), &r.body, "sts").is_retryable()
}

/// The error of a failed answer: `InvalidIdentityTokenException: message`
pub(crate) fn parse_error(
    action: &str,
    status: u16,
    body: &[u8],
    provider: &'static str,
) -> CredentialsError {
    let texts = std::str::from_utf8(body)
        .ok()
        .and_then(|t| xml_texts(t).ok())
        .unwrap_or_default();
    let code = find(&texts, "Error/Code");
    let message = find(&texts, "Error/Message").unwrap_or("");
    let retryable = status >= 500 || status == 429 || retryable_code(code);
    let what = match code {
        Some(c) if MODELED.contains(&c) => format!("{c}Exception: {message}"),
        Some(c) => format!("{c}: {message}"),
        None => format!("HTTP {status}"),
    };
    CredentialsError::load(provider, format!("STS {action} failed: {what}"), retryable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_without_an_expiration_is_taken_as_expired() {
        let body = |expiration: &str| {
            format!(
                "<AssumeRoleResponse><AssumeRoleResult><Credentials>\
                 <AccessKeyId>ASIA</AccessKeyId><SecretAccessKey>s</SecretAccessKey>\
                 <SessionToken>t</SessionToken>{expiration}</Credentials></AssumeRoleResult>\
                 </AssumeRoleResponse>"
            )
        };
        let got = parse_success("AssumeRole", body("").as_bytes(), "sts").unwrap();
        assert_eq!(got.expiry, Some(std::time::SystemTime::UNIX_EPOCH));
        let got = parse_success(
            "AssumeRole",
            body("<Expiration>2023-11-14T23:13:20Z</Expiration>").as_bytes(),
            "sts",
        )
        .unwrap();
        assert_eq!(
            got.expiry,
            Some(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_003_600))
        );
    }

    #[test]
    fn form_and_unescape() {
        assert_eq!(
            form_encode("arn:aws:iam::1:role/x y"),
            "arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fx%20y"
        );
        assert_eq!(
            unescape("a &amp; b &lt;&#65;&#x42;&bogus; &"),
            "a & b <AB&bogus; &"
        );
        assert_eq!(unescape("&gt;&quot;&apos;"), r#">"'"#);
    }

    #[test]
    fn error_names_follow_the_sdk() {
        let body = b"<ErrorResponse><Error><Code>InvalidIdentityToken</Code><Message>No OIDC</Message></Error></ErrorResponse>";
        let e = parse_error("AssumeRoleWithWebIdentity", 400, body, "web identity");
        assert!(
            e.to_string()
                .contains("InvalidIdentityTokenException: No OIDC"),
            "{e}"
        );
        assert!(!e.is_retryable());
        // an unmodeled code is shown as it came, and throttling is retried whatever the status
        let body = b"<ErrorResponse><Error><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>";
        let e = parse_error("AssumeRole", 400, body, "profile");
        assert!(
            e.to_string().contains("failed: Throttling: Rate exceeded"),
            "{e}"
        );
        assert!(e.is_retryable());
        let e = parse_error("AssumeRole", 503, b"", "profile");
        assert!(
            e.to_string().contains("HTTP 503") && e.is_retryable(),
            "{e}"
        );
    }

    #[test]
    fn bad_xml_is_an_error() {
        for body in [&b"<a><b>"[..], b"<<<", b"\xff"] {
            assert!(parse_success("AssumeRole", body, "p").is_err());
        }
    }
}
