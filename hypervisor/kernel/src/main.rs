//! The hypervisor image: a type-1 hypervisor for Arm (EL2) that boots static
//! partitions from a boot bundle and keeps them apart.
//!
//! This crate is the thin part that needs the hardware: boot, exception
//! entry, the physical GIC, stage-2 and EL1 registers (`arch/`), plus the
//! glue that turns traps into calls of `hv-core`, where the logic lives and
//! is tested on the host. It allocates nothing after boot.
//!
//! aarch64 runs everything. The Armv7-A (HYP mode) port is under way: its
//! image boots in HYP, brings up the console from the device tree, checks
//! the CPU and its exception vectors, and stops there (`arch/armv7`); the
//! glue below (domains, traps, schedulers, Xen's ABI) is aarch64-only
//! until its arch layer grows stage 2, the vGIC and guest entry.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("hv-kernel runs on bare-metal Arm; build it with `cargo xtask build`.");
}

#[cfg(target_os = "none")]
mod arch;
#[cfg(target_os = "none")]
// Domains' lines come with the aarch64 glue.
#[cfg_attr(target_arch = "arm", allow(dead_code, unused_macros, unused_imports))]
mod console;
#[cfg(all(target_os = "none", target_arch = "aarch64"))]
mod boot;
#[cfg(all(target_os = "none", target_arch = "aarch64"))]
mod domain;
#[cfg(all(target_os = "none", target_arch = "aarch64"))]
mod rtds;
#[cfg(all(target_os = "none", target_arch = "aarch64"))]
mod scrub;
#[cfg(all(target_os = "none", target_arch = "aarch64"))]
mod store;
#[cfg(all(target_os = "none", target_arch = "aarch64"))]
mod trap;
#[cfg(all(target_os = "none", target_arch = "aarch64"))]
mod vcpu;
#[cfg(all(target_os = "none", target_arch = "aarch64"))]
mod xen;

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    console::emergency_line(format_args!("hypervisor panic on pCPU {}: {}", arch::sysreg::cpu_index(), info));
    loop {
        arch::sysreg::wfi();
    }
}
