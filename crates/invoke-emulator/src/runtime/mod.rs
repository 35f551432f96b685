//! Real function processes behind the
//! [Lambda Runtime API](https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html)
//!
//! A [`ProcessFunction`] runs a command (a `bootstrap` built with `lambda_runtime`, a Node or
//! Python runtime client, a script...) as a child process. Each process gets its own Runtime
//! API server on `127.0.0.1:<port>` (see [`api`]) and the Lambda runtime environment
//! variables; the emulator hands it one invocation at a time through
//! `GET .../invocation/next` and turns what it posts back into the invocation's output.

mod api;
mod errordoc;
mod errorlines;
mod logs;

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::task::JoinHandle;

use crate::function::{FunctionError, Handler, HandlerFuture, Invocation, ResponseStream};

use api::{Active, Finished, Runtime};
use logs::{LogPipe, LogSink};

/// A function served by real processes that speak the Lambda Runtime API
///
/// - **Command**: [`new`](Self::new) takes a command line. A plain line (`./bootstrap`,
///   `python3 -u handler.py --flag`) is split on whitespace and run directly, without a shell.
///   A line that is the path of an existing file runs as that program, whatever characters
///   it contains. A line that needs a shell (it contains a quote, `$`, `|`, `&`, `;`, `<`, `>`, `*`, `~`,
///   ... or starts with a `VAR=value` assignment) runs as `/bin/sh -c LINE`. Use
///   [`from_argv`](Self::from_argv) for an exact argument vector.
/// - **Environment** (the [defined runtime environment variables](https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime)):
///   the emulator's own environment, then
///   `AWS_LAMBDA_RUNTIME_API=127.0.0.1:PORT`, `AWS_LAMBDA_FUNCTION_NAME`,
///   `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (default `128`), `AWS_LAMBDA_FUNCTION_VERSION=$LATEST`,
///   `AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/NAME`, `AWS_LAMBDA_LOG_STREAM_NAME`,
///   `AWS_LAMBDA_INITIALIZATION_TYPE=on-demand`, `AWS_REGION`/`AWS_DEFAULT_REGION` (the region
///   of the invoked ARN unless set with [`region`](Self::region)), `_HANDLER` and
///   `LAMBDA_TASK_ROOT` as the AWS Runtime Interface Emulator sets them (the handler is the
///   command's last argument, when it has arguments and runs without a shell, else unset; the
///   task root is the absolute working directory; see [`handler`](Self::handler) and
///   [`working_dir`](Self::working_dir)), and dummy credentials
///   (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), then the additions
///   given with [`env`](Self::env), which win.
/// - **Processes**: started lazily by the first invocation that finds no idle one, and reused.
///   A process serves one invocation at a time; at most
///   [`max_processes`](Self::max_processes) run at once (default
///   [`DEFAULT_MAX_PROCESSES`](Self::DEFAULT_MAX_PROCESSES)). More invocations wait for a free
///   process (their timeout runs while they wait). Registered with
///   [`Builder::process_function`](crate::Builder::process_function), the limit follows
///   [`FunctionConfig::concurrency`](crate::FunctionConfig::concurrency) when that is set, so
///   the server answers 429 before anything queues.
/// - **Failures**: a process that exits during an invocation fails it with
///   `Runtime.ExitError`; a timed-out invocation (`Sandbox.Timedout`, from the server) kills
///   its process; either way the next invocation starts a fresh one. `/init/error` fails the
///   pending invocation with the reported error and the process is replaced. An error
///   document the runtime reports (`/error`, `/init/error`, error trailers) is kept whole in
///   `ErrorDetails` and the body of a failed `Invoke` when it is JSON of at most 1 MiB, and
///   wrapped as `{"errorType","errorMessage"}` when it is not JSON; error types are cut to 256
///   bytes.
/// - **Logs**: stdout and stderr are read line by line into the invocation's log (so
///   `LogType: Tail` works) and echoed to the emulator's stderr unless the emulator is
///   [quiet](crate::Builder::quiet) or [`echo_output(false)`](Self::echo_output) was set.
///   Output between invocations is only echoed.
#[derive(Clone)]
pub struct ProcessFunction {
    spec: Arc<Spec>,
    pool: Arc<Pool>,
    echo: Arc<AtomicBool>,
}

impl std::fmt::Debug for ProcessFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessFunction")
            .field("name", &self.spec.name)
            .field("argv", &self.spec.argv)
            .field("max_processes", &self.pool.max)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
struct Spec {
    name: String,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    memory_size: u32,
    /// `_HANDLER`; unset when `None`
    handler: Option<String>,
    cwd: Option<PathBuf>,
    region: Option<String>,
}

impl ProcessFunction {
    /// Processes allowed at once unless configured otherwise
    pub const DEFAULT_MAX_PROCESSES: usize = 4;

    /// Function `name` served by processes running `command` (see the type docs for how the
    /// line is run); `_HANDLER` is its last word unless the line runs through the shell
    pub fn new(name: impl Into<String>, command: impl Into<String>) -> Self {
        let command = command.into();
        let argv = command_argv(&command);
        let shell = argv.len() == 3 && argv[0] == "/bin/sh" && argv[2] == command;
        let mut f = Self::from_argv(name, argv);
        if shell {
            Arc::make_mut(&mut f.spec).handler = None;
        }
        f
    }

    /// Function `name` served by processes running `argv[0]` with the arguments `argv[1..]`,
    /// no shell involved; `_HANDLER` is the last argument, if there is one
    pub fn from_argv(name: impl Into<String>, argv: Vec<String>) -> Self {
        let handler = argv.last().filter(|_| argv.len() > 1).cloned();
        Self {
            spec: Arc::new(Spec {
                name: name.into(),
                argv,
                env: Vec::new(),
                memory_size: 128,
                handler,
                cwd: None,
                region: None,
            }),
            pool: Arc::new(Pool::new(Self::DEFAULT_MAX_PROCESSES)),
            echo: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Adds (or overrides) an environment variable of the processes
    #[must_use]
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.spec)
            .env
            .push((key.into(), value.into()));
        self
    }

    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (default 128)
    #[must_use]
    pub fn memory_size(mut self, mb: u32) -> Self {
        Arc::make_mut(&mut self.spec).memory_size = mb;
        self
    }

    /// `_HANDLER` (default: the command's last argument, as the AWS Runtime Interface Emulator
    /// takes it; unset for a command without arguments or run through the shell, so that the
    /// emulator's own `_HANDLER`, if any, passes through)
    #[must_use]
    pub fn handler(mut self, handler: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.spec).handler = Some(handler.into());
        self
    }

    /// The processes' working directory, which is also `LAMBDA_TASK_ROOT` (made absolute), as
    /// the AWS Runtime Interface Emulator has it (default: the emulator's working directory)
    #[must_use]
    pub fn working_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        Arc::make_mut(&mut self.spec).cwd = Some(dir.into());
        self
    }

    /// `AWS_REGION` and `AWS_DEFAULT_REGION` (default: the region of the invoked ARN)
    #[must_use]
    pub fn region(mut self, region: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.spec).region = Some(region.into());
        self
    }

    /// How many processes may run at once (at least 1, at most
    /// [`FunctionConfig::MAX_CONCURRENCY`](crate::FunctionConfig::MAX_CONCURRENCY)); set
    /// before the first invocation
    #[must_use]
    pub fn max_processes(mut self, max: usize) -> Self {
        let max = max.clamp(1, crate::FunctionConfig::MAX_CONCURRENCY);
        self.pool = Arc::new(Pool::new(max));
        self
    }

    /// Whether the processes' stdout and stderr are echoed to the emulator's stderr
    /// (default `true`)
    #[must_use]
    pub fn echo_output(self, on: bool) -> Self {
        self.echo.store(on, Ordering::Relaxed);
        self
    }

    /// Shares the echo switch with the emulator, which turns it off when quiet
    pub(crate) fn echo_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.echo = flag;
        self
    }

    /// The function name (`AWS_LAMBDA_FUNCTION_NAME`)
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The command the processes run, as an argument vector
    pub fn argv(&self) -> &[String] {
        &self.spec.argv
    }
}

impl Handler for ProcessFunction {
    fn call(&self, invocation: Invocation, out: ResponseStream) -> HandlerFuture {
        let spec = Arc::clone(&self.spec);
        let pool = Arc::clone(&self.pool);
        let echo = Arc::clone(&self.echo);
        Box::pin(async move {
            let permit = Arc::clone(&pool.permits)
                .acquire_owned()
                .await
                .map_err(|_| FunctionError::new("Runtime.Unknown", "process pool closed"))?;
            let process = match pool.take_idle() {
                Some(p) => p,
                None => spawn(&spec, &pool, &invocation, echo).await?,
            };
            let mut lease = Lease {
                process: Some(process),
                pool,
                healthy: false,
                _permit: permit,
            };
            lease.run(invocation, out).await
        })
    }
}

/// Splits a command line, or wraps it in `/bin/sh -c` when it needs a shell
fn command_argv(command: &str) -> Vec<String> {
    const SHELL: &[char] = &[
        '|', '&', ';', '<', '>', '(', ')', '$', '`', '\\', '"', '\'', '*', '?', '[', ']', '#', '~',
        '{', '}', '!', '\n',
    ];
    // A path to an existing file runs as it is, even with spaces or shell characters in it
    if std::path::Path::new(command).is_file() {
        return vec![command.to_owned()];
    }
    let words: Vec<&str> = command.split_whitespace().collect();
    let needs_shell = command.contains(SHELL) || words.first().is_none_or(|w| w.contains('='));
    if needs_shell {
        vec!["/bin/sh".to_owned(), "-c".to_owned(), command.to_owned()]
    } else {
        words.into_iter().map(str::to_owned).collect()
    }
}

/// The processes of one function
struct Pool {
    max: usize,
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<Process>>,
    serial: AtomicU64,
}

impl Pool {
    fn new(max: usize) -> Self {
        Self {
            max,
            permits: Arc::new(Semaphore::new(max)),
            idle: Mutex::new(Vec::new()),
            serial: AtomicU64::new(0),
        }
    }

    /// An idle process that is still alive
    fn take_idle(&self) -> Option<Process> {
        let mut idle = self.idle.lock().ok()?;
        while let Some(mut p) = idle.pop() {
            if matches!(p.child.try_wait(), Ok(None)) {
                return Some(p);
            }
        }
        None
    }
}

/// One running function process
struct Process {
    child: Child,
    runtime: Arc<Runtime>,
    server: JoinHandle<()>,
    sink: Arc<LogSink>,
    logs: [LogPipe; 2],
}

impl Drop for Process {
    fn drop(&mut self) {
        // The child is killed by `kill_on_drop`; closing the server drops its connections
        self.server.abort();
    }
}

/// A process taken from the pool for one invocation; goes back only if still healthy
struct Lease {
    process: Option<Process>,
    pool: Arc<Pool>,
    healthy: bool,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(p) = self.process.take() {
            p.sink.set(None);
            if self.healthy
                && let Ok(mut idle) = self.pool.idle.lock()
            {
                idle.push(p);
            }
        }
    }
}

impl Lease {
    async fn run(&mut self, inv: Invocation, out: ResponseStream) -> Result<(), FunctionError> {
        let p = self.process.as_mut().expect("a leased process");
        p.sink.set(Some(out.clone()));
        let id = inv.request_id.clone();
        let (tx, rx) = oneshot::channel();
        p.runtime.offer(Active::new(inv, out, tx));
        let finished = tokio::select! {
            biased;
            f = rx => f.unwrap_or_else(|_| Finished::replace(Err(FunctionError::new(
                "Runtime.Unknown",
                format!("RequestId: {id} Error: the runtime API closed"),
            )))),
            status = p.child.wait() => Finished::replace(Err(exit_error(&id, status))),
        };
        let mut finished = finished;
        if matches!(&finished.result, Err(e) if e.error_type == "Runtime.TruncatedResponse") {
            // A broken body usually means the process died: report that if it did
            if let Ok(status) = tokio::time::timeout(Duration::from_secs(1), p.child.wait()).await {
                finished.result = Err(exit_error(&id, status));
            }
        }
        // Whatever the process printed before it answered belongs to this invocation
        for pipe in &p.logs {
            pipe.sync().await;
        }
        self.healthy = !finished.replace;
        finished.result
    }
}

fn exit_error(id: &str, status: io::Result<ExitStatus>) -> FunctionError {
    use std::os::unix::process::ExitStatusExt as _;
    let how = match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(sig)) => format!("signal: {sig}"),
            (None, None) => s.to_string(),
        },
        Err(e) => e.to_string(),
    };
    FunctionError::new(
        "Runtime.ExitError",
        format!("RequestId: {id} Error: Runtime exited with error: {how}"),
    )
}

/// The region part of a function ARN
fn arn_region(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}

/// A socket pair for one output stream: the child's end and our reader
fn output_pipe(sink: &Arc<LogSink>) -> io::Result<(Stdio, LogPipe)> {
    let (ours, theirs) = StdUnixStream::pair()?;
    let pipe = LogPipe::spawn(ours, Arc::clone(sink))?;
    Ok((Stdio::from(OwnedFd::from(theirs)), pipe))
}

async fn spawn(
    spec: &Spec,
    pool: &Pool,
    inv: &Invocation,
    echo: Arc<AtomicBool>,
) -> Result<Process, FunctionError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        FunctionError::new(
            "Runtime.InvalidEntrypoint",
            format!("RequestId: {} Error: {what}: {e}", inv.request_id),
        )
    };
    let Some(program) = spec.argv.first() else {
        return Err(fail("no command", &"the command line is empty"));
    };
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| fail("could not bind the runtime API", &e))?;
    let port = listener
        .local_addr()
        .map_err(|e| fail("could not bind the runtime API", &e))?
        .port();
    let runtime = Arc::new(Runtime::new(
        spec.name.clone(),
        spec.handler.clone().unwrap_or_default(),
    ));
    let server = tokio::spawn(api::serve(listener, Arc::clone(&runtime)));
    let sink = Arc::new(LogSink::new(echo));
    let pipes = output_pipe(&sink).and_then(|o| Ok((o, output_pipe(&sink)?)));
    let ((stdout, out_pipe), (stderr, err_pipe)) = match pipes {
        Ok(p) => p,
        Err(e) => {
            server.abort();
            return Err(fail("could not create output pipes", &e));
        }
    };
    let serial = pool.serial.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let region = spec
        .region
        .clone()
        .or_else(|| arn_region(&inv.invoked_function_arn).map(str::to_owned))
        .unwrap_or_else(|| "us-east-1".to_owned());
    let cwd = match &spec.cwd {
        Some(d) => std::path::absolute(d).unwrap_or_else(|_| d.clone()),
        None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
    };
    let mut cmd = Command::new(program);
    cmd.args(&spec.argv[1..])
        .current_dir(&cwd)
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .env("AWS_LAMBDA_FUNCTION_NAME", &spec.name)
        .env(
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            spec.memory_size.to_string(),
        )
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", spec.name),
        )
        .env(
            "AWS_LAMBDA_LOG_STREAM_NAME",
            format!("[$LATEST]{:032x}", nanos ^ u128::from(serial)),
        )
        .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
        .env("AWS_REGION", &region)
        .env("AWS_DEFAULT_REGION", &region)
        .env("LAMBDA_TASK_ROOT", &cwd)
        .env("AWS_ACCESS_KEY_ID", "AKIDLOCALEMULATOR")
        .env("AWS_SECRET_ACCESS_KEY", "local-emulator-secret-key")
        .env("AWS_SESSION_TOKEN", "local-emulator-session-token")
        .envs(spec.handler.iter().map(|h| ("_HANDLER", h)))
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(true);
    let spawned = cmd.spawn();
    // Close our copies of the child's ends, so its exit is seen as end of output
    drop(cmd);
    let child = match spawned {
        Ok(c) => c,
        Err(e) => {
            server.abort();
            return Err(fail(&format!("could not start {program}"), &e));
        }
    };
    Ok(Process {
        child,
        runtime,
        server,
        sink,
        logs: [out_pipe, err_pipe],
    })
}
