//! AWS Signature Version 4 for HTTP requests, header variant
//! ([AWS docs](https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html))
//!
//! [`sign`] adds `X-Amz-Date`, `X-Amz-Security-Token` (for temporary credentials) and
//! `Authorization` to an [`http::Request`]. It is pure: the signing time is a parameter,
//! nothing reads the clock, the environment or the network. It follows the rules every
//! AWS service except S3 uses: the URI path is normalised and percent-encoded a second
//! time (`%3A` is signed as `%253A`), the payload hash is the SHA-256 of the body, and no
//! `X-Amz-Content-Sha256` header is added unless [`SigningSettings`] asks for it.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use invoke_proto::bytes::Bytes;
//! use invoke_proto::{sign, Credentials, SigningScope};
//!
//! let mut req = http::Request::post(
//!     "https://lambda.us-east-1.amazonaws.com/2021-11-15/functions/my-function/response-streaming-invocations",
//! )
//! .body(Bytes::from_static(b"{}"))?;
//! let creds = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None);
//! let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_705_320_000); // 2024-01-15T12:00:00Z
//! sign(&mut req, &creds, &SigningScope::lambda("us-east-1"), now)?;
//! assert_eq!(req.headers()["x-amz-date"], "20240115T120000Z");
//! assert!(req.headers()["authorization"].to_str()?.starts_with(
//!     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240115/us-east-1/lambda/aws4_request, \
//!      SignedHeaders=host;x-amz-date, Signature=",
//! ));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [SigV4]: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html

mod canonical;
mod key;
mod verify;

pub(crate) use key::KeyCache;

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{AUTHORIZATION, HeaderName, HeaderValue};

use crate::credentials::Credentials;
use crate::error::SignError;
use canonical::{ALGORITHM, X_AMZ_CONTENT_SHA256, X_AMZ_DATE, X_AMZ_SECURITY_TOKEN};
pub use verify::{SignedHead, VerifyError, check_signed_head, parse_amz_date};

/// Where a signature is valid: the region and the service's signing name
///
/// Together with the date they form the credential scope
/// `<yyyymmdd>/<region>/<service>/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SigningScope {
    /// The region, such as `us-east-1`; for a custom endpoint still the configured region
    pub region: String,
    /// The signing name of the service, such as `lambda`
    pub service: String,
}

impl SigningScope {
    /// A scope for `service` in `region`
    pub fn new(region: impl Into<String>, service: impl Into<String>) -> Self {
        Self {
            region: region.into(),
            service: service.into(),
        }
    }

    /// The scope of AWS Lambda (signing name `lambda`) in `region`
    pub fn lambda(region: impl Into<String>) -> Self {
        Self::new(region, "lambda")
    }
}

/// Choices that differ between AWS services; the defaults are Lambda's
///
/// ```
/// use invoke_proto::SigningSettings;
///
/// let s3_like = SigningSettings::default().with_payload_checksum_header(true);
/// assert!(s3_like.payload_checksum_header && s3_like.normalize_path);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SigningSettings {
    /// Remove `.`, `..` and empty segments from the URI path before encoding it
    /// (default `true`, as every service but S3 expects)
    pub normalize_path: bool,
    /// Add and sign `X-Amz-Content-Sha256` with the payload hash (default `false`: only S3
    /// requires it, and the AWS SDKs do not send it to Lambda)
    pub payload_checksum_header: bool,
    /// Sign `X-Amz-Security-Token` (default `true`); when `false` the token header is
    /// still added, after signing, for the few services that want it that way
    pub sign_session_token: bool,
    /// Which headers are signed
    pub(crate) headers: SignedHeaders,
}

/// Which headers of a request are signed
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum SignedHeaders {
    /// All but those the AWS SDKs leave out (`user-agent`, hop-by-hop headers, ...)
    Usual,
    /// Every one: a verifier re-signs exactly the headers a client listed, which some SDKs
    /// (.NET, Java v1) include `user-agent` in
    Every,
}

impl SigningSettings {
    /// The defaults, Lambda's
    pub const fn new() -> Self {
        Self {
            normalize_path: true,
            payload_checksum_header: false,
            sign_session_token: true,
            headers: SignedHeaders::Usual,
        }
    }

    /// These settings with [`normalize_path`](Self::normalize_path) set to `on`
    #[must_use]
    pub const fn with_normalize_path(mut self, on: bool) -> Self {
        self.normalize_path = on;
        self
    }

    /// These settings with [`payload_checksum_header`](Self::payload_checksum_header) set
    /// to `on`
    #[must_use]
    pub const fn with_payload_checksum_header(mut self, on: bool) -> Self {
        self.payload_checksum_header = on;
        self
    }

    /// These settings with [`sign_session_token`](Self::sign_session_token) set to `on`
    #[must_use]
    pub const fn with_sign_session_token(mut self, on: bool) -> Self {
        self.sign_session_token = on;
        self
    }
}

impl Default for SigningSettings {
    fn default() -> Self {
        Self::new()
    }
}

/// The intermediate results of one signing, for comparing with what a service reports in
/// a `SignatureDoesNotMatch` error
///
/// `Debug` hides the session token that the canonical request may contain.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SigningSteps {
    /// The canonical request (step 1 of the signing process)
    pub canonical_request: String,
    /// The string to sign (step 2)
    pub string_to_sign: String,
    /// The signature, lower-case hex (step 4)
    pub signature: String,
}

impl SigningSteps {
    /// The signed header names, `;`-separated, as in the canonical request
    pub fn signed_headers(&self) -> &str {
        self.canonical_request
            .rsplit('\n')
            .nth(1)
            .unwrap_or_default()
    }
}

impl fmt::Debug for SigningSteps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Redacted<'a>(&'a str);
        impl fmt::Debug for Redacted<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut shown = String::with_capacity(self.0.len());
                for (i, line) in self.0.split('\n').enumerate() {
                    if i > 0 {
                        shown.push('\n');
                    }
                    if line.starts_with("x-amz-security-token:") {
                        shown.push_str("x-amz-security-token:<redacted>");
                    } else {
                        shown.push_str(line);
                    }
                }
                fmt::Debug::fmt(&shown, f)
            }
        }
        f.debug_struct("SigningSteps")
            .field("canonical_request", &Redacted(&self.canonical_request))
            .field("string_to_sign", &self.string_to_sign)
            .field("signature", &self.signature)
            .finish()
    }
}

/// The names of the headers the signer sets, checked once at compile time
const X_AMZ_DATE_NAME: HeaderName = HeaderName::from_static(X_AMZ_DATE);
const X_AMZ_SECURITY_TOKEN_NAME: HeaderName = HeaderName::from_static(X_AMZ_SECURITY_TOKEN);

/// `t` as SigV4 writes it in `X-Amz-Date`: `YYYYMMDD'T'HHMMSS'Z'`, UTC, whole seconds (the
/// reverse of [`parse_amz_date`])
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// assert_eq!(invoke_proto::format_amz_date(t).unwrap(), "20231114T221320Z");
/// ```
///
/// # Errors
///
/// [`SignError::TimeOutOfRange`] for a time before 1970 or after year 9999.
pub fn format_amz_date(t: SystemTime) -> Result<String, SignError> {
    AmzDate::new(t).map(|d| d.date_time().to_owned())
}

/// A signing time in the two forms SigV4 uses: `YYYYMMDD'T'HHMMSS'Z'` and `YYYYMMDD`
#[derive(Clone, Copy, PartialEq, Eq)]
struct AmzDate([u8; 16]);

impl AmzDate {
    /// The UTC date and time of `t`, whole seconds
    fn new(t: SystemTime) -> Result<Self, SignError> {
        let secs = t
            .duration_since(UNIX_EPOCH)
            .map_err(|_| SignError::TimeOutOfRange)?
            .as_secs();
        let (days, rem) = (secs / 86_400, secs % 86_400);
        // days to civil date, after Howard Hinnant's `civil_from_days`, for days >= 0
        let z = days + 719_468;
        let era = z / 146_097;
        let doe = z % 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + u64::from(month <= 2);
        if year > 9999 {
            return Err(SignError::TimeOutOfRange);
        }
        let mut out = *b"00000000T000000Z";
        let mut put = |at: usize, width: usize, mut value: u64| {
            for i in (at..at + width).rev() {
                out[i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, 4, year);
        put(4, 2, month);
        put(6, 2, day);
        put(9, 2, rem / 3600);
        put(11, 2, rem / 60 % 60);
        put(13, 2, rem % 60);
        Ok(Self(out))
    }

    /// `YYYYMMDD'T'HHMMSS'Z'`, the `X-Amz-Date` value
    fn date_time(&self) -> &str {
        std::str::from_utf8(&self.0).expect("ascii digits")
    }

    /// `YYYYMMDD`, the credential scope date
    fn date(&self) -> &str {
        &self.date_time()[..8]
    }

    /// [`date_time`](Self::date_time) as an `X-Amz-Date` value: made once per second and
    /// thread, then shared (a clone instead of an allocation and a validation per request)
    fn header_value(&self) -> HeaderValue {
        thread_local! {
            static LAST: std::cell::RefCell<Option<(AmzDate, HeaderValue)>> =
                const { std::cell::RefCell::new(None) };
        }
        LAST.with(|last| {
            let mut last = last.borrow_mut();
            match &*last {
                Some((date, value)) if date == self => value.clone(),
                _ => {
                    let value = HeaderValue::from_str(self.date_time()).expect("digits");
                    *last = Some((*self, value.clone()));
                    value
                }
            }
        })
    }
}

/// Rejects an empty access key id, region or service, or one with characters outside
/// `A-Z a-z 0-9 - _ .`, which would make a malformed credential scope
fn check_scope_part(field: &'static str, value: &str) -> Result<(), SignError> {
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(SignError::InvalidScope { field })
    }
}

/// Signs `req` for `scope` at time `now` with Lambda's [`SigningSettings`]
///
/// Adds `X-Amz-Date`, `X-Amz-Security-Token` when `creds` has a session token (signed),
/// and `Authorization`. Any `Authorization`, `X-Amz-Date` and `X-Amz-Security-Token` the
/// request already carries are replaced, so a retried request can simply be signed again
/// (with a fresh `now`: a signature is valid for 5 minutes).
///
/// Signed headers: `host` (the `Host` header, else the URI host with its port unless it is
/// the scheme's default) and every header of the request except `authorization`,
/// `user-agent`, `x-amzn-trace-id`, `transfer-encoding` and the hop-by-hop headers
/// (`connection`, `keep-alive`, `te`, `trailer`, `upgrade`, `expect`, `proxy-*`). Headers
/// added after this call are not signed; changing a signed one (including the host)
/// invalidates the signature. No `Host` header is added: the HTTP client must send the
/// host the URI names.
///
/// # Errors
///
/// See [`SignError`]. On error the request is unchanged.
pub fn sign(
    req: &mut http::Request<Bytes>,
    creds: &Credentials,
    scope: &SigningScope,
    now: SystemTime,
) -> Result<(), SignError> {
    sign_request(req, creds, scope, now, SigningSettings::new()).map(drop)
}

/// [`sign`] with explicit [`SigningSettings`], returning the intermediate results
///
/// # Errors
///
/// See [`SignError`]. On error the request is unchanged.
pub fn sign_with(
    req: &mut http::Request<Bytes>,
    creds: &Credentials,
    scope: &SigningScope,
    now: SystemTime,
    settings: &SigningSettings,
) -> Result<SigningSteps, SignError> {
    let signed = sign_request(req, creds, scope, now, *settings)?;
    Ok(SigningSteps {
        canonical_request: signed.canonical_request,
        string_to_sign: signed.string_to_sign,
        signature: std::str::from_utf8(&signed.signature)
            .expect("hex digits")
            .to_owned(),
    })
}

/// What [`sign_request`] computed, the signature as hex digits
struct Signed {
    canonical_request: String,
    string_to_sign: String,
    signature: [u8; 64],
}

/// Signs `req` as [`sign_with`] does, without allocating the signature as a `String`
fn sign_request(
    req: &mut http::Request<Bytes>,
    creds: &Credentials,
    scope: &SigningScope,
    now: SystemTime,
    settings: SigningSettings,
) -> Result<Signed, SignError> {
    // Everything that can fail happens before the request is touched
    let date = AmzDate::new(now)?;
    check_scope_part("access key id", creds.access_key_id())?;
    check_scope_part("region", &scope.region)?;
    check_scope_part("service", &scope.service)?;
    let token = match creds.session_token() {
        Some(t) => {
            let mut value = HeaderValue::from_str(t).map_err(|_| SignError::SessionToken)?;
            value.set_sensitive(true);
            Some((t, value))
        }
        None => None,
    };

    let payload_hash = key::hex32(&key::sha256(req.body()));
    let payload_hash = std::str::from_utf8(&payload_hash).expect("hex digits");
    let date_time = date.date_time();
    let mut added = [("", ""); 3];
    let mut n_added = 0;
    let mut add = |name: &'static str, value| {
        added[n_added] = (name, value);
        n_added += 1;
    };
    add(X_AMZ_DATE, date_time);
    if let Some((t, _)) = &token
        && settings.sign_session_token
    {
        add(X_AMZ_SECURITY_TOKEN, t);
    }
    if settings.payload_checksum_header {
        add(X_AMZ_CONTENT_SHA256, payload_hash);
    }
    let creq = canonical::canonical_request(
        req.method().as_str(),
        req.uri(),
        req.headers(),
        &added[..n_added],
        settings,
        payload_hash,
    )?;

    let yyyymmdd = date.date();
    let (string_to_sign, credential_scope) =
        canonical::string_to_sign(date_time, &scope.region, &scope.service, &creq.text);
    let signing_key = creds.key_cache().get(
        creds.secret_access_key(),
        yyyymmdd,
        &scope.region,
        &scope.service,
    );
    let signature = key::signature(&signing_key, &string_to_sign);
    let signature_str = std::str::from_utf8(&signature).expect("hex digits");
    let credential_scope = &string_to_sign[credential_scope];

    let signed_headers = creq.signed_headers();
    // exactly the length written: a `String` as long as its capacity becomes the header's
    // bytes without a second allocation (`Bytes::from` boxes a shorter one's shared state)
    let mut authorization = String::with_capacity(
        ALGORITHM.len()
            + " Credential=".len()
            + creds.access_key_id().len()
            + 1
            + credential_scope.len()
            + ", SignedHeaders=".len()
            + signed_headers.len()
            + ", Signature=".len()
            + signature_str.len(),
    );
    authorization.push_str(ALGORITHM);
    authorization.push_str(" Credential=");
    authorization.push_str(creds.access_key_id());
    authorization.push('/');
    authorization.push_str(credential_scope);
    authorization.push_str(", SignedHeaders=");
    authorization.push_str(signed_headers);
    authorization.push_str(", Signature=");
    authorization.push_str(signature_str);
    debug_assert_eq!(authorization.len(), authorization.capacity());
    // only checked scope parts, header names and hex digits: always a valid value
    let mut authorization =
        HeaderValue::try_from(authorization).expect("authorization is visible ascii");
    authorization.set_sensitive(true);
    let date_value = date.header_value();

    let headers = req.headers_mut();
    headers.insert(X_AMZ_DATE_NAME, date_value);
    // a stale token is looked up to go only when the request had one (a lookup hashes the
    // name)
    match token {
        Some((_, value)) => {
            headers.insert(X_AMZ_SECURITY_TOKEN_NAME, value);
        }
        None if creq.had_security_token => {
            headers.remove(X_AMZ_SECURITY_TOKEN);
        }
        None => {}
    }
    if settings.payload_checksum_header {
        let value = HeaderValue::from_str(payload_hash).expect("hex digits");
        headers.insert(HeaderName::from_static(X_AMZ_CONTENT_SHA256), value);
    }
    // `insert` replaces every value the request had (an earlier attempt's signature)
    headers.insert(AUTHORIZATION, authorization);

    Ok(Signed {
        canonical_request: creq.text,
        string_to_sign,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    /// 2024-01-15T12:00:00Z
    const T_2024: u64 = 1_705_320_000;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn date(secs: u64) -> String {
        AmzDate::new(at(secs)).unwrap().date_time().to_owned()
    }

    #[test]
    fn amz_dates() {
        assert_eq!(date(0), "19700101T000000Z");
        assert_eq!(date(T_2024), "20240115T120000Z");
        assert_eq!(date(1_440_938_160), "20150830T123600Z");
        assert_eq!(date(951_782_400), "20000229T000000Z");
        assert_eq!(date(4_107_542_399), "21000228T235959Z");
        assert_eq!(date(253_402_300_799), "99991231T235959Z");
        assert!(matches!(
            AmzDate::new(at(253_402_300_800)),
            Err(SignError::TimeOutOfRange)
        ));
        let before = UNIX_EPOCH - Duration::from_secs(1);
        assert!(matches!(
            AmzDate::new(before),
            Err(SignError::TimeOutOfRange)
        ));
        // sub-second parts are dropped
        assert_eq!(
            AmzDate::new(at(T_2024) + Duration::from_millis(999))
                .unwrap()
                .date_time(),
            "20240115T120000Z"
        );
    }

    /// A Lambda request signed at a fixed time, checked against `aws-sigv4`
    fn example_request(qualifier: bool) -> http::Request<Bytes> {
        let mut uri = String::from(
            "https://lambda.us-east-1.amazonaws.com/2021-11-15/functions/\
             arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Amy-function/\
             response-streaming-invocations",
        );
        if qualifier {
            uri.push_str("?Qualifier=%24LATEST");
        }
        http::Request::post(uri)
            .header("X-Amz-Log-Type", "Tail")
            .body(Bytes::from_static(br#"{"hello":"world"}"#))
            .unwrap()
    }

    #[test]
    fn protocol_example() {
        let mut req = example_request(true);
        let creds = Credentials::new("AKIDEXAMPLE", SECRET, None);
        let steps = sign_with(
            &mut req,
            &creds,
            &SigningScope::lambda("us-east-1"),
            at(T_2024),
            &SigningSettings::default(),
        )
        .unwrap();
        assert_eq!(
            steps.canonical_request,
            "POST\n\
             /2021-11-15/functions/arn%253Aaws%253Alambda%253Aus-east-1%253A123456789012%253Afunction%253Amy-function/response-streaming-invocations\n\
             Qualifier=%24LATEST\n\
             host:lambda.us-east-1.amazonaws.com\n\
             x-amz-date:20240115T120000Z\n\
             x-amz-log-type:Tail\n\
             \n\
             host;x-amz-date;x-amz-log-type\n\
             93a23971a914e5eacbf0a8d25154cda309c3c1c72fbb9914d47c60f3cb681588"
        );
        assert_eq!(
            steps.string_to_sign,
            "AWS4-HMAC-SHA256\n20240115T120000Z\n20240115/us-east-1/lambda/aws4_request\n\
             03cf12776a5b9f01c986c829e75b3c31760481ff6252420c9c7c015798c74d13"
        );
        let key = key::signing_key(SECRET, "20240115", "us-east-1", "lambda");
        assert_eq!(
            key::hex(&*key),
            "a6f54bc6c0e238bafd7f38af4142a8c0e883a3af6a1fbf5a3fca31714813530a"
        );
        assert_eq!(
            steps.signature,
            "4a079fafc764010137cb578d64e5d4450a28b09ac40dd6a61d4e50aa275cadb3"
        );
        assert_eq!(steps.signed_headers(), "host;x-amz-date;x-amz-log-type");
        assert_eq!(
            req.headers()[AUTHORIZATION],
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240115/us-east-1/lambda/aws4_request, \
             SignedHeaders=host;x-amz-date;x-amz-log-type, \
             Signature=4a079fafc764010137cb578d64e5d4450a28b09ac40dd6a61d4e50aa275cadb3"
        );
        assert_eq!(req.headers()["x-amz-date"], "20240115T120000Z");
        assert!(!req.headers().contains_key("x-amz-security-token"));
        assert!(!req.headers().contains_key("x-amz-content-sha256"));
    }

    #[test]
    fn protocol_example_with_session_token() {
        let mut req = example_request(false);
        let token = "FQoGZXIvYXdzEXAMPLETOKEN";
        let creds = Credentials::new("AKIDEXAMPLE", SECRET, Some(token.into()));
        let steps = sign_with(
            &mut req,
            &creds,
            &SigningScope::lambda("us-east-1"),
            at(T_2024),
            &SigningSettings::default(),
        )
        .unwrap();
        let lines: Vec<&str> = steps.canonical_request.split('\n').collect();
        assert_eq!(lines[2], "", "no query");
        assert!(lines.contains(&"x-amz-security-token:FQoGZXIvYXdzEXAMPLETOKEN"));
        assert_eq!(
            steps.signed_headers(),
            "host;x-amz-date;x-amz-log-type;x-amz-security-token"
        );
        assert_eq!(
            key::hex(&key::sha256(steps.canonical_request.as_bytes())),
            "dc75d49b38493346c80c82a1c25cbe9736071fc0b9d541606addd80f89b20c57"
        );
        assert_eq!(
            steps.signature,
            "69476eea3925ed44fe9c4a40fd159e6042fb1b425586ed7300908b6f6bc11cff"
        );
        assert_eq!(req.headers()["x-amz-security-token"], token);
        assert!(req.headers()["x-amz-security-token"].is_sensitive());
        assert!(req.headers()[AUTHORIZATION].is_sensitive());
        // Debug of the steps hides the token
        let shown = format!("{steps:?}");
        assert!(!shown.contains(token), "{shown}");
        assert!(shown.contains("x-amz-security-token:<redacted>"));
        // ... and shows every other line of the canonical request as it is
        let line = format!("x-amz-security-token:{token}");
        let redacted = steps
            .canonical_request
            .replace(&line, "x-amz-security-token:<redacted>");
        assert!(shown.contains(&format!("{redacted:?}")), "{shown}");
    }

    #[test]
    fn re_signing_replaces_the_previous_signature() {
        let scope = SigningScope::lambda("us-east-1");
        let with_token = Credentials::new("AKIDEXAMPLE", SECRET, Some("tok".into()));
        let without = Credentials::new("AKIDEXAMPLE", SECRET, None);

        let mut fresh = example_request(true);
        sign(&mut fresh, &without, &scope, at(T_2024 + 60)).unwrap();

        let mut retried = example_request(true);
        sign(&mut retried, &with_token, &scope, at(T_2024)).unwrap();
        retried
            .headers_mut()
            .append(AUTHORIZATION, HeaderValue::from_static("stale"));
        sign(&mut retried, &without, &scope, at(T_2024 + 60)).unwrap();

        assert_eq!(retried.headers(), fresh.headers());
        assert_eq!(retried.headers().get_all(AUTHORIZATION).iter().count(), 1);
        assert_eq!(retried.headers()["x-amz-date"], "20240115T120100Z");
    }

    #[test]
    fn unsigned_session_token_and_checksum_header() {
        let scope = SigningScope::lambda("us-east-1");
        let creds = Credentials::new("AKIDEXAMPLE", SECRET, Some("tok".into()));
        let settings = SigningSettings::default()
            .with_sign_session_token(false)
            .with_payload_checksum_header(true);
        let mut req = example_request(true);
        let steps = sign_with(&mut req, &creds, &scope, at(T_2024), &settings).unwrap();
        assert_eq!(
            steps.signed_headers(),
            "host;x-amz-content-sha256;x-amz-date;x-amz-log-type"
        );
        assert_eq!(req.headers()["x-amz-security-token"], "tok");
        assert_eq!(
            req.headers()["x-amz-content-sha256"],
            "93a23971a914e5eacbf0a8d25154cda309c3c1c72fbb9914d47c60f3cb681588"
        );
    }

    #[test]
    fn excluded_and_host_headers() {
        let creds = Credentials::new("AKIDEXAMPLE", SECRET, None);
        let scope = SigningScope::new("us-east-1", "service");
        let mut req = http::Request::post("http://localhost:9001/a")
            .header("User-Agent", "x")
            .header("X-Amzn-Trace-Id", "x")
            .header("Transfer-Encoding", "chunked")
            .header("Connection", "keep-alive")
            .header("Proxy-Authorization", "x")
            .header("Content-Type", "application/json")
            .header("Content-Length", "0")
            .body(Bytes::new())
            .unwrap();
        let steps = sign_with(
            &mut req,
            &creds,
            &scope,
            at(T_2024),
            &SigningSettings::new(),
        )
        .unwrap();
        assert_eq!(
            steps.signed_headers(),
            "content-length;content-type;host;x-amz-date"
        );
        assert!(steps.canonical_request.contains("\nhost:localhost:9001\n"));

        // an explicit Host header wins over the URI
        req.headers_mut()
            .insert(http::header::HOST, HeaderValue::from_static("example.com"));
        let steps = sign_with(
            &mut req,
            &creds,
            &scope,
            at(T_2024),
            &SigningSettings::new(),
        )
        .unwrap();
        assert!(steps.canonical_request.contains("\nhost:example.com\n"));
    }

    #[test]
    fn errors_leave_the_request_alone() {
        let creds = Credentials::new("AKIDEXAMPLE", SECRET, None);
        let scope = SigningScope::lambda("us-east-1");

        let mut req = example_request(true);
        req.headers_mut()
            .insert("x-odd", HeaderValue::from_bytes(b"\xff\xfe").unwrap());
        let before = req.headers().clone();
        assert_eq!(
            sign(&mut req, &creds, &scope, at(T_2024)),
            Err(SignError::HeaderValue {
                name: "x-odd".into()
            })
        );
        assert_eq!(req.headers(), &before);

        let mut req = example_request(true);
        assert_eq!(
            sign(
                &mut req,
                &creds,
                &scope,
                UNIX_EPOCH - Duration::from_secs(5)
            ),
            Err(SignError::TimeOutOfRange)
        );
        assert_eq!(
            sign(
                &mut req,
                &creds,
                &SigningScope::lambda("us east"),
                at(T_2024)
            ),
            Err(SignError::InvalidScope { field: "region" })
        );
        assert_eq!(
            sign(
                &mut req,
                &creds,
                &SigningScope::new("us-east-1", ""),
                at(T_2024)
            ),
            Err(SignError::InvalidScope { field: "service" })
        );
        let bad_token = Credentials::new("AKIDEXAMPLE", SECRET, Some("line\nbreak".into()));
        let err = sign(&mut req, &bad_token, &scope, at(T_2024)).unwrap_err();
        assert_eq!(err, SignError::SessionToken);
        assert!(!err.to_string().contains("line"));

        let mut no_host = http::Request::post("/just/a/path")
            .body(Bytes::new())
            .unwrap();
        assert_eq!(
            sign(&mut no_host, &creds, &scope, at(T_2024)),
            Err(SignError::MissingHost)
        );
        assert!(req.headers().get(AUTHORIZATION).is_none());
    }
}
