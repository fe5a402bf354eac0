//! A vCPU's state on Armv7-A, saved and restored when a shared (RTDS)
//! pCPU switches vCPUs: its frame, PL1's CP15 registers, the banked
//! registers of its modes, ThumbEE's, VFP/Advanced SIMD, the virtual timer
//! and its GIC list registers; and the HYP timer the scheduler decides by.

use super::banked;
use super::entry::Frame;
use super::gic;
use super::sysreg::{isb, read32, read64, write32, write64};

/// The 32-bit CP15 registers a vCPU owns, as (opc1, CRn, CRm, opc2).
/// SCTLR first and VMPIDR last (see `fresh`).
macro_rules! cp15_regs {
    ($m:ident) => {
        $m!(
            (0, c1, c0, 0),  // SCTLR
            (0, c1, c0, 2),  // CPACR
            (0, c2, c0, 2),  // TTBCR
            (0, c3, c0, 0),  // DACR
            (0, c5, c0, 0),  // DFSR
            (0, c5, c0, 1),  // IFSR
            (0, c5, c1, 0),  // ADFSR
            (0, c5, c1, 1),  // AIFSR
            (0, c6, c0, 0),  // DFAR
            (0, c6, c0, 2),  // IFAR
            (0, c10, c2, 0), // PRRR / MAIR0
            (0, c10, c2, 1), // NMRR / MAIR1
            (0, c10, c3, 0), // AMAIR0
            (0, c10, c3, 1), // AMAIR1
            (0, c12, c0, 0), // VBAR
            (0, c13, c0, 1), // CONTEXTIDR
            (0, c13, c0, 2), // TPIDRURW
            (0, c13, c0, 3), // TPIDRURO
            (0, c13, c0, 4), // TPIDRPRW
            (0, c14, c1, 0), // CNTKCTL
            (2, c0, c0, 0),  // CSSELR
            (4, c0, c0, 5)   // VMPIDR
        )
    };
}

macro_rules! count {
    ($(($a:literal, $b:ident, $c:ident, $d:literal)),*) => { [$(stringify!($b)),*].len() };
}
const N_CP15: usize = cp15_regs!(count);

/// FPEXC.EN: VFP and Advanced SIMD enabled (HYP needs it to reach them).
const FPEXC_EN: u32 = 1 << 30;

#[derive(Clone, Copy)]
#[repr(C, align(8))]
pub struct VcpuContext {
    pub frame: Frame,
    cp15: [u32; N_CP15],
    ttbr0: u64,
    ttbr1: u64,
    par: u64,
    banked: [u32; banked::COUNT],
    fp: [u64; 32],
    fpscr: u32,
    fpexc: u32,
    /// ThumbEE's TEECR and TEEHBR (CP14; the A15 has ThumbEE): PL0 can
    /// read and write TEEHBR, so it is the vCPU's, never the last one's.
    thumbee: [u32; 2],
    cntv_ctl: u32,
    cntv_cval: u64,
    gic: gic::SavedInterface,
}

impl VcpuContext {
    pub const ZERO: VcpuContext = VcpuContext {
        frame: Frame::ZERO,
        cp15: [0; N_CP15],
        ttbr0: 0,
        ttbr1: 0,
        par: 0,
        banked: [0; banked::COUNT],
        fp: [0; 32],
        fpscr: 0,
        fpexc: 0,
        thumbee: [0; 2],
        cntv_ctl: 0,
        cntv_cval: 0,
        gic: gic::SavedInterface::ZERO,
    };

    /// A vCPU about to start: reset PL1 state, and `frame` (`vcpu::entry_frame`).
    pub fn fresh(index: u64, frame: Frame) -> Self {
        let mut c = Self::ZERO;
        c.cp15[0] = super::vcpu_regs::SCTLR_RESET;
        c.cp15[N_CP15 - 1] = (1 << 31) | index as u32;
        c.frame = frame;
        c
    }

    /// When its virtual timer fires (CNTV_CVAL, in its virtual counter's
    /// time), if it is enabled and unmasked.
    pub fn timer_deadline(&self) -> Option<u64> {
        (self.cntv_ctl & 0b11 == 0b01).then_some(self.cntv_cval)
    }

    /// Whether an interrupt waits in its saved list registers.
    pub fn has_pending_lr(&self) -> bool {
        self.gic.has_pending()
    }
}

/// Saves the running vCPU (its exit's `frame`) and leaves the pCPU's
/// virtual timer and CPU interface quiet for the next one.
pub fn save(ctx: &mut VcpuContext, frame: &Frame, cpu: usize, nlr: usize) {
    ctx.frame = *frame;
    let mut i = 0;
    macro_rules! save_regs {
        ($(($a:literal, $b:ident, $c:ident, $d:literal)),*) => {$( ctx.cp15[i] = read32!($a, $b, $c, $d); i += 1; )*};
    }
    cp15_regs!(save_regs);
    let _ = i;
    ctx.ttbr0 = read64!(0, c2);
    ctx.ttbr1 = read64!(1, c2);
    ctx.par = read64!(0, c7);
    banked::save(&mut ctx.banked);
    if has_thumbee() {
        ctx.thumbee = [teecr(), teehbr()];
    }
    save_fp(ctx);
    ctx.cntv_ctl = read32!(0, c14, c3, 1);
    ctx.cntv_cval = read64!(3, c14);
    stop_virtual_timer();
    ctx.gic.save(cpu, nlr);
}

/// Loads a saved vCPU; its virtual counter runs `cntvoff` behind.
pub fn restore(ctx: &VcpuContext, cntvoff: u64, nlr: usize) {
    load_pl1(ctx);
    restore_fp(ctx);
    super::sysreg::set_cntvoff(cntvoff);
    write64!(3, c14, ctx.cntv_cval);
    write32!(0, c14, c3, 1, ctx.cntv_ctl);
    ctx.gic.restore(nlr);
    isb();
}

/// Loads `ctx`'s CP15 state and banked registers (a vCPU's reset loads a
/// `fresh` one's).
pub(super) fn load_pl1(ctx: &VcpuContext) {
    let mut i = 0;
    macro_rules! restore_regs {
        ($(($a:literal, $b:ident, $c:ident, $d:literal)),*) => {$( write32!($a, $b, $c, $d, ctx.cp15[i]); i += 1; )*};
    }
    cp15_regs!(restore_regs);
    let _ = i;
    write64!(0, c2, ctx.ttbr0);
    write64!(1, c2, ctx.ttbr1);
    write64!(0, c7, ctx.par);
    banked::restore(&ctx.banked);
    if has_thumbee() {
        set_thumbee(ctx.thumbee);
    }
}

/// Whether the CPU implements ThumbEE (ID_PFR0.State3): its registers
/// exist only then.
fn has_thumbee() -> bool {
    (read32!(0, c0, c1, 0) >> 12) & 0xf != 0
}

fn teecr() -> u32 {
    let v: u32;
    // SAFETY: reads TEECR (HSTR.TTEE is clear: accessible from HYP), on a
    // CPU with ThumbEE (`has_thumbee`); no memory effects.
    unsafe { core::arch::asm!("mrc p14, 6, {}, c0, c0, 0", out(reg) v, options(nomem, nostack)) };
    v
}

fn teehbr() -> u32 {
    let v: u32;
    // SAFETY: reads TEEHBR, as `teecr` reads TEECR; no memory effects.
    unsafe { core::arch::asm!("mrc p14, 6, {}, c1, c0, 0", out(reg) v, options(nomem, nostack)) };
    v
}

fn set_thumbee([teecr, teehbr]: [u32; 2]) {
    // SAFETY: writes TEECR and TEEHBR, on a CPU with ThumbEE; they steer
    // only ThumbEE code of the vCPU being loaded, no memory effects here.
    unsafe {
        core::arch::asm!(
            "mcr p14, 6, {c}, c0, c0, 0",
            "mcr p14, 6, {h}, c1, c0, 0",
            c = in(reg) teecr, h = in(reg) teehbr, options(nomem, nostack),
        )
    };
}

fn fpexc() -> u32 {
    let v: u32;
    // SAFETY: reads FPEXC (HCPTR lets HYP reach CP10/CP11); no memory effects.
    unsafe { core::arch::asm!(".fpu neon", "vmrs {}, fpexc", out(reg) v, options(nomem, nostack)) };
    v
}

fn set_fpexc(v: u32) {
    // SAFETY: writes FPEXC; no memory effects.
    unsafe { core::arch::asm!(".fpu neon", "vmsr fpexc, {}", in(reg) v, options(nomem, nostack)) };
}

fn save_fp(ctx: &mut VcpuContext) {
    ctx.fpexc = fpexc();
    set_fpexc(ctx.fpexc | FPEXC_EN);
    let p = ctx.fp.as_mut_ptr();
    let fpscr: u32;
    // SAFETY: stores d0-d31 into `ctx.fp` (32 doublewords, exactly what
    // the two `vstmia` write); FPEXC.EN is set just above.
    unsafe {
        core::arch::asm!(
            ".fpu neon",
            "vstmia {p}!, {{d0-d15}}",
            "vstmia {p}, {{d16-d31}}",
            "vmrs {s}, fpscr",
            p = inout(reg) p => _, s = out(reg) fpscr, options(nostack),
        );
    }
    ctx.fpscr = fpscr;
}

fn restore_fp(ctx: &VcpuContext) {
    set_fpexc(FPEXC_EN);
    let p = ctx.fp.as_ptr();
    // SAFETY: loads d0-d31 from `ctx.fp` (32 doublewords); FPEXC.EN is set.
    unsafe {
        core::arch::asm!(
            ".fpu neon",
            "vldmia {p}!, {{d0-d15}}",
            "vldmia {p}, {{d16-d31}}",
            "vmsr fpscr, {s}",
            p = inout(reg) p => _, s = in(reg) ctx.fpscr, options(nostack),
        );
    }
    set_fpexc(ctx.fpexc);
}

/// Zeroes VFP/Advanced SIMD for a vCPU's reset, and leaves FPEXC as at
/// reset (disabled: the guest's kernel enables it).
pub fn clear_fp() {
    set_fpexc(FPEXC_EN);
    let zero = [0u64; 32];
    // SAFETY: loads d0-d31 from a local array of 32 zero doublewords.
    unsafe {
        core::arch::asm!(
            ".fpu neon",
            "vldmia {p}!, {{d0-d15}}",
            "vldmia {p}, {{d16-d31}}",
            "vmsr fpscr, {z}",
            p = inout(reg) zero.as_ptr() => _, z = in(reg) 0u32, options(nostack),
        );
    }
    set_fpexc(0);
}

/// Arms the HYP timer (CNTHP) for the scheduler's next decision at `at`.
pub fn arm_sched_timer(at: u64) {
    write64!(6, c14, at); // CNTHP_CVAL
    write32!(4, c14, c2, 1, 1); // CNTHP_CTL: enabled, unmasked
    isb();
}

/// Arms the HYP timer for `at` unless it is armed for earlier already.
pub fn arm_sched_timer_by(at: u64) {
    let armed = read32!(4, c14, c2, 1) & 1 != 0;
    if armed && read64!(6, c14) <= at {
        return;
    }
    arm_sched_timer(at);
}

/// Stops the virtual timer (a vCPU switched off leaves nothing armed).
pub fn stop_virtual_timer() {
    write32!(0, c14, c3, 1, 0);
}

/// Disarms the scheduler's timer.
pub fn disarm_sched_timer() {
    write32!(4, c14, c2, 1, 0);
    isb();
}
