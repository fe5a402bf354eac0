//! `cargo xtask bench boot`: the same Debian kernel and busybox initramfs
//! booted three ways in the same QEMU (virt, EL2, GICv3, `-smp 2 -m 1024`):
//! (a) with no hypervisor, (b) as dom0 of Xen 4.17 from Debian's
//! archive (through QEMU's guest-loader), (c) as a domain of ours. Prints
//! QEMU-start → `/init` wall time (median of the runs; console to a pipe,
//! never a terminal) with the ratios c/a and c/b, and the slowdown of a
//! CPU-bound loop inside the guest against the same loop without a
//! hypervisor. Figures only: nothing here passes or fails.

use crate::{artifacts, debian, initramfs};
use crate::bench::median;
use crate::qemu::QemuCommand;
use std::path::Path;
use std::time::Duration;

const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
echo "bench: /init reached"
t0=$(/bin/busybox cut -d' ' -f1 /proc/uptime)
i=0
while [ $i -lt 300000 ]; do i=$((i + 1)); done
t1=$(/bin/busybox cut -d' ' -f1 /proc/uptime)
echo "bench: loop $t0 $t1"
/bin/busybox poweroff -f
"#;

fn write(p: &Path, s: &str) -> Result<(), String> {
    std::fs::create_dir_all(p.parent().unwrap()).map_err(|e| e.to_string())?;
    std::fs::write(p, s).map_err(|e| e.to_string())
}

struct Run {
    init: f64,
    loop_s: Option<f64>,
}

/// Starts QEMU, returns seconds to the `/init` line and the loop time.
fn measure(q: &QemuCommand) -> Result<Run, String> {
    let mut con = q.spawn()?;
    let init = con.wait_for(Duration::from_secs(180), |l| l.contains("bench: /init reached"));
    let init = init.map(|_| con.started.elapsed().as_secs_f64()).ok_or_else(|| format!("never reached /init: {}", con.transcript()))?;
    let line = con.wait_for(Duration::from_secs(180), |l| l.contains("bench: loop "));
    let loop_s = line.and_then(|l| {
        let v: Vec<f64> = l.split("bench: loop ").nth(1)?.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        (v.len() == 2).then(|| v[1] - v[0])
    });
    Ok(Run { init, loop_s })
}

pub fn run(runs: usize) -> Result<(), String> {
    crate::toolchain::qemu()?;
    let dir = artifacts::root().join("target/bench-boot");
    let kernel = debian::kernel("linux-image-arm64")?;
    let tree = dir.join("sample/initramfs/bench");
    write(&tree.join("init"), INIT)?;
    let rd = initramfs::build(&tree, &kernel)?;
    let rd_path = dir.join("initramfs.cpio");
    std::fs::write(&rd_path, rd).map_err(|e| e.to_string())?;
    let xen = debian::unpacked("xen-hypervisor-4.17-arm64")?.join("boot/xen-4.17-arm64");

    // Ours: one Linux domain, 2 vCPUs, 512 MiB, the system controller.
    let sample = dir.join("sample/system.toml");
    write(
        &sample,
        r#"[system]
board = "qemu-virt"

[[domain]]
name = "linux"
kind = "linux"
vcpus = 2
pcpus = [0, 1]
memory = "512M"
image = "debian:linux-image-arm64"
initrd = "initramfs:bench"
bootargs = "console=ttyAMA0"
system_controller = true
"#,
    )?;
    let built = artifacts::build(sample.to_str().unwrap(), None, None)?;
    let xen_q = QemuCommand::xen(&xen, &kernel.image, &rd_path);
    let ours = QemuCommand::for_built_on(&built, xen_q.machine())?;
    let mut native = QemuCommand::new(xen_q.machine());
    native.kernel(&kernel.image).initrd(&rd_path).append("console=ttyAMA0");
    let cmds: [(&str, &QemuCommand); 3] = [("a: no hypervisor", &native), ("b: Xen 4.17 (dom0)", &xen_q), ("c: this hypervisor", &ours)];
    let mut results: Vec<(String, Vec<f64>, Vec<f64>)> = cmds.iter().map(|(n, _)| (n.to_string(), vec![], vec![])).collect();
    // Interleave the three so drifting machine load hits them alike.
    for _ in 0..runs.max(1) {
        for (i, (_, q)) in cmds.iter().enumerate() {
            let run = measure(q)?;
            results[i].1.push(run.init);
            if let Some(l) = run.loop_s {
                results[i].2.push(l);
            }
        }
    }
    println!("boot to /init, QEMU {} (TCG), Debian kernel {}, median of {runs}:", xen_q.machine(), kernel.version);
    let med: Vec<f64> = results.iter().map(|r| median(r.1.clone())).collect();
    for (r, m) in results.iter().zip(&med) {
        println!("  {:<22} {:.3} s   (runs: {:?})", r.0, m, r.1.iter().map(|x| (x * 1000.0).round() / 1000.0).collect::<Vec<_>>());
    }
    println!("  ratio c/a = {:.3} (goal <= 1.1), c/b = {:.3} (goal <= 0.85), b/a = {:.3}", med[2] / med[0], med[2] / med[1], med[1] / med[0]);
    let loops: Vec<Option<f64>> = results.iter().map(|r| (!r.2.is_empty()).then(|| median(r.2.clone()))).collect();
    if let (Some(a), Some(c)) = (loops[0], loops[2]) {
        println!(
            "CPU-bound shell loop in the guest (300000 iterations): a {a:.2} s, c {c:.2} s: slowdown {:+.1} % (goal within 1 %; /proc/uptime has 10 ms steps)",
            (c / a - 1.0) * 100.0
        );
        if let Some(b) = loops[1] {
            println!("  (under Xen: {b:.2} s, {:+.1} %)", (b / a - 1.0) * 100.0);
        }
    }
    Ok(())
}
