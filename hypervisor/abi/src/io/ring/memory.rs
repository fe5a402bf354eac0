//! The memory a shared ring lives in, seen through a safe interface.
//!
//! The real ring sits in a page shared with another domain; mapping it needs
//! `unsafe` code that belongs in the hypervisor or a driver, not in this
//! crate. Ring logic is therefore written against [`RingMemory`], and the
//! mapped-page implementation plugs in from outside.

use core::cell::Cell;

use crate::io::wire::XEN_PAGE_SIZE;

/// The ordering a ring operation needs at a given point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fence {
    /// Earlier reads complete before later reads (`xen_rmb`).
    Read,
    /// Earlier writes are visible before later writes (`xen_wmb`).
    Write,
    /// Full barrier between the earlier and later accesses (`xen_mb`).
    Full,
}

/// Byte-addressed access to memory shared with a peer domain.
///
/// Methods take `&self` because the peer may change the memory at any time:
/// an implementation over a mapped page uses volatile or atomic accesses, so
/// Rust's aliasing rules never assume it is stable. Offsets are always within
/// `len()`; the rings check the size once, when they are created.
pub trait RingMemory {
    /// Size of the shared area in bytes.
    fn len(&self) -> usize;
    /// Whether the area is empty (never true for a usable ring).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Reads a little-endian `u32` at a 4-byte-aligned offset.
    fn read_u32(&self, offset: usize) -> u32;
    /// Writes a little-endian `u32` at a 4-byte-aligned offset, as one store.
    fn write_u32(&self, offset: usize, value: u32);
    /// Copies `buf.len()` bytes out of the area, once, so the peer cannot
    /// change a slot between our checks and our use (no double fetch).
    fn read_bytes(&self, offset: usize, buf: &mut [u8]);
    /// Copies `data` into the area.
    fn write_bytes(&self, offset: usize, data: &[u8]);
    /// Orders accesses as the ring protocol requires.
    fn fence(&self, kind: Fence);
}

impl<M: RingMemory + ?Sized> RingMemory for &M {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn read_u32(&self, offset: usize) -> u32 {
        (**self).read_u32(offset)
    }
    fn write_u32(&self, offset: usize, value: u32) {
        (**self).write_u32(offset, value)
    }
    fn read_bytes(&self, offset: usize, buf: &mut [u8]) {
        (**self).read_bytes(offset, buf)
    }
    fn write_bytes(&self, offset: usize, data: &[u8]) {
        (**self).write_bytes(offset, data)
    }
    fn fence(&self, kind: Fence) {
        (**self).fence(kind)
    }
}

/// A 4 KiB page in ordinary memory, for tests and same-domain loopback.
///
/// Both ends of a ring can hold `&PageMemory` at once. Accesses outside the
/// page read as zero and write nowhere rather than panicking.
pub struct PageMemory {
    bytes: [Cell<u8>; XEN_PAGE_SIZE],
}

impl PageMemory {
    /// A zero-filled page.
    pub fn new() -> Self {
        Self {
            bytes: core::array::from_fn(|_| Cell::new(0)),
        }
    }

    /// A snapshot of the page contents.
    pub fn snapshot(&self) -> [u8; XEN_PAGE_SIZE] {
        core::array::from_fn(|i| self.bytes[i].get())
    }

    fn cells(&self, offset: usize, len: usize) -> Option<&[Cell<u8>]> {
        self.bytes.get(offset..offset.checked_add(len)?)
    }
}

impl Default for PageMemory {
    fn default() -> Self {
        Self::new()
    }
}

impl RingMemory for PageMemory {
    fn len(&self) -> usize {
        XEN_PAGE_SIZE
    }

    fn read_u32(&self, offset: usize) -> u32 {
        let mut b = [0u8; 4];
        self.read_bytes(offset, &mut b);
        u32::from_le_bytes(b)
    }

    fn write_u32(&self, offset: usize, value: u32) {
        self.write_bytes(offset, &value.to_le_bytes());
    }

    fn read_bytes(&self, offset: usize, buf: &mut [u8]) {
        match self.cells(offset, buf.len()) {
            Some(cells) => buf.iter_mut().zip(cells).for_each(|(b, c)| *b = c.get()),
            None => buf.fill(0),
        }
    }

    fn write_bytes(&self, offset: usize, data: &[u8]) {
        if let Some(cells) = self.cells(offset, data.len()) {
            cells.iter().zip(data).for_each(|(c, &b)| c.set(b));
        }
    }

    fn fence(&self, _kind: Fence) {
        // One address space, one thread (`Cell` is !Sync): nothing to order.
    }
}
