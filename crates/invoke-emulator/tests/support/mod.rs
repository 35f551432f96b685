//! Client helpers shared by the emulator's integration tests: invoke-proto builds the request,
//! a raw hyper connection sends it
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use invoke_emulator::Emulator;
use invoke_proto::{EndpointConfig, resolve_endpoint};
use invoke_proto::{InvokeParams, build_request};
use tokio::net::TcpStream;

/// The unsigned request for `params`, aimed at `emu`
pub fn request(emu: &Emulator, params: &InvokeParams) -> http::Request<Bytes> {
    let ep = resolve_endpoint(
        &EndpointConfig::default()
            .with_region("us-east-1")
            .with_custom(emu.url()),
    )
    .unwrap();
    build_request(params, &ep).unwrap()
}

/// How long a test waits for an answer ([`guarded`]): an emulator that stops answering fails
/// the test instead of hanging it (no test waits more than seconds)
pub const ANSWER_GUARD: Duration = Duration::from_secs(60);

/// Awaits `f` for at most [`ANSWER_GUARD`]; past it the test fails, naming `what` it waited for
pub async fn guarded<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(ANSWER_GUARD, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {ANSWER_GUARD:?}"))
}

/// The whole of `body`, waited for at most [`ANSWER_GUARD`]
pub async fn body_of(body: Incoming) -> Bytes {
    guarded("the whole body", body.collect())
        .await
        .unwrap()
        .to_bytes()
}

/// Sends `req` over a fresh loopback connection; the response head
pub async fn send(emu: &Emulator, req: http::Request<Bytes>) -> http::Response<Incoming> {
    let stream = TcpStream::connect(emu.addr()).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    guarded("a response head", sender.send_request(req.map(Full::new)))
        .await
        .unwrap()
}
