//! The hypervisor's own (EL2 stage-1) address space: an identity map of the
//! low 4 GiB in 1 GiB blocks, normal write-back memory where a block holds
//! RAM and device memory elsewhere (the rule is `hv_core::el2_map`'s).

use super::sysreg::{dsb_sy, isb, read, write};
use hv_core::el2_map;

#[repr(C, align(4096))]
struct Table([u64; 512]);

static mut EL2_L1: Table = Table([0; 512]);

const MAIR: u64 = 0x04 | (0xff << 8); // attr0: Device-nGnRE, attr1: Normal WB
const BLOCK: u64 = 0b01;
const AF: u64 = 1 << 10;
const SH_INNER: u64 = 0b11 << 8;
const ATTR_DEVICE: u64 = 0 << 2;
const ATTR_NORMAL: u64 = 1 << 2;
const XN: u64 = 1 << 54;

/// Builds the table (primary CPU, once) for RAM at `ram` (base, size).
///
/// # Safety
/// Once, on the primary CPU, before any other CPU runs; `ram` must be the
/// RAM this code runs from (its blocks become normal memory, the rest
/// device memory).
pub unsafe fn build(ram: (u64, u64)) {
    // SAFETY: called once on the primary CPU before any other CPU runs or the
    // MMU is on; nothing else references the table.
    let t = unsafe { &mut *core::ptr::addr_of_mut!(EL2_L1) };
    for (i, e) in t.0.iter_mut().enumerate().take((el2_map::END / el2_map::BLOCK) as usize) {
        let addr = i as u64 * el2_map::BLOCK;
        *e = if el2_map::is_normal_block(addr, ram) {
            addr | BLOCK | AF | SH_INNER | ATTR_NORMAL
        } else {
            addr | BLOCK | AF | ATTR_DEVICE | XN
        };
    }
}

/// The identity map ends here: nothing above is reachable at EL2.
const MAPPED_END: u64 = el2_map::END;

/// The part of `ram` (start, length) the EL2 map reaches.
pub fn reachable(ram: (u64, u64)) -> (u64, u64) {
    (ram.0, ram.1.min(MAPPED_END.saturating_sub(ram.0)))
}

/// Turns the EL2 MMU and caches on for this CPU.
///
/// # Safety
/// `build` must have run; the code, stack and data in use must lie in the
/// identity map.
pub unsafe fn enable() {
    let table = core::ptr::addr_of!(EL2_L1) as u64;
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
