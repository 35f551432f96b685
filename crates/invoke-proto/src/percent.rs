//! Percent-encoding with the RFC 3986 unreserved set, and strict decoding

/// Whether `b` is an RFC 3986 unreserved character (`A-Z a-z 0-9 - . _ ~`)
pub(crate) const fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// [`unreserved`] for every byte, and `/` marked apart: bit 0 unreserved, bit 1 `/`
const CLASS: [u8; 256] = {
    let mut table = [0; 256];
    let mut b = 0;
    while b < 256 {
        if unreserved(b as u8) {
            table[b] = 1;
        }
        b += 1;
    }
    table[b'/' as usize] = 2;
    table
};

/// Appends `%XX` (upper-case hex) for `b`
pub(crate) fn push_escaped(out: &mut String, b: u8) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(DIGITS[usize::from(b >> 4)] as char);
    out.push(DIGITS[usize::from(b & 0xf)] as char);
}

/// Appends `b` as is when unreserved, else percent-encoded
pub(crate) fn push_encoded_byte(out: &mut String, b: u8) {
    if unreserved(b) {
        out.push(b as char);
    } else {
        push_escaped(out, b);
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters, as the SDKs encode URI
/// labels and query values (an ARN's `:` becomes `%3A`, `$` becomes `%24`)
#[cfg(test)]
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_encoded(&mut out, s, false);
    out
}

/// Appends `s` with every byte other than the unreserved characters (and `/` when
/// `keep_slash`) percent-encoded; runs that need no escaping are copied whole
pub(crate) fn push_encoded(out: &mut String, s: &str, keep_slash: bool) {
    let keep = if keep_slash { 3 } else { 1 };
    let mut start = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        if CLASS[usize::from(b)] & keep != 0 {
            continue;
        }
        // `s[start..i]` is ASCII, so both ends are character boundaries
        if i > start {
            out.push_str(&s[start..i]);
        }
        push_escaped(out, b);
        start = i + 1;
    }
    if start < s.len() {
        out.push_str(&s[start..]);
    }
}

/// Value of an ASCII hex digit
pub(crate) const fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` sequences (no `+` for space, as in a URI path); `None` on a malformed
/// escape or a result that is not UTF-8
pub(crate) fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hi = hex_value(*b.get(i + 1)?)?;
            let lo = hex_value(*b.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_inverts_encode_and_rejects_bad_escapes() {
        for s in [
            "",
            "f",
            "arn:aws:lambda:us-east-1:1:function:f:$LATEST",
            "é ü/?&=+",
        ] {
            assert_eq!(decode(&encode(s)).as_deref(), Some(s));
        }
        assert_eq!(decode("a%3ab").as_deref(), Some("a:b"));
        for bad in ["%", "%4", "%zz", "%+1", "%ff", "a%c3"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }

    /// The run-copying encoder against the byte-at-a-time definition, on runs of every
    /// kind next to multi-byte characters
    #[test]
    fn encoding_runs_matches_byte_by_byte() {
        for s in [
            "",
            "/",
            "plain",
            "a/b//c/",
            "é",
            "aé",
            "éa",
            "é/ü",
            "🦀x🦀",
            "x:y$z/%2F",
            "/2021-11-15/functions/arn%3Aaws/response-streaming-invocations",
        ] {
            for keep_slash in [false, true] {
                let mut want = String::new();
                for &b in s.as_bytes() {
                    if keep_slash && b == b'/' {
                        want.push('/');
                    } else {
                        push_encoded_byte(&mut want, b);
                    }
                }
                let mut got = String::new();
                push_encoded(&mut got, s, keep_slash);
                assert_eq!(got, want, "{s:?} keep_slash={keep_slash}");
            }
        }
    }
}
