//! The `lambda-stream serve` process shared by the CLI's integration tests
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};

/// A running `serve`, killed when dropped
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT` (or `https://`)
    pub url: String,
    /// The banner after its first line, as much as the test read of it
    pub banner: String,
    /// Kept open: the server's stdout stays connected for its whole life
    pub stdout: BufReader<ChildStdout>,
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
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let url = line.trim().rsplit(' ').next().unwrap().to_owned();
        assert!(
            url.starts_with("http://127.0.0.1:") || url.starts_with("https://127.0.0.1:"),
            "{line}"
        );
        Self {
            child,
            url,
            banner: String::new(),
            stdout,
        }
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
