//! The `lambda-stream serve` process shared by the CLI's integration tests
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

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
