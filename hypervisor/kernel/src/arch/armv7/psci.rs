//! Calls to the platform firmware's PSCI (SMC32 conduit), where the board
//! has one: QEMU's virt does; the J6 does not (its secondary CPU starts
//! through the AuxCoreBoot registers, `platform`, and power-off is a halt).

use core::sync::atomic::{AtomicBool, Ordering};
use xen_abi::psci;

static PRESENT: AtomicBool = AtomicBool::new(false);

/// Whether the device tree names a PSCI firmware (set once at boot).
pub fn set_firmware_present(present: bool) {
    PRESENT.store(present, Ordering::Relaxed);
}

fn smc(func: u32, a1: u32, a2: u32, a3: u32) -> i32 {
    let mut r0 = func;
    // SAFETY: an SMC to the firmware's PSCI implementation (only when the
    // device tree names one); the SMC calling convention lets it change
    // r0-r3, as declared, and it touches none of our memory.
    unsafe {
        core::arch::asm!(
            ".arch_extension sec",
            "smc #0",
            inout("r0") r0,
            inout("r1") a1 => _,
            inout("r2") a2 => _,
            inout("r3") a3 => _,
            options(nostack)
        )
    };
    r0 as i32
}

/// Starts pCPU `cpu` (affinity `mpidr`) at the image's secondary entry in
/// HYP mode, with its index in r0. PSCI's answer.
pub fn start_cpu(mpidr: u64, cpu: usize) -> i64 {
    if cpu >= super::entry::MAX_CPUS || cpu == 0 {
        return psci::INVALID_PARAMETERS;
    }
    if !PRESENT.load(Ordering::Relaxed) {
        // No PSCI: the board's own way, if it has one (the J6's ROM).
        return super::platform::start_cpu(cpu).unwrap_or(psci::NOT_SUPPORTED);
    }
    let entry = super::entry::secondary_entry() as u32;
    // The secondary entry takes a stack by this index, checked above.
    smc(psci::CPU_ON_32, mpidr as u32, entry, cpu as u32) as i64
}

pub fn system_off() -> ! {
    if PRESENT.load(Ordering::Relaxed) {
        smc(psci::SYSTEM_OFF, 0, 0, 0);
    }
    halt()
}

pub fn system_reset() -> ! {
    if PRESENT.load(Ordering::Relaxed) {
        smc(psci::SYSTEM_RESET, 0, 0, 0);
    }
    halt()
}

fn halt() -> ! {
    loop {
        super::sysreg::wfi();
    }
}
