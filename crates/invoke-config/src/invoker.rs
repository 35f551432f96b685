//! What a client applies to every invocation, and the start of each

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use invoke_proto::{
    ClockSkew, Endpoint, InvokeDriver, Limits, RateLimiter, RetryConfig, RetryQuota, SigningScope,
    X_AMZN_TRACE_ID, trace_id_value,
};

use crate::builder::ClientSettings;
use crate::config::LAMBDA_FUNCTION_NAME;
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
    /// The service's clock against this host's, learned from refusals for time and applied
    /// to the signing of every invocation (see [`InvokeDriver::with_clock_skew`])
    pub clock_skew: Arc<ClockSkew>,
    /// Each invocation sends the trace of the Lambda function the client runs in
    /// (`_X_AMZN_TRACE_ID` at the time of the call) as `X-Amzn-Trace-Id`, unless its options
    /// give one
    pub lambda_trace: bool,
}

/// Set in a Lambda function's environment: the X-Ray trace of the invocation being handled
const LAMBDA_TRACE_ID: &str = "_X_AMZN_TRACE_ID";

/// A variable of this process's environment, unless unset, blank or not UTF-8
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
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
            clock_skew: Arc::default(),
            lambda_trace: settings
                .lambda_trace
                .unwrap_or_else(|| env_var(LAMBDA_FUNCTION_NAME).is_some()),
        }
    }

    /// The invocation of `request` (built for [`endpoint`](Self::endpoint)), started at `now`
    /// with `options`
    pub fn start(
        &self,
        mut request: http::Request<Bytes>,
        options: &InvokeOptions,
        now: Instant,
    ) -> Started {
        // the AWS SDKs' recursion detection: the trace goes on, unless the request has one
        if !request.headers().contains_key(X_AMZN_TRACE_ID) {
            let trace = match options.call_trace_id() {
                Some(id) => Some(trace_id_value(id)),
                None if self.lambda_trace => {
                    env_var(LAMBDA_TRACE_ID).as_deref().map(trace_id_value)
                }
                None => None,
            };
            if let Some(value) = trace {
                request.headers_mut().insert(X_AMZN_TRACE_ID, value);
            }
        }
        let timeouts = options.timeouts_for(self.timeouts);
        let deadline = now + timeouts.overall;
        let driver = InvokeDriver::new(
            request,
            Arc::clone(&self.scope),
            options.retry_for(self.retry),
            Arc::clone(&self.quota),
        )
        .with_deadline(deadline)
        .with_limits(self.limits)
        .with_clock_skew(Arc::clone(&self.clock_skew));
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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use invoke_proto::{DriverAction, EndpointConfig, InvokeParams, build_request};

    use super::*;

    /// The `X-Amzn-Trace-Id` of the first attempt of an invocation of a request that
    /// carries `existing`, by a client whose `lambda_trace` setting is `lambda_trace`
    /// (`None`: this process's environment decides), with `options`
    fn trace_sent(
        existing: Option<&str>,
        lambda_trace: Option<bool>,
        options: &InvokeOptions,
    ) -> Option<String> {
        let endpoint = invoke_proto::resolve_endpoint(
            &EndpointConfig::default().with_custom("http://127.0.0.1:9001"),
        )
        .unwrap();
        let mut settings = ClientSettings::new(endpoint);
        settings.lambda_trace = lambda_trace;
        let invoker = Invoker::new(&settings);
        if let Some(on) = lambda_trace {
            assert_eq!(invoker.lambda_trace, on);
        }
        let mut request = build_request(&InvokeParams::new("f", "{}"), &invoker.endpoint).unwrap();
        if let Some(value) = existing {
            request
                .headers_mut()
                .insert(X_AMZN_TRACE_ID, value.parse().unwrap());
        }
        let mut started = invoker.start(request, options, Instant::now());
        assert!(matches!(started.driver.poll(), DriverAction::Send { .. }));
        let sent = started.driver.unsigned_request();
        sent.headers()
            .get(X_AMZN_TRACE_ID)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    #[test]
    fn a_calls_trace_goes_on_unless_the_request_has_one() {
        let given = InvokeOptions::new().trace_id("Root=1-a;Sampled=1\n");
        assert_eq!(
            trace_sent(None, Some(false), &given).as_deref(),
            Some("Root=1-a;Sampled=1%0A")
        );
        assert_eq!(
            trace_sent(Some("Root=1-b"), Some(false), &given).as_deref(),
            Some("Root=1-b")
        );
        assert_eq!(trace_sent(None, Some(false), &InvokeOptions::new()), None);
        // in a Lambda function without a trace of the moment (this test process has none,
        // unless it runs in one): nothing to send, and a call's own still goes
        if std::env::var_os("_X_AMZN_TRACE_ID").is_none() {
            assert_eq!(trace_sent(None, Some(true), &InvokeOptions::new()), None);
        }
        assert_eq!(
            trace_sent(None, Some(true), &given).as_deref(),
            Some("Root=1-a;Sampled=1%0A")
        );
    }

    /// The variable that makes [`the_function_environment_decides_the_trace`] a child: the
    /// case its environment was set up for
    const TRACE_CHILD: &str = "INVOKE_CONFIG_TRACE_CHILD";

    /// A client in a Lambda function (`AWS_LAMBDA_FUNCTION_NAME` set and not blank) sends the
    /// function's trace of the moment (`_X_AMZN_TRACE_ID`, unless blank); elsewhere it sends
    /// none unless told to; a setting wins over the environment. The variables are the
    /// process's, so the test binary runs this test again in a child process for each case.
    #[test]
    fn the_function_environment_decides_the_trace() {
        let none = InvokeOptions::new();
        if let Ok(case) = std::env::var(TRACE_CHILD) {
            let (by_environment, told_to) = match case.as_str() {
                "in-lambda" => (Some("Root=1-x"), Some("Root=1-x")),
                "outside" => (None, Some("Root=1-x")),
                _ => (None, None),
            };
            assert_eq!(trace_sent(None, None, &none).as_deref(), by_environment);
            assert_eq!(trace_sent(None, Some(true), &none).as_deref(), told_to);
            assert_eq!(trace_sent(None, Some(false), &none), None);
            return;
        }
        for (case, function, trace) in [
            ("in-lambda", Some("my-function"), "Root=1-x"),
            ("outside", None, "Root=1-x"),
            ("blank", Some(" "), " "),
        ] {
            let mut child = std::process::Command::new(std::env::current_exe().unwrap());
            child
                .args([
                    "invoker::tests::the_function_environment_decides_the_trace",
                    "--exact",
                    "--test-threads=1",
                ])
                .env(TRACE_CHILD, case)
                .env("_X_AMZN_TRACE_ID", trace)
                .env_remove("AWS_LAMBDA_FUNCTION_NAME");
            if let Some(name) = function {
                child.env("AWS_LAMBDA_FUNCTION_NAME", name);
            }
            let out = child.output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && stdout.contains("1 passed"),
                "{case}: {}\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
