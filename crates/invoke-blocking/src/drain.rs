//! A bound on the wait for the end of a body after `InvokeComplete`
//!
//! ureq fixes a request's read timeouts when it is sent; the end of a body after
//! `InvokeComplete` is waited for much more briefly ([`DRAIN_WAIT`](invoke_config::DRAIN_WAIT))
//! than the idle timeout allows. Every connection is wrapped in [`Bounded`], whose reads
//! also wait no later than a limit set for the calling thread ([`reads_by`]) while it drains,
//! and no later than the call's overall deadline ([`deadline_by`]). ureq gives each read a
//! timeout computed once for a whole step, which a loop below it reuses for every read of
//! the socket (rustls reading on for the rest of a record, ureq for the rest of a proxy's
//! answer to `CONNECT`): a peer sending a byte now and then would keep such a loop going, so
//! a second [`Bounded`] sits between the socket and TLS. Writes stop at the deadline too,
//! and while a connection is made ([`ConnectBy`]) reads and writes stop at the end of the
//! connect timeout. The outer one also tells the body buffers where its input lands
//! (`buffers::note_input`).

use std::cell::Cell;
use std::thread::LocalKey;
use std::time::{Duration, Instant};

use ureq::unversioned::transport::{Buffers, ConnectionDetails, Connector, NextTimeout, Transport};

thread_local! {
    /// When set, reads on this thread wait no later than this
    static READS_BY: Cell<Option<Instant>> = const { Cell::new(None) };
    /// When set, reads and writes on this thread wait no later than this: the overall
    /// deadline of the call
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    /// When set, reads and writes on this thread wait no later than this: the end of the
    /// connect timeout of the connection being made (a proxy's answer to `CONNECT`, the TLS
    /// handshake)
    static CONNECT_BY: Cell<Option<Instant>> = const { Cell::new(None) };
    /// Whether a [`ConnectBy`] chain is running on this thread (with or without a limit)
    static CONNECTING: Cell<bool> = const { Cell::new(false) };
}

/// While alive, a thread-local cell holds the value given; dropped, the cell is what it was
pub(crate) struct Scoped<T: Copy + 'static> {
    key: &'static LocalKey<Cell<T>>,
    before: T,
}

impl<T: Copy + 'static> Scoped<T> {
    pub(crate) fn new(key: &'static LocalKey<Cell<T>>, value: T) -> Self {
        Self {
            key,
            before: key.replace(value),
        }
    }
}

impl<T: Copy + 'static> Drop for Scoped<T> {
    fn drop(&mut self) {
        self.key.set(self.before);
    }
}

/// While alive, a thread-local limit holds the time given; dropped, the limit is what it was
pub(crate) type ThreadLimit = Scoped<Option<Instant>>;

/// While the guard lives, reads on this thread's connections wait no later than `by`
pub(crate) fn reads_by(by: Instant) -> ThreadLimit {
    Scoped::new(&READS_BY, Some(by))
}

/// While the guard lives, reads and writes on this thread's connections wait no later than
/// `by`, the call's overall deadline
pub(crate) fn deadline_by(by: Instant) -> ThreadLimit {
    Scoped::new(&DEADLINE, Some(by))
}

/// Whether this thread is making a connection (a [`ConnectBy`] chain is running): its reads
/// and writes are then the proxy's `CONNECT` and the TLS handshake, bound by the connect
/// timeout alone, not by the per-read and per-write (idle) ones
pub(crate) fn connecting() -> bool {
    CONNECTING.get()
}

/// A connector chain whose every read and write while it connects ends within the connect
/// timeout: ureq gives each read of a proxy's answer to `CONNECT` the whole timeout anew
#[derive(Debug)]
pub(crate) struct ConnectBy<C>(pub(crate) C);

impl<C: Connector<()>> Connector<()> for ConnectBy<C> {
    type Out = C::Out;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<()>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let _by = crate::tcp::end_of(details.timeout).map(|by| Scoped::new(&CONNECT_BY, Some(by)));
        let _connecting = Scoped::new(&CONNECTING, true);
        self.0.connect(details, chained)
    }
}

/// Wraps each connection in [`Bounded`]: twice in a client's chain, between the socket and
/// TLS, and last (`note_input`)
#[derive(Debug)]
pub(crate) struct BoundedIo {
    /// Whether reads note where their input lands (the connection ureq reads the body from)
    pub(crate) note_input: bool,
}

impl<In: Transport> Connector<In> for BoundedIo {
    type Out = Bounded<In>;

    fn connect(
        &self,
        _: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        Ok(chained.map(|inner| Bounded {
            inner,
            note_input: self.note_input,
        }))
    }
}

/// A connection whose reads honour [`reads_by`], [`deadline_by`] and the connect timeout
/// while it is made, whose writes the latter two, and whose reads with `note_input` are
/// noted by `buffers::note_input`
#[derive(Debug)]
pub(crate) struct Bounded<T> {
    inner: T,
    note_input: bool,
}

/// Cuts `timeout` to the earliest of `limits` that is set, with that one's reason; an
/// error once one has passed
fn limit<const N: usize>(
    timeout: &mut NextTimeout,
    limits: [(Option<Instant>, ureq::Timeout); N],
) -> Result<(), ureq::Error> {
    for (limit, reason) in limits {
        let Some(by) = limit else { continue };
        // Past the limit, nothing more: a peer sending (or taking) a little at a time
        // (trailer fields, which ureq reads within one body read; a TLS record or an answer
        // to CONNECT a byte at a time) would otherwise keep a loop below going, each wait
        // at most the 1 ms below
        let left = by.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ureq::Error::Timeout(reason));
        }
        // not zero: ureq waits a whole second for a zero timeout
        let left = left.max(Duration::from_millis(1)).into();
        if left < timeout.after {
            timeout.after = left;
            timeout.reason = reason;
        }
    }
    Ok(())
}

impl<T: Transport> Transport for Bounded<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(
        &mut self,
        amount: usize,
        mut timeout: NextTimeout,
    ) -> Result<(), ureq::Error> {
        // a peer reading a little at a time would otherwise hold a write past the deadline
        limit(
            &mut timeout,
            [
                (DEADLINE.get(), ureq::Timeout::Global),
                (CONNECT_BY.get(), ureq::Timeout::Connect),
            ],
        )?;
        self.inner.transmit_output(amount, timeout)
    }

    fn await_input(&mut self, mut timeout: NextTimeout) -> Result<bool, ureq::Error> {
        limit(
            &mut timeout,
            [
                (READS_BY.get(), ureq::Timeout::RecvBody),
                (DEADLINE.get(), ureq::Timeout::Global),
                (CONNECT_BY.get(), ureq::Timeout::Connect),
            ],
        )?;
        if self.note_input {
            // where the bytes will land: the body reads place theirs away from it
            crate::buffers::note_input(self.inner.buffers().input_append_buf().as_ptr().addr());
        }
        self.inner.await_input(timeout)
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

#[cfg(test)]
mod tests {
    use super::{Bounded, READS_BY, reads_by};
    use std::time::{Duration, Instant};
    use ureq::unversioned::transport::{Buffers, LazyBuffers, NextTimeout, Transport};

    /// A connection that receives nothing
    #[derive(Debug)]
    struct Silent(LazyBuffers);

    impl Transport for Silent {
        fn buffers(&mut self) -> &mut dyn Buffers {
            &mut self.0
        }
        fn transmit_output(&mut self, _: usize, _: NextTimeout) -> Result<(), ureq::Error> {
            Ok(())
        }
        fn await_input(&mut self, _: NextTimeout) -> Result<bool, ureq::Error> {
            Ok(false)
        }
        fn is_open(&mut self) -> bool {
            true
        }
    }

    /// A connection that never receives anything, its reads noted
    fn silent() -> Bounded<Silent> {
        Bounded {
            inner: Silent(LazyBuffers::new(8192, 1024)),
            note_input: true,
        }
    }

    #[test]
    fn a_read_notes_where_the_input_lands() {
        std::thread::spawn(|| {
            let mut connection = silent();
            assert_eq!(crate::buffers::noted_input(), None);
            // three bytes received and one consumed: the next land after the three
            let buffers = connection.buffers();
            buffers.input_append_buf()[..3].copy_from_slice(b"abc");
            buffers.input_appended(3);
            buffers.input_consume(1);
            let next = buffers.input_append_buf().as_ptr().addr();
            let start = buffers.input().as_ptr().addr() - 1;
            assert_eq!(next, start + 3);
            connection.await_input(NextTimeout::default()).unwrap();
            assert_eq!(crate::buffers::noted_input(), Some(next % 4096));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn no_read_waits_past_the_limit() {
        std::thread::spawn(|| {
            let mut connection = silent();
            let past = Instant::now().checked_sub(Duration::from_millis(1));
            let _by = reads_by(past.expect("an instant 1 ms ago"));
            assert!(matches!(
                connection.await_input(NextTimeout::default()),
                Err(ureq::Error::Timeout(ureq::Timeout::RecvBody))
            ));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn the_limit_holds_only_while_set_and_nests() {
        assert_eq!(READS_BY.get(), None);
        let outer = Instant::now() + Duration::from_secs(5);
        let inner = Instant::now() + Duration::from_secs(1);
        {
            let _outer = reads_by(outer);
            {
                let _inner = reads_by(inner);
                assert_eq!(READS_BY.get(), Some(inner));
            }
            assert_eq!(READS_BY.get(), Some(outer));
        }
        assert_eq!(READS_BY.get(), None);
    }
}
