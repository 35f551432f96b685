//! A credentials source trait and a cache that refreshes before expiry

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

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

/// What the cache's lock guards
struct Shared {
    state: State,
    /// Loads started so far: the number of the one running or last run
    loads: u64,
    /// The error of the last load, with its number, for the threads that waited for it
    failed: Option<(u64, CredentialsError)>,
}

/// Puts a cache back to empty if its source panics, so waiters load themselves
struct Reset<'a>(&'a CredentialsCache, bool);

impl Drop for Reset<'_> {
    fn drop(&mut self) {
        if !self.1 {
            self.0
                .shared
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .state = State::Empty;
            self.0.changed.notify_all();
        }
    }
}

/// When the calling thread must have its answer by, if it must (see
/// [`CredentialsCache::with_wait_limit`])
type WaitLimit = Box<dyn Fn() -> Option<Instant> + Send + Sync>;

/// Caches what a source returns, loading again [`REFRESH_BUFFER`] before expiry
///
/// When many threads ask at once, one loads and the others wait for its result (and take
/// it even when it expires within the refresh buffer, rather than each loading again in
/// turn); a load that fails gives its error to the threads that waited for it, and the next
/// call loads again (errors are not cached). Credentials without an expiry are kept for good.
/// With [`with_wait_limit`](Self::with_wait_limit), a thread waits for another's load no
/// longer than its own limit.
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
    shared: Mutex<Shared>,
    changed: Condvar,
    /// Threads waiting for a load
    waiting: AtomicUsize,
    wait_limit: Option<WaitLimit>,
}

impl fmt::Debug for CredentialsCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        let state = match &shared.state {
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
            shared: Mutex::new(Shared {
                state: State::Empty,
                loads: 0,
                failed: None,
            }),
            changed: Condvar::new(),
            waiting: AtomicUsize::new(0),
            wait_limit: None,
        }
    }

    /// This cache, asking `limit` on the calling thread when that thread must have its
    /// answer by (a transport passes its invocation's deadline, kept per thread): a thread
    /// waits for another's load no longer than that, and the error of a load that ended past
    /// its loader's limit (cut short by that thread's deadline) is not given to the threads
    /// that waited for it, which load again themselves
    #[must_use]
    pub fn with_wait_limit(
        mut self,
        limit: impl Fn() -> Option<Instant> + Send + Sync + 'static,
    ) -> Self {
        self.wait_limit = Some(Box::new(limit));
        self
    }

    /// This thread's limit, per [`with_wait_limit`](Self::with_wait_limit)
    fn limit(&self) -> Option<Instant> {
        self.wait_limit.as_ref().and_then(|f| f())
    }

    /// This cache with another refresh buffer
    #[must_use]
    pub fn with_buffer(mut self, buffer: Duration) -> Self {
        self.buffer = buffer;
        self
    }

    /// Forgets the cached credentials, so the next call loads again
    pub fn invalidate(&self) {
        let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        if let State::Ready(_) = shared.state {
            shared.state = State::Empty;
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
        let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        // the number of the load this thread waited for, if it waited
        let mut waited: Option<u64> = None;
        loop {
            match &shared.state {
                State::Ready(c) if self.fresh(c) => return Ok((**c).clone()),
                // loaded while this thread waited: good enough unless already expired
                State::Ready(c)
                    if waited.is_some() && c.expiry.is_none_or(|e| (self.clock)() < e) =>
                {
                    return Ok((**c).clone());
                }
                State::Loading => {
                    waited = Some(shared.loads);
                    let left = self
                        .limit()
                        .map(|by| by.saturating_duration_since(Instant::now()));
                    if left == Some(Duration::ZERO) {
                        return Err(CredentialsError::Load {
                            provider: "credentials cache",
                            message: "the deadline passed while another thread loaded the \
                                      credentials"
                                .to_owned(),
                            retryable: true,
                        });
                    }
                    self.waiting.fetch_add(1, Ordering::Relaxed);
                    shared = match left {
                        None => self
                            .changed
                            .wait(shared)
                            .unwrap_or_else(PoisonError::into_inner),
                        Some(left) => {
                            self.changed
                                .wait_timeout(shared, left)
                                .unwrap_or_else(PoisonError::into_inner)
                                .0
                        }
                    };
                    self.waiting.fetch_sub(1, Ordering::Relaxed);
                }
                // the load this thread waited for failed: its error, not another load
                State::Empty
                    if let (Some(load), Some((failed, e))) = (waited, &shared.failed)
                        && load == *failed =>
                {
                    return Err(e.clone());
                }
                State::Ready(_) | State::Empty => break,
            }
        }
        shared.state = State::Loading;
        shared.loads += 1;
        let load = shared.loads;
        drop(shared);
        let mut guard = Reset(self, false);
        let result = self.source.provide_credentials();
        let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        match &result {
            Ok(c) => {
                shared.state = State::Ready(Box::new(c.clone()));
                shared.failed = None;
            }
            Err(e) => {
                shared.state = State::Empty;
                // an error that this thread's own deadline may have caused is not handed on
                let own_deadline = self.limit().is_some_and(|by| Instant::now() >= by);
                shared.failed = (!own_deadline).then(|| (load, e.clone()));
            }
        }
        guard.1 = true;
        drop(shared);
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
    use crate::credentials::{CredentialsError, ProvidedCredentials};
    use crate::testing::wait_for;

    std::thread_local! {
        /// The wait limit of the thread, for caches made by [`gated`]
        static LIMIT: std::cell::Cell<Option<std::time::Instant>> =
            const { std::cell::Cell::new(None) };
    }

    /// A cache whose first load waits for `release` and then gives `first`; later loads
    /// give `then`; counts its loads; its wait limit is [`LIMIT`]
    fn gated(
        first: Result<&'static str, &'static str>,
        then: Result<&'static str, &'static str>,
    ) -> (Arc<CredentialsCache>, Arc<AtomicU32>, mpsc::Sender<()>) {
        let loads = Arc::new(AtomicU32::new(0));
        let (release, released) = mpsc::channel::<()>();
        let released = Mutex::new(released);
        let l = Arc::clone(&loads);
        let cache = CredentialsCache::new(
            move || {
                let n = l.fetch_add(1, Ordering::SeqCst);
                if n == 0 {
                    let _ = released.lock().unwrap().recv();
                }
                match if n == 0 { first } else { then } {
                    Ok(key) => Ok(ProvidedCredentials::new(
                        Credentials::new(key, "secret", None),
                        None,
                        None,
                        "test",
                    )),
                    Err(why) => Err(CredentialsError::Load {
                        provider: "test",
                        message: why.to_owned(),
                        retryable: true,
                    }),
                }
            },
            SystemTime::now,
        )
        .with_wait_limit(|| LIMIT.get());
        (Arc::new(cache), loads, release)
    }

    /// `Debug` shows the cache's state and the key id it holds, never the secret
    #[test]
    fn debug_shows_the_state_and_no_secret() {
        let (cache, _, release) = gated(Ok("AKIDCACHED"), Ok("AKIDCACHED"));
        let empty = format!("{cache:?}");
        assert!(
            empty.starts_with("CredentialsCache") && empty.contains("empty"),
            "{empty}"
        );
        release.send(()).unwrap();
        cache.provide_credentials().unwrap();
        let ready = format!("{cache:?}");
        assert!(
            ready.contains("ready (test, AKIDCACHED)") && !ready.contains("secret"),
            "{ready}"
        );
    }

    /// What `provide_credentials` gives on a new thread: the key, or the error's text
    fn ask(
        cache: &Arc<CredentialsCache>,
        limit: Option<std::time::Instant>,
    ) -> std::thread::JoinHandle<Result<String, String>> {
        let cache = Arc::clone(cache);
        std::thread::spawn(move || {
            LIMIT.set(limit);
            cache
                .provide_credentials()
                .map(|c| c.credentials.access_key_id().to_owned())
                .map_err(|e| e.to_string())
        })
    }

    /// Waits until `cache` has its first load running and `n` threads waiting for it
    /// (failing the test after 30 s)
    fn until_waiting(cache: &CredentialsCache, loads: &AtomicU32, n: usize) {
        wait_for("waiting", || {
            loads.load(Ordering::SeqCst) > 0 && cache.waiting.load(Ordering::Relaxed) >= n
        });
    }

    #[test]
    fn threads_waiting_for_a_failed_load_take_its_error() {
        let (cache, loads, release) = gated(Err("first failure"), Ok("AKIDLATER"));
        let first = ask(&cache, None);
        let waiting: Vec<_> = (0..8).map(|_| ask(&cache, None)).collect();
        until_waiting(&cache, &loads, 8);
        release.send(()).unwrap();
        assert!(first.join().unwrap().unwrap_err().contains("first failure"));
        for t in waiting {
            let e = t.join().unwrap().unwrap_err();
            assert!(e.contains("first failure"), "{e}");
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1, "one load for all nine");
        // errors are not cached: the next call loads again
        assert_eq!(ask(&cache, None).join().unwrap().unwrap(), "AKIDLATER");
        assert_eq!(loads.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_thread_waits_for_another_load_no_longer_than_its_limit() {
        let (cache, loads, release) = gated(Ok("AKIDFIRST"), Ok("AKIDLATER"));
        let first = ask(&cache, None);
        until_waiting(&cache, &loads, 0);
        let soon = std::time::Instant::now() + Duration::from_millis(50);
        // the load is still running (released below): only the limit can end this wait
        let e = ask(&cache, Some(soon)).join().unwrap().unwrap_err();
        assert!(e.contains("deadline passed while another thread"), "{e}");
        release.send(()).unwrap();
        assert_eq!(first.join().unwrap().unwrap(), "AKIDFIRST");
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_error_of_a_load_past_its_own_limit_is_not_handed_on() {
        let (cache, loads, release) = gated(Err("cut by its deadline"), Ok("AKIDLATER"));
        // the loader's limit has passed by the time its load fails
        let first = ask(&cache, Some(std::time::Instant::now()));
        until_waiting(&cache, &loads, 0);
        let waiter = ask(&cache, None);
        until_waiting(&cache, &loads, 1);
        release.send(()).unwrap();
        assert!(
            first
                .join()
                .unwrap()
                .unwrap_err()
                .contains("cut by its deadline")
        );
        assert_eq!(
            waiter.join().unwrap().unwrap(),
            "AKIDLATER",
            "loaded itself"
        );
        assert_eq!(loads.load(Ordering::SeqCst), 2);
    }

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
        wait_for("loading", || loads.load(Ordering::SeqCst) > 0);
        let waiting: Vec<_> = (0..8)
            .map(|_| {
                let cache = Arc::clone(&cache);
                std::thread::spawn(move || key(&cache))
            })
            .collect();
        wait_for("eight waiting", || {
            cache.waiting.load(Ordering::Relaxed) >= 8
        });
        release.send(()).unwrap();
        assert_eq!(first.join().unwrap(), "AKID0");
        for t in waiting {
            assert_eq!(t.join().unwrap(), "AKID0");
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        // a later caller, which waited for no load, loads again
        assert_eq!(key(&cache), "AKID1");
    }

    /// A source that counts its loads and gives credentials expiring at `expiry`
    fn counting(expiry: Option<SystemTime>) -> (impl ProvideCredentials + 'static, Arc<AtomicU32>) {
        let loads = Arc::new(AtomicU32::new(0));
        let l = Arc::clone(&loads);
        let source = move || {
            let n = l.fetch_add(1, Ordering::SeqCst);
            Ok(ProvidedCredentials::new(
                Credentials::new(format!("AKID{n}"), "secret", None),
                expiry,
                None,
                "test",
            ))
        };
        (source, loads)
    }

    #[test]
    fn invalidated_credentials_are_loaded_again() {
        let (source, loads) = counting(None);
        let cache = CredentialsCache::new(source, SystemTime::now);
        cache.invalidate();
        for _ in 0..3 {
            cache.provide_credentials().unwrap();
        }
        assert_eq!(
            loads.load(Ordering::SeqCst),
            1,
            "kept for good without an expiry"
        );
        cache.invalidate();
        let c = cache.provide_credentials().unwrap();
        assert_eq!(c.credentials.access_key_id(), "AKID1");
        assert_eq!(loads.load(Ordering::SeqCst), 2);
    }

    /// Credentials are loaded again once the clock plus the buffer reaches their expiry,
    /// not a tick later
    #[test]
    fn credentials_are_refreshed_when_the_buffer_reaches_their_expiry() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let now = Arc::new(Mutex::new(start));
        let buffer = Duration::from_secs(60);
        let (source, loads) = counting(Some(start + buffer + Duration::from_secs(1)));
        let clock = Arc::clone(&now);
        let cache =
            CredentialsCache::new(source, move || *clock.lock().unwrap()).with_buffer(buffer);
        cache.provide_credentials().unwrap();
        cache.provide_credentials().unwrap();
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        *now.lock().unwrap() += Duration::from_secs(1);
        cache.provide_credentials().unwrap();
        assert_eq!(loads.load(Ordering::SeqCst), 2);
    }

    /// A source that panics leaves the cache empty, not loading for ever: the next call
    /// loads (and does not wait, here at most a second, for a load nobody runs)
    #[test]
    fn a_panicking_source_leaves_the_cache_empty() {
        let loads = Arc::new(AtomicU32::new(0));
        let l = Arc::clone(&loads);
        let cache = CredentialsCache::new(
            move || {
                assert_ne!(l.fetch_add(1, Ordering::SeqCst), 0, "the first load panics");
                Ok(ProvidedCredentials::new(
                    Credentials::new("AKID", "secret", None),
                    None,
                    None,
                    "test",
                ))
            },
            SystemTime::now,
        )
        .with_wait_limit(|| Some(std::time::Instant::now() + Duration::from_secs(1)));
        let panicked =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cache.provide_credentials()));
        assert!(panicked.is_err());
        assert_eq!(
            cache
                .provide_credentials()
                .unwrap()
                .credentials
                .access_key_id(),
            "AKID"
        );
        assert_eq!(loads.load(Ordering::SeqCst), 2);
    }
}
