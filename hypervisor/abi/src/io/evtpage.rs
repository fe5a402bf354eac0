//! The event page sndif and displif use for backend → frontend events.
//!
//! Unlike the request ring this is a one-way ring with its own header:
//! consumer and producer indices, padding to 64 bytes, then 63 slots of 64
//! bytes. 63 is not a power of two, so slots are chosen with `%`, and the
//! frontend's acknowledgement (`in_cons`) is optional in the protocol.

use super::ring::{Fence, RingMemory};
use super::wire::{exact, get_u32, put_u32, WireError, XEN_PAGE_SIZE};

/// Byte offsets within the event page.
pub mod offsets {
    /// Next event the frontend will read.
    pub const IN_CONS: usize = 0;
    /// Next event the backend will write.
    pub const IN_PROD: usize = 4;
    /// First event slot.
    pub const EVENTS: usize = 64;
}

/// Every sndif/displif event is 64 bytes.
pub const EVENT_SIZE: usize = 64;
/// Number of event slots.
pub const RING_LEN: u32 = ((XEN_PAGE_SIZE - offsets::EVENTS) / EVENT_SIZE) as u32;

const _: () = assert!(RING_LEN == 63);
const _: () = assert!(offsets::EVENTS + RING_LEN as usize * EVENT_SIZE <= XEN_PAGE_SIZE);

/// The header's two indices (the remaining 56 header bytes are reserved).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventPageHeader {
    /// Free-running count of events the frontend has consumed.
    pub in_cons: u32,
    /// Free-running count of events the backend has published.
    pub in_prod: u32,
}

impl EventPageHeader {
    /// Header size in bytes, reserved tail included (64).
    pub const SIZE: usize = offsets::EVENTS;

    /// The header bytes, reserved bytes zeroed.
    pub fn encode(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        put_u32(&mut b, offsets::IN_CONS, self.in_cons);
        put_u32(&mut b, offsets::IN_PROD, self.in_prod);
        b
    }

    /// Reads the indices from exactly [`Self::SIZE`] bytes; reserved bytes are ignored.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let b = exact::<{ Self::SIZE }>(bytes)?;
        Ok(Self {
            in_cons: get_u32(b, offsets::IN_CONS),
            in_prod: get_u32(b, offsets::IN_PROD),
        })
    }
}

/// Page offset of the slot for free-running index `idx`.
pub const fn slot_offset(idx: u32) -> usize {
    offsets::EVENTS + (idx % RING_LEN) as usize * EVENT_SIZE
}

/// Frontend side: reads events the backend produced.
pub struct EventReader<M> {
    mem: M,
    cons: u32,
}

impl<M: RingMemory> EventReader<M> {
    /// Starts reading at the page's current `in_cons`.
    pub fn new(mem: M) -> Self {
        let cons = mem.read_u32(offsets::IN_CONS);
        Self { mem, cons }
    }

    /// Copies out the next event and acknowledges it. Fails if the backend
    /// claims more unread events than there are slots.
    pub fn take(&mut self) -> Result<Option<[u8; EVENT_SIZE]>, WireError> {
        let prod = self.mem.read_u32(offsets::IN_PROD);
        self.mem.fence(Fence::Read);
        let n = prod.wrapping_sub(self.cons);
        if n > RING_LEN {
            return Err(WireError::TooLong {
                limit: RING_LEN as usize,
                actual: n as usize,
            });
        }
        if n == 0 {
            return Ok(None);
        }
        let mut ev = [0u8; EVENT_SIZE];
        self.mem.read_bytes(slot_offset(self.cons), &mut ev);
        self.cons = self.cons.wrapping_add(1);
        // The slot must be fully read before the backend may reuse it.
        self.mem.fence(Fence::Full);
        self.mem.write_u32(offsets::IN_CONS, self.cons);
        Ok(Some(ev))
    }
}

/// Backend side: writes events for the frontend.
pub struct EventWriter<M> {
    mem: M,
    prod: u32,
}

impl<M: RingMemory> EventWriter<M> {
    /// Starts writing at the page's current `in_prod`.
    pub fn new(mem: M) -> Self {
        let prod = mem.read_u32(offsets::IN_PROD);
        Self { mem, prod }
    }

    /// Publishes one event. Fails when every slot holds an unread event,
    /// judged by the frontend's `in_cons` (which it may never advance, in
    /// which case the backend can only drop events).
    pub fn push(&mut self, ev: &[u8; EVENT_SIZE]) -> Result<(), WireError> {
        let cons = self.mem.read_u32(offsets::IN_CONS);
        self.mem.fence(Fence::Full);
        let used = self.prod.wrapping_sub(cons);
        if used >= RING_LEN {
            return Err(WireError::TooLong {
                limit: RING_LEN as usize,
                actual: used as usize + 1,
            });
        }
        self.mem.write_bytes(slot_offset(self.prod), ev);
        self.mem.fence(Fence::Write);
        self.prod = self.prod.wrapping_add(1);
        self.mem.write_u32(offsets::IN_PROD, self.prod);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::ring::PageMemory;

    #[test]
    fn layout() {
        let h = EventPageHeader {
            in_cons: 5,
            in_prod: 0x0102_0304,
        };
        let b = h.encode();
        assert_eq!(b[..8], [5, 0, 0, 0, 4, 3, 2, 1]);
        assert!(b[8..].iter().all(|&x| x == 0));
        assert_eq!(EventPageHeader::decode(&b), Ok(h));
        assert_eq!(slot_offset(0), 64);
        assert_eq!(slot_offset(62), 64 + 62 * 64);
        assert_eq!(slot_offset(63), 64);
    }

    #[test]
    fn writer_reader() {
        let mem = PageMemory::new();
        let mut w = EventWriter::new(&mem);
        let mut r = EventReader::new(&mem);
        for i in 0..63u8 {
            w.push(&[i; 64]).unwrap();
        }
        assert!(w.push(&[0xff; 64]).is_err(), "ring full");
        for i in 0..63u8 {
            assert_eq!(r.take().unwrap(), Some([i; 64]));
        }
        assert_eq!(r.take().unwrap(), None);
        w.push(&[7; 64]).unwrap();
        assert_eq!(r.take().unwrap(), Some([7; 64]));
        // A backend claiming 64 unread events is lying.
        mem.write_u32(offsets::IN_PROD, 64 + 64);
        assert!(r.take().is_err());
    }
}
