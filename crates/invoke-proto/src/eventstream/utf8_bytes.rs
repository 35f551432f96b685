//! UTF-8 text kept in [`Bytes`], so decoded header names and string values share the frame

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::str::Utf8Error;

use bytes::Bytes;

/// UTF-8 text held in [`Bytes`]: header names and string values, zero-copy when decoded
///
/// Always valid UTF-8 (every constructor checks or is given a `str`); it dereferences to `str`.
///
/// ```
/// use invoke_proto::Utf8Bytes;
/// use invoke_proto::bytes::Bytes;
///
/// let s = Utf8Bytes::try_from(Bytes::from_static(b":event-type"))?;
/// assert_eq!(s, ":event-type");
/// assert!(s.starts_with(':'));
/// assert!(Utf8Bytes::try_from(Bytes::from_static(b"\xff")).is_err());
/// # Ok::<(), std::str::Utf8Error>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// Text from a static string, without copying
    pub const fn from_static(s: &'static str) -> Self {
        Self(Bytes::from_static(s.as_bytes()))
    }

    /// The text
    pub fn as_str(&self) -> &str {
        // Every constructor keeps the bytes valid UTF-8, so the fallback is never taken
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The UTF-8 bytes
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The underlying bytes
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl Deref for Utf8Bytes {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Utf8Bytes {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Utf8Bytes {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

// Hashes as the `str` it borrows as, so maps keyed by it can be queried with a `&str`
impl Hash for Utf8Bytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl From<&'static str> for Utf8Bytes {
    fn from(s: &'static str) -> Self {
        Self::from_static(s)
    }
}

impl From<String> for Utf8Bytes {
    fn from(s: String) -> Self {
        Self(Bytes::from(s.into_bytes()))
    }
}

impl TryFrom<Bytes> for Utf8Bytes {
    type Error = Utf8Error;
    fn try_from(b: Bytes) -> Result<Self, Utf8Error> {
        std::str::from_utf8(&b)?;
        Ok(Self(b))
    }
}

impl From<Utf8Bytes> for Bytes {
    fn from(s: Utf8Bytes) -> Self {
        s.0
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use bytes::Bytes;

    use super::Utf8Bytes;

    #[test]
    fn only_valid_utf8_is_accepted() {
        assert!(Utf8Bytes::try_from(Bytes::from_static(b"caf\xc3\xa9")).is_ok());
        assert!(Utf8Bytes::try_from(Bytes::from_static(b"caf\xc3")).is_err());
        assert!(Utf8Bytes::try_from(Bytes::from_static(b"\xed\xa0\x80")).is_err());
    }

    #[test]
    fn behaves_as_its_text() {
        let s = Utf8Bytes::from(String::from("café"));
        assert_eq!(s.len(), 5);
        assert_eq!(&*s, "café");
        assert_eq!(s, "café");
        assert_eq!(format!("{s} {s:?}"), "café \"café\"");
        assert_eq!(Utf8Bytes::default(), "");
        assert!(Utf8Bytes::default().is_empty());
        let set: HashSet<Utf8Bytes> = [Utf8Bytes::from_static("a"), s.clone()].into();
        assert!(set.contains("café"));
        assert!(!s.is_empty());
        assert!(s == *"café" && s != *"cafe");
        assert_ne!(s, "cafe");
        assert_eq!(
            s.clone().into_bytes(),
            Bytes::from_static("café".as_bytes())
        );
        assert_eq!(Bytes::from(s), Bytes::from_static("café".as_bytes()));
    }

    #[test]
    fn slices_share_the_buffer() {
        let frame = Bytes::from_static(b"xx:event-typeyy");
        let s = Utf8Bytes::try_from(frame.slice(2..13)).unwrap();
        assert_eq!(s, ":event-type");
        assert_eq!(s.as_bytes().as_ptr(), frame[2..].as_ptr());
    }
}
