//! The command line rejects a bad description at build time, before any
//! compiler or QEMU runs, naming file, line and field.

use std::process::Command;

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}/system.toml", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn overcommitted_sample_is_rejected_with_file_line_and_field() {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["build", "--sample", &fixture("overcommit")])
        .output()
        .unwrap();
    assert!(!out.status.success(), "an over-committed sample must not build");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("overcommit/system.toml:13: domain \"b\".pcpus: pCPU 1 is already used"),
        "unexpected error text:\n{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn unknown_profile_is_rejected() {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["build", "--profile", "credit2-native"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("credit2-native"), "{err}");
    assert!(err.contains("null-native"), "the error should list the board's profiles:\n{err}");
}
