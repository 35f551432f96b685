//! The error of an invocation: the one every transport reports, from `invoke-proto`

pub use invoke_proto::{BoxError, ClientError as Error, TransportFailure};
