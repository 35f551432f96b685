//! Region, endpoint and credentials for AWS clients, resolved as the AWS SDKs do, sans-IO
//!
//! TODO crate docs
#![forbid(unsafe_code)]

mod cache;
mod chain;
pub mod config;
mod credentials;
pub mod env;
pub mod fs;
pub mod imds;
pub mod location;
mod process;
pub mod profile;
mod providers;
mod sha1;
mod sts;
mod time;

pub use cache::{CredentialsCache, ProvideCredentials, REFRESH_BUFFER};
pub use chain::{ChainProvider, CredentialsChain, ProviderKind, drive};
pub use config::{ClientConfig, ConfigError, Overrides, RetryMode, SharedConfig, Source, Sourced};
pub use credentials::{
    Attempt, CredentialsError, MAX_RESPONSE_BODY, NotFound, ProcessCommand, ProcessOutput,
    ProvidedCredentials, ProviderAttempt, Step,
};
pub use env::Env;
pub use fs::{FileReader, MemFs, StdFs};
pub use imds::{ImdsConfigError, ImdsMode, ImdsSettings};
pub use location::{FileLocations, Platform};
pub use process::run_process;
pub use providers::{PROCESS_MAX_OUTPUT, PROCESS_TIMEOUT, container_uri};
