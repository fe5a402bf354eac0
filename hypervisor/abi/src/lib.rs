//! The wire ABI that every part of the SDK agrees on.
//!
//! This crate owns numbers and layouts only, never behaviour: SMCCC and PSCI
//! function IDs and return codes, Xen's hypercall numbers, the guest physical
//! memory layout a domain sees (the same one Xen's `arch-arm.h` gives, so
//! unmodified Linux kernels find their devices where they expect them), and
//! the Xen PV protocols. The hypervisor, the no_std frontends and the Linux
//! backends all depend on it, so a value is written down exactly once.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod guest_layout;
pub mod hypercall;
/// Xen PV I/O protocols: shared rings, xenstore wire format and device layouts.
pub mod io;
pub mod psci;
pub mod smccc;
