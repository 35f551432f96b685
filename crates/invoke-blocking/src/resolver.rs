//! Name resolution without a thread per request: IP literals answered directly, names from a
//! short-lived cache

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// How long the addresses of a name are reused
pub(crate) const ADDRESS_TTL: Duration = Duration::from_secs(30);
/// Names cached at once (the endpoint, and the hosts of credentials providers)
const MAX_NAMES: usize = 8;

/// Resolved addresses by host and port, each for [`ADDRESS_TTL`]
#[derive(Debug, Default)]
pub(crate) struct AddressCache {
    entries: Mutex<Vec<Entry>>,
}

#[derive(Debug)]
struct Entry {
    host: String,
    port: u16,
    addrs: ResolvedSocketAddrs,
    until: Instant,
}

impl AddressCache {
    fn get(&self, host: &str, port: u16, now: Instant) -> Option<ResolvedSocketAddrs> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .iter()
            .find(|e| e.port == port && e.host.eq_ignore_ascii_case(host) && now < e.until)
            .map(|e| e.addrs.clone())
    }

    fn insert(&self, host: &str, port: u16, addrs: &ResolvedSocketAddrs, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|e| now < e.until && !(e.port == port && e.host.eq_ignore_ascii_case(host)));
        if entries.len() >= MAX_NAMES {
            entries.remove(0);
        }
        entries.push(Entry {
            host: host.to_owned(),
            port,
            addrs: addrs.clone(),
            until: now + ADDRESS_TTL,
        });
    }

    /// Forgets every name (a connection failed: the next one resolves afresh)
    pub(crate) fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// ureq's resolver (`R`), except that an IP-literal host is answered directly and a name's
/// addresses are reused for [`ADDRESS_TTL`]
///
/// ureq resolves the host on every request, before it looks for a pooled connection, and
/// with a timeout in effect (this crate always sets the overall deadline) its default
/// resolver runs each lookup on a new thread: for a warm connection that thread is all the
/// lookup costs. The cache is forgotten when an attempt fails before its response head
/// (refused, timed out, a failed TLS handshake: [`AddressCache::clear`]), so a retry or the
/// next call resolves again.
#[derive(Debug)]
pub(crate) struct LiteralFirst<R = DefaultResolver> {
    fallback: R,
    cache: Arc<AddressCache>,
}

impl<R> LiteralFirst<R> {
    pub(crate) fn new(fallback: R, cache: Arc<AddressCache>) -> Self {
        Self { fallback, cache }
    }
}

impl<R: Resolver> Resolver for LiteralFirst<R> {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host_port = uri.authority().and_then(|a| {
            let port = a.port_u16().or_else(|| match uri.scheme_str() {
                Some("https") => Some(443),
                Some("http") => Some(80),
                _ => None,
            })?;
            Some((a.host().trim_start_matches('[').trim_end_matches(']'), port))
        });
        let Some((host, port)) = host_port else {
            return self.fallback.resolve(uri, config, timeout);
        };
        if let Ok(ip) = host.parse::<IpAddr>() {
            let mut addrs = self.empty();
            addrs.push(SocketAddr::new(ip, port));
            return Ok(addrs);
        }
        let now = Instant::now();
        if let Some(addrs) = self.cache.get(host, port, now) {
            return Ok(addrs);
        }
        let addrs = self.fallback.resolve(uri, config, timeout)?;
        self.cache.insert(host, port, &addrs, now);
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use invoke_config::ProxyEnv;
    use invoke_proto::{
        Credentials, EndpointConfig, InvokeParams, RetryConfig, TransportFailure, resolve_endpoint,
    };
    use transport_suite::Harness;

    use super::*;
    use crate::{Client, Error};

    /// ureq's resolver, counting its lookups
    #[derive(Debug, Default)]
    struct Counting {
        lookups: Arc<AtomicUsize>,
        inner: DefaultResolver,
    }

    impl Counting {
        /// ureq's resolver, its lookups counted in `lookups`
        fn of(lookups: &Arc<AtomicUsize>) -> Self {
            Self {
                lookups: Arc::clone(lookups),
                inner: DefaultResolver::default(),
            }
        }
    }

    impl Resolver for Counting {
        fn resolve(
            &self,
            uri: &Uri,
            config: &Config,
            timeout: NextTimeout,
        ) -> Result<ResolvedSocketAddrs, ureq::Error> {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            self.inner.resolve(uri, config, timeout)
        }
    }

    fn client(port: u16, retry: RetryConfig, lookups: &Arc<AtomicUsize>) -> Client {
        client_of(&format!("http://localhost:{port}"), retry, lookups)
    }

    fn client_of(url: &str, retry: RetryConfig, lookups: &Arc<AtomicUsize>) -> Client {
        let endpoint = resolve_endpoint(
            &EndpointConfig::default()
                .with_region("us-east-1")
                .with_custom(url),
        )
        .unwrap();
        Client::builder(endpoint)
            .credentials(Credentials::new(
                transport_suite::KEY,
                transport_suite::SECRET,
                None,
            ))
            .proxy_env(ProxyEnv::none())
            .retry(retry)
            .build_with_resolver(Counting::of(lookups))
            .unwrap()
    }

    #[test]
    fn a_name_is_resolved_once_for_several_calls() {
        let harness = Harness::start();
        let lookups = Arc::new(AtomicUsize::new(0));
        let client = client(harness.address().port(), RetryConfig::new(), &lookups);
        for _ in 0..3 {
            let events: Vec<_> = client
                .invoke(&InvokeParams::new("streamer", "{}"))
                .unwrap()
                .collect::<Result<_, Error>>()
                .unwrap();
            assert!(events.len() > 1);
        }
        assert_eq!(lookups.load(Ordering::SeqCst), 1);
    }

    /// An IP literal is answered without a lookup, with its own port or its scheme's (the
    /// endpoint's URL often has none)
    #[test]
    fn ip_literals_are_answered_without_a_lookup() {
        let lookups = Arc::new(AtomicUsize::new(0));
        let resolver = LiteralFirst::new(Counting::of(&lookups), Arc::default());
        let timeout = NextTimeout {
            after: Duration::from_secs(1).into(),
            reason: ureq::Timeout::Resolve,
            per_read: None,
            per_write: None,
        };
        for (uri, addr) in [
            ("http://127.0.0.1/x", "127.0.0.1:80"),
            ("https://127.0.0.1/x", "127.0.0.1:443"),
            ("http://[::1]/x", "[::1]:80"),
            ("https://[::1]:9001/x", "[::1]:9001"),
        ] {
            let got = resolver
                .resolve(&uri.parse().unwrap(), &Config::default(), timeout)
                .unwrap();
            let want: SocketAddr = addr.parse().unwrap();
            assert_eq!(got[..], [want], "{uri}");
        }
        assert_eq!(lookups.load(Ordering::SeqCst), 0, "a literal was looked up");
    }

    #[test]
    fn a_failed_connection_resolves_again() {
        // a port that was free a moment ago: connecting is refused
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let lookups = Arc::new(AtomicUsize::new(0));
        let retry = RetryConfig::new()
            .with_max_attempts(3)
            .with_initial_backoff(Duration::from_millis(1))
            .with_max_backoff(Duration::from_millis(1));
        let client = client(port, retry, &lookups);
        let error = client
            .invoke(&InvokeParams::new("streamer", "{}"))
            .unwrap_err();
        assert!(
            matches!(error, Error::Transport { attempts: 3, .. }),
            "{error:?}"
        );
        assert_eq!(lookups.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn a_failed_tls_handshake_resolves_again() {
        // a server answering the client's hello in plain HTTP: the handshake fails
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(2) {
                let Ok(mut stream) = stream else { continue };
                let _ = std::io::Write::write_all(
                    &mut stream,
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
                );
            }
        });
        let lookups = Arc::new(AtomicUsize::new(0));
        let client = client_of(
            &format!("https://localhost:{port}"),
            RetryConfig::new().with_max_attempts(1),
            &lookups,
        );
        for calls in 1..=2 {
            let error = client
                .invoke(&InvokeParams::new("streamer", "{}"))
                .unwrap_err();
            assert!(
                matches!(
                    error,
                    Error::Transport {
                        kind: TransportFailure::Tls,
                        ..
                    }
                ),
                "{error:?}"
            );
            // the second call does not connect to the address that failed without looking
            // the name up again
            assert_eq!(lookups.load(Ordering::SeqCst), calls);
        }
    }

    #[test]
    fn cached_addresses_expire() {
        let cache = AddressCache::default();
        let t0 = Instant::now();
        let mut addrs = ResolvedSocketAddrs::from_fn(|_| "0.0.0.0:0".parse().unwrap());
        addrs.push("192.0.2.1:443".parse().unwrap());
        cache.insert("lambda.example", 443, &addrs, t0);
        let got = |host, port, at| cache.get(host, port, at).map(|a| a.to_vec());
        assert_eq!(got("lambda.example", 443, t0), Some(addrs.to_vec()));
        assert_eq!(got("LAMBDA.example", 443, t0), Some(addrs.to_vec()));
        assert_eq!(got("lambda.example", 80, t0), None);
        assert_eq!(got("other.example", 443, t0), None);
        let almost = t0 + ADDRESS_TTL.saturating_sub(Duration::from_millis(1));
        assert_eq!(got("lambda.example", 443, almost), Some(addrs.to_vec()));
        assert_eq!(got("lambda.example", 443, t0 + ADDRESS_TTL), None);
        cache.clear();
        assert_eq!(got("lambda.example", 443, t0), None);
    }

    #[test]
    fn a_name_resolved_again_replaces_its_addresses_and_expired_names_go() {
        let cache = AddressCache::default();
        let t0 = Instant::now();
        let addrs = |ip: &str| {
            let mut a = ResolvedSocketAddrs::from_fn(|_| "0.0.0.0:0".parse().unwrap());
            a.push(ip.parse().unwrap());
            a
        };
        let got = |host, port, at| cache.get(host, port, at).map(|a| a.to_vec());
        cache.insert("lambda.example", 443, &addrs("192.0.2.1:443"), t0);
        cache.insert("lambda.example", 8443, &addrs("192.0.2.9:8443"), t0);
        // the same name and port, resolved again: the new addresses, one entry
        cache.insert("Lambda.Example", 443, &addrs("192.0.2.2:443"), t0);
        assert_eq!(
            got("lambda.example", 443, t0),
            Some(addrs("192.0.2.2:443").to_vec())
        );
        assert_eq!(
            got("lambda.example", 8443, t0),
            Some(addrs("192.0.2.9:8443").to_vec()),
            "another port of the name is another entry"
        );
        assert_eq!(cache.entries.lock().unwrap().len(), 2);
        // an insert drops every entry whose time is up, exactly at its end too
        cache.insert(
            "other.example",
            443,
            &addrs("192.0.2.3:443"),
            t0 + ADDRESS_TTL,
        );
        assert_eq!(cache.entries.lock().unwrap().len(), 1);
    }

    #[test]
    fn the_cache_holds_few_names() {
        let cache = AddressCache::default();
        let t0 = Instant::now();
        let mut addrs = ResolvedSocketAddrs::from_fn(|_| "0.0.0.0:0".parse().unwrap());
        addrs.push("192.0.2.1:443".parse().unwrap());
        for i in 0..=MAX_NAMES {
            cache.insert(&format!("h{i}.example"), 443, &addrs, t0);
        }
        assert!(cache.get("h0.example", 443, t0).is_none());
        assert!(
            cache
                .get(&format!("h{MAX_NAMES}.example"), 443, t0)
                .is_some()
        );
        assert_eq!(cache.entries.lock().unwrap().len(), MAX_NAMES);
    }
}
