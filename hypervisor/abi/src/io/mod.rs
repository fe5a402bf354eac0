//! Xen PV I/O protocols, byte for byte.
//!
//! These are the layouts of Xen's `public/io/*.h` headers, restated as Rust
//! types with explicit little-endian encoders and validating decoders, so a
//! no_std frontend, the hypervisor and a Linux backend agree on every byte
//! without sharing C headers or `unsafe` casts. Decoders return errors for
//! any input they cannot accept and never panic.
//!
//! Reserved fields are written as zero and ignored when read: the headers
//! require senders to zero them, and ignoring them lets a newer peer extend
//! a packet without breaking us.

pub mod console;
pub mod displif;
pub mod evtpage;
pub mod fbif;
pub mod kbdif;
pub mod pgdir;
pub mod ring;
pub mod sndif;
pub mod wire;
pub mod xenbus;
pub mod xs_wire;

#[cfg(test)]
mod fuzz_tests;

pub use wire::{WireError, XEN_PAGE_SIZE};
