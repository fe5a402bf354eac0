//! `hv-config` owns the build-time side of a system description: it reads a
//! sample's `system.toml` and the `board.toml` of the board it names, checks
//! every rule the hypervisor relies on (CPU pinning, memory layout, devices,
//! images, lifecycle actions), places domain memory that has no fixed base,
//! and encodes the result into the boot bundle (`hv_core::bundle`).
//!
//! Nothing here runs on the target: `xtask` calls [`load_sample`] and
//! [`encode_bundle`] on the host, so every mistake in a description is
//! reported at build time as a [`ConfigError`] that names the file, the line
//! and the field, e.g.
//!
//! ```text
//! samples/two-partitions/system.toml:22: domain "crasher".pcpus: pCPU 1 is already used by vCPU 0 of domain "heartbeat"; ...
//! ```
//!
//! Modules: [`size`] parses sizes such as `"16M"`; `board` and `sample`
//! read the two files; `validate` checks domains; `placement` gives memory
//! to domains without `memory_base`; `bundle` encodes; `locate` turns a TOML
//! parser error's byte offset into a field path.
#![forbid(unsafe_code)]

mod board;
pub mod boot;
mod bundle;
mod cpupool;
pub mod devices;
mod error;
pub mod guest_dt;
mod linux;
mod locate;
mod placement;
mod sample;
pub mod size;
pub mod xenstore_seed;
mod validate;

pub use board::{load_board, Board, CounterSetup, DtSource, Gic, Profile, QemuConfig, Region, Reserved, SecondaryBoot, MPIDR_AFF_MASK};
pub use bundle::{crossbar_writes, encode_bundle};
pub use error::ConfigError;
pub use hv_core::bundle::{Action, Scheduler, Vwfi};
pub use bundle::DomainBlobs;
pub use cpupool::{Cpupool, PoolScheduler};
pub use sample::{load_sample, parse_sample, valid_domain_name, Domain, ImageRef, Kind, LoadOptions, PassthroughDev, Sample, XenLimits};

/// Domain memory is mapped with 2 MiB blocks: sizes and bases align to this.
pub const MEMORY_ALIGN: u64 = 2 << 20;
/// The hypervisor is linked and loaded at RAM base + this on aarch64 (an
/// arm64 Image's text offset with the "anywhere in RAM, 2 MiB aligned"
/// flag); see [`hv_image_offset`].
pub const HV_IMAGE_OFFSET: u64 = 2 << 20;
/// Where an Armv7-A hypervisor goes: where QEMU and U-Boot's `bootz` put a
/// zImage, RAM base + 64 KiB.
pub const HV_IMAGE_OFFSET_A32: u64 = 64 << 10;

/// The hypervisor's offset from the RAM base on a board of `arch`.
pub fn hv_image_offset(arch: &str) -> u64 {
    if arch == "armv7a" {
        HV_IMAGE_OFFSET_A32
    } else {
        HV_IMAGE_OFFSET
    }
}
/// What the hypervisor's image, data and stacks may take from there: it
/// must all stay out of firmware's reserved memory.
pub const HV_IMAGE_MAX: u64 = 8 << 20;
/// Images are loaded at a 4 KiB-aligned offset into domain memory.
pub const LOAD_ALIGN: u64 = 4 << 10;
/// Devices a domain may list in `devices`.
pub const KNOWN_DEVICES: &[&str] = &["vpl011"];
