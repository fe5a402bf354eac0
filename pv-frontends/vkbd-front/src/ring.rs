//! The frontend's view of the kbdif in ring: consume backend events.

use alloc::vec::Vec;

use pv_transport::{Error, Fence, Result, RingMemory};
use xen_abi::io::kbdif::{in_slot_offset, page, InEvent, EVENT_SIZE, IN_RING_LEN};

/// Consumer of the backend → frontend event ring on the shared page.
pub struct InRing<M> {
    mem: M,
    cons: u32,
}

impl<M: RingMemory> InRing<M> {
    /// Starts at the page's current `in_cons`.
    pub fn new(mem: M) -> Self {
        let cons = mem.read_u32(page::IN_CONS);
        Self { mem, cons }
    }

    /// Decodes every pending event; unknown types are skipped. A producer
    /// index more than a ring ahead means the backend is broken.
    pub fn take_all(&mut self) -> Result<Vec<InEvent>> {
        let prod = self.mem.read_u32(page::IN_PROD);
        self.mem.fence(Fence::Read);
        let n = prod.wrapping_sub(self.cons);
        if n > IN_RING_LEN {
            return Err(Error::Invalid("backend overran the event ring"));
        }
        let mut out = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let mut b = [0u8; EVENT_SIZE];
            self.mem.read_bytes(in_slot_offset(self.cons), &mut b);
            self.cons = self.cons.wrapping_add(1);
            if let Ok(ev) = InEvent::decode(&b) {
                out.push(ev);
            }
        }
        // Slots are copied out before the backend may reuse them.
        self.mem.fence(Fence::Full);
        self.mem.write_u32(page::IN_CONS, self.cons);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use xen_abi::io::ring::PageMemory;

    fn put(mem: &PageMemory, idx: u32, ev: &InEvent) {
        mem.write_bytes(in_slot_offset(idx), &ev.encode());
    }

    #[test]
    fn reads_in_order_and_skips_unknown() {
        let mem = PageMemory::new();
        let mut r = InRing::new(&mem);
        put(
            &mem,
            0,
            &InEvent::Key {
                pressed: true,
                keycode: 30,
            },
        );
        mem.write_bytes(in_slot_offset(1), &[2; EVENT_SIZE]); // reserved type
        put(
            &mem,
            2,
            &InEvent::Key {
                pressed: false,
                keycode: 30,
            },
        );
        mem.write_u32(page::IN_PROD, 3);
        let got = r.take_all().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(mem.read_u32(page::IN_CONS), 3);
        mem.write_u32(page::IN_PROD, 3 + IN_RING_LEN + 1);
        assert!(r.take_all().is_err());
    }

    proptest! {
        /// Any page content: never a panic, never more than a ring's worth.
        #[test]
        fn hostile_pages(words in proptest::collection::vec(any::<u32>(), 1024), cons in any::<u32>()) {
            let mem = PageMemory::new();
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            mem.write_bytes(0, &bytes);
            mem.write_u32(page::IN_CONS, cons);
            let mut r = InRing::new(&mem);
            if let Ok(evs) = r.take_all() {
                prop_assert!(evs.len() <= IN_RING_LEN as usize);
            }
        }

        /// Whatever the backend writes in order comes out in order, across wraps.
        #[test]
        fn wraps(start in any::<u32>(), keys in proptest::collection::vec(0u32..0x300, 1..50)) {
            let mem = PageMemory::new();
            mem.write_u32(page::IN_CONS, start);
            mem.write_u32(page::IN_PROD, start);
            let mut r = InRing::new(&mem);
            let mut prod = start;
            for &k in &keys {
                put(&mem, prod, &InEvent::Key { pressed: true, keycode: k });
                prod = prod.wrapping_add(1);
            }
            mem.write_u32(page::IN_PROD, prod);
            let got = r.take_all().unwrap();
            let want: Vec<_> = keys.iter().map(|&k| InEvent::Key { pressed: true, keycode: k }).collect();
            prop_assert_eq!(got, want);
        }
    }
}
