//! `cargo xtask bench`: figures, never pass/fail. Printed with what they
//! were measured on, so a reader can compare like with like.

use crate::{artifacts, qemu, DEFAULT_SAMPLE};
use std::time::Duration;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Image size, and QEMU start to the first line a guest prints.
pub fn boot(runs: usize) -> Result<(), String> {
    let built = artifacts::build(DEFAULT_SAMPLE, None, None)?;
    let size = std::fs::metadata(&built.hypervisor).map_err(|e| e.to_string())?.len();
    println!("hypervisor image: {size} bytes ({:.1} KiB; goal < 150 KiB)", size as f64 / 1024.0);
    println!("  for scale: Xen 4.17 arm64 image 983,048 bytes, Bao about 94 KB (published figures)");
    let mut times = Vec::new();
    for _ in 0..runs.max(1) {
        let mut s = qemu::Session::start(&built)?;
        let first = s.wait_for(Duration::from_secs(60), |l| l.starts_with('[') && !l.starts_with("[hv]"));
        if first.is_none() {
            return Err(format!("no guest output within 60 s:\n{}", s.transcript()));
        }
        times.push(s.started.elapsed().as_secs_f64());
    }
    let q = built.sample.board.qemu.as_ref().map(|q| format!("{} -cpu {} -m {}", q.machine, q.cpu, q.memory)).unwrap_or_default();
    println!(
        "QEMU start -> first guest line: median {:.3} s over {} runs (sample {}, {} CPUs, {}, TCG)",
        median(times.clone()),
        times.len(),
        built.sample.name,
        built.sample.board.cpus,
        q
    );
    Ok(())
}
