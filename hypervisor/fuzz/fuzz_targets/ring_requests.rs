//! Every PV ring packet a backend or frontend decodes (sndif, displif,
//! kbdif, fbif): the first byte picks the decoder, the rest is the packet.
//! Decoding never panics, and whatever decodes encodes back to bytes that
//! decode to the same value (nothing the guest wrote is misread on the way).
#![no_main]

use libfuzzer_sys::fuzz_target;
use xen_abi::io::{displif, fbif, kbdif, sndif};

macro_rules! round_trip {
    ($ty:ty, $bytes:expr) => {
        if let Ok(v) = <$ty>::decode($bytes) {
            assert_eq!(<$ty>::decode(&v.encode()), Ok(v), "{} does not round-trip", stringify!($ty));
        }
    };
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else { return };
    match which % 9 {
        0 => round_trip!(sndif::Request, bytes),
        1 => round_trip!(sndif::Response, bytes),
        2 => round_trip!(sndif::Event, bytes),
        3 => round_trip!(displif::Request, bytes),
        4 => round_trip!(displif::Response, bytes),
        5 => round_trip!(displif::Event, bytes),
        6 => round_trip!(kbdif::InEvent, bytes),
        7 => round_trip!(fbif::OutEvent, bytes),
        _ => round_trip!(fbif::InEvent, bytes),
    }
});
