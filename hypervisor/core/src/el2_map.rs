//! The hypervisor's own map of the physical address space (EL2 stage 1):
//! the low 4 GiB, one to one, in 1 GiB blocks. A block without RAM is
//! device memory; a block RAM fills is normal memory; a block RAM fills in
//! part is mapped in 2 MiB chunks, normal where they hold RAM and not at
//! all elsewhere (R-Car H3's RAM shares its block with TF-A's secure DRAM,
//! which must not even be reached speculatively). The arch layer builds
//! it; the build checks with the same rule that every frame the hypervisor
//! drives lands on device memory, and the arch layer checks again against
//! the RAM the boot loader reports.

use crate::bundle::{BoardDesc, GicVersion};

pub const BLOCK: u64 = 1 << 30;
/// Nothing at or above this is mapped.
pub const END: u64 = 4 << 30;

/// The frames the hypervisor drives, as large as it keeps them: no domain
/// may be given any part of them.
pub const UART_FRAME: u64 = 0x1000;
pub const GICD_V3_FRAME: u64 = 0x1_0000;
/// Each CPU's redistributor: RD_base and SGI_base.
pub const GICR_FRAME_PER_CPU: u64 = 0x2_0000;
pub const GICD_V2_FRAME: u64 = 0x1000;
/// GICC and GICV are two 4 KiB pages each; GICH is kept with the page after
/// it, where a GIC-400 aliases the per-CPU view of it.
pub const GICC_FRAME: u64 = 0x2000;
pub const GICH_FRAME: u64 = 0x2000;
pub const GICV_FRAME: u64 = 0x2000;
/// A page of a board's platform registers (DRA7's WakeupGen, realtime
/// counter, clock control).
pub const PLATFORM_FRAME: u64 = 0x1000;

/// The granule of a block RAM fills in part.
pub const CHUNK: u64 = 2 << 20;

/// Whether `[base, base + size)` holds any of `ram`.
fn holds_ram(base: u64, size: u64, ram: (u64, u64)) -> bool {
    let (start, end) = (ram.0, ram.0.saturating_add(ram.1));
    base < end && start < base.saturating_add(size)
}

/// Whether the 1 GiB block at `block_base` holds RAM (so it is not device
/// memory).
pub fn is_normal_block(block_base: u64, ram: (u64, u64)) -> bool {
    holds_ram(block_base, BLOCK, ram)
}

/// How the 1 GiB block at `block_base` is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockMap {
    Device,
    Normal,
    /// In 2 MiB chunks: normal where `chunk_is_ram`, unmapped elsewhere.
    Split,
}

pub fn block_map(block_base: u64, ram: (u64, u64)) -> BlockMap {
    if !is_normal_block(block_base, ram) {
        BlockMap::Device
    } else if (0..BLOCK / CHUNK).all(|i| chunk_is_ram(block_base + i * CHUNK, ram)) {
        BlockMap::Normal
    } else {
        BlockMap::Split
    }
}

/// Whether the 2 MiB chunk at `chunk_base` holds RAM. The arch layer
/// trims the device tree's RAM to whole chunks first, so a chunk RAM
/// covers in part (firmware's memory at a ragged edge) is never mapped.
pub fn chunk_is_ram(chunk_base: u64, ram: (u64, u64)) -> bool {
    holds_ram(chunk_base, CHUNK, ram)
}

/// Whether `frame` (base, size) is mapped, all of it as device memory,
/// when RAM is `ram`.
pub fn is_device(frame: (u64, u64), ram: (u64, u64)) -> bool {
    let Some(end) = frame.0.checked_add(frame.1) else { return false };
    if frame.1 == 0 || end > END {
        return false;
    }
    let first = frame.0 / BLOCK;
    let last = (end - 1) / BLOCK;
    (first..=last).all(|b| !is_normal_block(b * BLOCK, ram))
}

/// A frame the hypervisor drives: the board.toml field that places it,
/// what it is, where and how large.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    pub field: &'static str,
    pub what: &'static str,
    pub base: u64,
    pub size: u64,
}

impl BoardDesc {
    /// The frames the hypervisor drives on this board (UART, GIC, and
    /// TI DRA7's platform registers).
    pub fn own_frames(&self) -> [Option<Frame>; 9] {
        let f = |field, what, base, size| Some(Frame { field, what, base, size });
        let uart = f("uart", "the hypervisor's UART", self.uart_base, UART_FRAME);
        // DRA7's registers, where the board has them (0: none): the pages
        // holding `span` bytes from each base.
        let dra7 = |field, what, base, span| if base == 0 { None } else { Some(pages(field, what, base, span)) };
        let platform = [
            dra7("secondary_boot", "WakeupGen (AuxCoreBoot)", self.aux_core_boot, PLATFORM_FRAME),
            dra7("counter", "the realtime counter", self.realtime_counter, crate::dra7::INCREMENTER_DENOMINATOR_RELOAD + 4),
            dra7("counter.clksel", "CM_CLKSEL_SYS", self.clksel_sys, 4),
            dra7("crossbar", "the IRQ crossbar", self.crossbar_base, self.crossbar_span()),
        ];
        let gic = match self.gic {
            GicVersion::V3 => [
                f("gicd", "the GIC distributor", self.gicd_base, GICD_V3_FRAME),
                f("gicr", "the GIC redistributors", self.gicr_base, u64::from(self.ncpus) * GICR_FRAME_PER_CPU),
                None,
                None,
            ],
            GicVersion::V2 => [
                f("gicd", "the GIC distributor", self.gicd_base, GICD_V2_FRAME),
                f("gicc", "the GIC CPU interface", self.gicc_base, GICC_FRAME),
                f("gich", "the GIC virtual interface control", self.gich_base, GICH_FRAME),
                f("gicv", "the GIC virtual CPU interface", self.gicv_base, GICV_FRAME),
            ],
        };
        [uart, gic[0], gic[1], gic[2], gic[3], platform[0], platform[1], platform[2], platform[3]]
    }

    /// The first of `own_frames` whose pages `base`+`size` touches.
    pub fn own_frame_touching(&self, base: u64, size: u64) -> Option<Frame> {
        let region = pages("", "", base, size);
        self.own_frames().into_iter().flatten().find(|f| overlaps((f.base, f.size), (region.base, region.size)))
    }

    /// Two of `own_frames` that overlap, if any: the build refuses such a
    /// board, and a bundle holding one is refused too.
    pub fn overlapping_frames(&self) -> Option<(Frame, Frame)> {
        let frames = self.own_frames();
        for (i, a) in frames.iter().enumerate() {
            for b in &frames[i + 1..] {
                if let (Some(a), Some(b)) = (a, b) {
                    if overlaps((a.base, a.size), (b.base, b.size)) {
                        return Some((*a, *b));
                    }
                }
            }
        }
        None
    }
}

/// Every RAM bank the device tree declares, as declared (not trimmed to
/// chunks): device passthrough must touch none of them, not only the bank
/// the hypervisor runs from. Fixed capacity (no allocation); a bank beyond
/// it widens the last entry to cover both, which refuses more, never less.
#[derive(Clone, Copy, Debug)]
pub struct RamBanks {
    banks: [(u64, u64); RamBanks::CAPACITY],
    len: usize,
}

impl RamBanks {
    pub const CAPACITY: usize = 8;
    pub const EMPTY: RamBanks = RamBanks { banks: [(0, 0); RamBanks::CAPACITY], len: 0 };

    /// Records a bank (base, size): an empty one is ignored, one reaching
    /// past the end of the address space is recorded up to the end.
    pub fn add(&mut self, base: u64, size: u64) {
        if size == 0 {
            return;
        }
        let end = base.saturating_add(size);
        if self.len < Self::CAPACITY {
            self.banks[self.len] = (base, end - base);
            self.len += 1;
        } else {
            let last = &mut self.banks[Self::CAPACITY - 1];
            let lo = last.0.min(base);
            let hi = last.0.saturating_add(last.1).max(end);
            *last = (lo, hi - lo);
        }
    }

    /// Whether `range` (base, size) touches any bank.
    pub fn touches(&self, range: (u64, u64)) -> bool {
        self.banks[..self.len].iter().any(|&b| overlaps(b, range))
    }
}

/// Whether two (base, size) ranges share a byte; an empty range shares none.
pub fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.1 > 0 && b.1 > 0 && a.0 < b.0.saturating_add(b.1) && b.0 < a.0.saturating_add(a.1)
}

/// The whole pages holding `span` bytes from `base`. Where that passes the
/// end of the address space, a frame that reaches it, which no map makes
/// device memory (`is_device` refuses it).
fn pages(field: &'static str, what: &'static str, base: u64, span: u64) -> Frame {
    let first = base & !(PLATFORM_FRAME - 1);
    let end = base.checked_add(span).and_then(|e| e.checked_next_multiple_of(PLATFORM_FRAME));
    Frame { field, what, base: first, size: end.map_or(u64::MAX - first, |e| e - first) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = BLOCK;

    #[test]
    fn blocks_with_ram_are_normal_whatever_ram_starts_at() {
        // QEMU virt: RAM from 1 GiB.
        let virt = (GIB, 2 * GIB);
        assert!(!is_normal_block(0, virt) && is_normal_block(GIB, virt) && is_normal_block(2 * GIB, virt));
        assert!(!is_normal_block(3 * GIB, virt), "above RAM is device too");
        // ZynqMP: RAM at 0, devices in the top GiB.
        let zynqmp = (0, 2 * GIB);
        assert!(is_normal_block(0, zynqmp) && !is_normal_block(3 * GIB, zynqmp));
        // R-Car H3: RAM inside block 1, GIC above it.
        let rcar = (0x4800_0000, 0x3800_0000);
        assert!(is_normal_block(GIB, rcar) && !is_normal_block(2 * GIB, rcar) && !is_normal_block(3 * GIB, rcar));
    }

    #[test]
    fn a_block_ram_fills_in_part_maps_only_its_ram_chunks() {
        // R-Car H3: secure DRAM at 1 GiB..+128 MiB, then RAM to 2 GiB.
        let rcar = (0x4800_0000, 0x3800_0000);
        assert_eq!(block_map(GIB, rcar), BlockMap::Split);
        assert!(!chunk_is_ram(GIB, rcar) && !chunk_is_ram(0x47E0_0000, rcar), "TF-A's secure DRAM stays unmapped");
        assert!(chunk_is_ram(0x4800_0000, rcar) && chunk_is_ram(2 * GIB - CHUNK, rcar));
        assert_eq!(block_map(0, rcar), BlockMap::Device);
        assert_eq!(block_map(3 * GIB, rcar), BlockMap::Device);
        // Whole blocks of RAM stay 1 GiB blocks.
        assert_eq!(block_map(GIB, (GIB, 2 * GIB)), BlockMap::Normal);
        assert_eq!(block_map(0, (0, 2 * GIB)), BlockMap::Normal);
        // RAM ending off a chunk keeps its last partial chunk.
        let odd = (GIB, GIB / 2 + 0x1000);
        assert_eq!(block_map(GIB, odd), BlockMap::Split);
        assert!(chunk_is_ram(GIB + GIB / 2, odd) && !chunk_is_ram(GIB + GIB / 2 + CHUNK, odd));
    }

    #[test]
    fn passthrough_is_checked_against_every_ram_bank() {
        // R-Car H3: four banks, the hypervisor runs from the first.
        let mut banks = RamBanks::EMPTY;
        for b in [(0x4800_0000, 0x3800_0000), (0x5_0000_0000, 0x4000_0000), (0x6_0000_0000, 0x4000_0000), (0x7_0000_0000, 0x4000_0000)] {
            banks.add(b.0, b.1);
        }
        assert!(banks.touches((0x6_2000_0000, 0x1000)), "the third bank");
        assert!(banks.touches((0x47FF_F000, 0x2000)), "straddling the first bank's start");
        assert!(!banks.touches((0xE600_0000, 0x1000)) && !banks.touches((0x4_FFFF_F000, 0x1000)));
        // More banks than the capacity: the last entry widens to cover them.
        let mut many = RamBanks::EMPTY;
        for i in 0..12u64 {
            many.add(i * 2 * GIB, GIB);
        }
        assert!(many.touches((22 * GIB, 0x1000)), "the twelfth bank");
        assert!(many.touches((15 * GIB, 0x1000)), "between merged banks: refused, never allowed");
        assert!(!many.touches((GIB, 0x1000)), "a gap before the merge stays free");
        let mut edge = RamBanks::EMPTY;
        edge.add(u64::MAX - 0xFFF, 0x2000);
        assert!(edge.touches((u64::MAX - 0xFFF, 1)));
    }

    #[test]
    fn a_frame_is_device_only_if_no_block_it_touches_holds_ram() {
        let ram = (GIB, GIB);
        assert!(is_device((0x0800_0000, 0x1_0000), ram));
        assert!(is_device((0xF101_0000, 0x1000), ram));
        assert!(!is_device((GIB - 0x1000, 0x2000), ram), "crosses into RAM's block");
        assert!(!is_device((GIB + GIB / 2, 0x1000), ram), "RAM's block, past RAM: normal memory");
        assert!(!is_device((END - 0x1000, 0x2000), ram), "beyond the map");
        assert!(!is_device((u64::MAX - 10, 0x1000), ram), "wraps");
        assert!(!is_device((0, 0), ram), "empty");
    }
}
