//! The physical GICv3: distributor and redistributor set-up, interrupt
//! acknowledge/EOI for the hypervisor, and the virtual CPU interface's
//! list registers (ICH_*_EL2).

use super::sysreg::{dsb_sy, isb, read, write};
use core::sync::atomic::{AtomicU64, Ordering};
use hv_core::vgic::lr;

static GICD: AtomicU64 = AtomicU64::new(0);
static GICR: AtomicU64 = AtomicU64::new(0);
/// Redistributors the board has: a pCPU index must be below it.
static NR_REDIST: AtomicU64 = AtomicU64::new(0);

/// Every address below is computed from an INTID or a pCPU index: only
/// values inside the GIC's frames pass.
fn is_spi(intid: u32) -> bool {
    (32..1020).contains(&intid)
}

fn is_private(cpu: usize, intid: u32) -> bool {
    intid < 32 && (cpu as u64) < NR_REDIST.load(Ordering::Relaxed)
}

const GICD_CTLR: usize = 0x0;
const GICR_WAKER: usize = 0x14;
const SGI_BASE: usize = 0x1_0000;
const IGROUPR: usize = 0x80;
const ISENABLER: usize = 0x100;
const ICENABLER: usize = 0x180;
const IPRIORITYR: usize = 0x400;
const GICR_STRIDE: usize = 0x2_0000;

/// SGI a pCPU sends another to make it look at its vCPU's pending work.
pub const KICK_SGI: u32 = 0;
pub const MAINTENANCE_PPI: u32 = 25;
pub const VTIMER_PPI: u32 = 27;
/// EL2 physical timer: the shared pCPUs' scheduling tick.
pub const HYP_TIMER_PPI: u32 = 26;
pub const SPURIOUS: u32 = 1023;

fn reg(addr: usize) -> *mut u32 {
    addr as *mut u32
}

fn rd(addr: usize) -> u32 {
    // SAFETY: `addr` is a register inside the GIC's MMIO frames (base from
    // the boot bundle plus a fixed architectural offset), mapped as Device
    // memory by the EL2 tables.
    unsafe { core::ptr::read_volatile(reg(addr)) }
}

fn wr(addr: usize, v: u32) {
    // SAFETY: as for `rd`.
    unsafe { core::ptr::write_volatile(reg(addr), v) }
}

/// Distributor: all SPIs group 1, disabled; affinity routing on. Primary CPU only.
///
/// # Safety
/// `gicd` and `gicr` must be the board's GICv3 distributor and first
/// redistributor, mapped as device memory at EL2; every other function
/// here relies on them.
pub unsafe fn init_distributor(gicd: u64, gicr: u64, nr_redist: usize) {
    GICD.store(gicd, Ordering::Relaxed);
    GICR.store(gicr, Ordering::Relaxed);
    NR_REDIST.store(nr_redist as u64, Ordering::Relaxed);
    let d = gicd as usize;
    wr(d + GICD_CTLR, 0);
    for n in 1..32 {
        wr(d + ICENABLER + 4 * n, 0xffff_ffff);
        wr(d + IGROUPR + 4 * n, 0xffff_ffff);
    }
    // EnableGrp0 | EnableGrp1 | ARE (single security state, as QEMU's virt is without EL3).
    wr(d + GICD_CTLR, 0b1_0011);
    dsb_sy();
}

/// This CPU's redistributor and CPU interface.
pub fn init_cpu(cpu: usize) {
    let r = GICR.load(Ordering::Relaxed) as usize + cpu * GICR_STRIDE;
    wr(r + GICR_WAKER, rd(r + GICR_WAKER) & !(1 << 1));
    while rd(r + GICR_WAKER) & (1 << 2) != 0 {}
    let s = r + SGI_BASE;
    wr(s + ICENABLER, 0xffff_ffff);
    wr(s + IGROUPR, 0xffff_ffff);
    for n in 0..8 {
        wr(s + IPRIORITYR + 4 * n, 0xa0a0_a0a0);
    }
    wr(s + ISENABLER, (1 << KICK_SGI) | (1 << MAINTENANCE_PPI) | (1 << VTIMER_PPI) | (1 << HYP_TIMER_PPI));
    dsb_sy();

    // System-register interface at EL2 and for EL1; EOImode 1 so that
    // priority drop and deactivation are separate (HW-linked vIRQs).
    write!(icc_sre_el2, 0b1111);
    isb();
    write!(icc_pmr_el1, 0xff);
    write!(icc_bpr1_el1, 0);
    write!(icc_ctlr_el1, 1 << 1);
    write!(icc_igrpen1_el1, 1);
    write!(ich_hcr_el2, 1);
    isb();
}

/// Acknowledges the highest pending interrupt (SPURIOUS when none).
pub fn ack() -> u32 {
    let v = read!(icc_iar1_el1) as u32 & 0xff_ffff;
    dsb_sy();
    v
}

/// Priority drop only: a HW-linked virtual interrupt deactivates it later.
pub fn eoi(intid: u32) {
    write!(icc_eoir1_el1, intid as u64);
}

pub fn deactivate(intid: u32) {
    write!(icc_dir_el1, intid as u64);
}

/// Sends the kick SGI to the pCPU with affinity-0 `aff0` (cluster 0).
pub fn kick(aff0: u64) {
    dsb_sy();
    write!(icc_sgi1r_el1, (KICK_SGI as u64) << 24 | (1 << (aff0 & 0xf)));
    isb();
}

/// Number of list registers this CPU interface implements.
pub fn lr_count() -> usize {
    ((read!(ich_vtr_el2) & 0x1f) + 1) as usize
}

macro_rules! lr_op {
    ($i:expr, $op:ident $(, $v:expr)?) => {
        match $i {
            0 => $op!(ich_lr0_el2 $(, $v)?),
            1 => $op!(ich_lr1_el2 $(, $v)?),
            2 => $op!(ich_lr2_el2 $(, $v)?),
            3 => $op!(ich_lr3_el2 $(, $v)?),
            4 => $op!(ich_lr4_el2 $(, $v)?),
            5 => $op!(ich_lr5_el2 $(, $v)?),
            6 => $op!(ich_lr6_el2 $(, $v)?),
            7 => $op!(ich_lr7_el2 $(, $v)?),
            8 => $op!(ich_lr8_el2 $(, $v)?),
            9 => $op!(ich_lr9_el2 $(, $v)?),
            10 => $op!(ich_lr10_el2 $(, $v)?),
            11 => $op!(ich_lr11_el2 $(, $v)?),
            12 => $op!(ich_lr12_el2 $(, $v)?),
            13 => $op!(ich_lr13_el2 $(, $v)?),
            14 => $op!(ich_lr14_el2 $(, $v)?),
            _ => $op!(ich_lr15_el2 $(, $v)?),
        }
    };
}

pub fn read_lr(i: usize) -> u64 {
    lr_op!(i, read)
}

pub fn write_lr(i: usize, v: u64) {
    lr_op!(i, write, v)
}

/// Underflow maintenance interrupt on/off (refill LRs when they drain).
pub fn set_underflow_irq(on: bool) {
    let hcr = read!(ich_hcr_el2);
    let new = if on { hcr | (1 << 1) } else { hcr & !(1 << 1) };
    if new != hcr {
        write!(ich_hcr_el2, new);
    }
}

/// Discards the list registers of a vCPU that stops or starts afresh. A
/// passed-through SPI in one (HW-linked) would never see the guest's
/// deactivation and stay active for good, silencing its device: it is
/// deactivated here.
pub fn discard_virtual_interface(nlr: usize) {
    for i in 0..nlr {
        let v = read_lr(i);
        let pintid = ((v >> 32) & 0x3ff) as u32;
        if v & lr::HW != 0 && !lr::is_free(v) && (32..1020).contains(&pintid) {
            clear_active_spi(pintid);
        }
    }
    reset_virtual_interface(nlr);
}

/// Clears the virtual CPU interface for a vCPU that starts afresh.
pub fn reset_virtual_interface(nlr: usize) {
    for i in 0..nlr {
        write_lr(i, 0);
    }
    // Active priorities left by an interrupt the old vCPU never completed
    // would mask every new one of the same priority: clear them. Which
    // AP<n>R registers exist depends on the implemented priority bits.
    let pribits = ((read!(ich_vtr_el2) >> 29) & 7) + 1;
    write!(ich_ap0r0_el2, 0);
    write!(ich_ap1r0_el2, 0);
    if pribits >= 6 {
        write!(ich_ap0r1_el2, 0);
        write!(ich_ap1r1_el2, 0);
    }
    if pribits >= 7 {
        write!(ich_ap0r2_el2, 0);
        write!(ich_ap1r2_el2, 0);
        write!(ich_ap0r3_el2, 0);
        write!(ich_ap1r3_el2, 0);
    }
    write!(ich_vmcr_el2, 0);
    write!(ich_hcr_el2, 1);
    isb();
}

/// Deactivates `intid` (an SGI or PPI) on `cpu` if it is active, e.g. the
/// virtual timer's PPI left active by a vCPU that was reset mid-interrupt.
pub fn clear_active(cpu: usize, intid: u32) {
    if !is_private(cpu, intid) {
        return;
    }
    const ISACTIVER: usize = 0x300;
    const ICACTIVER: usize = 0x380;
    let s = GICR.load(Ordering::Relaxed) as usize + cpu * GICR_STRIDE + SGI_BASE;
    if rd(s + ISACTIVER) & (1 << intid) != 0 {
        wr(s + ICACTIVER, 1 << intid);
        dsb_sy();
    }
}

/// Routes SPI `intid` to the pCPU with affinity `aff`, level-triggered,
/// group 1, and enables it: a passed-through device's interrupt.
pub fn route_spi(intid: u32, aff: u64) {
    if !is_spi(intid) {
        return;
    }
    let d = GICD.load(Ordering::Relaxed) as usize;
    let n = intid as usize;
    const IROUTER: usize = 0x6000;
    const ICFGR: usize = 0xC00;
    // SAFETY: a 64-bit GICD_IROUTER<n> register of the distributor.
    unsafe { core::ptr::write_volatile((d + IROUTER + 8 * n) as *mut u64, aff & 0xff_00ff_ffff) };
    let cfg = d + ICFGR + 4 * (n / 16);
    wr(cfg, rd(cfg) & !(0b10 << (2 * (n % 16))));
    let pr = d + IPRIORITYR + (n & !3);
    wr(pr, (rd(pr) & !(0xff << (8 * (n % 4)))) | (0xa0 << (8 * (n % 4))));
    wr(d + IGROUPR + 4 * (n / 32), rd(d + IGROUPR + 4 * (n / 32)) | (1 << (n % 32)));
    wr(d + ISENABLER + 4 * (n / 32), 1 << (n % 32));
    dsb_sy();
}

/// Enables or disables SPI `intid` at the distributor: a passed-through
/// interrupt is off while its owner is not running, so a level-high line
/// nobody will service cannot keep a pCPU taking it.
pub fn set_spi_enabled(intid: u32, on: bool) {
    if !is_spi(intid) {
        return;
    }
    const ICENABLER: usize = 0x180;
    let d = GICD.load(Ordering::Relaxed) as usize;
    let (w, b) = (intid as usize / 32, intid % 32);
    wr(d + if on { ISENABLER } else { ICENABLER } + 4 * w, 1 << b);
    dsb_sy();
}

/// Deactivates SPI `intid` if it is active (its owner was reset).
pub fn clear_active_spi(intid: u32) {
    if !is_spi(intid) {
        return;
    }
    const ISACTIVER: usize = 0x300;
    const ICACTIVER: usize = 0x380;
    let d = GICD.load(Ordering::Relaxed) as usize;
    let (w, b) = (intid as usize / 32, intid % 32);
    if rd(d + ISACTIVER + 4 * w) & (1 << b) != 0 {
        wr(d + ICACTIVER + 4 * w, 1 << b);
        dsb_sy();
    }
}
