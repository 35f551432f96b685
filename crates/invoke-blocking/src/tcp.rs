//! The TCP connection under every client's chain, in place of ureq's own
//!
//! ureq's TCP transport sets a write timeout once and then writes the whole output: each
//! system call may wait that long again, so a peer that reads a few bytes now and then (its
//! window barely open) stretches one write, and the call's deadline with it, without end.
//! Here a write ends within its window: every system call waits only for what is left of it
//! (and the window below already ends by the call's deadline, see `drain::Bounded`).
//! Connecting and reading are as in ureq: each resolved address in turn, the first with
//! the largest share of the connect timeout; one read per wait, retried after a signal.
//! Unlike ureq, the per-read and per-write (idle) timeouts do not cut the reads and writes
//! of connecting (a proxy's `CONNECT`, the TLS handshake): the connect timeout bounds them,
//! and a stall there is a connect timeout, never one of the response head. And a request's
//! head can wait for its body ([`hold_next_write`]) so that both go out in one system call:
//! ureq writes them apart, two segments, which cost the client (and the server) a system
//! call and a pass through the network stack each on every invocation.

use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, ShutdownHandle,
    Transport,
};

/// The shortest share of the connect timeout an address gets (as in ureq)
const MIN_PER_ADDRESS: Duration = Duration::from_millis(10);

/// Opens the TCP connection unless an earlier connector (a `CONNECT` tunnel) made one
#[derive(Debug, Default)]
pub(crate) struct Tcp;

impl<In: Transport> Connector<In> for Tcp {
    type Out = Either<In, TcpTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        if chained.is_some() {
            return Ok(chained.map(Either::A));
        }
        let stream = connect(&details.addrs, details.timeout)?;
        if details.config.no_delay() {
            stream.set_nodelay(true)?;
        }
        let transport = TcpTransport {
            stream: Arc::new(stream),
            buffers: LazyBuffers::new(
                details.config.input_buffer_size(),
                details.config.output_buffer_size(),
            ),
            read_timeout: None,
            write_timeout: None,
            held: Vec::new(),
        };
        // the agent may shut it down from another thread (`Agent::shutdown`)
        (details.register_shutdown)(Arc::downgrade(&transport.stream) as Weak<dyn ShutdownHandle>)?;
        Ok(Some(Either::B(transport)))
    }
}

/// The share of a connect timeout `total` that the address at `index` of `count` gets:
/// twice the next one's, the shares summing to `total` (two thirds and one third of it for
/// two addresses), but never under [`MIN_PER_ADDRESS`]
fn share(total: Duration, index: usize, count: usize) -> Duration {
    let power = |n: usize| 0.5_f64.powi(i32::try_from(n).unwrap_or(i32::MAX));
    // the weights 1, 1/2, 1/4, ... of `count` addresses sum to 2 (1 - 1/2^count)
    let weights = 2.0 * (1.0 - power(count));
    total.mul_f64(power(index) / weights).max(MIN_PER_ADDRESS)
}

/// The first address of `addrs` that accepts within its [share] of `timeout`
fn connect(addrs: &[SocketAddr], timeout: NextTimeout) -> Result<TcpStream, ureq::Error> {
    let start = Instant::now();
    let total = whole(timeout);
    let mut last = None;
    for (index, addr) in addrs.iter().enumerate() {
        let share = total.map(|t| share(t, index, addrs.len()));
        let connected = match share {
            Some(share) => TcpStream::connect_timeout(addr, share),
            None => TcpStream::connect(addr),
        };
        match connected {
            Ok(stream) => return Ok(stream),
            Err(e) if timed_out(&e) => {
                if total.is_some_and(|t| start.elapsed() >= t) {
                    return Err(ureq::Error::Timeout(timeout.reason));
                }
                last = Some(ureq::Error::Timeout(ureq::Timeout::Connect));
            }
            // this address only: the next one may answer
            Err(e) if address_specific(&e) => last = Some(ureq::Error::Io(e)),
            Err(e) => return Err(ureq::Error::Io(e)),
        }
    }
    Err(last.unwrap_or_else(|| {
        ureq::Error::Io(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            "no address to connect to",
        ))
    }))
}

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

/// A failure that concerns the address tried, not the host
fn address_specific(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::NetworkDown
            | io::ErrorKind::AddrNotAvailable
    )
}

/// One TCP connection and its buffers
#[derive(Debug)]
pub(crate) struct TcpTransport {
    /// Shared (weakly) with the agent's shutdown handle
    stream: Arc<TcpStream>,
    buffers: LazyBuffers,
    /// The socket's timeouts as last set (a system call only when one changes)
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    /// A request head held back to go out in one system call (and one segment) with the
    /// body that follows it (see [`hold_next_write`])
    held: Vec<u8>,
}

thread_local! {
    /// Whether the next write of a request on this thread (not one of connecting) is held
    /// back for the write after it
    static HOLD_NEXT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The most a held write keeps (a request head; more goes out at once)
const MAX_HELD: usize = 16 * 1024;

/// While the guard lives, the next write of a request on this thread (its head) waits for
/// the one after it (its body), and both go out in one system call: one segment instead of
/// two, so the server reads the whole request at once. A held write goes out before the
/// connection waits for input, whatever follows it.
pub(crate) fn hold_next_write() -> crate::drain::Scoped<bool> {
    crate::drain::Scoped::new(&HOLD_NEXT, true)
}

/// The wait of one system call: what is left until `end`, never zero (a zero timeout means
/// none to the socket); `None` without an end
fn left_until(end: Option<Instant>) -> Option<Duration> {
    end.map(|end| {
        end.saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    })
}

/// The timeout of one read or write: while `connecting`, the connect timeout as ureq gives
/// it; after, the per-read or per-write one `idle` picks (ureq's `for_read` / `for_write`)
fn phase_timeout(
    connecting: bool,
    timeout: NextTimeout,
    idle: fn(NextTimeout) -> NextTimeout,
) -> NextTimeout {
    if connecting { timeout } else { idle(timeout) }
}

/// The end of a wait of `timeout` from now; `None` if it never comes (or is out of range)
pub(crate) fn end_of(timeout: NextTimeout) -> Option<Instant> {
    if timeout.after.is_not_happening() {
        return None;
    }
    Instant::now().checked_add(*timeout.after)
}

/// The whole wait of `timeout`; `None` if it never ends
fn whole(timeout: NextTimeout) -> Option<Duration> {
    (!timeout.after.is_not_happening()).then(|| *timeout.after)
}

fn set_timeout(
    cached: &mut Option<Duration>,
    wanted: Option<Duration>,
    set: impl FnOnce(Option<Duration>) -> io::Result<()>,
) -> io::Result<()> {
    if *cached != wanted {
        set(wanted)?;
        *cached = wanted;
    }
    Ok(())
}

impl TcpTransport {
    /// Writes `first`, then the first `amount` bytes of the output buffer, within `timeout`:
    /// the first system call waits the whole window (the socket's timeout is then mostly
    /// unchanged from the last write: no system call to set it); any later one, after a
    /// partial write, only what is left of it
    fn write_all(
        &mut self,
        first: &[u8],
        amount: usize,
        timeout: NextTimeout,
    ) -> Result<(), ureq::Error> {
        if timeout.after.is_zero() {
            return Err(ureq::Error::Timeout(timeout.reason));
        }
        let end = end_of(timeout);
        let mut wait = whole(timeout);
        let total = first.len() + amount;
        let mut written = 0;
        while written < total {
            if end.is_some_and(|end| Instant::now() >= end) {
                return Err(ureq::Error::Timeout(timeout.reason));
            }
            let stream = &*self.stream;
            set_timeout(&mut self.write_timeout, wait, |t| {
                stream.set_write_timeout(t)
            })?;
            wait = left_until(end);
            let output = &self.buffers.output()[..amount];
            let result = if written < first.len() {
                (&*self.stream).write_vectored(&[
                    io::IoSlice::new(&first[written..]),
                    io::IoSlice::new(output),
                ])
            } else {
                (&*self.stream).write(&output[written - first.len()..])
            };
            match result {
                Ok(0) => return Err(ureq::Error::Io(io::ErrorKind::WriteZero.into())),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if timed_out(&e) => return Err(ureq::Error::Timeout(timeout.reason)),
                Err(e) => return Err(ureq::Error::Io(e)),
            }
        }
        Ok(())
    }
}

impl Transport for TcpTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let connecting = crate::drain::connecting();
        if !connecting && HOLD_NEXT.replace(false) && self.held.is_empty() && amount <= MAX_HELD {
            self.held
                .extend_from_slice(&self.buffers.output()[..amount]);
            return Ok(());
        }
        let timeout = phase_timeout(connecting, timeout, NextTimeout::for_write);
        // the held head first, in the same system call; its buffer kept for the next one
        let mut held = std::mem::take(&mut self.held);
        let sent = self.write_all(&held, amount, timeout);
        held.clear();
        self.held = held;
        sent
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        if !self.held.is_empty() {
            // nothing followed the held write: it goes out alone
            self.transmit_output(0, timeout)?;
        }
        let timeout = phase_timeout(crate::drain::connecting(), timeout, NextTimeout::for_read);
        if timeout.after.is_zero() {
            return Err(ureq::Error::Timeout(timeout.reason));
        }
        let end = end_of(timeout);
        // as for writes: the whole window first, what is left of it after a signal
        let mut wait = whole(timeout);
        let amount = loop {
            let stream = &*self.stream;
            set_timeout(&mut self.read_timeout, wait, |t| stream.set_read_timeout(t))?;
            wait = left_until(end);
            match (&*self.stream).read(self.buffers.input_append_buf()) {
                Ok(n) => break n,
                // a signal: read again in what is left of the wait
                Err(e)
                    if e.kind() == io::ErrorKind::Interrupted
                        && end.is_none_or(|end| Instant::now() < end) => {}
                Err(e) if timed_out(&e) || e.kind() == io::ErrorKind::Interrupted => {
                    return Err(ureq::Error::Timeout(timeout.reason));
                }
                Err(e) => return Err(ureq::Error::Io(e)),
            }
        };
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        // nothing to read and no error, without waiting: a connection still fit to reuse
        let stream = &*self.stream;
        if stream.set_nonblocking(true).is_err() {
            return false;
        }
        let open = matches!(
            (&*self.stream).read(&mut [0u8]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock
        );
        stream.set_nonblocking(false).is_ok() && open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeout(secs: u64) -> NextTimeout {
        NextTimeout {
            after: ureq::unversioned::transport::time::Duration::from_secs(secs),
            reason: ureq::Timeout::SendRequest,
            per_read: None,
            per_write: None,
        }
    }

    /// A transport connected to a peer on loopback, and the peer's end
    fn pair() -> (TcpTransport, TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let transport = TcpTransport {
            stream: Arc::new(client),
            buffers: LazyBuffers::new(1024, 64 * 1024),
            read_timeout: None,
            write_timeout: None,
            held: Vec::new(),
        };
        (transport, server)
    }

    /// A transport whose peer reset the connection: it closed with bytes unread
    fn reset_pair() -> TcpTransport {
        let (mut t, peer) = pair();
        send(&mut t, b"unread");
        let mut unread = [0; 6];
        while peer.peek(&mut unread).unwrap() < unread.len() {}
        drop(peer);
        t
    }

    fn send(t: &mut TcpTransport, bytes: &[u8]) {
        t.buffers.output()[..bytes.len()].copy_from_slice(bytes);
        t.transmit_output(bytes.len(), timeout(5)).unwrap();
    }

    /// A write to a peer that takes nothing more ends as a timeout with its window's reason,
    /// whether some bytes went out before the window ended or none could
    #[test]
    fn a_write_the_peer_never_takes_is_a_timeout() {
        let (mut t, _peer) = pair();
        let window = NextTimeout {
            after: ureq::unversioned::transport::time::Duration::from_millis(50),
            ..timeout(0)
        };
        // until the socket buffers are full (a few MiB on loopback) and the socket takes not
        // a byte more, when the system call itself times out: five timeouts in a row (a busy
        // machine may still make room for a write after the first)
        let mut in_a_row = 0;
        for _ in 0..100_000 {
            in_a_row = match t.transmit_output(64 * 1024, window) {
                Ok(()) => 0,
                Err(e) => {
                    let timeout = matches!(e, ureq::Error::Timeout(ureq::Timeout::SendRequest));
                    assert!(timeout, "{e:?}");
                    in_a_row + 1
                }
            };
            if in_a_row == 5 {
                return;
            }
        }
        panic!("6 GiB written to a peer reading nothing");
    }

    /// A write to a peer that reset the connection (it closed with bytes unread) fails with
    /// the IO error, not as a timeout
    #[test]
    fn a_write_to_a_reset_connection_is_an_io_error() {
        let mut t = reset_pair();
        // the reset may come after a write or two
        let error = (0..1_000)
            .find_map(|_| t.transmit_output(1024, timeout(5)).err())
            .expect("the reset to fail a write");
        assert!(
            matches!(&error, ureq::Error::Io(e) if matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
            )),
            "{error:?}"
        );
    }

    /// A read of a connection the peer reset fails with the IO error, not as a clean end
    /// (a read after the reset would return 0)
    #[test]
    fn a_read_of_a_reset_connection_is_an_io_error() {
        let mut t = reset_pair();
        let error = t.await_input(timeout(5)).unwrap_err();
        assert!(
            matches!(&error, ureq::Error::Io(e) if e.kind() == io::ErrorKind::ConnectionReset),
            "{error:?}"
        );
    }

    #[test]
    fn a_held_request_head_goes_out_with_its_body() {
        let (mut t, mut server) = pair();
        {
            let _hold = hold_next_write();
            send(&mut t, b"head;");
            assert_eq!(t.held, b"head;", "the head waits for its body");
            send(&mut t, b"body;");
            assert!(t.held.is_empty());
            // the hold was for one write only
            send(&mut t, b"more;");
        }
        send(&mut t, b"end");
        let mut got = [0; 18];
        server.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"head;body;more;end");
    }

    #[test]
    fn a_held_write_goes_out_before_the_connection_waits_for_input() {
        let (mut t, mut server) = pair();
        let peer = std::thread::spawn(move || {
            let mut head = [0; 5];
            server.read_exact(&mut head).unwrap();
            server.write_all(b"answer").unwrap();
            head
        });
        let _hold = hold_next_write();
        send(&mut t, b"head;");
        // were the head still held, the peer would never answer: a timeout here
        assert!(t.await_input(timeout(30)).unwrap());
        assert_eq!(t.buffers.input(), b"answer");
        assert_eq!(&peer.join().unwrap(), b"head;");
    }

    #[test]
    fn nothing_is_held_without_the_guard() {
        let (mut t, _server) = pair();
        drop(hold_next_write());
        send(&mut t, b"head;");
        assert!(t.held.is_empty());
    }

    #[test]
    fn every_address_gets_a_share_of_the_connect_timeout() {
        // nothing listens on port 9 of loopback: refused at once, each address in turn
        let addrs: Vec<SocketAddr> = ["127.0.0.1:9", "[::1]:9"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let timeout = NextTimeout {
            after: ureq::unversioned::transport::time::Duration::from_secs(5),
            reason: ureq::Timeout::Connect,
            per_read: None,
            per_write: None,
        };
        let e = connect(&addrs, timeout).unwrap_err();
        assert!(matches!(e, ureq::Error::Io(_)), "{e:?}");
        let e = connect(&[], timeout).unwrap_err();
        assert!(e.to_string().contains("no address"), "{e}");
    }

    #[test]
    fn each_address_gets_twice_the_next_ones_share_and_the_shares_sum_to_the_timeout() {
        let total = Duration::from_secs(7);
        let near = |a: Duration, b: Duration| a.abs_diff(b) < Duration::from_micros(1);
        assert!(near(share(total, 0, 1), total));
        let shares: Vec<Duration> = (0..3).map(|i| share(total, i, 3)).collect();
        for (got, want) in shares.iter().zip([4, 2, 1]) {
            assert!(near(*got, Duration::from_secs(want)), "{shares:?}");
        }
        // two addresses within 15 ms: 10 and 5 ms, the second raised to the least share
        assert!(near(
            share(Duration::from_millis(15), 0, 2),
            Duration::from_millis(10)
        ));
        assert_eq!(share(Duration::from_millis(15), 1, 2), MIN_PER_ADDRESS);
    }

    /// A failure that concerns the address tried moves on to the next address; any other
    /// (out of file descriptors, say) ends the attempt
    #[test]
    fn only_failures_of_the_address_move_on_to_the_next() {
        use io::ErrorKind::{ConnectionRefused, HostUnreachable, OutOfMemory, PermissionDenied};
        for kind in [ConnectionRefused, HostUnreachable] {
            assert!(address_specific(&kind.into()), "{kind:?}");
        }
        for kind in [PermissionDenied, OutOfMemory] {
            assert!(!address_specific(&kind.into()), "{kind:?}");
        }
    }

    /// A later system call of a write or read waits what is left of its window, and at
    /// least 1 ms once the window has passed: a zero timeout would mean none to the socket
    #[test]
    fn a_later_wait_is_never_zero() {
        let ended = Instant::now();
        assert_eq!(left_until(Some(ended)), Some(Duration::from_millis(1)));
        assert_eq!(left_until(None), None);
    }

    /// An address that never answers the handshake (a listener whose accept queue is full)
    /// takes only its share of the connect timeout, and one that refuses none: the next
    /// address, which answers, is still tried and connected to within it
    #[test]
    fn a_silent_address_leaves_time_for_the_next() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        let _entered = runtime.enter();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        // a backlog of 0 queues one connection: the filler; later handshakes get no answer
        let full = socket.listen(0).unwrap();
        let silent = full.local_addr().unwrap();
        let _filler = TcpStream::connect(silent).unwrap();
        let answering = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addrs = [silent, answering.local_addr().unwrap()];
        let timeout = NextTimeout {
            after: ureq::unversioned::transport::time::Duration::from_secs(2),
            reason: ureq::Timeout::Connect,
            per_read: None,
            per_write: None,
        };
        let stream = connect(&addrs, timeout).expect("the second address");
        assert_eq!(stream.peer_addr().unwrap(), addrs[1]);
        // a refused address is passed over at once
        let refused = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let stream = connect(&[refused, addrs[1]], timeout).expect("the second address");
        assert_eq!(stream.peer_addr().unwrap(), addrs[1]);
    }
}
