//! Cancellation: dropping a response mid-body or an `invoke` future before its head
//! closes that connection (it never goes back to the pool half-read) and leaves no task
//! behind

mod support;

use std::io::Read as _;
use std::net::TcpListener;
use std::pin::pin;
use std::time::Duration;

use futures_core::Stream as _;
use invoke_proto::{Credentials, Event, InvokeParams};
use invoke_proto::{EndpointConfig, resolve_endpoint};
use invoke_tokio::{Client, ProxyEnv};
use transport_suite::{Forwarder, Harness, KEY, SECRET};

/// Generous bound for events that happen at once on an idle machine
const WAIT: Duration = Duration::from_secs(20);

fn client(url: &str) -> Client {
    let endpoint = resolve_endpoint(
        &EndpointConfig::default()
            .with_region("us-east-1")
            .with_custom(url),
    )
    .expect("endpoint");
    Client::builder(endpoint)
        .credentials(Credentials::new(KEY, SECRET, None))
        .proxy_env(ProxyEnv::none())
        .build()
        .expect("client")
}

/// Waits (bounded) until no task of `runtime` is alive: every connection task ended
async fn no_task_left(runtime: &tokio::runtime::Handle) -> bool {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if runtime.metrics().num_alive_tasks() == 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
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
        assert!(no_task_left(rt.handle()).await, "connection tasks ended");
        assert_eq!(forwarder.accepted(), 2);

        // the next invocation opens a new connection: nothing half-read was pooled
        let response = client
            .invoke(&InvokeParams::new("echo", "{}"))
            .await
            .expect("invoke");
        let mut events = pin!(response);
        while let Some(e) = std::future::poll_fn(|cx| events.as_mut().poll_next(cx)).await {
            e.expect("event");
        }
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
        // the invoke future is dropped: its connection closes, its task ends
        assert!(
            closed.recv_timeout(WAIT).is_ok(),
            "the connection was closed"
        );
        assert!(no_task_left(rt.handle()).await, "connection task ended");
    });
}

/// A reader slower than the function still meets the overall deadline (bytes hyper already
/// holds are not handed out once it passed; hyper's HTTP/1 body hands over a chunk at a time,
/// so the timer path, which checks it too, is usually reached as well)
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
