//! SigV4 verification, built on `invoke-proto`'s signer (one canonical-request
//! implementation for both sides)

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::request::Parts;
use invoke_proto::credentials::Credentials;
use invoke_proto::sigv4::{SigningScope, SigningSettings, sign_with};

use crate::errors::ServiceFault;

/// Largest difference between a request's `X-Amz-Date` and the emulator's clock
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// Who may invoke
#[derive(Debug, Clone, Default)]
pub enum Auth {
    /// Unsigned requests pass (`--no-auth`)
    Off,
    /// Any well-formed SigV4 `Authorization` passes; a missing one is rejected
    #[default]
    AnySigned,
    /// Only requests signed with one of these access keys (id -> secret) pass
    Keys(HashMap<String, String>),
}

fn incomplete(msg: &str) -> ServiceFault {
    ServiceFault::new(400, "IncompleteSignatureException", msg)
}

fn invalid_signature() -> ServiceFault {
    ServiceFault::new(
        403,
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
    )
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header
struct Authorization<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Option<Authorization<'_>> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => {}
        }
    }
    let mut c = credential?.split('/');
    let auth = Authorization {
        access_key: c.next()?,
        date: c.next()?,
        region: c.next()?,
        service: c.next()?,
        signed_headers: signed?.split(';').collect(),
        signature: signature?,
    };
    (c.next()? == "aws4_request" && c.next().is_none()).then_some(auth)
}

/// Parses `YYYYMMDD'T'HHMMSS'Z'`
pub(crate) fn parse_amz_date(text: &str) -> Option<SystemTime> {
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

impl Auth {
    /// Checks a request's signature
    pub(crate) fn check(
        &self,
        parts: &Parts,
        body: &Bytes,
        now: SystemTime,
    ) -> Result<(), ServiceFault> {
        if matches!(self, Self::Off) {
            return Ok(());
        }
        let Some(value) = parts.headers.get("authorization") else {
            return Err(ServiceFault::new(
                403,
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            ));
        };
        let value = value
            .to_str()
            .map_err(|_| incomplete("Authorization header is not ASCII"))?;
        let auth = parse_authorization(value).ok_or_else(|| {
            incomplete("Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters")
        })?;
        let date_header = parts
            .headers
            .get("x-amz-date")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header"))?;
        let signed_at = parse_amz_date(date_header)
            .ok_or_else(|| incomplete("X-Amz-Date is not a valid date"))?;
        if !date_header.starts_with(auth.date) {
            return Err(invalid_signature());
        }
        let skew = now
            .duration_since(signed_at)
            .unwrap_or_else(|e| e.duration());
        if skew > MAX_CLOCK_SKEW {
            return Err(ServiceFault::new(
                403,
                "InvalidSignatureException",
                format!(
                    "Signature expired: {date_header} is outside the 5 minute window around the server time"
                ),
            ));
        }
        let Self::Keys(keys) = self else {
            return Ok(());
        };
        let Some(secret) = keys.get(auth.access_key) else {
            return Err(ServiceFault::new(
                403,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ));
        };
        // Re-sign a copy holding only the headers the client signed, at the client's time
        let mut copy = http::Request::new(body.clone());
        *copy.method_mut() = parts.method.clone();
        *copy.uri_mut() = parts.uri.clone();
        let mut token = None;
        for name in &auth.signed_headers {
            let Some(v) = parts.headers.get(*name) else {
                return Err(invalid_signature());
            };
            match *name {
                "x-amz-date" => {}
                "x-amz-security-token" => token = v.to_str().ok().map(str::to_owned),
                _ => {
                    let n = http::HeaderName::from_bytes(name.as_bytes())
                        .map_err(|_| invalid_signature())?;
                    copy.headers_mut().insert(n, v.clone());
                }
            }
        }
        let creds = Credentials::new(auth.access_key, secret.as_str(), token);
        let scope = SigningScope::new(auth.region, auth.service);
        let steps = sign_with(
            &mut copy,
            &creds,
            &scope,
            signed_at,
            &SigningSettings::default(),
        )
        .map_err(|_| invalid_signature())?;
        if steps.signature != auth.signature
            || steps.signed_headers() != auth.signed_headers.join(";")
        {
            return Err(invalid_signature());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
