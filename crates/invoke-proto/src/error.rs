//! Error types, one enum per stage

use std::fmt;

/// Which configured limit a message broke, see [`Limits`](crate::Limits)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LimitKind {
    /// The whole message (`total_length` of the prelude)
    Message,
    /// The header block (`headers_length` of the prelude)
    Headers,
    /// The payload of a `PayloadChunk` the encoder was asked for, over the specification's
    /// 24 MiB ([`MAX_PAYLOAD_CHUNK_LEN`](crate::MAX_PAYLOAD_CHUNK_LEN))
    Payload,
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Message => "message length",
            Self::Headers => "headers length",
            Self::Payload => "payload length",
        })
    }
}

/// Why a header name was rejected
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderNameProblem {
    /// The name length byte is zero; names are 1 to 255 bytes
    Empty,
    /// The name is not valid UTF-8
    InvalidUtf8,
    /// The same name already appeared in this message
    Duplicate,
}

impl fmt::Display for HeaderNameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "empty",
            Self::InvalidUtf8 => "not valid utf-8",
            Self::Duplicate => "duplicate",
        })
    }
}

/// A failure while decoding an `application/vnd.amazon.eventstream` byte stream
///
/// Every variant names the check that failed and carries `offset`, the position in the
/// whole byte stream (counting from the first byte ever fed) where the failing item starts:
/// the first byte of the message for prelude, length, limit and CRC failures, the first byte
/// of the offending header for header failures.
///
/// Decoding errors are terminal: a decoder that returned one returns it again on every later
/// call and never tries to resynchronise.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The CRC-32 of the first 8 bytes does not match the prelude CRC field
    PreludeCrc {
        /// Start of the message
        offset: u64,
        /// The CRC carried in the prelude
        expected: u32,
        /// The CRC of the received bytes
        computed: u32,
    },
    /// The CRC-32 of the message does not match its trailing CRC field
    MessageCrc {
        /// Start of the message
        offset: u64,
        /// The CRC carried at the end of the message
        expected: u32,
        /// The CRC of the received bytes
        computed: u32,
    },
    /// The prelude lengths are inconsistent: `total_length < 16` or
    /// `headers_length > total_length - 16`
    Length {
        /// Start of the message
        offset: u64,
        /// `total_length` from the prelude
        total_len: u32,
        /// `headers_length` from the prelude
        headers_len: u32,
    },
    /// The prelude announces more than a configured limit allows; nothing was buffered
    LimitExceeded {
        /// Start of the message
        offset: u64,
        /// Which limit
        kind: LimitKind,
        /// The announced length
        len: u32,
        /// The configured maximum
        max: u32,
    },
    /// A header name is empty, not UTF-8, or repeated
    HeaderName {
        /// Start of the header
        offset: u64,
        /// What is wrong with it
        problem: HeaderNameProblem,
    },
    /// A header has a value type byte outside 0..=9
    HeaderType {
        /// Start of the header
        offset: u64,
        /// The type byte found
        type_byte: u8,
    },
    /// A header (its name, type or value) runs past the end of the header block
    HeaderLength {
        /// Start of the header
        offset: u64,
        /// Bytes this header needs from its start
        needed: usize,
        /// Bytes left in the header block from its start
        available: usize,
    },
    /// A string header value is not valid UTF-8
    InvalidUtf8 {
        /// Start of the header
        offset: u64,
    },
    /// The input ended inside a message
    Truncated {
        /// Start of the incomplete message
        offset: u64,
        /// How many bytes of it were received
        buffered: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PreludeCrc {
                offset,
                expected,
                computed,
            } => write!(
                f,
                "prelude crc mismatch at byte offset {offset}: expected {expected:#010x}, computed {computed:#010x}"
            ),
            Self::MessageCrc {
                offset,
                expected,
                computed,
            } => write!(
                f,
                "message crc mismatch at byte offset {offset}: expected {expected:#010x}, computed {computed:#010x}"
            ),
            Self::Length {
                offset,
                total_len,
                headers_len,
            } => write!(
                f,
                "inconsistent prelude lengths at byte offset {offset}: total {total_len}, headers {headers_len}"
            ),
            Self::LimitExceeded {
                offset,
                kind,
                len,
                max,
            } => write!(
                f,
                "{kind} {len} exceeds the limit of {max} at byte offset {offset}"
            ),
            Self::HeaderName { offset, problem } => {
                write!(f, "bad header name at byte offset {offset}: {problem}")
            }
            Self::HeaderType { offset, type_byte } => write!(
                f,
                "unknown header value type {type_byte} at byte offset {offset}"
            ),
            Self::HeaderLength {
                offset,
                needed,
                available,
            } => write!(
                f,
                "header at byte offset {offset} needs {needed} bytes but the header block has {available} left"
            ),
            Self::InvalidUtf8 { offset } => write!(
                f,
                "string header value at byte offset {offset} is not valid utf-8"
            ),
            Self::Truncated { offset, buffered } => write!(
                f,
                "stream truncated: {buffered} bytes of an incomplete message buffered at byte offset {offset}"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

impl DecodeError {
    /// Position in the byte stream where the failing item starts
    pub fn offset(&self) -> u64 {
        *self.clone().offset_mut()
    }

    /// A short, stable name of the failed check (`prelude_crc`, `message_crc`, `length`,
    /// `limit`, `header_name`, `header_type`, `header_length`, `utf8`, `truncated`)
    pub fn check(&self) -> &'static str {
        match self {
            Self::PreludeCrc { .. } => "prelude_crc",
            Self::MessageCrc { .. } => "message_crc",
            Self::Length { .. } => "length",
            Self::LimitExceeded { .. } => "limit",
            Self::HeaderName { .. } => "header_name",
            Self::HeaderType { .. } => "header_type",
            Self::HeaderLength { .. } => "header_length",
            Self::InvalidUtf8 { .. } => "utf8",
            Self::Truncated { .. } => "truncated",
        }
    }

    /// The same error with its offset moved by `by` bytes
    pub(crate) fn shifted(mut self, by: u64) -> Self {
        *self.offset_mut() += by;
        self
    }

    fn offset_mut(&mut self) -> &mut u64 {
        match self {
            Self::PreludeCrc { offset, .. }
            | Self::MessageCrc { offset, .. }
            | Self::Length { offset, .. }
            | Self::LimitExceeded { offset, .. }
            | Self::HeaderName { offset, .. }
            | Self::HeaderType { offset, .. }
            | Self::HeaderLength { offset, .. }
            | Self::InvalidUtf8 { offset, .. }
            | Self::Truncated { offset, .. } => offset,
        }
    }
}

/// A message or header that the event-stream format cannot represent
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// Header names are 1 to 255 bytes
    HeaderNameLength {
        /// Length of the rejected name
        len: usize,
    },
    /// Byte-array and string header values are at most 32,767 bytes
    HeaderValueTooLong {
        /// The header's name
        name: String,
        /// Length of the rejected value
        len: usize,
        /// The maximum, [`MAX_HEADER_VALUE_LEN`](crate::MAX_HEADER_VALUE_LEN)
        max: usize,
    },
    /// A header name appears twice in one message
    DuplicateHeader {
        /// The repeated name
        name: String,
    },
    /// The encoded message or header block is larger than the limit allows
    LimitExceeded {
        /// Which limit
        kind: LimitKind,
        /// The length the message would have
        len: u64,
        /// The configured maximum
        max: u32,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HeaderNameLength { len } => {
                write!(f, "header name of {len} bytes is outside 1..=255")
            }
            Self::HeaderValueTooLong { name, len, max } => write!(
                f,
                "value of header {name:?} is {len} bytes, over the {max}-byte maximum"
            ),
            Self::DuplicateHeader { name } => write!(f, "duplicate header {name:?}"),
            Self::LimitExceeded { kind, len, max } => write!(
                f,
                "encoded {kind} of {len} bytes exceeds the limit of {max}"
            ),
        }
    }
}

impl std::error::Error for EncodeError {}

/// A request that cannot be signed, see [`sign`](crate::sign)
///
/// No variant carries the secret access key or the session token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignError {
    /// The signing time is before 1970-01-01T00:00:00Z or after the year 9999
    TimeOutOfRange,
    /// A header value to sign is not valid UTF-8, so it has no canonical form
    HeaderValue {
        /// The header's name, lower case
        name: String,
    },
    /// The session token contains bytes a header value cannot hold
    SessionToken,
    /// The access key id, region or service is empty or has characters other than
    /// `A-Z a-z 0-9 - _ .`
    InvalidScope {
        /// Which one: `access key id`, `region` or `service`
        field: &'static str,
    },
    /// The request has neither a `Host` header nor a host in its URI
    MissingHost,
}

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TimeOutOfRange => f.write_str("signing time is outside the years 1970 to 9999"),
            Self::HeaderValue { name } => write!(f, "value of header {name:?} is not valid utf-8"),
            Self::SessionToken => f.write_str("session token is not a valid header value"),
            Self::InvalidScope { field } => write!(
                f,
                "{field} is empty or has characters not allowed in a credential scope"
            ),
            Self::MissingHost => f.write_str("request has no host header and no host in its uri"),
        }
    }
}

impl std::error::Error for SignError {}

/// Any error of this crate, one variant per stage
///
/// Every stage error converts into it with `?`, so an adapter's own error type can wrap this
/// one type; match a variant to reach the stage error and its details.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Resolving the endpoint failed
    Endpoint(crate::endpoint::EndpointError),
    /// The parameters are invalid, or the request cannot be built
    Build(crate::params::BuildError),
    /// The request cannot be signed
    Sign(SignError),
    /// A received request's signature is refused (server side)
    Verify(crate::sigv4::VerifyError),
    /// A received request is refused (server side)
    Request(crate::server_request::RequestError),
    /// The response head is not one this operation sends
    Response(crate::response::ResponseError),
    /// The service answered with an error
    Service(Box<crate::service_error::ServiceError>),
    /// The event-stream framing is broken
    Decode(DecodeError),
    /// A message cannot be encoded
    Encode(EncodeError),
    /// The response stream failed
    Stream(crate::stream::StreamError),
}

impl Error {
    /// The stage error, which this one displays and whose source is this one's
    fn stage(&self) -> &(dyn std::error::Error + 'static) {
        match self {
            Self::Endpoint(e) => e,
            Self::Build(e) => e,
            Self::Sign(e) => e,
            Self::Verify(e) => e,
            Self::Request(e) => e,
            Self::Response(e) => e,
            Self::Service(e) => &**e,
            Self::Decode(e) => e,
            Self::Encode(e) => e,
            Self::Stream(e) => e,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.stage(), f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.stage().source()
    }
}

/// `From` each stage error for [`Error`]
macro_rules! from_stage {
    ($($variant:ident($stage:ty)),* $(,)?) => {
        $(impl From<$stage> for Error {
            fn from(e: $stage) -> Self {
                Self::$variant(e)
            }
        })*
    };
}

from_stage!(
    Endpoint(crate::endpoint::EndpointError),
    Build(crate::params::BuildError),
    Sign(SignError),
    Verify(crate::sigv4::VerifyError),
    Request(crate::server_request::RequestError),
    Response(crate::response::ResponseError),
    Decode(DecodeError),
    Encode(EncodeError),
    Stream(crate::stream::StreamError),
);

impl From<crate::service_error::ServiceError> for Error {
    fn from(e: crate::service_error::ServiceError) -> Self {
        Self::Service(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stage_converts_and_stays_matchable() {
        fn lift<E: Into<Error>>(e: E) -> Error {
            e.into()
        }
        assert!(matches!(
            lift(crate::endpoint::EndpointError::MissingRegion),
            Error::Endpoint(crate::endpoint::EndpointError::MissingRegion)
        ));
        assert!(matches!(
            lift(SignError::MissingHost),
            Error::Sign(SignError::MissingHost)
        ));
        assert!(matches!(
            lift(crate::response::ResponseError::UnexpectedStatus(302)),
            Error::Response(_)
        ));
        let service = crate::service_error::ServiceError::new(
            crate::service_error::ServiceErrorKind::Service,
            "x",
        );
        assert!(matches!(lift(service.clone()), Error::Service(e) if *e == service));
        let e = lift(crate::stream::StreamError::InvalidLogResult);
        assert_eq!(
            e.to_string(),
            crate::stream::StreamError::InvalidLogResult.to_string()
        );
        assert!(matches!(
            lift(crate::sigv4::VerifyError::Missing),
            Error::Verify(_)
        ));
        assert!(matches!(
            lift(crate::server_request::RequestError::ClientContext),
            Error::Request(_)
        ));
        assert!(matches!(
            lift(EncodeError::HeaderNameLength { len: 0 }),
            Error::Encode(_)
        ));
        assert!(matches!(
            lift(crate::params::BuildError::from(
                crate::endpoint::EndpointError::MissingRegion
            )),
            Error::Build(_)
        ));
    }

    #[test]
    fn wrappers_show_the_stage_error_and_keep_its_chain() {
        use std::error::Error as _;
        let endpoint = crate::endpoint::EndpointError::MissingRegion;
        let build = crate::params::BuildError::from(endpoint.clone());
        assert_eq!(
            build.to_string(),
            "cannot build the request URI: Invalid Configuration: Missing Region"
        );
        assert_eq!(build.source().unwrap().to_string(), endpoint.to_string());
        // transparent: shown as the stage error, its source the stage error's source
        for wrapper in [
            Error::from(build.clone()),
            Error::from(crate::server_request::RequestError::from(build.clone())),
        ] {
            assert_eq!(wrapper.to_string(), build.to_string());
            assert_eq!(wrapper.source().unwrap().to_string(), endpoint.to_string());
        }
        let truncated = DecodeError::Truncated {
            offset: 7,
            buffered: 3,
        };
        let stream = crate::stream::StreamError::from(truncated.clone());
        let invoke = crate::invocation::InvokeError::from(stream.clone());
        for shown in [
            stream.to_string(),
            invoke.to_string(),
            Error::from(stream).to_string(),
        ] {
            assert_eq!(
                shown,
                "stream truncated: 3 bytes of an incomplete message buffered at byte offset 7"
            );
        }
        assert!(invoke.source().is_none());
        assert_eq!(
            DecodeError::MessageCrc {
                offset: 1,
                expected: 0xab,
                computed: 2
            }
            .to_string(),
            "message crc mismatch at byte offset 1: expected 0x000000ab, computed 0x00000002"
        );
    }

    #[test]
    fn every_decode_error_names_its_check_and_offset() {
        let errors = [
            (
                DecodeError::PreludeCrc {
                    offset: 1,
                    expected: 2,
                    computed: 3,
                },
                "prelude_crc",
                "prelude crc mismatch at byte offset 1: expected 0x00000002, computed 0x00000003",
            ),
            (
                DecodeError::MessageCrc {
                    offset: 2,
                    expected: 2,
                    computed: 3,
                },
                "message_crc",
                "message crc mismatch at byte offset 2: expected 0x00000002, computed 0x00000003",
            ),
            (
                DecodeError::Length {
                    offset: 3,
                    total_len: 10,
                    headers_len: 4,
                },
                "length",
                "inconsistent prelude lengths at byte offset 3: total 10, headers 4",
            ),
            (
                DecodeError::LimitExceeded {
                    offset: 4,
                    kind: LimitKind::Headers,
                    len: 9,
                    max: 8,
                },
                "limit",
                "headers length 9 exceeds the limit of 8 at byte offset 4",
            ),
            (
                DecodeError::HeaderName {
                    offset: 5,
                    problem: HeaderNameProblem::Duplicate,
                },
                "header_name",
                "bad header name at byte offset 5: duplicate",
            ),
            (
                DecodeError::HeaderType {
                    offset: 6,
                    type_byte: 10,
                },
                "header_type",
                "unknown header value type 10 at byte offset 6",
            ),
            (
                DecodeError::HeaderLength {
                    offset: 7,
                    needed: 5,
                    available: 4,
                },
                "header_length",
                "header at byte offset 7 needs 5 bytes but the header block has 4 left",
            ),
            (
                DecodeError::InvalidUtf8 { offset: 8 },
                "utf8",
                "string header value at byte offset 8 is not valid utf-8",
            ),
            (
                DecodeError::Truncated {
                    offset: 9,
                    buffered: 1,
                },
                "truncated",
                "stream truncated: 1 bytes of an incomplete message buffered at byte offset 9",
            ),
        ];
        for (offset, (e, check, text)) in (1u64..).zip(errors) {
            assert_eq!(e.check(), check);
            assert_eq!(e.offset(), offset, "{check}");
            assert_eq!(e.to_string(), text);
            let moved = e.clone().shifted(100);
            assert_eq!(moved.offset(), offset + 100, "{check}");
            assert_eq!(moved.check(), check);
        }
    }

    #[test]
    fn limits_names_encode_and_sign_errors_read_as_documented() {
        /// Each value shows as its text
        fn shown_as<E: fmt::Display>(cases: impl IntoIterator<Item = (E, &'static str)>) {
            for (e, text) in cases {
                assert_eq!(e.to_string(), text);
            }
        }
        shown_as([
            (LimitKind::Message, "message length"),
            (LimitKind::Headers, "headers length"),
            (LimitKind::Payload, "payload length"),
        ]);
        shown_as([
            (HeaderNameProblem::Empty, "empty"),
            (HeaderNameProblem::InvalidUtf8, "not valid utf-8"),
            (HeaderNameProblem::Duplicate, "duplicate"),
        ]);
        shown_as([
            (
                EncodeError::HeaderNameLength { len: 256 },
                "header name of 256 bytes is outside 1..=255",
            ),
            (
                EncodeError::HeaderValueTooLong {
                    name: "x".into(),
                    len: 40_000,
                    max: 32_767,
                },
                "value of header \"x\" is 40000 bytes, over the 32767-byte maximum",
            ),
            (
                EncodeError::DuplicateHeader { name: "y".into() },
                "duplicate header \"y\"",
            ),
            (
                EncodeError::LimitExceeded {
                    kind: LimitKind::Payload,
                    len: 30,
                    max: 20,
                },
                "encoded payload length of 30 bytes exceeds the limit of 20",
            ),
        ]);
        shown_as([
            (
                SignError::TimeOutOfRange,
                "signing time is outside the years 1970 to 9999",
            ),
            (
                SignError::HeaderValue { name: "x-a".into() },
                "value of header \"x-a\" is not valid utf-8",
            ),
            (
                SignError::SessionToken,
                "session token is not a valid header value",
            ),
            (
                SignError::InvalidScope { field: "region" },
                "region is empty or has characters not allowed in a credential scope",
            ),
            (
                SignError::MissingHost,
                "request has no host header and no host in its uri",
            ),
        ]);
    }
}
