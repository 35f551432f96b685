//! The cases; each takes the transport under test
//!
//! Expected outcomes follow the emulator's fault table. Names: `t` transport, `h` harness,
//! `c` client, `o` outcome, `r` read outcome.
#![allow(clippy::many_single_char_names)]

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use invoke_config::{COLLECT_LIMIT, ClientError, Env, FileReader, InvokeOptions, MemFs};
use invoke_proto::{
    DEFAULT_RETRY_QUOTA, DecodeError, Event, InvocationType, InvokeComplete, InvokeParams, Limits,
    LogType, MAX_PAYLOAD_LEN, RETRY_COST, RetryConfig, Scheme, StreamError, TransportFailure,
};

use crate::ClientConfig;
use crate::backpressure::{MESSAGE, MESSAGES, StreamServer, Writes};
use crate::harness::{STREAMER_CHUNK, STREAMER_CHUNKS, config, endpoint, streamer_byte};
use crate::metadata::{self, MetadataServer};
use crate::proxy::{Tinyproxy, TlsProxy};
use crate::{Failure, Forwarder, FromConfig, Harness, Outcome, Pause, Transport};

fn count_bytes(n: usize, size: usize) -> Vec<u8> {
    (0..n * size).map(|i| b'a' + (i % 26) as u8).collect()
}

fn streamer_bytes() -> Vec<u8> {
    (0..STREAMER_CHUNKS * STREAMER_CHUNK)
        .map(streamer_byte)
        .collect()
}

fn count(n: usize, size: usize) -> InvokeParams {
    InvokeParams::new("count", format!(r#"{{"n":{n},"size":{size}}}"#))
}

/// Starts an emulator, makes a default client, invokes `function` with `{}`
fn invoke_function<T: Transport>(t: &T, function: &str) -> (Harness, T::Client, Outcome) {
    let h = Harness::start();
    let c = t.client(&h.config());
    let o = t.invoke(&c, &InvokeParams::new(function, "{}"));
    (h, c, o)
}

#[track_caller]
fn assert_success(o: &Outcome) {
    assert!(o.failure.is_none(), "failed: {:?}", o.failure);
    let complete = o.complete().expect("InvokeComplete");
    assert!(!complete.is_error(), "{complete:?}");
    assert!(
        matches!(o.events.last(), Some(Event::InvokeComplete(_))),
        "InvokeComplete is the last event"
    );
}

/// The message of the transport failure that ended `o`, after checking its kind and the
/// attempts made
#[track_caller]
fn transport_failure(o: &Outcome, kind: TransportFailure, attempts: u32) -> &str {
    match &o.failure {
        Some(Failure::Transport {
            kind: k,
            attempts: made,
            message,
        }) if *k == kind => {
            assert_eq!(*made, Some(attempts), "attempts before the {kind} failure");
            message
        }
        other => panic!("not {kind}: {other:?}"),
    }
}

/// The first chunk of a `streamer-*` function arrived as an event
#[track_caller]
fn assert_first_chunk(o: &Outcome) {
    assert!(o.chunks() >= 1, "the first chunk arrives before the fault");
    assert_eq!(o.payload(), &streamer_bytes()[..o.payload().len()]);
    assert!(o.complete().is_none(), "no InvokeComplete after a fault");
}

/// 10,000 `PayloadChunk`s of 100 bytes, each its own event, byte-exact
pub fn success_10000_chunks_byte_exact<T: Transport>(t: &T) {
    let h = Harness::start();
    let c = t.client(&h.config());
    let o = t.invoke(&c, &count(10_000, 100));
    assert_success(&o);
    assert_eq!(o.chunks(), 10_000);
    assert!(o.payload() == count_bytes(10_000, 100), "byte-exact");
    let head = o.head.expect("head");
    assert_eq!(head.status, 200);
    assert_eq!(head.attempts, 1);
    assert_eq!(head.meta.executed_version.as_deref(), Some("$LATEST"));
    assert!(head.meta.request_id.is_some());
    let r = t.read(&c, &count(10_000, 100));
    assert!(r.failure.is_none(), "{:?}", r.failure);
    assert!(r.bytes == count_bytes(10_000, 100), "reader byte-exact");
}

/// A function that writes nothing: only `InvokeComplete`, and an empty read
pub fn empty_response<T: Transport>(t: &T) {
    let (_h, c, o) = invoke_function(t, "empty");
    assert_success(&o);
    assert_eq!(o.events.len(), 1, "{:?}", o.events);
    let r = t.read(&c, &InvokeParams::new("empty", "{}"));
    assert!(r.failure.is_none() && r.bytes.is_empty(), "{r:?}");
}

/// `DryRun`: 204, no events, no error
pub fn dry_run<T: Transport>(t: &T) {
    let h = Harness::start();
    let c = t.client(&h.config());
    let p = InvokeParams::new("echo", "{}").invocation_type(InvocationType::DryRun);
    let o = t.invoke(&c, &p);
    assert!(o.failure.is_none(), "{:?}", o.failure);
    assert_eq!(o.head.expect("head").status, 204);
    assert!(o.events.is_empty());
    let r = t.read(&c, &p);
    assert!(r.failure.is_none() && r.bytes.is_empty(), "{r:?}");
}

/// `LogType: Tail` returns the log in `InvokeComplete`
pub fn log_tail<T: Transport>(t: &T) {
    let h = Harness::start();
    let c = t.client(&h.config());
    let o = t.invoke(
        &c,
        &InvokeParams::new("logger", "{}").log_type(LogType::Tail),
    );
    assert_success(&o);
    assert_eq!(o.payload(), b"logged");
    let log = o.complete().unwrap().decoded_log().unwrap().expect("log");
    assert!(
        String::from_utf8_lossy(&log).contains("hello from the log"),
        "{log:?}"
    );
}

/// A function error is an `InvokeComplete` event with `ErrorCode`, after the chunks
pub fn function_error_events<T: Transport>(t: &T) {
    let h = Harness::start();
    let c = t.client(&h.config());
    let o = t.invoke(&c, &InvokeParams::new("fail", r#"{"after":2}"#));
    assert!(o.failure.is_none(), "{:?}", o.failure);
    assert_eq!(o.payload(), b"chunk\nchunk\n");
    let done = o.complete().expect("InvokeComplete");
    assert_eq!(done.error_code.as_deref(), Some("Unhandled"));
    assert!(
        done.error_details
            .as_deref()
            .unwrap()
            .contains("failed after 2 chunks")
    );
}

/// ... and an error (not EOF) from the reader, after the bytes, with `ErrorCode` reachable
pub fn function_error_reader<T: Transport>(t: &T) {
    let h = Harness::start();
    let c = t.client(&h.config());
    let r = t.read(&c, &InvokeParams::new("fail", r#"{"after":2}"#));
    assert_eq!(r.bytes, b"chunk\nchunk\n");
    match r.failure {
        Some((_, Failure::Function(done))) => {
            assert_eq!(done.error_code.as_deref(), Some("Unhandled"));
            assert!(done.error_details.is_some());
        }
        other => panic!("not a function error: {other:?}"),
    }
}

/// `collect_payload`: a payload of many chunks whole and byte-exact, and the log tail with
/// it; the limit to the byte (a payload fits a limit of its own size, one byte less is
/// `PayloadTooLarge`, and the client goes on); the rest of the payload once some events were
/// taken, `EventsEnded` once all were; a function error and a cut stream are errors
pub fn collect_payload_gathers_the_whole_payload<T: Transport>(t: &T) {
    let h = Harness::start();
    let c = t.client(&h.config());
    let got = t
        .collect(&c, &count(1000, 100), 0, COLLECT_LIMIT)
        .expect("collected");
    assert!(got.payload == count_bytes(1000, 100), "byte-exact");
    assert!(!got.complete.is_error(), "{:?}", got.complete);
    let logged = InvokeParams::new("logger", "{}").log_type(LogType::Tail);
    let got = t.collect(&c, &logged, 0, COLLECT_LIMIT).expect("collected");
    assert_eq!(got.payload, "logged");
    let log = got.complete.decoded_log().unwrap().expect("log");
    assert!(
        String::from_utf8_lossy(&log).contains("hello from the log"),
        "{log:?}"
    );

    let total = 1000 * 100;
    let got = t.collect(&c, &count(1000, 100), 0, total).expect("fits");
    assert_eq!(got.payload.len(), total);
    match t.collect(&c, &count(1000, 100), 0, total - 1) {
        Err(ClientError::PayloadTooLarge { limit }) => assert_eq!(limit, total - 1),
        other => panic!("not PayloadTooLarge: {other:?}"),
    }
    let got = t
        .collect(&c, &count(3, 5), 0, 15)
        .expect("the client goes on");
    assert_eq!(got.payload, count_bytes(3, 5));

    let got = t
        .collect(&c, &count(10, 100), 4, COLLECT_LIMIT)
        .expect("the rest");
    assert_eq!(got.payload, count_bytes(10, 100)[400..]);
    match t.collect(&c, &count(2, 10), 100, COLLECT_LIMIT) {
        Err(ClientError::EventsEnded) => {}
        other => panic!("not EventsEnded: {other:?}"),
    }

    match t.collect(&c, &InvokeParams::new("fail", r#"{"after":2}"#), 0, 100) {
        Err(ClientError::Function(done)) => {
            assert_eq!(done.error_code.as_deref(), Some("Unhandled"));
            assert!(
                done.error_details
                    .unwrap()
                    .contains("failed after 2 chunks")
            );
        }
        other => panic!("not a function error: {other:?}"),
    }
    let cut = InvokeParams::new("streamer-end-early", "{}");
    match t.collect(&c, &cut, 0, COLLECT_LIMIT) {
        Err(ClientError::Stream(StreamError::MissingInvokeComplete { chunks: 1, .. })) => {}
        other => panic!("not a missing InvokeComplete: {other:?}"),
    }
}

/// The buffered reader (`fill_buf` over the chunks as they arrive): lines cut across
/// chunks come whole, the last one without its line break too; a function error after
/// two lines is an error after them, a stream cut short one after what arrived
pub fn the_buffered_reader_reads_lines_across_chunks<T: Transport>(t: &T) {
    let h = Harness::start();
    let c = t.client(&h.config());
    let (lines, failure) = t.read_lines(&c, &InvokeParams::new("lines", "{}"));
    assert!(failure.is_none(), "{failure:?}");
    assert_eq!(lines, ["one", "two", "", "three", "four"]);
    let expected = crate::harness::LINES_CHUNKS.concat();
    assert_eq!(lines.join("\n"), expected.trim_end_matches('\n'));

    let (lines, failure) = t.read_lines(&c, &InvokeParams::new("fail", r#"{"after":2}"#));
    assert_eq!(lines, ["chunk", "chunk"]);
    match failure {
        Some((_, Failure::Function(done))) => {
            assert_eq!(done.error_code.as_deref(), Some("Unhandled"));
        }
        other => panic!("not a function error: {other:?}"),
    }

    // cut mid-stream: truncated, or the connection's failure (see
    // `close_after_is_never_a_clean_end`), never the end of the lines
    let (_, failure) = t.read_lines(&c, &InvokeParams::new("streamer-close", "{}"));
    match failure {
        Some((_, Failure::Stream(_) | Failure::Transport { .. })) => {}
        other => panic!("a cut stream ended without its error: {other:?}"),
    }
}

/// A reader made after the first events were taken reads the payload of the rest, and
/// ends cleanly after a successful `InvokeComplete`
pub fn a_reader_made_after_some_events_reads_the_rest<T: Transport>(t: &T) {
    let h = Harness::start();
    let c = t.client(&h.config());
    let params = InvokeParams::new("count", r#"{"n":3,"size":4}"#);
    let (o, r) = t.read_after(&c, &params, 1);
    assert_eq!(o.payload(), b"abcd", "{o:?}");
    assert!(o.failure.is_none(), "{o:?}");
    assert_eq!(r.bytes, b"efghijkl");
    assert!(r.failure.is_none(), "{r:?}");
}

/// A reader made after the events handed out a function error's `InvokeComplete` fails: the
/// caller has seen the end, but the payload did not end well (never a clean EOF)
pub fn a_reader_made_after_a_function_error_fails<T: Transport>(t: &T) {
    let h = Harness::start();
    let c = t.client(&h.config());
    let (o, r) = t.read_after(&c, &InvokeParams::new("fail", r#"{"after":2}"#), 10);
    assert!(
        o.complete().is_some_and(InvokeComplete::is_error),
        "the events end with the function error: {o:?}"
    );
    assert!(r.bytes.is_empty(), "{r:?}");
    match r.failure {
        Some((ErrorKind::Other, Failure::Other(message))) => {
            assert!(message.contains("Unhandled"), "{message}");
        }
        other => panic!("the reader did not fail with the function error: {other:?}"),
    }
}

/// A reader made after the events ended with an error (a broken CRC) fails with it, again
/// on every read, instead of ending cleanly
pub fn a_reader_made_after_an_error_fails<T: Transport>(t: &T) {
    let h = Harness::start();
    let c = t.client(&h.config());
    let (o, r) = t.read_after(&c, &InvokeParams::new("streamer-crc", "{}"), 10);
    let Some(Failure::Stream(seen)) = &o.failure else {
        panic!("the events do not end with the stream error: {o:?}");
    };
    match r.failure {
        Some((ErrorKind::UnexpectedEof, Failure::Other(message))) => {
            assert!(message.contains(&seen.to_string()), "{message}");
        }
        other => panic!("the reader did not fail with the stream error: {other:?}"),
    }
}

/// `throttle`: 429 every time; retried until the attempts run out, `Retry-After` kept
pub fn throttle_gives_up_after_max_attempts<T: Transport>(t: &T) {
    let (h, _c, o) = invoke_function(t, "streamer-throttle");
    assert!(o.head.is_none());
    match o.failure {
        Some(Failure::Service { error, attempts }) => {
            assert_eq!(error.code, "TooManyRequestsException");
            assert_eq!(error.status, Some(429));
            assert!(error.is_retryable());
            assert_eq!(error.retry_after(), Some(Duration::from_secs(1)));
            assert_eq!(attempts, Some(3), "3 attempts by default");
        }
        other => panic!("not a throttling error: {other:?}"),
    }
    assert_eq!(
        h.invocations(),
        0,
        "a throttled request never runs the function"
    );
}

/// `throttle=2`: two 429s, then success on the third attempt; the client's retry quota paid
/// for both retries, and the success gave back what the last one took
pub fn throttle_n_then_success<T: Transport>(t: &T) {
    let h = Harness::start();
    let c = t.client(&h.config());
    assert_eq!(t.retry_quota(&c), DEFAULT_RETRY_QUOTA);
    let o = t.invoke(&c, &InvokeParams::new("streamer-throttle2", "{}"));
    assert_success(&o);
    assert_eq!(o.payload(), streamer_bytes());
    assert_eq!(o.head.expect("head").attempts, 3);
    assert_eq!(h.invocations(), 1);
    assert_eq!(t.retry_quota(&c), DEFAULT_RETRY_QUOTA - RETRY_COST);
}

/// `invoke_with`: one call's attempts and timeouts (overall, in either direction, idle, head,
/// connect) differ from the client's, and the client's hold again for the next call
pub fn invoke_options_change_one_call<T: Transport>(t: &T) {
    let h = Harness::start();
    let mut cfg = h.config();
    cfg.overall_timeout = Duration::from_secs(2);
    let c = t.client(&cfg);

    // one attempt where the client makes three: the first of two throttles ends the call
    let once = InvokeOptions::new().max_attempts(1);
    let o = t.invoke_with(&c, &InvokeParams::new("streamer-throttle2", "{}"), &once);
    match o.failure {
        Some(Failure::Service { error, attempts }) => {
            assert_eq!(error.code, "TooManyRequestsException");
            assert_eq!(attempts, Some(1), "one attempt, as the options say");
        }
        other => panic!("not a throttling error: {other:?}"),
    }
    // the next call has the client's three attempts: the throttle left, then success
    let o = t.invoke(&c, &InvokeParams::new("streamer-throttle2", "{}"));
    assert_success(&o);
    assert_eq!(o.head.expect("head").attempts, 2);

    // longer than the client's 2 s: a function silent for 2.5 s between its two chunks ends
    // well, byte-exact (no read is cut by a timeout derived from the client's 2 s)
    let slow = InvokeParams::new("count", r#"{"n":2,"size":10,"delay_ms":2500}"#);
    let longer = InvokeOptions::new().timeout(Duration::from_secs(60));
    let o = t.invoke_with(&c, &slow, &longer);
    assert_success(&o);
    assert!(o.payload() == count_bytes(2, 10), "byte-exact");
    // shorter: a function that takes half a second is cut at the call's 100 ms
    let quick = InvokeParams::new("count", r#"{"n":2,"size":10,"delay_ms":500}"#);
    let shorter = InvokeOptions::new().timeout(Duration::from_millis(100));
    let o = t.invoke_with(&c, &quick, &shorter);
    match &o.failure {
        Some(Failure::Transport { kind, .. }) => assert_eq!(*kind, TransportFailure::Deadline),
        other => panic!("not the call's deadline: {other:?}"),
    }

    // the idle timeout: a stalled stream ends at the call's (the client's is a minute, so
    // the client's 2 s deadline would end it otherwise)
    let stalls = InvokeParams::new("streamer-stall", "{}");
    let idle = InvokeOptions::new().idle_timeout(Duration::from_millis(300));
    let o = t.invoke_with(&c, &stalls, &idle);
    assert_first_chunk(&o);
    match &o.failure {
        Some(Failure::Transport { kind, .. }) => {
            assert_eq!(*kind, TransportFailure::IdleTimeout);
        }
        other => panic!("not the call's idle timeout: {other:?}"),
    }
    // the head and connect timeouts: each of two attempts ends at the call's 200 ms (the
    // client's are a minute, so its 2 s deadline would end the call instead, after one)
    let times_out = |addr: SocketAddr, options: InvokeOptions, kind| {
        let mut cfg = config(endpoint(&format!("http://{addr}")));
        cfg.overall_timeout = Duration::from_secs(2);
        let c = t.client(&cfg);
        let options = options.max_attempts(2);
        let o = t.invoke_with(&c, &InvokeParams::new("echo", "{}"), &options);
        transport_failure(&o, kind, 2);
    };
    let ms200 = Duration::from_millis(200);
    // a server that never answers
    let head = InvokeOptions::new().head_timeout(ms200);
    times_out(
        never_answering_server(),
        head,
        TransportFailure::HeadTimeout,
    );
    // a listener whose accept queue is full never answers the TCP handshake
    let listener = loopback_listener(0, |_| {});
    let addr = listener.local_addr().unwrap();
    let _filler = std::net::TcpStream::connect(addr).unwrap();
    let connect = InvokeOptions::new().connect_timeout(ms200);
    times_out(addr, connect, TransportFailure::ConnectTimeout);
}

/// `close-after`: the connection is cut mid-stream: an error, never a clean end
pub fn close_after_is_never_a_clean_end<T: Transport>(t: &T) {
    let (_h, c, o) = invoke_function(t, "streamer-close");
    assert_first_chunk(&o);
    match &o.failure {
        Some(
            Failure::Stream(StreamError::Decode(DecodeError::Truncated { .. }))
            | Failure::Transport {
                kind: TransportFailure::BodyRead,
                ..
            },
        ) => {}
        other => panic!("not a truncation: {other:?}"),
    }
    let r = t.read(&c, &InvokeParams::new("streamer-close", "{}"));
    assert!(r.failure.is_some(), "the reader fails too");
    assert_eq!(r.bytes, &streamer_bytes()[..r.bytes.len()]);
}

/// `corrupt-crc`: `MessageCrc` at offset 0, no event
pub fn corrupt_crc<T: Transport>(t: &T) {
    let (h, _c, o) = invoke_function(t, "streamer-crc");
    assert!(o.events.is_empty(), "{:?}", o.events);
    match &o.failure {
        Some(Failure::Stream(StreamError::Decode(DecodeError::MessageCrc {
            offset: 0, ..
        }))) => {}
        other => panic!("not a MessageCrc at 0: {other:?}"),
    }
    assert_eq!(h.invocations(), 1, "a corrupt stream is not retried");
}

/// Invokes the stalling function with `cfg`: the first chunk, then a timeout of `kind`
fn stalled<T: Transport>(
    t: &T,
    h: &Harness,
    cfg: &crate::ClientConfig,
    kind: TransportFailure,
) -> T::Client {
    let c = t.client(cfg);
    let o = t.invoke(&c, &InvokeParams::new("streamer-stall", "{}"));
    assert_first_chunk(&o);
    match &o.failure {
        Some(Failure::Transport { kind: k, .. }) if *k == kind => {}
        other => panic!("not {kind}: {other:?}"),
    }
    assert_eq!(
        h.invocations(),
        1,
        "a timeout after the first event is not retried"
    );
    c
}

/// `stall`: half a frame, then silence: the idle timeout ends it as an error
pub fn stall_hits_the_idle_timeout<T: Transport>(t: &T) {
    let h = Harness::start();
    let mut cfg = h.config();
    cfg.idle_timeout = Duration::from_secs(1); // long enough for the first chunk on a busy machine
    let c = stalled(t, &h, &cfg, TransportFailure::IdleTimeout);
    let r = t.read(&c, &InvokeParams::new("streamer-stall", "{}"));
    assert_eq!(r.failure.expect("reader fails").0, ErrorKind::TimedOut);
}

/// The overall deadline ends a stalled stream even when the idle timeout would not
pub fn overall_deadline<T: Transport>(t: &T) {
    let h = Harness::start();
    let mut cfg = h.config();
    cfg.overall_timeout = Duration::from_millis(1500);
    stalled(t, &h, &cfg, TransportFailure::Deadline);
}

/// `Duration::MAX` for every timeout means no limit, not a panic when a deadline is computed:
/// a stream that waits between chunks, a reader, and an error body all go through
pub fn timeouts_without_limit<T: Transport>(t: &T) {
    let h = Harness::start();
    let mut cfg = h.config();
    cfg.connect_timeout = Duration::MAX;
    cfg.head_timeout = Duration::MAX;
    cfg.idle_timeout = Duration::MAX;
    cfg.overall_timeout = Duration::MAX;
    let c = t.client(&cfg);
    let waits = InvokeParams::new("count", r#"{"n":3,"size":10,"delay_ms":20}"#);
    let o = t.invoke(&c, &waits);
    assert_success(&o);
    assert!(o.payload() == count_bytes(3, 10), "byte-exact");
    let r = t.read(&c, &waits);
    assert!(r.failure.is_none(), "{:?}", r.failure);
    assert!(r.bytes == count_bytes(3, 10), "reader byte-exact");
    let o = t.invoke(&c, &InvokeParams::new("no-such-function", "{}"));
    match o.failure {
        Some(Failure::Service { error, .. }) => {
            assert_eq!(error.code, "ResourceNotFoundException");
        }
        other => panic!("not ResourceNotFound: {other:?}"),
    }
}

/// `oversize`: a prelude announcing 25 MiB is refused at once (`LimitExceeded`), without
/// waiting for its bytes
pub fn oversize<T: Transport>(t: &T) {
    let (_h, _c, o) = invoke_function(t, "streamer-oversize");
    assert_first_chunk(&o);
    match &o.failure {
        Some(Failure::Stream(StreamError::Decode(DecodeError::LimitExceeded { max, .. }))) => {
            assert_eq!(*max, Limits::default().max_message_len);
        }
        other => panic!("not LimitExceeded: {other:?}"),
    }
}

/// `exception`: a terminal in-stream `ServiceException` after the first chunk
pub fn exception_mid_stream<T: Transport>(t: &T) {
    let (h, _c, o) = invoke_function(t, "streamer-exception");
    assert_first_chunk(&o);
    match &o.failure {
        Some(Failure::Stream(StreamError::Exception(e))) => {
            assert_eq!(e.code, "ServiceException");
        }
        other => panic!("not an in-stream exception: {other:?}"),
    }
    assert_eq!(h.invocations(), 1, "never retried after the first event");
}

/// `end-early`: the body ends cleanly after the first chunk, without `InvokeComplete`: an
/// error that says so, never a clean end, and never retried
pub fn end_early_is_never_a_clean_end<T: Transport>(t: &T) {
    let (h, c, o) = invoke_function(t, "streamer-end-early");
    assert_first_chunk(&o);
    assert_eq!(o.chunks(), 1);
    match &o.failure {
        Some(Failure::Stream(StreamError::MissingInvokeComplete { chunks: 1, .. })) => {}
        other => panic!("not a missing InvokeComplete: {other:?}"),
    }
    assert_eq!(h.invocations(), 1, "never retried after the first event");
    let r = t.read(&c, &InvokeParams::new("streamer-end-early", "{}"));
    assert!(r.failure.is_some(), "the reader fails too");
    assert_eq!(r.bytes, &streamer_bytes()[..r.bytes.len()]);
}

/// `delay-ms`: slow chunks all arrive, each as its own event
pub fn delay_ms_delivers_every_chunk<T: Transport>(t: &T) {
    let (_h, _c, o) = invoke_function(t, "streamer-delay");
    assert_success(&o);
    assert_eq!(o.chunks(), STREAMER_CHUNKS);
    assert_eq!(o.payload(), streamer_bytes());
}

/// A stream slower in all than the idle timeout but never silent that long is not cut:
/// eight chunks 200 ms apart (1.6 s) within an idle timeout of 700 ms; the timer set when
/// the body first waited is moved on by the bytes that came since, not taken as silence
pub fn a_stream_never_idle_for_the_idle_timeout_is_not_cut<T: Transport>(t: &T) {
    let h = Harness::start();
    let mut cfg = h.config();
    cfg.idle_timeout = Duration::from_millis(700);
    let c = t.client(&cfg);
    let params = InvokeParams::new("count", r#"{"n":8,"size":10,"delay_ms":200}"#);
    let o = t.invoke(&c, &params);
    assert_success(&o);
    assert_eq!(o.payload(), count_bytes(8, 10));
}

/// An unknown function: `ResourceNotFoundException`, not retried
pub fn unknown_function<T: Transport>(t: &T) {
    let (_h, _c, o) = invoke_function(t, "no-such-function");
    match o.failure {
        Some(Failure::Service { error, attempts }) => {
            assert_eq!(error.code, "ResourceNotFoundException");
            assert_eq!(error.status, Some(404));
            assert!(error.request_id.is_some());
            assert_eq!(attempts, Some(1));
        }
        other => panic!("not ResourceNotFound: {other:?}"),
    }
}

/// A wrong secret and an unknown key: the service's 403s, not retried
pub fn bad_credentials<T: Transport>(t: &T) {
    let h = Harness::start();
    for (key, code) in [
        (crate::KEY, "InvalidSignatureException"),
        ("AKIDUNKNOWN", "UnrecognizedClientException"),
    ] {
        let mut cfg = h.config();
        cfg.credentials = invoke_proto::Credentials::new(key, "wrong-secret", None);
        let c = t.client(&cfg);
        let o = t.invoke(&c, &InvokeParams::new("echo", "{}"));
        match o.failure {
            Some(Failure::Service { error, attempts }) => {
                assert_eq!(error.code, code);
                assert_eq!(error.status, Some(403));
                assert_eq!(attempts, Some(1));
            }
            other => panic!("not {code}: {other:?}"),
        }
    }
}

/// `InvokeOptions::credentials`: a call signs with its own credentials (another tenant's,
/// say) where the client's are refused, and the next call has the client's again
pub fn invoke_options_sign_with_their_credentials<T: Transport>(t: &T) {
    let h = Harness::start();
    let mut cfg = h.config();
    cfg.credentials = invoke_proto::Credentials::new("AKIDUNKNOWN", "wrong-secret", None);
    let c = t.client(&cfg);
    let own = InvokeOptions::new().credentials(invoke_proto::Credentials::new(
        crate::KEY,
        crate::SECRET,
        None,
    ));
    let o = t.invoke_with(
        &c,
        &InvokeParams::new("echo", r#"{"signed":"by the call"}"#),
        &own,
    );
    assert_success(&o);
    assert_eq!(o.payload(), br#"{"signed":"by the call"}"#);
    let o = t.invoke(&c, &InvokeParams::new("echo", "{}"));
    match o.failure {
        Some(Failure::Service { error, .. }) => {
            assert_eq!(error.code, "UnrecognizedClientException");
        }
        other => panic!("the client's own credentials were not used: {other:?}"),
    }
}

/// Answers one request on a fresh listener with a 404 `ResourceNotFoundException` whose
/// JSON body (`Content-Length`) is `body`, written as its head with the body's first
/// `first` bytes, then the rest `pause` later; a client of it with an idle timeout of
/// `idle`, and its outcome
fn invoke_error_server<T: Transport>(
    t: &T,
    body: Vec<u8>,
    first: usize,
    pause: Duration,
    idle: Duration,
) -> Outcome {
    use std::io::Write as _;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let mut s = accept_request(&listener);
        let mut start = format!(
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\
             X-Amzn-ErrorType: ResourceNotFoundException\r\n\
             x-amzn-RequestId: error-body\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        start.extend_from_slice(&body[..first]);
        s.write_all(&start).unwrap();
        std::thread::sleep(pause);
        // the client may have given up meanwhile
        let _ = s.write_all(&body[first..]);
    });
    let mut cfg = config(endpoint(&format!("http://{addr}")));
    cfg.idle_timeout = idle;
    let c = t.client(&cfg);
    let o = t.invoke(&c, &InvokeParams::new("missing", "{}"));
    server.join().expect("server");
    o
}

/// The `ResourceNotFoundException` that ended `o` (not retried), after checking its code
#[track_caller]
fn not_found(o: &Outcome) -> &invoke_proto::ServiceError {
    match &o.failure {
        Some(Failure::Service { error, attempts }) => {
            assert_eq!(error.code, "ResourceNotFoundException");
            assert_eq!(error.request_id.as_deref(), Some("error-body"));
            assert_eq!(*attempts, Some(1));
            error
        }
        other => panic!("not ResourceNotFound: {other:?}"),
    }
}

/// [`invoke_error_server`] with a short JSON body (message "Function not found: missing")
/// split after 10 bytes, its rest `pause` later, and an idle timeout of `idle`
fn split_error_body<T: Transport>(t: &T, pause: Duration, idle: Duration) -> Outcome {
    let body = br#"{"Type":"User","message":"Function not found: missing"}"#.to_vec();
    invoke_error_server(t, body, 10, pause, idle)
}

/// An error body whose second half comes 100 ms after its first (well within the idle
/// timeout) is read whole: its message reaches the caller
pub fn an_error_body_in_two_writes_is_read_whole<T: Transport>(t: &T) {
    let o = split_error_body(t, Duration::from_millis(100), Duration::from_secs(10));
    let error = not_found(&o);
    assert_eq!(
        error.message.as_deref(),
        Some("Function not found: missing")
    );
    assert_eq!(error.error_type.as_deref(), Some("User"));
}

/// An error body is read up to 64 KiB ([`invoke_proto::ERROR_BODY_LIMIT`]) and no further:
/// a JSON body one field longer is cut there, so its message (after the cut) is not read
/// and the error keeps an excerpt of the text instead
pub fn an_error_body_is_read_up_to_its_limit<T: Transport>(t: &T) {
    let limit = invoke_proto::ERROR_BODY_LIMIT;
    let mut body = format!(r#"{{"Type":"User","padding":"{}""#, "p".repeat(limit)).into_bytes();
    body.extend_from_slice(br#","message":"past the limit"}"#);
    let o = invoke_error_server(t, body, 1000, Duration::ZERO, Duration::from_secs(10));
    let error = not_found(&o);
    assert_eq!(error.message, None, "read past the limit");
    assert!(error.body_excerpt.is_some(), "{error:?}");
}

/// An error body that stalls past the idle timeout does not hang the call: the error is
/// judged by its head (the code in `X-Amzn-ErrorType`), without the body's message
pub fn a_stalled_error_body_is_judged_by_its_head<T: Transport>(t: &T) {
    let o = split_error_body(t, Duration::from_millis(1500), Duration::from_millis(200));
    assert_eq!(not_found(&o).message, None);
}

/// Nothing listens: retried, then a connect error naming the address
pub fn connection_refused_names_the_address<T: Transport>(t: &T) {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    }; // closed again: connecting is refused
    let cfg = config(endpoint(&format!("http://{addr}")));
    fails_naming(t, &cfg, TransportFailure::Connect, 3, addr);
}

/// Invoking `echo` with `cfg` fails with `kind` after `attempts` attempts, in an error that
/// names `addr`
fn fails_naming<T: Transport>(
    t: &T,
    cfg: &ClientConfig,
    kind: TransportFailure,
    attempts: u32,
    addr: SocketAddr,
) {
    let c = t.client(cfg);
    let o = t.invoke(&c, &InvokeParams::new("echo", "{}"));
    let message = transport_failure(&o, kind, attempts);
    assert!(message.contains(&addr.to_string()), "{message}");
    // each cause in the chain is told once
    let mut causes: Vec<&str> = message.split(": ").collect();
    causes.sort_unstable();
    causes.dedup();
    assert_eq!(causes.len(), message.split(": ").count(), "{message}");
}

/// A connection cut during the TLS handshake (a load balancer dropping it) is retried like a
/// refused one, the request not having been sent; not a TLS error, which is never retried
pub fn a_connection_cut_during_the_tls_handshake_is_retried<T: Transport>(t: &T) {
    use std::io::Read as _;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = std::sync::Arc::clone(&accepted);
    std::thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(mut socket) = socket else { return };
            seen.fetch_add(1, Ordering::SeqCst);
            // the ClientHello, then the connection closed without a word
            let _ = socket.read(&mut [0; 4096]);
        }
    });
    let c = t.client(&config(endpoint(&format!("https://{addr}"))));
    let o = t.invoke(&c, &InvokeParams::new("echo", "{}"));
    match &o.failure {
        Some(Failure::Transport { kind, attempts, .. }) => {
            assert_ne!(*kind, TransportFailure::Tls, "{o:?}");
            assert_eq!(*attempts, Some(3), "{o:?}");
        }
        other => panic!("not a transport failure: {other:?}"),
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        3,
        "one connection per attempt"
    );
}

/// A server that ends every connection as soon as it has sent its side of the TLS handshake
/// (a load balancer with nothing behind it): each new connection is found closed once the
/// handshake is over (`invoke-tokio` finds it so before its request goes out), a send
/// failure retried with back-off, one connection per attempt; never a loop of new
/// connections within one attempt
pub fn a_server_closing_each_connection_after_the_tls_handshake_is_one_per_attempt<T: Transport>(
    t: &T,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (acceptor, ca_file) =
        crate::proxy::loopback_tls_and_ca_file("closed-after-handshake", addr.port());
    let tls = Arc::clone(acceptor.config());
    let accepted = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&accepted);
    std::thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(socket) = socket else { return };
            // more than the attempts: dropped at once, which ends any loop in a failed
            // handshake rather than a hung test
            if seen.fetch_add(1, Ordering::SeqCst) < 6 {
                let tls = Arc::clone(&tls);
                std::thread::spawn(move || handshake_then_close(socket, tls));
            }
        }
    });
    let mut cfg = config(endpoint(&format!("https://localhost:{}", addr.port())));
    cfg.ca_bundle = Some(ca_file.clone());
    let c = t.client(&cfg);
    let o = t.invoke(&c, &InvokeParams::new("echo", "{}"));
    let _ = std::fs::remove_file(&ca_file);
    assert!(o.head.is_none(), "{o:?}");
    transport_failure(&o, TransportFailure::Send, 3);
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        3,
        "one connection per attempt"
    );
}

/// Answers the ClientHello on `socket` with the server's whole first flight (in TLS 1.3 its
/// last message, `Finished`, ends the client's handshake), closes its sending side with it,
/// then reads whatever comes until the client closes
fn handshake_then_close(
    mut socket: std::net::TcpStream,
    config: Arc<tokio_rustls::rustls::ServerConfig>,
) {
    let Ok(mut tls) = tokio_rustls::rustls::ServerConnection::new(config) else {
        return;
    };
    let _ = socket.set_read_timeout(Some(Duration::from_secs(10)));
    while !tls.wants_write() {
        match tls.read_tls(&mut socket) {
            Ok(n) if n > 0 && tls.process_new_packets().is_ok() => {}
            _ => return,
        }
    }
    while tls.wants_write() {
        if tls.write_tls(&mut socket).is_err() {
            return;
        }
    }
    // the flight and the end of the stream reach the client together: its handshake ends
    // with the end of the stream already in its socket
    let _ = socket.shutdown(std::net::Shutdown::Write);
    let _ = std::io::copy(&mut socket, &mut std::io::sink());
}

/// A server that takes the ClientHello and never answers it: the TLS handshake is part of
/// connecting, so the attempt fails at the end of the connect timeout as a connect timeout,
/// neither at the (shorter) idle timeout nor as a head timeout
pub fn a_tls_handshake_never_answered_is_a_connect_timeout<T: Transport>(t: &T) {
    let addr = never_answering_server();
    let mut cfg = config(endpoint(&format!("https://{addr}")));
    cfg.connect_timeout = Duration::from_millis(400);
    // were the idle timeout applied to the handshake, it would end it first
    cfg.idle_timeout = Duration::from_millis(100);
    cfg.overall_timeout = Duration::from_secs(10);
    cfg.retry = cfg.retry.with_max_attempts(2);
    fails_naming(t, &cfg, TransportFailure::ConnectTimeout, 2, addr);
}

/// A listener on 127.0.0.1 (port 0) with a backlog of `backlog`, its socket set up by
/// `configure` before it listens
fn loopback_listener(backlog: i32, configure: impl FnOnce(&socket2::Socket)) -> TcpListener {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    configure(&socket);
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&any.into()).unwrap();
    socket.listen(backlog).unwrap();
    socket.into()
}

/// A listener whose accept queue is full leaves the TCP handshake unanswered: the connect
/// timeout, per attempt, retried, then an error naming the address
pub fn connect_timeout_names_the_address<T: Transport>(t: &T) {
    // a backlog of 0 queues one connection: the filler; later handshakes get no answer
    let listener = loopback_listener(0, |_| {});
    let addr = listener.local_addr().unwrap();
    let _filler = std::net::TcpStream::connect(addr).unwrap();
    let mut cfg = config(endpoint(&format!("http://{addr}")));
    cfg.connect_timeout = Duration::from_millis(200);
    cfg.retry = cfg.retry.with_max_attempts(2);
    fails_naming(t, &cfg, TransportFailure::ConnectTimeout, 2, addr);
}

/// Backpressure: while the caller does not read a response, its server is held back by the
/// socket buffers and the transport's own (a few MiB here), not let to send the 128 MiB
/// stream into memory; reading on, every byte arrives
pub fn a_paused_reader_holds_the_server_back<T: Transport>(t: &T) {
    let s = StreamServer::start();
    let c = t.client(&config(endpoint(&s.url())));
    let mut seen = None;
    let params = InvokeParams::new("stream", "{}");
    let o = t.invoke_pausing(&c, &params, &InvokeOptions::new(), &mut |at| {
        if at == Pause::FirstEvent {
            seen = s.writes(Duration::from_secs(30));
            s.resume();
        }
    });
    match seen {
        Some(Writes::Stalled(at)) => assert!(
            at < MESSAGES * MESSAGE / 4,
            "{at} bytes went out before the server stalled"
        ),
        Some(Writes::Done(all)) => {
            panic!("all {all} bytes went out while the response was not read")
        }
        None => panic!("no word from the server"),
    }
    assert_success(&o);
    let mut payload = 0;
    for e in &o.events {
        if let Event::PayloadChunk(b) = e {
            assert!(b.iter().all(|&x| x == b'x'));
            payload += b.len();
        }
    }
    assert_eq!(payload, MESSAGES * MESSAGE);
}

/// A server that reads each request whole and answers it with `answer`, then closes the
/// connection (`None`: closes it at once, with a reset), on every connection; how many
/// connections it took
fn answering_server(
    answer: Option<&'static [u8]>,
) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::Write as _;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { return };
            count.fetch_add(1, Ordering::SeqCst);
            let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
            if metadata::read_request(&s).is_ok() {
                match answer {
                    Some(answer) => {
                        let _ = s.write_all(answer);
                    }
                    // closed with a reset
                    None => {
                        let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
                    }
                }
            }
            // dropped: closed
        }
    });
    (addr, accepted)
}

/// A peer that closes (or resets) the connection after the request, before any response
/// byte, is a send failure, retried (the request may never have been read); one that
/// answers with something other than HTTP is a protocol failure, never retried
pub fn a_peer_closing_or_not_speaking_http_before_the_head<T: Transport>(t: &T) {
    use std::sync::atomic::Ordering;
    for (answer, kind, attempts) in [
        (Some(&b""[..]), TransportFailure::Send, 3),
        (None, TransportFailure::Send, 3),
        (
            Some(b"SSH-2.0-OpenSSH_9.2\r\n\r\n"),
            TransportFailure::Protocol,
            1,
        ),
    ] {
        let (addr, accepted) = answering_server(answer);
        let c = t.client(&config(endpoint(&format!("http://{addr}"))));
        let o = t.invoke(&c, &InvokeParams::new("echo", "{}"));
        assert!(o.head.is_none());
        transport_failure(&o, kind, attempts);
        assert_eq!(accepted.load(Ordering::SeqCst), attempts as usize);
    }
}

/// A server that accepts and never answers: the head timeout, per attempt; a shorter idle
/// timeout bounds the wait for the head as well (it is the time between two reads, head and
/// body)
pub fn head_timeout<T: Transport>(t: &T) {
    let addr = never_answering_server();
    let mut cfg = config(endpoint(&format!("http://{addr}")));
    cfg.head_timeout = Duration::from_millis(200);
    cfg.retry = cfg.retry.with_max_attempts(2);
    let c = t.client(&cfg);
    let o = t.invoke(&c, &InvokeParams::new("echo", "{}"));
    transport_failure(&o, TransportFailure::HeadTimeout, 2);
    cfg.head_timeout = Duration::from_secs(60);
    cfg.idle_timeout = Duration::from_millis(200);
    // were the idle timeout not applied, this would end it instead
    cfg.overall_timeout = Duration::from_secs(10);
    let c = t.client(&cfg);
    let o = t.invoke(&c, &InvokeParams::new("echo", "{}"));
    transport_failure(&o, TransportFailure::HeadTimeout, 2);
}

/// A server that accepts connections, never reads from them and never answers, keeping them
/// open
fn never_answering_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s); // never answered, kept open
        }
    });
    addr
}

/// A server that never reads the request: its largest payload (6 MiB, more than the socket
/// buffers hold) cannot all be sent, and the head timeout covers sending it, per attempt
/// (not the idle timeout between two writes, nor the overall deadline)
pub fn a_server_that_never_reads_the_payload_is_a_head_timeout<T: Transport>(t: &T) {
    let addr = never_answering_server();
    let cfg = sending_config(addr, Duration::from_millis(200), Duration::from_secs(10), 2);
    let c = t.client(&cfg);
    let payload = vec![b'x'; MAX_PAYLOAD_LEN];
    let o = t.invoke(&c, &InvokeParams::new("echo", payload));
    transport_failure(&o, TransportFailure::HeadTimeout, 2);
}

/// A client of `addr` for the cases where a payload is being sent when the head timeout
/// `head` passes: an idle timeout long enough never to end it first, the overall timeout
/// `overall`, `attempts` attempts
fn sending_config(
    addr: SocketAddr,
    head: Duration,
    overall: Duration,
    attempts: u32,
) -> ClientConfig {
    let mut cfg = config(endpoint(&format!("http://{addr}")));
    cfg.head_timeout = head;
    cfg.idle_timeout = Duration::from_secs(60);
    cfg.overall_timeout = overall;
    cfg.retry = cfg.retry.with_max_attempts(attempts);
    cfg
}

/// A server that reads the payload a little at a time (64 KiB every 100 ms, with a small
/// receive buffer: about 10 s for 6 MiB): every write makes some progress, yet the attempt
/// ends within its head timeout (which covers sending), not when the last byte is taken.
/// Once the client has given up, the server takes the rest at once: what the client sent
/// before the timeout, held in the socket buffers (the client's send buffer, up to 4 MiB
/// with Linux's default `tcp_wmem`, and the server's small receive buffer, fixed so that it
/// does not grow to tens of MiB as `tcp_rmem` allows)
pub fn a_server_reading_the_payload_slowly_is_a_head_timeout<T: Transport>(t: &T) {
    use std::io::Read as _;
    use std::sync::atomic::{AtomicBool, Ordering};
    // inherited by the accepted connection; fixed, so never autotuned up to megabytes
    let listener = loopback_listener(8, |s| s.set_recv_buffer_size(64 * 1024).unwrap());
    let addr = listener.local_addr().unwrap();
    let client_done = std::sync::Arc::new(AtomicBool::new(false));
    let done = std::sync::Arc::clone(&client_done);
    let server = std::thread::spawn(move || {
        let (s, _) = listener.accept().expect("accept");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut read = 0;
        // until the client closes the connection (EOF or reset), or the whole payload came
        while read < MAX_PAYLOAD_LEN {
            let slow = !done.load(Ordering::SeqCst);
            match (&s).read(&mut buf) {
                Ok(n @ 1..) => read += n,
                _ => return read,
            }
            if slow {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        read
    });
    let cfg = sending_config(addr, Duration::from_millis(500), Duration::from_secs(60), 1);
    let c = t.client(&cfg);
    let o = t.invoke(&c, &InvokeParams::new("echo", vec![b'x'; MAX_PAYLOAD_LEN]));
    client_done.store(true, Ordering::SeqCst);
    transport_failure(&o, TransportFailure::HeadTimeout, 1);
    let read = server.join().expect("server");
    assert!(
        read < MAX_PAYLOAD_LEN,
        "the client kept sending its payload to the end ({read} bytes taken)"
    );
}

/// A server that sends `InvokeComplete` and then holds the body open without its end (a
/// misbehaving proxy, say): the caller has every event, so the client waits only briefly for
/// the end and then closes the connection, instead of waiting out the idle timeout
pub fn a_body_held_open_after_invoke_complete_is_not_waited_for<T: Transport>(t: &T) {
    assert!(
        closed_after_complete(t, held_open_after_complete),
        "the client waited for the end of the body instead of closing the connection"
    );
}

/// As above, the client having waited for the body once before `InvokeComplete` (with a
/// long idle timeout, which the short wait for the end of the body replaces)
pub fn a_body_held_open_after_a_wait_and_invoke_complete_is_not_waited_for<T: Transport>(t: &T) {
    assert!(
        closed_after_complete(t, held_open_after_a_wait),
        "the client waited for the end of the body instead of closing the connection"
    );
}

/// As above, but the server keeps the connection busy after the last chunk: a trailer field
/// every 200 µs, which carry no body bytes, so only a limit on the time spent draining ends
/// the wait (not the idle timeout, nor a limit on the bytes drained, nor a short timeout on
/// each read)
pub fn a_body_dribbling_trailers_after_invoke_complete_is_not_waited_for<T: Transport>(t: &T) {
    assert!(
        closed_after_complete(t, dribbling_after_complete),
        "the client read trailers for 30 s instead of closing the connection"
    );
}

/// A body whose end comes a moment after `InvokeComplete` (within the drain's wait): the
/// client waits for it and keeps the connection, so the next call goes out on it
pub fn a_body_ended_shortly_after_invoke_complete_keeps_its_connection<T: Transport>(t: &T) {
    use std::io::Write as _;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let mut s = accept_request(&listener);
        s.write_all(&held_response_start()).unwrap();
        // the end of the body a moment later, as a server that flushes it separately
        std::thread::sleep(Duration::from_millis(100));
        s.write_all(BODY_END).unwrap();
        // the second call on the same connection (else the client closed it)
        let reused = metadata::read_request(&s).is_ok();
        if reused {
            s.write_all(&held_response()).unwrap();
        } else {
            // answer the new connection, so the call ends either way
            serve_held(&listener);
        }
        reused
    });
    invoke_held(t, &config(endpoint(&format!("http://{addr}"))), 2);
    assert!(
        server.join().expect("server"),
        "the client gave up on the end of the body and opened a new connection"
    );
}

/// A whole response: its head, a chunk holding a `PayloadChunk` ("held") and a successful
/// `InvokeComplete`, then `extra` body bytes after them (in HTTP chunks of at most 1 KiB,
/// so that a client counting what it drains must add them up), then the end of the body
pub fn held_response_with_extra(extra: usize) -> Vec<u8> {
    let mut response = held_response_start();
    let mut left = extra;
    while left > 0 {
        let size = left.min(1024);
        response.extend(format!("{size:x}\r\n").into_bytes());
        response.resize(response.len() + size, b'z');
        response.extend_from_slice(b"\r\n");
        left -= size;
    }
    response.extend_from_slice(BODY_END);
    response
}

/// Bytes after `InvokeComplete` are read and dropped up to 64 KiB
/// ([`invoke_config::DRAIN_LIMIT`]) to keep the connection; past that, it is closed
/// instead of read on: four calls, answered with 1,000 bytes, exactly the limit and 1 MiB
/// after `InvokeComplete` (more than one read takes in), then none, go out on connections
/// 1, 1, 1 and 2
pub fn bytes_after_invoke_complete_are_drained_up_to_a_limit<T: Transport>(t: &T) {
    let (addr, server) = serve_held_with_extras(vec![1000, invoke_config::DRAIN_LIMIT, 1 << 20, 0]);
    invoke_held(t, &config(endpoint(&format!("http://{addr}"))), 4);
    assert_eq!(server.join().expect("server"), [1, 1, 1, 2]);
}

/// Invokes `held` `n` times with a client of `cfg`, each a success with payload "held"
fn invoke_held<T: Transport>(t: &T, cfg: &ClientConfig, n: usize) {
    let c = t.client(cfg);
    for _ in 0..n {
        let o = t.invoke(&c, &InvokeParams::new("held", "{}"));
        assert_success(&o);
        assert_eq!(o.payload(), b"held");
    }
}

/// A server on a fresh listener answering one request per entry of `extras` with
/// [`held_response_with_extra`] of that entry, on as few connections as the client uses
/// (a request that finds its connection closed is taken on the next one); its address,
/// and the number of the connection each request came on (1 for the first)
pub fn serve_held_with_extras(
    extras: Vec<usize>,
) -> (SocketAddr, std::thread::JoinHandle<Vec<usize>>) {
    let (addr, server, _) = serve_held_with_extras_told(extras);
    (addr, server)
}

/// [`serve_held_with_extras`], also telling on the receiver each time a whole response
/// was written (a client that waits for it before it drops a response then has all of that
/// response in its socket, the responses being shorter than a loopback socket's buffer)
pub fn serve_held_with_extras_told(
    extras: Vec<usize>,
) -> (
    SocketAddr,
    std::thread::JoinHandle<Vec<usize>>,
    std::sync::mpsc::Receiver<()>,
) {
    use std::io::Write as _;
    let (tell, told) = std::sync::mpsc::channel();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let mut served_on = Vec::new();
        for connection in 1..=extras.len() {
            let (mut s, _) = listener.accept().expect("accept");
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            while served_on.len() < extras.len() && metadata::read_request(&s).is_ok() {
                let response = held_response_with_extra(extras[served_on.len()]);
                // a client closing the connection amid a long extra ends the write (it
                // has had its events)
                let written = s.write_all(&response).is_ok();
                served_on.push(connection);
                if !written {
                    break;
                }
                // the receiver may be gone (`serve_held_with_extras` drops it)
                let _ = tell.send(());
            }
            if served_on.len() == extras.len() {
                break;
            }
        }
        served_on
    });
    (addr, server, told)
}

/// Invokes a `server` that answers with a chunk ("held") and `InvokeComplete` and then does
/// not end the body, with timeouts longer than the server goes on: every event arrives; what
/// the server says (whether the client closed the connection before it gave up)
fn closed_after_complete<T: Transport>(t: &T, server: fn(&TcpListener) -> bool) -> bool {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || server(&listener));
    let mut cfg = config(endpoint(&format!("http://{addr}")));
    // longer than the server holds the body: only closing early ends the call before it
    cfg.idle_timeout = Duration::from_secs(300);
    cfg.overall_timeout = Duration::from_secs(300);
    let c = t.client(&cfg);
    let o = t.invoke(&c, &InvokeParams::new("held", "{}"));
    assert_success(&o);
    assert_eq!(o.payload(), b"held");
    server.join().expect("server")
}

/// As above over https, the server sending after the last chunk the start of a TLS record
/// and then one more byte of it every 100 ms: the TLS layer reads on for the whole record,
/// each read of the socket waiting anew, so only a limit on every read of the socket (not
/// on each read of the TLS layer) ends the wait
pub fn a_tls_record_dribbled_after_invoke_complete_is_not_waited_for<T: Transport>(t: &T) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let (acceptor, ca_file) =
        crate::proxy::loopback_tls_and_ca_file("dribbled-record", addr.port());
    let server = std::thread::spawn(move || {
        crate::proxy::current_thread_runtime().block_on(async move {
            use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let (tcp, _) = listener.accept().await.expect("accept");
            let mut tls = acceptor.accept(tcp).await.expect("handshake");
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = tls.read(&mut buf).await.expect("request");
                assert!(n > 0, "no whole request head from the client");
                seen.extend_from_slice(&buf[..n]);
            }
            let mut start = held_response_start();
            start.extend_from_slice(b"0\r\n");
            tls.write_all(&start).await.expect("response");
            tls.flush().await.expect("response");
            // below TLS: a record header announcing 16 KiB, then its bytes one at a time
            let tcp = tls.get_mut().0;
            tcp.set_nodelay(true).expect("nodelay");
            if tcp.write_all(&[0x17, 3, 3, 0x40, 0]).await.is_err() {
                return true;
            }
            let until = std::time::Instant::now() + Duration::from_secs(30);
            while std::time::Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if tcp.write_all(b"x").await.is_err() {
                    return true;
                }
            }
            false
        })
    });
    let mut cfg = config(endpoint(&format!("https://localhost:{}", addr.port())));
    cfg.ca_bundle = Some(ca_file.clone());
    // longer than the server dribbles: only closing early ends the call before it
    cfg.idle_timeout = Duration::from_secs(300);
    cfg.overall_timeout = Duration::from_secs(300);
    let c = t.client(&cfg);
    let o = t.invoke(&c, &InvokeParams::new("held", "{}"));
    let _ = std::fs::remove_file(&ca_file);
    assert_success(&o);
    assert_eq!(o.payload(), b"held");
    assert!(
        server.join().expect("server"),
        "the client read a TLS record for 30 s instead of closing the connection"
    );
}

/// A proxy that answers `CONNECT` with the start of a response head and then one more byte
/// of it every 100 ms: the attempt fails at the end of the connect timeout, not for as long
/// as the proxy goes on (a read of the proxy's answer waiting anew after each byte) nor at
/// the overall deadline
pub fn a_proxy_answering_connect_a_byte_at_a_time_is_cut<T: Transport>(t: &T) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        use std::io::Write;
        let (mut s, _) = listener.accept().expect("accept");
        assert!(
            metadata::read_request(&s).is_ok(),
            "no CONNECT request from the client"
        );
        s.set_nodelay(true).unwrap();
        if s.write_all(b"HTTP/1.1 200 OK\r\nX-Pad: ").is_err() {
            return true;
        }
        dribble(&mut s, b"a", Duration::from_millis(100))
    });
    // the target is never reached: the tunnel never opens
    let mut cfg = config(endpoint("https://localhost:9"));
    cfg.proxy_env = vec![("HTTPS_PROXY".into(), format!("http://{proxy}"))];
    cfg.connect_timeout = Duration::from_secs(1);
    cfg.overall_timeout = Duration::from_secs(3);
    cfg.retry = cfg.retry.with_max_attempts(1);
    let c = t.client(&cfg);
    let o = t.invoke(&c, &InvokeParams::new("f", "{}"));
    transport_failure(&o, TransportFailure::ConnectTimeout, 1);
    assert!(
        server.join().expect("proxy"),
        "the client read the proxy's answer for 30 s instead of closing the connection"
    );
}

/// A proxy that refuses the tunnel (407: it wants credentials) gives the same answer to
/// every attempt: the call fails after one, naming the status, while a proxy that cannot
/// reach the target (502) is tried again
pub fn a_proxy_refusing_the_tunnel_is_not_retried<T: Transport>(t: &T) {
    for (answer, attempts) in [
        ("407 Proxy Authentication Required", 1),
        ("502 Bad Gateway", 2),
    ] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            use std::io::Write;
            let mut asked = 0;
            // one connection per attempt; the last is followed by none (the test's end)
            for s in listener.incoming().take(attempts) {
                let mut s = s.expect("accept");
                if metadata::read_request(&s).is_ok() {
                    asked += 1;
                    let _ = write!(s, "HTTP/1.1 {answer}\r\nContent-Length: 0\r\n\r\n");
                }
            }
            asked
        });
        let mut cfg = config(endpoint("https://localhost:9"));
        cfg.proxy_env = vec![("HTTPS_PROXY".into(), format!("http://{proxy}"))];
        cfg.retry = cfg.retry.with_max_attempts(2);
        let c = t.client(&cfg);
        let o = t.invoke(&c, &InvokeParams::new("f", "{}"));
        let kind = if attempts == 1 {
            TransportFailure::Other
        } else {
            TransportFailure::Connect
        };
        let message = transport_failure(&o, kind, attempts as u32);
        assert!(message.contains(&answer[..3]), "{message}");
        assert_eq!(server.join().expect("proxy"), attempts, "{answer}");
    }
}

/// Answers one request with a chunk, `InvokeComplete` and the last chunk, then sends a
/// trailer field every 200 µs for up to 30 s; whether the client closed the connection first
fn dribbling_after_complete(listener: &TcpListener) -> bool {
    use std::io::Write;
    let (mut s, _) = listener.accept().expect("accept");
    assert!(
        metadata::read_request(&s).is_ok(),
        "no whole request from the client"
    );
    s.set_nodelay(true).unwrap();
    s.write_all(&held_response_start()).unwrap();
    s.write_all(b"0\r\n").unwrap();
    let closed = dribble(&mut s, b"x-trailer: more\r\n", Duration::from_micros(200));
    if !closed {
        let _ = s.write_all(b"\r\n");
    }
    closed
}

/// Writes `bytes` to `s` every `every` for up to 30 s; whether a write failed first (the
/// client closed the connection)
fn dribble(s: &mut std::net::TcpStream, bytes: &[u8], every: Duration) -> bool {
    use std::io::Write;
    let until = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < until {
        if s.write_all(bytes).is_err() {
            return true;
        }
        std::thread::sleep(every);
    }
    false
}

/// A response head and a chunk holding a `PayloadChunk` ("held") and a successful
/// `InvokeComplete`: everything before the end of the body
fn held_response_start() -> Vec<u8> {
    let mut response = b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.amazon.eventstream\r\n\
        X-Amz-Executed-Version: $LATEST\r\nx-amzn-RequestId: held-open\r\n\
        Transfer-Encoding: chunked\r\n\r\n"
        .to_vec();
    response.extend(event_chunk(&[
        Event::PayloadChunk(invoke_proto::bytes::Bytes::from_static(b"held")),
        Event::InvokeComplete(invoke_proto::InvokeComplete::default()),
    ]));
    response
}

/// The end of a chunked body: the last, empty chunk
const BODY_END: &[u8] = b"0\r\n\r\n";

/// [`held_response_start`] with the end of the body
fn held_response() -> Vec<u8> {
    let mut response = held_response_start();
    response.extend_from_slice(BODY_END);
    response
}

/// Accepts a connection on `listener`, reads one whole request and answers it with
/// [`held_response`]; the connection, still open
fn serve_held(listener: &TcpListener) -> std::net::TcpStream {
    use std::io::Write as _;
    let mut s = accept_request(listener);
    s.write_all(&held_response()).unwrap();
    s
}

/// Accepts a connection on `listener` and reads one whole request from it (each read
/// within 30 s); the connection
fn accept_request(listener: &TcpListener) -> std::net::TcpStream {
    let (s, _) = listener.accept().expect("accept");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    assert!(metadata::read_request(&s).is_ok(), "a whole request");
    s
}

/// A server of one response: its head and the `PayloadChunk`s `a`, `b` and `c` in one
/// write (they arrive together), then, once the returned sender says the client took what
/// was there, `InvokeComplete` and the end of the body; its address, that sender, and its
/// thread (which fails if the request does not come)
pub fn three_chunks_then_complete() -> (
    SocketAddr,
    std::sync::mpsc::Sender<()>,
    std::thread::JoinHandle<()>,
) {
    use std::io::Write as _;

    let payload = |s: &'static str| Event::PayloadChunk(bytes::Bytes::from_static(s.as_bytes()));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        assert!(metadata::read_request(&s).is_ok());
        let mut first = b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.amazon.eventstream\r\n\
            Transfer-Encoding: chunked\r\n\r\n"
            .to_vec();
        first.extend(event_chunk(&[payload("a"), payload("b"), payload("c")]));
        s.write_all(&first).unwrap();
        go_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the client took the ready events");
        let mut rest = event_chunk(&[Event::InvokeComplete(InvokeComplete::default())]);
        rest.extend_from_slice(b"0\r\n\r\n");
        s.write_all(&rest).unwrap();
    });
    (addr, go_tx, server)
}

/// One HTTP/1.1 chunk (size line, data, CRLF) holding `events`, encoded
pub fn event_chunk(events: &[Event]) -> Vec<u8> {
    let mut body = invoke_proto::bytes::BytesMut::new();
    for e in events {
        e.encode(&mut body).unwrap();
    }
    let mut chunk = format!("{:x}\r\n", body.len()).into_bytes();
    chunk.extend_from_slice(&body);
    chunk.extend_from_slice(b"\r\n");
    chunk
}

/// Answers one request with a chunk and `InvokeComplete`, then holds the body open for up to
/// a minute; whether the client closed the connection before the server gave up and ended it
fn held_open_after_complete(listener: &TcpListener) -> bool {
    held_open(listener, None)
}

/// As [`held_open_after_complete`], the response sent in two writes 200 ms apart: the head
/// and the first bytes of the chunk, then the rest (the client waited for the body once
/// before `InvokeComplete`, so its idle timer was set)
fn held_open_after_a_wait(listener: &TcpListener) -> bool {
    held_open(listener, Some(Duration::from_millis(200)))
}

/// [`held_open_after_complete`], the response split after its head and 10 bytes with
/// `pause` between the two writes (`None`: in one write)
fn held_open(listener: &TcpListener, pause: Option<Duration>) -> bool {
    use std::io::{Read, Write};
    let mut s = accept_request(listener);
    // how long the body is held open
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut buf = [0u8; 4096];
    let response = held_response_start();
    match pause {
        Some(pause) => {
            let head = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            s.write_all(&response[..head + 10]).unwrap();
            std::thread::sleep(pause);
            s.write_all(&response[head + 10..]).unwrap();
        }
        None => s.write_all(&response).unwrap(),
    }
    // the end of the body (`BODY_END`) is held back
    let closed = match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        // a timeout is the server giving up, not the client closing
        Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
    };
    let _ = s.write_all(BODY_END);
    closed
}

/// A fault after the first event is an error to the caller, and the function ran once,
/// whatever the retry policy allows
pub fn no_retry_after_the_first_event<T: Transport>(t: &T) {
    let h = Harness::start();
    let mut cfg = h.config();
    cfg.retry = RetryConfig::new()
        .with_max_attempts(5)
        .with_initial_backoff(Duration::from_millis(1));
    let c = t.client(&cfg);
    let o = t.invoke(&c, &InvokeParams::new("streamer-close", "{}"));
    assert_first_chunk(&o);
    assert!(o.failure.is_some());
    assert_eq!(o.head.expect("head").attempts, 1);
    assert_eq!(h.invocations(), 1, "the function ran once");
}

/// A success head, then the connection cut before any body byte: an error, not a retry
/// (the function is running)
pub fn cut_after_the_head_is_not_retried<T: Transport>(t: &T) {
    let (h, _c, o) = invoke_function(t, "streamer-cut");
    assert!(o.events.is_empty(), "{:?}", o.events);
    assert!(o.failure.is_some(), "never a clean end");
    assert_eq!(o.head.expect("head").attempts, 1);
    assert_eq!(h.invocations(), 1, "the function ran once");
}

/// 64 threads share one client; every stream byte-exact
pub fn sixty_four_threads_share_one_client<T: Transport>(t: &T) {
    let h = Harness::start();
    let c = t.client(&h.config());
    let expected = count_bytes(200, 50);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..64)
            .map(|_| {
                s.spawn(|| {
                    let o = t.invoke(&c, &count(200, 50));
                    assert_success(&o);
                    assert!(o.payload() == expected, "byte-exact");
                })
            })
            .collect();
        for handle in handles {
            handle.join().expect("thread");
        }
    });
}

/// Sequential invocations share one pooled connection: streams read to their end, DryRun
/// answers and error bodies all leave it reusable
pub fn connections_are_reused<T: Transport>(t: &T) {
    let h = Harness::start();
    let forwarder = Forwarder::start(h.address());
    let c = t.client(&config(endpoint(&forwarder.url())));
    for _ in 0..3 {
        assert_success(&t.invoke(&c, &count(50, 100)));
    }
    let dry = InvokeParams::new("echo", "{}").invocation_type(InvocationType::DryRun);
    assert!(t.invoke(&c, &dry).failure.is_none());
    let missing = t.invoke(&c, &InvokeParams::new("no-such-function", "{}"));
    assert!(matches!(missing.failure, Some(Failure::Service { .. })));
    let r = t.read(&c, &count(50, 100));
    assert!(r.failure.is_none() && r.bytes == count_bytes(50, 100));
    assert_success(&t.invoke(&c, &count(1, 1)));
    assert_eq!(
        forwarder.accepted(),
        1,
        "one connection for every invocation"
    );
}

/// A stream that fails (a corrupt CRC, a stall past the idle timeout) closes its connection
/// as it hands out the error, while the caller still holds the response; it is not kept
/// until the response is dropped, and the next call opens a new one
pub fn a_failed_stream_closes_its_connection_at_once<T: Transport>(t: &T) {
    let h = Harness::start();
    let forwarder = Forwarder::start(h.address());
    let mut cfg = config(endpoint(&forwarder.url()));
    cfg.idle_timeout = Duration::from_secs(1);
    let c = t.client(&cfg);
    for (n, function) in [(1, "streamer-crc"), (2, "streamer-stall")] {
        let mut closed_while_held = None;
        let params = InvokeParams::new(function, "{}");
        let o = t.invoke_pausing(&c, &params, &InvokeOptions::new(), &mut |at| {
            if at == Pause::End {
                closed_while_held = Some(forwarder.wait_closed(n, Duration::from_secs(20)));
            }
        });
        assert!(o.failure.is_some(), "{function}: {o:?}");
        assert_eq!(
            closed_while_held,
            Some(true),
            "{function}: the connection outlived its error"
        );
        assert_eq!(forwarder.accepted(), n);
    }
}

/// A pooled connection that the server closed while it sat idle (as a server's keep-alive
/// timeout does) is found closed before the next request goes out on it: that request goes
/// on a new connection in the same attempt, not through a failed attempt and a retry. The
/// server closes the first connection only once the first call is over (its connection
/// back in the pool), so that the client cannot see the end before it pools the connection
pub fn a_pooled_connection_the_server_closed_is_replaced<T: Transport>(t: &T) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (closed_tx, closed_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        // each connection answers one request in full, then the server closes it (the
        // first once the first call is over)
        for n in 0..2 {
            let connection = serve_held(&listener);
            if n == 0 {
                let _ = done_rx.recv_timeout(Duration::from_secs(30));
            }
            drop(connection);
            let _ = closed_tx.send(());
        }
    });
    let c = t.client(&config(endpoint(&format!("http://{addr}"))));
    let first = t.invoke(&c, &InvokeParams::new("held", "{}"));
    assert_success(&first);
    done_tx.send(()).expect("the server waits");
    closed_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the server closed the first connection");
    let second = t.invoke(&c, &InvokeParams::new("held", "{}"));
    assert_success(&second);
    assert_eq!(second.payload(), b"held");
    assert_eq!(
        second.head.expect("head").attempts,
        1,
        "no retry was needed"
    );
    // its second connection read a whole request: the second call went out on a new one
    server
        .join()
        .expect("the server read one request on each of two connections");
}

/// Through a real HTTP proxy (tinyproxy) on loopback
pub fn through_an_http_proxy<T: Transport>(t: &T) {
    let Some(mut proxy) = Tinyproxy::start() else {
        return;
    };
    let h = Harness::start();
    let mut cfg = h.config();
    cfg.proxy_env = vec![("HTTP_PROXY".into(), proxy.url())];
    let c = t.client(&cfg);
    let o = t.invoke(&c, &count(100, 100));
    assert_success(&o);
    assert!(o.payload() == count_bytes(100, 100));
    let target = h.address().to_string();
    assert!(
        proxy.wait_for_request(&target),
        "the request went through the proxy; its log:\n{}",
        proxy.log()
    );
}

/// `NO_PROXY` naming the endpoint's host bypasses the proxy
pub fn no_proxy_bypasses_the_proxy<T: Transport>(t: &T) {
    let Some(mut proxy) = Tinyproxy::start() else {
        return;
    };
    let h = Harness::start();
    let mut cfg = h.config();
    cfg.proxy_env = vec![
        ("http_proxy".into(), proxy.url()),
        ("no_proxy".into(), "example.com, 127.0.0.1".into()),
    ];
    let c = t.client(&cfg);
    let o = t.invoke(&c, &count(10, 10));
    assert_success(&o);
    // Control: the same proxy settings for a host NO_PROXY does not name go through it.
    // The proxy logs requests in order, so once the control's line is there, a line for
    // the bypassed request would be too.
    let port = h.address().port();
    let mut control = cfg.clone();
    control.endpoint = endpoint(&format!("http://localhost:{port}"));
    let _ = t.invoke(&t.client(&control), &count(1, 1));
    assert!(
        proxy.wait_for_request(&format!("localhost:{port}")),
        "the control request went through the proxy; its log:\n{}",
        proxy.log()
    );
    assert_eq!(
        proxy.requests_to(&h.address().to_string()),
        0,
        "{}",
        proxy.log()
    );
}

/// `tracing`: spans per invocation and attempt with the function, request id, attempt,
/// status and byte counts, and never a secret or a payload byte (the events and spans of
/// the calling thread are recorded)
pub fn spans_carry_the_invocation_and_never_secrets_or_payloads<T: Transport>(t: &T) {
    let h = Harness::start();
    let token = "SESSION-TOKEN-MUST-NOT-LEAK";
    let mut cfg = h.config();
    cfg.credentials = invoke_proto::Credentials::new(crate::KEY, crate::SECRET, Some(token.into()));
    let c = t.client(&cfg);
    let marker = "PAYLOAD-MARKER-MUST-NOT-LEAK";
    let recorder = crate::trace::Recorder::default();
    tracing::subscriber::with_default(recorder.clone(), || {
        let r = t.read(
            &c,
            &InvokeParams::new("echo", format!(r#"{{"m":"{marker}"}}"#)),
        );
        assert!(r.failure.is_none(), "{:?}", r.failure);
        assert!(
            String::from_utf8_lossy(&r.bytes).contains(marker),
            "the payload went through"
        );
        let o = t.invoke(&c, &InvokeParams::new("no-such-function", "{}"));
        assert!(
            matches!(
                o.failure,
                Some(Failure::Service {
                    attempts: Some(1),
                    ..
                })
            ),
            "{:?}",
            o.failure
        );
    });
    let text = recorder.text();
    assert!(text.contains(r#"span invoke function="echo""#), "{text}");
    assert!(text.contains(r#"function="no-such-function""#), "{text}");
    assert!(text.contains("span attempt attempt=1"), "{text}");
    assert!(
        text.contains("status=200") && text.contains("status=404"),
        "{text}"
    );
    assert!(text.contains("request_id="), "{text}");
    assert!(text.contains("bytes="), "{text}");
    for secret in [crate::SECRET, token, marker] {
        assert!(!text.contains(secret), "{secret} leaked into:\n{text}");
    }
}

/// Over https, trusting the emulator's CA through the CA bundle: streams byte-exact
pub fn https_with_the_ca_bundle_streams_byte_exact<T: Transport>(t: &T) {
    let h = Harness::start_tls();
    let mut cfg = h.config();
    assert_eq!(cfg.endpoint.scheme(), Scheme::Https);
    cfg.ca_bundle = h.ca_pem_path();
    let c = t.client(&cfg);
    let o = t.invoke(&c, &count(2_000, 100));
    assert_success(&o);
    assert_eq!(o.chunks(), 2_000);
    assert!(o.payload() == count_bytes(2_000, 100), "byte-exact");
    let r = t.read(&c, &count(2_000, 100));
    assert!(r.failure.is_none(), "{:?}", r.failure);
    assert!(r.bytes == count_bytes(2_000, 100), "reader byte-exact");
}

/// `AWS_CA_BUNDLE` in the environment a client is configured from is trusted too
pub fn https_with_aws_ca_bundle_from_config<T: Transport>(t: &T) {
    let h = Harness::start_tls();
    let bundle = h.ca_pem_path().expect("a CA file");
    let cfg = configured(
        &h,
        &[
            ("AWS_ACCESS_KEY_ID", crate::KEY),
            ("AWS_SECRET_ACCESS_KEY", crate::SECRET),
            ("AWS_CA_BUNDLE", &bundle.display().to_string()),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
        "",
        &[],
    );
    let o = t.invoke(&t.client(&cfg), &count(100, 100));
    assert_success(&o);
    assert!(o.payload() == count_bytes(100, 100), "byte-exact");
}

/// Over https without the emulator's CA: a TLS error that says it is about the
/// certificate, never retried
pub fn https_without_the_ca_bundle_is_a_certificate_error<T: Transport>(t: &T) {
    let h = Harness::start_tls();
    let mut cfg = h.config();
    cfg.retry = cfg.retry.with_max_attempts(3);
    let c = t.client(&cfg);
    let o = t.invoke(&c, &InvokeParams::new("echo", "{}"));
    assert!(o.head.is_none());
    // a certificate error is not retried
    let message = transport_failure(&o, TransportFailure::Tls, 1);
    assert!(
        message.to_ascii_lowercase().contains("certificate"),
        "{message}"
    );
}

/// The variable that makes [`the_system_trust_store_is_read`] the child: the emulator's URL
const TRUST_STORE_CHILD: &str = "TRANSPORT_SUITE_TRUST_STORE_URL";

/// The system's trust store is read (`rustls-native-certs`, which takes `SSL_CERT_FILE` in
/// place of the system's files): a client without a CA bundle streams over https from the
/// emulator when `SSL_CERT_FILE` names the emulator's CA. The store is read once per
/// process, so the test binary runs this case again in a child process with that variable.
pub fn the_system_trust_store_is_read<T: Transport>(t: &T) {
    if let Ok(url) = std::env::var(TRUST_STORE_CHILD) {
        let c = t.client(&config(endpoint(&url)));
        let o = t.invoke(&c, &InvokeParams::new("streamer", "{}"));
        assert_success(&o);
        assert_eq!(o.payload(), streamer_bytes());
        return;
    }
    let h = Harness::start_tls();
    let ca = h.ca_pem_path().expect("the emulator's CA");
    let url = format!("https://{}", h.address());
    // the child's client has the suite's 60 s timeouts: it ends on its own
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "the_system_trust_store_is_read",
            "--exact",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(TRUST_STORE_CHILD, &url)
        .env("SSL_CERT_FILE", &ca)
        .env_remove("SSL_CERT_DIR")
        .output()
        .expect("the test binary again");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(h.invocations(), 1, "the child invoked the emulator");
}

/// A configuration for the emulator of `h` built from `vars` (with `HOME`, the region and
/// `AWS_ENDPOINT_URL_LAMBDA` pointing at the emulator), `config` as `~/.aws/config` and
/// `files`, all in memory
fn configured(
    h: &Harness,
    vars: &[(&str, &str)],
    config: &str,
    files: &[(&str, &str)],
) -> crate::ClientConfig {
    let endpoint = h.endpoint();
    let url = format!("{}://{}", endpoint.scheme().as_str(), h.address());
    let mut pairs: Vec<(String, String)> = vec![
        ("HOME".into(), "/home/suite".into()),
        ("AWS_REGION".into(), "us-east-1".into()),
        ("AWS_ENDPOINT_URL_LAMBDA".into(), url),
    ];
    pairs.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let mut fs = MemFs::new().with("/home/suite/.aws/config", config);
    for (path, contents) in files {
        fs.insert(*path, *contents);
    }
    let mut cfg = h.config();
    cfg.from_config = Some(FromConfig::new(Env::from_pairs(pairs), fs));
    cfg
}

/// With an emulator accepting only `key`, a client configured as [`configured`] streams
/// twice, byte-exact; the credential endpoints see `expected` requests, all for the first
/// invocation (the credentials are cached)
fn signs_with_fetched_credentials<T: Transport>(
    t: &T,
    server: &MetadataServer,
    key: (&str, &str),
    vars: &[(&str, &str)],
    config: &str,
    files: &[(&str, &str)],
    expected: &[(&str, &str)],
) {
    let h = Harness::start_accepting(key.0, key.1);
    let cfg = configured(&h, vars, config, files);
    let c = streams_with_fetched_credentials(t, &cfg, server, expected);
    // the client's `credentials()` are those it signed with, from its cache
    assert_eq!(t.access_key(&c), Ok(Some(key.0.to_owned())));
    assert_eq!(server.requests().len(), expected.len());
    // and a new client loads them for `credentials()` alone
    assert_eq!(t.access_key(&t.client(&cfg)), Ok(Some(key.0.to_owned())));
    assert!(server.requests().len() > expected.len());
}

/// A client made with `cfg` streams twice, byte-exact; the credential endpoints see
/// `expected` requests, all for the first invocation (the credentials are cached); the
/// client, for more checks
fn streams_with_fetched_credentials<T: Transport>(
    t: &T,
    cfg: &crate::ClientConfig,
    server: &MetadataServer,
    expected: &[(&str, &str)],
) -> T::Client {
    let c = t.client(cfg);
    for _ in 0..2 {
        let o = t.invoke(&c, &count(100, 10));
        assert_success(&o);
        assert!(o.payload() == count_bytes(100, 10), "byte-exact");
    }
    let seen = server.requests();
    let seen: Vec<(&str, &str)> = seen.iter().map(|(m, p)| (m.as_str(), p.as_str())).collect();
    assert_eq!(seen, expected, "the credential endpoints were asked once");
    c
}

/// `AWS_CONTAINER_CREDENTIALS_FULL_URI` + `AWS_CONTAINER_AUTHORIZATION_TOKEN` (ECS, EKS)
pub fn credentials_from_the_container_endpoint<T: Transport>(t: &T) {
    signs_with_container_credentials_at(t, &MetadataServer::start(), metadata::CONTAINER_PATH);
}

/// [`signs_with_fetched_credentials`] from the container endpoint at `path` of `server`
fn signs_with_container_credentials_at<T: Transport>(t: &T, server: &MetadataServer, path: &str) {
    let uri = format!("{}{path}", server.url());
    signs_with_fetched_credentials(
        t,
        server,
        metadata::CONTAINER_KEY,
        &container_vars(&uri),
        "",
        &[],
        &[("GET", path)],
    );
}

/// The environment of a container whose credentials are at `uri`, with the token the
/// suite's endpoint wants and instance metadata off
fn container_vars(uri: &str) -> [(&str, &str); 3] {
    [
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri),
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN",
            metadata::CONTAINER_TOKEN,
        ),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
}

/// A provider's answer is read up to [`invoke_config::MAX_RESPONSE_BODY`] (64 KiB): container
/// credentials padded to exactly that size sign the call; one byte more, and loading them
/// fails, naming the limit
pub fn credential_answers_are_read_up_to_their_limit<T: Transport>(t: &T) {
    let server = MetadataServer::start();
    let limit = invoke_config::MAX_RESPONSE_BODY;
    let path = format!("{}{limit}", metadata::PADDED_PATH);
    signs_with_container_credentials_at(t, &server, &path);
    let h = Harness::start_accepting(metadata::CONTAINER_KEY.0, metadata::CONTAINER_KEY.1);
    let uri = format!("{}{}{}", server.url(), metadata::PADDED_PATH, limit + 1);
    let vars = container_vars(&uri);
    let c = t.client(&configured(&h, &vars, "", &[]));
    let o = t.invoke(&c, &count(1, 1));
    let failure = format!("{:?}", o.failure);
    assert!(
        failure.contains(&format!("exceeds {limit} bytes")),
        "{failure}"
    );
    assert_eq!(h.invocations(), 0);
}

/// Loading credentials counts against the overall deadline: with a container endpoint that
/// takes connections and never answers, the invocation ends with the deadline error, not
/// after the providers' own limits (5 s per exchange, retried) with a credentials error
pub fn credential_loading_is_cut_at_the_overall_deadline<T: Transport>(t: &T) {
    let h = Harness::start();
    // never accepted: connections wait in its backlog, requests are never answered
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let uri = format!(
        "http://{}{}",
        silent.local_addr().expect("address"),
        metadata::CONTAINER_PATH
    );
    let mut cfg = configured(
        &h,
        &[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &uri),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
        "",
        &[],
    );
    cfg.overall_timeout = Duration::from_millis(700);
    let c = t.client(&cfg);
    let o = t.invoke(&c, &count(3, 10));
    assert!(o.head.is_none() && o.events.is_empty(), "{o:?}");
    match &o.failure {
        Some(Failure::Transport {
            kind: TransportFailure::Deadline,
            message,
            ..
        }) => assert!(message.contains("credentials"), "{message}"),
        other => panic!("not the deadline error: {other:?}"),
    }
    assert_eq!(h.invocations(), 0, "the function was not invoked");
    drop(silent);
}

/// A `credential_process` still running at the overall deadline ends the call with the
/// deadline's error and is killed then, with its process group (its own limit is 60 s): the
/// shell's own child, which killing the shell alone would leave running, is gone too
pub fn a_hanging_credential_process_is_killed_at_the_overall_deadline<T: Transport>(t: &T) {
    if !cfg!(target_os = "linux") {
        eprintln!("skipped: needs `sh` and /proc to see the command's processes");
        return;
    }
    let h = Harness::start();
    let pid_file = std::env::temp_dir().join(format!(
        "transport-suite-process-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_file(&pid_file);
    // the shell starts `sleep` as its child and notes the child's process id (written
    // whole: renamed into place), then waits for it
    let config = format!(
        "[default]\ncredential_process = sleep 120 & echo $! > \"{0}.new\" && mv \"{0}.new\" \"{0}\"; wait\n",
        pid_file.display()
    );
    let mut cfg = configured(&h, &[("AWS_EC2_METADATA_DISABLED", "true")], &config, &[]);
    // long enough for the shell to start its child on a loaded machine
    cfg.overall_timeout = Duration::from_millis(1500);
    let c = t.client(&cfg);
    let o = t.invoke(&c, &count(3, 10));
    assert!(o.head.is_none() && o.events.is_empty(), "{o:?}");
    assert!(
        matches!(
            &o.failure,
            Some(Failure::Transport {
                kind: TransportFailure::Deadline,
                ..
            })
        ),
        "not the deadline error: {:?}",
        o.failure
    );
    assert_eq!(h.invocations(), 0, "the function was not invoked");
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .expect("the command started its child")
        .trim()
        .parse()
        .expect("a process id");
    let _ = std::fs::remove_file(&pid_file);
    // running, or stopped: not yet reaped but dead (`Z`, `X`) counts as gone
    let alive = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
            !state.is_some_and(|s| s.starts_with('Z') || s.starts_with('X'))
        })
    };
    // waits for the kill (a bound, not a timing assertion): it would otherwise live 120 s
    let gone_by = std::time::Instant::now() + Duration::from_secs(20);
    while alive() && std::time::Instant::now() < gone_by {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(), "the command's child (process {pid}) still runs");
}

/// EC2 instance metadata, IMDSv2 (`AWS_EC2_METADATA_SERVICE_ENDPOINT`): a session token,
/// the role name, its credentials
pub fn credentials_from_instance_metadata<T: Transport>(t: &T) {
    let server = MetadataServer::start();
    let role = format!(
        "/latest/meta-data/iam/security-credentials/{}",
        metadata::IMDS_ROLE
    );
    signs_with_fetched_credentials(
        t,
        &server,
        metadata::IMDS_KEY,
        &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &server.url())],
        "",
        &[],
        &[
            ("PUT", "/latest/api/token"),
            ("GET", "/latest/meta-data/iam/security-credentials/"),
            ("GET", &role),
        ],
    );
    assert_token_put_framed(&server);
}

/// The first request `server` received is the IMDS token's `PUT` with `Content-Length: 0`,
/// as the SDKs send it: a chunked `PUT` whose terminating chunk the server never reads can
/// be answered with a connection reset
#[track_caller]
fn assert_token_put_framed(server: &MetadataServer) {
    let received = server.received();
    assert_eq!(
        received.first().map(|r| (
            r.method.as_str(),
            r.headers.get("content-length").map(String::as_str),
            r.headers.get("transfer-encoding")
        )),
        Some(("PUT", Some("0"), None)),
        "the token request's framing: {received:?}"
    );
}

/// A client configured from a profile: its region (which the emulator checks in the
/// signature's scope), its `max_attempts` (a throttled function is tried that often), the
/// endpoint URL of `AWS_ENDPOINT_URL_LAMBDA`, the keys of the environment
pub fn endpoint_region_and_attempts_come_from_the_config<T: Transport>(t: &T) {
    let h = Harness::start_in_region("eu-west-3");
    let url = h.endpoint().to_string();
    let env = Env::from_pairs([
        ("HOME", "/home/suite"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_ENDPOINT_URL_LAMBDA", &url),
        ("AWS_ACCESS_KEY_ID", crate::KEY),
        ("AWS_SECRET_ACCESS_KEY", crate::SECRET),
    ]);
    let fs = MemFs::new().with(
        "/home/suite/.aws/config",
        "[default]\nregion = eu-west-3\nmax_attempts = 2\n",
    );
    let mut cfg = h.config();
    cfg.from_config = Some(FromConfig::new(env, fs).with_config_retry());
    let c = t.client(&cfg);
    let at = t.endpoint(&c);
    assert_eq!(at.region(), "eu-west-3");
    assert_eq!(at.to_string(), url.trim_end_matches('/'));
    let o = t.invoke(&c, &InvokeParams::new("echo", r#"{"a":1}"#));
    assert_success(&o);
    assert!(o.payload() == br#"{"a":1}"#, "signed for eu-west-3");
    let o = t.invoke(&c, &InvokeParams::new("streamer-throttle", "{}"));
    match o.failure {
        Some(Failure::Service { error, attempts }) => {
            assert_eq!(error.status, Some(429));
            assert_eq!(attempts, Some(2), "max_attempts = 2 from the profile");
        }
        other => panic!("not a throttling error: {other:?}"),
    }
    assert_eq!(t.rate_limiter_on(&c), None, "the standard retry mode");
}

/// `retry_mode = adaptive` gives the client a rate limiter, off until a throttle turns it
/// on (one attempt, so that the test waits for no token)
pub fn the_adaptive_retry_mode_turns_its_limiter_on_at_a_throttle<T: Transport>(t: &T) {
    let h = Harness::start();
    let url = h.endpoint().to_string();
    let env = Env::from_pairs([
        ("HOME", "/home/suite"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_ENDPOINT_URL_LAMBDA", &url),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", crate::KEY),
        ("AWS_SECRET_ACCESS_KEY", crate::SECRET),
        ("AWS_MAX_ATTEMPTS", "1"),
    ]);
    let fs = MemFs::new().with(
        "/home/suite/.aws/config",
        "[default]\nretry_mode = adaptive\n",
    );
    let mut cfg = h.config();
    cfg.from_config = Some(FromConfig::new(env, fs).with_config_retry());
    let c = t.client(&cfg);
    assert_success(&t.invoke(&c, &InvokeParams::new("echo", "{}")));
    assert_eq!(t.rate_limiter_on(&c), Some(false), "no throttle yet");
    let o = t.invoke(&c, &InvokeParams::new("streamer-throttle", "{}"));
    match o.failure {
        Some(Failure::Service { error, attempts }) => {
            assert_eq!(error.status, Some(429));
            assert_eq!(attempts, Some(1));
        }
        other => panic!("not a throttling error: {other:?}"),
    }
    assert_eq!(t.rate_limiter_on(&c), Some(true));
}

/// To a service whose clock is ten minutes ahead, the first attempt's signature is expired
/// (`InvalidSignatureException`, "Signature expired"): the client takes the clock of that
/// answer's `Date` and signs a second attempt on it, which passes; the client's next call
/// starts on that clock (one attempt)
pub fn a_clock_behind_the_service_is_corrected<T: Transport>(t: &T) {
    let h = Harness::start_ahead(Duration::from_secs(600));
    let c = t.client(&h.config());
    let o = t.invoke(&c, &InvokeParams::new("echo", "{}"));
    assert_success(&o);
    assert_eq!(
        o.head.expect("head").attempts,
        2,
        "refused once, then corrected"
    );
    let o = t.invoke(&c, &InvokeParams::new("echo", "{}"));
    assert_success(&o);
    assert_eq!(o.head.expect("head").attempts, 1);
    // a client that may make one attempt only fails with the refusal
    let mut cfg = h.config();
    cfg.retry = cfg.retry.with_max_attempts(1);
    let o = t.invoke(&t.client(&cfg), &InvokeParams::new("echo", "{}"));
    match o.failure {
        Some(Failure::Service { error, attempts }) => {
            assert_eq!(error.code, "InvalidSignatureException");
            assert_eq!(attempts, Some(1));
        }
        other => panic!("not the refusal: {other:?}"),
    }
}

/// A call's `InvokeOptions::trace_id` goes out as its `X-Amzn-Trace-Id` (bytes a header
/// cannot hold percent-encoded), and the function gets it; a call without one sends none
/// (outside a Lambda function)
pub fn invoke_options_send_their_trace<T: Transport>(t: &T) {
    let h = Harness::start();
    let c = t.client(&h.config());
    let params = InvokeParams::new("trace", "{}");
    let id = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    let o = t.invoke_with(&c, &params, &InvokeOptions::new().trace_id(id));
    assert_success(&o);
    assert_eq!(String::from_utf8_lossy(&o.payload()), id);
    let o = t.invoke_with(
        &c,
        &params,
        &InvokeOptions::new().trace_id("Root=1\t\u{e9}"),
    );
    assert_success(&o);
    assert_eq!(String::from_utf8_lossy(&o.payload()), "Root=1%09%C3%A9");
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_none() {
        let o = t.invoke(&c, &params);
        assert_success(&o);
        assert_eq!(String::from_utf8_lossy(&o.payload()), "none");
    }
}

/// Every request names the client in `User-Agent` (`invoke-<transport>/<version>`), as the
/// AWS SDKs name themselves: the credential providers' exchanges and the invocation
pub fn requests_name_the_client<T: Transport>(t: &T) {
    requests_name(t, None);
}

/// With an app id configured (`AWS_SDK_UA_APP_ID`), every request's `User-Agent` names the
/// application after the client: `invoke-<transport>/<version> app/<id>`
pub fn requests_name_the_app<T: Transport>(t: &T) {
    requests_name(t, Some("suite-app_1.0"));
}

/// The requests of an invocation whose credentials come from instance metadata, each
/// checked for its `User-Agent`, `Host`, target form and framing
fn requests_name<T: Transport>(t: &T, app_id: Option<&str>) {
    let server = MetadataServer::start();
    // instance metadata for the credentials, and the same server as the Lambda endpoint,
    // which does not know the invocation's path (its 404 will do)
    let fs = MemFs::new();
    let mut vars = vec![
        ("HOME", "/home/suite".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ENDPOINT_URL_LAMBDA", server.url()),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", server.url()),
    ];
    vars.extend(app_id.map(|id| ("AWS_SDK_UA_APP_ID", id.to_owned())));
    let env = Env::from_pairs(vars);
    let mut cfg = config(endpoint(&server.url()));
    cfg.retry = cfg.retry.with_max_attempts(1);
    cfg.from_config = Some(FromConfig::new(env, fs));
    let o = t.invoke(&t.client(&cfg), &InvokeParams::new("echo", "{}"));
    assert!(o.head.is_none(), "the metadata server is no Lambda");
    let received = server.received();
    let paths: Vec<&str> = received.iter().map(|r| r.path.as_str()).collect();
    assert!(
        paths.len() == 4 && paths[3].contains("/functions/echo/"),
        "three exchanges for the credentials, then the invocation: {paths:?}"
    );
    let authority = server.url().trim_start_matches("http://").to_owned();
    for r in &received {
        let agent = r.headers.get("user-agent").map_or("", String::as_str);
        let (client, app) = match agent.split_once(' ') {
            Some((client, app)) => (client, Some(app)),
            None => (agent, None),
        };
        let expected_app = app_id.map(|id| format!("app/{id}"));
        assert!(
            client.starts_with("invoke-") && app == expected_app.as_deref(),
            "{} {}: {agent:?}",
            r.method,
            r.path
        );
        // in origin form (no proxy between), a GET without a body's framing, and every one
        // names its host, as HTTP/1.1 requires
        assert_eq!(r.target, r.path, "{} {}", r.method, r.path);
        if r.method == "GET" {
            let framing = ["content-length", "transfer-encoding"].map(|h| r.headers.get(h));
            assert_eq!(framing, [None, None], "GET {}", r.path);
        }
        assert_eq!(
            r.headers.get("host"),
            Some(&authority),
            "{} {}",
            r.method,
            r.path
        );
    }
}

/// With neither a region nor an endpoint URL configured, the region is the EC2 instance's,
/// from its metadata (IMDSv2: a session token, then the region), and so is the endpoint
pub fn region_from_instance_metadata<T: Transport>(t: &T) {
    let server = MetadataServer::start();
    let fs = MemFs::new();
    let env = Env::from_pairs([
        ("HOME", "/home/suite".to_owned()),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", server.url()),
    ]);
    let mut cfg = config(endpoint("http://127.0.0.1:9"));
    cfg.from_config = Some(FromConfig::new(env, fs));
    let client = t.client(&cfg);
    let at = t.endpoint(&client);
    assert_eq!(at.region(), metadata::IMDS_REGION);
    assert_eq!(
        at.host(),
        format!("lambda.{}.amazonaws.com", metadata::IMDS_REGION)
    );
    assert_token_put_framed(&server);
    let asked: Vec<(String, String)> = server.requests();
    assert_eq!(
        asked,
        [
            ("PUT".to_owned(), "/latest/api/token".to_owned()),
            (
                "GET".to_owned(),
                "/latest/meta-data/placement/region".to_owned()
            ),
        ]
    );
}

/// Instance metadata is asked for the region only when neither a region nor an endpoint URL
/// is configured: with `AWS_REGION`, the client signs for that region; with only
/// `AWS_ENDPOINT_URL`, for the stand-in `us-east-1`; neither asks the metadata server
pub fn region_from_instance_metadata_only_when_nothing_sets_one<T: Transport>(t: &T) {
    let server = MetadataServer::start();
    for (name, value, region, host) in [
        (
            "AWS_REGION",
            "eu-north-1",
            "eu-north-1",
            "lambda.eu-north-1.amazonaws.com",
        ),
        (
            "AWS_ENDPOINT_URL",
            "http://127.0.0.1:9",
            invoke_proto::DEFAULT_SIGNING_REGION,
            "127.0.0.1",
        ),
    ] {
        let env = Env::from_pairs([
            ("HOME", "/home/suite".to_owned()),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", server.url()),
            (name, value.to_owned()),
        ]);
        let mut cfg = config(endpoint("http://127.0.0.1:9"));
        cfg.from_config = Some(FromConfig::new(env, MemFs::new()));
        let at = t.endpoint(&t.client(&cfg));
        assert_eq!((at.region(), at.host()), (region, host), "{name}");
    }
    assert_eq!(server.requests(), [], "instance metadata was asked");
}

/// A profile with `role_arn` + `source_profile`: STS `AssumeRole` signed with the source
/// profile's keys, at the STS endpoint of a `[services]` section
pub fn credentials_from_sts_assume_role<T: Transport>(t: &T) {
    let server = MetadataServer::start();
    let config = format!(
        "[profile suite]\nrole_arn = arn:aws:iam::123456789012:role/suite\n\
         source_profile = base\nservices = loopback\n\n\
         [profile base]\naws_access_key_id = {}\naws_secret_access_key = {}\n\n\
         [services loopback]\nsts =\n  endpoint_url = {}\n",
        metadata::SOURCE_KEY.0,
        metadata::SOURCE_KEY.1,
        server.url()
    );
    signs_with_fetched_credentials(
        t,
        &server,
        metadata::ASSUME_ROLE_KEY,
        &[
            ("AWS_PROFILE", "suite"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
        &config,
        &[],
        &[("POST", "/")],
    );
}

/// An `https://` proxy (TLS to the proxy, its CA from the CA bundle): the stream goes
/// through it, byte-exact
pub fn through_an_https_proxy<T: Transport>(t: &T) {
    let h = Harness::start();
    let proxy = TlsProxy::start(h.address());
    let mut cfg = h.config();
    cfg.proxy_env = vec![("HTTP_PROXY".into(), proxy.url())];
    cfg.ca_bundle = Some(proxy.ca_file().to_path_buf());
    let c = t.client(&cfg);
    let o = t.invoke(&c, &count(200, 100));
    assert_success(&o);
    assert!(o.payload() == count_bytes(200, 100), "byte-exact");
    // a tunnel (ureq) or a request in absolute form (hyper), to the emulator
    let lines = proxy.first_lines();
    let target = h.address().to_string();
    assert!(
        !lines.is_empty() && lines.iter().all(|l| l.contains(&target)),
        "{lines:?}"
    );

    // an https endpoint through it: TLS inside the tunnel, both CAs in one bundle
    let h = Harness::start_tls();
    let proxy = TlsProxy::start(h.address());
    let bundle = proxy.ca_file().with_extension("both.pem");
    let pems = [proxy.ca_file().to_path_buf(), h.ca_pem_path().expect("CA")]
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("PEM"))
        .collect::<String>();
    std::fs::write(&bundle, pems).expect("bundle");
    let mut cfg = h.config();
    cfg.proxy_env = vec![("HTTPS_PROXY".into(), proxy.url())];
    cfg.ca_bundle = Some(bundle.clone());
    let c = t.client(&cfg);
    let o = t.invoke(&c, &count(200, 100));
    let _ = std::fs::remove_file(&bundle);
    assert_success(&o);
    assert!(o.payload() == count_bytes(200, 100), "byte-exact");
    assert_eq!(
        proxy.first_lines(),
        [format!("CONNECT {} HTTP/1.1", h.address())]
    );
}

/// STS behind the proxy the client's variables name (as the AWS CLI asks it), the
/// invocation's endpoint bypassing it through `NO_PROXY`: the credentials come through the
/// proxy (a host that only the proxy can reach), and the invocation signs with them
pub fn credentials_from_sts_through_the_proxy<T: Transport>(t: &T) {
    let server = MetadataServer::start();
    let proxy = Forwarder::proxy_to(server.address());
    // `.invalid` never resolves: only the proxy reaches it
    let sts = "http://sts.suite.invalid:8080";
    let key = metadata::WEB_IDENTITY_KEY;
    let h = Harness::start_accepting(key.0, key.1);
    let files = [(WEB_TOKEN_FILE, metadata::WEB_TOKEN)];
    let mut cfg = configured(&h, &web_identity_vars(sts), "", &files);
    cfg.proxy_env = vec![
        ("HTTP_PROXY".into(), proxy.url()),
        ("NO_PROXY".into(), "127.0.0.1".into()),
    ];
    streams_with_fetched_credentials(t, &cfg, &server, &[("POST", "/")]);
    // an absolute-form request or a tunnel, either way to the host the proxy alone reaches
    let lines = proxy.first_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0] == "POST http://sts.suite.invalid:8080/ HTTP/1.1"
            || lines[0] == "CONNECT sts.suite.invalid:8080 HTTP/1.1",
        "{lines:?}"
    );
}

/// Where the web identity cases keep their token
const WEB_TOKEN_FILE: &str = "/var/run/secrets/suite/token";

/// The environment of EKS IRSA: a web identity token file and a role, STS at `sts`
fn web_identity_vars(sts: &str) -> [(&str, &str); 5] {
    [
        ("AWS_WEB_IDENTITY_TOKEN_FILE", WEB_TOKEN_FILE),
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/suite"),
        ("AWS_ROLE_SESSION_NAME", "suite"),
        ("AWS_ENDPOINT_URL_STS", sts),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
}

/// `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` (EKS IRSA): STS
/// `AssumeRoleWithWebIdentity` at `AWS_ENDPOINT_URL_STS`
pub fn credentials_from_sts_web_identity<T: Transport>(t: &T) {
    let server = MetadataServer::start();
    signs_with_fetched_credentials(
        t,
        &server,
        metadata::WEB_IDENTITY_KEY,
        &web_identity_vars(&server.url()),
        "",
        &[(WEB_TOKEN_FILE, metadata::WEB_TOKEN)],
        &[("POST", "/")],
    );
}

/// https through a real HTTP proxy (a `CONNECT` tunnel), trusting the emulator's CA
pub fn https_through_an_http_proxy<T: Transport>(t: &T) {
    let Some(mut proxy) = Tinyproxy::start() else {
        return;
    };
    let h = Harness::start_tls();
    let mut cfg = h.config();
    cfg.ca_bundle = h.ca_pem_path();
    cfg.proxy_env = vec![("HTTPS_PROXY".into(), proxy.url())];
    let c = t.client(&cfg);
    let o = t.invoke(&c, &count(100, 100));
    assert_success(&o);
    assert!(o.payload() == count_bytes(100, 100), "byte-exact");
    assert!(
        proxy.wait_for_request(&format!("CONNECT {}", h.address())),
        "the request was tunnelled through the proxy; its log:\n{}",
        proxy.log()
    );
}

/// The shared config of profile `suite`, signing in through `[sso-session <session>]`
fn sso_profile(session: &str) -> String {
    format!(
        "[profile suite]\nsso_session = {session}\nsso_account_id = 123456789012\n\
         sso_role_name = SuiteRole\n\n\
         [sso-session {session}]\nsso_region = us-east-1\n\
         sso_start_url = https://suite.awsapps.com/start\n"
    )
}

/// A profile with `sso_session`, `sso_account_id` and `sso_role_name`: the access token from
/// the SSO token cache, then the portal's `GetRoleCredentials` at `AWS_ENDPOINT_URL_SSO`
pub fn credentials_from_the_sso_portal<T: Transport>(t: &T) {
    let server = MetadataServer::start();
    let (session, cache_file) = metadata::SSO_SESSION;
    let config = sso_profile(session);
    let cache = format!(
        r#"{{"accessToken":"{}","expiresAt":"2099-01-01T00:00:00Z","region":"us-east-1","startUrl":"https://suite.awsapps.com/start"}}"#,
        metadata::SSO_TOKEN
    );
    let cache_path = format!("/home/suite/.aws/sso/cache/{cache_file}");
    signs_with_fetched_credentials(
        t,
        &server,
        metadata::SSO_KEY,
        &[
            ("AWS_PROFILE", "suite"),
            ("AWS_ENDPOINT_URL_SSO", &server.url()),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
        &config,
        &[(&cache_path, &cache)],
        &[("GET", metadata::SSO_PATH)],
    );
}

/// An `sso-session` whose cached token has expired but holds a refresh grant: SSO OIDC
/// `CreateToken` (a JSON `POST` over the transport) gives a new token, which signs the
/// portal's request and is written back to the token cache
pub fn an_expired_sso_token_is_refreshed<T: Transport>(t: &T) {
    let server = MetadataServer::start();
    let (session, cache_file) = metadata::SSO_SESSION;
    let (refresh, client, secret) = metadata::SSO_GRANT;
    let config = sso_profile(session);
    let cache = format!(
        r#"{{"accessToken":"{}","expiresAt":"2020-01-01T00:00:00Z","refreshToken":"{refresh}","clientId":"{client}","clientSecret":"{secret}","registrationExpiresAt":"2099-01-01T00:00:00Z","region":"us-east-1","startUrl":"https://suite.awsapps.com/start"}}"#,
        metadata::SSO_TOKEN
    );
    let cache_path = format!("/home/suite/.aws/sso/cache/{cache_file}");
    let h = Harness::start_accepting(metadata::SSO_KEY.0, metadata::SSO_KEY.1);
    let url = server.url();
    let mut cfg = configured(
        &h,
        &[
            ("AWS_PROFILE", "suite"),
            ("AWS_ENDPOINT_URL_SSO", &url),
            ("AWS_ENDPOINT_URL_SSO_OIDC", &url),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
        &config,
        &[],
    );
    // files the test can look into afterwards
    let files = Arc::new(
        MemFs::new()
            .with("/home/suite/.aws/config", config.as_str())
            .with(cache_path.as_str(), cache.as_str()),
    );
    cfg.from_config.as_mut().expect("configured").fs = Arc::clone(&files) as Arc<dyn FileReader>;
    streams_with_fetched_credentials(
        t,
        &cfg,
        &server,
        &[("POST", "/token"), ("GET", metadata::SSO_PATH)],
    );
    let written: serde_json::Value =
        serde_json::from_slice(&files.contents(&cache_path).expect("the cache")).expect("JSON");
    assert_eq!(written["accessToken"], metadata::SSO_REFRESHED_TOKEN);
    assert_eq!(written["refreshToken"], "suite-next-refresh-token");
    assert_eq!(written["clientSecret"], secret, "the rest kept");
}

/// `tracing` of the credential exchanges: a `credentials_request` span (method, host, path,
/// status) and never the credentials or the container's authorization token
pub fn credential_exchanges_are_traced_without_their_secrets<T: Transport>(t: &T) {
    let server = MetadataServer::start();
    let (key, secret) = metadata::CONTAINER_KEY;
    let h = Harness::start_accepting(key, secret);
    let uri = format!("{}{}", server.url(), metadata::CONTAINER_PATH);
    let c = t.client(&configured(
        &h,
        &[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &uri),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                metadata::CONTAINER_TOKEN,
            ),
        ],
        "",
        &[],
    ));
    let recorder = crate::trace::Recorder::default();
    tracing::subscriber::with_default(recorder.clone(), || {
        assert_success(&t.invoke(&c, &InvokeParams::new("echo", "{}")));
    });
    let text = recorder.text();
    assert!(
        text.contains(r#"span credentials_request method=GET host="127.0.0.1""#)
            && text.contains(metadata::CONTAINER_PATH)
            && text.contains("status=200"),
        "{text}"
    );
    for leak in [secret, metadata::CONTAINER_TOKEN, "token-of-"] {
        assert!(!text.contains(leak), "{leak} leaked into:\n{text}");
    }
}
