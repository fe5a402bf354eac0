//! Stage-2 translation tables (IPA → PA), 4 KiB granule, 39-bit IPA space
//! starting at level 1: 1 GiB per L1 entry, 2 MiB blocks at L2, 4 KiB pages
//! at L3.
//!
//! Table memory is reached through [`TableMemory`], so the same code builds
//! tables in a host test (a `Vec` of frames) and on the target (the domain's
//! page-table pool, reserved when the domain is created).

/// Size of the IPA space: VTCR_EL2.T0SZ = 64 - IPA_BITS.
pub const IPA_BITS: u32 = 39;
pub const PAGE: u64 = 4096;
pub const BLOCK_2M: u64 = 2 << 20;
const ENTRIES: usize = 512;

const VALID: u64 = 1 << 0;
const TABLE: u64 = 1 << 1; // at L1/L2: table; at L3: page
const AF: u64 = 1 << 10;
const S2AP_RW: u64 = 0b11 << 6;
const S2AP_RO: u64 = 0b01 << 6;
const SH_INNER: u64 = 0b11 << 8;
const XN: u64 = 1 << 54;
const MEMATTR_NORMAL_WB: u64 = 0b1111 << 2;
/// Device-nGnRnE: no early write acknowledgement, so a write's error
/// reaches its pCPU before the `dsb` at the guest's next exit completes and
/// is charged to that guest, not to whoever runs next on a shared pCPU.
const MEMATTR_DEVICE_NGNRNE: u64 = 0b0000 << 2;
const ADDR_MASK: u64 = 0x0000_ffff_ffff_f000;

/// What a mapping is for: it picks memory type, permissions and execute rights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemKind {
    /// Guest RAM: normal write-back, read/write/execute.
    Ram,
    /// Device registers handed to a guest: Device-nGnRnE (stage 2 makes
    /// the guest's own mapping at least that strict), never executable.
    Device,
    /// Another domain's page granted read-only: normal write-back, no
    /// writes, never executable.
    RamReadOnly,
    /// Another domain's page granted writable: never executable.
    RamNoExec,
}

impl MemKind {
    fn attrs(self) -> u64 {
        match self {
            MemKind::Ram => AF | S2AP_RW | SH_INNER | MEMATTR_NORMAL_WB,
            MemKind::Device => AF | S2AP_RW | MEMATTR_DEVICE_NGNRNE | XN,
            MemKind::RamReadOnly => AF | S2AP_RO | SH_INNER | MEMATTR_NORMAL_WB | XN,
            MemKind::RamNoExec => AF | S2AP_RW | SH_INNER | MEMATTR_NORMAL_WB | XN,
        }
    }

    fn from_attrs(desc: u64) -> Self {
        if desc & (0b1111 << 2) != MEMATTR_NORMAL_WB {
            MemKind::Device
        } else if desc & S2AP_RW != S2AP_RW {
            MemKind::RamReadOnly
        } else if desc & XN != 0 {
            MemKind::RamNoExec
        } else {
            MemKind::Ram
        }
    }
}

/// Backing store for translation tables: 4 KiB frames addressed by their
/// physical address.
pub trait TableMemory {
    /// A zeroed frame, or `None` when the domain's pool is used up.
    fn alloc_frame(&mut self) -> Option<u64>;
    fn read(&self, frame: u64, index: usize) -> u64;
    fn write(&mut self, frame: u64, index: usize, value: u64);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    Unaligned,
    OutOfRange,
    AlreadyMapped { ipa: u64 },
    PoolExhausted,
}

/// One domain's stage-2 tables; `root` goes into VTTBR_EL2.
pub struct Stage2 {
    root: u64,
}

impl Stage2 {
    pub fn new(mem: &mut impl TableMemory) -> Result<Self, MapError> {
        Ok(Stage2 { root: mem.alloc_frame().ok_or(MapError::PoolExhausted)? })
    }

    pub fn root(&self) -> u64 {
        self.root
    }

    /// Maps `[ipa, ipa+size)` to `[pa, pa+size)`, with 2 MiB blocks wherever
    /// both addresses and the remaining size allow it and 4 KiB pages elsewhere.
    /// A range that overlaps an existing mapping is refused as a whole.
    pub fn map(&mut self, mem: &mut impl TableMemory, ipa: u64, pa: u64, size: u64, kind: MemKind) -> Result<(), MapError> {
        self.map_with(mem, ipa, pa, size, kind, true)
    }

    /// As `map`, in 4 KiB pages only: for a domain whose pages may later
    /// be replaced one by one (`break_page`/`make_page`: a backend mapping
    /// grants).
    pub fn map_pages(&mut self, mem: &mut impl TableMemory, ipa: u64, pa: u64, size: u64, kind: MemKind) -> Result<(), MapError> {
        self.map_with(mem, ipa, pa, size, kind, false)
    }

    /// The level-3 table holding `ipa`'s entry, if `map_pages` built one.
    fn leaf_table(&self, mem: &impl TableMemory, ipa: u64) -> Option<u64> {
        if ipa >= 1u64 << IPA_BITS {
            return None;
        }
        let mut table = self.root;
        for level in 1..3 {
            let desc = mem.read(table, index(ipa, level));
            if desc & VALID == 0 || desc & TABLE == 0 {
                // Unmapped, or a block: nothing page-sized here.
                return None;
            }
            table = desc & ADDR_MASK;
        }
        Some(table)
    }

    /// Break: makes the valid 4 KiB page at `ipa` (mapped by `map_pages`)
    /// invalid and returns the PA it pointed at. The caller invalidates
    /// the domain's TLBs before `make_page` gives the IPA a new page
    /// (break-before-make: no two translations ever coexist).
    pub fn break_page(&mut self, mem: &mut impl TableMemory, ipa: u64) -> Result<u64, MapError> {
        if !ipa.is_multiple_of(PAGE) {
            return Err(MapError::Unaligned);
        }
        let table = self.leaf_table(mem, ipa).ok_or(MapError::OutOfRange)?;
        let old = mem.read(table, index(ipa, 3));
        if old & VALID == 0 {
            return Err(MapError::OutOfRange);
        }
        mem.write(table, index(ipa, 3), 0);
        Ok(old & ADDR_MASK)
    }

    /// Make: maps the broken page at `ipa` to `pa` as `kind`.
    pub fn make_page(&mut self, mem: &mut impl TableMemory, ipa: u64, pa: u64, kind: MemKind) -> Result<(), MapError> {
        if !ipa.is_multiple_of(PAGE) || !pa.is_multiple_of(PAGE) || pa > ADDR_MASK {
            return Err(MapError::Unaligned);
        }
        let table = self.leaf_table(mem, ipa).ok_or(MapError::OutOfRange)?;
        if mem.read(table, index(ipa, 3)) & VALID != 0 {
            return Err(MapError::AlreadyMapped { ipa });
        }
        mem.write(table, index(ipa, 3), (pa & ADDR_MASK) | kind.attrs() | TABLE | VALID);
        Ok(())
    }

    fn map_with(&mut self, mem: &mut impl TableMemory, ipa: u64, pa: u64, size: u64, kind: MemKind, blocks: bool) -> Result<(), MapError> {
        if !ipa.is_multiple_of(PAGE) || !pa.is_multiple_of(PAGE) || !size.is_multiple_of(PAGE) {
            return Err(MapError::Unaligned);
        }
        let end = ipa.checked_add(size).ok_or(MapError::OutOfRange)?;
        if end > 1u64 << IPA_BITS || pa.checked_add(size).is_none_or(|e| e > ADDR_MASK + PAGE) {
            return Err(MapError::OutOfRange);
        }
        let mut off = 0;
        while off < size {
            if let Some((mapped, _)) = self.translate(mem, ipa + off) {
                let _ = mapped;
                return Err(MapError::AlreadyMapped { ipa: ipa + off });
            }
            off += PAGE;
        }
        let mut off = 0;
        while off < size {
            let (i, p) = (ipa + off, pa + off);
            let step = if blocks && i % BLOCK_2M == 0 && p % BLOCK_2M == 0 && size - off >= BLOCK_2M {
                self.set(mem, i, p, kind, 2)?;
                BLOCK_2M
            } else {
                self.set(mem, i, p, kind, 3)?;
                PAGE
            };
            off += step;
        }
        Ok(())
    }

    fn set(&mut self, mem: &mut impl TableMemory, ipa: u64, pa: u64, kind: MemKind, level: u32) -> Result<(), MapError> {
        let mut table = self.root;
        for l in 1..level {
            let idx = index(ipa, l);
            let desc = mem.read(table, idx);
            table = if desc & VALID == 0 {
                let next = mem.alloc_frame().ok_or(MapError::PoolExhausted)?;
                mem.write(table, idx, next | TABLE | VALID);
                next
            } else if desc & TABLE != 0 {
                desc & ADDR_MASK
            } else {
                return Err(MapError::AlreadyMapped { ipa });
            };
        }
        let leaf = if level == 3 { TABLE | VALID } else { VALID };
        mem.write(table, index(ipa, level), (pa & ADDR_MASK) | kind.attrs() | leaf);
        Ok(())
    }

    /// Walks the tables like the MMU does: the PA and kind backing `ipa`.
    pub fn translate(&self, mem: &impl TableMemory, ipa: u64) -> Option<(u64, MemKind)> {
        if ipa >= 1u64 << IPA_BITS {
            return None;
        }
        let mut table = self.root;
        for level in 1..=3 {
            let desc = mem.read(table, index(ipa, level));
            if desc & VALID == 0 {
                return None;
            }
            let is_table = desc & TABLE != 0;
            if level == 3 || !is_table {
                if level == 1 && !is_table {
                    // 1 GiB blocks are never written by `map`.
                    return None;
                }
                let span = level_span(level);
                return Some(((desc & ADDR_MASK & !(span - 1)) + (ipa & (span - 1)), MemKind::from_attrs(desc)));
            }
            table = desc & ADDR_MASK;
        }
        None
    }
}

fn level_span(level: u32) -> u64 {
    1 << (12 + 9 * (3 - level))
}

fn index(ipa: u64, level: u32) -> usize {
    ((ipa >> (12 + 9 * (3 - level))) as usize) & (ENTRIES - 1)
}

/// Frames `map_pages` needs for a region of `size` bytes at `ipa`.
pub fn frames_needed_pages(ipa: u64, size: u64) -> usize {
    if size == 0 {
        return 0;
    }
    let gib = 1 << 30;
    let l2_tables = ((ipa + size - 1) / gib - ipa / gib + 1) as usize;
    let l3_tables = ((ipa + size - 1) / BLOCK_2M - ipa / BLOCK_2M + 1) as usize;
    l2_tables + l3_tables
}

/// An upper bound on the frames `map` needs for these `(ipa, pa, size)`
/// regions, used to size a domain's page-table pool when it is created.
pub fn frames_needed(regions: &[(u64, u64, u64)]) -> usize {
    let mut n = 1; // the L1 root
    for &(ipa, pa, size) in regions {
        if size == 0 {
            continue;
        }
        let gib = 1 << 30;
        let l2_tables = ((ipa + size - 1) / gib - ipa / gib + 1) as usize;
        // L3 tables: only the unaligned head and tail need pages, unless IPA
        // and PA disagree on 2 MiB alignment and every page is a 4 KiB one.
        let spans = ((ipa + size - 1) / BLOCK_2M - ipa / BLOCK_2M + 1) as usize;
        let l3_tables = if (ipa ^ pa) % BLOCK_2M != 0 {
            spans
        } else if ipa % BLOCK_2M == 0 && size % BLOCK_2M == 0 {
            0
        } else {
            spans.min(2)
        };
        n += l2_tables + l3_tables;
    }
    n
}

/// VTCR_EL2 for these tables: T0SZ=25, start at level 1, 4 KiB granule,
/// inner-shareable write-back walks, 40-bit PA.
pub const fn vtcr() -> u64 {
    let t0sz = 64 - IPA_BITS as u64;
    let sl0 = 0b01 << 6; // start at level 1
    let irgn0 = 0b01 << 8;
    let orgn0 = 0b01 << 10;
    let sh0 = 0b11 << 12;
    let tg0 = 0b00 << 14;
    let ps = 0b010 << 16;
    (1 << 31) | ps | tg0 | sh0 | orgn0 | irgn0 | sl0 | t0sz
}

/// VTCR for these tables on Armv7-A with LPAE (a 32-bit register): the
/// same 39-bit IPA starting at level 1 (T0SZ is signed there: 32 - 39 =
/// -7, with S its sign), 4 KiB granule, inner-shareable write-back walks.
/// The descriptors are the same as on aarch64 (VMSAv7 long descriptors).
pub const fn vtcr_a32() -> u32 {
    let t0sz = (32i32 - IPA_BITS as i32) as u32 & 0xf;
    let s = ((t0sz >> 3) & 1) << 4;
    let sl0 = 0b01 << 6; // start at level 1
    let irgn0 = 0b01 << 8;
    let orgn0 = 0b01 << 10;
    let sh0 = 0b11 << 12;
    (1 << 31) | sh0 | orgn0 | irgn0 | sl0 | s | t0sz
}

#[cfg(test)]
pub mod test_memory {
    use super::TableMemory;

    /// Frames in a `Vec`, with fake physical addresses, and a frame limit.
    pub struct VecMemory {
        pub frames: Vec<[u64; 512]>,
        pub limit: usize,
    }

    impl VecMemory {
        pub const BASE: u64 = 0x8000_0000;
        pub fn new(limit: usize) -> Self {
            VecMemory { frames: Vec::new(), limit }
        }
        fn slot(frame: u64) -> usize {
            ((frame - Self::BASE) / 4096) as usize
        }
    }

    impl TableMemory for VecMemory {
        fn alloc_frame(&mut self) -> Option<u64> {
            if self.frames.len() >= self.limit {
                return None;
            }
            self.frames.push([0; 512]);
            Some(Self::BASE + (self.frames.len() as u64 - 1) * 4096)
        }
        fn read(&self, frame: u64, index: usize) -> u64 {
            self.frames[Self::slot(frame)][index]
        }
        fn write(&mut self, frame: u64, index: usize, value: u64) {
            self.frames[Self::slot(frame)][index] = value;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_memory::VecMemory;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ram_uses_2m_blocks_and_translates_every_page() {
        let mut mem = VecMemory::new(16);
        let mut s2 = Stage2::new(&mut mem).unwrap();
        s2.map(&mut mem, 0x4000_0000, 0x6000_0000, 16 << 20, MemKind::Ram).unwrap();
        // Root + one L2 table; no L3 tables for an aligned region.
        assert_eq!(mem.frames.len(), 2);
        assert_eq!(s2.translate(&mem, 0x4000_0000), Some((0x6000_0000, MemKind::Ram)));
        assert_eq!(s2.translate(&mem, 0x40ff_f123), Some((0x60ff_f123, MemKind::Ram)));
        assert_eq!(s2.translate(&mem, 0x4100_0000), None);
        assert_eq!(s2.translate(&mem, 0x3fff_ffff), None);
    }

    #[test]
    fn a_backend_s_pages_are_replaced_one_at_a_time() {
        let mut mem = VecMemory::new(16);
        let mut s2 = Stage2::new(&mut mem).unwrap();
        s2.map_pages(&mut mem, 0x4000_0000, 0x6000_0000, 4 << 20, MemKind::Ram).unwrap();
        assert_eq!(mem.frames.len(), frames_needed_pages(0x4000_0000, 4 << 20) + 1);
        // A granted page in place of one of its own, read-only, then back:
        // each time through an invalid entry.
        assert_eq!(s2.make_page(&mut mem, 0x4010_0000, 0x7000_0000, MemKind::RamReadOnly), Err(MapError::AlreadyMapped { ipa: 0x4010_0000 }), "make before break");
        assert_eq!(s2.break_page(&mut mem, 0x4010_0000), Ok(0x6010_0000));
        assert_eq!(s2.translate(&mem, 0x4010_0000), None);
        s2.make_page(&mut mem, 0x4010_0000, 0x7000_0000, MemKind::RamReadOnly).unwrap();
        assert_eq!(s2.translate(&mem, 0x4010_0008), Some((0x7000_0008, MemKind::RamReadOnly)));
        assert_eq!(s2.translate(&mem, 0x4010_1000), Some((0x6010_1000, MemKind::Ram)), "its neighbour is untouched");
        assert_eq!(s2.break_page(&mut mem, 0x4010_0000), Ok(0x7000_0000));
        s2.make_page(&mut mem, 0x4010_0000, 0x6010_0000, MemKind::Ram).unwrap();
        assert_eq!(s2.translate(&mem, 0x4010_0000), Some((0x6010_0000, MemKind::Ram)));
        // Nothing to replace outside its RAM, or inside a 2 MiB block.
        assert_eq!(s2.break_page(&mut mem, 0x5000_0000), Err(MapError::OutOfRange));
        assert_eq!(s2.break_page(&mut mem, 0x4010_0800), Err(MapError::Unaligned));
        let mut blocks = Stage2::new(&mut mem).unwrap();
        blocks.map(&mut mem, 0x4000_0000, 0x6000_0000, 2 << 20, MemKind::Ram).unwrap();
        assert_eq!(blocks.break_page(&mut mem, 0x4000_0000), Err(MapError::OutOfRange));
    }

    #[test]
    fn unaligned_region_falls_back_to_pages() {
        let mut mem = VecMemory::new(16);
        let mut s2 = Stage2::new(&mut mem).unwrap();
        s2.map(&mut mem, 0x0900_0000, 0x0900_0000, 0x1000, MemKind::Device).unwrap();
        assert_eq!(mem.frames.len(), 3);
        assert_eq!(s2.translate(&mem, 0x0900_0ffc), Some((0x0900_0ffc, MemKind::Device)));
        assert_eq!(s2.translate(&mem, 0x0900_1000), None);
    }

    #[test]
    fn overlapping_map_is_refused_and_changes_nothing() {
        let mut mem = VecMemory::new(16);
        let mut s2 = Stage2::new(&mut mem).unwrap();
        s2.map(&mut mem, 0x4000_0000, 0x6000_0000, 4 << 20, MemKind::Ram).unwrap();
        let before = mem.frames.clone();
        assert_eq!(
            s2.map(&mut mem, 0x403f_f000, 0x7000_0000, 0x2000, MemKind::Ram),
            Err(MapError::AlreadyMapped { ipa: 0x403f_f000 })
        );
        assert_eq!(mem.frames, before);
    }

    #[test]
    fn pool_exhaustion_is_an_error_not_a_panic() {
        let mut mem = VecMemory::new(1);
        let mut s2 = Stage2::new(&mut mem).unwrap();
        assert_eq!(s2.map(&mut mem, 0, 0, PAGE, MemKind::Ram), Err(MapError::PoolExhausted));
    }

    #[test]
    fn rejects_bad_ranges() {
        let mut mem = VecMemory::new(4);
        let mut s2 = Stage2::new(&mut mem).unwrap();
        assert_eq!(s2.map(&mut mem, 0x1001, 0, PAGE, MemKind::Ram), Err(MapError::Unaligned));
        assert_eq!(s2.map(&mut mem, 1 << 39, 0, PAGE, MemKind::Ram), Err(MapError::OutOfRange));
        assert_eq!(s2.map(&mut mem, !0xfff, 0, PAGE, MemKind::Ram), Err(MapError::OutOfRange));
    }

    #[test]
    fn vtcr_a32_fields() {
        let v = vtcr_a32();
        assert_eq!(v & 0xf, 0b1001, "T0SZ = -7: a 2^39-byte IPA space");
        assert_eq!((v >> 4) & 1, 1, "S repeats T0SZ's sign");
        assert_eq!(
            (v >> 6) & 3,
            1,
            "the walk starts at level 1, as the tables do"
        );
        assert_eq!(
            (v >> 8) & 0x3f,
            0b11_01_01,
            "inner-shareable write-back walks"
        );
        assert_eq!(v >> 31, 1, "bit 31 is RES1");
    }

    #[test]
    fn vtcr_fields() {
        let v = vtcr();
        assert_eq!(v & 0x3f, 25);
        assert_eq!((v >> 6) & 3, 1);
        assert_eq!((v >> 16) & 7, 0b010);
    }

    proptest! {
        #[test]
        fn any_region_maps_exactly_and_within_the_pool_estimate(
            ipa_pages in 0u64..(4 << 18), pa_pages in 0u64..(4 << 18), pages in 1u64..2048,
        ) {
            let (ipa, pa, size) = (ipa_pages * PAGE, pa_pages * PAGE, pages * PAGE);
            let budget = frames_needed(&[(ipa, pa, size)]);
            let mut mem = VecMemory::new(budget);
            let mut s2 = Stage2::new(&mut mem).unwrap();
            s2.map(&mut mem, ipa, pa, size, MemKind::Ram).unwrap();
            for probe in [0, size / 2, size - 1] {
                let p = probe & !7;
                prop_assert_eq!(s2.translate(&mem, ipa + p), Some((pa + p, MemKind::Ram)));
            }
            prop_assert_eq!(s2.translate(&mem, ipa + size), None);
            if ipa >= PAGE {
                prop_assert_eq!(s2.translate(&mem, ipa - PAGE), None);
            }
        }
    }
}
