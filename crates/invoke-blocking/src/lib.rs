//! A blocking client for AWS Lambda `InvokeWithResponseStream`, over ureq 3
//!
//! Each write of the function reaches the caller as soon as it is decoded, as an
//! [`Event`](invoke_proto::Event) of the [`Response`] iterator or as bytes of its
//! [`PayloadReader`]. Retries (the AWS SDKs' standard mode, never once a successful
//! response head arrived), signing and decoding come from `invoke-proto`; region, endpoint,
//! retries, CA bundle, proxies and the default credentials chain from `invoke-config`
//! ([`Client::from_env`], [`Client::from_config`]); this crate owns the sockets, TLS
//! (rustls with the `ring` provider; the system's trust store, read by
//! `rustls-native-certs`, plus `AWS_CA_BUNDLE`), proxies, timeouts and the clock.
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
//! Line by line as a line-per-record stream arrives (the reader is a `BufRead` over the
//! chunks: nothing is copied into a `BufReader`), and one call with settings of its own
//! ([`InvokeOptions`]: attempts, retry policy, timeouts):
//!
//! ```no_run
//! # fn f(client: invoke_blocking::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use std::io::BufRead as _;
//! use std::time::Duration;
//! use invoke_blocking::InvokeOptions;
//! use invoke_proto::InvokeParams;
//!
//! let once = InvokeOptions::new().max_attempts(1).idle_timeout(Duration::from_secs(60));
//! let response = client.invoke_with(&InvokeParams::new("tokens", "{}"), &once)?;
//! for line in response.into_reader().lines() {
//!     println!("{}", line?); // an error, not the end, if the stream broke or the function failed
//! }
//! # Ok(())
//! # }
//! ```
//!
//! ## From the environment and `~/.aws`, as the AWS SDKs
//!
//! [`Client::from_env`] reads this process's environment and shared files;
//! [`Client::from_config`] and [`Client::builder_from_config`] take an
//! [`invoke_config::SharedConfig`] (an environment snapshot and files, here in memory) and
//! [`Overrides`] (command-line flags, say):
//!
//! ```
//! use invoke_blocking::{Client, Overrides, SharedConfig};
//! use invoke_blocking::invoke_config::{Env, MemFs};
//! use invoke_proto::InvokeParams;
//!
//! # let runtime = tokio::runtime::Runtime::new()?;
//! # let emulator = runtime.block_on(
//! #     invoke_emulator::Emulator::builder().builtins().quiet().start("127.0.0.1:0".parse()?),
//! # )?;
//! # let url = emulator.url();
//! let env = Env::from_pairs([
//!     ("HOME", "/home/me"),
//!     ("AWS_PROFILE", "dev"),
//!     ("AWS_ENDPOINT_URL_LAMBDA", url.as_str()),
//! ]);
//! let files = MemFs::new().with(
//!     "/home/me/.aws/config",
//!     "[profile dev]\nregion = eu-west-1\nmax_attempts = 5\n\
//!      aws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = secret\n",
//! );
//! let shared = SharedConfig::load(env, &files);
//! let client = Client::from_config(&shared, &Overrides::new())?;
//! assert_eq!(client.endpoint().region(), "eu-west-1");
//! let events = client.invoke(&InvokeParams::new("echo", "{}"))?;
//! assert_eq!(events.count(), 2); // the payload, then InvokeComplete
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Credentials come from `invoke-config`'s default chain (environment, profile: static keys,
//! `credential_process`, role chains through STS, web identity, SSO; web identity from the
//! environment; ECS / EKS container endpoints; EC2 instance metadata), whose HTTP exchanges
//! go through the client's own agent with their own short timeouts
//! ([`CREDENTIALS_TIMEOUT`]), behind a [`CredentialsCache`] that refreshes them 5 minutes
//! before they expire. Plug in another source with
//! [`ClientBuilder::credentials_provider`] (any [`ProvideCredentials`], closures included),
//! or send unsigned requests with [`ClientBuilder::no_signing`].
//!
//! ## TLS and proxies
//!
//! rustls with the `ring` provider. The trusted roots are the system's trust store, read
//! once per process by the `rustls-native-certs` crate (`SSL_CERT_FILE` / `SSL_CERT_DIR`
//! are honoured by it), plus every CA bundle given (`AWS_CA_BUNDLE`, `ca_bundle` in the
//! profile, [`ClientBuilder::ca_bundle`]); a bundle that cannot be read or holds no valid
//! certificate is [`Error::CaBundle`], naming the file. A certificate the roots do not
//! vouch for fails with [`TransportFailure::Tls`] and is never retried. Plain `http://` is
//! used only when the endpoint says so.
//!
//! Proxies follow `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` as the AWS CLI
//! reads them ([`ProxyEnv`], shared with the other transports through `invoke-config`),
//! for the Lambda endpoint and for STS / SSO; instance metadata, container endpoints and
//! loopback are always reached directly.
//!
//! ## Timeouts and tracing
//!
//! [`Timeouts`] default to Lambda's 15 minutes except for connecting (10 s), so a healthy
//! function that is silent for minutes is never cut short.
//!
//! `tracing`: an `invoke` span (info: function, request id, attempts) and one `attempt`
//! span per attempt (debug: attempt, status), with debug events for failed attempts, waits,
//! error responses and the end of the stream or the failure (bytes, events); a
//! `credentials_request` span (debug: method, host, path, status) per exchange of a
//! credentials provider. No secret and no payload byte is ever logged by this crate.
//!
//! # Warning
//!
//! At `TRACE`, ureq's protocol layer (the `log` target `ureq_proto`) hex-dumps every byte it
//! sends and receives: `Authorization`, session tokens, the credentials providers' answers
//! and payloads included. An application that forwards `log` records at `TRACE` (for example
//! through `tracing-log`) should keep that target at `DEBUG` or lower
//! (`RUST_LOG=trace,ureq_proto=debug`).
//!
//! The dump also costs time when nothing logs: ureq-proto checks `log`'s level once per 16
//! bytes of every body it reads. An application (never a library: the setting is global)
//! that does not need those records can compile them out with `log`'s
//! `release_max_level_debug` feature; on 256 B chunks that gives this client about a fifth
//! more messages a second (the README's figures).

mod buffers;
mod call;
mod client;
mod credentials;
mod drain;
mod error;
mod resolver;
mod tcp;
mod tls;

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
