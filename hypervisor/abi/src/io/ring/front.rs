//! The frontend's half of a shared ring: produces requests, consumes responses.

use super::RingMemory;
use super::{checked_size, needs_notify, offsets, slot_offset, Fence, RingError, RingHeader};

/// The frontend end of a ring of `E`-byte slots over memory `M`.
///
/// Requests are staged with [`push_request`](Self::push_request) and become
/// visible to the backend only on [`publish_requests`](Self::publish_requests),
/// so a batch costs one event at most.
pub struct FrontRing<M, const E: usize> {
    mem: M,
    size: u32,
    /// Next request index to fill (private until published).
    req_prod_pvt: u32,
    /// The request index last written to the shared header.
    req_published: u32,
    /// Next response index to consume.
    rsp_cons: u32,
}

impl<M: RingMemory, const E: usize> FrontRing<M, E> {
    /// Sets up a fresh shared page and attaches to it at index 0. Only the
    /// frontend does this, before it grants the page to the backend.
    pub fn init(mem: M) -> Result<Self, RingError> {
        let ring = Self::attach(mem, 0)?;
        RingHeader::INITIAL.store(&ring.mem);
        Ok(ring)
    }

    /// Resumes on a page whose indices already stand at `idx` (for example
    /// after a reconnect), without touching the shared header.
    pub fn attach(mem: M, idx: u32) -> Result<Self, RingError> {
        let size = checked_size(&mem, E)?;
        Ok(Self {
            mem,
            size,
            req_prod_pvt: idx,
            req_published: idx,
            rsp_cons: idx,
        })
    }

    /// Number of slots.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// The shared memory, e.g. to notify through or to inspect in tests.
    pub fn memory(&self) -> &M {
        &self.mem
    }

    /// Next request index to be filled.
    pub fn req_prod_pvt(&self) -> u32 {
        self.req_prod_pvt
    }

    /// Next response index to be consumed.
    pub fn rsp_cons(&self) -> u32 {
        self.rsp_cons
    }

    /// Slots not taken by a request still waiting for its response.
    pub fn free_requests(&self) -> u32 {
        self.size
            .saturating_sub(self.req_prod_pvt.wrapping_sub(self.rsp_cons))
    }

    /// Whether another request would overwrite an unanswered one.
    pub fn is_full(&self) -> bool {
        self.free_requests() == 0
    }

    /// Copies a request into the next slot without publishing it.
    pub fn push_request(&mut self, entry: &[u8; E]) -> Result<(), RingError> {
        if self.is_full() {
            return Err(RingError::Full);
        }
        let off = slot_offset(self.req_prod_pvt, self.size, E);
        self.mem.write_bytes(off, entry);
        self.req_prod_pvt = self.req_prod_pvt.wrapping_add(1);
        Ok(())
    }

    /// Makes staged requests visible and says whether the backend must be
    /// sent an event (it asked to be woken at an index we just passed).
    pub fn publish_requests(&mut self) -> bool {
        let old = self.req_published;
        let new = self.req_prod_pvt;
        // Slot contents must land before the index that exposes them.
        self.mem.fence(Fence::Write);
        self.mem.write_u32(offsets::REQ_PROD, new);
        // The new index must be visible before we sample req_event, or a
        // backend going to sleep in between would miss both.
        self.mem.fence(Fence::Full);
        let event = self.mem.read_u32(offsets::REQ_EVENT);
        self.req_published = new;
        needs_notify(old, new, event)
    }

    /// Responses the backend has published that we have not consumed.
    ///
    /// Fails if the backend claims more responses than the ring holds (the
    /// `RING_RESPONSE_PROD_OVERFLOW` check) or more than we have requests
    /// outstanding, which would let it rewind our free-slot accounting.
    pub fn pending_responses(&self) -> Result<u32, RingError> {
        let prod = self.mem.read_u32(offsets::RSP_PROD);
        self.mem.fence(Fence::Read);
        let n = prod.wrapping_sub(self.rsp_cons);
        let outstanding = self.req_published.wrapping_sub(self.rsp_cons);
        if n > self.size || n > outstanding {
            return Err(RingError::ProducerOverflow {
                prod,
                size: self.size,
            });
        }
        Ok(n)
    }

    /// Copies out the next response, if the backend has published one.
    pub fn take_response(&mut self) -> Result<Option<[u8; E]>, RingError> {
        if self.pending_responses()? == 0 {
            return Ok(None);
        }
        let mut entry = [0u8; E];
        self.mem
            .read_bytes(slot_offset(self.rsp_cons, self.size, E), &mut entry);
        self.rsp_cons = self.rsp_cons.wrapping_add(1);
        Ok(Some(entry))
    }

    /// Call before sleeping: asks for an event on the next response, then
    /// checks again so a response published meanwhile is not missed.
    /// `Ok(true)` means there is work and the caller must not sleep.
    pub fn final_check_for_responses(&mut self) -> Result<bool, RingError> {
        if self.pending_responses()? > 0 {
            return Ok(true);
        }
        self.mem
            .write_u32(offsets::RSP_EVENT, self.rsp_cons.wrapping_add(1));
        self.mem.fence(Fence::Full);
        Ok(self.pending_responses()? > 0)
    }
}
