//! The emulator over real loopback sockets, driven by a raw hyper client and invoke-proto

mod support;

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use invoke_emulator::{
    Emulator, Faults, FunctionConfig, FunctionError, Invocation, ResponseStream,
};
use invoke_proto::Credentials;
use invoke_proto::{
    DecodeError, Event, InvocationType, InvokeComplete, InvokeParams, InvokeStream, LogType,
    ResponseHead, ServiceError, ServiceErrorKind, StreamError, parse_response_head,
};
use invoke_proto::{SigningScope, sign};
use support::{body_of, guarded, request, send};

const KEY: &str = "AKIDEMULATOR";
const SECRET: &str = "emulator-secret-key";

async fn start(builder: invoke_emulator::Builder) -> Emulator {
    builder
        .quiet()
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn signed(
    emu: &Emulator,
    params: &InvokeParams,
    key: &str,
    secret: &str,
    at: SystemTime,
) -> http::Request<Bytes> {
    let mut req = request(emu, params);
    sign(
        &mut req,
        &Credentials::new(key, secret, None),
        &SigningScope::lambda("us-east-1"),
        at,
    )
    .unwrap();
    req
}

/// The `errorType` of a stream's final event, which must report an `Unhandled` function
/// error
fn unhandled_error_type(complete: Option<&InvokeComplete>) -> String {
    let c = complete.expect("InvokeComplete");
    assert_eq!(c.error_code.as_deref(), Some("Unhandled"), "{c:?}");
    let details: serde_json::Value =
        serde_json::from_str(c.error_details.as_deref().expect("ErrorDetails")).unwrap();
    details["errorType"].as_str().expect("errorType").to_owned()
}

/// The outcome of one streamed invocation as a client sees it
#[derive(Debug)]
struct Outcome {
    /// The response's `x-amzn-RequestId`
    request_id: Option<String>,
    chunks: Vec<Bytes>,
    complete: Option<InvokeComplete>,
    error: Option<StreamError>,
}

impl Outcome {
    /// The log tail of `InvokeComplete` (asked for with `LogType::Tail`), as text
    fn log(&self) -> String {
        let c = self.complete.as_ref().expect("InvokeComplete");
        String::from_utf8(c.decoded_log().unwrap().expect("LogResult")).unwrap()
    }
}

async fn stream(resp: http::Response<Incoming>) -> Outcome {
    let (parts, mut body) = resp.into_parts();
    let ResponseHead::Stream(head) = parse_response_head(parts.status, &parts.headers).unwrap()
    else {
        panic!("not a stream: {parts:?}");
    };
    let mut out = Outcome {
        request_id: head.meta.request_id.clone(),
        chunks: vec![],
        complete: None,
        error: None,
    };
    let mut s = head.into_stream();
    loop {
        // A body error (a cut connection) ends the input like a clean end would; a frame
        // that never comes fails the test instead of hanging it
        let frame = guarded("a body frame", body.frame()).await;
        let Some(Ok(frame)) = frame else {
            if let Err(e) = s.finish() {
                out.error = Some(e);
            }
            return out;
        };
        if let Ok(data) = frame.into_data() {
            s.feed(data);
        }
        loop {
            match s.next_event() {
                Ok(Some(Event::PayloadChunk(c))) => out.chunks.push(c),
                Ok(Some(Event::InvokeComplete(c))) => out.complete = Some(c),
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    out.error = Some(e);
                    return out;
                }
            }
        }
    }
}

async fn service_error(resp: http::Response<Incoming>) -> ServiceError {
    let (parts, body) = resp.into_parts();
    let ResponseHead::Error(head) = parse_response_head(parts.status, &parts.headers).unwrap()
    else {
        panic!("not an error: {parts:?}");
    };
    head.into_error(&body_of(body).await)
}

fn joined(chunks: &[Bytes]) -> Vec<u8> {
    chunks.iter().flat_map(|c| c.iter().copied()).collect()
}

#[tokio::test]
async fn echo_count_fail() {
    let emu = start(Emulator::builder().builtins().no_auth()).await;
    let payload = serde_json::to_vec(&serde_json::json!({"data": "x".repeat(3000)})).unwrap();
    let resp = send(
        &emu,
        request(&emu, &InvokeParams::new("echo", payload.clone())),
    )
    .await;
    assert_eq!(resp.headers()["x-amz-executed-version"], "$LATEST");
    assert!(resp.headers().contains_key("x-amzn-requestid"));
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    let o = stream(resp).await;
    assert!(o.error.is_none(), "{o:?}");
    assert_eq!(joined(&o.chunks), payload);
    assert!(
        o.chunks.iter().all(|c| c.len() <= 1024) && o.chunks.len() == payload.len().div_ceil(1024)
    );
    assert_eq!(o.complete, Some(InvokeComplete::default()));

    let p = InvokeParams::new("count", r#"{"n":5,"size":30}"#);
    let o = stream(send(&emu, request(&emu, &p)).await).await;
    assert_eq!(o.chunks.len(), 5);
    let all = joined(&o.chunks);
    assert!(
        all.iter()
            .enumerate()
            .all(|(i, b)| *b == b'a' + (i % 26) as u8)
    );
    assert_eq!(all.len(), 150);

    let p = InvokeParams::new("fail", r#"{"after":2}"#);
    let o = stream(send(&emu, request(&emu, &p)).await).await;
    assert_eq!(o.chunks, vec![Bytes::from_static(b"chunk\n"); 2]);
    assert_eq!(unhandled_error_type(o.complete.as_ref()), "Error");
    emu.shutdown().await;
}

/// A streaming response's body, and the stream its bytes are fed to
fn opened(resp: http::Response<Incoming>) -> (Incoming, InvokeStream) {
    let (parts, body) = resp.into_parts();
    let ResponseHead::Stream(h) = parse_response_head(parts.status, &parts.headers).unwrap() else {
        panic!("not a stream: {parts:?}")
    };
    (body, h.into_stream())
}

/// Reads `body` into `s` up to its first payload chunk
async fn first_chunk(body: &mut Incoming, s: &mut InvokeStream) -> Bytes {
    loop {
        s.feed(body.frame().await.unwrap().unwrap().into_data().unwrap());
        if let Some(Event::PayloadChunk(c)) = s.next_event().unwrap() {
            return c;
        }
    }
}

#[tokio::test]
async fn every_write_reaches_the_client_at_once() {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let rx = std::sync::Mutex::new(Some(rx));
    let emu = start(Emulator::builder().no_auth().function(
        "gate",
        move |_: Invocation, out: ResponseStream| {
            let rx = rx.lock().unwrap().take();
            async move {
                out.write("first").await;
                // Only the client, having seen "first", can let the function go on
                rx.unwrap().await.unwrap();
                out.write("second").await;
                Ok::<(), FunctionError>(())
            }
        },
    ))
    .await;
    let resp = send(&emu, request(&emu, &InvokeParams::new("gate", ""))).await;
    let (mut body, mut s) = opened(resp);
    assert_eq!(first_chunk(&mut body, &mut s).await, "first");
    tx.send(()).unwrap();
    let mut rest = Vec::new();
    while let Some(f) = body.frame().await {
        s.feed(f.unwrap().into_data().unwrap());
        while let Some(e) = s.next_event().unwrap() {
            rest.push(e);
        }
    }
    s.finish().unwrap();
    assert_eq!(rest[0], Event::PayloadChunk(Bytes::from_static(b"second")));
    emu.shutdown().await;
}

#[tokio::test]
async fn parameters_reach_the_function() {
    let emu = start(Emulator::builder().no_auth().function(
        "ctx",
        |inv: Invocation, out: ResponseStream| async move {
            out.log("hello from the log");
            let v = serde_json::json!({
                "payload": String::from_utf8_lossy(&inv.payload),
                "client_context": inv.client_context,
                "tenant_id": inv.tenant_id,
                "arn": inv.invoked_function_arn,
            });
            out.write(v.to_string()).await;
            Ok::<(), FunctionError>(())
        },
    ))
    .await;
    let p = InvokeParams::new("arn:aws:lambda:us-east-1:123456789012:function:ctx", "")
        .qualifier("$LATEST")
        .client_context(r#"{"custom":{"k":"v"}}"#)
        .tenant_id("tenant-7")
        .log_type(LogType::Tail);
    let o = stream(send(&emu, request(&emu, &p)).await).await;
    let request_id = o.request_id.clone().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&joined(&o.chunks)).unwrap();
    assert_eq!(
        v["payload"], "{}",
        "an empty payload reaches the function as {{}}"
    );
    assert_eq!(v["client_context"], r#"{"custom":{"k":"v"}}"#);
    assert_eq!(v["tenant_id"], "tenant-7");
    assert_eq!(
        v["arn"],
        "arn:aws:lambda:us-east-1:123456789012:function:ctx:$LATEST"
    );
    // the function's line between the service's START and END / REPORT lines
    let log = o.log();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 4, "{log:?}");
    let id = lines[0]
        .strip_prefix("START RequestId: ")
        .and_then(|l| l.strip_suffix(" Version: $LATEST"))
        .unwrap_or_else(|| panic!("{log:?}"));
    assert_eq!(id, request_id, "{log:?}");
    assert_eq!(lines[1], "hello from the log");
    assert_eq!(lines[2], format!("END RequestId: {id}"));
    let report = lines[3]
        .strip_prefix(&format!("REPORT RequestId: {id}\tDuration: "))
        .unwrap_or_else(|| panic!("{log:?}"));
    assert!(report.contains(" ms\tBilled Duration: "), "{log:?}");
    // a function in the emulator's process has no initialization of its own to report
    assert!(!report.contains("Init Duration"), "{log:?}");
    assert!(log.ends_with(" ms\t\n"), "{log:?}");
    // partial ARN and name:qualifier forms
    for name in [
        "123456789012:function:ctx",
        "ctx:$LATEST",
        "us-east-1:123456789012:function:ctx",
    ] {
        let o = stream(send(&emu, request(&emu, &InvokeParams::new(name, "{}"))).await).await;
        assert!(o.complete.is_some(), "{name}");
    }
    emu.shutdown().await;
}

/// An emulator in `region` whose function `ctx` writes the ARN it was invoked by
async fn arn_reporter(region: &str) -> Emulator {
    start(Emulator::builder().no_auth().region(region).function(
        "ctx",
        |inv: Invocation, out: ResponseStream| async move {
            out.write(inv.invoked_function_arn.clone()).await;
            Ok::<(), FunctionError>(())
        },
    ))
    .await
}

#[tokio::test]
async fn functions_see_their_arn_and_other_regions_or_partitions_are_not_found() {
    // the account given, the region's partition
    for (region, name, arn) in [
        (
            "us-east-1",
            "111122223333:function:ctx",
            "arn:aws:lambda:us-east-1:111122223333:function:ctx",
        ),
        (
            "cn-north-1",
            "arn:aws-cn:lambda:cn-north-1:123456789012:function:ctx:$LATEST",
            "arn:aws-cn:lambda:cn-north-1:123456789012:function:ctx:$LATEST",
        ),
        (
            "us-gov-west-1",
            "us-gov-west-1:123456789012:function:ctx",
            "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:ctx",
        ),
    ] {
        let emu = arn_reporter(region).await;
        let o = stream(send(&emu, request(&emu, &InvokeParams::new(name, "{}"))).await).await;
        assert_eq!(joined(&o.chunks), arn.as_bytes(), "{name}");
        emu.shutdown().await;
    }
    // a function of another region is not reachable here, as the service answers; nor is a
    // full ARN of the region in another partition
    let emu = arn_reporter("us-east-1").await;
    let other_region = "Functions from 'eu-west-1' are not reachable in this region ('us-east-1')";
    let other_partition = |name: &str| format!("Function not found: {name}");
    for (name, message) in [
        (
            "arn:aws:lambda:eu-west-1:123456789012:function:ctx",
            other_region.to_owned(),
        ),
        (
            "eu-west-1:123456789012:function:ctx",
            other_region.to_owned(),
        ),
        (
            "arn:aws-cn:lambda:us-east-1:123456789012:function:ctx",
            other_partition("arn:aws-cn:lambda:us-east-1:123456789012:function:ctx"),
        ),
        (
            "arn::lambda:us-east-1:123456789012:function:ctx",
            other_partition("arn::lambda:us-east-1:123456789012:function:ctx"),
        ),
    ] {
        let e =
            service_error(send(&emu, request(&emu, &InvokeParams::new(name, "{}"))).await).await;
        assert_eq!(e.kind, ServiceErrorKind::ResourceNotFound, "{name}");
        assert_eq!(e.message.as_deref(), Some(message.as_str()), "{name}");
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn a_region_no_client_could_use_is_refused_at_start() {
    for region in ["", "us east 1", "eu/west-1", "x-"] {
        let err = Emulator::builder()
            .region(region)
            .start(([127, 0, 0, 1], 0).into())
            .await
            .expect_err(region);
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{region:?}");
        assert!(err.to_string().contains("invalid region"), "{err}");
    }
    // not region-shaped, but a region a client can be configured with
    let emu = start(Emulator::builder().region("local")).await;
    emu.shutdown().await;
}

#[tokio::test]
async fn dry_run_and_buffered_invoke() {
    let emu = start(Emulator::builder().builtins().no_auth()).await;
    let p = InvokeParams::new("echo", "{}").invocation_type(InvocationType::DryRun);
    let resp = send(&emu, request(&emu, &p)).await;
    assert_eq!(resp.status(), 204);
    // the buffered Invoke route serves the same functions
    let mut req = request(
        &emu,
        &InvokeParams::new("fail", r#"{"after":1}"#).log_type(LogType::Tail),
    );
    *req.uri_mut() = format!("{}/2015-03-31/functions/fail/invocations", emu.url())
        .parse()
        .unwrap();
    let resp = send(&emu, req).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-amz-function-error"], "Unhandled");
    let log = base64::engine::general_purpose::STANDARD
        .decode(resp.headers()["x-amz-log-result"].as_bytes())
        .unwrap();
    assert!(
        String::from_utf8(log)
            .unwrap()
            .contains("failing on purpose")
    );
    let body = body_of(resp.into_body()).await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["errorType"], "Error");
    emu.shutdown().await;
}

#[tokio::test]
async fn service_errors() {
    let limited = FunctionConfig {
        concurrency: Some(1),
        ..FunctionConfig::default()
    };
    let (hold_tx, hold_rx) = tokio::sync::watch::channel(false);
    let emu = start(Emulator::builder().builtins().no_auth().function_with(
        "busy",
        move |_: Invocation, out: ResponseStream| {
            let mut hold = hold_rx.clone();
            async move {
                out.write("started").await;
                let _ = hold.wait_for(|v| *v).await;
                Ok::<(), FunctionError>(())
            }
        },
        limited,
    ))
    .await;
    let e = service_error(send(&emu, request(&emu, &InvokeParams::new("nope", "{}"))).await).await;
    assert_eq!(
        (e.kind, e.status),
        (ServiceErrorKind::ResourceNotFound, Some(404))
    );
    assert!(e.message.unwrap().contains("function:nope"));
    let e =
        service_error(send(&emu, request(&emu, &InvokeParams::new("echo:prod", "{}"))).await).await;
    assert_eq!(
        e.kind,
        ServiceErrorKind::ResourceNotFound,
        "unknown qualifier"
    );
    // invalid parameters (sent raw: our own client would refuse to build them)
    let mut req = request(&emu, &InvokeParams::new("echo", "{}"));
    *req.uri_mut() = format!(
        "{}/2021-11-15/functions/echo/response-streaming-invocations?Qualifier=a.b",
        emu.url()
    )
    .parse()
    .unwrap();
    let e = service_error(send(&emu, req).await).await;
    assert_eq!(
        (e.kind, e.status),
        (ServiceErrorKind::InvalidParameterValue, Some(400))
    );
    let mut req = request(&emu, &InvokeParams::new("echo", "{}"));
    req.headers_mut()
        .insert("x-amz-log-type", "Everything".parse().unwrap());
    assert_eq!(
        service_error(send(&emu, req).await).await.kind,
        ServiceErrorKind::InvalidParameterValue
    );
    let mut req = request(&emu, &InvokeParams::new("echo", "{}"));
    *req.body_mut() = Bytes::from(vec![b' '; 6 * 1024 * 1024 + 1]);
    req.headers_mut()
        .insert("content-length", (6 * 1024 * 1024 + 1).into());
    let e = service_error(send(&emu, req).await).await;
    assert_eq!(
        (e.kind, e.status),
        (ServiceErrorKind::RequestTooLarge, Some(413))
    );
    let mut req = request(&emu, &InvokeParams::new("echo", "{}"));
    req.headers_mut()
        .insert("content-type", "multipart/form-data".parse().unwrap());
    let e = service_error(send(&emu, req).await).await;
    assert_eq!(
        (e.kind, e.status),
        (ServiceErrorKind::UnsupportedMediaType, Some(415))
    );
    let e = service_error(send(&emu, request(&emu, &InvokeParams::new("echo", "not json"))).await)
        .await;
    assert_eq!(e.kind, ServiceErrorKind::InvalidRequestContent);
    // concurrency 1: the second concurrent call is throttled
    let first = send(&emu, request(&emu, &InvokeParams::new("busy", "{}"))).await;
    let (_, mut body) = first.into_parts();
    let _ = body.frame().await; // the function is running
    let e = service_error(send(&emu, request(&emu, &InvokeParams::new("busy", "{}"))).await).await;
    assert_eq!(
        (e.kind.clone(), e.status),
        (ServiceErrorKind::TooManyRequests, Some(429))
    );
    assert_eq!(e.retry_after(), Some(Duration::from_secs(1)));
    assert!(e.is_retryable());
    hold_tx.send(true).unwrap();
    while body.frame().await.is_some() {}
    let o = stream(send(&emu, request(&emu, &InvokeParams::new("busy", "{}"))).await).await;
    assert!(
        o.complete.is_some(),
        "served again once the first call ended"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn sigv4_is_verified() {
    let emu = start(Emulator::builder().builtins().credentials(KEY, SECRET)).await;
    let p = InvokeParams::new("echo", r#"{"a":1}"#);
    let now = SystemTime::now();
    let o = stream(send(&emu, signed(&emu, &p, KEY, SECRET, now)).await).await;
    assert_eq!(joined(&o.chunks), br#"{"a":1}"#);
    let e = service_error(send(&emu, signed(&emu, &p, KEY, "wrong", now)).await).await;
    assert_eq!(
        (e.kind, e.status),
        (ServiceErrorKind::InvalidSignature, Some(403))
    );
    let e = service_error(send(&emu, signed(&emu, &p, "AKIDUNKNOWN", SECRET, now)).await).await;
    assert_eq!(
        (e.kind, e.status),
        (ServiceErrorKind::UnrecognizedClient, Some(403))
    );
    let stale = now - Duration::from_secs(6 * 60);
    let e = service_error(send(&emu, signed(&emu, &p, KEY, SECRET, stale)).await).await;
    assert_eq!(
        (e.kind, e.status),
        (ServiceErrorKind::InvalidSignature, Some(403))
    );
    let e = service_error(send(&emu, request(&emu, &p)).await).await;
    assert_eq!(
        (e.kind, e.status),
        (ServiceErrorKind::MissingAuthenticationToken, Some(403))
    );
    // a signed header changed after signing
    let mut req = signed(&emu, &p, KEY, SECRET, now);
    *req.body_mut() = Bytes::from_static(br#"{"a":2}"#);
    assert_eq!(
        service_error(send(&emu, req).await).await.kind,
        ServiceErrorKind::InvalidSignature
    );
    emu.shutdown().await;
    // without --credentials any well-formed signature passes, a missing one does not
    let emu = start(Emulator::builder().builtins()).await;
    let o = stream(send(&emu, signed(&emu, &p, "ANYKEY", "any", now)).await).await;
    assert!(o.complete.is_some());
    let e = service_error(send(&emu, request(&emu, &p)).await).await;
    assert_eq!(e.kind, ServiceErrorKind::MissingAuthenticationToken);
    emu.shutdown().await;
}

/// The `Date` of a response, as a time
fn date_of(resp: &http::Response<Incoming>) -> SystemTime {
    let date = resp.headers()[http::header::DATE].to_str().unwrap();
    invoke_proto::parse_http_date(date).unwrap_or_else(|| panic!("a Date: {date}"))
}

/// An emulator whose clock runs an hour ahead checks signatures against its own time and
/// tells it in the `Date` of every response, refusals and streams alike (a minute's margin
/// either side for the test's own run)
#[tokio::test]
async fn a_clock_ahead_checks_signatures_by_its_time_and_dates_every_response() {
    let hour = Duration::from_secs(3600);
    let emu = start(
        Emulator::builder()
            .builtins()
            .credentials(KEY, SECRET)
            .clock_ahead(hour),
    )
    .await;
    let near_an_hour_ahead = |date: SystemTime| {
        let ahead = date.duration_since(SystemTime::now()).unwrap_or_default();
        assert!(
            ahead > Duration::from_secs(59 * 60) && ahead < Duration::from_secs(61 * 60),
            "{ahead:?} ahead"
        );
    };
    let p = InvokeParams::new("echo", r#"{"a":1}"#);
    let now = SystemTime::now();
    let refused = send(&emu, signed(&emu, &p, KEY, SECRET, now)).await;
    near_an_hour_ahead(date_of(&refused));
    let e = service_error(refused).await;
    assert_eq!(
        (e.kind, e.status),
        (ServiceErrorKind::InvalidSignature, Some(403))
    );
    let served = send(&emu, signed(&emu, &p, KEY, SECRET, now + hour)).await;
    near_an_hour_ahead(date_of(&served));
    assert_eq!(joined(&stream(served).await.chunks), br#"{"a":1}"#);
    emu.shutdown().await;
}

async fn with_fault(fault: &str) -> Outcome {
    let emu = start(Emulator::builder().builtins().no_auth()).await;
    let mut req = request(&emu, &InvokeParams::new("count", r#"{"n":3,"size":100}"#));
    req.headers_mut()
        .insert("x-emulator-fault", fault.parse().unwrap());
    let o = stream(send(&emu, req).await).await;
    emu.shutdown().await;
    o
}

/// Whether each message of a whole event stream has its message CRC right
fn message_crcs_right(mut body: &[u8]) -> Vec<bool> {
    let mut right = Vec::new();
    while body.len() >= 4 {
        let len = u32::from_be_bytes(body[..4].try_into().unwrap()) as usize;
        let (message, rest) = body.split_at(len);
        let (covered, crc) = message.split_at(len - 4);
        right.push(crc32fast::hash(covered).to_be_bytes() == crc);
        body = rest;
    }
    assert!(body.is_empty(), "a message cut short");
    right
}

/// `end-early` ends the body cleanly (its last HTTP chunk sent) after the first chunk event,
/// without `InvokeComplete`
#[tokio::test]
async fn end_early_ends_the_body_cleanly_without_invoke_complete() {
    let emu = start(Emulator::builder().builtins().no_auth()).await;
    let mut req = request(&emu, &InvokeParams::new("count", r#"{"n":3,"size":100}"#));
    req.headers_mut()
        .insert("x-emulator-fault", "end-early".parse().unwrap());
    // a whole body, not a cut connection: one chunk event, whole, and nothing after it
    let body = body_of(send(&emu, req).await.into_body()).await;
    assert_eq!(message_crcs_right(&body), [true]);
    emu.shutdown().await;
    let o = with_fault("end-early").await;
    assert_eq!(o.chunks.len(), 1);
    assert!(o.complete.is_none());
    assert!(
        matches!(
            o.error,
            Some(StreamError::MissingInvokeComplete { chunks: 1, .. })
        ),
        "{o:?}"
    );
}

/// `corrupt-crc` spoils the first chunk event's message CRC, and no other
#[tokio::test]
async fn corrupt_crc_spoils_the_first_message_alone() {
    let emu = start(Emulator::builder().builtins().no_auth()).await;
    let mut req = request(&emu, &InvokeParams::new("count", r#"{"n":3,"size":100}"#));
    req.headers_mut()
        .insert("x-emulator-fault", "corrupt-crc".parse().unwrap());
    let body = body_of(send(&emu, req).await.into_body()).await;
    // three chunk events and the InvokeComplete
    assert_eq!(message_crcs_right(&body), [false, true, true, true]);
    emu.shutdown().await;
}

#[tokio::test]
async fn faults_give_the_errors_a_client_must_report() {
    let o = with_fault("corrupt-crc").await;
    assert!(
        matches!(
            o.error,
            Some(StreamError::Decode(DecodeError::MessageCrc {
                offset: 0,
                ..
            }))
        ),
        "{o:?}"
    );
    let o = with_fault("close-after=150").await;
    assert!(
        matches!(
            o.error,
            Some(StreamError::Decode(DecodeError::Truncated { .. }))
        ),
        "{o:?}"
    );
    assert_eq!(o.chunks.len(), 0);
    let o = with_fault("exception").await;
    assert_eq!(o.chunks.len(), 1);
    let Some(StreamError::Exception(e)) = o.error else {
        panic!("{o:?}")
    };
    assert_eq!(e.kind, ServiceErrorKind::Service);
    let o = with_fault("oversize").await;
    assert!(
        matches!(
            o.error,
            Some(StreamError::Decode(DecodeError::LimitExceeded { .. }))
        ),
        "{o:?}"
    );
    let o = with_fault("delay-ms=1").await;
    assert_eq!((o.chunks.len(), o.complete.is_some()), (3, true));
    let emu = start(Emulator::builder().builtins().no_auth()).await;
    let mut req = request(&emu, &InvokeParams::new("echo", "{}"));
    req.headers_mut()
        .insert("x-emulator-fault", "throttle".parse().unwrap());
    assert_eq!(
        service_error(send(&emu, req).await).await.kind,
        ServiceErrorKind::TooManyRequests
    );
    // stall: the first chunk and half a frame arrive, then nothing: the stream is open and
    // incomplete
    let mut req = request(&emu, &InvokeParams::new("echo", "{}"));
    req.headers_mut()
        .insert("x-emulator-fault", "stall".parse().unwrap());
    let (_, mut body) = send(&emu, req).await.into_parts();
    let mut s = InvokeStream::new();
    let mut got = 0;
    // a 108-byte PayloadChunk of `{}`, then half of the 102-byte InvokeComplete
    let read = async {
        while got < 108 + 51 {
            let d = body.frame().await.unwrap().unwrap().into_data().unwrap();
            got += d.len();
            s.feed(d);
        }
    };
    // a guard against hanging CI, not a timing assertion
    guarded("the stalled bytes arrive", read).await;
    assert_eq!(
        s.next_event().unwrap(),
        Some(Event::PayloadChunk(Bytes::from_static(b"{}")))
    );
    assert_eq!(s.next_event().unwrap(), None);
    emu.shutdown().await; // closes the held connection
    assert!(body.frame().await.is_none_or(|f| f.is_err()));
    assert!(matches!(
        s.finish(),
        Err(StreamError::Decode(DecodeError::Truncated { .. }))
    ));
}

#[tokio::test]
async fn per_function_throttle_and_timeout() {
    let cfg = FunctionConfig {
        throttle_next: 2,
        ..FunctionConfig::default()
    };
    let slow = FunctionConfig {
        timeout: Duration::from_millis(50),
        faults: Faults::default(),
        ..FunctionConfig::default()
    };
    let emu = start(
        Emulator::builder()
            .no_auth()
            .function_arc("echo2", invoke_emulator::builtin("echo").unwrap(), cfg)
            .function_with(
                "sleepy",
                |_: Invocation, out: ResponseStream| async move {
                    out.write("a").await;
                    std::future::pending::<()>().await;
                    Ok::<(), FunctionError>(())
                },
                slow,
            ),
    )
    .await;
    for _ in 0..2 {
        let e =
            service_error(send(&emu, request(&emu, &InvokeParams::new("echo2", "{}"))).await).await;
        assert_eq!(e.kind, ServiceErrorKind::TooManyRequests);
    }
    assert!(
        stream(send(&emu, request(&emu, &InvokeParams::new("echo2", "{}"))).await)
            .await
            .complete
            .is_some()
    );
    let sleepy = InvokeParams::new("sleepy", "{}").log_type(LogType::Tail);
    let o = stream(send(&emu, request(&emu, &sleepy)).await).await;
    let id = o.request_id.clone().unwrap();
    let log = o.log();
    assert!(log.ends_with(" ms\tStatus: timeout\t\n"), "{log:?}");
    // before END, the service's line: `2024-01-15T12:00:03.123Z <id> Task timed out after …`
    let lines: Vec<&str> = log.lines().collect();
    let end = lines.iter().position(|l| l.starts_with("END")).unwrap();
    let (time, rest) = lines[end - 1].split_at(24);
    assert_eq!(
        rest,
        format!(" {id} Task timed out after 0.05 seconds"),
        "{log:?}"
    );
    let shape: String = time
        .chars()
        .map(|c| if c.is_ascii_digit() { '9' } else { c })
        .collect();
    assert_eq!(shape, "9999-99-99T99:99:99.999Z", "{log:?}");
    let details = o.complete.unwrap().error_details.unwrap();
    assert!(details.contains("Sandbox.Timedout"));
    emu.shutdown().await;
}

#[tokio::test]
async fn content_type_is_set_or_refused_without_breaking_the_stream() {
    let emu = start(
        Emulator::builder()
            .no_auth()
            .function("typed", |_: Invocation, out: ResponseStream| async move {
                out.set_content_type("text/plain; charset=utf-8")
                    .await
                    .unwrap();
                out.write("ok").await;
                Ok::<(), FunctionError>(())
            })
            .function(
                "badly-typed",
                |_: Invocation, out: ResponseStream| async move {
                    let refused = out.set_content_type("text/plain\r\nx-injected: 1").await;
                    let message = refused.unwrap_err().to_string();
                    assert!(
                        message.contains("not a valid HTTP header value"),
                        "{message}"
                    );
                    out.write("still ok").await;
                    Ok::<(), FunctionError>(())
                },
            ),
    )
    .await;
    let resp = send(&emu, request(&emu, &InvokeParams::new("typed", ""))).await;
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    let o = stream(resp).await;
    assert_eq!(o.chunks, vec![Bytes::from_static(b"ok")]);
    // the refused value is not sent: the default content type stays and the stream completes
    let resp = send(&emu, request(&emu, &InvokeParams::new("badly-typed", ""))).await;
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    assert!(!resp.headers().contains_key("x-injected"));
    let o = stream(resp).await;
    assert!(o.error.is_none(), "{o:?}");
    assert_eq!(o.chunks, vec![Bytes::from_static(b"still ok")]);
    assert_eq!(o.complete, Some(InvokeComplete::default()));
    emu.shutdown().await;
}

#[tokio::test]
async fn fault_header_throttle_n_throttles_this_and_the_next_requests() {
    let emu = start(Emulator::builder().builtins().no_auth()).await;
    let echo = InvokeParams::new("echo", "{}");
    let mut req = request(&emu, &echo);
    req.headers_mut()
        .insert("x-emulator-fault", "throttle=3".parse().unwrap());
    assert_eq!(
        service_error(send(&emu, req).await).await.kind,
        ServiceErrorKind::TooManyRequests,
        "the request carrying the header is the first of the 3"
    );
    // another function is not affected
    let o = stream(send(&emu, request(&emu, &InvokeParams::new("count", "{}"))).await).await;
    assert!(o.complete.is_some(), "{o:?}");
    for i in 2..=3 {
        let e = service_error(send(&emu, request(&emu, &echo)).await).await;
        assert_eq!(e.kind, ServiceErrorKind::TooManyRequests, "request {i}");
    }
    let o = stream(send(&emu, request(&emu, &echo)).await).await;
    assert!(o.complete.is_some(), "the 4th is served: {o:?}");
    // throttle=0 throttles nothing
    let mut req = request(&emu, &echo);
    req.headers_mut()
        .insert("x-emulator-fault", "throttle=0".parse().unwrap());
    assert!(stream(send(&emu, req).await).await.complete.is_some());
    emu.shutdown().await;
}

/// A buffered `Invoke` request for `params` with `X-Amz-Invocation-Type: Event`
fn event_invoke(emu: &Emulator, params: &InvokeParams) -> http::Request<Bytes> {
    buffered_invoke(emu, params, "Event")
}

/// A buffered `Invoke` request for `params` with this `X-Amz-Invocation-Type`
fn buffered_invoke(
    emu: &Emulator,
    params: &InvokeParams,
    invocation_type: &'static str,
) -> http::Request<Bytes> {
    let mut req = request(emu, params);
    let name = params.function_name();
    *req.uri_mut() = format!("{}/2015-03-31/functions/{name}/invocations", emu.url())
        .parse()
        .unwrap();
    req.headers_mut().insert(
        "x-amz-invocation-type",
        http::HeaderValue::from_static(invocation_type),
    );
    req
}

#[tokio::test]
async fn event_invoke_answers_202_and_runs_the_function_in_the_background() {
    // The function reports its payload, then holds until the test lets it go: the 202 must
    // come while it still runs
    let (started_tx, mut started) =
        tokio::sync::mpsc::unbounded_channel::<(Bytes, Option<String>)>();
    let release = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel::<()>();
    let gate = std::sync::Arc::clone(&release);
    let emu = start(Emulator::builder().builtins().no_auth().function(
        "held",
        move |inv: Invocation, out: ResponseStream| {
            let (started_tx, gate, done_tx) = (
                started_tx.clone(),
                std::sync::Arc::clone(&gate),
                done_tx.clone(),
            );
            async move {
                let _ = started_tx.send((inv.payload.clone(), inv.client_context.clone()));
                out.write("output nobody reads").await;
                let _permit = gate.acquire().await;
                let _ = done_tx.send(());
                Ok::<(), FunctionError>(())
            }
        },
    ))
    .await;
    // each wait is guarded against hanging (a synchronous answer would wait for the release
    // forever), not a timing assertion
    // the service passes a client context on for synchronous invocations only
    let p = InvokeParams::new("held", r#"{"k":"event"}"#)
        .log_type(LogType::Tail)
        .client_context(r#"{"custom":{"k":"v"}}"#);
    let resp = guarded(
        "the 202 arrives while the function runs",
        send(&emu, event_invoke(&emu, &p)),
    )
    .await;
    assert_eq!(resp.status(), 202);
    assert!(resp.headers().contains_key("x-amzn-requestid"));
    for absent in ["x-amz-function-error", "x-amz-log-result"] {
        assert!(!resp.headers().contains_key(absent), "{:?}", resp.headers());
    }
    let body = body_of(resp.into_body()).await;
    assert!(body.is_empty(), "{body:?}");
    let (payload, client_context) = guarded("the function started", started.recv())
        .await
        .unwrap();
    assert_eq!(&payload[..], br#"{"k":"event"}"#);
    assert_eq!(client_context, None);
    release.add_permits(1);
    guarded("the function runs to its end", done.recv())
        .await
        .unwrap();
    // a synchronous call of the same function gets it
    release.add_permits(1);
    let req = buffered_invoke(&emu, &p, "RequestResponse");
    assert_eq!(send(&emu, req).await.status(), 200);
    let (_, client_context) = guarded("the function started", started.recv())
        .await
        .unwrap();
    assert_eq!(client_context.as_deref(), Some(r#"{"custom":{"k":"v"}}"#));
    guarded("the function runs to its end", done.recv())
        .await
        .unwrap();
    // a function error is not the caller's either
    let p = InvokeParams::new("fail", r#"{"after":2}"#);
    let resp = send(&emu, event_invoke(&emu, &p)).await;
    assert_eq!(resp.status(), 202);
    assert!(!resp.headers().contains_key("x-amz-function-error"));
    // RequestResponse on the same route still answers 200 with the output
    let req = buffered_invoke(
        &emu,
        &InvokeParams::new("echo", r#"{"x":1}"#),
        "RequestResponse",
    );
    let resp = send(&emu, req).await;
    assert_eq!(resp.status(), 200);
    let body = body_of(resp.into_body()).await;
    assert_eq!(&body[..], br#"{"x":1}"#);
    emu.shutdown().await;
}

/// The emulator `builder` makes, started with its log lines sent to the receiver returned
/// (not `start`: that one is quiet)
async fn logged(
    builder: invoke_emulator::Builder,
) -> (Emulator, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let (lines_tx, lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    let emu = builder
        .log_sink(move |line| {
            let _ = lines_tx.send(line.to_owned());
        })
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    (emu, lines)
}

/// The built-ins without auth, with responses limited to `max_response` bytes, and the
/// emulator's log lines
async fn logged_builtins(
    max_response: u64,
) -> (Emulator, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let builder = Emulator::builder().builtins().no_auth();
    logged(builder.max_response_bytes(max_response)).await
}

/// The next log line about an asynchronous invocation of `function` (its end), guarded
/// (`what` names it if it does not come)
async fn event_end_line(
    lines: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    function: &str,
    what: &str,
) -> String {
    let about = format!("Invoke (Event) {function}");
    let wanted = async {
        loop {
            let line = lines.recv().await.expect("log");
            if line.contains(&about) {
                return line;
            }
        }
    };
    guarded(what, wanted).await
}

#[tokio::test]
async fn an_event_invocation_takes_no_more_output_than_a_stream_would() {
    // `count` writes on for as long as its output is open: past the response limit the
    // emulator closes it, so the function ends instead of running until its timeout
    let (emu, mut lines) = logged_builtins(64 * 1024).await;
    let p = InvokeParams::new("count", r#"{"n":1000000000000,"size":1024}"#);
    assert_eq!(send(&emu, event_invoke(&emu, &p)).await.status(), 202);
    let line = event_end_line(
        &mut lines,
        "count",
        "the function ended well before its timeout",
    )
    .await;
    let discarded: u64 = line
        .split(" -> 202, ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    // the limit, and what the channel still held when it was reached
    assert!(
        (64 * 1024..=(64 + 256) * 1024).contains(&discarded),
        "{line}"
    );
    assert!(line.contains("Function.ResponseSizeTooLarge"), "{line}");
    // empty writes are not made at all (they spun until the function's timeout)
    let p = InvokeParams::new("count", r#"{"n":1000000000000,"size":0}"#);
    let o = guarded(
        "count ends at once",
        stream(send(&emu, request(&emu, &p)).await),
    )
    .await;
    assert_eq!(o.complete, Some(InvokeComplete::default()), "{o:?}");
    emu.shutdown().await;
}

/// An asynchronous invocation whose output is exactly the response limit is not cut, even
/// when its function ends well after its last write was taken (`count` in
/// [`an_event_invocation_may_write_exactly_the_response_limit`] ends at once, its result
/// queued before the emulator sees the write): the function's own result is logged
#[tokio::test]
async fn an_event_function_ending_after_writing_exactly_the_limit_succeeds() {
    let exact = |_: Invocation, out: ResponseStream| async move {
        out.write(Bytes::from(vec![b'x'; 64 * 1024])).await;
        // the emulator takes the write meanwhile
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok::<(), FunctionError>(())
    };
    let builder = Emulator::builder().no_auth().function("exact", exact);
    let (emu, mut lines) = logged(builder.max_response_bytes(64 * 1024)).await;
    let p = InvokeParams::new("exact", "{}");
    assert_eq!(send(&emu, event_invoke(&emu, &p)).await.status(), 202);
    let line = event_end_line(&mut lines, "exact", "the end of `exact`").await;
    assert!(
        line.contains("65536 payload bytes discarded") && line.ends_with(", ok"),
        "{line}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn event_invocations_running_at_once_are_bounded() {
    // each holds until the test ends: without a bound, every Event request would leave one
    // more running in the background
    let release = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let gate = std::sync::Arc::clone(&release);
    let limits = invoke_emulator::ServerLimits {
        max_event_invocations: 2,
        ..invoke_emulator::ServerLimits::default()
    };
    let emu = start(
        Emulator::builder()
            .builtins()
            .no_auth()
            .limits(limits)
            .function("held", move |_: Invocation, _: ResponseStream| {
                let gate = std::sync::Arc::clone(&gate);
                async move {
                    let _permit = gate.acquire().await;
                    Ok::<(), FunctionError>(())
                }
            }),
    )
    .await;
    let held = InvokeParams::new("held", "{}");
    for _ in 0..2 {
        assert_eq!(send(&emu, event_invoke(&emu, &held)).await.status(), 202);
    }
    let e = service_error(send(&emu, event_invoke(&emu, &held)).await).await;
    assert_eq!(e.kind, ServiceErrorKind::TooManyRequests);
    assert_eq!(
        e.reason.as_deref(),
        Some("ConcurrentInvocationLimitExceeded")
    );
    // synchronous invocations are not counted against it
    let o = stream(send(&emu, request(&emu, &InvokeParams::new("echo", "{}"))).await).await;
    assert!(o.complete.is_some(), "{o:?}");
    release.add_permits(2);
    emu.shutdown().await;
}

#[tokio::test]
async fn shutdown_abandons_invocations_still_running_in_the_background() {
    /// Tells the test when the function's future is dropped
    struct Dropped(Option<tokio::sync::oneshot::Sender<()>>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            if let Some(tx) = self.0.take() {
                let _ = tx.send(());
            }
        }
    }
    let (dropped_tx, dropped) = tokio::sync::oneshot::channel::<()>();
    let dropped_tx = std::sync::Mutex::new(Some(dropped_tx));
    let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel::<()>();
    let emu = start(Emulator::builder().no_auth().function(
        "forever",
        move |_: Invocation, _: ResponseStream| {
            let guard = Dropped(dropped_tx.lock().unwrap().take());
            let started_tx = started_tx.clone();
            async move {
                let _guard = guard;
                let _ = started_tx.send(());
                std::future::pending::<()>().await;
                Ok::<(), FunctionError>(())
            }
        },
    ))
    .await;
    let resp = send(
        &emu,
        event_invoke(&emu, &InvokeParams::new("forever", "{}")),
    )
    .await;
    assert_eq!(resp.status(), 202);
    guarded("the function started", started.recv()).await;
    emu.shutdown().await;
    // a guard against hanging, not a timing assertion: before, the run went on to its
    // timeout (300 s)
    guarded("the run was abandoned at shutdown", dropped)
        .await
        .unwrap();
}

#[tokio::test]
async fn event_payloads_over_one_megabyte_are_refused() {
    let emu = start(Emulator::builder().builtins().no_auth()).await;
    // exactly 1 MiB passes, one byte more does not, refused before the function is looked
    // up (as the synchronous limit is)
    let max = invoke_proto::MAX_EVENT_PAYLOAD_LEN;
    let at_most = InvokeParams::new("echo", format!("\"{}\"", "x".repeat(max - 2)));
    assert_eq!(send(&emu, event_invoke(&emu, &at_most)).await.status(), 202);
    let over = InvokeParams::new("no-such-function", format!("\"{}\"", "x".repeat(max - 1)));
    let e = service_error(send(&emu, event_invoke(&emu, &over)).await).await;
    assert_eq!(e.kind, ServiceErrorKind::RequestTooLarge);
    assert_eq!(
        e.message.as_deref(),
        Some("Request must be smaller than 1048576 bytes for the InvokeFunction operation")
    );
    let big = format!(r#"{{"x":"{}"}}"#, "a".repeat(1024 * 1024));
    let e = service_error(
        send(
            &emu,
            event_invoke(&emu, &InvokeParams::new("echo", big.clone())),
        )
        .await,
    )
    .await;
    assert_eq!(
        (e.kind, e.status),
        (ServiceErrorKind::RequestTooLarge, Some(413))
    );
    // the same payload synchronously is within the 6 MB limit
    let req = buffered_invoke(&emu, &InvokeParams::new("echo", big), "RequestResponse");
    assert_eq!(send(&emu, req).await.status(), 200);
    // over the synchronous limit, the message names the buffered operation as the service
    // does (not InvokeWithResponseStream)
    let mut req = buffered_invoke(&emu, &InvokeParams::new("echo", "{}"), "RequestResponse");
    req.headers_mut()
        .insert("content-length", (6 * 1024 * 1024 + 1).into());
    *req.body_mut() = Bytes::from(vec![b' '; 6 * 1024 * 1024 + 1]);
    let e = service_error(send(&emu, req).await).await;
    assert_eq!(e.status, Some(413));
    let message = e.message.unwrap_or_default();
    assert!(
        message.ends_with("for the InvokeFunction operation"),
        "{message}"
    );
    emu.shutdown().await;
}

/// Tells the test, on `tx`, when the function's future is dropped (its run ended, by its own
/// return or its timeout)
struct Dropped(tokio::sync::mpsc::UnboundedSender<()>);

impl Drop for Dropped {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// A function that timed out frees its concurrency slot at once, whatever its client does:
/// here its stream is stalled (`stall`), so the function's writes fill what the emulator
/// holds for the client and its result waits behind them, unread until the stream ends (the
/// stall gives up after 15 minutes)
///
/// On this single-threaded runtime the slot is freed in the same poll that drops the
/// function's future, before the test sees the drop: no race between the two.
#[tokio::test]
async fn a_timed_out_function_frees_its_slot_though_its_stream_is_stalled() {
    let config = FunctionConfig {
        concurrency: Some(1),
        timeout: Duration::from_millis(200),
        ..FunctionConfig::default()
    };
    let (dropped_tx, mut dropped) = tokio::sync::mpsc::unbounded_channel::<()>();
    let emu = start(Emulator::builder().no_auth().function_with(
        "spin",
        move |_: Invocation, out: ResponseStream| {
            let guard = Dropped(dropped_tx.clone());
            async move {
                let _guard = guard;
                let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
                loop {
                    out.write(chunk.clone()).await;
                }
            }
        },
        config,
    ))
    .await;
    let mut req = request(&emu, &InvokeParams::new("spin", "{}"));
    req.headers_mut()
        .insert("x-emulator-fault", "stall".parse().unwrap());
    let stalled = send(&emu, req).await;
    assert_eq!(stalled.status(), 200);
    // a guard against hanging, not a timing assertion
    guarded("the function timed out", dropped.recv())
        .await
        .unwrap();
    // before, a 429: the slot was held until the stalled stream ended
    let next = send(&emu, request(&emu, &InvokeParams::new("spin", "{}"))).await;
    assert_eq!(next.status(), 200, "{:?}", next.headers());
    drop((stalled, next));
    emu.shutdown().await;
}

/// An asynchronous invocation holds its event slot until its function ends, even once the
/// emulator stopped taking its output (past the response limit); and no longer
#[tokio::test]
async fn an_event_invocation_holds_its_slot_until_its_function_ends() {
    let (dropped_tx, mut dropped) = tokio::sync::mpsc::unbounded_channel::<()>();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let held = std::sync::Arc::clone(&gate);
    let builder = Emulator::builder()
        .no_auth()
        .max_response_bytes(1024)
        .limits(invoke_emulator::ServerLimits {
            max_event_invocations: 1,
            ..invoke_emulator::ServerLimits::default()
        })
        .function("over", move |_: Invocation, out: ResponseStream| {
            let held = std::sync::Arc::clone(&held);
            let guard = Dropped(dropped_tx.clone());
            async move {
                let _guard = guard;
                // over the limit: the emulator stops taking the output; the function goes on
                out.write(vec![b'x'; 2048]).await;
                let _permit = held.acquire().await;
                Ok::<(), FunctionError>(())
            }
        });
    let (emu, mut lines) = logged(builder).await;
    let over = InvokeParams::new("over", "{}");
    assert_eq!(send(&emu, event_invoke(&emu, &over)).await.status(), 202);
    let line = guarded("the output is no longer taken", lines.recv())
        .await
        .unwrap();
    assert!(line.contains("Function.ResponseSizeTooLarge"), "{line}");
    // the function still runs: its slot is taken (before, it was freed with the output)
    let e = service_error(send(&emu, event_invoke(&emu, &over)).await).await;
    assert_eq!(
        e.reason.as_deref(),
        Some("ConcurrentInvocationLimitExceeded")
    );
    // once it ends, the slot is free (freed in the poll that ends it: no race on this
    // single-threaded runtime)
    gate.add_permits(1);
    guarded("the function ended", dropped.recv()).await.unwrap();
    assert_eq!(send(&emu, event_invoke(&emu, &over)).await.status(), 202);
    gate.add_permits(1);
    emu.shutdown().await;
}

/// Small writes and large ones stream whole and in order, 256-byte writes one chunk event
/// each (`count` makes its writes of at most 64 KiB: the events one write of S bytes makes)
#[tokio::test]
async fn writes_of_any_size_stream_whole() {
    let emu = start(Emulator::builder().builtins().no_auth()).await;
    for (n, size) in [(4096, 256), (64, 64 * 1024), (3, 100_000), (1, 16 << 20)] {
        let payload = format!(r#"{{"n":{n},"size":{size}}}"#);
        let o = stream(send(&emu, request(&emu, &InvokeParams::new("count", payload))).await).await;
        assert!(o.error.is_none(), "{n} x {size}: {:?}", o.error);
        assert_eq!(o.complete, Some(InvokeComplete::default()), "{n} x {size}");
        if size < 16 * 1024 {
            // (the client may hand a longer event out in slices)
            assert_eq!(o.chunks.len(), n, "{n} x {size}");
        }
        let all = joined(&o.chunks);
        assert_eq!(all.len(), n * size);
        assert!(
            all.iter()
                .enumerate()
                .all(|(i, b)| *b == b'a' + (i % 26) as u8),
            "{n} x {size}"
        );
    }
    emu.shutdown().await;
}

/// A response of exactly the limit streams whole; one byte more ends the stream with the
/// function error `Function.ResponseSizeTooLarge`, after the chunks within the limit
#[tokio::test]
async fn the_response_limit_lets_exactly_its_size_through() {
    let emu = start(
        Emulator::builder()
            .builtins()
            .no_auth()
            .max_response_bytes(1024),
    )
    .await;
    let p = InvokeParams::new("count", r#"{"n":2,"size":512}"#);
    let o = stream(send(&emu, request(&emu, &p)).await).await;
    assert_eq!(joined(&o.chunks).len(), 1024);
    assert_eq!(o.complete, Some(InvokeComplete::default()));
    let p = InvokeParams::new("count", r#"{"n":2,"size":513}"#);
    let o = stream(send(&emu, request(&emu, &p)).await).await;
    assert_eq!(joined(&o.chunks).len(), 513);
    assert_eq!(
        unhandled_error_type(o.complete.as_ref()),
        "Function.ResponseSizeTooLarge"
    );
    emu.shutdown().await;
}

/// A buffered `Invoke`'s response may be 6 MiB + 100 bytes, as the service allows; one byte
/// more is the function error `Function.ResponseSizeTooLarge`, with no payload
#[tokio::test]
async fn a_buffered_response_may_be_6_mib_and_100_bytes() {
    let emu = start(Emulator::builder().builtins().no_auth()).await;
    let limit = 6 * 1024 * 1024 + 100;
    for (size, fits) in [(limit, true), (limit + 1, false)] {
        let p = InvokeParams::new("count", format!(r#"{{"n":1,"size":{size}}}"#));
        let resp = send(&emu, buffered_invoke(&emu, &p, "RequestResponse")).await;
        assert_eq!(resp.status(), 200);
        let function_error = resp.headers().get("x-amz-function-error").cloned();
        let body = body_of(resp.into_body()).await;
        if fits {
            assert_eq!((function_error, body.len()), (None, size));
        } else {
            assert_eq!(function_error.unwrap(), "Unhandled");
            let e: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(e["errorType"], "Function.ResponseSizeTooLarge", "{e}");
        }
    }
    emu.shutdown().await;
}

/// A function's qualifiers: those configured (and `$LATEST`) are found, any other is not;
/// a numeric one (a version) is the executed version, an alias runs `$LATEST`
#[tokio::test]
async fn configured_qualifiers_are_found_and_versions_are_executed() {
    let config = FunctionConfig {
        qualifiers: vec!["1".to_owned(), "live".to_owned()],
        ..FunctionConfig::default()
    };
    let emu = start(Emulator::builder().no_auth().function_with(
        "versioned",
        |_: Invocation, out: ResponseStream| async move {
            out.write("ok").await;
            Ok::<(), FunctionError>(())
        },
        config,
    ))
    .await;
    for (qualifier, executed) in [("1", "1"), ("live", "$LATEST"), ("$LATEST", "$LATEST")] {
        let p = InvokeParams::new("versioned", "{}").qualifier(qualifier);
        let resp = send(&emu, request(&emu, &p)).await;
        assert_eq!(
            resp.headers()["x-amz-executed-version"],
            executed,
            "{qualifier}"
        );
        assert!(stream(resp).await.complete.is_some(), "{qualifier}");
    }
    for qualifier in ["2", "prod"] {
        let p = InvokeParams::new("versioned", "{}").qualifier(qualifier);
        let e = service_error(send(&emu, request(&emu, &p)).await).await;
        assert_eq!(e.kind, ServiceErrorKind::ResourceNotFound, "{qualifier}");
        assert!(
            e.message
                .unwrap()
                .ends_with(&format!("function:versioned:{qualifier}")),
            "{qualifier}"
        );
    }
    emu.shutdown().await;
}

/// An asynchronous invocation's output of exactly the response limit is taken whole and
/// the function succeeds; one byte more is `Function.ResponseSizeTooLarge`
#[tokio::test]
async fn an_event_invocation_may_write_exactly_the_response_limit() {
    let (emu, mut lines) = logged_builtins(1024).await;
    for (size, logged) in [
        (512, "1024 payload bytes discarded"),
        (513, "Function.ResponseSizeTooLarge"),
    ] {
        let p = InvokeParams::new("count", format!(r#"{{"n":2,"size":{size}}}"#));
        assert_eq!(send(&emu, event_invoke(&emu, &p)).await.status(), 202);
        let line = event_end_line(&mut lines, "count", "the function's end is logged").await;
        assert!(line.contains(logged), "{line}");
        if size == 512 {
            assert!(!line.contains("ResponseSizeTooLarge"), "{line}");
        }
    }
    emu.shutdown().await;
}

/// A signature's date may be up to 5 minutes from the emulator's clock either way, as the
/// service allows: 4 minutes passes, 6 minutes is `InvalidSignatureException`
#[tokio::test]
async fn signatures_may_be_dated_within_5_minutes_of_the_clock() {
    let emu = start(Emulator::builder().builtins()).await;
    let p = InvokeParams::new("echo", "{}");
    let now = SystemTime::now();
    let minutes = |m: u64| Duration::from_secs(m * 60);
    for at in [now - minutes(4), now + minutes(4)] {
        let o = stream(send(&emu, signed(&emu, &p, "ANYKEY", "any", at)).await).await;
        assert!(o.complete.is_some(), "{o:?}");
    }
    for at in [now - minutes(6), now + minutes(6)] {
        let e = service_error(send(&emu, signed(&emu, &p, "ANYKEY", "any", at)).await).await;
        assert_eq!(e.kind, ServiceErrorKind::InvalidSignature, "{e:?}");
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn every_key_pair_given_is_accepted() {
    let emu = start(
        Emulator::builder()
            .builtins()
            .credentials(KEY, SECRET)
            .credentials("AKIDSECOND", "second-secret"),
    )
    .await;
    let p = InvokeParams::new("echo", "{}");
    let now = SystemTime::now();
    for (key, secret) in [(KEY, SECRET), ("AKIDSECOND", "second-secret")] {
        let o = stream(send(&emu, signed(&emu, &p, key, secret, now)).await).await;
        assert!(o.complete.is_some(), "{key}: {o:?}");
    }
    // each key with its own secret only
    let e = service_error(send(&emu, signed(&emu, &p, "AKIDSECOND", SECRET, now)).await).await;
    assert_eq!(e.kind, ServiceErrorKind::InvalidSignature);
    emu.shutdown().await;
}

/// Once `shutdown` returns, the port is closed and so is a stream still open
#[tokio::test]
async fn shutdown_returns_once_the_listener_and_its_connections_are_closed() {
    let emu = start(Emulator::builder().no_auth().function(
        "forever",
        |_: Invocation, out: ResponseStream| async move {
            out.write("first").await;
            std::future::pending::<()>().await;
            Ok::<(), FunctionError>(())
        },
    ))
    .await;
    let addr = emu.addr();
    let resp = send(&emu, request(&emu, &InvokeParams::new("forever", "{}"))).await;
    let (mut body, mut s) = opened(resp);
    first_chunk(&mut body, &mut s).await;
    emu.shutdown().await;
    let refused = tokio::net::TcpStream::connect(addr).await;
    assert_eq!(
        refused.map(|_| ()).unwrap_err().kind(),
        std::io::ErrorKind::ConnectionRefused
    );
    // a guard against hanging, not a timing assertion
    guarded("the stream was closed", async {
        while let Some(f) = body.frame().await {
            match f {
                Ok(f) => s.feed(f.into_data().unwrap()),
                Err(_) => return,
            }
        }
    })
    .await;
    assert!(s.finish().is_err(), "no InvokeComplete: cut, not ended");
}
