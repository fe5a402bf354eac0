//! The bring-up probe: a small built-in 32-bit guest, run behind a real
//! stage 2 before the port can run real guests. It is a test harness for
//! the arch layer, not a domain: one vCPU, 2 MiB of RAM, the emulated
//! PL011 of `hv-core`, no interrupts.
//!
//! What it proves on the hardware (or QEMU): the LPAE stage 2 that
//! `hv-core` builds (the same tables as on aarch64), HCR/VTCR/VTTBR, entry
//! into a guest in SVC mode, and its exits decoded from HSR by `hv-core`:
//! stores to the emulated UART, a load outside its RAM that stage 2 stops,
//! and the HVC that ends it.

use super::entry::{self, HypFrame};
use super::sysreg;
use crate::console::{self, hvlog};
use core::sync::atomic::{AtomicBool, Ordering};
use hv_core::esr::{self, Access, DataAbort, Trap};
use hv_core::stage2::{self, MemKind, Stage2, TableMemory};
use hv_core::vuart::VUart;
use xen_abi::guest_layout as gl;

/// The probe's RAM: guest-physical at the usual guest RAM base, backed by
/// host RAM 256 MiB above the start of RAM (clear of this image).
const RAM_IPA: u64 = gl::RAM0_BASE;
const RAM_SIZE: u64 = stage2::BLOCK_2M;
const RAM_HOST_OFFSET: u64 = 256 << 20;

/// An address the probe reads that is outside its RAM: host RAM there
/// would be the probe's own backing if stage 2 were an identity map.
const OUTSIDE_IPA: u32 = 0x5000_0000;
/// What the hypervisor answers a load outside the probe's RAM with.
const NOTHING_THERE: u32 = 0xdead_beef;

/// SVC mode, A/I/F masked, A32: the mode a boot loader leaves a kernel in.
const SPSR_SVC_MASKED: u32 = 0x1d3;

/// HCR: stage 2 on (VM), physical interrupts and aborts to HYP (FMO, IMO,
/// AMO), WFI and SMC trapped (TWI, TSC).
const HCR: u32 = 1 | 1 << 3 | 1 << 4 | 1 << 5 | 1 << 13 | 1 << 19;

const VMID: u64 = 1;

static RUNNING: AtomicBool = AtomicBool::new(false);
static mut UART: VUart = VUart::new();

/// Frames for the probe's stage-2 tables (root, L2, spare).
#[repr(C, align(4096))]
struct Frames([[u64; 512]; 4]);
static mut TABLES: Frames = Frames([[0; 512]; 4]);
static mut USED: usize = 0;

/// The table pool, reached by physical address (the HYP map is one to
/// one).
struct Pool;

impl TableMemory for Pool {
    fn alloc_frame(&mut self) -> Option<u64> {
        // SAFETY: single-threaded bring-up (only the primary CPU runs);
        // the frames are this module's statics, zeroed at boot (bss).
        unsafe {
            let n = USED;
            let frames = &raw mut TABLES;
            if n >= (*frames).0.len() {
                return None;
            }
            USED = n + 1;
            Some((&raw mut (*frames).0[n]) as u64)
        }
    }

    fn read(&self, frame: u64, index: usize) -> u64 {
        assert!(is_ours(frame) && index < 512);
        // SAFETY: `frame` is one of TABLES' frames (asserted), index in it.
        unsafe { core::ptr::read_volatile((frame as *const u64).add(index)) }
    }

    fn write(&mut self, frame: u64, index: usize, value: u64) {
        assert!(is_ours(frame) && index < 512);
        // SAFETY: as for `read`; the stage-2 walker reads these words only
        // once VTTBR points at them, after the barriers in `run`.
        unsafe { core::ptr::write_volatile((frame as *mut u64).add(index), value) }
    }
}

fn is_ours(frame: u64) -> bool {
    let base = (&raw const TABLES) as u64;
    frame >= base && frame < base + 4 * 4096 && frame % 4096 == 0
}

core::arch::global_asm!(
    r#"
.arm
.section .rodata.probe, "a"
.balign 4
.global probe_guest_start, probe_guest_end
probe_guest_start:
    ldr     r4, 3f                  // the emulated PL011
    adr     r5, 4f                  // the greeting
1:  ldrb    r0, [r5], #1
    cmp     r0, #0
    beq     2f
    str     r0, [r4]                // UARTDR
    b       1b
2:  ldr     r6, 5f                  // its own RAM: a store and a load
    ldr     r7, 6f
    str     r7, [r6]
    ldr     r0, [r6]
    ldr     r6, 7f                  // where this image's header would be
    ldr     r1, [r6]                //   without stage 2: its own RAM instead
    ldr     r6, 8f                  // outside its RAM
    ldr     r2, [r6]
    hvc     #1                      // done: r0, r1, r2 for the hypervisor
9:  b       9b
3:  .word   0x22000000
5:  .word   0x40100000
6:  .word   0x12345678
7:  .word   0x40010024
8:  .word   0x50000000
4:  .asciz  "hello from a 32-bit guest in SVC mode, behind stage 2\n"
    .balign 4
probe_guest_end:
"#
);

extern "C" {
    static probe_guest_start: u8;
    static probe_guest_end: u8;
}

/// Builds the probe's stage 2, copies it in, and enters it. Its exits come
/// to `exit`; its final HVC ends the bring-up (`done`).
pub fn run(ram_base: u64, done: fn(bool) -> !) -> ! {
    // SAFETY: the linker's symbols around the probe's code in .rodata; the
    // bytes between them are this image's own, read-only.
    let code = unsafe {
        let start = &raw const probe_guest_start;
        let end = &raw const probe_guest_end;
        core::slice::from_raw_parts(start, end as usize - start as usize)
    };
    let host = ram_base + RAM_HOST_OFFSET;
    let mut pool = Pool;
    // Only its RAM: the UART is emulated (its accesses fault to us).
    let s2 = Stage2::new(&mut pool).and_then(|mut s2| s2.map(&mut pool, RAM_IPA, host, RAM_SIZE, MemKind::Ram).map(|_| s2));
    let Ok(s2) = s2 else {
        hvlog!("probe: its stage 2 could not be built");
        done(false)
    };
    // SAFETY: `host` is 2 MiB of RAM 256 MiB into the board's RAM, which
    // nothing else uses during bring-up (this image is at RAM base +
    // 64 KiB, far below); the probe's code fits in it.
    unsafe {
        core::ptr::write_bytes(host as *mut u8, 0, RAM_SIZE as usize);
        core::ptr::copy_nonoverlapping(code.as_ptr(), host as *mut u8, code.len());
    }
    // The probe runs with its MMU and caches off: it reads memory, where
    // the code must be. (The tables are walked cacheable, as HYP wrote.)
    // SAFETY: the probe's RAM is inside the RAM the HYP map covers.
    unsafe { super::mmu::clean_to_poc(host, RAM_SIZE) };
    sysreg::set_vtcr(stage2::vtcr_a32());
    sysreg::set_vttbr(s2.root() | VMID << 48);
    sysreg::invalidate_guest_tlbs_and_icache();
    sysreg::set_hcr(HCR);
    RUNNING.store(true, Ordering::Release);
    hvlog!("probe: entering a 32-bit guest at IPA {:#x} (host {:#x}), behind stage 2", RAM_IPA, host);
    let regs = HypFrame { r: [0; 13], lr: 0 };
    entry::enter_guest(&regs, SPSR_SVC_MASKED, RAM_IPA as u32)
}

/// A trap from the probe (vector 0x14). `None` if it is not running.
pub fn exit(frame: &mut HypFrame, hsr: u32, done: fn(bool) -> !) -> Option<()> {
    if !RUNNING.load(Ordering::Acquire) {
        return None;
    }
    let hsr = hsr as u64;
    let next = || entry::set_elr_hyp(entry::elr_hyp().wrapping_add(esr::insn_len(hsr) as u32));
    match esr::decode(hsr) {
        Trap::DataAbort(DataAbort { valid: Some(acc), .. }) if acc.reg < 13 => {
            let ipa = sysreg::fault_ipa();
            let reg = &mut frame.r[acc.reg as usize];
            if (gl::PL011_BASE..gl::PL011_BASE + gl::PL011_SIZE).contains(&ipa) {
                uart_access(ipa - gl::PL011_BASE, acc, reg);
            } else if !acc.write {
                hvlog!("probe: stage 2 kept it out of IPA {ipa:#x} (a load: answered {NOTHING_THERE:#x})");
                *reg = NOTHING_THERE;
            } else {
                hvlog!("probe: stage 2 kept it out of IPA {ipa:#x} (a store: dropped)");
            }
            next();
            Some(())
        }
        Trap::Hvc { imm: 1 } => {
            RUNNING.store(false, Ordering::Release);
            let (own, at_header, outside) = (frame.r[0], frame.r[1], frame.r[2]);
            hvlog!("probe: done: its RAM read back {own:#x}; IPA 0x40010024 held {at_header:#x}; IPA {OUTSIDE_IPA:#x} gave {outside:#x}");
            // Its RAM works, the image's zImage magic (host 0x40010024) is
            // not what it sees there, and outside its RAM it got nothing.
            done(own == 0x1234_5678 && at_header != 0x016f_2818 && outside == NOTHING_THERE)
        }
        other => {
            console::emergency_line(format_args!("probe: an exit the probe never makes: {other:?} (HSR {hsr:#x})"));
            done(false)
        }
    }
}

fn uart_access(offset: u64, acc: Access, reg: &mut u32) {
    // SAFETY: only the probe's exits (on the primary CPU, one at a time)
    // reach the probe's UART.
    let uart = unsafe { &mut *(&raw mut UART) };
    let effect = uart.access(offset, acc, acc.store_value(*reg as u64));
    if !acc.write {
        *reg = acc.load_value(effect.value) as u32;
    }
    if effect.line_ready {
        console::domain_line(0, "probe", uart.take_line().as_bytes());
    }
}
