//! Who may invoke: SigV4 checks from `invoke-proto` mapped to the service's errors

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::request::Parts;
use invoke_proto::{VerifyError, check_signed_request};

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

/// The error the service answers a refused signature with (protocol.md §3.4)
fn fault(e: VerifyError) -> ServiceFault {
    match e {
        VerifyError::Missing => ServiceFault::new(
            403,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ),
        VerifyError::Malformed(msg) => ServiceFault::new(400, "IncompleteSignatureException", msg),
        VerifyError::Expired { date } => ServiceFault::new(
            403,
            "InvalidSignatureException",
            format!(
                "Signature expired: {date} is outside the 5 minute window around the server time"
            ),
        ),
        _ => ServiceFault::new(
            403,
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        ),
    }
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
        let signed = check_signed_request(parts, body, now, MAX_CLOCK_SKEW).map_err(fault)?;
        let Self::Keys(keys) = self else {
            return Ok(());
        };
        let secret = keys.get(signed.access_key()).ok_or_else(|| {
            ServiceFault::new(
                403,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        })?;
        signed.verify(secret).map_err(fault)
    }
}
