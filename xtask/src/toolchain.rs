//! Finding (and on Debian, installing) what a build needs: a Rust compiler
//! with a bare-metal aarch64 target, and QEMU.
//!
//! A rustup toolchain with `aarch64-unknown-none-softfloat` installed is used
//! as is. Otherwise Debian's `rustc-web` builds the target's core library
//! from `rust-web-src` (`-Zbuild-std`), linking with `rust-lld`.

use std::path::Path;
use std::process::Command;

pub const TARGET: &str = "aarch64-unknown-none-softfloat";
/// The 32-bit boards' hypervisor target (soft float: the hypervisor never
/// touches the FP registers, which are the guests').
pub const TARGET_A32: &str = "armv7a-none-eabi";

/// How to invoke cargo for bare-metal crates.
#[derive(Clone, Debug)]
pub struct CrossCargo {
    pub cargo: String,
    pub rustc: String,
    /// Needs `-Zbuild-std` (no prebuilt core for the target).
    pub build_std: bool,
}

const DEBIAN_RUST: &[&str] = &["rustc-web", "cargo-web", "rust-web-src", "rust-web-llvm", "lld-22"];

fn rustup_has_target(target: &str) -> bool {
    let Ok(out) = Command::new("rustc").args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Path::new(&sysroot)
        .join("lib/rustlib")
        .join(target)
        .join("lib")
        .is_dir()
}

fn debian_rust_ready() -> bool {
    Path::new("/usr/bin/rustc").exists()
        && Path::new("/usr/bin/cargo").exists()
        && Path::new("/usr/lib/rustlib/src/rust/library/core").is_dir()
        && Path::new("/usr/bin/rust-lld").exists()
        && Command::new("/usr/bin/rust-lld").arg("-flavor").arg("gnu").arg("--version").output().is_ok_and(|o| o.status.success())
}

pub fn cross_cargo() -> Result<CrossCargo, String> {
    cross_cargo_for(TARGET)
}

/// How to build for the bare-metal `target`.
pub fn cross_cargo_for(target: &str) -> Result<CrossCargo, String> {
    if rustup_has_target(target) {
        return Ok(CrossCargo {
            cargo: "cargo".into(),
            rustc: "rustc".into(),
            build_std: false,
        });
    }
    if !debian_rust_ready() {
        ensure_debian_packages(
            DEBIAN_RUST,
            &format!("a Rust compiler for bare-metal {target} (rustup has no such target here)"),
        )?;
    }
    if !debian_rust_ready() {
        return Err("Debian's rustc-web toolchain is still incomplete after installing it".into());
    }
    Ok(CrossCargo { cargo: "/usr/bin/cargo".into(), rustc: "/usr/bin/rustc".into(), build_std: true })
}

pub fn qemu() -> Result<String, String> {
    let bin = "qemu-system-aarch64";
    if which(bin) {
        return Ok(bin.into());
    }
    ensure_debian_packages(&["qemu-system-arm"], "QEMU for Arm")?;
    if which(bin) {
        Ok(bin.into())
    } else {
        Err(format!("{bin} not found after installing qemu-system-arm"))
    }
}

pub fn which(bin: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {bin}")).output().is_ok_and(|o| o.status.success())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Installs Debian packages when we are root on a Debian/Ubuntu machine;
/// otherwise an error naming them.
pub fn ensure_debian_packages(pkgs: &[&str], why: &str) -> Result<(), String> {
    let missing: Vec<&str> = pkgs
        .iter()
        .copied()
        .filter(|p| !Command::new("dpkg-query").args(["-W", "-f=${Status}", p]).output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed")))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    if !which("apt-get") || !is_root() {
        return Err(format!("{why} is missing: install the Debian packages `{list}` (apt-get install {list})"));
    }
    eprintln!("xtask: installing {list} ({why})");
    crate::apt::update();
    crate::apt::install(&missing)
}

/// Installs (or names) the Debian packages listed in `list`, one a line,
/// `#` comments allowed: the same list CI installs from.
pub fn ensure_listed_packages(list: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(list).map_err(|e| format!("{}: {e}", list.display()))?;
    let pkgs: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    if !which("dpkg-query") {
        eprintln!("xtask: not a Debian system; make sure these are installed: {}", pkgs.join(" "));
        return Ok(());
    }
    ensure_debian_packages(&pkgs, "packages the tests need")
}
