//! A board's own bring-up, from its facts in the bundle: on TI DRA7 (the
//! J6), the realtime counter the generic timer counts, the IRQ crossbar's
//! routes, and the secondary CPUs' start through the AuxCoreBoot registers
//! (it has no PSCI). What to write is `hv_core::dra7`'s and the bundle's
//! crossbar table's; here are the register accesses.
//!
//! Written from TI's documented interfaces (as Linux and Xen use them) and
//! not yet run on a J6: QEMU has no DRA7 machine.

use super::sysreg::{self, dsb_sy};
use crate::console::hvlog;
use core::sync::atomic::{AtomicU64, Ordering};
use hv_core::bundle::Bundle;
use hv_core::dra7;

/// WakeupGen's base (0: the board has PSCI, or nothing to start with).
static AUX_CORE_BOOT: AtomicU64 = AtomicU64::new(0);

/// Once, on the primary CPU, with the HYP map on (every board register
/// lies in its device memory: `handoff` checked the frames).
pub fn init(bundle: &Bundle<'_>) {
    let board = &bundle.board;
    AUX_CORE_BOOT.store(board.aux_core_boot, Ordering::Relaxed);
    if board.realtime_counter != 0 {
        program_realtime_counter(board.realtime_counter, board.clksel_sys);
    }
    program_crossbar(bundle);
}

/// Every crossbar line register the build planned: the domains' routed
/// inputs, and the safe input on every other line, before any domain can
/// enable an SPI.
fn program_crossbar(bundle: &Bundle<'_>) {
    let base = bundle.board.crossbar_base;
    let mut n = 0;
    for w in bundle.crossbar_writes() {
        // `Bundle::parse` keeps each write a 2-byte aligned line register
        // the crossbar has (`crossbar_span`) and its value an input it has:
        // inside the crossbar's frame, which `handoff` checked to be device
        // memory and `parse` checked to be no other frame of ours.
        write16(base + u64::from(w.offset), w.value);
        n += 1;
    }
    if n > 0 {
        dsb_sy();
        hvlog!("IRQ crossbar: {n} lines programmed");
    }
}

fn read32(addr: u64) -> u32 {
    // SAFETY: a device register from the bundle's board facts, which the
    // build validated and `handoff` checked to be device memory in the
    // identity map (below 4 GiB, so the address fits).
    unsafe { core::ptr::read_volatile(addr as usize as *const u32) }
}

fn write32(addr: u64, v: u32) {
    // SAFETY: as for `read32`; the register is the hypervisor's alone.
    unsafe { core::ptr::write_volatile(addr as usize as *mut u32, v) }
}

fn write16(addr: u64, v: u16) {
    // SAFETY: as for `read32`: a 16-bit crossbar register (2-byte aligned),
    // the hypervisor's alone.
    unsafe { core::ptr::write_volatile(addr as usize as *mut u16, v) }
}

/// The realtime counter's incrementer from the system clock CM_CLKSEL_SYS
/// selects, so that the generic timer counts 6.144 MHz.
fn program_realtime_counter(base: u64, clksel_reg: u64) {
    let clksel = read32(clksel_reg);
    let Some((num, den)) = dra7::incrementer(clksel) else {
        hvlog!("realtime counter: CM_CLKSEL_SYS = {clksel:#x} selects no system clock DRA7 defines: left as firmware set it");
        return;
    };
    let (at_num, at_den) = (base + dra7::INCREMENTER_NUMERATOR, base + dra7::INCREMENTER_DENOMINATOR_RELOAD);
    write32(at_num, dra7::numerator_register(read32(at_num), num));
    write32(at_den, dra7::denominator_register(read32(at_den), den));
    dsb_sy();
    let hz = sysreg::counter_hz();
    if hz != dra7::COUNTER_HZ {
        // CNTFRQ is written only from the secure side (U-Boot does it
        // through the ROM); the hypervisor counts by the real rate.
        hvlog!("realtime counter: {num}/{den} per system clock cycle; CNTFRQ says {hz} Hz, the counter ticks at {} Hz", dra7::COUNTER_HZ);
        sysreg::set_counter_hz(dra7::COUNTER_HZ);
    }
}

extern "C" {
    fn hyp_rom_secondary_entry();
}

/// Starts pCPU `cpu` through WakeupGen's AuxCoreBoot registers, if the
/// board has them: its entry in AuxCoreBoot1, then its "go" in
/// AuxCoreBoot0, then an event to wake it from the ROM's WFE. `None`: the
/// board has none (PSCI's business).
pub fn start_cpu(cpu: usize) -> Option<i64> {
    let base = AUX_CORE_BOOT.load(Ordering::Relaxed);
    if base == 0 {
        return None;
    }
    // The J6's ROM releases its one secondary A15 (pCPU 1).
    if cpu != 1 {
        return Some(xen_abi::psci::INVALID_PARAMETERS);
    }
    // A code address of this image, which runs where it is linked (a
    // physical address: the map is one to one).
    let entry = hyp_rom_secondary_entry as *const () as usize as u32;
    write32(base + dra7::AUX_CORE_BOOT_1, entry);
    dsb_sy();
    write32(base + dra7::AUX_CORE_BOOT_0, dra7::AUX_CORE_BOOT_GO);
    dsb_sy();
    // SAFETY: signals an event to the other CPUs; no memory effects.
    unsafe { core::arch::asm!("sev", options(nomem, nostack)) };
    Some(xen_abi::psci::SUCCESS)
}
