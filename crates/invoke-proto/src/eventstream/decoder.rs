//! Incremental, zero-copy message decoder

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

use super::header::{Headers, ValidatedBlock};
use super::message::check_crc;
use super::{Limits, Message, PRELUDE_LEN, Prelude, be_u32};
use crate::error::DecodeError;

/// Decodes a byte stream, fed in chunks of any size, into [`Message`]s
///
/// Feed every chunk as it arrives with [`feed`](Self::feed), then call
/// [`next_message`](Self::next_message) until it returns `Ok(None)` ("need more bytes", never
/// an error). At the end of input call [`finish`](Self::finish): it fails with
/// [`DecodeError::Truncated`] if the input stopped inside a message. Messages still undrained
/// then are not lost: `next_message` returns them after `finish`, before any error.
///
/// - **Zero copy.** A message that lies inside one fed chunk is returned as slices of that
///   chunk. A message split across chunks is copied once, into an assembly buffer of at least
///   16 KiB (or the message's size, if larger) that is reused once the messages cut from it
///   are dropped; its CRC is computed as it is copied, while the bytes are still in cache.
/// - **Checked before buffered.** As soon as 12 bytes of a message are in, its prelude CRC,
///   lengths and [`Limits`] are checked; a prelude announcing 4 GiB fails at once without
///   allocating.
/// - **Sticky errors.** After an error every call returns the same error; the decoder never
///   resynchronises and drops whatever it is fed.
///
/// ```
/// use invoke_proto::bytes::Bytes;
/// use invoke_proto::{Headers, Message, MessageDecoder};
///
/// let wire = Message::new(Headers::new(), "hi").to_bytes()?;
/// let mut decoder = MessageDecoder::new();
/// let mut got = Vec::new();
/// for chunk in wire.chunks(5) {
///     decoder.feed(Bytes::copy_from_slice(chunk));
///     while let Some(message) = decoder.next_message()? {
///         got.push(message);
///     }
/// }
/// decoder.finish()?;
/// assert_eq!(got[0].payload, "hi");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Warning
///
/// The decoder keeps every fed chunk until it has been decoded. Drain
/// [`next_message`](Self::next_message) after each `feed`; memory then stays within one
/// message (at most [`Limits::max_message_len`]) plus the chunk being read.
#[derive(Debug, Default)]
pub struct MessageDecoder {
    limits: Limits,
    /// Fed chunks not yet consumed, oldest first
    queue: VecDeque<Bytes>,
    /// The start of a message that spans chunks
    assembly: Assembly,
    /// The start of a large repeated `PayloadChunk` that spans chunks, held as slices of
    /// them instead of copied (see [`elide_repeated_headers`](Self::elide_repeated_headers));
    /// its CRC runs in `assembly.crc`
    pieces: Vec<Bytes>,
    /// Payload slices of the last message returned that it does not hold (its payload is
    /// the first slice)
    rest: VecDeque<Bytes>,
    /// The prelude of the message being assembled, once its 12 bytes are in
    want: Option<Prelude>,
    /// Stream position of the first byte of the next message
    offset: u64,
    /// The last header block found valid
    seen: ValidatedBlock,
    /// Messages decoded by [`finish`](Self::finish) but not yet returned, with their offsets
    ready: VecDeque<(u64, Message)>,
    /// Reads preludes, remembering the last one's CRC
    preludes: PreludeReader,
    error: Option<DecodeError>,
}

impl MessageDecoder {
    /// A decoder with the default [`Limits`]
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder with the given [`Limits`]
    pub fn with_limits(limits: Limits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// The limits in force
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Stream position of the first byte not yet returned as part of a message
    pub fn offset(&self) -> u64 {
        self.ready
            .front()
            .map_or(self.offset, |(offset, _)| *offset)
    }

    /// Bytes received but not yet returned as part of a message
    pub fn buffered(&self) -> usize {
        let ready: u64 = self.ready.iter().map(|(_, m)| m.wire_len()).sum();
        ready as usize + self.undecoded()
    }

    /// Bytes received and not yet decoded
    fn undecoded(&self) -> usize {
        self.assembly.buf.len() + self.held() + self.queue.iter().map(Bytes::len).sum::<usize>()
    }

    /// Hands the decoder the next chunk of the stream
    pub fn feed(&mut self, chunk: Bytes) {
        if self.error.is_some() || chunk.is_empty() {
            return;
        }
        // Fast path for a long message arriving in many chunks: copy (and hash) a chunk that
        // neither completes the message nor waits behind others straight away
        if let Some(prelude) = self.want
            && self.queue.is_empty()
            && self.pieces.is_empty()
            && self.assembly.buf.len() + chunk.len() < prelude.total_len as usize
        {
            absorb(&mut self.assembly, &chunk, prelude);
            return;
        }
        self.queue.push_back(chunk);
    }

    /// The next complete message, `Ok(None)` if more bytes are needed
    ///
    /// # Errors
    ///
    /// Any [`DecodeError`]; after one, the same error forever. `Truncated` only after
    /// [`finish`](Self::finish) found it, once the messages before it were returned.
    #[inline]
    pub fn next_message(&mut self) -> Result<Option<Message>, DecodeError> {
        if let Some((_, message)) = self.ready.pop_front() {
            return Ok(Some(message));
        }
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        self.step().map_err(|e| self.fail(e))
    }

    /// Declares the end of input
    ///
    /// Complete messages fed but not yet drained are decoded now (so that a fault inside one
    /// is reported) and kept: [`next_message`](Self::next_message) returns them afterwards,
    /// then `Ok(None)` or the error `finish` returned. Nothing fed is discarded.
    ///
    /// # Errors
    ///
    /// [`DecodeError::Truncated`] if bytes of an incomplete message remain; a sticky earlier
    /// error; or an error found in bytes fed but not yet decoded.
    pub fn finish(&mut self) -> Result<(), DecodeError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        // these are returned later, after the caller's state moved on: whole
        let elide = self.seen.set_elide(false);
        let decoded = loop {
            let offset = self.offset;
            match self.step() {
                Ok(Some(message)) => self.ready.push_back((offset, message)),
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        self.seen.set_elide(elide);
        if !self.ready.is_empty() {
            // They will be returned without passing through `step`, whatever came after them
            self.seen.forget_repeat();
        }
        decoded.map_err(|e| self.fail(e))?;
        let buffered = self.undecoded();
        if buffered > 0 {
            return Err(self.fail(DecodeError::Truncated {
                offset: self.offset,
                buffered,
            }));
        }
        Ok(())
    }

    /// Decodes one message from the front of `buf`, tokio-util `Decoder` style
    ///
    /// Consumes the message's bytes from `buf` and returns them zero-copy; returns `Ok(None)`
    /// and reserves room when `buf` holds less than a message. Use either this or
    /// [`feed`](Self::feed), not both on one decoder.
    ///
    /// # Errors
    ///
    /// As [`next_message`](Self::next_message).
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, DecodeError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        self.decode_buf(buf).map_err(|e| self.fail(e))
    }

    /// As [`decode`](Self::decode), at the end of input
    ///
    /// # Errors
    ///
    /// As [`decode`](Self::decode), plus [`DecodeError::Truncated`] if `buf` holds part of a
    /// message.
    pub fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, DecodeError> {
        match self.decode(buf)? {
            Some(m) => Ok(Some(m)),
            None if buf.is_empty() => Ok(None),
            None => Err(self.fail(DecodeError::Truncated {
                offset: self.offset,
                buffered: buf.len(),
            })),
        }
    }

    /// From now on, a message [`next_message`](Self::next_message) decodes whose header block
    /// repeats the previous message's byte for byte comes with empty headers (its payload
    /// only: a reference count fewer to update, twice, per message). For a caller that knows
    /// that block: `InvokeStream` while the messages are `PayloadChunk`s. Messages decoded by
    /// [`finish`](Self::finish) keep their headers.
    ///
    /// Such a message, if it is at least [`SPLIT_MIN`] long and spans chunks, is not copied
    /// together either: its payload comes as the slices of the chunks it arrived in, the
    /// first as the message's payload, the others from [`take_rest`](Self::take_rest) (at
    /// most [`MAX_PIECES`] chunks; a message spread over more is copied as any other).
    pub(crate) fn elide_repeated_headers(&mut self, on: bool) {
        self.seen.set_elide(on);
    }

    /// The next payload slice of the last message returned that it does not hold itself
    /// (see [`elide_repeated_headers`](Self::elide_repeated_headers)); take them all before
    /// the next message
    #[inline]
    pub(crate) fn take_rest(&mut self) -> Option<Bytes> {
        self.rest.pop_front()
    }

    /// Bytes of the payload slices [`take_rest`](Self::take_rest) has yet to give
    #[inline]
    pub(crate) fn rest_len(&self) -> usize {
        self.rest.iter().map(Bytes::len).sum()
    }

    /// Length of the header block of the message [`next_message`](Self::next_message)
    /// returned last, if it repeated the block before it
    pub(crate) fn repeated_headers_len(&self) -> Option<usize> {
        self.seen.repeated_len()
    }

    /// Records `e` as the sticky error and drops the undecoded bytes (the payload slices of
    /// a message already returned stay, for [`take_rest`](Self::take_rest))
    fn fail(&mut self, e: DecodeError) -> DecodeError {
        self.error = Some(e.clone());
        self.queue.clear();
        self.assembly.buf = BytesMut::new();
        self.pieces.clear();
        self.want = None;
        e
    }

    fn step(&mut self) -> Result<Option<Message>, DecodeError> {
        loop {
            let Some(front) = self.queue.front_mut() else {
                return Ok(None);
            };
            if self.want.is_none() && self.assembly.buf.is_empty() {
                // At a message boundary: take the message straight out of the chunk if it is
                // all there, else start assembling it.
                if front.len() >= PRELUDE_LEN {
                    let (prelude, crc) = self.preludes.read(front, self.limits, self.offset)?;
                    let total = prelude.total_len as usize;
                    if front.len() >= total {
                        let frame = front.split_to(total);
                        if front.is_empty() {
                            self.queue.pop_front();
                        }
                        let message =
                            Message::from_frame(frame, prelude, crc, self.offset, &mut self.seen)?;
                        self.offset += total as u64;
                        return Ok(Some(message));
                    }
                    if total >= SPLIT_MIN
                        && self.seen.eliding()
                        && front.len() >= PRELUDE_LEN + prelude.headers_len as usize
                    {
                        // a long PayloadChunk, most likely (another kind of message is
                        // copied together at its end): hold its chunks, do not copy them
                        let first = self.queue.pop_front().expect("checked above");
                        self.assembly.crc = crc;
                        self.want = Some(prelude);
                        self.add_piece(first, prelude);
                        continue;
                    }
                    self.start_assembly(prelude, crc);
                } else {
                    self.assembly.buf.reserve(PRELUDE_LEN);
                }
            }
            let goal = self.want.map_or(PRELUDE_LEN, |p| p.total_len as usize);
            let held = self.held();
            let front = self.queue.front_mut().expect("checked above");
            if let Some(prelude) = self.want
                && !self.pieces.is_empty()
            {
                let piece = front.split_to((goal - held).min(front.len()));
                if front.is_empty() {
                    self.queue.pop_front();
                }
                self.add_piece(piece, prelude);
                if self.held() == goal {
                    return self.finish_pieces(prelude).map(Some);
                }
            } else {
                let n = (goal - self.assembly.buf.len()).min(front.len());
                match self.want {
                    Some(prelude) => absorb(&mut self.assembly, &front[..n], prelude),
                    None => self.assembly.buf.extend_from_slice(&front[..n]),
                }
                front.advance(n);
                if front.is_empty() {
                    self.queue.pop_front();
                }
            }
            match self.want {
                None if self.assembly.buf.len() == PRELUDE_LEN => {
                    let (prelude, crc) =
                        self.preludes
                            .read(&self.assembly.buf, self.limits, self.offset)?;
                    self.start_assembly(prelude, crc);
                }
                Some(prelude) if self.assembly.buf.len() == goal => {
                    self.want = None;
                    let frame = self.assembly.buf.split_to(goal).freeze();
                    let crc = self.assembly.crc.clone().finalize();
                    let message = Message::from_hashed_frame(
                        frame,
                        prelude,
                        crc,
                        self.offset,
                        &mut self.seen,
                    )?;
                    self.offset += goal as u64;
                    return Ok(Some(message));
                }
                _ => {}
            }
        }
    }

    /// Takes the next bytes of a message held in pieces, hashing them; once [`MAX_PIECES`]
    /// are held, copies them all into the assembly buffer instead, where the message goes on
    /// as any that spans chunks
    fn add_piece(&mut self, piece: Bytes, prelude: Prelude) {
        let total = prelude.total_len as usize;
        let start = self.held();
        if self.pieces.len() == MAX_PIECES {
            self.reserve_assembly(total);
            for p in self.pieces.drain(..) {
                self.assembly.buf.extend_from_slice(&p);
            }
            self.assembly.hashed = start.min(total - 4);
            absorb(&mut self.assembly, &piece, prelude);
            return;
        }
        // the CRC covers bytes 8 (the prelude's first 8 are in already) to `total - 4`
        let end = (total - 4).saturating_sub(start).min(piece.len());
        let from = 8usize.saturating_sub(start).min(end);
        self.assembly.crc.update(&piece[from..end]);
        self.pieces.push(piece);
    }

    /// Bytes of the message held in pieces so far
    fn held(&self) -> usize {
        self.pieces.iter().map(Bytes::len).sum()
    }

    /// The message held in pieces, now complete: checked, then returned as its first
    /// payload slice with the others in [`rest`](Self::take_rest) if its header block is
    /// the repeated one, else copied together and returned whole
    fn finish_pieces(&mut self, prelude: Prelude) -> Result<Message, DecodeError> {
        self.want = None;
        let offset = self.offset;
        let trailer = take_trailer(&mut self.pieces);
        check_crc(
            be_u32(&trailer),
            self.assembly.crc.clone().finalize(),
            offset,
        )?;
        let headers_end = PRELUDE_LEN + prelude.headers_len as usize;
        self.seen
            .validate(&self.pieces[0][PRELUDE_LEN..headers_end])
            .map_err(|e| e.shifted(offset + PRELUDE_LEN as u64))?;
        self.offset += u64::from(prelude.total_len);
        if !self.seen.elided() {
            let mut frame = BytesMut::with_capacity(prelude.total_len as usize);
            for p in self.pieces.drain(..) {
                frame.extend_from_slice(&p);
            }
            frame.extend_from_slice(&trailer);
            return Ok(Message::from_checked_frame(frame.freeze(), prelude, false));
        }
        self.pieces[0].advance(headers_end);
        let mut payload = self.pieces.drain(..).filter(|p| !p.is_empty());
        let first = payload.next().unwrap_or_default();
        self.rest.extend(payload);
        Ok(Message {
            headers: Headers::default(),
            payload: first,
        })
    }

    /// Prepares the assembly buffer to receive the rest of a message whose prelude is valid;
    /// `crc` covers the prelude's first 8 bytes
    fn start_assembly(&mut self, prelude: Prelude, crc: crc32fast::Hasher) {
        self.reserve_assembly(prelude.total_len as usize);
        self.assembly.crc = crc;
        self.assembly.hashed = 8;
        self.want = Some(prelude);
    }

    /// Makes room in the assembly buffer for a message `total` long
    fn reserve_assembly(&mut self, total: usize) {
        if self.assembly.buf.capacity() < total {
            // Reclaims the buffer if every message cut from it was dropped; else allocates,
            // with room for several small messages at once
            self.assembly
                .buf
                .reserve(total.max(ASSEMBLY_MIN) - self.assembly.buf.len());
        }
    }

    fn decode_buf(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, DecodeError> {
        if buf.len() < PRELUDE_LEN {
            return Ok(None);
        }
        let (prelude, crc) = self.preludes.read(buf, self.limits, self.offset)?;
        let total = prelude.total_len as usize;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        let frame = buf.split_to(total).freeze();
        let message = Message::from_frame(frame, prelude, crc, self.offset, &mut self.seen)?;
        self.offset += total as u64;
        Ok(Some(message))
    }
}

/// Bytes of a spanning message hashed at once: large enough to amortise the CRC's setup, small
/// enough to still be in L1/L2 cache after the copy
const CRC_RUN: usize = 16 * 1024;

/// A message being copied together from several chunks
#[derive(Debug, Default)]
struct Assembly {
    /// Its bytes so far
    buf: BytesMut,
    /// CRC of `buf[..hashed]`, valid once the prelude is known
    crc: crc32fast::Hasher,
    /// How much of `buf` `crc` covers
    hashed: usize,
}

/// Smallest assembly buffer allocated for messages that span chunks
const ASSEMBLY_MIN: usize = 16 * 1024;

/// Shortest repeated `PayloadChunk` message (whole, on the wire) that is held in pieces
/// rather than copied when it spans chunks: below this, one more event per message costs
/// more than the copy saves
const SPLIT_MIN: usize = 16 * 1024;

/// Most chunks a message is held in before it is copied together after all: each may keep a
/// whole read buffer of the transport alive
const MAX_PIECES: usize = 4;

/// Removes the 4-byte message CRC from the end of `pieces` (dropping pieces left empty) and
/// returns it
fn take_trailer(pieces: &mut Vec<Bytes>) -> [u8; 4] {
    let mut trailer = [0u8; 4];
    let mut need = 4;
    while need > 0 {
        let last = pieces
            .last_mut()
            .expect("a held message has its 4 CRC bytes");
        let k = need.min(last.len());
        trailer[need - k..need].copy_from_slice(&last[last.len() - k..]);
        last.truncate(last.len() - k);
        need -= k;
        if last.is_empty() {
            pieces.pop();
        }
    }
    trailer
}

/// Appends bytes of the message being assembled and hashes what was copied while it is still
/// in cache, in runs long enough for the SIMD CRC, up to the trailing CRC
fn absorb(a: &mut Assembly, bytes: &[u8], prelude: Prelude) {
    a.buf.extend_from_slice(bytes);
    let len = a.buf.len();
    let total = prelude.total_len as usize;
    if len == total || len - a.hashed >= CRC_RUN {
        let hi = len.min(total - 4);
        if a.hashed < hi {
            a.crc.update(&a.buf[a.hashed..hi]);
            a.hashed = hi;
        }
    }
}

/// Checks preludes, hashing their length fields once per distinct pair of lengths
#[derive(Debug, Default)]
struct PreludeReader {
    /// The length fields of the last prelude read and the CRC state after them: a stream of
    /// equal-sized messages then hashes no prelude twice
    last: Option<([u8; 8], crc32fast::Hasher)>,
    /// A fresh CRC-32 state: cloning it skips the CPU feature detection of `Hasher::new`,
    /// which costs as much as hashing a prelude
    fresh: crc32fast::Hasher,
}

impl PreludeReader {
    /// Checks the prelude at the start of `bytes` (at least 12 long); returns it with the CRC
    /// state after its first 8 bytes, to be continued over the message
    #[inline]
    fn read(
        &mut self,
        bytes: &[u8],
        limits: Limits,
        offset: u64,
    ) -> Result<(Prelude, crc32fast::Hasher), DecodeError> {
        let mut p = [0u8; PRELUDE_LEN];
        p.copy_from_slice(&bytes[..PRELUDE_LEN]);
        let crc = match &self.last {
            Some((lengths, crc)) if *lengths == p[..8] => crc.clone(),
            _ => {
                let mut crc = self.fresh.clone();
                crc.update(&p[..8]);
                let mut lengths = [0u8; 8];
                lengths.copy_from_slice(&p[..8]);
                self.last = Some((lengths, crc.clone()));
                crc
            }
        };
        let prelude = Prelude::check(&p, crc.clone().finalize(), limits, offset)?;
        Ok((prelude, crc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::LimitKind;
    use crate::eventstream::Headers;

    fn stream() -> (Vec<Message>, Bytes) {
        let mut msgs = Vec::new();
        let mut wire = BytesMut::new();
        for i in 0..5u8 {
            let mut h = Headers::builder();
            h.push(":event-type", "PayloadChunk").unwrap();
            h.push("i", i32::from(i)).unwrap();
            let m = Message::new(h.build().unwrap(), vec![i; usize::from(i) * 7]);
            crate::eventstream::encode(&m, &mut wire).unwrap();
            msgs.push(m);
        }
        (msgs, wire.freeze())
    }

    fn decode_chunked(wire: &Bytes, size: usize) -> Result<Vec<Message>, DecodeError> {
        let mut d = MessageDecoder::new();
        let mut out = Vec::new();
        for chunk in wire.chunks(size) {
            d.feed(wire.slice_ref(chunk));
            while let Some(m) = d.next_message()? {
                out.push(m);
            }
        }
        d.finish()?;
        Ok(out)
    }

    #[test]
    fn every_chunk_size() {
        let (msgs, wire) = stream();
        for size in 1..=wire.len() {
            assert_eq!(
                decode_chunked(&wire, size).unwrap(),
                msgs,
                "chunk size {size}"
            );
        }
    }

    #[test]
    fn one_chunk_is_zero_copy() {
        let (_, wire) = stream();
        let mut d = MessageDecoder::new();
        d.feed(wire.clone());
        let range = wire.as_ptr_range();
        while let Some(m) = d.next_message().unwrap() {
            assert!(range.contains(&m.payload.as_ptr()) || m.payload.is_empty());
            assert!(range.contains(&m.headers.as_wire().as_ptr()));
        }
        d.finish().unwrap();
    }

    #[test]
    fn truncation_reports_buffered_bytes() {
        let (msgs, wire) = stream();
        let first = msgs[0].wire_len() as usize;
        for cut in 1..wire.len() {
            let mut d = MessageDecoder::new();
            d.feed(wire.slice(..cut));
            let mut n = 0;
            while d.next_message().unwrap().is_some() {
                n += 1;
            }
            let boundaries: Vec<u64> = msgs
                .iter()
                .scan(0, |acc, m| {
                    *acc += m.wire_len();
                    Some(*acc)
                })
                .collect();
            if boundaries.contains(&(cut as u64)) {
                d.finish().unwrap();
            } else {
                let err = d.finish().unwrap_err();
                let start = if n == 0 { 0 } else { boundaries[n - 1] };
                assert_eq!(
                    err,
                    DecodeError::Truncated {
                        offset: start,
                        buffered: cut - start as usize
                    }
                );
                assert_eq!(d.finish().unwrap_err(), err, "sticky");
            }
            let _ = first;
        }
    }

    #[test]
    fn huge_prelude_fails_before_allocating() {
        let mut p = [0u8; 12];
        p[0..4].copy_from_slice(&u32::MAX.to_be_bytes());
        let crc = crc32fast::hash(&p[..8]);
        p[8..].copy_from_slice(&crc.to_be_bytes());
        for split in 1..12 {
            let mut d = MessageDecoder::new();
            d.feed(Bytes::copy_from_slice(&p[..split]));
            assert_eq!(d.next_message().unwrap(), None);
            d.feed(Bytes::copy_from_slice(&p[split..]));
            let err = d.next_message().unwrap_err();
            assert!(matches!(
                err,
                DecodeError::LimitExceeded {
                    kind: LimitKind::Message,
                    ..
                }
            ));
            assert!(d.assembly.buf.capacity() < 64, "nothing reserved");
            d.feed(Bytes::from_static(b"more"));
            assert_eq!(d.next_message().unwrap_err(), err);
            assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn errors_are_sticky_and_carry_offsets() {
        let (msgs, wire) = stream();
        let mut bad = BytesMut::from(&wire[..]);
        let second = msgs[0].wire_len() as usize;
        let last = second + msgs[1].wire_len() as usize - 1;
        bad[last] ^= 0x40;
        let mut d = MessageDecoder::new();
        d.feed(bad.freeze());
        assert_eq!(d.next_message().unwrap().unwrap(), msgs[0]);
        let err = d.next_message().unwrap_err();
        assert!(matches!(err, DecodeError::MessageCrc { offset, .. } if offset == second as u64));
        assert_eq!(d.next_message().unwrap_err(), err);
        assert_eq!(d.finish().unwrap_err(), err);
    }

    #[test]
    fn remembered_prelude_never_hides_a_bad_prelude_crc() {
        let m = Message::new(Headers::new(), "same size");
        let one = m.to_bytes().unwrap();
        let len = one.len();
        for corrupt in [3, 8, 11] {
            let mut wire = BytesMut::new();
            for _ in 0..3 {
                wire.extend_from_slice(&one);
            }
            wire[len + corrupt] ^= 1;
            let mut d = MessageDecoder::new();
            d.feed(wire.freeze());
            assert_eq!(d.next_message().unwrap(), Some(m.clone()));
            assert!(matches!(
                d.next_message().unwrap_err(),
                DecodeError::PreludeCrc { offset, .. } if offset == len as u64
            ));
        }
    }

    #[test]
    fn repeated_headers_are_left_out_only_when_asked() {
        let mut h = Headers::builder();
        h.push(":event-type", "PayloadChunk").unwrap();
        let same = h.build().unwrap();
        let mut h = Headers::builder();
        h.push(":event-type", "Other").unwrap();
        let other = h.build().unwrap();
        let msgs = [
            Message::new(same.clone(), "a"),
            Message::new(same.clone(), "b"),
            Message::new(other.clone(), "c"),
            Message::new(other, "d"),
            Message::new(same.clone(), "e"),
            Message::new(same, "f"),
        ];
        let mut wire = BytesMut::new();
        for m in &msgs {
            crate::eventstream::encode(m, &mut wire).unwrap();
        }
        let wire = wire.freeze();
        for size in [1, 5, wire.len()] {
            for elide in [false, true] {
                let mut d = MessageDecoder::new();
                d.elide_repeated_headers(elide);
                let mut got = Vec::new();
                let mut lens = Vec::new();
                for c in wire.chunks(size) {
                    d.feed(wire.slice_ref(c));
                    while let Some(m) = d.next_message().unwrap() {
                        lens.push(d.repeated_headers_len());
                        got.push(m);
                    }
                }
                d.finish().unwrap();
                let block = msgs[0].headers.as_wire().len();
                let other = msgs[2].headers.as_wire().len();
                assert_eq!(
                    lens,
                    [None, Some(block), None, Some(other), None, Some(block)]
                );
                for (i, (m, want)) in got.iter().zip(&msgs).enumerate() {
                    assert_eq!(m.payload, want.payload);
                    let left_out = elide && lens[i].is_some();
                    if left_out {
                        assert!(m.headers.as_wire().is_empty(), "message {i}, size {size}");
                    } else {
                        assert_eq!(m.headers, want.headers, "message {i}, size {size}");
                    }
                }
            }
        }
        // messages decoded by finish keep theirs: they are returned after the caller moved on
        let mut d = MessageDecoder::new();
        d.elide_repeated_headers(true);
        d.feed(wire.clone());
        d.finish().unwrap();
        for want in &msgs {
            assert_eq!(d.next_message().unwrap().as_ref(), Some(want));
        }
    }

    /// The limits a decoder is given are the ones it enforces, at the message that passes
    /// them
    #[test]
    fn given_limits_are_enforced() {
        let (msgs, wire) = stream();
        let lens: Vec<u32> = msgs.iter().map(|m| m.wire_len() as u32).collect();
        // the last message is the longest; all have the same header block
        let last = *lens.last().unwrap();
        let before: u32 = lens[..4].iter().sum();
        let headers = msgs[0].headers.as_wire().len() as u32;
        let decode = |limits: Limits| {
            let mut d = MessageDecoder::with_limits(limits);
            assert_eq!(d.limits(), &limits);
            d.feed(wire.clone());
            let mut n = 0;
            loop {
                match d.next_message() {
                    Ok(Some(_)) => n += 1,
                    Ok(None) => return (n, d.finish().err()),
                    Err(e) => return (n, Some(e)),
                }
            }
        };
        let exact = Limits {
            max_message_len: last,
            max_headers_len: headers,
        };
        assert_eq!(decode(exact), (5, None));
        assert_eq!(
            decode(Limits {
                max_message_len: last - 1,
                ..exact
            }),
            (
                4,
                Some(DecodeError::LimitExceeded {
                    offset: u64::from(before),
                    kind: LimitKind::Message,
                    len: last,
                    max: last - 1,
                })
            )
        );
        assert_eq!(
            decode(Limits {
                max_headers_len: headers - 1,
                ..exact
            }),
            (
                0,
                Some(DecodeError::LimitExceeded {
                    offset: 0,
                    kind: LimitKind::Headers,
                    len: headers,
                    max: headers - 1,
                })
            )
        );
    }

    /// `buffered` counts every byte fed and not yet returned: in the assembly buffer, in
    /// the chunks held for a long `PayloadChunk`, in chunks not yet looked at, and in
    /// messages `finish` decoded ahead
    #[test]
    fn buffered_counts_every_byte_not_returned() {
        let mut h = Headers::builder();
        h.push(":event-type", "PayloadChunk").unwrap();
        let block = h.build().unwrap();
        let short = Message::new(block.clone(), "a");
        let long = Message::new(block, vec![7u8; SPLIT_MIN]);
        let mut wire = BytesMut::new();
        for m in [&short, &long, &short] {
            crate::eventstream::encode(m, &mut wire).unwrap();
        }
        let wire = wire.freeze();
        let first = short.wire_len() as usize;
        let second = first + long.wire_len() as usize;
        for elide in [false, true] {
            let mut d = MessageDecoder::new();
            d.elide_repeated_headers(elide);
            // the first message and part of the long one: the rest waits for more bytes,
            // held (elide) or copied into the assembly buffer
            let cuts = [0, first + 100, first + 9_000, second - 1, wire.len() - 3];
            for w in cuts.windows(2) {
                d.feed(wire.slice(w[0]..w[1]));
                while d.next_message().unwrap().is_some() {
                    while d.take_rest().is_some() {}
                }
                let returned = d.offset() as usize;
                assert_eq!(returned, if w[1] < second { first } else { second });
                assert_eq!(d.buffered(), w[1] - returned, "elide {elide}, at {}", w[1]);
            }
            // the last message is 3 bytes short: the error counts what it held, and so
            // does `buffered` no more
            assert_eq!(
                d.finish(),
                Err(DecodeError::Truncated {
                    offset: second as u64,
                    buffered: wire.len() - 3 - second
                })
            );
            assert_eq!(d.buffered(), 0);
            // unread chunks count as well
            let mut d = MessageDecoder::new();
            d.elide_repeated_headers(elide);
            d.feed(wire.slice(..5));
            d.feed(wire.slice(5..=first));
            assert_eq!(d.buffered(), first + 1);
            // and messages decoded by finish, before a truncated one
            assert!(matches!(
                d.finish(),
                Err(DecodeError::Truncated { buffered: 1, .. })
            ));
            assert_eq!(d.buffered(), first);
        }
    }

    /// A bad header block is reported at its own offset, whether its message was copied
    /// together or held in pieces
    #[test]
    fn header_errors_carry_their_offset_in_every_path() {
        let mut h = Headers::builder();
        h.push(":event-type", "PayloadChunk").unwrap();
        let first = Message::new(h.build().unwrap(), "a");
        let mut wire = BytesMut::new();
        crate::eventstream::encode(&first, &mut wire).unwrap();
        let at = wire.len();
        // a long message whose CRCs hold but whose only header has an empty name
        let block = [0u8, 7, 0, 1, b'x'];
        let total = PRELUDE_LEN + block.len() + SPLIT_MIN + 4;
        let mut frame = Vec::new();
        frame.extend_from_slice(&(total as u32).to_be_bytes());
        frame.extend_from_slice(&(block.len() as u32).to_be_bytes());
        frame.extend_from_slice(&crc32fast::hash(&frame).to_be_bytes());
        frame.extend_from_slice(&block);
        frame.resize(total - 4, 7);
        frame.extend_from_slice(&crc32fast::hash(&frame).to_be_bytes());
        wire.extend_from_slice(&frame);
        let wire = wire.freeze();
        for elide in [false, true] {
            let mut d = MessageDecoder::new();
            d.elide_repeated_headers(elide);
            let cuts = [0, at + 100, at + 9_000, wire.len()];
            let err = cuts
                .windows(2)
                .find_map(|w| {
                    d.feed(wire.slice(w[0]..w[1]));
                    loop {
                        match d.next_message() {
                            Ok(Some(_)) => {}
                            Ok(None) => return None,
                            Err(e) => return Some(e),
                        }
                    }
                })
                .expect("the bad header block is found");
            assert!(
                matches!(err, DecodeError::HeaderName { offset, .. } if offset == (at + PRELUDE_LEN) as u64),
                "elide {elide}: {err:?}"
            );
        }
    }

    #[test]
    fn finish_keeps_undrained_messages() {
        let (msgs, wire) = stream();
        for size in [1, 7, wire.len()] {
            let mut d = MessageDecoder::new();
            for chunk in wire.chunks(size) {
                d.feed(wire.slice_ref(chunk));
            }
            let first = d.next_message().unwrap().unwrap();
            d.finish().unwrap();
            assert_eq!(d.offset(), first.wire_len(), "{size}");
            assert_eq!(d.buffered() as u64, wire.len() as u64 - first.wire_len());
            let mut got = vec![first];
            while let Some(m) = d.next_message().unwrap() {
                got.push(m);
            }
            assert_eq!(got, msgs, "chunk size {size}: every message fed comes out");
            assert_eq!(d.offset(), wire.len() as u64);
            d.finish().unwrap();
        }
    }

    #[test]
    fn finish_keeps_messages_before_a_fault() {
        let (msgs, wire) = stream();
        let cut = wire.len() - 3;
        let mut d = MessageDecoder::new();
        d.feed(wire.slice(..cut));
        let start = wire.len() as u64 - msgs[4].wire_len();
        let err = d.finish().unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                offset: start,
                buffered: cut - start as usize
            }
        );
        for m in &msgs[..4] {
            assert_eq!(d.next_message().unwrap().as_ref(), Some(m));
        }
        assert_eq!(d.next_message().unwrap_err(), err, "then the error, sticky");
        assert_eq!(d.finish().unwrap_err(), err);
    }

    #[test]
    fn tokio_style_decode() {
        let (msgs, wire) = stream();
        let mut d = MessageDecoder::new();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in wire.chunks(7) {
            buf.extend_from_slice(chunk);
            while let Some(m) = d.decode(&mut buf).unwrap() {
                out.push(m);
            }
        }
        assert_eq!(d.decode_eof(&mut buf).unwrap(), None);
        assert_eq!(out, msgs);
        assert_eq!(d.offset(), wire.len() as u64);
        // errors name the offset of the message they are in
        let last = wire.len() - msgs[4].wire_len() as usize;
        let mut bad = BytesMut::from(&wire[..]);
        bad[last + 20] ^= 1;
        let mut d = MessageDecoder::new();
        for _ in 0..4 {
            assert!(d.decode(&mut bad).unwrap().is_some());
        }
        assert_eq!(d.offset(), last as u64);
        assert!(matches!(
            d.decode(&mut bad).unwrap_err(),
            DecodeError::MessageCrc { offset, .. } if offset == last as u64
        ));
        let mut buf = BytesMut::from(&wire[..20]);
        let mut d = MessageDecoder::new();
        assert!(matches!(
            d.decode_eof(&mut buf).unwrap_err(),
            DecodeError::Truncated {
                offset: 0,
                buffered: 20
            }
        ));
    }
}
