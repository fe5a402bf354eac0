//! Entry and the HYP exception vectors (assembly).
//!
//! The image starts with a zImage header, so QEMU's `-kernel` and U-Boot's
//! `bootz` load it at RAM base + 64 KiB and enter it in HYP mode with the
//! device tree's address in r2. It is linked there (see build.rs): entered
//! in another mode, or loaded anywhere else, it stops before touching
//! memory. Secondary CPUs enter at `hyp_secondary_entry` (PSCI CPU_ON).
//!
//! Every exception taken to HYP mode saves r0-r12 and lr into a
//! [`HypFrame`] on the stack and calls [`hyp_exception`]; returning
//! restores them and `eret`s to where HYP was (ELR_hyp).

use core::arch::global_asm;

/// The registers an exception saved, in the order `push` stores them.
#[repr(C)]
pub struct HypFrame {
    pub r: [u32; 13],
    pub lr: u32,
}

/// What HVBAR's vectors are, by offset / 4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vector {
    Reset,
    Undefined,
    /// HVC executed in HYP mode itself.
    HypervisorCall,
    PrefetchAbort,
    DataAbort,
    /// A trap from a guest (non-HYP modes): HSR says which.
    HypTrap,
    Irq,
    Fiq,
}

impl Vector {
    fn from_index(i: u32) -> Vector {
        [Vector::Reset, Vector::Undefined, Vector::HypervisorCall, Vector::PrefetchAbort, Vector::DataAbort, Vector::HypTrap, Vector::Irq, Vector::Fiq]
            [(i & 7) as usize]
    }
}

pub const STACK_SIZE: usize = 32 * 1024;
/// pCPUs the per-CPU tables hold (the J6 has 2).
pub const MAX_CPUS: usize = 8;
/// pCPUs this image starts (a stack each).
pub const MAX_STARTED: usize = 4;

#[repr(C, align(8))]
pub struct Stacks(pub [[u8; STACK_SIZE]; MAX_STARTED]);

#[no_mangle]
pub static mut HV_A32_STACKS: Stacks = Stacks([[0; STACK_SIZE]; MAX_STARTED]);

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
    cmp     r4, #0x1a               // HYP mode
    bne     9f
    // Where we run (PC-relative) must be where we were linked (absolute).
    adr     r4, _start
    ldr     r5, =_start
    cmp     r4, r5
    bne     9f
    mov     r0, #0
    mcr     p15, 4, r0, c13, c0, 2  // HTPIDR: this pCPU's index
    ldr     sp, ={stacks}+{stack_size}
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
    bl      armv7_primary
9:  wfi
    b       9b

.section .text
.balign 32
.global hyp_vectors
hyp_vectors:
    b       hyp_vector_0
    b       hyp_vector_1
    b       hyp_vector_2
    b       hyp_vector_3
    b       hyp_vector_4
    b       hyp_vector_5
    b       hyp_vector_6
    b       hyp_vector_7

.macro HYP_VECTOR n
hyp_vector_\n:
    push    {{r0-r12, lr}}
    mov     r0, sp
    mov     r1, #\n
    bl      hyp_exception
    pop     {{r0-r12, lr}}
    eret
.endm
    HYP_VECTOR 0
    HYP_VECTOR 1
    HYP_VECTOR 2
    HYP_VECTOR 3
    HYP_VECTOR 4
    HYP_VECTOR 5
    HYP_VECTOR 6
    HYP_VECTOR 7

// A secondary pCPU, started by PSCI CPU_ON with its index as the context
// (r0, below MAX_STARTED: the primary asks only for those).
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
    mov     sp, r3
    ldr     r4, =hyp_vectors
    mcr     p15, 4, r4, c12, c0, 0  // HVBAR
    isb
    bl      armv7_secondary
8:  wfi
    b       8b

// hyp_enter_guest(frame, spsr, elr): the guest's registers from `frame`,
// its mode and PC from spsr and elr, then into it. Its exits come back
// through the vectors above.
.global hyp_enter_guest
hyp_enter_guest:
    msr     spsr_cxsf, r1
    msr     elr_hyp, r2
    ldm     r0, {{r0-r12, lr}}
    eret
"#,
    stacks = sym HV_A32_STACKS,
    stack_size = const STACK_SIZE,
    mmu_regs = sym super::mmu::HYP_MMU_REGS,
);

extern "C" {
    fn hyp_enter_guest(frame: *const HypFrame, spsr: u32, elr: u32) -> !;
}

extern "C" {
    static _start: u8;
}

/// Where this image starts (it runs where it is linked).
pub fn image_start() -> u64 {
    // Only the symbol's address is taken.
    (&raw const _start) as u64
}

/// SPSR for a guest entered in SVC mode, A32, with A/I/F masked: the state
/// a boot loader leaves a kernel in.
pub const SPSR_SVC_MASKED: u32 = 0x1d3;

/// Enters a guest in SVC mode (A/I/F masked) with the registers in `frame`,
/// at its (guest) address `pc`.
///
/// # Safety
/// HCR.VM is set and VTTBR holds stage-2 tables that confine the guest:
/// whatever it does then reaches HYP only through the vectors.
pub unsafe fn enter_guest(frame: &HypFrame, pc: u32) -> ! {
    // SAFETY: `frame` is a live, complete register set that the entry code
    // only reads; the SPSR names SVC mode, never HYP; confinement is the
    // caller's contract.
    unsafe { hyp_enter_guest(frame, SPSR_SVC_MASKED, pc) }
}

/// Returns from the current guest exit past the instruction that caused
/// it (`len` bytes: HSR.IL's 2 or 4).
pub fn skip_guest_instruction(len: u32) {
    let next = elr_hyp().wrapping_add(len);
    // SAFETY: moves the guest's return address by one instruction within
    // its own address space; HYP's own code is never the target (exits
    // come from non-HYP modes).
    unsafe { core::arch::asm!(".arch_extension virt", "msr elr_hyp, {}", in(reg) next, options(nomem, nostack)) };
}

extern "C" {
    fn hyp_secondary_entry();
}

/// Where a secondary pCPU starts (for PSCI CPU_ON).
pub fn secondary_entry() -> u64 {
    hyp_secondary_entry as *const () as usize as u64
}

/// ELR_hyp: where HYP mode returns to.
pub fn elr_hyp() -> u32 {
    let v: u32;
    // SAFETY: reading a HYP banked register has no memory effects.
    unsafe { core::arch::asm!(".arch_extension virt", "mrs {}, elr_hyp", out(reg) v, options(nomem, nostack)) };
    v
}

#[no_mangle]
extern "C" fn hyp_exception(frame: &mut HypFrame, vector: u32) {
    super::bringup::exception(frame, Vector::from_index(vector));
}
