//! `InvokeDriver` never panics, whatever its settings and whatever the transport reports
//!
//! The input (`arbitrary`) sets the retry policy (extreme backoffs included), a deadline, a
//! rate limiter (turned on by a throttle or not, given before or after the first poll), then
//! a sequence of transport events: polls, response heads (any status, an error code from a
//! list or the input, any `Retry-After` and `Date`), error bodies, failures, body bytes and
//! the body's end, each at a time the input gives (back and forth), and signings at any time
//! (the driver corrects a clock the service refuses for time). Checked: no panic; no more
//! attempts than the policy allows; `Done` and `Fail` repeat once reached; the limiter's send
//! rate stays a finite number of at least 0.5 attempts a second; the clock's offset stays
//! within a day.
#![no_main]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arbitrary::Arbitrary;
use invoke_proto::bytes::Bytes;
use invoke_proto::http::{HeaderMap, HeaderValue, StatusCode};
use invoke_proto::{
    ClockSkew, Credentials, DriverAction, EndpointConfig, InvokeDriver, InvokeParams,
    MAX_CLOCK_OFFSET, RateLimiter, RetryConfig, RetryQuota, SigningScope, TransportFailure,
    build_request, resolve_endpoint,
};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    max_attempts: u8,
    /// Seconds and nanoseconds (up to `Duration::MAX`)
    initial_backoff: (u64, u32),
    max_backoff: (u64, u32),
    deadline_ms: Option<u32>,
    /// `Some(throttled)`: a limiter, turned on by a throttle first if `throttled`
    limiter: Option<bool>,
    /// Whether the limiter is given only after the first poll
    limiter_late: bool,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Poll,
    Head {
        status: u16,
        code: Code,
        retry_after: Option<String>,
        date: Option<String>,
        at_ms: u32,
    },
    /// Signs the current attempt at this many seconds after the epoch
    Sign(u64),
    ErrorBody {
        body: Vec<u8>,
        at_ms: u32,
        jitter: u16,
    },
    Failure {
        kind: u8,
        at_ms: u32,
        jitter: u16,
    },
    Feed(Vec<u8>),
    End,
    ReadyEvent,
}

#[derive(Arbitrary, Debug)]
enum Code {
    None,
    Throttle,
    Ec2Throttled,
    Service,
    NotFound,
    Throttling,
    InvalidSignature,
    Other(String),
}

const FAILURES: [TransportFailure; 10] = [
    TransportFailure::Connect,
    TransportFailure::ConnectTimeout,
    TransportFailure::Send,
    TransportFailure::HeadTimeout,
    TransportFailure::BodyRead,
    TransportFailure::IdleTimeout,
    TransportFailure::Deadline,
    TransportFailure::Tls,
    TransportFailure::Protocol,
    TransportFailure::Other,
];

fn duration((secs, nanos): (u64, u32)) -> Duration {
    Duration::new(secs, nanos % 1_000_000_000)
}

fuzz_target!(|input: Input| {
    let start = Instant::now();
    let at = |ms: u32| start + Duration::from_millis(u64::from(ms));
    let config = RetryConfig::default()
        .with_max_attempts(u32::from(input.max_attempts))
        .with_initial_backoff(duration(input.initial_backoff))
        .with_max_backoff(duration(input.max_backoff));
    let endpoint =
        resolve_endpoint(&EndpointConfig::default().with_custom("http://127.0.0.1:9")).unwrap();
    let request = build_request(&InvokeParams::new("f", "{}"), &endpoint).unwrap();
    let quota = Arc::new(RetryQuota::default());
    let skew = Arc::new(ClockSkew::new());
    let mut driver = InvokeDriver::new(request, SigningScope::lambda("us-east-1"), config, quota)
        .with_clock_skew(Arc::clone(&skew));
    let credentials = Credentials::new("AKID", "secret", None);
    if let Some(ms) = input.deadline_ms {
        driver = driver.with_deadline(at(ms));
    }
    let limiter = input.limiter.map(|throttled| {
        let limiter = Arc::new(RateLimiter::new(start));
        if throttled {
            limiter.update(start, true);
        }
        limiter
    });
    if let Some(l) = limiter.as_ref().filter(|_| !input.limiter_late) {
        driver = driver.with_rate_limiter(Arc::clone(l), start);
    }
    let mut polled = false;
    let mut terminal: Option<DriverAction> = None;
    for op in input.ops {
        match op {
            Op::Poll => {
                if !polled {
                    polled = true;
                    if let Some(l) = limiter.as_ref().filter(|_| input.limiter_late) {
                        driver = driver.with_rate_limiter(Arc::clone(l), start);
                    }
                }
                let action = driver.poll();
                if let Some(t) = &terminal {
                    assert_eq!(&action, t, "a terminal action repeats");
                }
                if matches!(action, DriverAction::Done | DriverAction::Fail(_)) {
                    terminal = Some(action);
                }
            }
            Op::Head {
                status,
                code,
                retry_after,
                date,
                at_ms,
            } => {
                let Ok(status) = StatusCode::from_u16(status) else {
                    continue;
                };
                let mut headers = HeaderMap::new();
                let code = match code {
                    Code::None => None,
                    Code::Throttle => Some("TooManyRequestsException".to_owned()),
                    Code::Ec2Throttled => Some("EC2ThrottledException".to_owned()),
                    Code::Service => Some("ServiceException".to_owned()),
                    Code::NotFound => Some("ResourceNotFoundException".to_owned()),
                    Code::Throttling => Some("ThrottlingException".to_owned()),
                    Code::InvalidSignature => Some("InvalidSignatureException".to_owned()),
                    Code::Other(s) => Some(s),
                };
                if let Some(v) = code.and_then(|c| HeaderValue::from_str(&c).ok()) {
                    headers.insert("x-amzn-errortype", v);
                }
                if let Some(v) = retry_after.and_then(|r| HeaderValue::from_str(&r).ok()) {
                    headers.insert("retry-after", v);
                }
                if let Some(v) = date.and_then(|d| HeaderValue::from_str(&d).ok()) {
                    headers.insert("date", v);
                }
                driver.handle_head(status, &headers, at(at_ms));
            }
            Op::ErrorBody {
                body,
                at_ms,
                jitter,
            } => driver.handle_error_body(&body, at(at_ms), f64::from(jitter) / 65536.0),
            Op::Failure {
                kind,
                at_ms,
                jitter,
            } => driver.handle_failure(
                FAILURES[usize::from(kind) % FAILURES.len()],
                at(at_ms),
                f64::from(jitter) / 65536.0,
            ),
            Op::Sign(secs) => {
                if let Some(t) = SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs)) {
                    let _ = driver.sign(&credentials, t);
                }
            }
            Op::Feed(bytes) => driver.feed(Bytes::from(bytes)),
            Op::End => driver.end_of_body(),
            Op::ReadyEvent => {
                let _ = driver.ready_event();
            }
        }
        assert!(
            driver.attempts() <= u32::from(input.max_attempts).max(1),
            "{} attempts of {}",
            driver.attempts(),
            input.max_attempts
        );
        assert!(
            skew.offset_millis().unsigned_abs() <= MAX_CLOCK_OFFSET.as_millis() as u64,
            "offset {} ms",
            skew.offset_millis()
        );
        if let Some(l) = &limiter {
            let rate = l.send_rate();
            assert!(rate.is_finite() && rate >= 0.5, "send rate {rate}");
        }
    }
});
