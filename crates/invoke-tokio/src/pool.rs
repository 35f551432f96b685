//! The connection pool of a client: HTTP/1.1 connections to its one endpoint
//!
//! A connection goes back to the pool the moment its response body has been read to the
//! end, if its request went out whole by then, and never otherwise: a response dropped
//! half-read takes its connection with it, closed, and so does one that ended while its
//! request's payload was still going out (see [`Lease::release`]).
//!
//! No connection has a task of its own: hyper's side of it is polled by whoever waits on
//! it (for a response head, body bytes). The bytes of a response thus go from
//! the socket to the caller within the caller's own poll, without a hand-over between two
//! tasks (and the runtime turn each costs); a connection nobody waits on is not read from;
//! dropping it closes the socket there and then.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HOST, USER_AGENT};
use http::response::Parts;
use http::{HeaderValue, Request, Response, Uri};
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming};
use hyper::client::conn::http1::{self, Connection, SendRequest};
use tokio::runtime::Id;

use crate::connect::{Conn, Connector};
use crate::error::BoxError;
use crate::kept::{Kept, current_runtime};
use crate::timer::Timers;

/// One HTTP/1.1 connection: hyper's request sender and its connection, which the holder
/// drives ([`drive`](Self::drive)) while it waits on it; dropped, the socket closes
pub(crate) struct Link {
    send: SendRequest<Full<Bytes>>,
    /// `None` once hyper is done with it (the peer closed it, or it failed). Boxed: hyper's
    /// connection state is most of a kilobyte, and a link moves a few times a call (out of
    /// the pool, into the response, back), while one allocation a connection is all a box
    /// costs
    conn: Option<Box<Connection<Conn, Full<Bytes>>>>,
    /// The runtime whose IO driver its socket is registered with: only that runtime's
    /// turns make it readable or writable again
    runtime: Option<Id>,
}

impl Link {
    /// Lets hyper do what it can on the connection (write a request, read a response into
    /// its body), `cx` woken when it can do more
    fn drive(&mut self, cx: &mut Context<'_>) {
        if let Some(conn) = &mut self.conn
            && let Poll::Ready(ended) = Pin::new(&mut **conn).poll(cx)
        {
            if let Err(e) = ended {
                tracing::trace!(error = %e, "connection closed");
            }
            self.conn = None;
        }
    }

    /// Sends `request` and waits for its response head, driving the connection; an unsent
    /// request comes back in the error
    ///
    /// Not an `async fn`: one would keep the request in a slot of its own next to hyper's
    /// future, which holds it too until it goes out.
    fn send(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Sending<'_, impl Future<Output = SendResult>> {
        let response = self.send.try_send_request(request);
        Sending {
            link: self,
            response,
        }
    }
}

/// What hyper answers a request sent with [`Link::send`]
type SendResult =
    Result<Response<Incoming>, hyper::client::conn::TrySendError<Request<Full<Bytes>>>>;

pin_project_lite::pin_project! {
    /// A request's response head on its way: hyper's future for it, with the link whose
    /// connection is driven while it waits
    struct Sending<'a, F> {
        link: &'a mut Link,
        #[pin]
        response: F,
    }
}

impl<F: Future<Output = SendResult>> Future for Sending<'_, F> {
    type Output = SendResult;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<SendResult> {
        let this = self.project();
        this.link.drive(cx);
        this.response.poll(cx)
    }
}

/// A response body with the connection it arrives on, driven when the body has nothing
/// ready; dropped, the connection closes
pub(crate) struct LinkedBody {
    body: Incoming,
    link: Link,
}

impl Body for LinkedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        this.link.drive(cx);
        Pin::new(&mut this.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }
}

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
    /// Closed when kept too long (see [`Kept`]) or taken again
    idle: Kept<Link>,
    /// For the waits for a response head
    pub(crate) head_timers: Timers,
    /// For the waits for body bytes
    pub(crate) body_timers: Timers,
}

/// A response body on a pooled connection, the connection put back into the pool by
/// [`Lease::release`]; dropped, it closes at once
pub(crate) struct Lease {
    /// The body, read through its connection
    pub(crate) body: LinkedBody,
    pool: Arc<Pool>,
}

impl Lease {
    /// The response body was read to its end: the connection can serve the next request,
    /// unless its request is still going out
    ///
    /// A response can end before the server has read the request's payload (a throttle or
    /// a size limit answered at the front door); hyper then still has payload to write,
    /// and only asks for the next request once it is through. Such a connection is closed
    /// here, so that every pooled connection can take a request at once: a call that
    /// waited on one instead could miss its response head until the deadline. hyper's pool
    /// (now `hyper-util`'s) reuses only a connection whose sender is ready, for the same
    /// reason (hyperium/hyper#2646).
    pub(crate) fn release(self) {
        let link = self.body.link;
        // when full, the one idle longest goes: it may be another runtime's, which no call
        // of this one could take
        if link.conn.is_some()
            && link.send.is_ready()
            && let Some(runtime) = link.runtime
        {
            self.pool.idle.put(link, runtime);
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
            idle: Kept::new(max_idle),
            head_timers: Timers::new(max_idle),
            body_timers: Timers::new(max_idle),
        }
    }

    /// The most recently used idle connection of the current runtime (one of another
    /// runtime would wait for that runtime's turns, which may never come while it is idle)
    fn take_idle(&self) -> Option<Link> {
        self.idle.take(current_runtime()?)
    }

    /// Sends `request` on an idle connection or a new one (made within `connect_timeout`);
    /// a request that a reused connection closed before sending goes out again on a new
    /// one. `sent_at` is set each time it is handed to a connection (connecting done) and
    /// cleared when it comes back unsent. The response head, and its body with the
    /// connection
    pub(crate) async fn send(
        self: &Arc<Self>,
        mut request: Request<Full<Bytes>>,
        sent_at: &SentAt,
        connect_timeout: Duration,
    ) -> Result<(Parts, Lease), BoxError> {
        // the argument's own slot, not a second one for the prepared request
        request = prepare(request, &self.connector, self.absolute_form);
        loop {
            let (mut link, reused) = match self.take_idle() {
                Some(link) => (link, true),
                // boxed: the connect future (TCP, proxy, TLS) is most of this one's size,
                // which every call would otherwise move around while it reuses a connection
                None => (
                    Box::pin(connect(
                        &self.connector,
                        self.target.clone(),
                        connect_timeout,
                    ))
                    .await?,
                    false,
                ),
            };
            // A pooled connection asked for its next request when it was released (see
            // `Lease::release`) and is read from again only now: one the peer closed (or
            // wrote to) while it sat idle ends at this first poll, before anything is
            // written, and gives the request back unsent; it then goes out on another
            sent_at.set(Some(tokio::time::Instant::now()));
            match link.send(request).await {
                Ok(response) => {
                    let (parts, body) = response.into_parts();
                    let lease = Lease {
                        body: LinkedBody { body, link },
                        pool: Arc::clone(self),
                    };
                    return Ok((parts, lease));
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
/// hosts): the response head, and its body with the connection, which lives (and is
/// driven) as long as the body
pub(crate) async fn send_once(
    connector: &Connector,
    request: Request<Full<Bytes>>,
) -> Result<(Parts, LinkedBody), BoxError> {
    let uri = request.uri().clone();
    // an `http` request through a proxy goes in absolute form, with the proxy's credentials
    let proxy = connector.proxy_for(&uri)?;
    let absolute = proxy.is_some() && uri.scheme() == Some(&http::uri::Scheme::HTTP);
    let authorization = proxy.as_ref().and_then(|p| p.authorization.clone());
    let io = connector.connect_via(&uri, proxy).await?;
    let mut link = handshake(io).await?;
    let mut request = prepare(request, connector, absolute);
    if absolute && let Some(value) = authorization {
        request
            .headers_mut()
            .insert(http::header::PROXY_AUTHORIZATION, value);
    }
    let (parts, body) = link
        .send(request)
        .await
        .map_err(hyper::client::conn::TrySendError::into_error)?
        .into_parts();
    Ok((parts, LinkedBody { body, link }))
}

/// A new connection to `target`, made within `timeout`
async fn connect(connector: &Connector, target: Uri, timeout: Duration) -> Result<Link, BoxError> {
    handshake(connector.connect(&target, timeout).await?).await
}

/// An HTTP/1 client over `io`
async fn handshake(io: Conn) -> Result<Link, BoxError> {
    let (send, conn) = http1::Builder::new().handshake(io).await?;
    Ok(Link {
        send,
        conn: Some(Box::new(conn)),
        runtime: current_runtime(),
    })
}

/// The request with a `Host` header, `User-Agent` (the connector's, unless it has one) and
/// its URI in origin form (or absolute form for a proxy)
fn prepare(
    mut request: Request<Full<Bytes>>,
    connector: &Connector,
    absolute_form: bool,
) -> Request<Full<Bytes>> {
    if let http::header::Entry::Vacant(slot) = request.headers_mut().entry(USER_AGENT) {
        slot.insert(connector.user_agent().clone());
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
