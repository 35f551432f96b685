//! `Client`: configuration, the connection pool, and `invoke`

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use invoke_proto::Limits;
use invoke_proto::{
    Credentials, InvokeDriver, InvokeParams, RetryConfig, RetryQuota, SigningScope, build_request,
};
use invoke_proto::{Endpoint, Scheme};

use crate::call::{Call, Response};
use crate::error::{BoxError, Error};
use crate::proxy::{ProxyEnv, redact};
use crate::resolver::LiteralFirst;

/// Lambda's longest function timeout: 15 minutes
pub const FIFTEEN_MINUTES: Duration = Duration::from_secs(15 * 60);

/// The four timeouts of an invocation
///
/// The defaults never cut a healthy function short: Lambda functions may run for 15
/// minutes and may stay silent for most of it, so the wait for the response head, the
/// idle time between body bytes and the whole invocation all default to 15 minutes (the
/// AWS SDK for Rust's stalled-stream protection, at 5 seconds, had to be switched off for
/// Lambda for this reason). Only connecting is short by default (10 s).
///
/// ```
/// use std::time::Duration;
/// use invoke_blocking::Timeouts;
///
/// let t = Timeouts::default().with_idle(Duration::from_secs(60));
/// assert_eq!(t.overall, Duration::from_secs(900));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Timeouts {
    /// Establishing a connection (TCP, proxy, TLS)
    pub connect: Duration,
    /// From sending the request to the whole response head, per attempt
    pub head: Duration,
    /// Between two reads that return bytes, head and body; a stalled stream fails after
    /// this long
    pub idle: Duration,
    /// The whole invocation, retries and their waits included, until the last event
    pub overall: Duration,
}

impl Timeouts {
    /// These timeouts with [`connect`](Self::connect) set to `d`
    #[must_use]
    pub const fn with_connect(mut self, d: Duration) -> Self {
        self.connect = d;
        self
    }

    /// These timeouts with [`head`](Self::head) set to `d`
    #[must_use]
    pub const fn with_head(mut self, d: Duration) -> Self {
        self.head = d;
        self
    }

    /// These timeouts with [`idle`](Self::idle) set to `d`
    #[must_use]
    pub const fn with_idle(mut self, d: Duration) -> Self {
        self.idle = d;
        self
    }

    /// These timeouts with [`overall`](Self::overall) set to `d`
    #[must_use]
    pub const fn with_overall(mut self, d: Duration) -> Self {
        self.overall = d;
        self
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            head: FIFTEEN_MINUTES,
            idle: FIFTEEN_MINUTES,
            overall: FIFTEEN_MINUTES,
        }
    }
}

/// Where the credentials of every attempt come from
type CredentialsFn = dyn Fn() -> Result<Arc<Credentials>, BoxError> + Send + Sync;

/// A blocking `InvokeWithResponseStream` client
///
/// Cheap to clone (clones share one connection pool and one retry quota), `Send + Sync`.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) agent: ureq::Agent,
    pub(crate) endpoint: Endpoint,
    pub(crate) address: String,
    pub(crate) scope: SigningScope,
    credentials: Box<CredentialsFn>,
    retry: RetryConfig,
    pub(crate) quota: Arc<RetryQuota>,
    pub(crate) timeouts: Timeouts,
    limits: Limits,
    pub(crate) proxy: Option<String>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.inner.address)
            .field("region", &self.inner.scope.region)
            .field("retry", &self.inner.retry)
            .field("timeouts", &self.inner.timeouts)
            .field("proxy", &self.inner.proxy.as_deref().map(redact))
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A builder for a client of `endpoint`, signing for the endpoint's region
    pub fn builder(endpoint: Endpoint) -> ClientBuilder {
        ClientBuilder {
            scope: SigningScope::lambda(endpoint.region()),
            endpoint,
            credentials: None,
            retry: RetryConfig::default(),
            quota: None,
            timeouts: Timeouts::default(),
            limits: Limits::default(),
            proxy_env: None,
            max_idle_connections: 32,
        }
    }

    /// A client of `endpoint` with these static credentials and every default
    ///
    /// # Errors
    ///
    /// See [`ClientBuilder::build`].
    pub fn new(endpoint: Endpoint, credentials: Credentials) -> Result<Self, Error> {
        Self::builder(endpoint).credentials(credentials).build()
    }

    /// Invokes a function and returns once the response head arrived
    ///
    /// Retries (with backoff, within the attempts and the retry quota) the failures that
    /// happen before a successful response head: never once the function started
    /// streaming. The events follow through the returned [`Response`].
    ///
    /// # Errors
    ///
    /// Invalid parameters, credentials, the service's error (read from the error body),
    /// or the transport's, after the last attempt.
    pub fn invoke(&self, params: &InvokeParams) -> Result<Response, Error> {
        let inner = &self.inner;
        let request = build_request(params, &inner.endpoint)?;
        let start = Instant::now();
        let deadline = start + inner.timeouts.overall;
        let driver = InvokeDriver::new(
            request,
            inner.scope.clone(),
            inner.retry,
            Arc::clone(&inner.quota),
        )
        .with_deadline(deadline)
        .with_limits(inner.limits);
        let span = tracing::info_span!(
            "invoke",
            function = params.function_name(),
            request_id = tracing::field::Empty,
            attempts = tracing::field::Empty,
        );
        Call::new(Arc::clone(inner), driver, deadline, span).start()
    }

    /// Tokens left in the retry quota shared by this client's invocations
    pub fn retry_quota_available(&self) -> u32 {
        self.inner.quota.available()
    }

    /// The proxy this client sends through, if any (with its credentials, if the URL has
    /// them: do not log it)
    pub fn proxy(&self) -> Option<&str> {
        self.inner.proxy.as_deref()
    }
}

impl Inner {
    /// Credentials for the attempt about to be signed
    pub(crate) fn credentials(&self) -> Result<Arc<Credentials>, Error> {
        (self.credentials)().map_err(Error::Credentials)
    }
}

/// Configures a [`Client`]
#[must_use]
pub struct ClientBuilder {
    endpoint: Endpoint,
    scope: SigningScope,
    credentials: Option<Box<CredentialsFn>>,
    retry: RetryConfig,
    quota: Option<Arc<RetryQuota>>,
    timeouts: Timeouts,
    limits: Limits,
    proxy_env: Option<ProxyEnv>,
    max_idle_connections: usize,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("endpoint", &self.endpoint.authority())
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Signs every attempt with these credentials
    pub fn credentials(self, credentials: Credentials) -> Self {
        let credentials = Arc::new(credentials);
        self.credentials_fn(move || Ok(Arc::clone(&credentials)))
    }

    /// Asks `provider` for the credentials of every attempt (it may cache and refresh)
    pub fn credentials_fn(
        mut self,
        provider: impl Fn() -> Result<Arc<Credentials>, BoxError> + Send + Sync + 'static,
    ) -> Self {
        self.credentials = Some(Box::new(provider));
        self
    }

    /// Signs for this region instead of the endpoint's
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.scope = SigningScope::lambda(region);
        self
    }

    /// The retry policy (default: the SDKs' standard mode, 3 attempts)
    pub fn retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// Shares this retry quota (default: a fresh one of 500 tokens per client)
    pub fn retry_quota(mut self, quota: Arc<RetryQuota>) -> Self {
        self.quota = Some(quota);
        self
    }

    /// The timeouts (default: [`Timeouts::default`])
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Event-stream decoding limits (default: 24 MiB messages)
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The proxy environment to honour (default: [`ProxyEnv::from_process`] when
    /// [`build`](Self::build) runs)
    pub fn proxy_env(mut self, env: ProxyEnv) -> Self {
        self.proxy_env = Some(env);
        self
    }

    /// Idle connections kept in the pool (default 32)
    pub fn max_idle_connections(mut self, n: usize) -> Self {
        self.max_idle_connections = n;
        self
    }

    /// The client
    ///
    /// # Errors
    ///
    /// [`Error::Config`] without credentials, or with a proxy URL that is not valid.
    pub fn build(self) -> Result<Client, Error> {
        let credentials = self
            .credentials
            .ok_or_else(|| Error::Config("no credentials given".to_owned()))?;
        let env = self.proxy_env.unwrap_or_else(ProxyEnv::from_process);
        let proxy = env.proxy_for(&self.endpoint).map(str::to_owned);
        let ureq_proxy = proxy
            .as_deref()
            .map(|p| {
                ureq::Proxy::new(p)
                    .map_err(|e| Error::Config(format!("proxy {:?}: {e}", redact(p))))
            })
            .transpose()?;
        let t = self.timeouts;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .https_only(self.endpoint.scheme() == Scheme::Https)
            // only what this builder decided, never ureq's own reading of the environment
            .proxy(ureq_proxy)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .user_agent(concat!("invoke-blocking/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(t.connect))
            .timeout_recv_response(Some(t.head))
            .timeout_per_read(Some(t.idle))
            .timeout_per_write(Some(t.idle))
            .timeout_global(Some(t.overall))
            .max_idle_connections(self.max_idle_connections)
            .max_idle_connections_per_host(self.max_idle_connections)
            .build();
        let agent = ureq::Agent::with_parts(
            config,
            ureq::unversioned::transport::DefaultConnector::default(),
            LiteralFirst::default(),
        );
        let address = self.endpoint.authority();
        let address = if address.contains(':') && !address.ends_with(']') {
            address
        } else {
            format!("{address}:{}", self.endpoint.port_or_default())
        };
        Ok(Client {
            inner: Arc::new(Inner {
                agent,
                address,
                endpoint: self.endpoint,
                scope: self.scope,
                credentials,
                retry: self.retry,
                quota: self.quota.unwrap_or_default(),
                timeouts: self.timeouts,
                limits: self.limits,
                proxy,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use invoke_proto::{EndpointConfig, resolve_endpoint};

    use super::*;

    #[test]
    fn debug_shows_no_secret() {
        let endpoint =
            resolve_endpoint(&EndpointConfig::default().with_custom("http://127.0.0.1:9")).unwrap();
        let client = Client::builder(endpoint)
            .credentials(Credentials::new("AKID", "s3cret-key", Some("t0ken".into())))
            .proxy_env(ProxyEnv::from_vars([(
                "http_proxy",
                "http://user:pr0xy-pass@proxy:1",
            )]))
            .build()
            .unwrap();
        let shown = format!("{client:?}");
        assert!(
            shown.contains("127.0.0.1:9") && shown.contains("***@proxy:1"),
            "{shown}"
        );
        for secret in ["s3cret", "t0ken", "pr0xy-pass"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert_eq!(client.proxy(), Some("http://user:pr0xy-pass@proxy:1"));
    }

    #[test]
    fn build_needs_credentials_and_a_valid_proxy() {
        let endpoint =
            resolve_endpoint(&EndpointConfig::default().with_custom("http://127.0.0.1:9")).unwrap();
        assert!(matches!(
            Client::builder(endpoint.clone())
                .proxy_env(ProxyEnv::none())
                .build(),
            Err(Error::Config(_))
        ));
        let bad = Client::builder(endpoint)
            .credentials(Credentials::new("AKID", "s", None))
            .proxy_env(ProxyEnv::from_vars([(
                "http_proxy",
                "gopher://user:pw@x:1",
            )]))
            .build()
            .unwrap_err();
        assert!(!bad.to_string().contains("pw"), "{bad}");
    }
}
