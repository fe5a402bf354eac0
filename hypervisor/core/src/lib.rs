//! The hypervisor's logic, kept free of hardware access so it builds and is
//! tested on the host.
//!
//! The arch layer (`hypervisor/kernel`) owns registers, assembly and MMIO; it
//! feeds this crate decoded facts (a trap syndrome, a register value, a guest
//! write) and applies the decisions it returns. Nothing here allocates: tables
//! and queues have fixed capacity and every guest-controlled input is checked.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod a32_exception;
pub mod bundle;
pub mod console_queue;
pub mod crossbar;
pub mod dra7;
pub mod el2_map;
pub mod esr;
pub mod evtchn;
pub mod grant;
pub mod lifecycle;
pub mod log_budget;
pub mod psci;
pub mod rtds;
pub mod sched;
pub mod setway;
pub mod stage1;
pub mod stage2;
pub mod vgic;
pub mod vuart;
pub mod watchdog;
pub mod xen;
pub mod xenstore;
