//! Test, fuzz and bench support shared across the lambda-stream workspace (not published)
//!
//! One place for what the proto tests, the CLI tests, the fuzz targets and the benches all
//! need: the shared test vectors, wire building, feeding bytes cut at given points, and
//! (behind features) proptest strategies, converters to the official `aws-smithy-types`
//! event-stream messages (what `aws-smithy-eventstream` reads and writes) and the official
//! `aws-sigv4` signer.
//!
//! ```
//! use invoke_proto::bytes::Bytes;
//! use invoke_proto::{Event, InvokeComplete};
//! use invoke_testkit::{event_wire, stream_at};
//!
//! let events = [
//!     Event::PayloadChunk(Bytes::from_static(b"hi")),
//!     Event::InvokeComplete(InvokeComplete::success()),
//! ];
//! let wire = event_wire(&events);
//! let (got, end) = stream_at(&wire, &[1, 7, 30]);
//! assert_eq!((got, end), (events.to_vec(), Ok(())));
//! ```

use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use invoke_proto::{DecodeError, Event, InvokeStream, StreamError};
use invoke_proto::{Message, MessageDecoder, encode_message};

#[cfg(feature = "sigv4")]
pub mod aws_signer;
#[cfg(feature = "smithy")]
pub mod smithy;
#[cfg(feature = "proptest")]
pub mod strategies;

/// The third-party vectors at `sub` (a folder or a file): `$INVOKE_TESTDATA`, else `../shared/testdata` beside
/// the checkout
///
/// Returns `None` after printing a skip notice when they are absent; panics instead under
/// `CI=true`, where their absence is a failure.
pub fn testdata(sub: &str) -> Option<PathBuf> {
    let base = std::env::var_os("INVOKE_TESTDATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata"),
        PathBuf::from,
    );
    let dir = base.join(sub);
    if dir.exists() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "test vectors missing at {} (set INVOKE_TESTDATA)",
        dir.display()
    );
    eprintln!(
        "SKIPPED: test vectors not found at {} (set INVOKE_TESTDATA to run this test)",
        dir.display()
    );
    None
}

/// The wire form of `messages` back to back
pub fn wire(messages: &[Message]) -> Bytes {
    let mut w = BytesMut::new();
    for m in messages {
        encode_message(m, &mut w).expect("test messages are within the limits");
    }
    w.freeze()
}

/// The wire form of `events` back to back
pub fn event_wire(events: &[Event]) -> Bytes {
    let mut w = BytesMut::new();
    for e in events {
        e.encode(&mut w).expect("test events are within the limits");
    }
    w.freeze()
}

/// `wire` cut at `cuts` (in any order, clamped to its length): the pieces, in order, that
/// together are `wire`; the last piece ends at the end of `wire`
pub fn pieces(wire: &Bytes, cuts: &[usize]) -> Vec<Bytes> {
    let mut bounds: Vec<usize> = cuts.iter().map(|c| (*c).min(wire.len())).collect();
    bounds.sort_unstable();
    bounds.push(wire.len());
    let mut start = 0;
    bounds
        .into_iter()
        .map(|end| {
            let piece = wire.slice(start..end);
            start = end;
            piece
        })
        .collect()
}

/// A sans-IO decoder driven as the transports drive it: feed, drain, finish
pub trait Feed {
    /// What it yields
    type Item;
    /// How it fails
    type Error;
    /// Hands over the next chunk
    fn feed(&mut self, chunk: Bytes);
    /// The next item, `Ok(None)` when it needs more bytes
    ///
    /// # Errors
    ///
    /// The decoder's error.
    fn next(&mut self) -> Result<Option<Self::Item>, Self::Error>;
    /// Declares the end of the input
    ///
    /// # Errors
    ///
    /// The decoder's error.
    fn finish(&mut self) -> Result<(), Self::Error>;
}

impl Feed for MessageDecoder {
    type Item = Message;
    type Error = DecodeError;
    fn feed(&mut self, chunk: Bytes) {
        MessageDecoder::feed(self, chunk);
    }
    fn next(&mut self) -> Result<Option<Message>, DecodeError> {
        self.next_message()
    }
    fn finish(&mut self) -> Result<(), DecodeError> {
        MessageDecoder::finish(self)
    }
}

impl Feed for InvokeStream {
    type Item = Event;
    type Error = StreamError;
    fn feed(&mut self, chunk: Bytes) {
        InvokeStream::feed(self, chunk);
    }
    fn next(&mut self) -> Result<Option<Event>, StreamError> {
        self.next_event()
    }
    fn finish(&mut self) -> Result<(), StreamError> {
        InvokeStream::finish(self)
    }
}

/// Feeds `wire` as [`pieces`] cut at `cuts` into `decoder`, draining after each piece: the
/// items, then the first error or the outcome of `finish`
pub fn feed_at<F: Feed>(
    mut decoder: F,
    wire: &Bytes,
    cuts: &[usize],
) -> (Vec<F::Item>, Result<(), F::Error>) {
    let mut out = Vec::new();
    for piece in pieces(wire, cuts) {
        decoder.feed(piece);
        loop {
            match decoder.next() {
                Ok(Some(item)) => out.push(item),
                Ok(None) => break,
                Err(e) => return (out, Err(e)),
            }
        }
    }
    let end = decoder.finish();
    (out, end)
}

/// [`feed_at`] with a new [`MessageDecoder`]
pub fn decode_at(wire: &Bytes, cuts: &[usize]) -> (Vec<Message>, Result<(), DecodeError>) {
    feed_at(MessageDecoder::new(), wire, cuts)
}

/// [`feed_at`] with a new [`InvokeStream`]
pub fn stream_at(wire: &Bytes, cuts: &[usize]) -> (Vec<Event>, Result<(), StreamError>) {
    feed_at(InvokeStream::new(), wire, cuts)
}
