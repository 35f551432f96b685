//! Server side of SigV4: check a received request's `Authorization`, by re-signing it with
//! the same canonical-request code the client side uses
//!
//! In two steps, so that a server can refuse a request before reading its body:
//! [`check_signed_head`] checks everything the head carries (presence and shape of the
//! `Authorization`, the date and its window), [`SignedHead::check_scope`] the credential scope,
//! and [`SignedHead::verify`] the signature itself, which covers the body.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::request::Parts;

use super::canonical::X_AMZ_DATE;
use super::{SignedHeaders, SigningScope, SigningSettings, sign_with};
use crate::credentials::Credentials;
use crate::service_error::{ServiceError, ServiceErrorKind};

/// Why a signed request is refused
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// No `Authorization` header
    Missing,
    /// The `Authorization` or `X-Amz-Date` header is not well-formed SigV4
    Malformed(&'static str),
    /// `X-Amz-Date` is further from the verifier's clock than allowed
    Expired {
        /// The request's `X-Amz-Date`
        date: String,
    },
    /// The signature does not match the request
    Mismatch,
    /// The verifier knows no secret for the access key id the request names
    UnknownAccessKey,
    /// The credential scope names another region than the verifier's
    WrongRegion {
        /// The region of the credential scope
        region: String,
    },
    /// The credential scope names another service than the verifier's
    WrongService {
        /// The service of the credential scope
        service: String,
        /// The verifier's service
        expected: String,
    },
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("missing authentication token"),
            Self::Malformed(why) => write!(f, "incomplete signature: {why}"),
            Self::Expired { date } => {
                write!(f, "signature expired: {date} is outside the allowed window")
            }
            Self::Mismatch => f.write_str("signature mismatch"),
            Self::UnknownAccessKey => f.write_str("unknown access key id"),
            Self::WrongRegion { region } => write!(f, "credential scoped to region {region:?}"),
            Self::WrongService { service, expected } => write!(
                f,
                "credential scoped to service {service:?}, expected {expected:?}"
            ),
        }
    }
}

impl std::error::Error for VerifyError {}

impl VerifyError {
    /// The error the service answers this refusal with
    ///
    /// `MissingAuthenticationTokenException` (403) for no `Authorization`,
    /// `IncompleteSignatureException` (400) for a malformed one,
    /// `UnrecognizedClientException` (403) for an unknown access key, else
    /// `InvalidSignatureException` (403), with the service's messages (for a credential
    /// scope naming another region or service: `Credential should be scoped to a valid
    /// region, not '<region>'. ` and `Credential should be scoped to correct service:
    /// '<service>'. `).
    pub fn to_service_error(&self) -> ServiceError {
        match self {
            Self::Missing => ServiceError::new(
                ServiceErrorKind::MissingAuthenticationToken,
                "Missing Authentication Token",
            ),
            Self::Malformed(msg) => ServiceError::new(ServiceErrorKind::IncompleteSignature, *msg),
            Self::Expired { date } => ServiceError::new(
                ServiceErrorKind::InvalidSignature,
                format!(
                    "Signature expired: {date} is outside the 5 minute window around the server time"
                ),
            ),
            Self::UnknownAccessKey => ServiceError::new(
                ServiceErrorKind::UnrecognizedClient,
                "The security token included in the request is invalid.",
            ),
            Self::WrongRegion { region } => ServiceError::new(
                ServiceErrorKind::InvalidSignature,
                format!("Credential should be scoped to a valid region, not '{region}'. "),
            ),
            Self::WrongService { expected, .. } => ServiceError::new(
                ServiceErrorKind::InvalidSignature,
                format!("Credential should be scoped to correct service: '{expected}'. "),
            ),
            Self::Mismatch => ServiceError::new(
                ServiceErrorKind::InvalidSignature,
                "The request signature we calculated does not match the signature you provided. \
                 Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
            ),
        }
    }
}

impl From<&VerifyError> for ServiceError {
    fn from(e: &VerifyError) -> Self {
        e.to_service_error()
    }
}

/// Whether `a` and `b` are equal, in time that depends only on their lengths
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The head of a request whose SigV4 `Authorization` is well formed and recent, from
/// [`check_signed_head`]
#[derive(Debug)]
pub struct SignedHead<'a> {
    parts: &'a Parts,
    access_key: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
    signed_at: SystemTime,
}

/// Checks that a request head carries a well-formed SigV4 `Authorization` whose `X-Amz-Date`
/// is within `max_skew` of `now`; needs no body
///
/// [`SignedHead::check_scope`] then checks the credential scope and [`SignedHead::verify`]
/// the signature, which covers the body.
///
/// # Errors
///
/// [`VerifyError::Missing`], [`VerifyError::Malformed`], [`VerifyError::Mismatch`] (the
/// date of the credential scope is not the date of `X-Amz-Date`) or
/// [`VerifyError::Expired`].
pub fn check_signed_head(
    parts: &Parts,
    now: SystemTime,
    max_skew: Duration,
) -> Result<SignedHead<'_>, VerifyError> {
    let value = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .ok_or(VerifyError::Missing)?
        .to_str()
        .map_err(|_| VerifyError::Malformed("Authorization header is not ASCII"))?;
    let malformed = VerifyError::Malformed(
        "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters",
    );
    let rest = value
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or(malformed.clone())?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=').ok_or(malformed.clone())?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => {}
        }
    }
    let (Some(credential), Some(signed), Some(signature)) = (credential, signed, signature) else {
        return Err(malformed);
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key, date, region, service, "aws4_request"] = scope[..] else {
        return Err(malformed);
    };
    let date_value = parts.headers.get(X_AMZ_DATE).ok_or(VerifyError::Malformed(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header",
    ))?;
    let invalid_date = VerifyError::Malformed("X-Amz-Date is not a valid date");
    let date_header = date_value.to_str().map_err(|_| invalid_date.clone())?;
    let signed_at = parse_amz_date(date_header).ok_or(invalid_date)?;
    // the scope's date is the day of `X-Amz-Date`, all of it
    if date_header.get(..8) != Some(date) {
        return Err(VerifyError::Mismatch);
    }
    let skew = now
        .duration_since(signed_at)
        .unwrap_or_else(|e| e.duration());
    if skew > max_skew {
        return Err(VerifyError::Expired {
            date: date_header.to_owned(),
        });
    }
    Ok(SignedHead {
        parts,
        access_key,
        region,
        service,
        signed_headers: signed.split(';').collect(),
        signature,
        signed_at,
    })
}

impl SignedHead<'_> {
    /// The access key id the request names
    pub fn access_key(&self) -> &str {
        self.access_key
    }

    /// The region of the credential scope
    pub fn region(&self) -> &str {
        self.region
    }

    /// The service of the credential scope
    pub fn service(&self) -> &str {
        self.service
    }

    /// Checks that the credential scope names `service` and, when given, `region`
    ///
    /// # Errors
    ///
    /// [`VerifyError::WrongService`], then [`VerifyError::WrongRegion`].
    pub fn check_scope(&self, region: Option<&str>, service: &str) -> Result<(), VerifyError> {
        if self.service != service {
            return Err(VerifyError::WrongService {
                service: self.service.to_owned(),
                expected: service.to_owned(),
            });
        }
        match region {
            Some(r) if r != self.region => Err(VerifyError::WrongRegion {
                region: self.region.to_owned(),
            }),
            _ => Ok(()),
        }
    }

    /// Checks the signature of the request with `body` and the secret of
    /// [`access_key`](Self::access_key)
    ///
    /// Re-signs a copy holding only the headers the client signed (every value of each), at
    /// the client's time; headers a client usually leaves out (`user-agent`, which the .NET
    /// and Java v1 SDKs sign) count when it listed them.
    ///
    /// # Errors
    ///
    /// [`VerifyError::Mismatch`].
    pub fn verify(&self, body: &Bytes, secret: &str) -> Result<(), VerifyError> {
        let mut copy = http::Request::new(body.clone());
        *copy.method_mut() = self.parts.method.clone();
        *copy.uri_mut() = self.parts.uri.clone();
        let mut token = None;
        for name in &self.signed_headers {
            let v = self.parts.headers.get(*name).ok_or(VerifyError::Mismatch)?;
            match *name {
                "x-amz-date" => {}
                "x-amz-security-token" => token = v.to_str().ok().map(str::to_owned),
                _ => {
                    let n = http::HeaderName::from_bytes(name.as_bytes())
                        .map_err(|_| VerifyError::Mismatch)?;
                    // a header sent twice was signed with both values
                    for v in self.parts.headers.get_all(*name) {
                        copy.headers_mut().append(n.clone(), v.clone());
                    }
                }
            }
        }
        let creds = Credentials::new(self.access_key, secret, token);
        let scope = SigningScope::new(self.region, self.service);
        let settings = SigningSettings {
            headers: SignedHeaders::Every,
            ..SigningSettings::default()
        };
        let steps = sign_with(&mut copy, &creds, &scope, self.signed_at, &settings)
            .map_err(|_| VerifyError::Mismatch)?;
        // The signed header list is no secret; the signature is compared in constant time
        let signature_ok = constant_time_eq(steps.signature.as_bytes(), self.signature.as_bytes());
        if !signature_ok || steps.signed_headers() != self.signed_headers.join(";") {
            return Err(VerifyError::Mismatch);
        }
        Ok(())
    }
}

/// Parses an `X-Amz-Date` value, `YYYYMMDD'T'HHMMSS'Z'`
pub fn parse_amz_date(text: &str) -> Option<SystemTime> {
    let bytes = text.as_bytes();
    if bytes.len() != 16 || bytes[8] != b'T' || bytes[15] != b'Z' {
        return None;
    }
    // digits only: `parse` would take a sign (`2024+1+1T…`)
    let num = |r: std::ops::Range<usize>| {
        text.get(r)
            .filter(|f| f.bytes().all(|b| b.is_ascii_digit()))?
            .parse::<i64>()
            .ok()
    };
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hour, minute, second) = (num(9..11)?, num(11..13)?, num(13..15)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if !(1..=12).contains(&month)
        || !(1..=month_days).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // days from civil (Howard Hinnant's algorithm)
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second;
    u64::try_from(secs)
        .ok()
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"\x80bc", b"abc"));
        // two differences that cancel out under XOR are still differences
        assert!(!constant_time_eq(b"ab", b"ba"));
    }

    #[test]
    fn refusals_map_to_the_services_errors() {
        for (e, status, code) in [
            (
                VerifyError::Missing,
                403,
                "MissingAuthenticationTokenException",
            ),
            (
                VerifyError::Malformed("x"),
                400,
                "IncompleteSignatureException",
            ),
            (
                VerifyError::Expired {
                    date: "20150830T123600Z".into(),
                },
                403,
                "InvalidSignatureException",
            ),
            (VerifyError::Mismatch, 403, "InvalidSignatureException"),
            (
                VerifyError::UnknownAccessKey,
                403,
                "UnrecognizedClientException",
            ),
        ] {
            let s = ServiceError::from(&e);
            assert_eq!((s.status, s.code.as_str()), (Some(status), code), "{e}");
        }
        for (e, text) in [
            (VerifyError::Missing, "missing authentication token"),
            (VerifyError::Malformed("no x"), "incomplete signature: no x"),
            (
                VerifyError::Expired {
                    date: "20150830T123600Z".into(),
                },
                "signature expired: 20150830T123600Z is outside the allowed window",
            ),
            (VerifyError::Mismatch, "signature mismatch"),
            (VerifyError::UnknownAccessKey, "unknown access key id"),
            (
                VerifyError::WrongRegion {
                    region: "eu-west-1".into(),
                },
                "credential scoped to region \"eu-west-1\"",
            ),
            (
                VerifyError::WrongService {
                    service: "s3".into(),
                    expected: "lambda".into(),
                },
                "credential scoped to service \"s3\", expected \"lambda\"",
            ),
        ] {
            assert_eq!(e.to_string(), text);
        }
    }
    use crate::sigv4::sign;

    #[test]
    fn amz_dates() {
        assert_eq!(
            parse_amz_date("20240115T120000Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1_705_320_000))
        );
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(UNIX_EPOCH));
        assert!(parse_amz_date("20240229T000000Z").is_some());
        assert!(parse_amz_date("20000229T000000Z").is_some());
        assert!(parse_amz_date("20240430T000000Z").is_some());
        // a leap second reads as the next day's first second
        assert_eq!(
            parse_amz_date("20240115T235960Z"),
            parse_amz_date("20240116T000000Z")
        );
        for bad in [
            "",
            "20240230T000000Z",
            "20230229T000000Z",
            "21000229T000000Z",
            "20240431T000000Z",
            "20240100T000000Z",
            "2024-01-15T12:00:00Z",
            "20241315T120000Z",
            "20240115T250000Z",
            "2024+1+1T120000Z",
            "20240115T+1+1+1Z",
            "20240115X120000Z",
            "20240115T120000X",
            "20240115T235961Z",
        ] {
            assert!(parse_amz_date(bad).is_none(), "{bad}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        /// Every time the signer can write reads back as itself
        #[test]
        fn every_signed_time_reads_back(secs in 0u64..=253_402_300_799) {
            let t = UNIX_EPOCH + Duration::from_secs(secs);
            let text = super::super::AmzDate::new(t).unwrap();
            proptest::prop_assert_eq!(parse_amz_date(text.date_time()), Some(t));
        }

        /// A date read is one the signer writes the same way: no day past its month's end,
        /// no hour 24, no minute 60 slips through as another date
        #[test]
        fn every_date_read_is_written_back_the_same(
            // each field up to one past its range, the ends of months often
            (y, mo, d, h, mi, s) in (1960u32..2500, 0u32..=13, 0u32..=32, 0u32..=24, 0u32..=60, 0u32..60)
        ) {
            let text = format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z");
            if let Some(t) = parse_amz_date(&text) {
                let again = super::super::AmzDate::new(t).unwrap();
                proptest::prop_assert_eq!(again.date_time(), text.as_str());
            }
        }
    }

    #[test]
    fn round_trip_with_the_signer() {
        let at = UNIX_EPOCH + Duration::from_secs(1_705_320_000);
        let mut req = http::Request::post(
            "http://127.0.0.1:9001/2021-11-15/functions/f/response-streaming-invocations",
        )
        .header("host", "127.0.0.1:9001")
        .body(Bytes::from_static(b"{}"))
        .unwrap();
        sign(
            &mut req,
            &Credentials::new("AKID", "secret", Some("tok".into())),
            &SigningScope::lambda("us-east-1"),
            at,
        )
        .unwrap();
        let (parts, body) = req.into_parts();
        let skew = Duration::from_secs(300);
        let signed = check_signed_head(&parts, at + Duration::from_secs(60), skew).unwrap();
        assert_eq!(
            (signed.access_key(), signed.region(), signed.service()),
            ("AKID", "us-east-1", "lambda")
        );
        signed.verify(&body, "secret").unwrap();
        assert_eq!(signed.verify(&body, "other"), Err(VerifyError::Mismatch));
        assert!(matches!(
            check_signed_head(&parts, at + Duration::from_secs(301), skew),
            Err(VerifyError::Expired { .. })
        ));
        // exactly at the edge of the window, either side, is still inside it
        check_signed_head(&parts, at + skew, skew).unwrap();
        check_signed_head(&parts, at - skew, skew).unwrap();
        assert!(check_signed_head(&parts, at - skew - Duration::from_secs(1), skew).is_err());
        let tampered = Bytes::from_static(b"{ }");
        assert_eq!(
            check_signed_head(&parts, at, skew)
                .unwrap()
                .verify(&tampered, "secret"),
            Err(VerifyError::Mismatch)
        );
        let bare = http::Request::new(()).into_parts().0;
        assert_eq!(
            check_signed_head(&bare, at, skew).unwrap_err(),
            VerifyError::Missing
        );
    }

    /// What some SDKs sign that ours leaves out: `user-agent` (.NET, Java v1), and a header
    /// sent twice (both values, joined)
    #[test]
    fn headers_the_client_listed_are_verified_as_listed() {
        let at = UNIX_EPOCH + Duration::from_secs(1_705_320_000);
        let skew = Duration::from_secs(300);
        let mut req = http::Request::post(
            "http://127.0.0.1:9001/2021-11-15/functions/f/response-streaming-invocations",
        )
        .header("host", "127.0.0.1:9001")
        .header("user-agent", "aws-sdk-dotnet-coreclr/3.7")
        .header("x-amz-log-type", "Tail")
        .header("x-amz-log-type", "Tail")
        .body(Bytes::from_static(b"{}"))
        .unwrap();
        // a client that signs every header it sends
        let settings = SigningSettings {
            headers: SignedHeaders::Every,
            ..SigningSettings::default()
        };
        let creds = Credentials::new("AKID", "secret", None);
        let scope = SigningScope::lambda("us-east-1");
        let steps = sign_with(&mut req, &creds, &scope, at, &settings).unwrap();
        assert!(steps.signed_headers().contains("user-agent"), "{steps:?}");
        assert!(
            steps
                .canonical_request
                .contains("x-amz-log-type:Tail,Tail\n"),
            "{steps:?}"
        );
        let (parts, body) = req.into_parts();
        let head = check_signed_head(&parts, at, skew).unwrap();
        head.verify(&body, "secret").unwrap();
        assert_eq!(head.verify(&body, "other"), Err(VerifyError::Mismatch));
    }

    /// A request to `f` signed at `at` for `scope`: its head and body
    fn signed_for(scope: &SigningScope, at: SystemTime) -> (Parts, Bytes) {
        let mut req = http::Request::post(
            "http://127.0.0.1:9001/2021-11-15/functions/f/response-streaming-invocations",
        )
        .header("host", "127.0.0.1:9001")
        .body(Bytes::from_static(b"{}"))
        .unwrap();
        sign(
            &mut req,
            &Credentials::new("AKID", "secret", None),
            scope,
            at,
        )
        .unwrap();
        req.into_parts()
    }

    /// The scope's date is the whole day of `X-Amz-Date`, not a prefix of it
    #[test]
    fn a_scope_date_that_is_only_a_prefix_is_refused() {
        let at = UNIX_EPOCH + Duration::from_secs(1_705_320_000);
        let skew = Duration::from_secs(300);
        let (parts, _) = signed_for(&SigningScope::lambda("us-east-1"), at);
        check_signed_head(&parts, at, skew).unwrap();
        let auth = parts.headers["authorization"].to_str().unwrap().to_owned();
        assert!(auth.contains("/20240115/"), "{auth}");
        for day in ["//", "/2024/", "/2024011/"] {
            let mut tampered = parts.clone();
            tampered.headers.insert(
                "authorization",
                auth.replace("/20240115/", day).parse().unwrap(),
            );
            assert_eq!(
                check_signed_head(&tampered, at, skew).unwrap_err(),
                VerifyError::Mismatch,
                "{day}"
            );
        }
    }

    #[test]
    fn credential_scope() {
        let at = UNIX_EPOCH + Duration::from_secs(1_705_320_000);
        let skew = Duration::from_secs(300);
        let (parts, body) = signed_for(&SigningScope::new("eu-west-1", "lambda"), at);
        let head = check_signed_head(&parts, at, skew).unwrap();
        head.check_scope(None, "lambda").unwrap();
        head.check_scope(Some("eu-west-1"), "lambda").unwrap();
        let e = head.check_scope(Some("us-east-1"), "lambda").unwrap_err();
        assert_eq!(
            e,
            VerifyError::WrongRegion {
                region: "eu-west-1".into()
            }
        );
        let s = e.to_service_error();
        assert_eq!(
            (s.status, s.code.as_str(), s.message.as_deref()),
            (
                Some(403),
                "InvalidSignatureException",
                Some("Credential should be scoped to a valid region, not 'eu-west-1'. ")
            )
        );
        // the signature itself is valid: only the scope is refused
        head.verify(&body, "secret").unwrap();
        let (parts, _) = signed_for(&SigningScope::new("us-east-1", "s3"), at);
        let head = check_signed_head(&parts, at, skew).unwrap();
        for region in [None, Some("us-east-1")] {
            let e = head.check_scope(region, "lambda").unwrap_err();
            let s = e.to_service_error();
            assert_eq!(
                (s.status, s.code.as_str(), s.message.as_deref()),
                (
                    Some(403),
                    "InvalidSignatureException",
                    Some("Credential should be scoped to correct service: 'lambda'. ")
                ),
                "{e}"
            );
        }
    }

    #[test]
    fn a_date_that_is_not_ascii_is_malformed_not_missing() {
        let at = UNIX_EPOCH + Duration::from_secs(1_705_320_000);
        let (mut parts, _) = signed_for(&SigningScope::lambda("us-east-1"), at);
        parts.headers.insert(
            "x-amz-date",
            http::HeaderValue::from_bytes(b"20240115T120000Z\xff").unwrap(),
        );
        assert_eq!(
            check_signed_head(&parts, at, Duration::from_secs(300)).unwrap_err(),
            VerifyError::Malformed("X-Amz-Date is not a valid date")
        );
    }
}
