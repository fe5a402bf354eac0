//! What arrives from xenstore and from a guest's xenstore nodes: the wire
//! header and message framing, xenbus state text and decimal numbers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xen_abi::io::wire::parse_decimal;
use xen_abi::io::xenbus::XenbusState;
use xen_abi::io::xs_wire::{XsHeader, XsMessage};

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = XsHeader::decode(data.get(..XsHeader::SIZE).unwrap_or(data)) {
        assert_eq!(XsHeader::decode(&h.encode()), Ok(h));
    }
    if let Ok(m) = XsMessage::parse(data) {
        assert_eq!(m.payload.len(), m.header.len as usize);
        let mut out = vec![0u8; XsHeader::SIZE + m.payload.len()];
        let n = m.encode_into(&mut out).expect("a parsed message encodes");
        assert_eq!(&out[..n], &data[..n]);
    }
    let _ = XenbusState::parse(data);
    let _ = parse_decimal(data);
});
