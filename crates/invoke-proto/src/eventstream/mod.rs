//! The `application/vnd.amazon.eventstream` binary framing: messages, headers, decoder, encoder
//!
//! A message on the wire is a 12-byte prelude (`total_length`, `headers_length`, prelude CRC),
//! a header block, a payload and a trailing CRC-32 of everything before it, as the
//! [Smithy event-stream specification](https://smithy.io/2.0/aws/amazon-eventstream.html)
//! describes.

mod decoder;
mod encode;
mod header;
mod message;
mod prelude;
mod utf8_bytes;

pub use decoder::MessageDecoder;
/// The old name, for tests inside the crate not yet moved to [`encode_message`]
#[cfg(test)]
pub(crate) use encode::encode_message as encode;
pub(crate) use encode::encode_parts;
pub use encode::{encode_message, encode_message_with_limits};
pub(crate) use header::BlockCache;
pub use header::{Header, HeaderValue, Headers, HeadersBuilder, HeadersIter, format_uuid};
pub use message::Message;
pub use prelude::Prelude;
pub use utf8_bytes::Utf8Bytes;

/// Bytes of the prelude: `total_length`, `headers_length`, prelude CRC
pub const PRELUDE_LEN: usize = 12;
/// Fixed overhead of every message: the prelude plus the trailing message CRC
pub const MESSAGE_OVERHEAD: usize = 16;
/// Largest payload of one message in the specification (24 MiB), which botocore enforces; the
/// encoder writes no larger one
pub const MAX_MESSAGE_PAYLOAD_LEN: usize = 24 * 1024 * 1024;
/// Longest header name the format can carry
pub const MAX_HEADER_NAME_LEN: usize = 255;
/// Longest byte-array or string header value the encoder writes (the specification's limit;
/// the decoder accepts the full `u16` range)
pub const MAX_HEADER_VALUE_LEN: usize = 32_767;

/// Size limits that guard memory, checked against the prelude before anything is buffered
///
/// The defaults take every message the specification's limits allow, as botocore does: 128
/// KiB for the header block, and for a whole message a [24 MiB payload](MAX_MESSAGE_PAYLOAD_LEN)
/// with a full header block and the 16 bytes of framing. (The AWS CRT caps the whole message
/// at 24 MiB, so it refuses the largest payloads botocore accepts.) The Smithy specification
/// asks clients not to enforce size limits for interoperability; these are generous memory
/// guards, configurable both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum `total_length` of one message, prelude and CRCs included
    pub max_message_len: u32,
    /// Maximum `headers_length` of one message
    pub max_headers_len: u32,
}

impl Limits {
    /// Default maximum message length: 24 MiB + 128 KiB + 16 bytes (25,296,912), the largest
    /// message within the specification's payload and header limits
    #[allow(clippy::cast_possible_truncation, reason = "25,296,912 fits")]
    pub const DEFAULT_MAX_MESSAGE_LEN: u32 = (MAX_MESSAGE_PAYLOAD_LEN
        + Self::DEFAULT_MAX_HEADERS_LEN as usize
        + MESSAGE_OVERHEAD) as u32;
    /// Default maximum header block length: 128 KiB
    pub const DEFAULT_MAX_HEADERS_LEN: u32 = 128 * 1024;

    /// No limit beyond what the `u32` length fields can express
    ///
    /// # Warning
    ///
    /// A peer can then make a decoder buffer up to 4 GiB for one message.
    pub const UNLIMITED: Self = Self {
        max_message_len: u32::MAX,
        max_headers_len: u32::MAX,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_len: Self::DEFAULT_MAX_MESSAGE_LEN,
            max_headers_len: Self::DEFAULT_MAX_HEADERS_LEN,
        }
    }
}

/// Reads a big-endian `u32` from the first four bytes of `b`
#[inline]
fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}
