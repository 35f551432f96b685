//! The end-to-end suite every `InvokeWithResponseStream` transport runs (dev only)
//!
//! A transport implements [`Transport`] in its own tests (make a client from a
//! [`ClientConfig`], invoke and collect an [`Outcome`], read the payload through its
//! reader) and expands [`transport_suite!`], which generates one `#[test]` per case. A
//! case starts its own [`invoke_emulator::Emulator`] on 127.0.0.1 port 0 (real sockets,
//! SigV4 verified) and asserts what a correct client reports, from the emulator's fault
//! table; a few play the server themselves on loopback (a connection refused, a full accept
//! queue for the connect timeout, a head that never comes, a 128 MiB stream that reports
//! when the client stops taking bytes, for backpressure with
//! [`Transport::invoke_pausing`]).
//!
//! Beyond the faults: https against the emulator's TLS listener, trusting its CA through
//! [`ClientConfig::ca_bundle`] or `AWS_CA_BUNDLE` (and a typed certificate error, never
//! retried, without it); a real proxy ([`proxy`]); and credentials fetched by
//! `invoke-config`'s default chain over the transport from a loopback server playing the
//! container endpoint, IMDSv2, STS and the SSO portal ([`metadata`]), with the client built from an
//! in-memory environment and files ([`ClientConfig::from_config`]) and an emulator that
//! accepts only the key that server handed out; and, with no region configured, the region
//! asked of that IMDSv2 ([`Transport::endpoint`]).
//!
//! ```ignore
//! struct Blocking;
//! impl transport_suite::Transport for Blocking { /* ... */ }
//! transport_suite::transport_suite!(Blocking);
//! ```

mod backpressure;
pub mod cases;
mod harness;
pub mod metadata;
pub mod proxy;
pub mod trace;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use invoke_config::{
    ClientError, Collected, Env, FileReader, InvokeOptions, MemFs, ProxyEnv, SharedConfig, Timeouts,
};
use invoke_proto::Endpoint;
use invoke_proto::{
    Credentials, Event, InvokeComplete, InvokeParams, ResponseMeta, RetryConfig, ServiceError,
    StreamError, TransportFailure,
};

pub use harness::{Forwarder, Harness, KEY, SECRET, config, endpoint};

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
    /// A PEM file of CA certificates to trust besides the system's store (`AWS_CA_BUNDLE`)
    pub ca_bundle: Option<PathBuf>,
    /// When set, build the client from `invoke-config` as a program would from its
    /// environment: endpoint, signing region and credentials (the default chain, its HTTP
    /// exchanges over the transport) come from it, and the fields above still apply on top
    /// (retry, unless [`FromConfig::config_retry`]; timeouts, proxy variables, CA bundle);
    /// [`credentials`](Self::credentials) is ignored
    pub from_config: Option<FromConfig>,
}

/// An environment and files to build a client from, as `invoke-config` reads them
#[derive(Clone)]
pub struct FromConfig {
    /// The environment snapshot and the shared files read through [`fs`](Self::fs)
    pub shared: SharedConfig,
    /// The files the credential providers read (web identity token files)
    pub fs: Arc<dyn FileReader>,
    /// The retry policy is the configuration's (`max_attempts`), not
    /// [`ClientConfig::retry`]
    pub config_retry: bool,
}

impl FromConfig {
    /// `env` and the files of `fs` (the shared files among them); the retry policy stays
    /// [`ClientConfig::retry`]
    pub fn new(env: Env, fs: MemFs) -> Self {
        Self {
            shared: SharedConfig::load(env, &fs),
            fs: Arc::new(fs),
            config_retry: false,
        }
    }

    /// The same with the configuration's retry policy
    #[must_use]
    pub fn with_config_retry(mut self) -> Self {
        self.config_retry = true;
        self
    }
}

impl fmt::Debug for FromConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FromConfig")
            .field("shared", &self.shared)
            .field("config_retry", &self.config_retry)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    /// The four timeouts as the transports take them
    pub fn timeouts(&self) -> Timeouts {
        Timeouts::default()
            .with_connect(self.connect_timeout)
            .with_head(self.head_timeout)
            .with_idle(self.idle_timeout)
            .with_overall(self.overall_timeout)
    }

    /// The retry policy to set on the client: [`retry`](Self::retry), unless the client is
    /// built from a configuration whose own policy it keeps ([`FromConfig::config_retry`])
    pub fn retry_override(&self) -> Option<RetryConfig> {
        (!self.from_config.as_ref().is_some_and(|f| f.config_retry)).then_some(self.retry)
    }

    /// The proxy environment as the transports take it
    pub fn proxy(&self) -> ProxyEnv {
        ProxyEnv::from_vars(self.proxy_env.clone())
    }
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
    /// Anything else, as text (sources included, joined by `: `)
    Other(String),
}

impl Failure {
    /// What a transport's error says, in the suite's terms (a transport error's message
    /// has its sources, joined by `: `)
    pub fn from_client_error(e: &ClientError) -> Self {
        match e {
            ClientError::Service { error, attempts } => Self::Service {
                error: (**error).clone(),
                attempts: Some(*attempts),
            },
            ClientError::Stream(s) => Self::Stream(s.clone()),
            ClientError::Function(c) => Self::Function(c.clone()),
            ClientError::Transport { kind, attempts, .. } => Self::Transport {
                kind: *kind,
                attempts: Some(*attempts),
                message: with_sources(e),
            },
            other => Self::Other(with_sources(other)),
        }
    }
}

/// The display text of `e` and of each of its sources, joined by `: `
fn with_sources(e: &ClientError) -> String {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
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

    /// The outcomes of an invocation refused before its head (no events, no payload), for
    /// [`Transport::read_after`]
    pub fn refused(e: &ClientError) -> (Self, ReadOutcome) {
        let events = Self {
            failure: Some(Failure::from_client_error(e)),
            ..Self::default()
        };
        let read = ReadOutcome {
            bytes: Vec::new(),
            failure: Some((std::io::ErrorKind::Other, Failure::from_client_error(e))),
        };
        (events, read)
    }

    /// Takes the next item of the events (`None` once they ended); whether more may follow
    pub fn take(&mut self, item: Option<Result<Event, ClientError>>) -> bool {
        match item {
            Some(Ok(e)) => {
                self.events.push(e);
                true
            }
            Some(Err(e)) => {
                self.failure = Some(Failure::from_client_error(&e));
                false
            }
            None => false,
        }
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

impl ReadOutcome {
    /// What a payload reader's error says: its kind, and the transport's error inside it (or
    /// its text)
    pub fn failure_of(e: &std::io::Error) -> (std::io::ErrorKind, Failure) {
        let failure = ClientError::from_io(e)
            .map_or_else(|| Failure::Other(e.to_string()), Failure::from_client_error);
        (e.kind(), failure)
    }
}

/// Where [`Transport::invoke_pausing`] pauses
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pause {
    /// Right after the first event
    FirstEvent,
    /// After the events ended (the last one taken, or the error), the response still held
    End,
}

/// A transport under test
pub trait Transport: Sync {
    /// Its client; shared by 64 threads in one case
    type Client: Send + Sync;

    /// A client for `config`, honouring every field (the CA bundle and
    /// [`from_config`](ClientConfig::from_config) included)
    fn client(&self, config: &ClientConfig) -> Self::Client;

    /// Invokes and collects every event until the end or the first error
    fn invoke(&self, client: &Self::Client, params: &InvokeParams) -> Outcome {
        self.invoke_with(client, params, &InvokeOptions::new())
    }

    /// As [`invoke`](Self::invoke), with `options` for this call (the client's
    /// `invoke_with`)
    fn invoke_with(
        &self,
        client: &Self::Client,
        params: &InvokeParams,
        options: &InvokeOptions,
    ) -> Outcome {
        self.invoke_pausing(client, params, options, &mut |_| {})
    }

    /// As [`invoke_with`](Self::invoke_with), calling `pause` right after the first event
    /// arrived ([`Pause::FirstEvent`]) and once the events ended, with an error or not
    /// ([`Pause::End`], not when the call failed before its head); the response is held
    /// but neither read nor polled while `pause` runs
    fn invoke_pausing(
        &self,
        client: &Self::Client,
        params: &InvokeParams,
        options: &InvokeOptions,
        pause: &mut dyn FnMut(Pause),
    ) -> Outcome;

    /// Invokes and reads the payload through the transport's reader until the end or the
    /// first error
    fn read(&self, client: &Self::Client, params: &InvokeParams) -> ReadOutcome {
        self.read_after(client, params, 0).1
    }

    /// Invokes, takes up to `events` items from the events (fewer when they end or fail
    /// first), then makes the payload reader of the same response and reads it until the end
    /// or the first error; the reader's error must be sticky
    fn read_after(
        &self,
        client: &Self::Client,
        params: &InvokeParams,
        events: usize,
    ) -> (Outcome, ReadOutcome);

    /// Invokes and reads the payload as lines through the transport's buffered reader
    /// (`BufRead::lines`, `AsyncBufReadExt::lines`) until the end or the first error
    fn read_lines(
        &self,
        client: &Self::Client,
        params: &InvokeParams,
    ) -> (Vec<String>, Option<(std::io::ErrorKind, Failure)>);

    /// Invokes, takes up to `events` items from the events (fewer when they end first),
    /// then gathers the rest with the response's `collect_payload_up_to(limit)`
    ///
    /// # Errors
    ///
    /// The client's error: the invocation's, or the collect's.
    fn collect(
        &self,
        client: &Self::Client,
        params: &InvokeParams,
        events: usize,
        limit: usize,
    ) -> Result<Collected, ClientError>;

    /// The endpoint `client` sends to, with the region it signs for
    fn endpoint(&self, client: &Self::Client) -> Endpoint;

    /// Tokens left in `client`'s retry quota
    fn retry_quota(&self, client: &Self::Client) -> u32;

    /// Whether a throttle turned on `client`'s rate limiter (the `adaptive` retry mode);
    /// `None` when it has none
    fn rate_limiter_on(&self, client: &Self::Client) -> Option<bool>;

    /// The access key `client` signs with now (its `credentials()`), `None` when it does not
    /// sign
    ///
    /// # Errors
    ///
    /// The text of the client's error when it has no credentials.
    fn access_key(&self, client: &Self::Client) -> Result<Option<String>, String>;
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
            a_reader_made_after_some_events_reads_the_rest,
            a_reader_made_after_a_function_error_fails,
            a_reader_made_after_an_error_fails,
            the_buffered_reader_reads_lines_across_chunks,
            collect_payload_gathers_the_whole_payload,
            throttle_gives_up_after_max_attempts,
            throttle_n_then_success,
            invoke_options_change_one_call,
            invoke_options_send_their_trace,
            a_clock_behind_the_service_is_corrected,
            invoke_options_sign_with_their_credentials,
            close_after_is_never_a_clean_end,
            corrupt_crc,
            stall_hits_the_idle_timeout,
            overall_deadline,
            timeouts_without_limit,
            oversize,
            exception_mid_stream,
            end_early_is_never_a_clean_end,
            delay_ms_delivers_every_chunk,
            a_stream_never_idle_for_the_idle_timeout_is_not_cut,
            unknown_function,
            bad_credentials,
            an_error_body_in_two_writes_is_read_whole,
            an_error_body_is_read_up_to_its_limit,
            a_stalled_error_body_is_judged_by_its_head,
            connection_refused_names_the_address,
            connect_timeout_names_the_address,
            a_connection_cut_during_the_tls_handshake_is_retried,
            a_server_closing_each_connection_after_the_tls_handshake_is_one_per_attempt,
            a_tls_handshake_never_answered_is_a_connect_timeout,
            head_timeout,
            a_peer_closing_or_not_speaking_http_before_the_head,
            a_server_that_never_reads_the_payload_is_a_head_timeout,
            a_server_reading_the_payload_slowly_is_a_head_timeout,
            a_body_ended_shortly_after_invoke_complete_keeps_its_connection,
            bytes_after_invoke_complete_are_drained_up_to_a_limit,
            a_body_held_open_after_invoke_complete_is_not_waited_for,
            a_body_held_open_after_a_wait_and_invoke_complete_is_not_waited_for,
            a_body_dribbling_trailers_after_invoke_complete_is_not_waited_for,
            a_tls_record_dribbled_after_invoke_complete_is_not_waited_for,
            no_retry_after_the_first_event,
            cut_after_the_head_is_not_retried,
            a_paused_reader_holds_the_server_back,
            sixty_four_threads_share_one_client,
            connections_are_reused,
            a_failed_stream_closes_its_connection_at_once,
            a_pooled_connection_the_server_closed_is_replaced,
            through_an_http_proxy,
            through_an_https_proxy,
            no_proxy_bypasses_the_proxy,
            spans_carry_the_invocation_and_never_secrets_or_payloads,
            https_through_an_http_proxy,
            a_proxy_answering_connect_a_byte_at_a_time_is_cut,
            a_proxy_refusing_the_tunnel_is_not_retried,
            https_with_the_ca_bundle_streams_byte_exact,
            https_with_aws_ca_bundle_from_config,
            https_without_the_ca_bundle_is_a_certificate_error,
            the_system_trust_store_is_read,
            credentials_from_the_container_endpoint,
            credential_answers_are_read_up_to_their_limit,
            credential_loading_is_cut_at_the_overall_deadline,
            a_hanging_credential_process_is_killed_at_the_overall_deadline,
            credentials_from_instance_metadata,
            region_from_instance_metadata,
            region_from_instance_metadata_only_when_nothing_sets_one,
            requests_name_the_client,
            requests_name_the_app,
            endpoint_region_and_attempts_come_from_the_config,
            the_adaptive_retry_mode_turns_its_limiter_on_at_a_throttle,
            credentials_from_sts_assume_role,
            credentials_from_sts_web_identity,
            credentials_from_sts_through_the_proxy,
            credentials_from_the_sso_portal,
            an_expired_sso_token_is_refreshed,
            credential_exchanges_are_traced_without_their_secrets,
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
