//! Virtual GIC: the distributor and redistributor registers a domain sees,
//! the pending state of its interrupts, and the allocation of pending
//! interrupts to the CPU interface's list registers.
//!
//! The guest's CPU interface is the hardware's virtual one (ICV_* registers
//! fed by ICH_LR<n>_EL2); only the distributor and redistributors, reached by
//! stage-2 faults, are emulated here. One `VGic` per domain, behind the
//! domain's lock in the arch layer. Every method takes guest-controlled
//! offsets and values and never panics on them.

use crate::esr::Access;

mod v2;
pub use v2::lr_v2;

/// INTIDs 0..NR_IRQS: 16 SGIs, 16 PPIs and 224 SPIs.
pub const NR_IRQS: usize = 256;
pub const NR_PRIVATE: usize = 32;
const SPI_WORDS: usize = NR_IRQS / 32;
pub const MAX_VCPUS: usize = 8;
pub const MAX_LRS: usize = 16;

/// The PPIs the hypervisor takes on every board, as the architecture
/// recommends them (Arm BSA) and every board's device tree says: the GIC's
/// maintenance interrupt, the EL2 physical timer and the EL1 virtual
/// timer. `cargo xtask test` checks each board's tree agrees.
pub const MAINTENANCE_INTID: u32 = 25;
pub const HYP_TIMER_INTID: u32 = 26;
pub const VTIMER_INTID: u32 = 27;

/// A set of vCPUs (bit i = vCPU i) whose pCPUs should be kicked so they
/// move newly pending interrupts into their list registers.
pub type KickMask = u8;

#[derive(Clone, Copy, Default)]
struct Private {
    enabled: u32,
    pending: u32,
    in_lr: u32,
    /// Pending instance came from a physical interrupt (HW-linked LR).
    hw: u32,
    /// ICFGR1: PPIs configured edge-triggered.
    edge: u32,
    priority: [u8; NR_PRIVATE],
    asleep: bool,
    /// Which INTID each list register holds, as far as we last wrote it.
    lr_shadow: [u16; MAX_LRS],
}

const NO_IRQ: u16 = u16::MAX;

pub struct VGic {
    nvcpus: usize,
    ctlr: u32,
    spi_enabled: [u32; SPI_WORDS],
    spi_pending: [u32; SPI_WORDS],
    spi_in_lr: [u32; SPI_WORDS],
    spi_hw: [u32; SPI_WORDS],
    spi_edge: [u32; SPI_WORDS],
    priority: [u8; NR_IRQS],
    /// Target vCPU of each SPI (from GICD_IROUTER).
    route: [u8; NR_IRQS],
    /// SPIs kept on vCPU 0 whatever the guest routes: passed-through ones,
    /// whose physical SPI targets vCPU 0's pCPU (a GICv2 SPI is deactivated
    /// through the CPU interface that took it). Survives resets.
    pinned: [u32; SPI_WORDS],
    vcpu: [Private; MAX_VCPUS],
}

// Distributor register offsets.
const GICD_CTLR: u64 = 0x0000;
const GICD_TYPER: u64 = 0x0004;
const GICD_IIDR: u64 = 0x0008;
const GICD_IGROUPR: u64 = 0x0080;
const GICD_ISENABLER: u64 = 0x0100;
const GICD_ICPENDR: u64 = 0x0280;
const GICD_IPRIORITYR: u64 = 0x0400;
const GICD_ICFGR: u64 = 0x0C00;
const GICD_IROUTER: u64 = 0x6000;
const GICD_PIDR2: u64 = 0xFFE8;
// Redistributor: RD_base frame, then SGI_base frame at +64 KiB.
const GICR_CTLR: u64 = 0x0000;
const GICR_IIDR: u64 = 0x0004;
const GICR_TYPER: u64 = 0x0008;
const GICR_WAKER: u64 = 0x0014;
const GICR_PIDR2: u64 = 0xFFE8;
const SGI_BASE: u64 = 0x1_0000;
pub const GICR_FRAME: u64 = 0x2_0000;

const IIDR_VALUE: u64 = 0x0100_043B; // implementer Arm, a revision of our own
const PIDR2_GICV3: u64 = 0x3 << 4;
const CTLR_ARE_NS: u32 = 1 << 4;
const CTLR_ENABLE_MASK: u32 = 0b11;

/// The guest-visible list-register encoding (ICH_LR<n>_EL2).
pub mod lr {
    pub const STATE_PENDING: u64 = 0b01 << 62;
    pub const STATE_ACTIVE: u64 = 0b10 << 62;
    pub const STATE_MASK: u64 = 0b11 << 62;
    pub const HW: u64 = 1 << 61;
    pub const GROUP1: u64 = 1 << 60;

    /// A pending Group-1 interrupt; `hw` links it to the same physical INTID
    /// so the guest's deactivation deactivates the physical interrupt too.
    pub fn pending(intid: u32, priority: u8, hw: bool) -> u64 {
        let mut v = STATE_PENDING | GROUP1 | ((priority as u64) << 48) | intid as u64;
        if hw {
            v |= HW | ((intid as u64 & 0x3ff) << 32);
        }
        v
    }

    pub fn is_free(v: u64) -> bool {
        v & STATE_MASK == 0
    }

    pub fn intid(v: u64) -> u32 {
        v as u32
    }
}

fn bit(word: u32, n: usize) -> bool {
    word & (1 << n) != 0
}

impl VGic {
    pub fn new(nvcpus: usize) -> Self {
        let mut v = VGic {
            nvcpus: nvcpus.clamp(1, MAX_VCPUS),
            ctlr: 0,
            spi_enabled: [0; SPI_WORDS],
            spi_pending: [0; SPI_WORDS],
            spi_in_lr: [0; SPI_WORDS],
            spi_hw: [0; SPI_WORDS],
            spi_edge: [0; SPI_WORDS],
            priority: [0; NR_IRQS],
            route: [0; NR_IRQS],
            pinned: [0; SPI_WORDS],
            vcpu: [Private::default(); MAX_VCPUS],
        };
        v.reset();
        v
    }

    /// Back to the state a freshly booted domain sees.
    pub fn reset(&mut self) {
        *self = VGic {
            nvcpus: self.nvcpus,
            ctlr: 0,
            spi_enabled: [0; SPI_WORDS],
            spi_pending: [0; SPI_WORDS],
            spi_in_lr: [0; SPI_WORDS],
            spi_hw: [0; SPI_WORDS],
            spi_edge: [0; SPI_WORDS],
            priority: [0; NR_IRQS],
            route: [0; NR_IRQS],
            pinned: self.pinned,
            vcpu: [Private {
                // SGIs are always edge-triggered and enabled-by-default off.
                asleep: true,
                lr_shadow: [NO_IRQ; MAX_LRS],
                ..Private::default()
            }; MAX_VCPUS],
        };
    }

    pub fn vcpus(&self) -> usize {
        self.nvcpus
    }

    /// Marks `intid` pending for `vcpu` (SGI/PPI) or for its routed vCPU (SPI).
    /// Out-of-range INTIDs or vCPUs are ignored.
    pub fn inject(&mut self, vcpu: usize, intid: u32, hw: bool) -> KickMask {
        let n = intid as usize;
        if n < NR_PRIVATE {
            let Some(p) = self.vcpu.get_mut(vcpu).filter(|_| vcpu < self.nvcpus) else { return 0 };
            p.pending |= 1 << n;
            if hw {
                p.hw |= 1 << n;
            }
            1 << vcpu
        } else if n < NR_IRQS {
            let (w, b) = (n / 32, n % 32);
            self.spi_pending[w] |= 1 << b;
            if hw {
                self.spi_hw[w] |= 1 << b;
            }
            1 << self.spi_target(n)
        } else {
            0
        }
    }

    /// Keeps SPI `intid` on vCPU 0 from now on (boot time, for a
    /// passed-through SPI): the guest's routing of it is ignored.
    pub fn pin_to_vcpu0(&mut self, intid: u32) {
        let n = intid as usize;
        if (NR_PRIVATE..NR_IRQS).contains(&n) {
            self.pinned[n / 32] |= 1 << (n % 32);
            self.route[n] = 0;
        }
    }

    /// Routes SPI `intid` to `vcpu` as the guest asked, unless it is pinned.
    fn set_route(&mut self, intid: usize, vcpu: u8) {
        if !bit(self.pinned[intid / 32], intid % 32) {
            self.route[intid] = vcpu;
        }
    }

    fn spi_target(&self, intid: usize) -> usize {
        let t = self.route[intid] as usize;
        if t < self.nvcpus {
            t
        } else {
            0
        }
    }

    /// Drives a level-sensitive SPI from an emulated device: raised, it is
    /// pending unless the guest is already handling it; lowered, a pending
    /// instance not yet delivered is withdrawn.
    pub fn set_level(&mut self, intid: u32, high: bool) -> KickMask {
        let n = intid as usize;
        if !(NR_PRIVATE..NR_IRQS).contains(&n) {
            return 0;
        }
        let (w, b) = (n / 32, n % 32);
        if high {
            if bit(self.spi_in_lr[w], b) || bit(self.spi_pending[w], b) {
                return 0;
            }
            self.inject(0, intid, false)
        } else {
            self.spi_pending[w] &= !(1 << b);
            0
        }
    }

    /// A write of ICC_SGI1R_EL1 by `sender`: pends the SGI in each targeted
    /// vCPU of this domain. Targets outside the domain do not exist for it.
    pub fn send_sgi(&mut self, sender: usize, value: u64) -> KickMask {
        let intid = ((value >> 24) & 0xf) as u32;
        let irm = value & (1 << 40) != 0;
        let targets: u32 = if irm {
            ((1u32 << self.nvcpus) - 1) & !(1 << sender)
        } else {
            let aff1 = (value >> 16) & 0xff;
            let aff2 = (value >> 32) & 0xff;
            let aff3 = (value >> 48) & 0xff;
            let rs = (value >> 44) & 0xf;
            if aff1 | aff2 | aff3 | rs != 0 {
                0
            } else {
                (value & 0xffff) as u32 & ((1u32 << self.nvcpus) - 1)
            }
        };
        let mut kick = 0;
        for t in 0..self.nvcpus {
            if targets & (1 << t) != 0 {
                kick |= self.inject(t, intid, false);
            }
        }
        kick
    }

    /// Reconciles `vcpu`'s list registers with the pending state: LRs the
    /// guest has finished with are retired, free LRs are filled with the
    /// highest-priority enabled pending interrupts. Returns true when pending
    /// interrupts are left over, so the caller asks for a maintenance
    /// interrupt (ICH_HCR_EL2.UIE) to come back when LRs free up.
    pub fn flush(&mut self, vcpu: usize, lrs: &mut [u64]) -> bool {
        if vcpu >= self.nvcpus {
            return false;
        }
        let nlr = lrs.len().min(MAX_LRS);
        for (i, lr_value) in lrs.iter().enumerate().take(nlr) {
            let held = self.vcpu[vcpu].lr_shadow[i];
            if held != NO_IRQ && lr::is_free(*lr_value) {
                self.retire(vcpu, held as usize);
                self.vcpu[vcpu].lr_shadow[i] = NO_IRQ;
            }
        }
        // An interrupt pending again while the guest still handles it (its
        // LR is Active): mark that LR pending+active rather than wait for
        // the LR to drain, which no exit may follow for a long time.
        for (i, lr_value) in lrs.iter_mut().enumerate().take(nlr) {
            let held = self.vcpu[vcpu].lr_shadow[i];
            if held != NO_IRQ
                && *lr_value & lr::STATE_MASK == lr::STATE_ACTIVE
                && *lr_value & lr::HW == 0
                && self.take_repend(vcpu, held as usize)
            {
                *lr_value |= lr::STATE_PENDING;
            }
        }
        for (i, lr_value) in lrs.iter_mut().enumerate().take(nlr) {
            if !lr::is_free(*lr_value) {
                continue;
            }
            let Some((intid, prio, hw)) = self.take_best(vcpu) else { return false };
            *lr_value = lr::pending(intid as u32, prio, hw);
            self.vcpu[vcpu].lr_shadow[i] = intid as u16;
        }
        self.best(vcpu).is_some()
    }

    /// The highest-priority (lowest value) deliverable interrupt for `vcpu`.
    fn best(&self, vcpu: usize) -> Option<(usize, u8)> {
        self.best_where(vcpu, true)
    }

    /// The highest-priority enabled pending interrupt for `vcpu`; with
    /// `skip_in_lr`, only one with no instance in a list register.
    fn best_where(&self, vcpu: usize, skip_in_lr: bool) -> Option<(usize, u8)> {
        let p = &self.vcpu[vcpu];
        let in_lr_mask = if skip_in_lr { u32::MAX } else { 0 };
        let mut best: Option<(usize, u8)> = None;
        let mut consider = |intid: usize, prio: u8| {
            if best.is_none_or(|(_, bp)| prio < bp) {
                best = Some((intid, prio));
            }
        };
        let private = p.pending & p.enabled & !(p.in_lr & in_lr_mask);
        for n in 0..NR_PRIVATE {
            if bit(private, n) {
                consider(n, p.priority[n]);
            }
        }
        if self.ctlr & CTLR_ENABLE_MASK != 0 {
            for w in 1..SPI_WORDS {
                let ready = self.spi_pending[w] & self.spi_enabled[w] & !(self.spi_in_lr[w] & in_lr_mask);
                for b in 0..32 {
                    let n = w * 32 + b;
                    if bit(ready, b) && self.spi_target(n) == vcpu {
                        consider(n, self.priority[n]);
                    }
                }
            }
        }
        best
    }

    fn take_best(&mut self, vcpu: usize) -> Option<(usize, u8, bool)> {
        let (n, prio) = self.best(vcpu)?;
        let hw = if n < NR_PRIVATE {
            let p = &mut self.vcpu[vcpu];
            let hw = bit(p.hw, n);
            p.pending &= !(1 << n);
            p.hw &= !(1 << n);
            p.in_lr |= 1 << n;
            hw
        } else {
            let (w, b) = (n / 32, n % 32);
            let hw = bit(self.spi_hw[w], b);
            self.spi_pending[w] &= !(1 << b);
            self.spi_hw[w] &= !(1 << b);
            self.spi_in_lr[w] |= 1 << b;
            hw
        };
        Some((n, prio, hw))
    }

    /// Consumes a software-pending instance of `intid`, which is in an LR.
    fn take_repend(&mut self, vcpu: usize, intid: usize) -> bool {
        if intid < NR_PRIVATE {
            let p = &mut self.vcpu[vcpu];
            let was = bit(p.pending & p.enabled & !p.hw, intid);
            p.pending &= !((was as u32) << intid);
            was
        } else if intid < NR_IRQS {
            let (w, b) = (intid / 32, intid % 32);
            let was = bit(self.spi_pending[w] & self.spi_enabled[w] & !self.spi_hw[w], b);
            self.spi_pending[w] &= !((was as u32) << b);
            was
        } else {
            false
        }
    }

    fn retire(&mut self, vcpu: usize, intid: usize) {
        if intid < NR_PRIVATE {
            self.vcpu[vcpu].in_lr &= !(1 << intid);
        } else if intid < NR_IRQS {
            self.spi_in_lr[intid / 32] &= !(1 << (intid % 32));
        }
    }

    /// Whether `vcpu` has an enabled pending interrupt not yet in an LR: a
    /// vCPU waiting in WFI wakes up for it.
    pub fn has_deliverable(&self, vcpu: usize) -> bool {
        vcpu < self.nvcpus && self.best(vcpu).is_some()
    }

    /// Whether `vcpu` has an enabled pending interrupt, even one waiting
    /// behind an instance of itself in a list register: its pCPU must look
    /// (`flush`) to deliver it, so this is what earns a kick.
    pub fn needs_flush(&self, vcpu: usize) -> bool {
        vcpu < self.nvcpus && self.best_where(vcpu, false).is_some()
    }

    /// Whether `intid` is currently in one of `vcpu`'s list registers.
    #[cfg(test)]
    pub fn in_lr(&self, vcpu: usize, intid: u32) -> bool {
        let n = intid as usize;
        if n < NR_PRIVATE {
            self.vcpu.get(vcpu).is_some_and(|p| bit(p.in_lr, n))
        } else {
            n < NR_IRQS && bit(self.spi_in_lr[n / 32], n % 32)
        }
    }

    /// Drops every list register of `vcpu` (the vCPU is being reset).
    pub fn forget_lrs(&mut self, vcpu: usize) {
        if vcpu >= self.nvcpus {
            return;
        }
        for i in 0..MAX_LRS {
            let held = self.vcpu[vcpu].lr_shadow[i];
            if held != NO_IRQ {
                self.retire(vcpu, held as usize);
                self.vcpu[vcpu].lr_shadow[i] = NO_IRQ;
            }
        }
    }

    /// A guest access to the distributor at `offset` (within 64 KiB).
    /// Returns the value for a load and the vCPUs to kick.
    pub fn dist_access(&mut self, offset: u64, acc: Access, value: u64) -> (u64, KickMask) {
        match (offset, acc.write) {
            (GICD_CTLR, false) => ((self.ctlr | CTLR_ARE_NS) as u64, 0),
            (GICD_CTLR, true) => {
                self.ctlr = value as u32 & CTLR_ENABLE_MASK;
                (0, self.all_vcpus())
            }
            (GICD_TYPER, false) => {
                // ITLinesNumber, IDbits = 9 (10 bits), No1N.
                ((SPI_WORDS as u64 - 1) | (9 << 19) | (1 << 25), 0)
            }
            (GICD_IIDR, false) => (IIDR_VALUE, 0),
            (GICD_PIDR2, false) => (PIDR2_GICV3, 0),
            (o, w) if (GICD_IROUTER + 8 * NR_PRIVATE as u64..GICD_IROUTER + 8 * NR_IRQS as u64).contains(&o) => {
                let intid = ((o - GICD_IROUTER) / 8) as usize;
                if o % 8 != 0 {
                    return (0, 0); // upper half of a 32-bit access pair: affinity 3 is always 0
                }
                if !w {
                    return (self.route[intid] as u64, 0);
                }
                // Aff0 names the vCPU; IRM (any CPU) and unknown targets go to vCPU 0.
                let aff0 = (value & 0xff) as usize;
                let irm = value & (1 << 31) != 0;
                self.set_route(intid, if !irm && aff0 < self.nvcpus { aff0 as u8 } else { 0 });
                (0, self.all_vcpus())
            }
            _ => self.spi_access(offset, acc, value),
        }
    }

    /// A distributor access to the SPIs' registers, the same in GICv2 and
    /// GICv3 (the private interrupts' words in them read as zero).
    fn spi_access(&mut self, offset: u64, acc: Access, value: u64) -> (u64, KickMask) {
        let size = acc.size as u64;
        match (offset, acc.write) {
            (o, false) if (GICD_IGROUPR..GICD_IGROUPR + 0x80).contains(&o) => (0xffff_ffff, 0),
            (o, w) if (GICD_ISENABLER..GICD_ICPENDR + 0x80).contains(&o) && size == 4 => {
                let (block, word) = ((o - GICD_ISENABLER) / 0x80, ((o % 0x80) / 4) as usize);
                if word == 0 || word >= SPI_WORDS {
                    // Private interrupts live in the redistributors (ARE=1).
                    return (0, 0);
                }
                // A HW-linked SPI cannot be cleared: its physical interrupt
                // is active until the guest completes it, and dropped here it
                // would stay active for good, silencing the device.
                let keep = if block == 3 { self.spi_hw[word] } else { 0 };
                let reg = match block {
                    0 | 1 => &mut self.spi_enabled[word],
                    _ => &mut self.spi_pending[word],
                };
                if !w {
                    return (*reg as u64, 0);
                }
                let v = value as u32;
                match block {
                    0 | 2 => *reg |= v,
                    _ => *reg &= !(v & !keep),
                }
                (0, if block == 0 || block == 2 { self.all_vcpus() } else { 0 })
            }
            (o, w) if (GICD_IPRIORITYR..GICD_IPRIORITYR + NR_IRQS as u64).contains(&o) => {
                let first = (o - GICD_IPRIORITYR) as usize;
                if first < NR_PRIVATE {
                    return (0, 0);
                }
                bytes_access(&mut self.priority, first, acc, value, w)
            }
            (o, w) if (GICD_ICFGR..GICD_ICFGR + (NR_IRQS as u64 / 4)).contains(&o) && size == 4 => {
                let word = ((o - GICD_ICFGR) / 4) as usize; // 16 INTIDs per word
                if word < 2 {
                    return (if word == 0 { 0xaaaa_aaaa } else { 0 }, 0);
                }
                let (w32, shift) = (word / 2, (word % 2) * 16);
                if !w {
                    let mut out = 0u64;
                    for i in 0..16 {
                        if bit(self.spi_edge[w32], shift + i) {
                            out |= 2 << (2 * i);
                        }
                    }
                    return (out, 0);
                }
                for i in 0..16 {
                    let edge = value & (2 << (2 * i)) != 0;
                    let m = 1u32 << (shift + i);
                    self.spi_edge[w32] = if edge { self.spi_edge[w32] | m } else { self.spi_edge[w32] & !m };
                }
                (0, 0)
            }
            _ => (0, 0), // RAZ/WI
        }
    }

    /// A guest access to the redistributor region at `offset` from its base.
    pub fn redist_access(&mut self, offset: u64, acc: Access, value: u64) -> (u64, KickMask) {
        let vcpu = (offset / GICR_FRAME) as usize;
        if vcpu >= self.nvcpus {
            return (0, 0);
        }
        let o = offset % GICR_FRAME;
        let last = vcpu + 1 == self.nvcpus;
        let p = &mut self.vcpu[vcpu];
        match (o, acc.write) {
            (GICR_CTLR, false) => (0, 0),
            (GICR_IIDR, false) => (IIDR_VALUE, 0),
            (GICR_TYPER, false) | (0x000C, false) => {
                let typer = ((vcpu as u64) << 32) | ((vcpu as u64) << 8) | if last { 1 << 4 } else { 0 };
                (if o == GICR_TYPER { typer } else { typer >> 32 }, 0)
            }
            (GICR_WAKER, false) => (if p.asleep { 0b110 } else { 0 }, 0),
            (GICR_WAKER, true) => {
                p.asleep = value & 0b10 != 0;
                (0, 0)
            }
            (GICR_PIDR2, false) => (PIDR2_GICV3, 0),
            (o, _) if o >= SGI_BASE => self.private_access(vcpu, o - SGI_BASE, acc, value),
            _ => (0, 0),
        }
    }

    /// A guest access to `vcpu`'s own SGIs and PPIs, at `o` in the
    /// distributor's layout (word 0 of each bit array, the first 32
    /// priority bytes, ICFGR0 and 1): in GICv3's SGI_base frame, or banked
    /// in GICv2's distributor.
    fn private_access(&mut self, vcpu: usize, o: u64, acc: Access, value: u64) -> (u64, KickMask) {
        let Some(p) = self.vcpu.get_mut(vcpu).filter(|_| vcpu < self.nvcpus) else { return (0, 0) };
        match (o, acc.write) {
            (GICD_IGROUPR, false) => (0xffff_ffff, 0),
            (o, w) if (GICD_ISENABLER..GICD_ICPENDR + 4).contains(&o) && o % 0x80 == 0 && acc.size == 4 => {
                let block = (o - GICD_ISENABLER) / 0x80;
                // A HW-linked instance cannot be cleared: its physical
                // interrupt is active until the guest completes it.
                let keep = if block == 3 { p.hw } else { 0 };
                let reg = if block < 2 { &mut p.enabled } else { &mut p.pending };
                if !w {
                    return (*reg as u64, 0);
                }
                match block {
                    0 | 2 => *reg |= value as u32,
                    _ => *reg &= !(value as u32 & !keep),
                }
                (0, if block == 0 || block == 2 { 1 << vcpu } else { 0 })
            }
            (o, w) if (GICD_IPRIORITYR..GICD_IPRIORITYR + NR_PRIVATE as u64).contains(&o) => {
                bytes_access(&mut p.priority, (o - GICD_IPRIORITYR) as usize, acc, value, w)
            }
            (GICD_ICFGR, false) => (0xaaaa_aaaa, 0),
            (o, w) if o == GICD_ICFGR + 4 && acc.size == 4 => {
                if !w {
                    let mut out = 0u64;
                    for i in 0..16 {
                        if bit(p.edge, 16 + i) {
                            out |= 2 << (2 * i);
                        }
                    }
                    return (out, 0);
                }
                for i in 0..16 {
                    let m = 1u32 << (16 + i);
                    p.edge = if value & (2 << (2 * i)) != 0 { p.edge | m } else { p.edge & !m };
                }
                (0, 0)
            }
            _ => (0, 0),
        }
    }

    fn all_vcpus(&self) -> KickMask {
        ((1u32 << self.nvcpus) - 1) as KickMask
    }
}

/// Byte-addressed registers (IPRIORITYR): any access size within the array.
fn bytes_access(arr: &mut [u8], first: usize, acc: Access, value: u64, write: bool) -> (u64, KickMask) {
    let n = acc.size as usize;
    if first + n > arr.len() {
        return (0, 0);
    }
    if write {
        for i in 0..n {
            arr[first + i] = (value >> (8 * i)) as u8;
        }
        (0, 0)
    } else {
        let mut out = 0u64;
        for i in 0..n {
            out |= (arr[first + i] as u64) << (8 * i);
        }
        (out, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w32() -> Access {
        Access { size: 4, write: true, reg: 0, sign_extend: false, sf: false }
    }
    fn r32() -> Access {
        Access { size: 4, write: false, reg: 0, sign_extend: false, sf: false }
    }
    fn r64() -> Access {
        Access { size: 8, write: false, reg: 0, sign_extend: false, sf: true }
    }

    /// Enables INTID `n` of `vcpu` the way a guest driver does.
    fn enable_private(g: &mut VGic, vcpu: usize, n: u32) {
        g.redist_access(vcpu as u64 * GICR_FRAME + SGI_BASE + GICD_ISENABLER, w32(), 1 << n);
    }

    #[test]
    fn pending_enabled_interrupt_goes_into_a_free_lr() {
        let mut g = VGic::new(1);
        enable_private(&mut g, 0, 27);
        assert_eq!(g.inject(0, 27, true), 1);
        let mut lrs = [0u64; 4];
        assert!(!g.flush(0, &mut lrs));
        assert_eq!(lr::intid(lrs[0]), 27);
        assert_eq!(lrs[0] & lr::STATE_MASK, lr::STATE_PENDING);
        assert_ne!(lrs[0] & lr::HW, 0, "timer interrupt is HW-linked");
        assert_eq!((lrs[0] >> 32) & 0x3ff, 27);
        assert!(lr::is_free(lrs[1]));
        assert!(g.in_lr(0, 27));
        // Still in the LR: a second flush does not duplicate it.
        assert!(!g.flush(0, &mut lrs));
        assert!(lr::is_free(lrs[1]));
        // Guest EOIs: the LR reads back as invalid and the interrupt retires.
        lrs[0] = 0;
        g.flush(0, &mut lrs);
        assert!(!g.in_lr(0, 27));
    }

    #[test]
    fn disabled_interrupt_waits_until_enabled() {
        let mut g = VGic::new(1);
        g.inject(0, 27, false);
        let mut lrs = [0u64; 4];
        g.flush(0, &mut lrs);
        assert!(lrs.iter().all(|&v| lr::is_free(v)));
        enable_private(&mut g, 0, 27);
        g.flush(0, &mut lrs);
        assert_eq!(lr::intid(lrs[0]), 27);
    }

    #[test]
    fn lrs_fill_by_priority_and_report_overflow() {
        let mut g = VGic::new(1);
        for n in 0..6u32 {
            enable_private(&mut g, 0, n);
            // SGI n gets priority 0x80 - n*0x10: higher n is more urgent.
            let reg = SGI_BASE + GICD_IPRIORITYR + n as u64;
            g.redist_access(reg, Access { size: 1, write: true, reg: 0, sign_extend: false, sf: false }, 0x80 - n as u64 * 0x10);
            g.inject(0, n, false);
        }
        let mut lrs = [0u64; 4];
        assert!(g.flush(0, &mut lrs), "two interrupts are left for later");
        let got: Vec<u32> = lrs.iter().map(|&v| lr::intid(v)).collect();
        assert_eq!(got, vec![5, 4, 3, 2]);
        // Two LRs complete; the rest come in on the next flush.
        lrs[0] = 0;
        lrs[2] = 0;
        assert!(!g.flush(0, &mut lrs));
        let mut got: Vec<u32> = lrs.iter().map(|&v| lr::intid(v)).collect();
        got.sort();
        assert_eq!(got, vec![0, 1, 2, 4]);
    }

    #[test]
    fn an_sgi_sent_again_while_active_becomes_pending_and_active() {
        let mut g = VGic::new(2);
        enable_private(&mut g, 0, 1);
        g.send_sgi(1, (1 << 24) | 1);
        let mut lrs = [0u64; 4];
        g.flush(0, &mut lrs);
        assert_eq!(lr::intid(lrs[0]), 1);
        // The guest acknowledges it: the LR turns Active.
        lrs[0] = (lrs[0] & !lr::STATE_MASK) | lr::STATE_ACTIVE;
        g.send_sgi(1, (1 << 24) | 1);
        assert!(!g.flush(0, &mut lrs));
        assert_eq!(lrs[0] & lr::STATE_MASK, lr::STATE_ACTIVE | lr::STATE_PENDING);
        assert!(lr::is_free(lrs[1]), "not duplicated into a second LR");
    }

    #[test]
    fn an_sgi_behind_its_own_lr_needs_a_flush_but_is_not_deliverable() {
        let mut g = VGic::new(2);
        enable_private(&mut g, 0, 1);
        g.send_sgi(1, (1 << 24) | 1);
        assert!(g.has_deliverable(0) && g.needs_flush(0));
        let mut lrs = [0u64; 4];
        g.flush(0, &mut lrs);
        assert!(!g.has_deliverable(0) && !g.needs_flush(0), "all in the LRs");
        // Sent again while the guest handles the first (its LR is active):
        // a WFI-blocked vCPU has nothing new to take, but its pCPU must
        // flush (be kicked) so the LR becomes pending and active.
        lrs[0] = (lrs[0] & !lr::STATE_MASK) | lr::STATE_ACTIVE;
        g.send_sgi(1, (1 << 24) | 1);
        assert!(!g.has_deliverable(0));
        assert!(g.needs_flush(0));
        g.flush(0, &mut lrs);
        assert!(!g.needs_flush(0));
    }

    #[test]
    fn icpendr_cannot_drop_a_hw_linked_timer_instance() {
        let mut g = VGic::new(1);
        g.inject(0, 27, true);
        g.redist_access(SGI_BASE + GICD_ICPENDR, w32(), 1 << 27);
        enable_private(&mut g, 0, 27);
        let mut lrs = [0u64; 4];
        g.flush(0, &mut lrs);
        assert_eq!(lr::intid(lrs[0]), 27, "the physical timer stays active, so its virtual instance must be delivered");
    }

    #[test]
    fn icpendr_cannot_drop_a_hw_linked_spi() {
        let mut g = VGic::new(1);
        g.dist_access(GICD_CTLR, w32(), 0b10);
        g.dist_access(GICD_ISENABLER + 4, w32(), 1 << 15); // INTID 47
        g.inject(0, 47, true); // a passed-through device's interrupt
        g.dist_access(GICD_ICPENDR + 4, w32(), 1 << 15);
        let mut lrs = [0u64; 4];
        g.flush(0, &mut lrs);
        assert_eq!(lr::intid(lrs[0]), 47, "the physical SPI stays active, so its virtual instance must be delivered");
        // A software-only SPI is cleared as the guest asks.
        g.dist_access(GICD_ISENABLER + 4, w32(), 1 << 16); // INTID 48
        g.inject(0, 48, false);
        g.dist_access(GICD_ICPENDR + 4, w32(), 1 << 16);
        let mut lrs = [0u64; 4];
        g.flush(0, &mut lrs);
        assert!(lrs.iter().all(|&v| lr::intid(v) != 48 || lr::is_free(v)));
    }

    #[test]
    fn a_level_interrupt_is_delivered_once_and_again_after_completion_while_high() {
        let mut g = VGic::new(1);
        g.dist_access(GICD_CTLR, w32(), 0b10);
        g.dist_access(GICD_ISENABLER + 4, w32(), 1); // INTID 32
        g.set_level(32, true);
        g.set_level(32, true);
        let mut lrs = [0u64; 4];
        g.flush(0, &mut lrs);
        assert_eq!(lr::intid(lrs[0]), 32);
        assert!(lr::is_free(lrs[1]), "raised twice, delivered once");
        // Completed while the line is still high: it comes back.
        lrs[0] = 0;
        g.flush(0, &mut lrs);
        g.set_level(32, true);
        g.flush(0, &mut lrs);
        assert_eq!(lr::intid(lrs[0]), 32);
        // Lowered before delivery: withdrawn.
        lrs[0] = 0;
        g.flush(0, &mut lrs);
        g.set_level(32, true);
        g.set_level(32, false);
        g.flush(0, &mut lrs);
        assert!(lr::is_free(lrs[0]));
    }

    #[test]
    fn sgis_reach_only_targets_inside_the_domain() {
        let mut g = VGic::new(2);
        // TargetList = {0, 1, 5}: vCPU 5 does not exist in a 2-vCPU domain.
        let kick = g.send_sgi(0, (3 << 24) | 0b10_0011);
        assert_eq!(kick, 0b11);
        // Affinity-routed to another cluster: no such vCPU.
        assert_eq!(g.send_sgi(0, (1 << 16) | 1), 0);
        // IRM: everybody but the sender.
        assert_eq!(g.send_sgi(1, 1 << 40), 0b01);
    }

    #[test]
    fn spis_follow_irouter_and_the_distributor_enable() {
        let mut g = VGic::new(2);
        let w64 = Access { size: 8, write: true, reg: 0, sign_extend: false, sf: true };
        g.dist_access(GICD_IROUTER + 8 * 40, w64, 1);
        g.dist_access(GICD_ISENABLER + 4, w32(), 1 << 8); // INTID 40
        assert_eq!(g.inject(0, 40, false), 0b10);
        let mut lrs = [0u64; 4];
        g.flush(1, &mut lrs);
        assert!(lr::is_free(lrs[0]), "distributor still disabled");
        g.dist_access(GICD_CTLR, w32(), 0b10);
        g.flush(0, &mut lrs);
        assert!(lr::is_free(lrs[0]), "routed to vCPU 1, not 0");
        g.flush(1, &mut lrs);
        assert_eq!(lr::intid(lrs[0]), 40);
    }

    /// A passed-through SPI stays with vCPU 0, whose pCPU its physical SPI
    /// targets, whatever the guest writes (before or after a reset).
    #[test]
    fn pinned_spis_ignore_the_guests_routing() {
        let mut g = VGic::new(2);
        let w64 = Access { size: 8, write: true, reg: 0, sign_extend: false, sf: true };
        g.pin_to_vcpu0(41);
        g.dist_access(GICD_IROUTER + 8 * 41, w64, 1);
        g.dist_access(GICD_IROUTER + 8 * 42, w64, 1);
        assert_eq!(g.dist_access(GICD_IROUTER + 8 * 41, r64(), 0).0, 0);
        assert_eq!(g.inject(0, 41, true), 0b01);
        assert_eq!(g.inject(0, 42, false), 0b10, "an unpinned SPI follows IROUTER");
        g.reset();
        g.dist_access(GICD_IROUTER + 8 * 41, w64, 1);
        assert_eq!(g.inject(0, 41, true), 0b01, "pinned across a reset");
        g.pin_to_vcpu0(5); // private: nothing to pin
        g.pin_to_vcpu0(NR_IRQS as u32); // beyond the distributor
    }

    #[test]
    fn redistributor_identifies_itself_like_linux_expects() {
        let mut g = VGic::new(2);
        let (t0, _) = g.redist_access(GICR_TYPER, r64(), 0);
        let (t1, _) = g.redist_access(GICR_FRAME + GICR_TYPER, r64(), 0);
        assert_eq!(t0 & (1 << 4), 0);
        assert_eq!(t1 & (1 << 4), 1 << 4, "last frame has GICR_TYPER.Last");
        assert_eq!(t1 >> 32, 1, "affinity 0.0.0.1");
        assert_eq!(g.redist_access(GICR_PIDR2, r32(), 0).0 >> 4 & 0xf, 3);
        assert_eq!(g.dist_access(GICD_PIDR2, r32(), 0).0 >> 4 & 0xf, 3);
        // Waking the redistributor clears ChildrenAsleep.
        g.redist_access(GICR_WAKER, w32(), 0);
        assert_eq!(g.redist_access(GICR_WAKER, r32(), 0).0, 0);
        // Frames beyond the domain's vCPUs read as zero.
        assert_eq!(g.redist_access(5 * GICR_FRAME + GICR_TYPER, r64(), 0).0, 0);
    }

    #[test]
    fn hostile_offsets_and_values_are_harmless() {
        let mut g = VGic::new(1);
        for off in (0..0x1_0000u64).step_by(4) {
            g.dist_access(off, w32(), u64::MAX);
            g.dist_access(off, r32(), 0);
        }
        for off in (0..0x4_0000u64).step_by(4) {
            g.redist_access(off, w32(), u64::MAX);
            g.redist_access(off, r64(), 0);
        }
        assert_eq!(g.inject(7, 3, false), 0);
        assert_eq!(g.inject(0, 10_000, false), 0);
        g.flush(9, &mut [0; 4]);
    }
}
