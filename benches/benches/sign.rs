//! SigV4 signing of one Lambda request: invoke-proto vs aws-sigv4
//!
//! The request is what `InvokeWithResponseStream` sends ([API reference](https://docs.aws.amazon.com/lambda/latest/api/API_InvokeWithResponseStream.html)): a POST to a
//! function ARN with a `Qualifier`, `Content-Type`, `X-Amz-Log-Type` and a 1 KiB payload,
//! signed at a fixed time, without and with a session token. Each iteration signs a fresh
//! copy of the request (copied outside the timed part) and ends with the headers set on
//! it: for aws-sigv4 that is `SignableRequest::new`, `sign` and
//! `apply_to_request_http1x`, as the Rust SDK does for every attempt.
//!
//! `invoke-proto` reuses the signing key it derived for the same day, region and service
//! (cached in `Credentials` and shared by its clones); `invoke-proto/cold-key` signs with
//! newly made credentials every time, so it derives the key as aws-sigv4 always does.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use invoke_proto::Credentials;
use invoke_proto::{SigningScope, sign};
use invoke_testkit::aws_signer::{Identity, identity, sign_with_aws};

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const TOKEN: &str = "FQoGZXIvYXdzEXAMPLETOKENAQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d";

fn request() -> http::Request<Bytes> {
    let body: Vec<u8> = (0..1024u32).map(|i| b'a' + (i % 26) as u8).collect();
    http::Request::post(
        "https://lambda.us-east-1.amazonaws.com/2021-11-15/functions/\
         arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Amy-function/\
         response-streaming-invocations?Qualifier=%24LATEST",
    )
    .header("Content-Type", "application/octet-stream")
    .header("X-Amz-Log-Type", "Tail")
    .header("Content-Length", body.len())
    .body(Bytes::from(body))
    .unwrap()
}

fn ours(
    req: &mut http::Request<Bytes>,
    creds: &Credentials,
    scope: &SigningScope,
    now: SystemTime,
) {
    sign(req, creds, scope, now).unwrap();
}

fn official(req: &mut http::Request<Bytes>, identity: &Identity, now: SystemTime) {
    sign_with_aws(req, identity, "us-east-1", now);
}

fn bench(c: &mut Criterion) {
    let template = request();
    let now = UNIX_EPOCH + Duration::from_secs(1_705_320_000); // 2024-01-15T12:00:00Z
    let scope = SigningScope::lambda("us-east-1");

    for (label, token) in [("no_token", None), ("session_token", Some(TOKEN))] {
        let creds = Credentials::new(AKID, SECRET, token.map(str::to_owned));
        let id = identity(AKID, SECRET, token.map(str::to_owned));

        // both must produce the same header before their speed means anything
        let (mut a, mut b) = (template.clone(), template.clone());
        ours(&mut a, &creds, &scope, now);
        official(&mut b, &id, now);
        assert_eq!(a.headers()["authorization"], b.headers()["authorization"]);

        let mut g = c.benchmark_group(format!("sign_lambda_post_1KiB/{label}"));
        g.bench_function("invoke-proto", |bch| {
            bch.iter_batched_ref(
                || template.clone(),
                |req| ours(black_box(req), &creds, &scope, black_box(now)),
                BatchSize::SmallInput,
            );
        });
        // new credentials have no cached signing key: the first request of a day, or a
        // client that builds its credentials for every request (a clone would share the
        // cache, already filled)
        g.bench_function("invoke-proto/cold-key", |bch| {
            bch.iter_batched_ref(
                || {
                    let fresh = Credentials::new(AKID, SECRET, token.map(str::to_owned));
                    (template.clone(), fresh)
                },
                |(req, fresh)| ours(black_box(req), fresh, &scope, black_box(now)),
                BatchSize::SmallInput,
            );
        });
        g.bench_function("aws-sigv4", |bch| {
            bch.iter_batched_ref(
                || template.clone(),
                |req| official(black_box(req), &id, black_box(now)),
                BatchSize::SmallInput,
            );
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
