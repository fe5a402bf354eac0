//! Everything that touches the hardware. All of the hypervisor's `unsafe`
//! lives in this module: system registers, assembly, MMIO, physical memory.
//!
//! One directory per architecture behind the same module names (`entry`,
//! `sysreg`, `memory`, `gic`, ...), chosen by the target: `aarch64` (EL2)
//! and `armv7` (HYP mode, LPAE; 32-bit boards such as TI's J6). What is
//! the same on both is here: the console UARTs' MMIO, the GIC (GICv2 on
//! both, GICv3 on aarch64), and the hypervisor's own identity map (LPAE's
//! long descriptors are aarch64's).

// Armv7-A uses part of it so far.
#[cfg_attr(target_arch = "arm", allow(dead_code, unused_variables))]
pub mod gic;
#[cfg_attr(target_arch = "arm", allow(dead_code))]
pub mod hyp_map;
pub mod uart;

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
pub use aarch64::*;

#[cfg(target_arch = "arm")]
mod armv7;
#[cfg(target_arch = "arm")]
pub use armv7::*;
