//! The Rust runtime's in-body error report
//!
//! On a stream error `lambda_runtime` writes
//! `Lambda-Runtime-Function-Error-Type: <type>\r\nLambda-Runtime-Function-Error-Body: <base64>\r\n`
//! as the last body bytes instead of sending HTTP trailers. [`ErrorLines`] forwards body bytes
//! as they come, except a tail that is (or may still become) exactly those two lines; at the
//! end of the body such a tail becomes the function error and is not part of the payload.

use bytes::{Bytes, BytesMut};

use super::errordoc;
use crate::function::FunctionError;

const TYPE_LINE: &[u8] = b"Lambda-Runtime-Function-Error-Type: ";
const BODY_LINE: &[u8] = b"Lambda-Runtime-Function-Error-Body: ";
/// A held tail longer than this is passed on as data
const MAX_HELD: usize = 1 << 20;

/// Splits the error lines off the end of a streamed body
#[derive(Debug, Default)]
pub(super) struct ErrorLines {
    held: BytesMut,
    /// `held` is a candidate that ends inside a header value: more bytes without CR or LF
    /// keep it one, so they need no rescan of the whole tail (a value sent a byte at a time
    /// would otherwise cost time quadratic in its length)
    open_value: bool,
}

impl ErrorLines {
    /// The bytes of `data` that can be forwarded now (possibly empty)
    pub(super) fn feed(&mut self, data: Bytes) -> Bytes {
        if self.held.is_empty() {
            if let Some(open) = candidate(&data) {
                self.held.extend_from_slice(&data);
                self.open_value = open;
                return Bytes::new();
            }
            if let Some(p) = rfind(&data, TYPE_LINE)
                && let Some(open) = candidate(&data[p..])
            {
                self.held.extend_from_slice(&data[p..]);
                self.open_value = open;
                return data.slice(..p);
            }
            return data;
        }
        self.held.extend_from_slice(&data);
        let still_open = self.open_value
            && self.held.len() <= MAX_HELD
            && !data.iter().any(|c| *c == b'\r' || *c == b'\n');
        if still_open {
            return Bytes::new();
        }
        if let Some(open) = candidate(&self.held) {
            self.open_value = open;
            return Bytes::new();
        }
        // not the lines: what was held before `data` is payload, and `data` is looked at
        // afresh, since it may start the lines itself (a write of `Lambda` just before them)
        let mut out = self.held.split_to(self.held.len() - data.len());
        self.held.clear();
        self.open_value = false;
        let fresh = self.feed(data);
        out.extend_from_slice(&fresh);
        out.freeze()
    }

    /// At the end of the body: the held bytes that are payload after all, and the error the
    /// lines reported
    pub(super) fn finish(&mut self) -> (Bytes, Option<FunctionError>) {
        let held = self.held.split().freeze();
        match parse(&held) {
            Some(e) => (Bytes::new(), Some(e)),
            None => (held, None),
        }
    }
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

enum Strip<'a> {
    /// The input is a proper prefix of the expected text
    Partial,
    No,
    Rest(&'a [u8]),
}

fn strip<'a>(b: &'a [u8], prefix: &[u8]) -> Strip<'a> {
    if b.len() < prefix.len() {
        if prefix.starts_with(b) {
            Strip::Partial
        } else {
            Strip::No
        }
    } else if let Some(rest) = b.strip_prefix(prefix) {
        Strip::Rest(rest)
    } else {
        Strip::No
    }
}

/// Splits a header value off the start of `b`: the value and what follows it (from its CR,
/// or nothing if the value may still go on); `None` on a bare CR or LF
fn value(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = b.iter().position(|c| *c == b'\r' || *c == b'\n');
    match end {
        None => Some((b, &[])),
        Some(i) if b[i] == b'\r' && (i + 1 == b.len() || b[i + 1] == b'\n') => {
            Some((&b[..i], &b[i..]))
        }
        Some(_) => None,
    }
}

/// Whether `b` is, or may still become, exactly the two error lines: `None` if not, else
/// whether it ends inside a header value (no CR or LF after the value's start yet)
fn candidate(b: &[u8]) -> Option<bool> {
    if b.is_empty() || b.len() > MAX_HELD {
        return None;
    }
    let rest = match strip(b, TYPE_LINE) {
        Strip::Partial => return Some(false),
        Strip::No => return None,
        Strip::Rest(r) => r,
    };
    let (_, rest) = value(rest)?;
    if rest.is_empty() {
        return Some(true);
    }
    if rest == b"\r" {
        return Some(false);
    }
    let rest = &rest[2..];
    let rest = match strip(rest, BODY_LINE) {
        Strip::Partial => return Some(false),
        Strip::No => return None,
        Strip::Rest(r) => r,
    };
    match value(rest) {
        Some((_, [])) => Some(true),
        Some((_, tail)) if tail == b"\r" || tail == b"\r\n" => Some(false),
        _ => None,
    }
}

/// The error of a complete pair of lines (the final CRLF may be missing)
fn parse(b: &[u8]) -> Option<FunctionError> {
    let Strip::Rest(rest) = strip(b, TYPE_LINE) else {
        return None;
    };
    let (error_type, rest) = value(rest)?;
    let rest = rest.strip_prefix(b"\r\n")?;
    let Strip::Rest(rest) = strip(rest, BODY_LINE) else {
        return None;
    };
    let (body, tail) = value(rest)?;
    if !(tail.is_empty() || tail == b"\r\n") {
        return None;
    }
    Some(errordoc::from_report(
        &String::from_utf8_lossy(error_type),
        &String::from_utf8_lossy(body),
    ))
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    fn lines(t: &str, body: &str) -> String {
        format!(
            "Lambda-Runtime-Function-Error-Type: {t}\r\nLambda-Runtime-Function-Error-Body: {}\r\n",
            base64::engine::general_purpose::STANDARD.encode(body)
        )
    }

    fn run(chunks: &[&str]) -> (Vec<u8>, Option<FunctionError>) {
        let mut e = ErrorLines::default();
        let mut out = Vec::new();
        for c in chunks {
            out.extend_from_slice(&e.feed(Bytes::copy_from_slice(c.as_bytes())));
        }
        let (rest, err) = e.finish();
        out.extend_from_slice(&rest);
        (out, err)
    }

    #[test]
    fn a_held_start_that_was_payload_after_all_leaves_the_lines_found() {
        let l = lines("Runtime.StreamError", "it broke");
        let want = Some(FunctionError::new("Runtime.StreamError", "it broke"));
        // a write that could start the lines, then the lines themselves, whole or split
        for held in ["L", "Lambda", "Lambda-Runtime-Function-Error-Type"] {
            assert_eq!(run(&[held, &l]), (held.as_bytes().to_vec(), want.clone()));
            for i in 1..l.len() {
                assert_eq!(
                    run(&["data", held, &l[..i], &l[i..]]),
                    (format!("data{held}").into_bytes(), want.clone()),
                    "{held} then the lines split at {i}"
                );
            }
        }
        // held, then payload: everything comes out as it was sent
        assert_eq!(run(&["Lambda", "x", "y"]), (b"Lambdaxy".to_vec(), None));
    }

    #[test]
    fn lines_at_the_end_become_the_error() {
        let l = lines("Runtime.StreamError", "it broke");
        let want = Some(FunctionError::new("Runtime.StreamError", "it broke"));
        assert_eq!(run(&["data", &l]), (b"data".to_vec(), want.clone()));
        assert_eq!(
            run(&[&format!("data{l}")]),
            (b"data".to_vec(), want.clone())
        );
        // split anywhere
        for i in 1..l.len() {
            assert_eq!(
                run(&["data", &l[..i], &l[i..]]),
                (b"data".to_vec(), want.clone())
            );
        }
        // the final CRLF may be missing, even after an empty body value
        let (out, err) = run(&[
            "data",
            "Lambda-Runtime-Function-Error-Type: T\r\nLambda-Runtime-Function-Error-Body: ",
        ]);
        assert_eq!(
            (out, err),
            (b"data".to_vec(), Some(FunctionError::new("T", "")))
        );
        let json = lines("Function.X", r#"{"errorType":"Boom","errorMessage":"m"}"#);
        let e = run(&[&json]).1.unwrap();
        assert_eq!(
            (e.error_type.as_str(), e.error_message.as_str()),
            ("Boom", "m")
        );
    }

    #[test]
    fn a_value_sent_a_byte_at_a_time_is_held_then_judged() {
        // the body line's value arrives byte by byte (no rescan of the tail each time)
        let l = lines("Runtime.StreamError", &"x".repeat(3000));
        let bytes: Vec<String> = l.chars().map(String::from).collect();
        let chunks: Vec<&str> = std::iter::once("data")
            .chain(bytes.iter().map(String::as_str))
            .collect();
        let (out, err) = run(&chunks);
        assert_eq!(out, b"data");
        assert_eq!(err.unwrap().error_type, "Runtime.StreamError");
        // a pair of exactly the limit is still the lines
        let head = "Lambda-Runtime-Function-Error-Type: T\r\nLambda-Runtime-Function-Error-Body: ";
        let at_limit = format!("{head}{}\r\n", "A".repeat(MAX_HELD - head.len() - 2));
        assert_eq!(at_limit.len(), MAX_HELD);
        let (out, err) = run(&[&at_limit[..10], &at_limit[10..]]);
        assert_eq!(out, b"");
        assert_eq!(err.unwrap().error_type, "T");
        // an open value past the limit is payload after all
        let long = format!(
            "Lambda-Runtime-Function-Error-Type: {}",
            "y".repeat(MAX_HELD)
        );
        let (out, err) = run(&[&long[..40], &long[40..]]);
        assert_eq!(out, long.as_bytes());
        assert_eq!(err, None);
    }

    #[test]
    fn bytes_that_cannot_be_the_lines_are_forwarded_at_once() {
        let start = "Lambda-Runtime-Function-Error-Type: x";
        // a held value, then a line end that makes it no pair of error lines
        // (a bare CR or LF is no line end, whatever follows it)
        for next in ["\r\nmore", "\nmore", "\rmore", "\n", "\nL", "\rL", "\n\n"] {
            let mut e = ErrorLines::default();
            assert_eq!(e.feed(Bytes::from_static(start.as_bytes())), "");
            let out = e.feed(Bytes::copy_from_slice(next.as_bytes()));
            assert_eq!(out, format!("{start}{next}"), "{next:?}");
            assert_eq!(e.finish(), (Bytes::new(), None));
        }
        // the whole pair, then more: the lines were payload
        let l = lines("T", "b");
        let mut e = ErrorLines::default();
        assert_eq!(e.feed(Bytes::copy_from_slice(l.as_bytes())), "");
        assert_eq!(e.feed(Bytes::from_static(b"x")), format!("{l}x"));
        // an open value that grows past the limit is passed on then, not at the end
        let long = format!("{start}{}", "y".repeat(MAX_HELD));
        let mut e = ErrorLines::default();
        assert_eq!(e.feed(Bytes::copy_from_slice(&long.as_bytes()[..40])), "");
        let out = e.feed(Bytes::copy_from_slice(&long.as_bytes()[40..]));
        assert_eq!(out.len(), long.len());
        assert_eq!(e.finish(), (Bytes::new(), None));
    }

    #[test]
    fn anything_else_is_payload() {
        let l = lines("T", "b");
        for chunks in [
            vec!["L", "ambda"],
            vec!["Lambda-Runtime-Function-Error-Type: x\r\n", "more"],
            vec![l.as_str(), "trailing data"],
            vec![
                "Lambda-Runtime-Function-Error-Type: x\r\nLambda-Runtime-Function-Error-Body: eA==\r\n\r\n",
            ],
        ] {
            let (out, err) = run(&chunks);
            assert_eq!(out, chunks.concat().into_bytes());
            assert_eq!(err, None);
        }
    }
}
