//! The hypervisor image: a type-1 hypervisor for Arm (EL2) that boots static
//! partitions from a boot bundle and keeps them apart.
//!
//! This crate is the thin part that needs the hardware: boot, exception
//! entry, the physical GIC, stage-2 and EL1 registers (`arch/`), plus the
//! glue that turns traps into calls of `hv-core`, where the logic lives and
//! is tested on the host. It allocates nothing after boot.
//!
//! Two arch layers behind one interface: aarch64 (EL2) and Armv7-A (HYP
//! mode with LPAE); the glue above them (domains, traps, schedulers, Xen's
//! ABI) is the same for both.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("hv-kernel runs on bare-metal Arm; build it with `cargo xtask build`.");
}

#[cfg(target_os = "none")]
mod arch;
#[cfg(target_os = "none")]
mod console;
#[cfg(target_os = "none")]
mod boot;
#[cfg(target_os = "none")]
mod domain;
#[cfg(target_os = "none")]
mod rtds;
#[cfg(target_os = "none")]
mod scrub;
#[cfg(target_os = "none")]
mod store;
#[cfg(target_os = "none")]
mod trap;
#[cfg(target_os = "none")]
mod vcpu;
#[cfg(target_os = "none")]
mod xen;

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    console::emergency_line(format_args!("hypervisor panic on pCPU {}: {}", arch::sysreg::cpu_index(), info));
    loop {
        arch::sysreg::wfi();
    }
}
