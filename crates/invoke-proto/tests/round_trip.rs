//! Round trips through both sides of the wire: what one side writes, the other reads back
//! unchanged
//!
//! - params -> `build_request` -> `parse_request` == params
//! - events -> messages -> bytes -> `InvokeStream` (fed in any chunks) == events
//! - service error -> response -> `parse_response_head` / `into_error` == error

use std::time::Duration;

use invoke_proto::bytes::{Bytes, BytesMut};
use invoke_proto::{EndpointConfig, resolve_endpoint};
use invoke_proto::{
    Event, InvocationType, InvokeComplete, InvokeParams, LogType, Operation, ResponseHead,
    ServiceError, ServiceErrorKind, StreamError, build_request, encode_payload_chunk,
    parse_request, parse_response_head,
};
use invoke_proto::{Headers, Message};
use invoke_testkit::strategies::cuts;
use invoke_testkit::{event_wire, stream_at};
use proptest::prelude::*;

/// Any valid `FunctionName` form, with the `:qualifier` suffix it carries, if any
fn function_name() -> impl Strategy<Value = (String, Option<String>)> {
    // not dots alone (URL dot segments, refused)
    let name = "[a-zA-Z0-9_.-]{0,39}[a-zA-Z0-9_-]";
    let qualifier = prop_oneof![
        Just("$LATEST".to_owned()),
        Just("$LATEST.PUBLISHED".to_owned()),
        "[a-zA-Z0-9_-]{1,20}",
    ];
    let prefix = prop_oneof![
        Just(String::new()),
        Just("123456789012:function:".to_owned()),
        Just("us-east-1:123456789012:function:".to_owned()),
        Just("arn:aws:lambda:eu-west-3:123456789012:function:".to_owned()),
        Just("arn:aws-cn:lambda:cn-north-1:123456789012:function:".to_owned()),
    ];
    (prefix, name, proptest::option::of(qualifier)).prop_map(|(p, n, q)| match &q {
        Some(q) => (format!("{p}{n}:{q}"), Some(q.clone())),
        None => (format!("{p}{n}"), None),
    })
}

/// Any parameters the client sends and the server accepts (a client context is a JSON
/// object, as the service requires)
fn params() -> impl Strategy<Value = InvokeParams> {
    (
        function_name(),
        proptest::option::of(prop_oneof![
            Just("$LATEST".to_owned()),
            "[a-zA-Z0-9_-]{1,20}"
        ]),
        proptest::collection::vec(any::<u8>(), 0..200),
        proptest::option::of(prop_oneof![
            Just(InvocationType::RequestResponse),
            Just(InvocationType::DryRun)
        ]),
        proptest::option::of(prop_oneof![Just(LogType::None), Just(LogType::Tail)]),
        proptest::option::of(proptest::collection::btree_map(
            "[a-z]{1,6}",
            ".{0,12}",
            0..4,
        )),
        // spaces inside only: HTTP trims them at the ends (refused there)
        proptest::option::of("[A-Za-z0-9._:/=+@-]([A-Za-z0-9._:/=+@ -]{0,38}[A-Za-z0-9._:/=+@-])?"),
        any::<bool>(),
    )
        .prop_map(
            |((name, in_name), q, payload, it, lt, cc, tenant, repeat_q)| {
                let mut p = InvokeParams::new(name, payload);
                // A qualifier parameter must repeat a qualifier the name carries
                match (in_name, repeat_q) {
                    (Some(n), true) => p = p.qualifier(n),
                    (Some(_), false) => {}
                    (None, _) => {
                        if let Some(q) = q {
                            p = p.qualifier(q);
                        }
                    }
                }
                if let Some(t) = it {
                    p = p.invocation_type(t);
                }
                if let Some(t) = lt {
                    p = p.log_type(t);
                }
                if let Some(cc) = cc {
                    p = p.client_context(serde_json::json!({ "custom": cc }).to_string());
                }
                if let Some(t) = tenant {
                    p = p.tenant_id(t);
                }
                p
            },
        )
}

fn optional_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(".{0,30}")
}

/// Any event sequence a function can produce, ending with `InvokeComplete`
fn events() -> impl Strategy<Value = Vec<Event>> {
    let chunk = proptest::collection::vec(any::<u8>(), 0..300)
        .prop_map(|b| Event::PayloadChunk(Bytes::from(b)));
    let unknown = (
        "[A-Z][a-zA-Z]{0,12}",
        proptest::collection::vec(any::<u8>(), 0..40),
    )
        .prop_filter("a known event type", |(t, _)| {
            t != "PayloadChunk" && t != "InvokeComplete"
        })
        .prop_map(|(event_type, payload)| {
            let mut h = Headers::builder();
            h.push(":message-type", "event")
                .unwrap()
                .push(":event-type", event_type.clone())
                .unwrap();
            Event::Unknown {
                event_type,
                message: Message::new(h.build().unwrap(), payload),
            }
        });
    let body = proptest::collection::vec(prop_oneof![4 => chunk, 1 => unknown], 0..8);
    let complete = (optional_text(), optional_text(), optional_text()).prop_map(|(c, d, l)| {
        Event::InvokeComplete(InvokeComplete {
            error_code: c,
            error_details: d,
            log_result: l,
        })
    });
    (body, complete).prop_map(|(mut body, complete)| {
        body.push(complete);
        body
    })
}

/// A sample of kinds: modeled 4xx and 5xx, both message spellings, throttling, unmodeled
fn kind() -> impl Strategy<Value = ServiceErrorKind> {
    prop::sample::select(vec![
        ServiceErrorKind::ResourceNotFound,
        ServiceErrorKind::InvalidParameterValue,
        ServiceErrorKind::TooManyRequests,
        ServiceErrorKind::Service,
        ServiceErrorKind::Ec2Unexpected,
        ServiceErrorKind::RequestTooLarge,
        ServiceErrorKind::SnapStartNotReady,
        ServiceErrorKind::UnrecognizedClient,
        ServiceErrorKind::AccessDenied,
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn params_survive_build_request_and_server_parse(p in params()) {
        let endpoint = resolve_endpoint(&EndpointConfig::default().with_region("us-west-2")).unwrap();
        let (parts, body) = build_request(&p, &endpoint).unwrap().into_parts();
        let parsed = parse_request(&parts.method, &parts.uri, &parts.headers, body).unwrap();
        prop_assert_eq!(parsed.operation, Operation::InvokeWithResponseStream);
        prop_assert_eq!(parsed.params, p);
    }

    #[test]
    fn events_survive_encoding_and_any_chunking(
        events in events(),
        cuts in cuts(20),
    ) {
        let wire = event_wire(&events);
        let cuts = cuts.within(wire.len());
        let (got, end) = stream_at(&wire, &cuts);
        prop_assert_eq!(end, Ok(()));
        prop_assert_eq!(got, events);
    }

    #[test]
    fn payload_chunk_fast_path_equals_the_event_encoder(
        payload in proptest::collection::vec(any::<u8>(), 0..2000),
    ) {
        let mut fast = BytesMut::from(&b"prefix"[..]);
        encode_payload_chunk(&payload, &mut fast).unwrap();
        let mut general = BytesMut::from(&b"prefix"[..]);
        let event = Event::PayloadChunk(Bytes::from(payload));
        invoke_proto::encode_message(&event.to_message(), &mut general).unwrap();
        prop_assert_eq!(fast, general);
    }

    #[test]
    fn exceptions_survive_the_stream(
        before in events(),
        kind in kind(),
        message in ".{0,40}",
        cuts in cuts(10),
    ) {
        // the events before the exception, without their InvokeComplete
        let before = &before[..before.len() - 1];
        let error = ServiceError::new(kind.clone(), message.clone());
        let mut wire = BytesMut::new();
        for e in before {
            e.encode(&mut wire).unwrap();
        }
        invoke_proto::encode_message(&error.to_exception_message().unwrap(), &mut wire)
            .unwrap();
        let wire = wire.freeze();
        let cuts = cuts.within(wire.len());
        let (got, end) = stream_at(&wire, &cuts);
        prop_assert_eq!(&got[..], before);
        let Err(StreamError::Exception(got)) = end else {
            panic!("expected an exception, got {end:?}");
        };
        prop_assert_eq!(&got.kind, &kind);
        prop_assert_eq!(got.code.as_str(), kind.code().unwrap());
        prop_assert_eq!(got.message.as_deref(), Some(message.as_str()));
        prop_assert_eq!(got.status, None);
    }

    #[test]
    fn service_errors_survive_the_response(
        kind in kind(),
        message in ".{0,40}",
        retry_after in proptest::option::of(0u64..86_400),
        reason in proptest::option::of("[A-Za-z]{1,30}"),
        request_id in proptest::option::of("[a-f0-9-]{1,36}"),
    ) {
        let mut error = ServiceError::new(kind, message);
        if let Some(s) = retry_after {
            error = error.with_retry_after(Duration::from_secs(s));
        }
        if let Some(r) = reason {
            error = error.with_reason(r);
        }
        if let Some(id) = request_id {
            error = error.with_request_id(id);
        }
        let (parts, body) = error.to_response().into_parts();
        let ResponseHead::Error(head) = parse_response_head(parts.status, &parts.headers).unwrap()
        else {
            panic!("an error status is an error head");
        };
        let got = head.into_error(&body);
        prop_assert_eq!(got.retry_after(), retry_after.map(Duration::from_secs));
        prop_assert_eq!(got, error);
    }
}
