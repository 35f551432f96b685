//! 1,000 concurrent invocations through one client, each stream byte-exact, on a
//! multi-thread and on a current-thread runtime

mod support;

use std::pin::pin;

use futures_core::Stream as _;
use invoke_proto::{Credentials, Event, InvokeParams};
use invoke_tokio::{Client, ProxyEnv};
use tokio::io::AsyncReadExt as _;
use transport_suite::{Harness, KEY, SECRET};

const INVOCATIONS: usize = 1000;

/// What the emulator's `count` function writes for `n` chunks of `size` bytes
fn count_bytes(n: usize, size: usize) -> Vec<u8> {
    (0..n * size).map(|i| b'a' + (i % 26) as u8).collect()
}

/// Every invocation asks for a different length; half read events, half the reader
async fn thousand(client: Client) {
    let tasks: Vec<_> = (0..INVOCATIONS)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                let (n, size) = (1 + i % 37, 1 + i % 113);
                let params = InvokeParams::new("count", format!(r#"{{"n":{n},"size":{size}}}"#));
                let response = client.invoke(&params).await.expect("invoke");
                let mut payload = Vec::new();
                if i % 2 == 0 {
                    response
                        .into_async_read()
                        .read_to_end(&mut payload)
                        .await
                        .expect("read");
                } else {
                    let mut events = pin!(response);
                    let mut chunks = 0;
                    while let Some(event) =
                        std::future::poll_fn(|cx| events.as_mut().poll_next(cx)).await
                    {
                        match event.expect("event") {
                            Event::PayloadChunk(b) => {
                                chunks += 1;
                                payload.extend_from_slice(&b);
                            }
                            Event::InvokeComplete(c) => assert!(!c.is_error(), "{c:?}"),
                            _ => {}
                        }
                    }
                    assert_eq!(chunks, n, "one event per chunk");
                }
                assert!(payload == count_bytes(n, size), "invocation {i} byte-exact");
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
}

fn run(runtime: &tokio::runtime::Runtime) {
    let harness = Harness::start();
    let client = Client::builder(harness.endpoint())
        .credentials(Credentials::new(KEY, SECRET, None))
        .proxy_env(ProxyEnv::none())
        .build()
        .expect("client");
    runtime.block_on(thousand(client));
}

#[test]
fn thousand_concurrent_invocations_multi_thread() {
    run(&support::runtime());
}

#[test]
fn thousand_concurrent_invocations_current_thread() {
    run(&tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime"));
}
