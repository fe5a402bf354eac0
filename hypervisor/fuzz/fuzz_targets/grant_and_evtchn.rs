//! What a guest writes into its grant entries and asks of grant and event
//! channel operations, chosen by the fuzzer: no panic, no mapping the
//! entries did not allow, quotas and binding symmetry kept.
#![no_main]

use hv_core::evtchn::{self, Binding, Ports};
use hv_core::grant::{self, Entry, MapRequest, MapTrack, PlainEntries, GNTMAP_HOST_MAP, GNTMAP_READONLY, GTF_PERMIT_ACCESS, GTF_READONLY, GTF_TYPE_MASK};
use libfuzzer_sys::fuzz_target;

const RAM: core::ops::Range<u64> = 0x40000..0x41000;

fuzz_target!(|data: &[u8]| {
    let mut t = PlainEntries::<8>::new(&[0; 8]);
    let mut mt = MapTrack::<8>::new(4);
    let mut ports = [Ports::<32>::new(6, 2), Ports::<32>::new(6, 2)];
    for op in data.chunks_exact(10) {
        let word = u64::from_le_bytes(op[2..10].try_into().unwrap());
        let (a, b) = (op[0], op[1]);
        match a % 6 {
            // The guest rewrites an entry.
            0 => t.write(usize::from(b % 8), word),
            1 => {
                let gref = u32::from(b % 10);
                let flags = GNTMAP_HOST_MAP | if a & 0x80 != 0 { GNTMAP_READONLY } else { 0 };
                let before = Entry::from_u64(t.words().get(gref as usize).copied().unwrap_or(0));
                if let Ok((_, frame)) = grant::map(&mut mt, 0, MapRequest { granter: 1, gref, flags }, &mut t, RAM, true) {
                    assert!(before.flags & GTF_TYPE_MASK == GTF_PERMIT_ACCESS && before.domid == 0);
                    assert!(RAM.contains(&u64::from(frame)));
                    assert!(flags & GNTMAP_READONLY != 0 || before.flags & GTF_READONLY == 0);
                }
                assert!(mt.used() <= 4);
            }
            2 => {
                let _ = grant::unmap(&mut mt, u32::from(b), Some(&mut t));
            }
            3 => {
                let _ = ports[usize::from(b & 1)].alloc_unbound(u16::from(b >> 1) & 3);
            }
            4 => {
                let (l, r) = ports.split_at_mut(1);
                let (local, remote, ld, rd) = if b & 1 == 0 { (&mut l[0], &mut r[0], 0, 1) } else { (&mut r[0], &mut l[0], 1, 0) };
                let _ = evtchn::bind_interdomain(local, ld, remote, rd, word as u32 % 40);
            }
            _ => {
                let d = usize::from(b & 1);
                let port = word as u32 % 40;
                let (l, r) = ports.split_at_mut(1);
                let (local, peer) = if d == 0 { (&mut l[0], &mut r[0]) } else { (&mut r[0], &mut l[0]) };
                let peer = evtchn::peer_of(local, port).filter(|&p| usize::from(p) == 1 - d).map(|_| peer);
                let _ = evtchn::close(local, d as u16, port, peer);
            }
        }
        for (d, p) in ports.iter().enumerate() {
            assert!(p.used() <= 6);
            for port in 0..32 {
                if let Binding::Interdomain { remote, port: rp } = p.binding(port) {
                    assert_eq!(ports[usize::from(remote)].binding(rp), Binding::Interdomain { remote: d as u16, port });
                }
            }
        }
    }
});
