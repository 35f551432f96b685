//! `lambda-stream serve`: run the local Lambda endpoint

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use std::collections::HashMap;

use invoke_emulator::{
    BUILTINS, Emulator, Faults, FunctionConfig, ProcessFunction, ServerLimits, builtin,
};

/// Options of `serve`
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Port to listen on (0 picks a free one)
    #[arg(long, default_value_t = 9001)]
    port: u16,
    /// Address to bind
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Only accept requests signed with this key pair (repeatable); without it any
    /// well-formed SigV4 signature is accepted
    #[arg(long = "credentials", value_name = "KEY:SECRET")]
    credentials: Vec<KeyPair>,
    /// Accept unsigned requests
    #[arg(long, conflicts_with = "credentials")]
    no_auth: bool,
    /// Host a real function process through the Lambda Runtime API (repeatable): COMMAND is
    /// started with AWS_LAMBDA_RUNTIME_API and the usual variables set; its stdout/stderr is
    /// the log returned with LogType Tail
    #[arg(long = "function", value_name = "NAME=COMMAND")]
    functions: Vec<String>,
    /// The `_HANDLER` of a --function process (repeatable); by default the command's last
    /// argument, as the AWS Runtime Interface Emulator takes it (unset for a command without
    /// arguments or one run through the shell)
    #[arg(long = "handler", value_name = "NAME=HANDLER")]
    handlers: Vec<String>,
    /// Run a --function process in DIR, which is also its `LAMBDA_TASK_ROOT` (repeatable); by
    /// default the directory serve runs in
    #[arg(long = "task-root", value_name = "NAME=DIR")]
    task_roots: Vec<String>,
    /// The emulator's region: in the ARNs functions see, suggested to clients, checked in
    /// signatures; a function ARN of another region is not found
    #[arg(long, default_value = "us-east-1", value_parser = region)]
    region: String,
    /// Run the endpoint's clock SECS ahead of this machine's, as the service's clock is to a
    /// client whose clock is behind: a request signed more than 5 minutes before that clock
    /// is refused (403 InvalidSignatureException, "Signature expired") and every response's
    /// `Date` gives its time; for testing how a client corrects its clock
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    clock_ahead: Option<Duration>,
    /// Inject faults into every invocation of a function, e.g. `echo=corrupt-crc` or
    /// `count=delay-ms=100,close-after=500` (see the emulator's fault table; repeatable)
    #[arg(long = "fault", value_name = "NAME=SPEC")]
    faults: Vec<String>,
    /// Limit a function's concurrent invocations; more get 429 TooManyRequestsException
    /// (repeatable)
    #[arg(long = "concurrency", value_name = "NAME=N")]
    concurrency: Vec<String>,
    /// Invocation timeout in seconds (at most 900; default 300), past which the function
    /// fails with Sandbox.Timedout and a process function's process is killed: SECONDS for
    /// every function, NAME=SECONDS for one (repeatable; NAME=SECONDS wins)
    #[arg(long = "timeout", value_name = "[NAME=]SECONDS")]
    timeouts: Vec<String>,
    /// Time a new process of a --function has to poll the Runtime API's /next, in seconds
    /// (at most 900; default 10, as Lambda's init phase): SECONDS for every process
    /// function, NAME=SECONDS for one (repeatable; NAME=SECONDS wins)
    #[arg(long = "init-timeout", value_name = "[NAME=]SECONDS")]
    init_timeouts: Vec<String>,
    /// Serve https with a certificate generated at start; the CA certificate to trust
    /// (`AWS_CA_BUNDLE`) is written to --ca-file, or to a temporary file removed on stop
    #[arg(long)]
    tls: bool,
    /// With --tls: write the CA certificate (PEM) to this file, created or replaced, and
    /// left in place
    #[arg(long, value_name = "PATH", requires = "tls")]
    ca_file: Option<std::path::PathBuf>,
    /// Do not log one line per invocation
    #[arg(long, short)]
    quiet: bool,
    /// Seconds a client has to send a whole request head, from connecting or from the first
    /// byte of a later request; then the connection is closed [default: 30]
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    header_timeout: Option<Duration>,
    /// Seconds a client has to send a request body once its head arrived; then 408
    /// RequestTimeoutException [default: 60]
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    body_timeout: Option<Duration>,
    /// Seconds a kept-alive connection may wait for its next request; then it is closed
    /// [default: 120, longer than SDK connection pools keep idle connections]
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    idle_timeout: Option<Duration>,
    /// Seconds a response may wait for its client to read any of it; then the connection is
    /// closed [default: 120]
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    write_timeout: Option<Duration>,
    /// Connections served at once; at the limit a new connection closes the kept-alive one
    /// idle the longest, or waits [default: 1024]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: Option<u32>,
    /// Asynchronous (Event) invocations running at once; more get 429
    /// TooManyRequestsException [default: 256]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_event_invocations: Option<u32>,
}

/// A number of seconds, fractions allowed (`0.5`), more than 0
fn seconds(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        // a positive number too small for a nanosecond is not a limit of zero
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{text:?} is not a number of seconds above 0 (at most 2^64)"))
}

/// A region a client can be configured with, as the emulator requires
fn region(text: &str) -> Result<String, String> {
    invoke_proto::regional_host("lambda", text, false, false)
        .map(|_| text.to_owned())
        .map_err(|e| e.to_string())
}

/// The endpoint's timeouts and connection limit: the options given, the defaults for the
/// others
fn server_limits(args: &ServeArgs) -> ServerLimits {
    let mut limits = ServerLimits::default();
    if let Some(t) = args.header_timeout {
        limits.header_read_timeout = t;
    }
    if let Some(t) = args.body_timeout {
        limits.body_read_timeout = t;
    }
    if let Some(t) = args.idle_timeout {
        limits.idle_timeout = t;
    }
    if let Some(t) = args.write_timeout {
        limits.write_timeout = t;
    }
    if let Some(n) = args.max_connections {
        limits.max_connections = n as usize;
    }
    if let Some(n) = args.max_event_invocations {
        limits.max_event_invocations = n as usize;
    }
    limits
}

/// The `--function NAME=COMMAND` pairs
fn process_functions(args: &ServeArgs) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for f in &args.functions {
        let (name, command) = f
            .split_once('=')
            .filter(|(n, c)| !n.is_empty() && !c.trim().is_empty())
            .ok_or_else(|| format!("--function takes NAME=COMMAND, got {f:?}"))?;
        if invoke_proto::parse_function_name(name).is_none_or(|p| p.name != name) {
            return Err(format!("--function: {name:?} is not a valid function name"));
        }
        // the second would replace the first, and lose the settings given for the name
        if out.iter().any(|(n, _)| n == name) {
            return Err(format!("--function: {name:?} is given twice"));
        }
        out.push((name.to_owned(), command.to_owned()));
    }
    Ok(out)
}

/// Durations from `--timeout` or `--init-timeout`: `SECONDS` for every function,
/// `NAME=SECONDS` for one
#[derive(Debug, Default)]
struct Timeouts {
    all: Option<Duration>,
    by_name: HashMap<String, Duration>,
}

impl Timeouts {
    fn parse(flag: &str, values: &[String]) -> Result<Self, String> {
        let mut t = Self::default();
        for v in values {
            let (name, secs) = match v.split_once('=') {
                Some((n, s)) => (Some(n), s),
                None => (None, v.as_str()),
            };
            let d = secs
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0)
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .filter(|d| !d.is_zero() && *d <= FunctionConfig::MAX_TIMEOUT)
                .ok_or_else(|| {
                    format!(
                        "{flag} {v:?}: SECONDS must be a number above 0 and at most {}",
                        FunctionConfig::MAX_TIMEOUT.as_secs()
                    )
                })?;
            match name {
                Some(n) => {
                    t.by_name.insert(n.to_owned(), d);
                }
                None => t.all = Some(d),
            }
        }
        Ok(t)
    }

    /// The duration for function `name`, if one was given
    fn of(&self, name: &str) -> Option<Duration> {
        self.by_name.get(name).copied().or(self.all)
    }
}

/// `--handler` and `--task-root` of the process functions
#[derive(Debug, Default)]
struct ProcessSettings {
    handlers: HashMap<String, String>,
    /// Absolute directories
    task_roots: HashMap<String, std::path::PathBuf>,
    /// `--init-timeout`
    init_timeouts: HashMap<String, Duration>,
}

impl ProcessSettings {
    /// Function `name` running `command`, with its settings
    fn function(&self, name: &str, command: &str) -> ProcessFunction {
        let mut f = ProcessFunction::new(name, command);
        if let Some(h) = self.handlers.get(name) {
            f = f.handler(h.clone());
        }
        if let Some(d) = self.task_roots.get(name) {
            f = f.working_dir(d.clone());
        }
        if let Some(t) = self.init_timeouts.get(name) {
            f = f.init_timeout(*t);
        }
        f
    }
}

/// The NAME and VALUE of `option`'s NAME=VALUE, NAME a `--function`
fn process_pair<'a>(
    option: &str,
    spec: &'a str,
    processes: &[(String, String)],
) -> Result<(&'a str, &'a str), String> {
    let (name, value) = spec
        .split_once('=')
        .filter(|(n, v)| !n.is_empty() && !v.is_empty())
        .ok_or_else(|| format!("{option} takes NAME=VALUE, got {spec:?}"))?;
    if !processes.iter().any(|(p, _)| p == name) {
        return Err(format!("{option}: no --function named {name:?}"));
    }
    Ok((name, value))
}

/// The `--handler NAME=HANDLER`, `--task-root NAME=DIR` and `--init-timeout` settings, for
/// `--function` names only; each DIR must be a directory
fn process_settings(
    args: &ServeArgs,
    processes: &[(String, String)],
) -> Result<ProcessSettings, String> {
    let mut settings = ProcessSettings::default();
    for spec in &args.handlers {
        let (name, handler) = process_pair("--handler", spec, processes)?;
        settings
            .handlers
            .insert(name.to_owned(), handler.to_owned());
    }
    for spec in &args.task_roots {
        let (name, dir) = process_pair("--task-root", spec, processes)?;
        let dir = std::path::absolute(dir)
            .ok()
            .filter(|d| d.is_dir())
            .ok_or_else(|| format!("--task-root {spec:?}: {dir:?} is not a directory"))?;
        settings.task_roots.insert(name.to_owned(), dir);
    }
    settings.init_timeouts = init_timeouts(args, processes)?;
    Ok(settings)
}

/// Per-function settings from `--fault`, `--concurrency` and `--timeout`
fn function_configs(
    args: &ServeArgs,
    processes: &[(String, String)],
) -> Result<HashMap<String, FunctionConfig>, String> {
    let mut configs: HashMap<String, FunctionConfig> = HashMap::new();
    let timeouts = Timeouts::parse("--timeout", &args.timeouts)?;
    if timeouts.all.is_some() {
        // Every function gets a configuration, so that the timeout reaches them all
        let names = BUILTINS
            .iter()
            .copied()
            .chain(processes.iter().map(|(p, _)| p.as_str()));
        for name in names {
            configs.entry(name.to_owned()).or_default();
        }
    }
    for name in timeouts.by_name.keys() {
        configs.entry(name.clone()).or_default();
    }
    for (name, config) in &mut configs {
        if let Some(t) = timeouts.of(name) {
            config.timeout = t;
        }
    }
    for f in &args.faults {
        let (name, spec) = f
            .split_once('=')
            .ok_or_else(|| format!("--fault takes NAME=SPEC, got {f:?}"))?;
        let faults = Faults::parse(spec).map_err(|e| format!("--fault {f:?}: {e}"))?;
        let c = configs.entry(name.to_owned()).or_default();
        c.faults = c.faults.merge(&faults);
    }
    for f in &args.concurrency {
        let (name, n) = f
            .split_once('=')
            .ok_or_else(|| format!("--concurrency takes NAME=N, got {f:?}"))?;
        let n = n
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= FunctionConfig::MAX_CONCURRENCY)
            .ok_or_else(|| {
                format!(
                    "--concurrency {f:?}: N must be a whole number from 0 to {}",
                    FunctionConfig::MAX_CONCURRENCY
                )
            })?;
        configs.entry(name.to_owned()).or_default().concurrency = Some(n);
    }
    let known = |n: &str| BUILTINS.contains(&n) || processes.iter().any(|(p, _)| p == n);
    if let Some(unknown) = configs.keys().find(|n| !known(n)) {
        return Err(format!("no function named {unknown:?}"));
    }
    Ok(configs)
}

/// The `--init-timeout` of each process function
fn init_timeouts(
    args: &ServeArgs,
    processes: &[(String, String)],
) -> Result<HashMap<String, Duration>, String> {
    let t = Timeouts::parse("--init-timeout", &args.init_timeouts)?;
    if let Some(name) = t
        .by_name
        .keys()
        .find(|n| !processes.iter().any(|(p, _)| p == *n))
    {
        return Err(format!(
            "--init-timeout: {name:?} is not a process function (--function NAME=COMMAND)"
        ));
    }
    Ok(processes
        .iter()
        .filter_map(|(name, _)| Some((name.clone(), t.of(name)?)))
        .collect())
}

/// The process functions, every function's settings and the process functions' own
/// settings, from the command line
type Functions = (
    Vec<(String, String)>,
    HashMap<String, FunctionConfig>,
    ProcessSettings,
);

fn functions(args: &ServeArgs) -> Result<Functions, String> {
    let processes = process_functions(args)?;
    let configs = function_configs(args, &processes)?;
    let settings = process_settings(args, &processes)?;
    Ok((processes, configs, settings))
}

pub(crate) fn run(args: ServeArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            say!("lambda-stream: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> ExitCode {
    let (processes, mut configs, settings) = match functions(&args) {
        Ok(x) => x,
        Err(e) => {
            say!("lambda-stream: {e}");
            return ExitCode::from(2);
        }
    };
    let mut builder = Emulator::builder().builtins().region(args.region.clone());
    let mut names: Vec<String> = BUILTINS.iter().map(|s| (*s).to_owned()).collect();
    for (name, command) in &processes {
        let config = configs.remove(name).unwrap_or_default();
        builder = builder.process_function_with(settings.function(name, command), config);
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    for (name, config) in configs {
        if let Some(handler) = builtin(&name) {
            builder = builder.function_arc(name, handler, config);
        }
    }
    let mut shown_key = None;
    for KeyPair(pair) in &args.credentials {
        let Some((key, secret)) = pair
            .split_once(':')
            .filter(|(k, s)| !k.is_empty() && !s.is_empty())
        else {
            say!(
                "lambda-stream: --credentials takes KEY:SECRET, got {:?}",
                redact(pair)
            );
            return ExitCode::from(2);
        };
        // the secret the user gave is theirs: the banner names it without showing it
        shown_key.get_or_insert((key.to_owned(), None));
        builder = builder.credentials(key, secret);
    }
    if args.no_auth {
        builder = builder.no_auth();
    }
    if args.quiet {
        builder = builder.quiet();
    }
    builder = builder.limits(server_limits(&args));
    if let Some(by) = args.clock_ahead {
        builder = builder.clock_ahead(by);
    }
    builder = match (&args.ca_file, args.tls) {
        (Some(path), _) => builder.tls_ca_file(path),
        (None, true) => builder.tls(),
        (None, false) => builder,
    };
    let emulator = match builder.start(SocketAddr::new(args.bind, args.port)).await {
        Ok(e) => e,
        Err(e) => {
            say!(
                "lambda-stream: cannot serve on {}:{}: {e}",
                args.bind,
                args.port
            );
            return ExitCode::from(1);
        }
    };
    let url = emulator.url();
    let (key, secret) =
        shown_key.unwrap_or_else(|| ("AKIDLOCAL".to_owned(), Some("local-secret".to_owned())));
    let auth = if args.no_auth {
        "unsigned requests accepted"
    } else if args.credentials.is_empty() {
        "any SigV4 signature accepted"
    } else {
        "only the given credentials accepted"
    };
    let stop = match StopSignal::install() {
        Ok(s) => s,
        Err(e) => {
            say!("lambda-stream: cannot install the Ctrl-C handler: {e}");
            return ExitCode::from(1);
        }
    };
    // One write, errors ignored: a reader that went away must not take the server down
    let text = banner(
        &url,
        &names,
        auth,
        (&key, secret.as_deref()),
        &args.region,
        emulator.ca_pem_path(),
        args.clock_ahead,
    );
    let _ = std::io::stdout().write_all(text.as_bytes());
    let _ = std::io::stdout().flush();
    stop.wait().await;
    // queued after the request lines, and never held up by a stderr nobody reads
    invoke_emulator::write_stderr_line(
        "lambda-stream: stopping (functions still running are abandoned)",
    );
    emulator.shutdown().await;
    ExitCode::SUCCESS
}

/// What `serve` prints once it listens: the endpoint and how to point clients at it
fn banner(
    url: &str,
    names: &[String],
    auth: &str,
    (key, secret): (&str, Option<&str>),
    region: &str,
    ca_file: Option<&std::path::Path>,
    clock_ahead: Option<Duration>,
) -> String {
    let mut banner = String::new();
    let _ = writeln!(banner, "lambda-stream emulator listening on {url}");
    let _ = writeln!(banner, "functions: {} ({auth})", names.join(", "));
    if let Some(by) = clock_ahead {
        let _ = writeln!(
            banner,
            "clock: {} s ahead of this machine's (signatures and Date headers follow it)",
            by.as_secs_f64()
        );
    }
    banner.push('\n');
    let _ = writeln!(banner, "Point an AWS SDK or the AWS CLI at it:");
    let _ = writeln!(banner, "  export AWS_ENDPOINT_URL_LAMBDA={url}");
    // boto3 (and so the AWS CLI v1) reads only the second, the JavaScript SDK only the first
    let _ = writeln!(
        banner,
        "  export AWS_REGION={region} AWS_DEFAULT_REGION={region}"
    );
    let _ = writeln!(banner, "  export AWS_ACCESS_KEY_ID={key}");
    let _ = match secret {
        Some(secret) => writeln!(banner, "  export AWS_SECRET_ACCESS_KEY={secret}"),
        // a comment, so that pasting the lines does not set a wrong secret
        None => writeln!(
            banner,
            "  # and AWS_SECRET_ACCESS_KEY: the secret given with --credentials for {key} (not shown)"
        ),
    };
    if let Some(ca) = ca_file {
        let _ = writeln!(banner, "  export AWS_CA_BUNDLE={}", ca.display());
        // the JavaScript SDK v3 reads no AWS_CA_BUNDLE: Node.js's own variable instead
        let _ = writeln!(
            banner,
            "  export NODE_EXTRA_CA_CERTS={}  # Node.js (the JavaScript SDK v3 reads no AWS_CA_BUNDLE)",
            ca.display()
        );
        let _ = writeln!(
            banner,
            "  # the Rust SDK reads neither: add the CA to its HTTP client's TrustStore (see the README)"
        );
    }
    let _ = writeln!(
        banner,
        "SDK settings: endpoint URL {url}, region {region}, static credentials as above"
    );
    let _ = writeln!(
        banner,
        "  Rust: aws_config::defaults(BehaviorVersion::latest()).endpoint_url(\"{url}\")"
    );
    let _ = writeln!(
        banner,
        "  Python: boto3.client(\"lambda\", endpoint_url=\"{url}\")"
    );
    let _ = writeln!(
        banner,
        "Try (AWS CLI v2; v1 has no invoke-with-response-stream): aws lambda invoke-with-response-stream --function-name echo --payload '{{\"hi\":1}}' --cli-binary-format raw-in-base64-out out.bin"
    );
    let _ = writeln!(banner, "Stop with Ctrl-C.");
    banner
}

/// Ctrl-C (SIGINT) or SIGTERM, registered before the emulator announces itself so that no
/// signal sent after the announcement is missed
struct StopSignal {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl StopSignal {
    fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                int: signal(SignalKind::interrupt())?,
                term: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    async fn wait(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A `--credentials KEY:SECRET` argument, its secret hidden from `Debug`
#[derive(Clone)]
struct KeyPair(String);

impl From<String> for KeyPair {
    fn from(pair: String) -> Self {
        Self(pair)
    }
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

/// The key of a KEY:SECRET pair with the secret hidden
fn redact(pair: &str) -> String {
    match pair.split_once(':') {
        Some((k, _)) => format!("{k}:<redacted>"),
        None => "<redacted>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::ServeArgs;

    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let args = Args::parse_from(["serve", "--credentials", "AKIDTEST:hunter2-secret"]);
        let shown = format!("{:?}", args.serve);
        assert!(shown.contains("AKIDTEST:<redacted>"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
