//! The Armv7-A arch layer: HYP mode with the virtualization extensions and
//! LPAE (TI J6's Cortex-A15s, QEMU's `virt` with `-cpu cortex-a15`).
//!
//! The same modules as aarch64's, behind the same interface (see
//! `arch/mod.rs`): entry and the HYP vectors (a zImage header, traps
//! decoded from HSR by `hv-core`), CP15 registers, the HYP MMU (LPAE's
//! descriptors are aarch64's, so `hyp_map` builds it), a vCPU's PL1 state
//! and its banked registers, context switching for RTDS, cache
//! maintenance, PSCI where the firmware has it, and a board's own
//! bring-up (`platform`: TI DRA7's counter and secondary CPU start).

pub mod banked;
pub mod cache;
pub mod context;
pub mod entry;
pub mod mmu;
pub mod platform;
pub mod psci;
pub mod sysreg;
pub mod vcpu_regs;

pub use super::{gic, memory};
