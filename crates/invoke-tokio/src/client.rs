//! `Client`: configuration, the connection pool, and `invoke`

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use http::HeaderValue;
use invoke_config::{
    CREDENTIALS_TIMEOUT, ClientSettings, CredentialsChoice, ImdsRegion, InvokeOptions, Invoker,
    Overrides, ProvidedCredentials, ProxyEnv, RegionStep, RetryMode, SharedConfig, StdFs,
    redact_url,
};
use invoke_proto::{
    Credentials, Endpoint, InvokeParams, RateLimiter, RetryConfig, Scheme, build_request,
    resolve_endpoint,
};

use crate::call::{Call, Response};
use crate::connect::{Connector, PRODUCT, Proxy, tls_config};
use crate::credentials::{AsyncCache, Source};
use crate::error::Error;
use crate::kept::current_runtime;
use crate::pool::Pool;

/// An async `InvokeWithResponseStream` client over hyper
///
/// Cheap to clone (clones share one connection pool, one credentials cache and one retry
/// quota), `Send + Sync`. It may be shared by several runtimes (a `static` client used by
/// `#[tokio::test]`s, each with a runtime of its own): a connection belongs to the runtime
/// that opened it and is only reused by that runtime's calls. A [`Response`] is read on
/// the runtime it was made on.
///
/// [`Response`]: crate::Response
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) pool: Arc<Pool>,
    pub(crate) address: String,
    /// Endpoint, signing scope, retries, pacing, timeouts and limits of every invocation
    pub(crate) invoker: Invoker,
    pub(crate) credentials: Source,
    proxy: Option<String>,
    /// For an `http` endpoint through a proxy whose URL has credentials
    pub(crate) proxy_authorization: Option<HeaderValue>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.inner.address)
            .field("region", &self.inner.invoker.scope.region)
            .field("retry", &self.inner.invoker.retry)
            .field("timeouts", &self.inner.invoker.timeouts)
            .field("proxy", &self.inner.proxy.as_deref().map(redact_url))
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A builder for a client of `endpoint`, signing for the endpoint's region
    pub fn builder(endpoint: Endpoint) -> ClientBuilder {
        ClientBuilder {
            settings: ClientSettings::new(endpoint),
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

    /// A client configured as the AWS SDKs would be from `shared` (environment and
    /// profiles) and `overrides`: see [`Client::builder_from_config`]
    ///
    /// # Errors
    ///
    /// See [`Client::builder_from_config`] and [`ClientBuilder::build`].
    pub async fn from_config(shared: &SharedConfig, overrides: &Overrides) -> Result<Self, Error> {
        Self::builder_from_config(shared, overrides).await?.build()
    }

    /// A client set up by this process's environment and shared files, as the AWS SDKs'
    /// default configuration is ([`SharedConfig::from_process`])
    ///
    /// # Errors
    ///
    /// See [`from_config`](Self::from_config).
    pub async fn from_env() -> Result<Self, Error> {
        Self::from_config(&SharedConfig::from_process(), &Overrides::new()).await
    }

    /// A builder with the settings `shared` and `overrides` resolve to, in the SDKs'
    /// precedence: region and endpoint (custom, FIPS, dual-stack), `max_attempts`,
    /// `retry_mode` (`adaptive` adds the SDKs' client-side rate limiter, see
    /// [`RateLimiter`]), `ca_bundle`, the app id (`sdk_ua_app_id`, see
    /// [`ClientBuilder::app_id`]), the proxy variables of `shared`'s environment, and
    /// credentials from the default chain (environment, profile, web identity, container,
    /// IMDS) fetched over this crate's connections and cached until five minutes before they
    /// expire
    ///
    /// With neither a region nor an endpoint URL configured, the region is the EC2
    /// instance's, from its metadata (IMDSv2, unless `AWS_EC2_METADATA_DISABLED` is true), as
    /// the AWS SDK for Rust has it: that lookup is why this is `async` (off EC2 it gives up
    /// after [`LOCAL_CONNECT_TIMEOUT`](invoke_config::LOCAL_CONNECT_TIMEOUT) per attempt).
    /// The chain reads files (web identity tokens, the SSO cache) with [`StdFs`] unless
    /// [`ClientBuilder::file_reader`] says otherwise.
    ///
    /// # Errors
    ///
    /// [`Error::Settings`] when a setting is invalid, [`Error::Endpoint`] when no endpoint
    /// can be resolved (no region configured nor found), [`Error::CaBundle`] for a CA bundle
    /// that the metadata lookup cannot use, [`Error::Config`] for a metadata lookup outside
    /// a tokio runtime.
    pub async fn builder_from_config(
        shared: &SharedConfig,
        overrides: &Overrides,
    ) -> Result<ClientBuilder, Error> {
        let config = shared.resolve(overrides)?;
        let bundles: Vec<PathBuf> = config.ca_bundle.iter().map(|b| b.value.clone()).collect();
        let mut endpoint_config = config.endpoint_config();
        if endpoint_config.region.is_none() && endpoint_config.custom.is_none() {
            on_tokio()?;
            endpoint_config.region = imds_region(shared, &bundles).await?;
        }
        let endpoint = resolve_endpoint(&endpoint_config)?;
        if endpoint.region_defaulted() {
            tracing::warn!(
                region = endpoint.region(),
                "no region configured: signing for the stand-in region"
            );
        }
        let mut builder = Self::builder(endpoint)
            .retry(RetryConfig::default().with_max_attempts(config.max_attempts.value))
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

    /// Invokes a function and returns once the response head arrived
    ///
    /// Retries (with backoff, within the attempts and the retry quota) the failures that
    /// happen before a successful response head: never once the function started
    /// streaming. The events follow through the returned [`Response`].
    ///
    /// Dropping the future cancels the invocation; a connection it was using is closed.
    ///
    /// # Errors
    ///
    /// Invalid parameters, credentials, the service's error (read from the error body),
    /// or the transport's, after the last attempt; [`Error::Config`] outside a tokio
    /// runtime (where tokio's IO and timers would panic).
    pub async fn invoke(&self, params: &InvokeParams) -> Result<Response, Error> {
        /// No setting changed, in a static: a temporary would be a field of this future
        static CLIENT_SETTINGS: InvokeOptions = InvokeOptions::new();
        self.invoke_with(params, &CLIENT_SETTINGS).await
    }

    /// [`invoke`](Self::invoke) with some of the client's settings changed for this call:
    /// its retry policy or attempts, its overall, head, idle and connect timeouts, its
    /// credentials
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use invoke_proto::InvokeParams;
    /// use invoke_tokio::{Client, InvokeOptions};
    ///
    /// # async fn run() -> Result<(), invoke_tokio::Error> {
    /// let client = Client::from_env().await?;
    /// // a function that must not run twice, within a minute
    /// let once = InvokeOptions::new().max_attempts(1).timeout(Duration::from_secs(60));
    /// let response = client
    ///     .invoke_with(&InvokeParams::new("charge-card", "{}"), &once)
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`invoke`](Self::invoke).
    pub async fn invoke_with(
        &self,
        params: &InvokeParams,
        options: &InvokeOptions,
    ) -> Result<Response, Error> {
        on_tokio()?;
        let inner = &self.inner;
        // in a block: the request is moved into the driver, but a local of this function
        // would keep its slot in the invocation's future while the call runs
        let call = {
            let request = build_request(params, &inner.invoker.endpoint)?;
            // tokio's clock, as the call's timers
            let now = tokio::time::Instant::now().into_std();
            let started = inner.invoker.start(request, options, now);
            let span = invoke_span(params);
            Box::new(Call::new(Arc::clone(inner), started, span))
        };
        call.start().await
    }

    /// The credentials this client signs with now (from its cache, or loaded), `None` when
    /// it does not sign; waited for at most the overall timeout, as an invocation would
    ///
    /// # Errors
    ///
    /// [`Error::Credentials`] when the source has none, or gave none within the overall
    /// timeout; [`Error::Config`] outside a tokio runtime.
    pub async fn credentials(&self) -> Result<Option<ProvidedCredentials>, Error> {
        on_tokio()?;
        let limit = self.inner.invoker.timeouts.overall;
        let got = tokio::time::timeout(limit, self.inner.credentials.get())
            .await
            .map_err(|_| {
                Error::Credentials(
                    format!("no credentials within the overall timeout ({limit:?})").into(),
                )
            })?;
        let got = got.map_err(|e| Error::Credentials(Box::new(e)))?;
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
async fn imds_region(shared: &SharedConfig, bundles: &[PathBuf]) -> Result<Option<String>, Error> {
    let mut lookup = ImdsRegion::new(shared);
    let mut connector = None;
    loop {
        match lookup.next_step() {
            RegionStep::Send(request) => {
                let connector = match connector {
                    Some(ref c) => c,
                    None => connector.insert(Connector::for_providers(
                        tls_config(bundles)?,
                        CREDENTIALS_TIMEOUT,
                        ProxyEnv::from_env(shared.env()),
                    )),
                };
                match crate::credentials::send(connector, request, CREDENTIALS_TIMEOUT).await {
                    Ok((status, headers, body)) => lookup.handle_response(status, headers, body),
                    Err(e) => lookup.handle_transport_error(&e),
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
        /// Asks `provider` for credentials (on tokio's blocking pool, since providers
        /// block) and keeps them until five minutes before they expire; concurrent
        /// invocations wait for one load
        credentials_provider;
        /// Credentials from the default chain over `shared` (environment, profile, web
        /// identity, container, IMDS): requests (IMDS, container, STS, SSO) sent over this
        /// crate's connections (instance metadata, container endpoints and loopback directly;
        /// STS and SSO through the proxy the client's proxy variables name for them),
        /// `credential_process` run on tokio's blocking pool; cached until five minutes
        /// before they expire
        default_credentials;
    }

    /// The client
    ///
    /// # Errors
    ///
    /// [`Error::Config`] without credentials or with a proxy URL that is not valid;
    /// [`Error::CaBundle`] for a CA bundle that cannot be used.
    pub fn build(self) -> Result<Client, Error> {
        let address = self.settings.address();
        let mut s = self.settings;
        let (choice, env) = s.take_choices()?;
        let invoker = Invoker::new(&s);
        let proxy_url = env.proxy_for(&s.endpoint).map(str::to_owned);
        let proxy = proxy_url.as_deref().map(Proxy::parse).transpose()?;
        let proxy_authorization = match (&proxy, s.endpoint.scheme()) {
            (Some(p), Scheme::Http) => p.authorization.clone(),
            _ => None,
        };
        let tls = tls_config(&s.ca_bundles)?;
        // an app id is checked by `take_choices`: the value is a list of tokens
        let user_agent = HeaderValue::try_from(s.user_agent(PRODUCT))
            .map_err(|e| Error::Config(format!("User-Agent: {e}")))?;
        let t = s.timeouts;
        let target = s
            .endpoint
            .uri_for("/")
            .map_err(|e| Error::Config(e.to_string()))?;
        let absolute_form = proxy.is_some() && s.endpoint.scheme() == Scheme::Http;
        let pool = Pool::new(
            Connector::new(Arc::clone(&tls), proxy, t.connect).with_user_agent(user_agent.clone()),
            target,
            absolute_form,
            s.max_idle_connections,
        );
        let credentials = match choice {
            CredentialsChoice::Static(c) => Source::Static(Arc::new(ProvidedCredentials::given(c))),
            CredentialsChoice::Unsigned => Source::Unsigned,
            CredentialsChoice::Provider(p) => {
                Source::Cached(Arc::new(AsyncCache::from_provider(p)))
            }
            CredentialsChoice::DefaultChain(shared) => {
                Source::Cached(Arc::new(AsyncCache::from_chain(
                    *shared,
                    s.file_reader.unwrap_or_else(|| Arc::new(StdFs)),
                    Connector::for_providers(Arc::clone(&tls), t.connect, env)
                        .with_user_agent(user_agent),
                    s.credentials_timeout,
                )))
            }
        };
        Ok(Client {
            inner: Arc::new(Inner {
                pool: Arc::new(pool),
                address,
                invoker,
                credentials,
                proxy: proxy_url,
                proxy_authorization,
            }),
        })
    }
}

/// An error, where tokio's IO and timers would panic, for a call made outside a tokio
/// runtime (polled by another executor)
fn on_tokio() -> Result<(), Error> {
    match current_runtime() {
        Some(_) => Ok(()),
        None => Err(Error::Config(
            "invoke-tokio runs on a tokio runtime (with IO and time enabled): this call was \
             made outside one"
                .to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use invoke_proto::EndpointConfig;

    use super::*;

    fn endpoint() -> Endpoint {
        resolve_endpoint(&EndpointConfig::default().with_custom("http://127.0.0.1:9")).unwrap()
    }

    #[test]
    fn debug_shows_no_secret() {
        let builder = Client::builder(endpoint()).credentials(Credentials::new(
            "AKID",
            "s3cret-key",
            Some("t0ken".into()),
        ));
        let shown = format!("{builder:?}");
        assert!(shown.contains("credentials: \"static\""), "{shown}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("t0ken"),
            "{shown}"
        );
        let client = builder
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
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert_eq!(client.proxy(), Some("http://user:pr0xy-pass@proxy:1"));
        let auth = client.inner.proxy_authorization.as_ref().unwrap();
        assert!(auth.is_sensitive());
        assert_eq!(auth, "Basic dXNlcjpwcjB4eS1wYXNz");
    }

    #[test]
    fn build_needs_credentials_a_valid_proxy_and_a_readable_bundle() {
        let none = Client::builder(endpoint())
            .proxy_env(ProxyEnv::none())
            .build();
        assert!(matches!(none, Err(Error::Config(_))));
        let bad = Client::builder(endpoint())
            .credentials(Credentials::new("AKID", "s", None))
            .proxy_env(ProxyEnv::from_vars([(
                "http_proxy",
                "gopher://user:pw@x:1",
            )]))
            .build()
            .unwrap_err();
        assert!(!bad.to_string().contains("pw"), "{bad}");
        let missing = Client::builder(endpoint())
            .credentials(Credentials::new("AKID", "s", None))
            .proxy_env(ProxyEnv::none())
            .ca_bundle("/nonexistent/ca.pem")
            .build()
            .unwrap_err();
        assert!(
            missing.to_string().contains("/nonexistent/ca.pem"),
            "{missing}"
        );
    }

    #[tokio::test]
    async fn credentials_shows_what_the_client_signs_with() {
        let client = Client::builder(endpoint())
            .credentials(Credentials::new("AKID", "s3cret-key", Some("t0ken".into())))
            .proxy_env(ProxyEnv::none())
            .build()
            .unwrap();
        let shown = client.credentials().await.unwrap().unwrap();
        assert_eq!(shown.provider, "static");
        assert_eq!(shown.credentials.access_key_id(), "AKID");
        assert_eq!(shown.credentials.session_token(), Some("t0ken"));
        let unsigned = Client::builder(endpoint())
            .no_signing()
            .proxy_env(ProxyEnv::none())
            .build()
            .unwrap();
        assert!(unsigned.credentials().await.unwrap().is_none());
        let failing = Client::builder(endpoint())
            .credentials_provider(|| {
                Err(invoke_config::CredentialsError::Usage(
                    "nothing here".to_owned(),
                ))
            })
            .proxy_env(ProxyEnv::none())
            .build()
            .unwrap();
        let error = failing.credentials().await.unwrap_err();
        assert!(matches!(error, Error::Credentials(_)), "{error:?}");
    }

    /// Polled by another executor, an invocation (and the credentials lookup) is a typed
    /// error, not tokio's panic
    #[test]
    fn outside_a_tokio_runtime_calls_are_errors_not_panics() {
        use std::future::Future as _;
        let client = Client::builder(endpoint())
            .credentials(Credentials::new("AKID", "secret", None))
            .proxy_env(ProxyEnv::none())
            .build()
            .unwrap();
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let params = InvokeParams::new("f", "{}");
        let invoke = std::pin::pin!(client.invoke(&params));
        let std::task::Poll::Ready(Err(Error::Config(why))) = invoke.poll(&mut cx) else {
            panic!("not a configuration error");
        };
        assert!(why.contains("tokio runtime"), "{why}");
        let credentials = std::pin::pin!(client.credentials());
        assert!(matches!(
            credentials.poll(&mut cx),
            std::task::Poll::Ready(Err(Error::Config(_)))
        ));
    }
}
