//! Response head -> body bytes -> events, in memory, for every scenario

use invoke_proto::bytes::{Bytes, BytesMut};
use invoke_proto::http::{HeaderMap, HeaderValue, StatusCode};
use invoke_proto::{
    DecodeError, Event, InvokeComplete, InvokeStream, ResponseHead, RetryPolicy, ServiceErrorKind,
    StreamError, parse_response_head,
};
use invoke_proto::{Headers, Message, encode_message};

fn msg(headers: &[(&str, &str)], payload: &[u8]) -> Message {
    let mut h = Headers::builder();
    for (n, v) in headers {
        h.push(n, (*v).to_owned()).unwrap();
    }
    Message::new(h.build().unwrap(), Bytes::copy_from_slice(payload))
}

fn chunk(p: &[u8]) -> Message {
    msg(
        &[
            (":event-type", "PayloadChunk"),
            (":content-type", "application/octet-stream"),
            (":message-type", "event"),
        ],
        p,
    )
}

fn complete(json: &str) -> Message {
    msg(
        &[
            (":event-type", "InvokeComplete"),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        json.as_bytes(),
    )
}

fn body(msgs: &[Message]) -> Bytes {
    let mut w = BytesMut::new();
    for m in msgs {
        encode_message(m, &mut w).unwrap();
    }
    w.freeze()
}

/// Feeds `body` in chunks of `size`; returns the events and the end result
fn run(body: &Bytes, size: usize) -> (Vec<Event>, Result<(), StreamError>) {
    let mut s = InvokeStream::new();
    let mut out = Vec::new();
    for c in body.chunks(size.max(1)) {
        s.feed(body.slice_ref(c));
        loop {
            match s.next_event() {
                Ok(Some(e)) => out.push(e),
                Ok(None) => break,
                Err(e) => return (out, Err(e)),
            }
        }
    }
    (out, s.finish())
}

fn payload_of(events: &[Event]) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::PayloadChunk(b) => Some(b.to_vec()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn head(status: u16, headers: &[(&str, &str)]) -> ResponseHead {
    let mut map = HeaderMap::new();
    for (n, v) in headers {
        map.insert(
            invoke_proto::http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    parse_response_head(StatusCode::from_u16(status).unwrap(), &map).unwrap()
}

#[test]
fn success_any_chunking() {
    let b = body(&[chunk(b"Hello"), chunk(b", world"), complete("{}")]);
    let ResponseHead::Stream(h) = head(
        200,
        &[
            ("content-type", "text/plain"),
            ("x-amz-executed-version", "$LATEST"),
            ("x-amzn-requestid", "11111111-2222-3333-4444-555555555555"),
        ],
    ) else {
        panic!("stream head expected")
    };
    assert_eq!(h.meta.executed_version.as_deref(), Some("$LATEST"));
    assert_eq!(h.meta.content_type.as_deref(), Some("text/plain"));
    // the function's own content type, with bytes that are not ASCII: kept, read lossily
    let mut map = http::HeaderMap::new();
    map.insert(
        "content-type",
        http::HeaderValue::from_bytes(b"text/plain; name=\"\xc3\xa9\"").unwrap(),
    );
    let ResponseHead::Stream(h) = parse_response_head(StatusCode::OK, &map).unwrap() else {
        panic!("stream head expected")
    };
    assert_eq!(
        h.meta.content_type.as_deref(),
        Some("text/plain; name=\"\u{e9}\"")
    );
    for size in 1..=b.len() {
        let (events, end) = run(&b, size);
        end.unwrap();
        assert_eq!(payload_of(&events), b"Hello, world");
        assert_eq!(
            events.last(),
            Some(&Event::InvokeComplete(InvokeComplete::default()))
        );
    }
}

#[test]
fn payload_chunks_are_zero_copy() {
    let b = body(&[chunk(b"Hello"), complete("{}")]);
    let mut s = InvokeStream::new();
    s.feed(b.clone());
    let Some(Event::PayloadChunk(p)) = s.next_event().unwrap() else {
        panic!()
    };
    assert!(b.as_ptr_range().contains(&p.as_ptr()));
}

#[test]
fn function_error_and_log_tail() {
    let details = r#"{"errorType":"Error","errorMessage":"boom"}"#;
    let json = serde_json::json!({
        "ErrorCode": "Unhandled",
        "ErrorDetails": details,
        "LogResult": "U1RBUlQgUmVxdWVzdElkOiAxIFZlcnNpb246ICRMQVRFU1QKRU5EIFJlcXVlc3RJZDogMQo=",
        "SomethingNew": 1,
    });
    let (events, end) = run(&body(&[chunk(b"part"), complete(&json.to_string())]), 7);
    end.unwrap();
    let Some(Event::InvokeComplete(c)) = events.last() else {
        panic!()
    };
    assert!(c.is_error());
    assert_eq!(c.error_code.as_deref(), Some("Unhandled"));
    assert_eq!(c.error_details.as_deref(), Some(details));
    assert_eq!(
        c.decoded_log().unwrap().unwrap(),
        b"START RequestId: 1 Version: $LATEST\nEND RequestId: 1\n"
    );
    // success forms the service may use: {}, nulls, empty payload
    for ok in ["{}", r#"{"ErrorCode":null,"ErrorDetails":null}"#, ""] {
        let (events, end) = run(&body(&[complete(ok)]), 5);
        end.unwrap();
        assert_eq!(
            events,
            vec![Event::InvokeComplete(InvokeComplete::default())],
            "{ok}"
        );
    }
    // fields of another type than string are kept as their JSON text
    let (events, end) = run(
        &body(&[complete(
            r#"{"ErrorCode":5,"ErrorDetails":{"errorType":"E","errorMessage":"boom"}}"#,
        )]),
        7,
    );
    end.unwrap();
    let [Event::InvokeComplete(c)] = &events[..] else {
        panic!("{events:?}")
    };
    assert!(c.is_error());
    assert_eq!(c.error_code.as_deref(), Some("5"));
    assert_eq!(
        c.error_details.as_deref(),
        Some(r#"{"errorMessage":"boom","errorType":"E"}"#)
    );
    for bad in ["[]", "not json", "5"] {
        let (_, end) = run(&body(&[complete(bad)]), 100);
        assert!(
            matches!(end, Err(StreamError::InvalidInvokeComplete { .. })),
            "{bad}"
        );
    }
    let c = InvokeComplete {
        log_result: Some("%%%".into()),
        ..Default::default()
    };
    assert_eq!(c.decoded_log(), Err(StreamError::InvalidLogResult));
}

#[test]
fn dry_run() {
    let ResponseHead::DryRun(d) = head(204, &[("x-amzn-requestid", "r")]) else {
        panic!()
    };
    assert_eq!(d.meta.request_id.as_deref(), Some("r"));
}

#[test]
fn throttling_fields_and_retry_policy() {
    let ResponseHead::Error(e) = head(
        429,
        &[
            ("x-amzn-errortype", "TooManyRequestsException"),
            ("retry-after", "3"),
        ],
    ) else {
        panic!()
    };
    let err = e.into_error(
        br#"{"Reason":"CallerRateLimitExceeded","Type":"User","message":"Rate exceeded"}"#,
    );
    assert_eq!(err.kind, ServiceErrorKind::TooManyRequests);
    assert_eq!(err.reason.as_deref(), Some("CallerRateLimitExceeded"));
    assert_eq!(err.error_type.as_deref(), Some("User"));
    assert_eq!(err.retry_after(), Some(std::time::Duration::from_secs(3)));
    assert!(err.is_retryable());
    let never = |code: &str, status| {
        let ResponseHead::Error(e) = head(status, &[("x-amzn-errortype", code)]) else {
            panic!()
        };
        e.into_error(b"{}")
    };
    assert_eq!(
        never("ResourceNotFoundException", 404).retry_policy(),
        RetryPolicy::Never
    );
    assert_eq!(
        never("KMSDisabledException", 502).retry_policy(),
        RetryPolicy::Never
    );
    assert_eq!(
        never("EC2UnexpectedException", 502).retry_policy(),
        RetryPolicy::Limited
    );
    assert_eq!(
        never("ServiceException", 500).retry_policy(),
        RetryPolicy::Backoff
    );
    assert_eq!(
        never("InvalidSignatureException", 403).kind,
        ServiceErrorKind::InvalidSignature
    );
    assert!(!never("ExpiredTokenException", 403).is_retryable());
    let unknown = never("BrandNewException", 400);
    assert_eq!(
        (unknown.kind.clone(), unknown.code.as_str()),
        (ServiceErrorKind::Unknown, "BrandNewException")
    );
    assert!(!unknown.is_retryable());
    // unknown to Lambda's model, but throttling or transient in the SDKs' standard mode
    for code in [
        "ThrottlingException",
        "SlowDown",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "LimitExceededException",
    ] {
        assert_eq!(
            never(code, 400).retry_policy(),
            RetryPolicy::Backoff,
            "{code}"
        );
    }
    assert_eq!(never("", 400).retry_after(), None);
}

#[test]
fn garbage_error_bodies_keep_status_and_excerpt() {
    let huge = vec![b'x'; 10 << 20];
    for (status, body) in [
        (502, &b"<html><body>Bad Gateway</body></html>"[..]),
        (503, &b""[..]),
        (500, &b"{not json"[..]),
        (400, &b"[1,2,3]"[..]),
        (500, &huge[..]),
        (504, &b"\xff\xfe\x00garbage"[..]),
    ] {
        let ResponseHead::Error(e) = head(status, &[]) else {
            panic!()
        };
        let err = e.into_error(body);
        assert_eq!(err.status, Some(status));
        assert_eq!(err.kind, ServiceErrorKind::Unknown);
        assert_eq!(err.body_excerpt.is_some(), !body.is_empty());
        assert!(err.body_excerpt.as_ref().is_none_or(|x| x.len() <= 260));
        assert_eq!(err.is_retryable(), matches!(status, 503 | 504));
        let _ = err.to_string();
    }
    let deep = "[".repeat(100_000);
    let ResponseHead::Error(e) = head(500, &[]) else {
        panic!()
    };
    assert!(e.into_error(deep.as_bytes()).body_excerpt.is_some());
    let mut map = HeaderMap::new();
    map.insert("x", HeaderValue::from_static("y"));
    assert!(parse_response_head(StatusCode::from_u16(302).unwrap(), &map).is_err());
    assert!(parse_response_head(StatusCode::from_u16(202).unwrap(), &map).is_err());
}

#[test]
fn in_stream_exception_and_error() {
    let exc = msg(
        &[
            (":exception-type", "ServiceException"),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        br#"{"Message":"internal"}"#,
    );
    let (events, end) = run(&body(&[chunk(b"a"), exc, complete("{}")]), 3);
    assert_eq!(payload_of(&events), b"a");
    let Err(StreamError::Exception(e)) = end else {
        panic!("{end:?}")
    };
    assert_eq!(
        (e.kind, e.message.as_deref(), e.status),
        (ServiceErrorKind::Service, Some("internal"), None)
    );
    let err = msg(
        &[
            (":message-type", "error"),
            (":error-code", "InternalError"),
            (":error-message", "oops"),
        ],
        b"",
    );
    let (_, end) = run(&body(&[err]), 1);
    assert_eq!(
        end,
        Err(StreamError::Error {
            code: "InternalError".into(),
            message: "oops".into()
        })
    );
    let (_, end) = run(&body(&[msg(&[(":event-type", "PayloadChunk")], b"x")]), 1);
    assert_eq!(end, Err(StreamError::MissingMessageType { offset: 0 }));
    let (_, end) = run(&body(&[msg(&[(":message-type", "weird")], b"x")]), 1);
    assert!(matches!(end, Err(StreamError::UnknownMessageType { .. })));
    let (_, end) = run(&body(&[msg(&[(":message-type", "event")], b"x")]), 1);
    assert!(matches!(end, Err(StreamError::MissingEventType { .. })));
}

#[test]
fn unknown_events_pass_through_and_trailing_data_is_ignored() {
    let other = msg(
        &[(":message-type", "event"), (":event-type", "Heartbeat")],
        b"",
    );
    let b = body(&[chunk(b"a"), other, complete("{}"), chunk(b"late")]);
    let mut s = InvokeStream::new();
    s.feed(b.clone());
    let mut events = Vec::new();
    while let Some(e) = s.next_event().unwrap() {
        events.push(e);
    }
    s.feed(Bytes::from_static(b"garbage after the end"));
    s.finish().unwrap();
    assert!(matches!(&events[1], Event::Unknown { event_type, .. } if event_type == "Heartbeat"));
    assert_eq!(events.len(), 3);
    assert!(s.is_complete());
    assert_eq!(s.ignored_bytes(), chunk(b"late").wire_len() + 21);
}

#[test]
fn truncation_at_every_offset_is_an_error() {
    let b = body(&[chunk(b"Hello"), chunk(b"!"), complete("{}")]);
    let boundaries = [111u64, 111 + 107];
    for cut in 0..b.len() {
        let (events, end) = run(&b.slice(..cut), 9);
        let err = end.expect_err("a cut stream never ends cleanly");
        if cut == 0 || boundaries.contains(&(cut as u64)) {
            assert!(
                matches!(err, StreamError::MissingInvokeComplete { .. }),
                "{cut}: {err}"
            );
        } else {
            assert!(
                matches!(err, StreamError::Decode(DecodeError::Truncated { .. })),
                "{cut}: {err}"
            );
        }
        assert!(!events.iter().any(|e| matches!(e, Event::InvokeComplete(_))));
    }
}
