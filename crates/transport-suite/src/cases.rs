//! The cases; each takes the transport under test
//!
//! Expected outcomes follow the emulator's fault table. Names: `t` transport, `h` harness,
//! `c` client, `o` outcome, `r` read outcome.
#![allow(clippy::many_single_char_names)]

use std::io::ErrorKind;
use std::net::TcpListener;
use std::time::Duration;

use invoke_proto::Limits;
use invoke_proto::{
    DecodeError, Event, InvocationType, InvokeParams, LogType, RetryConfig, StreamError,
    TransportFailure,
};

use crate::harness::{STREAMER_CHUNK, STREAMER_CHUNKS, config, endpoint, streamer_byte};
use crate::proxy::Tinyproxy;
use crate::{Failure, Forwarder, Harness, Outcome, Transport};

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

/// `throttle=2`: two 429s, then success on the third attempt
pub fn throttle_n_then_success<T: Transport>(t: &T) {
    let (h, _c, o) = invoke_function(t, "streamer-throttle2");
    assert_success(&o);
    assert_eq!(o.payload(), streamer_bytes());
    assert_eq!(o.head.expect("head").attempts, 3);
    assert_eq!(h.invocations(), 1);
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

/// `delay-ms`: slow chunks all arrive, each as its own event
pub fn delay_ms_delivers_every_chunk<T: Transport>(t: &T) {
    let (_h, _c, o) = invoke_function(t, "streamer-delay");
    assert_success(&o);
    assert_eq!(o.chunks(), STREAMER_CHUNKS);
    assert_eq!(o.payload(), streamer_bytes());
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

/// Nothing listens: retried, then a connect error naming the address
pub fn connection_refused_names_the_address<T: Transport>(t: &T) {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    }; // closed again: connecting is refused
    let c = t.client(&config(endpoint(&format!("http://{addr}"))));
    let o = t.invoke(&c, &InvokeParams::new("echo", "{}"));
    match o.failure {
        Some(Failure::Transport {
            kind: TransportFailure::Connect,
            attempts,
            message,
        }) => {
            assert_eq!(attempts, Some(3), "connect failures are retried");
            assert!(message.contains(&addr.to_string()), "{message}");
        }
        other => panic!("not a connect error: {other:?}"),
    }
}

/// A server that accepts and never answers: the head timeout, per attempt
pub fn head_timeout<T: Transport>(t: &T) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s); // never answered, kept open
        }
    });
    let mut cfg = config(endpoint(&format!("http://{addr}")));
    cfg.head_timeout = Duration::from_millis(200);
    cfg.retry = cfg.retry.with_max_attempts(2);
    let c = t.client(&cfg);
    let o = t.invoke(&c, &InvokeParams::new("echo", "{}"));
    match o.failure {
        Some(Failure::Transport {
            kind: TransportFailure::HeadTimeout,
            attempts,
            ..
        }) => assert_eq!(attempts, Some(2)),
        other => panic!("not a head timeout: {other:?}"),
    }
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
