//! The compositor's NEON kernels (what the boards run) give the scalar
//! reference's pixels: `cockpit-kernels`' tests, cross-built for aarch64
//! Linux and run under QEMU user mode. Run through `cargo xtask test`.

use std::process::Command;

#[test]
#[ignore = "cross-builds for aarch64 and runs qemu-aarch64: run with `cargo xtask test`"]
fn the_neon_kernels_match_the_scalar_reference_under_qemu_user() {
    let programs = xtask::interop::cross::build_tests("cockpit-kernels", &[])
        .unwrap_or_else(|e| panic!("{e}"));
    let mut ran = String::new();
    for p in &programs {
        let out = Command::new("qemu-aarch64").arg(p).output().expect("running qemu-aarch64");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{} failed under qemu-aarch64:\n{text}", p.display());
        ran.push_str(&text);
    }
    // The property tests ran, and on NEON (the test asserts it is the best set there).
    for test in ["over_matches", "bilinear_matches", "copy_opaque_matches", "gather_matches", "turn_matches", "bilinear_v_matches_on_any_valid_rows", "the_best_set_is_the_last_available"] {
        assert!(ran.contains(&format!("test {test} ... ok")), "{test} did not pass under qemu-aarch64:\n{ran}");
    }
}
