//! The hypervisor's own address space (aarch64 EL2 stage 1, Armv7-A HYP
//! with LPAE: the same long descriptors): an identity map of the low
//! 4 GiB in 1 GiB blocks, device memory where a block holds no RAM, normal
//! write-back memory where RAM fills it, and 2 MiB chunks where RAM fills
//! it in part (the rule is `hv_core::el2_map`'s). Each architecture's
//! `mmu` turns it on.

use hv_core::el2_map;

#[repr(C, align(4096))]
struct Table([u64; 512]);

static mut EL2_L1: Table = Table([0; 512]);
/// Level-2 tables for the blocks RAM fills in part: one RAM range has at
/// most two (its first and its last block).
static mut EL2_L2: [Table; 2] = [Table([0; 512]), Table([0; 512])];

/// Attribute 0: Device-nGnRE; attribute 1: Normal write-back (MAIR_EL2,
/// or HMAIR0 on Armv7-A).
pub const MAIR: u64 = 0x04 | (0xff << 8);
const BLOCK: u64 = 0b01;
const TABLE: u64 = 0b11;
const AF: u64 = 1 << 10;
/// AP[1]: RES1 in a single-range regime (EL2, HYP); AP[2] = 0: writable.
const AP1_RES1: u64 = 1 << 6;
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
    // MMU is on; nothing else references the tables.
    let (t, l2) = unsafe { (&mut *core::ptr::addr_of_mut!(EL2_L1), &mut *core::ptr::addr_of_mut!(EL2_L2)) };
    let mut spare = l2.iter_mut();
    let normal = |addr: u64, kind: u64| addr | kind | AF | AP1_RES1 | SH_INNER | ATTR_NORMAL;
    for (i, e) in t.0.iter_mut().enumerate().take((el2_map::END / el2_map::BLOCK) as usize) {
        let addr = i as u64 * el2_map::BLOCK;
        *e = match el2_map::block_map(addr, ram) {
            el2_map::BlockMap::Device => addr | BLOCK | AF | AP1_RES1 | ATTR_DEVICE | XN,
            el2_map::BlockMap::Normal => normal(addr, BLOCK),
            el2_map::BlockMap::Split => match spare.next() {
                Some(table) => {
                    for (j, c) in table.0.iter_mut().enumerate() {
                        let chunk = addr + j as u64 * el2_map::CHUNK;
                        *c = if el2_map::chunk_is_ram(chunk, ram) { normal(chunk, BLOCK) } else { 0 };
                    }
                    core::ptr::addr_of!(*table) as u64 | TABLE
                }
                // A single RAM range splits at most its two end blocks.
                None => normal(addr, BLOCK),
            },
        };
    }
}

/// The identity map ends here: nothing above is reachable at EL2.
const MAPPED_END: u64 = el2_map::END;

/// The part of `ram` (start, length) the EL2 map reaches.
pub fn reachable(ram: (u64, u64)) -> (u64, u64) {
    (ram.0, ram.1.min(MAPPED_END.saturating_sub(ram.0)))
}

/// The table's address, for TTBR0_EL2 or HTTBR.
pub fn root() -> u64 {
    core::ptr::addr_of!(EL2_L1) as u64
}
