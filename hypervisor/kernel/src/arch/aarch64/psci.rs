//! Calls to the platform firmware's PSCI (SMC conduit).

use xen_abi::psci;

/// aarch64 boards boot through TF-A (or QEMU's built-in PSCI): there is
/// always a PSCI firmware.
pub fn set_firmware_present(_present: bool) {}

fn smc(func: u32, a1: u64, a2: u64, a3: u64) -> i64 {
    let ret: i64;
    // SAFETY: an SMC to the firmware's PSCI implementation; it follows the
    // SMC calling convention, clobbering only x0-x3 as declared.
    unsafe {
        core::arch::asm!("smc #0",
            inout("x0") func as u64 => ret,
            inout("x1") a1 => _, inout("x2") a2 => _, inout("x3") a3 => _,
            options(nostack));
    }
    ret
}

/// Starts physical CPU `mpidr` at `entry` with `ctx` in x0.
///
/// # Safety
/// `entry` must be code that runs correctly at EL2 with the MMU off and
/// `ctx` in x0.
unsafe fn cpu_on(mpidr: u64, entry: u64, ctx: u64) -> i64 {
    smc(psci::CPU_ON_64, mpidr, entry, ctx)
}

pub fn system_off() -> ! {
    smc(psci::SYSTEM_OFF, 0, 0, 0);
    loop {
        super::sysreg::wfi();
    }
}

pub fn system_reset() -> ! {
    smc(psci::SYSTEM_RESET, 0, 0, 0);
    loop {
        super::sysreg::wfi();
    }
}

/// Starts pCPU `cpu` (affinity `mpidr`) at the image's secondary entry.
pub fn start_cpu(mpidr: u64, cpu: usize) -> i64 {
    extern "C" {
        static secondary_entry: u8;
    }
    // A code label: only its address is taken.
    let entry = core::ptr::addr_of!(secondary_entry) as u64;
    // SAFETY: `secondary_entry` sets up the stack for the index in x0
    // (`cpu`, bounded by `entry::MAX_CPUS` there) and calls `secondary_main`.
    unsafe { cpu_on(mpidr, entry, cpu as u64) }
}
