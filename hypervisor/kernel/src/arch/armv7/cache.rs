//! Cache maintenance for memory a guest may read with its MMU and caches
//! off: clean and invalidate by address (to the point of coherency), so no
//! stale line survives once it turns caches on.

use super::sysreg::{dsb_sy, isb, read32, write32};

/// The smallest data cache line (CTR.DminLine, in words, log2).
fn line() -> u64 {
    4 << ((read32!(0, c0, c0, 1) >> 16) & 0xf)
}

/// Cleans and invalidates `[start, start + len)` from the data cache.
///
/// # Safety
/// The range lies in the HYP map.
pub(in crate::arch) unsafe fn clean_dcache(start: u64, len: u64) {
    let line = line();
    let mut a = start & !(line - 1);
    let end = start.saturating_add(len);
    while a < end {
        write32!(0, c7, c14, 1, a as u32); // DCCIMVAC
        a += line;
    }
    dsb_sy();
}

/// As `clean_dcache`, and the instruction caches and branch predictors of
/// every CPU: the range may hold code.
///
/// # Safety
/// As for `clean_dcache`.
pub(in crate::arch) unsafe fn clean_for_guest(start: u64, len: u64) {
    // SAFETY: the same contract.
    unsafe { clean_dcache(start, len) };
    write32!(0, c7, c1, 0, 0); // ICIALLUIS
    write32!(0, c7, c1, 6, 0); // BPIALLIS
    dsb_sy();
    isb();
}

/// Zeroes `[start, start + len)` and cleans it for a guest.
///
/// # Safety
/// The caller owns the range, and the HYP map covers it as normal memory.
pub(in crate::arch) unsafe fn zero_for_guest(start: u64, len: u64) {
    // SAFETY: per the contract (the map reaches only the low 4 GiB, so
    // the address fits a pointer).
    unsafe {
        core::ptr::write_bytes(start as usize as *mut u8, 0, len as usize);
        clean_for_guest(start, len);
    }
}
