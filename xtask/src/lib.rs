//! `cargo xtask`: the SDK's build front end. It provisions the cross
//! toolchain and QEMU, validates sample descriptions, builds the hypervisor,
//! guests and boot bundles, and boots them. The binary (`main.rs`) is the
//! command line; integration tests use this library directly.
#![forbid(unsafe_code)]

pub mod artifacts;
pub mod bench;
pub mod bench_boot;
pub mod cockpit_sample;
pub mod debian;
pub mod fuzz;
pub mod initramfs;
pub mod interop;
pub mod qemu;
pub mod toolchain;

/// The sample `cargo xtask run` boots when none is named.
pub const DEFAULT_SAMPLE: &str = "two-partitions";
