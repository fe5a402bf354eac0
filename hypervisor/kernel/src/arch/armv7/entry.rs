//! Entry and the HYP exception vectors (assembly).
//!
//! The image starts with a zImage header, so QEMU's `-kernel` and U-Boot's
//! `bootz` load it at RAM base + 64 KiB and enter it in HYP mode with the
//! device tree's address in r2. It is linked there (see build.rs): entered
//! in another mode, or loaded anywhere else, it stops before touching
//! memory. Secondary CPUs enter at `hyp_secondary_entry` (PSCI CPU_ON).
//!
//! A guest's exit saves its r0-r12, LR (HYP mode shares the User mode's),
//! ELR_hyp and SPSR_hyp as a [`Frame`] at the top of the pCPU's stack and
//! calls the glue (`guest_sync`, `guest_irq`, `guest_serror`); returning
//! restores them and `eret`s into the guest. The guest's banked registers
//! (SP, LR and SPSR of its modes, FIQ's r8-r12) stay in the CPU: HYP mode
//! never uses them (see `banked`).

use super::banked;
use core::arch::global_asm;

/// A guest's registers at an exit, in the order the vectors store them.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Frame {
    pub r: [u32; 13],
    /// LR_usr (HYP mode's own LR is the User mode's).
    pub lr: u32,
    /// ELR_hyp: where the guest resumes.
    pub elr: u32,
    /// SPSR_hyp: the guest's CPSR there.
    pub spsr: u32,
}

/// CPSR modes a guest runs in.
pub const MODE_USR: u32 = 0x10;
pub const MODE_FIQ: u32 = 0x11;
pub const MODE_SYS: u32 = 0x1f;
const MODE_HYP: u32 = 0x1a;

/// SVC mode, A32, A/I/F masked: the state a boot loader leaves a kernel in.
pub const SPSR_SVC_MASKED: u32 = 0x1d3;
/// CPSR.T: Thumb state.
const CPSR_T: u32 = 1 << 5;

impl Frame {
    pub const ZERO: Frame = Frame { r: [0; 13], lr: 0, elr: 0, spsr: 0 };

    fn mode(&self) -> u32 {
        self.spsr & 0x1f
    }

    /// Guest register `r` as the trapped instruction names it: r0-r12
    /// (FIQ mode's r8-r12 are its banked ones), r13/r14 the current
    /// mode's SP and LR; r15 reads as zero.
    pub fn reg(&self, r: u8) -> u64 {
        let mode = self.mode();
        (match r {
            8..=12 if mode == MODE_FIQ => banked::fiq_r(r),
            0..=12 => self.r[r as usize],
            13 => banked::sp(mode),
            14 if mode == MODE_USR || mode == MODE_SYS => self.lr,
            14 => banked::lr(mode),
            _ => 0,
        }) as u64
    }

    /// Writes guest register `r` (the low 32 bits of `v`); r15 is ignored.
    pub fn set_reg(&mut self, r: u8, v: u64) {
        let (mode, v) = (self.mode(), v as u32);
        match r {
            8..=12 if mode == MODE_FIQ => banked::set_fiq_r(r, v),
            0..=12 => self.r[r as usize] = v,
            13 => banked::set_sp(mode, v),
            14 if mode == MODE_USR || mode == MODE_SYS => self.lr = v,
            14 => banked::set_lr(mode, v),
            _ => {}
        }
    }

    /// A call's result, in r0.
    pub fn set_result(&mut self, v: u64) {
        self.r[0] = v as u32;
    }

    /// An SMCCC call's function and arguments: r0-r3.
    pub fn smccc_args(&self) -> [u64; 4] {
        [self.r[0] as u64, self.r[1] as u64, self.r[2] as u64, self.r[3] as u64]
    }

    /// A Xen hypercall: its number in r12, arguments in r0-r4 (Xen's
    /// arm32 ABI).
    pub fn xen_hypercall(&self) -> (u64, [u64; 5]) {
        let a = |i: usize| self.r[i] as u64;
        (a(12), [a(0), a(1), a(2), a(3), a(4)])
    }

    /// Where the guest resumes.
    pub fn pc(&self) -> u64 {
        self.elr as u64
    }

    /// Its CPSR where it resumes (SPSR_hyp).
    pub fn pstate(&self) -> u64 {
        self.spsr as u64
    }

    /// Resumes past the trapped instruction (`len` bytes: 2 or 4).
    pub fn skip(&mut self, len: u64) {
        self.elr = self.elr.wrapping_add(len as u32);
        // Inside a Thumb IT block (an MMIO store, say) the block's
        // remaining instructions keep their conditions.
        self.spsr = hv_core::esr::a32_it_advance(self.spsr.into()) as u32;
    }

    /// An MRC to APSR_nzcv (Rt = 15): the flags take bits 31:28 of the
    /// value read.
    pub fn set_nzcv(&mut self, v: u64) {
        self.spsr = (self.spsr & !(0xf << 28)) | (v as u32 & (0xf << 28));
    }

    /// The zImage boot protocol: r0 = 0, r1 = ~0 (no machine number: a
    /// device tree), r2 = the device tree, SVC mode with A/I/F masked.
    pub fn kernel_entry(pc: u64, dtb: u64) -> Frame {
        let mut f = Frame::cpu_on_entry(pc, 0);
        f.r[1] = !0;
        f.r[2] = dtb as u32;
        f
    }

    /// PSCI CPU_ON on AArch32: r0 = the caller's context; an entry
    /// address with bit 0 set starts in Thumb state.
    pub fn cpu_on_entry(pc: u64, context: u64) -> Frame {
        let mut f = Frame::ZERO;
        f.r[0] = context as u32;
        // An ARM-state entry is word-aligned: returning to one that is
        // not is UNPREDICTABLE, so its low bits are dropped.
        f.elr = pc as u32 & if pc & 1 != 0 { !1 } else { !3 };
        f.spsr = SPSR_SVC_MASKED | if pc & 1 != 0 { CPSR_T } else { 0 };
        f
    }
}

pub const FRAME_SIZE: usize = core::mem::size_of::<Frame>();
const _: () = assert!(FRAME_SIZE == 64);

/// Bytes of stack per pCPU; its top holds the guest's frame.
pub const STACK_SIZE: usize = 64 * 1024;
/// pCPUs this image runs (the J6 has 2; QEMU's virt-a15 board 4).
pub const MAX_CPUS: usize = 4;

#[repr(C, align(8))]
pub struct Stacks(pub [[u8; STACK_SIZE]; MAX_CPUS]);

#[no_mangle]
pub static mut HV_A32_STACKS: Stacks = Stacks([[0; STACK_SIZE]; MAX_CPUS]);

global_asm!(
    r#"
.arch_extension virt
.arm
.section .text.head, "ax"
.global _start
_start:
    // zImage header (Linux's arch/arm/boot/compressed/head.S layout): eight
    // no-ops, a branch, the magic at 0x24, start and end, the byte order.
    .rept 8
    mov     r0, r0
    .endr
    b       1f
    .word   0x016F2818
    .word   _start
    .word   __image_end
    .word   0x04030201
1:
    mov     r8, r2                  // the device tree
    mrs     r4, cpsr
    and     r4, r4, #0x1f
    cmp     r4, #{mode_hyp}
    bne     9f
    // Where we run (PC-relative) must be where we were linked (absolute).
    adr     r4, _start
    ldr     r5, =_start
    cmp     r4, r5
    bne     9f
    mov     r0, #0
    mcr     p15, 4, r0, c13, c0, 2  // HTPIDR: this pCPU's index
    // The stack's top FRAME_SIZE bytes are the guest frame's slot (see
    // `frame_slot`): Rust's stack starts below them.
    ldr     sp, ={stacks}+{stack_size}-{frame_size}
    ldr     r4, =__bss_start
    ldr     r5, =__bss_end
    mov     r6, #0
2:  cmp     r4, r5
    strlo   r6, [r4], #4
    blo     2b
    ldr     r4, =hyp_vectors
    mcr     p15, 4, r4, c12, c0, 0  // HVBAR
    isb
    mov     r0, r8
    bl      primary_main
9:  wfi
    b       9b

.section .text
.balign 32
.global hyp_vectors
hyp_vectors:
    b       hyp_fault_0             // reset
    b       hyp_fault_1             // undefined instruction in HYP
    b       hyp_fault_2             // HVC in HYP
    b       hyp_fault_3             // prefetch abort in HYP
    b       hyp_data_abort          // HYP's own, or a guest's asynchronous abort
    b       hyp_guest_trap          // a guest's trap: HSR says which
    b       hyp_guest_irq
    b       hyp_fiq                 // FIQ: as an IRQ, as on aarch64

// Saves the guest's frame and calls `\handler(frame)`, then returns to
// the (possibly changed) frame.
.macro GUEST_EXIT handler
    cpsid   aif
    sub     sp, sp, #8
    push    {{r0-r12, lr}}
    mrs     r0, elr_hyp
    mrs     r1, spsr
    str     r0, [sp, #56]
    str     r1, [sp, #60]
    // Branch target injection (Cortex-A15, CVE-2017-5715): before any
    // indirect branch, drop what the guest trained; ICIALLU invalidates
    // the A15's branch predictor too (with ACTLR.IBE, which firmware sets
    // for this). The ISB below completes it.
    mcr     p15, 0, r0, c7, c5, 0   // ICIALLU
    // Synchronise asynchronous aborts: the guest's posted writes complete,
    // and an abort they raise is taken now (HYP's data abort vector),
    // charged to this exit's vCPU, never to whoever runs here next. The
    // frame is saved, so ELR_hyp/SPSR_hyp may be overwritten.
    dsb     sy
    cpsie   a
    isb
    cpsid   a
    mov     r0, sp
    bl      \handler
    b       hyp_guest_return
.endm

hyp_guest_trap:
    GUEST_EXIT guest_sync
hyp_guest_irq:
    GUEST_EXIT guest_irq
hyp_data_abort:
    // From a guest (SPSR's mode is not HYP) it is an asynchronous abort
    // routed here by HCR.AMO: the guest's SError.
    push    {{r0}}
    mrs     r0, spsr
    and     r0, r0, #0x1f
    cmp     r0, #{mode_hyp}
    pop     {{r0}}
    beq     hyp_own_abort
    GUEST_EXIT guest_serror

// In HYP: an asynchronous abort (HSR's DFSC 0b010001 external, 0b011000
// parity) can only come in GUEST_EXIT's window, the one time HYP unmasks
// them: note it for this pCPU and go on. Anything else is the
// hypervisor's own fault.
hyp_own_abort:
    push    {{r0, r1}}
    mrc     p15, 4, r0, c5, c2, 0   // HSR
    and     r0, r0, #0x3f
    cmp     r0, #0x11
    cmpne   r0, #0x18
    popne   {{r0, r1}}
    bne     hyp_fault_4
    mrc     p15, 4, r0, c13, c0, 2  // HTPIDR: this pCPU's index
    cmp     r0, #{max_cpus}
    bhs     1f
    ldr     r1, ={serror}
    add     r1, r1, r0
    mov     r0, #1
    strb    r0, [r1]
1:  pop     {{r0, r1}}
    eret

hyp_fiq:
    push    {{r0}}
    mrs     r0, spsr
    and     r0, r0, #0x1f
    cmp     r0, #{mode_hyp}
    pop     {{r0}}
    beq     hyp_fault_7
    GUEST_EXIT guest_irq

hyp_fault_0:
    mov     r0, #0
    b       hyp_fault_common
hyp_fault_1:
    mov     r0, #1
    b       hyp_fault_common
hyp_fault_2:
    mov     r0, #2
    b       hyp_fault_common
hyp_fault_3:
    mov     r0, #3
    b       hyp_fault_common
hyp_fault_4:
    mov     r0, #4
    b       hyp_fault_common
hyp_fault_7:
    mov     r0, #7
hyp_fault_common:
    cpsid   aif
    bl      hyp_fault
8:  wfi
    b       8b

.global hyp_guest_return
hyp_guest_return:
    ldr     r0, [sp, #56]
    ldr     r1, [sp, #60]
    // Never into HYP (0x1a) or Monitor (0x16) mode with a guest's
    // registers. No path builds such a frame: defence in depth.
    and     r2, r1, #0x1f
    cmp     r2, #0x1a
    cmpne   r2, #0x16
    beq     hyp_guest_return_bad
    msr     elr_hyp, r0
    msr     spsr_cxsf, r1
    pop     {{r0-r12, lr}}
    add     sp, sp, #8
    eret

hyp_guest_return_bad:
    mov     r2, r0
    mov     r0, r1
    mov     r1, r2
    bl      guest_return_refused
8:  wfi
    b       8b

// hyp_enter_guest(slot): the frame at `slot` (the top of this pCPU's
// stack) into the guest.
.global hyp_enter_guest
hyp_enter_guest:
    mov     sp, r0
    b       hyp_guest_return

// A secondary pCPU the boot ROM released (TI DRA7: `platform::start_cpu`),
// in SVC mode unless the ROM left it in HYP: the ROM's HYP-entry service
// (SMC with r12 = 0x102, r0 = where to go on) puts it in HYP; then it is
// pCPU Aff0 (the J6's CPUs are MPIDR 0 and 1).
.global hyp_rom_secondary_entry
hyp_rom_secondary_entry:
    mrs     r4, cpsr
    and     r4, r4, #0x1f
    cmp     r4, #{mode_hyp}
    beq     1f
    ldr     r12, =0x102
    adr     r0, 1f
    .arch_extension sec
    smc     #0
1:  mrc     p15, 0, r0, c0, c0, 5   // MPIDR
    and     r0, r0, #0xff
    b       hyp_secondary_entry

// A secondary pCPU, started by PSCI CPU_ON with its index as the context
// (r0, below MAX_CPUS: `psci::start_cpu` asks only for those).
.global hyp_secondary_entry
hyp_secondary_entry:
    mcr     p15, 4, r0, c13, c0, 2  // HTPIDR
    // The HYP MMU on before the first use of the stack: with caches off,
    // a push would go to memory and the pop come from a line the primary's
    // cached map may hold. The primary left the register values (in
    // memory) in HYP_MMU_REGS: HMAIR0, HTCR, HTTBR low and high, HSCTLR.
    ldr     r1, ={mmu_regs}
    ldr     r2, [r1]
    mcr     p15, 4, r2, c10, c2, 0  // HMAIR0
    mov     r2, #0
    mcr     p15, 4, r2, c10, c2, 1  // HMAIR1
    ldr     r2, [r1, #4]
    mcr     p15, 4, r2, c2, c0, 2   // HTCR
    ldr     r2, [r1, #8]
    ldr     r3, [r1, #12]
    mcrr    p15, 4, r2, r3, c2      // HTTBR
    dsb
    mcr     p15, 4, r2, c8, c7, 0   // TLBIALLH
    dsb
    isb
    ldr     r2, [r1, #16]
    mcr     p15, 4, r2, c1, c0, 0   // HSCTLR
    isb
    ldr     r1, ={stacks}
    ldr     r2, ={stack_size}
    add     r3, r0, #1
    mla     r3, r3, r2, r1          // the top of its stack
    sub     sp, r3, #{frame_size}   // below its frame slot
    ldr     r4, =hyp_vectors
    mcr     p15, 4, r4, c12, c0, 0  // HVBAR
    isb
    bl      secondary_main
7:  wfi
    b       7b
"#,
    stacks = sym HV_A32_STACKS,
    stack_size = const STACK_SIZE,
    frame_size = const FRAME_SIZE,
    mode_hyp = const MODE_HYP,
    max_cpus = const MAX_CPUS,
    serror = sym SERROR_AT_EXIT,
    mmu_regs = sym super::mmu::HYP_MMU_REGS,
);

extern "C" {
    fn hyp_enter_guest(slot: *mut Frame) -> !;
    fn hyp_secondary_entry();
}

/// Where a secondary pCPU starts (for PSCI CPU_ON).
pub fn secondary_entry() -> u64 {
    hyp_secondary_entry as *const () as usize as u64
}

/// HVBAR is set by the entry code, before any Rust runs.
pub fn install_vectors() {}

/// Per pCPU: an asynchronous abort was taken while the last guest exit
/// synchronised them (written by the vector code, read and cleared by
/// `take_serror`).
static SERROR_AT_EXIT: [core::sync::atomic::AtomicU8; MAX_CPUS] =
    [const { core::sync::atomic::AtomicU8::new(0) }; MAX_CPUS];

/// Whether the exit this pCPU is handling brought an asynchronous abort
/// with it (the exiting vCPU's doing); clears the note.
pub fn take_serror(cpu: usize) -> bool {
    SERROR_AT_EXIT.get(cpu).is_some_and(|f| f.swap(0, core::sync::atomic::Ordering::AcqRel) != 0)
}

/// The frame slot at the top of pCPU `cpu`'s stack.
fn frame_slot(cpu: usize) -> *mut Frame {
    let cpu = cpu.min(MAX_CPUS - 1);
    // SAFETY: in bounds of HV_A32_STACKS (cpu < MAX_CPUS); only an
    // address is computed.
    unsafe {
        let base = core::ptr::addr_of_mut!(HV_A32_STACKS) as *mut u8;
        base.add((cpu + 1) * STACK_SIZE - FRAME_SIZE) as *mut Frame
    }
}

/// Enters the guest whose registers are `frame` on pCPU `cpu` (its own).
pub fn enter(cpu: usize, frame: &Frame) -> ! {
    let slot = frame_slot(cpu);
    // Entering abandons this Rust stack; HCR.VM and VTTBR confine the
    // guest (`vcpu_regs::enter_domain` ran).
    // SAFETY: the slot is this pCPU's own stack top, below which Rust's
    // stack starts; the frame's SPSR names a guest mode (frames come only
    // from `Frame::*_entry` or saved exits).
    unsafe {
        slot.write(*frame);
        hyp_enter_guest(slot)
    }
}

/// An exception HYP mode took in its own code: a hypervisor bug.
#[no_mangle]
extern "C" fn hyp_fault(vector: u32) -> ! {
    let (hsr, elr) = (super::sysreg::hsr(), elr_hyp());
    let far = if vector == 3 { super::sysreg::hifar() } else { super::sysreg::hdfar() };
    crate::trap::hypervisor_fault(hsr as u64 | (vector as u64) << 32, elr as u64, far as u64)
}

/// ELR_hyp: where HYP mode returns to.
fn elr_hyp() -> u32 {
    let v: u32;
    // SAFETY: reading a HYP banked register has no memory effects.
    unsafe { core::arch::asm!(".arch_extension virt", "mrs {}, elr_hyp", out(reg) v, options(nomem, nostack)) };
    v
}
