//! A local AWS Lambda endpoint that serves `InvokeWithResponseStream` to real SDKs
//!
//! The emulator speaks the service's HTTP API on loopback, with the routes, headers, events
//! and errors of `invoke-proto`: `InvokeWithResponseStream` streams each write of a function
//! as its own chunk event and ends with the completion event; the buffered `Invoke` serves
//! the same functions. Errors, status codes, headers and SigV4 checks follow the real
//! service, and [faults](fault) can be injected to test clients. Functions are Rust closures,
//! or real processes (a `lambda_runtime` bootstrap, a runtime interface client, a script)
//! served through the Lambda Runtime API by a [`ProcessFunction`]. With [`Builder::tls`] it
//! serves https with a certificate authority generated at start, for clients that take a CA
//! bundle (`AWS_CA_BUNDLE`).
//!
//! ```
//! use invoke_emulator::{Emulator, FunctionError, Invocation, ResponseStream};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let emulator = Emulator::builder()
//!     .builtins() // echo, count, fail
//!     .function("hello", |_inv: Invocation, out: ResponseStream| async move {
//!         out.write("Hello, ").await;
//!         out.write("world").await;
//!         Ok::<(), FunctionError>(())
//!     })
//!     .no_auth()
//!     .quiet()
//!     .start("127.0.0.1:0".parse()?)
//!     .await?;
//! let url = emulator.url(); // e.g. http://127.0.0.1:39123, for AWS_ENDPOINT_URL
//! assert!(url.starts_with("http://127.0.0.1:"));
//! emulator.shutdown().await;
//! # Ok(())
//! # }
//! ```
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod auth;
mod body;
mod config;
pub mod fault;
mod function;
mod ids;
mod listen;
mod reject;
mod runtime;
mod server;
mod stderr;
mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::sync::watch;

pub use auth::{Auth, MAX_CLOCK_SKEW};
pub use body::MAX_CHUNK_PAYLOAD;
pub use config::FunctionConfig;
pub use fault::Faults;
pub use function::{
    BUILTINS, FunctionError, Handler, HandlerFuture, InvalidContentType, Invocation,
    ResponseStream, builtin, count, echo, fail,
};
pub use listen::ServerLimits;
pub use runtime::ProcessFunction;
pub use tls::loopback_tls;

use server::{FunctionEntry, Shared};

/// Configures an [`Emulator`]
pub struct Builder {
    functions: HashMap<String, FunctionEntry>,
    auth: Auth,
    region: String,
    require_json: bool,
    max_response: u64,
    quiet: bool,
    /// Whether process functions echo their output; off when quiet
    process_echo: Arc<AtomicBool>,
    /// Serve https, the CA certificate written there
    tls: Option<tls::CaFile>,
    limits: ServerLimits,
    log_sink: Option<server::LogSink>,
    /// How far the emulator's clock runs ahead of the host's
    clock_ahead: Duration,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("functions", &self.functions.keys().collect::<Vec<_>>())
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// Hosts `handler` as function `name` with the default [`FunctionConfig`]
    #[must_use]
    pub fn function(self, name: impl Into<String>, handler: impl Handler) -> Self {
        self.function_with(name, handler, FunctionConfig::default())
    }

    /// Hosts `handler` as function `name`
    #[must_use]
    pub fn function_with(
        mut self,
        name: impl Into<String>,
        handler: impl Handler,
        config: FunctionConfig,
    ) -> Self {
        self.functions
            .insert(name.into(), FunctionEntry::new(Arc::new(handler), config));
        self
    }

    /// Hosts an already shared handler
    #[must_use]
    pub fn function_arc(
        mut self,
        name: impl Into<String>,
        handler: Arc<dyn Handler>,
        config: FunctionConfig,
    ) -> Self {
        self.functions
            .insert(name.into(), FunctionEntry::new(handler, config));
        self
    }

    /// Hosts function `name` served by real processes running `command` through the Lambda
    /// Runtime API (see [`ProcessFunction`] for how the command runs); at most
    /// `config.concurrency` processes, or [`ProcessFunction::DEFAULT_MAX_PROCESSES`] when unset
    #[must_use]
    pub fn process_function(
        self,
        name: impl Into<String>,
        command: impl Into<String>,
        config: FunctionConfig,
    ) -> Self {
        self.process_function_with(ProcessFunction::new(name, command), config)
    }

    /// Hosts a configured [`ProcessFunction`] under its name; its process limit follows
    /// `config.concurrency` when that is set, and its output echo follows [`quiet`](Self::quiet)
    #[must_use]
    pub fn process_function_with(self, f: ProcessFunction, config: FunctionConfig) -> Self {
        let mut f = f.echo_flag(Arc::clone(&self.process_echo));
        if let Some(n) = config.concurrency {
            f = f.max_processes(n);
        }
        let name = f.name().to_owned();
        self.function_with(name, f, config)
    }

    /// Hosts the built-in functions `echo`, `count` and `fail`
    #[must_use]
    pub fn builtins(mut self) -> Self {
        for name in BUILTINS {
            if let Some(h) = builtin(name) {
                self = self.function_arc(name, h, FunctionConfig::default());
            }
        }
        self
    }

    /// Accepts only requests signed with this access key (may be called several times)
    #[must_use]
    pub fn credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        let mut keys = match self.auth {
            Auth::Keys(k) => k,
            _ => HashMap::new(),
        };
        keys.insert(access_key_id.into(), secret.into());
        self.auth = Auth::Keys(keys);
        self
    }

    /// Accepts unsigned requests
    #[must_use]
    pub fn no_auth(mut self) -> Self {
        self.auth = Auth::Off;
        self
    }

    /// The emulator's region (default `us-east-1`): the one in the ARNs functions see, and
    /// the one signatures must be scoped to; a function named by an ARN of another region
    /// is not found, as the service answers. It must be a region clients can be configured
    /// with (1 to 63 ASCII letters, digits and inner hyphens), else
    /// [`start`](Self::start) fails; only region-shaped names (`us-east-1`) can appear in
    /// ARNs
    #[must_use]
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    /// Whether a non-empty payload must be JSON, as `Invoke` requires (default `true`)
    #[must_use]
    pub fn require_json_payload(mut self, on: bool) -> Self {
        self.require_json = on;
        self
    }

    /// Largest streamed response (default 200 MB); past it the stream ends with a
    /// `Function.ResponseSizeTooLarge` function error
    #[must_use]
    pub fn max_response_bytes(mut self, max: u64) -> Self {
        self.max_response = max;
        self
    }

    /// Runs the emulator's clock `by` ahead of the host's, as a service's clock is to a
    /// client whose clock is behind: signatures are checked against it (one signed more than
    /// [`MAX_CLOCK_SKEW`] before it is refused, `InvalidSignatureException`, "Signature
    /// expired") and every response's `Date` tells it (default: the host's clock)
    #[must_use]
    pub fn clock_ahead(mut self, by: Duration) -> Self {
        self.clock_ahead = by;
        self
    }

    /// No log line per invocation on stderr
    #[must_use]
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// Timeouts for slow and idle clients, and the connection limit (see [`ServerLimits`]
    /// for the defaults)
    #[must_use]
    pub fn limits(mut self, limits: ServerLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Sends each log line (one per request) to `sink` instead of stderr; [`quiet`](Self::quiet)
    /// still turns them off
    #[must_use]
    pub fn log_sink(mut self, sink: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.log_sink = Some(Arc::new(sink));
        self
    }

    /// Serves https instead of http: at start, a certificate authority and a server
    /// certificate it signs (for `localhost`, `127.0.0.1`, `::1` and the bound address) are
    /// generated, and the CA certificate is written as PEM to a new file in the temporary
    /// directory, removed when the emulator stops ([`Emulator::ca_pem_path`]; point
    /// `AWS_CA_BUNDLE` at it)
    #[must_use]
    pub fn tls(mut self) -> Self {
        self.tls = Some(tls::CaFile::Temporary);
        self
    }

    /// As [`tls`](Self::tls), with the CA certificate written to `path` (created or
    /// replaced, and left in place)
    #[must_use]
    pub fn tls_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls = Some(tls::CaFile::At(path.into()));
        self
    }

    /// Binds `addr` (port 0 picks a free port) and starts serving
    ///
    /// # Errors
    ///
    /// The [region](Self::region) is not one (`InvalidInput`), the bind failed, or with TLS,
    /// the certificates could not be made or the CA file not written.
    #[allow(
        clippy::unused_async,
        reason = "async in the public API: it must run in a tokio runtime, which spawns the server"
    )]
    pub async fn start(self, addr: SocketAddr) -> std::io::Result<Emulator> {
        // a region no client can be configured with would only make every request fail
        invoke_proto::regional_host("lambda", &self.region, false, false)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let listener = listen::bind(addr)?;
        let local = listener.local_addr()?;
        let (acceptor, ca) = match &self.tls {
            Some(file) => {
                let (acceptor, ca) = tls::setup(local.ip(), file)?;
                (Some(acceptor), Some(ca))
            }
            None => (None, None),
        };
        self.process_echo
            .store(!self.quiet, std::sync::atomic::Ordering::Relaxed);
        let event_slots = Arc::new(tokio::sync::Semaphore::new(
            self.limits
                .max_event_invocations
                .clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
        ));
        let (stop_tx, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            stop: stop_rx.clone(),
            event_slots,
            functions: self.functions,
            auth: self.auth,
            region: self.region,
            require_json: self.require_json,
            max_response: self.max_response,
            quiet: self.quiet,
            limits: self.limits,
            log_sink: self.log_sink,
            clock_ahead: self.clock_ahead,
        });
        let handler = move |req| server::handle(Arc::clone(&shared), req);
        let task = tokio::spawn(listen::serve_with(
            listener,
            acceptor,
            handler,
            stopped(stop_rx),
            self.limits,
        ));
        Ok(Emulator {
            addr: local,
            ca,
            stop: stop_tx,
            task: Some(task),
        })
    }
}

/// Completes once a stop is sent (or the sender is gone)
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.changed().await;
}

/// A running emulator; stops when [`shutdown`](Self::shutdown) is called or it is dropped
#[derive(Debug)]
pub struct Emulator {
    addr: SocketAddr,
    /// With TLS: the CA certificate clients must trust
    ca: Option<tls::Ca>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Emulator {
    /// A builder with no functions, SigV4 required (any key), region `us-east-1`
    pub fn builder() -> Builder {
        Builder {
            functions: HashMap::new(),
            auth: Auth::AnySigned,
            region: "us-east-1".to_owned(),
            require_json: true,
            max_response: 200_000_000,
            quiet: false,
            process_echo: Arc::new(AtomicBool::new(true)),
            tls: None,
            limits: ServerLimits::default(),
            log_sink: None,
            clock_ahead: Duration::ZERO,
        }
    }

    /// The bound address
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint URL (`https://` with [TLS](Builder::tls), else `http://`), for
    /// `AWS_ENDPOINT_URL` or an SDK's endpoint setting; bound to every address
    /// (`0.0.0.0`, `[::]`), the loopback one of its family
    pub fn url(&self) -> String {
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", advertised(self.addr))
    }

    /// With [TLS](Builder::tls): the file holding the CA certificate (PEM) that clients must
    /// trust, for `AWS_CA_BUNDLE`
    pub fn ca_pem_path(&self) -> Option<&Path> {
        self.ca.as_ref().map(|ca| ca.path.as_path())
    }

    /// With [TLS](Builder::tls): the CA certificate (PEM) that clients must trust
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca.as_ref().map(|ca| ca.pem.as_str())
    }

    /// Stops accepting, closes every connection, abandons the invocations still running (a
    /// background `Event` one too) and waits for the server task
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        // what was logged reaches stderr before the caller goes on (to exit, say), unless
        // stderr is not being read
        let _ = tokio::task::spawn_blocking(|| stderr::stderr().flush(STDERR_FLUSH_WAIT)).await;
    }
}

/// Writes `line` and a newline to stderr through the queue the emulator's own log lines
/// take: never waits for a reader (a stderr nobody reads holds up only the queue's thread,
/// and lines that do not fit are dropped and counted), and keeps the order of those lines.
/// [`Emulator::shutdown`] waits a moment for the queue to be written.
///
/// ```
/// invoke_emulator::write_stderr_line("lambda-stream: stopping");
/// ```
pub fn write_stderr_line(line: &str) {
    stderr::stderr().write(format!("{line}\n").into_bytes());
}

/// How long [`Emulator::shutdown`] waits for the log lines queued for stderr
const STDERR_FLUSH_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// The address clients are told to use for a listener bound to `addr`: the loopback one of
/// its family when bound to every address (which the TLS certificate names)
fn advertised(mut addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_address_is_advertised_as_loopback() {
        let a = |s: &str| advertised(s.parse().unwrap()).to_string();
        assert_eq!(a("0.0.0.0:9001"), "127.0.0.1:9001");
        assert_eq!(a("[::]:9001"), "[::1]:9001");
        assert_eq!(a("127.0.0.2:9001"), "127.0.0.2:9001");
        assert_eq!(a("10.0.0.5:9001"), "10.0.0.5:9001");
    }

    #[test]
    fn a_builder_shows_its_functions_and_region_and_hides_its_keys() {
        let b = Emulator::builder()
            .builtins()
            .region("eu-west-3")
            .credentials("AKIDSHOWN", "hidden-secret-value");
        let shown = format!("{b:?}");
        for part in ["Builder", "echo", "count", "fail", "eu-west-3"] {
            assert!(shown.contains(part), "{part} in {shown}");
        }
        assert!(!shown.contains("hidden-secret-value"), "{shown}");
    }

    /// The process functions' echo follows `quiet` once the emulator starts
    #[tokio::test]
    async fn quiet_switches_the_processes_echo_off_at_start() {
        for quiet in [false, true] {
            let mut b = Emulator::builder();
            if quiet {
                b = b.quiet();
            }
            let echo = Arc::clone(&b.process_echo);
            echo.store(quiet, std::sync::atomic::Ordering::Relaxed); // the wrong way round
            let emu = b.start("127.0.0.1:0".parse().unwrap()).await.unwrap();
            assert_eq!(
                echo.load(std::sync::atomic::Ordering::Relaxed),
                !quiet,
                "quiet: {quiet}"
            );
            emu.shutdown().await;
        }
    }
}
