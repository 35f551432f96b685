//! A function process's stdout and stderr, read line by line into the invocation's log
//!
//! The child writes to one end of a Unix socket pair. A task reads the other end as data
//! arrives; when an invocation ends, [`LogPipe::sync`] makes it read whatever the kernel
//! already holds with a direct non-blocking read, so everything the process printed before
//! it answered is in that invocation's log (no race with the reader task's readiness).

use std::io::Write as _;
use std::io::{self, Read as _};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt as _;
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};

use crate::function::ResponseStream;

/// Longest line kept whole; longer ones are split
const MAX_LINE: usize = 64 * 1024;

/// Where output lines go: the current invocation's log, and the emulator's stderr
pub(super) struct LogSink {
    target: Mutex<Option<ResponseStream>>,
    echo: Arc<AtomicBool>,
}

impl LogSink {
    pub(super) fn new(echo: Arc<AtomicBool>) -> Self {
        Self {
            target: Mutex::new(None),
            echo,
        }
    }

    /// Sets the invocation whose log receives the lines
    pub(super) fn set(&self, target: Option<ResponseStream>) {
        if let Ok(mut t) = self.target.lock() {
            *t = target;
        }
    }

    fn line(&self, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        let text = text.strip_suffix('\r').unwrap_or(&text);
        if let Ok(t) = self.target.lock()
            && let Some(out) = t.as_ref()
        {
            out.log(text);
        }
        if self.echo.load(Ordering::Relaxed) {
            let _ = writeln!(std::io::stderr(), "{text}");
        }
    }
}

/// The reader of one output stream
pub(super) struct LogPipe {
    sync: mpsc::Sender<oneshot::Sender<()>>,
}

impl LogPipe {
    /// Starts reading `ours` (our end of the socket pair)
    pub(super) fn spawn(ours: StdUnixStream, sink: Arc<LogSink>) -> io::Result<Self> {
        ours.set_nonblocking(true)?;
        let direct = ours.try_clone()?;
        let stream = UnixStream::from_std(ours)?;
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(read_loop(stream, direct, sink, rx));
        Ok(Self { sync: tx })
    }

    /// Returns once everything written so far has reached the sink (bounded wait)
    pub(super) async fn sync(&self) {
        let (tx, rx) = oneshot::channel();
        if self.sync.send(tx).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(1), rx).await;
        }
    }
}

struct Lines {
    partial: Vec<u8>,
    sink: Arc<LogSink>,
}

impl Lines {
    fn feed(&mut self, mut data: &[u8]) {
        while let Some(nl) = data.iter().position(|b| *b == b'\n') {
            if self.partial.is_empty() {
                self.sink.line(&data[..nl]);
            } else {
                self.partial.extend_from_slice(&data[..nl]);
                self.sink.line(&self.partial);
                self.partial.clear();
            }
            data = &data[nl + 1..];
        }
        self.partial.extend_from_slice(data);
        if self.partial.len() >= MAX_LINE {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if !self.partial.is_empty() {
            self.sink.line(&self.partial);
            self.partial.clear();
        }
    }
}

async fn read_loop(
    mut stream: UnixStream,
    direct: StdUnixStream,
    sink: Arc<LogSink>,
    mut syncs: mpsc::Receiver<oneshot::Sender<()>>,
) {
    let mut lines = Lines {
        partial: Vec::new(),
        sink,
    };
    let mut buf = vec![0u8; 16 * 1024];
    let mut eof = false;
    while !eof {
        tokio::select! {
            r = stream.read(&mut buf) => match r {
                Ok(0) | Err(_) => eof = true,
                Ok(n) => lines.feed(&buf[..n]),
            },
            ack = syncs.recv() => {
                let Some(ack) = ack else { break };
                // Read what the kernel already holds, whatever the reactor has seen so far
                loop {
                    match (&direct).read(&mut buf) {
                        Ok(0) => { eof = true; break; }
                        Ok(n) => lines.feed(&buf[..n]),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
                lines.flush();
                let _ = ack.send(());
            }
        }
    }
    lines.flush();
    // The process is gone: later syncs have nothing to wait for
    while let Some(ack) = syncs.recv().await {
        let _ = ack.send(());
    }
}
