//! `lambda-stream invoke`: call a streaming function and write its payload as it arrives

use std::fmt::Write as _;
use std::io::{self, IsTerminal as _, Read as _, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use base64::Engine as _;
use invoke_blocking::{Client, Error, FIFTEEN_MINUTES, MAX_TIMEOUT, Response, Timeouts};
use invoke_config::location::Platform;
use invoke_config::{
    ClientConfig, CredentialsError, Env, Overrides, ProviderKind, RetryMode, SharedConfig, StdFs,
};
use invoke_proto::{
    EndpointError, Event, InvocationType, InvokeComplete, InvokeParams, LogType, MAX_PAYLOAD_LEN,
    StreamError,
};
use serde_json::json;

use crate::status::StatusLine;

/// The process exit status, as documented in `invoke --help`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// The function ran and returned normally (or the reader of stdout went away)
    Success = 0,
    /// The function failed: `InvokeComplete` carried an `ErrorCode`
    Function = 1,
    /// A service, network or protocol error (truncation and a missing `InvokeComplete` too)
    Failed = 2,
    /// A usage or configuration error
    Usage = 3,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

pub(crate) const EXIT_CODES: &str = "\
Exit status:
  0  the function returned normally (also when the reader of stdout went away early)
  1  the function failed (InvokeComplete carried an ErrorCode)
  2  a service, network or protocol error: throttling, a missing function, a timeout,
     a truncated stream or one without InvokeComplete (the bytes already written stay),
     a credentials provider (STS, SSO, a container endpoint) that failed to answer
  3  a usage or configuration error: bad options, no region, no credentials, an unknown
     profile
  130  interrupted (Ctrl-C); the function itself runs on to its end";

const INVOKE_EXAMPLES: &str = "\
Examples:
  lambda-stream invoke my-function --payload '{\"name\":\"world\"}'
  lambda-stream invoke my-function:prod --payload @event.json --log-type Tail
  echo '{}' | lambda-stream invoke my-function --payload - | head -c 1000
  lambda-stream invoke my-function --output events          # the stream's shape, as JSON lines
  lambda-stream invoke count --payload '{\"n\":5,\"size\":8,\"delay_ms\":200}' \\
      --endpoint-url http://127.0.0.1:9001 --region us-east-1 --no-sign-request
                                       # against `lambda-stream serve --no-auth`";

/// Options of `invoke`
#[derive(Debug, clap::Args)]
#[command(after_help = format!("{INVOKE_EXAMPLES}\n\n{EXIT_CODES}"))]
pub(crate) struct InvokeArgs {
    /// The function: a name, a partial or full ARN, optionally with `:QUALIFIER`
    function: String,
    /// The event: JSON text, `@FILE` (or the AWS CLI's `file://FILE`, `fileb://FILE`) to
    /// read a file, or `-` to read standard input
    #[arg(long, value_name = "JSON|@FILE|file://FILE|-")]
    payload: Option<String>,
    /// How `--payload` text and files are taken: `raw-in-base64-out` (the default here) as
    /// they are; `base64` (AWS CLI v2's default) as base64 to decode (`fileb://` and `-`
    /// are raw either way)
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = BinaryFormat::RawInBase64Out)]
    cli_binary_format: BinaryFormat,
    /// A version or alias to invoke
    #[arg(long)]
    qualifier: Option<String>,
    /// `DryRun` checks parameters and permissions without running the function
    #[arg(long, value_enum, value_name = "TYPE")]
    invocation_type: Option<InvocationTypeArg>,
    /// Same as `--invocation-type DryRun`
    #[arg(long, conflicts_with = "invocation_type")]
    dry_run: bool,
    /// `Tail` returns the last 4 KB of the execution log, printed on stderr
    #[arg(long, value_enum, value_name = "TYPE")]
    log_type: Option<LogTypeArg>,
    /// Client context for the function, as JSON (base64-encoded for you)
    #[arg(long, value_name = "JSON", conflicts_with = "client_context_base64")]
    client_context: Option<String>,
    /// Client context already base64-encoded, as the API takes it
    #[arg(long, value_name = "BASE64")]
    client_context_base64: Option<String>,
    /// The tenant of a multi-tenant function
    #[arg(long)]
    tenant_id: Option<String>,
    #[command(flatten)]
    connection: ConnectionArgs,
    /// `raw`: the payload bytes; `events`: one JSON line per event (`t_ms` since the request
    /// was sent, payload offset and size; InvokeComplete with the decoded log)
    #[arg(long, value_enum, default_value_t = OutputFormat::Raw)]
    output: OutputFormat,
    /// No live status line and no summary on stderr (errors are still reported)
    #[arg(long, short)]
    quiet: bool,
    /// When to draw the live status line on stderr
    #[arg(long, value_enum, default_value_t = StatusWhen::Auto, hide = true)]
    status_line: StatusWhen,
}

/// Where the endpoint, region, credentials and limits come from
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct ConnectionArgs {
    /// The region (else AWS_REGION, AWS_DEFAULT_REGION, the profile's `region`)
    #[arg(long)]
    pub(crate) region: Option<String>,
    /// The shared-config profile (else AWS_PROFILE, else `default`); its credentials win
    /// over AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, as with the AWS CLI
    #[arg(long)]
    pub(crate) profile: Option<String>,
    /// Send to this endpoint (else AWS_ENDPOINT_URL_LAMBDA, AWS_ENDPOINT_URL, the profile's)
    #[arg(long, value_name = "URL")]
    pub(crate) endpoint_url: Option<String>,
    /// Do not load credentials (for `lambda-stream serve --no-auth`)
    #[arg(long)]
    pub(crate) no_sign_request: bool,
    /// Attempts in all, retries included (else AWS_MAX_ATTEMPTS, the profile's, 3)
    #[arg(long, value_name = "N")]
    pub(crate) max_attempts: Option<u32>,
    /// How to retry (else AWS_RETRY_MODE, the profile's `retry_mode`, `standard`);
    /// `adaptive` also slows the calls down once the service throttles them
    #[arg(long, value_enum, value_name = "MODE")]
    pub(crate) retry_mode: Option<RetryModeArg>,
    /// Seconds to wait for a connection (default 10; 0 waits up to 15 minutes)
    #[arg(long, value_name = "SECONDS", alias = "cli-connect-timeout")]
    pub(crate) connect_timeout: Option<f64>,
    /// Seconds the stream may stay silent (default and 0: 15 minutes, Lambda's longest run)
    #[arg(long, value_name = "SECONDS", alias = "cli-read-timeout")]
    pub(crate) read_timeout: Option<f64>,
    /// Seconds the whole invocation may take, retries and their waits included (default 900,
    /// Lambda's longest run; 0: no limit, the read timeout still ends a stalled stream)
    #[arg(long, value_name = "SECONDS")]
    pub(crate) timeout: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum RetryModeArg {
    Standard,
    Legacy,
    Adaptive,
}

impl From<RetryModeArg> for RetryMode {
    fn from(m: RetryModeArg) -> Self {
        match m {
            RetryModeArg::Standard => Self::Standard,
            RetryModeArg::Legacy => Self::Legacy,
            RetryModeArg::Adaptive => Self::Adaptive,
        }
    }
}

/// AWS CLI v2's `--cli-binary-format`
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BinaryFormat {
    RawInBase64Out,
    Base64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum InvocationTypeArg {
    #[value(name = "RequestResponse")]
    RequestResponse,
    #[value(name = "DryRun")]
    DryRun,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogTypeArg {
    #[value(name = "None")]
    None,
    #[value(name = "Tail")]
    Tail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OutputFormat {
    Raw,
    Events,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum StatusWhen {
    Auto,
    Always,
    Never,
}

/// A message for the user, with the exit status it ends in
pub(crate) struct Failure(pub(crate) Exit, pub(crate) String);

fn usage(message: impl Into<String>) -> Failure {
    Failure(Exit::Usage, message.into())
}

pub(crate) fn run(args: &InvokeArgs) -> ExitCode {
    let outcome = invoke(args);
    #[cfg(unix)]
    if CTRL_C.load(std::sync::atomic::Ordering::SeqCst) {
        // what failed may be the interrupt's doing (a killed `credential_process`): the
        // Ctrl-C thread reports the interrupt and ends the process, within a second
        loop {
            std::thread::park();
        }
    }
    match outcome {
        Ok(exit) => exit.into(),
        Err(Failure(exit, message)) => {
            // it may quote a credential provider's answer (an STS message, a command's
            // stderr): its control characters are shown escaped
            say!("lambda-stream: {}", terminal_safe(&message));
            exit.into()
        }
    }
}

fn invoke(args: &InvokeArgs) -> Result<Exit, Failure> {
    // before anything is invoked: the payload would vanish (see `decode::was_closed`)
    if crate::decode::was_closed(&io::stdout(), crate::decode::Stream::Out) {
        return Err(usage(
            "stdout is closed (a descriptor closed at start reads as /dev/null opened \
             read-write); to discard the payload, redirect it to /dev/null",
        ));
    }
    let params = params(args)?;
    // before the client is built: loading its credentials may run a `credential_process`
    #[cfg(unix)]
    watch_interrupt();
    let client = connect(&args.connection)?;
    let status = match args.status_line {
        // not when the payload goes to the same terminal: the line would overwrite it
        StatusWhen::Auto => {
            !args.quiet && io::stderr().is_terminal() && !io::stdout().is_terminal()
        }
        StatusWhen::Always => true,
        StatusWhen::Never => false,
    };
    // stdout is line-buffered: a buffer of its own, so chunks that arrive together (and
    // the lines of `--output events`) go out in one write; `drive` flushes it before every
    // wait for the network
    let stdout = io::BufWriter::with_capacity(OUT_BUFFER, io::stdout().lock());
    let mut sink: Box<dyn Sink> = match args.output {
        OutputFormat::Raw => Box::new(RawSink(stdout)),
        OutputFormat::Events => Box::new(EventsSink(stdout)),
    };
    INVOKING.store(true, std::sync::atomic::Ordering::SeqCst);
    let run = drive(&client, &params, &mut *sink, status);
    Ok(report(&run, args.quiet))
}

/// The stdout buffer of `invoke`
const OUT_BUFFER: usize = 64 * 1024;

/// Exit status after Ctrl-C, as shells report SIGINT
const INTERRUPTED: i32 = 130;

/// Set once the invocation may have been sent (the credentials are loaded before)
static INVOKING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Set on Ctrl-C, before a running `credential_process` is killed: from then on the Ctrl-C
/// thread alone reports and exits
#[cfg(unix)]
static CTRL_C: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// On Ctrl-C, kills any `credential_process` still running (in its own process group, the
/// terminal's signal does not reach it), says that the function goes on (the service does
/// not stop a function whose client went away), then exits
#[cfg(unix)]
fn watch_interrupt() {
    let Ok(mut signals) = signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT]) else {
        return; // the default action (termination) stays
    };
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            // before the kill: the credentials' failure it causes is not reported (or the
            // status it would end in given) in place of the interrupt
            CTRL_C.store(true, std::sync::atomic::Ordering::SeqCst);
            invoke_config::kill_running_processes();
            // the message below waits for stderr, which a full pipe or a paused terminal
            // can hold for good: the exit does not
            std::thread::spawn(|| {
                std::thread::sleep(std::time::Duration::from_secs(1));
                std::process::exit(INTERRUPTED);
            });
            // held to the exit, so the status line is not drawn again after the message
            let mut err = io::stderr().lock();
            if err.is_terminal() {
                let _ = write!(err, "\r\x1b[2K"); // over the status line
            }
            let _ = if INVOKING.load(std::sync::atomic::Ordering::SeqCst) {
                writeln!(
                    err,
                    "lambda-stream: interrupted; the connection is closed, but the function \
                     runs on to its end (and is billed): Lambda does not stop it when its client goes away"
                )
            } else {
                writeln!(
                    err,
                    "lambda-stream: interrupted before the function was invoked"
                )
            };
            std::process::exit(INTERRUPTED);
        }
    });
}

/// The invocation's parameters from the options
fn params(args: &InvokeArgs) -> Result<InvokeParams, Failure> {
    // with `--cli-binary-format base64`, text and `file://` are base64; `fileb://` and
    // standard input are bytes
    let base64 = args.cli_binary_format == BinaryFormat::Base64;
    let (payload, raw) = match args.payload.as_deref() {
        None => (Vec::new(), true),
        // a closed stdin would read as an empty payload (see `decode::was_closed`)
        Some("-") if crate::decode::was_closed(&io::stdin(), crate::decode::Stream::In) => {
            return Err(usage(
                "--payload - reads standard input, which is closed (a descriptor closed at \
                 start reads as /dev/null opened read-write); for an empty payload, redirect \
                 it from /dev/null",
            ));
        }
        Some("-") => (
            read_limited(io::stdin().lock(), "standard input", MAX_PAYLOAD_LEN)?,
            true,
        ),
        Some(p) => match payload_file(p) {
            Some(path) => {
                // `file://~/event.json`: the shell leaves a `~` inside a word alone, the AWS
                // CLI expands it
                let path = match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
                    (Some(rest), Some(home)) => std::path::Path::new(&home).join(rest),
                    _ => std::path::PathBuf::from(path),
                };
                let file =
                    std::fs::File::open(&path).map_err(|e| usage(format!("--payload {p}: {e}")))?;
                let raw = p.starts_with("fileb://");
                let limit = if base64 && !raw {
                    BASE64_TEXT_LIMIT
                } else {
                    MAX_PAYLOAD_LEN
                };
                (read_limited(file, &path.display().to_string(), limit)?, raw)
            }
            None => (p.as_bytes().to_vec(), false),
        },
    };
    let payload = if base64 && !raw {
        decode_base64_payload(&payload)?
    } else {
        payload
    };
    let mut params = InvokeParams::new(args.function.clone(), payload);
    if args.dry_run || args.invocation_type == Some(InvocationTypeArg::DryRun) {
        params = params.invocation_type(InvocationType::DryRun);
    } else if args.invocation_type.is_some() {
        params = params.invocation_type(InvocationType::RequestResponse);
    }
    match args.log_type {
        Some(LogTypeArg::Tail) => params = params.log_type(LogType::Tail),
        Some(LogTypeArg::None) => params = params.log_type(LogType::None),
        None => {}
    }
    if let Some(json) = &args.client_context {
        // the AWS CLI's `--client-context` takes base64: such a value is not JSON here
        if serde_json::from_str::<serde_json::Value>(json).is_err() {
            return Err(usage(
                "--client-context takes JSON (base64-encoded for you); for a value already \
                 in base64, as the AWS CLI takes it, use --client-context-base64",
            ));
        }
        params = params.client_context(json.clone());
    }
    if let Some(b64) = &args.client_context_base64 {
        let json = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| usage(format!("--client-context-base64 is not base64: {e}")))?;
        params = params.client_context(json);
    }
    if let Some(q) = &args.qualifier {
        params = params.qualifier(q.clone());
    }
    if let Some(t) = &args.tenant_id {
        params = params.tenant_id(t.clone());
    }
    params.validate().map_err(|e| usage(e.to_string()))?;
    Ok(params)
}

/// The file a `--payload` value names: `@PATH`, or the AWS CLI's `file://PATH` and
/// `fileb://PATH` (read as bytes either way: AWS CLI v2 takes `file://` as base64 unless
/// `--cli-binary-format raw-in-base64-out`, which is what people mean)
fn payload_file(value: &str) -> Option<&str> {
    value
        .strip_prefix('@')
        .or_else(|| value.strip_prefix("file://"))
        .or_else(|| value.strip_prefix("fileb://"))
}

/// The most base64 text `--cli-binary-format base64` reads from a file: the service's
/// limit encoded, with room for line breaks
const BASE64_TEXT_LIMIT: usize = MAX_PAYLOAD_LEN.div_ceil(3) * 4 * 2;

/// Reads at most `limit` bytes of a payload (one byte more tells it is over)
fn read_limited(source: impl io::Read, name: &str, limit: usize) -> Result<Vec<u8>, Failure> {
    let mut payload = Vec::new();
    source
        .take(limit as u64 + 1)
        .read_to_end(&mut payload)
        .map_err(|e| usage(format!("--payload: cannot read {name}: {e}")))?;
    if payload.len() > limit {
        return Err(usage(if limit == MAX_PAYLOAD_LEN {
            format!("--payload: {name} is over the {limit}-byte limit of a request payload")
        } else {
            format!(
                "--payload: {name} is over {limit} bytes, more than the base64 text of a \
                 request payload at its {MAX_PAYLOAD_LEN}-byte limit"
            )
        }));
    }
    Ok(payload)
}

/// The bytes of `--payload` text given in base64 (`--cli-binary-format base64`), line
/// breaks and spaces ignored
fn decode_base64_payload(text: &[u8]) -> Result<Vec<u8>, Failure> {
    let text: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let payload = base64::engine::general_purpose::STANDARD
        .decode(&text)
        .map_err(|e| {
            usage(format!(
                "--payload is not base64 ({e}), which --cli-binary-format base64 takes; for \
                 JSON as it is, leave the option out or pass raw-in-base64-out"
            ))
        })?;
    if payload.len() > MAX_PAYLOAD_LEN {
        return Err(usage(format!(
            "--payload: decoded, it is over the {MAX_PAYLOAD_LEN}-byte limit of a request payload"
        )));
    }
    Ok(payload)
}

/// The client, from the options, the environment and the shared files, as the AWS CLI
/// resolves them
fn connect(c: &ConnectionArgs) -> Result<Client, Failure> {
    connect_in(c, Env::from_process())
}

/// [`connect`] in the environment `env`
fn connect_in(c: &ConnectionArgs, env: Env) -> Result<Client, Failure> {
    let shared = SharedConfig::load_with(env, &StdFs, Platform::current(), c.profile.as_deref());
    check_profile(&shared, c)?;
    // As in the AWS CLI, a profile named by --profile beats keys in the environment (which
    // may be another account's); one named by AWS_PROFILE does not
    let shared = if c.profile.is_some() {
        let mut providers = ProviderKind::DEFAULT_CHAIN.to_vec();
        providers.retain(|p| *p != ProviderKind::Environment);
        shared.with_credential_providers(&providers)
    } else {
        shared
    };
    let mut overrides = Overrides::new();
    if let Some(r) = &c.region {
        overrides = overrides.region(r.clone());
    }
    if let Some(u) = &c.endpoint_url {
        overrides = overrides.endpoint_url(u.clone());
    }
    if let Some(n) = c.max_attempts {
        if n == 0 {
            return Err(usage("--max-attempts must be at least 1"));
        }
        overrides = overrides.max_attempts(n);
    }
    if let Some(m) = c.retry_mode {
        overrides = overrides.retry_mode(m.into());
    }
    let config = shared
        .resolve(&overrides)
        .map_err(|e| usage(e.to_string()))?;
    // Like the AWS CLI, a custom endpoint still needs a region to sign for (without one and
    // without an endpoint, the builder asks the EC2 instance metadata, as the CLI does)
    if config.region.is_none() && config.endpoint_url.is_some() {
        return Err(usage(no_region(&shared, &config)));
    }
    let builder = Client::builder_from_config(&shared, &overrides).map_err(|e| match e {
        Error::Endpoint(EndpointError::MissingRegion) => usage(no_region(&shared, &config)),
        e => usage(e.to_string()),
    })?;
    let mut timeouts = Timeouts::default();
    if let Some(s) = c.connect_timeout {
        timeouts = timeouts.with_connect(seconds(s, "--connect-timeout")?);
    }
    if let Some(s) = c.read_timeout {
        let d = seconds(s, "--read-timeout")?;
        timeouts = timeouts.with_idle(d).with_head(d);
    }
    if let Some(s) = c.timeout {
        timeouts = timeouts.with_overall(overall_seconds(s)?);
    }
    let mut builder = builder.timeouts(timeouts);
    if c.no_sign_request {
        builder = builder.no_signing();
    }
    let client = builder.build().map_err(|e| usage(format!("client: {e}")))?;
    // Load the credentials now: none is a configuration error that names each provider of
    // the chain and why it gave nothing
    if let Err(e) = client.credentials() {
        let why = match &e {
            Error::Credentials(source) => source.to_string(),
            e => e.to_string(),
        };
        if credentials_unreachable(&e) {
            // a provider that failed to answer (STS, SSO, a container endpoint): the network
            // or the service, not the configuration
            return Err(Failure(Exit::Failed, why));
        }
        return Err(usage(format!(
            "{why}\n(for an endpoint that does not check signatures, such as `lambda-stream serve \
             --no-auth`, pass --no-sign-request)"
        )));
    }
    Ok(client)
}

/// A timeout option in seconds; 0 means Lambda's longest run
fn seconds(s: f64, option: &str) -> Result<Duration, Failure> {
    if s == 0.0 {
        return Ok(FIFTEEN_MINUTES);
    }
    // a positive number too small for a nanosecond is not a timeout of zero
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| usage(format!("{option} takes a number of seconds, got {s}")))
}

/// `--timeout` in seconds; 0 means no limit (the read timeout still ends a stalled stream)
fn overall_seconds(s: f64) -> Result<Duration, Failure> {
    if s == 0.0 {
        return Ok(MAX_TIMEOUT);
    }
    seconds(s, "--timeout")
}

/// An explicitly chosen profile must exist, as the AWS CLI requires
fn check_profile(shared: &SharedConfig, c: &ConnectionArgs) -> Result<(), Failure> {
    let chosen = c.profile.is_some() || shared.env().get("AWS_PROFILE").is_some();
    let Ok(profiles) = shared.profiles() else {
        return Ok(()); // resolve reports the broken file
    };
    if !chosen || profiles.profile(shared.profile_name()).is_some() {
        return Ok(());
    }
    let names: Vec<&str> = profiles
        .profiles()
        .map(invoke_config::profile::Section::name)
        .collect();
    let mut msg = format!(
        "the config profile `{}` could not be found",
        shared.profile_name()
    );
    if names.is_empty() {
        msg.push_str("; no profile is defined in ");
    } else {
        let _ = write!(msg, "; the profiles are {} (in ", names.join(", "));
    }
    msg.push_str(&files_looked_at(shared));
    if !names.is_empty() {
        msg.push(')');
    }
    msg.push_str(if c.profile.is_some() {
        "; pick one with --profile"
    } else {
        "; AWS_PROFILE chose it: pick another or unset it"
    });
    Err(usage(msg))
}

/// The shared files and what came of reading them
fn files_looked_at(shared: &SharedConfig) -> String {
    let files: Vec<String> = shared
        .files()
        .iter()
        .map(|(path, status)| {
            let status = match status {
                invoke_config::config::FileStatus::Read(_) => "read",
                invoke_config::config::FileStatus::Missing => "missing",
                invoke_config::config::FileStatus::Failed => "invalid",
                invoke_config::config::FileStatus::Skipped(why) => {
                    return format!("{} (skipped: {why})", path.display());
                }
            };
            format!("{} ({status})", path.display())
        })
        .collect();
    if files.is_empty() {
        "no shared file (HOME is not set)".to_owned()
    } else {
        files.join(", ")
    }
}

fn no_region(shared: &SharedConfig, config: &ClientConfig) -> String {
    format!(
        "no region: looked at --region, AWS_REGION, AWS_DEFAULT_REGION, `region` in profile \
         `{}` of {}, and the EC2 instance metadata (unless AWS_EC2_METADATA_DISABLED); set one \
         of them, e.g. --region us-east-1",
        config.profile,
        files_looked_at(shared)
    )
}

/// Where the events of an invocation go; what it writes may wait in a buffer until
/// [`flush`](Self::flush), which [`drive`] calls before it waits for the network and at the end
pub(crate) trait Sink {
    /// The response head arrived
    fn head(&mut self, _response: &Response, _at: Duration) -> io::Result<()> {
        Ok(())
    }
    /// A payload chunk; `offset` counts the payload bytes before it
    fn chunk(&mut self, bytes: &[u8], offset: u64, at: Duration) -> io::Result<()>;
    /// The last event
    fn complete(&mut self, _complete: &InvokeComplete, _at: Duration) -> io::Result<()> {
        Ok(())
    }
    /// An event type this client does not know
    fn unknown(&mut self, _event_type: &str, _at: Duration) -> io::Result<()> {
        Ok(())
    }
    /// The invocation failed after the request was sent (stderr says why in any case)
    fn failed(&mut self, _error: &Error, _at: Duration) -> io::Result<()> {
        Ok(())
    }
    /// Writes out what is buffered
    fn flush(&mut self) -> io::Result<()>;
}

/// `--output raw`: the payload bytes
struct RawSink<W>(W);

impl<W: Write> Sink for RawSink<W> {
    fn chunk(&mut self, bytes: &[u8], _offset: u64, _at: Duration) -> io::Result<()> {
        self.0.write_all(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// `--output events`: one JSON line per event
struct EventsSink<W>(W);

impl<W: Write> EventsSink<W> {
    fn line(&mut self, value: &serde_json::Value) -> io::Result<()> {
        writeln!(self.0, "{value}")
    }
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

impl<W: Write> Sink for EventsSink<W> {
    fn head(&mut self, r: &Response, at: Duration) -> io::Result<()> {
        self.line(&json!({
            "event": "ResponseHead",
            "t_ms": millis(at),
            "status": r.status(),
            "executed_version": r.executed_version(),
            "content_type": r.content_type(),
            "request_id": r.request_id(),
            "attempts": r.attempts(),
        }))
    }

    fn chunk(&mut self, bytes: &[u8], offset: u64, at: Duration) -> io::Result<()> {
        self.line(&json!({
            "event": "PayloadChunk",
            "t_ms": millis(at),
            "offset": offset,
            "size": bytes.len(),
        }))
    }

    fn complete(&mut self, c: &InvokeComplete, at: Duration) -> io::Result<()> {
        let log = c
            .decoded_log()
            .ok()
            .flatten()
            .map(|l| String::from_utf8_lossy(&l).into_owned());
        self.line(&json!({
            "event": "InvokeComplete",
            "t_ms": millis(at),
            "error_code": c.error_code,
            "error_details": c.error_details,
            "log": log,
        }))
    }

    fn unknown(&mut self, event_type: &str, at: Duration) -> io::Result<()> {
        self.line(&json!({"event": event_type, "t_ms": millis(at), "known": false}))
    }

    fn failed(&mut self, error: &Error, at: Duration) -> io::Result<()> {
        self.line(&json!({"event": "Error", "t_ms": millis(at), "message": describe(error)}))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Counts of one invocation
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tally {
    /// From sending the request to the first payload byte
    pub(crate) first_byte: Option<Duration>,
    /// Payload chunks
    pub(crate) chunks: u64,
    /// Payload bytes
    pub(crate) bytes: u64,
    /// The whole invocation
    pub(crate) elapsed: Duration,
}

/// How an invocation ended
pub(crate) enum Outcome {
    /// `InvokeComplete` arrived (successful or a function error)
    Complete(InvokeComplete),
    /// A `DryRun` passed
    DryRun,
    /// Stdout was closed by its reader: the invocation was abandoned
    Closed,
    /// Writing the output failed
    Output(io::Error),
    /// The invocation failed
    Failed(Error),
}

/// One invocation, as it went
pub(crate) struct Run {
    pub(crate) outcome: Outcome,
    pub(crate) tally: Tally,
    pub(crate) executed_version: Option<String>,
    pub(crate) request_id: Option<String>,
}

/// Invokes and hands each event to `sink` as it arrives, with a live status line on stderr
/// when `status`
pub(crate) fn drive(
    client: &Client,
    params: &InvokeParams,
    sink: &mut dyn Sink,
    status: bool,
) -> Run {
    let start = Instant::now();
    let status = status.then(|| StatusLine::start(start));
    let mut tally = Tally::default();
    let (mut executed_version, mut request_id) = (None, None);
    let outcome = match client.invoke(params) {
        Err(e) => {
            let _ = sink.failed(&e, start.elapsed());
            Outcome::Failed(e)
        }
        Ok(response) => {
            executed_version = response.executed_version().map(str::to_owned);
            request_id = response.request_id().map(str::to_owned);
            let head = sink.head(&response, start.elapsed());
            if response.is_dry_run() {
                head.map_or_else(output_failure, |()| Outcome::DryRun)
            } else if let Err(e) = head {
                output_failure(e)
            } else {
                stream(response, sink, &mut tally, start, status.as_ref())
            }
        }
    };
    // the output of a failed invocation is kept as far as it goes; a failure to write it out
    // is the outcome of one that succeeded
    let outcome = match (sink.flush(), outcome) {
        (Err(e), Outcome::Complete(_) | Outcome::DryRun) => output_failure(e),
        (_, outcome) => outcome,
    };
    if let Some(s) = status {
        s.finish();
    }
    tally.elapsed = start.elapsed();
    Run {
        outcome,
        tally,
        executed_version,
        request_id,
    }
}

fn output_failure(e: io::Error) -> Outcome {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Outcome::Closed
    } else {
        Outcome::Output(e)
    }
}

fn stream(
    mut response: Response,
    sink: &mut dyn Sink,
    tally: &mut Tally,
    start: Instant,
    status: Option<&StatusLine>,
) -> Outcome {
    // Dropping the response on an early return closes the connection
    let mut at = start.elapsed();
    loop {
        // the events that arrived with the last read first, written without a flush; then
        // the output is flushed before waiting for the network (so nothing waits in the
        // buffer while the function is silent), and what arrives next is timed anew
        let event = if let Some(event) = response.next_ready() {
            Ok(event)
        } else {
            if let Err(e) = sink.flush() {
                return output_failure(e);
            }
            let Some(event) = response.next() else {
                break;
            };
            at = start.elapsed();
            event
        };
        let written = match event {
            Err(e) => {
                // the error is reported on stderr even when the sink cannot take it
                let _ = sink.failed(&e, at);
                return Outcome::Failed(e);
            }
            Ok(Event::PayloadChunk(bytes)) => {
                tally.first_byte.get_or_insert(at);
                let r = sink.chunk(&bytes, tally.bytes, at);
                tally.chunks += 1;
                tally.bytes += bytes.len() as u64;
                r
            }
            Ok(Event::InvokeComplete(c)) => {
                return sink
                    .complete(&c, at)
                    .map_or_else(output_failure, |()| Outcome::Complete(c));
            }
            Ok(Event::Unknown { event_type, .. }) => sink.unknown(&event_type, at),
            Ok(_) => Ok(()),
        };
        if let Err(e) = written {
            return output_failure(e);
        }
        if let Some(s) = status {
            s.update(tally);
        }
    }
    // The iterator ends only after InvokeComplete or an error
    let e = Error::Stream(StreamError::MissingInvokeComplete {
        chunks: tally.chunks,
        bytes: tally.bytes,
    });
    let _ = sink.failed(&e, start.elapsed());
    Outcome::Failed(e)
}

/// The diagnostics on stderr and the exit status
fn report(run: &Run, quiet: bool) -> Exit {
    let t = &run.tally;
    match &run.outcome {
        Outcome::Closed => Exit::Success,
        Outcome::DryRun => {
            if !quiet {
                say!("lambda-stream: dry run passed: the function would run");
            }
            Exit::Success
        }
        Outcome::Output(e) => {
            say!("lambda-stream: cannot write the output: {e}");
            Exit::Failed
        }
        Outcome::Complete(c) => {
            if let Some(log) = c.decoded_log().ok().flatten() {
                say!("--- log tail ---");
                say_part!("{}", terminal_safe(&String::from_utf8_lossy(&log)));
                if !log.ends_with(b"\n") {
                    say!("");
                }
                say!("---");
            }
            if c.is_error() {
                say!(
                    "lambda-stream: function error {}: {}",
                    terminal_safe(c.error_code.as_deref().unwrap_or_default()),
                    terminal_safe(c.error_details.as_deref().unwrap_or_default())
                );
            }
            if !quiet || c.is_error() {
                say!("lambda-stream: {}", summary(run));
            }
            if c.is_error() {
                Exit::Function
            } else {
                Exit::Success
            }
        }
        Outcome::Failed(e) => {
            let exit = failure_exit(e);
            say!("lambda-stream: {}", terminal_safe(&describe(e)));
            if exit == Exit::Failed && (t.chunks > 0 || run.request_id.is_some()) {
                say!(
                    "lambda-stream: the stream was cut: {} payload byte{} in {} chunk{} arrived \
                     and were written",
                    t.bytes,
                    plural(t.bytes),
                    t.chunks,
                    plural(t.chunks)
                );
            }
            exit
        }
    }
}

/// `text` from the function or the service with its control characters (an escape sequence
/// that retitles the terminal or writes the clipboard) shown escaped; line breaks and tabs
/// kept
pub(crate) fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.contains(unsafe_char) {
        return text.into();
    }
    text.chars()
        .map(|c| {
            if unsafe_char(c) {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

pub(crate) fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Executed version, request id and the numbers
pub(crate) fn summary(run: &Run) -> String {
    let t = &run.tally;
    let mut s = format!(
        "executed version {}, request id {}: {} byte{} in {} chunk{}",
        run.executed_version.as_deref().unwrap_or("unknown"),
        run.request_id.as_deref().unwrap_or("none"),
        t.bytes,
        plural(t.bytes),
        t.chunks,
        plural(t.chunks),
    );
    if let Some(first) = t.first_byte {
        let _ = write!(s, ", first byte after {}", human_duration(first));
    }
    let _ = write!(s, ", {} in all", human_duration(t.elapsed));
    s
}

/// Whether `e` is a credentials provider that could not be reached or failed on its side
/// (asking again later may succeed), rather than credentials missing or misconfigured
fn credentials_unreachable(e: &Error) -> bool {
    matches!(e, Error::Credentials(source)
        if source.downcast_ref::<CredentialsError>().is_some_and(CredentialsError::is_retryable))
}

pub(crate) fn failure_exit(e: &Error) -> Exit {
    match e {
        Error::Function(_) => Exit::Function,
        e if credentials_unreachable(e) => Exit::Failed,
        Error::Config(_) | Error::InvalidParams(_) | Error::Credentials(_) | Error::Sign(_) => {
            Exit::Usage
        }
        _ => Exit::Failed,
    }
}

/// The error with what the service said, when it said something
pub(crate) fn describe(e: &Error) -> String {
    if let Some(s) = e.service_error() {
        let mut m = format!("service error {}", s.code);
        if let Some(status) = s.status {
            let _ = write!(m, " (HTTP {status})");
        }
        if let Some(msg) = &s.message {
            let _ = write!(m, ": {msg}");
        }
        if let Some(id) = &s.request_id {
            let _ = write!(m, " [request id {id}]");
        }
        if let Some(n) = e.attempts() {
            let _ = write!(m, " after {n} attempt{}", plural(u64::from(n)));
        }
        return m;
    }
    match e {
        Error::Stream(StreamError::MissingInvokeComplete { .. }) => {
            format!("the stream ended without InvokeComplete: {e}")
        }
        Error::Stream(StreamError::Decode(_)) => format!("the stream is broken or truncated: {e}"),
        _ => {
            // the transport's own words: "invalid peer certificate: UnknownIssuer", ...
            let mut m = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                let text = s.to_string();
                if !m.contains(&text) {
                    let _ = write!(m, ": {text}");
                }
                source = s.source();
            }
            m
        }
    }
}

pub(crate) fn human_bytes(n: u64) -> String {
    #[allow(clippy::cast_precision_loss)] // a display value
    let f = n as f64;
    if n < 1024 {
        format!("{n} B")
    } else if n < 1 << 20 {
        format!("{:.1} KiB", f / 1024.0)
    } else {
        format!("{:.1} MiB", f / f64::from(1 << 20))
    }
}

pub(crate) fn human_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_line_breaks_kept() {
        assert_eq!(terminal_safe("plain\ttext\n"), "plain\ttext\n");
        assert_eq!(
            terminal_safe("\u{1b}]0;owned\u{7}x"),
            "\\u{1b}]0;owned\\u{7}x"
        );
        assert_eq!(terminal_safe("\u{9b}31m"), "\\u{9b}31m");
    }

    #[test]
    fn timeout_options_in_seconds() {
        assert_eq!(overall_seconds(0.0).ok(), Some(MAX_TIMEOUT));
        assert_eq!(overall_seconds(1.5).ok(), Some(Duration::from_millis(1500)));
        assert!(overall_seconds(-1.0).is_err());
        // the per-phase timeouts take 0 as Lambda's longest run, not as no limit
        assert_eq!(seconds(0.0, "--read-timeout").ok(), Some(FIFTEEN_MINUTES));
        assert!(seconds(f64::NAN, "--read-timeout").is_err());
    }

    /// `--retry-mode` beats `AWS_RETRY_MODE`, and `adaptive` gives the client its limiter
    #[test]
    fn the_retry_mode_option_beats_the_environment() {
        let adaptive = |option: Option<RetryModeArg>, variable: &str| {
            let env = Env::from_pairs([
                ("AWS_CONFIG_FILE", "/nonexistent/config"),
                ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials"),
                ("AWS_RETRY_MODE", variable),
            ]);
            let args = ConnectionArgs {
                region: Some("us-east-1".to_owned()),
                endpoint_url: Some("http://127.0.0.1:9".to_owned()),
                no_sign_request: true,
                retry_mode: option,
                ..ConnectionArgs::default()
            };
            let client = connect_in(&args, env).unwrap_or_else(|Failure(_, m)| panic!("{m}"));
            client.rate_limiter().is_some()
        };
        assert!(adaptive(Some(RetryModeArg::Adaptive), "standard"));
        assert!(!adaptive(Some(RetryModeArg::Standard), "adaptive"));
        assert!(!adaptive(Some(RetryModeArg::Legacy), "adaptive"));
        assert!(adaptive(None, "adaptive"));
        assert!(!adaptive(None, "standard"));
    }

    #[test]
    fn sizes_and_durations_for_people() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes((1 << 20) - 1), "1024.0 KiB");
        assert_eq!(human_bytes(1 << 20), "1.0 MiB");
        assert_eq!(human_bytes(5 << 29), "2560.0 MiB");
        assert_eq!(human_duration(Duration::ZERO), "0.0 ms");
        assert_eq!(human_duration(Duration::from_micros(12_345)), "12.3 ms");
        assert_eq!(human_duration(Duration::from_micros(999_900)), "999.9 ms");
        assert_eq!(human_duration(Duration::from_secs(1)), "1.00 s");
        assert_eq!(human_duration(Duration::from_millis(61_250)), "61.25 s");
    }

    /// The exit status of an error during the invocation, as `invoke --help` lists them
    #[test]
    fn errors_exit_with_their_documented_status() {
        let credentials = |retryable| {
            Error::Credentials(Box::new(CredentialsError::Load {
                provider: "sts",
                message: "no answer".to_owned(),
                retryable,
            }))
        };
        let function = InvokeComplete {
            error_code: Some("Unhandled".to_owned()),
            ..InvokeComplete::default()
        };
        let cut = StreamError::MissingInvokeComplete {
            chunks: 1,
            bytes: 10,
        };
        for (e, exit) in [
            (Error::Function(function), Exit::Function),
            (Error::Config("a bad proxy URL".to_owned()), Exit::Usage),
            (credentials(false), Exit::Usage),
            (credentials(true), Exit::Failed),
            (Error::Stream(cut), Exit::Failed),
        ] {
            assert_eq!(failure_exit(&e), exit, "{e}");
        }
    }

    #[test]
    fn a_cut_or_broken_stream_is_described_as_such() {
        let cut = Error::Stream(StreamError::MissingInvokeComplete {
            chunks: 1,
            bytes: 10,
        });
        assert!(
            describe(&cut).starts_with("the stream ended without InvokeComplete: "),
            "{}",
            describe(&cut)
        );
        let mut decoder = invoke_proto::MessageDecoder::new();
        decoder.feed(invoke_proto::bytes::Bytes::from_static(&[0xff; 16]));
        let broken = Error::Stream(StreamError::Decode(decoder.next_message().unwrap_err()));
        assert!(
            describe(&broken).starts_with("the stream is broken or truncated: "),
            "{}",
            describe(&broken)
        );
    }
}
