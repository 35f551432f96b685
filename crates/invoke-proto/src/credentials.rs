//! AWS credentials as the signer needs them
//!
//! This module only holds credentials; finding them (environment, profile files, IMDS,
//! SSO, ...) is the adapters' job.

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::sigv4::KeyCache;

/// An access key pair, with a session token when the credentials are temporary
///
/// The secret access key and the session token are wiped from memory when the value is
/// dropped, and never appear in `Debug` output or in any error: `{:?}` prints the access
/// key id only.
///
/// ```
/// use invoke_proto::Credentials;
///
/// let creds = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None);
/// assert_eq!(creds.access_key_id(), "AKIDEXAMPLE");
/// assert!(!format!("{creds:?}").contains("EXAMPLEKEY"));
/// ```
///
/// A value also remembers the last signing key derived from its secret (one per day,
/// region and service), so signing many requests does not repeat that derivation. Clones
/// share that memory: a credentials cache that hands out clones still derives the key once.
pub struct Credentials {
    access_key_id: String,
    secret_access_key: Zeroizing<String>,
    session_token: Option<Zeroizing<String>>,
    key_cache: Arc<KeyCache>,
}

impl Credentials {
    /// Credentials from an access key id, a secret access key and, for temporary
    /// credentials, a session token
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
    ) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: Zeroizing::new(secret_access_key.into()),
            session_token: session_token.map(Zeroizing::new),
            key_cache: Arc::default(),
        }
    }

    /// The access key id (`AKIA...` or `ASIA...`), which is not secret
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The secret access key
    ///
    /// Take care not to log or display it.
    pub fn secret_access_key(&self) -> &str {
        &self.secret_access_key
    }

    /// The session token of temporary credentials, sent as `X-Amz-Security-Token`
    ///
    /// Take care not to log or display it.
    pub fn session_token(&self) -> Option<&str> {
        self.session_token.as_deref().map(String::as_str)
    }
}

impl Credentials {
    /// The derived-key cache of this secret
    pub(crate) fn key_cache(&self) -> &KeyCache {
        &self.key_cache
    }
}

impl Clone for Credentials {
    /// A copy that shares the signing-key cache (the secret is the same)
    fn clone(&self) -> Self {
        Self {
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.clone(),
            session_token: self.session_token.clone(),
            key_cache: Arc::clone(&self.key_cache),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &format_args!("<redacted>"))
            .field(
                "session_token",
                &self
                    .session_token
                    .as_ref()
                    .map(|_| format_args!("<redacted>")),
            )
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::Credentials;

    #[test]
    fn debug_shows_only_the_access_key_id() {
        let creds = Credentials::new("AKIDEXAMPLE", "s3cr3t-value", Some("t0k3n-value".into()));
        let shown = format!("{creds:?} {creds:#?}");
        assert!(shown.contains("AKIDEXAMPLE"));
        assert!(!shown.contains("s3cr3t"));
        assert!(!shown.contains("t0k3n"));
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn clones_share_the_signing_key_cache() {
        let creds = Credentials::new("AKIDEXAMPLE", "s3cr3t-value", None);
        let copy = creds.clone();
        assert!(std::sync::Arc::ptr_eq(&creds.key_cache, &copy.key_cache));
        let other = Credentials::new("AKIDEXAMPLE", "s3cr3t-value", None);
        assert!(!std::sync::Arc::ptr_eq(&creds.key_cache, &other.key_cache));
    }
}
