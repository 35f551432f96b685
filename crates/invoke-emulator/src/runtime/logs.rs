//! A function process's stdout and stderr: the invocation's log tail, and a bounded echo
//!
//! The child writes to one end of a Unix socket pair. A task reads the other end as data
//! arrives and hands whole lines, a block at a time, to the [`LogSink`]: the last 4 KiB go to
//! the current invocation's log (what `LogType: Tail` returns) and the lines are echoed to the
//! emulator's stderr, at most [`ECHO_BURST`] at once and [`ECHO_RATE`] per second per process
//! (counted in echoed bytes, escapes included); what goes over is dropped and counted in a
//! note. The echo shows control characters other than newline and tab escaped, and bytes that
//! are not UTF-8 as `\xNN` ([`push_echo`]), so that a function cannot send escape sequences to
//! the terminal; the log keeps them as they came. When an invocation ends, [`LogPipe::sync`]
//! makes the task read what the kernel already holds (at most [`SYNC_MAX`]) with a direct
//! non-blocking read, so what the process printed before it answered is in that invocation's
//! log. Between invocations at most [`IDLE_READ`] bytes are read: a process that keeps
//! printing then blocks on its own writes (no CPU spent on either side) until the next
//! invocation resumes reading.

use std::fmt::Write as _;
use std::io::{self, Read as _};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt as _;
use tokio::net::UnixStream;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::function::{LogTail, ResponseStream};
use crate::server::push_escaped;

/// Longest line kept whole; longer ones are split
const MAX_LINE: usize = 64 * 1024;
/// One read from the pipe
const READ_BUF: usize = 64 * 1024;
/// Bytes read from a process while it serves no invocation, until the next one starts
pub(super) const IDLE_READ: usize = 64 * 1024;
/// Bytes one [`LogPipe::sync`] reads at most
pub(super) const SYNC_MAX: usize = 1024 * 1024;
/// Bytes of output echoed at once
pub(super) const ECHO_BURST: u64 = 256 * 1024;
/// Bytes of output echoed per second, sustained
pub(super) const ECHO_RATE: u64 = 64 * 1024;
/// After dropping output, the echo resumes once this much may be echoed again
const ECHO_RESUME: u64 = 64 * 1024;

/// A token bucket over the bytes echoed to stderr: whole lines while they fit, then a count
/// of what was dropped
#[derive(Debug)]
pub(super) struct EchoLimit {
    tokens: u64,
    last: Instant,
    dropped: u64,
}

/// What [`EchoLimit::admit`] lets through of a block of lines
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Admitted {
    /// Bytes dropped before this block, to report in a note first
    pub(super) note: Option<u64>,
    /// Length of the block's prefix to echo (whole lines)
    pub(super) echo: usize,
}

impl EchoLimit {
    pub(super) fn new(now: Instant) -> Self {
        Self {
            tokens: ECHO_BURST,
            last: now,
            dropped: 0,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last);
        let earned = u64::try_from(
            elapsed.as_micros() * u128::from(ECHO_RATE) / Duration::from_secs(1).as_micros(),
        )
        .unwrap_or(u64::MAX);
        if earned > 0 {
            self.tokens = self.tokens.saturating_add(earned).min(ECHO_BURST);
            self.last = now;
        }
    }

    /// How much of `block` (whole lines) to echo at `now`
    pub(super) fn admit(&mut self, now: Instant, block: &[u8]) -> Admitted {
        self.refill(now);
        let len = block.len() as u64;
        if self.dropped > 0 && self.tokens < ECHO_RESUME {
            self.dropped += len;
            return Admitted {
                note: None,
                echo: 0,
            };
        }
        let note = (self.dropped > 0).then(|| std::mem::take(&mut self.dropped));
        let echo = if len <= self.tokens {
            block.len()
        } else {
            // `tokens < len <= usize::MAX`
            let fits = usize::try_from(self.tokens).unwrap_or(usize::MAX);
            block[..fits]
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |p| p + 1)
        };
        self.tokens -= echo as u64;
        self.dropped += len - echo as u64;
        Admitted { note, echo }
    }

    /// The count of dropped bytes not reported yet, reset
    pub(super) fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }
}

/// Where echoed output is written: the emulator's stderr, or a test's buffer
type EchoOut = Box<dyn Fn(Vec<u8>) + Send + Sync>;

/// Where output goes: the current invocation's log, and the emulator's stderr
pub(super) struct LogSink {
    function: String,
    state: Mutex<SinkState>,
    echo: Arc<AtomicBool>,
    echo_out: EchoOut,
    /// Wakes readers paused between invocations
    wake: Notify,
}

struct SinkState {
    target: Option<ResponseStream>,
    /// Bytes that may still be read while no invocation is attached
    idle_left: usize,
    limit: EchoLimit,
}

impl LogSink {
    pub(super) fn new(function: String, echo: Arc<AtomicBool>) -> Self {
        // queued: a stderr nobody reads must not hold up the reading task
        Self::echoing_to(
            function,
            echo,
            Box::new(|b| crate::stderr::stderr().write(b)),
        )
    }

    fn echoing_to(function: String, echo: Arc<AtomicBool>, echo_out: EchoOut) -> Self {
        Self {
            function,
            state: Mutex::new(SinkState {
                target: None,
                idle_left: IDLE_READ,
                limit: EchoLimit::new(Instant::now()),
            }),
            echo,
            echo_out,
            wake: Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SinkState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends the output to `out`'s log from now on, and resumes reading
    pub(super) fn attach(&self, out: ResponseStream) {
        self.state().target = Some(out);
        self.wake.notify_waiters();
    }

    /// Ends the invocation's log: from now on output is only echoed, and at most
    /// [`IDLE_READ`] more bytes are read until the next [`attach`](Self::attach)
    pub(super) fn detach(&self) {
        let dropped = {
            let mut s = self.state();
            s.target = None;
            s.idle_left = IDLE_READ;
            s.limit.take_dropped()
        };
        if dropped > 0 && self.echo.load(Ordering::Relaxed) {
            (self.echo_out)(format!("{}\n", self.note(dropped)).into_bytes());
        }
    }

    fn note(&self, dropped: u64) -> String {
        format!(
            "lambda-stream: function {}: {dropped} bytes of output not echoed (over {} KiB/s)",
            self.function,
            ECHO_RATE / 1024
        )
    }

    /// Whether the readers may read now
    fn may_read(&self) -> bool {
        let s = self.state();
        s.target.is_some() || s.idle_left > 0
    }

    /// Counts `n` bytes read
    fn spend(&self, n: usize) {
        let mut s = self.state();
        if s.target.is_none() {
            s.idle_left = s.idle_left.saturating_sub(n);
        }
    }

    /// Whole lines of output (each ending with `\n`, or with `newline` the last one not yet)
    fn block(&self, lines: &[u8], newline: bool) {
        let echo = self.echo.load(Ordering::Relaxed);
        // the limit counts what reaches the terminal: escaped, a byte can take six
        let mut escaped = Vec::new();
        if echo {
            push_echo(&mut escaped, lines);
        }
        let admitted = {
            let mut s = self.state();
            if let Some(out) = s.target.as_ref() {
                let mut text = tail_text(lines);
                if newline {
                    text.push('\n');
                }
                out.log_text(&text);
            }
            echo.then(|| s.limit.admit(Instant::now(), &escaped))
        };
        let Some(a) = admitted else { return };
        // one write
        let mut echoed = Vec::new();
        if let Some(dropped) = a.note {
            echoed.extend_from_slice(self.note(dropped).as_bytes());
            echoed.push(b'\n');
        }
        if a.echo > 0 {
            echoed.extend_from_slice(&escaped[..a.echo]);
            if newline && a.echo == escaped.len() {
                echoed.push(b'\n');
            }
        }
        (self.echo_out)(echoed);
    }
}

/// Appends a function's `output` to `out` as the echo shows it on a terminal: text as it is,
/// with newlines and tabs (`\r\n` as `\n`); other control characters escaped as Rust writes
/// them (`\u{1b}`, `\r`), and bytes that are not UTF-8 as `\xNN`, so that the function
/// cannot drive the terminal (escape sequences, a bare `\r` writing over a line)
fn push_echo(out: &mut Vec<u8>, output: &[u8]) {
    let mut text = String::new();
    for chunk in output.utf8_chunks() {
        // the text between newlines and tabs, escaped as in log lines
        let mut rest = chunk.valid();
        while let Some(at) = rest.find(['\n', '\t']) {
            let (run, kept) = (&rest[..at], &rest[at..=at]);
            let run = match kept {
                "\n" => run.strip_suffix('\r').unwrap_or(run),
                _ => run,
            };
            push_escaped(&mut text, run.chars());
            text.push_str(kept);
            rest = &rest[at + 1..];
        }
        push_escaped(&mut text, rest.chars());
        for b in chunk.invalid() {
            let _ = write!(text, "\\x{b:02x}");
        }
    }
    out.extend_from_slice(text.as_bytes());
}

/// The part of `lines` the log tail can keep, as text: invalid UTF-8 replaced, `\r\n` as `\n`
fn tail_text(lines: &[u8]) -> String {
    // A few bytes more than the tail keeps, so that a cut character or `\r\n` is outside it
    let start = lines.len().saturating_sub(LogTail::MAX + 8);
    String::from_utf8_lossy(&lines[start..]).replace("\r\n", "\n")
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

    /// Returns once what was written so far (at most [`SYNC_MAX`] bytes of it) has reached
    /// the sink (bounded wait)
    pub(super) async fn sync(&self) {
        let (tx, rx) = oneshot::channel();
        if self.sync.send(tx).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(1), rx).await;
        }
    }
}

/// Splits what a process writes into lines, each handed on whole however the reads cut it;
/// a line longer than [`MAX_LINE`] (not counting its `\n` or `\r\n`) is cut into pieces of at
/// most that many bytes, at the same places whatever the reads. A cut moves back to the start
/// of a UTF-8 character it would split: over at most three continuation bytes (`0b10xxxxxx`)
/// to a lead byte (`0b11xxxxxx`); without one there (not UTF-8), it stays at [`MAX_LINE`]
struct Lines {
    /// The current line's start, not yet ended: at most [`MAX_LINE`] bytes, or that many and
    /// a `\r` whose `\n` may come in the next read
    partial: Vec<u8>,
    /// Whole lines of one read, each ending with `\n`: a cut line with one added
    out: Vec<u8>,
    sink: Arc<LogSink>,
}

impl Lines {
    fn new(sink: Arc<LogSink>) -> Self {
        Self {
            partial: Vec::new(),
            out: Vec::new(),
            sink,
        }
    }

    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.partial.len() > MAX_LINE {
                // MAX_LINE bytes and a `\r`: the line's end if a `\n` follows, else cut
                // before the `\r` (a character of its own)
                if data[0] == b'\n' {
                    self.out.append(&mut self.partial);
                    self.out.push(b'\n');
                    data = &data[1..];
                } else {
                    self.cut_at(MAX_LINE);
                }
                continue;
            }
            let room = MAX_LINE - self.partial.len();
            // a line of exactly MAX_LINE bytes still has its `\n` or `\r\n` after it
            let look = data.len().min(room + 1);
            let end = data[..look]
                .iter()
                .position(|b| *b == b'\n')
                .or_else(|| (data.get(room..room + 2) == Some(b"\r\n")).then_some(room + 1));
            if let Some(at) = end {
                self.out.append(&mut self.partial);
                self.out.extend_from_slice(&data[..=at]);
                data = &data[at + 1..];
            } else if data.len() <= room || data[room..] == *b"\r" {
                self.partial.extend_from_slice(data);
                break;
            } else {
                // The line outgrows MAX_LINE: cut it there, before a character split there
                self.partial.extend_from_slice(&data[..room]);
                data = &data[room..];
                let is_continuation = |b: u8| b & 0xc0 == 0x80;
                let mut cut = MAX_LINE;
                let mut next = data[0];
                while cut > MAX_LINE - 3 && is_continuation(next) {
                    cut -= 1;
                    next = self.partial[cut];
                }
                if next < 0xc0 {
                    // no character starts at `cut` to go to the next piece: not valid UTF-8
                    cut = MAX_LINE;
                }
                self.cut_at(cut);
            }
        }
        if !self.out.is_empty() {
            self.sink.block(&self.out, false);
            self.out.clear();
        }
    }

    /// Hands on the current line's first `cut` bytes as a line of their own
    fn cut_at(&mut self, cut: usize) {
        self.out.extend_from_slice(&self.partial[..cut]);
        self.out.push(b'\n');
        self.partial.drain(..cut);
    }

    fn flush(&mut self) {
        if self.partial.len() > MAX_LINE {
            // the `\r` held for its `\n` ends no line: a piece of its own
            self.cut_at(MAX_LINE);
            self.sink.block(&self.out, false);
            self.out.clear();
        }
        if !self.partial.is_empty() {
            self.sink.block(&self.partial, true);
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
    let mut lines = Lines::new(Arc::clone(&sink));
    let mut buf = vec![0u8; READ_BUF];
    loop {
        if !sink.may_read() {
            // Paused between invocations: the next one (or the end of the process) wakes us
            let wake = sink.wake.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            if !sink.may_read() {
                tokio::select! {
                    () = wake => {}
                    ack = syncs.recv() => match ack {
                        Some(ack) => { let _ = ack.send(()); }
                        None => return,
                    },
                }
                continue;
            }
        }
        tokio::select! {
            r = stream.read(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    sink.spend(n);
                    lines.feed(&buf[..n]);
                }
            },
            ack = syncs.recv() => {
                let Some(ack) = ack else { return };
                // Read what the kernel already holds, whatever the reactor has seen so far
                let eof = read_held(&direct, &mut buf, &mut lines);
                lines.flush();
                let _ = ack.send(());
                if eof {
                    break;
                }
            }
        }
    }
    lines.flush();
    // The process is gone: later syncs have nothing to wait for
    while let Some(ack) = syncs.recv().await {
        let _ = ack.send(());
    }
}

/// Reads what `direct` holds now, at most [`SYNC_MAX`] bytes; whether it reached the end
fn read_held(mut direct: &StdUnixStream, buf: &mut [u8], lines: &mut Lines) -> bool {
    let mut left = SYNC_MAX;
    while left > 0 {
        let want = buf.len().min(left);
        match direct.read(&mut buf[..want]) {
            Ok(0) => return true,
            Ok(n) => {
                left -= n;
                lines.feed(&buf[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn lines(n: usize, width: usize) -> Vec<u8> {
        let mut line = vec![b'y'; width - 1];
        line.push(b'\n');
        line.repeat(n)
    }

    #[test]
    fn echo_is_bounded_by_burst_and_rate_with_a_note_of_what_was_dropped() {
        let t0 = Instant::now();
        let mut limit = EchoLimit::new(t0);
        let block = lines(1000, 100); // 100,000 bytes
        let mut echoed = 0u64;
        let mut offered = 0u64;
        // 100 blocks at the same instant: only the burst goes through, in whole lines
        for _ in 0..100 {
            let a = limit.admit(t0, &block);
            assert!(a.note.is_none());
            assert!(a.echo == 0 || block[a.echo - 1] == b'\n');
            echoed += a.echo as u64;
            offered += block.len() as u64;
        }
        assert!(echoed <= ECHO_BURST, "{echoed}");
        assert!(echoed > ECHO_BURST - 100, "{echoed}");
        // Half a second later: under the resume threshold, still dropping
        let t1 = t0 + Duration::from_millis(500);
        let a = limit.admit(t1, &block);
        assert_eq!(
            a,
            Admitted {
                note: None,
                echo: 0
            }
        );
        offered += block.len() as u64;
        // Two seconds after the start: the note (everything dropped so far), then what the
        // rate earned since
        let t2 = t0 + Duration::from_secs(2);
        let a = limit.admit(t2, &block);
        assert_eq!(a.note, Some(offered - echoed));
        assert!(a.echo as u64 <= 2 * ECHO_RATE + 100, "{a:?}");
        assert!(a.echo as u64 >= 2 * ECHO_RATE - ECHO_BURST / 8, "{a:?}");
        // A long quiet spell refills only up to the burst
        let t3 = t2 + Duration::from_secs(3600);
        let big = lines(10_000, 100);
        let a = limit.admit(t3, &big);
        assert!(a.echo as u64 <= ECHO_BURST, "{a:?}");
    }

    #[test]
    fn small_output_is_echoed_whole() {
        let t0 = Instant::now();
        let mut limit = EchoLimit::new(t0);
        for i in 0..1000u64 {
            let a = limit.admit(t0 + Duration::from_secs(i), b"hello\n");
            assert_eq!(
                a,
                Admitted {
                    note: None,
                    echo: 6
                }
            );
        }
    }

    /// Attaches an invocation to `sink`: its log, and its output (kept open while held)
    fn attach_log(sink: &LogSink) -> (Arc<Mutex<LogTail>>, crate::function::OutputRx) {
        let (tx, rx) = crate::function::output_channel();
        let log = Arc::new(Mutex::new(LogTail::default()));
        sink.attach(ResponseStream::new(tx, Arc::clone(&log)));
        (log, rx)
    }

    /// A sink of function `f` echoing into the returned buffer
    fn capturing_sink() -> (LogSink, Arc<Mutex<Vec<u8>>>) {
        let echoed = Arc::new(Mutex::new(Vec::new()));
        let out = Arc::clone(&echoed);
        let sink = LogSink::echoing_to(
            "f".into(),
            Arc::new(AtomicBool::new(true)),
            Box::new(move |b| out.lock().unwrap().extend_from_slice(&b)),
        );
        (sink, echoed)
    }

    /// The echo shows a function's output as text, its control characters and bytes that are
    /// not UTF-8 escaped; the invocation's log keeps them
    #[test]
    fn the_echo_escapes_what_would_drive_a_terminal_and_the_log_keeps_it() {
        let (sink, echoed) = capturing_sink();
        let (log, _rx) = attach_log(&sink);
        let mut lines = Lines::new(Arc::new(sink));
        lines.feed(
            b"plain \xc3\xa9t\xc3\xa9\tok\r\n\x1b[2J\x1b]0;title\x07 red\n\
              \xff\xfe bad\rover \xc2\x9b c1 \x7f\n",
        );
        assert_eq!(
            String::from_utf8(echoed.lock().unwrap().clone()).unwrap(),
            "plain \u{e9}t\u{e9}\tok\n\\u{1b}[2J\\u{1b}]0;title\\u{7} red\n\
             \\xff\\xfe bad\\rover \\u{9b} c1 \\u{7f}\n"
        );
        // the log as before: control characters as they came (invalid UTF-8 replaced)
        let tail = String::from_utf8(log.lock().unwrap().contents()).unwrap();
        assert!(
            tail.ends_with(
                "ok\n\x1b[2J\x1b]0;title\x07 red\n\u{fffd}\u{fffd} bad\rover \u{9b} c1 \x7f\n"
            ),
            "{tail:?}"
        );
    }

    /// Escapes make output up to six times longer on the terminal: the burst bounds what is
    /// echoed, not what the function wrote
    #[test]
    fn escaped_output_counts_against_the_burst_as_echoed() {
        // the sink's limit runs on the real clock: whatever the rate earned while this
        // test ran (on a loaded machine, some milliseconds) may be echoed too
        let start = Instant::now();
        let (sink, echoed) = capturing_sink();
        let mut lines = Lines::new(Arc::new(sink));
        // 200 KiB of escape characters, within the burst as written, six times over it
        // once escaped
        let mut line = vec![0x1b; 1023];
        line.push(b'\n');
        for _ in 0..200 {
            lines.feed(&line);
        }
        let earned = start.elapsed().as_micros() * u128::from(ECHO_RATE) / 1_000_000;
        let earned = u64::try_from(earned).unwrap_or(u64::MAX);
        let echoed = echoed.lock().unwrap().len() as u64;
        assert!(
            echoed <= (ECHO_BURST + 200).saturating_add(earned),
            "{echoed} bytes echoed, {earned} earned"
        );
        assert!(echoed > ECHO_BURST / 2, "{echoed} bytes echoed");
    }

    /// Time earned in steps too short to earn a byte each still adds up
    #[test]
    fn the_rate_is_earned_across_many_short_steps() {
        let t0 = Instant::now();
        let mut limit = EchoLimit::new(t0);
        let a = limit.admit(t0, &lines(300, 1024));
        assert_eq!(a.echo as u64, ECHO_BURST);
        // every 10 µs for 1.5 s (less than a byte earned each time): 96 KiB in all, and
        // the note of what was dropped once 64 KiB were earned
        let step = Duration::from_micros(10);
        let mut t = t0;
        let mut noted = 0;
        for _ in 0..150_000 {
            t += step;
            noted += limit.admit(t, b"").note.unwrap_or(0);
        }
        assert_eq!(noted, 44 * 1024);
        let a = limit.admit(t, &lines(10, 1024));
        assert_eq!(
            a,
            Admitted {
                note: None,
                echo: 10 * 1024
            }
        );
    }

    /// After dropping, the echo resumes once exactly [`ECHO_RESUME`] was earned
    #[test]
    fn the_echo_resumes_at_the_resume_threshold() {
        let t0 = Instant::now();
        let mut limit = EchoLimit::new(t0);
        // exactly the burst echoed, one line dropped
        let a = limit.admit(t0, &lines(257, 1024));
        assert_eq!(
            a,
            Admitted {
                note: None,
                echo: 256 * 1024
            }
        );
        // one second later, exactly ECHO_RESUME (= ECHO_RATE) was earned
        let a = limit.admit(t0 + Duration::from_secs(1), &lines(1, 1024));
        assert_eq!(
            a,
            Admitted {
                note: Some(1024),
                echo: 1024
            }
        );
    }

    /// The end of an invocation notes what the echo dropped, only when it dropped something
    /// and echoes; output after it is no longer the invocation's
    #[test]
    fn detach_notes_the_dropped_output_and_ends_the_log() {
        let (sink, echoed) = capturing_sink();
        let (log, _rx) = attach_log(&sink);
        sink.block(b"kept\n", false);
        sink.detach();
        assert_eq!(
            echoed.lock().unwrap().as_slice(),
            b"kept\n",
            "no note without drops"
        );
        sink.block(b"after\n", false);
        let tail = log.lock().unwrap().contents();
        assert!(tail.ends_with(b"kept\n"), "{tail:?}");
        // over the burst: the rest is dropped, and counted in a note at the end
        echoed.lock().unwrap().clear();
        let over = lines(300, 1024);
        sink.block(&over, false);
        sink.detach();
        let text = String::from_utf8(echoed.lock().unwrap().clone()).unwrap();
        let note = text.lines().last().unwrap();
        let dropped: usize = note
            .strip_prefix("lambda-stream: function f: ")
            .and_then(|n| n.strip_suffix(" bytes of output not echoed (over 64 KiB/s)"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{note}"));
        // the burst (less the 5 bytes above, plus what the clock earned since) went out
        assert!((44 * 1024..=45 * 1024).contains(&dropped), "{note}");
        // echo off: no note either
        let (quiet, echoed) = capturing_sink();
        quiet.echo.store(false, Ordering::Relaxed);
        quiet.state().limit.dropped = 5;
        quiet.detach();
        assert!(echoed.lock().unwrap().is_empty());
    }

    /// A line written in parts is one line; a line longer than [`MAX_LINE`] is cut there
    #[test]
    fn lines_are_joined_across_writes_and_cut_at_the_longest() {
        let (sink, echoed) = capturing_sink();
        let mut lines = Lines::new(Arc::new(sink));
        let long = vec![b'x'; 2000];
        lines.feed(&long[..1500]);
        lines.feed(&long[1500..]);
        lines.feed(b"\n");
        let mut want = long;
        want.push(b'\n');
        assert_eq!(*echoed.lock().unwrap(), want);
        echoed.lock().unwrap().clear();
        lines.feed(&vec![b'y'; MAX_LINE + 10]);
        let mut want = vec![b'y'; MAX_LINE];
        want.push(b'\n');
        assert_eq!(*echoed.lock().unwrap(), want, "cut at the longest");
        lines.flush();
        want.extend_from_slice(b"yyyyyyyyyy\n");
        assert_eq!(*echoed.lock().unwrap(), want, "the rest ended at the flush");
    }

    /// The lines [`Lines`] hands on, by definition, each with its end (`\n` or `\r\n`, `\n`
    /// after a cut, none for an unended last line): a line of valid UTF-8 longer than
    /// [`MAX_LINE`] (not counting its end) cut at the last character boundary at most
    /// [`MAX_LINE`] bytes in, again and again
    fn cut_lines(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for line in text.split_inclusive('\n') {
            let body = line
                .strip_suffix("\r\n")
                .or_else(|| line.strip_suffix('\n'))
                .unwrap_or(line);
            let mut rest = body;
            while rest.len() > MAX_LINE {
                let cut = rest.floor_char_boundary(MAX_LINE);
                out.push(format!("{}\n", &rest[..cut]));
                rest = &rest[cut..];
            }
            out.push(format!("{rest}{}", &line[body.len()..]));
        }
        out
    }

    /// What the echo shows of `lines` (as [`cut_lines`] gives them): an unended one ended
    fn echo_of(lines: &[String]) -> Vec<u8> {
        let mut out = Vec::new();
        for line in lines {
            push_echo(&mut out, line.as_bytes());
            if !line.ends_with('\n') {
                out.push(b'\n');
            }
        }
        out
    }

    /// Text of lines around [`MAX_LINE`] and its multiples, of characters of one to four
    /// bytes (a character often straddles a cut) and a few `\r`, ended by `\n` or `\r\n`, in
    /// all at most `most` bytes
    fn long_lines(rng: &mut crate::runtime::TestRng, most: usize) -> String {
        const CHARS: [char; 5] = ['a', ' ', '\u{e9}', '\u{4e2d}', '\u{1f600}'];
        let mut text = String::new();
        loop {
            let len = match rng.below(4) {
                0 => rng.below(100),
                1 => MAX_LINE - 4 + rng.below(8),
                2 => 2 * MAX_LINE - 4 + rng.below(8),
                _ => rng.below(3 * MAX_LINE),
            };
            if text.len() + len + 4 > most {
                return text;
            }
            let end = text.len() + len;
            while text.len() < end {
                if rng.below(64) == 0 {
                    text.push('\r');
                } else {
                    text.push(CHARS[rng.below(CHARS.len())]);
                }
            }
            if rng.below(2) == 0 {
                text.push('\r');
            }
            text.push('\n');
        }
    }

    /// Feeds `data` whole, a byte or a few at a time, or at random cuts (by `mode`), then
    /// flushes; what was echoed
    fn feed_in_parts(data: &[u8], mode: usize, rng: &mut crate::runtime::TestRng) -> Vec<u8> {
        let (sink, echoed) = capturing_sink();
        let mut lines = Lines::new(Arc::new(sink));
        let mut rest = data;
        while !rest.is_empty() {
            let n = match mode {
                0 => rest.len(),
                1 => 1 + rng.below(8),
                _ => 1 + rng.below(2 * MAX_LINE),
            };
            let (now, later) = rest.split_at(n.min(rest.len()));
            lines.feed(now);
            rest = later;
        }
        lines.flush();
        echoed.lock().unwrap().clone()
    }

    /// Long lines are cut at the same places however the reads cut them, never inside a
    /// character; nothing is lost, added (but the cuts' newlines) or reordered
    #[test]
    fn long_lines_are_cut_at_the_same_places_whatever_the_reads() {
        let mut rng = crate::runtime::TestRng(0x2545_f491_4f6c_dd1d);
        // under the echo's burst, so that all of it is echoed (a `\r` shows as two bytes)
        let most = usize::try_from(ECHO_BURST).unwrap() - 16 * 1024;
        for case in 0..120 {
            let mut text = long_lines(&mut rng, most);
            if case % 2 == 1 {
                // unended
                text.pop();
            }
            let want = echo_of(&cut_lines(&text));
            for mode in 0..3 {
                let got = feed_in_parts(text.as_bytes(), mode, &mut rng);
                assert!(
                    got == want,
                    "case {case}, mode {mode}: {} bytes, not the {} wanted",
                    got.len(),
                    want.len()
                );
            }
        }
    }

    /// A line of [`MAX_LINE`] bytes ended by `\r\n` is whole, however the reads cut it; a
    /// `\r` after [`MAX_LINE`] bytes that no `\n` follows (or nothing) goes to the next piece;
    /// an unended line of [`MAX_LINE`] bytes, the last a `\r`, is one piece
    #[test]
    fn a_longest_line_ended_by_crlf_is_not_cut() {
        let mut rng = crate::runtime::TestRng(0x6a09_e667_f3bc_c908);
        let a = "a".repeat(MAX_LINE);
        let cases = [
            (format!("{a}\r\nb\n"), [format!("{a}\r\n"), "b\n".into()]),
            (format!("{a}\r\n"), [format!("{a}\r\n"), String::new()]),
            (format!("{a}\r\r\n"), [format!("{a}\n"), "\r\r\n".into()]),
            (format!("{a}a\r\n"), [format!("{a}\n"), "a\r\n".into()]),
            (format!("{a}\rb\n"), [format!("{a}\n"), "\rb\n".into()]),
            (format!("{a}\r"), [format!("{a}\n"), "\r".into()]),
            // unended, exactly MAX_LINE bytes with the `\r`: not cut, the `\r` shown
            (
                format!("{}\r", &a[1..]),
                [format!("{}\r", &a[1..]), String::new()],
            ),
        ];
        for (text, want) in cases {
            let tail = &text[MAX_LINE - 2..];
            let want: Vec<String> = want.into_iter().filter(|l| !l.is_empty()).collect();
            assert_eq!(cut_lines(&text), want, "the definition, {tail:?}");
            let want = echo_of(&want);
            for mode in 0..3 {
                let got = feed_in_parts(text.as_bytes(), mode, &mut rng);
                assert!(got == want, "{tail:?}, mode {mode}");
            }
        }
        // the `\r` held alone, then its `\n` in a read of its own
        let (sink, echoed) = capturing_sink();
        let mut lines = Lines::new(Arc::new(sink));
        lines.feed(a.as_bytes());
        lines.feed(b"\r");
        assert!(echoed.lock().unwrap().is_empty(), "nothing handed on yet");
        lines.feed(b"\n");
        assert!(*echoed.lock().unwrap() == echo_of(&[format!("{a}\r\n")]));
    }

    /// Bytes that are not UTF-8 at a cut: the cut moves back over at most three
    /// continuation bytes (`0b10xxxxxx`) to a lead byte (`0b11xxxxxx`), else it stays at
    /// [`MAX_LINE`]; the same whatever the reads
    #[test]
    fn a_cut_among_bytes_that_are_not_utf8_moves_back_to_a_lead_byte_or_not_at_all() {
        let mut rng = crate::runtime::TestRng(0x9e37_79b9_7f4a_7c15);
        let mut cases = Vec::new();
        // a lead byte without its continuation; continuations without a lead; a bad byte
        for odd in [
            &b"\xe4a"[..],
            b"\x80\x80\x80\x80",
            b"a\x80\x80\x80",
            b"\xff",
        ] {
            for at in MAX_LINE - 4..=MAX_LINE {
                cases.push((odd, at, MAX_LINE));
            }
        }
        // a lead byte four continuations back is too far, three is not
        cases.push((b"\xf0\x80\x80\x80\x80", MAX_LINE - 4, MAX_LINE));
        cases.push((b"\xf0\x80\x80\x80\x80", MAX_LINE - 3, MAX_LINE - 3));
        // a lead byte that starts no valid character is still one
        cases.push((b"\xc0\x80", MAX_LINE - 1, MAX_LINE - 1));
        for (odd, at, cut) in cases {
            let mut line = vec![b'a'; at];
            line.extend_from_slice(odd);
            line.extend_from_slice(&[b'b'; 10]);
            let mut want = Vec::new();
            push_echo(&mut want, &line[..cut]);
            want.push(b'\n');
            push_echo(&mut want, &line[cut..]);
            want.push(b'\n');
            for mode in 0..3 {
                let got = feed_in_parts(&line, mode, &mut rng);
                assert!(got == want, "{odd:?} at {at}, mode {mode}");
            }
        }
    }

    /// Between invocations the reader goes on until [`IDLE_READ`] bytes were read
    #[tokio::test]
    async fn between_invocations_up_to_the_idle_budget_is_read() {
        let (ours, mut theirs) = StdUnixStream::pair().unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel::<usize>();
        let sink = Arc::new(LogSink::echoing_to(
            "f".into(),
            Arc::new(AtomicBool::new(true)),
            Box::new(move |b| {
                let _ = tx.send(b.len());
            }),
        ));
        let _pipe = LogPipe::spawn(ours, sink).unwrap();
        // two writes of 16 KiB, each echoed before the next: both within the budget
        for round in 0..2 {
            theirs.write_all(&lines(256, 64)).unwrap();
            let mut got = 0;
            while got < 16 * 1024 {
                let n = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await;
                got += n.expect("read within the budget").unwrap();
            }
            assert_eq!(got, 16 * 1024, "round {round}");
        }
    }

    /// A block larger than the log tail leaves exactly its last 4 KiB there
    #[test]
    fn one_large_block_leaves_its_last_4_kib_in_the_log() {
        let (sink, _echoed) = capturing_sink();
        let (log, _rx) = attach_log(&sink);
        let block: Vec<u8> = (0..2000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        sink.block(&block, false);
        let tail = log.lock().unwrap().contents();
        assert_eq!(tail, block[block.len() - LogTail::MAX..]);
    }

    /// `sync` takes in what was written before it, the partial last line included, even
    /// when the reader has not been woken for it (one thread: no other task ran between
    /// the write and the sync)
    #[tokio::test]
    async fn sync_takes_in_what_was_written_before_it() {
        let (ours, mut theirs) = StdUnixStream::pair().unwrap();
        let (sink, _echoed) = capturing_sink();
        let sink = Arc::new(sink);
        let (log, _rx) = attach_log(&sink);
        let pipe = LogPipe::spawn(ours, sink).unwrap();
        pipe.sync().await;
        theirs.write_all(b"first line\npartial").unwrap();
        pipe.sync().await;
        assert_eq!(log.lock().unwrap().contents(), b"first line\npartial\n");
    }

    /// Writes to `theirs` until a write makes no progress for a while; the bytes written
    fn write_until_blocked(mut theirs: StdUnixStream, cap: usize) -> usize {
        theirs
            .set_write_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let chunk = lines(1024, 64);
        let mut written = 0;
        while written < cap {
            match theirs.write(&chunk) {
                Ok(n) => written += n,
                Err(_) => break,
            }
        }
        written
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reading_pauses_between_invocations_and_resumes_with_the_next() {
        const CAP: usize = 64 << 20;
        let (ours, theirs) = StdUnixStream::pair().unwrap();
        let echo = Arc::new(AtomicBool::new(false));
        let sink = Arc::new(LogSink::new("spam".into(), echo));
        let pipe = LogPipe::spawn(ours, Arc::clone(&sink)).unwrap();
        // No invocation attached: the reader takes IDLE_READ bytes, then the writer blocks
        // once the socket buffers are full (a few hundred KiB at most)
        let writer = theirs.try_clone().unwrap();
        let written = tokio::task::spawn_blocking(move || write_until_blocked(writer, CAP))
            .await
            .unwrap();
        assert!(
            written < 16 << 20,
            "the reader never paused: {written} bytes"
        );
        // An invocation resumes reading, and its log keeps the last 4 KiB
        let (log, mut rx) = attach_log(&sink);
        let writer = theirs.try_clone().unwrap();
        let more = tokio::task::spawn_blocking(move || {
            let mut w = writer;
            w.write_all(&lines(4096, 64)).unwrap();
            w.write_all(b"last line\n").unwrap();
        });
        more.await.unwrap();
        // `sync` reads at most SYNC_MAX per call: loop until the last line is in
        let mut synced = 0;
        loop {
            pipe.sync().await;
            let tail = log.lock().unwrap().contents();
            if tail.ends_with(b"last line\n") {
                assert_eq!(tail.len(), LogTail::MAX);
                break;
            }
            synced += 1;
            assert!(synced < 1000, "the last line never reached the log");
        }
        rx.close();
        drop(theirs);
    }
}
