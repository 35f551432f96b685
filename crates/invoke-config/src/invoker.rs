//! What a client applies to every invocation, and the start of each

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use invoke_proto::{
    Endpoint, InvokeDriver, Limits, RateLimiter, RetryConfig, RetryQuota, SigningScope,
};

use crate::builder::ClientSettings;
use crate::credentials::ProvidedCredentials;
use crate::options::InvokeOptions;
use crate::timeouts::Timeouts;

/// What a client applies to every invocation: where it goes, what it is signed for, and how
/// it is retried, paced, timed and limited
///
/// Both clients start each invocation's [`InvokeDriver`] here ([`start`](Self::start)), so
/// that they apply their settings and a call's [`InvokeOptions`] alike.
///
/// ```
/// use std::time::{Duration, Instant};
/// use invoke_config::{ClientSettings, InvokeOptions, Invoker};
/// use invoke_proto::{EndpointConfig, InvokeParams, build_request, resolve_endpoint};
///
/// let endpoint = resolve_endpoint(&EndpointConfig::default().with_region("eu-west-1"))?;
/// let invoker = Invoker::new(&ClientSettings::new(endpoint));
/// let request = build_request(&InvokeParams::new("my-function", "{}"), &invoker.endpoint)?;
/// let now = Instant::now();
/// let once = InvokeOptions::new().max_attempts(1).timeout(Duration::from_secs(5));
/// let started = invoker.start(request, &once, now);
/// assert_eq!(started.timeouts.overall, Duration::from_secs(5));
/// assert_eq!(started.deadline, now + Duration::from_secs(5));
/// // `started.driver` now runs the invocation: one attempt, by that deadline
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Invoker {
    /// Where requests go
    pub endpoint: Endpoint,
    /// What requests are signed for
    pub scope: Arc<SigningScope>,
    /// The retry policy, unless a call's options change it
    pub retry: RetryConfig,
    /// The retry quota every retry takes from
    pub quota: Arc<RetryQuota>,
    /// The `adaptive` retry mode's rate limiter, if any
    pub rate_limiter: Option<Arc<RateLimiter>>,
    /// Connect, head, idle and overall timeouts (the overall one unless a call's options
    /// change it)
    pub timeouts: Timeouts,
    /// Event-stream decoding limits
    pub limits: Limits,
}

/// One invocation as [`Invoker::start`] started it
#[derive(Debug)]
pub struct Started {
    /// Its driver: the request, attempts, deadline, limits and pacing
    pub driver: InvokeDriver,
    /// When it must be over
    pub deadline: Instant,
    /// Its timeouts: the client's, with those its options changed
    pub timeouts: Timeouts,
    /// The credentials its options give it, in place of the client's
    pub credentials: Option<Arc<ProvidedCredentials>>,
}

impl Invoker {
    /// What a client built from `settings` applies (its retry quota a fresh one unless
    /// `settings` share one)
    pub fn new(settings: &ClientSettings) -> Self {
        Self {
            endpoint: settings.endpoint.clone(),
            scope: Arc::new(settings.scope.clone()),
            retry: settings.retry,
            quota: settings.quota.clone().unwrap_or_default(),
            rate_limiter: settings.rate_limiter.clone(),
            timeouts: settings.timeouts,
            limits: settings.limits,
        }
    }

    /// The invocation of `request` (built for [`endpoint`](Self::endpoint)), started at `now`
    /// with `options`
    pub fn start(
        &self,
        request: http::Request<Bytes>,
        options: &InvokeOptions,
        now: Instant,
    ) -> Started {
        let timeouts = options.timeouts_for(self.timeouts);
        let deadline = now + timeouts.overall;
        let driver = InvokeDriver::new(
            request,
            Arc::clone(&self.scope),
            options.retry_for(self.retry),
            Arc::clone(&self.quota),
        )
        .with_deadline(deadline)
        .with_limits(self.limits);
        let driver = match &self.rate_limiter {
            Some(limiter) => driver.with_rate_limiter(Arc::clone(limiter), now),
            None => driver,
        };
        Started {
            driver,
            deadline,
            timeouts,
            credentials: options.call_credentials().cloned(),
        }
    }
}
