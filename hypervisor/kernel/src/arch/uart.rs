//! The physical UART the hypervisor console writes to: a PL011 or a
//! Cadence UART, as the boot bundle says. Until `init` names it, output is
//! dropped: a guess could be RAM on another board (QEMU virt's PL011
//! address is DDR on a ZynqMP).

use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use hv_core::bundle::UartKind;

static BASE: AtomicU64 = AtomicU64::new(0);
static KIND: AtomicU8 = AtomicU8::new(UartKind::Pl011 as u8);

/// Where each kind keeps its data register and its "transmit FIFO full"
/// flag.
struct Regs {
    data: usize,
    status: usize,
    tx_full: u32,
}

const PL011: Regs = Regs { data: 0x00, status: 0x18, tx_full: 1 << 5 };
const CADENCE: Regs = Regs { data: 0x30, status: 0x2C, tx_full: 1 << 4 };
/// Cadence control register: transmitter and receiver enabled (the reset
/// value has them disabled; a boot loader that used the UART left them on).
const CADENCE_CR: usize = 0x00;
const CADENCE_CR_TX_RX_EN: u32 = (1 << 4) | (1 << 2);

fn regs() -> Regs {
    if KIND.load(Ordering::Relaxed) == UartKind::Cadence as u8 {
        CADENCE
    } else {
        PL011
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

/// Writes `c` if the transmit FIFO has room; false (nothing written) if not.
/// Before `init`, drops `c` and says it was written.
pub fn try_put(c: u8) -> bool {
    let base = BASE.load(Ordering::Acquire) as usize;
    if base == 0 {
        return true;
    }
    let r = regs();
    // SAFETY: as for `put`.
    unsafe {
        if core::ptr::read_volatile((base + r.status) as *const u32) & r.tx_full != 0 {
            return false;
        }
        core::ptr::write_volatile((base + r.data) as *mut u32, c as u32);
    }
    true
}

/// Writes `c`, waiting for room in the transmit FIFO (dropped before `init`).
pub fn put(c: u8) {
    let base = BASE.load(Ordering::Acquire) as usize;
    if base == 0 {
        return;
    }
    let r = regs();
    // SAFETY: `base` is the board's UART of this kind (from the boot bundle,
    // validated at build time and checked against the EL2 map at boot); it
    // is mapped as device memory, and these are 32-bit register accesses at
    // that kind's offsets.
    unsafe {
        while core::ptr::read_volatile((base + r.status) as *const u32) & r.tx_full != 0 {}
        core::ptr::write_volatile((base + r.data) as *mut u32, c as u32);
    }
}
