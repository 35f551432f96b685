//! Settings of one invocation that differ from its client's

use std::time::Duration;

use invoke_proto::RetryConfig;

use crate::timeouts::MAX_TIMEOUT;

/// Settings of one invocation that differ from its client's (`Client::invoke_with` in both
/// clients), as the AWS SDKs' per-operation configuration overrides
///
/// What is not set here stays the client's. Typical uses: one attempt for a function that
/// must not run twice, or a shorter (or longer) deadline for one call, on a client shared
/// with other calls.
///
/// ```
/// use std::time::Duration;
/// use invoke_config::InvokeOptions;
/// use invoke_proto::RetryConfig;
///
/// let client_retry = RetryConfig::new().with_initial_backoff(Duration::from_millis(50));
/// let client_timeout = Duration::from_secs(900);
///
/// let once = InvokeOptions::new().max_attempts(1).timeout(Duration::from_secs(30));
/// let retry = once.retry_for(client_retry);
/// assert_eq!(retry.max_attempts(), 1);
/// assert_eq!(retry.initial_backoff(), Duration::from_millis(50)); // the client's
/// assert_eq!(once.timeout_for(client_timeout), Duration::from_secs(30));
///
/// let defaults = InvokeOptions::new();
/// assert_eq!(defaults.retry_for(client_retry), client_retry);
/// assert_eq!(defaults.timeout_for(client_timeout), client_timeout);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[must_use]
pub struct InvokeOptions {
    retry: Option<RetryConfig>,
    max_attempts: Option<u32>,
    timeout: Option<Duration>,
}

impl InvokeOptions {
    /// Nothing changed: the client's settings
    pub const fn new() -> Self {
        Self {
            retry: None,
            max_attempts: None,
            timeout: None,
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
    /// place of the client's overall timeout (at most [`MAX_TIMEOUT`], as there); the
    /// connect, head and idle timeouts stay the client's
    pub const fn timeout(mut self, overall: Duration) -> Self {
        self.timeout = Some(overall);
        self
    }

    /// The retry policy of an invocation by a client whose own is `client`
    pub fn retry_for(&self, client: RetryConfig) -> RetryConfig {
        let retry = self.retry.unwrap_or(client);
        match self.max_attempts {
            Some(n) => retry.with_max_attempts(n),
            None => retry,
        }
    }

    /// The overall timeout of an invocation by a client whose own is `client`
    pub fn timeout_for(&self, client: Duration) -> Duration {
        self.timeout.map_or(client, |t| t.min(MAX_TIMEOUT))
    }

    /// Whether the overall timeout is the client's
    pub const fn keeps_timeout(&self) -> bool {
        self.timeout.is_none()
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
    fn a_timeout_is_bounded_as_the_clients_are() {
        let o = InvokeOptions::new().timeout(Duration::MAX);
        assert_eq!(o.timeout_for(Duration::from_secs(1)), MAX_TIMEOUT);
        assert!(!o.keeps_timeout());
        assert!(InvokeOptions::new().keeps_timeout());
        let longer = InvokeOptions::new().timeout(Duration::from_secs(3600));
        assert_eq!(
            longer.timeout_for(Duration::from_secs(1)),
            Duration::from_secs(3600)
        );
    }
}
