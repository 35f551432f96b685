//! Property tests of the event-stream codec

use invoke_proto::bytes::Bytes;
use invoke_testkit::strategies::{cuts, message};
use invoke_testkit::{decode_at, wire};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn encode_decode_round_trip(m in message()) {
        let w = wire(std::slice::from_ref(&m));
        prop_assert_eq!(w.len() as u64, m.wire_len());
        let (got, end) = decode_at(&w, &[]);
        prop_assert_eq!(end, Ok(()));
        prop_assert_eq!(got, vec![m]);
    }

    #[test]
    fn any_chunking_equals_one_shot(
        msgs in proptest::collection::vec(message(), 1..6),
        cuts in cuts(40),
    ) {
        let w = wire(&msgs);
        let cuts = cuts.within(w.len());
        let (got, end) = decode_at(&w, &cuts);
        prop_assert_eq!(end, Ok(()));
        prop_assert_eq!(got, msgs);
    }

    #[test]
    fn byte_at_a_time_equals_one_shot(msgs in proptest::collection::vec(message(), 1..4)) {
        let w = wire(&msgs);
        let cuts: Vec<usize> = (1..w.len()).collect();
        let (got, end) = decode_at(&w, &cuts);
        prop_assert_eq!(end, Ok(()));
        prop_assert_eq!(got, msgs);
    }

    /// CRC-32 catches every single-bit error, so a flipped bit can never turn a valid stream
    /// into another valid one
    #[test]
    fn single_bit_flip_is_always_an_error(
        msgs in proptest::collection::vec(message(), 1..4),
        bit in any::<prop::sample::Index>(),
        cuts in cuts(8),
    ) {
        let w = wire(&msgs);
        let bit = bit.index(w.len() * 8);
        let mut bad = w.to_vec();
        bad[bit / 8] ^= 1 << (bit % 8);
        let bad = Bytes::from(bad);
        let cuts = cuts.within(w.len());
        let (got, end) = decode_at(&bad, &cuts);
        prop_assert!(end.is_err(), "flip of bit {} went unnoticed", bit);
        // Every message delivered before the error is one of the originals, in order
        prop_assert_eq!(&got[..], &msgs[..got.len()]);
        // ... and the error is the same however the bytes were cut
        let (_, one_shot) = decode_at(&bad, &[]);
        prop_assert_eq!(end, one_shot);
    }
}

/// The payload chunks' bytes, concatenated
fn payload_of(events: &[invoke_proto::Event]) -> Vec<u8> {
    let mut all = Vec::new();
    for e in events {
        if let invoke_proto::Event::PayloadChunk(b) = e {
            all.extend_from_slice(b);
        }
    }
    all
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Long `PayloadChunk`s cut anywhere: the same payload and the same end as one shot (a
    /// message spanning reads may come as several events); with a byte flipped, the same
    /// error and not one byte of the damaged message
    #[test]
    fn long_chunks_cut_anywhere_give_the_same_bytes(
        lens in proptest::collection::vec(0usize..70_000, 1..5),
        cuts in cuts(12),
        flip in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        use invoke_proto::{Event, InvokeComplete};
        let mut events: Vec<Event> = lens
            .iter()
            .enumerate()
            .map(|(i, len)| {
                let payload: Vec<u8> = (0..*len).map(|b| (b % 253) as u8 ^ i as u8).collect();
                Event::PayloadChunk(payload.into())
            })
            .collect();
        events.push(Event::InvokeComplete(InvokeComplete::default()));
        let mut w = invoke_testkit::event_wire(&events).to_vec();
        if let Some(at) = flip {
            let at = at.index(w.len());
            w[at] ^= 0x01;
        }
        let w = Bytes::from(w);
        let cuts = cuts.within(w.len());
        let (whole, whole_end) = invoke_testkit::stream_at(&w, &[]);
        let (got, end) = invoke_testkit::stream_at(&w, &cuts);
        prop_assert_eq!(&end, &whole_end);
        prop_assert_eq!(payload_of(&got), payload_of(&whole));
        prop_assert_eq!(
            got.iter().filter(|e| !matches!(e, Event::PayloadChunk(_))).collect::<Vec<_>>(),
            whole.iter().filter(|e| !matches!(e, Event::PayloadChunk(_))).collect::<Vec<_>>()
        );
        if flip.is_none() {
            prop_assert_eq!(end, Ok(()));
            prop_assert_eq!(payload_of(&got).len(), lens.iter().sum::<usize>());
        }
    }
}
