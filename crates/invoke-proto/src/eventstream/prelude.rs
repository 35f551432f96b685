//! The 12-byte prelude: lengths and their CRC, validated before any body byte is buffered

use super::{Limits, MESSAGE_OVERHEAD, PRELUDE_LEN, be_u32};
use crate::error::{DecodeError, LimitKind};

/// A validated message prelude
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prelude {
    /// Length of the whole message, prelude and trailing CRC included (at least 16)
    pub total_len: u32,
    /// Length of the header block (at most `total_len - 16`)
    pub headers_len: u32,
    /// The prelude CRC, the CRC-32 of the first 8 bytes
    pub crc: u32,
}

impl Prelude {
    /// Parses and checks the first 12 bytes of a message
    ///
    /// Checks, in this order: the prelude CRC, the length consistency, then `limits`.
    /// `offset` is the stream position of `bytes[0]`, used in errors.
    ///
    /// # Errors
    ///
    /// [`DecodeError::PreludeCrc`], [`DecodeError::Length`] or [`DecodeError::LimitExceeded`].
    pub fn parse(
        bytes: &[u8; PRELUDE_LEN],
        limits: &Limits,
        offset: u64,
    ) -> Result<Self, DecodeError> {
        Self::check(bytes, crc32fast::hash(&bytes[0..8]), *limits, offset)
    }

    /// As [`parse`](Self::parse), given `computed`, the CRC-32 of `bytes[0..8]`
    #[inline]
    pub(crate) fn check(
        bytes: &[u8; PRELUDE_LEN],
        computed: u32,
        limits: Limits,
        offset: u64,
    ) -> Result<Self, DecodeError> {
        let total_len = be_u32(&bytes[0..4]);
        let headers_len = be_u32(&bytes[4..8]);
        let crc = be_u32(&bytes[8..12]);
        if computed != crc {
            return Err(DecodeError::PreludeCrc {
                offset,
                expected: crc,
                computed,
            });
        }
        if (total_len as usize) < MESSAGE_OVERHEAD
            || headers_len as usize > total_len as usize - MESSAGE_OVERHEAD
        {
            return Err(DecodeError::Length {
                offset,
                total_len,
                headers_len,
            });
        }
        if total_len > limits.max_message_len {
            return Err(DecodeError::LimitExceeded {
                offset,
                kind: LimitKind::Message,
                len: total_len,
                max: limits.max_message_len,
            });
        }
        if headers_len > limits.max_headers_len {
            return Err(DecodeError::LimitExceeded {
                offset,
                kind: LimitKind::Headers,
                len: headers_len,
                max: limits.max_headers_len,
            });
        }
        Ok(Self {
            total_len,
            headers_len,
            crc,
        })
    }

    /// Length of the payload this prelude announces
    pub fn payload_len(&self) -> u32 {
        self.total_len - self.headers_len - MESSAGE_OVERHEAD as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prelude_bytes(total: u32, headers: u32) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[0..4].copy_from_slice(&total.to_be_bytes());
        b[4..8].copy_from_slice(&headers.to_be_bytes());
        let crc = crc32fast::hash(&b[0..8]);
        b[8..12].copy_from_slice(&crc.to_be_bytes());
        b
    }

    #[test]
    fn empty_message_prelude() {
        let p = Prelude::parse(&prelude_bytes(16, 0), &Limits::default(), 0).unwrap();
        assert_eq!(p.payload_len(), 0);
        assert_eq!(p.crc, 0x05c2_48eb);
    }

    #[test]
    fn the_largest_message_the_specification_allows_passes_the_default_limits() {
        // a 24 MiB payload with a full 128 KiB header block, as botocore accepts; the
        // numbers written out, so that a change to the limits' constants shows here
        let largest = (24 << 20) + (128 << 10) + 16;
        assert_eq!(Limits::DEFAULT_MAX_MESSAGE_LEN, largest);
        let p = Prelude::parse(&prelude_bytes(largest, 128 << 10), &Limits::default(), 0).unwrap();
        assert_eq!(p.payload_len(), 24 << 20);
        assert!(matches!(
            Prelude::parse(&prelude_bytes(largest + 1, 0), &Limits::default(), 0),
            Err(DecodeError::LimitExceeded {
                kind: LimitKind::Message,
                ..
            })
        ));
    }

    #[test]
    fn four_gib_announcement_fails_on_limit() {
        let err = Prelude::parse(&prelude_bytes(u32::MAX, 0), &Limits::default(), 7).unwrap_err();
        assert_eq!(
            err,
            DecodeError::LimitExceeded {
                offset: 7,
                kind: LimitKind::Message,
                len: u32::MAX,
                max: Limits::DEFAULT_MAX_MESSAGE_LEN
            }
        );
    }

    #[test]
    fn headers_limit() {
        let limits = Limits {
            max_headers_len: 10,
            ..Limits::default()
        };
        let err = Prelude::parse(&prelude_bytes(100, 11), &limits, 0).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::LimitExceeded {
                kind: LimitKind::Headers,
                ..
            }
        ));
    }

    #[test]
    fn inconsistent_lengths() {
        for (t, h) in [(15, 0), (0, 0), (16, 1), (100, 85), (u32::MAX, u32::MAX)] {
            let err = Prelude::parse(&prelude_bytes(t, h), &Limits::UNLIMITED, 0).unwrap_err();
            assert!(matches!(err, DecodeError::Length { .. }), "{t} {h}: {err}");
        }
        assert!(Prelude::parse(&prelude_bytes(100, 84), &Limits::UNLIMITED, 0).is_ok());
    }

    #[test]
    fn crc_checked_first() {
        let mut b = prelude_bytes(u32::MAX, 0);
        b[11] ^= 1;
        let err = Prelude::parse(&b, &Limits::default(), 3).unwrap_err();
        assert!(matches!(err, DecodeError::PreludeCrc { offset: 3, .. }));
    }
}
