//! Region, endpoint and credentials for AWS clients, resolved as the AWS SDKs do, sans-IO
//!
//! The environment and the files are inputs ([`Env`], [`FileReader`]); every provider that
//! talks to a network is a state machine that hands out `http::Request`s and takes the
//! answers back, so any transport drives the same code. Time is passed in.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, SystemTime};
//! use invoke_config::{CredentialsChain, Env, MemFs, Overrides, SharedConfig, Step};
//! use invoke_config::http::{HeaderMap, StatusCode};
//!
//! // 1. Inputs: an environment snapshot and files (here in memory, never the real home)
//! let env = Env::from_pairs([
//!     ("HOME", "/home/me"),
//!     ("AWS_PROFILE", "dev"),
//!     ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc"),
//! ]);
//! let fs = Arc::new(MemFs::new().with(
//!     "/home/me/.aws/config",
//!     "[profile dev]\nregion = eu-west-1\nuse_dualstack_endpoint = true\n",
//! ));
//! let shared = SharedConfig::load(env, &*fs);
//!
//! // 2. Region and endpoint, in the SDKs' precedence (explicit > environment > profile)
//! let config = shared.resolve(&Overrides::new())?;
//! assert_eq!(config.region.as_ref().unwrap().value, "eu-west-1");
//! let endpoint = invoke_proto::resolve_endpoint(&config.endpoint_config())?;
//! assert_eq!(endpoint.to_string(), "https://lambda.eu-west-1.api.aws");
//!
//! // 3. Credentials: the default chain, driven by the caller's transport
//! let mut chain = CredentialsChain::new(&shared, fs);
//! let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
//! let found = loop {
//!     match chain.next_step(now) {
//!         Step::Send(request) => {
//!             // the profile has no keys, so the container endpoint is asked
//!             assert_eq!(request.uri(), "http://169.254.170.2/v2/credentials/abc");
//!             let body = r#"{"AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"s3cr3t",
//!                            "Token":"t0k3n","Expiration":"2023-11-15T00:00:00Z"}"#;
//!             chain.handle_response(StatusCode::OK, HeaderMap::new(), body.into());
//!         }
//!         Step::Run(command) => chain.handle_process_output(invoke_config::run_process(&command)),
//!         Step::Done(result) => break result?,
//!     }
//! };
//! assert_eq!(found.credentials.access_key_id(), "ASIAEXAMPLE");
//! assert_eq!(found.provider, "container");
//! assert!(!format!("{found:?}").contains("s3cr3t"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`drive`] is that loop for blocking transports, [`ChainProvider`] wraps it as a
//! [`ProvideCredentials`] source, and [`CredentialsCache`] keeps the result until five
//! minutes before it expires, loading once for many concurrent callers.
//!
//! The chain's order is the SDKs': environment, the active profile (static keys,
//! `credential_process`, `role_arn` with `source_profile` / `credential_source` through STS
//! `AssumeRole`, `web_identity_token_file`, SSO from the token cache), web identity from the
//! environment, container credentials (ECS, EKS Pod Identity), EC2 instance metadata (IMDSv2).
//! When nothing is found the error names every provider tried and why, and the variables
//! and files looked at. Nothing here prints or logs a secret: `Debug` of every type that
//! holds one is redacted.
//!
//! [`ProxyEnv`] says which proxy (if any) a transport goes through, as the AWS CLI reads
//! `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY`.
//!
//! Not done here: IO of any kind except [`Env::from_process`], [`StdFs`] and
//! [`run_process`], which sit at the edge for callers to use or replace.
#![forbid(unsafe_code)]

mod builder;
mod cache;
mod chain;
mod client_error;
mod collect;
pub mod config;
mod credentials;
pub mod env;
pub mod fs;
pub mod imds;
mod invoker;
mod jitter;
pub mod location;
mod options;
mod process;
pub mod profile;
mod providers;
mod proxy;
mod response_info;
mod sha1;
mod sso;
mod sts;
#[cfg(test)]
mod testing;
mod time;
mod timeouts;

pub use builder::{CREDENTIALS_TIMEOUT, ClientSettings, CredentialsChoice, MAX_IDLE_CONNECTIONS};
pub use cache::{CredentialsCache, ProvideCredentials, REFRESH_BUFFER};
pub use chain::{ChainProvider, CredentialsChain, ProviderKind, drive};
pub use client_error::{BoxError, ClientError, PayloadCursor, ReaderFailure};
pub use collect::{COLLECT_LIMIT, Collected, Collector};
pub use config::{ClientConfig, ConfigError, Overrides, RetryMode, SharedConfig, Source, Sourced};
pub use credentials::{
    Attempt, CredentialsError, MAX_RESPONSE_BODY, NotFound, ProcessCommand, ProcessOutput,
    ProvidedCredentials, ProviderAttempt, Step,
};
pub use env::Env;
pub use fs::{FileReader, MemFs, StdFs};
pub use imds::{ImdsConfigError, ImdsMode, ImdsRegion, ImdsSettings, RegionStep};
pub use invoke_proto::redact_url;
pub use invoker::{Invoker, Started};
pub use jitter::jitter;
pub use location::{FileLocations, Platform};
pub use options::InvokeOptions;
pub use process::{kill_running_processes, run_process, run_process_until};
pub use providers::{PROCESS_MAX_OUTPUT, PROCESS_TIMEOUT, container_uri};
pub use proxy::{LOCAL_CONNECT_TIMEOUT, ProxyEnv, is_local_host};
pub use response_info::ResponseInfo;
pub use timeouts::{DRAIN_LIMIT, DRAIN_WAIT, FIFTEEN_MINUTES, MAX_TIMEOUT, Timeouts};

pub use bytes;
pub use http;
#[doc(hidden)]
pub use invoke_proto as __proto;
