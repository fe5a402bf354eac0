//! A guest's stage-1 translation, walked in software: Xen's hypercalls take
//! guest *virtual* addresses (the argument structures, the runstate area),
//! so the hypervisor translates them through the calling vCPU's own page
//! tables (TTBR0/1_EL1 under TCR_EL1) to an IPA, then through its stage 2.
//!
//! Everything here comes from the guest: its translation registers and
//! every descriptor. The walk reads at most one descriptor per level (four
//! at most), through a reader that only reaches the guest's own RAM, and
//! any value it does not understand is a fault, never a guess.
//!
//! A 32-bit (Armv7-A) guest's tables are walked too when they use LPAE's
//! long descriptors (TTBCR.EAE, as Debian's armmp-lpae kernels do): the
//! descriptors are aarch64's 4 KiB-granule ones over a 32-bit address
//! space that TTBCR splits between TTBR0 and TTBR1. Short descriptors
//! are refused.

/// The calling vCPU's EL1 (PL1) translation registers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Regs {
    pub sctlr: u64,
    /// TCR_EL1; for a 32-bit guest, TTBCR.
    pub tcr: u64,
    pub ttbr0: u64,
    pub ttbr1: u64,
    /// A 32-bit (Armv7-A) guest's registers.
    pub aarch32: bool,
}

/// A successful translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    pub ipa: u64,
    /// EL1 may write it (AP[2] clear at the leaf and no APTable[1] above).
    pub writable: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkError {
    /// The address lies outside both halves the TCR configures.
    OutOfRange,
    /// That half's walks are disabled (EPDx), or its granule or size is
    /// one this walker does not take.
    Unsupported,
    /// A descriptor could not be read (outside the guest's RAM).
    TableUnreadable,
    /// An invalid or reserved descriptor.
    NotMapped,
}

const SCTLR_M: u64 = 1;
/// Output-address bits a descriptor or TTBR holds (48-bit physical space).
const OA_MASK: u64 = 0x0000_ffff_ffff_f000;
/// The same for a table root, which may be smaller than a page.
const OA_MASK_ROOT: u64 = 0x0000_ffff_ffff_fff8;

/// The parameters of one half (TTBR0 or TTBR1) of the address space.
struct Half {
    ttbr: u64,
    /// 64 - TxSZ: bits of VA translated.
    input_bits: u32,
    /// log2 of the granule: 12, 14 or 16.
    granule: u32,
    tbi: bool,
}

fn half(regs: &Regs, upper: bool) -> Result<Half, WalkError> {
    let tcr = regs.tcr;
    let (tsz, epd, tg, tbi, ttbr) = if upper {
        let granule = match (tcr >> 30) & 3 {
            1 => 14,
            2 => 12,
            3 => 16,
            _ => return Err(WalkError::Unsupported),
        };
        ((tcr >> 16) & 0x3f, tcr >> 23 & 1, granule, tcr >> 38 & 1, regs.ttbr1)
    } else {
        let granule = match (tcr >> 14) & 3 {
            0 => 12,
            1 => 16,
            2 => 14,
            _ => return Err(WalkError::Unsupported),
        };
        (tcr & 0x3f, tcr >> 7 & 1, granule, tcr >> 37 & 1, regs.ttbr0)
    };
    // Sizes beyond 48 bits (52-bit VAs) and below one table level are
    // not taken.
    if epd == 1 || !(16..=48).contains(&tsz) {
        return Err(WalkError::Unsupported);
    }
    Ok(Half { ttbr, input_bits: 64 - tsz as u32, granule: tg, tbi: tbi == 1 })
}

/// A 32-bit guest's half for `va` under TTBCR (long descriptors): TTBR0
/// below 2^(32 - T0SZ), TTBR1 from 2^32 - 2^(32 - T1SZ), a fault between;
/// a size of 0 gives its table everything the other one does not take.
fn half_a32(regs: &Regs, va: u64) -> Result<Half, WalkError> {
    const EAE: u64 = 1 << 31;
    let ttbcr = regs.tcr;
    if ttbcr & EAE == 0 {
        return Err(WalkError::Unsupported);
    }
    if va >> 32 != 0 {
        return Err(WalkError::OutOfRange);
    }
    let (t0sz, t1sz) = ((ttbcr & 7) as u32, (ttbcr >> 16 & 7) as u32);
    let in_ttbr1 = va >> (32 - t1sz) == (1 << t1sz) - 1;
    let in_ttbr0 = va >> (32 - t0sz) == 0;
    let (tsz, epd, ttbr) = if t0sz == 0 && t1sz == 0 || in_ttbr0 && (t0sz > 0 || !in_ttbr1 || t1sz == 0) {
        (t0sz, ttbcr >> 7 & 1, regs.ttbr0)
    } else if in_ttbr1 || t1sz == 0 {
        (t1sz, ttbcr >> 23 & 1, regs.ttbr1)
    } else {
        return Err(WalkError::OutOfRange);
    };
    if epd == 1 {
        return Err(WalkError::Unsupported);
    }
    // The TTBR's base address is bits 39:x, x = 5 - TxSZ (a level-1
    // table of 4 entries or fewer) or 14 - TxSZ (from level 2): the walk
    // below masks the root by its own size.
    Ok(Half { ttbr: ttbr & 0xff_ffff_ffff, input_bits: 32 - tsz, granule: 12, tbi: false })
}

/// Translates `va` as an EL1 access would, reading descriptors (8 bytes at
/// an IPA) through `read`.
pub fn translate(regs: &Regs, va: u64, read: impl Fn(u64) -> Option<u64>) -> Result<Translation, WalkError> {
    if regs.sctlr & SCTLR_M == 0 {
        // Stage 1 off: the address is the IPA, and EL1 may write anywhere.
        return Ok(Translation { ipa: va, writable: true });
    }
    let h = if regs.aarch32 {
        half_a32(regs, va)?
    } else {
        let upper = va >> 55 & 1 == 1;
        let h = half(regs, upper)?;
        // Every bit above the translated ones must repeat bit 55 (the top
        // byte is exempt when TBI is on).
        let top = if h.tbi { 56 } else { 64 };
        for bit in h.input_bits..top {
            if (va >> bit & 1 == 1) != upper {
                return Err(WalkError::OutOfRange);
            }
        }
        h
    };
    let stride = h.granule - 3;
    let levels = (h.input_bits - h.granule).div_ceil(stride);
    if !(1..=4).contains(&levels) {
        return Err(WalkError::Unsupported);
    }
    // The root holds 2^bits entries of 8 bytes: its base is aligned to
    // that (or to the granule when full; the bits below are RES0 or
    // CnP).
    let first = 4 - levels;
    let root_bits = (h.input_bits - (h.granule + (3 - first) * stride)).min(stride);
    let mut table = h.ttbr & OA_MASK_ROOT & !((8u64 << root_bits) - 1);
    let mut writable = true;
    for level in first..4 {
        let shift = h.granule + (3 - level) * stride;
        let bits = (h.input_bits - shift).min(stride);
        let index = (va >> shift) & ((1u64 << bits) - 1);
        let desc = read(table + index * 8).ok_or(WalkError::TableUnreadable)?;
        if desc & 1 == 0 {
            return Err(WalkError::NotMapped);
        }
        let is_table = desc & 2 != 0;
        if level == 3 || !is_table {
            // A leaf: a page at level 3 (bit 1 set), a block above it.
            // Level-0 blocks and level-3 "blocks" are reserved encodings;
            // so is a block at level 1 for 16K and 64K granules.
            let block_ok = level == 3 || level == 2 || (level == 1 && h.granule == 12);
            if (level == 3 && !is_table) || !block_ok {
                return Err(WalkError::NotMapped);
            }
            let size_bits = shift;
            let oa = desc & OA_MASK & !((1u64 << size_bits) - 1);
            writable &= desc >> 7 & 1 == 0;
            return Ok(Translation { ipa: oa | (va & ((1u64 << size_bits) - 1)), writable });
        }
        // APTable[1]: nothing below is writable.
        writable &= desc >> 62 & 1 == 0;
        table = desc & OA_MASK & !((1u64 << h.granule) - 1);
    }
    Err(WalkError::NotMapped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// Guest RAM as a map of 8-byte words: a test harness for page tables.
    #[derive(Default)]
    struct Mem {
        words: HashMap<u64, u64>,
        next_table: u64,
    }

    const TABLE_BASE: u64 = 0x4000_0000;
    // T0SZ=T1SZ=16 (48-bit), TG0=4K, TG1=4K, TBI0.
    const TCR_48: u64 = 16 | 16 << 16 | 2 << 30 | 1 << 37;
    // T0SZ=T1SZ=25 (39-bit, 3 levels).
    const TCR_39: u64 = 25 | 25 << 16 | 2 << 30;

    impl Mem {
        fn new() -> Self {
            Mem { words: HashMap::new(), next_table: TABLE_BASE }
        }
        fn table(&mut self) -> u64 {
            let t = self.next_table;
            self.next_table += 4096;
            t
        }
        /// Maps the 4 KiB page at `va` to `ipa` under the root `root` of a
        /// 4K-granule table with `levels` levels.
        fn map(&mut self, root: u64, levels: u32, va: u64, ipa: u64, ro: bool) {
            let mut table = root;
            for level in (4 - levels)..4 {
                let shift = 12 + (3 - level) * 9;
                let slot = table + ((va >> shift) & 511) * 8;
                if level == 3 {
                    self.words.insert(slot, ipa | 3 | (ro as u64) << 7);
                    return;
                }
                let desc = match self.words.get(&slot) {
                    Some(d) => *d,
                    None => {
                        let t = self.table();
                        self.words.insert(slot, t | 3);
                        t | 3
                    }
                };
                table = desc & OA_MASK;
            }
        }
        fn read(&self) -> impl Fn(u64) -> Option<u64> + '_ {
            |ipa| (ipa >= TABLE_BASE && ipa < self.next_table).then(|| self.words.get(&ipa).copied().unwrap_or(0))
        }
    }

    fn regs(tcr: u64, ttbr0: u64, ttbr1: u64) -> Regs {
        Regs { sctlr: 1, tcr, ttbr0, ttbr1, aarch32: false }
    }

    /// A 32-bit guest's LPAE tables, as Linux's armmp-lpae kernel sets
    /// them up: TTBCR.EAE, T1SZ = 2 (TTBR1 maps the top GiB, the kernel at
    /// 0xC000_0000, from a level-2 table), T0SZ = 0 (TTBR0 the rest, user
    /// space, from a level-1 root of 4 entries that is only 32-byte
    /// aligned).
    #[test]
    fn a_32_bit_guests_lpae_tables_split_between_ttbr0_and_ttbr1() {
        let mut m = Mem::new();
        let (user, kernel) = (m.table() + 0x40, m.table());
        // (shift, index bits) per level: TTBR0 from level 1 (4 entries, by
        // VA[31:30]); TTBR1's 30-bit half from level 2.
        const FROM_L1: &[(u64, u64)] = &[(30, 2), (21, 9), (12, 9)];
        const FROM_L2: &[(u64, u64)] = &[(21, 9), (12, 9)];
        let page = |m: &mut Mem, root: u64, levels: &[(u64, u64)], va: u64, ipa: u64, ro: bool| {
            let mut table = root;
            for &(shift, bits) in levels {
                let slot = table + ((va >> shift) & ((1 << bits) - 1)) * 8;
                if shift == 12 {
                    m.words.insert(slot, ipa | 3 | (ro as u64) << 7);
                    return;
                }
                let next = match m.words.get(&slot) {
                    Some(d) => d & OA_MASK,
                    None => {
                        let t = m.table();
                        m.words.insert(slot, t | 3);
                        t
                    }
                };
                table = next;
            }
        };
        page(&mut m, kernel, FROM_L2, 0xc012_3000, 0x4812_3000, false);
        page(&mut m, user, FROM_L1, 0x0001_0000, 0x4a00_0000, true);
        let r = Regs { sctlr: 1, tcr: 1 << 31 | 2 << 16, ttbr0: user | 7 << 48, ttbr1: kernel, aarch32: true };
        let t = translate(&r, 0xc012_3456, m.read()).unwrap();
        assert_eq!(t, Translation { ipa: 0x4812_3456, writable: true });
        let t = translate(&r, 0x0001_0010, m.read()).unwrap();
        assert_eq!(t, Translation { ipa: 0x4a00_0010, writable: false });
        // TTBR1's half is walked with TTBR1's tables only.
        assert_eq!(translate(&r, 0xc001_0000, m.read()), Err(WalkError::NotMapped));
        // Past 32 bits, short descriptors, and a disabled half: refused.
        assert_eq!(translate(&r, 1 << 32, m.read()), Err(WalkError::OutOfRange));
        assert_eq!(translate(&Regs { tcr: 2 << 16, ..r }, 0xc012_3456, m.read()), Err(WalkError::Unsupported));
        assert_eq!(translate(&Regs { tcr: r.tcr | 1 << 23, ..r }, 0xc012_3456, m.read()), Err(WalkError::Unsupported));
        // Both sizes set: the gap between the halves is nobody's.
        let split = Regs { tcr: 1 << 31 | 2 << 16 | 2, ..r };
        assert_eq!(translate(&split, 0x8000_0000, m.read()), Err(WalkError::OutOfRange));
        assert_eq!(translate(&split, 0xc012_3456, m.read()).map(|t| t.ipa), Ok(0x4812_3456));
    }

    #[test]
    fn kernel_and_user_halves_translate_through_their_own_tables() {
        let mut m = Mem::new();
        let (t0, t1) = (m.table(), m.table());
        m.map(t1, 4, 0xffff_8000_1234_5000, 0x4800_0000, false);
        m.map(t0, 4, 0x0000_aaaa_0000_1000, 0x4900_0000, true);
        let r = regs(TCR_48, t0 | 0x5 << 48, t1);
        assert_eq!(translate(&r, 0xffff_8000_1234_5abc, m.read()), Ok(Translation { ipa: 0x4800_0abc, writable: true }));
        assert_eq!(translate(&r, 0x0000_aaaa_0000_1008, m.read()), Ok(Translation { ipa: 0x4900_0008, writable: false }));
        // TBI0: a tagged user pointer translates as its untagged form.
        assert_eq!(translate(&r, 0x2a00_aaaa_0000_1008, m.read()).map(|t| t.ipa), Ok(0x4900_0008));
        assert_eq!(translate(&r, 0xffff_8000_1234_6000, m.read()), Err(WalkError::NotMapped));
        // No TBI1: a tagged kernel pointer is out of range.
        assert_eq!(translate(&r, 0x2aff_8000_1234_5abc, m.read()), Err(WalkError::OutOfRange));
    }

    #[test]
    fn blocks_mmu_off_and_hostile_registers() {
        let mut m = Mem::new();
        let t1 = m.table();
        let l1 = m.table();
        // Level 0 entry -> level-1 table holding a 1 GiB block.
        m.words.insert(t1 + 256 * 8, l1 | 3);
        m.words.insert(l1, 0x8000_0000 | 1);
        let r = regs(TCR_48, 0, t1);
        assert_eq!(translate(&r, 0xffff_8000_0001_2345, m.read()).map(|t| t.ipa), Ok(0x8001_2345));
        // A level-0 "block" is reserved.
        m.words.insert(t1 + 257 * 8, 0x8000_0000 | 1);
        assert_eq!(translate(&r, 0xffff_8080_0000_0000, m.read()), Err(WalkError::NotMapped));
        // MMU off: flat.
        assert_eq!(translate(&Regs { sctlr: 0, ..r }, 0x4000_1234, m.read()).map(|t| t.ipa), Ok(0x4000_1234));
        // A table pointer outside guest RAM.
        let wild = regs(TCR_48, 0, 0x1000);
        assert_eq!(translate(&wild, 0xffff_8000_0000_0000, m.read()), Err(WalkError::TableUnreadable));
        // EPD1, a reserved granule, an absurd size.
        assert_eq!(translate(&regs(TCR_48 | 1 << 23, 0, t1), 0xffff_8000_0000_0000, m.read()), Err(WalkError::Unsupported));
        assert_eq!(translate(&regs(16 | 3 << 14, 0, 0), 0x1000, m.read()), Err(WalkError::Unsupported));
        assert_eq!(translate(&regs(60, 0, 0), 0x1000, m.read()), Err(WalkError::Unsupported));
        // APTable[1] on the way down makes the leaf read-only.
        m.words.insert(t1 + 256 * 8, l1 | 3 | 1 << 62);
        assert_eq!(translate(&r, 0xffff_8000_0001_2345, m.read()).map(|t| t.writable), Ok(false));
    }

    proptest! {
        /// Pages mapped into a 3- or 4-level table translate to where they
        /// were mapped; everything else faults.
        #[test]
        fn mapped_pages_translate_and_others_fault(
            pages in prop::collection::hash_map(0u64..(1 << 27), (0u64..(1 << 20), any::<bool>()), 1..40),
            probe in 0u64..(1 << 27),
            four in any::<bool>(),
            offset in 0u64..4096,
        ) {
            let (tcr, levels, top) = if four { (TCR_48, 4, 0xffff_0000_0000_0000u64) } else { (TCR_39, 3, 0xffff_ff80_0000_0000u64) };
            let mut m = Mem::new();
            let root = m.table();
            let va_of = |p: u64| top | (p << 12) & ((1u64 << (64 - (tcr >> 16 & 0x3f))) - 1);
            for (&p, &(frame, ro)) in &pages {
                m.map(root, levels, va_of(p), 0x1_0000_0000 + (frame << 12), ro);
            }
            let r = regs(tcr, 0, root);
            let got = translate(&r, va_of(probe) | offset, m.read());
            // Distinct page numbers may alias once truncated to the VA size.
            let expect = pages.iter().filter(|(&p, _)| va_of(p) == va_of(probe)).map(|(_, v)| *v).last();
            match expect {
                Some(_) => {
                    let t = got.unwrap();
                    prop_assert_eq!(t.ipa & 0xfff, offset);
                    prop_assert!(pages.iter().any(|(&p, &(f, ro))| va_of(p) == va_of(probe) && t.ipa == 0x1_0000_0000 + (f << 12) + offset && t.writable == !ro));
                }
                None => prop_assert_eq!(got, Err(WalkError::NotMapped)),
            }
        }
    }
}
