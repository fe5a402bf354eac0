//! Everything that touches the hardware. All of the hypervisor's `unsafe`
//! lives in this module: system registers, assembly, MMIO, physical memory.

pub mod cache;
pub mod context;
pub mod entry;
pub mod gic;
pub mod handoff;
pub mod memory;
pub mod mmu;
pub mod psci;
pub mod sysreg;
pub mod uart;
pub mod vcpu_regs;
