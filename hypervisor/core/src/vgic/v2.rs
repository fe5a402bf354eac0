//! The GICv2 face of the virtual GIC: the distributor as a GICv2 guest
//! sees it (private interrupts banked per CPU, ITARGETSR, GICD_SGIR) and
//! the GICH_LR list-register encoding. The pending state and the list
//! register allocation behind it are the GICv3 ones in the parent module:
//! only the registers differ. The guest's CPU interface is the hardware's
//! GICV frame, mapped where it expects GICC.

use super::*;

const GICD_ITARGETSR: u64 = 0x0800;
const GICD_SGIR: u64 = 0x0F00;
/// In the 4 KiB GICv2 distributor (GICv3's is at 0xFFE8 of 64 KiB).
const GICD_PIDR2_V2: u64 = 0x0FE8;
const PIDR2_GICV2: u64 = 0x2 << 4;

impl VGic {
    /// A GICv2 guest's access to the distributor at `offset` (within
    /// 4 KiB) by its `vcpu`, which selects the banked registers of SGIs and
    /// PPIs. Returns the value for a load and the vCPUs to kick.
    pub fn dist_access_v2(&mut self, vcpu: usize, offset: u64, acc: Access, value: u64) -> (u64, KickMask) {
        if vcpu >= self.nvcpus {
            return (0, 0);
        }
        match (offset, acc.write) {
            (GICD_CTLR, false) => (self.ctlr as u64, 0),
            (GICD_CTLR, true) => {
                self.ctlr = value as u32 & CTLR_ENABLE_MASK;
                (0, self.all_vcpus())
            }
            // ITLinesNumber and CPUNumber; no security extensions.
            (GICD_TYPER, false) => ((SPI_WORDS as u64 - 1) | ((self.nvcpus as u64 - 1) << 5), 0),
            (GICD_IIDR, false) => (IIDR_VALUE, 0),
            (GICD_PIDR2_V2, false) => (PIDR2_GICV2, 0),
            (GICD_SGIR, true) if acc.size == 4 => (0, self.sgir_write(vcpu, value as u32)),
            // Every interrupt is group 0 to a GICv2 guest, as KVM and Xen
            // present it: Linux enables only group 0 at its GICC.
            (o, _) if (GICD_IGROUPR..GICD_IGROUPR + 0x80).contains(&o) => (0, 0),
            (o, w) if (GICD_ITARGETSR..GICD_ITARGETSR + NR_IRQS as u64).contains(&o) => {
                self.targets_access(vcpu, (o - GICD_ITARGETSR) as usize, acc, value, w)
            }
            // Word 0 of each bit array, the first 32 priorities and ICFGR0/1
            // are the accessing CPU's own.
            (o, _) if private_word(o) => self.private_access(vcpu, o, acc, value),
            _ => self.spi_access(offset, acc, value),
        }
    }

    /// GICD_ITARGETSR: one byte per INTID, a mask of CPU interfaces. A
    /// private interrupt's byte names the reader; an SPI goes to the lowest
    /// vCPU its mask names (one target, as GICv3 routing has), vCPU 0 if it
    /// names none of this domain's.
    fn targets_access(&mut self, vcpu: usize, first: usize, acc: Access, value: u64, write: bool) -> (u64, KickMask) {
        let n = acc.size as usize;
        if first + n > NR_IRQS {
            return (0, 0);
        }
        if !write {
            let mut out = 0u64;
            for i in 0..n {
                let intid = first + i;
                let t = if intid < NR_PRIVATE { vcpu } else { self.spi_target(intid) };
                out |= (1u64 << t) << (8 * i);
            }
            return (out, 0);
        }
        for i in 0..n {
            let intid = first + i;
            if intid < NR_PRIVATE {
                continue; // read-only
            }
            let mask = (value >> (8 * i)) as u8 & (self.all_vcpus() as u8);
            self.set_route(intid, if mask == 0 { 0 } else { mask.trailing_zeros() as u8 });
        }
        (0, self.all_vcpus())
    }

    /// A write of GICD_SGIR by `sender`: pends the SGI in each vCPU the
    /// filter and target list name. CPU interfaces beyond the domain's
    /// vCPUs do not exist for it.
    fn sgir_write(&mut self, sender: usize, value: u32) -> KickMask {
        let intid = value & 0xf;
        let all = self.all_vcpus() as u32;
        let targets = match (value >> 24) & 0b11 {
            0 => (value >> 16) & 0xff & all,
            1 => all & !(1 << sender),
            2 => 1 << sender,
            _ => 0, // reserved
        };
        let mut kick = 0;
        for t in 0..self.nvcpus {
            if targets & (1 << t) != 0 {
                kick |= self.inject(t, intid, false);
            }
        }
        kick
    }
}

/// Whether distributor offset `o` is one of the registers GICv2 banks per
/// CPU: word 0 of IGROUPR..ICPENDR, IPRIORITYR0-7, ICFGR0-1.
fn private_word(o: u64) -> bool {
    (o >= GICD_IGROUPR && o < GICD_ICPENDR + 0x80 && o % 0x80 < 4)
        || (GICD_IPRIORITYR..GICD_IPRIORITYR + NR_PRIVATE as u64).contains(&o)
        || (GICD_ICFGR..GICD_ICFGR + 8).contains(&o)
}

/// GICH_LR<n>, GICv2's list registers, converted to and from the GICv3
/// encoding the rest of the hypervisor keeps (see [`super::lr`]). A GICv2
/// guest's interrupts are group 0 (its distributor says so), so the group
/// bit is dropped on the way in and given back on the way out.
pub mod lr_v2 {
    use super::lr;

    const HW: u32 = 1 << 31;
    const STATE_SHIFT: u32 = 28;
    const PRIORITY_SHIFT: u32 = 23;
    const PHYS_SHIFT: u32 = 10;

    /// The GICH_LR value for an ICH_LR_EL2 one. GICv2 keeps 5 priority
    /// bits (the top ones) and 10-bit INTIDs.
    pub fn from_v3(v: u64) -> u32 {
        let state = ((v >> 62) & 0b11) as u32;
        let prio = ((v >> 48) & 0xff) as u32 >> 3;
        let mut out = (state << STATE_SHIFT) | (prio << PRIORITY_SHIFT) | (v as u32 & 0x3ff);
        if v & lr::HW != 0 {
            out |= HW | ((((v >> 32) & 0x3ff) as u32) << PHYS_SHIFT);
        }
        out
    }

    /// The ICH_LR_EL2 form of a GICH_LR value (as the hardware left it).
    pub fn to_v3(v: u32) -> u64 {
        let mut out = ((((v >> STATE_SHIFT) & 0b11) as u64) << 62)
            | ((((v >> PRIORITY_SHIFT) & 0x1f) as u64) << 51)
            | (v & 0x3ff) as u64
            | lr::GROUP1;
        if v & HW != 0 {
            out |= lr::HW | ((((v >> PHYS_SHIFT) & 0x3ff) as u64) << 32);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::lr_v2;
    use super::*;

    fn acc(size: u8, write: bool) -> Access {
        Access { size, write, reg: 0, sign_extend: false, sf: false }
    }

    #[test]
    fn private_interrupts_are_banked_per_vcpu() {
        let mut g = VGic::new(2);
        // vCPU 1 enables its timer PPI; vCPU 0's word 0 is untouched.
        g.dist_access_v2(1, GICD_ISENABLER, acc(4, true), 1 << 27);
        assert_eq!(g.dist_access_v2(1, GICD_ISENABLER, acc(4, false), 0).0, 1 << 27);
        assert_eq!(g.dist_access_v2(0, GICD_ISENABLER, acc(4, false), 0).0, 0);
        // Priorities too, byte by byte.
        g.dist_access_v2(0, GICD_IPRIORITYR + 27, acc(1, true), 0xa0);
        assert_eq!(g.dist_access_v2(0, GICD_IPRIORITYR + 24, acc(4, false), 0).0, 0xa0 << 24);
        assert_eq!(g.dist_access_v2(1, GICD_IPRIORITYR + 24, acc(4, false), 0).0, 0);
        // And it is delivered to vCPU 1 only.
        g.dist_access_v2(0, GICD_CTLR, acc(4, true), 1);
        g.inject(1, 27, true);
        let mut lrs = [0u64; 4];
        g.flush(0, &mut lrs);
        assert!(lr::is_free(lrs[0]));
        g.flush(1, &mut lrs);
        assert_eq!(lr::intid(lrs[0]), 27);
    }

    #[test]
    fn itargetsr_routes_spis_and_names_the_reader_for_private_ones() {
        let mut g = VGic::new(2);
        assert_eq!(g.dist_access_v2(1, GICD_ITARGETSR, acc(4, false), 0).0, 0x0202_0202);
        assert_eq!(g.dist_access_v2(0, GICD_ITARGETSR + 28, acc(4, false), 0).0, 0x0101_0101);
        // SPI 40 to vCPU 1; a mask naming no vCPU of the domain means vCPU 0.
        g.dist_access_v2(0, GICD_ITARGETSR + 40, acc(1, true), 0x02);
        g.dist_access_v2(0, GICD_ITARGETSR + 41, acc(1, true), 0x80);
        assert_eq!(g.dist_access_v2(0, GICD_ITARGETSR + 40, acc(2, false), 0).0, 0x0102);
        g.dist_access_v2(0, GICD_CTLR, acc(4, true), 1);
        g.dist_access_v2(0, GICD_ISENABLER + 4, acc(4, true), 1 << 8);
        assert_eq!(g.inject(0, 40, false), 0b10);
        // Private targets are read-only.
        g.dist_access_v2(0, GICD_ITARGETSR + 27, acc(1, true), 0x02);
        assert_eq!(g.dist_access_v2(0, GICD_ITARGETSR + 27, acc(1, false), 0).0, 0x01);
        // Out of range accesses are harmless.
        assert_eq!(g.dist_access_v2(0, GICD_ITARGETSR + NR_IRQS as u64 - 1, acc(4, false), 0), (0, 0));
        assert_eq!(g.dist_access_v2(9, GICD_ITARGETSR, acc(4, false), 0), (0, 0));
    }

    #[test]
    fn sgir_pends_sgis_by_list_filter_and_stays_in_the_domain() {
        let mut g = VGic::new(3);
        for v in 0..3 {
            g.dist_access_v2(v, GICD_ISENABLER, acc(4, true), 0xffff);
        }
        // Target list {1, 2} plus CPU interfaces the domain does not have.
        assert_eq!(g.dist_access_v2(0, GICD_SGIR, acc(4, true), 0x00f6_0003).1, 0b110);
        assert!(g.has_deliverable(1) && g.has_deliverable(2) && !g.has_deliverable(0));
        // All but self; self only; the reserved filter does nothing.
        assert_eq!(g.dist_access_v2(2, GICD_SGIR, acc(4, true), 0x0100_0005).1, 0b011);
        assert_eq!(g.dist_access_v2(1, GICD_SGIR, acc(4, true), 0x0200_0006).1, 0b010);
        assert_eq!(g.dist_access_v2(1, GICD_SGIR, acc(4, true), 0x0300_0007).1, 0);
    }

    #[test]
    fn typer_and_ctlr_are_gicv2s() {
        let mut g = VGic::new(4);
        let typer = g.dist_access_v2(0, GICD_TYPER, acc(4, false), 0).0;
        assert_eq!((typer >> 5) & 7, 3, "CPUNumber");
        assert_eq!(typer & 0x1f, SPI_WORDS as u64 - 1);
        assert_eq!(g.dist_access_v2(0, GICD_CTLR, acc(4, false), 0).0 & (CTLR_ARE_NS as u64), 0);
        assert_eq!(g.dist_access_v2(0, GICD_PIDR2_V2, acc(4, false), 0).0, PIDR2_GICV2);
        assert_eq!(g.dist_access_v2(0, GICD_IGROUPR, acc(4, false), 0).0, 0);
        assert_eq!(g.dist_access_v2(0, GICD_IGROUPR + 4, acc(4, false), 0).0, 0);
    }

    #[test]
    fn list_registers_convert_both_ways() {
        let v3 = lr::pending(27, 0xa0, true);
        let v2 = lr_v2::from_v3(v3);
        assert_eq!(v2 & 0x3ff, 27);
        assert_eq!((v2 >> 10) & 0x3ff, 27, "physical INTID");
        assert_eq!(v2 >> 28 & 0b11, 0b01, "pending");
        assert_eq!((v2 >> 23) & 0x1f, 0xa0 >> 3);
        assert_ne!(v2 & (1 << 31), 0, "HW");
        assert_eq!(v2 & (1 << 30), 0, "group 0, as the guest's distributor says");
        assert_eq!(lr_v2::to_v3(v2), v3);
        let soft = lr::pending(40, 0x80, false) | lr::STATE_ACTIVE;
        assert_eq!(lr_v2::to_v3(lr_v2::from_v3(soft)), soft);
        assert!(lr::is_free(lr_v2::to_v3(0)));
    }
}
