//! The Armv7-A (PL1, SVC mode) half of the runtime: entry and vectors,
//! CP15 registers, SMCCC conduits. A 32-bit board's GIC is a GICv2, so
//! the CPU interface is the memory-mapped one.
//!
//! Exceptions are handled on the SVC stack: each vector stores its return
//! address and SPSR there (SRS), switches to SVC mode and saves r0-r12 and
//! LR as a [`TrapFrame`]; returning restores them and RFE resumes. A
//! synchronous exception reaches the guest's `on_sync` with the syndrome an
//! aarch64 guest would see (the exception class, and DFSR/IFSR as the
//! status), so the guests' handlers are the same on both.

use core::arch::{asm, global_asm};

global_asm!(
    r#"
.arm
.section .text.boot, "ax"
.global _start
_start:
    mov     r8, r2                  // the device tree (zImage protocol)
    ldr     sp, =__stack_top
    ldr     r4, =__bss_start
    ldr     r5, =__bss_end
    mov     r6, #0
1:  cmp     r4, r5
    strlo   r6, [r4], #4
    blo     1b
    ldr     r4, =guest_vectors
    mcr     p15, 0, r4, c12, c0, 0  // VBAR
    mrc     p15, 0, r4, c1, c0, 0   // SCTLR: vectors at VBAR (V = 0)
    bic     r4, r4, #(1 << 13)
    mcr     p15, 0, r4, c1, c0, 0
    isb
    mov     r0, r8                  // guest_main(dtb: u64): r0, r1
    mov     r1, #0
    bl      guest_main
2:  wfi
    b       2b

.section .text
.balign 32
.global guest_vectors
guest_vectors:
    b       .                       // reset
    b       und_entry
    b       .                       // SVC: guests make none
    b       pabt_entry
    b       dabt_entry
    b       .
    b       irq_entry
    b       .                       // FIQ

// \adjust: back from the exception's LR to the instruction to resume at;
// \kind: what rt_exception is told (see `Kind`), or -1 for an interrupt.
.macro ENTRY adjust, handler, kind
    sub     lr, lr, #\adjust
    srsdb   sp!, #0x13              // return address and SPSR onto SVC's stack
    cps     #0x13
    push    {{r0-r12, lr}}
    mov     r0, sp
    mov     r1, #\kind
    mov     r4, sp                  // AAPCS: an 8-byte aligned stack for the call
    bic     sp, sp, #7
    bl      \handler
    mov     sp, r4
    pop     {{r0-r12, lr}}
    rfeia   sp!
.endm

und_entry:
    ENTRY   4, rt_exception, 1
pabt_entry:
    ENTRY   4, rt_exception, 3
dabt_entry:
    ENTRY   8, rt_exception, 4
irq_entry:
    ENTRY   4, rt_irq, 0
"#
);

/// Registers saved on a guest exception; `elr` is where it resumes.
#[repr(C)]
pub struct TrapFrame {
    pub r: [u32; 13],
    /// SVC mode's LR when the exception came.
    pub lr: u32,
    /// The instruction to resume at (the undefined one, the faulting one).
    pub elr: u32,
    pub spsr: u32,
}

impl TrapFrame {
    /// The first argument register (r0).
    pub fn arg0(&self) -> u64 {
        self.r[0] as u64
    }
}

/// The vector that called `rt_exception` (1: undefined instruction).
const PREFETCH_ABORT: u32 = 3;
const DATA_ABORT: u32 = 4;

/// aarch64's exception classes for what an A32 vector means.
const EC_UNKNOWN: u64 = 0x00;
const EC_IABT_CUR: u64 = 0x21;
const EC_DABT_CUR: u64 = 0x25;

#[no_mangle]
extern "C" fn rt_exception(frame: &mut TrapFrame, kind: u32) {
    let (esr, far) = match kind {
        PREFETCH_ABORT => (EC_IABT_CUR << 26 | read_ifsr() as u64, read_ifar() as u64),
        DATA_ABORT => (EC_DABT_CUR << 26 | read_dfsr() as u64, read_dfar() as u64),
        _ => (EC_UNKNOWN << 26, 0),
    };
    super::dispatch_sync(frame, esr, far)
}

macro_rules! mrc {
    ($opc1:literal, $crn:ident, $crm:ident, $opc2:literal) => {{
        let v: u32;
        // SAFETY: reading a CP15 register at PL1 has no memory effects.
        unsafe {
            asm!(
                concat!("mrc p15, ", stringify!($opc1), ", {}, ", stringify!($crn), ", ", stringify!($crm), ", ", stringify!($opc2)),
                out(reg) v,
                options(nomem, nostack)
            )
        };
        v
    }};
}

macro_rules! mcr {
    ($opc1:literal, $crn:ident, $crm:ident, $opc2:literal, $v:expr) => {{
        let v: u32 = $v;
        // SAFETY: every use writes this vCPU's own PL1 state, which the
        // caller means to change.
        unsafe {
            asm!(
                concat!("mcr p15, ", stringify!($opc1), ", {}, ", stringify!($crn), ", ", stringify!($crm), ", ", stringify!($opc2)),
                in(reg) v,
                options(nostack)
            )
        };
    }};
}

fn read_dfsr() -> u32 {
    mrc!(0, c5, c0, 0)
}

fn read_ifsr() -> u32 {
    mrc!(0, c5, c0, 1)
}

fn read_dfar() -> u32 {
    mrc!(0, c6, c0, 0)
}

fn read_ifar() -> u32 {
    mrc!(0, c6, c0, 2)
}

/// A 32-bit board's GIC is a GICv2 (hv-config refuses GICv3 there).
pub fn gic_is_v3() -> bool {
    false
}

// The GICv3 system-register interface does not exist here; the common
// code reaches these only when `gic_is_v3` says so.
pub(super) fn gic_v3_ack() -> u32 {
    1023
}

pub(super) fn gic_v3_eoi(_iar: u32) {}

pub(super) fn gic_v3_sgi(_v: u64) {}

pub(super) fn gic_v3_cpu_interface_on() {}

// MMIO through a single plain `str`/`ldr`, as Linux's writel/readl do: a
// trapped access must carry a valid syndrome to be emulated.
pub fn mmio_write(addr: u64, v: u32) {
    // SAFETY: `addr` is a device register of the guest layout or one passed
    // through to it (callers name only those).
    unsafe { asm!("str {v}, [{a}]", v = in(reg) v, a = in(reg) addr as u32, options(nostack)) }
}

pub fn mmio_read(addr: u64) -> u32 {
    let v: u32;
    // SAFETY: as for `mmio_write`.
    unsafe { asm!("ldr {v}, [{a}]", v = out(reg) v, a = in(reg) addr as u32, options(nostack)) };
    v
}

/// Masks IRQs; returns what `irq_restore` puts back.
pub(super) fn irq_save() -> u64 {
    let cpsr: u32;
    // SAFETY: saving CPSR and masking IRQs.
    unsafe { asm!("mrs {}, cpsr", "cpsid i", out(reg) cpsr) };
    cpsr as u64
}

/// Restores the IRQ mask `irq_save` saved.
pub(super) fn irq_restore(cpsr: u64) {
    if cpsr & (1 << 7) == 0 {
        // SAFETY: IRQs were unmasked before `irq_save`.
        unsafe { asm!("cpsie i") };
    }
}

/// An SMCCC call through HVC #0: r0 = function ID, returns r0 (sign
/// extended: PSCI's errors are negative 32-bit values).
pub fn hvc_call(fid: u32, a1: u64, a2: u64, a3: u64) -> i64 {
    let r: u32;
    // SAFETY: SMCCC convention; r0-r3 are the only registers the call uses.
    unsafe {
        asm!(".arch_extension virt", "hvc #0", inout("r0") fid => r, inout("r1") a1 as u32 => _,
             inout("r2") a2 as u32 => _, inout("r3") a3 as u32 => _, options(nostack));
    }
    r as i32 as i64
}

/// The same through SMC #0 (trapped to the hypervisor).
pub fn smc_call(fid: u32, a1: u64) -> i64 {
    let r: u32;
    // SAFETY: as for `hvc_call`.
    unsafe {
        asm!(".arch_extension sec", "smc #0", inout("r0") fid => r, inout("r1") a1 as u32 => _,
             out("r2") _, out("r3") _, options(nostack));
    }
    r as i32 as i64
}

pub fn mpidr_index() -> u64 {
    // MPIDR, virtualised by VMPIDR.
    (mrc!(0, c0, c0, 5) & 0xff) as u64
}

pub fn counter_freq() -> u64 {
    mrc!(0, c14, c0, 0) as u64
}

pub fn virtual_count() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: reading CNTVCT.
    unsafe { asm!("isb", "mrrc p15, 1, {}, {}, c14", out(reg) lo, out(reg) hi) };
    (hi as u64) << 32 | lo as u64
}

/// Arms the virtual timer to fire at virtual count `cval`.
pub fn timer_at(cval: u64) {
    // SAFETY: programming this vCPU's own virtual timer (CNTV_CVAL).
    unsafe { asm!("mcrr p15, 3, {}, {}, c14", in(reg) cval as u32, in(reg) (cval >> 32) as u32) };
    mcr!(0, c14, c3, 1, 1); // CNTV_CTL: enabled, unmasked
    // SAFETY: a barrier.
    unsafe { asm!("isb") };
}

/// Stops the virtual timer.
pub fn timer_off() {
    mcr!(0, c14, c3, 1, 0);
    // SAFETY: a barrier.
    unsafe { asm!("isb") };
}

pub fn irqs_on() {
    // SAFETY: unmasking IRQs once handlers are in place.
    unsafe { asm!("cpsie i", "isb") };
}

pub fn wait_for_interrupt() {
    // SAFETY: WFI has no memory effects.
    unsafe { asm!("wfi") };
}

pub fn set_vbar(addr: u64) {
    mcr!(0, c12, c0, 0, addr as u32);
    // SAFETY: a barrier.
    unsafe { asm!("isb") };
}

/// Turns the MMU and caches on with [`super::IDENTITY`], as long
/// descriptors (TTBCR.EAE: LPAE's format is aarch64's, and its first four
/// 1 GiB entries cover the 32-bit address space).
pub fn mmu_on() {
    // bss and the stack were written with the MMU off, straight to memory:
    // drop any stale lines of them (see aarch64's `mmu_on`).
    let (start, end) = (&raw const super::__bss_start as u32, &raw const super::__stack_top as u32);
    let line = 4u32 << ((mrc!(0, c0, c0, 1) >> 16) & 0xf); // CTR.DminLine
    let mut at = start & !(line - 1);
    while at < end {
        mcr!(0, c7, c6, 1, at); // DCIMVAC
        at += line;
    }
    mcr!(0, c10, c2, 0, 0xff << 8); // MAIR0: attr 0 Device-nGnRnE, attr 1 normal WB
    // EAE; T0SZ = 0 (4 GiB from TTBR0); WB walks, inner shareable.
    mcr!(0, c2, c0, 2, 1 << 31 | 3 << 12 | 1 << 10 | 1 << 8);
    let ttbr = super::IDENTITY.0.as_ptr() as u32;
    // SAFETY: the map is the identity over everything this guest touches,
    // so execution carries on at the same addresses once it is on.
    unsafe {
        asm!(
            "dsb",
            "mcrr p15, 0, {lo}, {hi}, c2",
            "mcr p15, 0, {z}, c8, c7, 0",
            "dsb",
            "isb",
            lo = in(reg) ttbr,
            hi = in(reg) 0u32,
            z = in(reg) 0u32,
        );
    }
    let sctlr = mrc!(0, c1, c0, 0) | 1 | 1 << 2 | 1 << 12; // M, C, I
    mcr!(0, c1, c0, 0, sctlr);
    // SAFETY: a barrier.
    unsafe { asm!("isb") };
}

/// PSCI CPU_ON in this execution state's calling convention (SMC32).
pub const CPU_ON: u32 = xen_abi::psci::CPU_ON_32;
/// PSCI AFFINITY_INFO, likewise.
pub const AFFINITY_INFO: u32 = xen_abi::psci::AFFINITY_INFO_32;

/// Executes `HVC #1`, an immediate the hypervisor does not define.
pub fn undefined_hvc() {
    // SAFETY: the hypervisor answers with an undefined instruction
    // exception, which the caller's `on_sync` steps over.
    unsafe { asm!(".arch_extension virt", "hvc #1", out("r0") _) };
}

/// Writes then reads back the PMU's control register (PMCR) and the debug
/// status and control register (DBGDSCRext): what this vCPU sees of them.
pub fn pmu_and_debug_after_writing() -> (u64, u64) {
    mcr!(0, c9, c12, 0, 1);
    let pmcr = mrc!(0, c9, c12, 0);
    let dscr: u32;
    // SAFETY: both trap to the hypervisor; a stray write would change only
    // this vCPU's view.
    unsafe {
        asm!("mcr p14, 0, {}, c0, c2, 2", "isb", in(reg) 1u32 << 15);
        asm!("mrc p14, 0, {}, c0, c2, 2", out(reg) dscr);
    }
    (pmcr as u64, dscr as u64)
}

/// What this vCPU reads of CBAR (c15: the pCPU's private peripheral base,
/// a physical address): the hypervisor traps CRn 15 and gives zero.
pub fn cbar() -> u64 {
    mrc!(4, c15, c0, 0) as u64
}

/// One clean-and-invalidate by set/way (DCCISW) of level 1, set `set`.
pub fn set_way_clean(set: u64) {
    mcr!(0, c7, c14, 2, (set as u32) << 6);
}

/// A Xen hypercall (`HVC #0xEA1`, number in r12) with five raw arguments
/// (their low 32 bits): for guests that test what the hypervisor makes of
/// anything.
pub fn xen_hypercall_raw(op: u64, a: [u64; 5]) -> u64 {
    let r: u32;
    // SAFETY: a hypercall the hypervisor must refuse or serve without
    // trusting anything in it; only r0-r4 and r12 are used.
    unsafe {
        asm!(".arch_extension virt", "hvc #0xea1", inout("r0") a[0] as u32 => r, inout("r1") a[1] as u32 => _,
             inout("r2") a[2] as u32 => _, inout("r3") a[3] as u32 => _, inout("r4") a[4] as u32 => _,
             inout("r12") op as u32 => _, options(nostack));
    }
    r as u64
}

/// One trapped coprocessor access, chosen by `which`, writing `value` where
/// it writes: the PMU, L2 control (implementation defined), a debug
/// register, a set/way operation with a wild set and way, and a
/// conditional one whose condition fails.
pub fn trapped_register_access(which: u64, value: u64) {
    let v = value as u32;
    // SAFETY: each traps to the hypervisor (HDCR, HCR.TIDCP, HCR.TSW),
    // which emulates it or refuses it with an undefined-instruction
    // exception the caller steps over; none reaches another domain.
    unsafe {
        match which % 6 {
            0 => asm!("mcr p15, 0, {}, c9, c12, 0", in(reg) v), // PMCR
            1 => asm!("mrc p15, 0, {}, c9, c12, 0", out(reg) _),
            2 => asm!("mrc p15, 1, {}, c9, c0, 2", out(reg) _), // L2CTLR
            3 => asm!("mrc p14, 0, {}, c0, c0, 4", out(reg) _), // DBGBVR0
            4 => asm!("mcr p15, 0, {}, c7, c14, 2", in(reg) v), // DCCISW
            _ => asm!("cmp {0}, {0}", "mcrne p15, 0, {0}, c9, c12, 0", in(reg) v), // never executes
        }
        asm!("isb");
    }
}
