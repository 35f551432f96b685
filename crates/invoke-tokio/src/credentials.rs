//! Credentials for async callers: a cache that loads once for many tasks, the default
//! chain driven over hyper, blocking providers on tokio's blocking pool

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
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
        }
    }

    /// Credentials from a blocking provider, run on tokio's blocking pool
    ///
    /// A blocking call cannot be cancelled: when the invocation that started it gives up
    /// (its deadline passed), the call runs on, and the next load waits for that same call
    /// instead of starting another one beside it (a provider slower than the deadline would
    /// otherwise pile up calls on the blocking pool, none of whose results were kept).
    pub(crate) fn from_provider(provider: Arc<dyn ProvideCredentials>) -> Self {
        let running: Arc<tokio::sync::Mutex<Option<ProviderCall>>> = Arc::default();
        Self::new(Box::new(move || {
            let provider = Arc::clone(&provider);
            let running = Arc::clone(&running);
            Box::pin(async move {
                // loads take turns (the cache's gate), so this lock is never waited for
                let mut running = running.lock().await;
                let call = running.get_or_insert_with(|| {
                    tokio::task::spawn_blocking(move || provider.provide_credentials())
                });
                let done = call.await;
                *running = None;
                done.unwrap_or_else(|e| Err(CredentialsError::Usage(format!("provider: {e}"))))
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
        let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        current
            .as_ref()
            .filter(|c| {
                c.expiry
                    .is_none_or(|e| SystemTime::now() + REFRESH_BUFFER < e)
            })
            .map(Arc::clone)
    }

    /// The cached credentials, loaded first unless they are fresh
    async fn get(&self) -> Result<Arc<ProvidedCredentials>, CredentialsError> {
        if let Some(c) = self.fresh() {
            return Ok(c);
        }
        // One loader at a time; a cancelled loader releases the gate for the next
        let _gate = self.gate.lock().await;
        if let Some(c) = self.fresh() {
            return Ok(c);
        }
        let loaded = Arc::new((self.load)().await?);
        tracing::debug!(provider = loaded.provider, "credentials loaded");
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&loaded));
        Ok(loaded)
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
/// (an [`Attempt`] after the first) waits first: 100 ms, 200 ms, 400 ms ... up to 1.6 s.
pub(crate) async fn send(
    connector: &Connector,
    request: http::Request<Bytes>,
    timeout: Duration,
) -> Result<(StatusCode, HeaderMap, Bytes), BoxError> {
    if let Some(Attempt(n)) = request.extensions().get::<Attempt>().copied()
        && n > 1
    {
        tokio::time::sleep(Duration::from_millis(100 << (n - 2).min(4))).await;
    }
    let span = tracing::debug_span!(
        "credentials_request",
        method = %request.method(),
        host = request.uri().host().unwrap_or_default(),
        path = request.uri().path(),
        status = tracing::field::Empty,
    );
    let exchange = async {
        let response = crate::pool::send_once(connector, request.map(Full::new)).await?;
        let (parts, body) = response.into_parts();
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
}
