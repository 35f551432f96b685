//! Server side of SigV4: check a received request's `Authorization`, by re-signing it with
//! the same canonical-request code the client side uses

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::request::Parts;

use super::canonical::X_AMZ_DATE;
use super::{SigningScope, SigningSettings, sign_with};
use crate::credentials::Credentials;
use crate::names::header_str;
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
    /// `InvalidSignatureException` (403).
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

/// A request whose SigV4 `Authorization` is well formed and recent
#[derive(Debug)]
pub struct SignedRequest<'a> {
    parts: &'a Parts,
    body: &'a Bytes,
    access_key: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
    signed_at: SystemTime,
}

/// Checks that a request carries a well-formed SigV4 `Authorization` whose `X-Amz-Date` is
/// within `max_skew` of `now`; [`SignedRequest::verify`] then checks the signature itself
///
/// # Errors
///
/// [`VerifyError::Missing`], [`VerifyError::Malformed`] or [`VerifyError::Expired`].
pub fn check_signed_request<'a>(
    parts: &'a Parts,
    body: &'a Bytes,
    now: SystemTime,
    max_skew: Duration,
) -> Result<SignedRequest<'a>, VerifyError> {
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
    let date_header = header_str(&parts.headers, X_AMZ_DATE).ok_or(VerifyError::Malformed(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header",
    ))?;
    let signed_at = parse_amz_date(date_header)
        .ok_or(VerifyError::Malformed("X-Amz-Date is not a valid date"))?;
    if !date_header.starts_with(date) {
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
    Ok(SignedRequest {
        parts,
        body,
        access_key,
        region,
        service,
        signed_headers: signed.split(';').collect(),
        signature,
        signed_at,
    })
}

impl SignedRequest<'_> {
    /// The access key id the request names
    pub fn access_key(&self) -> &str {
        self.access_key
    }

    /// Checks the signature with the secret of [`access_key`](Self::access_key)
    ///
    /// Re-signs a copy holding only the headers the client signed, at the client's time. A
    /// client that signed a header this signer never signs (`user-agent`, for example) gets
    /// [`VerifyError::Mismatch`].
    ///
    /// # Errors
    ///
    /// [`VerifyError::Mismatch`].
    pub fn verify(&self, secret: &str) -> Result<(), VerifyError> {
        let mut copy = http::Request::new(self.body.clone());
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
                    copy.headers_mut().insert(n, v.clone());
                }
            }
        }
        let creds = Credentials::new(self.access_key, secret, token);
        let scope = SigningScope::new(self.region, self.service);
        let steps = sign_with(
            &mut copy,
            &creds,
            &scope,
            self.signed_at,
            &SigningSettings::default(),
        )
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
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hour, minute, second) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
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
    }
    use crate::sigv4::sign;

    #[test]
    fn amz_dates() {
        assert_eq!(
            parse_amz_date("20240115T120000Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1_705_320_000))
        );
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(UNIX_EPOCH));
        assert!(parse_amz_date("20240230T000000Z").is_some());
        for bad in [
            "",
            "2024-01-15T12:00:00Z",
            "20241315T120000Z",
            "20240115T250000Z",
        ] {
            assert!(parse_amz_date(bad).is_none(), "{bad}");
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
        let signed =
            check_signed_request(&parts, &body, at + Duration::from_secs(60), skew).unwrap();
        assert_eq!(signed.access_key(), "AKID");
        signed.verify("secret").unwrap();
        assert_eq!(signed.verify("other"), Err(VerifyError::Mismatch));
        assert!(matches!(
            check_signed_request(&parts, &body, at + Duration::from_secs(301), skew),
            Err(VerifyError::Expired { .. })
        ));
        let tampered = Bytes::from_static(b"{ }");
        assert_eq!(
            check_signed_request(&parts, &tampered, at, skew)
                .unwrap()
                .verify("secret"),
            Err(VerifyError::Mismatch)
        );
        let bare = http::Request::new(()).into_parts().0;
        assert_eq!(
            check_signed_request(&bare, &body, at, skew).unwrap_err(),
            VerifyError::Missing
        );
    }
}
