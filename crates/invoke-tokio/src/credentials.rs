//! Credentials for async callers: a cache that loads once for many tasks, the default
//! chain driven over hyper, blocking providers on tokio's blocking pool

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use invoke_config::{
    Attempt, CredentialsChain, CredentialsError, FileReader, MAX_RESPONSE_BODY, ProvideCredentials,
    ProvidedCredentials, REFRESH_BUFFER, SharedConfig, Step,
};

use crate::connect::Connector;
use crate::error::BoxError;

type Load = Pin<Box<dyn Future<Output = Result<ProvidedCredentials, CredentialsError>> + Send>>;
/// A blocking provider's call on tokio's blocking pool
type ProviderCall = tokio::task::JoinHandle<Result<ProvidedCredentials, CredentialsError>>;
type Loader = Box<dyn Fn() -> Load + Send + Sync>;

/// Where the credentials of every attempt come from
#[derive(Clone)]
pub(crate) enum Source {
    Static(Arc<ProvidedCredentials>),
    Cached(Arc<AsyncCache>),
    /// Requests go unsigned
    Unsigned,
}

impl Source {
    /// Credentials for the attempt about to be signed, `None` when requests go unsigned
    pub(crate) async fn get(&self) -> Result<Option<Arc<ProvidedCredentials>>, CredentialsError> {
        match self {
            Self::Static(c) => Ok(Some(Arc::clone(c))),
            Self::Cached(cache) => cache.get().await.map(Some),
            Self::Unsigned => Ok(None),
        }
    }
}

/// Keeps loaded credentials until [`REFRESH_BUFFER`] before they expire; when many tasks
/// ask at once, one loads and the others wait for it, without blocking a thread
pub(crate) struct AsyncCache {
    load: Loader,
    current: Mutex<Option<Arc<ProvidedCredentials>>>,
    gate: tokio::sync::Mutex<()>,
    /// Loads that ran to their end: a task that waited at the gate while one finished takes
    /// its result
    loads: AtomicU64,
    /// The error of the last load that ran to its end, with its number in `loads`, if it
    /// failed
    failed: Mutex<Option<(u64, CredentialsError)>>,
}

/// Whether `c` is still good `margin` from now
fn valid_for(c: &ProvidedCredentials, margin: Duration) -> bool {
    c.expiry.is_none_or(|e| SystemTime::now() + margin < e)
}

impl fmt::Debug for AsyncCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncCache").finish_non_exhaustive()
    }
}

impl AsyncCache {
    fn new(load: Loader) -> Self {
        Self {
            load,
            current: Mutex::new(None),
            gate: tokio::sync::Mutex::new(()),
            loads: AtomicU64::new(0),
            failed: Mutex::new(None),
        }
    }

    /// Credentials from a blocking provider, run on tokio's blocking pool
    ///
    /// A blocking call cannot be cancelled: when the invocation that started it gives up
    /// (its deadline passed), the call runs on, and the next load waits for that same call
    /// instead of starting another one beside it (a provider slower than the deadline would
    /// otherwise pile up calls on the blocking pool, none of whose results were kept). What
    /// such a call gives is taken only if it is credentials good beyond the refresh window:
    /// it may have ended long ago, so an error or credentials about to expire ask anew.
    pub(crate) fn from_provider(provider: Arc<dyn ProvideCredentials>) -> Self {
        let running: Arc<tokio::sync::Mutex<Option<ProviderCall>>> = Arc::default();
        Self::new(Box::new(move || {
            let provider = Arc::clone(&provider);
            let running = Arc::clone(&running);
            Box::pin(async move {
                // loads take turns (the cache's gate), so this lock is never waited for
                let mut running = running.lock().await;
                loop {
                    let left = running.is_some();
                    let provider = Arc::clone(&provider);
                    let call = running.get_or_insert_with(|| {
                        tokio::task::spawn_blocking(move || provider.provide_credentials())
                    });
                    let done = call
                        .await
                        .unwrap_or_else(|e| Err(CredentialsError::Usage(format!("provider: {e}"))));
                    *running = None;
                    match done {
                        Ok(c) if left && !valid_for(&c, REFRESH_BUFFER) => {}
                        Err(_) if left => {}
                        done => return done,
                    }
                    tracing::debug!("a provider call left by an earlier load is stale");
                }
            })
        }))
    }

    /// The default chain over `shared`, its requests sent over connections of `connector`
    pub(crate) fn from_chain(
        shared: SharedConfig,
        fs: Arc<dyn FileReader>,
        connector: Connector,
        timeout: Duration,
    ) -> Self {
        Self::new(Box::new(move || {
            let chain = CredentialsChain::new(&shared, Arc::clone(&fs));
            Box::pin(drive(chain, connector.clone(), timeout))
        }))
    }

    fn fresh(&self) -> Option<Arc<ProvidedCredentials>> {
        self.current_valid_for(REFRESH_BUFFER)
    }

    fn current_valid_for(&self, margin: Duration) -> Option<Arc<ProvidedCredentials>> {
        let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        current
            .as_ref()
            .filter(|c| valid_for(c, margin))
            .map(Arc::clone)
    }

    /// The cached credentials, loaded first unless they are fresh
    async fn get(&self) -> Result<Arc<ProvidedCredentials>, CredentialsError> {
        if let Some(c) = self.fresh() {
            return Ok(c);
        }
        // One loader at a time; a cancelled loader releases the gate for the next
        let seen = self.loads.load(Ordering::Acquire);
        let _gate = self.gate.lock().await;
        if let Some(c) = self.fresh() {
            return Ok(c);
        }
        // a load finished while this task waited: its credentials serve this task too, inside
        // the refresh window as well (as long as they have not expired), and so does its
        // error, rather than every waiting task loading again in turn (a load cut short by
        // its invocation's deadline did not finish: the next task loads)
        let finished = self.loads.load(Ordering::Acquire);
        if finished != seen {
            if let Some(c) = self.current_valid_for(Duration::ZERO) {
                return Ok(c);
            }
            let failed = self.failed.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((load, e)) = &*failed
                && *load == finished
            {
                return Err(e.clone());
            }
        }
        let result = (self.load)().await;
        let mut failed = self.failed.lock().unwrap_or_else(PoisonError::into_inner);
        let load = self.loads.load(Ordering::Acquire) + 1;
        let loaded = match result {
            Ok(c) => {
                let loaded = Arc::new(c);
                tracing::debug!(provider = loaded.provider, "credentials loaded");
                *self.current.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some(Arc::clone(&loaded));
                *failed = None;
                Ok(loaded)
            }
            Err(e) => {
                *failed = Some((load, e.clone()));
                Err(e)
            }
        };
        self.loads.store(load, Ordering::Release);
        loaded
    }
}

/// Sets its flag when dropped
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs `chain` to its end: requests over `http`, `credential_process` on the blocking pool
async fn drive(
    mut chain: CredentialsChain,
    connector: Connector,
    timeout: Duration,
) -> Result<ProvidedCredentials, CredentialsError> {
    loop {
        match chain.next_step(SystemTime::now()) {
            Step::Send(request) => match send(&connector, request, timeout).await {
                Ok((status, headers, body)) => chain.handle_response(status, headers, body),
                Err(e) => chain.handle_transport_error(&e),
            },
            Step::Run(command) => {
                // dropped with this future (an invocation cancelled or past its deadline),
                // the guard stops the command, which would otherwise run to its own limit
                let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
                let flag = Arc::clone(&stop.0);
                let output = tokio::task::spawn_blocking(move || {
                    invoke_config::run_process_until(&command, &flag)
                })
                .await
                .unwrap_or_else(|e| Err(format!("credential_process did not finish: {e}")));
                chain.handle_process_output(output);
            }
            Step::Done(result) => return result,
        }
    }
}

/// Sends one provider request and reads at most [`MAX_RESPONSE_BODY`] (+1) bytes of its
/// answer, within `timeout`; traced (method, host, path, status), never its body. A retry
/// (an [`Attempt`] after the first) waits first ([`Attempt::backoff`]).
pub(crate) async fn send(
    connector: &Connector,
    request: http::Request<Bytes>,
    timeout: Duration,
) -> Result<(StatusCode, HeaderMap, Bytes), BoxError> {
    let wait = request
        .extensions()
        .get::<Attempt>()
        .map_or(Duration::ZERO, |attempt| {
            attempt.backoff(invoke_config::jitter())
        });
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    let span = tracing::debug_span!(
        "credentials_request",
        method = %request.method(),
        host = request.uri().host().unwrap_or_default(),
        path = request.uri().path(),
        status = tracing::field::Empty,
    );
    let exchange = async {
        // the connection lives (and is read from) as long as the body
        let (parts, body) = crate::pool::send_once(connector, request.map(Full::new)).await?;
        span.record("status", parts.status.as_u16());
        let body = Limited::new(body, MAX_RESPONSE_BODY + 1)
            .collect()
            .await?
            .to_bytes();
        Ok::<_, BoxError>((parts.status, parts.headers, body))
    };
    let exchange = tracing::Instrument::instrument(exchange, span.clone());
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use invoke_proto::Credentials;

    use super::*;

    fn counting(loads: Arc<AtomicU32>, expiry: Option<SystemTime>) -> AsyncCache {
        AsyncCache::new(Box::new(move || {
            let loads = Arc::clone(&loads);
            Box::pin(async move {
                let n = loads.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
                Ok(ProvidedCredentials::new(
                    Credentials::new(format!("AKID{n}"), "secret", None),
                    expiry,
                    None,
                    "test",
                ))
            })
        }))
    }

    /// `n` calls of `cache.get()`, each polled once while the gate is held (so each waits
    /// at it), the gate then released
    async fn waiting_at_the_gate(
        cache: &AsyncCache,
        n: usize,
    ) -> Vec<Pin<Box<impl Future<Output = Result<Arc<ProvidedCredentials>, CredentialsError>> + '_>>>
    {
        let gate = cache.gate.lock().await;
        let mut waiting: Vec<_> = (0..n).map(|_| Box::pin(cache.get())).collect();
        for task in &mut waiting {
            let pending = std::future::poll_fn(|cx| {
                std::task::Poll::Ready(task.as_mut().poll(cx).is_pending())
            })
            .await;
            assert!(pending, "the gate is held");
        }
        drop(gate);
        waiting
    }

    /// The access key id the cache hands out now
    async fn key(cache: &AsyncCache) -> String {
        let got = cache.get().await.unwrap();
        got.credentials.access_key_id().to_owned()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_tasks_load_once() {
        let loads = Arc::new(AtomicU32::new(0));
        let cache = Arc::new(counting(Arc::clone(&loads), None));
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let cache = Arc::clone(&cache);
                tokio::spawn(async move { key(&cache).await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), "AKID0");
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn tasks_waiting_for_a_load_take_its_credentials_inside_the_refresh_window() {
        let loads = Arc::new(AtomicU32::new(0));
        let soon = SystemTime::now() + REFRESH_BUFFER - Duration::from_secs(60);
        let cache = counting(Arc::clone(&loads), Some(soon));
        // twenty tasks wait at the gate (each polled once while it is held), then load
        let waiting = waiting_at_the_gate(&cache, 20).await;
        for task in waiting {
            assert_eq!(task.await.unwrap().credentials.access_key_id(), "AKID0");
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        // a later task, which waited for no load, loads again
        assert_eq!(key(&cache).await, "AKID1");
    }

    #[tokio::test]
    async fn tasks_waiting_for_a_failed_load_take_its_error() {
        let loads = Arc::new(AtomicU32::new(0));
        let l = Arc::clone(&loads);
        let cache = AsyncCache::new(Box::new(move || {
            let n = l.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if n == 0 {
                    return Err(CredentialsError::Usage("the first load failed".to_owned()));
                }
                Ok(ProvidedCredentials::new(
                    Credentials::new("AKIDLATER", "secret", None),
                    None,
                    None,
                    "test",
                ))
            })
        }));
        // twenty tasks wait at the gate (each polled once while it is held), then one loads
        let waiting = waiting_at_the_gate(&cache, 20).await;
        for task in waiting {
            let e = task.await.unwrap_err();
            assert!(e.to_string().contains("the first load failed"), "{e}");
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1, "one load for all twenty");
        // errors are not cached: a later task loads again
        assert_eq!(key(&cache).await, "AKIDLATER");
    }

    /// A blocking provider whose first call waits for `open` and returns `AKID0` (or an
    /// error), the next ones `AKID1` at once; with the calls counted
    fn gated_provider(
        open: std::sync::mpsc::Receiver<()>,
        first: Result<Option<SystemTime>, ()>,
        calls: Arc<AtomicU32>,
    ) -> AsyncCache {
        let open = Mutex::new(open);
        AsyncCache::from_provider(Arc::new(move || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            let expiry = if n == 0 {
                let _ = open.lock().unwrap().recv();
                first.map_err(|()| CredentialsError::Usage("an old failure".to_owned()))?
            } else {
                None
            };
            Ok(ProvidedCredentials::new(
                Credentials::new(format!("AKID{n}"), "secret", None),
                expiry,
                None,
                "test",
            ))
        }))
    }

    #[tokio::test]
    async fn a_provider_call_left_by_an_earlier_load_gives_only_fresh_credentials() {
        let later = SystemTime::now() + REFRESH_BUFFER + Duration::from_secs(60);
        let soon = SystemTime::now() + Duration::from_secs(1);
        for (first, expect, calls_after) in [
            (Ok(Some(later)), "AKID0", 1),
            (Ok(None), "AKID0", 1),
            (Ok(Some(soon)), "AKID1", 2),
            (Err(()), "AKID1", 2),
        ] {
            let (open, opened) = std::sync::mpsc::channel();
            let calls = Arc::new(AtomicU32::new(0));
            let cache = gated_provider(opened, first, Arc::clone(&calls));
            // the load that started the call gives up on it (its invocation's deadline)
            let gave_up = tokio::time::timeout(Duration::from_millis(50), cache.get()).await;
            assert!(gave_up.is_err());
            open.send(()).unwrap();
            assert_eq!(key(&cache).await, expect, "first call gave {first:?}");
            assert_eq!(calls.load(Ordering::SeqCst), calls_after);
        }
    }

    #[tokio::test]
    async fn credentials_about_to_expire_are_loaded_again() {
        let loads = Arc::new(AtomicU32::new(0));
        let soon = SystemTime::now() + REFRESH_BUFFER - Duration::from_secs(1);
        let cache = counting(Arc::clone(&loads), Some(soon));
        assert_eq!(key(&cache).await, "AKID0");
        assert_eq!(key(&cache).await, "AKID1");
        let later = SystemTime::now() + REFRESH_BUFFER + Duration::from_secs(60);
        let cache = counting(Arc::new(AtomicU32::new(0)), Some(later));
        assert_eq!(key(&cache).await, "AKID0");
        assert_eq!(key(&cache).await, "AKID0");
    }

    #[tokio::test]
    async fn the_provider_name_expiry_and_account_come_from_the_cache() {
        let loads = Arc::new(AtomicU32::new(0));
        let later = SystemTime::now() + REFRESH_BUFFER + Duration::from_secs(60);
        let cache = counting(Arc::clone(&loads), Some(later));
        let first = cache.get().await.unwrap();
        assert_eq!(
            (
                first.provider,
                first.expiry,
                first.credentials.access_key_id()
            ),
            ("test", Some(later), "AKID0")
        );
        let again = cache.get().await.unwrap();
        assert_eq!(again.credentials.access_key_id(), "AKID0");
        assert_eq!(loads.load(Ordering::SeqCst), 1, "served from the cache");
    }

    /// A retried provider request (IMDS, container, STS, SSO) waits its back-off before it
    /// goes out, and a first one does not; in paused time the clock moves only by sleeps
    /// (a refused loopback connection takes none, and no timeout fires first)
    #[tokio::test(start_paused = true)]
    async fn a_retried_provider_request_waits_its_backoff_first() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap();
        let hour = Duration::from_secs(3600);
        let connector = Connector::new(crate::connect::tls_config(&[]).unwrap(), None, hour);
        for attempt in [1, 2, 7] {
            let mut request = http::Request::get(format!("http://{closed}/latest/api/token"))
                .body(Bytes::new())
                .unwrap();
            request.extensions_mut().insert(Attempt(attempt));
            let before = tokio::time::Instant::now();
            let err = send(&connector, request, hour).await.unwrap_err();
            let waited = before.elapsed();
            assert!(
                !err.to_string().contains("no answer"),
                "refused, not timed out: {err}"
            );
            // full jitter: below 100 ms for the second attempt, below 1 s for the seventh;
            // the sleep rounds up to tokio's millisecond
            let ceiling = Attempt(attempt).backoff(1.0) + Duration::from_millis(1);
            if attempt == 1 {
                assert_eq!(waited, Duration::ZERO);
            } else {
                assert!(
                    waited > Duration::ZERO && waited <= ceiling,
                    "{attempt}: {waited:?}"
                );
            }
        }
    }
}
