//! A real HTTP proxy on loopback: Debian's `tinyproxy`, run as a child of the test
//!
//! When the binary is missing the proxy cases print a loud notice and pass (they fail
//! under `CI=true`): install it with `apt-get install -y tinyproxy`.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_rustls::TlsAcceptor;

/// How long tinyproxy may take to start or to log a request
const WAIT: Duration = Duration::from_secs(10);

/// A running tinyproxy, killed on drop
#[derive(Debug)]
pub struct Tinyproxy {
    child: Child,
    port: u16,
    dir: PathBuf,
    log: Arc<Mutex<String>>,
    lines: Receiver<String>,
}

fn binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/usr/sbin".into()])
        .map(|d| d.join("tinyproxy"))
        .find(|p| p.is_file())
}

impl Tinyproxy {
    /// Starts tinyproxy on a free loopback port, or `None` (after a loud notice) when it
    /// is not installed
    ///
    /// # Panics
    ///
    /// Missing under `CI=true`, or it does not start.
    pub fn start() -> Option<Self> {
        let Some(bin) = binary() else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "tinyproxy is required under CI=true (apt-get install -y tinyproxy)"
            );
            eprintln!(
                "\n*** SKIPPED: tinyproxy is not installed, the proxy case did not run \
                 (apt-get install -y tinyproxy) ***\n"
            );
            return None;
        };
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").expect("free port");
            l.local_addr().expect("addr").port()
        };
        let dir = std::env::temp_dir().join(format!(
            "transport-suite-tinyproxy-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let conf = dir.join("tinyproxy.conf");
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 60\nAllow 127.0.0.1\n\
                 LogLevel Connect\nMaxClients 100\n"
            ),
        )
        .expect("config");
        let mut child = Command::new(bin)
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("tinyproxy starts");
        let stdout = child.stdout.take().expect("stdout");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = std::sync::mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut l) = sink.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut proxy = Self {
            child,
            port,
            dir,
            log,
            lines,
        };
        // Its log says when setup is over; then the port must accept
        assert!(
            proxy.wait_for(|l| l.contains("done sending stored logs")),
            "tinyproxy did not start:\n{}",
            proxy.log()
        );
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_ok(),
            "tinyproxy does not listen on {port}:\n{}",
            proxy.log()
        );
        Some(proxy)
    }

    /// The proxy URL, for `HTTP_PROXY`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Everything it logged so far
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits until it logged a request whose line contains `target` (such as
    /// `127.0.0.1:9001`)
    pub fn wait_for_request(&mut self, target: &str) -> bool {
        self.wait_for(|l| l.contains("Request (file descriptor") && l.contains(target))
    }

    /// Requests logged so far whose line contains `target`
    pub fn requests_to(&self, target: &str) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("Request (file descriptor") && l.contains(target))
            .count()
    }

    fn wait_for(&mut self, mut found: impl FnMut(&str) -> bool) -> bool {
        let end = Instant::now() + WAIT;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if found(&line) => return true,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return false,
            }
        }
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `invoke_emulator::loopback_tls`'s acceptor, its CA certificate written to a file named
/// after `what` and `port` (the caller removes it)
pub(crate) fn loopback_tls_and_ca_file(what: &str, port: u16) -> (TlsAcceptor, PathBuf) {
    let (acceptor, ca_pem) =
        invoke_emulator::loopback_tls(std::net::Ipv4Addr::LOCALHOST.into()).expect("TLS");
    let ca_file = std::env::temp_dir().join(format!(
        "transport-suite-{what}-{}-{port}.pem",
        std::process::id(),
    ));
    std::fs::write(&ca_file, ca_pem).expect("CA file");
    (acceptor, ca_file)
}

/// A current-thread runtime with IO and time, for a server thread
pub(crate) fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// An HTTP proxy reached over TLS (`https://127.0.0.1:PORT`) that relays everything to one
/// target whatever host a request names: it ends TLS and hands the connection to a
/// [`Forwarder::proxy_to`](crate::Forwarder::proxy_to), which answers `CONNECT` itself and
/// relays requests in absolute form; its certificate is signed by a CA generated at start,
/// written to [`ca_file`](Self::ca_file)
#[derive(Debug)]
pub struct TlsProxy {
    addr: std::net::SocketAddr,
    plain: crate::Forwarder,
    ca_file: PathBuf,
}

impl TlsProxy {
    /// Starts the proxy, relaying to `target`
    ///
    /// # Panics
    ///
    /// If the certificates cannot be made or the port bound.
    pub fn start(target: std::net::SocketAddr) -> Self {
        let plain = crate::Forwarder::proxy_to(target);
        let behind = plain.address();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let (acceptor, ca_file) = loopback_tls_and_ca_file("tls-proxy", addr.port());
        std::thread::spawn(move || {
            current_thread_runtime().block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                while let Ok((tcp, _)) = listener.accept().await {
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        let (Ok(mut tls), Ok(mut proxy)) = (
                            acceptor.accept(tcp).await,
                            tokio::net::TcpStream::connect(behind).await,
                        ) else {
                            return;
                        };
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut proxy).await;
                    });
                }
            });
        });
        Self {
            addr,
            plain,
            ca_file,
        }
    }

    /// `https://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The PEM file of the CA that signed the proxy's certificate
    pub fn ca_file(&self) -> &std::path::Path {
        &self.ca_file
    }

    /// The first line of each connection's first request
    pub fn first_lines(&self) -> Vec<String> {
        self.plain.first_lines()
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.ca_file);
    }
}
