//! The credential providers' HTTP exchanges (IMDS, container, STS, SSO), sent through the
//! client's agent

use std::cell::Cell;
use std::io::Read as _;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use invoke_config::{
    Attempt, LOCAL_CONNECT_TIMEOUT, MAX_RESPONSE_BODY, ProcessCommand, ProcessOutput, ProxyEnv,
    is_local_host, jitter, redact_url,
};

use crate::drain::{Scoped, ThreadLimit};

thread_local! {
    /// When set, the credential exchanges this thread sends end no later than this
    static EXCHANGES_BY: Cell<Option<Instant>> = const { Cell::new(None) };
    /// The back-off this thread slept last before a retried exchange (the tests read it)
    static SLEPT: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}

/// While the guard lives, the credential exchanges sent on this thread (the client's
/// loading of its credentials for an attempt) end no later than `by`: the invocation's
/// deadline
pub(crate) fn exchanges_by(by: Instant) -> ThreadLimit {
    Scoped::new(&EXCHANGES_BY, Some(by))
}

/// This thread's [`exchanges_by`], if one is set (how long the credentials cache lets the
/// thread wait for another's load)
pub(crate) fn exchanges_limit() -> Option<Instant> {
    EXCHANGES_BY.get()
}

/// What is left until this thread's [`exchanges_by`], if one is set
fn time_left() -> Option<Duration> {
    EXCHANGES_BY
        .get()
        .map(|by| by.saturating_duration_since(Instant::now()))
}

/// `limit`, cut to what is left until this thread's [`exchanges_by`]; an error once that
/// has passed
fn within_deadline(limit: Duration) -> Result<Duration, String> {
    match time_left() {
        Some(Duration::ZERO) => Err("the invocation's deadline passed".to_owned()),
        left => Ok(left.map_or(limit, |left| limit.min(left))),
    }
}

/// Runs a `credential_process` command as [`invoke_config::run_process`] does, killed by this
/// thread's [`exchanges_by`] limit when that comes before the command's own timeout
pub(crate) fn run_process(cmd: &ProcessCommand) -> Result<ProcessOutput, String> {
    let timeout = within_deadline(cmd.timeout)?;
    if timeout < cmd.timeout {
        invoke_config::run_process(&ProcessCommand {
            timeout,
            ..cmd.clone()
        })
    } else {
        invoke_config::run_process(cmd)
    }
}

/// Sends the requests of `invoke-config`'s credential providers with a client's agent
#[derive(Clone)]
pub(crate) struct Sender {
    pub(crate) agent: ureq::Agent,
    pub(crate) proxy_env: ProxyEnv,
    /// Connecting, per attempt
    pub(crate) connect: Duration,
    /// The whole exchange, per attempt
    pub(crate) timeout: Duration,
}

/// The ureq proxy for a proxy URL, refused unless it is an `http://` or `https://` one
/// (ureq, built without its SOCKS support, would panic on the first request)
pub(crate) fn http_proxy(url: &str) -> Result<ureq::Proxy, String> {
    let bad = |why: &dyn std::fmt::Display| format!("proxy {:?}: {why}", redact_url(url));
    let proxy = ureq::Proxy::new(url).map_err(|e| bad(&e))?;
    match proxy.protocol() {
        ureq::ProxyProtocol::Http | ureq::ProxyProtocol::Https => Ok(proxy),
        _ => Err(bad(&"only http:// and https:// proxies are supported")),
    }
}

impl Sender {
    /// The proxy for `uri`, by the same rules as the client's endpoint
    fn proxy_for(&self, uri: &http::Uri) -> Result<Option<ureq::Proxy>, String> {
        self.proxy_env
            .proxy_for_uri(uri)
            .map(http_proxy)
            .transpose()
    }

    /// `request` with the provider settings: any scheme, its proxy, short timeouts
    fn configure<S: ureq::AsSendBody>(
        &self,
        request: http::Request<S>,
        proxy: Option<ureq::Proxy>,
        connect: Duration,
        timeout: Duration,
    ) -> http::Request<S> {
        self.agent
            .configure_request(request)
            .https_only(false)
            .proxy(proxy)
            .timeout_resolve(Some(connect))
            .timeout_connect(Some(connect))
            .timeout_global(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .timeout_per_read(Some(timeout))
            .build()
    }

    /// One exchange: backs off first for a retry, returns the status, headers and at most
    /// [`MAX_RESPONSE_BODY`] + 1 bytes of body (the provider refuses more); within this
    /// thread's [`exchanges_by`], if one is set
    pub(crate) fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<(StatusCode, HeaderMap, Bytes), String> {
        let wait = request
            .extensions()
            .get::<Attempt>()
            .map_or(Duration::ZERO, |attempt| attempt.backoff(jitter()));
        if !wait.is_zero() {
            let wait = time_left().map_or(wait, |left| wait.min(left));
            SLEPT.set(wait);
            std::thread::sleep(wait);
        }
        let timeout = within_deadline(self.timeout)?;
        let proxy = self.proxy_for(request.uri())?;
        let uri = request.uri().clone();
        let connect = if uri.host().is_some_and(is_local_host) {
            self.connect.min(LOCAL_CONNECT_TIMEOUT)
        } else {
            self.connect
        }
        .min(timeout);
        let span = tracing::debug_span!(
            "credentials_request",
            method = %request.method(),
            host = uri.host().unwrap_or_default(),
            path = uri.path(),
            status = tracing::field::Empty,
        );
        let _entered = span.enter();
        let (parts, body) = request.into_parts();
        // an empty body as none: a GET without `Content-Length`, and an empty PUT (the
        // IMDS token's) with `Content-Length: 0`, as the SDKs send them (the suite checks)
        let result = if body.is_empty() {
            let req = http::Request::from_parts(parts, ());
            self.agent.run(self.configure(req, proxy, connect, timeout))
        } else {
            let req = http::Request::from_parts(parts, &body[..]);
            self.agent.run(self.configure(req, proxy, connect, timeout))
        };
        // a container URL may carry a user and password: never in an error
        let uri = redact_url(&uri.to_string());
        let response = result.map_err(|e| {
            tracing::debug!(error = %e, "credentials request failed");
            format!("{uri}: {e}")
        })?;
        let (parts, body) = response.into_parts();
        span.record("status", parts.status.as_u16());
        let mut bytes = Vec::new();
        body.into_reader()
            .take(MAX_RESPONSE_BODY as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("{uri}: reading the response: {e}"))?;
        Ok((parts.status, parts.headers, Bytes::from(bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_the_url_is_not_in_the_error() {
        let sender = Sender {
            agent: ureq::Agent::new_with_defaults(),
            proxy_env: ProxyEnv::none(),
            connect: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
        };
        // nothing listens on port 9 of loopback
        let request = http::Request::get("http://user:hunter2@127.0.0.1:9/creds")
            .body(Bytes::new())
            .unwrap();
        let e = sender.send(request).unwrap_err();
        assert!(e.contains("127.0.0.1:9") && !e.contains("hunter2"), "{e}");
    }

    /// A `credential_process` still running at this thread's [`exchanges_by`] limit is
    /// killed then, not at its own longer timeout; past the limit, none is started
    #[cfg(unix)]
    #[test]
    fn a_process_is_killed_at_the_threads_limit_when_that_comes_first() {
        let cmd = ProcessCommand {
            command: "sleep 30".to_owned(),
            timeout: Duration::from_secs(20),
            max_output: 1024,
        };
        let limit = exchanges_by(Instant::now() + Duration::from_millis(200));
        let e = run_process(&cmd).unwrap_err();
        assert!(e.contains("ran longer than"), "{e}");
        assert!(!e.contains("20s"), "killed at its own timeout: {e}");
        // the limit has passed now
        let e = run_process(&cmd).unwrap_err();
        assert!(e.contains("deadline passed"), "{e}");
        drop(limit);
    }

    /// A retried exchange (IMDS, container, STS, SSO) waits its back-off first, within
    /// the thread's deadline; a first one does not wait
    #[test]
    fn a_retried_provider_request_waits_its_backoff_first() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap();
        let hour = Duration::from_secs(3600);
        let sender = Sender {
            agent: ureq::Agent::new_with_defaults(),
            proxy_env: ProxyEnv::none(),
            connect: hour,
            timeout: hour,
        };
        let send = |attempt: u32| {
            let mut request = http::Request::get(format!("http://{closed}/latest/api/token"))
                .body(Bytes::new())
                .unwrap();
            request.extensions_mut().insert(Attempt(attempt));
            SLEPT.set(Duration::ZERO);
            let before = Instant::now();
            let err = sender.send(request).unwrap_err();
            let slept = SLEPT.get();
            // a sleep lasts at least as long as asked
            assert!(before.elapsed() >= slept, "{attempt}: {slept:?}");
            (slept, err)
        };
        let refused = |(slept, err): (Duration, String)| {
            assert!(err.contains(&closed.to_string()), "refused: {err}");
            slept
        };
        assert_eq!(refused(send(1)), Duration::ZERO);
        // full jitter: up to 100 ms before the second attempt, up to 1 s before the seventh
        for attempt in [2, 7] {
            let slept = refused(send(attempt));
            let ceiling = Attempt(attempt).backoff(1.0);
            assert!(
                slept > Duration::ZERO && slept <= ceiling,
                "{attempt}: {slept:?}"
            );
        }
        // never past the thread's deadline
        let _by = exchanges_by(Instant::now() + Duration::from_millis(5));
        let (slept, _) = send(7);
        assert!(slept <= Duration::from_millis(5), "{slept:?}");
    }

    #[test]
    fn providers_use_the_proxy_variables_except_for_local_hosts() {
        let sender = |vars: &[(&str, &str)]| Sender {
            agent: ureq::Agent::new_with_defaults(),
            proxy_env: ProxyEnv::from_vars(vars.iter().copied()),
            connect: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
        };
        let proxied = |s: &Sender, uri: &str| s.proxy_for(&uri.parse().unwrap()).unwrap().is_some();
        let s = sender(&[
            ("HTTPS_PROXY", "http://proxy.internal:3128"),
            ("HTTP_PROXY", "http://proxy.internal:3128"),
        ]);
        assert!(proxied(&s, "https://sts.us-east-1.amazonaws.com/"));
        assert!(proxied(
            &s,
            "https://portal.sso.eu-west-1.amazonaws.com/federation/credentials"
        ));
        assert!(!proxied(&s, "http://169.254.169.254/latest/api/token"));
        assert!(!proxied(&s, "http://169.254.170.2/v2/credentials/x"));
        assert!(!proxied(&s, "http://[fd00:ec2::254]/latest/api/token"));
        assert!(!proxied(&s, "http://127.0.0.1:8080/creds"));
        let s = sender(&[
            ("HTTPS_PROXY", "http://proxy.internal:3128"),
            ("NO_PROXY", "amazonaws.com"),
        ]);
        assert!(!proxied(&s, "https://sts.us-east-1.amazonaws.com/"));
        assert!(proxied(&s, "https://sts.example.com/"));
        assert!(!proxied(
            &sender(&[]),
            "https://sts.us-east-1.amazonaws.com/"
        ));
        // ureq without SOCKS support would panic on the request: an error instead
        let s = sender(&[("HTTPS_PROXY", "socks5h://u:s0cks-pw@proxy.internal:1080")]);
        let error = s
            .proxy_for(&"https://sts.us-east-1.amazonaws.com/".parse().unwrap())
            .unwrap_err();
        assert!(error.contains("only http:// and https://"), "{error}");
        assert!(!error.contains("s0cks-pw"), "{error}");
    }
}
