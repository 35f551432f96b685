//! Who may invoke: SigV4 checks and the service's refusals, both from `invoke-proto`

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::request::Parts;
use invoke_proto::{VerifyError, check_signed_request};

use crate::reject::Rejection;

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

impl Auth {
    /// Checks a request's signature
    pub(crate) fn check(
        &self,
        parts: &Parts,
        body: &Bytes,
        now: SystemTime,
    ) -> Result<(), Rejection> {
        if matches!(self, Self::Off) {
            return Ok(());
        }
        let signed = check_signed_request(parts, body, now, MAX_CLOCK_SKEW)
            .map_err(|e| e.to_service_error())?;
        let Self::Keys(keys) = self else {
            return Ok(());
        };
        let secret = keys
            .get(signed.access_key())
            .ok_or_else(|| VerifyError::UnknownAccessKey.to_service_error())?;
        signed
            .verify(secret)
            .map_err(|e| Box::new(e.to_service_error()))
    }
}
