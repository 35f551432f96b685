//! A credentials source trait and a cache that refreshes before expiry

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::credentials::{CredentialsError, ProvidedCredentials};

/// A source of credentials a client can ask, blocking; object-safe
///
/// Implement it to plug in your own source; the transports accept any
/// `Arc<dyn ProvideCredentials>`. Async callers run it on a blocking thread.
pub trait ProvideCredentials: Send + Sync {
    /// Credentials valid now
    ///
    /// # Errors
    ///
    /// [`CredentialsError`] when none can be had.
    fn provide_credentials(&self) -> Result<ProvidedCredentials, CredentialsError>;
}

impl ProvideCredentials for ProvidedCredentials {
    fn provide_credentials(&self) -> Result<ProvidedCredentials, CredentialsError> {
        Ok(self.clone())
    }
}

impl<F> ProvideCredentials for F
where
    F: Fn() -> Result<ProvidedCredentials, CredentialsError> + Send + Sync,
{
    fn provide_credentials(&self) -> Result<ProvidedCredentials, CredentialsError> {
        self()
    }
}

/// How long before expiry credentials are refreshed, as in the AWS SDKs
pub const REFRESH_BUFFER: Duration = Duration::from_secs(5 * 60);

enum State {
    Empty,
    Loading,
    Ready(Box<ProvidedCredentials>),
}

/// Puts a cache back to empty if its source panics, so waiters load themselves
struct Reset<'a>(&'a CredentialsCache, bool);

impl Drop for Reset<'_> {
    fn drop(&mut self) {
        if !self.1 {
            *self.0.state.lock().unwrap_or_else(PoisonError::into_inner) = State::Empty;
            self.0.changed.notify_all();
        }
    }
}

/// Caches what a source returns, loading again [`REFRESH_BUFFER`] before expiry
///
/// When many threads ask at once, one loads and the others wait for its result (and take
/// it even when it expires within the refresh buffer, rather than each loading again in
/// turn). Errors are not cached. Credentials without an expiry are kept for good.
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::SystemTime;
/// use invoke_config::{CredentialsCache, ProvideCredentials, ProvidedCredentials};
/// use invoke_proto::Credentials;
///
/// let loads = AtomicU32::new(0);
/// let source = move || {
///     loads.fetch_add(1, Ordering::SeqCst);
///     Ok(ProvidedCredentials::new(Credentials::new("AKID", "secret", None), None, None, "custom"))
/// };
/// let cache = CredentialsCache::new(source, SystemTime::now);
/// assert_eq!(cache.provide_credentials()?.credentials.access_key_id(), "AKID");
/// assert_eq!(cache.provide_credentials()?.provider, "custom");
/// # Ok::<(), invoke_config::CredentialsError>(())
/// ```
pub struct CredentialsCache {
    source: Box<dyn ProvideCredentials>,
    clock: Box<dyn Fn() -> SystemTime + Send + Sync>,
    buffer: Duration,
    state: Mutex<State>,
    changed: Condvar,
    /// Threads waiting for a load
    waiting: AtomicUsize,
}

impl fmt::Debug for CredentialsCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &*self.state.lock().unwrap_or_else(PoisonError::into_inner) {
            State::Empty => "empty".to_owned(),
            State::Loading => "loading".to_owned(),
            State::Ready(c) => format!("ready ({}, {})", c.provider, c.credentials.access_key_id()),
        };
        f.debug_struct("CredentialsCache")
            .field("state", &state)
            .field("buffer", &self.buffer)
            .finish_non_exhaustive()
    }
}

impl CredentialsCache {
    /// A cache in front of `source`; `clock` gives the current time (pass `SystemTime::now`)
    pub fn new(
        source: impl ProvideCredentials + 'static,
        clock: impl Fn() -> SystemTime + Send + Sync + 'static,
    ) -> Self {
        Self {
            source: Box::new(source),
            clock: Box::new(clock),
            buffer: REFRESH_BUFFER,
            state: Mutex::new(State::Empty),
            changed: Condvar::new(),
            waiting: AtomicUsize::new(0),
        }
    }

    /// This cache with another refresh buffer
    #[must_use]
    pub fn with_buffer(mut self, buffer: Duration) -> Self {
        self.buffer = buffer;
        self
    }

    /// Forgets the cached credentials, so the next call loads again
    pub fn invalidate(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let State::Ready(_) = *state {
            *state = State::Empty;
        }
    }

    fn fresh(&self, c: &ProvidedCredentials) -> bool {
        // a buffer past the clock's range: nothing that expires is fresh
        c.expiry.is_none_or(|exp| {
            (self.clock)()
                .checked_add(self.buffer)
                .is_some_and(|due| due < exp)
        })
    }
}

impl ProvideCredentials for CredentialsCache {
    fn provide_credentials(&self) -> Result<ProvidedCredentials, CredentialsError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut waited = false;
        loop {
            match &*state {
                State::Ready(c) if self.fresh(c) => return Ok((**c).clone()),
                // loaded while this thread waited: good enough unless already expired
                State::Ready(c) if waited && c.expiry.is_none_or(|e| (self.clock)() < e) => {
                    return Ok((**c).clone());
                }
                State::Loading => {
                    waited = true;
                    self.waiting.fetch_add(1, Ordering::Relaxed);
                    state = self
                        .changed
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                    self.waiting.fetch_sub(1, Ordering::Relaxed);
                }
                State::Ready(_) | State::Empty => break,
            }
        }
        *state = State::Loading;
        drop(state);
        let mut guard = Reset(self, false);
        let result = self.source.provide_credentials();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        *state = match &result {
            Ok(c) => State::Ready(Box::new(c.clone())),
            Err(_) => State::Empty,
        };
        guard.1 = true;
        drop(state);
        self.changed.notify_all();
        result
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, Mutex, mpsc};
    use std::time::{Duration, SystemTime};

    use invoke_proto::Credentials;

    use super::{CredentialsCache, ProvideCredentials, REFRESH_BUFFER};
    use crate::credentials::ProvidedCredentials;

    #[test]
    fn threads_waiting_for_a_load_take_its_credentials_inside_the_refresh_buffer() {
        let soon = SystemTime::now() + REFRESH_BUFFER - Duration::from_secs(60);
        let loads = Arc::new(AtomicU32::new(0));
        let (release, released) = mpsc::channel::<()>();
        let released = Mutex::new(released);
        let l = Arc::clone(&loads);
        let cache = Arc::new(CredentialsCache::new(
            move || {
                let n = l.fetch_add(1, Ordering::SeqCst);
                if n == 0 {
                    let _ = released.lock().unwrap().recv();
                }
                Ok(ProvidedCredentials::new(
                    Credentials::new(format!("AKID{n}"), "secret", None),
                    Some(soon),
                    None,
                    "test",
                ))
            },
            SystemTime::now,
        ));
        let key = |cache: &CredentialsCache| {
            let c = cache.provide_credentials().unwrap();
            c.credentials.access_key_id().to_owned()
        };
        let first = {
            let cache = Arc::clone(&cache);
            std::thread::spawn(move || key(&cache))
        };
        while loads.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        let waiting: Vec<_> = (0..8)
            .map(|_| {
                let cache = Arc::clone(&cache);
                std::thread::spawn(move || key(&cache))
            })
            .collect();
        while cache.waiting.load(Ordering::Relaxed) < 8 {
            std::thread::yield_now();
        }
        release.send(()).unwrap();
        assert_eq!(first.join().unwrap(), "AKID0");
        for t in waiting {
            assert_eq!(t.join().unwrap(), "AKID0");
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        // a later caller, which waited for no load, loads again
        assert_eq!(key(&cache), "AKID1");
    }
}
