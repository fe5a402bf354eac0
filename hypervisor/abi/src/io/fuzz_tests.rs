//! Property tests over every decoder: arbitrary bytes never panic, and
//! whatever decodes re-encodes to bytes that decode to the same value.

extern crate std;

use std::vec::Vec;

use proptest::collection::vec;
use proptest::prelude::*;

use super::*;

/// Arbitrary lengths around the interesting sizes, plus the exact size.
fn any_bytes(size: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![vec(any::<u8>(), 0..=size + 8), vec(any::<u8>(), size)]
}

/// Exact-size bytes whose discriminant byte is forced into `codes`, so the
/// decodable paths are hit often rather than one time in 256.
fn typed_bytes(size: usize, at: usize, codes: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    (vec(any::<u8>(), size), proptest::sample::select(codes)).prop_map(move |(mut b, code)| {
        b[at] = code;
        b
    })
}

/// Decode, and if that worked, check that encode is a faithful inverse.
macro_rules! check_codec {
    ($ty:ty, $bytes:expr) => {{
        if let Ok(v) = <$ty>::decode(&$bytes) {
            let again = <$ty>::decode(&v.encode());
            prop_assert_eq!(again, Ok(v));
        }
    }};
}

const SND_OPS: &[u8] = &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
const DISPL_OPS: &[u8] = &[0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0];
const KBD_TYPES: &[u8] = &[1, 2, 3, 4, 5, 6];
const FB_TYPES: &[u8] = &[1, 2, 3, 4];

proptest! {
    #[test]
    fn sndif_decoders_total(
        any in any_bytes(64),
        typed in typed_bytes(64, 2, SND_OPS),
        fmt in 0u8..30,
    ) {
        check_codec!(sndif::Request, any);
        check_codec!(sndif::Response, any);
        check_codec!(sndif::Event, any);
        let mut typed = typed;
        check_codec!(sndif::Response, typed);
        check_codec!(sndif::Event, typed);
        typed[12] = fmt;
        check_codec!(sndif::Request, typed);
    }

    #[test]
    fn displif_decoders_total(any in any_bytes(64), typed in typed_bytes(64, 2, DISPL_OPS)) {
        check_codec!(displif::Request, any);
        check_codec!(displif::Response, any);
        check_codec!(displif::Event, any);
        check_codec!(displif::Request, typed);
        check_codec!(displif::Response, typed);
        check_codec!(displif::Event, typed);
    }

    #[test]
    fn kbdif_decoders_total(any in any_bytes(40), typed in typed_bytes(40, 0, KBD_TYPES), mt in 0u8..8) {
        check_codec!(kbdif::InEvent, any);
        check_codec!(kbdif::PageIndices, any);
        let mut typed = typed;
        typed[1] = mt;
        check_codec!(kbdif::InEvent, typed);
    }

    #[test]
    fn fbif_decoders_total(any in any_bytes(40), typed in typed_bytes(40, 0, FB_TYPES)) {
        check_codec!(fbif::OutEvent, any);
        check_codec!(fbif::InEvent, any);
        check_codec!(fbif::OutEvent, typed);
        check_codec!(fbif::InEvent, typed);
        check_codec!(fbif::PageHeader, any);
    }

    #[test]
    fn page_structures_total(a in any_bytes(64), b in any_bytes(28), c in any_bytes(16)) {
        check_codec!(ring::RingHeader, a);
        check_codec!(evtpage::EventPageHeader, a);
        check_codec!(xs_wire::XsRingIndices, b);
        check_codec!(console::ConsoleIndices, c);
        check_codec!(xs_wire::XsHeader, c);
    }

    #[test]
    fn page_directory_total(page in vec(any::<u8>(), 4090..=4100)) {
        if let Ok(d) = pgdir::DirectoryPage::decode(&page) {
            prop_assert_eq!(&d.encode()[..], &page[..]);
        }
    }

    #[test]
    fn xenstore_parser_total(
        bytes in vec(any::<u8>(), 0..5000),
        ty in 0u32..30,
        len in prop_oneof![0u32..64, 4090u32..4200, any::<u32>()],
    ) {
        let _ = xs_wire::XsMessage::parse(&bytes);
        // Same bytes behind a plausible header, so the payload checks run.
        let mut framed = Vec::from(&ty.to_le_bytes()[..]);
        framed.extend_from_slice(&[0; 8]);
        framed.extend_from_slice(&len.to_le_bytes());
        framed.extend_from_slice(&bytes);
        match xs_wire::XsMessage::parse(&framed) {
            Ok(m) => {
                prop_assert_eq!(m.payload.len(), len as usize);
                prop_assert!(len as usize <= xs_wire::XENSTORE_PAYLOAD_MAX);
                prop_assert!(m.wire_len() <= framed.len());
                let mut out = std::vec![0u8; m.wire_len()];
                prop_assert_eq!(m.encode_into(&mut out), Ok(m.wire_len()));
                prop_assert_eq!(&out[..], &framed[..m.wire_len()]);
            }
            Err(WireError::Truncated { needed, available }) => {
                prop_assert!(needed > available);
            }
            Err(_) => {}
        }
    }

    #[test]
    fn text_parsers_total(text in vec(any::<u8>(), 0..24)) {
        let _ = xenbus::XenbusState::parse(&text);
        let _ = displif::parse_resolution(&text);
        let _ = wire::parse_decimal(&text);
        let _ = xs_wire::error_errno(&text);
        if let Ok(s) = core::str::from_utf8(&text) {
            let _ = sndif::PcmFormat::from_name(s);
            let _ = fbif::PdAbi::from_protocol(s);
        }
    }
}
