//! Physical memory the hypervisor owns: the stage-2 table pool, domain RAM
//! (zeroed and loaded at every (re)start), and the device tree and bundle
//! the boot loader left in RAM. The EL2 map is an identity map, so a
//! physical address is also the address to dereference.

use hv_core::stage2::TableMemory;

const POOL_FRAMES: usize = 256;

#[repr(C, align(4096))]
struct Frames([[u64; 512]; POOL_FRAMES]);

static mut POOL: Frames = Frames([[0; 512]; POOL_FRAMES]);
static NEXT: spin::Mutex<usize> = spin::Mutex::new(0);

/// A domain's page-table pool: frames carved from the hypervisor's pool at
/// domain creation, never returned, never shared.
pub struct TablePool {
    first: usize,
    count: usize,
    used: usize,
}

impl TablePool {
    /// Reserves `count` frames (boot time only); `None` when the hypervisor's
    /// pool is exhausted.
    pub fn reserve(count: usize) -> Option<Self> {
        let mut next = NEXT.lock();
        if *next + count > POOL_FRAMES {
            return None;
        }
        let first = *next;
        *next += count;
        Some(TablePool { first, count, used: 0 })
    }

    fn frame_ptr(frame: u64) -> *mut u64 {
        frame as *mut u64
    }
}

impl TableMemory for TablePool {
    fn alloc_frame(&mut self) -> Option<u64> {
        if self.used == self.count {
            return None;
        }
        let idx = self.first + self.used;
        self.used += 1;
        // SAFETY: `idx` < POOL_FRAMES and the frame belongs to this pool
        // alone (reserved under NEXT's lock); only its address is taken.
        let addr = unsafe { core::ptr::addr_of_mut!(POOL.0[idx]) as u64 };
        Some(addr)
    }

    fn read(&self, frame: u64, index: usize) -> u64 {
        // SAFETY: `frame` came from `alloc_frame` (a 4 KiB pool frame) and
        // `index` < 512 as stage2 computes it from 9 address bits.
        unsafe { core::ptr::read_volatile(Self::frame_ptr(frame).add(index & 511)) }
    }

    fn write(&mut self, frame: u64, index: usize, value: u64) {
        // SAFETY: as for `read`; the table is not yet live in VTTBR_EL2 while
        // it is built, and afterwards never rewritten.
        unsafe { core::ptr::write_volatile(Self::frame_ptr(frame).add(index & 511), value) }
    }
}

/// Zeroes a domain's RAM and copies its pristine blobs (image, initrd,
/// device tree) in at their offsets.
///
/// The caller guarantees `[pa, pa+size)` is this domain's RAM (checked at
/// domain creation against the hypervisor image, the bundle and the DTB)
/// and that no vCPU of the domain is running. The bundle checked that every
/// `offset + blob.len()` lies within `size`.
pub fn load_domain_ram(pa: u64, size: u64, blobs: &[(u64, &[u8])]) {
    super::cache::zero_for_guest(pa, size);
    copy_blobs(pa, size, blobs);
}

/// Copies the blobs into RAM that is already scrubbed (same contract as
/// `load_domain_ram`).
pub fn copy_blobs(pa: u64, size: u64, blobs: &[(u64, &[u8])]) {
    // SAFETY: per the contract, the range is this domain's idle RAM; blobs
    // live in the bundle outside it (no overlap) and each lands inside it.
    unsafe {
        for &(offset, blob) in blobs {
            if offset.saturating_add(blob.len() as u64) <= size {
                core::ptr::copy_nonoverlapping(blob.as_ptr(), (pa + offset) as *mut u8, blob.len());
            }
        }
    }
    // The zeroed RAM is clean already; only the copied blobs need cleaning.
    for &(offset, blob) in blobs {
        if !blob.is_empty() && offset.saturating_add(blob.len() as u64) <= size {
            super::cache::clean_for_guest(pa + offset, blob.len() as u64);
        }
    }
}

/// A byte slice over memory the boot loader handed us (bundle, DTB).
///
/// # Safety
/// `[addr, addr+len)` must be RAM that nothing writes for the rest of the
/// hypervisor's life.
pub unsafe fn boot_blob(addr: u64, len: usize) -> &'static [u8] {
    // SAFETY: per the function's contract.
    unsafe { core::slice::from_raw_parts(addr as *const u8, len) }
}

/// Addresses of the hypervisor image in memory.
pub fn image_range() -> (u64, u64) {
    extern "C" {
        static __image_start: u8;
        static __image_end: u8;
    }
    // Linker symbols: only their addresses are taken.
    (core::ptr::addr_of!(__image_start) as u64, core::ptr::addr_of!(__image_end) as u64)
}
