//! `cargo xtask bench boot`: the same Debian kernel and busybox initramfs
//! booted three ways in the same QEMU (virt, EL2, GICv3, `-smp 2 -m 1024`):
//! (a) with no hypervisor, (b) as dom0 of Xen 4.17 from Debian's
//! archive (through QEMU's guest-loader), (c) as a domain of ours. Prints
//! QEMU-start → `/init` wall time (median of the runs; console to a pipe,
//! never a terminal) with the ratios c/a and c/b, and the slowdown of a
//! CPU-bound loop inside the guest against the same loop without a
//! hypervisor. Figures only: nothing here passes or fails.

use crate::{artifacts, debian, initramfs};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MACHINE: &str = "virt,virtualization=on,gic-version=3";
const CPU: &str = "cortex-a57";
const SMP: &str = "2";
const MEM: &str = "1024";

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

/// Starts `cmd`, returns seconds to the `/init` line and the loop time.
fn measure(mut cmd: Command) -> Result<Run, String> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    let out = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send((Instant::now(), l)).is_err() {
                break;
            }
        }
    });
    let mut init = None;
    let mut loop_s = None;
    let deadline = Instant::now() + Duration::from_secs(180);
    while let Ok((at, line)) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if init.is_none() && line.contains("bench: /init reached") {
            init = Some((at - start).as_secs_f64());
        }
        if let Some(rest) = line.split("bench: loop ").nth(1) {
            let v: Vec<f64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            if v.len() == 2 {
                loop_s = Some(v[1] - v[0]);
            }
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    Ok(Run { init: init.ok_or("never reached /init")?, loop_s })
}

fn qemu(extra: &[String]) -> Command {
    let mut c = Command::new("qemu-system-aarch64");
    c.args(["-machine", MACHINE, "-cpu", CPU, "-smp", SMP, "-m", MEM, "-display", "none", "-monitor", "none"]);
    c.args(["-serial", "stdio", "-no-reboot"]).args(extra);
    c
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
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
    let k = kernel.image.display().to_string();
    let r = rd_path.display().to_string();
    let xen_args = [
        "-kernel".to_string(),
        xen.display().to_string(),
        "-append".into(),
        "dom0_mem=512M console=dtuart dtuart=/pl011@9000000".into(),
        "-device".into(),
        format!("guest-loader,addr=0x49000000,kernel={k},bootargs=console=hvc0"),
        "-device".into(),
        format!("guest-loader,addr=0x50000000,initrd={r}"),
    ];
    let ours = [
        "-kernel".to_string(),
        built.hypervisor.display().to_string(),
        "-device".into(),
        format!("guest-loader,addr=0x49000000,initrd={}", built.bundle.display()),
    ];
    let native = ["-kernel".to_string(), k.clone(), "-initrd".into(), r.clone(), "-append".into(), "console=ttyAMA0".into()];
    let cmds: [(&str, &[String]); 3] =
        [("a: no hypervisor", &native), ("b: Xen 4.17 (dom0)", &xen_args), ("c: this hypervisor", &ours)];
    let mut results: Vec<(String, Vec<f64>, Vec<f64>)> = cmds.iter().map(|(n, _)| (n.to_string(), vec![], vec![])).collect();
    // Interleave the three so drifting machine load hits them alike.
    for _ in 0..runs.max(1) {
        for (i, (_, args)) in cmds.iter().enumerate() {
            let run = measure(qemu(args))?;
            results[i].1.push(run.init);
            if let Some(l) = run.loop_s {
                results[i].2.push(l);
            }
        }
    }
    println!("boot to /init, QEMU {MACHINE} -cpu {CPU} -smp {SMP} -m {MEM} (TCG), Debian kernel {}, median of {runs}:", kernel.version);
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
