//! The four timeouts every transport applies to an invocation

use std::time::Duration;

/// Lambda's longest function timeout: 15 minutes
pub const FIFTEEN_MINUTES: Duration = Duration::from_secs(15 * 60);

/// The longest timeout a client applies: a year. A client takes any longer one
/// (`Duration::MAX` included) as this, so that "no limit in practice" can be asked for without
/// a deadline overflowing the clock.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Most body bytes a transport reads after `InvokeComplete` to return the connection to its
/// pool (normally only the end of the chunked encoding follows); past it, the connection is
/// closed instead
pub const DRAIN_LIMIT: usize = 64 * 1024;

/// Longest wait for the end of the body after `InvokeComplete`: the caller has every event by
/// then, so a peer that holds the body open (a misbehaving proxy) costs at most this, and the
/// connection is closed instead of returned to the pool
pub const DRAIN_WAIT: Duration = Duration::from_secs(1);

/// The four timeouts of an invocation
///
/// The defaults never cut a healthy function short: Lambda functions may run for 15
/// minutes and may stay silent for most of it, so the wait for the response head, the
/// idle time between body bytes and the whole invocation all default to 15 minutes (the
/// AWS SDK for Rust's stalled-stream protection, at 5 seconds, had to be switched off for
/// Lambda for this reason). Only connecting is short by default (10 s).
///
/// ```
/// use std::time::Duration;
/// use invoke_config::Timeouts;
///
/// let t = Timeouts::default().with_idle(Duration::from_secs(60));
/// assert_eq!(t.overall, Duration::from_secs(900));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Timeouts {
    /// Establishing a connection (TCP, proxy, TLS)
    pub connect: Duration,
    /// From sending the request (its payload included) to the whole response head, per
    /// attempt
    pub head: Duration,
    /// Between two reads that return bytes, head and body; a stalled stream fails after
    /// this long
    pub idle: Duration,
    /// The whole invocation, retries and their waits included, until the last event
    pub overall: Duration,
}

impl Timeouts {
    /// These timeouts with [`connect`](Self::connect) set to `d`
    #[must_use]
    pub const fn with_connect(mut self, d: Duration) -> Self {
        self.connect = d;
        self
    }

    /// These timeouts with [`head`](Self::head) set to `d`
    #[must_use]
    pub const fn with_head(mut self, d: Duration) -> Self {
        self.head = d;
        self
    }

    /// These timeouts with [`idle`](Self::idle) set to `d`
    #[must_use]
    pub const fn with_idle(mut self, d: Duration) -> Self {
        self.idle = d;
        self
    }

    /// These timeouts with [`overall`](Self::overall) set to `d`
    #[must_use]
    pub const fn with_overall(mut self, d: Duration) -> Self {
        self.overall = d;
        self
    }

    /// These timeouts, each at most [`MAX_TIMEOUT`] (what a client applies)
    ///
    /// ```
    /// use std::time::Duration;
    /// use invoke_config::{MAX_TIMEOUT, Timeouts};
    ///
    /// let t = Timeouts::default().with_idle(Duration::MAX).capped();
    /// assert_eq!(t.idle, MAX_TIMEOUT);
    /// assert_eq!(t.connect, Duration::from_secs(10));
    /// ```
    #[must_use]
    pub fn capped(self) -> Self {
        Self {
            connect: self.connect.min(MAX_TIMEOUT),
            head: self.head.min(MAX_TIMEOUT),
            idle: self.idle.min(MAX_TIMEOUT),
            overall: self.overall.min(MAX_TIMEOUT),
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            head: FIFTEEN_MINUTES,
            idle: FIFTEEN_MINUTES,
            overall: FIFTEEN_MINUTES,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{DRAIN_LIMIT, DRAIN_WAIT, FIFTEEN_MINUTES, MAX_TIMEOUT, Timeouts};

    /// The documented values, written out (the constants are products, which a test that
    /// derives its numbers from them would not check)
    #[test]
    fn limits_are_the_documented_values() {
        assert_eq!(MAX_TIMEOUT, Duration::from_secs(31_536_000), "365 days");
        assert_eq!(FIFTEEN_MINUTES, Duration::from_secs(900));
        assert_eq!(DRAIN_LIMIT, 65_536);
        assert_eq!(DRAIN_WAIT, Duration::from_secs(1));
        let capped = Timeouts::default().with_overall(Duration::MAX).capped();
        assert_eq!(capped.overall.as_secs(), 31_536_000);
        assert_eq!(capped.head.as_secs(), 900);
    }
}
