//! Cache maintenance for memory a guest may read with its MMU and caches off:
//! clean and invalidate, so no stale line survives once it turns caches on.

const LINE: usize = 64;

/// Cleans `[start, start+len)` to the point of coherency and invalidates the
/// instruction cache, after writing a guest image.
pub fn clean_for_guest(start: u64, len: u64) {
    let mut a = start as usize & !(LINE - 1);
    let end = (start + len) as usize;
    while a < end {
        // SAFETY: data-cache clean by address of memory the caller owns
        // (a domain's RAM); it has no effect on contents.
        unsafe { core::arch::asm!("dc civac, {}", in(reg) a, options(nostack)) };
        a += LINE;
    }
    // SAFETY: barrier plus instruction-cache invalidation; no memory operands.
    unsafe { core::arch::asm!("dsb sy", "ic ialluis", "dsb sy", "isb", options(nostack)) };
}
