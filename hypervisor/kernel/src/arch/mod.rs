//! Everything that touches the hardware. All of the hypervisor's `unsafe`
//! lives in this module: system registers, assembly, MMIO, physical memory.
//!
//! One directory per architecture behind the same module names, chosen by
//! the target: `aarch64` (EL2) and `armv7` (HYP mode, LPAE; 32-bit boards
//! such as TI's J6). What the glue above (`boot`, `domain`, `trap`,
//! `vcpu`, `rtds`, `xen`) uses from an arch, and where armv7 stands:
//!
//! | module | provides | armv7 |
//! |---|---|---|
//! | `entry` | vectors, the guest `Frame`, `enter`, per-CPU stacks | vectors, `HypFrame`, `enter_guest`, stacks |
//! | `sysreg` | `cpu_index`, `counter`, `counter_hz`, `wfi`, barriers | yes |
//! | `mmu` | the hypervisor's map on (`hyp_map` builds it) | yes |
//! | `gic` | shared: GICv2 on both, GICv3 on aarch64 | yes |
//! | `handoff` | the bundle from /chosen, the board brought up from it | device tree only (`bringup`) |
//! | `memory` | domain RAM, stage-2 table pools, loading blobs | probe only (`probe`) |
//! | `vcpu_regs` | entering a domain (VTTBR, HCR), syndromes, injected exceptions, TLB flushes | probe only |
//! | `context` | a vCPU's EL1/PL1 state, saved and restored | no |
//! | `psci` | the hypervisor's own CPUs (firmware PSCI) | `sysreg::psci_cpu_on` |
//! | `cache` | set/way emulation, cleaning what guests read | `mmu::clean_to_poc` |
//!
//! The glue reaches guest registers through `Frame`'s accessors (`reg`,
//! `set_result`, `smccc_args`, `xen_hypercall`: x16 on arm64, r12 on
//! arm32) and the counter through `sysreg::counter_hz`; it still names a
//! few aarch64 registers (ESR_EL2, ELR/SPSR in `Frame`), which become arch
//! accessors when armv7 runs domains. What is
//! the same on both is here: the console UARTs' MMIO, the GIC (GICv2 on
//! both, GICv3 on aarch64), and the hypervisor's own identity map (LPAE's
//! long descriptors are aarch64's).

// Armv7-A uses part of it so far.
#[cfg_attr(target_arch = "arm", allow(dead_code, unused_variables))]
pub mod gic;
#[cfg_attr(target_arch = "arm", allow(dead_code))]
pub mod hyp_map;
pub mod handoff;
pub mod memory;
pub mod uart;

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
pub use aarch64::*;

#[cfg(target_arch = "arm")]
mod armv7;
#[cfg(target_arch = "arm")]
pub use armv7::*;
