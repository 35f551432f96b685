//! What the transports' client builders collect: one definition of the settings, their
//! defaults and their setters, so that every transport takes the same ones

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use invoke_proto::{
    Credentials, Endpoint, Limits, RateLimiter, RetryConfig, RetryQuota, SigningScope,
};

use crate::cache::ProvideCredentials;
use crate::client_error::ClientError;
use crate::config::{APP_ID_EXPECTED, SharedConfig, valid_app_id};
use crate::fs::FileReader;
use crate::proxy::ProxyEnv;
use crate::timeouts::{MAX_TIMEOUT, Timeouts};

/// The default time for each HTTP exchange of a credentials provider (IMDS, container, STS,
/// SSO), per attempt: 5 seconds (connecting to instance metadata, container endpoints and
/// loopback: at most [`LOCAL_CONNECT_TIMEOUT`](crate::LOCAL_CONNECT_TIMEOUT))
pub const CREDENTIALS_TIMEOUT: Duration = Duration::from_secs(5);

/// Idle connections a client keeps by default
pub const MAX_IDLE_CONNECTIONS: usize = 32;

/// Where a client's credentials come from, as its builder was told
#[derive(Clone)]
pub enum CredentialsChoice {
    /// These credentials for every attempt
    Static(Credentials),
    /// This source (a transport may cache what it gives)
    Provider(Arc<dyn ProvideCredentials>),
    /// The default chain over this configuration, its exchanges over the transport
    DefaultChain(Box<SharedConfig>),
    /// Requests go without a signature
    Unsigned,
}

impl CredentialsChoice {
    /// What kind of source this is, as `Debug` shows it (never a secret)
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Static(_) => crate::credentials::GIVEN,
            Self::Provider(_) => "provider",
            Self::DefaultChain(_) => "default chain",
            Self::Unsigned => "unsigned",
        }
    }
}

/// The settings of a transport's `ClientBuilder`, with their defaults
///
/// The transports' builders hold one and get their common setters from
/// [`client_builder_setters!`](crate::client_builder_setters); their `build` reads it.
///
/// ```
/// use invoke_config::{ClientSettings, CREDENTIALS_TIMEOUT};
/// use invoke_proto::{resolve_endpoint, EndpointConfig};
///
/// let endpoint = resolve_endpoint(&EndpointConfig::default().with_region("eu-west-1"))?;
/// let settings = ClientSettings::new(endpoint);
/// assert_eq!(settings.scope.region, "eu-west-1");
/// assert_eq!(settings.credentials_timeout, CREDENTIALS_TIMEOUT);
/// assert!(settings.credentials.is_none(), "a builder must be told where keys come from");
/// assert_eq!(settings.address(), "lambda.eu-west-1.amazonaws.com:443");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ClientSettings {
    /// Where requests go
    pub endpoint: Endpoint,
    /// What requests are signed for (default: the endpoint's region, `lambda`)
    pub scope: SigningScope,
    /// Where the credentials come from; `None` until a setter chose (building then fails)
    pub credentials: Option<CredentialsChoice>,
    /// The retry policy (default: the SDKs' standard mode, 3 attempts)
    pub retry: RetryConfig,
    /// A retry quota shared with other clients (default: a fresh one per client)
    pub quota: Option<Arc<RetryQuota>>,
    /// The client-side rate limiter of the `adaptive` retry mode, if any (default: none,
    /// as in the `standard` mode)
    pub rate_limiter: Option<Arc<RateLimiter>>,
    /// Connect, head, idle and overall timeouts
    pub timeouts: Timeouts,
    /// Event-stream decoding limits
    pub limits: Limits,
    /// The proxy variables to honour (default: the process's, read when the client is built)
    pub proxy_env: Option<ProxyEnv>,
    /// PEM files of CA certificates trusted besides the system's store
    pub ca_bundles: Vec<PathBuf>,
    /// Where the default chain reads files (default: the real file system)
    pub file_reader: Option<Arc<dyn FileReader>>,
    /// The time for each HTTP exchange of a credentials provider, per attempt
    pub credentials_timeout: Duration,
    /// Idle connections kept in the pool
    pub max_idle_connections: usize,
    /// The application's name, sent in the `User-Agent` as `app/<id>` (default: none)
    pub app_id: Option<String>,
    /// Whether invocations send the trace of the Lambda function the client runs in (see
    /// [`Invoker::lambda_trace`](crate::Invoker::lambda_trace)); `None`: when this process's
    /// `AWS_LAMBDA_FUNCTION_NAME` is set as the client is built
    pub lambda_trace: Option<bool>,
}

impl ClientSettings {
    /// The defaults for a client of `endpoint`, signing for the endpoint's region
    pub fn new(endpoint: Endpoint) -> Self {
        Self {
            scope: SigningScope::lambda(endpoint.region()),
            endpoint,
            credentials: None,
            retry: RetryConfig::default(),
            quota: None,
            rate_limiter: None,
            timeouts: Timeouts::default(),
            limits: Limits::default(),
            proxy_env: None,
            ca_bundles: Vec::new(),
            file_reader: None,
            credentials_timeout: CREDENTIALS_TIMEOUT,
            max_idle_connections: MAX_IDLE_CONNECTIONS,
            app_id: None,
            lambda_trace: None,
        }
    }

    /// Takes out what building a client consumes first: the credentials choice and the
    /// proxy environment (the process's unless one was given); caps every timeout at
    /// [`MAX_TIMEOUT`] (a longer one means no limit in practice, and must not overflow a
    /// deadline)
    ///
    /// # Errors
    ///
    /// [`ClientError::Config`] when no credentials (nor unsigned requests) were chosen, or
    /// for an app id that is not [valid](crate::config::valid_app_id).
    pub fn take_choices(&mut self) -> Result<(CredentialsChoice, ProxyEnv), ClientError> {
        if let Some(id) = self.app_id.as_deref().filter(|id| !valid_app_id(id)) {
            return Err(ClientError::Config(format!(
                "invalid app id `{id}`: expected {APP_ID_EXPECTED}"
            )));
        }
        let choice = self.credentials.take().ok_or_else(|| {
            ClientError::Config("no credentials given (nor unsigned requests asked for)".to_owned())
        })?;
        let env = self.proxy_env.take().unwrap_or_else(ProxyEnv::from_process);
        self.timeouts = self.timeouts.capped();
        self.credentials_timeout = self.credentials_timeout.min(MAX_TIMEOUT);
        Ok((choice, env))
    }

    /// The `User-Agent` of this client's requests: `product`, then `app/<id>` when an app id
    /// is set
    ///
    /// ```
    /// # use invoke_config::ClientSettings;
    /// # use invoke_proto::{resolve_endpoint, EndpointConfig};
    /// # let endpoint = resolve_endpoint(&EndpointConfig::default().with_region("eu-west-1"))?;
    /// let mut settings = ClientSettings::new(endpoint);
    /// assert_eq!(settings.user_agent("invoke-tokio/0.1.0"), "invoke-tokio/0.1.0");
    /// settings.app_id = Some("billing".into());
    /// assert_eq!(settings.user_agent("invoke-tokio/0.1.0"), "invoke-tokio/0.1.0 app/billing");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn user_agent(&self, product: &str) -> String {
        match &self.app_id {
            Some(id) => format!("{product} app/{id}"),
            None => product.to_owned(),
        }
    }

    /// `host:port` of the endpoint, the port always written (the address errors name)
    pub fn address(&self) -> String {
        let authority = self.endpoint.authority();
        if authority.contains(':') && !authority.ends_with(']') {
            authority
        } else {
            format!("{authority}:{}", self.endpoint.port_or_default())
        }
    }
}

impl fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("endpoint", &self.endpoint.authority())
            .field("scope", &self.scope)
            .field(
                "credentials",
                &self
                    .credentials
                    .as_ref()
                    .map_or("unset", CredentialsChoice::kind),
            )
            .field("adaptive", &self.rate_limiter.is_some())
            .field("ca_bundles", &self.ca_bundles)
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

/// The setters every transport's `ClientBuilder` shares, for an `impl` block of a builder
/// with a `settings: ClientSettings` field
///
/// Each sets its field of [`ClientSettings`] and returns the builder. A transport gives the
/// documentation of `credentials_provider` and `default_credentials` (how it asks a
/// provider, where the chain's requests go) and writes `build` itself.
#[macro_export]
macro_rules! client_builder_setters {
    (
        $(#[$provider_doc:meta])* credentials_provider;
        $(#[$chain_doc:meta])* default_credentials;
    ) => {
        $(#[$provider_doc])*
        pub fn credentials_provider(
            mut self,
            provider: impl $crate::ProvideCredentials + 'static,
        ) -> Self {
            self.settings.credentials = Some($crate::CredentialsChoice::Provider(
                ::std::sync::Arc::new(provider),
            ));
            self
        }

        $(#[$chain_doc])*
        pub fn default_credentials(mut self, shared: $crate::SharedConfig) -> Self {
            self.settings.credentials = Some($crate::CredentialsChoice::DefaultChain(
                ::std::boxed::Box::new(shared),
            ));
            self
        }

        /// Signs every attempt with these credentials
        pub fn credentials(mut self, credentials: $crate::__proto::Credentials) -> Self {
            self.settings.credentials = Some($crate::CredentialsChoice::Static(credentials));
            self
        }

        /// Sends requests without a signature (for endpoints that do not check one, such as
        /// `lambda-stream serve --no-auth`)
        pub fn no_signing(mut self) -> Self {
            self.settings.credentials = Some($crate::CredentialsChoice::Unsigned);
            self
        }

        /// Where the default credentials chain reads files: web identity tokens, the SSO
        /// token cache (default: `invoke_config::StdFs`, the real file system)
        pub fn file_reader(mut self, fs: ::std::sync::Arc<dyn $crate::FileReader>) -> Self {
            self.settings.file_reader = Some(fs);
            self
        }

        /// The time for each HTTP exchange of a credentials provider (IMDS, container,
        /// STS, SSO), per attempt (default `invoke_config::CREDENTIALS_TIMEOUT`, 5 s)
        pub fn credentials_timeout(mut self, timeout: ::std::time::Duration) -> Self {
            self.settings.credentials_timeout = timeout;
            self
        }

        /// Signs for this region instead of the endpoint's
        pub fn region(mut self, region: impl Into<String>) -> Self {
            self.settings.scope = $crate::__proto::SigningScope::lambda(region);
            self
        }

        /// The retry policy (default: the SDKs' standard mode, 3 attempts)
        pub fn retry(mut self, retry: $crate::__proto::RetryConfig) -> Self {
            self.settings.retry = retry;
            self
        }

        /// Shares this retry quota (default: a fresh one of 500 tokens per client)
        pub fn retry_quota(mut self, quota: ::std::sync::Arc<$crate::__proto::RetryQuota>) -> Self {
            self.settings.quota = Some(quota);
            self
        }

        /// The AWS SDKs' `adaptive` retry mode: the standard retries, paced by a fresh
        /// client-side rate limiter (`invoke_proto::RateLimiter`) that a throttling error
        /// turns on (`retry_mode = adaptive` in `from_config`)
        pub fn adaptive_retry(mut self) -> Self {
            self.settings.rate_limiter = Some(::std::sync::Arc::new(
                $crate::__proto::RateLimiter::new(::std::time::Instant::now()),
            ));
            self
        }

        /// The `adaptive` retry mode with this rate limiter, shared with other clients
        pub fn rate_limiter(
            mut self,
            limiter: ::std::sync::Arc<$crate::__proto::RateLimiter>,
        ) -> Self {
            self.settings.rate_limiter = Some(limiter);
            self
        }

        /// The timeouts (default: `Timeouts::default()`: connect 10 s; head, idle and
        /// overall 15 minutes, Lambda's longest run)
        pub fn timeouts(mut self, timeouts: $crate::Timeouts) -> Self {
            self.settings.timeouts = timeouts;
            self
        }

        /// Event-stream decoding limits (default: 24 MiB + 128 KiB messages, see `Limits`)
        pub fn limits(mut self, limits: $crate::__proto::Limits) -> Self {
            self.settings.limits = limits;
            self
        }

        /// The proxy environment to honour (default: `ProxyEnv::from_process()` when the
        /// client is built)
        pub fn proxy_env(mut self, env: $crate::ProxyEnv) -> Self {
            self.settings.proxy_env = Some(env);
            self
        }

        /// Also trusts the CA certificates of this PEM file (`AWS_CA_BUNDLE`, `ca_bundle`),
        /// besides the system's trust store; may be called several times
        pub fn ca_bundle(mut self, path: impl Into<::std::path::PathBuf>) -> Self {
            self.settings.ca_bundles.push(path.into());
            self
        }

        /// Idle connections kept in the pool (default 32)
        pub fn max_idle_connections(mut self, n: usize) -> Self {
            self.settings.max_idle_connections = n;
            self
        }

        /// Whether each invocation sends the trace of the Lambda function this client runs in
        /// (`_X_AMZN_TRACE_ID` at the time of the call) as `X-Amzn-Trace-Id`, as the AWS
        /// SDKs do, so that X-Ray follows the call and Lambda sees recursion (default: on
        /// where `AWS_LAMBDA_FUNCTION_NAME` is set, in a Lambda function); a call's
        /// `InvokeOptions::trace_id` wins over it
        pub fn lambda_trace(mut self, on: bool) -> Self {
            self.settings.lambda_trace = Some(on);
            self
        }

        /// Names the application in the `User-Agent` of every request, as `app/<id>` after
        /// this crate's name (`AWS_SDK_UA_APP_ID`, `sdk_ua_app_id`): letters, digits and
        /// ``!#$%&'*+-.^_`|~``, which `build` checks; the AWS SDKs advise at most 50
        /// characters
        pub fn app_id(mut self, id: impl Into<String>) -> Self {
            self.settings.app_id = Some(id.into());
            self
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use invoke_proto::{EndpointConfig, resolve_endpoint};

    fn settings(url: &str) -> ClientSettings {
        let config = EndpointConfig::default()
            .with_region("eu-west-1")
            .with_custom(url);
        ClientSettings::new(resolve_endpoint(&config).unwrap())
    }

    #[test]
    fn the_address_always_has_a_port() {
        for (url, address) in [
            ("http://127.0.0.1:9001", "127.0.0.1:9001"),
            ("http://127.0.0.1", "127.0.0.1:80"),
            ("https://lambda.example.com", "lambda.example.com:443"),
            ("http://[::1]", "[::1]:80"),
            ("http://[::1]:9001", "[::1]:9001"),
        ] {
            assert_eq!(settings(url).address(), address, "{url}");
        }
    }

    #[test]
    fn an_app_id_that_no_user_agent_can_hold_is_refused() {
        for (id, ok) in [
            ("billing-batch_2.1", true),
            ("a b", false),
            ("a/b", false),
            ("", false),
        ] {
            let mut s = settings("http://127.0.0.1:9001");
            s.credentials = Some(CredentialsChoice::Unsigned);
            s.app_id = Some(id.to_owned());
            match s.take_choices() {
                Ok(_) => assert!(ok, "{id:?} taken"),
                Err(e) => {
                    assert!(!ok, "{id:?} refused: {e}");
                    assert!(e.to_string().contains(&format!("`{id}`")), "{e}");
                    // refused before anything was taken
                    assert!(s.credentials.is_some());
                }
            }
        }
    }

    #[test]
    fn debug_names_the_kind_of_credentials_only() {
        let mut s = settings("http://127.0.0.1:9001");
        assert!(format!("{s:?}").contains("credentials: \"unset\""));
        let creds = Credentials::new("AKIDSHOWN", "SECRETHIDDEN", Some("TOKENHIDDEN".into()));
        for (choice, kind) in [
            (CredentialsChoice::Static(creds), "static"),
            (CredentialsChoice::Unsigned, "unsigned"),
            (
                CredentialsChoice::DefaultChain(Box::new(crate::SharedConfig::load(
                    crate::Env::new(),
                    &crate::MemFs::new(),
                ))),
                "default chain",
            ),
        ] {
            assert_eq!(choice.kind(), kind);
            s.credentials = Some(choice);
            let shown = format!("{s:?}");
            assert!(
                shown.starts_with("ClientBuilder { endpoint: \"127.0.0.1:9001\"")
                    && shown.contains(&format!("credentials: \"{kind}\""))
                    && shown.ends_with(", .. }"),
                "{shown}"
            );
            assert!(!shown.contains("HIDDEN"), "{shown}");
        }
    }
}
