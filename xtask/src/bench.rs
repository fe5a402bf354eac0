//! `cargo xtask bench`: figures, never pass/fail. Printed with what they
//! were measured on, so a reader can compare like with like.

use crate::{artifacts, qemu, DEFAULT_SAMPLE};
use std::time::Duration;

/// The middle value (the upper one of an even count).
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Image size, and QEMU start to the first line a guest prints, on each
/// board of the board matrix; then the Armv7-A image (qemu-virt-a15) next
/// to aarch64's with the same Linux domains (armhf and arm64 kernels).
pub fn boot(runs: usize) -> Result<(), String> {
    println!("for scale: Xen 4.17 arm64 image 983,048 bytes, Bao about 94 KB (published figures)");
    for (_, board) in crate::BOARD_MATRIX.iter() {
        first_guest_line(DEFAULT_SAMPLE, board, runs)?;
    }
    for board in ["qemu-virt", "qemu-virt-a15"] {
        first_guest_line(&crate::for_board("linux-side-by-side", board), board, runs)?;
    }
    Ok(())
}

/// Builds `sample` for `board`, prints its hypervisor image's size and the
/// median time from QEMU's start to the first guest line over `runs` boots.
fn first_guest_line(sample: &str, board: &str, runs: usize) -> Result<(), String> {
    let built = artifacts::build(sample, Some(board), None)?;
    // Board facts travel in the boot bundle; the image differs only in
    // where it is linked (RAM base + 2 MiB; + 64 KiB for Armv7-A).
    let size = std::fs::metadata(&built.hypervisor).map_err(|e| e.to_string())?.len();
    let arch = &built.sample.board.arch;
    println!("{board}: {arch} hypervisor image {size} bytes ({:.1} KiB; goal < 150 KiB)", size as f64 / 1024.0);
    let mut times = Vec::new();
    for _ in 0..runs.max(1) {
        let mut s = qemu::Console::start_built(&built)?;
        let first = s.wait_for(Duration::from_secs(120), |l| l.starts_with('[') && !l.starts_with("[hv]"));
        if first.is_none() {
            return Err(format!("no guest output:\n{}", s.transcript()));
        }
        times.push(s.started.elapsed().as_secs_f64());
    }
    let q = qemu::Machine::for_board(&built.sample.board)?;
    println!(
        "{board}: QEMU start -> first guest line: median {:.3} s over {} runs (sample {}, {q}, TCG)",
        median(times.clone()),
        times.len(),
        built.sample.name,
    );
    Ok(())
}

/// One report of the `share` test guest: its share of a second of guest
/// time, in percent, and its longest uninterrupted run in that second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ShareReport {
    pub n: u64,
    pub percent: f64,
    pub longest_us: u64,
}

/// The `share N: X.Y% (total Z%), longest run U us` lines of one domain.
pub fn share_reports(log: &[String], domain: &str) -> Vec<ShareReport> {
    let prefix = format!("[{domain}] share ");
    log.iter()
        .filter_map(|l| {
            let (n, rest) = l.strip_prefix(&prefix)?.split_once(": ")?;
            let percent = rest.split('%').next()?.parse().ok()?;
            let longest_us = rest.split("longest run ").nth(1)?.strip_suffix(" us")?.parse().ok()?;
            Some(ShareReport { n: n.parse().ok()?, percent, longest_us })
        })
        .collect()
}

/// The RTDS sample the test judges, as absolute figures: each guest's CPU
/// share against its budget (median of the reports after the first).
pub fn rtds(runs: usize) -> Result<(), String> {
    let sample = format!("{}/tests/fixtures/rtds/system.toml", env!("CARGO_MANIFEST_DIR"));
    let built = artifacts::build(&sample, None, None)?;
    let q = qemu::Machine::for_board(&built.sample.board)?;
    println!("RTDS: two CPU-bound guests on one pCPU, budgets 3 ms and 6 ms per 10 ms; QEMU {q} (TCG), {runs} boot(s) of 8 s guest time");
    for run in 1..=runs.max(1) {
        let mut s = qemu::Console::start_built(&built)?;
        let (mut g, mut m) = (false, false);
        let ok = s.wait_for(Duration::from_secs(120), |l| {
            g |= l.starts_with("[gauges] share 8:");
            m |= l.starts_with("[media] share 8:");
            g && m
        });
        if ok.is_none() {
            return Err(format!("no 8 reports from both guests:\n{}", s.transcript()));
        }
        for (name, budget) in [("gauges", 30.0), ("media", 60.0)] {
            let r = share_reports(&s.log, name);
            let got = median(r.iter().skip(1).map(|r| r.percent).collect());
            let longest = r.iter().skip(1).map(|r| r.longest_us).max().unwrap_or(0);
            println!("  run {run}: {name:<6} share {got:5.1} % (budget {budget:.0} %, ratio {:.3}), longest run {longest} us", got / budget);
        }
    }
    Ok(())
}

/// Our hypervisor against Xen 4.17, booted one after the other on the same
/// QEMU machine (our board's) with the same stock kernel and frontends:
/// an event-channel round trip between the backend and the frontend
/// domain, a xenstore read in the frontend, and QEMU's start to the
/// frontend's vkbd, vfb and vsnd Connected. Ratios below 1: ours is faster.
pub fn xen(n: usize) -> Result<(), String> {
    use crate::interop::{figures, Args};
    let built_machine = {
        let sample = artifacts::root().join("samples/interop/ours/system.toml");
        let built = artifacts::build(&sample.to_string_lossy(), None, None);
        // The images the sample names are built by the first boot; the
        // machine is the board's either way.
        match built {
            Ok(b) => qemu::Machine::for_board(&b.sample.board)?,
            Err(_) => qemu::Machine { machine: "virt,virtualization=on,gic-version=3".into(), cpu: "cortex-a57".into(), smp: 4, memory: "2G".into(), dtb: None },
        }
    };
    let n = n.max(20);
    let xen = figures(&Args { machine: Some(built_machine.clone()), ..Default::default() }, n)?;
    let ours = figures(&Args { hypervisor: "ours".into(), ..Default::default() }, n)?;
    if xen.xs_value() != ours.xs_value() {
        return Err(format!("the xenstore reads differ: Xen {:?}, ours {:?}", xen.xs_value(), ours.xs_value()));
    }
    println!("bench xen: QEMU {built_machine} (TCG, {} host CPUs); {n} round trips each", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0));
    println!("  Xen 4.17: `{}`, dom0 2 vCPUs 512 MiB running pv-backendd, domU 1 vCPU (credit2)", qemu::XEN_ARGS);
    println!("  ours:     samples/interop/ours (driver domain 2 vCPUs 512 MiB, guest 1 vCPU, the Rust vdispl guest 1 vCPU, null scheduler)");
    let row = |what: &str, x: Option<f64>, o: Option<f64>, unit: &str| match (x, o) {
        (Some(x), Some(o)) => println!("  {what:<34} Xen {x:>9.1} {unit}  ours {o:>9.1} {unit}  ratio {:.2}", o / x),
        _ => println!("  {what:<34} not measured (Xen {x:?}, ours {o:?})"),
    };
    row("event channel round trip (median)", xen.evtchn_us(), ours.evtchn_us(), "us");
    row("xenstore read round trip (median)", xen.xs_read_us(), ours.xs_read_us(), "us");
    row("power-on to PV devices Connected", Some(xen.connected_s), Some(ours.connected_s), "s ");
    println!("  raw: Xen evtchn {} | xs {}", xen.evtchn, xen.xs_read);
    println!("  raw: ours evtchn {} | xs {}", ours.evtchn, ours.xs_read);
    Ok(())
}

/// The cockpit sample's boot: QEMU start (power-on) to the compositor's
/// first frame from the cluster's gauges, and from the IVI, on their
/// displays; printed beside the Nautilus demo's published figures.
pub fn cockpit_boot(runs: usize) -> Result<(), String> {
    let built = artifacts::build("cockpit", None, None)?;
    let (mut cluster, mut ivi) = (Vec::new(), Vec::new());
    for run in 0..runs.max(1) {
        let mut s = qemu::Console::start_built(&built)?;
        let (mut c, mut i) = (None, None);
        let done = s.wait_for(Duration::from_secs(300), |l| {
            let at = || Some(std::time::Instant::now());
            if c.is_none() && l.contains("cockpit: first frame from gauges") {
                c = at();
            }
            if i.is_none() && l.contains("cockpit: first frame from ivi") {
                i = at();
            }
            c.is_some() && i.is_some()
        });
        let (Some(c), Some(i), Some(_)) = (c, i, done) else {
            return Err(format!("run {run}: no first frame from both guests within 300 s:\n{}", s.transcript()));
        };
        cluster.push(c.duration_since(s.started).as_secs_f64());
        ivi.push(i.duration_since(s.started).as_secs_f64());
        s.kill();
    }
    let q = qemu::Machine::for_board(&built.sample.board)?;
    println!("cockpit sample, QEMU start (power-on) -> first frame on its display, median of {} runs ({q}, TCG):", cluster.len());
    println!("  cluster (no_std guest, vdispl): {:.2} s", median(cluster));
    println!("  IVI (Debian Linux, xen-fbfront): {:.2} s", median(ivi));
    println!("  for scale: Nautilus on Xen 4.5, TI J6 hardware (CES 2015, published): early rear-view camera 1.5 s, boot 8 s");
    Ok(())
}

/// The cluster's smoothness while the IVI is loaded: the cockpit sample
/// boots headless, the compositor's frame times of the cluster's gauges
/// (the time between new frames it takes, p50/p99/max per statistics line)
/// are read for `secs` with the IVI idle, then for `secs` with the HMI's
/// F11 load on (a busy loop on every IVI CPU and a full-screen redraw
/// storm through xen-fbfront), for `secs` more with the IVI's emulated CPU
/// at the host's lowest priority, and from an IVI crash (F12) until the
/// hypervisor has restarted it and its HMI draws again. Same boot, same run.
pub fn cockpit_load(secs: u64) -> Result<(), String> {
    use crate::interop::machine::{ev, Machine};
    let built = artifacts::build("cockpit", None, None)?;
    let work = artifacts::root().join("target/bench-cockpit-load");
    let mut m = Machine::start_sample(&built, &work, false)?;
    let boot = Duration::from_secs(300);
    let fail = |m: &Machine, what: &str| format!("{what}\n{}", m.con.transcript());
    m.con.expect_after(0, "cluster: frame 90 shown", boot).ok_or_else(|| fail(&m, "the cluster never showed 90 frames"))?;
    m.con.expect_after(0, "hmi: 6 tiles on", boot).ok_or_else(|| fail(&m, "the IVI's HMI never drew"))?;
    // The last boot work (the IVI's and the driver's) settles first.
    m.con.pause(Duration::from_secs(20));
    let idle_from = m.con.log.len();
    m.con.pause(Duration::from_secs(secs));
    let idle_to = m.con.log.len();
    m.input(&[ev::key("f11", true)])?;
    m.input(&[ev::key("f11", false)])?;
    let on = m.con.expect_after(idle_to, "hmi: load on", Duration::from_secs(60)).ok_or_else(|| fail(&m, "F11 did not start the IVI's load"))?;
    m.con.pause(Duration::from_secs(secs));
    let loaded_to = m.con.log.len();
    // QEMU runs each emulated CPU as a host thread: with fewer host cores
    // than emulated CPUs, the IVI's busy CPU takes host time the cluster's
    // and the driver's CPUs would have on the board, where each has its
    // own core. The last phase gives that thread the host's lowest
    // priority, as near as QEMU gets to a core of its own for the others.
    let ivi_cpu = host_thread(m.con.pid(), &format!("CPU {IVI_PCPU}/TCG"))?;
    let st = std::process::Command::new("renice").args(["-n", "19", "-p", &ivi_cpu.to_string()]).output().map_err(|e| format!("renice: {e}"))?;
    if !st.status.success() {
        return Err(format!("renice of QEMU's thread {ivi_cpu}: {}", String::from_utf8_lossy(&st.stderr)));
    }
    m.con.pause(Duration::from_secs(secs));
    let niced_to = m.con.log.len();
    // The IVI crashes (F12: a kernel panic) and the hypervisor restarts
    // it: the cluster's frame times from the crash to the HMI's return.
    let _ = std::process::Command::new("renice").args(["-n", "0", "-p", &ivi_cpu.to_string()]).output();
    m.input(&[ev::key("f12", true)])?;
    m.input(&[ev::key("f12", false)])?;
    let crashed = m.con.expect_after(niced_to, "ivi: Crash", Duration::from_secs(60)).ok_or_else(|| fail(&m, "F12 did not crash the IVI"))?;
    let back = m.con.expect_after(crashed, "hmi: 6 tiles on", boot).ok_or_else(|| fail(&m, "the IVI did not come back"))?;
    use crate::cockpit_sample::{stats_frame_times, stats_frames};
    let phase = |from: usize, to: usize| -> Vec<[f64; 3]> { m.con.log[from..to].iter().filter_map(|l| stats_frame_times(l, "gauges")).collect() };
    let ivi_frames = |from: usize, to: usize| -> Option<(u64, u64)> {
        let counts: Vec<u64> = m.con.log[from..to].iter().filter_map(|l| stats_frames(l, "ivi")).collect();
        Some((*counts.first()?, *counts.last()?))
    };
    let (idle, loaded, niced, crash) = (phase(idle_from, idle_to), phase(on, loaded_to), phase(loaded_to, niced_to), phase(crashed, back));
    if idle.is_empty() || loaded.is_empty() || niced.is_empty() || crash.is_empty() {
        return Err(fail(&m, "no frame times of the gauges in the compositor's statistics"));
    }
    let sum = |w: &[[f64; 3]]| {
        let p50 = median(w.iter().map(|x| x[0]).collect());
        let p99 = w.iter().map(|x| x[1]).fold(0.0, f64::max);
        let max = w.iter().map(|x| x[2]).fold(0.0, f64::max);
        [p50, p99, max]
    };
    let (i, l, n, c) = (sum(&idle), sum(&loaded), sum(&niced), sum(&crash));
    let crash_s = m.con.arrived[back].duration_since(m.con.arrived[crashed]).as_secs_f64();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let q = qemu::Machine::for_board(&built.sample.board)?;
    println!("cockpit sample, the cluster's frame times in the compositor ({q}, TCG on {cores} host cores), {secs} s each:");
    println!("  (p50: median of the per-line medians; p99 and max: the highest of any statistics line)");
    println!("  IVI idle:                  p50 {:6.1} ms  p99 {:6.1} ms  max {:6.1} ms  ({} lines)", i[0], i[1], i[2], idle.len());
    println!("  IVI busy loops + redraws:  p50 {:6.1} ms  p99 {:6.1} ms  max {:6.1} ms  ({} lines)", l[0], l[1], l[2], loaded.len());
    println!("  ratio loaded/idle:         p50 {:6.2}     p99 {:6.2}     max {:6.2}", l[0] / i[0], l[1] / i[1], l[2] / i[2]);
    println!("  loaded, the IVI's emulated CPU at host nice 19:");
    println!("                             p50 {:6.1} ms  p99 {:6.1} ms  max {:6.1} ms  ({} lines)", n[0], n[1], n[2], niced.len());
    println!("  ratio to idle:             p50 {:6.2}     p99 {:6.2}     max {:6.2}", n[0] / i[0], n[1] / i[1], n[2] / i[2]);
    println!("  the IVI crashed and restarted ({crash_s:.0} s from the crash to its HMI drawing again):");
    println!("                             p50 {:6.1} ms  p99 {:6.1} ms  max {:6.1} ms  ({} lines)", c[0], c[1], c[2], crash.len());
    if let Some((a, b)) = ivi_frames(on, loaded_to) {
        println!("  the IVI's frames taken by the compositor under load: {} in about {secs} s", b.saturating_sub(a));
    }
    let p50s = |w: &[[f64; 3]]| w.iter().map(|x| format!("{:.0}", x[0])).collect::<Vec<_>>().join(" ");
    println!("  p50 of each statistics line (ms): idle {} | loaded {} | loaded, nice 19 {} | crash {}", p50s(&idle), p50s(&loaded), p50s(&niced), p50s(&crash));
    println!("  the cluster asks for 30 fps (33.3 ms); two frame periods are 66.7 ms");
    m.con.kill();
    Ok(())
}

/// The IVI's physical CPU in samples/cockpit/system.toml.
const IVI_PCPU: u32 = 3;

/// The id of process `pid`'s thread named `name`.
fn host_thread(pid: u32, name: &str) -> Result<u32, String> {
    let dir = format!("/proc/{pid}/task");
    for t in std::fs::read_dir(&dir).map_err(|e| format!("{dir}: {e}"))?.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            return t.file_name().to_string_lossy().parse().map_err(|_| format!("{dir}: odd thread id"));
        }
    }
    Err(format!("QEMU has no thread named {name:?}"))
}

/// `cargo xtask flash` against `dd bs=4M conv=fsync`, writing the same
/// image to a file on the same disk in the same run; both outputs checked
/// equal to the image. The read-back check is timed apart.
pub fn flash(runs: usize, sample: &str) -> Result<(), String> {
    use sha2::{Digest, Sha256};
    let img = crate::image::build(sample, "qemu-virt", None)?;
    let dir = artifacts::root().join("target/bench-flash");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let want = Sha256::digest(std::fs::read(&img.disk).map_err(|e| e.to_string())?);
    let len = std::fs::metadata(&img.disk).map_err(|e| e.to_string())?.len();
    let same = |p: &std::path::Path| -> Result<(), String> {
        let got = Sha256::digest(std::fs::read(p).map_err(|e| e.to_string())?);
        if got == want { Ok(()) } else { Err(format!("{} differs from the image", p.display())) }
    };
    let (mut ours, mut verify, mut dd) = (Vec::new(), Vec::new(), Vec::new());
    let ours_run = |ours: &mut Vec<f64>, verify: &mut Vec<f64>| -> Result<(), String> {
        let to = dir.join("flash.img");
        let s = crate::flash::write_verified(&img.disk, &to, None, false)?;
        same(&to)?;
        ours.push(s.write.as_secs_f64());
        verify.push(s.verify.as_secs_f64());
        let _ = std::fs::remove_file(&to);
        Ok(())
    };
    let dd_run = |dd: &mut Vec<f64>| -> Result<(), String> {
        let to = dir.join("dd.img");
        let t = std::time::Instant::now();
        let st = std::process::Command::new("dd")
            .arg(format!("if={}", img.disk.display()))
            .arg(format!("of={}", to.display()))
            .args(["bs=4M", "conv=fsync", "status=none"])
            .status()
            .map_err(|e| format!("dd: {e}"))?;
        if !st.success() {
            return Err(format!("dd exited with {st}"));
        }
        dd.push(t.elapsed().as_secs_f64());
        same(&to)?;
        let _ = std::fs::remove_file(&to);
        Ok(())
    };
    // Alternating who goes first, so neither always meets a busy disk.
    for i in 0..runs.max(1) {
        if i % 2 == 0 {
            ours_run(&mut ours, &mut verify)?;
            dd_run(&mut dd)?;
        } else {
            dd_run(&mut dd)?;
            ours_run(&mut ours, &mut verify)?;
        }
    }
    let (o, v, d) = (median(ours), median(verify), median(dd));
    let mib = len as f64 / (1u64 << 20) as f64;
    println!("image: {} ({mib:.1} MiB, sample {sample}); medians of {} runs, files on the same disk", img.disk.display(), runs.max(1));
    println!("dd bs=4M conv=fsync:        {d:.3} s ({:.0} MiB/s)", mib / d);
    println!("cargo xtask flash (write):  {o:.3} s ({:.0} MiB/s), overhead {:+.1} % against dd", mib / o, (o / d - 1.0) * 100.0);
    println!("read-back check (SHA-256):  {v:.3} s (page cache dropped first, so read from the disk)");
    println!("flash with read-back:       {:.3} s, overhead {:+.1} % against dd (goal < 5 %)", o + v, ((o + v) / d - 1.0) * 100.0);
    Ok(())
}
