//! Credentials as providers hand them out, the errors, and the sans-IO step types

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use invoke_proto::{Credentials, RetryConfig};

/// The largest response body a provider accepts; transports should stop reading there
pub const MAX_RESPONSE_BODY: usize = 64 * 1024;

/// Credentials with what the provider knew about them
///
/// `Debug` shows the access key id only (see [`Credentials`]).
#[derive(Clone, Debug)]
pub struct ProvidedCredentials {
    /// The keys, ready for the signer
    pub credentials: Credentials,
    /// When they stop working; `None` for long-term keys
    pub expiry: Option<SystemTime>,
    /// The AWS account they belong to, when known
    pub account_id: Option<String>,
    /// The provider that produced them (`environment`, `profile`, `imds`, ...)
    pub provider: &'static str,
}

/// The provider name of credentials given to a client directly
pub(crate) const GIVEN: &str = "static";

impl ProvidedCredentials {
    /// Credentials given to a client directly (provider `static`, no expiry)
    pub fn given(credentials: Credentials) -> Self {
        Self::new(credentials, None, None, GIVEN)
    }

    /// Credentials from `provider`
    pub fn new(
        credentials: Credentials,
        expiry: Option<SystemTime>,
        account_id: Option<String>,
        provider: &'static str,
    ) -> Self {
        Self {
            credentials,
            expiry,
            account_id,
            provider,
        }
    }
}

/// One provider the chain tried, and why it gave nothing
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderAttempt {
    /// The provider (`environment`, `profile`, `web identity`, `container`, `imds`)
    pub provider: &'static str,
    /// Why it was not used
    pub reason: String,
}

/// No provider of the chain had credentials
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotFound {
    /// Every provider tried, in order
    pub tried: Vec<ProviderAttempt>,
    /// The environment variables looked at
    pub variables: Vec<&'static str>,
    /// The files looked at
    pub files: Vec<PathBuf>,
}

impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no AWS credentials found: the credential provider was not enabled in any of the {} sources tried",
            self.tried.len()
        )?;
        for t in &self.tried {
            write!(f, "\n  - {}: {}", t.provider, t.reason)?;
        }
        write!(f, "\n  variables looked at: {}", self.variables.join(", "))?;
        if !self.files.is_empty() {
            let files: Vec<_> = self.files.iter().map(|p| p.display().to_string()).collect();
            write!(f, "\n  files looked at: {}", files.join(", "))?;
        }
        Ok(())
    }
}

/// Why credentials could not be loaded
///
/// No variant ever holds a secret: messages name variables, files, profiles and service
/// error codes, never key material.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialsError {
    /// No provider of the chain had credentials (each one says why)
    NotFound(NotFound),
    /// A provider run on its own was not configured
    NotEnabled {
        /// The provider
        provider: &'static str,
        /// Why not
        reason: String,
    },
    /// The configuration asks for something that cannot work
    InvalidConfig {
        /// The provider
        provider: &'static str,
        /// What is wrong
        message: String,
    },
    /// A configured provider failed
    Load {
        /// The provider
        provider: &'static str,
        /// What failed
        message: String,
        /// Whether trying again later may succeed (a 5xx, a throttle, a network failure)
        retryable: bool,
    },
    /// The cached SSO token has expired
    SsoLoginRequired {
        /// The `sso-session` name or the legacy start URL
        session: String,
        /// Arguments that select the profile (`--profile NAME`), possibly empty
        login_args: String,
        /// When the token expired, seconds since the Unix epoch
        expired_unix: u64,
    },
    /// The driver was used wrongly (a step fed out of order) or a custom source failed
    Usage(String),
}

impl fmt::Display for CredentialsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound(not_found) => fmt::Display::fmt(not_found, f),
            Self::NotEnabled { provider, reason } => write!(
                f,
                "the credential provider was not enabled: {provider}: {reason}"
            ),
            Self::InvalidConfig { provider, message } => write!(
                f,
                "invalid credentials configuration ({provider}): {message}"
            ),
            Self::Load {
                provider, message, ..
            } => write!(
                f,
                "an error occurred while loading credentials: {message} (provider: {provider})"
            ),
            Self::SsoLoginRequired {
                session,
                login_args,
                expired_unix,
            } => write!(
                f,
                "the SSO token for {session} expired at {expired_unix} (Unix time); run `aws sso login{login_args}` and try again"
            ),
            Self::Usage(why) => write!(f, "credentials provider misuse: {why}"),
        }
    }
}

impl std::error::Error for CredentialsError {}

impl CredentialsError {
    pub(crate) fn load(
        provider: &'static str,
        message: impl Into<String>,
        retryable: bool,
    ) -> Self {
        Self::Load {
            provider,
            message: message.into(),
            retryable,
        }
    }

    pub(crate) fn config(provider: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidConfig {
            provider,
            message: message.into(),
        }
    }

    /// Whether asking again later may succeed
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Load {
                retryable: true,
                ..
            }
        )
    }
}

/// What the caller does next for a credentials state machine
///
/// `Debug` shows a request's method and URI only: bodies and some headers carry tokens.
pub enum Step {
    /// Send this request with your transport, then call `handle_response` (or
    /// `handle_transport_error`). The request carries an [`Attempt`] extension: back off
    /// before sending when it is above 1.
    Send(http::Request<Bytes>),
    /// Run this `credential_process` command (for example with [`crate::run_process`]),
    /// then call `handle_process_output`
    Run(ProcessCommand),
    /// Finished
    Done(Result<ProvidedCredentials, CredentialsError>),
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Send(req) => write!(f, "Send({} {})", req.method(), req.uri()),
            Self::Run(cmd) => f.debug_tuple("Run").field(cmd).finish(),
            Self::Done(r) => f.debug_tuple("Done").field(r).finish(),
        }
    }
}

/// The attempt number of a [`Step::Send`] request (1 for the first), as a request extension
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt(pub u32);

/// The backoff of [`Attempt::backoff`]: 100 ms, doubling, at most 1 s, full jitter
const EXCHANGE_BACKOFF: RetryConfig = RetryConfig::new()
    .with_initial_backoff(Duration::from_millis(100))
    .with_max_backoff(Duration::from_secs(1));

impl Attempt {
    /// How long to wait before sending this attempt: nothing for the first, then up to
    /// 100 ms, 200 ms, 400 ms, 800 ms and 1 s (full jitter: `jitter`, uniform in `[0, 1)`,
    /// for example [`crate::jitter()`], picks the point in that range)
    ///
    /// ```
    /// use std::time::Duration;
    /// use invoke_config::Attempt;
    ///
    /// assert_eq!(Attempt(1).backoff(0.99), Duration::ZERO);
    /// // half of each ceiling: 100 ms, doubling, capped at 1 s
    /// let half: Vec<_> = (2..=7).map(|n| Attempt(n).backoff(0.5).as_millis()).collect();
    /// assert_eq!(half, [50, 100, 200, 400, 500, 500]);
    /// ```
    #[must_use]
    pub fn backoff(self, jitter: f64) -> Duration {
        match self.0 {
            0 | 1 => Duration::ZERO,
            n => invoke_proto::backoff(&EXCHANGE_BACKOFF, n - 1, jitter),
        }
    }
}

/// A `credential_process` command line, run by a shell (its `Debug` shows the program, not
/// the arguments, which may hold a secret)
#[derive(Clone, PartialEq, Eq)]
pub struct ProcessCommand {
    /// The command line as configured (run with `sh -c`, or `cmd /C` on Windows)
    pub command: String,
    /// How long it may run before it is killed
    pub timeout: Duration,
    /// The most bytes read from each of stdout and stderr
    pub max_output: usize,
}

impl std::fmt::Debug for ProcessCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessCommand")
            .field("command", &crate::profile::CommandLine(&self.command))
            .field("timeout", &self.timeout)
            .field("max_output", &self.max_output)
            .finish()
    }
}

/// What a `credential_process` produced
#[derive(Clone, PartialEq, Eq)]
pub struct ProcessOutput {
    /// Whether it exited with status 0
    pub success: bool,
    /// Its exit status as text (`exit status: 1`)
    pub status: String,
    /// Its standard output (holds secrets: never shown)
    pub stdout: Vec<u8>,
    /// Its standard error
    pub stderr: Vec<u8>,
}

/// stdout is never shown: it holds the credentials
impl fmt::Debug for ProcessOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessOutput")
            .field("success", &self.success)
            .field("status", &self.status)
            .field("stdout", &format_args!("<{} bytes>", self.stdout.len()))
            .field("stderr", &String::from_utf8_lossy(&self.stderr))
            .finish()
    }
}

/// An HTTP answer handed back to a state machine
#[derive(Clone)]
pub(crate) struct HttpResponse {
    pub(crate) status: StatusCode,
    #[allow(dead_code)]
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// The status and the body's length: bodies hold credentials and tokens
impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// What the caller handed back for the last step
#[derive(Debug)]
pub(crate) enum Input {
    Response(HttpResponse),
    TransportError(String),
    Process(Result<ProcessOutput, String>),
}

/// The outcome of one provider inside the chain
#[derive(Debug)]
pub(crate) enum Fail {
    /// Not configured here: the chain moves on
    NotConfigured(String),
    /// Configured but failed: the chain stops
    Error(CredentialsError),
}

impl From<CredentialsError> for Fail {
    fn from(e: CredentialsError) -> Self {
        Self::Error(e)
    }
}

pub(crate) type Outcome = Result<ProvidedCredentials, Fail>;

/// What a machine asks for
pub(crate) enum Act {
    Send(http::Request<Bytes>),
    Run(ProcessCommand),
    Done(Outcome),
}

/// Shared by the machines: the file reader
pub(crate) struct Ctx<'a> {
    pub(crate) fs: &'a dyn crate::FileReader,
}

/// A provider as a state machine: called first with `None`, then with the answer to its
/// last [`Act`]
pub(crate) trait Machine: Send {
    fn advance(&mut self, ctx: &Ctx<'_>, input: Option<Input>, now: SystemTime) -> Act;
}

/// Whether an answer is worth asking again for: a server error or throttling (429)
pub(crate) fn transient_status(r: &HttpResponse) -> bool {
    let s = r.status.as_u16();
    s >= 500 || s == 429
}

/// One request with its retries
pub(crate) struct Call {
    req: http::Request<Bytes>,
    attempt: u32,
    max_attempts: u32,
    /// Which answers are retried (while attempts are left)
    retryable: fn(&HttpResponse) -> bool,
}

/// What came of a [`Call`] once an answer is in
pub(crate) enum CallResult {
    /// Send again
    Retry(Act),
    /// The final answer (any status)
    Response(HttpResponse),
    /// The transport failed on the last attempt
    Unreachable(String),
    /// The caller handed back the wrong kind of input
    Misuse,
}

impl Call {
    /// `req`, retried on [`transient_status`] answers and transport errors
    pub(crate) fn new(req: http::Request<Bytes>, max_attempts: u32) -> Self {
        Self::classified(req, max_attempts, transient_status)
    }

    /// `req`, retried on the answers `retryable` picks and on transport errors
    pub(crate) fn classified(
        req: http::Request<Bytes>,
        max_attempts: u32,
        retryable: fn(&HttpResponse) -> bool,
    ) -> Self {
        Self {
            req,
            attempt: 0,
            max_attempts: max_attempts.max(1),
            retryable,
        }
    }

    /// The next attempt's request
    pub(crate) fn send(&mut self) -> Act {
        self.attempt += 1;
        let mut req = http::Request::new(self.req.body().clone());
        *req.method_mut() = self.req.method().clone();
        *req.uri_mut() = self.req.uri().clone();
        *req.headers_mut() = self.req.headers().clone();
        req.extensions_mut().insert(Attempt(self.attempt));
        Act::Send(req)
    }

    pub(crate) fn on_input(&mut self, input: Option<Input>) -> CallResult {
        let more = self.attempt < self.max_attempts;
        match input {
            Some(Input::Response(r)) => {
                if more && (self.retryable)(&r) {
                    CallResult::Retry(self.send())
                } else {
                    CallResult::Response(r)
                }
            }
            Some(Input::TransportError(e)) if more => {
                let _ = e;
                CallResult::Retry(self.send())
            }
            Some(Input::TransportError(e)) => CallResult::Unreachable(e),
            _ => CallResult::Misuse,
        }
    }
}

/// A provider that makes one request (retried as [`Call`] says) and reads its answer
pub(crate) trait Exchange: Send {
    /// What is called, for messages (`STS AssumeRole`)
    const NAME: &'static str;
    fn request(
        &mut self,
        ctx: &Ctx<'_>,
        now: SystemTime,
    ) -> Result<http::Request<Bytes>, CredentialsError>;
    fn parse(&self, r: &HttpResponse) -> Result<ProvidedCredentials, CredentialsError>;
    /// Whether an answer is retried (while attempts are left): by default a server error or
    /// throttling (429)
    fn retryable(r: &HttpResponse) -> bool {
        transient_status(r)
    }
}

/// The machine of an [`Exchange`]
pub(crate) struct OneCall<E> {
    exchange: E,
    provider: &'static str,
    max_attempts: u32,
    call: Option<Call>,
}

impl<E> OneCall<E> {
    /// `exchange` for `provider`, each request tried up to `max_attempts` times
    pub(crate) fn new(exchange: E, provider: &'static str, max_attempts: u32) -> Self {
        Self {
            exchange,
            provider,
            max_attempts,
            call: None,
        }
    }

    /// The exchange, to adjust before the first request
    pub(crate) fn exchange_mut(&mut self) -> &mut E {
        &mut self.exchange
    }
}

impl<E: Exchange> Machine for OneCall<E> {
    fn advance(&mut self, ctx: &Ctx<'_>, input: Option<Input>, now: SystemTime) -> Act {
        let Some(call) = &mut self.call else {
            return match self.exchange.request(ctx, now) {
                Ok(req) => self
                    .call
                    .insert(Call::classified(req, self.max_attempts, E::retryable))
                    .send(),
                Err(e) => Act::Done(Err(Fail::Error(e))),
            };
        };
        match call.on_input(input) {
            CallResult::Retry(act) => act,
            CallResult::Response(r) => Act::Done(self.exchange.parse(&r).map_err(Fail::Error)),
            CallResult::Unreachable(e) => Act::Done(Err(Fail::Error(CredentialsError::load(
                self.provider,
                format!("could not reach {}: {e}", E::NAME),
                true,
            )))),
            CallResult::Misuse => misuse(),
        }
    }
}

pub(crate) fn misuse() -> Act {
    Act::Done(Err(Fail::Error(CredentialsError::Usage(
        "the answer handed back does not match the last step".into(),
    ))))
}

/// How a JSON credential document must name its session
#[derive(Debug, Clone, Copy)]
pub(crate) enum Session {
    /// `credential_process`: a `SessionToken` and an `Expiration` are optional (long-term
    /// keys have neither)
    Optional,
    /// ECS/EKS and IMDS: a `Token` and an `Expiration` must be there, as the SDKs require
    /// (credentials without an expiry would be cached for good, and outlive their session)
    Required,
}

/// Parses the JSON credential documents of ECS/EKS, IMDS and `credential_process`
pub(crate) fn parse_json_credentials(
    body: &[u8],
    provider: &'static str,
    token_keys: &[&str],
    session: Session,
) -> Result<ProvidedCredentials, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON in response: {e}"))?;
    let get = |k: &str| {
        v.get(k)
            .and_then(serde_json::Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let id = get("AccessKeyId").ok_or("the answer has no AccessKeyId")?;
    let secret = get("SecretAccessKey").ok_or("the answer has no SecretAccessKey")?;
    let token = token_keys.iter().find_map(|k| get(k)).map(str::to_owned);
    if matches!(session, Session::Required) {
        if token.is_none() {
            return Err(format!("the answer has no {}", token_keys.join(" or ")));
        }
        if get("Expiration").is_none() {
            return Err("the answer has no Expiration".to_owned());
        }
    }
    let expiry = match get("Expiration") {
        Some(e) => {
            Some(crate::time::parse_rfc3339(e).ok_or_else(|| format!("invalid Expiration `{e}`"))?)
        }
        None => None,
    };
    Ok(ProvidedCredentials::new(
        Credentials::new(id, secret, token),
        expiry,
        get("AccountId").map(str::to_owned),
        provider,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_shows_its_status_and_size_never_its_body() {
        let r = HttpResponse {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::from_static(br#"{"accessToken":"a-secret-token"}"#),
        };
        let shown = format!("{:?}", Input::Response(r));
        assert!(!shown.contains("a-secret-token"), "{shown}");
        assert!(shown.contains("200") && shown.contains("32"), "{shown}");
    }

    #[test]
    fn a_process_output_shows_its_stdout_size_never_its_text() {
        let out = ProcessOutput {
            success: false,
            status: "exit status: 1".into(),
            stdout: br#"{"SecretAccessKey":"a-secret-key"}"#.to_vec(),
            stderr: b"denied".to_vec(),
        };
        assert_eq!(
            format!("{out:?}"),
            r#"ProcessOutput { success: false, status: "exit status: 1", stdout: <34 bytes>, stderr: "denied" }"#
        );
    }
}
