//! The connection pool of a client: HTTP/1.1 connections to its one endpoint
//!
//! A connection goes back to the pool the moment its response body has been read to the
//! end (the next request waits for it to be ready rather than opening another), and never
//! otherwise: a response dropped half-read takes its connection with it, closed.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HOST, USER_AGENT};
use http::{HeaderValue, Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};

use crate::connect::{Conn, Connector};
use crate::error::BoxError;

/// A connection's request sender, and the connection's life: dropping it ends the
/// connection's task at once, closing the socket, even while hyper is still writing a
/// request's payload to a peer that reads no more (hyper, left to itself, notices that its
/// sender is gone only between requests, and would then flush that payload without end)
pub(crate) struct Sender {
    send: SendRequest<Full<Bytes>>,
    /// Never sends: its drop is what stops the task
    _life: tokio::sync::oneshot::Sender<std::convert::Infallible>,
}

impl std::ops::Deref for Sender {
    type Target = SendRequest<Full<Bytes>>;

    fn deref(&self) -> &Self::Target {
        &self.send
    }
}

impl std::ops::DerefMut for Sender {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.send
    }
}

/// How long a connection may sit idle before it is closed rather than reused (a peer or a
/// NAT on the way may have forgotten it by then)
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// When [`Pool::send`] handed a request to a connection, where its head timeout starts; not
/// set while connecting, again not set while a new connection is made for a request that a
/// reused one gave back unsent (its window begins anew when it goes out)
#[derive(Default)]
pub(crate) struct SentAt(Mutex<Option<tokio::time::Instant>>);

impl SentAt {
    /// The request goes out now (`Some`), or is not out any more (`None`)
    pub(crate) fn set(&self, at: Option<tokio::time::Instant>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = at;
    }

    /// When the request went out, if it is out
    pub(crate) fn get(&self) -> Option<tokio::time::Instant> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Idle connections to one endpoint
pub(crate) struct Pool {
    connector: Connector,
    /// The endpoint (scheme and authority) connections are made to
    target: Uri,
    /// Requests go in absolute form (to an HTTP proxy)
    absolute_form: bool,
    max_idle: usize,
    /// With the time each went idle
    idle: Mutex<Vec<(Sender, Instant)>>,
}

/// A connection in use, put back into the pool by [`Lease::release`]; dropped, it closes
/// at once (its response, if still alive, then ends in an error)
pub(crate) struct Lease {
    sender: Sender,
    pool: Arc<Pool>,
}

impl Lease {
    /// The response body was read to its end: the connection can serve the next request
    pub(crate) fn release(self) {
        let mut idle = self
            .pool
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.pool.max_idle && !self.sender.is_closed() {
            idle.push((self.sender, Instant::now()));
        }
    }
}

impl Pool {
    pub(crate) fn new(
        connector: Connector,
        target: Uri,
        absolute_form: bool,
        max_idle: usize,
    ) -> Self {
        Self {
            connector,
            target,
            absolute_form,
            max_idle,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn take_idle(&self) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        // closed connections and those idle too long go (closing them), then the most
        // recently used one is taken
        idle.retain(|(sender, since)| !sender.is_closed() && since.elapsed() < IDLE_TIMEOUT);
        idle.pop().map(|(sender, _)| sender)
    }

    /// Sends `request` on an idle connection or a new one; a request that a reused
    /// connection closed before sending goes out again on a new one. `sent_at` is set
    /// each time it is handed to a connection (connecting done) and cleared when it comes
    /// back unsent
    pub(crate) async fn send(
        self: &Arc<Self>,
        request: Request<Full<Bytes>>,
        sent_at: &SentAt,
    ) -> Result<(Response<Incoming>, Lease), BoxError> {
        let mut request = prepare(request, self.absolute_form);
        // one wait for pooled connections to become ready, shared by all those tried: each
        // that is not ready by then is closed (not waited for in turn)
        let ready_by = tokio::time::Instant::now() + self.connector.timeout_for(&self.target);
        loop {
            let (mut sender, reused) = match self.take_idle() {
                Some(sender) => (sender, true),
                // boxed: the connect future (TCP, proxy, TLS) is most of this one's size,
                // which every call would otherwise move around while it reuses a connection
                None => (
                    Box::pin(connect(&self.connector, self.target.clone())).await?,
                    false,
                ),
            };
            // a connection that cannot take a request within the connect timeout (one whose
            // response ended while its request's payload is still unsent to a server that
            // reads no more) is closed, and another one made
            if reused
                && !matches!(
                    tokio::time::timeout_at(ready_by, sender.ready()).await,
                    Ok(Ok(()))
                )
            {
                continue;
            }
            sent_at.set(Some(tokio::time::Instant::now()));
            match sender.try_send_request(request).await {
                Ok(response) => {
                    let lease = Lease {
                        sender,
                        pool: Arc::clone(self),
                    };
                    return Ok((response, lease));
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused => {
                        sent_at.set(None);
                        request = unsent;
                    }
                    _ => return Err(e.into_error().into()),
                },
            }
        }
    }
}

/// One request on a connection of its own (credentials providers: rare requests to other
/// hosts); the connection lives as long as the [`Sender`] returned, which the caller keeps
/// until it has read the body
pub(crate) async fn send_once(
    connector: &Connector,
    request: Request<Full<Bytes>>,
) -> Result<(Response<Incoming>, Sender), BoxError> {
    let uri = request.uri().clone();
    // an `http` request through a proxy goes in absolute form, with the proxy's credentials
    let proxy = connector.proxy_for(&uri)?;
    let absolute = proxy.is_some() && uri.scheme() == Some(&http::uri::Scheme::HTTP);
    let authorization = proxy.as_ref().and_then(|p| p.authorization.clone());
    let io = connector.connect_via(&uri, proxy).await?;
    let mut sender = handshake(io).await?;
    let mut request = prepare(request, absolute);
    if absolute && let Some(value) = authorization {
        request
            .headers_mut()
            .insert(http::header::PROXY_AUTHORIZATION, value);
    }
    let response = sender.send_request(request).await?;
    Ok((response, sender))
}

/// A new connection to `target`, its task spawned (it ends when the connection closes)
async fn connect(connector: &Connector, target: Uri) -> Result<Sender, BoxError> {
    handshake(connector.connect(&target).await?).await
}

/// An HTTP/1 client over `io`, its connection task spawned (it ends when the connection
/// closes or the [`Sender`] is dropped)
async fn handshake(io: Conn) -> Result<Sender, BoxError> {
    let (send, connection) = http1::Builder::new().handshake(io).await?;
    let (life, mut ended) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut connection = std::pin::pin!(connection);
        let closed = std::future::poll_fn(|cx| {
            // the sender was dropped: the connection goes with this task, before hyper
            // writes another byte of a payload the caller has given up on
            if Pin::new(&mut ended).poll(cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
            connection.as_mut().poll(cx)
        })
        .await;
        if let Err(e) = closed {
            tracing::trace!(error = %e, "connection closed");
        }
    });
    Ok(Sender { send, _life: life })
}

/// What every request says of its sender (not signed: signers skip `User-Agent`)
const USER_AGENT_VALUE: HeaderValue =
    HeaderValue::from_static(concat!("invoke-tokio/", env!("CARGO_PKG_VERSION")));

/// The request with a `Host` header, `User-Agent` (unless it has one) and its URI in
/// origin form (or absolute form for a proxy)
fn prepare(mut request: Request<Full<Bytes>>, absolute_form: bool) -> Request<Full<Bytes>> {
    if let http::header::Entry::Vacant(slot) = request.headers_mut().entry(USER_AGENT) {
        slot.insert(USER_AGENT_VALUE);
    }
    if !request.headers().contains_key(HOST)
        && let Some(value) = request
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        request.headers_mut().insert(HOST, value);
    }
    if !absolute_form && let Some(pq) = request.uri().path_and_query() {
        *request.uri_mut() = Uri::from(pq.clone());
    }
    request
}
