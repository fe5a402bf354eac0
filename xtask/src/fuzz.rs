//! `cargo xtask fuzz [target] --runs N`: the coverage-guided fuzz targets
//! of `hypervisor/fuzz` (libFuzzer through `libfuzzer-sys`), built with the
//! machine's stable toolchain and the instrumentation flags cargo-fuzz
//! would pass, then run for N executions each. A crash fails the run and
//! leaves its input under `target/fuzz/artifacts/<target>/`; the corpus
//! grows under `target/fuzz/corpus/<target>/`.

use crate::artifacts::root;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

/// Every target, in the order they run.
pub const TARGETS: &[&str] = &[
    "ring_requests",
    "xenstore_message",
    "page_directory",
    "back_ring",
    "trap_decode",
    "vgic_mmio",
    "vuart_mmio",
    "boot_bundle",
    "psci_calls",
    "system_description",
    "grant_and_evtchn",
];

/// Coverage instrumentation as libFuzzer wants it (what cargo-fuzz passes,
/// less the sanitizer, which needs a nightly compiler), with debug
/// assertions and overflow checks on: an overflow is a finding.
const RUSTFLAGS: &str = "-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks";

/// What one target did.
pub struct Outcome {
    pub target: String,
    pub runs: u64,
    pub seconds: f64,
    /// libFuzzer's last `cov:` figure (edges covered).
    pub coverage: Option<u64>,
    /// Why it failed (a crash, a timeout), with libFuzzer's last lines.
    pub failure: Option<String>,
}

fn host_triple() -> Result<String, String> {
    let out = Command::new("rustc").arg("-vV").output().map_err(|e| format!("rustc -vV: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .ok_or_else(|| "rustc -vV names no host".into())
}

/// Builds every target; returns the directory holding the binaries.
pub fn build() -> Result<PathBuf, String> {
    let triple = host_triple()?;
    let target_dir = root().join("target/fuzz");
    // With --target, the flags reach only the fuzz targets, not build
    // scripts (which would not link against libFuzzer's counters).
    let st = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--quiet", "--bins", "--target", &triple])
        .arg("--manifest-path")
        .arg(root().join("hypervisor/fuzz/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .env("RUSTFLAGS", RUSTFLAGS)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .map_err(|e| format!("cargo build (fuzz targets): {e}"))?;
    if !st.success() {
        return Err("the fuzz targets do not build".into());
    }
    Ok(target_dir.join(triple).join("release"))
}

/// Runs `target` for `runs` executions from its corpus.
pub fn run_target(bin_dir: &std::path::Path, target: &str, runs: u64) -> Result<Outcome, String> {
    let corpus = root().join("target/fuzz/corpus").join(target);
    let artifacts = root().join("target/fuzz/artifacts").join(target);
    std::fs::create_dir_all(&corpus).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&artifacts).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(bin_dir.join(target));
    cmd.arg(format!("-runs={runs}"))
        .arg("-max_len=8192")
        .arg("-timeout=10")
        .arg("-print_final_stats=1")
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg(&corpus);
    if let Some(seeds) = seeds(target)? {
        cmd.arg(seeds);
    }
    let t0 = Instant::now();
    let out = cmd
        .output()
        .map_err(|e| format!("running {target}: {e}"))?;
    let seconds = t0.elapsed().as_secs_f64();
    let log = String::from_utf8_lossy(&out.stderr);
    let coverage = log
        .lines()
        .filter_map(|l| l.split("cov: ").nth(1)?.split_whitespace().next()?.parse().ok())
        .next_back();
    let done = log
        .lines()
        .find_map(|l| l.strip_prefix("Done ")?.split(' ').next()?.parse::<u64>().ok())
        .or_else(|| log.lines().find_map(|l| l.strip_prefix("stat::number_of_executed_units: ")?.trim().parse().ok()))
        .unwrap_or(0);
    let failure = (!out.status.success()).then(|| {
        let tail: Vec<&str> = log.lines().rev().take(25).collect::<Vec<_>>().into_iter().rev().collect();
        format!("{target} failed ({}):\n{}", out.status, tail.join("\n"))
    });
    Ok(Outcome { target: target.into(), runs: done, seconds, coverage, failure })
}

/// Inputs worth starting from, for targets whose input is text a fuzzer
/// would take long to find: every system description in the repository.
fn seeds(target: &str) -> Result<Option<std::path::PathBuf>, String> {
    if target != "system_description" {
        return Ok(None);
    }
    let dir = root().join("target/fuzz/seeds").join(target);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    for parent in ["samples", "xtask/tests/fixtures"] {
        let Ok(entries) = std::fs::read_dir(root().join(parent)) else { continue };
        for e in entries.flatten() {
            let file = e.path().join("system.toml");
            if file.is_file() {
                let name = format!("{}-{}", parent.replace('/', "-"), e.file_name().to_string_lossy());
                std::fs::copy(&file, dir.join(name)).map_err(|e| format!("{}: {e}", file.display()))?;
            }
        }
    }
    Ok(Some(dir))
}

/// Builds, runs `targets` (all when empty) and prints a line per target.
pub fn run(targets: &[String], runs: u64) -> Result<Vec<Outcome>, String> {
    for t in targets {
        if !TARGETS.contains(&t.as_str()) {
            return Err(format!("unknown fuzz target `{t}`: {}", TARGETS.join(", ")));
        }
    }
    let bin_dir = build()?;
    let chosen: Vec<&str> = if targets.is_empty() { TARGETS.to_vec() } else { targets.iter().map(String::as_str).collect() };
    let mut outcomes = Vec::new();
    for t in chosen {
        let o = run_target(&bin_dir, t, runs)?;
        println!(
            "fuzz {:<18} {:>11} runs in {:>7.1} s ({:>9.0}/s), coverage {} edges: {}",
            o.target,
            o.runs,
            o.seconds,
            o.runs as f64 / o.seconds.max(1e-9),
            o.coverage.map_or("?".into(), |c| c.to_string()),
            if o.failure.is_some() { "FAILED" } else { "ok" }
        );
        outcomes.push(o);
    }
    Ok(outcomes)
}
