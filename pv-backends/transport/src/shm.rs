//! Memory shared with another domain, behind a cloneable handle.

use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::{Fence, GrantRef, RingMemory};

/// Pages shared with a peer: granted by us or mapped from the peer.
///
/// Accesses go through [`RingMemory`] (volatile or atomic underneath), as
/// the peer may write at any time. Out-of-range accesses read zeros and
/// write nothing; callers still check ranges first so that a hostile
/// length is reported rather than silently truncated.
pub trait SharedMemory: RingMemory + Send + Sync {
    /// The grant references of the pages, in order.
    fn grefs(&self) -> &[GrantRef];
}

/// A cloneable handle to shared memory, usable directly as ring memory.
#[derive(Clone)]
pub struct Shm(pub Arc<dyn SharedMemory>);

impl Shm {
    /// Wraps a transport's memory; clones share it, and the pages are
    /// released (unmapped or revoked) when the last clone is dropped.
    pub fn new<M: SharedMemory + 'static>(mem: M) -> Self {
        Self(Arc::new(mem))
    }

    /// The grant references of the pages, in order (see
    /// [`SharedMemory::grefs`]).
    pub fn grefs(&self) -> &[GrantRef] {
        self.0.grefs()
    }

    /// Whether `[offset, offset + len)` lies inside the area.
    pub fn contains(&self, offset: u64, len: u64) -> bool {
        offset
            .checked_add(len)
            .is_some_and(|end| end <= self.0.len() as u64)
    }

    /// Copies `len` bytes out, or `None` if the range is outside the area.
    pub fn read_vec(&self, offset: u64, len: u64) -> Option<Vec<u8>> {
        if !self.contains(offset, len) {
            return None;
        }
        let mut v = alloc::vec![0u8; len as usize];
        self.0.read_bytes(offset as usize, &mut v);
        Some(v)
    }

    /// Copies `buf.len()` bytes out into `buf`, or returns `false` (and
    /// leaves `buf` alone) if the range is outside the area.
    pub fn read_into(&self, offset: u64, buf: &mut [u8]) -> bool {
        if !self.contains(offset, buf.len() as u64) {
            return false;
        }
        self.0.read_bytes(offset as usize, buf);
        true
    }

    /// Copies `data` in, or returns `false` if it would not fit.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> bool {
        if !self.contains(offset, data.len() as u64) {
            return false;
        }
        self.0.write_bytes(offset as usize, data);
        true
    }
}

impl core::fmt::Debug for Shm {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Shm")
            .field("len", &self.0.len())
            .field("grefs", &self.0.grefs().len())
            .finish()
    }
}

impl RingMemory for Shm {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn read_u32(&self, offset: usize) -> u32 {
        self.0.read_u32(offset)
    }
    fn write_u32(&self, offset: usize, value: u32) {
        self.0.write_u32(offset, value)
    }
    fn read_bytes(&self, offset: usize, buf: &mut [u8]) {
        self.0.read_bytes(offset, buf)
    }
    fn write_bytes(&self, offset: usize, data: &[u8]) {
        self.0.write_bytes(offset, data)
    }
    fn fence(&self, kind: Fence) {
        self.0.fence(kind)
    }
}
