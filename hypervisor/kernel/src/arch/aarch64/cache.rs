//! Cache maintenance for memory a guest may read with its MMU and caches off:
//! clean and invalidate, so no stale line survives once it turns caches on.

const LINE: usize = 64;

/// Cleans `[start, start+len)` to the point of coherency and invalidates the
/// instruction cache, after writing a guest image.
///
/// # Safety
/// The range must be memory mapped at EL2 (cleaning never changes it).
pub(in crate::arch) unsafe fn clean_for_guest(start: u64, len: u64) {
    // SAFETY: the same contract.
    unsafe { clean_dcache(start, len) };
    // SAFETY: instruction-cache invalidation; no memory operands.
    unsafe { core::arch::asm!("ic ialluis", "dsb sy", "isb", options(nostack)) };
}

/// Cleans and invalidates `[start, start+len)` in the data caches to the
/// point of coherency (set/way emulation needs no more).
///
/// # Safety
/// The range must be memory mapped at EL2 (cleaning never changes it).
pub(in crate::arch) unsafe fn clean_dcache(start: u64, len: u64) {
    let mut a = start as usize & !(LINE - 1);
    let end = start.saturating_add(len) as usize;
    while a < end {
        // SAFETY: data-cache clean by address of memory mapped at EL2 (the
        // function's contract); it has no effect on contents.
        unsafe { core::arch::asm!("dc civac, {}", in(reg) a, options(nostack)) };
        a += LINE;
    }
    // SAFETY: a barrier; no memory operands.
    unsafe { core::arch::asm!("dsb sy", options(nostack)) };
}

/// Zeroes `[start, start+len)` and cleans it to the point of coherency, so a
/// guest reading with caches off sees zeros and no dirty line of ours can
/// later be evicted over what it writes. `DC ZVA` zeroes a whole block per
/// instruction without reading memory first; where it is prohibited (or the
/// range is not block aligned) plain stores do it.
///
/// # Safety
/// The caller owns the range: mapped at EL2, and nobody else (no vCPU, no
/// other code) uses it meanwhile.
pub(in crate::arch) unsafe fn zero_for_guest(start: u64, len: u64) {
    let dczid = super::sysreg::read!(dczid_el0);
    let block = 4u64 << (dczid & 0xf);
    let zva = dczid & (1 << 4) == 0 && start % block == 0 && len % block == 0 && block >= LINE as u64;
    if !zva {
        // SAFETY: the caller owns the range and EL2 maps it (the contract),
        // which is all both the stores and `clean_for_guest` need.
        unsafe {
            core::ptr::write_bytes(start as *mut u8, 0, len as usize);
            clean_for_guest(start, len);
        }
        return;
    }
    let mut a = start;
    while a < start + len {
        // SAFETY: zeroes one block of memory the caller owns, then cleans
        // and invalidates its lines; `a` is block aligned and inside the range.
        unsafe { core::arch::asm!("dc zva, {}", in(reg) a, options(nostack)) };
        let mut l = a;
        while l < a + block {
            // SAFETY: cache maintenance by address inside the same block.
            unsafe { core::arch::asm!("dc civac, {}", in(reg) l, options(nostack)) };
            l += LINE as u64;
        }
        a += block;
    }
    // SAFETY: barrier; no memory operands.
    unsafe { core::arch::asm!("dsb sy", options(nostack)) };
}
