//! The physical UART the hypervisor console writes to: a PL011, a Cadence
//! UART or a Renesas SCIF, as the boot bundle says. Until `init` names it,
//! output is dropped: a guess could be RAM on another board (QEMU virt's
//! PL011 address is DDR on a ZynqMP). The boot loader set the line up
//! (rate, framing); this only feeds the transmit FIFO.

use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use hv_core::bundle::UartKind;

static BASE: AtomicU64 = AtomicU64::new(0);
static KIND: AtomicU8 = AtomicU8::new(UartKind::Pl011 as u8);

/// PL011: data register, flag register's TXFF.
const PL011_DR: usize = 0x00;
const PL011_FR: usize = 0x18;
const PL011_FR_TXFF: u32 = 1 << 5;
/// Cadence: FIFO register, channel status's TFUL, and the control
/// register's transmitter and receiver enables (the reset value has them
/// disabled; a boot loader that used the UART left them on).
const CADENCE_CR: usize = 0x00;
const CADENCE_CR_TX_RX_EN: u32 = (1 << 4) | (1 << 2);
const CADENCE_SR: usize = 0x2C;
const CADENCE_SR_TFUL: u32 = 1 << 4;
const CADENCE_FIFO: usize = 0x30;
/// SCIF: 8-bit transmit FIFO data, 16-bit status (TEND, TDFE are cleared by
/// writing 0 after reading 1) and 16-bit FIFO data count (bits 12:8 count
/// what waits to be sent, of 16).
const SCIF_SCFTDR: usize = 0x0C;
const SCIF_SCFSR: usize = 0x10;
const SCIF_SCFSR_TEND_TDFE: u16 = (1 << 6) | (1 << 5);
const SCIF_SCFDR: usize = 0x1C;
const SCIF_FIFO: u16 = 16;
// TI OMAP UART (8250 registers, 4 bytes apart): transmit holding register,
// line status register, and its "holding register empty" bit. U-Boot has
// set the line up.
const OMAP_THR: usize = 0x00;
const OMAP_LSR: usize = 0x14;
const OMAP_LSR_THRE: u32 = 1 << 5;

fn kind() -> UartKind {
    match KIND.load(Ordering::Relaxed) {
        k if k == UartKind::Cadence as u8 => UartKind::Cadence,
        k if k == UartKind::Scif as u8 => UartKind::Scif,
        k if k == UartKind::Omap as u8 => UartKind::Omap,
        _ => UartKind::Pl011,
    }
}

/// # Safety
/// `base` must be the board's UART of `kind`, mapped as device memory at
/// EL2 (or the MMU off).
pub unsafe fn init(kind: UartKind, base: u64) {
    KIND.store(kind as u8, Ordering::Relaxed);
    if kind == UartKind::Cadence {
        // SAFETY: the caller vouches for `base`: a 32-bit write of the
        // Cadence UART's control register.
        unsafe { core::ptr::write_volatile((base as usize + CADENCE_CR) as *mut u32, CADENCE_CR_TX_RX_EN) };
    }
    BASE.store(base, Ordering::Release);
}

/// Whether the transmit FIFO at `base` (of the current kind) is full.
///
/// # Safety
/// `base` is the UART `init` was given.
unsafe fn tx_full(base: usize) -> bool {
    // SAFETY: per the function's contract; each register is read at its
    // kind's offset and width.
    unsafe {
        match kind() {
            UartKind::Pl011 => core::ptr::read_volatile((base + PL011_FR) as *const u32) & PL011_FR_TXFF != 0,
            UartKind::Cadence => core::ptr::read_volatile((base + CADENCE_SR) as *const u32) & CADENCE_SR_TFUL != 0,
            UartKind::Scif => (core::ptr::read_volatile((base + SCIF_SCFDR) as *const u16) >> 8) & 0x1f >= SCIF_FIFO,
            UartKind::Omap => core::ptr::read_volatile((base + OMAP_LSR) as *const u32) & OMAP_LSR_THRE == 0,
        }
    }
}

/// Puts `c` in the transmit FIFO at `base`, which has room.
///
/// # Safety
/// As for `tx_full`.
unsafe fn send(base: usize, c: u8) {
    // SAFETY: per the function's contract, at each kind's offset and width.
    unsafe {
        match kind() {
            UartKind::Pl011 => core::ptr::write_volatile((base + PL011_DR) as *mut u32, c as u32),
            UartKind::Cadence => core::ptr::write_volatile((base + CADENCE_FIFO) as *mut u32, c as u32),
            UartKind::Scif => {
                core::ptr::write_volatile((base + SCIF_SCFTDR) as *mut u8, c);
                let sr = core::ptr::read_volatile((base + SCIF_SCFSR) as *const u16);
                core::ptr::write_volatile((base + SCIF_SCFSR) as *mut u16, sr & !SCIF_SCFSR_TEND_TDFE);
            }
            UartKind::Omap => core::ptr::write_volatile((base + OMAP_THR) as *mut u32, c as u32),
        }
    }
}

/// Writes `c` if the transmit FIFO has room; false (nothing written) if not.
/// Before `init`, drops `c` and says it was written.
pub fn try_put(c: u8) -> bool {
    let base = BASE.load(Ordering::Acquire) as usize;
    if base == 0 {
        return true;
    }
    // SAFETY: as for `put`.
    unsafe {
        if tx_full(base) {
            return false;
        }
        send(base, c);
    }
    true
}

/// Writes `c`, waiting for room in the transmit FIFO (dropped before `init`).
pub fn put(c: u8) {
    let base = BASE.load(Ordering::Acquire) as usize;
    if base == 0 {
        return;
    }
    // SAFETY: `base` is the board's UART of this kind (from the boot bundle,
    // validated at build time and checked against the EL2 map at boot),
    // mapped as device memory.
    unsafe {
        while tx_full(base) {}
        send(base, c);
    }
}
