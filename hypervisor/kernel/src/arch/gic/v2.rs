//! GICv2 (GIC-400): the memory-mapped CPU interface (GICC) the hypervisor
//! takes its interrupts through, and the virtual interface control frame
//! (GICH) whose list registers feed the guest's GICV.

use super::super::entry::MAX_CPUS;
use super::super::sysreg::{cpu_index, dsb_sy};
use super::{gicd, init_spis, rd, wr, ICENABLER, IGROUPR, IPRIORITYR, ISENABLER, KICK_SGI, OWN_PPIS, VifState};
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use hv_core::vgic::lr_v2;

static GICC: AtomicU64 = AtomicU64::new(0);
static GICH: AtomicU64 = AtomicU64::new(0);
/// Each pCPU's CPU interface mask (GICD_ITARGETSR0 as it reads it): what
/// SGIs and SPI targets name. Not the pCPU index on every SoC.
static IFACE: [AtomicU8; MAX_CPUS] = [const { AtomicU8::new(0) }; MAX_CPUS];
/// The last SGI each pCPU acknowledged, with its source CPU: GICv2 wants
/// the whole value back at EOI and deactivation.
static SGI_IAR: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];

const GICC_CTLR: usize = 0x0;
const GICC_PMR: usize = 0x4;
const GICC_BPR: usize = 0x8;
const GICC_IAR: usize = 0xC;
const GICC_EOIR: usize = 0x10;
const GICC_DIR: usize = 0x1000;

const GICH_HCR: usize = 0x0;
const GICH_VTR: usize = 0x4;
const GICH_VMCR: usize = 0x8;
const GICH_APR: usize = 0xF0;
const GICH_LR0: usize = 0x100;
/// GICv2 has up to 64 list registers (QEMU and the GIC-400 have 4); a
/// vCPU's context keeps this many.
const MAX_LRS: usize = hv_core::vgic::MAX_LRS;

const GICD_TYPER: usize = 0x4;
const GICD_ITARGETSR: usize = 0x800;
const GICD_SGIR: usize = 0xF00;

fn gicc() -> usize {
    GICC.load(Ordering::Relaxed) as usize
}

fn gich() -> usize {
    GICH.load(Ordering::Relaxed) as usize
}

/// # Safety
/// `gicc` and `gich` must be the board's CPU interface and virtual
/// interface control frames, mapped as device memory at EL2.
pub unsafe fn init_distributor(gicc: u64, gich: u64) {
    GICC.store(gicc, Ordering::Relaxed);
    GICH.store(gich, Ordering::Relaxed);
    // Enable (both groups where the GIC has no security extensions; the
    // non-secure view, on a board with firmware at EL3, has only bit 0).
    init_spis(0b11);
}

pub fn init_cpu(cpu: usize) {
    let d = gicd();
    // SGIs and PPIs are banked: this CPU's own.
    wr(d + ICENABLER, 0xffff_ffff);
    wr(d + IGROUPR, 0xffff_ffff);
    for n in 0..8 {
        wr(d + IPRIORITYR + 4 * n, 0xa0a0_a0a0);
    }
    if let Some(slot) = IFACE.get(cpu) {
        slot.store(rd(d + GICD_ITARGETSR) as u8, Ordering::Relaxed);
    }
    wr(d + ISENABLER, OWN_PPIS);
    let c = gicc();
    wr(c + GICC_PMR, 0xff);
    wr(c + GICC_BPR, 0);
    // EOImode 1: priority drop and deactivation apart (HW-linked virtual
    // interrupts deactivate their physical one). Our interrupts are group
    // 1. A GIC without security extensions (QEMU) shows the Secure layout:
    // both groups on, group 1 acknowledged here (AckCtl, else IAR says
    // 1022), EOImode for both. Behind firmware at EL3 (a board's GIC-400)
    // we get the Non-secure layout: group 1 on and its EOImode.
    let ctlr = if rd(d + GICD_TYPER) & (1 << 10) == 0 { 0b111 | (0b11 << 9) } else { 1 | (1 << 9) };
    wr(c + GICC_CTLR, ctlr);
    LRS.store(((rd(gich() + GICH_VTR) & 0x3f) as usize + 1).min(MAX_LRS) as u8, Ordering::Relaxed);
    enable_vif();
}

pub fn ack() -> u32 {
    let v = rd(gicc() + GICC_IAR);
    dsb_sy();
    let intid = v & 0x3ff;
    if intid < 16 {
        if let Some(slot) = SGI_IAR.get(cpu_index()) {
            slot.store(v & 0x1fff, Ordering::Relaxed);
        }
    }
    intid
}

/// The value GICv2 wants back for `intid`: an SGI's with its source.
fn with_source(intid: u32) -> u32 {
    if intid < 16 {
        SGI_IAR.get(cpu_index()).map_or(intid, |s| {
            let v = s.load(Ordering::Relaxed);
            if v & 0x3ff == intid {
                v
            } else {
                intid
            }
        })
    } else {
        intid
    }
}

pub fn eoi(intid: u32) {
    wr(gicc() + GICC_EOIR, with_source(intid));
}

pub fn deactivate(intid: u32) {
    wr(gicc() + GICC_DIR, with_source(intid));
}

/// pCPU `pcpu`'s CPU interface mask; `None` until that pCPU read it.
fn iface(pcpu: usize) -> Option<u8> {
    IFACE.get(pcpu).map(|m| m.load(Ordering::Relaxed)).filter(|&m| m != 0)
}

/// Sends the kick SGI to pCPU `pcpu`'s CPU interface. A pCPU whose
/// interface is not up yet runs nothing to kick.
pub fn kick(pcpu: usize) {
    let Some(mask) = iface(pcpu) else { return };
    dsb_sy();
    wr(gicd() + GICD_SGIR, (mask as u32) << 16 | KICK_SGI);
}

/// GICD_ITARGETSR: SPI `n` to pCPU `pcpu`'s CPU interface. False (nothing
/// written) if that interface is not up: a target of none is never taken.
pub fn target(n: usize, pcpu: usize) -> bool {
    let Some(mask) = iface(pcpu) else { return false };
    let at = gicd() + GICD_ITARGETSR + (n & !3);
    let shift = 8 * (n % 4);
    wr(at, (rd(at) & !(0xff << shift)) | ((mask as u32) << shift));
    true
}

/// The list registers GICH_VTR reports, read once at boot (the same on
/// every CPU interface of a GIC-400).
static LRS: AtomicU8 = AtomicU8::new(0);

pub fn lr_count() -> usize {
    LRS.load(Ordering::Relaxed) as usize
}

pub fn read_lr(i: usize) -> u64 {
    if i >= lr_count() {
        return 0;
    }
    lr_v2::to_v3(rd(gich() + GICH_LR0 + 4 * i))
}

pub fn write_lr(i: usize, v: u64) {
    if i >= lr_count() {
        return;
    }
    wr(gich() + GICH_LR0 + 4 * i, lr_v2::from_v3(v));
}

pub fn set_underflow_irq(on: bool) {
    let hcr = rd(gich() + GICH_HCR);
    let new = if on { hcr | (1 << 1) } else { hcr & !(1 << 1) };
    if new != hcr {
        wr(gich() + GICH_HCR, new);
    }
}

pub fn enable_vif() {
    wr(gich() + GICH_HCR, 1);
    dsb_sy();
}

/// GICv2 has one active-priorities register (GICH_APR) for both groups.
pub fn save_vif(s: &mut VifState) {
    s.vmcr = rd(gich() + GICH_VMCR) as u64;
    s.ap1[0] = rd(gich() + GICH_APR) as u64;
}

pub fn restore_vif(s: &VifState) {
    wr(gich() + GICH_VMCR, s.vmcr as u32);
    wr(gich() + GICH_APR, s.ap1[0] as u32);
    dsb_sy();
}
