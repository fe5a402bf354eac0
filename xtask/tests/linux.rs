//! Unmodified Debian kernels as guests (issue: Linux side by side): arm64
//! on the GIC matrix, armhf (32-bit Armv7-A) on qemu-virt-a15.
//! Run through `cargo xtask test`, which provisions QEMU; the kernel and
//! busybox come from Debian's archive on first use.

use std::time::Duration;
use xtask::{artifacts, on_each_board, on_each_qemu_board, qemu::Console};

/// Linux boots in a few seconds under TCG; restarts re-zero 256 MiB.
const LINUX: Duration = Duration::from_secs(240);

/// Boots `sample` (its `-a15` twin on a 32-bit board: `xtask::for_board`).
fn boot(board: &str, sample: &str) -> Console {
    let sample = &xtask::for_board(sample, board);
    let built = artifacts::build(sample, Some(board), None).unwrap_or_else(|e| panic!("build {sample}: {e}"));
    Console::start_built(&built).unwrap()
}

/// The cluster's beats, in console order. A beat may share its line with
/// the cluster kernel's own console output (printk does not wait for a
/// userspace line to end), so it is found anywhere in a cluster line.
fn cluster_beats(log: &[String]) -> Vec<(usize, u64)> {
    log.iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let rest = l.strip_prefix("[cluster] ")?;
            let n = &rest[rest.find("cluster beat ")? + "cluster beat ".len()..];
            let digits = &n[..n.find(|c: char| !c.is_ascii_digit()).unwrap_or(n.len())];
            Some((i, digits.parse().ok()?))
        })
        .collect()
}

fn assert_consecutive(log: &[String], t: &str) {
    let b = cluster_beats(log);
    assert!(!b.is_empty(), "no cluster heartbeat:\n{t}");
    assert_eq!(b[0].1, 1, "{t}");
    for w in b.windows(2) {
        // What the console carried between the two beats says whether the
        // line was lost, garbled, or never written.
        assert_eq!(w[1].1, w[0].1 + 1, "cluster heartbeat skipped or repeated ({} then {}); the console between them:\n{}", w[0].1, w[1].1, log[w[0].0..=w[1].0].join("\n"));
    }
}

on_each_qemu_board! {
fn two_linux_domains_reach_init_and_print(board: &str) {
    let mut s = boot(board, "linux-side-by-side");
    let (mut cluster, mut ivi) = (false, false);
    let ok = s.wait_for(LINUX, |l| {
        cluster |= l == "[cluster] cluster beat 5";
        ivi |= l == "[ivi] ivi tick 2";
        cluster && ivi
    });
    let t = s.transcript();
    assert!(ok.is_some(), "both domains should run their /init:\n{t}");
    assert!(t.contains("[cluster] cluster: /init reached, 1 CPU(s), kernel 6."), "{t}");
    // The IVI's second vCPU came up through PSCI CPU_ON.
    assert!(t.contains("[ivi] ivi: /init reached, 2 CPU(s) online"), "{t}");
    assert!(t.contains("[ivi] [") && t.contains("Machine model: cockpit domain ivi"), "{t}");
    // The cluster's own virtio-rng driver works on the passed-through device.
    let rng = s.log.iter().find(|l| l.starts_with("[cluster] cluster: hwrng virtio_rng")).cloned();
    let rng = rng.unwrap_or_else(|| panic!("no hwrng line:\n{t}"));
    let hex = rng.rsplit(": ").next().unwrap_or("");
    assert_eq!(hex.len(), 32, "16 random bytes in hex: {rng}");
    assert_ne!(hex, "00000000000000000000000000000000", "{rng}");
}
}

on_each_qemu_board! {
fn ivi_crashes_and_restarts_while_the_cluster_keeps_beating(board: &str) {
    let mut s = boot(board, &format!("{}/tests/fixtures/linux-faults/system.toml", env!("CARGO_MANIFEST_DIR")));
    let second = s.wait_for(LINUX, |l| l.contains("ivi: restarting (restart #2)"));
    assert!(second.is_some(), "the IVI should panic and restart twice:\n{}", s.transcript());
    // It boots again after the second restart, and the cluster beats on.
    let boots = |s: &Console| s.log.iter().filter(|l| l.starts_with("[ivi] ivi: /init reached")).count();
    let target = boots(&s) + 1;
    let mut seen = boots(&s);
    assert!(
        s.wait_for(LINUX, |l| {
            seen += l.starts_with("[ivi] ivi: /init reached") as usize;
            seen >= target
        })
        .is_some(),
        "IVI did not come back:\n{}",
        s.transcript()
    );
    let last = cluster_beats(&s.log).last().map_or(0, |b| b.1);
    let more = format!("[cluster] cluster beat {}", last + 10);
    assert!(s.wait_for(LINUX, |l| l == more).is_some(), "cluster stalled:\n{}", s.transcript());
    let t = s.transcript();
    assert!(t.contains("[ivi] ivi: crashing on purpose (sysrq c)"), "{t}");
    assert!(t.contains("Kernel panic - not syncing: sysrq triggered crash"), "{t}");
    // Arm Linux reports a panic only by rebooting: the banner before it
    // makes it a crash, so `on_crash` applies.
    assert!(t.contains("[hv] ivi: Crash (a reboot after a kernel panic) -> Restart"), "{t}");
    assert_consecutive(&s.log, &t);
    assert!(!t.contains("cluster: Reboot") && !t.contains("cluster: restarting"), "{t}");
}
}

on_each_qemu_board! {
fn a_passed_through_device_faults_the_intruder_only(board: &str) {
    let mut s = boot(board, &format!("{}/tests/fixtures/linux-faults/system.toml", env!("CARGO_MANIFEST_DIR")));
    let fault = s.wait_for(LINUX, |l| l.contains("ivi: data access at IPA 0xa003e00"));
    assert!(fault.is_some(), "the IVI's read of the cluster's device must fault:\n{}", s.transcript());
    let cont = s.wait_for(LINUX, |l| l == "[ivi] ivi tick 1");
    let t = s.transcript();
    assert!(cont.is_some(), "the IVI carries on after its process is killed:\n{t}");
    assert!(t.contains("[ivi] ivi: the read of 0x0a003e00 faulted"), "{t}");
    // Meanwhile the owner uses it.
    let owner = t.contains("[cluster] cluster: hwrng virtio_rng")
        || s.wait_for(LINUX, |l| l.starts_with("[cluster] cluster: hwrng virtio_rng")).is_some();
    assert!(owner, "{}", s.transcript());
}
}

on_each_board! {
fn stock_linux_finds_xen_and_stops_through_schedop_shutdown(board: &str) {
    let mut s = boot(board, &format!("{}/tests/fixtures/xen-guest/system.toml", env!("CARGO_MANIFEST_DIR")));
    let (mut off, mut crashed, mut barked) = (false, false, false);
    let done = s.wait_for(LINUX, |l| {
        off |= l == "[hv] xenguest: destroyed";
        crashed |= l == "[hv] xencrash: preserved (vCPUs stopped, memory kept)";
        barked |= l == "[hv] driver: preserved (vCPUs stopped, memory kept)";
        off && crashed && barked
    });
    let t = s.transcript();
    assert!(done.is_some(), "both guests should stop through Xen's ABI:\n{t}");
    // Discovery through /hypervisor, the grant table, 2-level events and
    // a vcpu_info per vCPU: what the kernel logs when each hypercall works.
    for line in [
        "[xenguest] guest: dmesg: [    0.000000] Xen 4.17 support found",
        "xen:grant_table: Grant tables using version 1 layout",
        "xen:events: Using 2-level ABI",
        "Xen: initializing cpu0",
        "Xen: initializing cpu1",
        "[xenguest] guest: /init reached, 2 CPU(s) online",
        "[xenguest] guest: hypervisor xen 4.17.0-cockpit",
    ] {
        assert!(t.contains(line), "missing {line:?}:\n{t}");
    }
    // xenbus over the store ring: the frontends its description declares
    // probed and published their rings (Initialised), waiting for "driver".
    for line in ["[xenguest] guest: xen devices: vfb-0 vkbd-0", "[xenguest] guest: device/vkbd/0 Initialised", "[xenguest] guest: device/vfb/0 Initialised", "input: Xen Virtual Keyboard"] {
        assert!(t.contains(line), "missing {line:?}:\n{t}");
    }
    // The seed names every vCPU (Linux's CPU hotplug reads them).
    assert!(!t.contains("Unable to read cpu state"), "{t}");
    // Translated physmap, SMCCC, not direct-mapped; never dom0.
    assert!(t.contains("[xenguest] guest: features 00014004"), "{t}");
    assert!(t.contains("[hv] xenguest: SCHEDOP_shutdown (PowerOff)") && t.contains("[hv] xenguest: PowerOff -> Destroy"), "{t}");
    // The panic reboots through SCHEDOP_shutdown(reboot); the banner
    // before it makes it a crash, and `on_crash = "preserve"` holds it.
    assert!(t.contains("[xencrash] guest: crashing on purpose"), "{t}");
    assert!(t.contains("[hv] xencrash: SCHEDOP_shutdown (Reboot)"), "{t}");
    assert!(t.contains("[hv] xencrash: Crash (a reboot after a kernel panic) -> Preserve"), "{t}");
    // SCHEDOP_watchdog: kicked, it holds; left alone, it runs out (only
    // after the kicks stopped) and the crash policy preserves the domain.
    let stop = t.find("[driver] guest: watchdog kicked for 6 s; kicks stop").unwrap_or_else(|| panic!("xen_wdt never ran:\n{t}"));
    let bark = t.find("[hv] driver: watchdog expired").unwrap_or_else(|| panic!("the watchdog never ran out:\n{t}"));
    assert!(stop < bark, "the watchdog ran out while it was kicked:\n{t}");
    assert!(t[bark..].contains("[hv] driver: Crash -> Preserve"), "{t}");
    assert!(!t.contains("BUG") && !t.contains("WARNING:"), "the kernel complained:\n{t}");
}
}
