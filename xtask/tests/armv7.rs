//! The Armv7-A (HYP) port on QEMU's `virt` with Cortex-A15s (bsp/qemu-virt-a15,
//! the TI J6's stand-in), as far as it goes: the image boots in HYP mode,
//! finds its console and the machine in the device tree, sees the
//! virtualization extensions and LPAE, takes an HVC through its own
//! vector table (HSR decoded), and runs its probe guest: a 32-bit guest in
//! SVC mode behind the stage 2 `hv-core` builds, writing to the emulated
//! PL011, kept out of what is not its RAM, and taking its virtual timer's
//! interrupt from the GICv2's virtual CPU interface. Then it stops. Run
//! through `cargo xtask test`.

use std::time::Duration;
use xtask::artifacts::{build_hypervisor_a32, root};
use xtask::qemu::QemuCommand;

#[test]
#[ignore = "cross-builds for armv7a and boots QEMU: run with `cargo xtask test`"]
fn the_armv7_image_boots_in_hyp_and_runs_a_guest_behind_stage_2() {
    let board = hv_config::load_board(&root().join("bsp"), "qemu-virt-a15")
        .unwrap_or_else(|e| panic!("{e}"));
    let bin =
        build_hypervisor_a32(&board).unwrap_or_else(|e| panic!("build the armv7a image: {e}"));
    let mut con = QemuCommand::for_a32_image(&board, &bin).unwrap().spawn().unwrap();
    let done = con.wait_for(Duration::from_secs(60), |l| {
        l.contains("armv7a: bring-up done")
            || l.contains("hypervisor fault")
            || l.contains("stopping")
    });
    let t = con.transcript();
    con.kill();
    assert!(
        done.is_some_and(|l| l.contains("bring-up done")),
        "the armv7a image did not finish its bring-up:\n{t}"
    );
    for line in [
        "hypervisor (armv7a) on linux,dummy-virt: HYP mode",
        "virtualization extensions yes, LPAE yes",
        "HYP MMU on: the low 4 GiB one to one, RAM 0x40000000..0xc0000000 cached",
        "GICv2 up: 4 list registers",
        // The second Cortex-A15, started through PSCI, in HYP with the map on.
        "pCPU 1 up: HYP mode, MPIDR 0x1, HYP MMU on",
        "device tree: 2 CPUs, RAM 0x40000000+0x80000000, GICv2 distributor at 0x8000000",
        "HYP vectors: an HVC from HYP came back through the vector table with its immediate read from HSR",
        // The probe guest's line, through the emulated UART.
        "[probe] hello from a 32-bit guest in SVC mode, behind stage 2",
        // Outside its RAM, stage 2 stopped it; inside, it sees its own
        // memory, not the host's at the same address.
        "probe: stage 2 kept it out of IPA 0x50000000",
        "probe: done: its RAM read back 0x12345678; IPA 0x40010024 held 0x0; IPA 0x50000000 gave 0xdeadbeef",
        // PSCI for guests comes from the hypervisor (the J6 has no firmware's).
        "probe: PSCI_VERSION (HVC from the guest) answered by the hypervisor: 1.1",
        // Its virtual timer fired; HYP forwarded it through a list register.
        "probe: its virtual timer interrupt came through its GIC CPU interface as INTID 27",
    ] {
        assert!(t.contains(line), "missing {line:?}:\n{t}");
    }
    assert!(!t.contains("hypervisor fault"), "{t}");
}
