//! `cargo xtask`: the SDK's build front end. It provisions the cross
//! toolchain and QEMU, validates sample descriptions, builds the hypervisor,
//! guests and boot bundles, and boots them. The binary (`main.rs`) is the
//! command line; integration tests use this library directly.
#![forbid(unsafe_code)]

pub mod apt;
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

/// The machinery of the `on_each_*!` macros: `fn name(board: &str) { .. }`
/// becomes the module `name` with one `#[ignore]`d test per `test => board`
/// pair, so each matrix lives in this file and nowhere else.
#[macro_export]
#[doc(hidden)]
macro_rules! __board_tests {
    ($(#[doc = $doc:expr])* fn $name:ident($board:ident: &str) $body:block; $($test:ident => $which:expr),+) => {
        $(#[doc = $doc])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn run($board: &str) $body
            $(
                #[test]
                #[ignore = "boots QEMU: run with `cargo xtask test`"]
                fn $test() {
                    run($which)
                }
            )+
        }
    };
}

/// A QEMU test run on each board of [`GIC_MATRIX`] (`name::gicv3`,
/// `name::gicv2`).
#[macro_export]
macro_rules! on_each_gic {
    ($($t:tt)*) => {
        $crate::__board_tests!($($t)*; gicv3 => $crate::GIC_MATRIX[0].1, gicv2 => $crate::GIC_MATRIX[1].1);
    };
}

/// The GIC matrix and qemu-virt-a15: the same QEMU machine with 32-bit
/// Armv7-A CPUs and guests (the test guests built for Armv7-A; Debian's
/// armhf kernels, in each Linux sample's and fixture's `-a15` twin: see
/// [`for_board`]).
pub const QEMU_MATRIX: [(&str, &str); 3] = [GIC_MATRIX[0], GIC_MATRIX[1], A15];

/// qemu-virt-a15, the TI J6's development board.
pub const A15: (&str, &str) = ("a15", "qemu-virt-a15");

/// The sample or fixture `sample` (a name under samples/, or a path to a
/// `system.toml`) as `board` boots it: on an Armv7-A board, its `-a15`
/// twin if it has one (Linux samples: arm64 kernels cannot run there),
/// otherwise itself.
pub fn for_board(sample: &str, board: &str) -> String {
    if board_arch(board) != "armv7a" {
        return sample.to_string();
    }
    let twin = match sample.strip_suffix("/system.toml") {
        Some(dir) => format!("{dir}-a15/system.toml"),
        None => format!("{sample}-a15"),
    };
    if artifacts::sample_path(&twin).is_file() {
        twin
    } else {
        sample.to_string()
    }
}

/// The `arch` of `board` under bsp/ ("aarch64" or "armv7a"; empty for no
/// such board).
pub fn board_arch(board: &str) -> String {
    hv_config::load_board(&artifacts::root().join("bsp"), board).map(|b| b.arch).unwrap_or_default()
}

/// As [`on_each_gic!`], on each board of [`QEMU_MATRIX`] (`name::gicv3`,
/// `name::gicv2`, `name::a15`).
#[macro_export]
macro_rules! on_each_qemu_board {
    ($($t:tt)*) => {
        $crate::__board_tests!(
            $($t)*;
            gicv3 => $crate::QEMU_MATRIX[0].1, gicv2 => $crate::QEMU_MATRIX[1].1, a15 => $crate::QEMU_MATRIX[2].1
        );
    };
}

/// Boards whose QEMU models run every test that needs no board-specific
/// device: the GIC matrix, the ZCU102 (RAM at 0, a GIC-400 with 64
/// KiB-aliased frames, a Cadence UART, the board's own device tree) and
/// qemu-virt-a15 (32-bit Armv7-A).
pub const BOARD_MATRIX: [(&str, &str); 4] = [GIC_MATRIX[0], GIC_MATRIX[1], ("zcu102", "zcu102"), A15];

/// As [`on_each_gic!`], on each board of [`BOARD_MATRIX`] (`name::gicv3`,
/// `name::gicv2`, `name::zcu102`, `name::a15`).
#[macro_export]
macro_rules! on_each_board {
    ($($t:tt)*) => {
        $crate::__board_tests!(
            $($t)*;
            gicv3 => $crate::BOARD_MATRIX[0].1, gicv2 => $crate::BOARD_MATRIX[1].1,
            zcu102 => $crate::BOARD_MATRIX[2].1, a15 => $crate::BOARD_MATRIX[3].1
        );
    };
}

/// As [`on_each_board!`], on its aarch64 boards only (`name::gicv3`,
/// `name::gicv2`, `name::zcu102`): for tests whose guests are built for
/// aarch64 alone.
#[macro_export]
macro_rules! on_each_aarch64_board {
    ($($t:tt)*) => {
        $crate::__board_tests!(
            $($t)*;
            gicv3 => $crate::BOARD_MATRIX[0].1, gicv2 => $crate::BOARD_MATRIX[1].1, zcu102 => $crate::BOARD_MATRIX[2].1
        );
    };
}
