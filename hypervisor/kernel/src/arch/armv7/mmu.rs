//! The HYP MMU (LPAE): turns on the map `arch::hyp_map` builds, with caches.

use super::super::hyp_map::{self, MAIR};
use super::sysreg::{self, read32, write32};

pub use hyp_map::{build, reachable};

/// The values `enable` wrote, for the secondary CPUs' entry code, which
/// turns its MMU on before it has a stack: HMAIR0, HTCR, HTTBR (low,
/// high), HSCTLR. Written before the primary's MMU is on, so they are in
/// memory, where a CPU with caches off reads them.
#[no_mangle]
pub static mut HYP_MMU_REGS: [u32; 5] = [0; 5];

/// HSCTLR bits cleared whatever reset left: TE (exceptions in Thumb), EE
/// (big-endian), FI, WXN (writable means never executable), A (alignment
/// checks).
const HSCTLR_CLEAR: u32 = 1 << 30 | 1 << 25 | 1 << 21 | 1 << 19 | 1 << 1;
/// M (MMU), C (data cache), I (instruction cache).
const HSCTLR_SET: u32 = 1 | 1 << 2 | 1 << 12;

/// Turns the HYP MMU and caches on.
///
/// # Safety
/// Once, on the primary CPU, before any secondary starts; `build` must
/// have run; the code, stack and data in use must lie in the identity map;
/// the boot loader left the data cache clean (the zImage boot protocol
/// asks it to).
pub unsafe fn enable() {
    // T0SZ=0 (4 GiB, walk from level 1), write-back inner-shareable walks.
    let htcr = (1 << 31) | (1 << 23) | (0b11 << 12) | (0b01 << 10) | (0b01 << 8);
    let root = hyp_map::root();
    let hsctlr = (read32!(4, c1, c0, 0) & !HSCTLR_CLEAR) | HSCTLR_SET;
    // SAFETY: only the primary writes them, once, before any secondary
    // starts (which reads them).
    unsafe { *(&raw mut HYP_MMU_REGS) = [MAIR as u32, htcr, root as u32, (root >> 32) as u32, hsctlr] };
    write32!(4, c10, c2, 0, MAIR as u32); // HMAIR0
    write32!(4, c10, c2, 1, 0); // HMAIR1
    write32!(4, c2, c0, 2, htcr);
    // SAFETY: HTTBR takes the table `build` filled, which maps this code.
    unsafe { core::arch::asm!("mcrr p15, 4, {}, {}, c2", in(reg) root as u32, in(reg) (root >> 32) as u32, options(nostack)) };
    sysreg::dsb_sy();
    write32!(4, c8, c7, 0, 0); // TLBIALLH
    sysreg::dsb_sy();
    sysreg::isb();
    write32!(4, c1, c0, 0, hsctlr);
    sysreg::isb();
}

/// A secondary CPU's MMU: its entry code turned it on, before its first
/// use of the stack.
///
/// # Safety
/// None beyond `enable`'s having run on the primary.
pub unsafe fn enable_secondary() {}
