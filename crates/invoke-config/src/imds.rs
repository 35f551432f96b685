//! Where EC2 instance metadata (IMDS) is: endpoint and mode from code, environment, profile

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};

use crate::config::{SharedConfig, parse_bool};
use crate::credentials::{Call, CallResult, HttpResponse, Input};

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImdsConfigError {
    /// `AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE` / `ec2_metadata_service_endpoint_mode` is invalid
    Mode(String),
    /// The endpoint is not a URI with scheme and host
    Endpoint {
        /// The endpoint as given
        endpoint: String,
        /// Why it is invalid
        message: String,
    },
}

impl fmt::Display for ImdsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Mode(mode) => write!(
                f,
                "`{mode}` is not a valid endpoint mode (expected IPv4 or IPv6)"
            ),
            Self::Endpoint { endpoint, message } => {
                write!(f, "invalid IMDS endpoint `{endpoint}`: {message}")
            }
        }
    }
}

impl std::error::Error for ImdsConfigError {}

/// Where to reach IMDS and how many attempts each request gets
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImdsSettings {
    /// The base URL, without a trailing slash
    pub endpoint: String,
    /// Attempts per request (`AWS_MAX_ATTEMPTS` / `max_attempts`, default 3, at most 5)
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
        let max_attempts = shared.attempts();
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

/// The token `PUT` (no token yet) or a `GET` of `path` with the token
pub(crate) fn request(
    settings: &ImdsSettings,
    token: Option<&HeaderValue>,
    path: &str,
) -> Result<Request<Bytes>, String> {
    let b = Request::builder().uri(settings.url(path));
    let b = match token {
        // an explicit empty body: without it ureq sends `Transfer-Encoding: chunked` for a
        // PUT, which a plain server that never reads the terminating chunk answers with a
        // reset (the SDKs send `Content-Length: 0`)
        None => b
            .method(Method::PUT)
            .header("x-aws-ec2-metadata-token-ttl-seconds", "21600")
            .header(http::header::CONTENT_LENGTH, "0"),
        Some(t) => b
            .method(Method::GET)
            .header("x-aws-ec2-metadata-token", t.clone()),
    };
    b.body(Bytes::new())
        .map_err(|e| format!("invalid IMDS request: {e}"))
}

/// What [`ImdsRegion`] asks for next
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one value per step; a box would only add an allocation
pub enum RegionStep {
    /// Send this request, then call `handle_response` or `handle_transport_error`
    Send(Request<Bytes>),
    /// The instance's region, or why there is none (IMDS disabled, unreachable, refused)
    Done(Result<String, String>),
}

/// The region from EC2 instance metadata (`/latest/meta-data/placement/region`, IMDSv2),
/// the last step of the Rust SDK's region chain, as a sans-IO state machine
///
/// ```
/// use invoke_config::{Env, ImdsRegion, MemFs, RegionStep, SharedConfig};
/// use invoke_config::http::{HeaderMap, StatusCode};
///
/// let shared = SharedConfig::load(Env::new(), &MemFs::new());
/// let mut lookup = ImdsRegion::new(&shared);
/// let answers = ["imds-token", "eu-north-1"];
/// let mut n = 0;
/// let region = loop {
///     match lookup.next_step() {
///         RegionStep::Send(_request) => {
///             lookup.handle_response(StatusCode::OK, HeaderMap::new(), answers[n].into());
///             n += 1;
///         }
///         RegionStep::Done(region) => break region,
///     }
/// };
/// assert_eq!(region.as_deref(), Ok("eu-north-1"));
/// ```
pub struct ImdsRegion {
    settings: Result<ImdsSettings, String>,
    token: Option<HeaderValue>,
    call: Option<Call>,
    input: Option<Input>,
    done: Option<Result<String, String>>,
}

impl fmt::Debug for ImdsRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImdsRegion")
            .field("settings", &self.settings)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl ImdsRegion {
    /// A lookup with the IMDS settings of `shared`; done at once when
    /// `AWS_EC2_METADATA_DISABLED` is true or the settings are invalid
    pub fn new(shared: &SharedConfig) -> Self {
        let disabled = shared
            .env
            .get("AWS_EC2_METADATA_DISABLED")
            .and_then(parse_bool)
            == Some(true);
        Self {
            settings: ImdsSettings::resolve(shared, None, None).map_err(|e| e.to_string()),
            token: None,
            call: None,
            input: None,
            done: disabled.then(|| Err("AWS_EC2_METADATA_DISABLED is true".to_owned())),
        }
    }

    /// Hands back the answer to the last [`RegionStep::Send`]
    pub fn handle_response(&mut self, status: StatusCode, headers: HeaderMap, body: Bytes) {
        self.input = Some(Input::Response(HttpResponse {
            status,
            headers,
            body,
        }));
    }

    /// Reports that the last [`RegionStep::Send`] failed in the transport
    pub fn handle_transport_error(&mut self, error: &dyn fmt::Display) {
        self.input = Some(Input::TransportError(error.to_string()));
    }

    fn finish(&mut self, r: Result<String, String>) -> RegionStep {
        self.done = Some(r.clone());
        RegionStep::Done(r)
    }

    fn send(&mut self, settings: &ImdsSettings, path: &str) -> RegionStep {
        match request(settings, self.token.as_ref(), path) {
            Ok(req) => match self
                .call
                .insert(Call::new(req, settings.max_attempts))
                .send()
            {
                crate::credentials::Act::Send(req) => RegionStep::Send(req),
                _ => self.finish(Err("internal: IMDS call without a request".into())),
            },
            Err(e) => self.finish(Err(e)),
        }
    }

    /// What to do next
    pub fn next_step(&mut self) -> RegionStep {
        if let Some(r) = &self.done {
            return RegionStep::Done(r.clone());
        }
        let settings = match &self.settings {
            Ok(s) => s.clone(),
            Err(e) => return self.finish(Err(e.clone())),
        };
        let Some(call) = &mut self.call else {
            return self.send(&settings, "/latest/api/token");
        };
        let r = match call.on_input(self.input.take()) {
            CallResult::Retry(crate::credentials::Act::Send(req)) => return RegionStep::Send(req),
            CallResult::Response(r) => r,
            CallResult::Unreachable(e) => {
                return self.finish(Err(format!("instance metadata could not be reached: {e}")));
            }
            CallResult::Retry(_) | CallResult::Misuse => {
                return self.finish(Err("an answer was expected before the next step".into()));
            }
        };
        let text = String::from_utf8_lossy(&r.body).trim().to_owned();
        match (self.token.is_some(), r.status.as_u16()) {
            (false, 200) => match HeaderValue::from_str(&text) {
                Ok(mut t) => {
                    t.set_sensitive(true);
                    self.token = Some(t);
                    self.send(&settings, "/latest/meta-data/placement/region")
                }
                Err(_) => self.finish(Err("IMDS returned an invalid token".into())),
            },
            (true, 200) if !text.is_empty() && text.len() <= 64 => self.finish(Ok(text)),
            (_, status) => self.finish(Err(format!("IMDS answered HTTP {status}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ImdsConfigError, ImdsMode};

    #[test]
    fn modes_parse_in_any_case() {
        for (text, mode) in [
            ("IPv4", ImdsMode::Ipv4),
            (" ipv4 ", ImdsMode::Ipv4),
            ("IPV6", ImdsMode::Ipv6),
        ] {
            assert_eq!(ImdsMode::parse(text).unwrap(), mode, "{text}");
        }
        assert_eq!(
            ImdsMode::parse(" ipv5 ").unwrap_err(),
            ImdsConfigError::Mode("ipv5".into())
        );
    }
}
