//! Connections: TCP, an HTTP proxy (absolute-form or CONNECT tunnel), TLS with rustls

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use http::{HeaderValue, Uri};
use hyper_util::rt::TokioIo;
use invoke_config::{LOCAL_CONNECT_TIMEOUT, ProxyEnv, is_local_host, redact_url};
use invoke_proto::TransportFailure;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::error::{BoxError, Error};

/// A connection that failed, with what kind of failure it was
///
/// Transparent: it shows as the error inside, whose sources are its own, so a chain of
/// causes tells each once (the kind is the caller's to show: the client's error names it)
#[derive(Debug)]
pub(crate) struct ConnectError {
    pub(crate) kind: TransportFailure,
    error: BoxError,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

impl ConnectError {
    fn new(kind: TransportFailure, error: impl Into<BoxError>) -> Self {
        Self {
            kind,
            error: error.into(),
        }
    }
}

/// An HTTP proxy: where it listens, whether it is reached over TLS, and the
/// `Proxy-Authorization` its URL asks for
#[derive(Clone)]
pub(crate) struct Proxy {
    uri: Uri,
    /// An `https://` proxy: TLS to the proxy itself (then, for an `https` target, TLS again
    /// inside the tunnel)
    tls: bool,
    pub(crate) authorization: Option<HeaderValue>,
}

impl Proxy {
    /// Parses a proxy URL (`http://` or `https://`, `[user:password@]host[:port]`; a bare
    /// `host:port` is taken as `http://`)
    pub(crate) fn parse(url: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::Config(format!("proxy {:?}: {why}", redact_url(url)));
        let full = if url.contains("://") {
            url.to_owned()
        } else {
            format!("http://{url}")
        };
        let uri: Uri = full.parse().map_err(|_| bad("not a valid URL"))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(bad("only http:// and https:// proxies are supported")),
        };
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        let (userinfo, host_port) = match authority.as_str().rsplit_once('@') {
            Some((userinfo, host_port)) => (Some(userinfo), host_port),
            None => (None, authority.as_str()),
        };
        let authorization = match userinfo {
            Some(userinfo) => {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                let decode = |s: &str| percent_encoding::percent_decode_str(s).collect::<Vec<u8>>();
                let mut plain = decode(user);
                plain.push(b':');
                plain.extend(decode(password));
                let token = base64::engine::general_purpose::STANDARD.encode(plain);
                let mut value = HeaderValue::try_from(format!("Basic {token}"))
                    .map_err(|_| bad("credentials are not valid"))?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let port_text = host_port
            .rsplit_once(']')
            .map_or(host_port, |h| h.1)
            .rsplit_once(':')
            .map(|p| p.1);
        if port_text.is_some_and(|p| p.parse::<u16>().is_err()) {
            // `user:pa/ss@host` (an unencoded `/`) parses as host `user`, port `pa`
            return Err(bad(
                "the port is not a number (a `/` in the password must be %2F)",
            ));
        }
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let uri = Uri::builder()
            .scheme("http")
            .authority(format!("{}:{port}", authority.host()))
            .path_and_query("/")
            .build()
            .map_err(|_| bad("not a valid URL"))?;
        Ok(Self {
            uri,
            tls,
            authorization,
        })
    }

    /// Its host and port
    fn address(&self) -> (&str, u16) {
        (
            self.uri.host().unwrap_or_default(),
            self.uri.port_u16().unwrap_or(80),
        )
    }
}

/// The system's trust store, read once per process (`rustls-native-certs`)
fn native_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::debug!(error = %e, "system trust store");
        }
        found.certs
    })
}

/// The rustls configuration: the `ring` provider, the system's roots plus `ca_bundle`
pub(crate) fn tls_config(ca_bundles: &[PathBuf]) -> Result<Arc<rustls::ClientConfig>, Error> {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(native_roots().iter().cloned());
    for path in ca_bundles {
        let bad = |reason: String| Error::CaBundle {
            path: path.clone(),
            reason,
        };
        let mut added = 0usize;
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))? {
            let cert = cert.map_err(|e| bad(e.to_string()))?;
            roots.add(cert).map_err(|e| bad(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(bad("no PEM certificate in the file".to_owned()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Makes connections: TCP, through the proxy if any, then TLS for `https`
#[derive(Clone)]
pub(crate) struct Connector {
    tls: TlsConnector,
    proxy: Option<Proxy>,
    /// For the credential providers' requests, whose hosts vary: the proxy variables, asked
    /// per destination (local hosts are reached directly)
    proxies: Option<Arc<ProxyEnv>>,
    timeout: Duration,
    /// Connects to [local hosts](is_local_host) within [`LOCAL_CONNECT_TIMEOUT`] at most
    local_cap: bool,
    /// What the requests sent over these connections say of their sender (not signed:
    /// signers skip `User-Agent`)
    user_agent: HeaderValue,
}

/// This crate's name and version: the `User-Agent`, unless an app id follows it
pub(crate) const PRODUCT: &str = concat!("invoke-tokio/", env!("CARGO_PKG_VERSION"));

impl Connector {
    pub(crate) fn new(
        tls: Arc<rustls::ClientConfig>,
        proxy: Option<Proxy>,
        timeout: Duration,
    ) -> Self {
        Self {
            tls: TlsConnector::from(tls),
            proxy,
            proxies: None,
            timeout,
            local_cap: false,
            user_agent: HeaderValue::from_static(PRODUCT),
        }
    }

    /// The same, its requests' `User-Agent` `value`
    pub(crate) fn with_user_agent(self, value: HeaderValue) -> Self {
        Self {
            user_agent: value,
            ..self
        }
    }

    /// What requests sent over these connections say of their sender, unless they say it
    pub(crate) fn user_agent(&self) -> &HeaderValue {
        &self.user_agent
    }

    /// The connector of the credential providers' requests: instance metadata, container
    /// endpoints and loopback directly and within [`LOCAL_CONNECT_TIMEOUT`] at most (off EC2,
    /// the metadata address does not answer: that must not take `timeout`); other hosts (STS,
    /// the SSO portal) through the proxy `proxies` names for them, as the endpoint's requests
    pub(crate) fn for_providers(
        tls: Arc<rustls::ClientConfig>,
        timeout: Duration,
        proxies: ProxyEnv,
    ) -> Self {
        Self {
            local_cap: true,
            proxies: Some(Arc::new(proxies)),
            ..Self::new(tls, None, timeout)
        }
    }

    /// The proxy a connection to `dst` goes through, if any
    pub(crate) fn proxy_for(&self, dst: &Uri) -> Result<Option<Proxy>, ConnectError> {
        if let Some(proxy) = &self.proxy {
            return Ok(Some(proxy.clone()));
        }
        let Some(url) = self.proxies.as_ref().and_then(|p| p.proxy_for_uri(dst)) else {
            return Ok(None);
        };
        Proxy::parse(url)
            .map(Some)
            .map_err(|e| ConnectError::new(TransportFailure::Other, e))
    }

    /// The connect timeout for `dst`
    pub(crate) fn timeout_for(&self, dst: &Uri) -> Duration {
        if self.local_cap && dst.host().is_some_and(is_local_host) {
            self.timeout.min(LOCAL_CONNECT_TIMEOUT)
        } else {
            self.timeout
        }
    }

    /// A connection to the scheme and authority of `dst` within `timeout` (an invocation's
    /// connect timeout, its client's unless the call changed it)
    pub(crate) async fn connect(&self, dst: &Uri, timeout: Duration) -> Result<Conn, ConnectError> {
        let proxy = self.proxy_for(dst)?;
        self.connect_within(dst, proxy, timeout).await
    }

    /// A connection to `dst` through `proxy`, which [`proxy_for`](Self::proxy_for) gave for
    /// it, within [the connect timeout for it](Self::timeout_for)
    pub(crate) async fn connect_via(
        &self,
        dst: &Uri,
        proxy: Option<Proxy>,
    ) -> Result<Conn, ConnectError> {
        self.connect_within(dst, proxy, self.timeout_for(dst)).await
    }

    /// A connection to `dst` through `proxy` within `timeout`, a connect timeout error naming
    /// it otherwise
    async fn connect_within(
        &self,
        dst: &Uri,
        proxy: Option<Proxy>,
        timeout: Duration,
    ) -> Result<Conn, ConnectError> {
        let deadline = Instant::now() + timeout;
        tokio::time::timeout_at(deadline, self.connect_by(dst, proxy, deadline))
            .await
            .unwrap_or_else(|_| {
                Err(ConnectError::new(
                    TransportFailure::ConnectTimeout,
                    format!("no connection within {timeout:?}"),
                ))
            })
    }

    async fn connect_by(
        &self,
        dst: &Uri,
        proxy: Option<Proxy>,
        deadline: Instant,
    ) -> Result<Conn, ConnectError> {
        let https = dst.scheme() == Some(&http::uri::Scheme::HTTPS);
        let host = dst.host().unwrap_or_default();
        let port = dst.port_u16().unwrap_or(if https { 443 } else { 80 });
        let connect_failed = |e: io::Error| ConnectError::new(TransportFailure::Connect, e);
        let (to_host, to_port) = proxy.as_ref().map_or((host, port), Proxy::address);
        let mut tcp = tcp(to_host, to_port, deadline)
            .await
            .map_err(connect_failed)?;
        // requests to an `http` endpoint go in absolute form over the proxy connection; an
        // `https` one is reached through a tunnel
        let authority = format!("{host}:{port}");
        let io = match &proxy {
            Some(proxy) if proxy.tls => {
                let mut to_proxy = self.tls_to(to_host, tcp).await?;
                if https {
                    tunnel(&mut to_proxy, &authority, proxy.authorization.as_ref()).await?;
                    Io::TlsInTls(Box::new(self.tls_to(host, to_proxy).await?))
                } else {
                    Io::Tls(Box::new(to_proxy))
                }
            }
            _ if https => {
                if let Some(proxy) = &proxy {
                    tunnel(&mut tcp, &authority, proxy.authorization.as_ref()).await?;
                }
                Io::Tls(Box::new(self.tls_to(host, tcp).await?))
            }
            _ => Io::Plain(tcp),
        };
        Ok(Conn {
            io: TokioIo::new(io),
        })
    }

    /// TLS to `host` over `io`
    async fn tls_to<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        host: &str,
        io: S,
    ) -> Result<TlsStream<S>, ConnectError> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| ConnectError::new(TransportFailure::Tls, e))?;
        self.tls.connect(name, io).await.map_err(|e| {
            // a TLS error proper (a certificate, a protocol) is never retried; a connection
            // reset or closed by the peer during the handshake is a failed connect, retried
            // as before the request was sent
            let tls = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<tokio_rustls::rustls::Error>())
                .is_some();
            let kind = if tls {
                TransportFailure::Tls
            } else {
                TransportFailure::Connect
            };
            ConnectError::new(kind, e)
        })
    }
}

/// A TCP connection to `host` (a name, an IPv4 address or a bracketed IPv6 one) and `port`
///
/// The addresses the name resolves to are tried in turn; each but the last gets an equal
/// share of the time left before `deadline`, so that one that does not answer leaves time
/// for the others (the caller bounds the last).
async fn tcp(host: &str, port: u16, deadline: Instant) -> io::Result<TcpStream> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
    connect_first(&addresses, deadline).await.map_err(|e| {
        e.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"))
        })
    })
}

/// The first of `addresses` that accepts, each but the last within an equal share of the
/// time left before `deadline`; the last failure (`None` without an address)
async fn connect_first(
    addresses: &[SocketAddr],
    deadline: Instant,
) -> Result<TcpStream, Option<io::Error>> {
    let mut last_error = None;
    for (i, address) in addresses.iter().enumerate() {
        let left = addresses.len() - i;
        let attempt = TcpStream::connect(address);
        let result = if left == 1 {
            attempt.await
        } else {
            let share = deadline.saturating_duration_since(Instant::now()) / left as u32;
            tokio::time::timeout(share, attempt)
                .await
                .unwrap_or_else(|_| {
                    Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no answer within {share:?}"),
                    ))
                })
        };
        match result.and_then(|stream| stream.set_nodelay(true).map(|()| stream)) {
            Ok(stream) => return Ok(stream),
            Err(e) => {
                tracing::debug!(%address, error = %e, "connect");
                last_error = Some(io::Error::new(e.kind(), format!("{address}: {e}")));
            }
        }
    }
    Err(last_error)
}

/// Longest response head a proxy may answer `CONNECT` with
const MAX_CONNECT_HEAD: usize = 16 * 1024;

/// Asks the proxy at the other end of `tcp` for a tunnel to `authority` (`host:port`)
async fn tunnel<S: AsyncRead + AsyncWrite + Unpin>(
    tcp: &mut S,
    authority: &str,
    authorization: Option<&HeaderValue>,
) -> Result<(), ConnectError> {
    let failed =
        |e: String| ConnectError::new(TransportFailure::Connect, format!("proxy CONNECT: {e}"));
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n").into_bytes();
    if let Some(value) = authorization {
        request.extend_from_slice(b"Proxy-Authorization: ");
        request.extend_from_slice(value.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    tcp.write_all(&request)
        .await
        .map_err(|e| failed(e.to_string()))?;
    // The head is read to its end and no further: the tunnel is silent until the client's
    // TLS hello, so bytes after the head are a broken proxy
    let mut head = Vec::with_capacity(1024);
    let end = loop {
        let mut buf = [0u8; 1024];
        let n = tcp
            .read(&mut buf)
            .await
            .map_err(|e| failed(e.to_string()))?;
        if n == 0 {
            return Err(failed(format!(
                "the proxy closed the connection after {} bytes of its response",
                head.len()
            )));
        }
        let from = head.len().saturating_sub(3);
        head.extend_from_slice(&buf[..n]);
        let end = head[from..]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| from + i + 4);
        // however the reads fell: a head that ends past the limit, or that has not ended
        // by it, is over it
        match end {
            Some(end) if end <= MAX_CONNECT_HEAD => break end,
            None if head.len() < MAX_CONNECT_HEAD => {}
            _ => {
                return Err(failed(format!(
                    "the proxy's response head is over {MAX_CONNECT_HEAD} bytes"
                )));
            }
        }
    };
    let status_line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let status_line: String = String::from_utf8_lossy(status_line)
        .chars()
        .take(100)
        .collect();
    let code = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.strip_prefix(['0', '1']))
        .and_then(|rest| rest.strip_prefix(' '))
        .filter(|rest| rest.len() == 3 || rest.as_bytes().get(3) == Some(&b' '))
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| failed(format!("not an HTTP/1 response: {status_line:?}")))?;
    // any 2xx opens the tunnel (RFC 9110, 9.3.6)
    if !(200..300).contains(&code) {
        let mut e = failed(format!("the proxy answered {status_line:?}"));
        e.kind = TransportFailure::of_proxy_answer(code);
        return Err(e);
    }
    if end < head.len() {
        return Err(failed(format!(
            "the proxy sent {} bytes after its response head",
            head.len() - end
        )));
    }
    Ok(())
}

/// A plain or TLS stream, or TLS inside a tunnel through an `https://` proxy
enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    TlsInTls(Box<TlsStream<TlsStream<TcpStream>>>),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s).poll_read(cx, buf),
            Self::TlsInTls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s).poll_write(cx, buf),
            Self::TlsInTls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::TlsInTls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            Self::Tls(s) => s.is_write_vectored(),
            Self::TlsInTls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s).poll_flush(cx),
            Self::TlsInTls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s).poll_shutdown(cx),
            Self::TlsInTls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// A connection: hyper's IO traits over [`Io`]
pub(crate) struct Conn {
    io: TokioIo<Io>,
}

impl hyper::rt::Read for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}

/// The failure kind behind an error of the pool or of hyper (a failed connection, a failed
/// send, a broken head or body); `before_head` while no response head arrived
pub(crate) fn classify(
    error: &(dyn std::error::Error + 'static),
    before_head: bool,
) -> TransportFailure {
    let mut current = Some(error);
    let mut hyper_error = None;
    while let Some(e) = current {
        if let Some(c) = e.downcast_ref::<ConnectError>() {
            return c.kind;
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            hyper_error.get_or_insert(h);
        }
        if let Some(io) = e.downcast_ref::<io::Error>()
            && io.kind() == io::ErrorKind::TimedOut
        {
            return if before_head {
                TransportFailure::HeadTimeout
            } else {
                TransportFailure::IdleTimeout
            };
        }
        current = e.source();
    }
    match hyper_error {
        Some(h) if h.is_parse() || h.is_parse_status() => TransportFailure::Protocol,
        _ if before_head => TransportFailure::Send,
        _ => TransportFailure::BodyRead,
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    /// A proxy that reads one request head, answers `response` (byte by byte when `trickle`)
    /// and closes; the head it read
    async fn proxy_answering(
        response: Vec<u8>,
        trickle: bool,
    ) -> (SocketAddr, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                let mut b = [0u8; 1];
                if s.read(&mut b).await.unwrap() == 0 {
                    break;
                }
                head.push(b[0]);
            }
            // the client may hang up first (a head it refuses)
            if trickle {
                for b in &response {
                    if s.write_all(&[*b]).await.is_err() {
                        break;
                    }
                }
            } else {
                let _ = s.write_all(&response).await;
            }
            String::from_utf8(head).unwrap()
        });
        (address, task)
    }

    async fn tunnel_answered(response: &[u8], trickle: bool) -> (Result<(), ConnectError>, String) {
        let (address, proxy) = proxy_answering(response.to_vec(), trickle).await;
        let mut tcp = TcpStream::connect(address).await.unwrap();
        let mut auth = HeaderValue::from_static("Basic dXNlcjpwdw==");
        auth.set_sensitive(true);
        let result = tunnel(&mut tcp, "lambda.example:443", Some(&auth)).await;
        drop(tcp);
        (result, proxy.await.unwrap())
    }

    #[tokio::test(flavor = "current_thread")]
    async fn tunnel_asks_with_the_credentials_and_opens_on_2xx() {
        for (response, trickle) in [
            (&b"HTTP/1.1 200 Connection established\r\n\r\n"[..], false),
            (
                b"HTTP/1.0 200 OK\r\nProxy-agent: tinyproxy/1.11\r\n\r\n",
                true,
            ),
            (b"HTTP/1.1 204 No Content\r\n\r\n", false),
        ] {
            let (result, head) = tunnel_answered(response, trickle).await;
            assert!(result.is_ok(), "{result:?}");
            assert_eq!(
                head,
                "CONNECT lambda.example:443 HTTP/1.1\r\nHost: lambda.example:443\r\n\
                 Proxy-Authorization: Basic dXNlcjpwdw==\r\n\r\n"
            );
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn tunnel_refused_or_broken_is_a_connect_failure() {
        let long = [
            &b"HTTP/1.1 200 OK\r\n"[..],
            &b"X-Padding: 0123456789abcdef0123456789abcdef\r\n".repeat(500),
        ]
        .concat();
        // exactly the limit without the head's end: over it, not waited on for more
        let status = b"HTTP/1.1 200 OK\r\n";
        let unended = [&status[..], &vec![b'p'; MAX_CONNECT_HEAD - status.len()]].concat();
        for (response, expect) in [
            (
                &b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n"
                    [..],
                "answered \"HTTP/1.1 407 Proxy Authentication Required\"",
            ),
            (b"HTTP/1.1 403 Forbidden\r\n\r\n", "403 Forbidden"),
            (b"HTTP/1.1 502 Bad Gateway\r\n\r\n", "502 Bad Gateway"),
            (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "not an HTTP/1 response"),
            (b"HTTP/1.1 2000\r\n\r\n", "not an HTTP/1 response"),
            (
                b"HTTP/1.1 200 OK\r\n",
                "closed the connection after 17 bytes",
            ),
            (
                b"HTTP/1.1 200 OK\r\n\r\n\x16\x03\x01",
                "3 bytes after its response head",
            ),
            (&long, "over 16384 bytes"),
            (&unended, "over 16384 bytes"),
        ] {
            let (result, _) = tunnel_answered(response, false).await;
            let Err(e) = result else {
                panic!("{:?} opened the tunnel", String::from_utf8_lossy(response));
            };
            // a refusal is not retried
            let refused = expect.contains("407") || expect.contains("403");
            let kind = if refused {
                TransportFailure::Other
            } else {
                TransportFailure::Connect
            };
            assert_eq!(e.kind, kind, "{e}");
            let shown = e.to_string();
            assert!(
                shown.contains("proxy CONNECT") && shown.contains(expect),
                "{shown}"
            );
            assert!(!shown.contains("dXNlcjpwdw"), "{shown}");
        }
    }

    /// `HTTP/1.1 200 OK`, padded with a header to `length` bytes in all
    fn head_of(length: usize) -> Vec<u8> {
        let start = b"HTTP/1.1 200 OK\r\nX-Padding: ";
        let mut head = start.to_vec();
        head.resize(length - 4, b'p');
        head.extend_from_slice(b"\r\n\r\n");
        head
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_connect_head_of_the_limit_opens_the_tunnel_and_one_byte_more_does_not() {
        for trickle in [false, true] {
            let (result, _) = tunnel_answered(&head_of(MAX_CONNECT_HEAD), trickle).await;
            assert!(result.is_ok(), "{result:?}");
            let (result, _) = tunnel_answered(&head_of(MAX_CONNECT_HEAD + 1), trickle).await;
            let e = result.expect_err("a head over the limit");
            assert!(e.to_string().contains("over 16384 bytes"), "{e}");
        }
    }

    /// A connection writes what it is given (one buffer, or several at once), flushes,
    /// and shuts its side down, through hyper's traits
    #[tokio::test(flavor = "current_thread")]
    async fn a_connection_writes_flushes_and_shuts_down() {
        use hyper::rt::Write as _;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let tcp = TcpStream::connect(address).await.unwrap();
        let (mut peer, _) = listener.accept().await.unwrap();
        let mut conn = Conn {
            io: TokioIo::new(Io::Plain(tcp)),
        };
        assert!(conn.is_write_vectored());
        let mut sent = 0;
        while sent < 5 {
            let n =
                std::future::poll_fn(|cx| Pin::new(&mut conn).poll_write(cx, &b"hello"[sent..]))
                    .await
                    .unwrap();
            assert!(n > 0);
            sent += n;
        }
        let parts = [io::IoSlice::new(b", "), io::IoSlice::new(b"world")];
        let n = std::future::poll_fn(|cx| Pin::new(&mut conn).poll_write_vectored(cx, &parts))
            .await
            .unwrap();
        assert_eq!(n, 7, "both slices at once on a fresh connection");
        std::future::poll_fn(|cx| Pin::new(&mut conn).poll_flush(cx))
            .await
            .unwrap();
        std::future::poll_fn(|cx| Pin::new(&mut conn).poll_shutdown(cx))
            .await
            .unwrap();
        let mut received = Vec::new();
        let read = peer.read_to_end(&mut received);
        tokio::time::timeout(Duration::from_secs(20), read)
            .await
            .expect("the end of the stream, the connection still open")
            .unwrap();
        assert_eq!(received, b"hello, world");
    }

    /// Over TLS, a flush is not done while records wait in rustls's buffer for a socket that
    /// cannot take them yet (a peer that reads nothing). hyper flushes after a request's last
    /// write and then only reads: a flush that ended early would leave the end of a large
    /// payload unsent, and the call would wait out its head timeout. Once the peer reads,
    /// the flush ends and every byte the writes took arrives.
    #[tokio::test(flavor = "current_thread")]
    async fn a_tls_flush_waits_for_the_records_the_socket_cannot_take_yet() {
        use hyper::rt::Write as _;
        let (acceptor, ca_pem) =
            invoke_emulator::loopback_tls(std::net::Ipv4Addr::LOCALHOST.into()).unwrap();
        let ca_file =
            std::env::temp_dir().join(format!("invoke-tokio-tls-flush-{}.pem", std::process::id()));
        std::fs::write(&ca_file, ca_pem).unwrap();
        let tls = tls_config(std::slice::from_ref(&ca_file)).unwrap();
        std::fs::remove_file(&ca_file).unwrap();
        let connector = Connector::new(tls, None, Duration::from_secs(20));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dst: Uri = format!("https://{}/", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let accept = async {
            let (tcp, _) = listener.accept().await.unwrap();
            acceptor.accept(tcp).await.unwrap()
        };
        let (conn, mut peer) =
            tokio::join!(connector.connect(&dst, Duration::from_secs(20)), accept);
        let mut conn = conn.unwrap();

        // write until neither the socket nor rustls's buffer takes more
        let chunk = vec![7u8; 64 * 1024];
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut taken = 0usize;
        while let Poll::Ready(written) = Pin::new(&mut conn).poll_write(&mut cx, &chunk) {
            taken += written.unwrap();
            assert!(taken < 1 << 30, "1 GiB written to a peer reading nothing");
        }
        assert!(
            Pin::new(&mut conn).poll_flush(&mut cx).is_pending(),
            "flushed with records still in rustls's buffer"
        );

        let read_all = async {
            let mut buf = vec![0u8; 64 * 1024];
            let mut read = 0;
            while read < taken {
                let n = peer.read(&mut buf).await.unwrap();
                assert!(n > 0, "the stream ended after {read} of {taken} bytes");
                assert!(buf[..n].iter().all(|&b| b == 7));
                read += n;
            }
        };
        let flush = std::future::poll_fn(|cx| Pin::new(&mut conn).poll_flush(cx));
        let (flushed, ()) = tokio::time::timeout(Duration::from_secs(20), async {
            tokio::join!(flush, read_all)
        })
        .await
        .expect("the flush to end and every byte to arrive once the peer reads");
        flushed.unwrap();
    }

    /// An address that never answers the handshake (a listener whose accept queue is full)
    /// takes only its share of the time, and one that refuses none: the next address, which
    /// answers, is still tried and connected to before the deadline (paused time: the
    /// runtime moves the clock while the handshake goes unanswered)
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_silent_or_refusing_address_leaves_time_for_the_next() {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        // a backlog of 0 queues one connection: the filler; later handshakes get no answer
        let full = socket.listen(0).unwrap();
        let silent = full.local_addr().unwrap();
        let _filler = TcpStream::connect(silent).await.unwrap();
        let answering = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let refused = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap()
        };
        let good = answering.local_addr().unwrap();
        for first in [silent, refused] {
            let deadline = Instant::now() + Duration::from_secs(2);
            let stream = connect_first(&[first, good], deadline)
                .await
                .expect("the second address");
            assert_eq!(stream.peer_addr().unwrap(), good);
            assert!(
                Instant::now() < deadline,
                "the first address took all the time"
            );
        }
        // the last address is not cut short: it waits until the caller's deadline
        let deadline = Instant::now() + Duration::from_secs(2);
        let both_silent = [silent, silent];
        let waited = tokio::time::timeout_at(deadline, connect_first(&both_silent, deadline));
        assert!(
            waited.await.is_err(),
            "the last address gave up before the deadline"
        );
        let e = connect_first(&[], Instant::now()).await.unwrap_err();
        assert!(e.is_none());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_proxy_that_never_answers_is_a_connect_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        let (held, release) = tokio::sync::oneshot::channel::<()>();
        let holder = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let _ = release.await;
            drop(s);
        });
        let connector = Connector::new(
            tls_config(&[]).unwrap(),
            Some(proxy),
            Duration::from_millis(200),
        );
        let dst: Uri = "https://lambda.example:443/".parse().unwrap();
        let e = connector
            .connect(&dst, connector.timeout_for(&dst))
            .await
            .err()
            .unwrap();
        assert_eq!(e.kind, TransportFailure::ConnectTimeout, "{e}");
        drop(held);
        holder.await.unwrap();
    }

    #[test]
    fn providers_reach_other_hosts_through_the_proxy_and_local_ones_directly() {
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        let providers = Connector::for_providers(
            tls_config(&[]).unwrap(),
            Duration::from_secs(5),
            ProxyEnv::from_vars([
                ("HTTPS_PROXY", "http://user:pw@proxy.internal:3128"),
                ("HTTP_PROXY", "http://plain.internal:8080"),
                ("NO_PROXY", "sso.internal"),
            ]),
        );
        let via = |dst: &str| {
            providers
                .proxy_for(&uri(dst))
                .unwrap()
                .map(|p| p.address().0.to_owned())
        };
        assert_eq!(
            via("https://sts.eu-west-1.amazonaws.com/").as_deref(),
            Some("proxy.internal")
        );
        assert_eq!(
            via("http://sts.example:8000/").as_deref(),
            Some("plain.internal")
        );
        assert_eq!(via("https://portal.sso.internal/federation"), None);
        for local in [
            "http://169.254.169.254/latest/api/token",
            "http://169.254.170.2/v2/credentials/x",
            "http://127.0.0.1:8080/creds",
        ] {
            assert_eq!(via(local), None, "{local}");
        }
        let auth = providers
            .proxy_for(&uri("https://sts.amazonaws.com/"))
            .unwrap()
            .and_then(|p| p.authorization)
            .expect("the proxy's credentials");
        assert!(auth.is_sensitive());
        // a password with an unencoded `/` is refused, not taken as another host
        assert!(Proxy::parse("http://user:pa/ss@proxy:3128").is_err());
    }

    #[test]
    fn providers_connect_to_local_hosts_within_a_second() {
        let tls = tls_config(&[]).unwrap();
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        let providers =
            Connector::for_providers(Arc::clone(&tls), Duration::from_secs(5), ProxyEnv::none());
        for local in [
            "http://169.254.169.254/latest/api/token",
            "http://[fd00:ec2::254]/latest/api/token",
            "http://169.254.170.2/v2/credentials/x",
            "http://127.0.0.1:8080/creds",
        ] {
            assert_eq!(
                providers.timeout_for(&uri(local)),
                LOCAL_CONNECT_TIMEOUT,
                "{local}"
            );
        }
        assert_eq!(
            providers.timeout_for(&uri("https://sts.us-east-1.amazonaws.com/")),
            Duration::from_secs(5)
        );
        // the invocations' own connections keep the timeout they were given
        let invocations = Connector::new(tls, None, Duration::from_secs(10));
        assert_eq!(
            invocations.timeout_for(&uri("http://127.0.0.1:9001/")),
            Duration::from_secs(10)
        );
    }
}
