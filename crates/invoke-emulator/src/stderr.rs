//! The emulator's stderr, written by a thread of its own
//!
//! The log lines (one per request) and the function processes' echoed output are queued
//! here instead of written by the task that makes them: a stderr nobody reads (a paused
//! pager, a stuck log collector) then holds up that thread alone, never the server's tasks.
//! The queue holds at most [`MAX_QUEUED`] bytes, the write under way included; what does not
//! fit is dropped and counted, and the count is written once stderr takes writes again.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// Most bytes queued for stderr, the write under way included
pub(crate) const MAX_QUEUED: usize = 1 << 20;

/// The process's stderr, behind its writer thread
pub(crate) fn stderr() -> &'static Queued {
    static STDERR: OnceLock<Queued> = OnceLock::new();
    STDERR.get_or_init(|| Queued::new(std::io::stderr(), MAX_QUEUED))
}

#[derive(Default)]
struct State {
    queue: VecDeque<Vec<u8>>,
    /// Bytes queued or being written
    bytes: usize,
    /// Bytes dropped since the last note about them
    dropped: u64,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when something is queued
    more: Condvar,
    /// Signalled when everything queued is written
    written: Condvar,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An output written by a thread of its own, from a bounded queue
pub(crate) struct Queued {
    shared: Arc<Shared>,
    max: usize,
    /// The output, written directly, when the writer thread could not be started
    fallback: Option<Mutex<Box<dyn Write + Send>>>,
}

impl Queued {
    /// `out` written by a new thread, at most `max` bytes queued
    pub(crate) fn new(out: impl Write + Send + 'static, max: usize) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            more: Condvar::new(),
            written: Condvar::new(),
        });
        let out: Box<dyn Write + Send> = Box::new(out);
        let slot = Arc::new(Mutex::new(Some(out)));
        let theirs = Arc::clone(&shared);
        let their_out = Arc::clone(&slot);
        let started = std::thread::Builder::new()
            .name("invoke-emulator-stderr".to_owned())
            .spawn(move || {
                let out = their_out.lock().ok().and_then(|mut o| o.take());
                if let Some(out) = out {
                    write_loop(&theirs, out);
                }
            });
        let fallback = if started.is_ok() {
            None
        } else {
            slot.lock().ok().and_then(|mut o| o.take()).map(Mutex::new)
        };
        Self {
            shared,
            max,
            fallback,
        }
    }

    /// Queues `bytes` for the output; never waits for it (dropped and counted when the queue
    /// is full)
    pub(crate) fn write(&self, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        if let Some(out) = &self.fallback {
            if let Ok(mut out) = out.lock() {
                // A closed stderr must not take the server down
                let _ = out.write_all(&bytes);
            }
            return;
        }
        let mut s = self.shared.state();
        if s.bytes.saturating_add(bytes.len()) > self.max {
            s.dropped = s.dropped.saturating_add(bytes.len() as u64);
            return;
        }
        s.bytes += bytes.len();
        s.queue.push_back(bytes);
        drop(s);
        self.shared.more.notify_one();
    }

    /// Waits at most `within` for everything queued to be written; whether it was
    pub(crate) fn flush(&self, within: Duration) -> bool {
        let until = Instant::now() + within;
        let mut s = self.shared.state();
        while s.bytes > 0 {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            s = self
                .shared
                .written
                .wait_timeout(s, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

/// The writer thread: writes what is queued, in order, then a note of what was dropped
fn write_loop(shared: &Shared, mut out: Box<dyn Write + Send>) {
    loop {
        let (bytes, dropped) = {
            let mut s = shared.state();
            while s.queue.is_empty() {
                s = shared.more.wait(s).unwrap_or_else(PoisonError::into_inner);
            }
            let bytes = s.queue.pop_front().unwrap_or_default();
            (bytes, std::mem::take(&mut s.dropped))
        };
        // A closed stderr must not take the server down
        write_fully(&mut *out, &bytes);
        if dropped > 0 {
            let note = format!(
                "lambda-stream: {dropped} bytes of log output dropped: stderr was not read\n"
            );
            write_fully(&mut *out, note.as_bytes());
        }
        let _ = out.flush();
        let mut s = shared.state();
        s.bytes -= bytes.len();
        if s.bytes == 0 {
            shared.written.notify_all();
        }
    }
}

/// Writes all of `bytes`, waiting out an output that is not ready (a non-blocking stderr
/// shared with another process says `WouldBlock`) so that no line is cut short; gives up on
/// any other error (a closed stderr)
fn write_fully(out: &mut dyn Write, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        match out.write(bytes) {
            Ok(0) => return,
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// An output that blocks its first write until the gate opens
    struct Gated {
        entered: mpsc::Sender<()>,
        gate: Option<mpsc::Receiver<()>>,
        got: Arc<Mutex<Vec<u8>>>,
    }

    /// What an output took
    type Taken = Arc<Mutex<Vec<u8>>>;

    impl Gated {
        /// The output; a receiver told when its first write began; the sender that lets
        /// that write go on; what it took
        fn new() -> (Self, mpsc::Receiver<()>, mpsc::Sender<()>, Taken) {
            let (entered_tx, entered) = mpsc::channel();
            let (open, gate) = mpsc::channel();
            let got = Arc::new(Mutex::new(Vec::new()));
            let out = Self {
                entered: entered_tx,
                gate: Some(gate),
                got: Arc::clone(&got),
            };
            (out, entered, open, got)
        }
    }

    impl Write for Gated {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Some(gate) = self.gate.take() {
                let _ = self.entered.send(());
                let _ = gate.recv();
            }
            self.got.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_blocked_output_never_blocks_the_writer_and_drops_are_counted() {
        let (out, entered, open, got) = Gated::new();
        let q = Arc::new(Queued::new(out, 16));
        q.write(b"first\n".to_vec());
        // the writer thread is now stuck in the output's first write
        entered.recv_timeout(Duration::from_secs(30)).unwrap();
        let (done_tx, done) = mpsc::channel();
        let writer = Arc::clone(&q);
        std::thread::spawn(move || {
            writer.write(b"second\n".to_vec()); // 6 + 7 bytes: fits
            writer.write(b"third-line\n".to_vec()); // 13 + 11 > 16: dropped
            let _ = done_tx.send(());
        });
        done.recv_timeout(Duration::from_secs(30))
            .expect("writes return while the output is blocked");
        assert!(!q.flush(Duration::ZERO), "the output is still blocked");
        open.send(()).unwrap();
        assert!(q.flush(Duration::from_secs(30)));
        assert_eq!(
            String::from_utf8(got.lock().unwrap().clone()).unwrap(),
            "first\nsecond\nlambda-stream: 11 bytes of log output dropped: stderr was not read\n"
        );
        // the queue takes writes again
        q.write(b"fourth\n".to_vec());
        assert!(q.flush(Duration::from_secs(30)));
        assert!(got.lock().unwrap().ends_with(b"read\nfourth\n"));
    }

    #[test]
    fn writes_fill_the_queue_to_exactly_its_size() {
        let (out, entered, open, got) = Gated::new();
        let q = Queued::new(out, 16);
        q.write(b"0123456789".to_vec());
        entered.recv_timeout(Duration::from_secs(30)).unwrap();
        q.write(b"abcdef".to_vec()); // 10 + 6 = 16: fits
        q.write(b"!".to_vec()); // 17: dropped
        open.send(()).unwrap();
        assert!(q.flush(Duration::from_secs(30)));
        assert_eq!(
            String::from_utf8(got.lock().unwrap().clone()).unwrap(),
            "0123456789abcdef\
             lambda-stream: 1 bytes of log output dropped: stderr was not read\n"
        );
    }

    /// An output that fails its first write with `first` and takes the rest
    struct FailsOnce {
        first: Option<std::io::ErrorKind>,
        got: Vec<u8>,
    }

    impl Write for FailsOnce {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Some(kind) = self.first.take() {
                return Err(kind.into());
            }
            self.got.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A write interrupted by a signal or not ready is tried again; any other error (a
    /// closed stderr) ends it, at once, rather than retrying for good
    #[test]
    fn only_an_interrupted_or_not_ready_write_is_tried_again() {
        for (kind, retried) in [
            (std::io::ErrorKind::Interrupted, true),
            (std::io::ErrorKind::WouldBlock, true),
            (std::io::ErrorKind::BrokenPipe, false),
            (std::io::ErrorKind::Other, false),
        ] {
            let mut out = FailsOnce {
                first: Some(kind),
                got: Vec::new(),
            };
            write_fully(&mut out, b"line\n");
            let want: &[u8] = if retried { b"line\n" } else { b"" };
            assert_eq!(out.got, want, "{kind:?}");
        }
    }

    /// An output that takes a few bytes at a time and is often not ready
    struct Reluctant {
        calls: usize,
        got: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Reluctant {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.calls += 1;
            if self.calls.is_multiple_of(2) {
                return Err(std::io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(3);
            self.got.lock().unwrap().extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_output_not_ready_gets_every_line_whole() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let out = Reluctant {
            calls: 0,
            got: Arc::clone(&got),
        };
        let q = Queued::new(out, 1024);
        q.write(b"one line\n".to_vec());
        q.write(b"another line\n".to_vec());
        assert!(q.flush(Duration::from_secs(30)));
        assert_eq!(&got.lock().unwrap()[..], b"one line\nanother line\n");
    }
}
