//! The retry policy of the AWS SDKs' `standard` mode, adapted to a non-idempotent streaming
//! invoke: which failures retry, exponential backoff with full jitter, `Retry-After`, a
//! maximum number of attempts, and the retry quota (a token bucket shared by every invocation
//! of a client, so that a failing service is not hammered)

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::service_error::{RetryPolicy, ServiceError};

/// Tokens a retry after an ordinary transient failure takes from the [`RetryQuota`]
pub const RETRY_COST: u32 = 5;
/// Tokens a retry after a timeout takes from the [`RetryQuota`]
pub const TIMEOUT_RETRY_COST: u32 = 10;
/// Tokens a success on the first attempt gives back to the [`RetryQuota`]
pub const NO_RETRY_INCREMENT: u32 = 1;
/// Capacity of the standard [`RetryQuota`]
pub const DEFAULT_RETRY_QUOTA: u32 = 500;

/// How many attempts and how long to wait between them
///
/// The defaults are the SDKs' [standard mode]: 3 attempts in all, backoff starting at 1 s and
/// capped at 20 s; errors the service classifies as worth only a limited retry
/// ([`RetryPolicy::Limited`]) get at most 1 retry.
///
/// Everything in the policy is pure: the random value for the jitter and the time are
/// passed in.
///
/// ```
/// use std::time::Duration;
/// use invoke_proto::{RetryConfig, RetryQuota, TransportFailure, backoff};
///
/// let config = RetryConfig::default();
/// assert_eq!(config.max_attempts(), 3);
/// // Full jitter: the delay before retry n is uniform in [0, min(20 s, 1 s × 2^(n-1)))
/// assert_eq!(backoff(&config, 3, 0.5), Duration::from_secs(2));
///
/// let quota = RetryQuota::default(); // 500 tokens
/// let cost = TransportFailure::ConnectTimeout.retry_cost().unwrap();
/// assert!(quota.try_acquire(cost));
/// assert_eq!(quota.available(), 490);
/// ```
///
/// [standard mode]: https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RetryConfig {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    limited_retries: u32,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl RetryConfig {
    /// The standard-mode defaults
    pub const fn new() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(20),
            limited_retries: 1,
        }
    }

    /// No retries: one attempt
    pub const fn disabled() -> Self {
        Self::new().with_max_attempts(1)
    }

    /// Attempts in all, the first included (`AWS_MAX_ATTEMPTS`, `max_attempts`); 0 counts
    /// as 1
    #[must_use]
    pub const fn with_max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = if n == 0 { 1 } else { n };
        self
    }

    /// The backoff ceiling of the first retry; it doubles with every further retry
    #[must_use]
    pub const fn with_initial_backoff(mut self, d: Duration) -> Self {
        self.initial_backoff = d;
        self
    }

    /// The longest wait before a retry, `Retry-After` included
    #[must_use]
    pub const fn with_max_backoff(mut self, d: Duration) -> Self {
        self.max_backoff = d;
        self
    }

    /// Retries allowed for errors classified [`RetryPolicy::Limited`]
    #[must_use]
    pub const fn with_limited_retries(mut self, n: u32) -> Self {
        self.limited_retries = n;
        self
    }

    /// Attempts in all, the first included
    pub const fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The backoff ceiling of the first retry
    pub const fn initial_backoff(&self) -> Duration {
        self.initial_backoff
    }

    /// The longest wait before a retry
    pub const fn max_backoff(&self) -> Duration {
        self.max_backoff
    }

    /// Retries allowed for errors classified [`RetryPolicy::Limited`]
    pub const fn limited_retries(&self) -> u32 {
        self.limited_retries
    }
}

/// The wait before retry number `retry` (1 for the first retry) with full jitter
///
/// `jitter × min(max_backoff, initial_backoff × 2^(retry-1))`: uniform below that ceiling
/// when `jitter` is uniform in `[0, 1)`; a `jitter` outside `[0, 1]` (or NaN) is clamped
/// into it.
pub fn backoff(config: &RetryConfig, retry: u32, jitter: f64) -> Duration {
    let doublings = retry.saturating_sub(1).min(31);
    let ceiling = config
        .initial_backoff
        .checked_mul(1 << doublings)
        .map_or(config.max_backoff, |d| d.min(config.max_backoff));
    let jitter = if jitter.is_nan() {
        0.0
    } else {
        jitter.clamp(0.0, 1.0)
    };
    // `mul_f64` panics when the product rounds past `Duration::MAX` (a ceiling near it
    // with a jitter of 1)
    Duration::try_from_secs_f64(ceiling.as_secs_f64() * jitter).unwrap_or(ceiling)
}

/// A transport failure, as the adapter classifies it; the adapter keeps the error itself
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportFailure {
    /// The connection could not be made (refused, reset, unreachable, name not resolved)
    Connect,
    /// The connection was not made in time
    ConnectTimeout,
    /// The connection failed while the request was sent or before any response byte
    /// arrived (reset, closed)
    Send,
    /// No response head arrived in time
    HeadTimeout,
    /// The connection failed while a response body was read (reset, closed early)
    BodyRead,
    /// No body byte arrived within the idle timeout
    IdleTimeout,
    /// The overall deadline of the invocation passed
    Deadline,
    /// TLS failed (certificate, handshake)
    Tls,
    /// The peer does not speak valid HTTP
    Protocol,
    /// Anything else (configuration, local errors)
    Other,
}

impl TransportFailure {
    /// The failure of a proxy's answer to `CONNECT` with a status other than 2xx: a 4xx is
    /// the proxy's refusal (407 wants credentials, 403 forbids the target), which every
    /// attempt would get again, so [`Other`](Self::Other) (never retried); anything else
    /// (a 5xx: the proxy could not reach the target) [`Connect`](Self::Connect)
    pub const fn of_proxy_answer(status: u16) -> Self {
        if status >= 400 && status < 500 {
            Self::Other
        } else {
            Self::Connect
        }
    }

    /// Whether this failure is a timeout
    pub const fn is_timeout(self) -> bool {
        matches!(
            self,
            Self::ConnectTimeout | Self::HeadTimeout | Self::IdleTimeout | Self::Deadline
        )
    }

    /// The quota tokens a retry after this failure costs, `None` if it never retries
    ///
    /// Connection failures and timeouts before any response byte retry, as do failures
    /// while an error body is read; TLS, protocol, deadline and other failures do not.
    pub const fn retry_cost(self) -> Option<u32> {
        match self {
            Self::Connect | Self::Send | Self::BodyRead => Some(RETRY_COST),
            Self::ConnectTimeout | Self::HeadTimeout | Self::IdleTimeout => {
                Some(TIMEOUT_RETRY_COST)
            }
            Self::Deadline | Self::Tls | Self::Protocol | Self::Other => None,
        }
    }
}

impl fmt::Display for TransportFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connect failed",
            Self::ConnectTimeout => "connect timed out",
            Self::Send => "connection failed before the response",
            Self::HeadTimeout => "no response head in time",
            Self::BodyRead => "connection failed while reading the body",
            Self::IdleTimeout => "body idle timeout",
            Self::Deadline => "deadline passed",
            Self::Tls => "tls failed",
            Self::Protocol => "invalid http",
            Self::Other => "transport failed",
        })
    }
}

/// The quota tokens a retry after `error` costs, and how many retries it allows at most,
/// `None` if it never retries
fn service_retry(error: &ServiceError, config: &RetryConfig) -> Option<(u32, u32)> {
    let cost = if matches!(error.status, Some(408 | 504)) {
        TIMEOUT_RETRY_COST
    } else {
        RETRY_COST
    };
    match error.retry_policy() {
        RetryPolicy::Never => None,
        RetryPolicy::Limited => Some((cost, config.limited_retries)),
        RetryPolicy::Backoff => Some((cost, u32::MAX)),
    }
}

/// Why no retry follows a failure
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GiveUp {
    /// The failure is not worth retrying
    NotRetryable,
    /// The failure happened after an event reached the caller: the function has run
    EventsDelivered,
    /// Every attempt was used
    AttemptsExhausted,
    /// The retry quota is empty: the service has been failing a lot
    QuotaExhausted,
    /// The wait would pass the deadline
    Deadline,
}

impl fmt::Display for GiveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotRetryable => "not retryable",
            Self::EventsDelivered => "events were already delivered",
            Self::AttemptsExhausted => "attempts exhausted",
            Self::QuotaExhausted => "retry quota exhausted",
            Self::Deadline => "the deadline would pass",
        })
    }
}

/// What to do after a failed attempt
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetryDecision {
    /// Wait `delay`, then send again; `cost` tokens were taken from the quota
    Retry {
        /// The wait
        delay: Duration,
        /// Tokens taken from the quota
        cost: u32,
    },
    /// Report the failure
    GiveUp(GiveUp),
}

/// A failed attempt, as the retry policy sees it
#[derive(Debug, Clone, Copy)]
pub enum AttemptFailure<'a> {
    /// The service answered with an error
    Service(&'a ServiceError),
    /// The service refused the signature for its time, and the clock it answered with moved
    /// the client's offset (see [`ClockSkew`](crate::ClockSkew)): worth one attempt signed
    /// anew, as the AWS SDKs retry it
    ClockSkew(&'a ServiceError),
    /// The transport failed
    Transport(TransportFailure),
}

/// Decides whether to retry after attempt number `attempt` (1-based) failed
///
/// `remaining` is the time left before the caller's deadline, if any. Takes the retry's
/// cost from `quota` when it decides to retry. The delay is [`backoff`], or the service's
/// `Retry-After` when given; both are capped at [`RetryConfig::max_backoff`].
pub fn decide(
    failure: AttemptFailure<'_>,
    attempt: u32,
    config: &RetryConfig,
    quota: &RetryQuota,
    remaining: Option<Duration>,
    jitter: f64,
) -> RetryDecision {
    let (cost, max_retries, retry_after) = match failure {
        AttemptFailure::Service(e) => match service_retry(e, config) {
            Some((cost, max)) => (cost, max, e.retry_after()),
            None => return RetryDecision::GiveUp(GiveUp::NotRetryable),
        },
        AttemptFailure::ClockSkew(_) => (RETRY_COST, u32::MAX, None),
        AttemptFailure::Transport(t) => match t.retry_cost() {
            Some(cost) => (cost, u32::MAX, None),
            None => return RetryDecision::GiveUp(GiveUp::NotRetryable),
        },
    };
    if attempt >= config.max_attempts || attempt > max_retries {
        return RetryDecision::GiveUp(GiveUp::AttemptsExhausted);
    }
    let delay = retry_after.map_or_else(
        || backoff(config, attempt, jitter),
        |d| d.min(config.max_backoff),
    );
    if remaining.is_some_and(|r| delay >= r) {
        return RetryDecision::GiveUp(GiveUp::Deadline);
    }
    if !quota.try_acquire(cost) {
        return RetryDecision::GiveUp(GiveUp::QuotaExhausted);
    }
    RetryDecision::Retry { delay, cost }
}

/// The retry quota: a token bucket that retries draw from and successes refill
///
/// Each retry takes [`RETRY_COST`] tokens ([`TIMEOUT_RETRY_COST`] after a timeout); when
/// the bucket cannot pay, failures are reported without retry. A success gives back what
/// its last retry took, or [`NO_RETRY_INCREMENT`] when it needed none
/// ([`on_success`](Self::on_success)). Share one bucket between all invocations of a client (it is atomic: put it
/// in an `Arc`).
#[derive(Debug)]
pub struct RetryQuota {
    tokens: AtomicU32,
    capacity: u32,
}

impl Default for RetryQuota {
    fn default() -> Self {
        Self::new(DEFAULT_RETRY_QUOTA)
    }
}

impl RetryQuota {
    /// A full bucket of `capacity` tokens
    pub const fn new(capacity: u32) -> Self {
        Self {
            tokens: AtomicU32::new(capacity),
            capacity,
        }
    }

    /// Tokens in the bucket now
    pub fn available(&self) -> u32 {
        self.tokens.load(Ordering::Relaxed)
    }

    /// The most tokens the bucket holds
    pub const fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Takes `cost` tokens if there are that many
    pub fn try_acquire(&self, cost: u32) -> bool {
        self.tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| t.checked_sub(cost))
            .is_ok()
    }

    /// Gives `amount` tokens back, up to the capacity
    pub fn refund(&self, amount: u32) {
        let _ = self
            .tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(t.saturating_add(amount).min(self.capacity))
            });
    }

    /// Records a successful invocation; `last_retry_cost` is what its last retry took (0
    /// when it needed none)
    ///
    /// As the SDKs do, only the last retry's cost comes back: an invocation that needed
    /// several retries leaves the bucket lower than it found it.
    pub fn on_success(&self, last_retry_cost: u32) {
        self.refund(if last_retry_cost == 0 {
            NO_RETRY_INCREMENT
        } else {
            last_retry_cost
        });
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn throttled(retry_after: Option<&str>) -> ServiceError {
        ServiceError::from_parts(
            Some(429),
            Some("TooManyRequestsException"),
            br#"{"message":"Rate exceeded","Reason":"CallerRateLimitExceeded"}"#,
            None,
            retry_after.map(str::to_owned),
        )
    }

    fn error(status: u16, code: &str) -> ServiceError {
        ServiceError::from_parts(Some(status), Some(code), b"{}", None, None)
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let c = RetryConfig::default();
        let near_one = 1.0 - f64::EPSILON;
        assert_eq!(backoff(&c, 1, 0.0), Duration::ZERO);
        assert!(backoff(&c, 1, near_one) <= Duration::from_secs(1));
        assert!(backoff(&c, 1, near_one) > Duration::from_millis(999));
        assert!(backoff(&c, 2, near_one) > Duration::from_millis(1999));
        assert_eq!(backoff(&c, 6, 0.5), Duration::from_secs(10));
        assert_eq!(
            backoff(&c, 7, 0.5),
            Duration::from_secs(10),
            "capped at 20 s"
        );
        assert_eq!(backoff(&c, u32::MAX, 0.5), Duration::from_secs(10));
        assert_eq!(backoff(&c, 0, 0.5), Duration::from_millis(500));
        assert_eq!(backoff(&c, 1, f64::NAN), Duration::ZERO);
        assert_eq!(backoff(&c, 1, -3.0), Duration::ZERO);
        // a ceiling whose product with the jitter rounds past `Duration::MAX`
        let huge = RetryConfig::new()
            .with_initial_backoff(Duration::MAX)
            .with_max_backoff(Duration::MAX);
        assert_eq!(backoff(&huge, 1, 1.0), Duration::MAX);
        assert!(backoff(&huge, 3, 0.5) > Duration::from_secs(u64::MAX / 4));
        assert_eq!(backoff(&c, 1, 7.0), Duration::from_secs(1));
    }

    #[test]
    fn which_failures_retry() {
        let c = RetryConfig::default();
        let q = RetryQuota::default();
        let retry = |f: AttemptFailure<'_>| decide(f, 1, &c, &q, None, 0.5);
        for code in [
            "TooManyRequestsException",
            "ServiceException",
            "EC2ThrottledException",
            "ResourceNotReadyException",
            "SnapStartNotReadyException",
            "ResourceConflictException",
            "EC2UnexpectedException",
            "EFSMountTimeoutException",
        ] {
            assert!(
                matches!(
                    retry(AttemptFailure::Service(&error(500, code))),
                    RetryDecision::Retry { .. }
                ),
                "{code}"
            );
        }
        for code in [
            "ResourceNotFoundException",
            "KMSDisabledException",
            "InvalidRequestContentException",
            "UnrecognizedClientException",
            "InvalidSignatureException",
            "ENILimitReachedException",
        ] {
            assert_eq!(
                retry(AttemptFailure::Service(&error(502, code))),
                RetryDecision::GiveUp(GiveUp::NotRetryable),
                "{code}"
            );
        }
        // Unmodeled: 503 and 504 retry, other statuses do not
        assert!(matches!(
            retry(AttemptFailure::Service(&error(503, ""))),
            RetryDecision::Retry {
                cost: RETRY_COST,
                ..
            }
        ));
        assert!(matches!(
            retry(AttemptFailure::Service(&error(504, ""))),
            RetryDecision::Retry {
                cost: TIMEOUT_RETRY_COST,
                ..
            }
        ));
        assert_eq!(
            retry(AttemptFailure::Service(&error(500, "Whatever"))),
            RetryDecision::GiveUp(GiveUp::NotRetryable)
        );
        for (t, cost) in [
            (TransportFailure::Connect, Some(RETRY_COST)),
            (TransportFailure::Send, Some(RETRY_COST)),
            (TransportFailure::BodyRead, Some(RETRY_COST)),
            (TransportFailure::ConnectTimeout, Some(TIMEOUT_RETRY_COST)),
            (TransportFailure::HeadTimeout, Some(TIMEOUT_RETRY_COST)),
            (TransportFailure::IdleTimeout, Some(TIMEOUT_RETRY_COST)),
            (TransportFailure::Deadline, None),
            (TransportFailure::Tls, None),
            (TransportFailure::Protocol, None),
            (TransportFailure::Other, None),
        ] {
            let got = retry(AttemptFailure::Transport(t));
            match cost {
                Some(cost) => assert!(
                    matches!(got, RetryDecision::Retry { cost: c, .. } if c == cost),
                    "{t}"
                ),
                None => assert_eq!(got, RetryDecision::GiveUp(GiveUp::NotRetryable), "{t}"),
            }
        }
    }

    #[test]
    fn attempts_limited_retries_and_deadline() {
        let c = RetryConfig::default();
        let q = RetryQuota::default();
        let t = AttemptFailure::Transport(TransportFailure::Connect);
        assert!(matches!(
            decide(t, 2, &c, &q, None, 0.0),
            RetryDecision::Retry { .. }
        ));
        assert_eq!(
            decide(t, 3, &c, &q, None, 0.0),
            RetryDecision::GiveUp(GiveUp::AttemptsExhausted)
        );
        let limited = error(502, "EC2UnexpectedException");
        assert!(matches!(
            decide(AttemptFailure::Service(&limited), 1, &c, &q, None, 0.0),
            RetryDecision::Retry { .. }
        ));
        assert_eq!(
            decide(AttemptFailure::Service(&limited), 2, &c, &q, None, 0.0),
            RetryDecision::GiveUp(GiveUp::AttemptsExhausted)
        );
        // with five attempts, a limit of two retries is what stops the third
        let two = RetryConfig::default()
            .with_max_attempts(5)
            .with_limited_retries(2);
        assert_eq!(two.limited_retries(), 2);
        assert_eq!(c.limited_retries(), 1);
        assert!(matches!(
            decide(AttemptFailure::Service(&limited), 2, &two, &q, None, 0.0),
            RetryDecision::Retry { .. }
        ));
        assert_eq!(
            decide(AttemptFailure::Service(&limited), 3, &two, &q, None, 0.0),
            RetryDecision::GiveUp(GiveUp::AttemptsExhausted)
        );
        let one = RetryConfig::disabled();
        assert_eq!(
            decide(t, 1, &one, &q, None, 0.0),
            RetryDecision::GiveUp(GiveUp::AttemptsExhausted)
        );
        assert_eq!(
            decide(t, 1, &c, &q, Some(Duration::from_millis(100)), 0.5),
            RetryDecision::GiveUp(GiveUp::Deadline)
        );
        assert_eq!(RetryConfig::new().with_max_attempts(0).max_attempts(), 1);
    }

    /// A proxy's refusal (4xx) would come again on every attempt; its failure to reach the
    /// target (anything else) is a connection failure, retried as one
    #[test]
    fn proxy_answers() {
        for status in [400, 403, 407, 499] {
            assert_eq!(
                TransportFailure::of_proxy_answer(status),
                TransportFailure::Other,
                "{status}"
            );
        }
        for status in [101, 302, 399, 500, 502, 503, 504] {
            assert_eq!(
                TransportFailure::of_proxy_answer(status),
                TransportFailure::Connect,
                "{status}"
            );
        }
    }

    #[test]
    fn failures_and_give_ups_say_what_they_are() {
        use TransportFailure as T;
        let all = [
            (T::Connect, false, "connect failed"),
            (T::ConnectTimeout, true, "connect timed out"),
            (T::Send, false, "connection failed before the response"),
            (T::HeadTimeout, true, "no response head in time"),
            (
                T::BodyRead,
                false,
                "connection failed while reading the body",
            ),
            (T::IdleTimeout, true, "body idle timeout"),
            (T::Deadline, true, "deadline passed"),
            (T::Tls, false, "tls failed"),
            (T::Protocol, false, "invalid http"),
            (T::Other, false, "transport failed"),
        ];
        for (failure, timeout, text) in all {
            assert_eq!(failure.is_timeout(), timeout, "{failure:?}");
            assert_eq!(failure.to_string(), text);
        }
        for (why, text) in [
            (GiveUp::NotRetryable, "not retryable"),
            (GiveUp::EventsDelivered, "events were already delivered"),
            (GiveUp::AttemptsExhausted, "attempts exhausted"),
            (GiveUp::QuotaExhausted, "retry quota exhausted"),
            (GiveUp::Deadline, "the deadline would pass"),
        ] {
            assert_eq!(why.to_string(), text);
        }
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let c = RetryConfig::default();
        let q = RetryQuota::default();
        // capped at max_backoff; a malformed value falls back to the backoff
        for (header, delay) in [
            ("1", 1000),
            ("300", 20_000),
            // a longer wait asked for is not a shorter one
            ("86400", 20_000),
            ("1e30", 20_000),
            ("soon", 500),
            ("-1", 500),
            ("-0", 0),
            ("inf", 500),
            ("NaN", 500),
        ] {
            let e = throttled(Some(header));
            assert_eq!(
                decide(AttemptFailure::Service(&e), 1, &c, &q, None, 0.5),
                RetryDecision::Retry {
                    delay: Duration::from_millis(delay),
                    cost: RETRY_COST
                },
                "{header}"
            );
        }
    }

    #[test]
    fn quota_stops_retries_and_refills() {
        let c = RetryConfig::default();
        let q = RetryQuota::new(12);
        let t = AttemptFailure::Transport(TransportFailure::HeadTimeout);
        assert!(matches!(
            decide(t, 1, &c, &q, None, 0.0),
            RetryDecision::Retry { cost: 10, .. }
        ));
        assert_eq!(q.available(), 2);
        assert_eq!(
            decide(t, 1, &c, &q, None, 0.0),
            RetryDecision::GiveUp(GiveUp::QuotaExhausted)
        );
        assert_eq!(q.available(), 2, "a refused retry costs nothing");
        q.on_success(10);
        assert_eq!(q.available(), 12);
        q.on_success(0);
        assert_eq!(q.available(), 12, "never above capacity");
        assert!(q.try_acquire(12) && !q.try_acquire(1));
        q.on_success(0);
        assert_eq!(q.available(), NO_RETRY_INCREMENT);
    }

    proptest! {
        #[test]
        fn backoff_stays_in_bounds(
            initial_ms in 0u64..5_000,
            max_ms in 0u64..60_000,
            retry in 0u32..100,
            jitter in proptest::num::f64::ANY,
        ) {
            let c = RetryConfig::new()
                .with_initial_backoff(Duration::from_millis(initial_ms))
                .with_max_backoff(Duration::from_millis(max_ms));
            let d = backoff(&c, retry, jitter);
            prop_assert!(d <= c.max_backoff());
            let ceiling = Duration::from_millis(initial_ms)
                .saturating_mul(1 << retry.saturating_sub(1).min(31));
            prop_assert!(d <= ceiling);
            if (0.0..=1.0).contains(&jitter) {
                let exact = ceiling.min(c.max_backoff()).as_secs_f64() * jitter;
                prop_assert!((d.as_secs_f64() - exact).abs() < 1e-6);
            }
        }

        #[test]
        fn backoff_grows_with_the_retry_number(retry in 1u32..40, jitter in 0.0f64..1.0) {
            let c = RetryConfig::default();
            prop_assert!(backoff(&c, retry, jitter) <= backoff(&c, retry + 1, jitter));
        }

        /// Whatever the sequence of acquisitions and refunds, the bucket stays within
        /// [0, capacity] and an acquisition succeeds exactly when it can be paid
        #[test]
        fn quota_is_a_bounded_bucket(
            capacity in 0u32..1_000,
            ops in proptest::collection::vec((any::<bool>(), 0u32..40), 0..200),
        ) {
            let q = RetryQuota::new(capacity);
            let mut model = i64::from(capacity);
            for (acquire, n) in ops {
                if acquire {
                    let ok = q.try_acquire(n);
                    prop_assert_eq!(ok, model >= i64::from(n));
                    if ok { model -= i64::from(n); }
                } else {
                    q.on_success(n);
                    let add = if n == 0 { i64::from(NO_RETRY_INCREMENT) } else { i64::from(n) };
                    model = (model + add).min(i64::from(capacity));
                }
                prop_assert_eq!(i64::from(q.available()), model);
                prop_assert!(q.available() <= q.capacity());
            }
        }
    }
}
