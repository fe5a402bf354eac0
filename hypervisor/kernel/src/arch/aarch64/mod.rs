//! The aarch64 (EL2) arch layer.

pub mod cache;
pub mod context;
pub mod entry;
pub mod mmu;
pub mod platform;
pub mod psci;
pub mod sysreg;
pub mod vcpu_regs;

pub use super::{gic, memory};
