//! The end-to-end suite every `InvokeWithResponseStream` transport runs (dev only)
//!
//! A transport implements [`Transport`] in its own tests (make a client from a
//! [`ClientConfig`], invoke and collect an [`Outcome`], read the payload through its
//! reader) and expands [`transport_suite!`], which generates one `#[test]` per case. Every
//! case starts its own [`invoke_emulator::Emulator`] on 127.0.0.1 port 0 (real sockets,
//! SigV4 verified) and asserts what a correct client reports, from the emulator's fault
//! table.
//!
//! ```ignore
//! struct Blocking;
//! impl transport_suite::Transport for Blocking { /* ... */ }
//! transport_suite::transport_suite!(Blocking);
//! ```

pub mod cases;
mod harness;
pub mod proxy;

use std::time::Duration;

use invoke_proto::Endpoint;
use invoke_proto::{
    Credentials, Event, InvokeComplete, InvokeParams, ResponseMeta, RetryConfig, ServiceError,
    StreamError, TransportFailure,
};

pub use harness::{Forwarder, Harness, KEY, SECRET};

/// What a transport's client is made from
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The endpoint (the emulator's, a dead port, a silent listener)
    pub endpoint: Endpoint,
    /// The credentials to sign with
    pub credentials: Credentials,
    /// The retry policy
    pub retry: RetryConfig,
    /// Connect timeout
    pub connect_timeout: Duration,
    /// Timeout for the response head
    pub head_timeout: Duration,
    /// Idle timeout between body bytes
    pub idle_timeout: Duration,
    /// Overall deadline of an invocation
    pub overall_timeout: Duration,
    /// The proxy environment variables the client must honour (and no others)
    pub proxy_env: Vec<(String, String)>,
}

/// What went wrong, in terms every transport can report
#[derive(Debug, Clone)]
pub enum Failure {
    /// The service answered with an error
    Service {
        /// The typed error
        error: ServiceError,
        /// Attempts made, if the transport reports them on errors
        attempts: Option<u32>,
    },
    /// The stream failed (framing, exception, truncation, no `InvokeComplete`)
    Stream(StreamError),
    /// The function failed (from the payload reader)
    Function(InvokeComplete),
    /// The transport failed
    Transport {
        /// What failed
        kind: TransportFailure,
        /// Attempts made, if the transport reports them on errors
        attempts: Option<u32>,
        /// The error's display text, sources included
        message: String,
    },
    /// Anything else, as text
    Other(String),
}

/// The response head as the transport reported it
#[derive(Debug, Clone)]
pub struct Head {
    /// The response metadata
    pub meta: ResponseMeta,
    /// Attempts made until the head arrived
    pub attempts: u32,
    /// HTTP status (200 or 204)
    pub status: u16,
}

/// One invocation as a caller of the event API saw it
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The head, if the invocation got that far
    pub head: Option<Head>,
    /// Every event received, in order
    pub events: Vec<Event>,
    /// The error that ended the invocation, if any
    pub failure: Option<Failure>,
}

impl Outcome {
    /// The payload bytes of all `PayloadChunk` events
    pub fn payload(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for e in &self.events {
            if let Event::PayloadChunk(b) = e {
                out.extend_from_slice(b);
            }
        }
        out
    }

    /// The number of `PayloadChunk` events
    pub fn chunks(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, Event::PayloadChunk(_)))
            .count()
    }

    /// The `InvokeComplete` event, if one came
    pub fn complete(&self) -> Option<&InvokeComplete> {
        self.events.iter().find_map(|e| match e {
            Event::InvokeComplete(c) => Some(c),
            _ => None,
        })
    }
}

/// The payload as a caller of the reader API saw it
#[derive(Debug, Clone)]
pub struct ReadOutcome {
    /// Bytes read before the end or the error
    pub bytes: Vec<u8>,
    /// The error the reader returned, if any, with the `io::ErrorKind` it carried
    pub failure: Option<(std::io::ErrorKind, Failure)>,
}

/// A transport under test
pub trait Transport: Sync {
    /// Its client; shared by 64 threads in one case
    type Client: Send + Sync;

    /// A client for `config`
    fn client(&self, config: &ClientConfig) -> Self::Client;

    /// Invokes and collects every event until the end or the first error
    fn invoke(&self, client: &Self::Client, params: &InvokeParams) -> Outcome;

    /// Invokes and reads the payload through the transport's reader until the end or the
    /// first error
    fn read(&self, client: &Self::Client, params: &InvokeParams) -> ReadOutcome;
}

/// Generates one `#[test]` per case of [`cases`] for a transport value
#[macro_export]
macro_rules! transport_suite {
    ($transport:expr) => {
        $crate::transport_suite!(@cases $transport;
            success_10000_chunks_byte_exact,
            empty_response,
            dry_run,
            log_tail,
            function_error_events,
            function_error_reader,
            throttle_gives_up_after_max_attempts,
            throttle_n_then_success,
            close_after_is_never_a_clean_end,
            corrupt_crc,
            stall_hits_the_idle_timeout,
            overall_deadline,
            oversize,
            exception_mid_stream,
            delay_ms_delivers_every_chunk,
            unknown_function,
            bad_credentials,
            connection_refused_names_the_address,
            head_timeout,
            no_retry_after_the_first_event,
            cut_after_the_head_is_not_retried,
            sixty_four_threads_share_one_client,
            connections_are_reused,
            through_an_http_proxy,
            no_proxy_bypasses_the_proxy,
        );
    };
    (@cases $transport:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::cases::$case(&$transport);
            }
        )*
    };
}
