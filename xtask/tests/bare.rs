//! The PV frontends are for the hypervisor's bare-metal Rust guests: they
//! must build for aarch64 without std. Run through `cargo xtask test`
//! (it provisions the cross toolchain).

use std::process::Command;
use xtask::{artifacts, toolchain};

#[test]
#[ignore = "needs the bare-metal aarch64 toolchain: run with `cargo xtask test`"]
fn pv_frontends_build_for_bare_metal_aarch64() {
    let cc = toolchain::cross_cargo().unwrap();
    let mut cmd = Command::new(&cc.cargo);
    cmd.current_dir(artifacts::root())
        .args(["build", "--quiet", "-p", "vsnd-front", "-p", "vdispl-front", "-p", "vkbd-front"])
        .args(["--target", toolchain::TARGET])
        .env("RUSTC", &cc.rustc)
        .env("CARGO_TARGET_DIR", artifacts::root().join("target/bare-frontends"))
        .env_remove("RUSTFLAGS");
    if cc.build_std {
        cmd.arg("-Zbuild-std=core,alloc").env("RUSTC_BOOTSTRAP", "1");
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "frontends do not build for {}:\n{}", toolchain::TARGET, String::from_utf8_lossy(&out.stderr));
}
