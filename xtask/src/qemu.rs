//! Booting a build under QEMU, interactively or with the console captured
//! for tests and benchmarks.

use crate::artifacts::Built;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

pub fn command(built: &Built) -> Result<Command, String> {
    let qemu = crate::toolchain::qemu()?;
    let board = &built.sample.board;
    let q = board
        .qemu
        .as_ref()
        .ok_or_else(|| format!("board {} cannot run under QEMU (no [qemu] section)", board.name))?;
    let mut cmd = Command::new(qemu);
    cmd.args(["-machine", &q.machine, "-cpu", &q.cpu, "-m", &q.memory])
        .args(["-smp", &board.cpus.to_string()])
        .args(["-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot"])
        .arg("-kernel")
        .arg(&built.hypervisor)
        .arg("-device")
        .arg(format!("guest-loader,addr={:#x},initrd={}", q.bundle_addr, built.bundle.display()))
        .args(&built.sample.qemu_args);
    Ok(cmd)
}

/// A QEMU whose console lines arrive on a channel; killed when dropped.
pub struct Session {
    child: Child,
    lines: Receiver<String>,
    pub log: Vec<String>,
    pub started: Instant,
}

impl Session {
    pub fn start(built: &Built) -> Result<Session, String> {
        let mut cmd = command(built)?;
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let started = Instant::now();
        let mut child = cmd.spawn().map_err(|e| format!("starting QEMU: {e}"))?;
        let out = child.stdout.take().ok_or("no QEMU stdout")?;
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line.trim_end_matches('\r').to_string()).is_err() {
                    break;
                }
            }
        });
        Ok(Session { child, lines: rx, log: Vec::new(), started })
    }

    /// Reads console lines until `done` holds for one (returns it) or the
    /// timeout passes or QEMU exits (returns None).
    pub fn wait_for(&mut self, timeout: Duration, mut done: impl FnMut(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if done(&line) {
                        return Some(line);
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Waits for QEMU to exit by itself (a power-off), up to `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        self.wait_for(timeout, |_| false);
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn transcript(&self) -> String {
        self.log.join("\n")
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
