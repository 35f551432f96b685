//! Region, endpoint, FIPS / dual-stack, retry and CA bundle settings in the SDKs' precedence

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use invoke_proto::EndpointConfig;

use crate::chain::ProviderKind;
use crate::env::Env;
use crate::fs::FileReader;
use crate::location::{FileLocations, Platform};
use crate::profile::{FileKind, ProfileParseError, ProfileSet, Section};

/// A shared file that could not be used
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileFileError {
    /// The file exists but could not be read
    Read {
        /// The file
        path: String,
        /// The IO error
        message: String,
    },
    /// The file is not a valid shared file
    Parse(ProfileParseError),
}

impl fmt::Display for ProfileFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, message } => {
                write!(f, "could not read profile file `{path}`: {message}")
            }
            Self::Parse(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for ProfileFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Read { .. } => None,
            Self::Parse(e) => e.source(),
        }
    }
}

impl From<ProfileParseError> for ProfileFileError {
    fn from(e: ProfileParseError) -> Self {
        Self::Parse(e)
    }
}

/// What happened to one shared file when loading
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileStatus {
    /// Read (the number of bytes)
    Read(usize),
    /// Not there (which is fine)
    Missing,
    /// Invalid (the error is in [`SharedConfig::profiles`])
    Failed,
    /// Unreadable (a read error other than its absence, over 1 MiB, or not UTF-8): taken
    /// as an empty file, as the AWS SDKs do, so the rest of the configuration and the
    /// credential providers after the profile still work; why
    Skipped(String),
}

/// The environment snapshot and both shared files, read once, with the active profile
///
/// Everything else resolves from this: [`SharedConfig::resolve`] for the client settings,
/// [`crate::CredentialsChain`] for credentials.
///
/// ```
/// use invoke_config::{Env, MemFs, Overrides, SharedConfig};
///
/// let env = Env::from_pairs([("HOME", "/home/me"), ("AWS_PROFILE", "local")]);
/// let fs = MemFs::new().with(
///     "/home/me/.aws/config",
///     "[profile local]\nregion = us-west-2\nservices = emu\n\
///      [services emu]\nlambda =\n  endpoint_url = http://127.0.0.1:9001\n",
/// );
/// let shared = SharedConfig::load(env, &fs);
/// let config = shared.resolve(&Overrides::default())?;
/// assert_eq!(config.region.as_ref().unwrap().value, "us-west-2");
/// assert_eq!(config.endpoint_url.as_ref().unwrap().value, "http://127.0.0.1:9001");
/// # Ok::<(), invoke_config::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct SharedConfig {
    pub(crate) env: Env,
    pub(crate) platform: Platform,
    pub(crate) locations: FileLocations,
    pub(crate) profile_name: String,
    pub(crate) profiles: Result<ProfileSet, ProfileFileError>,
    pub(crate) files: Vec<(PathBuf, FileStatus)>,
    /// The providers [`crate::CredentialsChain::new`] asks, in order
    pub(crate) credential_providers: Vec<ProviderKind>,
    /// The region the client resolved ([`with_client_region`](Self::with_client_region))
    pub(crate) client_region: Option<String>,
}

/// Most attempts per request a credentials provider makes (instance metadata, container
/// endpoints, STS, SSO), whatever `max_attempts` says: the invocation's retries are bounded
/// by the retry quota as well, the providers' only by this, so `AWS_MAX_ATTEMPTS=100000` must
/// not turn a provider that does not answer into a wait without end (the Rust SDK's instance
/// metadata client makes 4)
pub(crate) const MAX_PROVIDER_ATTEMPTS: u32 = 5;

impl SharedConfig {
    /// The process environment and the real shared files: [`Env::from_process`] and
    /// [`crate::StdFs`] (the edge of a program; tests use [`SharedConfig::load`])
    pub fn from_process() -> Self {
        Self::load(Env::from_process(), &crate::StdFs)
    }

    /// Reads the shared files the environment points at, for this platform
    pub fn load(env: Env, fs: &dyn FileReader) -> Self {
        Self::load_with(env, fs, Platform::current(), None)
    }

    /// [`SharedConfig::load`] with the platform's path rules and an explicit profile name
    /// (which wins over `AWS_PROFILE`)
    pub fn load_with(
        env: Env,
        fs: &dyn FileReader,
        platform: Platform,
        profile: Option<&str>,
    ) -> Self {
        let locations = FileLocations::from_env(&env, platform);
        let mut files = Vec::new();
        let mut texts = Vec::new();
        for (kind, path) in [
            (FileKind::Config, &locations.config),
            (FileKind::Credentials, &locations.credentials),
        ] {
            let Some(path) = path else { continue };
            match read_text(fs, path) {
                Ok(Some(text)) => {
                    files.push((path.clone(), FileStatus::Read(text.len())));
                    texts.push((kind, path.display().to_string(), text));
                }
                Ok(None) => files.push((path.clone(), FileStatus::Missing)),
                Err(e) => files.push((path.clone(), FileStatus::Skipped(e.to_string()))),
            }
        }
        let profiles = {
            let borrowed: Vec<_> = texts
                .iter()
                .map(|(k, p, t)| (*k, p.as_str(), t.as_str()))
                .collect();
            let parsed = ProfileSet::parse(&borrowed).map_err(ProfileFileError::from);
            if parsed.is_err() {
                for f in &mut files {
                    if matches!(f.1, FileStatus::Read(_)) {
                        f.1 = FileStatus::Failed;
                    }
                }
            }
            parsed
        };
        let profile_name = profile.map_or_else(|| locations.profile.clone(), str::to_owned);
        Self {
            env,
            platform,
            locations,
            profile_name,
            profiles,
            files,
            credential_providers: ProviderKind::DEFAULT_CHAIN.to_vec(),
            client_region: None,
        }
    }

    /// This configuration with the region the client resolved (an explicit region, else
    /// the environment's or the profile's, else the instance's from IMDS), which the
    /// credential providers' STS and SSO requests then use too, as the AWS SDKs' providers
    /// do; without it they read the environment and the profile themselves
    ///
    /// ```
    /// use invoke_config::{Env, MemFs, SharedConfig};
    ///
    /// let shared = SharedConfig::load(Env::from_pairs([("AWS_REGION", "us-west-2")]), &MemFs::new());
    /// assert_eq!(shared.client_region(), None);
    /// let shared = shared.with_client_region(Some("cn-north-1".to_owned()));
    /// assert_eq!(shared.client_region(), Some("cn-north-1"));
    /// ```
    #[must_use]
    pub fn with_client_region(mut self, region: Option<String>) -> Self {
        self.client_region = region;
        self
    }

    /// The region set by [`with_client_region`](Self::with_client_region)
    pub fn client_region(&self) -> Option<&str> {
        self.client_region.as_deref()
    }

    /// The credential providers the default chain asks, in order (default
    /// [`ProviderKind::DEFAULT_CHAIN`])
    pub fn credential_providers(&self) -> &[ProviderKind] {
        &self.credential_providers
    }

    /// This configuration with the default chain made of `providers`, in order
    ///
    /// The AWS CLI leaves out [`ProviderKind::Environment`] when `--profile` names the
    /// profile, so that keys exported for another account don't win over the profile asked
    /// for (`AWS_PROFILE` keeps it: the environment's keys still come first).
    ///
    /// ```
    /// use invoke_config::{Env, MemFs, ProviderKind, SharedConfig};
    ///
    /// let env = Env::from_pairs([("AWS_ACCESS_KEY_ID", "AKIDENV"), ("AWS_SECRET_ACCESS_KEY", "s")]);
    /// let shared = SharedConfig::load(env, &MemFs::new());
    /// assert_eq!(shared.credential_providers(), ProviderKind::DEFAULT_CHAIN);
    /// let explicit = shared.with_credential_providers(&ProviderKind::DEFAULT_CHAIN[1..]);
    /// assert_eq!(explicit.credential_providers()[0], ProviderKind::Profile);
    /// ```
    #[must_use]
    pub fn with_credential_providers(mut self, providers: &[ProviderKind]) -> Self {
        self.credential_providers = providers.to_vec();
        self
    }

    /// The environment snapshot
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// Whether the environment is a Lambda function's (`AWS_LAMBDA_FUNCTION_NAME` is set),
    /// where the clients send the function's trace with each invocation
    /// ([`Invoker::lambda_trace`](crate::Invoker::lambda_trace))
    pub fn in_lambda(&self) -> bool {
        self.env.get(LAMBDA_FUNCTION_NAME).is_some()
    }

    /// The file locations used
    pub fn locations(&self) -> &FileLocations {
        &self.locations
    }

    /// Each shared file looked at and what came of it
    pub fn files(&self) -> &[(PathBuf, FileStatus)] {
        &self.files
    }

    /// The name of the active profile
    pub fn profile_name(&self) -> &str {
        &self.profile_name
    }

    /// The parsed, merged shared files
    ///
    /// # Errors
    ///
    /// The first file that could not be read or parsed.
    pub fn profiles(&self) -> Result<&ProfileSet, &ProfileFileError> {
        self.profiles.as_ref()
    }

    /// The active profile, when the files define it (`None` also when they are invalid)
    pub fn active_profile(&self) -> Option<&Section> {
        self.profiles.as_ref().ok()?.profile(&self.profile_name)
    }

    /// The client settings with `overrides` on top, in the SDKs' precedence
    ///
    /// Explicit values win over environment variables, which win over the active profile.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for an invalid shared file (an unreadable one is taken as empty, see
    /// [`FileStatus::Skipped`]), or a value that is not valid for its setting
    /// (`AWS_USE_FIPS_ENDPOINT=maybe`, `max_attempts = 0`, ...).
    pub fn resolve(&self, overrides: &Overrides) -> Result<ClientConfig, ConfigError> {
        if let Err(e) = &self.profiles {
            return Err(ConfigError::File(e.clone()));
        }
        let region = match &overrides.region {
            Some(r) => Some(Sourced::new(r.clone(), Source::Explicit)),
            None => self.string_setting(&["AWS_REGION", "AWS_DEFAULT_REGION"], "region"),
        };
        let use_fips = self.bool_setting(
            overrides.use_fips,
            "AWS_USE_FIPS_ENDPOINT",
            "use_fips_endpoint",
        )?;
        let use_dual_stack = self.bool_setting(
            overrides.use_dual_stack,
            "AWS_USE_DUALSTACK_ENDPOINT",
            "use_dualstack_endpoint",
        )?;
        let endpoint_url = match &overrides.endpoint_url {
            Some(url) => Some(Sourced::new(url.clone(), Source::Explicit)),
            None => self.configured_endpoint("LAMBDA", "lambda")?,
        };
        let max_attempts = match overrides.max_attempts {
            Some(n) => Sourced::new(n, Source::Explicit),
            None => match self.string_setting(&["AWS_MAX_ATTEMPTS"], "max_attempts") {
                Some(s) => {
                    let n = s
                        .value
                        .parse::<u32>()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| ConfigError::invalid(&s, "a whole number of at least 1"))?;
                    Sourced::new(n, s.source)
                }
                None => Sourced::new(3, Source::Default),
            },
        };
        let retry_mode = match overrides.retry_mode {
            Some(m) => Sourced::new(m, Source::Explicit),
            None => match self.string_setting(&["AWS_RETRY_MODE"], "retry_mode") {
                Some(s) => {
                    let m = RetryMode::parse(&s.value).ok_or_else(|| {
                        ConfigError::invalid(&s, "`standard`, `legacy` or `adaptive`")
                    })?;
                    Sourced::new(m, s.source)
                }
                None => Sourced::new(RetryMode::Standard, Source::Default),
            },
        };
        let ca_bundle = match &overrides.ca_bundle {
            Some(p) => Some(Sourced::new(p.clone(), Source::Explicit)),
            None => self
                .string_setting(&["AWS_CA_BUNDLE"], "ca_bundle")
                .map(|s| Sourced::new(PathBuf::from(s.value), s.source)),
        };
        let app_id = match &overrides.app_id {
            Some(id) => Some(Sourced::new(id.clone(), Source::Explicit)),
            // the SDKs read the older hyphenated key when the current one is absent
            None => self
                .string_setting(&["AWS_SDK_UA_APP_ID"], "sdk_ua_app_id")
                .or_else(|| self.string_setting(&[], "sdk-ua-app-id")),
        };
        if let Some(id) = &app_id
            && !valid_app_id(&id.value)
        {
            return Err(ConfigError::invalid(id, APP_ID_EXPECTED));
        }
        Ok(ClientConfig {
            profile: self.profile_name.clone(),
            region,
            endpoint_url,
            use_fips,
            use_dual_stack,
            max_attempts,
            retry_mode,
            ca_bundle,
            app_id,
        })
    }

    /// Attempts per request for the credential providers: `AWS_MAX_ATTEMPTS` /
    /// `max_attempts` when valid, else 3; at most [`MAX_PROVIDER_ATTEMPTS`]
    pub(crate) fn attempts(&self) -> u32 {
        self.string_setting(&["AWS_MAX_ATTEMPTS"], "max_attempts")
            .and_then(|s| s.value.parse::<u32>().ok())
            .filter(|n| *n >= 1)
            .map_or(3, |n| n.min(MAX_PROVIDER_ATTEMPTS))
    }

    /// The first of `vars` that is set, else `key` of the active profile
    pub(crate) fn string_setting(
        &self,
        vars: &[&'static str],
        key: &'static str,
    ) -> Option<Sourced<String>> {
        for var in vars {
            if let Some(v) = self.env.get(var) {
                return Some(Sourced::new(v.to_owned(), Source::Env(var)));
            }
        }
        let v = self.active_profile()?.get_nonempty(key)?;
        Some(Sourced::new(v.trim().to_owned(), self.profile_source(key)))
    }

    fn profile_source(&self, key: &'static str) -> Source {
        Source::Profile {
            profile: self.profile_name.clone(),
            key,
        }
    }

    pub(crate) fn bool_setting(
        &self,
        explicit: Option<bool>,
        var: &'static str,
        key: &'static str,
    ) -> Result<Sourced<bool>, ConfigError> {
        if let Some(b) = explicit {
            return Ok(Sourced::new(b, Source::Explicit));
        }
        match self.string_setting(&[var], key) {
            Some(s) => {
                let b = parse_bool(&s.value)
                    .ok_or_else(|| ConfigError::invalid(&s, "`true` or `false`"))?;
                Ok(Sourced::new(b, s.source))
            }
            None => Ok(Sourced::new(false, Source::Default)),
        }
    }

    /// The endpoint configured for a service outside code: `AWS_ENDPOINT_URL_<ENV_ID>`,
    /// `AWS_ENDPOINT_URL`, the profile's `[services]` section, the profile's `endpoint_url`;
    /// none when `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` / `ignore_configured_endpoint_urls`
    /// is true
    pub(crate) fn configured_endpoint(
        &self,
        env_id: &str,
        services_key: &str,
    ) -> Result<Option<Sourced<String>>, ConfigError> {
        let ignore = self.bool_setting(
            None,
            "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
            "ignore_configured_endpoint_urls",
        )?;
        if ignore.value {
            return Ok(None);
        }
        let service_var = format!("AWS_ENDPOINT_URL_{env_id}");
        if let Some(v) = self.env.get(&service_var) {
            return Ok(Some(Sourced::new(
                v.to_owned(),
                Source::EnvService(service_var),
            )));
        }
        if let Some(v) = self.env.get("AWS_ENDPOINT_URL") {
            return Ok(Some(Sourced::new(
                v.to_owned(),
                Source::Env("AWS_ENDPOINT_URL"),
            )));
        }
        let Some(profile) = self.active_profile() else {
            return Ok(None);
        };
        if let Some(services) = profile.get_nonempty("services") {
            let section = self
                .profiles
                .as_ref()
                .ok()
                .and_then(|p| p.services(services.trim()));
            if let Some(url) =
                section.and_then(|s| s.sub_properties(services_key).remove("endpoint_url"))
                && !url.is_empty()
            {
                return Ok(Some(Sourced::new(
                    url,
                    Source::Services {
                        section: services.trim().to_owned(),
                        service: services_key.to_owned(),
                    },
                )));
            }
        }
        Ok(profile
            .get_nonempty("endpoint_url")
            .map(|v| Sourced::new(v.trim().to_owned(), self.profile_source("endpoint_url"))))
    }
}

/// `Ok(None)` for a missing file
fn read_text(fs: &dyn FileReader, path: &Path) -> Result<Option<String>, ProfileFileError> {
    let failed = |message: String| ProfileFileError::Read {
        path: path.display().to_string(),
        message,
    };
    match fs.read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| failed("not valid UTF-8".into())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(failed(e.to_string())),
    }
}

/// `true` / `false` in any case
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    if s.trim().eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.trim().eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Set in a Lambda function's environment: the function's name
pub(crate) const LAMBDA_FUNCTION_NAME: &str = "AWS_LAMBDA_FUNCTION_NAME";

/// What an app id may hold, as errors about one say it
pub(crate) const APP_ID_EXPECTED: &str = "letters, digits and !#$%&'*+-.^_`|~ (no spaces)";

/// Whether `id` can name the application in a `User-Agent` (`app/<id>`): not empty, and only
/// letters, digits and ``!#$%&'*+-.^_`|~``, what the AWS SDK for Rust's `AppName` allows (a
/// token of RFC 9110, so the header stays one product list)
///
/// ```
/// use invoke_config::config::valid_app_id;
///
/// assert!(valid_app_id("billing-batch_2.1"));
/// assert!(!valid_app_id("billing batch"));
/// assert!(!valid_app_id("app/1"));
/// assert!(!valid_app_id(""));
/// ```
pub fn valid_app_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Values given in code (or on a command line); each wins over environment and files
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Overrides {
    /// The region
    pub region: Option<String>,
    /// A custom endpoint URL; wins even over `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`
    pub endpoint_url: Option<String>,
    /// Use FIPS endpoints
    pub use_fips: Option<bool>,
    /// Use dual-stack endpoints
    pub use_dual_stack: Option<bool>,
    /// Attempts per request, at least 1
    pub max_attempts: Option<u32>,
    /// The retry mode
    pub retry_mode: Option<RetryMode>,
    /// A PEM bundle of CA certificates to trust
    pub ca_bundle: Option<PathBuf>,
    /// The application's name in the `User-Agent` (`app/<id>`)
    pub app_id: Option<String>,
}

impl Overrides {
    /// No overrides
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the region
    #[must_use]
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Sets the endpoint URL
    #[must_use]
    pub fn endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.endpoint_url = Some(url.into());
        self
    }

    /// Sets the FIPS switch
    #[must_use]
    pub fn use_fips(mut self, on: bool) -> Self {
        self.use_fips = Some(on);
        self
    }

    /// Sets the dual-stack switch
    #[must_use]
    pub fn use_dual_stack(mut self, on: bool) -> Self {
        self.use_dual_stack = Some(on);
        self
    }

    /// Sets the attempts per request
    #[must_use]
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }

    /// Sets the retry mode
    #[must_use]
    pub fn retry_mode(mut self, mode: RetryMode) -> Self {
        self.retry_mode = Some(mode);
        self
    }

    /// Sets the CA bundle
    #[must_use]
    pub fn ca_bundle(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_bundle = Some(path.into());
        self
    }

    /// Sets the application's name in the `User-Agent`
    #[must_use]
    pub fn app_id(mut self, id: impl Into<String>) -> Self {
        self.app_id = Some(id.into());
        self
    }
}

/// The SDKs' retry modes
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetryMode {
    /// `standard`: exponential back-off with jitter and a retry quota
    Standard,
    /// `legacy`: the older per-SDK behaviour
    Legacy,
    /// `adaptive`: standard plus client-side rate limiting
    Adaptive,
}

impl RetryMode {
    /// `standard`, `legacy` or `adaptive`, any case
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "standard" => Some(Self::Standard),
            "legacy" => Some(Self::Legacy),
            "adaptive" => Some(Self::Adaptive),
            _ => None,
        }
    }
}

/// Where a setting came from
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// Given in code
    Explicit,
    /// An environment variable
    Env(&'static str),
    /// A service-specific environment variable (`AWS_ENDPOINT_URL_LAMBDA`)
    EnvService(String),
    /// A key of the active profile
    Profile {
        /// The profile
        profile: String,
        /// The key
        key: &'static str,
    },
    /// `endpoint_url` under a service in a `[services NAME]` section
    Services {
        /// The section's name
        section: String,
        /// The service key (`lambda`, `sts`)
        service: String,
    },
    /// Nothing was configured: the SDKs' default
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Explicit => f.write_str("explicit setting"),
            Self::Env(var) => write!(f, "environment variable {var}"),
            Self::EnvService(var) => write!(f, "environment variable {var}"),
            Self::Profile { profile, key } => write!(f, "`{key}` in profile `{profile}`"),
            Self::Services { section, service } => {
                write!(f, "`{service}.endpoint_url` in [services {section}]")
            }
            Self::Default => f.write_str("default"),
        }
    }
}

/// A value and where it came from
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sourced<T> {
    /// The value
    pub value: T,
    /// Where it came from
    pub source: Source,
}

impl<T> Sourced<T> {
    /// `value` from `source`
    pub fn new(value: T, source: Source) -> Self {
        Self { value, source }
    }
}

/// The client settings, each with its source
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// The active profile's name
    pub profile: String,
    /// `AWS_REGION`, `AWS_DEFAULT_REGION`, profile `region`
    pub region: Option<Sourced<String>>,
    /// `AWS_ENDPOINT_URL_LAMBDA`, `AWS_ENDPOINT_URL`, `[services]` `lambda.endpoint_url`,
    /// profile `endpoint_url` (none of these when configured endpoints are ignored)
    pub endpoint_url: Option<Sourced<String>>,
    /// `AWS_USE_FIPS_ENDPOINT`, profile `use_fips_endpoint`; default false
    pub use_fips: Sourced<bool>,
    /// `AWS_USE_DUALSTACK_ENDPOINT`, profile `use_dualstack_endpoint`; default false
    pub use_dual_stack: Sourced<bool>,
    /// `AWS_MAX_ATTEMPTS`, profile `max_attempts`; default 3
    pub max_attempts: Sourced<u32>,
    /// `AWS_RETRY_MODE`, profile `retry_mode`; default standard
    pub retry_mode: Sourced<RetryMode>,
    /// `AWS_CA_BUNDLE`, profile `ca_bundle`
    pub ca_bundle: Option<Sourced<PathBuf>>,
    /// `AWS_SDK_UA_APP_ID`, profile `sdk_ua_app_id` (or the older `sdk-ua-app-id`): the
    /// application's name, sent in the `User-Agent` as `app/<id>`
    pub app_id: Option<Sourced<String>>,
}

impl ClientConfig {
    /// The inputs of Lambda's endpoint rules, for `invoke_proto`'s endpoint resolution
    pub fn endpoint_config(&self) -> EndpointConfig {
        EndpointConfig {
            region: self.region.as_ref().map(|r| r.value.clone()),
            use_fips: self.use_fips.value,
            use_dual_stack: self.use_dual_stack.value,
            custom: self.endpoint_url.as_ref().map(|u| u.value.clone()),
        }
    }
}

/// A setting that cannot be used
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// A shared file could not be read or parsed
    File(ProfileFileError),
    /// A value is not valid for its setting
    Invalid {
        /// The value as given
        value: String,
        /// Where it was given
        origin: Source,
        /// What would be valid
        expected: &'static str,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(e) => fmt::Display::fmt(e, f),
            Self::Invalid {
                value,
                origin,
                expected,
            } => write!(
                f,
                "invalid value `{value}` for {origin}: expected {expected}"
            ),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::File(e) => e.source(),
            Self::Invalid { .. } => None,
        }
    }
}

impl From<ProfileFileError> for ConfigError {
    fn from(e: ProfileFileError) -> Self {
        Self::File(e)
    }
}

impl ConfigError {
    fn invalid(s: &Sourced<String>, expected: &'static str) -> Self {
        Self::Invalid {
            value: s.value.clone(),
            origin: s.source.clone(),
            expected,
        }
    }
}
