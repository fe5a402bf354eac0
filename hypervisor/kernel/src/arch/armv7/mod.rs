//! The Armv7-A arch layer: HYP mode with the virtualization extensions and
//! LPAE (TI J6's Cortex-A15s, QEMU's `virt` with `-cpu cortex-a15`).
//!
//! So far: entry (a zImage header, HYP checked, stack, bss), the HYP
//! exception vectors with traps decoded from HSR, system registers, and the
//! bring-up that finds the console in the device tree, checks the CPU and
//! the vectors, and stops. Next: the HYP MMU, an LPAE stage 2 (40-bit IPA),
//! the GICv2 and virtual timer, PSCI for guests, guest entry.

pub mod bringup;
pub mod entry;
pub mod sysreg;

pub use super::uart;
