//! The bring-up probe: a small built-in 32-bit guest, run behind a real
//! stage 2 before the port can run real guests. It is a test harness for
//! the arch layer, not a domain: one vCPU, 2 MiB of RAM, the emulated
//! PL011 of `hv-core`, its virtual timer's interrupt.
//!
//! What it proves on the hardware (or QEMU): the LPAE stage 2 that
//! `hv-core` builds (the same tables as on aarch64), HCR/VTCR/VTTBR, entry
//! into a guest in SVC mode, and its exits decoded from HSR by `hv-core`:
//! stores to the emulated UART, a load outside its RAM that stage 2 stops,
//! and the HVC that ends it; and an interrupt: its virtual timer fires,
//! HYP forwards it through the (shared) GICv2 driver's list registers, and
//! the probe takes it at its own vector from the GICV behind stage 2.

use super::entry::{self, HypFrame};
use super::gic::{self, lr};
use super::sysreg;
use crate::console::{self, hvlog};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use hv_core::esr::{self, Access, DataAbort, Trap};
use hv_core::psci;
use xen_abi::smccc;
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

/// HCR: stage 2 on (VM), set/way invalidates made clean-and-invalidate
/// (SWIO: a guest cannot discard HYP's dirty lines), physical interrupts
/// and aborts to HYP (FMO, IMO, AMO), broadcast TLB and cache maintenance
/// (FB) inner shareable (BSU), SMC, implementation-defined CP15 and
/// auxiliary control registers trapped (TSC, TIDCP, TAC). WFI runs
/// natively (vwfi=native).
const HCR: u32 = 1 | 1 << 1 | 1 << 3 | 1 << 4 | 1 << 5 | 1 << 9 | 0b01 << 10 | 1 << 19 | 1 << 20 | 1 << 21;

/// The guest's SCTLR at entry: MMU, caches and alignment checks off,
/// exceptions in A32 at VBAR (TE, V clear), RES1 bits set.
const GUEST_SCTLR: u32 = 0x00c5_0078;

const VMID: u8 = 1;

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
        // SAFETY: only the primary builds the probe's tables (the
        // secondaries wait in WFI), once;
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
.balign 32
.global probe_guest_start, probe_guest_end
probe_guest_start:
    // Its exception vectors (VBAR points here): reset runs the probe, an
    // IRQ goes to its handler, anything else stops it where it is.
    b       10f
    b       .
    b       .
    b       .
    b       .
    b       .
    b       20f
    b       .
10: ldr     r4, 30f                 // the emulated PL011
    adr     r5, 39f                 // the greeting
1:  ldrb    r0, [r5], #1
    cmp     r0, #0
    beq     2f
    str     r0, [r4]                // UARTDR
    b       1b
2:  ldr     r6, 31f                 // its own RAM: a store and a load
    ldr     r7, 32f
    str     r7, [r6]
    ldr     r8, [r6]
    ldr     r6, 33f                 // where this image's header would be
    ldr     r9, [r6]                //   without stage 2: its own RAM instead
    ldr     r6, 34f                 // outside its RAM
    ldr     r10, [r6]
    ldr     r0, 40f                 // PSCI_VERSION, the way Linux asks (HVC)
    hvc     #0
    mov     r11, r0
    // An interrupt: its virtual timer, through its GIC CPU interface (the
    // GICV behind stage 2) and its own IRQ vector.
    cps     #0x12                   // IRQ mode's stack
    ldr     sp, 35f
    cps     #0x13
    adr     r0, probe_guest_start
    mcr     p15, 0, r0, c12, c0, 0  // VBAR
    ldr     r4, 36f
    mov     r0, #0xf0
    str     r0, [r4, #4]            // GICC_PMR
    mov     r0, #1
    str     r0, [r4]                // GICC_CTLR: on
    ldr     r6, 37f
    mov     r0, #0
    str     r0, [r6]                // the handler's mark
    ldr     r0, 38f
    mcr     p15, 0, r0, c14, c3, 0  // CNTV_TVAL
    mov     r0, #1
    mcr     p15, 0, r0, c14, c3, 1  // CNTV_CTL: on, unmasked
    cpsie   i
3:  wfi
    ldr     r3, [r6]
    cmp     r3, #0
    beq     3b
    mov     r0, r8
    mov     r1, r9
    mov     r2, r10
    mov     r4, r11
    hvc     #1                      // done: r0-r4 for the hypervisor
4:  b       4b
20: push    {{r0-r2, r4}}            // IRQ
    ldr     r4, 36f
    ldr     r0, [r4, #0x0c]         // GICC_IAR
    mov     r1, #0
    mcr     p15, 0, r1, c14, c3, 1  // the timer off: its line drops
    str     r0, [r4, #0x10]         // GICC_EOIR
    ldr     r2, 37f
    str     r0, [r2]                // mark: the INTID it took
    pop     {{r0-r2, r4}}
    subs    pc, lr, #4
30: .word   0x22000000
31: .word   0x40100000
32: .word   0x12345678
33: .word   0x40010024
34: .word   0x50000000
35: .word   0x40180000
36: .word   0x03002000
37: .word   0x40100010
38: .word   100000
40: .word   0x84000000
39: .asciz  "hello from a 32-bit guest in SVC mode, behind stage 2\n"
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
pub fn run(ram: (u64, u64), dtb: (u64, u64), gicv: u64, done: fn(bool) -> !) -> ! {
    // SAFETY: the linker's symbols around the probe's code in .rodata; the
    // bytes between them are this image's own, read-only.
    let code = unsafe {
        let start = &raw const probe_guest_start;
        let end = &raw const probe_guest_end;
        core::slice::from_raw_parts(start, end as usize - start as usize)
    };
    let host = ram.0 + RAM_HOST_OFFSET;
    // Inside the RAM the HYP map covers, clear of the device tree (this
    // image lies below RAM_HOST_OFFSET).
    let overlaps = |a: (u64, u64)| a.0 < host + RAM_SIZE && host < a.0.saturating_add(a.1);
    if RAM_HOST_OFFSET + RAM_SIZE > ram.1 || overlaps(dtb) {
        hvlog!("probe: no room for its RAM at {host:#x} (RAM {:#x}+{:#x}, device tree {:#x}+{:#x})", ram.0, ram.1, dtb.0, dtb.1);
        done(false)
    }
    let mut pool = Pool;
    // Its RAM, and the GIC's virtual CPU interface as its GICC; the UART
    // is emulated (its accesses fault to us).
    let s2 = Stage2::new(&mut pool).and_then(|mut s2| {
        s2.map(&mut pool, RAM_IPA, host, RAM_SIZE, MemKind::Ram)?;
        s2.map(&mut pool, gl::GICC_BASE, gicv, gl::GICC_SIZE, MemKind::Device)?;
        Ok(s2)
    });
    let Ok(s2) = s2 else {
        hvlog!("probe: its stage 2 could not be built");
        done(false)
    };
    // SAFETY: `host` is 2 MiB inside the mapped RAM (checked above), clear
    // of the device tree and of this image (at RAM base + 64 KiB), used by
    // nothing else during bring-up; the probe's code fits in it.
    unsafe {
        core::ptr::write_bytes(host as *mut u8, 0, RAM_SIZE as usize);
        core::ptr::copy_nonoverlapping(code.as_ptr(), host as *mut u8, code.len());
    }
    // The probe runs with its MMU and caches off: it reads memory, where
    // the code must be. (The tables are walked cacheable, as HYP wrote.)
    // SAFETY: the probe's RAM is inside the RAM the HYP map covers.
    unsafe { super::mmu::clean_to_poc(host, RAM_SIZE) };
    sysreg::set_vtcr(stage2::vtcr_a32());
    // SAFETY: the probe's own tables (TABLES, static), mapping only its
    // RAM and the GICV; nothing replaces them while it runs.
    unsafe { sysreg::set_vttbr(s2.root(), VMID) };
    sysreg::set_guest_sctlr(GUEST_SCTLR);
    sysreg::invalidate_guest_tlbs_and_icache();
    sysreg::set_cntvoff(0);
    sysreg::set_hcr(HCR);
    RUNNING.store(true, Ordering::Release);
    hvlog!("probe: entering a 32-bit guest at IPA {:#x} (host {:#x}), behind stage 2", RAM_IPA, host);
    let regs = HypFrame { r: [0; 13], lr: 0 };
    // SAFETY: HCR.VM is set and VTTBR holds the probe's tables (above).
    unsafe { entry::enter_guest(&regs, RAM_IPA as u32) }
}

/// A trap from the probe (vector 0x14). `None` if it is not running.
pub fn exit(frame: &mut HypFrame, hsr: u32, done: fn(bool) -> !) -> Option<()> {
    if !RUNNING.load(Ordering::Acquire) {
        return None;
    }
    let hsr = hsr as u64;
    let next = || entry::skip_guest_instruction(esr::insn_len(hsr) as u32);
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
        // SMCCC (PSCI) from the guest, answered by the hypervisor itself
        // (the J6 has no PSCI firmware), as hv-core decides for aarch64.
        Trap::Hvc { imm: 0 } => {
            let call = psci::decode([frame.r[0], frame.r[1], frame.r[2], frame.r[3]].map(u64::from));
            frame.r[0] = psci::simple_answer(call).unwrap_or(smccc::NOT_SUPPORTED) as u32;
            Some(())
        }
        Trap::Hvc { imm: 1 } => {
            RUNNING.store(false, Ordering::Release);
            let (own, at_header, outside, intid, version) = (frame.r[0], frame.r[1], frame.r[2], frame.r[3], frame.r[4]);
            hvlog!("probe: PSCI_VERSION (HVC from the guest) answered by the hypervisor: {}.{}", version >> 16, version & 0xffff);
            hvlog!("probe: done: its RAM read back {own:#x}; IPA 0x40010024 held {at_header:#x}; IPA {OUTSIDE_IPA:#x} gave {outside:#x}");
            hvlog!(
                "probe: its virtual timer interrupt came through its GIC CPU interface as INTID {intid} ({} forwarded from HYP)",
                FORWARDED.load(Ordering::Relaxed)
            );
            // Its RAM works, the image's zImage magic (host 0x40010024) is
            // not what it sees there, outside its RAM it got nothing, and
            // its timer's interrupt reached it.
            done(
                own == 0x1234_5678
                    && at_header != 0x016f_2818
                    && outside == NOTHING_THERE
                    && intid == gic::VTIMER_PPI
                    && u64::from(version) == xen_abi::psci::VERSION_1_1,
            )
        }
        other => {
            console::emergency_line(format_args!("probe: an exit the probe never makes: {other:?} (HSR {hsr:#x})"));
            done(false)
        }
    }
}

/// Interrupts forwarded to the probe.
static FORWARDED: AtomicU32 = AtomicU32::new(0);

/// A physical interrupt while the probe runs (vector 0x18; HCR.IMO). Its
/// virtual timer's goes to its list registers, linked to the physical one
/// (the guest's EOI deactivates both), after our priority drop.
pub fn irq() {
    let intid = gic::ack();
    if intid == gic::SPURIOUS {
        return;
    }
    if intid == gic::VTIMER_PPI && RUNNING.load(Ordering::Acquire) {
        gic::write_lr(0, lr::pending(intid, 0xa0, true));
        FORWARDED.fetch_add(1, Ordering::Relaxed);
        gic::eoi(intid);
    } else {
        gic::eoi(intid);
        gic::deactivate(intid);
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
