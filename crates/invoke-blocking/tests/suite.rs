//! The shared transport suite (`transport-suite`) run against this crate, over real
//! loopback sockets to `invoke-emulator`

use std::io::Read as _;
use std::sync::Arc;

use invoke_blocking::{Client, Collected, Error, InvokeOptions, Overrides};
use invoke_proto::{Endpoint, InvokeParams, RateLimiter};
use transport_suite::{ClientConfig, Failure, Head, Outcome, Pause, ReadOutcome, Transport};

struct Blocking;

fn failure(e: &Error) -> Failure {
    Failure::from_client_error(e)
}

impl Transport for Blocking {
    type Client = Client;

    fn client(&self, c: &ClientConfig) -> Client {
        let mut builder = match &c.from_config {
            Some(from) => Client::builder_from_config(&from.shared, &Overrides::new())
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
        let mut outcome = Outcome::default();
        let response = match client.invoke_with(params, options) {
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
        let mut response = response;
        while outcome.take(response.next()) {
            if outcome.events.len() == 1 {
                pause(Pause::FirstEvent);
            }
        }
        pause(Pause::End);
        outcome
    }

    fn read_lines(
        &self,
        client: &Client,
        params: &InvokeParams,
    ) -> (Vec<String>, Option<(std::io::ErrorKind, Failure)>) {
        use std::io::BufRead as _;
        let response = match client.invoke(params) {
            Ok(r) => r,
            Err(e) => return (Vec::new(), Outcome::refused(&e).1.failure),
        };
        let mut lines = Vec::new();
        for line in response.into_reader().lines() {
            match line {
                Ok(line) => lines.push(line),
                Err(e) => return (lines, Some(ReadOutcome::failure_of(&e))),
            }
        }
        (lines, None)
    }

    fn collect(
        &self,
        client: &Client,
        params: &InvokeParams,
        events: usize,
        limit: usize,
    ) -> Result<Collected, Error> {
        let mut response = client.invoke(params)?;
        for _ in 0..events {
            match response.next() {
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => break,
            }
        }
        response.collect_payload_up_to(limit)
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
        client
            .credentials()
            .map(|c| c.map(|c| c.credentials.access_key_id().to_owned()))
            .map_err(|e| e.to_string())
    }

    fn read_after(
        &self,
        client: &Client,
        params: &InvokeParams,
        events: usize,
    ) -> (Outcome, ReadOutcome) {
        let mut response = match client.invoke(params) {
            Ok(r) => r,
            Err(e) => return Outcome::refused(&e),
        };
        let mut outcome = Outcome::default();
        while outcome.events.len() < events && outcome.take(response.next()) {}
        let mut reader = response.into_reader();
        let mut bytes = Vec::new();
        let failure = match reader.read_to_end(&mut bytes) {
            Ok(_) => None,
            Err(e) => {
                // The error is sticky: a second read fails again
                assert!(reader.read(&mut [0; 8]).is_err(), "sticky reader error");
                Some(ReadOutcome::failure_of(&e))
            }
        };
        (outcome, ReadOutcome { bytes, failure })
    }
}

transport_suite::transport_suite!(Blocking);

/// `next_ready` hands out the events already read and returns `None` instead of waiting: the
/// server sends the rest only after it did (a `next_ready` that read would wait out the idle
/// timeout, and the stream would fail)
#[test]
fn next_ready_takes_what_arrived_without_waiting() {
    use invoke_proto::Event;
    use invoke_proto::bytes::Bytes;

    let payload = |s: &'static str| Event::PayloadChunk(Bytes::from_static(s.as_bytes()));
    let (addr, go_tx, server) = transport_suite::cases::three_chunks_then_complete();
    let mut cfg = transport_suite::config(transport_suite::endpoint(&format!("http://{addr}")));
    cfg.idle_timeout = std::time::Duration::from_secs(20);
    let client = Blocking.client(&cfg);
    let mut response = client.invoke(&InvokeParams::new("f", "{}")).unwrap();
    // Debug shows the metadata (the status among it), and a reader its response
    let shown = format!("{response:?}");
    assert!(
        shown.starts_with("Response { info: ") && shown.contains("status: 200"),
        "{shown}"
    );
    assert_eq!(response.next().unwrap().unwrap(), payload("a"));
    assert_eq!(response.next_ready(), Some(payload("b")));
    assert_eq!(response.next_ready(), Some(payload("c")));
    assert_eq!(response.next_ready(), None, "nothing else has arrived");
    go_tx.send(()).unwrap();
    assert!(matches!(
        response.next(),
        Some(Ok(Event::InvokeComplete(c))) if !c.is_error()
    ));
    assert_eq!(response.next_ready(), None);
    assert!(response.next().is_none());
    let reader = response.into_reader();
    let shown = format!("{reader:?}");
    assert!(
        shown.starts_with("PayloadReader { response: Response { info: ")
            && shown.contains("buffered: 0"),
        "{shown}"
    );
    server.join().unwrap();
}
