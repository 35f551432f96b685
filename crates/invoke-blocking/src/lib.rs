//! A blocking client for AWS Lambda `InvokeWithResponseStream`, over ureq 3
//!
//! Each write of the function reaches the caller as soon as it is decoded, as an
//! [`Event`](invoke_proto::Event) of the [`Response`] iterator or as bytes of its
//! [`PayloadReader`]. Retries (the AWS SDKs' standard mode, never once a successful
//! response head arrived), signing and decoding come from `invoke-proto`; this crate owns the sockets,
//! TLS (rustls with the `ring` provider and the Mozilla roots of `webpki-roots`), proxies,
//! timeouts and the clock.
//!
//! ```
//! use std::io::Read as _;
//! use invoke_blocking::{Client, ProxyEnv};
//! use invoke_proto::{resolve_endpoint, EndpointConfig};
//! use invoke_proto::{Credentials, InvokeParams};
//!
//! # let runtime = tokio::runtime::Runtime::new()?;
//! # let emulator = runtime.block_on(
//! #     invoke_emulator::Emulator::builder().builtins().quiet().start("127.0.0.1:0".parse()?),
//! # )?;
//! # let url = emulator.url();
//! // `url` is the endpoint, such as a local emulator's `http://127.0.0.1:9001`
//! let endpoint = resolve_endpoint(&EndpointConfig::default().with_region("us-east-1").with_custom(url))?;
//! let client = Client::builder(endpoint)
//!     .credentials(Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None))
//!     .proxy_env(ProxyEnv::none())
//!     .build()?;
//!
//! let response = client.invoke(&InvokeParams::new("echo", r#"{"hello":"world"}"#))?;
//! assert_eq!(response.executed_version(), Some("$LATEST"));
//! let mut payload = String::new();
//! response.into_reader().read_to_string(&mut payload)?; // an error unless InvokeComplete came
//! assert_eq!(payload, r#"{"hello":"world"}"#);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Plain `http://` is used only when the endpoint says so. Proxies follow `HTTPS_PROXY`,
//! `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` as the AWS CLI reads them ([`ProxyEnv`]).
//! [`Timeouts`] default to Lambda's 15 minutes except for connecting.
//!
//! `tracing`: an `invoke` span (info: function, request id, attempts) and one `attempt`
//! span per attempt (debug: attempt, status), with debug events for failed attempts, waits,
//! error responses and the end of the stream or the failure (bytes, events). No secret and
//! no payload byte is ever logged.

mod call;
mod client;
mod error;
mod proxy;
mod resolver;

pub use call::{PayloadReader, Response};
pub use client::{Client, ClientBuilder, FIFTEEN_MINUTES, Timeouts};
pub use error::{BoxError, Error, TransportFailure};
pub use invoke_proto;
pub use proxy::ProxyEnv;
