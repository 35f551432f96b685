//! A function built on the official `lambda_runtime` crate (`src/bin/stream_fn.rs`)
//!
//! First, against a minimal stub of the Runtime API, the exact bytes `lambda_runtime` posts
//! to `/response` are pinned: its JSON metadata prelude, 8 NUL bytes, the function's lines,
//! and on a mid-stream failure the error lines it writes into the body (the
//! [custom runtime response streaming](https://docs.aws.amazon.com/lambda/latest/dg/runtimes-custom.html#runtimes-custom-response-streaming)
//! contract). Then the emulator runs the same binary as a real process function, and both the
//! official `aws-sdk-lambda` and invoke-proto's `InvokeStream` (over a raw hyper client) must
//! receive exactly what the function streamed.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// The metadata prelude `lambda_runtime` sends before a streamed body that sets none
const PRELUDE: &[u8] =
    br#"{"statusCode":200,"headers":{"content-type":"application/octet-stream"},"cookies":[]}"#;
/// The delimiter after the prelude
const DELIMITER: [u8; 8] = [0; 8];
/// The `Content-Type` of every streamed `lambda_runtime` response
const HTTP_INTEGRATION: &str = "application/vnd.awslambda.http-integration-response";

/// What `stream_fn` streams for `lines` lines: prelude, delimiter, `chunk 0\n` ...
fn streamed(lines: u64) -> Vec<u8> {
    let mut out = [PRELUDE, &DELIMITER].concat();
    for n in 0..lines {
        out.extend_from_slice(format!("chunk {n}\n").as_bytes());
    }
    out
}

/// The error text `stream_fn` fails with after `m` lines
fn failure(m: u64) -> String {
    format!("stream_fn failed after {m} chunks")
}

/// The lines `lambda_runtime` writes into the body (not as HTTP trailers) when the stream fails
fn error_lines(message: &str) -> Vec<u8> {
    format!(
        "Lambda-Runtime-Function-Error-Type: Runtime.StreamError\r\n\
         Lambda-Runtime-Function-Error-Body: {}\r\n",
        base64::engine::general_purpose::STANDARD.encode(message)
    )
    .into_bytes()
}

#[test]
fn the_prelude_is_what_lambda_runtime_serialises() {
    // lambda_runtime fills in the default content type, then serialises the prelude
    let mut prelude = lambda_runtime::MetadataPrelude::default();
    prelude.headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/octet-stream"),
    );
    assert_eq!(serde_json::to_vec(&prelude).unwrap(), PRELUDE);
}

/// One `/response` post a runtime made
#[derive(Debug)]
struct Posted {
    path: String,
    headers: http::HeaderMap,
    body: Bytes,
    trailers: Option<http::HeaderMap>,
}

/// A minimal Runtime API: `/next` hands out `events` in order (then holds the poll open),
/// every other request is recorded and answered `202`
async fn stub_runtime_api(events: Vec<&'static str>) -> (String, mpsc::UnboundedReceiver<Posted>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let events = Arc::new(Mutex::new(VecDeque::from(events)));
    let (posted_tx, posted_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut id = 0_u32;
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let events = Arc::clone(&events);
            let posted_tx = posted_tx.clone();
            id += 1;
            let base = id * 1000;
            let serial = Arc::new(std::sync::atomic::AtomicU32::new(base));
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                    let events = Arc::clone(&events);
                    let posted_tx = posted_tx.clone();
                    let serial = Arc::clone(&serial);
                    async move {
                        if req.uri().path() == "/2018-06-01/runtime/invocation/next" {
                            let next = events.lock().unwrap().pop_front();
                            let Some(event) = next else {
                                // no more work: a real long poll would wait here
                                std::future::pending::<()>().await;
                                unreachable!()
                            };
                            let n = serial.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let deadline = std::time::SystemTime::now()
                                .duration_since(std::time::UNIX_EPOCH)
                                .unwrap()
                                .as_millis()
                                + 60_000;
                            let resp = http::Response::builder()
                                .header("Lambda-Runtime-Aws-Request-Id", format!("req-{n}"))
                                .header("Lambda-Runtime-Deadline-Ms", deadline.to_string())
                                .header(
                                    "Lambda-Runtime-Invoked-Function-Arn",
                                    "arn:aws:lambda:us-east-1:123456789012:function:stream_fn",
                                )
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from_static(event.as_bytes())))
                                .unwrap();
                            return Ok::<_, Infallible>(resp);
                        }
                        let (parts, body) = req.into_parts();
                        let collected = body.collect().await.unwrap();
                        let trailers = collected.trailers().cloned();
                        let _ = posted_tx.send(Posted {
                            path: parts.uri.path().to_owned(),
                            headers: parts.headers,
                            body: collected.to_bytes(),
                            trailers,
                        });
                        Ok(http::Response::builder()
                            .status(202)
                            .body(Full::new(Bytes::from_static(br#"{"status":"OK"}"#)))
                            .unwrap())
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, posted_rx)
}

#[tokio::test]
async fn stream_fn_posts_prelude_lines_and_error_lines() {
    let (addr, mut posted) = stub_runtime_api(vec![
        r#"{"chunks":3}"#,
        r#"{"chunks":5,"fail_after":2}"#,
        r#"{"chunks":2,"fail_after":0}"#,
    ])
    .await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_stream_fn"))
        .env("AWS_LAMBDA_RUNTIME_API", &addr)
        .env("AWS_LAMBDA_FUNCTION_NAME", "stream_fn")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/stream_fn")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "$LATEST")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut next = async || {
        // a guard against hanging CI, not a timing assertion
        invoke_interop::guarded("stream_fn's response", posted.recv())
            .await
            .unwrap()
    };

    let ok = next().await;
    assert!(
        ok.path.ends_with("/response") && ok.path.contains("/invocation/req-"),
        "{ok:?}"
    );
    assert_eq!(
        ok.headers["lambda-runtime-function-response-mode"],
        "streaming"
    );
    assert_eq!(ok.headers["content-type"], HTTP_INTEGRATION);
    assert_eq!(ok.headers["transfer-encoding"], "chunked");
    let declared: Vec<_> = ok.headers.get_all("trailer").iter().collect();
    assert_eq!(
        declared,
        [
            "Lambda-Runtime-Function-Error-Type",
            "Lambda-Runtime-Function-Error-Body"
        ]
    );
    assert_eq!(ok.body, streamed(3));
    assert!(ok.trailers.is_none(), "{ok:?}");

    // a mid-stream failure: the error goes into the body, as two lines, and no trailers follow
    let failed = next().await;
    assert!(failed.path.ends_with("/response"), "{failed:?}");
    let mut expected = streamed(2);
    expected.extend(error_lines(&failure(2)));
    assert_eq!(
        failed.body,
        expected,
        "{:?}",
        String::from_utf8_lossy(&failed.body)
    );
    assert!(failed.trailers.is_none(), "{failed:?}");

    // failing before any line still sends the prelude first
    let early = next().await;
    let mut expected = streamed(0);
    expected.extend(error_lines(&failure(0)));
    assert_eq!(early.body, expected);

    child.kill().await.unwrap();
}

/// The emulator running `stream_fn` as a process function
mod emulated {
    use aws_config::BehaviorVersion;
    use aws_config::Region;
    use aws_config::retry::RetryConfig;
    use aws_credential_types::Credentials;
    use aws_sdk_lambda::primitives::Blob;
    use aws_sdk_lambda::types::{InvokeWithResponseStreamResponseEvent, LogType};
    use base64::Engine as _;
    use invoke_emulator::{Emulator, FunctionConfig};
    use invoke_proto::Credentials as ProtoCredentials;
    use invoke_proto::{EndpointConfig, resolve_endpoint};
    use invoke_proto::{Event, InvokeComplete, InvokeParams, ResponseHead, build_request};
    use invoke_proto::{SigningScope, sign};

    use http_body_util::BodyExt as _;

    use super::{Full, HTTP_INTEGRATION, Incoming, TokioIo, error_lines, failure, streamed};

    const KEY: &str = "AKIDINTEROP";
    const SECRET: &str = "interop-secret-key";

    async fn emulator() -> Emulator {
        let builder = Emulator::builder().process_function(
            "stream_fn",
            env!("CARGO_BIN_EXE_stream_fn"),
            FunctionConfig::default(),
        );
        invoke_interop::start_signed(builder, KEY, SECRET).await
    }

    /// What a client received of one streamed invocation
    #[derive(Debug, PartialEq)]
    struct Received {
        content_type: Option<String>,
        bytes: Vec<u8>,
        error_code: Option<String>,
        error_details: Option<String>,
    }

    async fn sdk(emu: &Emulator) -> aws_sdk_lambda::Client {
        let conf = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(emu.url())
            // not from the environment or a profile: FIPS or dual-stack with a custom endpoint
            // fails to resolve, for reasons that are not the emulator's
            .use_fips(false)
            .use_dual_stack(false)
            .credentials_provider(Credentials::new(KEY, SECRET, None, None, "interop"))
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .operation_timeout(invoke_interop::GUARD)
                    .build(),
            )
            .load()
            .await;
        aws_sdk_lambda::Client::new(&conf)
    }

    async fn via_sdk(emu: &Emulator, event: &str) -> Received {
        let mut out = sdk(emu)
            .await
            .invoke_with_response_stream()
            .function_name("stream_fn")
            .payload(Blob::new(event))
            .send()
            .await
            .unwrap();
        let mut got = Received {
            content_type: out.response_stream_content_type().map(str::to_owned),
            bytes: Vec::new(),
            error_code: None,
            error_details: None,
        };
        let mut completes = 0;
        while let Some(ev) = invoke_interop::guarded("the next event", out.event_stream.recv())
            .await
            .unwrap()
        {
            assert_eq!(completes, 0, "an event after InvokeComplete: {ev:?}");
            match ev {
                InvokeWithResponseStreamResponseEvent::PayloadChunk(c) => {
                    got.bytes.extend_from_slice(c.payload.unwrap().as_ref());
                }
                InvokeWithResponseStreamResponseEvent::InvokeComplete(c) => {
                    completes += 1;
                    got.error_code = c.error_code;
                    got.error_details = c.error_details;
                }
                other => panic!("unexpected event {other:?}"),
            }
        }
        assert_eq!(completes, 1);
        got
    }

    async fn via_invoke_stream(emu: &Emulator, event: &str) -> Received {
        let ep = resolve_endpoint(
            &EndpointConfig::default()
                .with_region("us-east-1")
                .with_custom(emu.url()),
        )
        .unwrap();
        let mut req =
            build_request(&InvokeParams::new("stream_fn", event.to_owned()), &ep).unwrap();
        sign(
            &mut req,
            &ProtoCredentials::new(KEY, SECRET, None),
            &SigningScope::lambda("us-east-1"),
            std::time::SystemTime::now(),
        )
        .unwrap();
        let stream = tokio::net::TcpStream::connect(emu.addr()).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let resp: http::Response<Incoming> =
            invoke_interop::guarded("the response", sender.send_request(req.map(Full::new)))
                .await
                .unwrap();
        let (parts, mut body) = resp.into_parts();
        let ResponseHead::Stream(head) =
            invoke_proto::parse_response_head(parts.status, &parts.headers).unwrap()
        else {
            panic!("not a stream: {parts:?}");
        };
        let mut got = Received {
            content_type: head.meta.content_type.clone(),
            bytes: Vec::new(),
            error_code: None,
            error_details: None,
        };
        let mut s = head.into_stream();
        let mut complete: Option<InvokeComplete> = None;
        while let Some(frame) = invoke_interop::guarded("the next frame", body.frame()).await {
            if let Ok(data) = frame.unwrap().into_data() {
                s.feed(data);
            }
            while let Some(ev) = s.next_event().unwrap() {
                match ev {
                    Event::PayloadChunk(c) => {
                        assert!(complete.is_none(), "a chunk after InvokeComplete");
                        got.bytes.extend_from_slice(&c);
                    }
                    Event::InvokeComplete(c) => complete = Some(c),
                    other => panic!("unexpected event {other:?}"),
                }
            }
        }
        s.finish().unwrap();
        let complete = complete.expect("the stream ends with InvokeComplete");
        got.error_code = complete.error_code;
        got.error_details = complete.error_details;
        got
    }

    #[tokio::test]
    async fn both_clients_receive_what_stream_fn_streamed() {
        let emu = emulator().await;
        for event in [r#"{"chunks":3}"#, r#"{"chunks":40}"#] {
            let lines = if event.contains("40") { 40 } else { 3 };
            let sdk = via_sdk(&emu, event).await;
            assert_eq!(sdk.content_type.as_deref(), Some(HTTP_INTEGRATION));
            assert_eq!(
                sdk.bytes,
                streamed(lines),
                "{:?}",
                String::from_utf8_lossy(&sdk.bytes)
            );
            assert_eq!(
                (sdk.error_code.as_deref(), sdk.error_details.as_deref()),
                (None, None)
            );
            let raw = via_invoke_stream(&emu, event).await;
            assert_eq!(raw, sdk);
        }
        emu.shutdown().await;
    }

    #[tokio::test]
    async fn both_clients_receive_the_mid_stream_error() {
        let emu = emulator().await;
        for m in [2, 0] {
            let event = format!(r#"{{"chunks":5,"fail_after":{m}}}"#);
            let sdk = via_sdk(&emu, &event).await;
            // the lines before the failure arrive untouched; the error lines lambda_runtime
            // wrote into the body are not payload: they become the InvokeComplete error
            assert!(
                !sdk.bytes
                    .windows(error_lines(&failure(m)).len())
                    .any(|w| w == error_lines(&failure(m))),
                "error lines leaked into the payload: {:?}",
                String::from_utf8_lossy(&sdk.bytes)
            );
            assert_eq!(
                sdk.bytes,
                streamed(m),
                "{:?}",
                String::from_utf8_lossy(&sdk.bytes)
            );
            assert_eq!(sdk.error_code.as_deref(), Some("Unhandled"), "{sdk:?}");
            let details = sdk.error_details.clone().unwrap();
            assert!(details.contains("Runtime.StreamError"), "{details}");
            assert!(details.contains(&failure(m)), "{details}");
            let raw = via_invoke_stream(&emu, &event).await;
            assert_eq!(raw, sdk);
        }
        // the function process serves the next invocation normally
        let sdk = via_sdk(&emu, r#"{"chunks":1}"#).await;
        assert_eq!(sdk.bytes, streamed(1));
        assert_eq!(sdk.error_code, None);
        emu.shutdown().await;
    }

    #[tokio::test]
    async fn the_function_log_comes_back_with_log_type_tail() {
        let emu = emulator().await;
        let mut out = sdk(&emu)
            .await
            .invoke_with_response_stream()
            .function_name("stream_fn")
            .payload(Blob::new(r#"{"chunks":2}"#))
            .log_type(LogType::Tail)
            .send()
            .await
            .unwrap();
        let mut log = None;
        while let Some(ev) = invoke_interop::guarded("the next event", out.event_stream.recv())
            .await
            .unwrap()
        {
            if let InvokeWithResponseStreamResponseEvent::InvokeComplete(c) = ev {
                log = c.log_result;
            }
        }
        let log = base64::engine::general_purpose::STANDARD
            .decode(log.expect("LogResult with LogType::Tail"))
            .unwrap();
        let log = String::from_utf8(log).unwrap();
        assert!(
            log.contains("stream_fn: 2 chunks, fail_after None\n"),
            "{log:?}"
        );
        emu.shutdown().await;
    }
}
