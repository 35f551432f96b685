//! The error of an invocation: the one every transport reports, from `invoke-config`

pub use invoke_config::{BoxError, ClientError as Error};
pub use invoke_proto::TransportFailure;
