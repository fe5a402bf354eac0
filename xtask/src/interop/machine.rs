//! The QEMU machine the interop run boots: Xen 4.17 with dom0 through
//! QEMU's guest-loader (the arguments of `cargo xtask bench boot`), plus a
//! virtio keyboard and tablet driven over QMP, and a 9p share through
//! which the host runs commands in dom0 and collects files.

use crate::qemu::{Console, QemuCommand};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A running QEMU; killed when dropped. Its console is `con`.
pub struct Machine {
    pub con: Console,
    share: PathBuf,
    qmp: Option<UnixStream>,
    qmp_path: PathBuf,
    next_cmd: u32,
}

impl Machine {
    pub fn start(on: Option<&crate::qemu::Machine>, xen: &Path, kernel: &Path, initrd: &Path, work: &Path, echo: bool) -> Result<Machine, String> {
        let q = match on {
            Some(m) => QemuCommand::xen_on(m, xen, kernel, initrd),
            None => QemuCommand::xen(xen, kernel, initrd),
        };
        Self::spawn(q, work, echo)
    }

    /// Our hypervisor with the interop sample's bundle, and the same
    /// devices and QMP socket as the Xen run (`spawn`; the sample passes
    /// their virtio-mmio slots through to the driver domain).
    pub fn start_ours(built: &crate::artifacts::Built, work: &Path, echo: bool) -> Result<Machine, String> {
        Self::spawn(QemuCommand::for_built(built)?, work, echo)
    }

    /// A sample that brings its own devices (`[qemu] args`; the cockpit's
    /// screens, tablet and keyboard), plus the 9p share after them and QMP.
    pub fn start_sample(built: &crate::artifacts::Built, work: &Path, echo: bool) -> Result<Machine, String> {
        Self::start_sample_on(built, work, echo, None)
    }

    /// As [`start_sample`](Self::start_sample), with the screens in QEMU's
    /// window on X display `x_display`, as `cargo xtask run` shows them.
    pub fn start_sample_in_window(built: &crate::artifacts::Built, work: &Path, x_display: &str) -> Result<Machine, String> {
        Self::start_sample_on(built, work, false, Some(x_display))
    }

    /// A Linux kernel alone on QEMU's plain `virt` (two Cortex-A57s, 1 GiB,
    /// no hypervisor) with `devices`, the 9p share and QMP.
    pub fn start_linux(kernel: &Path, initrd: &Path, devices: &[&str], work: &Path, echo: bool) -> Result<Machine, String> {
        let (share, qmp_path) = Self::prepare(work)?;
        let mut q = QemuCommand::new(&crate::qemu::Machine::linux_test_bed());
        q.kernel(kernel)
            .initrd(initrd)
            .append("console=ttyAMA0 rdinit=/init")
            .modern_virtio_mmio();
        for d in devices {
            q.device(*d);
        }
        q.share_9p("host", &share).qmp_socket(&qmp_path);
        let mut con = q.spawn()?;
        con.echo = echo;
        Ok(Machine { con, share, qmp: None, qmp_path, next_cmd: 1 })
    }

    fn start_sample_on(built: &crate::artifacts::Built, work: &Path, echo: bool, x_display: Option<&str>) -> Result<Machine, String> {
        let (share, qmp_path) = Self::prepare(work)?;
        let mut q = QemuCommand::for_built(built)?;
        if let Some(d) = x_display {
            q.window_on_x(d);
        }
        q.share_9p("host", &share).qmp_socket(&qmp_path);
        let mut con = q.spawn()?;
        con.echo = echo;
        Ok(Machine { con, share, qmp: None, qmp_path, next_cmd: 1 })
    }

    /// Adds what both runs drive (QEMU's virtio keyboard, tablet and 9p
    /// share, in that order, and QMP) and starts QEMU.
    fn spawn(mut q: QemuCommand, work: &Path, echo: bool) -> Result<Machine, String> {
        let (share, qmp_path) = Self::prepare(work)?;
        q.modern_virtio_mmio()
            .device("virtio-keyboard-device")
            .device("virtio-tablet-device")
            .share_9p("host", &share)
            .qmp_socket(&qmp_path);
        let mut con = q.spawn()?;
        con.echo = echo;
        Ok(Machine { con, share, qmp: None, qmp_path, next_cmd: 1 })
    }

    fn prepare(work: &Path) -> Result<(PathBuf, PathBuf), String> {
        let share = work.join("share");
        if share.exists() {
            std::fs::remove_dir_all(&share).map_err(|e| e.to_string())?;
        }
        std::fs::create_dir_all(share.join("cmd")).map_err(|e| e.to_string())?;
        let qmp_path = work.join("qmp.sock");
        let _ = std::fs::remove_file(&qmp_path);
        Ok((share, qmp_path))
    }

    pub fn share(&self) -> &Path {
        &self.share
    }

    /// Runs a shell script in dom0 through the share; returns its exit
    /// status and output. Console lines keep flowing into `log` meanwhile.
    pub fn dom0(&mut self, script: &str, timeout: Duration) -> Result<(i32, String), String> {
        let n = self.next_cmd;
        self.next_cmd += 1;
        let dir = self.share.join("cmd");
        let tmp = dir.join(format!("{n}.tmp-host"));
        std::fs::write(&tmp, script).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, dir.join(format!("{n}.sh"))).map_err(|e| e.to_string())?;
        let rc = dir.join(format!("{n}.rc"));
        let deadline = Instant::now() + timeout;
        while !rc.exists() {
            if Instant::now() > deadline {
                return Err(format!("dom0 did not finish command {n} within {timeout:?}: {script}"));
            }
            if let Some(st) = self.con.try_exit() {
                return Err(format!("QEMU exited ({st}) during dom0 command {n}"));
            }
            self.con.pause(Duration::from_millis(50));
        }
        let code = std::fs::read_to_string(&rc).map_err(|e| e.to_string())?.trim().parse().unwrap_or(-1);
        let out = std::fs::read_to_string(dir.join(format!("{n}.out"))).unwrap_or_default();
        Ok((code, out))
    }

    fn qmp(&mut self) -> Result<&mut UnixStream, String> {
        if self.qmp.is_none() {
            let mut s = UnixStream::connect(&self.qmp_path).map_err(|e| format!("QMP {}: {e}", self.qmp_path.display()))?;
            s.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
            read_reply(&mut s)?; // greeting
            s.write_all(b"{\"execute\":\"qmp_capabilities\"}\n").map_err(|e| e.to_string())?;
            let r = read_reply(&mut s)?;
            if !r.contains("\"return\"") {
                return Err(format!("QMP capabilities: {r}"));
            }
            self.qmp = Some(s);
        }
        Ok(self.qmp.as_mut().unwrap())
    }

    /// Sends input events (QMP `InputEvent` JSON objects) in one batch.
    pub fn input(&mut self, events: &[String]) -> Result<(), String> {
        self.execute("input-send-event", &format!("{{\"events\":[{}]}}", events.join(",")))
    }

    /// As `input`, to the input device bound to screen `device` (its QEMU
    /// id), as a click in that screen's window would go.
    pub fn input_on(&mut self, device: &str, events: &[String]) -> Result<(), String> {
        self.execute("input-send-event", &format!("{{\"device\":\"{device}\",\"events\":[{}]}}", events.join(",")))
    }

    /// What screen `device` (its QEMU id) shows, as a PPM file at `path`.
    pub fn screendump(&mut self, device: &str, path: &Path) -> Result<(), String> {
        let _ = std::fs::remove_file(path);
        self.execute("screendump", &format!("{{\"filename\":\"{}\",\"device\":\"{device}\"}}", path.display()))
    }

    fn execute(&mut self, command: &str, arguments: &str) -> Result<(), String> {
        let msg = format!("{{\"execute\":\"{command}\",\"arguments\":{arguments}}}\n");
        let s = self.qmp()?;
        s.write_all(msg.as_bytes()).map_err(|e| e.to_string())?;
        let r = read_reply(s)?;
        if r.contains("\"return\"") {
            Ok(())
        } else {
            Err(format!("QMP {command}: {r}"))
        }
    }
}

/// Reads one QMP reply, skipping asynchronous events.
fn read_reply(s: &mut UnixStream) -> Result<String, String> {
    let mut line = Vec::new();
    loop {
        let mut b = [0u8; 1];
        match s.read(&mut b) {
            Ok(0) => return Err("QMP closed".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("QMP: {e}")),
        }
        if b[0] != b'\n' {
            line.push(b[0]);
            continue;
        }
        let text = String::from_utf8_lossy(&line).into_owned();
        line.clear();
        if text.contains("\"event\"") {
            continue;
        }
        return Ok(text);
    }
}

/// QMP input events, as JSON.
pub mod ev {
    pub fn key(qcode: &str, down: bool) -> String {
        format!("{{\"type\":\"key\",\"data\":{{\"down\":{down},\"key\":{{\"type\":\"qcode\",\"data\":\"{qcode}\"}}}}}}")
    }
    pub fn abs(axis: &str, value: i64) -> String {
        format!("{{\"type\":\"abs\",\"data\":{{\"axis\":\"{axis}\",\"value\":{value}}}}}")
    }
    pub fn btn(button: &str, down: bool) -> String {
        format!("{{\"type\":\"btn\",\"data\":{{\"down\":{down},\"button\":\"{button}\"}}}}")
    }
}
