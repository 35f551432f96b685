//! What the CLI's integration tests share: the `lambda-stream serve` process, and a watchdog
//! over the processes they run
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a test lets a CLI process it runs to its end live (the CLI's own timeouts are
/// minutes long): a process that never ends fails its test instead of hanging it
pub const RUN_GUARD: Duration = Duration::from_secs(120);

/// Kills a process still running [`RUN_GUARD`] after the watch began; dropped after that, it
/// fails the test. Dropping it ends the watch.
pub struct Watchdog {
    pid: u32,
    stop: Option<Sender<()>>,
    /// Whether it killed the process
    watcher: Option<JoinHandle<bool>>,
}

impl Watchdog {
    /// Watches `child`: keep the watchdog while the test uses it
    #[must_use]
    pub fn watch(child: &Child) -> Self {
        let pid = child.id();
        let (stop, stopped) = channel::<()>();
        let watcher = std::thread::spawn(move || {
            let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(RUN_GUARD) else {
                return false;
            };
            eprintln!("watchdog: process {pid} still ran after {RUN_GUARD:?}: killed");
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            true
        });
        Self {
            pid,
            stop: Some(stop),
            watcher: Some(watcher),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.stop.take());
        let killed = self
            .watcher
            .take()
            .is_some_and(|w| w.join().unwrap_or(false));
        assert!(
            !killed || std::thread::panicking(),
            "process {} still ran after {RUN_GUARD:?}: killed",
            self.pid
        );
    }
}

/// `child`'s output once it ends, as [`Child::wait_with_output`] gives it, under a
/// [`Watchdog`]
pub fn wait_watched(child: Child) -> Output {
    let _watchdog = Watchdog::watch(&child);
    child.wait_with_output().unwrap()
}

/// [`Command::output`] under a [`Watchdog`]
pub trait OutputWatched {
    /// Runs the command to its end with the stdin, stdout and stderr [`Command::output`]
    /// gives it (stdin empty, stdout and stderr captured), replacing any set before: a test
    /// that sets its own spawns and calls [`wait_watched`]
    fn output_watched(&mut self) -> Output;
}

impl OutputWatched for Command {
    fn output_watched(&mut self) -> Output {
        let child = self
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_watched(child)
    }
}

/// How long a test waits for the next line of the server's stdout: a line that never comes
/// fails the test instead of hanging it (the server runs until it is killed)
pub const LINE_GUARD: Duration = Duration::from_secs(60);

/// The banner's last line
pub const BANNER_END: &str = "Stop with Ctrl-C.";

/// A running `serve`, killed when dropped
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT` (or `https://`)
    pub url: String,
    /// The banner after its first line, as much as the test read of it
    pub banner: String,
    /// The server's stdout, a line at a time, from a thread that reads it to its end: the
    /// pipe stays open and drained for the server's whole life
    lines: Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `cmd` (a `serve` command line, `--port 0` among its options) with stdout piped;
    /// ready once the banner's first line names the URL: no sleeping for readiness
    pub fn start(mut cmd: Command) -> Self {
        let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Self {
            child,
            url: String::new(),
            banner: String::new(),
            lines,
        };
        let line = server.next_line();
        let url = line.trim().rsplit(' ').next().unwrap().to_owned();
        assert!(
            url.starts_with("http://127.0.0.1:") || url.starts_with("https://127.0.0.1:"),
            "{line}"
        );
        server.url = url;
        server
    }

    /// The next line of the server's stdout, without its line end; fails the test if none
    /// comes within [`LINE_GUARD`] or stdout ended
    pub fn next_line(&self) -> String {
        match self.lines.recv_timeout(LINE_GUARD) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                panic!("no line on the server's stdout within {LINE_GUARD:?}")
            }
            Err(RecvTimeoutError::Disconnected) => panic!("the server's stdout ended"),
        }
    }

    /// Reads the rest of the banner into [`banner`](Self::banner), each line with its `\n`,
    /// up to and including [`BANNER_END`]; fails the test if that line is not among the
    /// next `most` lines
    pub fn read_banner(&mut self, most: usize) {
        for _ in 0..most {
            let line = self.next_line();
            self.banner.push_str(&line);
            self.banner.push('\n');
            if line.trim_end() == BANNER_END {
                return;
            }
        }
        panic!("no {BANNER_END:?} in {most} lines: {}", self.banner);
    }

    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> &str {
        self.url
            .trim_start_matches("http://")
            .trim_start_matches("https://")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// A home without shared files, so nothing of the machine's own AWS setup leaks in
pub fn empty_home() -> PathBuf {
    std::env::temp_dir().join("lambda-stream-cli-tests-no-home")
}

/// The binary with a clean environment: no shared files, no IMDS, only `PATH` of this one
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lambda-stream"));
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", empty_home())
        .env("AWS_EC2_METADATA_DISABLED", "true");
    c
}
