//! A streaming Lambda function built on the official `lambda_runtime` crate, for the interop
//! tests only
//!
//! The event `{"chunks":N,"fail_after":M}` (both optional; `N` defaults to 3) makes it stream
//! the lines `chunk 0\n`, `chunk 1\n`, ... through `lambda_runtime::streaming::channel`. With
//! `fail_after` it stops after `M` lines and fails the stream with the error text
//! `stream_fn failed after M chunks`, which `lambda_runtime` reports mid-stream.
//!
//! It logs one line per invocation on stdout, and talks to the runtime API named by
//! `AWS_LAMBDA_RUNTIME_API`, like any Lambda function.

use bytes::Bytes;
use lambda_runtime::streaming::{Body, Response, channel};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use lambda_runtime_api_client::Error as StreamError;
use serde_json::Value;

/// Lines streamed when the event does not say
const DEFAULT_CHUNKS: u64 = 3;

/// The `n`th line the function streams
fn line(n: u64) -> Bytes {
    Bytes::from(format!("chunk {n}\n"))
}

async fn handler(event: LambdaEvent<Value>) -> Result<Response<Body>, Error> {
    let chunks = event
        .payload
        .get("chunks")
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_CHUNKS);
    let fail_after = event.payload.get("fail_after").and_then(Value::as_u64);
    // stdout is the function's log: the emulator returns its tail with `LogType: Tail`
    println!("stream_fn: {chunks} chunks, fail_after {fail_after:?}");
    let (mut tx, rx) = channel();
    tokio::spawn(async move {
        for n in 0..fail_after.map_or(chunks, |m| m.min(chunks)) {
            if tx.send_data(line(n)).await.is_err() {
                return;
            }
        }
        if let Some(m) = fail_after {
            tx.send_error(StreamError::new(format!(
                "stream_fn failed after {m} chunks"
            )));
        }
    });
    Ok(Response::from(rx))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}
