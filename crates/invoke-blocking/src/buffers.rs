//! Body read buffers, handed to the decoder without a copy and reused once it is done with them

use std::cell::Cell;
use std::io::{self, Read};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

/// Most bytes one read takes (its buffer has [`PAGE`] more, to place the read in), and the
/// size of ureq's input buffer (set by the client) so that one read takes all that ureq
/// holds: ureq reads the socket 512 KiB at a time, and a message split between two reads is
/// copied together by the decoder, so larger reads mean fewer system calls and fewer such
/// copies (12% of the bytes of a fast stream of 64 KiB messages, 25% with ureq's default
/// 128 KiB)
pub(crate) const READ_SIZE: usize = 512 * 1024;
/// Reads shorter than this are copied out, so that a caller keeping small events does not
/// keep a whole buffer alive for each (a buffer handed out is at most about 8 times its
/// bytes).
/// Not 128 KiB: on loopback, 45% of the reads of a fast stream of 64 KiB messages were
/// 130,948 bytes, just under it (17% of the bytes, all copied)
const LEND_MIN: usize = READ_SIZE / 8;
/// Idle buffers a client keeps for its next reads (one serves a caller that drops each
/// event before the next read)
const MAX_IDLE: usize = 2;
/// The span of addresses whose low bits the CPU compares to tell whether a load may read
/// what a pending store writes (see [`read_offset`])
const PAGE: usize = 4096;

thread_local! {
    /// Where in a page the connection this thread read last puts the next bytes it receives
    static INPUT_AT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Notes where in a page a connection's input buffer receives its next bytes: the source
/// of ureq's copy of the body into ours (called by each connection before it reads)
pub(crate) fn note_input(next: usize) {
    INPUT_AT.set(Some(next % PAGE));
}

/// What [`note_input`] noted last on this thread, within a page
#[cfg(test)]
pub(crate) fn noted_input() -> Option<usize> {
    INPUT_AT.get()
}

/// Where in `buf` (which has [`PAGE`] bytes to spare) a read starts: half a page away from
/// ureq's input, within a page
///
/// ureq copies the body it de-chunks from its input buffer into ours. When the destination
/// lies a few dozen bytes past the source within a 4 KiB page, every load of the copy
/// seems to depend on a store just made (4K aliasing) and the copy runs about three times
/// slower (AMD EPYC: 0.49 against 0.38 ms of CPU per MiB for a stream of 64 KiB messages).
/// Two buffers of the same size allocated one after the other, as ureq's and ours are, sit
/// exactly so (16 bytes apart with glibc). Half a page away, the source's drift by each
/// HTTP chunk's framing (a few bytes a chunk) stays far from the window for large chunks,
/// where the copies are long; small chunks sweep through it, but their copies are short.
/// The place noted is where the thread's last wait for input would put bytes: for a read
/// of the same connection, where the next bytes land once ureq has consumed all it held.
fn read_offset(buf: &[u8]) -> usize {
    INPUT_AT.get().map_or(0, |input| {
        (input + PAGE / 2 + PAGE - buf.as_ptr().addr() % PAGE) % PAGE
    })
}

/// A client's idle read buffers, each [`READ_SIZE`] bytes and a [`PAGE`] to place reads
/// in, zeroed once when allocated
///
/// A body read lands in one of them and is handed to the decoder as it is (`Bytes` owning the
/// buffer); when the decoder and the caller have dropped every slice of it, the buffer comes
/// back here. Reads so avoid a copy, an allocation (with its page faults for large ones) and
/// the zeroing a fresh buffer would need.
#[derive(Debug, Default)]
pub(crate) struct BufferPool {
    idle: Mutex<Vec<Vec<u8>>>,
}

impl BufferPool {
    fn take(&self) -> Vec<u8> {
        let reused = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        reused.unwrap_or_else(|| vec![0; READ_SIZE + PAGE])
    }

    fn put(&self, buf: Vec<u8>) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(buf);
        }
    }

    /// Idle buffers held now
    #[cfg(test)]
    pub(crate) fn idle(&self) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// The read buffer of one response body
#[derive(Debug)]
pub(crate) struct BodyBuffer {
    pool: Arc<BufferPool>,
    /// Empty until the first read, and after a read handed the buffer out
    buf: Vec<u8>,
}

impl BodyBuffer {
    pub(crate) fn new(pool: Arc<BufferPool>) -> Self {
        Self {
            pool,
            buf: Vec::new(),
        }
    }

    /// One read from `body`: the bytes read, `None` at its end
    pub(crate) fn read(&mut self, body: &mut impl Read) -> io::Result<Option<Bytes>> {
        if self.buf.is_empty() {
            self.buf = self.pool.take();
        }
        let start = read_offset(&self.buf);
        let n = body.read(&mut self.buf[start..start + READ_SIZE])?;
        if n == 0 {
            return Ok(None);
        }
        if n < LEND_MIN {
            return Ok(Some(Bytes::copy_from_slice(&self.buf[start..start + n])));
        }
        let lent = Lent {
            buf: std::mem::take(&mut self.buf),
            start,
            len: n,
            pool: Arc::clone(&self.pool),
        };
        Ok(Some(Bytes::from_owner(lent)))
    }

    /// Reads and drops what is left of `body`, at most `limit` bytes; whether its end came
    pub(crate) fn discard(&mut self, body: &mut impl Read, limit: usize) -> bool {
        if self.buf.is_empty() {
            self.buf = self.pool.take();
        }
        let mut left = limit;
        loop {
            match body.read(&mut self.buf) {
                Ok(0) => return true,
                Ok(n) if n <= left => left -= n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(_) | Err(_) => return false,
            }
        }
    }
}

impl Drop for BodyBuffer {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.pool.put(std::mem::take(&mut self.buf));
        }
    }
}

/// A buffer handed out with `len` bytes read into it from `start`; back to the pool when
/// dropped
struct Lent {
    buf: Vec<u8>,
    start: usize,
    len: usize,
    pool: Arc<BufferPool>,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        self.pool.put(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_reads_are_lent_and_come_back_when_dropped() {
        let pool = Arc::new(BufferPool::default());
        let mut buffer = BodyBuffer::new(Arc::clone(&pool));
        let body: Vec<u8> = (0..READ_SIZE + 10).map(|i| (i % 251) as u8).collect();
        let mut reader = &body[..];
        let first = buffer.read(&mut reader).unwrap().unwrap();
        assert_eq!(first[..], body[..READ_SIZE]);
        let tail = buffer.read(&mut reader).unwrap().unwrap();
        assert_eq!(tail[..], body[READ_SIZE..]);
        assert!(buffer.read(&mut reader).unwrap().is_none());
        let slice = first.slice(100..200);
        drop(first);
        drop(buffer);
        // the second buffer (only copied from) went back when the body buffer was dropped;
        // the first is still lent out through `slice`
        assert_eq!(pool.idle(), 1);
        assert_eq!(slice[..], body[100..200]);
        drop(slice);
        assert_eq!(pool.idle(), 2);
        // and serves the next body without a new allocation
        let mut buffer = BodyBuffer::new(Arc::clone(&pool));
        let again = buffer.read(&mut &body[..LEND_MIN]).unwrap().unwrap();
        assert_eq!(again[..], body[..LEND_MIN]);
        assert_eq!(pool.idle(), 1);
    }

    #[test]
    fn small_reads_are_copied_and_keep_the_buffer() {
        let pool = Arc::new(BufferPool::default());
        let mut buffer = BodyBuffer::new(Arc::clone(&pool));
        let small = buffer.read(&mut &b"hello"[..]).unwrap().unwrap();
        assert_eq!(&small[..], b"hello");
        drop(buffer);
        // the buffer is back although `small` lives on
        assert_eq!(pool.idle(), 1);
        assert_eq!(&small[..], b"hello");
    }

    #[test]
    fn the_pool_keeps_few_idle_buffers() {
        let pool = Arc::new(BufferPool::default());
        let body = vec![7u8; READ_SIZE];
        let lent: Vec<Bytes> = (0..MAX_IDLE + 3)
            .map(|_| {
                let mut buffer = BodyBuffer::new(Arc::clone(&pool));
                buffer.read(&mut &body[..]).unwrap().unwrap()
            })
            .collect();
        assert_eq!(pool.idle(), 0);
        drop(lent);
        assert_eq!(pool.idle(), MAX_IDLE);
    }

    #[test]
    fn reads_start_half_a_page_from_where_the_input_lands() {
        // on a thread of its own: nothing noted yet, reads start at the buffer's start
        std::thread::spawn(|| {
            let pool = Arc::new(BufferPool::default());
            let body = vec![5u8; LEND_MIN];
            let first = BodyBuffer::new(Arc::clone(&pool))
                .read(&mut &body[..])
                .unwrap()
                .unwrap();
            let buffer_start = first.as_ptr().addr();
            drop(first);
            for at in [0, 1, 16, 2047, 2048, 4095] {
                note_input(7 * PAGE + at);
                let mut buffer = BodyBuffer::new(Arc::clone(&pool));
                let read = buffer.read(&mut &body[..]).unwrap().unwrap();
                assert_eq!(read[..], body[..], "input at {at}");
                let start = read.as_ptr().addr();
                assert_eq!(start % PAGE, (at + PAGE / 2) % PAGE, "input at {at}");
                // within the same buffer, and a whole read still fits after the start
                assert!(start >= buffer_start && start < buffer_start + PAGE);
                drop(read);
                let whole = vec![6u8; READ_SIZE + 1];
                let read = buffer.read(&mut &whole[..]).unwrap().unwrap();
                assert_eq!(read.len(), READ_SIZE, "input at {at}");
            }
        })
        .join()
        .unwrap();
    }

    #[test]
    fn discard_stops_at_the_limit() {
        let mut buffer = BodyBuffer::new(Arc::new(BufferPool::default()));
        assert!(buffer.discard(&mut &[1u8; 100][..], 100));
        assert!(!buffer.discard(&mut &[1u8; 101][..], 100));
    }

    /// A body that gives at most `step` bytes a read, after one read interrupted by a signal
    struct Trickle<'a> {
        rest: &'a [u8],
        step: usize,
        interrupted: bool,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if !std::mem::replace(&mut self.interrupted, true) {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = self.step.min(buf.len());
            self.rest.read(&mut buf[..n])
        }
    }

    #[test]
    fn discard_counts_every_read_against_the_limit_and_reads_on_after_a_signal() {
        let mut buffer = BodyBuffer::new(Arc::new(BufferPool::default()));
        let mut discard = |len: usize| {
            let body = vec![1u8; len];
            let mut trickle = Trickle {
                rest: &body,
                step: 30,
                interrupted: false,
            };
            buffer.discard(&mut trickle, 100)
        };
        // 30 + 30 + 30 + 10, then the end
        assert!(discard(100));
        // the fourth read of 30 goes past the limit
        assert!(!discard(120));
    }
}
