//! The physical PL011 the hypervisor console writes to.

use core::sync::atomic::{AtomicU64, Ordering};

static BASE: AtomicU64 = AtomicU64::new(0x0900_0000);

const DR: usize = 0x00;
const FR: usize = 0x18;
const FR_TXFF: u32 = 1 << 5;

/// # Safety
/// `base` must be the board's PL011, mapped as device memory at EL2.
pub unsafe fn init(base: u64) {
    BASE.store(base, Ordering::Relaxed);
}

/// Writes `c` if the transmit FIFO has room; false (nothing written) if not.
pub fn try_put(c: u8) -> bool {
    let base = BASE.load(Ordering::Relaxed) as usize;
    // SAFETY: as for `put`.
    unsafe {
        if core::ptr::read_volatile((base + FR) as *const u32) & FR_TXFF != 0 {
            return false;
        }
        core::ptr::write_volatile((base + DR) as *mut u32, c as u32);
    }
    true
}

/// Writes `c`, waiting for room in the transmit FIFO.
pub fn put(c: u8) {
    let base = BASE.load(Ordering::Relaxed) as usize;
    // SAFETY: `base` is the board's PL011 (from the boot bundle, or QEMU
    // virt's default before it is read); it is mapped as Device memory by the
    // EL2 tables, and these are 32-bit register accesses at valid offsets.
    unsafe {
        while core::ptr::read_volatile((base + FR) as *const u32) & FR_TXFF != 0 {}
        core::ptr::write_volatile((base + DR) as *mut u32, c as u32);
    }
}
