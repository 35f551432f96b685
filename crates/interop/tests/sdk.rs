//! The emulator driven by the official AWS SDK for Rust (`aws-sdk-lambda`)
//!
//! Every test starts its own emulator on a loopback port, with SigV4 checked against one
//! access key, and points an SDK client at it through `endpoint_url`, as a user would.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::Region;
use aws_config::retry::RetryConfig;
use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_config::timeout::TimeoutConfig;
use aws_credential_types::Credentials;
use aws_sdk_lambda::Client;
use aws_sdk_lambda::error::{ProvideErrorMetadata as _, SdkError};
use aws_sdk_lambda::operation::invoke_with_response_stream::InvokeWithResponseStreamOutput;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    InvocationType, InvokeWithResponseStreamCompleteEvent, InvokeWithResponseStreamResponseEvent,
    LogType, ResponseStreamingInvocationType,
};
use aws_smithy_http_client::tls::{self, TrustStore};
use aws_types::os_shim_internal::{Env, Fs};
use base64::Engine as _;
use invoke_emulator::{Emulator, FunctionError, Invocation, ResponseStream};
use invoke_interop::{
    GUARD, decode_log, gated, guarded, start_signed, tls_emulator, with_shared_functions,
};

const KEY: &str = "AKIDINTEROP";
const SECRET: &str = "interop-secret-key";

/// How often `counted` ran, in any test's emulator (only the dry-run test invokes it)
static COUNTED_RUNS: AtomicUsize = AtomicUsize::new(0);

/// An emulator with the functions of [`with_shared_functions`] and `counted` (counts its runs
/// in [`COUNTED_RUNS`]), accepting only [`KEY`]/[`SECRET`]
async fn emulator() -> Emulator {
    let builder = with_shared_functions(Emulator::builder()).function(
        "counted",
        |_: Invocation, out: ResponseStream| async move {
            COUNTED_RUNS.fetch_add(1, Ordering::SeqCst);
            out.write("ran").await;
            Ok::<(), FunctionError>(())
        },
    );
    start_signed(builder, KEY, SECRET).await
}

/// The shared settings of every client: region, endpoint, credentials, and no retries, so
/// every test sees the first answer
fn config(emu: &Emulator, secret: &str) -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(emu.url())
        // not from the environment or a profile: FIPS or dual-stack with a custom endpoint
        // fails to resolve, for reasons that are not the emulator's
        .use_fips(false)
        .use_dual_stack(false)
        .credentials_provider(Credentials::new(KEY, secret, None, None, "interop"))
        // hyper without a TLS stack: the emulator speaks plain http://, and the SDK's default
        // HTTPS client would pull in rustls and aws-lc
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .retry_config(RetryConfig::disabled())
        // a guard against hanging CI up to the response (reading the stream is guarded
        // apart): the SDK sets no operation or read timeout of its own
        .timeout_config(TimeoutConfig::builder().operation_timeout(GUARD).build())
}

/// An SDK client for `emu` signing with `secret`
async fn client(emu: &Emulator, secret: &str) -> Client {
    Client::new(&config(emu, secret).load().await)
}

/// What the SDK delivered of one streamed invocation
#[derive(Debug)]
struct Streamed {
    bytes: Vec<u8>,
    chunks: Vec<usize>,
    complete: InvokeWithResponseStreamCompleteEvent,
}

/// Reads the event stream to its end; `InvokeComplete` must come once, last
async fn collect(mut out: InvokeWithResponseStreamOutput) -> Streamed {
    let mut bytes = Vec::new();
    let mut chunks = Vec::new();
    let mut complete = None;
    while let Some(event) = guarded("the next event", out.event_stream.recv())
        .await
        .expect("a clean event stream")
    {
        assert!(
            complete.is_none(),
            "an event after InvokeComplete: {event:?}"
        );
        match event {
            InvokeWithResponseStreamResponseEvent::PayloadChunk(c) => {
                let payload = c
                    .payload
                    .expect("PayloadChunk carries a payload")
                    .into_inner();
                chunks.push(payload.len());
                bytes.extend_from_slice(&payload);
            }
            InvokeWithResponseStreamResponseEvent::InvokeComplete(c) => complete = Some(c),
            other => panic!("unexpected event {other:?}"),
        }
    }
    Streamed {
        bytes,
        chunks,
        complete: complete.expect("the stream ends with InvokeComplete"),
    }
}

#[tokio::test]
async fn echo_streams_the_payload_back() {
    let emu = emulator().await;
    let lambda = client(&emu, SECRET).await;
    let payload = serde_json::to_vec(&serde_json::json!({"data": "x".repeat(3000)})).unwrap();
    let out = lambda
        .invoke_with_response_stream()
        .function_name("echo")
        .payload(Blob::new(payload.clone()))
        .log_type(LogType::Tail)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status_code(), 200);
    assert_eq!(out.executed_version(), Some("$LATEST"));
    assert_eq!(
        out.response_stream_content_type(),
        Some("application/octet-stream")
    );
    let s = collect(out).await;
    assert_eq!(s.bytes, payload);
    // echo writes at most 1 KiB at a time, each write its own PayloadChunk
    assert_eq!(s.chunks.len(), payload.len().div_ceil(1024));
    assert!(s.chunks.iter().all(|&n| n <= 1024));
    assert_eq!(s.complete.error_code(), None);
    assert_eq!(s.complete.error_details(), None);
    assert_eq!(
        decode_log(s.complete.log_result()),
        format!("echo: {} bytes\n", payload.len())
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn count_delivers_every_byte_in_order() {
    let emu = emulator().await;
    let lambda = client(&emu, SECRET).await;
    let out = lambda
        .invoke_with_response_stream()
        .function_name("count")
        .payload(Blob::new(r#"{"n":40,"size":1000,"delay_ms":2}"#))
        .send()
        .await
        .unwrap();
    let s = collect(out).await;
    let expected: Vec<u8> = (0..40_000_u32).map(|i| b'a' + (i % 26) as u8).collect();
    assert_eq!(s.bytes, expected);
    assert_eq!(s.chunks, vec![1000; 40]);
    assert_eq!(
        s.complete,
        InvokeWithResponseStreamCompleteEvent::builder().build()
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn fail_reports_the_function_error_in_invoke_complete() {
    let emu = emulator().await;
    let lambda = client(&emu, SECRET).await;
    let out = lambda
        .invoke_with_response_stream()
        .function_name("fail")
        .payload(Blob::new(r#"{"after":3}"#))
        .log_type(LogType::Tail)
        .send()
        .await
        .unwrap();
    // a function error does not change the HTTP status: it arrives in the stream
    assert_eq!(out.status_code(), 200);
    let s = collect(out).await;
    assert_eq!(s.bytes, b"chunk\nchunk\nchunk\n");
    assert_eq!(s.chunks, vec![6; 3]);
    assert_eq!(s.complete.error_code(), Some("Unhandled"));
    let details: serde_json::Value =
        serde_json::from_str(s.complete.error_details().unwrap()).unwrap();
    assert_eq!(
        details,
        serde_json::json!({"errorType": "Error", "errorMessage": "failed after 3 chunks"})
    );
    assert_eq!(
        decode_log(s.complete.log_result()),
        "fail: failing on purpose\n"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn a_wrong_secret_gets_the_signature_error() {
    let emu = emulator().await;
    let lambda = client(&emu, "not-the-secret").await;
    let err = lambda
        .invoke_with_response_stream()
        .function_name("echo")
        .payload(Blob::new("{}"))
        .send()
        .await
        .unwrap_err();
    // InvalidSignatureException is outside Lambda's model: the SDK surfaces it as an
    // unhandled service error whose code and message come from the response
    let SdkError::ServiceError(ctx) = &err else {
        panic!("not a service error: {err:?}");
    };
    assert_eq!(ctx.raw().status().as_u16(), 403);
    assert_eq!(err.code(), Some("InvalidSignatureException"));
    assert!(err.message().is_some_and(|m| !m.is_empty()), "{err:?}");
    assert!(err.as_service_error().unwrap().meta().code().is_some());
    // the buffered Invoke checks the same signature
    let err = lambda
        .invoke()
        .function_name("echo")
        .payload(Blob::new("{}"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("InvalidSignatureException"));
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 403);
    emu.shutdown().await;
}

#[tokio::test]
async fn an_unknown_function_is_resource_not_found() {
    let emu = emulator().await;
    let lambda = client(&emu, SECRET).await;
    let err = lambda
        .invoke_with_response_stream()
        .function_name("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 404);
    let service = err.into_service_error();
    assert!(
        service.is_resource_not_found_exception(),
        "a modeled error: {service:?}"
    );
    assert_eq!(service.code(), Some("ResourceNotFoundException"));
    assert!(
        service
            .message()
            .is_some_and(|m| m.contains("function:nope")),
        "{service:?}"
    );
    // a qualifier the function does not have
    let err = lambda
        .invoke_with_response_stream()
        .function_name("versioned")
        .qualifier("staging")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
    emu.shutdown().await;
}

#[tokio::test]
async fn dry_run_answers_204_without_running() {
    let emu = emulator().await;
    let lambda = client(&emu, SECRET).await;
    let mut out = lambda
        .invoke_with_response_stream()
        .function_name("counted")
        .invocation_type(ResponseStreamingInvocationType::DryRun)
        .payload(Blob::new("{}"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status_code(), 204);
    // no body, so no events (and no InvokeComplete)
    let end = guarded("the end of the stream", out.event_stream.recv()).await;
    assert!(end.unwrap().is_none());
    assert_eq!(
        COUNTED_RUNS.load(Ordering::SeqCst),
        0,
        "the function did not run"
    );
    // the same call without DryRun runs it: the count above could have seen a run
    let out = lambda
        .invoke_with_response_stream()
        .function_name("counted")
        .send()
        .await
        .unwrap();
    assert_eq!(collect(out).await.bytes, b"ran");
    assert_eq!(COUNTED_RUNS.load(Ordering::SeqCst), 1);
    // a dry run still checks that the function exists
    let err = lambda
        .invoke_with_response_stream()
        .function_name("nope")
        .invocation_type(ResponseStreamingInvocationType::DryRun)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
    emu.shutdown().await;
}

#[tokio::test]
async fn a_qualifier_selects_the_version() {
    let emu = emulator().await;
    let lambda = client(&emu, SECRET).await;
    for (qualifier, executed) in [("1", "1"), ("prod", "$LATEST"), ("$LATEST", "$LATEST")] {
        let out = lambda
            .invoke_with_response_stream()
            .function_name("versioned")
            .qualifier(qualifier)
            .payload(Blob::new(r#"{"q":1}"#))
            .send()
            .await
            .unwrap();
        assert_eq!(out.executed_version(), Some(executed), "{qualifier}");
        let s = collect(out).await;
        assert_eq!(s.bytes, br#"{"q":1}"#);
        assert_eq!(s.complete.error_code(), None);
    }
    // the qualifier reaches the function in its ARN; a qualified name works the same
    for (name, qualifier) in [("whoami", Some("$LATEST")), ("whoami:$LATEST", None)] {
        let out = lambda
            .invoke_with_response_stream()
            .function_name(name)
            .set_qualifier(qualifier.map(str::to_owned))
            .send()
            .await
            .unwrap();
        let seen: serde_json::Value = serde_json::from_slice(&collect(out).await.bytes).unwrap();
        assert_eq!(
            seen["arn"],
            "arn:aws:lambda:us-east-1:123456789012:function:whoami:$LATEST"
        );
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn the_client_context_reaches_the_function() {
    let emu = emulator().await;
    let lambda = client(&emu, SECRET).await;
    let context = r#"{"custom":{"k":"v"},"env":{"locale":"en"}}"#;
    // the API takes the context base64-encoded; the function sees the JSON text
    let out = lambda
        .invoke_with_response_stream()
        .function_name("whoami")
        .client_context(base64::engine::general_purpose::STANDARD.encode(context))
        .payload(Blob::new(r#"{"hello":"world"}"#))
        .send()
        .await
        .unwrap();
    let seen: serde_json::Value = serde_json::from_slice(&collect(out).await.bytes).unwrap();
    assert_eq!(seen["client_context"], context);
    assert_eq!(seen["payload"], r#"{"hello":"world"}"#);
    assert_eq!(
        seen["arn"],
        "arn:aws:lambda:us-east-1:123456789012:function:whoami"
    );
    // a context that is not base64 JSON is refused before the function runs, with the
    // service's error type (smithy-rs's test against real Lambda expects it)
    let err = lambda
        .invoke_with_response_stream()
        .function_name("whoami")
        .client_context("not base64!")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_invalid_request_content_exception(), "{err:?}");
    emu.shutdown().await;
}

#[tokio::test]
async fn buffered_invoke_on_echo_and_fail() {
    let emu = emulator().await;
    let lambda = client(&emu, SECRET).await;
    let payload = serde_json::to_vec(&serde_json::json!({"data": "y".repeat(2500)})).unwrap();
    let out = lambda
        .invoke()
        .function_name("echo")
        .payload(Blob::new(payload.clone()))
        .log_type(LogType::Tail)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status_code(), 200);
    assert_eq!(out.function_error(), None);
    assert_eq!(out.executed_version(), Some("$LATEST"));
    assert_eq!(out.payload().unwrap().as_ref(), payload.as_slice());
    assert_eq!(
        decode_log(out.log_result()),
        format!("echo: {} bytes\n", payload.len())
    );
    let out = lambda
        .invoke()
        .function_name("fail")
        .payload(Blob::new(r#"{"after":2}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status_code(), 200);
    assert_eq!(out.function_error(), Some("Unhandled"));
    let body: serde_json::Value = serde_json::from_slice(out.payload().unwrap().as_ref()).unwrap();
    assert_eq!(body["errorType"], "Error");
    assert_eq!(out.log_result(), None, "no LogType::Tail, no log");
    // an asynchronous invocation is accepted (202), a dry run answered (204), both without
    // a payload
    for (kind, status) in [(InvocationType::Event, 202), (InvocationType::DryRun, 204)] {
        let out = lambda
            .invoke()
            .function_name("echo")
            .invocation_type(kind.clone())
            .payload(Blob::new("{}"))
            .send()
            .await
            .unwrap();
        assert_eq!(out.status_code(), status, "{kind:?}");
        assert!(
            out.payload().is_none_or(|p| p.as_ref().is_empty()),
            "{kind:?}"
        );
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn a_pausing_stream_is_not_cut_by_stalled_stream_protection() {
    let emu = emulator().await;
    // stalled-stream protection on, with a grace period shorter than the function's pause:
    // the SDK does not apply it to the event stream, so nothing needs disabling for slow
    // functions, and the emulator keeps the quiet connection open
    let conf = config(&emu, SECRET)
        .stalled_stream_protection(
            StalledStreamProtectionConfig::enabled()
                .grace_period(Duration::from_secs(1))
                .build(),
        )
        .load()
        .await;
    let out = Client::new(&conf)
        .invoke_with_response_stream()
        .function_name("count")
        .payload(Blob::new(r#"{"n":2,"size":30,"delay_ms":2000}"#))
        .send()
        .await
        .unwrap();
    let s = collect(out).await;
    assert_eq!(s.chunks, vec![30, 30]);
    assert_eq!(s.bytes[30..], b"efghijklmnopqrstuvwxyzabcdefgh"[..]);
    assert_eq!(s.complete.error_code(), None);
    emu.shutdown().await;
}

#[tokio::test]
async fn the_variables_serve_prints_are_all_the_sdk_needs() {
    let emu = emulator().await;
    let url = emu.url();
    // what `lambda-stream serve` tells users to export, and nothing else: no files
    let env = Env::from_slice(&[
        ("AWS_ENDPOINT_URL_LAMBDA", url.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
    ]);
    let conf = aws_config::defaults(BehaviorVersion::latest())
        .env(env)
        .fs(Fs::from_slice(&[]))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .retry_config(RetryConfig::disabled())
        .timeout_config(TimeoutConfig::builder().operation_timeout(GUARD).build())
        .load()
        .await;
    let out = Client::new(&conf)
        .invoke_with_response_stream()
        .function_name("count")
        .payload(Blob::new(r#"{"n":3,"size":5}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(collect(out).await.bytes, b"abcdefghijklmno");
    emu.shutdown().await;
}

#[tokio::test]
async fn faults_mid_stream_fail_the_event_stream() {
    let emu = emulator().await;
    let lambda = client(&emu, SECRET).await;
    // the body ends cleanly after the first chunk, with no InvokeComplete: the SDK ends its
    // event stream as after a whole one. Only the missing InvokeComplete tells it from one
    let mut out = lambda
        .invoke_with_response_stream()
        .function_name("ended")
        .payload(Blob::new(r#"{"n":20,"size":40}"#))
        .send()
        .await
        .unwrap();
    let first = guarded("the first event", out.event_stream.recv()).await;
    assert!(
        matches!(
            first,
            Ok(Some(InvokeWithResponseStreamResponseEvent::PayloadChunk(_)))
        ),
        "{first:?}"
    );
    let end = guarded("the end", out.event_stream.recv()).await;
    assert!(matches!(end, Ok(None)), "{end:?}");
    for name in ["exceptional", "corrupt", "cut"] {
        let mut out = lambda
            .invoke_with_response_stream()
            .function_name(name)
            .payload(Blob::new(r#"{"n":20,"size":40}"#))
            .send()
            .await
            .unwrap();
        let mut chunks = 0;
        let err = loop {
            match guarded("the next event", out.event_stream.recv()).await {
                Ok(Some(InvokeWithResponseStreamResponseEvent::PayloadChunk(_))) => chunks += 1,
                Ok(other) => panic!("{name}: {other:?} instead of an error"),
                Err(e) => break e,
            }
        };
        match name {
            // Lambda's event union models no exception: the SDK shows an unhandled service
            // error without a code, with the message of its body
            "exceptional" => {
                assert_eq!(chunks, 1);
                assert!(matches!(err, SdkError::ServiceError(_)), "{err:?}");
                assert_eq!(err.code(), None, "{err:?}");
                assert_eq!(err.message(), Some("injected fault: exception mid-stream"));
            }
            // the first chunk's message CRC is wrong: nothing of it is delivered
            "corrupt" => {
                assert_eq!(chunks, 0);
                assert!(matches!(err, SdkError::ResponseError(_)), "{err:?}");
                assert!(
                    format!("{err:?}").contains("MessageChecksumMismatch"),
                    "{err:?}"
                );
            }
            // the connection closes after 200 body bytes, within the second message
            _ => {
                assert_eq!(chunks, 1);
                assert!(matches!(err, SdkError::DispatchFailure(_)), "{err:?}");
            }
        }
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn https_needs_the_ca_given_in_code() {
    let emu = tls_emulator(KEY, SECRET).await;
    let url = emu.url();
    let ca_file = emu.ca_pem_path().unwrap().display().to_string();
    let https = |trust: TrustStore| {
        aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .tls_context(
                tls::TlsContext::builder()
                    .with_trust_store(trust)
                    .build()
                    .unwrap(),
            )
            .build_https()
    };
    let invoke = |conf: aws_config::SdkConfig| async move {
        Client::new(&conf)
            .invoke_with_response_stream()
            .function_name("count")
            .payload(Blob::new(r#"{"n":3,"size":5}"#))
            .send()
            .await
    };
    // AWS_CA_BUNDLE as `serve --tls` exports it: aws-config reads no such variable, so a
    // client with the system's roots does not trust the emulator
    let env = Env::from_slice(&[
        ("AWS_ENDPOINT_URL_LAMBDA", url.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_CA_BUNDLE", ca_file.as_str()),
    ]);
    let from_env = || {
        aws_config::defaults(BehaviorVersion::latest())
            .env(env.clone())
            .fs(Fs::from_slice(&[]))
            .retry_config(RetryConfig::disabled())
            .timeout_config(TimeoutConfig::builder().operation_timeout(GUARD).build())
    };
    let conf = from_env()
        .http_client(https(TrustStore::default()))
        .load()
        .await;
    let err = invoke(conf).await.unwrap_err();
    assert!(matches!(err, SdkError::DispatchFailure(_)), "{err:?}");
    let shown = format!("{err:?}");
    assert!(shown.contains("UnknownIssuer"), "{shown}");
    // the CA in the client's trust store
    let trust = TrustStore::empty().with_pem_certificate(emu.ca_pem().unwrap().as_bytes());
    let conf = from_env().http_client(https(trust)).load().await;
    let out = invoke(conf).await.unwrap();
    assert_eq!(collect(out).await.bytes, b"abcdefghijklmno");
    emu.shutdown().await;
}

#[tokio::test]
async fn arns_tenants_and_the_payload_limit() {
    let emu = emulator().await;
    let lambda = client(&emu, SECRET).await;
    // the function named by its ARN, whole (with a version) or partial
    for (name, executed) in [
        (
            "arn:aws:lambda:us-east-1:123456789012:function:versioned:1",
            "1",
        ),
        ("123456789012:function:versioned", "$LATEST"),
    ] {
        let out = lambda
            .invoke_with_response_stream()
            .function_name(name)
            .payload(Blob::new(r#"{"q":2}"#))
            .send()
            .await
            .unwrap();
        assert_eq!(out.executed_version(), Some(executed), "{name}");
        assert_eq!(collect(out).await.bytes, br#"{"q":2}"#, "{name}");
    }
    // a tenant id reaches the function
    let out = lambda
        .invoke_with_response_stream()
        .function_name("whoami")
        .tenant_id("tenant-7")
        .send()
        .await
        .unwrap();
    let seen: serde_json::Value = serde_json::from_slice(&collect(out).await.bytes).unwrap();
    assert_eq!(seen["tenant_id"], "tenant-7");
    // 6 MiB of payload is taken (a JSON string, as Lambda wants JSON); one byte more is
    // refused before the function runs
    let most = invoke_proto::MAX_PAYLOAD_LEN;
    let text = |len: usize| format!("\"{}\"", "x".repeat(len - 2));
    let out = lambda
        .invoke_with_response_stream()
        .function_name("whoami")
        .payload(Blob::new(text(most)))
        .send()
        .await
        .unwrap();
    let seen: serde_json::Value = serde_json::from_slice(&collect(out).await.bytes).unwrap();
    assert_eq!(seen["payload"].as_str().map(str::len), Some(most));
    let err = lambda
        .invoke_with_response_stream()
        .function_name("whoami")
        .payload(Blob::new(text(most + 1)))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 413);
    let err = err.into_service_error();
    assert!(err.is_request_too_large_exception(), "{err:?}");
    emu.shutdown().await;
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk() {
    let emu = emulator().await;
    let lambda = client(&emu, SECRET).await;
    // no retries: the first 429 is the answer
    let err = lambda
        .invoke_with_response_stream()
        .function_name("throttled")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 429);
    let err = err.into_service_error();
    assert!(err.is_too_many_requests_exception(), "{err:?}");
    // the SDK's standard retries: the second 429 (Retry-After: 1), then the stream
    let conf = config(&emu, SECRET)
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .load()
        .await;
    let out = Client::new(&conf)
        .invoke_with_response_stream()
        .function_name("throttled")
        .payload(Blob::new(r#"{"n":2,"size":5}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(collect(out).await.bytes, b"abcdefghij");
    emu.shutdown().await;
}

#[tokio::test]
async fn each_chunk_arrives_while_the_function_runs_and_20_mib_whole() {
    // the function waits for the test after its first write: that write has reached the
    // SDK's caller before the function could go on
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let emu = start_signed(
        Emulator::builder()
            .builtins()
            .function("gated", gated(&gate)),
        KEY,
        SECRET,
    )
    .await;
    let lambda = client(&emu, SECRET).await;
    let mut out = lambda
        .invoke_with_response_stream()
        .function_name("gated")
        .send()
        .await
        .unwrap();
    let first = guarded("the first event", out.event_stream.recv()).await;
    let Ok(Some(InvokeWithResponseStreamResponseEvent::PayloadChunk(c))) = first else {
        panic!("{first:?}");
    };
    assert_eq!(c.payload().unwrap().as_ref(), b"first");
    gate.add_permits(1);
    let rest = collect(out).await;
    assert_eq!(rest.bytes, b"second");
    // a 20 MiB stream, in 64 KiB chunks
    let out = lambda
        .invoke_with_response_stream()
        .function_name("count")
        .payload(Blob::new(r#"{"n":320,"size":65536}"#))
        .send()
        .await
        .unwrap();
    let s = collect(out).await;
    assert_eq!(s.chunks, vec![65536; 320]);
    let expected: Vec<u8> = (0..320 * 65536_u32)
        .map(|i| b'a' + (i % 26) as u8)
        .collect();
    assert!(s.bytes == expected);
    emu.shutdown().await;
}
