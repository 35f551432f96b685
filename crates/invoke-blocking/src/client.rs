//! `Client`: configuration, the connection pool, and `invoke`

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use invoke_config::{
    CREDENTIALS_TIMEOUT, ChainProvider, ClientSettings, CredentialsCache, CredentialsChoice,
    ImdsRegion, InvokeOptions, Invoker, Overrides, ProvideCredentials, ProvidedCredentials,
    ProxyEnv, RegionStep, RetryMode, SharedConfig, StdFs, Timeouts, redact_url,
};
use invoke_proto::{
    Credentials, Endpoint, InvokeParams, RateLimiter, RetryConfig, Scheme, build_request,
    resolve_endpoint,
};

use crate::buffers::BufferPool;
use crate::call::{Call, Response};
use crate::credentials::Sender;
use crate::error::Error;
use crate::resolver::{AddressCache, LiteralFirst};

/// A blocking `InvokeWithResponseStream` client
///
/// Cheap to clone (clones share one connection pool, one retry quota and one credentials
/// cache), `Send + Sync`.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) agent: ureq::Agent,
    pub(crate) address: String,
    /// Endpoint, signing scope, retries, pacing, timeouts and limits of every invocation
    pub(crate) invoker: Invoker,
    /// `None`: requests go unsigned
    credentials: Option<CredentialSource>,
    pub(crate) proxy: Option<String>,
    /// Body read buffers, reused by the client's invocations
    pub(crate) buffers: Arc<BufferPool>,
    /// The addresses the agent's resolver reuses
    pub(crate) addresses: Arc<AddressCache>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.inner.address)
            .field("region", &self.inner.invoker.scope.region)
            .field("signed", &self.inner.credentials.is_some())
            .field("retry", &self.inner.invoker.retry)
            .field("timeouts", &self.inner.invoker.timeouts)
            .field("proxy", &self.inner.proxy.as_deref().map(redact_url))
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A builder for a client of `endpoint`, signing for the endpoint's region
    ///
    /// Give it credentials ([`credentials`](ClientBuilder::credentials),
    /// [`credentials_provider`](ClientBuilder::credentials_provider),
    /// [`default_credentials`](ClientBuilder::default_credentials)) or
    /// [`no_signing`](ClientBuilder::no_signing).
    pub fn builder(endpoint: Endpoint) -> ClientBuilder {
        ClientBuilder {
            settings: ClientSettings::new(endpoint),
        }
    }

    /// A builder set up as the AWS SDKs would be by `shared` with `overrides` on top
    ///
    /// From the resolved [`ClientConfig`](invoke_config::ClientConfig): the endpoint
    /// (`endpoint_url`, region, FIPS, dual-stack, by Lambda's endpoint rules) and its signing
    /// region (with neither region nor endpoint URL configured, the region of the EC2
    /// instance from its metadata, unless `AWS_EC2_METADATA_DISABLED` is true, as the AWS SDK
    /// for Rust does); the retries (`max_attempts`; every `retry_mode` runs the SDKs'
    /// *standard* policy, `legacy` keeping its attempts but not its older back-off;
    /// `adaptive` adds the SDKs' client-side rate limiter, see [`RateLimiter`]); `ca_bundle`;
    /// the app id (`sdk_ua_app_id`, see [`ClientBuilder::app_id`]); the proxy variables of
    /// `shared`'s environment; and the default credentials chain of `shared`, its HTTP
    /// exchanges sent through this client's agent, behind a [`CredentialsCache`]. Everything
    /// can still be changed on the builder.
    ///
    /// # Errors
    ///
    /// [`Error::Settings`] for invalid shared settings, [`Error::Endpoint`] when no endpoint
    /// follows (no region and no endpoint URL, for example).
    pub fn builder_from_config(
        shared: &SharedConfig,
        overrides: &Overrides,
    ) -> Result<ClientBuilder, Error> {
        let config = shared.resolve(overrides)?;
        let bundles: Vec<PathBuf> = config.ca_bundle.iter().map(|b| b.value.clone()).collect();
        let mut endpoint_config = config.endpoint_config();
        if endpoint_config.region.is_none() && endpoint_config.custom.is_none() {
            endpoint_config.region = imds_region(shared, &bundles)?;
        }
        let endpoint = resolve_endpoint(&endpoint_config)?;
        if endpoint.region_defaulted() {
            tracing::warn!(
                region = endpoint.region(),
                "no region configured: signing for the stand-in region"
            );
        }
        let mut builder = Self::builder(endpoint)
            .retry(RetryConfig::new().with_max_attempts(config.max_attempts.value))
            .proxy_env(ProxyEnv::from_env(shared.env()))
            // the providers' STS and SSO requests go to the client's region, as in the SDKs
            .default_credentials(
                shared
                    .clone()
                    .with_client_region(endpoint_config.region.clone()),
            );
        builder.settings.ca_bundles = bundles;
        builder.settings.app_id = config.app_id.map(|id| id.value);
        builder.settings.lambda_trace = Some(shared.in_lambda());
        if config.retry_mode.value == RetryMode::Adaptive {
            builder = builder.adaptive_retry();
        }
        Ok(builder)
    }

    /// A client set up by `shared` with `overrides` on top (see
    /// [`builder_from_config`](Self::builder_from_config))
    ///
    /// # Errors
    ///
    /// See [`builder_from_config`](Self::builder_from_config) and [`ClientBuilder::build`].
    pub fn from_config(shared: &SharedConfig, overrides: &Overrides) -> Result<Self, Error> {
        Self::builder_from_config(shared, overrides)?.build()
    }

    /// A client set up by this process's environment and shared files, as the AWS SDKs'
    /// default configuration is ([`SharedConfig::from_process`])
    ///
    /// # Errors
    ///
    /// See [`from_config`](Self::from_config).
    pub fn from_env() -> Result<Self, Error> {
        Self::from_config(&SharedConfig::from_process(), &Overrides::new())
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
        self.invoke_with(params, &InvokeOptions::new())
    }

    /// [`invoke`](Self::invoke) with some of the client's settings changed for this call:
    /// its retry policy or attempts, its overall, head, idle and connect timeouts, its
    /// credentials
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use invoke_blocking::{Client, InvokeOptions};
    /// use invoke_proto::InvokeParams;
    ///
    /// let client = Client::from_env()?;
    /// // a function that must not run twice, within a minute
    /// let once = InvokeOptions::new().max_attempts(1).timeout(Duration::from_secs(60));
    /// let response = client.invoke_with(&InvokeParams::new("charge-card", "{}"), &once)?;
    /// # Ok::<(), invoke_blocking::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`invoke`](Self::invoke).
    pub fn invoke_with(
        &self,
        params: &InvokeParams,
        options: &InvokeOptions,
    ) -> Result<Response, Error> {
        let inner = &self.inner;
        let request = build_request(params, &inner.invoker.endpoint)?;
        let started = inner.invoker.start(request, options, Instant::now());
        let span = invoke_span(params);
        Call::new(Arc::clone(inner), started, span).start()
    }

    /// The credentials this client signs with now (from its cache, or loaded), `None` when
    /// it does not sign
    ///
    /// # Errors
    ///
    /// [`Error::Credentials`] when the source has none.
    pub fn credentials(&self) -> Result<Option<ProvidedCredentials>, Error> {
        // held to the overall timeout, as an invocation's loading is to its deadline
        let by = Instant::now() + self.inner.invoker.timeouts.overall;
        let (_exchanges, _reads) = (
            crate::credentials::exchanges_by(by),
            crate::drain::deadline_by(by),
        );
        let got = self.inner.credentials()?;
        Ok(got.map(|c| ProvidedCredentials::clone(&c)))
    }

    /// The endpoint this client invokes
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.invoker.endpoint
    }

    /// The client-side rate limiter of the `adaptive` retry mode (shared by this client's
    /// invocations), if the client has one: whether a throttle turned it on, and the send
    /// rate it allows
    pub fn rate_limiter(&self) -> Option<&RateLimiter> {
        self.inner.invoker.rate_limiter.as_deref()
    }

    /// Tokens left in the retry quota shared by this client's invocations
    pub fn retry_quota_available(&self) -> u32 {
        self.inner.invoker.quota.available()
    }

    /// The proxy this client sends through, if any (with its credentials, if the URL has
    /// them: do not log it)
    pub fn proxy(&self) -> Option<&str> {
        self.inner.proxy.as_deref()
    }
}

/// The region of the EC2 instance this runs on, from instance metadata (IMDSv2); `None`
/// when it cannot be had (logged at debug)
fn imds_region(shared: &SharedConfig, bundles: &[PathBuf]) -> Result<Option<String>, Error> {
    let mut lookup = ImdsRegion::new(shared);
    let mut sender = None;
    loop {
        match lookup.next_step() {
            RegionStep::Send(request) => {
                if sender.is_none() {
                    let config = ureq::Agent::config_builder()
                        .tls_config(crate::tls::config(bundles)?)
                        .http_status_as_error(false)
                        .max_redirects(0)
                        .user_agent(USER_AGENT)
                        .build();
                    // the client's connections (before the client exists): this crate's
                    // TCP, each write within its window, the connect timeout over all
                    // of connecting
                    let agent = ureq::Agent::with_parts(
                        config,
                        connector(),
                        ureq::unversioned::resolver::DefaultResolver::default(),
                    );
                    sender = Some(Sender {
                        agent,
                        proxy_env: ProxyEnv::from_env(shared.env()),
                        connect: CREDENTIALS_TIMEOUT,
                        timeout: CREDENTIALS_TIMEOUT,
                    });
                }
                match sender.as_ref().map(|s| s.send(request)) {
                    Some(Ok((status, headers, body))) => {
                        lookup.handle_response(status, headers, body);
                    }
                    Some(Err(e)) => lookup.handle_transport_error(&e),
                    None => lookup.handle_transport_error(&"no agent"),
                }
            }
            RegionStep::Done(Ok(region)) => {
                tracing::debug!(region, "region from instance metadata");
                return Ok(Some(region));
            }
            RegionStep::Done(Err(why)) => {
                tracing::debug!(why, "no region from instance metadata");
                return Ok(None);
            }
        }
    }
}

impl Inner {
    /// Credentials for the attempt about to be signed, `None` when requests go unsigned
    pub(crate) fn credentials(&self) -> Result<Option<Arc<ProvidedCredentials>>, Error> {
        match &self.credentials {
            None => Ok(None),
            // shared, not copied: a copy of the keys costs three allocations per attempt
            Some(CredentialSource::Static(c)) => Ok(Some(Arc::clone(c))),
            Some(CredentialSource::Provider(p)) => p
                .provide_credentials()
                .map(|p| Some(Arc::new(p)))
                .map_err(|e| {
                    tracing::debug!(error = %e, "no credentials");
                    Error::Credentials(e.into())
                }),
        }
    }
}

/// What every request says of its sender
const USER_AGENT: &str = concat!("invoke-blocking/", env!("CARGO_PKG_VERSION"));

/// Where a client's attempts get their credentials
enum CredentialSource {
    /// Given to the builder, shared by every attempt
    Static(Arc<ProvidedCredentials>),
    /// Asked for every attempt
    Provider(Arc<dyn ProvideCredentials>),
}

/// The per-read and per-write timeout given to ureq: the idle timeout, but below the overall
/// one by [`IO_TIMEOUT_SLACK`]
///
/// ureq sets a socket's timeout again whenever the value it computes for an operation
/// changes: the least of the per-read (or per-write) timeout and what is left of the
/// overall one. With the idle timeout equal to the overall one (the defaults), that is the
/// time left, different for every read and write: a `setsockopt` before each (three per
/// invocation and one per body read). Below the time left, the per-read value wins and stays
/// the same: no `setsockopt` during the first millisecond of an invocation, and none across
/// invocations that short. The idle timeout then fires at most that millisecond early, and
/// only where it would have been cut by the overall deadline anyway.
fn per_io_timeout(t: &Timeouts) -> Duration {
    let below_overall = t
        .overall
        .checked_sub(IO_TIMEOUT_SLACK)
        .filter(|d| !d.is_zero())
        .unwrap_or(t.overall);
    t.idle.min(below_overall)
}

/// See [`per_io_timeout`]
const IO_TIMEOUT_SLACK: Duration = Duration::from_millis(1);

/// The connections of a client's agent: ureq's default chain for this crate's features
/// (a `CONNECT` tunnel through a proxy, TCP, rustls) with this crate's TCP (`tcp`), every
/// read and write bounded by the call's deadline (reads also by the drain's limit) both
/// below TLS and above it, and by the connect timeout while connecting (see `drain`)
fn connector() -> impl ureq::unversioned::transport::Connector<()> {
    use ureq::unversioned::transport::{ConnectProxyConnector, Connector as _, RustlsConnector};
    crate::drain::ConnectBy(
        ().chain(ConnectProxyConnector::default())
            .chain(crate::tcp::Tcp)
            .chain(crate::drain::BoundedIo { note_input: false })
            .chain(RustlsConnector::default())
            .chain(crate::drain::BoundedIo { note_input: true }),
    )
}

/// The span of one invocation: the function, and the request id and attempts once known
fn invoke_span(params: &InvokeParams) -> tracing::Span {
    tracing::info_span!(
        "invoke",
        function = params.function_name(),
        request_id = tracing::field::Empty,
        attempts = tracing::field::Empty,
    )
}

/// Configures a [`Client`]
#[must_use]
pub struct ClientBuilder {
    settings: ClientSettings,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.settings.fmt(f)
    }
}

impl ClientBuilder {
    invoke_config::client_builder_setters! {
        /// Asks `provider` for the credentials of every attempt
        ///
        /// Any [`ProvideCredentials`] source, a closure
        /// `Fn() -> Result<ProvidedCredentials, CredentialsError>` included. It is asked once
        /// per attempt: put a [`CredentialsCache`] in front of a slow source. It runs on
        /// the calling thread, which nothing can interrupt: a provider that blocks past the
        /// overall timeout holds the call until it returns, and the call then fails with
        /// [`TransportFailure::Deadline`](invoke_proto::TransportFailure::Deadline), so it
        /// must bound its own waits. The default chain's exchanges are bounded by this
        /// client.
        credentials_provider;
        /// Signs with the credentials of `invoke-config`'s default chain over `shared`
        /// (environment, profile, web identity, container, IMDS), its HTTP exchanges sent
        /// through this client's agent (each attempt within
        /// [`credentials_timeout`](Self::credentials_timeout)), behind a
        /// [`CredentialsCache`] that refreshes them 5 minutes before they expire
        default_credentials;
    }

    /// The client
    ///
    /// # Errors
    ///
    /// [`Error::Config`] without credentials (nor [`no_signing`](Self::no_signing)), or
    /// with a proxy URL that is not valid; [`Error::CaBundle`] for a CA bundle that cannot be
    /// read or holds no valid certificate.
    pub fn build(self) -> Result<Client, Error> {
        self.build_with_resolver(ureq::unversioned::resolver::DefaultResolver::default())
    }

    /// As [`build`](Self::build), looking names up with `resolver` behind the address cache
    pub(crate) fn build_with_resolver(
        self,
        resolver: impl ureq::unversioned::resolver::Resolver,
    ) -> Result<Client, Error> {
        let address = self.settings.address();
        let mut s = self.settings;
        let (choice, env) = s.take_choices()?;
        let invoker = Invoker::new(&s);
        let proxy = env.proxy_for(&s.endpoint).map(str::to_owned);
        let ureq_proxy = proxy
            .as_deref()
            .map(|p| crate::credentials::http_proxy(p).map_err(Error::Config))
            .transpose()?;
        let t = s.timeouts;
        let config = ureq::Agent::config_builder()
            .tls_config(crate::tls::config(&s.ca_bundles)?)
            .http_status_as_error(false)
            .https_only(s.endpoint.scheme() == Scheme::Https)
            // only what this builder decided, never ureq's own reading of the environment
            .proxy(ureq_proxy)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .user_agent(s.user_agent(USER_AGENT))
            // the name's lookup gets the connect timeout too; ureq times it apart from the
            // connect that follows, so a name neither literal nor cached (see `resolver`) may
            // take up to twice `connect` before the connection fails (invoke-tokio: once)
            .timeout_resolve(Some(t.connect))
            .timeout_connect(Some(t.connect))
            // the head timeout covers sending as well (a server that never reads a large
            // payload): ureq times sending the request head, its body and waiting for the
            // response head apart, each within `head` (invoke-tokio: one window from sending)
            .timeout_send_request(Some(t.head))
            .timeout_send_body(Some(t.head))
            .timeout_recv_response(Some(t.head))
            .timeout_per_read(Some(per_io_timeout(&t)))
            .timeout_per_write(Some(per_io_timeout(&t)))
            .timeout_global(Some(t.overall))
            .max_idle_connections(s.max_idle_connections)
            .max_idle_connections_per_host(s.max_idle_connections)
            // one read takes all that ureq holds (see `buffers::READ_SIZE`)
            .input_buffer_size(crate::buffers::READ_SIZE)
            .build();
        // no resolver thread per request (see `LiteralFirst`)
        let addresses = Arc::new(AddressCache::default());
        let agent = ureq::Agent::with_parts(
            config,
            connector(),
            LiteralFirst::new(resolver, Arc::clone(&addresses)),
        );
        let credentials = match choice {
            CredentialsChoice::Unsigned => None,
            CredentialsChoice::Static(c) => Some(CredentialSource::Static(Arc::new(
                ProvidedCredentials::given(c),
            ))),
            CredentialsChoice::Provider(p) => Some(CredentialSource::Provider(p)),
            CredentialsChoice::DefaultChain(shared) => {
                let sender = Sender {
                    agent: agent.clone(),
                    proxy_env: env,
                    connect: t.connect.min(s.credentials_timeout),
                    timeout: s.credentials_timeout,
                };
                let fs = s.file_reader.unwrap_or_else(|| Arc::new(StdFs));
                let chain = ChainProvider::new(
                    *shared,
                    fs,
                    move |request| sender.send(request),
                    SystemTime::now,
                )
                .with_process_runner(crate::credentials::run_process);
                Some(CredentialSource::Provider(Arc::new(
                    CredentialsCache::new(chain, SystemTime::now)
                        .with_wait_limit(crate::credentials::exchanges_limit),
                )))
            }
        };
        Ok(Client {
            inner: Arc::new(Inner {
                agent,
                address,
                invoker,
                credentials,
                proxy,
                buffers: Arc::default(),
                addresses,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use invoke_proto::{EndpointConfig, resolve_endpoint};

    use super::*;

    /// An endpoint on a loopback port nothing listens on (these tests make no call)
    fn local_endpoint() -> Endpoint {
        resolve_endpoint(&EndpointConfig::default().with_custom("http://127.0.0.1:9")).unwrap()
    }

    #[test]
    fn per_io_timeouts_stay_below_the_overall_timeout() {
        let t = Timeouts::default();
        assert_eq!(
            per_io_timeout(&t),
            Duration::from_secs(15 * 60 - 1) + Duration::from_millis(999)
        );
        let mut short_idle = t;
        short_idle.idle = Duration::from_secs(30);
        assert_eq!(per_io_timeout(&short_idle), Duration::from_secs(30));
        let mut tiny = t;
        tiny.overall = IO_TIMEOUT_SLACK;
        assert_eq!(per_io_timeout(&tiny), IO_TIMEOUT_SLACK);
    }

    /// ureq times a name's lookup by its own resolve timeout: the connect timeout bounds it
    #[test]
    fn looking_up_the_name_is_bounded_by_the_connect_timeout() {
        let connect = Duration::from_millis(1234);
        let client = Client::builder(local_endpoint())
            .timeouts(Timeouts::default().with_connect(connect))
            .no_signing()
            .proxy_env(ProxyEnv::none())
            .build()
            .unwrap();
        assert_eq!(
            client.inner.agent.config().timeouts().resolve,
            Some(connect)
        );
    }

    /// A builder shows its settings, the kind of credentials and never the keys
    #[test]
    fn a_builder_shows_no_secret() {
        let builder = Client::builder(local_endpoint()).credentials(Credentials::new(
            "AKID",
            "s3cret-key",
            Some("t0ken".into()),
        ));
        let shown = format!("{builder:?}");
        assert!(
            shown.contains("credentials: \"static\"") && shown.contains("127.0.0.1"),
            "{shown}"
        );
        assert!(
            !shown.contains("s3cret") && !shown.contains("t0ken"),
            "{shown}"
        );
    }

    #[test]
    fn static_credentials_are_shared_by_attempts_not_copied() {
        let client = Client::builder(local_endpoint())
            .credentials(Credentials::new("AKID", "s3cret-key", Some("t0ken".into())))
            .proxy_env(ProxyEnv::none())
            .build()
            .unwrap();
        let first = client.inner.credentials().unwrap().unwrap();
        let second = client.inner.credentials().unwrap().unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        let shown = client.credentials().unwrap().unwrap();
        assert_eq!(shown.provider, "static");
        assert_eq!(shown.credentials.access_key_id(), "AKID");
        assert_eq!(shown.credentials.session_token(), Some("t0ken"));
        // a provider's are asked for on every attempt
        let asked = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&asked);
        let client = Client::builder(local_endpoint())
            .credentials_provider(move || {
                counter.fetch_add(1, Ordering::Relaxed);
                Ok(ProvidedCredentials::new(
                    Credentials::new("AKID2", "s", None),
                    None,
                    None,
                    "test",
                ))
            })
            .proxy_env(ProxyEnv::none())
            .build()
            .unwrap();
        let got = client.inner.credentials().unwrap().unwrap();
        assert_eq!(got.credentials.access_key_id(), "AKID2");
        client.inner.credentials().unwrap().unwrap();
        assert_eq!(asked.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn debug_shows_no_secret() {
        let client = Client::builder(local_endpoint())
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
        let endpoint = local_endpoint();
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

    #[test]
    fn a_socks_proxy_is_refused_when_building() {
        let error = Client::builder(local_endpoint())
            .credentials(Credentials::new("AKID", "s", None))
            .proxy_env(ProxyEnv::from_vars([(
                "http_proxy",
                "socks5://user:s0cks-pw@127.0.0.1:1",
            )]))
            .build()
            .unwrap_err();
        let shown = error.to_string();
        assert!(matches!(error, Error::Config(_)), "{error:?}");
        assert!(shown.contains("only http:// and https://"), "{shown}");
        assert!(!shown.contains("s0cks-pw"), "{shown}");
    }
}
