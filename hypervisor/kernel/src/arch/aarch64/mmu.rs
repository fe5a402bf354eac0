//! The EL2 MMU: turns on the map `arch::hyp_map` builds.

use super::super::hyp_map::{self, MAIR};
use super::sysreg::{dsb_sy, isb, read, write};

pub use hyp_map::{build, reachable};

/// Turns the EL2 MMU and caches on for this CPU.
///
/// # Safety
/// `build` must have run; the code, stack and data in use must lie in the
/// identity map.
pub unsafe fn enable() {
    let table = hyp_map::root();
    write!(mair_el2, MAIR);
    // T0SZ=32 (4 GiB, walk from level 1), WB walks, inner shareable, 4K, 40-bit PA.
    let tcr = 32 | (0b01 << 8) | (0b01 << 10) | (0b11 << 12) | (0b010 << 16) | (1 << 23) | (1 << 31);
    write!(tcr_el2, tcr);
    write!(ttbr0_el2, table);
    dsb_sy();
    // SAFETY: invalidating this CPU's EL2 and EL1&0 TLBs (entries a boot
    // loader may have left under any VMID) before first use; no memory
    // operands.
    unsafe { core::arch::asm!("tlbi alle2", "tlbi alle1", "dsb sy", options(nostack)) };
    isb();
    // M, C, SA, I, plus RES1 bits.
    let sctlr = read!(sctlr_el2) | 1 | (1 << 2) | (1 << 3) | (1 << 12) | 0x30C5_0830;
    write!(sctlr_el2, sctlr & !(1 << 1)); // alignment checks off
    isb();
}

/// A secondary CPU's MMU: the primary's table, as `enable` turns it on.
///
/// # Safety
/// As for `enable`.
pub unsafe fn enable_secondary() {
    // SAFETY: the caller's contract is `enable`'s.
    unsafe { enable() }
}
