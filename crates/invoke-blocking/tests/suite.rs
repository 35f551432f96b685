//! The shared transport suite (`transport-suite`) run against this crate, over real
//! loopback sockets to `invoke-emulator`

use std::io::Read as _;

use invoke_blocking::{Client, Error, ProxyEnv, Timeouts};
use invoke_proto::InvokeParams;
use transport_suite::{ClientConfig, Failure, Head, Outcome, ReadOutcome, Transport};

struct Blocking;

fn failure(e: &Error) -> Failure {
    match e {
        Error::Service { error, attempts } => Failure::Service {
            error: (**error).clone(),
            attempts: Some(*attempts),
        },
        Error::Stream(s) => Failure::Stream(s.clone()),
        Error::Function(c) => Failure::Function(c.clone()),
        Error::Transport { kind, attempts, .. } => {
            let mut message = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                message.push_str(": ");
                message.push_str(&s.to_string());
                source = s.source();
            }
            Failure::Transport {
                kind: *kind,
                attempts: Some(*attempts),
                message,
            }
        }
        other => Failure::Other(other.to_string()),
    }
}

impl Transport for Blocking {
    type Client = Client;

    fn client(&self, c: &ClientConfig) -> Client {
        Client::builder(c.endpoint.clone())
            .credentials(c.credentials.clone())
            .retry(c.retry)
            .timeouts(
                Timeouts::default()
                    .with_connect(c.connect_timeout)
                    .with_head(c.head_timeout)
                    .with_idle(c.idle_timeout)
                    .with_overall(c.overall_timeout),
            )
            .proxy_env(ProxyEnv::from_vars(c.proxy_env.clone()))
            .build()
            .expect("client")
    }

    fn invoke(&self, client: &Client, params: &InvokeParams) -> Outcome {
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
        for event in response {
            match event {
                Ok(e) => outcome.events.push(e),
                Err(e) => {
                    outcome.failure = Some(failure(&e));
                    break;
                }
            }
        }
        outcome
    }

    fn read(&self, client: &Client, params: &InvokeParams) -> ReadOutcome {
        let mut bytes = Vec::new();
        let failure = match client.invoke(params) {
            Err(e) => Some((std::io::ErrorKind::Other, failure(&e))),
            Ok(r) => {
                let mut reader = r.into_reader();
                match reader.read_to_end(&mut bytes) {
                    Ok(_) => None,
                    Err(e) => {
                        let f = Error::from_io(&e)
                            .map_or_else(|| Failure::Other(e.to_string()), failure);
                        // The error is sticky: a second read fails again
                        assert!(reader.read(&mut [0; 8]).is_err(), "sticky reader error");
                        Some((e.kind(), f))
                    }
                }
            }
        };
        ReadOutcome { bytes, failure }
    }
}

transport_suite::transport_suite!(Blocking);
