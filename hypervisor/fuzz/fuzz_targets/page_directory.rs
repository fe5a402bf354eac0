//! A frontend's page directory for a shared buffer (sndif, displif): the
//! backend walks the chain of directory pages the guest wrote. Whatever
//! they hold, the walk ends (no loop, no page beyond what the size needs),
//! maps exactly the size asked for, or fails cleanly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pv_transport::loopback::Loopback;
use pv_transport::pgdir::map_buffer;
use pv_transport::{Platform, RingMemory};
use xen_abi::io::pgdir::DirectoryPage;

fuzz_target!(|data: &[u8]| {
    // Decoding alone.
    if let Ok(p) = DirectoryPage::decode(data) {
        assert_eq!(DirectoryPage::decode(&p.encode()), Ok(p));
    }
    // A walk over up to four guest pages filled with the input.
    let Some((&size_byte, rest)) = data.split_first() else { return };
    let lb = Loopback::new();
    let fe = lb.platform(1).open().expect("loopback endpoint");
    let be = lb.platform(0).open().expect("loopback endpoint");
    let pages = fe.grants.share(0, 4, false).expect("share");
    pages.write_bytes(0, &rest[..rest.len().min(4 * 4096)]);
    let first = pages.grefs()[usize::from(size_byte) % 4];
    let size = u32::from(size_byte) * 4096 + rest.len() as u32 % 4096;
    if let Ok(m) = map_buffer(&*be.mapper, 1, first, size, 1 << 20, false) {
        assert!(m.len() >= size as usize && m.len() < size as usize + 4096);
    }
});
