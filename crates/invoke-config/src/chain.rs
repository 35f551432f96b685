//! The default credentials chain as one sans-IO state machine, and a blocking driver

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use crate::config::SharedConfig;
use crate::credentials::{
    Act, CredentialsError, Ctx, Fail, HttpResponse, Input, MAX_RESPONSE_BODY, Machine, NotFound,
    ProcessCommand, ProcessOutput, ProvidedCredentials, ProviderAttempt, Step,
};
use crate::fs::FileReader;
use crate::providers::{self, Ready};

/// A provider of the default chain
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`
    Environment,
    /// The active profile of the shared files: static keys, `credential_process`, roles, SSO
    Profile,
    /// `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` (STS `AssumeRoleWithWebIdentity`)
    WebIdentity,
    /// ECS task roles and EKS Pod Identity (`AWS_CONTAINER_CREDENTIALS_*`)
    Container,
    /// EC2 instance metadata (IMDSv2)
    Imds,
}

impl ProviderKind {
    /// The default chain's order, as in the AWS SDKs
    pub const DEFAULT_CHAIN: [Self; 5] = [
        Self::Environment,
        Self::Profile,
        Self::WebIdentity,
        Self::Container,
        Self::Imds,
    ];

    /// The name used in messages
    pub const fn name(self) -> &'static str {
        match self {
            Self::Environment => "environment",
            Self::Profile => "profile",
            Self::WebIdentity => "web identity",
            Self::Container => "container",
            Self::Imds => "imds",
        }
    }

    const fn variables(self) -> &'static [&'static str] {
        match self {
            Self::Environment => &[
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN",
            ],
            Self::Profile => &[
                "AWS_PROFILE",
                "AWS_CONFIG_FILE",
                "AWS_SHARED_CREDENTIALS_FILE",
                "HOME",
            ],
            Self::WebIdentity => &[
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                "AWS_ROLE_ARN",
                "AWS_ROLE_SESSION_NAME",
            ],
            Self::Container => &[
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            ],
            Self::Imds => &[
                "AWS_EC2_METADATA_DISABLED",
                "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
            ],
        }
    }
}

/// The credentials chain as a sans-IO state machine
///
/// Call [`next_step`](Self::next_step); on [`Step::Send`] send the request and hand back
/// the answer with [`handle_response`](Self::handle_response) (or
/// [`handle_transport_error`](Self::handle_transport_error)); on [`Step::Run`] run the
/// command and hand back [`handle_process_output`](Self::handle_process_output); repeat until
/// [`Step::Done`]. [`drive`] is that loop for blocking transports.
///
/// ```
/// use std::sync::Arc;
/// use std::time::SystemTime;
/// use invoke_config::{CredentialsChain, Env, MemFs, SharedConfig, Step};
///
/// let env = Env::from_pairs([("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"), ("AWS_SECRET_ACCESS_KEY", "secret")]);
/// let fs = Arc::new(MemFs::new());
/// let mut chain = CredentialsChain::new(&SharedConfig::load(env, &*fs), fs);
/// let Step::Done(Ok(found)) = chain.next_step(SystemTime::UNIX_EPOCH) else { panic!() };
/// assert_eq!(found.credentials.access_key_id(), "AKIDEXAMPLE");
/// assert_eq!(found.provider, "environment");
/// ```
pub struct CredentialsChain {
    shared: SharedConfig,
    fs: Arc<dyn FileReader>,
    pending: VecDeque<ProviderKind>,
    current: Option<(ProviderKind, Box<dyn Machine>)>,
    input: Option<Input>,
    awaiting: Awaiting,
    tried: Vec<ProviderAttempt>,
    kinds: Vec<ProviderKind>,
    result: Option<Result<ProvidedCredentials, CredentialsError>>,
    single: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    Nothing,
    Response,
    Process,
}

impl fmt::Debug for CredentialsChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialsChain")
            .field("profile", &self.shared.profile_name)
            .field("current", &self.current.as_ref().map(|c| c.0))
            .field("pending", &self.pending)
            .field("tried", &self.tried)
            .finish_non_exhaustive()
    }
}

impl CredentialsChain {
    /// The default chain: environment, profile, web identity, container, IMDS (or the
    /// providers [`SharedConfig::with_credential_providers`] chose)
    pub fn new(shared: &SharedConfig, fs: Arc<dyn FileReader>) -> Self {
        Self::with_providers(shared, fs, shared.credential_providers())
    }

    /// A chain of the given providers, in order
    ///
    /// With a single provider, "not configured" is reported as
    /// [`CredentialsError::NotEnabled`] instead of [`CredentialsError::NotFound`].
    pub fn with_providers(
        shared: &SharedConfig,
        fs: Arc<dyn FileReader>,
        providers: &[ProviderKind],
    ) -> Self {
        Self {
            shared: shared.clone(),
            fs,
            pending: providers.iter().copied().collect(),
            current: None,
            input: None,
            awaiting: Awaiting::Nothing,
            tried: Vec::new(),
            kinds: providers.to_vec(),
            result: None,
            single: providers.len() == 1,
        }
    }

    /// Hands back the answer to the last [`Step::Send`]
    ///
    /// A body over [`MAX_RESPONSE_BODY`] bytes is refused as an error of the provider.
    pub fn handle_response(&mut self, status: StatusCode, headers: HeaderMap, body: Bytes) {
        if self.awaiting != Awaiting::Response {
            self.usage("a response was handed back but no request was sent");
            return;
        }
        self.awaiting = Awaiting::Nothing;
        if body.len() > MAX_RESPONSE_BODY {
            self.input = Some(Input::TransportError(format!(
                "the response body exceeds {MAX_RESPONSE_BODY} bytes"
            )));
            return;
        }
        self.input = Some(Input::Response(HttpResponse {
            status,
            headers,
            body,
        }));
    }

    /// Reports that the last [`Step::Send`] failed in the transport (connect error, timeout);
    /// the provider retries it or gives up
    pub fn handle_transport_error(&mut self, error: &dyn fmt::Display) {
        if self.awaiting != Awaiting::Response {
            self.usage("a transport error was handed back but no request was sent");
            return;
        }
        self.awaiting = Awaiting::Nothing;
        self.input = Some(Input::TransportError(error.to_string()));
    }

    /// Hands back what the command of the last [`Step::Run`] produced, or why it could not run
    pub fn handle_process_output(&mut self, output: Result<ProcessOutput, String>) {
        if self.awaiting != Awaiting::Process {
            self.usage("process output was handed back but no process was asked for");
            return;
        }
        self.awaiting = Awaiting::Nothing;
        self.input = Some(Input::Process(output));
    }

    fn usage(&mut self, message: &str) {
        self.result = Some(Err(CredentialsError::Usage(message.to_owned())));
    }

    /// What to do next; `now` is the current time (for signing, session names and expiry
    /// checks)
    pub fn next_step(&mut self, now: SystemTime) -> Step {
        if let Some(r) = &self.result {
            return Step::Done(r.clone());
        }
        if self.awaiting != Awaiting::Nothing {
            let e = CredentialsError::Usage(
                "next_step called before the last step was answered".into(),
            );
            self.result = Some(Err(e.clone()));
            return Step::Done(Err(e));
        }
        loop {
            let Some((kind, machine)) = &mut self.current else {
                let Some(kind) = self.pending.pop_front() else {
                    return self.finish(Err(self.not_found()));
                };
                match self.build(kind) {
                    Ok(m) => self.current = Some((kind, m)),
                    Err(Fail::NotConfigured(reason)) => self.tried.push(ProviderAttempt {
                        provider: kind.name(),
                        reason,
                    }),
                    Err(Fail::Error(e)) => return self.finish(Err(e)),
                }
                continue;
            };
            let kind = *kind;
            let ctx = Ctx { fs: &*self.fs };
            match machine.advance(&ctx, self.input.take(), now) {
                Act::Send(req) => {
                    self.awaiting = Awaiting::Response;
                    return Step::Send(req);
                }
                Act::Run(cmd) => {
                    self.awaiting = Awaiting::Process;
                    return Step::Run(cmd);
                }
                Act::Done(Ok(c)) => return self.finish(Ok(c)),
                Act::Done(Err(Fail::Error(e))) => return self.finish(Err(e)),
                Act::Done(Err(Fail::NotConfigured(reason))) => {
                    self.tried.push(ProviderAttempt {
                        provider: kind.name(),
                        reason,
                    });
                    self.current = None;
                }
            }
        }
    }

    fn finish(&mut self, r: Result<ProvidedCredentials, CredentialsError>) -> Step {
        self.current = None;
        self.result = Some(r.clone());
        Step::Done(r)
    }

    fn not_found(&self) -> CredentialsError {
        if self.single
            && let Some(t) = self.tried.first()
        {
            return CredentialsError::NotEnabled {
                provider: t.provider,
                reason: t.reason.clone(),
            };
        }
        let mut variables: Vec<&'static str> = Vec::new();
        for k in &self.kinds {
            variables.extend_from_slice(k.variables());
        }
        let mut files: Vec<_> = self.shared.files.iter().map(|(p, _)| p.clone()).collect();
        if files.is_empty() {
            files.extend(self.shared.locations.config.iter().cloned());
        }
        CredentialsError::NotFound(NotFound {
            tried: self.tried.clone(),
            variables,
            files,
        })
    }

    fn build(&self, kind: ProviderKind) -> Result<Box<dyn Machine>, Fail> {
        let shared = &self.shared;
        let attempts = shared.attempts();
        let named = |n: &'static str| -> Result<Box<dyn Machine>, Fail> {
            match n {
                "environment" => providers::from_env(shared)
                    .map(|c| Box::new(Ready(Some(Ok(c)))) as Box<dyn Machine>),
                "container" => providers::container(shared, attempts),
                _ => providers::imds(shared),
            }
        };
        match kind {
            ProviderKind::Environment => providers::from_env(shared)
                .map(|c| Box::new(Ready(Some(Ok(c)))) as Box<dyn Machine>),
            ProviderKind::Profile => providers::profile_provider(shared, &named),
            ProviderKind::WebIdentity => providers::web_identity_env(shared),
            ProviderKind::Container => providers::container(shared, attempts),
            ProviderKind::Imds => providers::imds(shared),
        }
    }
}

/// Runs `chain` to the end with a blocking transport
///
/// `send` sends one request and returns the status, headers and body (at most
/// [`MAX_RESPONSE_BODY`] bytes), or an error for a failed connection or a timeout, which the
/// provider may retry (back off first when the request's [`crate::Attempt`] is above 1).
/// `credential_process` commands run with [`crate::run_process`]. `now` gives the time.
///
/// # Errors
///
/// The chain's [`CredentialsError`].
pub fn drive<E: fmt::Display>(
    chain: &mut CredentialsChain,
    now: impl FnMut() -> SystemTime,
    send: impl FnMut(http::Request<Bytes>) -> Result<(StatusCode, HeaderMap, Bytes), E>,
) -> Result<ProvidedCredentials, CredentialsError> {
    drive_running(chain, now, send, &crate::process::run_process)
}

/// [`drive`] with `credential_process` commands run by `run`
fn drive_running<E: fmt::Display>(
    chain: &mut CredentialsChain,
    mut now: impl FnMut() -> SystemTime,
    mut send: impl FnMut(http::Request<Bytes>) -> Result<(StatusCode, HeaderMap, Bytes), E>,
    run: &dyn Fn(&ProcessCommand) -> Result<ProcessOutput, String>,
) -> Result<ProvidedCredentials, CredentialsError> {
    loop {
        match chain.next_step(now()) {
            Step::Send(req) => match send(req) {
                Ok((status, headers, body)) => chain.handle_response(status, headers, body),
                Err(e) => chain.handle_transport_error(&e),
            },
            Step::Run(cmd) => chain.handle_process_output(run(&cmd)),
            Step::Done(r) => return r,
        }
    }
}

/// How a [`ChainProvider`] runs `credential_process` commands
type ProcessRunner = Box<dyn Fn(&ProcessCommand) -> Result<ProcessOutput, String> + Send + Sync>;

/// The default chain behind a blocking transport, as a [`ProvideCredentials`](crate::ProvideCredentials) source
///
/// Each call runs a fresh chain over the shared config captured at construction. Put a
/// [`crate::CredentialsCache`] in front of it so the chain runs only when needed.
pub struct ChainProvider<S> {
    shared: SharedConfig,
    fs: Arc<dyn FileReader>,
    send: std::sync::Mutex<S>,
    clock: Box<dyn Fn() -> SystemTime + Send + Sync>,
    run: ProcessRunner,
}

impl<S> fmt::Debug for ChainProvider<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainProvider")
            .field("profile", &self.shared.profile_name)
            .finish_non_exhaustive()
    }
}

impl<S> ChainProvider<S> {
    /// The default chain over `shared`, reading files with `fs`, sending with `send`, with
    /// `clock` for the time (pass `SystemTime::now`)
    pub fn new(
        shared: SharedConfig,
        fs: Arc<dyn FileReader>,
        send: S,
        clock: impl Fn() -> SystemTime + Send + Sync + 'static,
    ) -> Self {
        Self {
            shared,
            fs,
            send: std::sync::Mutex::new(send),
            clock: Box::new(clock),
            run: Box::new(crate::process::run_process),
        }
    }

    /// This provider with `credential_process` commands run by `run` instead of
    /// [`crate::run_process`] (which `run` may call with a shorter
    /// [`timeout`](ProcessCommand::timeout), to end a command by a deadline of the caller's)
    #[must_use]
    pub fn with_process_runner(
        mut self,
        run: impl Fn(&ProcessCommand) -> Result<ProcessOutput, String> + Send + Sync + 'static,
    ) -> Self {
        self.run = Box::new(run);
        self
    }
}

impl<S, E> crate::ProvideCredentials for ChainProvider<S>
where
    S: FnMut(http::Request<Bytes>) -> Result<(StatusCode, HeaderMap, Bytes), E> + Send,
    E: fmt::Display,
{
    fn provide_credentials(&self) -> Result<ProvidedCredentials, CredentialsError> {
        let mut chain = CredentialsChain::new(&self.shared, self.fs.clone());
        let mut send = self
            .send
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        drive_running(&mut chain, &*self.clock, &mut *send, &*self.run)
    }
}
