//! A backend's request ring on a page the guest controls: any header and
//! slot contents, any resume index. Taking requests, answering them and the
//! final check never panic, never take more than the ring holds, and end.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xen_abi::io::ring::{BackRing, PageMemory, RingMemory};

fuzz_target!(|data: &[u8]| {
    let page = PageMemory::new();
    page.write_bytes(0, &data[..data.len().min(4096)]);
    let resume = data.get(4096..4100).map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let Ok(mut ring) = BackRing::<_, 64>::attach(&page, resume) else { return };
    let mut taken = 0u32;
    // Nobody produces meanwhile: the ring must run dry within what it can
    // hold, however the guest set its indices (the cap only catches a bug).
    for _ in 0..4 * ring.size() {
        match ring.take_request() {
            Ok(Some(req)) => {
                taken += 1;
                ring.push_response(&req).expect("a taken request can be answered");
            }
            Ok(None) => break,
            Err(_) => return,
        }
    }
    assert!(taken <= ring.size());
    ring.publish_responses();
    let _ = ring.final_check_for_requests();
});
