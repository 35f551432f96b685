//! A bound on the wait for the end of a body after `InvokeComplete`
//!
//! ureq fixes a request's read timeouts when it is sent; the end of a body after
//! `InvokeComplete` is waited for much more briefly ([`DRAIN_WAIT`](invoke_config::DRAIN_WAIT))
//! than the idle timeout allows. Every connection is wrapped in [`Bounded`], whose reads
//! also wait no later than a limit set for the calling thread ([`reads_by`]) while it drains.
//! [`Bounded`] also tells the body buffers where its input lands (`buffers::note_input`).

use std::cell::Cell;
use std::thread::LocalKey;
use std::time::{Duration, Instant};

use ureq::unversioned::transport::{Buffers, ConnectionDetails, Connector, NextTimeout, Transport};

thread_local! {
    /// When set, reads on this thread wait no later than this
    static READS_BY: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// While alive, a thread-local limit holds the time given; dropped, the limit is what it was
pub(crate) struct ThreadLimit {
    key: &'static LocalKey<Cell<Option<Instant>>>,
    before: Option<Instant>,
}

impl ThreadLimit {
    pub(crate) fn set(key: &'static LocalKey<Cell<Option<Instant>>>, by: Instant) -> Self {
        Self {
            key,
            before: key.replace(Some(by)),
        }
    }
}

impl Drop for ThreadLimit {
    fn drop(&mut self) {
        self.key.set(self.before);
    }
}

/// While the guard lives, reads on this thread's connections wait no later than `by`
pub(crate) fn reads_by(by: Instant) -> ThreadLimit {
    ThreadLimit::set(&READS_BY, by)
}

/// The last connector of a client's chain: wraps each connection in [`Bounded`]
#[derive(Debug)]
pub(crate) struct BoundedReads;

impl<In: Transport> Connector<In> for BoundedReads {
    type Out = Bounded<In>;

    fn connect(
        &self,
        _: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        Ok(chained.map(Bounded))
    }
}

/// A connection whose reads honour [`reads_by`] and are noted by `buffers::note_input`
#[derive(Debug)]
pub(crate) struct Bounded<T>(T);

impl<T: Transport> Transport for Bounded<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.0.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.0.transmit_output(amount, timeout)
    }

    fn await_input(&mut self, mut timeout: NextTimeout) -> Result<bool, ureq::Error> {
        if let Some(by) = READS_BY.get() {
            // Past the limit, no more reads: a peer sending a little at a time (trailer
            // fields, which ureq reads within one body read) would otherwise keep the drain
            // going, each read waiting at most the 1 ms below
            let left = by.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ureq::Error::Timeout(ureq::Timeout::RecvBody));
            }
            // not zero: ureq waits a whole second for a zero timeout
            let left = left.max(Duration::from_millis(1)).into();
            timeout.per_read = Some(timeout.per_read.map_or(left, |d| d.min(left)));
        }
        // where the bytes will land: the body reads place theirs away from it
        crate::buffers::note_input(self.0.buffers().input_append_buf().as_ptr().addr());
        self.0.await_input(timeout)
    }

    fn is_open(&mut self) -> bool {
        self.0.is_open()
    }

    fn is_tls(&self) -> bool {
        self.0.is_tls()
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

    #[test]
    fn a_read_notes_where_the_input_lands() {
        std::thread::spawn(|| {
            let mut connection = Bounded(Silent(LazyBuffers::new(8192, 1024)));
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
            let mut connection = Bounded(Silent(LazyBuffers::new(8192, 1024)));
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
