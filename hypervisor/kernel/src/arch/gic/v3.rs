//! GICv3: redistributors, the system-register CPU interface at EL2 and the
//! virtual interface's ICH_*_EL2 registers.

use super::super::sysreg::{dsb_sy, isb, read, write};
use super::{gicd, init_spis, rd, wr, IGROUPR, ICENABLER, IPRIORITYR, ISENABLER, OWN_PPIS, VifState, KICK_SGI};
use core::sync::atomic::{AtomicU64, Ordering};

static GICR: AtomicU64 = AtomicU64::new(0);
/// Redistributors the board has: a pCPU index must be below it.
static NR_REDIST: AtomicU64 = AtomicU64::new(0);

const GICR_WAKER: usize = 0x14;
const SGI_BASE: usize = 0x1_0000;
const GICR_STRIDE: usize = 0x2_0000;

/// Distributor with affinity routing; redistributors at `gicr`.
///
/// # Safety
/// `gicr` must be the board's first redistributor, mapped as device memory
/// at EL2, with `nr_redist` of them.
pub unsafe fn init_distributor(gicr: u64, nr_redist: usize) {
    GICR.store(gicr, Ordering::Relaxed);
    NR_REDIST.store(nr_redist as u64, Ordering::Relaxed);
    // EnableGrp0 | EnableGrp1 | ARE (single security state, as QEMU's virt is without EL3).
    init_spis(0b1_0011);
}

/// `cpu`'s SGI_base frame, if the board has that redistributor.
pub fn sgi_frame(cpu: usize) -> Option<usize> {
    ((cpu as u64) < NR_REDIST.load(Ordering::Relaxed))
        .then(|| GICR.load(Ordering::Relaxed) as usize + cpu * GICR_STRIDE + SGI_BASE)
}

pub fn init_cpu(cpu: usize) {
    let Some(s) = sgi_frame(cpu) else { return };
    let r = s - SGI_BASE;
    wr(r + GICR_WAKER, rd(r + GICR_WAKER) & !(1 << 1));
    while rd(r + GICR_WAKER) & (1 << 2) != 0 {}
    wr(s + ICENABLER, 0xffff_ffff);
    wr(s + IGROUPR, 0xffff_ffff);
    for n in 0..8 {
        wr(s + IPRIORITYR + 4 * n, 0xa0a0_a0a0);
    }
    wr(s + ISENABLER, OWN_PPIS);
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

pub fn ack() -> u32 {
    let v = read!(icc_iar1_el1) as u32 & 0xff_ffff;
    dsb_sy();
    v
}

pub fn eoi(intid: u32) {
    write!(icc_eoir1_el1, intid as u64);
}

pub fn deactivate(intid: u32) {
    write!(icc_dir_el1, intid as u64);
}

/// Sends the kick SGI to the pCPU whose affinity (MPIDR) is `aff`: Aff3..Aff1
/// name its cluster, Aff0 (< 16) its bit in the target list.
pub fn kick(aff: u64) {
    let aff1 = (aff >> 8) & 0xff;
    let aff2 = (aff >> 16) & 0xff;
    let aff3 = (aff >> 32) & 0xff;
    let sgi1r = aff3 << 48 | aff2 << 32 | (KICK_SGI as u64) << 24 | aff1 << 16 | 1 << (aff & 0xf);
    dsb_sy();
    write!(icc_sgi1r_el1, sgi1r);
    isb();
}

/// GICD_IROUTER<n>: SPI `n` to affinity `aff`.
pub fn route(n: usize, aff: u64) {
    const IROUTER: usize = 0x6000;
    // SAFETY: a 64-bit GICD_IROUTER<n> register of the distributor (`n` is
    // an SPI, checked by the caller).
    unsafe { core::ptr::write_volatile((gicd() + IROUTER + 8 * n) as *mut u64, aff & 0xff_00ff_ffff) };
}

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

pub fn set_underflow_irq(on: bool) {
    let hcr = read!(ich_hcr_el2);
    let new = if on { hcr | (1 << 1) } else { hcr & !(1 << 1) };
    if new != hcr {
        write!(ich_hcr_el2, new);
    }
}

pub fn enable_vif() {
    write!(ich_hcr_el2, 1);
    isb();
}

/// Priority bits implemented: which AP<n>R registers exist.
fn pribits() -> u64 {
    ((read!(ich_vtr_el2) >> 29) & 7) + 1
}

pub fn save_vif(s: &mut VifState) {
    s.vmcr = read!(ich_vmcr_el2);
    s.ap0[0] = read!(ich_ap0r0_el2);
    s.ap1[0] = read!(ich_ap1r0_el2);
    if pribits() >= 6 {
        s.ap0[1] = read!(ich_ap0r1_el2);
        s.ap1[1] = read!(ich_ap1r1_el2);
    }
    if pribits() >= 7 {
        s.ap0[2] = read!(ich_ap0r2_el2);
        s.ap1[2] = read!(ich_ap1r2_el2);
        s.ap0[3] = read!(ich_ap0r3_el2);
        s.ap1[3] = read!(ich_ap1r3_el2);
    }
}

pub fn restore_vif(s: &VifState) {
    write!(ich_vmcr_el2, s.vmcr);
    write!(ich_ap0r0_el2, s.ap0[0]);
    write!(ich_ap1r0_el2, s.ap1[0]);
    if pribits() >= 6 {
        write!(ich_ap0r1_el2, s.ap0[1]);
        write!(ich_ap1r1_el2, s.ap1[1]);
    }
    if pribits() >= 7 {
        write!(ich_ap0r2_el2, s.ap0[2]);
        write!(ich_ap1r2_el2, s.ap1[2]);
        write!(ich_ap0r3_el2, s.ap0[3]);
        write!(ich_ap1r3_el2, s.ap1[3]);
    }
    isb();
}
