//! Cancellation: dropping a response mid-body or an `invoke` future before its head
//! closes that connection (it never goes back to the pool half-read) and leaves no task
//! behind; what the pool keeps of the connections released, and for which runtime; the
//! timers handed on from call to call

mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use futures_core::Stream as _;
use invoke_proto::bytes::BytesMut;
use invoke_proto::{
    Credentials, Event, InvocationType, InvokeParams, RetryConfig, encode_payload_chunk,
};
use invoke_proto::{EndpointConfig, resolve_endpoint};
use invoke_tokio::invoke_config::DRAIN_LIMIT;
use invoke_tokio::invoke_config::{CredentialsError, ProvideCredentials, ProvidedCredentials};
use invoke_tokio::{Client, ProxyEnv};
use transport_suite::cases::{held_response_with_extra, serve_held_with_extras_told};
use transport_suite::{Forwarder, Harness, KEY, SECRET};

/// Generous bound for events that happen at once on an idle machine
const WAIT: Duration = Duration::from_secs(20);

fn client(url: &str) -> Client {
    client_with(url, invoke_tokio::Timeouts::default())
}

fn client_with(url: &str, timeouts: invoke_tokio::Timeouts) -> Client {
    builder(url).timeouts(timeouts).build().expect("client")
}

/// A builder for `url`, with the suite's keys and no proxy
fn builder(url: &str) -> invoke_tokio::ClientBuilder {
    let endpoint = resolve_endpoint(
        &EndpointConfig::default()
            .with_region("us-east-1")
            .with_custom(url),
    )
    .expect("endpoint");
    Client::builder(endpoint)
        .credentials(Credentials::new(KEY, SECRET, None))
        .proxy_env(ProxyEnv::none())
}

/// Reads `response` to its end, every event a success
async fn read_to_end(response: invoke_tokio::Response) {
    let mut events = pin!(response);
    while let Some(e) = std::future::poll_fn(|cx| events.as_mut().poll_next(cx)).await {
        e.expect("event");
    }
}

/// No task of `runtime` is alive: the client spawns none (a connection is driven by whoever
/// waits on it), so nothing is left to end once a response or a future is dropped
fn no_task_left(runtime: &tokio::runtime::Handle) -> bool {
    runtime.metrics().num_alive_tasks() == 0
}

async fn first_chunk(client: &Client, params: &InvokeParams) {
    let response = client.invoke(params).await.expect("invoke");
    let mut events = pin!(response);
    let first = std::future::poll_fn(|cx| events.as_mut().poll_next(cx)).await;
    assert!(
        matches!(first, Some(Ok(Event::PayloadChunk(_)))),
        "{first:?}"
    );
    // dropped here, mid-body
}

#[test]
fn dropping_a_response_mid_body_closes_its_connection() {
    let harness = Harness::start();
    let forwarder = Forwarder::start(harness.address());
    let client = client(&forwarder.url());
    let rt = support::runtime();
    rt.block_on(async {
        // a stream that stalls after its first chunk, and a long one still being written
        first_chunk(&client, &InvokeParams::new("streamer-stall", "{}")).await;
        assert!(
            forwarder.wait_closed(1, WAIT),
            "the stalled connection was closed"
        );
        let long = InvokeParams::new("count", r#"{"n":100000,"size":1000}"#);
        first_chunk(&client, &long).await;
        assert!(
            forwarder.wait_closed(2, WAIT),
            "the busy connection was closed"
        );
        assert!(no_task_left(rt.handle()), "a task outlived the responses");
        assert_eq!(forwarder.accepted(), 2);

        // the next invocation opens a new connection: nothing half-read was pooled
        let response = client
            .invoke(&InvokeParams::new("echo", "{}"))
            .await
            .expect("invoke");
        read_to_end(response).await;
        assert_eq!(forwarder.accepted(), 3);
        assert_eq!(
            forwarder.closed(),
            2,
            "a complete stream keeps its connection"
        );
    });
}

#[test]
fn dropping_the_invoke_future_before_the_head_closes_its_connection() {
    // A server that reads the request and never answers, and reports when the client
    // closed the connection
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (got_request, request_seen) = tokio::sync::oneshot::channel();
    let (closed_tx, closed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().expect("accept");
        let mut seen = Vec::new();
        let mut buf = [0; 4096];
        let mut got_request = Some(got_request);
        loop {
            match socket.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
            if seen.windows(4).any(|w| w == b"\r\n\r\n")
                && let Some(tx) = got_request.take()
            {
                let _ = tx.send(());
            }
        }
        let _ = closed_tx.send(());
    });
    let client = client(&format!("http://{addr}"));
    let rt = support::runtime();
    let params = InvokeParams::new("echo", "{}");
    rt.block_on(async {
        tokio::select! {
            r = client.invoke(&params) => panic!("answered: {r:?}"),
            _ = request_seen => {}
        }
        // the invoke future is dropped: its connection closes
        assert!(
            closed.recv_timeout(WAIT).is_ok(),
            "the connection was closed"
        );
        assert!(no_task_left(rt.handle()), "a task outlived the future");
    });
}

/// A reader slower than the function still meets the overall deadline, against the emulator
/// (whose chunks reach hyper as the reader makes room: the read waits now and then, and the
/// timer ends it; the case where it never waits is the next test's)
#[test]
fn a_slow_reader_of_a_fast_stream_meets_the_overall_deadline() {
    let harness = Harness::start();
    let client = Client::builder(harness.endpoint())
        .credentials(Credentials::new(KEY, SECRET, None))
        .proxy_env(ProxyEnv::none())
        .timeouts(invoke_tokio::Timeouts::default().with_overall(Duration::from_millis(300)))
        .build()
        .expect("client");
    support::runtime().block_on(async {
        let long = InvokeParams::new("count", r#"{"n":100000,"size":1000}"#);
        let response = client.invoke(&long).await.expect("invoke");
        let mut events = pin!(response);
        // 20 ms a chunk: the 300 ms are over within about 15 chunks
        for n in 0..250 {
            match std::future::poll_fn(|cx| events.as_mut().poll_next(cx)).await {
                Some(Ok(Event::PayloadChunk(_))) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Some(Err(e)) => {
                    assert!(e.to_string().contains("deadline passed"), "{e}");
                    return;
                }
                other => panic!("after {n} chunks: {other:?}"),
            }
        }
        panic!("250 chunks read over 5 s, past a 300 ms deadline");
    });
}

/// The body timer a call hands on (registered for 15 minutes on, the default idle timeout)
/// still ends the next call on the same runtime at that call's own, shorter, idle timeout
/// (were it not moved earlier, nothing would end the stalled stream for 15 minutes)
#[test]
fn a_timer_handed_on_fires_at_the_next_calls_shorter_timeout() {
    let harness = Harness::start();
    let client = client(&format!("http://{}", harness.address()));
    support::current_thread().block_on(async {
        // 50 ms between chunks: the body has nothing ready for a while, so a timer is made;
        // the response is dropped mid-body (read to its end, its timer would be moved to
        // the short wait for the end of the body)
        let paced = InvokeParams::new("count", r#"{"n":3,"size":4,"delay_ms":50}"#);
        {
            let response = client.invoke(&paced).await.expect("invoke");
            let mut events = pin!(response);
            for _ in 0..2 {
                let next = std::future::poll_fn(|cx| events.as_mut().poll_next(cx)).await;
                assert!(matches!(next, Some(Ok(Event::PayloadChunk(_)))), "{next:?}");
            }
        }

        let idle = invoke_tokio::InvokeOptions::new().idle_timeout(Duration::from_millis(300));
        let stalls = InvokeParams::new("streamer-stall", "{}");
        let ended = tokio::time::timeout(WAIT, async {
            let response = client.invoke_with(&stalls, &idle).await.expect("invoke");
            let mut events = pin!(response);
            loop {
                match std::future::poll_fn(|cx| events.as_mut().poll_next(cx)).await {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break e,
                    None => panic!("a stalled stream ended cleanly"),
                }
            }
        })
        .await
        .expect("the idle timeout ended the stalled stream");
        assert_eq!(
            ended.transport_failure(),
            Some(invoke_proto::TransportFailure::IdleTimeout),
            "{ended}"
        );
    });
}

/// A server that answers the first request with `chunks` payload messages, each in an HTTP
/// chunk of its own, all written at once, and then keeps the connection open without ending
/// the body
fn ready_chunks_server(chunks: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().expect("accept");
        if !support::read_request_head(&mut socket) {
            return;
        }
        let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let mut frame = BytesMut::new();
        encode_payload_chunk(&[b'x'; 1000], &mut frame).expect("encode");
        for _ in 0..chunks {
            out.extend_from_slice(format!("{:x}\r\n", frame.len()).as_bytes());
            out.extend_from_slice(&frame);
            out.extend_from_slice(b"\r\n");
        }
        if socket.write_all(&out).is_err() {
            return;
        }
        // until the client closes the connection
        let mut buf = [0; 4096];
        while matches!(socket.read(&mut buf), Ok(n) if n > 0) {}
    });
    format!("http://{addr}")
}

/// Body bytes hyper already holds are not handed out once the overall deadline passed, even
/// when the read does not wait (so no timer fires): every chunk of this body is ready
#[test]
fn a_slow_reader_gets_no_ready_bytes_past_the_deadline() {
    const CHUNKS: usize = 100;
    const OVERALL: Duration = Duration::from_millis(300);
    const PACE: Duration = Duration::from_millis(20);
    // The poll after this many chunks starts at least 15 x 20 ms after the call did: past the
    // deadline. Each message is an HTTP chunk of its own, so each event needs a body read.
    const LAST: usize = 15;
    let client = client_with(
        &ready_chunks_server(CHUNKS),
        invoke_tokio::Timeouts::default().with_overall(OVERALL),
    );
    support::runtime().block_on(async {
        let response = client
            .invoke(&InvokeParams::new("f", "{}"))
            .await
            .expect("invoke");
        let mut events = pin!(response);
        for n in 0..CHUNKS {
            match std::future::poll_fn(|cx| events.as_mut().poll_next(cx)).await {
                Some(Ok(Event::PayloadChunk(_))) => tokio::time::sleep(PACE).await,
                Some(Err(e)) => {
                    assert!(e.to_string().contains("deadline passed"), "{e}");
                    assert!(
                        n <= LAST,
                        "{n} chunks handed out, the last ones past the deadline"
                    );
                    return;
                }
                other => panic!("after {n} chunks: {other:?}"),
            }
        }
        panic!("all {CHUNKS} chunks were handed out, past the deadline");
    });
}

/// A blocking provider that counts its calls and returns only once its gate is open
struct GatedProvider {
    calls: Arc<AtomicUsize>,
    gate: Arc<(Mutex<bool>, Condvar)>,
}

impl ProvideCredentials for GatedProvider {
    fn provide_credentials(&self) -> Result<ProvidedCredentials, CredentialsError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let (open, opened) = &*self.gate;
        let mut open = open.lock().expect("gate");
        while !*open {
            open = opened.wait(open).expect("gate");
        }
        Ok(ProvidedCredentials::given(Credentials::new(
            KEY, SECRET, None,
        )))
    }
}

/// Opens a provider's gate
fn open(gate: &(Mutex<bool>, Condvar)) {
    *gate
        .0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
    gate.1.notify_all();
}

/// Opens a provider's gate when dropped
struct OpenOnDrop(Arc<(Mutex<bool>, Condvar)>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        open(&self.0);
    }
}

/// Invocations that give up on a provider slower than their deadline leave its one call
/// running, and the loads after them wait for that call instead of starting more beside it
/// (a blocking call cannot be cancelled; they would pile up on the blocking pool, their
/// results thrown away); once it returns, its credentials sign
#[test]
fn a_provider_slower_than_the_deadline_is_called_once() {
    let harness = Harness::start();
    let calls = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let client = Client::builder(harness.endpoint())
        .credentials_provider(GatedProvider {
            calls: Arc::clone(&calls),
            gate: Arc::clone(&gate),
        })
        .proxy_env(ProxyEnv::none())
        // room for the last invocation, which waits for the call's thread to wake, on a busy
        // machine
        .timeouts(invoke_tokio::Timeouts::default().with_overall(Duration::from_millis(500)))
        .build()
        .expect("client");
    let params = InvokeParams::new("echo", "{}");
    let runtime = support::runtime();
    // dropped before the runtime, which waits for the provider's calls: a failed assertion
    // opens the gate on its way out instead of hanging there
    let _open_at_the_end = OpenOnDrop(Arc::clone(&gate));
    runtime.block_on(async {
        for _ in 0..3 {
            let e = client
                .invoke(&params)
                .await
                .expect_err("no credentials yet");
            assert!(e.to_string().contains("deadline"), "{e}");
        }
        // asked directly, the credentials are held to the overall timeout too
        let e = client.credentials().await.expect_err("no credentials yet");
        assert!(
            std::error::Error::source(&e)
                .is_some_and(|s| s.to_string().contains("overall timeout")),
            "{e:?}"
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "one call for the four loads"
        );
        open(&gate);
        client
            .invoke(&params)
            .await
            .expect("signed with its credentials");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    });
}

/// A server that answers before it has read the request's payload (a throttle at the front
/// door) and never reads the rest: the connection can take no other request while its
/// payload is unsent, so the retry does not wait for it (until the overall deadline) but
/// connects anew within the connect timeout
#[test]
fn a_connection_still_sending_its_payload_is_not_waited_for() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&accepted);
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for socket in listener.incoming() {
            let Ok(mut socket) = socket else { continue };
            counted.fetch_add(1, Ordering::SeqCst);
            if support::read_request_head(&mut socket) {
                let _ = socket.write_all(
                    b"HTTP/1.1 429 Too Many Requests\r\n\
                      x-amzn-ErrorType: TooManyRequestsException\r\n\
                      Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
                );
            }
            held.push(socket); // never read again
        }
    });
    let client = client_of(
        addr,
        invoke_tokio::Timeouts::default()
            .with_connect(Duration::from_millis(500))
            .with_overall(WAIT),
        RetryConfig::new()
            .with_max_attempts(2)
            .with_initial_backoff(Duration::from_millis(1))
            .with_max_backoff(Duration::from_millis(1)),
    );
    let shown = largest_payload_fails(client).to_string();
    assert!(
        shown.contains("TooManyRequestsException") && shown.contains("2 attempts"),
        "{shown}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

/// A server that answers as soon as it has a request's head and reads its payload only
/// then, the first one after a pause (busy elsewhere): when the first call's response
/// ended, its payload was still going out. That connection is closed, not pooled (a call
/// that waited for it to take the next request went without a response head until the
/// deadline in about one run of five): the next call goes out on a new one
#[test]
fn a_connection_still_sending_its_payload_is_closed_not_pooled() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = std::thread::spawn(move || {
        let (mut accepted, mut served) = (0, 0);
        while served < 2 {
            let (mut socket, _) = listener.accept().expect("accept");
            accepted += 1;
            while served < 2 {
                let Some((length, read)) = support::read_request_head_and_length(&mut socket)
                else {
                    break;
                };
                if socket.write_all(&held_response_with_extra(0)).is_err() {
                    break;
                }
                served += 1;
                if served == 1 {
                    std::thread::sleep(Duration::from_millis(200));
                }
                let rest = length.saturating_sub(read) as u64;
                let mut payload = (&mut socket).take(rest);
                if std::io::copy(&mut payload, &mut std::io::sink()).ok() != Some(rest) {
                    break;
                }
            }
        }
        accepted
    });
    let client = client_of(
        addr,
        invoke_tokio::Timeouts::default()
            .with_connect(WAIT)
            .with_overall(WAIT),
        RetryConfig::new().with_max_attempts(1),
    );
    support::runtime().block_on(async {
        // more than the socket buffers hold while the server does not read
        let largest = vec![b'x'; invoke_proto::MAX_PAYLOAD_LEN];
        for payload in [largest, b"{}".to_vec()] {
            let params = InvokeParams::new("held", payload);
            read_to_end(client.invoke(&params).await.expect("invoke")).await;
        }
    });
    assert_eq!(server.join().expect("server"), 2, "connections accepted");
}

/// A client of the server at `addr` (the test keys, no proxy), with `timeouts` and `retry`
fn client_of(
    addr: std::net::SocketAddr,
    timeouts: invoke_tokio::Timeouts,
    retry: RetryConfig,
) -> Client {
    let endpoint = resolve_endpoint(
        &EndpointConfig::default()
            .with_region("us-east-1")
            .with_custom(format!("http://{addr}")),
    )
    .expect("endpoint");
    Client::builder(endpoint)
        .credentials(Credentials::new(KEY, SECRET, None))
        .proxy_env(ProxyEnv::none())
        .timeouts(timeouts)
        .retry(retry)
        .build()
        .expect("client")
}

/// Invokes with the largest payload (more than the socket buffers hold), on a runtime of
/// its own, a call that must fail; its error, once the client is dropped and no task is
/// left writing to a server that reads no more
fn largest_payload_fails(client: Client) -> invoke_tokio::Error {
    let payload = vec![b'x'; invoke_proto::MAX_PAYLOAD_LEN];
    let rt = support::runtime();
    let error = rt
        .block_on(client.invoke(&InvokeParams::new("f", payload)))
        .expect_err("no answer");
    drop(client);
    assert!(no_task_left(rt.handle()), "a task outlived the client");
    error
}

/// A head timeout while the payload is still going out to a server that reads nothing
/// leaves no task behind, writing on
#[test]
fn a_head_timeout_mid_payload_leaves_no_task() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for socket in listener.incoming().flatten() {
            held.push(socket); // never read, never answered
        }
    });
    let client = client_of(
        addr,
        invoke_tokio::Timeouts::default()
            .with_head(Duration::from_millis(200))
            .with_overall(WAIT),
        RetryConfig::new().with_max_attempts(1),
    );
    let error = largest_payload_fails(client);
    assert!(error.to_string().contains("head"), "{error}");
}

/// The emulator behind a connection-counting forwarder, and a client of it that keeps at
/// most one idle connection
fn pool_of_one() -> (Harness, Forwarder, Client) {
    let harness = Harness::start();
    let forwarder = Forwarder::start(harness.address());
    let client = builder(&forwarder.url())
        .max_idle_connections(1)
        .build()
        .expect("client");
    (harness, forwarder, client)
}

/// The pool keeps at most `max_idle_connections` of the connections released: two calls at
/// once need two connections, and after they ended only one is kept for the next two
#[test]
fn the_pool_keeps_at_most_max_idle_connections() {
    let (_harness, forwarder, client) = pool_of_one();
    let rt = support::runtime();
    rt.block_on(async {
        for accepted in [2, 3] {
            // both heads in hand before either body is read: two connections in use
            let params = InvokeParams::new("echo", "{}");
            let a = client.invoke(&params).await.expect("invoke");
            let b = client.invoke(&params).await.expect("invoke");
            read_to_end(a).await;
            read_to_end(b).await;
            assert_eq!(forwarder.accepted(), accepted);
        }
    });
}

/// A `DryRun`'s 204 has no body: its connection goes back to the pool with the head, so a
/// response dropped unread leaves it for the next call
#[test]
fn a_dry_run_response_dropped_unread_keeps_its_connection() {
    let (_harness, forwarder, client) = pool_of_one();
    support::runtime().block_on(async {
        let dry = InvokeParams::new("echo", "{}").invocation_type(InvocationType::DryRun);
        for _ in 0..3 {
            let response = client.invoke(&dry).await.expect("invoke");
            assert_eq!(response.status(), 204);
        }
    });
    assert_eq!(forwarder.accepted(), 1);
}

/// A client shared by two runtimes: a call on one never takes a connection the other made
/// (its socket is read through the other's IO driver, which does not turn while that runtime
/// is idle: the call would wait for its deadline), and each runtime reuses its own
#[test]
fn a_client_shared_by_two_runtimes_gives_each_its_own_connections() {
    let harness = Harness::start();
    let forwarder = Forwarder::start(harness.address());
    let client = builder(&forwarder.url())
        .timeouts(invoke_tokio::Timeouts::default().with_overall(Duration::from_secs(10)))
        .build()
        .expect("client");
    // 20 ms between the chunks: the body is waited for, through the IO driver
    let paced = InvokeParams::new("count", r#"{"n":2,"size":3,"delay_ms":20}"#);
    let first = support::current_thread();
    let call = |runtime: &tokio::runtime::Runtime, client: &Client| {
        runtime.block_on(async {
            read_to_end(client.invoke(&paced).await.expect("invoke")).await;
        });
    };
    call(&first, &client);
    assert_eq!(forwarder.accepted(), 1);
    // the first runtime stays, idle, while another thread's runtime calls twice
    std::thread::scope(|s| {
        s.spawn(|| {
            let second = support::current_thread();
            call(&second, &client);
            call(&second, &client);
        });
    });
    assert_eq!(forwarder.accepted(), 2, "a connection of its own, reused");
    // and the first runtime's connection is there for it still
    call(&first, &client);
    assert_eq!(forwarder.accepted(), 2);
}

/// A full pool makes room for a released connection by closing the one idle longest: here
/// the connection of a runtime that is gone, which no call could take any more
#[test]
fn a_pool_full_of_a_gone_runtimes_connections_keeps_the_new_ones() {
    let (_harness, forwarder, client) = pool_of_one();
    let params = InvokeParams::new("echo", "{}");
    for calls in [1, 2] {
        support::current_thread().block_on(async {
            for _ in 0..calls {
                read_to_end(client.invoke(&params).await.expect("invoke")).await;
            }
        });
    }
    // one connection for the first runtime, one (reused) for the second
    assert_eq!(forwarder.accepted(), 2);
}

/// A caller that stops at `InvokeComplete` and drops the response: when the rest of the
/// body is already here, it is taken on the drop and the connection goes back to the pool
/// (with up to [`DRAIN_LIMIT`] bytes after `InvokeComplete` too), unless more than
/// [`DRAIN_LIMIT`] bytes came after it; a response dropped before its `InvokeComplete` closes
/// its connection, even with the rest of its body here. Six calls: the second answered
/// with 100 bytes after `InvokeComplete`, the third with the limit, the fourth with the
/// limit and a byte more, the fifth dropped at its first event; they go out on connections
/// 1, 1, 1, 1, 2 and 3. Each is dropped only once the server wrote all of it.
#[test]
fn dropping_a_response_at_invoke_complete_keeps_a_connection_whose_body_ended() {
    let (addr, server, written) =
        serve_held_with_extras_told(vec![0, 100, DRAIN_LIMIT, DRAIN_LIMIT + 1, 0, 0]);
    let client = client(&format!("http://{addr}"));
    let rt = support::runtime();
    rt.block_on(async {
        for call in 0..6 {
            let response = client
                .invoke(&InvokeParams::new("held", "{}"))
                .await
                .expect("invoke");
            let mut events = pin!(response);
            loop {
                match std::future::poll_fn(|cx| events.as_mut().poll_next(cx)).await {
                    Some(Ok(Event::PayloadChunk(_))) if call == 4 => break,
                    Some(Ok(Event::InvokeComplete(_))) => break,
                    Some(Ok(_)) => {}
                    other => panic!("not InvokeComplete: {other:?}"),
                }
            }
            written
                .recv_timeout(WAIT)
                .expect("the server wrote the whole response");
            // dropped here, before the stream said it ended (the fifth before its
            // InvokeComplete)
        }
    });
    assert_eq!(server.join().expect("server"), [1, 1, 1, 1, 2, 3]);
}

/// `Response::next_event` is cancel-safe: futures of it dropped before they were ready (a
/// timeout shorter than the function's pauses) lose no event, and the events taken in the
/// end are the whole payload, byte-exact, then `InvokeComplete`
#[test]
fn next_event_dropped_before_ready_loses_no_event() {
    let runtime = support::runtime();
    let harness = Harness::start();
    let client = client(&harness.endpoint().to_string());
    runtime.block_on(async {
        let params = InvokeParams::new("count", r#"{"n":4,"size":3,"delay_ms":50}"#);
        let mut response = client.invoke(&params).await.expect("invoke");
        let (mut payload, mut dropped, mut complete) = (Vec::new(), 0, false);
        while !complete {
            match tokio::time::timeout(Duration::from_millis(5), response.next_event()).await {
                Err(_) => dropped += 1, // the future is dropped, not ready
                Ok(Some(Ok(Event::PayloadChunk(bytes)))) => payload.extend_from_slice(&bytes),
                Ok(Some(Ok(Event::InvokeComplete(c)))) => {
                    assert!(!c.is_error(), "{c:?}");
                    complete = true;
                }
                Ok(other) => panic!("not an event of the payload: {other:?}"),
            }
        }
        assert!(dropped > 0, "no future was dropped before it was ready");
        assert_eq!(payload, b"abcdefghijkl");
        assert!(
            response.next_event().await.is_none(),
            "the end after InvokeComplete"
        );
    });
}
