//! The whole state of a vCPU that is not running: what a shared pCPU saves
//! when it switches to another vCPU and restores when it switches back.
//! A null-scheduled pCPU never needs this (its vCPU's state stays loaded).

use super::entry::Frame;
use super::gic;
use super::sysreg::{isb, read, write};

/// EL1 (and per-vCPU EL2) system registers, saved and restored in this order.
macro_rules! el1_regs {
    ($m:ident) => {
        $m!(
            sctlr_el1, ttbr0_el1, ttbr1_el1, tcr_el1, mair_el1, amair_el1, vbar_el1, contextidr_el1, tpidr_el0,
            tpidr_el1, tpidrro_el0, sp_el0, sp_el1, elr_el1, spsr_el1, esr_el1, far_el1, afsr0_el1, afsr1_el1,
            par_el1, cpacr_el1, cntkctl_el1, csselr_el1, mdscr_el1, vmpidr_el2
        )
    };
}

macro_rules! count {
    ($($r:ident),*) => { [$(stringify!($r)),*].len() };
}
const N_EL1: usize = el1_regs!(count);

#[derive(Clone, Copy)]
#[repr(C, align(16))]
pub struct VcpuContext {
    pub frame: Frame,
    el1: [u64; N_EL1],
    fp: [u64; 64],
    fpcr: u64,
    fpsr: u64,
    cntv_ctl: u64,
    cntv_cval: u64,
    gic: gic::SavedInterface,
}

impl VcpuContext {
    pub const ZERO: VcpuContext = VcpuContext {
        frame: Frame::ZERO,
        el1: [0; N_EL1],
        fp: [0; 64],
        fpcr: 0,
        fpsr: 0,
        cntv_ctl: 0,
        cntv_cval: 0,
        gic: gic::SavedInterface::ZERO,
    };

    /// A vCPU about to start: reset EL1 state, and `frame` (`vcpu::entry_frame`).
    pub fn fresh(index: u64, frame: Frame) -> Self {
        let mut c = Self::ZERO;
        let mut i = 0;
        macro_rules! reset {
            ($($r:ident),*) => {$(
                c.el1[i] = match stringify!($r) {
                    "sctlr_el1" => 0x30D0_0800,
                    "vmpidr_el2" => (1 << 31) | index,
                    _ => 0,
                };
                i += 1;
            )*};
        }
        el1_regs!(reset);
        let _ = i;
        c.frame = frame;
        c
    }

    /// When the vCPU's virtual timer fires, in virtual counter ticks, if armed.
    pub fn timer_deadline(&self) -> Option<u64> {
        (self.cntv_ctl & 0b11 == 0b01).then_some(self.cntv_cval)
    }

    /// Whether a list register holds an interrupt the vCPU should take.
    pub fn has_pending_lr(&self) -> bool {
        self.gic.has_pending()
    }
}

/// Saves the loaded vCPU (its general registers are in `frame`) on `cpu`.
/// Afterwards its timer is silenced and its HW-linked interrupts unlinked,
/// so nothing of it can fire while another vCPU runs here.
pub fn save(ctx: &mut VcpuContext, frame: &Frame, cpu: usize, nlr: usize) {
    ctx.frame = *frame;
    let mut i = 0;
    macro_rules! save_regs {
        ($($r:ident),*) => {$( ctx.el1[i] = read!($r); i += 1; )*};
    }
    el1_regs!(save_regs);
    let _ = i;
    save_fp(ctx);
    ctx.cntv_ctl = read!(cntv_ctl_el0);
    ctx.cntv_cval = read!(cntv_cval_el0);
    write!(cntv_ctl_el0, 0);
    ctx.gic.save(cpu, nlr);
}

/// Loads a saved vCPU onto this pCPU; its counter offset is its domain's.
pub fn restore(ctx: &VcpuContext, cntvoff: u64, nlr: usize) {
    let mut i = 0;
    macro_rules! restore_regs {
        ($($r:ident),*) => {$( write!($r, ctx.el1[i]); i += 1; )*};
    }
    el1_regs!(restore_regs);
    let _ = i;
    restore_fp(ctx);
    write!(cntvoff_el2, cntvoff);
    write!(cntv_cval_el0, ctx.cntv_cval);
    write!(cntv_ctl_el0, ctx.cntv_ctl);
    ctx.gic.restore(nlr);
    isb();
}

fn save_fp(ctx: &mut VcpuContext) {
    let p = ctx.fp.as_mut_ptr();
    let (fpcr, fpsr): (u64, u64);
    // SAFETY: stores the 32 128-bit FP/SIMD registers into `ctx.fp`
    // (64 u64 = 512 bytes, 16-byte aligned by the struct's alignment). The
    // hypervisor itself is soft-float, so these registers hold the guest's
    // values; the assembler needs FP enabled for these instructions only.
    unsafe {
        core::arch::asm!(
            ".arch_extension fp",
            ".arch_extension simd",
            "stp q0, q1, [{p}, #0]", "stp q2, q3, [{p}, #32]", "stp q4, q5, [{p}, #64]", "stp q6, q7, [{p}, #96]",
            "stp q8, q9, [{p}, #128]", "stp q10, q11, [{p}, #160]", "stp q12, q13, [{p}, #192]", "stp q14, q15, [{p}, #224]",
            "stp q16, q17, [{p}, #256]", "stp q18, q19, [{p}, #288]", "stp q20, q21, [{p}, #320]", "stp q22, q23, [{p}, #352]",
            "stp q24, q25, [{p}, #384]", "stp q26, q27, [{p}, #416]", "stp q28, q29, [{p}, #448]", "stp q30, q31, [{p}, #480]",
            "mrs {c}, fpcr", "mrs {s}, fpsr",
            p = in(reg) p, c = out(reg) fpcr, s = out(reg) fpsr, options(nostack),
        );
    }
    ctx.fpcr = fpcr;
    ctx.fpsr = fpsr;
}

fn restore_fp(ctx: &VcpuContext) {
    let p = ctx.fp.as_ptr();
    // SAFETY: the inverse of `save_fp`, reading the same 512 aligned bytes.
    unsafe {
        core::arch::asm!(
            ".arch_extension fp",
            ".arch_extension simd",
            "ldp q0, q1, [{p}, #0]", "ldp q2, q3, [{p}, #32]", "ldp q4, q5, [{p}, #64]", "ldp q6, q7, [{p}, #96]",
            "ldp q8, q9, [{p}, #128]", "ldp q10, q11, [{p}, #160]", "ldp q12, q13, [{p}, #192]", "ldp q14, q15, [{p}, #224]",
            "ldp q16, q17, [{p}, #256]", "ldp q18, q19, [{p}, #288]", "ldp q20, q21, [{p}, #320]", "ldp q22, q23, [{p}, #352]",
            "ldp q24, q25, [{p}, #384]", "ldp q26, q27, [{p}, #416]", "ldp q28, q29, [{p}, #448]", "ldp q30, q31, [{p}, #480]",
            "msr fpcr, {c}", "msr fpsr, {s}",
            p = in(reg) p, c = in(reg) ctx.fpcr, s = in(reg) ctx.fpsr, options(nostack),
        );
    }
}

/// Zeroes the FP/SIMD registers, FPCR and FPSR: a vCPU that starts (or
/// restarts) on a pCPU of its own inherits nothing of what ran before.
pub fn clear_fp() {
    // SAFETY: writes only the FP/SIMD registers and FPCR/FPSR, which the
    // hypervisor (soft-float) never uses itself; FP access at EL2 is not
    // trapped (the RTDS switch saves and restores them the same way).
    unsafe {
        core::arch::asm!(
            ".arch_extension fp",
            ".arch_extension simd",
            "movi v0.16b, #0", "movi v1.16b, #0", "movi v2.16b, #0", "movi v3.16b, #0", "movi v4.16b, #0", "movi v5.16b, #0", "movi v6.16b, #0", "movi v7.16b, #0", "movi v8.16b, #0", "movi v9.16b, #0", "movi v10.16b, #0", "movi v11.16b, #0", "movi v12.16b, #0", "movi v13.16b, #0", "movi v14.16b, #0", "movi v15.16b, #0", "movi v16.16b, #0", "movi v17.16b, #0", "movi v18.16b, #0", "movi v19.16b, #0", "movi v20.16b, #0", "movi v21.16b, #0", "movi v22.16b, #0", "movi v23.16b, #0", "movi v24.16b, #0", "movi v25.16b, #0", "movi v26.16b, #0", "movi v27.16b, #0", "movi v28.16b, #0", "movi v29.16b, #0", "movi v30.16b, #0", "movi v31.16b, #0",
            "msr fpcr, xzr", "msr fpsr, xzr",
            options(nostack, nomem),
        );
    }
}

/// Arms the EL2 physical timer (PPI 26) for the next scheduling decision.
pub fn arm_sched_timer(at: u64) {
    write!(cnthp_cval_el2, at);
    write!(cnthp_ctl_el2, 1);
    isb();
}

/// Arms the EL2 timer for `at` unless it is armed for earlier already
/// (a watchdog deadline never postpones a scheduling decision).
pub fn arm_sched_timer_by(at: u64) {
    let armed = read!(cnthp_ctl_el2) & 1 != 0;
    if armed && read!(cnthp_cval_el2) <= at {
        return;
    }
    arm_sched_timer(at);
}

/// Stops the virtual timer (a vCPU switched off leaves nothing armed).
pub fn stop_virtual_timer() {
    write!(cntv_ctl_el0, 0);
}

/// Disarms the scheduler's timer.
pub fn disarm_sched_timer() {
    write!(cnthp_ctl_el2, 0);
    isb();
}
