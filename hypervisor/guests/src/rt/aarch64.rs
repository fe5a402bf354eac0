//! The aarch64 (EL1) half of the runtime: entry and vectors, system
//! registers, the GICv3 CPU interface, SMCCC conduits.

use core::arch::{asm, global_asm};

global_asm!(
    r#"
.section .text.boot, "ax"
.global _start
_start:
    adrp    x1, __stack_top
    add     x1, x1, :lo12:__stack_top
    mov     sp, x1
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
1:  cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b
2:  adrp    x1, guest_vectors
    add     x1, x1, :lo12:guest_vectors
    msr     vbar_el1, x1
    isb
    bl      guest_main
3:  wfi
    b       3b

.macro SAVE
    sub     sp, sp, #272
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x0, elr_el1
    stp     x30, x0, [sp, #240]
    mov     x0, sp
.endm

.macro RESTORE
    ldp     x30, x0, [sp, #240]
    msr     elr_el1, x0
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    add     sp, sp, #272
    eret
.endm

.section .text
.balign 2048
.global guest_vectors
guest_vectors:
    .balign 128
    b       .
    .balign 128
    b       .
    .balign 128
    b       .
    .balign 128
    b       .
    // Current EL, SPx: the guest's own exceptions. Each slot is 128 bytes,
    // so the handlers live out of line.
    .balign 128
    b       sync_entry
    .balign 128
    b       irq_entry
    .balign 128
    b       .
    .balign 128
    b       .

sync_entry:
    SAVE
    bl      rt_sync
    RESTORE

irq_entry:
    SAVE
    bl      rt_irq
    RESTORE
"#
);

/// Registers saved on a guest exception; `elr` is where it resumes.
#[repr(C)]
pub struct TrapFrame {
    pub x: [u64; 31],
    pub elr: u64,
    _pad: u64,
}

#[no_mangle]
extern "C" fn rt_sync(frame: &mut TrapFrame) {
    let esr: u64;
    let far: u64;
    // SAFETY: reading EL1 syndrome registers has no side effects.
    unsafe {
        asm!("mrs {}, esr_el1", out(reg) esr);
        asm!("mrs {}, far_el1", out(reg) far);
    }
    super::dispatch_sync(frame, esr, far)
}

impl TrapFrame {
    /// The first argument register (x0).
    pub fn arg0(&self) -> u64 {
        self.x[0]
    }
}

/// Whether this vCPU's GIC has the system-register CPU interface (GICv3);
/// without it, the GICv2 layout (distributor, memory-mapped CPU interface).
pub fn gic_is_v3() -> bool {
    let pfr0: u64;
    // SAFETY: reading ID_AA64PFR0_EL1, an identification register.
    unsafe { asm!("mrs {}, id_aa64pfr0_el1", out(reg) pfr0) };
    (pfr0 >> 24) & 0xf != 0
}

/// GICv3: acknowledges through ICC_IAR1_EL1.
pub(super) fn gic_v3_ack() -> u32 {
    let intid: u64;
    // SAFETY: acknowledging through the (virtual) CPU interface.
    unsafe { asm!("mrs {}, icc_iar1_el1", out(reg) intid) };
    intid as u32 & 0xff_ffff
}

/// GICv3: ends an interrupt through ICC_EOIR1_EL1.
pub(super) fn gic_v3_eoi(iar: u32) {
    // SAFETY: EOI of the interrupt just acknowledged.
    unsafe { asm!("msr icc_eoir1_el1, {}", in(reg) iar as u64) };
}

/// GICv3: an SGI through ICC_SGI1R_EL1 (trapped and emulated).
pub(super) fn gic_v3_sgi(v: u64) {
    // SAFETY: writing ICC_SGI1R_EL1 (trapped and emulated by the hypervisor).
    unsafe { asm!("msr icc_sgi1r_el1, {}", "isb", in(reg) v) };
}

/// GICv3: the system-register CPU interface on, accepting every priority.
pub(super) fn gic_v3_cpu_interface_on() {
    // SAFETY: enabling the system-register CPU interface and group 1.
    unsafe {
        asm!("mrs {t}, icc_sre_el1", "orr {t}, {t}, #1", "msr icc_sre_el1, {t}", "isb", t = out(reg) _);
        asm!("msr icc_pmr_el1, {}", in(reg) 0xffu64);
        asm!("msr icc_igrpen1_el1, {}", in(reg) 1u64);
        asm!("isb");
    }
}

// MMIO through a single plain `str`/`ldr`, as Linux's writel/readl do: a
// trapped access must carry a valid syndrome (ISV) to be emulated, and
// pre/post-indexed or paired forms do not.
pub fn mmio_write(addr: u64, v: u32) {
    // SAFETY: `addr` is a device register of the guest layout or one passed
    // through to it (callers name only those).
    unsafe { asm!("str {v:w}, [{a}]", v = in(reg) v, a = in(reg) addr, options(nostack)) }
}

pub fn mmio_read(addr: u64) -> u32 {
    let v: u32;
    // SAFETY: as for `mmio_write`.
    unsafe { asm!("ldr {v:w}, [{a}]", v = out(reg) v, a = in(reg) addr, options(nostack)) };
    v
}

/// Masks IRQs; returns what `irq_restore` puts back.
pub(super) fn irq_save() -> u64 {
    let daif: u64;
    // SAFETY: saving DAIF and masking IRQs.
    unsafe { asm!("mrs {}, daif", "msr daifset, #2", out(reg) daif) };
    daif
}

/// Restores the interrupt mask `irq_save` saved.
pub(super) fn irq_restore(daif: u64) {
    // SAFETY: restoring the interrupt mask saved by `irq_save`.
    unsafe { asm!("msr daif, {}", in(reg) daif) };
}

/// An SMCCC call through HVC #0: x0 = function ID, returns x0.
pub fn hvc_call(fid: u32, a1: u64, a2: u64, a3: u64) -> i64 {
    let r: i64;
    // SAFETY: SMCCC convention; x0-x3 are the only registers the call uses.
    unsafe {
        asm!("hvc #0", inout("x0") fid as u64 => r, inout("x1") a1 => _,
             inout("x2") a2 => _, inout("x3") a3 => _, options(nostack));
    }
    r
}

/// The same through SMC #0 (trapped to the hypervisor).
pub fn smc_call(fid: u32, a1: u64) -> i64 {
    let r: i64;
    // SAFETY: as for `hvc_call`.
    unsafe {
        asm!("smc #0", inout("x0") fid as u64 => r, inout("x1") a1 => _,
             out("x2") _, out("x3") _, options(nostack));
    }
    r
}

pub fn mpidr_index() -> u64 {
    let m: u64;
    // SAFETY: reading MPIDR_EL1 (virtualised by VMPIDR_EL2).
    unsafe { asm!("mrs {}, mpidr_el1", out(reg) m) };
    m & 0xff
}

pub fn counter_freq() -> u64 {
    let f: u64;
    // SAFETY: reading CNTFRQ_EL0.
    unsafe { asm!("mrs {}, cntfrq_el0", out(reg) f) };
    f
}

pub fn virtual_count() -> u64 {
    let c: u64;
    // SAFETY: reading CNTVCT_EL0.
    unsafe { asm!("isb", "mrs {}, cntvct_el0", out(reg) c) };
    c
}

/// Arms the virtual timer to fire at virtual count `cval`.
pub fn timer_at(cval: u64) {
    // SAFETY: programming this vCPU's own virtual timer.
    unsafe {
        asm!("msr cntv_cval_el0, {}", in(reg) cval);
        asm!("msr cntv_ctl_el0, {}", in(reg) 1u64);
        asm!("isb");
    }
}

/// Stops the virtual timer. (Not `timer_at(u64::MAX)`: QEMU 7.2's TCG adds
/// CNTVOFF to such a deadline, wraps, and spins re-arming its host timer,
/// stalling the whole machine.)
pub fn timer_off() {
    // SAFETY: programming this vCPU's own virtual timer.
    unsafe { asm!("msr cntv_ctl_el0, {}", "isb", in(reg) 0u64) };
}

pub fn irqs_on() {
    // SAFETY: unmasking IRQs once handlers are in place.
    unsafe { asm!("msr daifclr, #2", "isb") };
}

pub fn wait_for_interrupt() {
    // SAFETY: WFI has no memory effects.
    unsafe { asm!("wfi") };
}

pub fn set_vbar(addr: u64) {
    // SAFETY: changes where this guest's exceptions go; the caller means it.
    unsafe { asm!("msr vbar_el1, {}", "isb", in(reg) addr) };
}

/// Turns the MMU and caches on with [`super::IDENTITY`]. Memory shared with other
/// domains must be cacheable on both sides to be coherent.
pub fn mmu_on() {
    // bss and the stack were written with the MMU off, straight to memory:
    // lines of them still cached from before (the loader's, a scrub's)
    // would hide those writes once caching is on. Invalidate (which EL2
    // makes a clean and invalidate: the hypervisor leaves no dirty lines
    // of a domain's memory when it loads it).
    let (start, end) = (&raw const super::__bss_start as u64, &raw const super::__stack_top as u64);
    let ctr: u64;
    // SAFETY: reading CTR_EL0 has no side effects.
    unsafe { asm!("mrs {}, ctr_el0", out(reg) ctr) };
    let line = 4u64 << ((ctr >> 16) & 0xf);
    let mut at = start & !(line - 1);
    while at < end {
        // SAFETY: invalidates cache lines of this guest's own bss and stack
        // only, whose contents are in memory (written with the MMU off).
        unsafe { asm!("dc ivac, {}", in(reg) at) };
        at += line;
    }
    let mair: u64 = 0xff << 8; // attr 0: Device-nGnRnE; attr 1: normal WB
    // T0SZ = 32 (4 GiB, starting at level 1), 4 KiB granule, WB walks,
    // inner shareable; TTBR1 walks disabled; 32-bit physical addresses.
    let tcr: u64 = 32 | 1 << 8 | 1 << 10 | 3 << 12 | 1 << 23;
    // SAFETY: the map is the identity over everything this guest touches,
    // so execution carries on at the same addresses once it is on.
    unsafe {
        asm!(
            "dsb sy",
            "msr mair_el1, {mair}",
            "msr tcr_el1, {tcr}",
            "msr ttbr0_el1, {ttbr}",
            "dsb ish",
            "tlbi vmalle1",
            "dsb ish",
            "isb",
            "mrs {t}, sctlr_el1",
            "orr {t}, {t}, #(1 << 0)",
            "orr {t}, {t}, #(1 << 2)",
            "orr {t}, {t}, #(1 << 12)",
            "msr sctlr_el1, {t}",
            "isb",
            mair = in(reg) mair,
            tcr = in(reg) tcr,
            ttbr = in(reg) super::IDENTITY.0.as_ptr() as u64,
            t = out(reg) _,
        );
    }
}

/// PSCI CPU_ON in this execution state's calling convention (SMC64).
pub const CPU_ON: u32 = xen_abi::psci::CPU_ON_64;
/// PSCI AFFINITY_INFO, likewise.
pub const AFFINITY_INFO: u32 = xen_abi::psci::AFFINITY_INFO_64;

/// Executes `HVC #1`, an immediate the hypervisor does not define.
pub fn undefined_hvc() {
    // SAFETY: the hypervisor answers with an undefined instruction
    // exception, which the caller's `on_sync` steps over.
    unsafe { asm!("hvc #1", out("x0") _) };
}

/// Writes then reads back the PMU's control register (PMCR_EL0) and the
/// debug control register (MDSCR_EL1): what this vCPU sees of them.
pub fn pmu_and_debug_after_writing() -> (u64, u64) {
    let (pmcr, mdscr): (u64, u64);
    // SAFETY: both trap to the hypervisor; a stray write would change
    // only this vCPU's view.
    unsafe {
        asm!("msr pmcr_el0, {}", "isb", in(reg) 1u64);
        asm!("mrs {}, pmcr_el0", out(reg) pmcr);
        asm!("msr mdscr_el1, {}", "isb", in(reg) 1u64 << 15);
        asm!("mrs {}, mdscr_el1", out(reg) mdscr);
    }
    (pmcr, mdscr)
}

/// One clean-and-invalidate by set/way (`DC CISW`) of level 1, set `set`.
pub fn set_way_clean(set: u64) {
    // SAFETY: no memory contents change (the hypervisor traps it and
    // cleans by address instead).
    unsafe { asm!("dc cisw, {}", in(reg) set << 6) };
}

/// A Xen hypercall (`HVC #0xEA1`, number in x16) with five raw arguments:
/// for guests that test what the hypervisor makes of anything.
pub fn xen_hypercall_raw(op: u64, a: [u64; 5]) -> u64 {
    let r: u64;
    // SAFETY: a hypercall the hypervisor must refuse or serve without
    // trusting anything in it; only x0-x4 and x16 are used.
    unsafe {
        asm!("hvc #0xea1", inout("x0") a[0] => r, inout("x1") a[1] => _, inout("x2") a[2] => _,
             inout("x3") a[3] => _, inout("x4") a[4] => _, inout("x16") op => _, options(nostack));
    }
    r
}

/// One trapped system-register access, chosen by `which`, writing `value`
/// where it writes: the SGI registers, the PMU, a debug register.
pub fn trapped_register_access(which: u64, value: u64) {
    // SAFETY: each traps to the hypervisor, which emulates it or refuses it
    // with an undefined-instruction exception the caller steps over; none
    // reaches another domain.
    unsafe {
        match which % 5 {
            0 => asm!("msr icc_sgi1r_el1, {}", in(reg) value),
            1 => asm!("msr icc_asgi1r_el1, {}", in(reg) value),
            2 => asm!("mrs {}, pmcr_el0", out(reg) _),
            3 => asm!("msr pmcr_el0, {}", in(reg) value),
            _ => asm!("mrs {}, dbgbvr0_el1", out(reg) _),
        }
        asm!("isb");
    }
}
