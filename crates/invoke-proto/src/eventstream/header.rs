//! Header values and the header block, kept in wire form and read zero-copy

use std::fmt;

use super::Utf8Bytes;
use bytes::{BufMut, Bytes, BytesMut};

use super::{MAX_HEADER_NAME_LEN, MAX_HEADER_VALUE_LEN};
use crate::error::{DecodeError, EncodeError, HeaderNameProblem};

const TYPE_TRUE: u8 = 0;
const TYPE_FALSE: u8 = 1;
const TYPE_BYTE: u8 = 2;
const TYPE_SHORT: u8 = 3;
const TYPE_INT: u8 = 4;
const TYPE_LONG: u8 = 5;
const TYPE_BYTES: u8 = 6;
const TYPE_STRING: u8 = 7;
const TYPE_TIMESTAMP: u8 = 8;
const TYPE_UUID: u8 = 9;

/// The typed value of one header; all ten wire types
///
/// `ByteArray` and `String` values decoded from a stream are slices of the received bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum HeaderValue {
    /// Types 0 (`true`) and 1 (`false`); the type byte is the value
    Bool(bool),
    /// Type 2: signed 8-bit integer
    Byte(i8),
    /// Type 3: signed 16-bit integer
    Short(i16),
    /// Type 4: signed 32-bit integer
    Int(i32),
    /// Type 5: signed 64-bit integer
    Long(i64),
    /// Type 6: bytes with a 16-bit length
    ByteArray(Bytes),
    /// Type 7: UTF-8 text with a 16-bit length
    String(Utf8Bytes),
    /// Type 8: milliseconds since the Unix epoch
    Timestamp(i64),
    /// Type 9: 16 raw bytes, in wire order
    Uuid([u8; 16]),
}

impl HeaderValue {
    /// The wire type byte, 0..=9
    pub fn wire_type(&self) -> u8 {
        match self {
            Self::Bool(true) => TYPE_TRUE,
            Self::Bool(false) => TYPE_FALSE,
            Self::Byte(_) => TYPE_BYTE,
            Self::Short(_) => TYPE_SHORT,
            Self::Int(_) => TYPE_INT,
            Self::Long(_) => TYPE_LONG,
            Self::ByteArray(_) => TYPE_BYTES,
            Self::String(_) => TYPE_STRING,
            Self::Timestamp(_) => TYPE_TIMESTAMP,
            Self::Uuid(_) => TYPE_UUID,
        }
    }

    /// Lower-case type name: `bool`, `byte`, `short`, `int`, `long`, `bytes`, `string`,
    /// `timestamp` or `uuid`
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Bool(_) => "bool",
            Self::Byte(_) => "byte",
            Self::Short(_) => "short",
            Self::Int(_) => "int",
            Self::Long(_) => "long",
            Self::ByteArray(_) => "bytes",
            Self::String(_) => "string",
            Self::Timestamp(_) => "timestamp",
            Self::Uuid(_) => "uuid",
        }
    }

    /// The text of a `String` value
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// Bytes this value takes on the wire after the name, type byte included
    fn wire_len(&self) -> usize {
        1 + match self {
            Self::Bool(_) => 0,
            Self::Byte(_) => 1,
            Self::Short(_) => 2,
            Self::Int(_) => 4,
            Self::Long(_) | Self::Timestamp(_) => 8,
            Self::ByteArray(b) => 2 + b.len(),
            Self::String(s) => 2 + s.len(),
            Self::Uuid(_) => 16,
        }
    }

    fn var_len(&self) -> Option<usize> {
        match self {
            Self::ByteArray(b) => Some(b.len()),
            Self::String(s) => Some(s.len()),
            _ => None,
        }
    }

    fn put(&self, dst: &mut BytesMut) {
        dst.put_u8(self.wire_type());
        match self {
            Self::Bool(_) => {}
            Self::Byte(v) => dst.put_i8(*v),
            Self::Short(v) => dst.put_i16(*v),
            Self::Int(v) => dst.put_i32(*v),
            Self::Long(v) | Self::Timestamp(v) => dst.put_i64(*v),
            Self::ByteArray(b) => {
                dst.put_u16(b.len() as u16);
                dst.put_slice(b);
            }
            Self::String(s) => {
                dst.put_u16(s.len() as u16);
                dst.put_slice(s.as_bytes());
            }
            Self::Uuid(u) => dst.put_slice(u),
        }
    }
}

impl fmt::Debug for HeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bool(v) => write!(f, "{v}"),
            Self::Byte(v) => write!(f, "{v}i8"),
            Self::Short(v) => write!(f, "{v}i16"),
            Self::Int(v) => write!(f, "{v}i32"),
            Self::Long(v) => write!(f, "{v}i64"),
            Self::ByteArray(b) => write!(f, "{b:?}"),
            Self::String(s) => write!(f, "{:?}", &**s),
            Self::Timestamp(v) => write!(f, "timestamp({v}ms)"),
            Self::Uuid(u) => write!(f, "uuid({})", format_uuid(u)),
        }
    }
}

/// Formats a UUID in lower-case 8-4-4-4-12 form, bytes in wire order
///
/// ```
/// let u = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0, 1, 2, 3, 4, 5, 6, 7];
/// assert_eq!(invoke_proto::format_uuid(&u), "01234567-89ab-cdef-0001-020304050607");
/// ```
pub fn format_uuid(u: &[u8; 16]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(36);
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

impl From<bool> for HeaderValue {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}
impl From<i8> for HeaderValue {
    fn from(v: i8) -> Self {
        Self::Byte(v)
    }
}
impl From<i16> for HeaderValue {
    fn from(v: i16) -> Self {
        Self::Short(v)
    }
}
impl From<i32> for HeaderValue {
    fn from(v: i32) -> Self {
        Self::Int(v)
    }
}
impl From<i64> for HeaderValue {
    fn from(v: i64) -> Self {
        Self::Long(v)
    }
}
impl From<&'static str> for HeaderValue {
    fn from(v: &'static str) -> Self {
        Self::String(Utf8Bytes::from_static(v))
    }
}
impl From<String> for HeaderValue {
    fn from(v: String) -> Self {
        Self::String(Utf8Bytes::from(v))
    }
}
impl From<Utf8Bytes> for HeaderValue {
    fn from(v: Utf8Bytes) -> Self {
        Self::String(v)
    }
}
impl From<Bytes> for HeaderValue {
    fn from(v: Bytes) -> Self {
        Self::ByteArray(v)
    }
}

/// One header: a name and a typed value
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    /// The header name, 1 to 255 bytes of UTF-8
    pub name: Utf8Bytes,
    /// The value
    pub value: HeaderValue,
}

impl Header {
    /// A header from a name and anything that converts into a value
    pub fn new(name: impl Into<Utf8Bytes>, value: impl Into<HeaderValue>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// The validated header block of one message, kept in wire form
///
/// Decoding validates the block once (lengths, types, UTF-8, no duplicate names) without
/// allocating; lookups and iteration then read it in place. Two `Headers` are equal when they
/// hold the same headers in the same order.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Headers {
    raw: Bytes,
}

impl Headers {
    /// No headers
    pub const fn new() -> Self {
        Self { raw: Bytes::new() }
    }

    /// A builder that checks every header as it is added
    pub fn builder() -> HeadersBuilder {
        HeadersBuilder::default()
    }

    /// Validates a header block in wire form
    ///
    /// # Errors
    ///
    /// Any header error of [`DecodeError`], with offsets counted from the start of `raw`.
    pub fn from_wire(raw: Bytes) -> Result<Self, DecodeError> {
        validate(&raw)?;
        Ok(Self { raw })
    }

    /// Wraps a block that [`validate`] accepted
    pub(crate) fn from_validated(raw: Bytes) -> Self {
        Self { raw }
    }

    /// The block in wire form
    pub fn as_wire(&self) -> &Bytes {
        &self.raw
    }

    /// Number of headers
    pub fn len(&self) -> usize {
        self.raw_iter().count()
    }

    /// Whether there are no headers
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The headers in wire order
    pub fn iter(&self) -> HeadersIter<'_> {
        HeadersIter {
            headers: self,
            pos: 0,
        }
    }

    /// The value of the header called `name`, if present
    pub fn get(&self, name: &str) -> Option<HeaderValue> {
        let raw = self.raw_iter().find(|h| h.name == name.as_bytes())?;
        Some(self.value_of(&raw))
    }

    /// The text of the string header called `name`; `None` if absent or not a string
    pub fn get_str(&self, name: &str) -> Option<&str> {
        let raw = self.raw_iter().find(|h| h.name == name.as_bytes())?;
        if raw.type_byte != TYPE_STRING {
            return None;
        }
        std::str::from_utf8(raw.value).ok()
    }

    fn raw_iter(&self) -> RawIter<'_> {
        RawIter {
            block: &self.raw,
            pos: 0,
        }
    }

    fn value_of(&self, raw: &RawHeader<'_>) -> HeaderValue {
        let v = raw.value;
        match raw.type_byte {
            TYPE_TRUE => HeaderValue::Bool(true),
            TYPE_FALSE => HeaderValue::Bool(false),
            TYPE_BYTE => HeaderValue::Byte(i8::from_be_bytes([v[0]])),
            TYPE_SHORT => HeaderValue::Short(i16::from_be_bytes([v[0], v[1]])),
            TYPE_INT => HeaderValue::Int(i32::from_be_bytes([v[0], v[1], v[2], v[3]])),
            TYPE_LONG => HeaderValue::Long(be_i64(v)),
            TYPE_TIMESTAMP => HeaderValue::Timestamp(be_i64(v)),
            TYPE_BYTES => HeaderValue::ByteArray(self.raw.slice_ref(v)),
            TYPE_STRING => {
                HeaderValue::String(Utf8Bytes::try_from(self.raw.slice_ref(v)).unwrap_or_default())
            }
            _ => {
                let mut u = [0u8; 16];
                u.copy_from_slice(v);
                HeaderValue::Uuid(u)
            }
        }
    }
}

fn be_i64(v: &[u8]) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&v[..8]);
    i64::from_be_bytes(b)
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|h| (h.name, h.value)))
            .finish()
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = Header;
    type IntoIter = HeadersIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl TryFrom<Vec<Header>> for Headers {
    type Error = EncodeError;
    fn try_from(headers: Vec<Header>) -> Result<Self, EncodeError> {
        let mut b = Self::builder();
        for h in headers {
            b.push(h.name, h.value)?;
        }
        b.build()
    }
}

/// Iterator over [`Headers`], yielding zero-copy [`Header`]s
#[derive(Debug, Clone)]
pub struct HeadersIter<'a> {
    headers: &'a Headers,
    pos: usize,
}

impl Iterator for HeadersIter<'_> {
    type Item = Header;
    fn next(&mut self) -> Option<Header> {
        let raw = read_header(&self.headers.raw, self.pos).ok()?;
        self.pos = raw.end;
        let name = Utf8Bytes::try_from(self.headers.raw.slice_ref(raw.name)).ok()?;
        Some(Header {
            name,
            value: self.headers.value_of(&raw),
        })
    }
}

/// Builds a [`Headers`] block, rejecting what the format cannot represent
#[derive(Debug, Default, Clone)]
pub struct HeadersBuilder {
    buf: BytesMut,
}

impl HeadersBuilder {
    /// Appends one header
    ///
    /// # Errors
    ///
    /// [`EncodeError::HeaderNameLength`] for a name outside 1..=255 bytes,
    /// [`EncodeError::HeaderValueTooLong`] for a byte-array or string value over 32,767 bytes.
    pub fn push(
        &mut self,
        name: impl AsRef<str>,
        value: impl Into<HeaderValue>,
    ) -> Result<&mut Self, EncodeError> {
        let name = name.as_ref();
        let value = value.into();
        if name.is_empty() || name.len() > MAX_HEADER_NAME_LEN {
            return Err(EncodeError::HeaderNameLength { len: name.len() });
        }
        if let Some(len) = value.var_len()
            && len > MAX_HEADER_VALUE_LEN
        {
            return Err(EncodeError::HeaderValueTooLong {
                name: name.to_owned(),
                len,
                max: MAX_HEADER_VALUE_LEN,
            });
        }
        self.buf.reserve(1 + name.len() + value.wire_len());
        self.buf.put_u8(name.len() as u8);
        self.buf.put_slice(name.as_bytes());
        value.put(&mut self.buf);
        Ok(self)
    }

    /// Finishes the block
    ///
    /// # Errors
    ///
    /// [`EncodeError::DuplicateHeader`] if a name was pushed twice.
    pub fn build(self) -> Result<Headers, EncodeError> {
        let raw = self.buf.freeze();
        match validate(&raw) {
            Ok(()) => Ok(Headers { raw }),
            Err(DecodeError::HeaderName { offset, .. }) => {
                let pos = usize::try_from(offset).unwrap_or(usize::MAX);
                let name = read_header(&raw, pos)
                    .map(|h| String::from_utf8_lossy(h.name).into_owned())
                    .unwrap_or_default();
                Err(EncodeError::DuplicateHeader { name })
            }
            // push only writes well-formed headers
            Err(_) => Err(EncodeError::DuplicateHeader {
                name: String::new(),
            }),
        }
    }
}

/// One header located in a block, before any conversion
struct RawHeader<'a> {
    name: &'a [u8],
    type_byte: u8,
    /// Value bytes, without the type byte or length prefix
    value: &'a [u8],
    /// Position just past this header
    end: usize,
}

/// Error of [`read_header`], before offsets are attached
enum ReadError {
    Length { needed: usize, available: usize },
    EmptyName,
    Type(u8),
}

/// Reads the header starting at `pos` of `block`, checking only its framing
fn read_header(block: &[u8], pos: usize) -> Result<RawHeader<'_>, ReadError> {
    let rest = &block[pos.min(block.len())..];
    let available = rest.len();
    let short = |needed| ReadError::Length { needed, available };
    let &name_len = rest.first().ok_or(short(1))?;
    let name_len = name_len as usize;
    if name_len == 0 {
        return Err(ReadError::EmptyName);
    }
    let type_at = 1 + name_len;
    let &type_byte = rest.get(type_at).ok_or(short(type_at + 1))?;
    let value_at = type_at + 1;
    let (value_start, value_len) = match type_byte {
        TYPE_TRUE | TYPE_FALSE => (value_at, 0),
        TYPE_BYTE => (value_at, 1),
        TYPE_SHORT => (value_at, 2),
        TYPE_INT => (value_at, 4),
        TYPE_LONG | TYPE_TIMESTAMP => (value_at, 8),
        TYPE_UUID => (value_at, 16),
        TYPE_BYTES | TYPE_STRING => {
            let len = rest
                .get(value_at..value_at + 2)
                .ok_or(short(value_at + 2))?;
            (value_at + 2, u16::from_be_bytes([len[0], len[1]]) as usize)
        }
        other => return Err(ReadError::Type(other)),
    };
    let end = value_start + value_len;
    if end > available {
        return Err(short(end));
    }
    Ok(RawHeader {
        name: &rest[1..type_at],
        type_byte,
        value: &rest[value_start..end],
        end: pos + end,
    })
}

/// Walks a header block without conversion
struct RawIter<'a> {
    block: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for RawIter<'a> {
    type Item = RawHeader<'a>;
    fn next(&mut self) -> Option<RawHeader<'a>> {
        let h = read_header(self.block, self.pos).ok()?;
        self.pos = h.end;
        Some(h)
    }
}

/// Checks a whole header block; offsets in errors count from the start of `block`
pub(crate) fn validate(block: &[u8]) -> Result<(), DecodeError> {
    let mut names = NameSet::default();
    let mut pos = 0;
    while pos < block.len() {
        let offset = pos as u64;
        let h = read_header(block, pos).map_err(|e| match e {
            ReadError::Length { needed, available } => DecodeError::HeaderLength {
                offset,
                needed,
                available,
            },
            ReadError::EmptyName => DecodeError::HeaderName {
                offset,
                problem: HeaderNameProblem::Empty,
            },
            ReadError::Type(type_byte) => DecodeError::HeaderType { offset, type_byte },
        })?;
        if !is_utf8(h.name) {
            return Err(DecodeError::HeaderName {
                offset,
                problem: HeaderNameProblem::InvalidUtf8,
            });
        }
        if h.type_byte == TYPE_STRING && !is_utf8(h.value) {
            return Err(DecodeError::InvalidUtf8 { offset });
        }
        names.insert(h.name, pos);
        pos = h.end;
    }
    match names.first_duplicate() {
        Some(pos) => Err(DecodeError::HeaderName {
            offset: pos as u64,
            problem: HeaderNameProblem::Duplicate,
        }),
        None => Ok(()),
    }
}

/// A copy of one short header block, to recognise a stream repeating the same block (Lambda
/// sends an identical one with every `PayloadChunk`) by one comparison instead of a parse
#[derive(Debug, Clone)]
pub(crate) struct BlockCache {
    /// Length of the block held, `usize::MAX` when none
    len: usize,
    bytes: [u8; Self::CAPACITY],
}

impl Default for BlockCache {
    fn default() -> Self {
        Self {
            len: usize::MAX,
            bytes: [0; Self::CAPACITY],
        }
    }
}

impl BlockCache {
    /// Longest block remembered
    const CAPACITY: usize = 256;

    /// Whether `block` equals the block held
    #[inline]
    pub(crate) fn matches(&self, block: &[u8]) -> bool {
        block.len() == self.len && block == &self.bytes[..self.len]
    }

    /// Holds `block` from now on, if it is short enough; else forgets the block held
    pub(crate) fn remember(&mut self, block: &[u8]) {
        if let Some(dst) = self.bytes.get_mut(..block.len()) {
            dst.copy_from_slice(block);
            self.len = block.len();
        } else {
            self.len = usize::MAX;
        }
    }
}

/// Remembers the last header block that passed [`validate`], so that a repeated block is
/// compared, not re-parsed
#[derive(Debug, Clone, Default)]
pub(crate) struct ValidatedBlock {
    last: BlockCache,
    /// Whether the block validated last equalled the one before it
    repeated: bool,
    /// Whether a message whose block repeats the one before it is built without it (see
    /// [`MessageDecoder::elide_repeated_headers`](super::MessageDecoder::elide_repeated_headers))
    elide: bool,
}

impl ValidatedBlock {
    /// As [`validate`], skipping the work when `block` equals the last valid block
    #[inline]
    pub(crate) fn validate(&mut self, block: &[u8]) -> Result<(), DecodeError> {
        self.repeated = self.last.matches(block);
        if !self.repeated {
            validate(block)?;
            self.last.remember(block);
        }
        Ok(())
    }

    /// Forgets that the block validated last repeated the one before it
    pub(crate) fn forget_repeat(&mut self) {
        self.repeated = false;
    }

    /// Whether the message of the block validated last is built without its block
    #[inline]
    pub(crate) fn elided(&self) -> bool {
        self.elide && self.repeated
    }

    /// Whether messages whose block repeats are built without it
    pub(crate) fn eliding(&self) -> bool {
        self.elide
    }

    /// Sets whether messages whose block repeats are built without it; what it was
    pub(crate) fn set_elide(&mut self, on: bool) -> bool {
        std::mem::replace(&mut self.elide, on)
    }

    /// Length of the block validated last, when it repeated the one before it
    pub(crate) fn repeated_len(&self) -> Option<usize> {
        self.repeated.then_some(self.last.len)
    }
}

/// UTF-8 check with a fast path for the usual all-ASCII names and values
#[inline]
fn is_utf8(b: &[u8]) -> bool {
    b.is_ascii() || std::str::from_utf8(b).is_ok()
}

/// Header names seen in one block, to find duplicates without allocating for small blocks
/// and in `O(n log n)` for hostile ones
#[derive(Default)]
struct NameSet<'a> {
    small: [(&'a [u8], usize); 8],
    small_len: usize,
    spill: Vec<(&'a [u8], usize)>,
    /// Position of the earliest repeated name found so far (small mode only)
    duplicate: Option<usize>,
}

impl<'a> NameSet<'a> {
    fn insert(&mut self, name: &'a [u8], pos: usize) {
        if !self.spill.is_empty() {
            self.spill.push((name, pos));
            return;
        }
        if self.duplicate.is_none() && self.small[..self.small_len].iter().any(|s| s.0 == name) {
            self.duplicate = Some(pos);
        }
        if self.small_len < self.small.len() {
            self.small[self.small_len] = (name, pos);
            self.small_len += 1;
        } else {
            self.spill.extend_from_slice(&self.small);
            self.spill.push((name, pos));
        }
    }

    fn first_duplicate(mut self) -> Option<usize> {
        if self.spill.is_empty() {
            return self.duplicate;
        }
        self.spill.sort_unstable();
        self.spill
            .windows(2)
            .filter(|w| w[0].0 == w[1].0)
            .map(|w| w[1].1)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(headers: &[(&str, HeaderValue)]) -> Bytes {
        let mut b = Headers::builder();
        for (n, v) in headers {
            b.push(n, v.clone()).unwrap();
        }
        b.build().unwrap().as_wire().clone()
    }

    #[test]
    fn all_types_round_trip() {
        let values = [
            ("t", HeaderValue::Bool(true)),
            ("f", HeaderValue::Bool(false)),
            ("b", HeaderValue::Byte(-1)),
            ("s", HeaderValue::Short(-2)),
            ("i", HeaderValue::Int(-3)),
            ("l", HeaderValue::Long(-4)),
            ("y", HeaderValue::ByteArray(Bytes::from_static(&[1, 2]))),
            ("S", HeaderValue::from("abc")),
            ("T", HeaderValue::Timestamp(1_700_000_000_000)),
            (
                "u",
                HeaderValue::Uuid(
                    *b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff",
                ),
            ),
        ];
        let raw = block(&values);
        // the same headers take 78 bytes
        assert_eq!(raw.len(), 0x4e);
        let h = Headers::from_wire(raw).unwrap();
        let got: Vec<_> = h.iter().map(|h| (h.name.to_string(), h.value)).collect();
        let want: Vec<_> = values
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.clone()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(h.len(), 10);
        assert_eq!(h.get_str("S"), Some("abc"));
        assert_eq!(h.get_str("b"), None);
        assert_eq!(h.get("T"), Some(HeaderValue::Timestamp(1_700_000_000_000)));
        assert_eq!(h.get("nope"), None);
        let names: Vec<_> = values.iter().map(|(_, v)| v.type_name()).collect();
        assert_eq!(
            names,
            [
                "bool",
                "bool",
                "byte",
                "short",
                "int",
                "long",
                "bytes",
                "string",
                "timestamp",
                "uuid"
            ]
        );
        let texts: Vec<_> = values.iter().map(|(_, v)| v.as_str()).collect();
        let mut want = [None; 10];
        want[7] = Some("abc");
        assert_eq!(texts, want);
    }

    #[test]
    fn duplicates_rejected_small_and_large() {
        let mut b = Headers::builder();
        b.push("a", 1i32).unwrap().push("a", 2i32).unwrap();
        assert_eq!(
            b.build().unwrap_err(),
            EncodeError::DuplicateHeader { name: "a".into() }
        );
        // many headers: the spill path
        let mut raw = BytesMut::new();
        for i in 0..40u8 {
            raw.extend_from_slice(&[2, b'h', b'0' + (i % 37), TYPE_TRUE]);
        }
        let err = Headers::from_wire(raw.freeze()).unwrap_err();
        assert_eq!(
            err,
            DecodeError::HeaderName {
                offset: 37 * 4,
                problem: HeaderNameProblem::Duplicate
            }
        );
    }

    #[test]
    fn framing_errors() {
        let cases: &[(&[u8], DecodeError)] = &[
            (
                &[0, 0],
                DecodeError::HeaderName {
                    offset: 0,
                    problem: HeaderNameProblem::Empty,
                },
            ),
            (
                &[1, b'a', 10],
                DecodeError::HeaderType {
                    offset: 0,
                    type_byte: 10,
                },
            ),
            (
                &[1, b'a'],
                DecodeError::HeaderLength {
                    offset: 0,
                    needed: 3,
                    available: 2,
                },
            ),
            (
                &[1, b'a', 4, 0, 0],
                DecodeError::HeaderLength {
                    offset: 0,
                    needed: 7,
                    available: 5,
                },
            ),
            (
                &[1, b'a', 7, 0],
                DecodeError::HeaderLength {
                    offset: 0,
                    needed: 5,
                    available: 4,
                },
            ),
            (
                &[1, b'a', 7, 0, 2, 0xff, 0xfe],
                DecodeError::InvalidUtf8 { offset: 0 },
            ),
            (
                &[1, 0xff, 0],
                DecodeError::HeaderName {
                    offset: 0,
                    problem: HeaderNameProblem::InvalidUtf8,
                },
            ),
            (
                &[1, b'a', 0, 3, b'x'],
                DecodeError::HeaderLength {
                    offset: 3,
                    needed: 5,
                    available: 2,
                },
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(
                &Headers::from_wire(Bytes::from_static(raw)).unwrap_err(),
                want,
                "{raw:?}"
            );
        }
        // empty byte-array and string values are fine
        let h =
            Headers::from_wire(Bytes::from_static(&[1, b'a', 7, 0, 0, 1, b'b', 6, 0, 0])).unwrap();
        assert_eq!(h.get_str("a"), Some(""));
    }

    #[test]
    fn builder_limits() {
        let long = "n".repeat(256);
        assert_eq!(
            Headers::builder().push(&long, true).unwrap_err(),
            EncodeError::HeaderNameLength { len: 256 }
        );
        assert!(Headers::builder().push(&long[..255], true).is_ok());
        assert_eq!(
            Headers::builder().push("", true).unwrap_err(),
            EncodeError::HeaderNameLength { len: 0 }
        );
        let big = Bytes::from(vec![0u8; MAX_HEADER_VALUE_LEN + 1]);
        assert!(matches!(
            Headers::builder().push("v", big).unwrap_err(),
            EncodeError::HeaderValueTooLong { len: 32_768, .. }
        ));
        let ok = "x".repeat(MAX_HEADER_VALUE_LEN);
        assert!(Headers::builder().push("v", ok.clone()).is_ok());
        // a string value is held to the same limit
        assert!(matches!(
            Headers::builder().push("v", format!("{ok}x")).unwrap_err(),
            EncodeError::HeaderValueTooLong { len: 32_768, .. }
        ));
    }

    #[test]
    fn headers_from_a_list_shown_as_a_map() {
        let list = vec![
            Header::new(":event-type", "PayloadChunk"),
            Header::new("n", 3i32),
            Header::new("ok", true),
            Header::new("at", HeaderValue::Timestamp(5)),
        ];
        let h = Headers::try_from(list.clone()).unwrap();
        assert!(!h.is_empty());
        assert_eq!(h.iter().collect::<Vec<_>>(), list);
        assert_eq!(
            format!("{h:?}"),
            r#"{":event-type": "PayloadChunk", "n": 3i32, "ok": true, "at": timestamp(5ms)}"#
        );
        assert!(Headers::new().is_empty() && Headers::try_from(Vec::new()).unwrap().is_empty());
        let dup = vec![Header::new("n", 1i32), Header::new("n", 2i32)];
        assert!(Headers::try_from(dup).is_err());
    }

    #[test]
    fn validated_block_cache_never_hides_an_error() {
        let mut seen = ValidatedBlock::default();
        let good = [1, b'a', TYPE_TRUE];
        seen.validate(&good).unwrap();
        seen.validate(&good).unwrap();
        assert!(matches!(
            seen.validate(&[1, b'a', 10]),
            Err(DecodeError::HeaderType { type_byte: 10, .. })
        ));
        seen.validate(&[]).unwrap();
        assert!(seen.validate(&[0]).is_err());
        seen.validate(&good).unwrap();
        let long = vec![1u8; 300];
        assert!(seen.validate(&long).is_err());
    }

    #[test]
    fn uuid_format() {
        let u = *b"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10";
        assert_eq!(format_uuid(&u), "01020304-0506-0708-090a-0b0c0d0e0f10");
    }
}
