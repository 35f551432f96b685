//! An async client for AWS Lambda `InvokeWithResponseStream`, over hyper 1 and tokio
//!
//! Each write of the function reaches the caller as soon as it is decoded, as an
//! [`Event`](invoke_proto::Event) of the [`Response`] stream or as bytes of its
//! [`PayloadReader`]. Retries (the AWS SDKs' standard mode, never once a successful
//! response head arrived), signing and decoding come from `invoke-proto`; region, endpoint,
//! credentials and proxy rules from `invoke-config`; this crate owns the sockets, TLS
//! (rustls with the `ring` provider; roots from the system trust store, read by
//! `rustls-native-certs`, plus an optional CA bundle), timeouts and the clock.
//!
//! ```
//! use invoke_tokio::{Client, ProxyEnv};
//! use invoke_proto::{resolve_endpoint, EndpointConfig};
//! use invoke_proto::{Credentials, InvokeParams};
//! use tokio::io::AsyncReadExt as _;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let emulator =
//! #     invoke_emulator::Emulator::builder().builtins().quiet().start("127.0.0.1:0".parse()?).await?;
//! # let url = emulator.url();
//! // `url` is the endpoint, such as a local emulator's `http://127.0.0.1:9001`
//! let endpoint = resolve_endpoint(&EndpointConfig::default().with_region("us-east-1").with_custom(url))?;
//! let client = Client::builder(endpoint)
//!     .credentials(Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None))
//!     .proxy_env(ProxyEnv::none())
//!     .build()?;
//!
//! let response = client.invoke(&InvokeParams::new("echo", r#"{"hello":"world"}"#)).await?;
//! assert_eq!(response.executed_version(), Some("$LATEST"));
//! let mut payload = String::new();
//! // an error unless InvokeComplete came
//! response.into_async_read().read_to_string(&mut payload).await?;
//! assert_eq!(payload, r#"{"hello":"world"}"#);
//! # Ok(())
//! # }
//! ```
//!
//! The events one by one (`Response` is a `futures_core::Stream` too, for
//! `futures::StreamExt` or `tokio_stream`):
//!
//! ```no_run
//! # async fn f(client: invoke_tokio::Client) -> Result<(), invoke_tokio::Error> {
//! use invoke_proto::{Event, InvokeParams};
//!
//! let mut events = client.invoke(&InvokeParams::new("my-function", "{}")).await?;
//! while let Some(event) = events.next_event().await {
//!     match event? {
//!         Event::PayloadChunk(bytes) => println!("{} bytes", bytes.len()),
//!         Event::InvokeComplete(done) => println!("done: {:?}", done.error_code),
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Line by line as a line-per-record stream arrives (the reader is an `AsyncBufRead` over
//! the chunks: nothing is copied into a `BufReader`), and one call with settings of its own
//! ([`InvokeOptions`]: attempts, retry policy, timeouts):
//!
//! ```no_run
//! # async fn f(client: invoke_tokio::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use invoke_proto::InvokeParams;
//! use invoke_tokio::InvokeOptions;
//! use tokio::io::AsyncBufReadExt as _;
//!
//! let once = InvokeOptions::new().max_attempts(1).idle_timeout(Duration::from_secs(60));
//! let response = client.invoke_with(&InvokeParams::new("tokens", "{}"), &once).await?;
//! let mut lines = response.into_async_read().lines();
//! // an error, not the end, if the stream broke or the function failed
//! while let Some(line) = lines.next_line().await? {
//!     println!("{line}");
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Plain `http://` is used only when the endpoint says so. Proxies follow `HTTPS_PROXY`,
//! `HTTP_PROXY` and `NO_PROXY` as the AWS CLI reads them ([`ProxyEnv`]), for the Lambda
//! endpoint and for STS / SSO (instance metadata, container endpoints and loopback are
//! always reached directly): `http` targets through the proxy in absolute form, `https`
//! ones through a `CONNECT` tunnel; an `https://` proxy is reached over TLS (its CA from
//! the system's store or the CA bundle), then TLS again inside the tunnel. [`Timeouts`]
//! default to Lambda's 15 minutes except for connecting.
//! [`Client::from_env`] and [`Client::from_config`] resolve everything as the AWS SDKs do
//! (`async`, as `aws_config::load_from_env` is: without a configured region they ask the EC2
//! instance metadata for it), credentials from the default chain driven over this crate's
//! connections.
//!
//! Backpressure and cancellation: the body is read only while the caller polls; dropping
//! the [`Response`] (or the `invoke` future) before the end closes its connection rather
//! than returning it to the pool half-read. The client spawns no task: a connection is
//! driven by whoever waits on it (the `invoke` future, then the response), so a
//! response's bytes go from the socket to the caller within the caller's own poll.
//!
//! `tracing`: an `invoke` span (info: function, request id, attempts) and one `attempt`
//! span per attempt (debug: attempt, status), with debug events for failed attempts, waits,
//! error responses and the end of the stream or the failure (bytes, events). No secret and
//! no payload byte is ever logged.

mod call;
mod client;
mod connect;
mod credentials;
mod error;
mod kept;
mod pool;
mod timer;

pub use call::{PayloadReader, Response};
pub use client::{Client, ClientBuilder};
pub use error::{BoxError, Error, TransportFailure};
pub use invoke_config::{
    COLLECT_LIMIT, CREDENTIALS_TIMEOUT, Collected, FIFTEEN_MINUTES, MAX_TIMEOUT, ResponseInfo,
    Timeouts,
};
pub use invoke_config::{
    CredentialsCache, CredentialsError, InvokeOptions, Overrides, ProvideCredentials,
    ProvidedCredentials, ProxyEnv, SharedConfig,
};
pub use {invoke_config, invoke_proto};
