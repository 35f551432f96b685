//! Who may invoke: SigV4 checks and the service's refusals, both from `invoke-proto`
//!
//! In two steps, so that a refused request is answered before its body is read: what the
//! head carries ([`Auth::check_head`]: the `Authorization`, the date, the credential scope,
//! the access key), then the signature over the body ([`PendingSignature::verify`]).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::request::Parts;
use invoke_proto::{SignedHead, VerifyError, check_signed_head};

use crate::reject::Rejection;

/// Largest difference between a request's `X-Amz-Date` and the emulator's clock
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// The service name requests must be signed for
const SIGNING_SERVICE: &str = "lambda";

/// Who may invoke (`Debug` shows the access key ids, never their secrets)
#[derive(Clone, Default)]
pub enum Auth {
    /// Unsigned requests pass (`--no-auth`)
    Off,
    /// Any well-formed SigV4 `Authorization` for the service `lambda`, in any region, passes;
    /// a missing one is rejected
    #[default]
    AnySigned,
    /// Only requests signed with one of these access keys (id -> secret), for the service
    /// `lambda` in the emulator's region, pass
    Keys(HashMap<String, String>),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Off => f.write_str("Off"),
            Self::AnySigned => f.write_str("AnySigned"),
            Self::Keys(keys) => {
                let mut ids: Vec<&str> = keys.keys().map(String::as_str).collect();
                ids.sort_unstable();
                f.debug_tuple("Keys").field(&ids).finish()
            }
        }
    }
}

/// A signature whose head passed: what is left to check needs the body
pub(crate) struct PendingSignature<'a> {
    head: SignedHead<'a>,
    secret: &'a str,
}

impl Auth {
    /// Checks what the request head carries: the `Authorization` (present, well formed),
    /// the date (within [`MAX_CLOCK_SKEW`]), the credential scope (the service `lambda`; with
    /// keys, `region` too) and, with keys, the access key; with keys, the signature is left
    /// to check with the body
    pub(crate) fn check_head<'a>(
        &'a self,
        parts: &'a Parts,
        region: &str,
        now: SystemTime,
    ) -> Result<Option<PendingSignature<'a>>, Rejection> {
        let refuse = |e: VerifyError| Box::new(e.to_service_error());
        match self {
            Self::Off => Ok(None),
            Self::AnySigned => {
                let head = check_signed_head(parts, now, MAX_CLOCK_SKEW).map_err(refuse)?;
                head.check_scope(None, SIGNING_SERVICE).map_err(refuse)?;
                Ok(None)
            }
            Self::Keys(keys) => {
                let head = check_signed_head(parts, now, MAX_CLOCK_SKEW).map_err(refuse)?;
                head.check_scope(Some(region), SIGNING_SERVICE)
                    .map_err(refuse)?;
                let secret = keys
                    .get(head.access_key())
                    .ok_or_else(|| refuse(VerifyError::UnknownAccessKey))?;
                Ok(Some(PendingSignature { head, secret }))
            }
        }
    }
}

impl PendingSignature<'_> {
    /// Checks the signature over the request and its `body`
    pub(crate) fn verify(&self, body: &Bytes) -> Result<(), Rejection> {
        self.head
            .verify(body, self.secret)
            .map_err(|e| Box::new(e.to_service_error()))
    }
}

#[cfg(test)]
mod tests {
    use super::Auth;

    #[test]
    fn debug_shows_key_ids_not_secrets() {
        let keys = [("AKIDB", "secret-b"), ("AKIDA", "secret-a")];
        let auth = Auth::Keys(
            keys.iter()
                .map(|(k, s)| ((*k).to_owned(), (*s).to_owned()))
                .collect(),
        );
        let shown = format!("{auth:?}");
        assert_eq!(shown, r#"Keys(["AKIDA", "AKIDB"])"#);
        assert_eq!(format!("{:?}", Auth::default()), "AnySigned");
    }
}
