//! Region, endpoint and credentials for AWS clients, resolved as the AWS SDKs do, sans-IO
//!
//! TODO crate docs
#![forbid(unsafe_code)]

pub mod config;
pub mod env;
pub mod fs;
pub mod location;
pub mod profile;

pub use config::{ClientConfig, ConfigError, Overrides, RetryMode, SharedConfig, Source, Sourced};
pub use env::Env;
pub use fs::{FileReader, MemFs, StdFs};
pub use location::{FileLocations, Platform};
