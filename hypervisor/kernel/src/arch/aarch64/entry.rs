//! Entry points and exception vectors (assembly).
//!
//! The image starts with an arm64 Linux `Image` header so QEMU's `-kernel`
//! and U-Boot's `booti` load it at RAM base + 2 MiB and pass the device tree
//! in x0, as they would for Xen. It is linked there (see build.rs): loaded
//! anywhere else, it stops before touching memory. The primary CPU enters at `_start`;
//! secondaries at `secondary_entry`, started through PSCI CPU_ON.
//!
//! Every exception from a guest saves the guest's general registers into a
//! [`Frame`] at the top of this pCPU's stack and calls into Rust; returning
//! restores the frame and `eret`s into the guest again.

use core::arch::global_asm;

/// Guest general-purpose state saved on every exit.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Frame {
    pub x: [u64; 31],
    pub elr: u64,
    pub spsr: u64,
    _pad: u64,
}

/// SPSR_EL2.M[4]: the exception came from AArch32.
const SPSR_AARCH32: u64 = 1 << 4;

impl Frame {
    pub const ZERO: Frame = Frame { x: [0; 31], elr: 0, spsr: 0, _pad: 0 };

    /// General register `r` as a trap's syndrome names it (31 is the zero
    /// register: reads 0).
    pub fn reg(&self, r: u8) -> u64 {
        self.x.get(r as usize).copied().unwrap_or(0)
    }

    /// Writes general register `r` (31, the zero register: ignored).
    pub fn set_reg(&mut self, r: u8, v: u64) {
        if let Some(x) = self.x.get_mut(r as usize) {
            *x = v;
        }
    }

    /// The first argument and result register (x0).
    pub fn set_result(&mut self, v: u64) {
        self.x[0] = v;
    }

    /// SMCCC's function ID and first three arguments (x0-x3).
    pub fn smccc_args(&self) -> [u64; 4] {
        [self.x[0], self.x[1], self.x[2], self.x[3]]
    }

    /// Xen's hypercall on arm64: its number (x16) and arguments (x0-x4).
    pub fn xen_hypercall(&self) -> (u64, [u64; 5]) {
        (self.x[16], [self.x[0], self.x[1], self.x[2], self.x[3], self.x[4]])
    }

    /// Where the guest resumes, and its PSTATE there.
    pub fn pc(&self) -> u64 {
        self.elr
    }

    /// PSTATE where the guest resumes (SPSR_EL2).
    pub fn pstate(&self) -> u64 {
        self.spsr
    }

    /// Resumes past the trapped instruction (`len` bytes).
    pub fn skip(&mut self, len: u64) {
        self.elr = self.elr.wrapping_add(len);
        // An AArch32 EL0 task's Thumb IT block keeps its conditions.
        if self.spsr & SPSR_AARCH32 != 0 {
            self.spsr = hv_core::esr::a32_it_advance(self.spsr);
        }
    }

    /// An AArch32 MRC to APSR_nzcv (Rt = 15): the flags take bits 31:28
    /// of the value read.
    pub fn set_nzcv(&mut self, v: u64) {
        self.spsr = (self.spsr & !(0xf << 28)) | (v & (0xf << 28));
    }

    /// A kernel image's entry (arm64 `Image` protocol): x0 holds its
    /// device tree, EL1h with every exception masked.
    pub fn kernel_entry(pc: u64, dtb: u64) -> Frame {
        Frame::cpu_on_entry(pc, dtb)
    }

    /// A vCPU PSCI CPU_ON started: x0 holds the caller's context.
    pub fn cpu_on_entry(pc: u64, context: u64) -> Frame {
        let mut f = Frame::ZERO;
        f.x[0] = context;
        f.elr = pc;
        f.spsr = super::vcpu_regs::SPSR_EL1H_MASKED;
        f
    }
}

pub const FRAME_SIZE: usize = core::mem::size_of::<Frame>();
const _: () = assert!(FRAME_SIZE == 34 * 8);

pub const STACK_SIZE: usize = 64 * 1024;
pub const MAX_CPUS: usize = 8;

#[repr(C, align(16))]
pub struct Stacks(pub [[u8; STACK_SIZE]; MAX_CPUS]);

#[no_mangle]
pub static mut HV_STACKS: Stacks = Stacks([[0; STACK_SIZE]; MAX_CPUS]);

global_asm!(
    r#"
.section .text.head, "ax"
.global _start
_start:
    // arm64 Image header (Documentation/arch/arm64/booting.rst layout).
    b       primary_entry           // code0
    .long   0                       // code1
    .quad   0x200000                // text_offset
    .quad   __image_end - _start    // image_size
    .quad   0x2                     // flags: little endian, 4K pages, at RAM base
    .quad   0, 0, 0                 // res2..res4
    .ascii  "ARM\x64"               // magic
    .long   0                       // res5

primary_entry:
    mov     x19, x0                 // device tree
    // Where we run (PC-relative) must be where we were linked (absolute):
    // every static address depends on it.
    adr     x1, _start
    ldr     x2, =_start
    cmp     x1, x2
    b.ne    9f
    // Zero .bss (stacks included) before any Rust code runs.
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
1:  cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b
2:  mov     x0, #0
    bl      set_stack
    mov     x0, x19
    bl      primary_main
    b       .
9:  wfe
    b       9b
.ltorg

.global secondary_entry
secondary_entry:
    // x0 = CPU index, the PSCI context id the primary passed.
    mov     x19, x0
    bl      set_stack
    mov     x0, x19
    bl      secondary_main
    b       .

// sp = top of HV_STACKS[x0] less the frame slot; TPIDR_EL2 = x0 (this
// CPU's index).
set_stack:
    msr     tpidr_el2, x0
    adrp    x1, HV_STACKS
    add     x1, x1, :lo12:HV_STACKS
    add     x0, x0, #1
    mov     x2, #{stack}
    madd    x1, x0, x2, x1
    sub     x1, x1, #{frame}
    mov     sp, x1
    ret

.macro SAVE_FRAME
    sub     sp, sp, #{frame}
    stp     x0, x1, [sp, #16 * 0]
    stp     x2, x3, [sp, #16 * 1]
    stp     x4, x5, [sp, #16 * 2]
    stp     x6, x7, [sp, #16 * 3]
    stp     x8, x9, [sp, #16 * 4]
    stp     x10, x11, [sp, #16 * 5]
    stp     x12, x13, [sp, #16 * 6]
    stp     x14, x15, [sp, #16 * 7]
    stp     x16, x17, [sp, #16 * 8]
    stp     x18, x19, [sp, #16 * 9]
    stp     x20, x21, [sp, #16 * 10]
    stp     x22, x23, [sp, #16 * 11]
    stp     x24, x25, [sp, #16 * 12]
    stp     x26, x27, [sp, #16 * 13]
    stp     x28, x29, [sp, #16 * 14]
    mrs     x0, elr_el2
    mrs     x1, spsr_el2
    stp     x30, x0, [sp, #16 * 15]
    str     x1, [sp, #16 * 16]
    // Synchronise SErrors: the guest's posted writes complete, and an error
    // they raise is taken now (vector 0x380), charged to this exit's vCPU,
    // never to whoever runs on this pCPU next.
    dsb     sy
    msr     daifclr, #4
    isb
    msr     daifset, #4
    mov     x0, sp
.endm

.section .text.vectors, "ax"
.balign 2048
.global hv_vectors
hv_vectors:
    // Current EL with SP0: never used.
    .balign 128
    b       hv_fault
    .balign 128
    b       hv_fault
    .balign 128
    b       hv_fault
    .balign 128
    b       hv_fault
    // Current EL with SPx: a fault in the hypervisor itself, or (0x380) an
    // SError taken while a guest exit synchronises them (SAVE_FRAME: the
    // only time SErrors are unmasked at EL2). The frame is saved already,
    // so ELR/SPSR may be overwritten: note it for this pCPU and go on.
    .org hv_vectors + 0x200
    b       hv_fault
    .org hv_vectors + 0x280
    b       hv_fault
    .org hv_vectors + 0x300
    b       hv_fault
    .org hv_vectors + 0x380
    stp     x0, x1, [sp, #-16]!
    mrs     x0, tpidr_el2
    adrp    x1, {serror}
    add     x1, x1, :lo12:{serror}
    add     x1, x1, x0
    mov     w0, #1
    strb    w0, [x1]
    ldp     x0, x1, [sp], #16
    eret
    // Lower EL, AArch64: the guests. `.org` makes the assembler refuse a
    // handler that outgrows its 128-byte slot.
    .org hv_vectors + 0x400
    SAVE_FRAME
    bl      guest_sync
    b       guest_return
    .org hv_vectors + 0x480
    SAVE_FRAME
    bl      guest_irq
    b       guest_return
    .org hv_vectors + 0x500
    SAVE_FRAME
    bl      guest_irq
    b       guest_return
    .org hv_vectors + 0x580
    SAVE_FRAME
    bl      guest_serror
    b       guest_return
    // Lower EL, AArch32: not supported for guests; treated as a fault.
    .org hv_vectors + 0x600
    b       hv_fault
    .org hv_vectors + 0x680
    b       hv_fault
    .org hv_vectors + 0x700
    b       hv_fault
    .org hv_vectors + 0x780
    b       hv_fault
    .org hv_vectors + 0x800

hv_fault:
    mrs     x0, esr_el2
    mrs     x1, elr_el2
    mrs     x2, far_el2
    bl      hypervisor_fault
    b       .

// Restores the frame at sp and enters the guest.
.global guest_return
guest_return:
    ldr     x1, [sp, #16 * 16]
    ldp     x30, x0, [sp, #16 * 15]
    // Never into EL2 or EL3 with a guest's registers (SPSR.M[4] clear:
    // AArch64, M[3:2] the EL). No path builds such a frame: defence in depth.
    tbnz    x1, #4, 1f
    and     x2, x1, #0xc
    cmp     x2, #0x8
    b.hs    guest_return_bad
1:  msr     elr_el2, x0
    msr     spsr_el2, x1
    ldp     x0, x1, [sp, #16 * 0]
    ldp     x2, x3, [sp, #16 * 1]
    ldp     x4, x5, [sp, #16 * 2]
    ldp     x6, x7, [sp, #16 * 3]
    ldp     x8, x9, [sp, #16 * 4]
    ldp     x10, x11, [sp, #16 * 5]
    ldp     x12, x13, [sp, #16 * 6]
    ldp     x14, x15, [sp, #16 * 7]
    ldp     x16, x17, [sp, #16 * 8]
    ldp     x18, x19, [sp, #16 * 9]
    ldp     x20, x21, [sp, #16 * 10]
    ldp     x22, x23, [sp, #16 * 11]
    ldp     x24, x25, [sp, #16 * 12]
    ldp     x26, x27, [sp, #16 * 13]
    ldp     x28, x29, [sp, #16 * 14]
    add     sp, sp, #{frame}
    eret

guest_return_bad:
    mov     x2, x0
    mov     x0, x1
    mov     x1, x2
    bl      guest_return_refused
    b       .

// x0 = pointer to a Frame at the top of this CPU's stack: enter it.
.global enter_guest
enter_guest:
    mov     sp, x0
    b       guest_return
"#,
    frame = const FRAME_SIZE,
    stack = const STACK_SIZE,
    serror = sym SERROR_AT_EXIT,
);

/// Per pCPU: an SError was taken while the last guest exit synchronised
/// them (written by the vector code, read and cleared by `take_serror`).
static SERROR_AT_EXIT: [core::sync::atomic::AtomicU8; MAX_CPUS] =
    [const { core::sync::atomic::AtomicU8::new(0) }; MAX_CPUS];

/// Whether the exit this pCPU is handling brought an SError with it (the
/// exiting vCPU's doing); clears the note.
pub fn take_serror(cpu: usize) -> bool {
    SERROR_AT_EXIT.get(cpu).is_some_and(|f| f.swap(0, core::sync::atomic::Ordering::AcqRel) != 0)
}

extern "C" {
    fn enter_guest(frame: *mut Frame) -> !;
    static hv_vectors: u8;
}

/// Address of the exception vector table, for VBAR_EL2.
/// Points VBAR_EL2 at the vectors above (each CPU, once its MMU is on).
pub fn install_vectors() {
    super::sysreg::write!(vbar_el2, vectors());
    super::sysreg::isb();
}

fn vectors() -> u64 {
    core::ptr::addr_of!(hv_vectors) as u64
}

/// Where this CPU's guest frame lives: the top of its stack, so the vector
/// code's `sub sp` lands exactly there on every guest exit.
pub fn frame_slot(cpu: usize) -> *mut Frame {
    let cpu = cpu.min(MAX_CPUS - 1);
    // SAFETY: only an address inside HV_STACKS is computed; no reference to
    // the static is formed.
    unsafe {
        let base = core::ptr::addr_of_mut!(HV_STACKS) as *mut u8;
        base.add((cpu + 1) * STACK_SIZE - FRAME_SIZE) as *mut Frame
    }
}

/// Writes `frame` to this CPU's frame slot and enters the guest; the stack
/// is reset, so nothing of the caller survives.
pub fn enter(cpu: usize, frame: &Frame) -> ! {
    let slot = frame_slot(cpu);
    // SAFETY: `slot` is this CPU's own frame slot at the top of its stack;
    // Rust code on this CPU always runs below it (`set_stack` and the vector
    // code start sp at the slot), so `frame` cannot overlap it, and
    // `enter_guest` resets sp to the slot without returning.
    unsafe {
        slot.write(*frame);
        enter_guest(slot)
    }
}
