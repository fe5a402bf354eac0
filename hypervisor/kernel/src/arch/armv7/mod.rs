//! The Armv7-A arch layer: HYP mode with the virtualization extensions and
//! LPAE (TI J6's Cortex-A15s, QEMU's `virt` with `-cpu cortex-a15`).
//!
//! So far: entry (a zImage header, HYP checked, stacks, bss), the HYP
//! exception vectors with traps decoded from HSR (by `hv-core`, as on
//! aarch64), system registers, the HYP MMU (the map aarch64 builds:
//! LPAE's descriptors are aarch64's), guest entry, and the bring-up: the
//! console from the device tree, the CPU's features, the MMU, the GICv2
//! (the driver aarch64 uses), the vectors' self-test, and a probe guest
//! behind `hv-core`'s stage 2 that takes its virtual timer's interrupt.
//! The secondary CPUs start through the firmware's PSCI (QEMU; the J6's
//! AuxCoreBoot registers are still to come). Next: PSCI for guests, and
//! the domains, traps, vGIC distributor and schedulers of the aarch64 glue.

pub mod bringup;
pub mod entry;
pub mod mmu;
pub mod probe;
pub mod sysreg;

pub use super::{gic, uart};
