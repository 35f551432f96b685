//! Differential tests against the official `aws-smithy-eventstream` codec
//!
//! Intentional differences (both sides otherwise agree on accept/reject):
//! - we reject an empty header name (the spec says 1..=255 bytes); smithy accepts it;
//! - we reject a repeated header name (the spec and botocore do); smithy accepts it;
//! - we enforce configurable size limits (24 MiB + 128 KiB message, 128 KiB header block by
//!   default);
//!   smithy has none. The mutation test below stays far under them.

use aws_smithy_eventstream::frame::{read_message_from, write_message_to};
use invoke_proto::DecodeError;
use invoke_proto::HeaderNameProblem;
use invoke_proto::bytes::{Bytes, BytesMut};
use invoke_testkit::smithy::{from_smithy, to_smithy};
use invoke_testkit::strategies::message;
use invoke_testkit::{decode_at, wire};
use proptest::prelude::*;

/// Whether our rejection is one of the documented intentional differences
fn intentional(e: &DecodeError) -> bool {
    matches!(
        e,
        DecodeError::HeaderName {
            problem: HeaderNameProblem::Empty | HeaderNameProblem::Duplicate,
            ..
        } | DecodeError::LimitExceeded { .. }
    )
}

/// Re-computes both CRCs of the single frame in `b`, so that mutations reach header parsing
fn fix_crcs(b: &mut [u8]) {
    if b.len() < 16 {
        return;
    }
    let p = crc32fast::hash(&b[..8]);
    b[8..12].copy_from_slice(&p.to_be_bytes());
    let total = u32::from_be_bytes(b[..4].try_into().unwrap()) as usize;
    if total >= 16 && total <= b.len() {
        let m = crc32fast::hash(&b[..total - 4]);
        b[total - 4..total].copy_from_slice(&m.to_be_bytes());
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Set(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Remove(prop::sample::Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::Set(i, v)),
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::Insert(i, v)),
        any::<prop::sample::Index>().prop_map(Mutation::Remove),
    ]
}

/// Applies mutations to a frame and adjusts its prelude lengths the way a sloppy peer might
fn mutate(frame: &[u8], muts: &[Mutation], fix_len: bool) -> Vec<u8> {
    let mut b = frame.to_vec();
    for m in muts {
        match *m {
            Mutation::Set(i, v) => {
                let i = i.index(b.len());
                b[i] = v;
            }
            Mutation::Insert(i, v) => b.insert(i.index(b.len() + 1), v),
            Mutation::Remove(i) => {
                if !b.is_empty() {
                    b.remove(i.index(b.len()));
                }
            }
        }
    }
    if fix_len && b.len() >= 16 {
        let len = (b.len() as u32).to_be_bytes();
        b[..4].copy_from_slice(&len);
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn ours_encoded_smithy_decodes(m in message()) {
        let w = wire(std::slice::from_ref(&m));
        let s = read_message_from(&mut w.clone()).unwrap();
        prop_assert_eq!(from_smithy(&s), m);
    }

    #[test]
    fn smithy_encoded_we_decode(m in message()) {
        let mut buf = Vec::new();
        write_message_to(&to_smithy(&m), &mut buf).unwrap();
        // byte-identical encodings
        prop_assert_eq!(&buf[..], &wire(std::slice::from_ref(&m))[..]);
        let (got, end) = decode_at(&Bytes::from(buf), &[]);
        prop_assert_eq!(end, Ok(()));
        prop_assert_eq!(got, vec![m]);
    }

    #[test]
    fn mutated_streams_accept_reject_agree(
        m in message(),
        muts in proptest::collection::vec(mutation(), 1..4),
        fix_len in any::<bool>(),
        fix_crc in any::<bool>(),
    ) {
        let w = wire(std::slice::from_ref(&m));
        let mut bad = mutate(&w, &muts, fix_len);
        if fix_crc {
            fix_crcs(&mut bad);
        }
        let bad = Bytes::from(bad);
        // Ours, as one stream of exactly these bytes
        let (ours, end) = decode_at(&bad, &[]);
        let ours_ok = end.is_ok() && ours.len() == 1;
        // Smithy: one message that must use up exactly these bytes
        let mut buf = bad.clone();
        let theirs = read_message_from(&mut buf).ok().filter(|_| buf.is_empty());
        match (&theirs, ours_ok) {
            (Some(s), true) => prop_assert_eq!(from_smithy(s), ours[0].clone()),
            (None, false) => {}
            (Some(_), false) => {
                let e = end.clone().err();
                prop_assert!(
                    e.as_ref().is_some_and(intentional),
                    "smithy accepts, we reject with {:?} (messages {})", e, ours.len()
                );
            }
            (None, true) => prop_assert!(false, "we accept what smithy rejects: {:?}", ours[0]),
        }
    }
}

#[test]
fn documented_differences_hold() {
    // Empty header name: smithy accepts, we reject
    let mut block = BytesMut::new();
    block.extend_from_slice(&[0, 0]); // name length 0, type true
    let frame = raw_frame(&block, b"");
    assert!(read_message_from(&mut frame.clone()).is_ok());
    let (_, end) = decode_at(&frame, &[]);
    assert!(matches!(
        end,
        Err(DecodeError::HeaderName {
            offset: 12,
            problem: HeaderNameProblem::Empty
        })
    ));
    // Duplicate names: smithy accepts, we reject
    let frame = raw_frame(&[1, b'a', 0, 1, b'a', 1], b"x");
    assert_eq!(
        read_message_from(&mut frame.clone())
            .unwrap()
            .headers()
            .len(),
        2
    );
    let (_, end) = decode_at(&frame, &[]);
    assert!(matches!(
        end,
        Err(DecodeError::HeaderName {
            offset: 15,
            problem: HeaderNameProblem::Duplicate
        })
    ));
}

/// A frame with valid CRCs around a raw header block and payload
fn raw_frame(headers: &[u8], payload: &[u8]) -> Bytes {
    let total = 16 + headers.len() + payload.len();
    let mut b = Vec::with_capacity(total);
    b.extend_from_slice(&(total as u32).to_be_bytes());
    b.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(headers);
    b.extend_from_slice(payload);
    b.extend_from_slice(&[0; 4]);
    fix_crcs(&mut b);
    Bytes::from(b)
}
