//! `InvokeStream` never panics, keeps its state machine, and does not care about chunking
//!
//! Input layout (as `decode_chunked`): `[n] [spec; n] [body...]`. The first byte says how many
//! chunk-size bytes follow (fewer if the input is shorter); the rest is the response body.
//! Each spec byte is a chunk size (0 feeds an empty chunk); the specs repeat until the body is
//! used up; with no specs, or only zeros, the body is fed as one chunk.
//!
//! The body is fed chunk by chunk, draining `next_event` after every chunk, then `finish` is
//! called; and it is fed whole, drained, and finished. Checked on both runs: an error is
//! sticky (`next_event` and `finish` repeat it, also after more bytes are fed), nothing comes
//! after an error, `next_event` never reports `MissingInvokeComplete`, there is at most one
//! `InvokeComplete`, after it `next_event` returns `Ok(None)` and `finish` is `Ok`, `finish`
//! is `Ok` only if an `InvokeComplete` was seen, and `decoded_log` is called on it (`Ok(None)`
//! without a `LogResult`). Across the two runs: the same events (so the same concatenated
//! payload; a long `PayloadChunk` spanning chunks may come as several events, so runs of them
//! are compared joined), the same first error, the same `finish` result, the same ignored byte
//! count. A third run feeds the chunks without draining, calls `finish`, and only then drains:
//! the same events, then `finish`'s error if it had one.
#![no_main]

use invoke_proto::bytes::Bytes;
use invoke_proto::{Event, InvokeStream, StreamError};
use libfuzzer_sys::fuzz_target;

/// What a run produced
#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<Event>,
    payload: Vec<u8>,
    error: Option<StreamError>,
    finish: Result<(), StreamError>,
    complete: bool,
    ignored: u64,
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let (specs, body) = rest.split_at(usize::from(n).min(rest.len()));
    let wire = Bytes::copy_from_slice(body);

    let chunked = run(&wire, &chunks(specs, wire.len()));
    let whole = run(&wire, &[0..wire.len()]);
    assert_eq!(
        chunked.payload, whole.payload,
        "payload depends on chunking"
    );
    // a long PayloadChunk that spans chunks may come in several events: compare the
    // payload between other events
    assert_eq!(
        merged(&chunked.events),
        merged(&whole.events),
        "chunked feed differs from one-shot"
    );
    assert_eq!(
        (
            &chunked.error,
            &chunked.finish,
            chunked.complete,
            chunked.ignored
        ),
        (&whole.error, &whole.finish, whole.complete, whole.ignored),
        "chunked feed ends differently from one-shot"
    );
    let (events, finish) = finish_first(&wire, &chunks(specs, wire.len()));
    assert_eq!(
        events, whole.events,
        "finish before draining changed the events"
    );
    assert_eq!(
        finish, whole.finish,
        "finish before draining changed the end"
    );
});

/// Fed without draining, finished, then drained: the events `finish` kept, and its result
fn finish_first(
    wire: &Bytes,
    chunks: &[std::ops::Range<usize>],
) -> (Vec<Event>, Result<(), StreamError>) {
    let mut s = InvokeStream::new();
    for chunk in chunks {
        s.feed(wire.slice(chunk.clone()));
    }
    let finish = s.finish();
    let mut events = Vec::new();
    loop {
        match s.next_event() {
            Ok(Some(event)) => events.push(event),
            Ok(None) => break,
            Err(e) => {
                assert_eq!(Err(e), finish, "finish() and the drained error differ");
                break;
            }
        }
    }
    (events, finish)
}

/// `events` with each run of `PayloadChunk`s joined into one
fn merged(events: &[Event]) -> Vec<Event> {
    let mut out: Vec<Event> = Vec::new();
    for event in events {
        match (out.last_mut(), event) {
            (Some(Event::PayloadChunk(joined)), Event::PayloadChunk(more)) => {
                *joined = [joined.as_ref(), more.as_ref()].concat().into();
            }
            _ => out.push(event.clone()),
        }
    }
    out
}

fn chunks(specs: &[u8], len: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut pos = 0;
    if specs.iter().any(|&s| s != 0) {
        for &size in specs.iter().cycle() {
            if pos == len {
                break;
            }
            let end = (pos + usize::from(size)).min(len);
            out.push(pos..end);
            pos = end;
        }
    }
    if pos < len || out.is_empty() {
        out.push(pos..len);
    }
    out
}

/// State of one run, checked as events come out
#[derive(Default)]
struct Run {
    events: Vec<Event>,
    payload: Vec<u8>,
    error: Option<StreamError>,
    complete: bool,
}

impl Run {
    /// `next_event` until `Ok(None)` or an error
    fn drain(&mut self, s: &mut InvokeStream) {
        loop {
            match s.next_event() {
                Ok(Some(event)) => {
                    assert!(self.error.is_none(), "an event after {:?}", self.error);
                    assert!(!self.complete, "an event after InvokeComplete: {event:?}");
                    match &event {
                        Event::PayloadChunk(p) => self.payload.extend_from_slice(p),
                        Event::InvokeComplete(c) => {
                            self.complete = true;
                            assert!(s.is_complete(), "InvokeComplete but not is_complete()");
                            let log = c.decoded_log();
                            if c.log_result.is_none() {
                                assert_eq!(log, Ok(None));
                            } else if let Err(e) = log {
                                assert_eq!(e, StreamError::InvalidLogResult);
                            }
                            assert_eq!(
                                c.is_error(),
                                c.error_code.as_deref().is_some_and(|c| !c.is_empty())
                            );
                        }
                        _ => {}
                    }
                    self.events.push(event);
                }
                Ok(None) => {
                    assert!(self.error.is_none(), "Ok(None) after {:?}", self.error);
                    assert_eq!(s.is_complete(), self.complete);
                    return;
                }
                Err(e) => {
                    assert!(!self.complete, "an error after InvokeComplete: {e:?}");
                    assert!(
                        !matches!(e, StreamError::MissingInvokeComplete { .. }),
                        "next_event reported {e:?}"
                    );
                    match &self.error {
                        None => self.error = Some(e.clone()),
                        Some(first) => assert_eq!(&e, first, "error changed"),
                    }
                    assert_eq!(s.next_event(), Err(e), "error not sticky");
                    assert!(!s.is_complete());
                    return;
                }
            }
        }
    }
}

fn run(wire: &Bytes, chunks: &[std::ops::Range<usize>]) -> Outcome {
    let mut s = InvokeStream::new();
    let mut r = Run::default();
    for chunk in chunks {
        s.feed(wire.slice(chunk.clone()));
        r.drain(&mut s);
        if r.complete {
            assert_eq!(s.next_event(), Ok(None), "an event after InvokeComplete");
        }
    }
    let finish = s.finish();
    match (&finish, &r.error) {
        (Ok(()), None) => assert!(r.complete, "finish() is Ok without InvokeComplete"),
        (Ok(()), Some(e)) => panic!("finish() is Ok after {e:?}"),
        (Err(e), Some(first)) => assert_eq!(e, first, "finish() forgot the error"),
        (Err(e), None) => {
            assert!(!r.complete, "finish() is {e:?} after InvokeComplete");
            assert!(
                matches!(
                    e,
                    StreamError::Decode(_) | StreamError::MissingInvokeComplete { .. }
                ),
                "finish() invented {e:?}"
            );
        }
    }
    // the end is final too
    assert_eq!(s.finish(), finish, "finish() not repeatable");
    assert_eq!(
        s.next_event(),
        finish.clone().map(|()| None),
        "next_event after finish"
    );
    let ignored = s.ignored_bytes();
    if !r.complete {
        assert_eq!(ignored, 0, "bytes ignored without InvokeComplete");
    }
    // more bytes change nothing once the stream has ended
    s.feed(Bytes::from_static(b"\0\0\0\x10"));
    assert_eq!(s.next_event(), finish.clone().map(|()| None));
    assert_eq!(s.finish(), finish);
    Outcome {
        events: r.events,
        payload: r.payload,
        error: r.error,
        finish,
        complete: r.complete,
        ignored,
    }
}
