//! The Rust runtime's in-body error report
//!
//! On a stream error `lambda_runtime` writes
//! `Lambda-Runtime-Function-Error-Type: <type>\r\nLambda-Runtime-Function-Error-Body: <base64>\r\n`
//! as the last body bytes instead of sending HTTP trailers. [`ErrorLines`] forwards body bytes
//! as they come, except a tail that is (or may still become) exactly those two lines; at the
//! end of the body such a tail becomes the function error and is not part of the payload.
//!
//! The lines found are the longest tail of the body (of at most [`MAX_HELD`] bytes) that is
//! exactly the two lines, however the body was split into writes: a value may hold the text
//! of a line's start (`Type: a Lambda-Runtime-Function-Error-Type: b` is one value), so a tail
//! held from an earlier start that turns out not to be the lines may still hold the lines
//! from a later start. Every start is given up for good once it cannot be the lines, and is
//! looked at a bounded number of times, so the work is linear in the body.

use bytes::{Bytes, BytesMut};

use super::errordoc;
use crate::function::FunctionError;

const TYPE_LINE: &[u8] = b"Lambda-Runtime-Function-Error-Type: ";
const BODY_LINE: &[u8] = b"Lambda-Runtime-Function-Error-Body: ";
/// A held tail longer than this is passed on as data
const MAX_HELD: usize = 1 << 20;

/// Splits the error lines off the end of a streamed body
#[derive(Debug)]
pub(super) struct ErrorLines {
    /// The body from its earliest start that may still be the lines
    held: BytesMut,
    /// `held` ends inside a header value: more bytes without CR or LF keep its shape, so
    /// they need no rescan of the whole tail (a value sent a byte at a time would otherwise
    /// cost time quadratic in its length)
    open_value: bool,
    /// The longest tail held ([`MAX_HELD`]; less in tests)
    limit: usize,
}

impl Default for ErrorLines {
    fn default() -> Self {
        Self::with_limit(MAX_HELD)
    }
}

impl ErrorLines {
    fn with_limit(limit: usize) -> Self {
        Self {
            held: BytesMut::new(),
            open_value: false,
            limit,
        }
    }

    /// The bytes of `data` that can be forwarded now (possibly empty)
    pub(super) fn feed(&mut self, data: Bytes) -> Bytes {
        if self.held.is_empty() {
            return match earliest(&data, self.limit) {
                Some((p, open)) => {
                    self.held.extend_from_slice(&data[p..]);
                    self.open_value = open;
                    data.slice(..p)
                }
                None => data,
            };
        }
        let breaks = data.iter().copied().any(is_break);
        self.held.extend_from_slice(&data);
        let shape = if self.open_value && !breaks {
            Some(true)
        } else {
            shape(&self.held)
        };
        let next = match shape {
            Some(open) if self.held.len() <= self.limit => {
                self.open_value = open;
                return Bytes::new();
            }
            Some(open) => self.later_start(open),
            // the held start can never be the lines: the earliest one after it
            None => earliest(&self.held[1..], self.limit).map(|(p, open)| (p + 1, open)),
        };
        if let Some((p, open)) = next {
            self.open_value = open;
            self.held.split_to(p).freeze()
        } else {
            self.open_value = false;
            self.held.split().freeze()
        }
    }

    /// The earliest start within the limit once `held`, of the shape of the lines (`open`
    /// as [`shape`] says), grew past it
    fn later_start(&self, open: bool) -> Option<(usize, bool)> {
        let from = self.held.len() - self.limit;
        // a type line's text after the held start lies in one of its two values: the tail
        // from there has the held shape too (a type line, then what followed the value)
        match find(&self.held[from..], TYPE_LINE) {
            Some(i) => Some((from + i, open)),
            None => earliest(&self.held[from..], self.limit).map(|(p, open)| (from + p, open)),
        }
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

fn is_break(c: u8) -> bool {
    c == b'\r' || c == b'\n'
}

/// Where `needle` first occurs in `hay` (a scan for its first byte, then a comparison)
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut from = 0;
    while let Some(i) = hay[from..].iter().position(|c| *c == first) {
        if hay[from + i..].starts_with(needle) {
            return Some(from + i);
        }
        from += i + 1;
    }
    None
}

/// The earliest start in `b`, at most `limit` bytes from its end, from which `b` is or may
/// still become the two lines, and whether it ends inside a value there (as [`shape`])
fn earliest(b: &[u8], limit: usize) -> Option<(usize, bool)> {
    let mut from = b.len().saturating_sub(limit);
    while let Some(q) = find(&b[from..], TYPE_LINE).map(|i| from + i) {
        if let Some(open) = shape(&b[q..]) {
            return Some((q, open));
        }
        // every later start before the first line end after this type line has the shape
        // of this one (and there is such a line end: a type line with none after it is
        // never refused)
        let value = q + TYPE_LINE.len();
        from = value + b[value..].iter().copied().position(is_break)? + 1;
    }
    // the start of a type line, cut by the end of `b`
    let tail = b.len().saturating_sub(TYPE_LINE.len() - 1).max(from);
    (tail..b.len())
        .find(|&q| TYPE_LINE.starts_with(&b[q..]))
        .map(|q| (q, false))
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
    let end = b.iter().copied().position(is_break);
    match end {
        None => Some((b, &[])),
        Some(i) if b[i] == b'\r' && (i + 1 == b.len() || b[i + 1] == b'\n') => {
            Some((&b[..i], &b[i..]))
        }
        Some(_) => None,
    }
}

/// Whether `b` is, or may still become, exactly the two error lines: `None` if not, else
/// whether it ends inside a header value (no CR or LF after the value's start yet). It reads
/// `b` only up to the end of its second line.
fn shape(b: &[u8]) -> Option<bool> {
    if b.is_empty() {
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
            // a last `L` may start the lines: it alone is held, and passed on at the end
            let held = if next.ends_with('L') { "L" } else { "" };
            let sent = &next[..next.len() - held.len()];
            assert_eq!(out, format!("{start}{sent}"), "{next:?}");
            assert_eq!(e.finish(), (Bytes::from(held), None));
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

    #[test]
    fn the_start_of_a_type_line_at_the_end_of_a_write_is_held() {
        // a write of payload whose last byte begins the lines (one HTTP chunk read in two)
        let l = lines("Runtime.StreamError", "it broke");
        let want = Some(FunctionError::new("Runtime.StreamError", "it broke"));
        for cut in 1..TYPE_LINE.len() {
            assert_eq!(
                run(&[&format!("data{}", &l[..cut]), &l[cut..]]),
                (b"data".to_vec(), want.clone()),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_value_holding_the_text_of_a_line_start_is_judged_the_same_however_split() {
        let (t, b) = (
            std::str::from_utf8(TYPE_LINE).unwrap(),
            std::str::from_utf8(BODY_LINE).unwrap(),
        );
        // payload that looks like the start of the lines, then the lines: the lines are found
        let fake = format!("{t}t\r\n{b}x");
        let real = format!("{t}u\r\n{b}eA==\r\n");
        let want = (
            fake.clone().into_bytes(),
            Some(FunctionError::new("u", "x")),
        );
        assert_eq!(run(&[&format!("{fake}{real}")]), want);
        assert_eq!(run(&[&fake, &real]), want);
        // a body value holding a type line's text: the lines from the first type line
        let pair = format!("{t}T\r\n{b}{t}U\r\n");
        let want = (
            b"data".to_vec(),
            Some(FunctionError::new("T", format!("{t}U"))),
        );
        assert_eq!(run(&[&format!("data{pair}")]), want);
        assert_eq!(run(&["data", &pair]), want);
    }

    /// What a whole body holds, by definition: the longest tail of at most `limit` bytes that
    /// is exactly the two lines, as the error; the bytes before it as payload
    fn longest_lines(body: &[u8], limit: usize) -> (Vec<u8>, Option<FunctionError>) {
        for p in body.len().saturating_sub(limit)..body.len() {
            if let Some(e) = parse(&body[p..]) {
                return (body[..p].to_vec(), Some(e));
            }
        }
        (body.to_vec(), None)
    }

    /// The earliest start, within `limit` of the end, that may still be the lines
    fn earliest_possible(body: &[u8], limit: usize) -> usize {
        (body.len().saturating_sub(limit)..body.len())
            .find(|&p| shape(&body[p..]).is_some())
            .unwrap_or(body.len())
    }

    #[test]
    fn any_body_split_any_way_gives_the_longest_lines_and_holds_no_more_than_it_must() {
        const PIECES: &[&str] = &[
            "Lambda-Runtime-Function-Error-Type: ",
            "Lambda-Runtime-Function-Error-Body: ",
            "Lambda-Runtime-Function-Error-",
            "Lambda-Runtime-Function-Error-Type: T\r\nLambda-Runtime-Function-Error-Body: eA==\r\n",
            "\r\n",
            "\r",
            "\n",
            "L",
            "x",
            "eA==",
            "data",
        ];
        let mut rng = crate::runtime::TestRng(0x9e37_79b9_7f4a_7c15);
        for case in 0..4000 {
            let body: String = (0..rng.below(9))
                .map(|_| PIECES[rng.below(PIECES.len())])
                .collect();
            let text = body.clone();
            let body = body.as_bytes();
            let limit = [20, 40, 74, 75, 100, 160, MAX_HELD][rng.below(7)];
            let want = longest_lines(body, limit);
            // a write at a time: one, a byte each, or random cuts
            let cuts: Vec<usize> = match case % 3 {
                0 => vec![],
                1 => (1..body.len()).collect(),
                _ => {
                    let mut c: Vec<usize> = (0..rng.below(6))
                        .map(|_| rng.below(body.len() + 1))
                        .collect();
                    c.sort_unstable();
                    c
                }
            };
            let mut e = ErrorLines::with_limit(limit);
            let mut out = Vec::new();
            let mut at = 0;
            for end in cuts.into_iter().chain([body.len()]) {
                out.extend_from_slice(&e.feed(Bytes::copy_from_slice(&body[at..end])));
                at = end;
                let seen = &body[..at];
                // nothing is lost or reordered, and only what may still be the lines is held
                assert_eq!([&out[..], &e.held[..]].concat(), seen, "{text:?}");
                assert_eq!(
                    out.len(),
                    earliest_possible(seen, limit),
                    "{text:?} at {at}, limit {limit}"
                );
            }
            let (rest, err) = e.finish();
            out.extend_from_slice(&rest);
            assert_eq!((out, err), want, "{text:?}, limit {limit}");
        }
    }

    #[test]
    fn type_line_starts_in_a_long_value_sent_a_byte_at_a_time_are_each_looked_at_once() {
        // a type value of nothing but type lines' text, past the limit, a byte at a time:
        // each start in turn, without a rescan of the whole tail (that would be quadratic
        // and this test would not end)
        let limit = 64 * 1024;
        let body = TYPE_LINE.repeat(4 * limit / TYPE_LINE.len());
        let mut e = ErrorLines::with_limit(limit);
        let mut out = 0;
        for b in body.chunks(1) {
            out += e.feed(Bytes::copy_from_slice(b)).len();
            assert!(e.held.len() <= limit);
        }
        assert_eq!(out, body.len() - e.held.len());
        assert_eq!(e.finish().1, None);
    }
}
