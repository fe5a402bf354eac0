//! Interop test bed (issues 5 and 11): unmodified Linux frontends in a
//! domU on upstream Xen 4.17 (Debian's arm64 packages) drive our PV
//! backends in dom0, under QEMU; and the same kernel and checks on our
//! hypervisor, with pv-backendd in a driver domain and the devices from the
//! system description (samples/interop/ours). One boot of Xen runs every check: keys, pointer and
//! multi-touch through xen-kbdfront, a pattern through xen-fbfront, a tone
//! through snd-xen-front, vdispl as far as Debian's kernel goes, and a
//! restart of pv-backendd under the running domU. `cargo xtask interop`
//! runs the same thing from the command line (`--bench` adds figures).

#[test]
#[ignore = "boots Xen under QEMU: run with cargo xtask test"]
fn stock_linux_frontends_drive_our_backends_on_xen_4_17() {
    check(xtask::interop::Args::default());
}

#[test]
#[ignore = "boots our hypervisor under QEMU: run with cargo xtask test"]
fn stock_linux_frontends_drive_our_backends_on_our_hypervisor() {
    check(xtask::interop::Args { hypervisor: "ours".into(), ..Default::default() });
}

/// One interop run: every check passes, and every device was exercised.
fn check(args: xtask::interop::Args) {
    let report = xtask::interop::run(&args).unwrap_or_else(|e| panic!("interop run on {}: {e}", args.hypervisor));
    report.print();
    let failed: Vec<String> = report.failed().iter().map(|c| format!("{}: {}", c.name, c.detail)).collect();
    assert!(
        failed.is_empty(),
        "{} interop check(s) failed:\n{}\nconsole transcript: {}",
        failed.len(),
        failed.join("\n"),
        report.transcript_path.display()
    );
    // Every device the issue names was exercised.
    for name in ["vkbd: keys", "vkbd: pointer", "vkbd: multi-touch", "vfb:", "vsnd:", "vdispl:", "restart: vsnd"] {
        assert!(report.checks.iter().any(|c| c.name.starts_with(name)), "no check named {name}");
    }
}
