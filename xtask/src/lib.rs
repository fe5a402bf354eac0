//! `cargo xtask`: the SDK's build front end. It provisions the cross
//! toolchain and QEMU, validates sample descriptions, builds the hypervisor,
//! guests and boot bundles, and boots them. The binary (`main.rs`) is the
//! command line; integration tests use this library directly.
#![forbid(unsafe_code)]

pub mod artifacts;
pub mod bench;
pub mod bench_boot;
pub mod camera_vm;
pub mod board_facts;
pub mod cockpit_sample;
pub mod debian;
pub mod flash;
pub mod fuzz;
pub mod image;
pub mod initramfs;
pub mod interop;
pub mod qemu;
pub mod toolchain;
pub mod x11;

/// The sample `cargo xtask run` boots when none is named.
pub const DEFAULT_SAMPLE: &str = "two-partitions";

/// The boards every QEMU test runs on: one per GIC version, the same
/// machine otherwise (a sample written for qemu-virt is built for each,
/// Linux guests and virt's devices included).
pub const GIC_MATRIX: [(&str, &str); 2] = [("gicv3", "qemu-virt"), ("gicv2", "qemu-virt-gicv2")];

/// A QEMU test run on each board of [`GIC_MATRIX`]: `fn name(board: &str)
/// { .. }` becomes the module `name` with one `#[ignore]`d test per GIC
/// version (`name::gicv3`, `name::gicv2`), so the matrix lives here and
/// nowhere else.
#[macro_export]
macro_rules! on_each_gic {
    ($(#[doc = $doc:expr])* fn $name:ident($board:ident: &str) $body:block) => {
        $(#[doc = $doc])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn run($board: &str) $body
            #[test]
            #[ignore = "boots QEMU: run with `cargo xtask test`"]
            fn gicv3() {
                run($crate::GIC_MATRIX[0].1)
            }
            #[test]
            #[ignore = "boots QEMU: run with `cargo xtask test`"]
            fn gicv2() {
                run($crate::GIC_MATRIX[1].1)
            }
        }
    };
}

/// Boards the Linux-guest tests run on: the GIC matrix, and qemu-virt-a15
/// with 32-bit Armv7-A guests (Debian's armhf kernels), which boots each
/// sample's and fixture's `-a15` twin (see [`for_board`]).
pub const LINUX_MATRIX: [(&str, &str); 3] = [GIC_MATRIX[0], GIC_MATRIX[1], ("a15", "qemu-virt-a15")];

/// The sample or fixture `sample` (a name under samples/, or a path to a
/// `system.toml`) as `board` boots it: on an Armv7-A board, its `-a15`
/// twin (the same domains with armhf kernels; arm64 kernels cannot run
/// there), otherwise itself.
pub fn for_board(sample: &str, board: &str) -> String {
    let arch = hv_config::load_board(&artifacts::root().join("bsp"), board).map(|b| b.arch).unwrap_or_default();
    if arch != "armv7a" {
        return sample.to_string();
    }
    match sample.strip_suffix("/system.toml") {
        Some(dir) => format!("{dir}-a15/system.toml"),
        None => format!("{sample}-a15"),
    }
}

/// As [`on_each_gic!`], on each board of [`LINUX_MATRIX`] (`name::gicv3`,
/// `name::gicv2`, `name::a15`): for tests of Linux domains, which run on
/// 32-bit boards too.
#[macro_export]
macro_rules! on_each_linux_board {
    ($(#[doc = $doc:expr])* fn $name:ident($board:ident: &str) $body:block) => {
        $(#[doc = $doc])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn run($board: &str) $body
            #[test]
            #[ignore = "boots QEMU: run with `cargo xtask test`"]
            fn gicv3() {
                run($crate::LINUX_MATRIX[0].1)
            }
            #[test]
            #[ignore = "boots QEMU: run with `cargo xtask test`"]
            fn gicv2() {
                run($crate::LINUX_MATRIX[1].1)
            }
            #[test]
            #[ignore = "boots QEMU: run with `cargo xtask test`"]
            fn a15() {
                run($crate::LINUX_MATRIX[2].1)
            }
        }
    };
}

/// Boards whose QEMU models run every test that needs no board-specific
/// device: the GIC matrix plus the ZCU102 (RAM at 0, a GIC-400 with
/// 64 KiB-aliased frames, a Cadence UART, the board's own device tree).
pub const BOARD_MATRIX: [(&str, &str); 3] = [GIC_MATRIX[0], GIC_MATRIX[1], ("zcu102", "zcu102")];

/// As [`on_each_gic!`], on each board of [`BOARD_MATRIX`] (`name::gicv3`,
/// `name::gicv2`, `name::zcu102`).
#[macro_export]
macro_rules! on_each_board {
    ($(#[doc = $doc:expr])* fn $name:ident($board:ident: &str) $body:block) => {
        $(#[doc = $doc])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn run($board: &str) $body
            #[test]
            #[ignore = "boots QEMU: run with `cargo xtask test`"]
            fn gicv3() {
                run($crate::BOARD_MATRIX[0].1)
            }
            #[test]
            #[ignore = "boots QEMU: run with `cargo xtask test`"]
            fn gicv2() {
                run($crate::BOARD_MATRIX[1].1)
            }
            #[test]
            #[ignore = "boots QEMU: run with `cargo xtask test`"]
            fn zcu102() {
                run($crate::BOARD_MATRIX[2].1)
            }
        }
    };
}
