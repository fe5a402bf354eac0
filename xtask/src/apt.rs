//! The one place xtask talks to Debian's apt: index updates, installs and
//! downloads, each retried, because a mirror mid-sync ("File has unexpected
//! size ... Mirror sync in progress?") fails a fresh machine for minutes,
//! not for good.

use std::path::Path;
use std::process::Command;
use std::thread::sleep;
use std::time::Duration;

/// Pauses between attempts: about two and a half minutes in all.
const BACKOFF_S: [u64; 3] = [10, 40, 100];

/// apt's own per-file retries, on top of ours.
const PER_FILE_RETRIES: &str = "Acquire::Retries=3";

fn apt_get() -> Command {
    let mut c = Command::new("apt-get");
    c.args(["-o", PER_FILE_RETRIES]).env("DEBIAN_FRONTEND", "noninteractive");
    c
}

/// Runs `make()`'s command until it succeeds or the pauses run out; the
/// error names `what` and the last attempt's stderr.
fn with_retries(what: &str, mut make: impl FnMut() -> Command) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 0..=BACKOFF_S.len() {
        if attempt > 0 {
            let pause = BACKOFF_S[attempt - 1];
            eprintln!("xtask: {what} failed ({}); trying again in {pause} s", last.lines().last().unwrap_or("no message"));
            sleep(Duration::from_secs(pause));
        }
        let out = make().output().map_err(|e| format!("{what}: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        last = String::from_utf8_lossy(&out.stderr).trim().to_string();
    }
    Err(format!("{what} failed {} times; last: {last}", BACKOFF_S.len() + 1))
}

/// Refreshes the package indexes. An index that still fails after the
/// retries is a warning, not an error: apt keeps what it could fetch, and a
/// package that is truly missing fails its own install or download with a
/// message naming it.
pub fn update() {
    if let Err(e) = with_retries("apt-get update", || {
        let mut c = apt_get();
        c.args(["update", "-qq"]);
        c
    }) {
        eprintln!("xtask: warning: {e}; going on with the indexes apt has");
    }
}

/// Installs `pkgs` (no recommends).
pub fn install(pkgs: &[&str]) -> Result<(), String> {
    with_retries(&format!("apt-get install {}", pkgs.join(" ")), || {
        let mut c = apt_get();
        c.args(["install", "-y", "-qq", "--no-install-recommends"]).args(pkgs);
        c
    })
}

/// Downloads `pkg` (optionally `name:arch`) into `dir`. apt's sandbox user
/// must be able to write there.
pub fn download(pkg: &str, dir: &Path) -> Result<(), String> {
    with_retries(&format!("apt-get download {pkg}"), || {
        let mut c = apt_get();
        c.args(["download", "-qq", pkg]).current_dir(dir);
        c
    })
}
