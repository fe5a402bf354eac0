//! Cross-building our programs for the guests' userspace
//! (`aarch64-unknown-linux-gnu`) with Debian's `rustc-web`, its arm64
//! standard library (`libstd-rust-web-dev:arm64`), the arm64 ALSA library
//! for alsa-sys (`libasound2-dev:arm64`) and `gcc-aarch64-linux-gnu` as the
//! linker. Dynamically linked (Debian ships no static libasound); the
//! images carry the arm64 libraries they load.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::artifacts::root;
use crate::{debian, toolchain};

pub const TARGET: &str = "aarch64-unknown-linux-gnu";

pub struct Binaries {
    pub backendd: PathBuf,
    pub probe: PathBuf,
}

/// What the cross build needs. The arm64 ones are installed here, after
/// `debian` has enabled the architecture, not from `.ci/apt-packages`
/// (apt cannot name `:arm64` packages before that).
const PACKAGES: &[&str] = &[
    "rustc-web",
    "cargo-web",
    "gcc-aarch64-linux-gnu",
    "pkg-config",
    "libstd-rust-web-dev:arm64",
    "libasound2-dev:arm64",
];

fn target_dir() -> PathBuf {
    root().join("target/interop-aarch64")
}

fn cargo_build(manifest: &Path, package: Option<&str>, features: &[&str]) -> Result<(), String> {
    let mut cmd = Command::new("/usr/bin/cargo");
    cmd.args(["build", "--release", "--locked", "-j1", "--target", TARGET]);
    cmd.arg("--manifest-path").arg(manifest);
    if let Some(p) = package {
        cmd.args(["-p", p]);
    }
    cmd.args(features);
    cmd.arg("--target-dir").arg(target_dir());
    cmd.env("RUSTC", "/usr/bin/rustc")
        .env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER", "aarch64-linux-gnu-gcc")
        .env("PKG_CONFIG_ALLOW_CROSS", "1")
        .env("PKG_CONFIG_LIBDIR", "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTC_WRAPPER");
    let st = cmd.status().map_err(|e| format!("running /usr/bin/cargo: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("cross-building {} for {TARGET} failed", package.unwrap_or(&manifest.display().to_string())))
    }
}

fn prepare() -> Result<PathBuf, String> {
    // Any arm64 fetch enables the architecture in dpkg first.
    debian::unpacked("libc6")?;
    toolchain::ensure_debian_packages(PACKAGES, "cross-building the backends for arm64 Linux")?;
    Ok(target_dir().join(TARGET).join("release"))
}

/// pv-backendd (from the workspace) and the probe (its own workspace).
pub fn build() -> Result<Binaries, String> {
    let out = prepare()?;
    cargo_build(&root().join("Cargo.toml"), Some("pv-backendd"), &[])?;
    cargo_build(&root().join("samples/interop/probe/Cargo.toml"), None, &[])?;
    Ok(Binaries { backendd: out.join("pv-backendd"), probe: out.join("interop-probe") })
}

/// What the cockpit sample's domains run.
pub struct CockpitBinaries {
    pub backendd: PathBuf,
    /// The compositor, KMS output only (no X11 window).
    pub cockpit: PathBuf,
    pub hmi: PathBuf,
}

/// pv-backendd, the compositor and the IVI's HMI.
pub fn build_cockpit() -> Result<CockpitBinaries, String> {
    let out = prepare()?;
    cargo_build(&root().join("Cargo.toml"), Some("pv-backendd"), &[])?;
    cargo_build(&root().join("Cargo.toml"), Some("cockpit"), &["--no-default-features", "--features", "kms"])?;
    cargo_build(&root().join("samples/cockpit/hmi/Cargo.toml"), None, &[])?;
    Ok(CockpitBinaries { backendd: out.join("pv-backendd"), cockpit: out.join("cockpit"), hmi: out.join("cockpit-hmi") })
}

/// A workspace package's test programs for aarch64 Linux, statically linked:
/// QEMU 7.2's user mode (`qemu-aarch64`) runs static programs on the host,
/// where dynamically linked test programs hung in glibc's mutex code.
pub fn build_tests(package: &str, features: &[&str]) -> Result<Vec<PathBuf>, String> {
    prepare()?;
    toolchain::ensure_debian_packages(&["qemu-user", "libc6-dev-arm64-cross"], "running aarch64 tests in QEMU user mode")?;
    let out = Command::new("/usr/bin/cargo")
        .args([
            "test",
            "--no-run",
            "--release",
            "--locked",
            "-j1",
            "--message-format=json",
            "--target",
            TARGET,
            "-p",
            package,
        ])
        .args(features.iter().flat_map(|f| ["--features", f]))
        .arg("--manifest-path")
        .arg(root().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(root().join("target/tests-aarch64"))
        .env("RUSTC", "/usr/bin/rustc")
        .env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER", "aarch64-linux-gnu-gcc")
        .env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS", "-C target-feature=+crt-static")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTC_WRAPPER")
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("running /usr/bin/cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!("cross-building {package}'s tests for {TARGET} failed"));
    }
    // One JSON message per line; test artifacts name their "executable".
    let programs: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("\"reason\":\"compiler-artifact\"") && l.contains("\"test\":true"))
        .filter_map(|l| l.split("\"executable\":\"").nth(1)?.split('"').next().map(PathBuf::from))
        .collect();
    if programs.is_empty() {
        return Err(format!("cargo built no test programs for {package}"));
    }
    Ok(programs)
}
