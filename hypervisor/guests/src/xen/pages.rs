//! Page-aligned memory a guest shares: pages it allocates to grant, and
//! the pages the hypervisor gives it (grant frames, the xenstore ring,
//! shared_info). The only unsafe code of the Xen platform besides the
//! hypercall instruction.
//!
//! The guest runs on an identity map ([`crate::rt::mmu_on`]), so an
//! address here is also the guest-physical address its frame number
//! comes from.

use alloc::alloc::{alloc_zeroed, dealloc, Layout};
use core::arch::asm;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU16, AtomicU64, AtomicU8};

use xen_abi::io::ring::{Fence, RingMemory};

pub const PAGE: usize = 4096;

/// Whole pages at a fixed address, accessed volatile or atomically: the
/// peer (another domain, or the hypervisor) may write them at any time.
pub struct Pages {
    base: NonNull<u8>,
    len: usize,
    /// Allocated here (and freed by [`Pages::free`]) rather than given.
    owned: bool,
}

// SAFETY: the memory is only ever accessed through volatile or atomic
// operations, which are sound from any thread.
unsafe impl Send for Pages {}
// SAFETY: as above; `&Pages` hands out no plain references.
unsafe impl Sync for Pages {}

impl Pages {
    /// `n` fresh zeroed pages from the heap; `None` if it is exhausted.
    pub fn alloc(n: usize) -> Option<Self> {
        let layout = Layout::from_size_align(n.checked_mul(PAGE)?, PAGE).ok()?;
        if layout.size() == 0 {
            return None;
        }
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { alloc_zeroed(layout) };
        Some(Self { base: NonNull::new(p)?, len: layout.size(), owned: true })
    }

    /// The `n` pages at guest-physical `addr`, which the hypervisor gave
    /// this domain (grant frames, the store ring).
    ///
    /// # Safety
    /// The range must be this domain's RAM, page-aligned, outside the heap,
    /// stack and image, and not wrapped by another `Pages`.
    pub unsafe fn given(addr: u64, n: usize) -> Option<Self> {
        if addr % PAGE as u64 != 0 {
            return None;
        }
        Some(Self { base: NonNull::new(addr as *mut u8)?, len: n.checked_mul(PAGE)?, owned: false })
    }

    /// Frame number of page `i` (the identity map makes it the address's).
    pub fn gfn(&self, i: usize) -> u64 {
        (self.base.as_ptr() as u64 + (i * PAGE) as u64) >> 12
    }

    /// Returns allocated pages to the heap (given pages are kept).
    pub fn free(self) {
        if self.owned {
            let layout = Layout::from_size_align(self.len, PAGE).expect("layout made in alloc");
            // SAFETY: allocated in `alloc` with exactly this layout; `self`
            // is consumed, so nothing accesses it afterwards.
            unsafe { dealloc(self.base.as_ptr(), layout) };
        }
    }

    fn check(&self, offset: usize, len: usize, align: usize) -> bool {
        offset % align == 0 && offset.checked_add(len).is_some_and(|e| e <= self.len)
    }

    /// The aligned `u16` at `offset` (bounds and alignment checked).
    pub fn atomic_u16(&self, offset: usize) -> Option<&AtomicU16> {
        // SAFETY: in range and 2-byte aligned; the pages live as long as `self`.
        self.check(offset, 2, 2).then(|| unsafe { AtomicU16::from_ptr(self.base.as_ptr().add(offset).cast()) })
    }

    /// The aligned `u64` at `offset` (bounds and alignment checked).
    pub fn atomic_u64(&self, offset: usize) -> Option<&AtomicU64> {
        // SAFETY: in range and 8-byte aligned; the pages live as long as `self`.
        self.check(offset, 8, 8).then(|| unsafe { AtomicU64::from_ptr(self.base.as_ptr().add(offset).cast()) })
    }

    /// The byte at `offset` (bounds checked).
    pub fn atomic_u8(&self, offset: usize) -> Option<&AtomicU8> {
        // SAFETY: in range; the pages live as long as `self`.
        self.check(offset, 1, 1).then(|| unsafe { AtomicU8::from_ptr(self.base.as_ptr().add(offset)) })
    }
}

impl RingMemory for Pages {
    fn len(&self) -> usize {
        self.len
    }

    fn read_u32(&self, offset: usize) -> u32 {
        if !self.check(offset, 4, 4) {
            return 0;
        }
        // SAFETY: in range and aligned.
        unsafe { self.base.as_ptr().add(offset).cast::<u32>().read_volatile() }
    }

    fn write_u32(&self, offset: usize, value: u32) {
        if self.check(offset, 4, 4) {
            // SAFETY: in range and aligned.
            unsafe { self.base.as_ptr().add(offset).cast::<u32>().write_volatile(value) }
        }
    }

    fn read_bytes(&self, offset: usize, buf: &mut [u8]) {
        if !self.check(offset, buf.len(), 1) {
            buf.fill(0);
            return;
        }
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: `offset + i` is in range (checked above).
            *b = unsafe { self.base.as_ptr().add(offset + i).read_volatile() };
        }
    }

    fn write_bytes(&self, offset: usize, data: &[u8]) {
        if !self.check(offset, data.len(), 1) {
            return;
        }
        // Bytes up to an 8-byte boundary, whole words, then the tail: a
        // frame is hundreds of KiB, so the word loop is kept tight.
        let head = (8 - (self.base.as_ptr() as usize + offset) % 8) % 8;
        let head = head.min(data.len());
        let (first, rest) = data.split_at(head);
        let words = rest.chunks_exact(8);
        let tail = words.remainder();
        for (i, &b) in first.iter().enumerate() {
            // SAFETY: `offset + i` is in range (checked above).
            unsafe { self.base.as_ptr().add(offset + i).write_volatile(b) };
        }
        let at = offset + head;
        // SAFETY: `at` is 8-byte aligned (the head took care of it) and the
        // words end within `offset + data.len()`, which is in range.
        let dst = unsafe { self.base.as_ptr().add(at).cast::<u64>() };
        let mut n = 0;
        for w in words {
            let v = u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            // SAFETY: word `n` lies within the words counted above.
            unsafe { dst.add(n).write_volatile(v) };
            n += 1;
        }
        let at = at + n * 8;
        for (i, &b) in tail.iter().enumerate() {
            // SAFETY: in range: the tail ends at `offset + data.len()`.
            unsafe { self.base.as_ptr().add(at + i).write_volatile(b) };
        }
    }

    fn fence(&self, kind: Fence) {
        // SAFETY: barriers have no operands and no memory effects of their own.
        unsafe {
            match kind {
                // Armv7-A has no load-only barrier: the full one serves.
                #[cfg(target_arch = "aarch64")]
                Fence::Read => asm!("dmb ishld", options(nostack)),
                #[cfg(target_arch = "arm")]
                Fence::Read => asm!("dmb ish", options(nostack)),
                Fence::Write => asm!("dmb ishst", options(nostack)),
                Fence::Full => asm!("dmb ish", options(nostack)),
            }
        }
    }
}
