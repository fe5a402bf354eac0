//! A minimal runtime for the hypervisor's test guests: EL1 entry and
//! vectors, console output on the domain's virtual PL011, the GICv3 and
//! virtual-timer set-up a guest needs, and SMCCC calls.
//!
//! A guest binary defines `guest_main`, `on_irq` and `on_sync`; everything
//! here talks to the virtual hardware exactly as an OS would, so the guests
//! test the hypervisor's emulation, not a shortcut around it.
#![cfg_attr(target_os = "none", no_std)]

#[cfg(target_os = "none")]
pub mod rt;

#[cfg(target_os = "none")]
pub use rt::*;
