//! Connections: TCP, an HTTP proxy (absolute-form or CONNECT tunnel), TLS with rustls

use std::fmt;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use http::{HeaderValue, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::rt::TokioIo;
use invoke_config::redact_url;
use invoke_proto::TransportFailure;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::error::{BoxError, Error};

/// A connection that failed, with what kind of failure it was
#[derive(Debug)]
pub(crate) struct ConnectError {
    pub(crate) kind: TransportFailure,
    source: BoxError,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.source)
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

impl ConnectError {
    fn new(kind: TransportFailure, source: impl Into<BoxError>) -> Self {
        Self {
            kind,
            source: source.into(),
        }
    }
}

/// An HTTP proxy: where it listens and the `Proxy-Authorization` its URL asks for
#[derive(Clone)]
pub(crate) struct Proxy {
    pub(crate) uri: Uri,
    pub(crate) authorization: Option<HeaderValue>,
}

impl Proxy {
    /// Parses a proxy URL (`http://[user:password@]host[:port]`; a bare `host:port` is
    /// taken as `http://`)
    pub(crate) fn parse(url: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::Config(format!("proxy {:?}: {why}", redact_url(url)));
        let full = if url.contains("://") {
            url.to_owned()
        } else {
            format!("http://{url}")
        };
        let uri: Uri = full.parse().map_err(|_| bad("not a valid URL"))?;
        if uri.scheme_str() != Some("http") {
            return Err(bad("only http:// proxies are supported"));
        }
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        let authorization = match authority.as_str().rsplit_once('@') {
            Some((userinfo, _)) => {
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
        let port = authority.port_u16().unwrap_or(80);
        let uri = Uri::builder()
            .scheme("http")
            .authority(format!("{}:{port}", authority.host()))
            .path_and_query("/")
            .build()
            .map_err(|_| bad("not a valid URL"))?;
        Ok(Self { uri, authorization })
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
        let mut added = 0;
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
    tcp: HttpConnector,
    tls: TlsConnector,
    proxy: Option<Proxy>,
    timeout: Duration,
}

impl Connector {
    pub(crate) fn new(
        tls: Arc<rustls::ClientConfig>,
        proxy: Option<Proxy>,
        timeout: Duration,
    ) -> Self {
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        Self {
            tcp,
            tls: TlsConnector::from(tls),
            proxy,
            timeout,
        }
    }

    async fn connect(mut self, dst: Uri) -> Result<Conn, ConnectError> {
        use tower_service::Service as _;
        let https = dst.scheme() == Some(&http::uri::Scheme::HTTPS);
        let connect_failed = |e: BoxError| ConnectError::new(TransportFailure::Connect, e);
        let tcp = match (&self.proxy, https) {
            (None, _) => self
                .tcp
                .call(dst.clone())
                .await
                .map_err(|e| connect_failed(e.into()))?,
            // requests go in absolute form over it
            (Some(proxy), false) => self
                .tcp
                .call(proxy.uri.clone())
                .await
                .map_err(|e| connect_failed(e.into()))?,
            (Some(proxy), true) => {
                let mut tunnel = Tunnel::new(proxy.uri.clone(), self.tcp.clone());
                if let Some(auth) = &proxy.authorization {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                tunnel.call(dst.clone()).await.map_err(|e| {
                    ConnectError::new(TransportFailure::Connect, format!("proxy CONNECT: {e:?}"))
                })?
            }
        };
        let tcp = tcp.into_inner();
        if !https {
            return Ok(Conn {
                io: TokioIo::new(Io::Plain(tcp)),
            });
        }
        let host = dst.host().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| ConnectError::new(TransportFailure::Tls, e))?;
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|e| ConnectError::new(TransportFailure::Tls, e))?;
        Ok(Conn {
            io: TokioIo::new(Io::Tls(Box::new(tls))),
        })
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = Conn;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let this = self.clone();
        let timeout = self.timeout;
        Box::pin(async move {
            tokio::time::timeout(timeout, this.connect(dst))
                .await
                .unwrap_or_else(|_| {
                    Err(ConnectError::new(
                        TransportFailure::ConnectTimeout,
                        format!("no connection within {timeout:?}"),
                    ))
                })
        })
    }
}

/// A plain or TLS stream
enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
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
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            Self::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s).poll_shutdown(cx),
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
