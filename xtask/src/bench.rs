//! `cargo xtask bench`: figures, never pass/fail. Printed with what they
//! were measured on, so a reader can compare like with like.

use crate::{artifacts, qemu, DEFAULT_SAMPLE};
use std::time::Duration;

/// The middle value (the upper one of an even count).
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
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
        let mut s = qemu::Console::start_built(&built)?;
        let first = s.wait_for(Duration::from_secs(60), |l| l.starts_with('[') && !l.starts_with("[hv]"));
        if first.is_none() {
            return Err(format!("no guest output:\n{}", s.transcript()));
        }
        times.push(s.started.elapsed().as_secs_f64());
    }
    let q = qemu::Machine::for_board(&built.sample.board)?;
    println!(
        "QEMU start -> first guest line: median {:.3} s over {} runs (sample {}, {q}, TCG)",
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
