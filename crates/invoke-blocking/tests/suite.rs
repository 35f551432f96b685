//! The shared transport suite (`transport-suite`) run against this crate, over real
//! loopback sockets to `invoke-emulator`

use std::io::Read as _;
use std::sync::Arc;

use invoke_blocking::{Client, Error, Overrides};
use invoke_proto::{Endpoint, InvokeParams};
use transport_suite::{ClientConfig, Failure, Head, Outcome, ReadOutcome, Transport};

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
        pause: &mut dyn FnMut(),
    ) -> Outcome {
        let mut outcome = Outcome::default();
        let response = match client.invoke(params) {
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
                pause();
            }
        }
        outcome
    }

    fn endpoint(&self, client: &Client) -> Endpoint {
        client.endpoint().clone()
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
