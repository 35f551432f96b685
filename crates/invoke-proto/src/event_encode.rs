//! The server side of the response stream: events to event-stream messages and bytes, the
//! inverse of [`InvokeStream`](crate::InvokeStream)

use std::sync::LazyLock;

use base64::Engine as _;
use bytes::BytesMut;
use serde_json::Value;

use crate::error::{EncodeError, LimitKind};
use crate::eventstream::{
    Headers, Limits, MAX_MESSAGE_PAYLOAD_LEN, Message, encode_message, encode_parts,
};
use crate::names::{
    CONTENT_TYPE_HEADER, CONTENT_TYPE_JSON, CONTENT_TYPE_OCTET_STREAM, EVENT_INVOKE_COMPLETE,
    EVENT_PAYLOAD_CHUNK, EVENT_TYPE_HEADER, EXCEPTION_TYPE_HEADER, JSON_ERROR_CODE,
    JSON_ERROR_DETAILS, JSON_LOG_RESULT, MESSAGE_TYPE_EVENT, MESSAGE_TYPE_EXCEPTION,
    MESSAGE_TYPE_HEADER,
};
use crate::service_error::ServiceError;
use crate::stream::{Event, InvokeComplete};

/// A header block of string headers known to be valid
fn static_headers(pairs: &[(&str, &'static str)]) -> Headers {
    let mut h = Headers::builder();
    for (name, value) in pairs {
        h.push(name, *value).expect("static headers are valid");
    }
    h.build().expect("static header names are distinct")
}

/// The header block Lambda sends on every `PayloadChunk`
static PAYLOAD_CHUNK_HEADERS: LazyLock<Headers> = LazyLock::new(|| {
    static_headers(&[
        (EVENT_TYPE_HEADER, EVENT_PAYLOAD_CHUNK),
        (CONTENT_TYPE_HEADER, CONTENT_TYPE_OCTET_STREAM),
        (MESSAGE_TYPE_HEADER, MESSAGE_TYPE_EVENT),
    ])
});

/// The header block of `InvokeComplete`
static INVOKE_COMPLETE_HEADERS: LazyLock<Headers> = LazyLock::new(|| {
    static_headers(&[
        (EVENT_TYPE_HEADER, EVENT_INVOKE_COMPLETE),
        (CONTENT_TYPE_HEADER, CONTENT_TYPE_JSON),
        (MESSAGE_TYPE_HEADER, MESSAGE_TYPE_EVENT),
    ])
});

/// Largest payload one `PayloadChunk` message can carry: the specification's 24 MiB
/// ([`MAX_MESSAGE_PAYLOAD_LEN`]), which botocore enforces (the message is then within the
/// default [`Limits`])
pub const MAX_PAYLOAD_CHUNK_LEN: usize = MAX_MESSAGE_PAYLOAD_LEN;

/// Wire length of the `PayloadChunk` header block
#[cfg(test)]
const PAYLOAD_CHUNK_HEADERS_LEN: usize = 90;

/// Appends one `PayloadChunk` message carrying `payload` to `dst`, with the headers Lambda
/// sends (`:event-type`, `:content-type: application/octet-stream`, `:message-type: event`)
///
/// The fast path for a server: the payload is copied once, straight into `dst`.
///
/// # Errors
///
/// [`EncodeError::LimitExceeded`] if `payload` is longer than [`MAX_PAYLOAD_CHUNK_LEN`];
/// `dst` is then unchanged.
pub fn encode_payload_chunk(payload: &[u8], dst: &mut BytesMut) -> Result<(), EncodeError> {
    if payload.len() > MAX_PAYLOAD_CHUNK_LEN {
        return Err(EncodeError::LimitExceeded {
            kind: LimitKind::Payload,
            len: payload.len() as u64,
            max: MAX_PAYLOAD_CHUNK_LEN as u32,
        });
    }
    encode_parts(
        PAYLOAD_CHUNK_HEADERS.as_wire(),
        payload,
        Limits::default(),
        dst,
    )
}

impl InvokeComplete {
    /// A successful end
    pub fn success() -> Self {
        Self::default()
    }

    /// A failed end: the function's error code (`Unhandled`, or a runtime's error type) and
    /// details (usually JSON text)
    pub fn failure(error_code: impl Into<String>, error_details: impl Into<String>) -> Self {
        Self {
            error_code: Some(error_code.into()),
            error_details: Some(error_details.into()),
            log_result: None,
        }
    }

    /// The same end carrying `log` (the tail of the execution log) as base64 in `LogResult`
    #[must_use]
    pub fn with_log(mut self, log: &[u8]) -> Self {
        self.log_result = Some(base64::engine::general_purpose::STANDARD.encode(log));
        self
    }

    /// The JSON payload: `ErrorCode`, `ErrorDetails` and `LogResult`, each only when set
    pub fn to_json(&self) -> String {
        let mut obj = serde_json::Map::new();
        for (name, value) in [
            (JSON_ERROR_CODE, &self.error_code),
            (JSON_ERROR_DETAILS, &self.error_details),
            (JSON_LOG_RESULT, &self.log_result),
        ] {
            if let Some(v) = value {
                obj.insert(name.to_owned(), Value::from(v.as_str()));
            }
        }
        Value::Object(obj).to_string()
    }

    /// The `InvokeComplete` event message
    pub fn to_message(&self) -> Message {
        Message::new(INVOKE_COMPLETE_HEADERS.clone(), self.to_json())
    }
}

impl ServiceError {
    /// This error as an in-stream `exception` message: `:exception-type` is the code,
    /// `:content-type` is JSON and the payload is [`to_json_body`](Self::to_json_body)
    ///
    /// # Errors
    ///
    /// [`EncodeError::HeaderValueTooLong`] if the code is over 32,767 bytes.
    pub fn to_exception_message(&self) -> Result<Message, EncodeError> {
        let mut h = Headers::builder();
        h.push(EXCEPTION_TYPE_HEADER, self.code.clone())?
            .push(CONTENT_TYPE_HEADER, CONTENT_TYPE_JSON)?
            .push(MESSAGE_TYPE_HEADER, MESSAGE_TYPE_EXCEPTION)?;
        Ok(Message::new(h.build()?, self.to_json_body()))
    }
}

impl Event {
    /// The message this event is decoded from: the inverse of
    /// [`InvokeStream::next_event`](crate::InvokeStream::next_event)
    pub fn to_message(&self) -> Message {
        match self {
            Self::PayloadChunk(payload) => {
                Message::new(PAYLOAD_CHUNK_HEADERS.clone(), payload.clone())
            }
            Self::InvokeComplete(complete) => complete.to_message(),
            Self::Unknown { message, .. } => message.clone(),
        }
    }

    /// Appends this event in wire form to `dst`
    ///
    /// # Errors
    ///
    /// [`EncodeError::LimitExceeded`] if the message is over the default [`Limits`]; `dst`
    /// is then unchanged.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            Self::PayloadChunk(payload) => encode_payload_chunk(payload, dst),
            other => encode_message(&other.to_message(), dst),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::eventstream::MESSAGE_OVERHEAD;

    use super::*;

    #[test]
    fn payload_chunk_fast_path_matches_the_message_encoder() {
        let mut fast = BytesMut::new();
        encode_payload_chunk(b"Hello", &mut fast).unwrap();
        // The PayloadChunk "Hello" Lambda sends: 111 bytes, known prelude and CRC
        assert_eq!(fast.len(), 111);
        assert_eq!(
            &fast[..12],
            &[0, 0, 0, 0x6f, 0, 0, 0, 0x5a, 0xf5, 0xfe, 0x87, 0x1f]
        );
        assert_eq!(&fast[107..], &[0xe8, 0x26, 0x3d, 0x64]);
        let event = Event::PayloadChunk(Bytes::from_static(b"Hello"));
        assert_eq!(event.to_message().to_bytes().unwrap(), fast.freeze());
    }

    #[test]
    fn payload_chunk_limit() {
        assert_eq!(
            PAYLOAD_CHUNK_HEADERS.as_wire().len(),
            PAYLOAD_CHUNK_HEADERS_LEN
        );
        let mut dst = BytesMut::from(&b"keep"[..]);
        let big = vec![0; MAX_PAYLOAD_CHUNK_LEN + 1];
        assert!(encode_payload_chunk(&big, &mut dst).is_err());
        assert_eq!(&dst[..], b"keep");
        encode_payload_chunk(&big[1..], &mut dst).unwrap();
        let len = MESSAGE_OVERHEAD + PAYLOAD_CHUNK_HEADERS_LEN + MAX_PAYLOAD_CHUNK_LEN;
        assert_eq!(dst.len(), 4 + len);
        assert!(len <= Limits::DEFAULT_MAX_MESSAGE_LEN as usize);
    }

    #[test]
    fn invoke_complete_json_names_only_set_members() {
        assert_eq!(InvokeComplete::success().to_json(), "{}");
        let c = InvokeComplete::failure("Unhandled", r#"{"errorMessage":"x"}"#).with_log(b"hi");
        assert_eq!(
            c.to_json(),
            r#"{"ErrorCode":"Unhandled","ErrorDetails":"{\"errorMessage\":\"x\"}","LogResult":"aGk="}"#
        );
    }
}
