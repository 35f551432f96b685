//! Message encoder

use bytes::{BufMut, BytesMut};

use super::{Limits, MESSAGE_OVERHEAD, Message};
use crate::error::{EncodeError, LimitKind};

/// Appends `message` in wire form to `dst`, under the default [`Limits`]
///
/// # Errors
///
/// [`EncodeError::LimitExceeded`] if the message or its header block is over the limit;
/// `dst` is then unchanged.
pub fn encode_message(message: &Message, dst: &mut BytesMut) -> Result<(), EncodeError> {
    encode_message_with_limits(message, &Limits::default(), dst)
}

/// Appends `message` in wire form to `dst`, under `limits`
///
/// # Errors
///
/// [`EncodeError::LimitExceeded`] if the message or its header block is over the limit;
/// `dst` is then unchanged.
pub fn encode_message_with_limits(
    message: &Message,
    limits: &Limits,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    encode_parts(message.headers.as_wire(), &message.payload, *limits, dst)
}

/// Appends the message made of the header block `headers` (wire form, already valid) and
/// `payload` to `dst`, under `limits`; `dst` is unchanged on error
pub(crate) fn encode_parts(
    headers: &[u8],
    payload: &[u8],
    limits: Limits,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    let headers_len = headers.len() as u64;
    if headers_len > u64::from(limits.max_headers_len) {
        return Err(EncodeError::LimitExceeded {
            kind: LimitKind::Headers,
            len: headers_len,
            max: limits.max_headers_len,
        });
    }
    let total = (MESSAGE_OVERHEAD + headers.len() + payload.len()) as u64;
    if total > u64::from(limits.max_message_len) {
        return Err(EncodeError::LimitExceeded {
            kind: LimitKind::Message,
            len: total,
            max: limits.max_message_len,
        });
    }
    let total = total as usize;
    let start = dst.len();
    dst.reserve(total);
    dst.put_u32(total as u32);
    dst.put_u32(headers_len as u32);
    let prelude_crc = crc32fast::hash(&dst[start..start + 8]);
    dst.put_u32(prelude_crc);
    dst.put_slice(headers);
    dst.put_slice(payload);
    let mut crc = crc32fast::Hasher::new_with_initial(prelude_crc);
    crc.update(&dst[start + 8..]);
    dst.put_u32(crc.finalize());
    debug_assert_eq!(dst.len() - start, total);
    Ok(())
}

impl Message {
    /// This message in wire form, under the default [`Limits`]
    ///
    /// # Errors
    ///
    /// As [`encode_message`].
    pub fn to_bytes(&self) -> Result<bytes::Bytes, EncodeError> {
        let mut dst = BytesMut::new();
        encode_message(self, &mut dst)?;
        Ok(dst.freeze())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::eventstream::Headers;

    #[test]
    fn empty_message_matches_vector() {
        // the empty message of the event-stream specification
        let b = Message::default().to_bytes().unwrap();
        assert_eq!(
            &b[..],
            &[
                0, 0, 0, 0x10, 0, 0, 0, 0, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8, 0xff
            ]
        );
    }

    #[test]
    fn payload_chunk_matches_vector() {
        // the PayloadChunk "Hello" Lambda sends: 111 bytes
        let mut h = Headers::builder();
        h.push(":event-type", "PayloadChunk")
            .unwrap()
            .push(":content-type", "application/octet-stream")
            .unwrap()
            .push(":message-type", "event")
            .unwrap();
        let m = Message::new(h.build().unwrap(), Bytes::from_static(b"Hello"));
        let b = m.to_bytes().unwrap();
        assert_eq!(b.len(), 111);
        assert_eq!(
            &b[..12],
            &[0, 0, 0, 0x6f, 0, 0, 0, 0x5a, 0xf5, 0xfe, 0x87, 0x1f]
        );
        assert_eq!(&b[107..], &[0xe8, 0x26, 0x3d, 0x64]);
    }

    #[test]
    fn limits_rejected_without_writing() {
        let m = Message::new(Headers::new(), vec![0u8; 100]);
        let limits = Limits {
            max_message_len: 115,
            ..Limits::default()
        };
        let mut dst = BytesMut::from(&b"keep"[..]);
        assert_eq!(
            encode_message_with_limits(&m, &limits, &mut dst).unwrap_err(),
            EncodeError::LimitExceeded {
                kind: LimitKind::Message,
                len: 116,
                max: 115
            }
        );
        assert_eq!(&dst[..], b"keep");
        // at the limit exactly is within it
        let exact = Limits {
            max_message_len: 116,
            ..limits
        };
        encode_message_with_limits(&m, &exact, &mut dst).unwrap();
        assert_eq!(dst.len(), 4 + 116);
        let mut h = Headers::builder();
        h.push("x", "y").unwrap();
        let m = Message::new(h.build().unwrap(), Bytes::new());
        let limits = Limits {
            max_headers_len: 4,
            ..Limits::default()
        };
        assert!(matches!(
            encode_message_with_limits(&m, &limits, &mut dst).unwrap_err(),
            EncodeError::LimitExceeded {
                kind: LimitKind::Headers,
                ..
            }
        ));
        let block = m.headers.as_wire().len() as u32;
        let exact = Limits {
            max_headers_len: block,
            ..limits
        };
        encode_message_with_limits(&m, &exact, &mut dst).unwrap();
        let fewer = Limits {
            max_headers_len: block - 1,
            ..limits
        };
        assert!(encode_message_with_limits(&m, &fewer, &mut dst).is_err());
    }
}
