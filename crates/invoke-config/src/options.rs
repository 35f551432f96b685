//! Settings of one invocation that differ from its client's

use std::sync::Arc;
use std::time::Duration;

use invoke_proto::{Credentials, RetryConfig};

use crate::credentials::ProvidedCredentials;
use crate::timeouts::Timeouts;

/// Settings of one invocation that differ from its client's (`Client::invoke_with` in both
/// clients), as the AWS SDKs' per-operation configuration overrides
///
/// What is not set here stays the client's. Typical uses, on a client shared with other
/// calls: one attempt for a function that must not run twice; a shorter (or longer)
/// deadline for one call; a longer idle timeout for a function that is silent for long; a
/// shorter connect timeout where failing fast beats waiting; another account's or role's
/// credentials (one connection pool for many tenants).
///
/// ```
/// use std::time::Duration;
/// use invoke_config::{InvokeOptions, Timeouts};
/// use invoke_proto::RetryConfig;
///
/// let client_retry = RetryConfig::new().with_initial_backoff(Duration::from_millis(50));
/// let client_timeouts = Timeouts::default();
///
/// let once = InvokeOptions::new().max_attempts(1).timeout(Duration::from_secs(30));
/// let retry = once.retry_for(client_retry);
/// assert_eq!(retry.max_attempts(), 1);
/// assert_eq!(retry.initial_backoff(), Duration::from_millis(50)); // the client's
/// assert_eq!(once.timeouts_for(client_timeouts).overall, Duration::from_secs(30));
/// assert_eq!(once.timeouts_for(client_timeouts).idle, client_timeouts.idle);
///
/// let defaults = InvokeOptions::new();
/// assert_eq!(defaults.retry_for(client_retry), client_retry);
/// assert_eq!(defaults.timeouts_for(client_timeouts), client_timeouts);
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct InvokeOptions {
    retry: Option<RetryConfig>,
    max_attempts: Option<u32>,
    timeout: Option<Duration>,
    head_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    /// Shared, not copied, by the attempts (as a client's own static credentials are)
    credentials: Option<Arc<ProvidedCredentials>>,
    trace_id: Option<String>,
}

impl InvokeOptions {
    /// Nothing changed: the client's settings
    pub const fn new() -> Self {
        Self {
            retry: None,
            max_attempts: None,
            timeout: None,
            head_timeout: None,
            idle_timeout: None,
            connect_timeout: None,
            credentials: None,
            trace_id: None,
        }
    }

    /// This retry policy instead of the client's (the client's retry quota and rate limiter
    /// still apply)
    pub const fn retry(mut self, retry: RetryConfig) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Attempts in all, the first included, with the rest of the retry policy unchanged
    /// (0 counts as 1); `max_attempts(1)` never retries
    pub const fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }

    /// The whole invocation, retries and their waits included, until the last event, in
    /// place of the client's overall timeout ([`Timeouts::overall`])
    pub const fn timeout(mut self, overall: Duration) -> Self {
        self.timeout = Some(overall);
        self
    }

    /// The wait for each attempt's response head, in place of the client's
    /// ([`Timeouts::head`])
    pub const fn head_timeout(mut self, head: Duration) -> Self {
        self.head_timeout = Some(head);
        self
    }

    /// The longest silence between two reads, in place of the client's
    /// ([`Timeouts::idle`]): longer for a function known to pause for long, shorter to give
    /// up on a stalled stream sooner
    pub const fn idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = Some(idle);
        self
    }

    /// Making each connection this call needs (TCP, proxy, TLS; none when a pooled one
    /// serves it), in place of the client's ([`Timeouts::connect`]): as the SDKs'
    /// per-operation timeout configuration, which applies to the connections that operation
    /// makes
    pub const fn connect_timeout(mut self, connect: Duration) -> Self {
        self.connect_timeout = Some(connect);
        self
    }

    /// Signs this call's attempts with `credentials` instead of the client's (whose source
    /// is then not asked), even on a client that does not sign; `Debug` shows the access
    /// key id only, as for the client's
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(Arc::new(ProvidedCredentials::given(credentials)));
        self
    }

    /// Sends `trace_id` as this call's `X-Amzn-Trace-Id` (its X-Ray trace header, not
    /// signed; bytes a header cannot hold percent-encoded, see
    /// [`trace_id_value`](invoke_proto::trace_id_value)), in place of the trace of the Lambda
    /// function the client runs in
    pub fn trace_id(mut self, trace_id: impl Into<String>) -> Self {
        self.trace_id = Some(trace_id.into());
        self
    }

    /// The trace this call sends, if [`trace_id`](Self::trace_id) set one
    pub fn call_trace_id(&self) -> Option<&str> {
        self.trace_id.as_deref()
    }

    /// The credentials this call signs with instead of its client's, if any
    pub fn call_credentials(&self) -> Option<&Arc<ProvidedCredentials>> {
        self.credentials.as_ref()
    }

    /// The retry policy of an invocation by a client whose own is `client`
    pub fn retry_for(&self, client: RetryConfig) -> RetryConfig {
        let retry = self.retry.unwrap_or(client);
        match self.max_attempts {
            Some(n) => retry.with_max_attempts(n),
            None => retry,
        }
    }

    /// The timeouts of an invocation by a client whose own are `client`, each at most
    /// [`MAX_TIMEOUT`](crate::MAX_TIMEOUT) as there
    pub fn timeouts_for(&self, client: Timeouts) -> Timeouts {
        Timeouts {
            overall: self.timeout.unwrap_or(client.overall),
            head: self.head_timeout.unwrap_or(client.head),
            idle: self.idle_timeout.unwrap_or(client.idle),
            connect: self.connect_timeout.unwrap_or(client.connect),
        }
        .capped()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_policy_and_attempts_combine() {
        let client = RetryConfig::new();
        let other = RetryConfig::new().with_max_backoff(Duration::from_secs(2));
        let o = InvokeOptions::new().retry(other);
        assert_eq!(o.retry_for(client), other);
        // the attempts apply on top of either policy, in either order of the calls
        let o = InvokeOptions::new().max_attempts(5).retry(other);
        assert_eq!(o.retry_for(client), other.with_max_attempts(5));
        let o = InvokeOptions::new().max_attempts(0);
        assert_eq!(o.retry_for(client).max_attempts(), 1);
    }

    #[test]
    fn timeouts_are_bounded_as_the_clients_are() {
        let client = Timeouts::default().with_connect(Duration::from_secs(3));
        let o = InvokeOptions::new()
            .timeout(Duration::MAX)
            .head_timeout(Duration::from_secs(7))
            .idle_timeout(Duration::from_secs(3600));
        let t = o.timeouts_for(client);
        assert_eq!(t.overall, crate::MAX_TIMEOUT);
        assert_eq!(t.head, Duration::from_secs(7));
        assert_eq!(t.idle, Duration::from_secs(3600));
        assert_eq!(t.connect, Duration::from_secs(3), "the client's");
        let t = InvokeOptions::new()
            .connect_timeout(Duration::MAX)
            .timeouts_for(client);
        assert_eq!(t.connect, crate::MAX_TIMEOUT);
        let t = InvokeOptions::new()
            .connect_timeout(Duration::from_millis(250))
            .timeouts_for(client);
        assert_eq!(t, client.with_connect(Duration::from_millis(250)));
        // each alone
        let t = InvokeOptions::new()
            .idle_timeout(Duration::from_secs(1))
            .timeouts_for(client);
        assert_eq!(t, client.with_idle(Duration::from_secs(1)));
        let t = InvokeOptions::new()
            .head_timeout(Duration::from_secs(1))
            .timeouts_for(client);
        assert_eq!(t, client.with_head(Duration::from_secs(1)));
        assert_eq!(InvokeOptions::new().timeouts_for(client), client);
    }

    #[test]
    fn credentials_are_kept_and_never_shown() {
        let o = InvokeOptions::new();
        assert!(o.call_credentials().is_none());
        let o = o.credentials(Credentials::new(
            "AKIDCALL",
            "call-secret-key",
            Some("call-token".into()),
        ));
        let kept = o.call_credentials().expect("credentials");
        assert_eq!(kept.credentials.access_key_id(), "AKIDCALL");
        let shown = format!("{o:?}");
        assert!(shown.contains("AKIDCALL"), "{shown}");
        assert!(
            !shown.contains("call-secret-key") && !shown.contains("call-token"),
            "{shown}"
        );
    }
}
