//! Where EC2 instance metadata (IMDS) is: endpoint and mode from code, environment, profile

use crate::config::SharedConfig;

/// IMDS over IPv4 (`http://169.254.169.254`) or IPv6 (`http://[fd00:ec2::254]`)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImdsMode {
    /// `IPv4`, the default
    Ipv4,
    /// `IPv6`
    Ipv6,
}

impl ImdsMode {
    /// `IPv4` or `IPv6`, any case
    ///
    /// # Errors
    ///
    /// [`ImdsConfigError::Mode`] for anything else.
    pub fn parse(s: &str) -> Result<Self, ImdsConfigError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ipv4" => Ok(Self::Ipv4),
            "ipv6" => Ok(Self::Ipv6),
            _ => Err(ImdsConfigError::Mode(s.trim().to_owned())),
        }
    }

    const fn endpoint(self) -> &'static str {
        match self {
            Self::Ipv4 => "http://169.254.169.254",
            Self::Ipv6 => "http://[fd00:ec2::254]",
        }
    }
}

/// IMDS settings that cannot be used
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImdsConfigError {
    /// `AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE` / `ec2_metadata_service_endpoint_mode` is invalid
    #[error("`{0}` is not a valid endpoint mode (expected IPv4 or IPv6)")]
    Mode(String),
    /// The endpoint is not a URI with scheme and host
    #[error("invalid IMDS endpoint `{endpoint}`: {message}")]
    Endpoint {
        /// The endpoint as given
        endpoint: String,
        /// Why it is invalid
        message: String,
    },
}

/// Where to reach IMDS and how many attempts each request gets
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImdsSettings {
    /// The base URL, without a trailing slash
    pub endpoint: String,
    /// Attempts per request (`AWS_MAX_ATTEMPTS` / `max_attempts`, default 3)
    pub max_attempts: u32,
}

impl ImdsSettings {
    /// The SDK's precedence: explicit endpoint > `AWS_EC2_METADATA_SERVICE_ENDPOINT` > profile
    /// `ec2_metadata_service_endpoint` > the mode's address (explicit mode >
    /// `AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE` > profile `ec2_metadata_service_endpoint_mode`)
    ///
    /// # Errors
    ///
    /// [`ImdsConfigError`] for an invalid mode or endpoint.
    pub fn resolve(
        shared: &SharedConfig,
        endpoint_override: Option<&str>,
        mode_override: Option<ImdsMode>,
    ) -> Result<Self, ImdsConfigError> {
        let configured = endpoint_override.map(str::to_owned).or_else(|| {
            shared
                .string_setting(
                    &["AWS_EC2_METADATA_SERVICE_ENDPOINT"],
                    "ec2_metadata_service_endpoint",
                )
                .map(|s| s.value)
        });
        let endpoint = if let Some(e) = configured {
            let bad = |message: String| ImdsConfigError::Endpoint {
                endpoint: e.clone(),
                message,
            };
            let uri = e.parse::<http::Uri>().map_err(|err| bad(err.to_string()))?;
            if uri.scheme().is_none() || uri.host().is_none() {
                return Err(bad("the endpoint needs a scheme and a host".into()));
            }
            e.trim_end_matches('/').to_owned()
        } else {
            let mode = match mode_override {
                Some(m) => m,
                None => match shared.string_setting(
                    &["AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"],
                    "ec2_metadata_service_endpoint_mode",
                ) {
                    Some(s) => ImdsMode::parse(&s.value)?,
                    None => ImdsMode::Ipv4,
                },
            };
            mode.endpoint().to_owned()
        };
        let max_attempts = shared
            .string_setting(&["AWS_MAX_ATTEMPTS"], "max_attempts")
            .and_then(|s| s.value.parse::<u32>().ok())
            .filter(|n| *n >= 1)
            .unwrap_or(3);
        Ok(Self {
            endpoint,
            max_attempts,
        })
    }

    /// The URL of `path` (which starts with `/`)
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.endpoint)
    }
}
