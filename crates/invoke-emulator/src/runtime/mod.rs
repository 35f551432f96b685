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

use std::io::{self, PipeWriter};
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

use crate::function::{
    EXIT_ERROR, FunctionError, Handler, HandlerFuture, Invocation, ResponseStream, TIMED_OUT,
};

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
///   process (their timeout does not run while they wait; one whose client goes away leaves
///   the queue). Registered with
///   [`Builder::process_function`](crate::Builder::process_function), the limit follows
///   [`FunctionConfig::concurrency`](crate::FunctionConfig::concurrency) when that is set, so
///   the server answers 429 before anything queues.
/// - **Failures**: a process that exits during an invocation fails it with
///   `Runtime.ExitError`, once what it sent before exiting has been handled (a response it
///   completed is a success); a timed-out invocation (`Sandbox.Timedout`, from the server)
///   kills its process; either way the next invocation starts a fresh one. `/init/error`
///   fails the pending invocation with the reported error and the process is replaced.
/// - **Init timeout**: a new process must poll `/next` within
///   [`init_timeout`](Self::init_timeout) (default 10 s, as Lambda's init phase); if not, the
///   invocation fails with `Sandbox.Timedout` and the process is killed.
/// - **Error documents**: an error document the runtime reports (`/error`, `/init/error`,
///   error trailers) is kept whole in `ErrorDetails` and the body of a failed `Invoke` when
///   it is JSON of at most 1 MiB, and wrapped as `{"errorType","errorMessage"}` when it is
///   not JSON; error types are cut to 256 bytes.
/// - **Client gone**: when the invoking client goes away (its connection closed, or the
///   response was finished early, as past the response size limit), the invocation is
///   abandoned: its process is killed and replaced, so that its slot frees up at once. (The
///   service lets the function run on; here a slot held until the timeout would block the
///   next invocations.) An invocation still waiting for a process is dropped.
/// - **Process group**: each process runs in a process group of its own, with a watchdog
///   (`/bin/sh` blocked reading a pipe only the emulator holds) as the group leader. When the
///   process is replaced, the emulator stops, or it dies in any way (SIGKILL included: the
///   kernel closes the pipe), the watchdog sees end of file and kills the whole group, so
///   whatever the command started in the background goes too. This works on every Unix and
///   needs no `unsafe` (a parent-death signal, `PR_SET_PDEATHSIG`, would need code between
///   fork and exec, and reaches only the direct child). A command that moves itself to
///   another group or session escapes it.
/// - **Logs**: stdout and stderr are read into the invocation's log (the last 4 KiB, so
///   `LogType: Tail` works) and echoed to the emulator's stderr unless the emulator is
///   [quiet](crate::Builder::quiet) or [`echo_output(false)`](Self::echo_output) was set. The
///   echo is bounded per process (256 KiB at once, 64 KiB/s sustained, whole lines, counted as
///   echoed, escapes included); what goes over is dropped with a note of how many bytes. The
///   echo shows control characters other than newline and tab escaped (`\u{1b}`) and bytes
///   that are not UTF-8 as `\xNN`, so that a process cannot drive the terminal; the log tail
///   keeps them as they came. Output between invocations is only echoed, and at most 64 KiB of
///   it is read: a process that keeps printing then blocks on its writes until the next
///   invocation.
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
    init_timeout: Duration,
}

impl ProcessFunction {
    /// Processes allowed at once unless configured otherwise
    pub const DEFAULT_MAX_PROCESSES: usize = 4;
    /// Time a new process has to poll `/next` unless configured otherwise: 10 s, as
    /// Lambda's init phase
    pub const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(10);

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
                init_timeout: Self::DEFAULT_INIT_TIMEOUT,
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

    /// Time a new process has to poll `/next` (default
    /// [`DEFAULT_INIT_TIMEOUT`](Self::DEFAULT_INIT_TIMEOUT)); past it the invocation fails
    /// with `Sandbox.Timedout` and the process is killed
    #[must_use]
    pub fn init_timeout(mut self, timeout: Duration) -> Self {
        Arc::make_mut(&mut self.spec).init_timeout = timeout;
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
    pub fn echo_output(mut self, on: bool) -> Self {
        // a switch of its own: a clone made before keeps its setting
        self.echo = Arc::new(AtomicBool::new(on));
        self
    }

    /// Shares the echo switch with the emulator, which turns it off when quiet; output
    /// switched off here stays off
    pub(crate) fn echo_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        if self.echo.load(Ordering::Relaxed) {
            self.echo = flag;
        }
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
            // The invocation's timeout runs once `/next` hands it out: the wait for a process
            // and a new one's start (bounded by the init timeout) do not count
            out.defer_clock();
            // A client that goes away while the invocation waits for a process drops it
            let permit = tokio::select! {
                p = Arc::clone(&pool.permits).acquire_owned() => p
                    .map_err(|_| FunctionError::new("Runtime.Unknown", "process pool closed"))?,
                () = out.closed() => return Err(client_gone(&invocation.request_id)),
            };
            let (process, init) = match pool.take_idle() {
                // a running process: the time runs from the offer (moved to its `/next`),
                // so one that never asks for the invocation times out
                Some(p) => {
                    out.began(None);
                    (p, None)
                }
                None => (
                    spawn(&spec, &pool, &invocation, echo).await?,
                    Some(spec.init_timeout),
                ),
            };
            let mut lease = Lease {
                process: Some(process),
                pool,
                healthy: false,
                _permit: permit,
            };
            lease.run(invocation, out, init).await
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
    /// Kills the rest of the process group when dropped
    _group: Group,
    runtime: Arc<Runtime>,
    server: JoinHandle<()>,
    sink: Arc<LogSink>,
    logs: [LogPipe; 2],
}

impl Drop for Process {
    fn drop(&mut self) {
        // The child is killed at once by `kill_on_drop`, the rest of its group by the
        // watchdog once `_group` is dropped; closing the server drops its connections
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
            p.sink.detach();
            if self.healthy
                && let Ok(mut idle) = self.pool.idle.lock()
            {
                idle.push(p);
            }
        }
    }
}

impl Lease {
    /// Runs one invocation on the leased process; `init` is the time a new process has to
    /// poll `/next`
    async fn run(
        &mut self,
        inv: Invocation,
        out: ResponseStream,
        init: Option<Duration>,
    ) -> Result<(), FunctionError> {
        let p = self.process.as_mut().expect("a leased process");
        p.sink.attach(out.clone());
        let id = inv.request_id.clone();
        let (tx, mut rx) = oneshot::channel();
        p.runtime.offer(Active::new(inv, out.clone(), tx));
        let closed = |_| {
            Finished::replace(Err(FunctionError::new(
                "Runtime.Unknown",
                format!("RequestId: {id} Error: the runtime API closed"),
            )))
        };
        let init_deadline = tokio::time::sleep(init.unwrap_or_default());
        tokio::pin!(init_deadline);
        let mut init_pending = init.is_some();
        let mut finished = loop {
            tokio::select! {
                biased;
                f = &mut rx => break f.unwrap_or_else(closed),
                status = p.child.wait() => {
                    // What the process sent before exiting is handled first: a response it
                    // completed is a success, anything else the exit error
                    let f = match after_exit(&p.runtime, &mut rx, &out).await {
                        Some(Ok(f)) => f.result,
                        _ => Err(exit_error(&id, status)),
                    };
                    break Finished::replace(f);
                }
                () = out.closed() => break Finished::replace(Err(client_gone(&id))),
                () = &mut init_deadline, if init_pending => {
                    init_pending = false;
                    if !p.runtime.initialized() {
                        break Finished::replace(Err(init_timeout_error(&id, init)));
                    }
                }
            }
        };
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

/// How long a process that exited has to have what it sent before exiting reach the Runtime
/// API (reports being handled extend it)
const EXIT_GRACE: Duration = Duration::from_secs(1);

/// After the process exited: the invocation's end as the runtime reported it, waiting while
/// a report is being handled and for [`EXIT_GRACE`] after the exit for one still in flight;
/// `None` if nothing came, or the client went away meanwhile
async fn after_exit(
    rt: &Runtime,
    rx: &mut oneshot::Receiver<Finished>,
    out: &ResponseStream,
) -> Option<Result<Finished, oneshot::error::RecvError>> {
    let grace = tokio::time::sleep(EXIT_GRACE);
    tokio::pin!(grace);
    let mut reports = rt.reports();
    let mut graced = false;
    loop {
        let idle = *reports.borrow_and_update() == 0;
        if idle && graced {
            return None;
        }
        tokio::select! {
            biased;
            f = &mut *rx => return Some(f),
            () = out.closed() => return None,
            r = reports.changed() => if r.is_err() { return None },
            () = &mut grace, if !graced => graced = true,
        }
    }
}

/// The error of an invocation whose client went away (no one sees it)
fn client_gone(id: &str) -> FunctionError {
    FunctionError::new(
        "Runtime.Unknown",
        format!("RequestId: {id} Error: the client went away; the invocation was abandoned"),
    )
}

/// The error of an invocation whose new process did not poll `/next` in time
fn init_timeout_error(id: &str, init: Option<Duration>) -> FunctionError {
    FunctionError::new(
        TIMED_OUT,
        format!(
            "RequestId: {id} Error: Runtime init timed out after {:.2} seconds: the process did not poll /runtime/invocation/next",
            init.unwrap_or_default().as_secs_f64()
        ),
    )
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
        EXIT_ERROR,
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

/// The watchdog's script: wait for end of file on stdin, then kill the whole process group
/// (`kill 0`), the watchdog included
const WATCHDOG: &str = "read -r _; kill -9 0";

/// The process group of one function process, led by its watchdog; dropping it (or the
/// emulator's death) kills the group
struct Group {
    _watchdog: Child,
    /// Our end of the watchdog's stdin (close-on-exec, so no child inherits it)
    _life: PipeWriter,
    pgid: i32,
}

impl Group {
    /// Starts the watchdog of a new process group, as its leader
    fn start() -> io::Result<Self> {
        let (reader, writer) = io::pipe()?;
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", WATCHDOG])
            .process_group(0)
            .stdin(Stdio::from(reader))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn()?;
        // Close our copy of the read end: only the watchdog holds it
        drop(cmd);
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .ok_or_else(|| io::Error::other("the watchdog exited at once"))?;
        Ok(Self {
            _watchdog: child,
            _life: writer,
            pgid,
        })
    }
}

/// The variables the Lambda execution environment sets, but `_HANDLER` and the function's own
fn lambda_env(
    spec: &Spec,
    inv: &Invocation,
    port: u16,
    serial: u64,
    cwd: &std::path::Path,
) -> Vec<(&'static str, std::ffi::OsString)> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let region = spec
        .region
        .clone()
        .or_else(|| arn_region(&inv.invoked_function_arn).map(str::to_owned))
        .unwrap_or_else(|| "us-east-1".to_owned());
    let vars = [
        ("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}")),
        ("AWS_LAMBDA_FUNCTION_NAME", spec.name.clone()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            spec.memory_size.to_string(),
        ),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", spec.name),
        ),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            format!("[$LATEST]{:032x}", nanos ^ u128::from(serial)),
        ),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        ("AWS_REGION", region.clone()),
        ("AWS_DEFAULT_REGION", region),
        ("AWS_ACCESS_KEY_ID", "AKIDLOCALEMULATOR".to_owned()),
        (
            "AWS_SECRET_ACCESS_KEY",
            "local-emulator-secret-key".to_owned(),
        ),
        (
            "AWS_SESSION_TOKEN",
            "local-emulator-session-token".to_owned(),
        ),
    ];
    let mut env: Vec<_> = vars.into_iter().map(|(k, v)| (k, v.into())).collect();
    env.push(("LAMBDA_TASK_ROOT", cwd.as_os_str().to_owned()));
    env
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
    let sink = Arc::new(LogSink::new(spec.name.clone(), echo));
    let pipes = output_pipe(&sink).and_then(|o| Ok((o, output_pipe(&sink)?)));
    let ((stdout, out_pipe), (stderr, err_pipe)) = match pipes {
        Ok(p) => p,
        Err(e) => {
            server.abort();
            return Err(fail("could not create output pipes", &e));
        }
    };
    let cwd = match &spec.cwd {
        Some(d) => std::path::absolute(d).unwrap_or_else(|_| d.clone()),
        None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
    };
    let serial = pool.serial.fetch_add(1, Ordering::Relaxed);
    let group = match Group::start() {
        Ok(g) => g,
        Err(e) => {
            server.abort();
            return Err(fail("could not start the process group's watchdog", &e));
        }
    };
    let mut cmd = Command::new(program);
    cmd.process_group(group.pgid)
        .args(&spec.argv[1..])
        .current_dir(&cwd)
        .envs(lambda_env(spec, inv, port, serial, &cwd))
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
        _group: group,
        runtime,
        server,
        sink,
        logs: [out_pipe, err_pipe],
    })
}

/// A small deterministic generator (xorshift64*) for the randomized test cases
#[cfg(test)]
struct TestRng(u64);

#[cfg(test)]
impl TestRng {
    /// A number below `n`
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handler_is_the_last_argument_and_a_bare_program_has_none() {
        let handler = |argv: &[&str]| {
            ProcessFunction::from_argv("f", argv.iter().map(|a| (*a).to_owned()).collect())
                .spec
                .handler
                .clone()
        };
        assert_eq!(handler(&["./bootstrap"]), None);
        assert_eq!(
            handler(&["python3", "index.handler"]).as_deref(),
            Some("index.handler")
        );
        assert_eq!(handler(&[]), None);
    }

    #[test]
    fn debug_names_the_function_and_command_but_not_the_environment() {
        let f = ProcessFunction::new("fn-name", "./bootstrap --flag")
            .env("AWS_SECRET_ACCESS_KEY", "very-secret-value")
            .max_processes(2);
        let shown = format!("{f:?}");
        for part in [
            "ProcessFunction",
            "fn-name",
            "./bootstrap",
            "--flag",
            "max_processes: 2",
        ] {
            assert!(shown.contains(part), "{part} in {shown}");
        }
        assert!(!shown.contains("very-secret-value"), "{shown}");
    }

    #[test]
    fn echo_switched_off_stays_off_and_clones_keep_their_own() {
        let shared = Arc::new(AtomicBool::new(true));
        let off = ProcessFunction::new("f", "true")
            .echo_output(false)
            .echo_flag(Arc::clone(&shared));
        assert!(!off.echo.load(Ordering::Relaxed), "not turned back on");
        let default = ProcessFunction::new("f", "true").echo_flag(Arc::clone(&shared));
        shared.store(false, Ordering::Relaxed);
        assert!(
            !default.echo.load(Ordering::Relaxed),
            "follows the emulator (quiet)"
        );
        let a = ProcessFunction::new("f", "true");
        let b = a.clone().echo_output(false);
        assert!(a.echo.load(Ordering::Relaxed) && !b.echo.load(Ordering::Relaxed));
    }
}
