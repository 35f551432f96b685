//! One event-stream message: headers and payload

use bytes::{Buf, Bytes};

use super::header::{Headers, ValidatedBlock};
use super::{MESSAGE_OVERHEAD, PRELUDE_LEN, Prelude, be_u32};
use crate::error::DecodeError;

/// One decoded or to-be-encoded message
///
/// A decoded message's `headers` and `payload` are slices of the bytes it was decoded from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Message {
    /// The header block
    pub headers: Headers,
    /// The payload, opaque bytes
    pub payload: Bytes,
}

impl Message {
    /// A message from headers and a payload
    pub fn new(headers: Headers, payload: impl Into<Bytes>) -> Self {
        Self {
            headers,
            payload: payload.into(),
        }
    }

    /// Length of this message on the wire
    pub fn wire_len(&self) -> u64 {
        (MESSAGE_OVERHEAD + self.headers.as_wire().len() + self.payload.len()) as u64
    }

    /// Builds a message from one complete frame whose prelude was already checked
    ///
    /// Checks the message CRC, continuing `crc` (the state after the first 8 bytes), then the
    /// header block. `offset` is the stream position of `frame[0]`. No byte is copied: headers
    /// and payload are slices of `frame`.
    #[inline]
    pub(crate) fn from_frame(
        frame: Bytes,
        prelude: Prelude,
        mut crc: crc32fast::Hasher,
        offset: u64,
        seen: &mut ValidatedBlock,
    ) -> Result<Self, DecodeError> {
        let total = prelude.total_len as usize;
        debug_assert_eq!(frame.len(), total);
        crc.update(&frame[8..total - 4]);
        Self::from_hashed_frame(frame, prelude, crc.finalize(), offset, seen)
    }

    /// As [`from_frame`](Self::from_frame), with the CRC of `frame[..total_len - 4]` already
    /// computed
    #[inline]
    pub(crate) fn from_hashed_frame(
        frame: Bytes,
        prelude: Prelude,
        computed: u32,
        offset: u64,
        seen: &mut ValidatedBlock,
    ) -> Result<Self, DecodeError> {
        let total = prelude.total_len as usize;
        check_crc(be_u32(&frame[total - 4..]), computed, offset)?;
        let headers_end = PRELUDE_LEN + prelude.headers_len as usize;
        seen.validate(&frame[PRELUDE_LEN..headers_end])
            .map_err(|e| e.shifted(offset + PRELUDE_LEN as u64))?;
        Ok(Self::from_checked_frame(frame, prelude, seen.elided()))
    }

    /// A message from a whole frame whose CRCs and header block were checked; without its
    /// headers if `elided`
    pub(crate) fn from_checked_frame(mut frame: Bytes, prelude: Prelude, elided: bool) -> Self {
        let headers_end = PRELUDE_LEN + prelude.headers_len as usize;
        frame.truncate(prelude.total_len as usize - 4);
        if elided {
            // the caller knows the block: one slice (one reference count) fewer
            frame.advance(headers_end);
            return Self {
                headers: Headers::default(),
                payload: frame,
            };
        }
        let payload = frame.split_off(headers_end);
        frame.advance(PRELUDE_LEN);
        Self {
            headers: Headers::from_validated(frame),
            payload,
        }
    }
}

/// Compares a message's trailing CRC with the one computed over its bytes
#[inline]
pub(crate) fn check_crc(expected: u32, computed: u32, offset: u64) -> Result<(), DecodeError> {
    if computed == expected {
        return Ok(());
    }
    Err(DecodeError::MessageCrc {
        offset,
        expected,
        computed,
    })
}
