//! The grant table a bare frontend shares pages through (v1 entries in
//! the grant frames the device tree's `/hypervisor` node names).

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use pv_transport::{DomId, Error, GrantRef, GrantTable, Result, SharedMemory, Shm};
use xen_abi::hypercall::grant_entry as ge;
use xen_abi::io::ring::{Fence, RingMemory};

use super::pages::Pages;

/// The table: its frames, the references not in use, and pages whose
/// grant a peer still held when they were let go.
pub struct Table {
    frames: Pages,
    free: spin::Mutex<Vec<GrantRef>>,
    stuck: spin::Mutex<Vec<(Vec<GrantRef>, Pages)>>,
}

impl Table {
    /// The table over `frames`; references below the reserved ones are
    /// left to the toolstack's conventions, as Linux does.
    pub fn new(frames: Pages) -> Self {
        let n = (frames.len() / ge::SIZE) as GrantRef;
        Self { frames, free: spin::Mutex::new((ge::RESERVED..n).rev().collect()), stuck: spin::Mutex::new(Vec::new()) }
    }

    fn flags(&self, gref: GrantRef) -> &core::sync::atomic::AtomicU16 {
        self.frames.atomic_u16(gref as usize * ge::SIZE).expect("references come from the free list")
    }

    fn grant(&self, gref: GrantRef, remote: DomId, gfn: u64, readonly: bool) {
        let at = gref as usize * ge::SIZE;
        let mut e = [0u8; 6];
        e[..2].copy_from_slice(&remote.to_le_bytes());
        e[2..].copy_from_slice(&(gfn as u32).to_le_bytes());
        self.frames.write_bytes(at + 2, &e);
        // Domain and frame before the flags that make them valid.
        self.frames.fence(Fence::Write);
        let flags = ge::GTF_PERMIT_ACCESS | if readonly { ge::GTF_READONLY } else { 0 };
        self.flags(gref).store(flags, Ordering::SeqCst);
    }

    /// Ends every grant of `grefs`, then gives them and `mem` back; while
    /// the peer still maps one, both wait in `stuck` (never reused).
    fn release(&self, grefs: Vec<GrantRef>, mem: Pages) {
        if grefs.iter().fold(true, |ok, &g| self.revoke(g) && ok) {
            self.free.lock().extend(grefs);
            mem.free();
        } else {
            self.stuck.lock().push((grefs, mem));
        }
    }

    /// Tries again to release what a peer held (it may have let go since).
    fn retry_stuck(&self) {
        let stuck = core::mem::take(&mut *self.stuck.lock());
        for (grefs, mem) in stuck {
            self.release(grefs, mem);
        }
    }

    /// Ends a grant unless the peer still has the page mapped.
    fn revoke(&self, gref: GrantRef) -> bool {
        let f = self.flags(gref);
        let mut cur = f.load(Ordering::SeqCst);
        loop {
            if cur & (ge::GTF_READING | ge::GTF_WRITING) != 0 {
                return false;
            }
            match f.compare_exchange(cur, 0, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
    }
}

/// The [`GrantTable`] of an endpoint.
pub struct Grants(pub &'static Table);

impl GrantTable for Grants {
    fn share(&self, remote: DomId, pages: usize, readonly: bool) -> Result<Shm> {
        if pages == 0 {
            return Err(Error::Invalid("zero pages"));
        }
        self.0.retry_stuck();
        let mem = Pages::alloc(pages).ok_or(Error::Invalid("out of memory"))?;
        if mem.gfn(pages - 1) > u64::from(u32::MAX) {
            mem.free();
            return Err(Error::Invalid("frame beyond a v1 entry"));
        }
        let grefs: Vec<GrantRef> = {
            let mut free = self.0.free.lock();
            if free.len() < pages {
                drop(free);
                mem.free();
                return Err(Error::Invalid("grant table full"));
            }
            let at = free.len() - pages;
            free.split_off(at)
        };
        for (i, &g) in grefs.iter().enumerate() {
            self.0.grant(g, remote, mem.gfn(i), readonly);
        }
        Ok(Shm(Arc::new(Granted { mem: Some(mem), grefs, table: self.0 })))
    }
}

/// Pages granted to a peer; revoked (and freed) when the last handle goes.
struct Granted {
    mem: Option<Pages>,
    grefs: Vec<GrantRef>,
    table: &'static Table,
}

impl Drop for Granted {
    fn drop(&mut self) {
        if let Some(m) = self.mem.take() {
            self.table.release(core::mem::take(&mut self.grefs), m);
        }
    }
}

impl Granted {
    fn m(&self) -> &Pages {
        self.mem.as_ref().expect("present until drop")
    }
}

impl RingMemory for Granted {
    fn len(&self) -> usize {
        self.m().len()
    }
    fn read_u32(&self, o: usize) -> u32 {
        self.m().read_u32(o)
    }
    fn write_u32(&self, o: usize, v: u32) {
        self.m().write_u32(o, v)
    }
    fn read_bytes(&self, o: usize, b: &mut [u8]) {
        self.m().read_bytes(o, b)
    }
    fn write_bytes(&self, o: usize, d: &[u8]) {
        self.m().write_bytes(o, d)
    }
    fn fence(&self, k: Fence) {
        self.m().fence(k)
    }
}

impl SharedMemory for Granted {
    fn grefs(&self) -> &[GrantRef] {
        &self.grefs
    }
}
