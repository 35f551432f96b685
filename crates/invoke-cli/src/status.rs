//! The live status line on stderr: bytes, chunks, rate, time to first byte

use std::io::{self, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::invoke::{Tally, human_bytes, human_duration, plural};

/// How often the line is redrawn, also while the function is silent
const TICK: Duration = Duration::from_millis(100);

/// Erases the current terminal line
const CLEAR: &str = "\r\x1b[2K";

/// What the drawing thread reads
#[derive(Default)]
struct Progress {
    bytes: AtomicU64,
    chunks: AtomicU64,
    /// Microseconds from the start to the first payload byte, plus one (0: none yet)
    first_byte: AtomicU64,
}

/// A status line drawn by its own thread until [`StatusLine::finish`] clears it
pub(crate) struct StatusLine {
    progress: Arc<Progress>,
    stop: mpsc::Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl StatusLine {
    /// Draws at once (on this thread: the first line is there before the request goes out,
    /// however late the drawing thread starts), then every [`TICK`]
    pub(crate) fn start(start: Instant) -> Self {
        let progress = Arc::new(Progress::default());
        draw(&progress, start);
        let (stop, stopped) = mpsc::channel();
        let p = Arc::clone(&progress);
        let thread = std::thread::spawn(move || {
            // until `finish` says so (or is gone)
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(TICK) {
                draw(&p, start);
            }
            let mut err = io::stderr().lock();
            let _ = write!(err, "{CLEAR}");
            let _ = err.flush();
        });
        Self {
            progress,
            stop,
            thread: Some(thread),
        }
    }

    /// The counts to show from now on
    pub(crate) fn update(&self, t: &Tally) {
        let p = &self.progress;
        p.bytes.store(t.bytes, Ordering::Relaxed);
        p.chunks.store(t.chunks, Ordering::Relaxed);
        if let Some(d) = t.first_byte {
            let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX - 1);
            p.first_byte.store(micros + 1, Ordering::Relaxed);
        }
    }

    /// Stops drawing and clears the line
    pub(crate) fn finish(mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn draw(p: &Progress, start: Instant) {
    let elapsed = start.elapsed();
    let (bytes, chunks) = (
        p.bytes.load(Ordering::Relaxed),
        p.chunks.load(Ordering::Relaxed),
    );
    let line = match p.first_byte.load(Ordering::Relaxed) {
        0 => format!("waiting for the response… {}", human_duration(elapsed)),
        first => {
            #[allow(clippy::cast_precision_loss, clippy::cast_sign_loss)] // a display value
            let rate = (bytes as f64 / elapsed.as_secs_f64().max(1e-3)) as u64;
            format!(
                "{} · {chunks} chunk{} · {}/s · first byte {} · {}",
                human_bytes(bytes),
                plural(chunks),
                human_bytes(rate),
                human_duration(Duration::from_micros(first - 1)),
                human_duration(elapsed),
            )
        }
    };
    let mut err = io::stderr().lock();
    let _ = write!(err, "{CLEAR}{line}");
    let _ = err.flush();
}
