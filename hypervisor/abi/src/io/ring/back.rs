//! The backend's half of a shared ring: consumes requests, produces responses.

use super::RingMemory;
use super::{checked_size, needs_notify, offsets, slot_offset, Fence, RingError};

/// The backend end of a ring of `E`-byte slots over memory `M`.
///
/// The backend never initialises the page; the frontend did that before
/// granting it.
pub struct BackRing<M, const E: usize> {
    mem: M,
    size: u32,
    /// Next response index to fill (private until published).
    rsp_prod_pvt: u32,
    /// The response index last written to the shared header.
    rsp_published: u32,
    /// Next request index to consume.
    req_cons: u32,
}

impl<M: RingMemory, const E: usize> BackRing<M, E> {
    /// Attaches to a page the frontend initialised, at index `idx`
    /// (0 for a fresh ring).
    pub fn attach(mem: M, idx: u32) -> Result<Self, RingError> {
        let size = checked_size(&mem, E)?;
        Ok(Self {
            mem,
            size,
            rsp_prod_pvt: idx,
            rsp_published: idx,
            req_cons: idx,
        })
    }

    /// Number of slots.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// The shared memory.
    pub fn memory(&self) -> &M {
        &self.mem
    }

    /// Next request index to be consumed.
    pub fn req_cons(&self) -> u32 {
        self.req_cons
    }

    /// Next response index to be filled.
    pub fn rsp_prod_pvt(&self) -> u32 {
        self.rsp_prod_pvt
    }

    /// Requests consumed but not yet answered.
    pub fn unanswered(&self) -> u32 {
        self.req_cons.wrapping_sub(self.rsp_prod_pvt)
    }

    /// Requests the frontend has published that we have not consumed.
    ///
    /// Fails if the frontend's producer index is more than a ring ahead of
    /// our oldest unanswered request (`RING_REQUEST_PROD_OVERFLOW`), or has
    /// moved back behind requests we already consumed.
    pub fn pending_requests(&self) -> Result<u32, RingError> {
        let prod = self.mem.read_u32(offsets::REQ_PROD);
        self.mem.fence(Fence::Read);
        let span = prod.wrapping_sub(self.rsp_prod_pvt);
        let avail = prod.wrapping_sub(self.req_cons);
        if span > self.size || avail > span {
            return Err(RingError::ProducerOverflow {
                prod,
                size: self.size,
            });
        }
        Ok(avail)
    }

    /// Copies out the next request, if one is published.
    ///
    /// Passing the check above also means `req_cons - rsp_prod_pvt` stays
    /// below the ring size (`RING_REQUEST_CONS_OVERFLOW` cannot trigger),
    /// so a response slot is always free for every consumed request.
    pub fn take_request(&mut self) -> Result<Option<[u8; E]>, RingError> {
        if self.pending_requests()? == 0 {
            return Ok(None);
        }
        let mut entry = [0u8; E];
        self.mem
            .read_bytes(slot_offset(self.req_cons, self.size, E), &mut entry);
        self.req_cons = self.req_cons.wrapping_add(1);
        Ok(Some(entry))
    }

    /// Writes the response for the oldest unanswered request into its slot
    /// (the slot that request came from) without publishing it.
    pub fn push_response(&mut self, entry: &[u8; E]) -> Result<(), RingError> {
        if self.unanswered() == 0 {
            return Err(RingError::NoRequestToAnswer);
        }
        let off = slot_offset(self.rsp_prod_pvt, self.size, E);
        self.mem.write_bytes(off, entry);
        self.rsp_prod_pvt = self.rsp_prod_pvt.wrapping_add(1);
        Ok(())
    }

    /// Makes staged responses visible and says whether the frontend must be
    /// sent an event.
    pub fn publish_responses(&mut self) -> bool {
        let old = self.rsp_published;
        let new = self.rsp_prod_pvt;
        self.mem.fence(Fence::Write);
        self.mem.write_u32(offsets::RSP_PROD, new);
        self.mem.fence(Fence::Full);
        let event = self.mem.read_u32(offsets::RSP_EVENT);
        self.rsp_published = new;
        needs_notify(old, new, event)
    }

    /// Call before sleeping: asks for an event on the next request, then
    /// checks again. `Ok(true)` means there is work and the caller must not
    /// sleep.
    pub fn final_check_for_requests(&mut self) -> Result<bool, RingError> {
        if self.pending_requests()? > 0 {
            return Ok(true);
        }
        self.mem
            .write_u32(offsets::REQ_EVENT, self.req_cons.wrapping_add(1));
        self.mem.fence(Fence::Full);
        Ok(self.pending_requests()? > 0)
    }
}
