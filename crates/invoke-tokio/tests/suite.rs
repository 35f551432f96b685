//! The shared transport suite (`transport-suite`) run against this crate, over real
//! loopback sockets to `invoke-emulator`; the suite's blocking calls drive this crate's
//! futures on a multi-thread runtime

mod support;

use std::pin::Pin;
use std::sync::Arc;

use futures_core::Stream as _;
use invoke_proto::{Endpoint, InvokeParams, RateLimiter};
use invoke_tokio::{Client, Collected, Error, InvokeOptions, Overrides};
use tokio::io::AsyncReadExt as _;
use transport_suite::{ClientConfig, Failure, Head, Outcome, Pause, ReadOutcome, Transport};

struct Tokio {
    runtime: tokio::runtime::Runtime,
}

impl Tokio {
    fn new() -> Self {
        let runtime = support::runtime();
        Self { runtime }
    }
}

fn failure(e: &Error) -> Failure {
    Failure::from_client_error(e)
}

impl Transport for Tokio {
    type Client = Client;

    fn client(&self, c: &ClientConfig) -> Client {
        let mut builder = match &c.from_config {
            Some(from) => self
                .runtime
                .block_on(Client::builder_from_config(&from.shared, &Overrides::new()))
                .expect("configuration")
                .file_reader(Arc::clone(&from.fs)),
            None => Client::builder(c.endpoint.clone()).credentials(c.credentials.clone()),
        };
        if let Some(bundle) = &c.ca_bundle {
            builder = builder.ca_bundle(bundle);
        }
        if let Some(retry) = c.retry_override() {
            builder = builder.retry(retry);
        }
        builder
            .timeouts(c.timeouts())
            .proxy_env(c.proxy())
            .build()
            .expect("client")
    }

    fn invoke_pausing(
        &self,
        client: &Client,
        params: &InvokeParams,
        options: &InvokeOptions,
        pause: &mut dyn FnMut(Pause),
    ) -> Outcome {
        self.runtime.block_on(async {
            let mut outcome = Outcome::default();
            let mut response = match client.invoke_with(params, options).await {
                Ok(r) => r,
                Err(e) => {
                    outcome.failure = Some(failure(&e));
                    return outcome;
                }
            };
            outcome.head = Some(Head {
                meta: response.meta().clone(),
                attempts: response.attempts(),
                status: response.status(),
            });
            while outcome.take(response.next_event().await) {
                if outcome.events.len() == 1 {
                    // blocks this thread only: the runtime's workers are free to run
                    // anything the client spawned to read ahead (it spawns nothing)
                    pause(Pause::FirstEvent);
                }
            }
            pause(Pause::End);
            outcome
        })
    }

    fn read_lines(
        &self,
        client: &Client,
        params: &InvokeParams,
    ) -> (Vec<String>, Option<(std::io::ErrorKind, Failure)>) {
        use tokio::io::AsyncBufReadExt as _;
        self.runtime.block_on(async {
            let response = match client.invoke(params).await {
                Ok(r) => r,
                Err(e) => return (Vec::new(), Outcome::refused(&e).1.failure),
            };
            let mut reader = response.into_async_read().lines();
            let mut lines = Vec::new();
            loop {
                match reader.next_line().await {
                    Ok(Some(line)) => lines.push(line),
                    Ok(None) => return (lines, None),
                    Err(e) => return (lines, Some(ReadOutcome::failure_of(&e))),
                }
            }
        })
    }

    fn collect(
        &self,
        client: &Client,
        params: &InvokeParams,
        events: usize,
        limit: usize,
    ) -> Result<Collected, Error> {
        self.runtime.block_on(async {
            let mut response = client.invoke(params).await?;
            for _ in 0..events {
                match response.next_event().await {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e),
                    None => break,
                }
            }
            response.collect_payload_up_to(limit).await
        })
    }

    fn endpoint(&self, client: &Client) -> Endpoint {
        client.endpoint().clone()
    }

    fn retry_quota(&self, client: &Client) -> u32 {
        client.retry_quota_available()
    }

    fn rate_limiter_on(&self, client: &Client) -> Option<bool> {
        client.rate_limiter().map(RateLimiter::is_enabled)
    }

    fn access_key(&self, client: &Client) -> Result<Option<String>, String> {
        self.runtime
            .block_on(client.credentials())
            .map(|c| c.map(|c| c.credentials.access_key_id().to_owned()))
            .map_err(|e| e.to_string())
    }

    fn read_after(
        &self,
        client: &Client,
        params: &InvokeParams,
        events: usize,
    ) -> (Outcome, ReadOutcome) {
        self.runtime.block_on(async {
            let mut response = match client.invoke(params).await {
                Ok(r) => r,
                Err(e) => return Outcome::refused(&e),
            };
            let mut outcome = Outcome::default();
            while outcome.events.len() < events
                && outcome
                    .take(std::future::poll_fn(|cx| Pin::new(&mut response).poll_next(cx)).await)
            {
            }
            let mut reader = response.into_async_read();
            let mut bytes = Vec::new();
            let failure = match reader.read_to_end(&mut bytes).await {
                Ok(_) => None,
                Err(e) => {
                    // The error is sticky: a second read fails again
                    assert!(
                        reader.read(&mut [0; 8]).await.is_err(),
                        "sticky reader error"
                    );
                    Some(ReadOutcome::failure_of(&e))
                }
            };
            (outcome, ReadOutcome { bytes, failure })
        })
    }
}

transport_suite::transport_suite!(Tokio::new());

/// `Debug` shows a response's metadata (its status among it) and a reader its response and
/// what it holds, never the payload
#[test]
fn responses_and_readers_show_their_metadata() {
    let h = transport_suite::Harness::start();
    let t = Tokio::new();
    let c = t.client(&h.config());
    t.runtime.block_on(async {
        let params = InvokeParams::new("echo", r#"{"said":"not-shown"}"#);
        let response = c.invoke(&params).await.expect("invoke");
        let shown = format!("{response:?}");
        assert!(
            shown.starts_with("Response { info: ") && shown.contains("status: 200"),
            "{shown}"
        );
        let mut reader = response.into_async_read();
        let mut first = [0; 1];
        reader.read_exact(&mut first).await.expect("a byte");
        let shown = format!("{reader:?}");
        assert!(
            shown.starts_with("PayloadReader { response: Response { info: ")
                && shown.contains("buffered: ")
                && !shown.contains("buffered: 0")
                && !shown.contains("not-shown"),
            "{shown}"
        );
    });
}

/// `next_ready` hands out the events already read and returns `None` instead of waiting: the
/// server sends the rest only after it did (a `next_ready` that read would never return, as
/// nothing else polls the connection)
#[test]
fn next_ready_takes_what_arrived_without_waiting() {
    use invoke_proto::Event;
    use invoke_proto::bytes::Bytes;

    let payload = |s: &'static str| Event::PayloadChunk(Bytes::from_static(s.as_bytes()));
    let (addr, go_tx, server) = transport_suite::cases::three_chunks_then_complete();
    let tokio = Tokio::new();
    let mut cfg = transport_suite::config(transport_suite::endpoint(&format!("http://{addr}")));
    cfg.idle_timeout = std::time::Duration::from_secs(20);
    let client = tokio.client(&cfg);
    tokio.runtime.block_on(async {
        let mut response = client.invoke(&InvokeParams::new("f", "{}")).await.unwrap();
        assert_eq!(response.next_event().await.unwrap().unwrap(), payload("a"));
        assert_eq!(response.next_ready(), Some(payload("b")));
        assert_eq!(response.next_ready(), Some(payload("c")));
        assert_eq!(response.next_ready(), None, "nothing else has arrived");
        go_tx.send(()).unwrap();
        assert!(matches!(
            response.next_event().await,
            Some(Ok(Event::InvokeComplete(c))) if !c.is_error()
        ));
        assert_eq!(response.next_ready(), None);
        assert!(response.next_event().await.is_none());
    });
    server.join().unwrap();
}
