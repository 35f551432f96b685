//! The message CRCs of a run of equal-length messages, checked with one pass of CRC-32
//!
//! Checked one at a time, a small message pays the SIMD kernel's setup and tail on every
//! call: `crc32fast` hashes 340 bytes at about a fifth of its speed over long runs. CRC-32 is
//! affine, so one pass over `k` whole messages laid end to end can stand in for `k` calls.
//! With `update(s, x)` the CRC-32 state (as `crc32fast` keeps it) after the bytes `x` from
//! the state `s`, and `shift_n` the linear map of `n` zero bytes:
//!
//! - `update(s, x) = shift_n(s) ⊕ update(0, x)` for `x` of `n` bytes;
//! - a message is its bytes `m` and the big-endian value `t` of its last four, and
//!   `update(0, m ‖ t) = update(crc(m), be(t))`; if the message is sound, `crc(m) = t`, and
//!   this is `g(t) = update(t, be(t))`, a fixed affine map of `t`.
//!
//! So if every message of a run (all `n` long) is sound, the state after the `j`-th is
//! `S_j = shift_n(S_{j-1}) ⊕ g(t_j)` from `S_0 = 0`: both maps come from tables, four
//! lookups each. If one message is not sound, the state after it differs from that by
//! `shift_4(crc(m) ⊕ t) ≠ 0`, and every later `shift_n` keeps a difference other than zero
//! (multiplying by a power of `x` modulo the CRC polynomial is invertible): the run check
//! fails, and the decoder checks those messages one by one as before, which names the first
//! bad one. Several bad messages pass the run check only if their differences cancel out, as
//! several errors in one message can escape that message's own CRC.

/// CRC-32 (IEEE 802.3) polynomial, bit-reversed: `crc32fast` and the event-stream format's
const POLY: u32 = 0xEDB8_8320;

/// Longest message checked in runs; past a few KiB one `crc32fast` call per message runs at
/// nearly full speed already
pub(crate) const RUN_MAX_LEN: usize = 4096;
/// Fewest messages of a new length worth building a shift table for (about a microsecond)
const RUN_MIN_NEW: usize = 32;
/// Fewest messages of the length the table is for worth a run check
const RUN_MIN: usize = 2;

/// The register multiplied by `x` modulo the polynomial: one zero bit hashed in
const fn mulx(r: u32) -> u32 {
    (r >> 1) ^ (POLY & (r & 1).wrapping_neg())
}

/// `update(s, bytes)`, bit by bit (for building tables at compile time)
const fn update_bitwise(s: u32, bytes: [u8; 4]) -> u32 {
    let mut r = !s;
    let mut i = 0;
    while i < 4 {
        r ^= bytes[i] as u32;
        let mut bit = 0;
        while bit < 8 {
            r = mulx(r);
            bit += 1;
        }
        i += 1;
    }
    !r
}

/// `g(t) = update(t, be(t))`
const fn g_bitwise(t: u32) -> u32 {
    update_bitwise(t, t.to_be_bytes())
}

/// `g(0)`, and `g(b << 8k) ⊕ g(0)` for each byte `k` of `t` and value `b`: the linear part of
/// `g` one byte at a time
const G: (u32, [[u32; 256]; 4]) = {
    let g0 = g_bitwise(0);
    let mut t = [[0u32; 256]; 4];
    let mut k = 0;
    while k < 4 {
        let mut b = 0;
        while b < 256 {
            t[k][b] = g_bitwise((b as u32) << (8 * k)) ^ g0;
            b += 1;
        }
        k += 1;
    }
    (g0, t)
};

/// `g(t)`: what the CRC state after a sound message adds to the state before it, shifted
#[inline]
fn g(t: u32) -> u32 {
    let (g0, table) = &G;
    *g0 ^ by_bytes(table, t)
}

/// A linear map of a CRC state from its byte tables
#[inline]
fn by_bytes(table: &[[u32; 256]; 4], s: u32) -> u32 {
    let [b0, b1, b2, b3] = s.to_le_bytes();
    table[0][usize::from(b0)]
        ^ table[1][usize::from(b1)]
        ^ table[2][usize::from(b2)]
        ^ table[3][usize::from(b3)]
}

/// `shift_n` for one message length `n`, as byte tables
struct Shift {
    len: usize,
    table: [[u32; 256]; 4],
}

impl Shift {
    /// The tables for `len` (at most [`RUN_MAX_LEN`]); `fresh` is a new `crc32fast` state
    fn new(len: usize, fresh: &crc32fast::Hasher) -> Box<Self> {
        // shift_n(1 << 31) from two passes over zeros; each lower bit's image is the one
        // above multiplied by x (one more zero bit)
        let mut column = [0u32; 32];
        column[31] = over_zeros(crc32fast::Hasher::new_with_initial(1 << 31), len)
            ^ over_zeros(fresh.clone(), len);
        for bit in (0..31).rev() {
            column[bit] = mulx(column[bit + 1]);
        }
        let mut shift = Box::new(Self {
            len,
            table: [[0; 256]; 4],
        });
        for (k, table) in shift.table.iter_mut().enumerate() {
            for b in 1..256usize {
                let low = b.trailing_zeros() as usize;
                table[b] = table[b & (b - 1)] ^ column[8 * k + low];
            }
        }
        shift
    }
}

/// `update(s, [0; len])` for the state `s` of `h`
fn over_zeros(mut h: crc32fast::Hasher, len: usize) -> u32 {
    static ZEROS: [u8; 256] = [0; 256];
    let mut left = len;
    while left > 0 {
        let n = left.min(ZEROS.len());
        h.update(&ZEROS[..n]);
        left -= n;
    }
    h.finalize()
}

impl std::fmt::Debug for Shift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shift")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// How far the message CRCs of the stream are known to match, from run checks
#[derive(Debug, Default)]
pub(crate) struct RunCheck {
    /// Stream offset up to which every message's CRC matched
    checked_to: u64,
    /// Stream offset up to which runs were looked at: a run that failed its check (or was
    /// too short) is not looked at again from each of its messages, which would hash it
    /// over and over
    looked_to: u64,
    /// The shift tables of the last length checked in runs
    shift: Option<Box<Shift>>,
}

impl RunCheck {
    /// Whether the CRC of the message of `total` bytes at stream `offset` is known to match
    #[inline]
    pub(crate) fn covers(&self, offset: u64, total: usize) -> bool {
        offset + total as u64 <= self.checked_to
    }

    /// Checks in one pass the message CRCs of the run of messages `total` bytes long (as
    /// their length fields say) at the start of `bytes`, which is at stream `offset` on a
    /// message boundary, if the run is long enough to gain from it; `fresh` is a new
    /// `crc32fast` state
    pub(crate) fn check(
        &mut self,
        bytes: &[u8],
        total: usize,
        offset: u64,
        fresh: &crc32fast::Hasher,
    ) {
        debug_assert!((super::MESSAGE_OVERHEAD..=RUN_MAX_LEN).contains(&total));
        if offset < self.looked_to {
            return;
        }
        let known = self.shift.as_ref().is_some_and(|s| s.len == total);
        let wanted = if known { RUN_MIN } else { RUN_MIN_NEW };
        if bytes.len() < wanted * total {
            return;
        }
        let want = u32::try_from(total).unwrap_or(u32::MAX).to_be_bytes();
        let mut end = 0;
        while end + total <= bytes.len() && bytes[end..end + 4] == want {
            end += total;
        }
        self.looked_to = offset + end.max(total) as u64;
        if end < wanted * total {
            return;
        }
        if !known {
            self.shift = Some(Shift::new(total, fresh));
        }
        let shift = &self.shift.as_ref().expect("built above").table;
        let mut expected = 0u32;
        for message in bytes[..end].chunks_exact(total) {
            expected = by_bytes(shift, expected) ^ g(super::be_u32(&message[total - 4..]));
        }
        let mut actual = fresh.clone();
        actual.update(&bytes[..end]);
        if actual.finalize() == expected {
            self.checked_to = offset + end as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `shift_n(s)` bit by bit
    fn shift_bitwise(mut s: u32, n: usize) -> u32 {
        for _ in 0..8 * n {
            s = mulx(s);
        }
        s
    }

    /// Messages of `len` bytes whose last four hold the CRC of the rest
    fn run(count: usize, len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..count {
            let start = out.len();
            out.extend_from_slice(&u32::try_from(len).unwrap().to_be_bytes());
            out.extend((4..len - 4).map(|j| (i * 31 + j * 7) as u8));
            let crc = crc32fast::hash(&out[start..]);
            out.extend_from_slice(&crc.to_be_bytes());
        }
        out
    }

    #[test]
    fn tables_match_the_definitions() {
        let fresh = crc32fast::Hasher::new();
        for len in [16, 17, 255, 256, 257, 360, 1000, RUN_MAX_LEN] {
            let shift = Shift::new(len, &fresh);
            for s in [0, 1, 0x8000_0000, 0xDEAD_BEEF, u32::MAX] {
                assert_eq!(
                    by_bytes(&shift.table, s),
                    shift_bitwise(s, len),
                    "{len} {s:x}"
                );
                // update(s, x) = shift_n(s) xor update(0, x)
                let x: Vec<u8> = (0..len).map(|i| (i * 13) as u8).collect();
                let mut from_s = crc32fast::Hasher::new_with_initial(s);
                from_s.update(&x);
                assert_eq!(
                    from_s.finalize(),
                    by_bytes(&shift.table, s) ^ crc32fast::hash(&x)
                );
            }
        }
        for t in [0, 1, 0x1234_5678, u32::MAX] {
            let mut h = crc32fast::Hasher::new_with_initial(t);
            h.update(&t.to_be_bytes());
            assert_eq!(g(t), h.finalize());
            assert_eq!(g(t), g_bitwise(t));
        }
    }

    #[test]
    fn a_sound_run_is_covered() {
        let fresh = crc32fast::Hasher::new();
        let bytes = run(40, 360);
        let mut c = RunCheck::default();
        c.check(&bytes, 360, 1000, &fresh);
        assert!(c.covers(1000, 360));
        assert!(c.covers(1000 + 39 * 360, 360));
        assert!(!c.covers(1000 + 40 * 360, 360));
        // the table is kept: two messages of the same length are then enough
        let mut c2 = RunCheck {
            shift: c.shift.take(),
            ..RunCheck::default()
        };
        c2.check(&bytes[..720], 360, 0, &fresh);
        assert!(c2.covers(360, 360));
    }

    #[test]
    fn a_run_stops_at_another_length_and_short_runs_are_left_alone() {
        let fresh = crc32fast::Hasher::new();
        let mut bytes = run(33, 100);
        bytes.extend(run(1, 120));
        let mut c = RunCheck::default();
        c.check(&bytes, 100, 0, &fresh);
        assert!(c.covers(32 * 100, 100));
        assert!(!c.covers(33 * 100, 120));
        // fewer than RUN_MIN_NEW of a length without a table: nothing checked
        let mut c = RunCheck::default();
        c.check(&run(31, 100), 100, 0, &fresh);
        assert!(!c.covers(0, 100));
    }

    #[test]
    fn a_failed_run_is_not_looked_at_again() {
        let fresh = crc32fast::Hasher::new();
        let mut bytes = run(40, 100);
        bytes[39 * 100 + 50] ^= 1;
        let mut c = RunCheck::default();
        c.check(&bytes, 100, 0, &fresh);
        assert!(!c.covers(0, 100));
        // from a later message of the same run, even with the bad one cut off: nothing
        c.check(&bytes[100..3900], 100, 100, &fresh);
        assert!(!c.covers(100, 100));
        // past the run, a new one is checked
        let next = run(40, 100);
        c.check(&next, 100, 4000, &fresh);
        assert!(c.covers(4000, 100));
    }

    #[test]
    fn any_one_bad_bit_fails_the_run() {
        let fresh = crc32fast::Hasher::new();
        let good = run(32, 40);
        for bit in 0..good.len() * 8 {
            let mut bytes = good.clone();
            bytes[bit / 8] ^= 1 << (bit % 8);
            let mut c = RunCheck::default();
            c.check(&bytes, 40, 0, &fresh);
            // a flipped length field ends the run early; anything else fails it
            assert!(!c.covers(0, 40), "bit {bit}");
        }
    }
}
