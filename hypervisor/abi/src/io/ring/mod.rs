//! Xen's shared request/response ring (`io/ring.h`).
//!
//! One page holds a 64-byte header and a power-of-two array of slots. The
//! frontend produces requests and consumes responses; the backend does the
//! opposite. Indices are free-running `u32` counters compared with wrapping
//! arithmetic, and a slot is `index & (size - 1)`.
//!
//! The peer is untrusted: every index read from the page is checked before
//! it selects a slot, and slots are copied out once before being decoded.

mod back;
mod front;
mod memory;
#[cfg(test)]
mod tests;

pub use back::BackRing;
pub use front::FrontRing;
pub use memory::{Fence, PageMemory, RingMemory};

use crate::io::wire::{exact, get_u32, put_u32, WireError};

/// Byte offsets of the shared header fields.
pub mod offsets {
    /// Last request index published by the frontend.
    pub const REQ_PROD: usize = 0;
    /// Request index at which the backend wants an event.
    pub const REQ_EVENT: usize = 4;
    /// Last response index published by the backend.
    pub const RSP_PROD: usize = 8;
    /// Response index at which the frontend wants an event.
    pub const RSP_EVENT: usize = 12;
    /// Four protocol-private bytes (netif smart-poll flag and the like).
    pub const PVT: usize = 16;
    /// Padding up to the first slot.
    pub const PAD: usize = 20;
    /// The first slot.
    pub const RING: usize = 64;
}

/// Size of the shared header that precedes the slots.
pub const HEADER_SIZE: usize = offsets::RING;

const _: () = assert!(offsets::PAD + 44 == HEADER_SIZE);
const _: () = assert!(offsets::PVT + 4 == offsets::PAD);

/// Number of slots for `entry_size`-byte entries in an `area_size`-byte
/// shared area: everything after the header, rounded down to a power of two
/// so indices can be masked. Zero if not even one entry fits.
pub const fn ring_size(area_size: usize, entry_size: usize) -> u32 {
    if entry_size == 0 || area_size < HEADER_SIZE {
        return 0;
    }
    let fit = (area_size - HEADER_SIZE) / entry_size;
    if fit == 0 {
        return 0;
    }
    let fit = if fit > u32::MAX as usize {
        u32::MAX
    } else {
        fit as u32
    };
    1 << (31 - fit.leading_zeros())
}

/// The event-index rule: after moving a producer from `old` to `new`, the
/// peer needs an event only if the index it asked to be woken at (`event`)
/// was passed, i.e. lies in `(old, new]` modulo 2^32.
pub const fn needs_notify(old: u32, new: u32, event: u32) -> bool {
    new.wrapping_sub(event) < new.wrapping_sub(old)
}

/// A misbehaving peer or a full ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// The shared area cannot hold the header and one slot.
    TooSmall {
        /// Bytes of shared memory offered.
        area: usize,
        /// Bytes per slot asked for.
        entry: usize,
    },
    /// No free slot: every request is still waiting for its response.
    Full,
    /// The peer's producer index claims more entries than the ring can hold,
    /// or points behind what we have already consumed.
    ProducerOverflow {
        /// The producer index the peer published.
        prod: u32,
        /// Slots in the ring.
        size: u32,
    },
    /// The backend tried to answer a request it has not consumed.
    NoRequestToAnswer,
}

/// The four indices of the shared header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingHeader {
    /// Requests the frontend has published (free-running).
    pub req_prod: u32,
    /// Request index at which the backend wants to be notified.
    pub req_event: u32,
    /// Responses the backend has published (free-running).
    pub rsp_prod: u32,
    /// Response index at which the frontend wants to be notified.
    pub rsp_event: u32,
}

impl RingHeader {
    /// The header as laid out on the page, padding included.
    pub const SIZE: usize = HEADER_SIZE;

    /// The state the frontend writes before anyone uses the ring: nothing
    /// produced, and both sides ask to be told about the first entry.
    pub const INITIAL: Self = Self {
        req_prod: 0,
        req_event: 1,
        rsp_prod: 0,
        rsp_event: 1,
    };

    /// The header bytes, with private and padding bytes zeroed.
    pub fn encode(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        put_u32(&mut b, offsets::REQ_PROD, self.req_prod);
        put_u32(&mut b, offsets::REQ_EVENT, self.req_event);
        put_u32(&mut b, offsets::RSP_PROD, self.rsp_prod);
        put_u32(&mut b, offsets::RSP_EVENT, self.rsp_event);
        b
    }

    /// Reads the indices; the private and padding bytes are not checked.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        exact::<{ Self::SIZE }>(bytes).map(Self::from_array)
    }

    fn from_array(b: &[u8; Self::SIZE]) -> Self {
        Self {
            req_prod: get_u32(b, offsets::REQ_PROD),
            req_event: get_u32(b, offsets::REQ_EVENT),
            rsp_prod: get_u32(b, offsets::RSP_PROD),
            rsp_event: get_u32(b, offsets::RSP_EVENT),
        }
    }

    /// Reads the current header from shared memory.
    pub fn load<M: RingMemory>(mem: &M) -> Self {
        let mut b = [0u8; Self::SIZE];
        mem.read_bytes(0, &mut b);
        Self::from_array(&b)
    }

    /// Writes the whole header (indices and zeroed padding) to memory.
    pub fn store<M: RingMemory>(&self, mem: &M) {
        mem.write_bytes(0, &self.encode());
    }
}

/// Checks the area and returns the slot count for `entry` bytes per slot.
fn checked_size<M: RingMemory>(mem: &M, entry: usize) -> Result<u32, RingError> {
    match ring_size(mem.len(), entry) {
        0 => Err(RingError::TooSmall {
            area: mem.len(),
            entry,
        }),
        n => Ok(n),
    }
}

/// Byte offset of the slot that free-running index `idx` selects.
fn slot_offset(idx: u32, size: u32, entry: usize) -> usize {
    HEADER_SIZE + ((idx & (size - 1)) as usize) * entry
}
