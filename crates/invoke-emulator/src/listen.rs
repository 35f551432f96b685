//! The accept loop every listener of the emulator shares (the endpoint and each process's
//! Runtime API): HTTP/1.1 connections, over TLS when asked, served by one handler, bounded in
//! number, with back-off on accept errors

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::body::RespBody;

/// Connections served at once; further ones wait in the listen backlog
pub(crate) const MAX_CONNECTIONS: usize = 1024;
/// Time a connection has to send a request head, idle keep-alive time included: longer than
/// the idle timeout of common client pools, so that none of them races a server close
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(300);
/// Time a connection has to complete the TLS handshake
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// First and longest pause after a failed accept (out of file descriptors, for example)
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(5), Duration::from_secs(1));

/// Serves every connection `listener` accepts with `handler`, over TLS when `tls` is given,
/// until `stop` completes, then closes the open connections (streams included)
///
/// At most [`MAX_CONNECTIONS`] are served at once. An accept error pauses accepting, from
/// 5 ms doubling up to 1 s while errors repeat, instead of spinning.
pub(crate) async fn serve<H, F>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    handler: H,
    stop: impl Future<Output = ()>,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + 'static,
    F: Future<Output = Result<Response<RespBody>, Infallible>> + Send + 'static,
{
    let mut connections = JoinSet::new();
    let pause = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(pause, stop);
    let mut paused = false;
    let mut backoff = ACCEPT_BACKOFF.0;
    loop {
        tokio::select! {
            () = &mut stop => break,
            () = &mut pause, if paused => paused = false,
            accepted = listener.accept(), if !paused && connections.len() < MAX_CONNECTIONS => {
                if let Ok((stream, _)) = accepted {
                    backoff = ACCEPT_BACKOFF.0;
                    let _ = stream.set_nodelay(true);
                    connections.spawn(connection(stream, tls.clone(), handler.clone()));
                } else {
                    pause.as_mut().reset(Instant::now() + backoff);
                    paused = true;
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

/// Serves one connection until it closes: the TLS handshake (bounded by
/// [`HANDSHAKE_TIMEOUT`]) when `tls` is given, then HTTP/1.1
async fn connection<H, F>(stream: TcpStream, tls: Option<TlsAcceptor>, handler: H)
where
    H: Fn(Request<Incoming>) -> F + Send + 'static,
    F: Future<Output = Result<Response<RespBody>, Infallible>> + Send + 'static,
{
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let service = service_fn(handler);
    let _ = match tls {
        None => http.serve_connection(TokioIo::new(stream), service).await,
        Some(acceptor) => {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
            let Ok(Ok(stream)) = handshake.await else {
                return;
            };
            http.serve_connection(TokioIo::new(stream), service).await
        }
    };
}
