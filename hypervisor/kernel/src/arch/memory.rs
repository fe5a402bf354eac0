//! Physical memory the hypervisor owns: the stage-2 table pool, domain RAM
//! (claimed once at boot, zeroed and loaded at every (re)start), and the
//! device tree and bundle the boot loader left in RAM. The EL2 map is an
//! identity map, so a physical address is also the address to dereference;
//! outside this module only checked handles (`DomainRam`, `TablePool`) are.

use hv_core::stage2::TableMemory;

/// Table frames for every domain: a backend's 4 KiB-page stage 2 takes
/// one per 2 MiB of its RAM (128 for 256 MiB), the others a handful.
const POOL_FRAMES: usize = 512;

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

    /// The pool's frame at `frame`, if it is one this pool handed out:
    /// the trait passes addresses, so each is checked before use.
    fn frame_ptr(&self, frame: u64) -> Option<*mut u64> {
        // SAFETY: only the address of the pool's first frame is taken.
        let base = unsafe { core::ptr::addr_of_mut!(POOL.0[0]) as u64 };
        let idx = frame.checked_sub(base)? / 4096;
        let ours = frame % 4096 == 0 && (self.first as u64..(self.first + self.used) as u64).contains(&idx);
        ours.then_some(frame as *mut u64)
    }
}

/// The root table of a domain's stage-2 translation: only a frame of a
/// domain's table pool can become one, so VTTBR_EL2 never points elsewhere.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stage2Root(u64);

impl Stage2Root {
    pub(super) fn addr(self) -> u64 {
        self.0
    }
}

impl TablePool {
    /// `frame` (a stage-2 root built in this pool) as a root to install.
    pub fn root(&self, frame: u64) -> Option<Stage2Root> {
        self.frame_ptr(frame).map(|_| Stage2Root(frame))
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
        let Some(p) = self.frame_ptr(frame) else { return 0 };
        // SAFETY: `p` is a 4 KiB frame of this pool (`frame_ptr` checked)
        // and `index & 511` keeps the access inside it.
        unsafe { core::ptr::read_volatile(p.add(index & 511)) }
    }

    fn write(&mut self, frame: u64, index: usize, value: u64) {
        let Some(p) = self.frame_ptr(frame) else { return };
        // SAFETY: `p` is a frame of this pool (`frame_ptr` checked) and
        // `index & 511` stays inside it. A table is written while it is
        // built, before VTTBR_EL2 points at it, or, for a backend's granted
        // pages, one 8-byte leaf at a time (single-copy atomic for the
        // table walker) followed by `flush_tlbs_of` for its VMID.
        unsafe { core::ptr::write_volatile(p.add(index & 511), value) }
    }
}

/// RAM bounds and what domain RAM must never cover (hypervisor image,
/// bundle, device tree), recorded once at boot by the handoff.
struct Layout {
    /// Every RAM bank the device tree declares, untrimmed.
    banks: hv_core::el2_map::RamBanks,
    /// The part of it the EL2 map reaches: domain RAM must lie here.
    mapped: (u64, u64),
    reserved: heapless::Vec<(u64, u64), 4>,
    claimed: heapless::Vec<(u64, u64), { hv_core::bundle::MAX_DOMAINS }>,
}

static LAYOUT: spin::Mutex<Layout> =
    spin::Mutex::new(Layout { banks: hv_core::el2_map::RamBanks::EMPTY, mapped: (0, 0), reserved: heapless::Vec::new(), claimed: heapless::Vec::new() });

/// `inner` (start, length) lies wholly inside `outer`.
pub fn within(outer: (u64, u64), inner: (u64, u64)) -> bool {
    let (Some(oe), Some(ie)) = (outer.0.checked_add(outer.1), inner.0.checked_add(inner.1)) else { return false };
    inner.0 >= outer.0 && ie <= oe
}

use hv_core::el2_map::overlaps;

/// Whether `range` touches RAM, in any bank the device tree declares
/// (device passthrough must not).
pub fn overlaps_ram(range: (u64, u64)) -> bool {
    // The bank the hypervisor runs from is one of them.
    LAYOUT.lock().banks.touches(range)
}

/// Records RAM and the ranges in it that are not domain RAM (boot, once).
pub(super) fn reserve(ram: (u64, u64), banks: hv_core::el2_map::RamBanks, reserved: &[(u64, u64)]) {
    let mut l = LAYOUT.lock();
    l.banks = banks;
    l.mapped = super::mmu::reachable(ram);
    for &r in reserved {
        let _ = l.reserved.push(r);
    }
}

/// One domain's RAM. Only a range that `claim` checked exists as a
/// `DomainRam`, so every method may write anywhere inside it.
#[derive(Clone, Copy, Debug)]
pub struct DomainRam {
    pa: u64,
    size: u64,
}

/// Why a domain's RAM was refused.
#[derive(Debug)]
pub enum ClaimError {
    /// Not inside the RAM the device tree declares and EL2 maps.
    OutsideRam,
    /// Covers the hypervisor, the bundle or the device tree.
    Reserved,
    /// Covers another domain's RAM.
    Taken,
    /// Not 4 KiB aligned, or empty.
    Unaligned,
}

impl DomainRam {
    /// Claims `[pa, pa+size)` for one domain, once: it must be RAM, miss
    /// every reserved range and every range claimed before.
    pub fn claim(pa: u64, size: u64) -> Result<DomainRam, ClaimError> {
        let mut l = LAYOUT.lock();
        if size == 0 || pa % 4096 != 0 || size % 4096 != 0 {
            return Err(ClaimError::Unaligned);
        }
        if !within(l.mapped, (pa, size)) {
            return Err(ClaimError::OutsideRam);
        }
        if l.reserved.iter().any(|&r| overlaps(r, (pa, size))) {
            return Err(ClaimError::Reserved);
        }
        if l.claimed.iter().any(|&r| overlaps(r, (pa, size))) || l.claimed.push((pa, size)).is_err() {
            return Err(ClaimError::Taken);
        }
        Ok(DomainRam { pa, size })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// `[offset, offset+len)` clipped to the domain's RAM, as (pa, len).
    fn span(&self, offset: u64, len: u64) -> Option<(u64, u64)> {
        let start = offset.min(self.size);
        let len = len.min(self.size - start);
        (len > 0).then_some((self.pa + start, len))
    }

    /// Zeroes `[offset, offset+len)` of the RAM (clipped to it) and cleans
    /// it to the point of coherency. The domain must not be running.
    pub fn zero(&self, offset: u64, len: u64) {
        if let Some((pa, len)) = self.span(offset, len) {
            // SAFETY: the span lies inside RAM claimed for this domain
            // alone, which the EL2 identity map covers as normal memory.
            unsafe { super::cache::zero_for_guest(pa, len) }
        }
    }

    /// Cleans and invalidates `[offset, offset+len)` (clipped) to the point
    /// of coherency, on behalf of the guest (set/way emulation).
    pub fn clean_invalidate(&self, offset: u64, len: u64) {
        if let Some((pa, len)) = self.span(offset, len) {
            // SAFETY: as for `zero`; cleaning does not change contents.
            unsafe { super::cache::clean_dcache(pa, len) }
        }
    }

    /// Copies each blob in at its offset (a blob that would not fit is
    /// skipped; the bundle checked they all do) and cleans it. The domain
    /// must not be running.
    pub fn copy_blobs(&self, blobs: &[(u64, &[u8])]) {
        for &(offset, blob) in blobs {
            if blob.is_empty() || offset.checked_add(blob.len() as u64).map_or(true, |end| end > self.size) {
                continue;
            }
            // SAFETY: the destination lies inside this domain's RAM (checked
            // just above); blobs live in the bundle, which no claimed range
            // overlaps.
            unsafe {
                core::ptr::copy_nonoverlapping(blob.as_ptr(), (self.pa + offset) as *mut u8, blob.len());
                super::cache::clean_for_guest(self.pa + offset, blob.len() as u64);
            }
        }
    }
}

/// Guest data, for hypercalls: the domain's own RAM, which its vCPUs write
/// concurrently. Every access is bounds-checked against the RAM and done
/// with volatile or atomic operations, so a racing guest only ever changes
/// what it reads back, never the hypervisor's own state.
impl DomainRam {
    fn checked(&self, offset: u64, len: usize) -> Option<u64> {
        let end = offset.checked_add(len as u64)?;
        (end <= self.size).then_some(self.pa + offset)
    }

    /// Copies `buf.len()` bytes from `offset`; false (nothing read) if the
    /// range leaves the RAM.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> bool {
        let Some(pa) = self.checked(offset, buf.len()) else { return false };
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: inside this domain's RAM (checked above), which the
            // EL2 identity map covers as normal memory; a volatile read of a
            // byte the guest may be writing yields some byte, never UB.
            *b = unsafe { core::ptr::read_volatile((pa + i as u64) as *const u8) };
        }
        true
    }

    /// Writes `data` at `offset`; false (nothing written) if the range
    /// leaves the RAM.
    pub fn write(&self, offset: u64, data: &[u8]) -> bool {
        let Some(pa) = self.checked(offset, data.len()) else { return false };
        for (i, b) in data.iter().enumerate() {
            // SAFETY: as for `read`; the RAM is this domain's alone.
            unsafe { core::ptr::write_volatile((pa + i as u64) as *mut u8, *b) };
        }
        true
    }

    /// The 8-byte word at `offset` (8-aligned, inside the RAM), for
    /// atomic updates the guest races with (event bits).
    pub fn word(&self, offset: u64) -> Option<&'static core::sync::atomic::AtomicU64> {
        let pa = self.checked(offset, 8).filter(|_| offset % 8 == 0)?;
        // The word is aligned and inside RAM claimed for this domain for
        // the hypervisor's life; the guest accesses it with its own atomics
        // (the Xen ABI says so) and the hypervisor only atomically. The
        // scrub of a restart writes it plainly, but only after the
        // domain's Xen state is reset, so no caller holds a word then.
        // SAFETY: aligned, this domain's RAM, accessed only atomically (above).
        Some(unsafe { &*(pa as *const core::sync::atomic::AtomicU64) })
    }

    /// The 4-byte word at `offset` (4-aligned, inside the RAM): ring
    /// indices the guest updates as whole words.
    pub fn word32(&self, offset: u64) -> Option<&'static core::sync::atomic::AtomicU32> {
        let pa = self.checked(offset, 4).filter(|_| offset % 4 == 0)?;
        // SAFETY: as for `word`, at 4-byte alignment.
        Some(unsafe { &*(pa as *const core::sync::atomic::AtomicU32) })
    }

    /// The byte at `offset` inside the RAM, for atomic updates.
    pub fn byte(&self, offset: u64) -> Option<&'static core::sync::atomic::AtomicU8> {
        let pa = self.checked(offset, 1)?;
        // SAFETY: as for `word` (a byte is always aligned).
        Some(unsafe { &*(pa as *const core::sync::atomic::AtomicU8) })
    }
}

/// A byte slice over memory the boot loader handed us (bundle, DTB).
///
/// # Safety
/// `[addr, addr+len)` must be RAM that nothing writes for the rest of the
/// hypervisor's life.
pub(super) unsafe fn boot_blob(addr: u64, len: usize) -> &'static [u8] {
    // SAFETY: per the function's contract.
    unsafe { core::slice::from_raw_parts(addr as *const u8, len) }
}

/// Addresses of the hypervisor image in memory.
pub(super) fn image_range() -> (u64, u64) {
    extern "C" {
        static __image_start: u8;
        static __image_end: u8;
    }
    // Linker symbols: only their addresses are taken.
    (core::ptr::addr_of!(__image_start) as u64, core::ptr::addr_of!(__image_end) as u64)
}
