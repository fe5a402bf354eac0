//! The QEMU machine the interop run boots: Xen 4.17 with dom0 through
//! QEMU's guest-loader (the arguments of `cargo xtask bench boot`), plus a
//! virtio keyboard and tablet driven over QMP, and a 9p share through
//! which the host runs commands in dom0 and collects files.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

pub const MACHINE: &str = "virt,virtualization=on,gic-version=3";
pub const CPU: &str = "cortex-a57";
pub const SMP: &str = "2";
pub const MEM: &str = "1024";
pub const XEN_ARGS: &str = "dom0_mem=512M console=dtuart dtuart=/pl011@9000000";
pub const DOM0_ARGS: &str = "console=hvc0";

/// One line of the console and when it arrived.
pub struct Line {
    pub at: Instant,
    pub text: String,
}

/// A running QEMU; killed when dropped.
pub struct Machine {
    child: Child,
    lines: Receiver<Line>,
    pub log: Vec<Line>,
    pub started: Instant,
    share: PathBuf,
    qmp: Option<UnixStream>,
    qmp_path: PathBuf,
    next_cmd: u32,
    /// Echo console lines to stderr as they arrive.
    pub echo: bool,
}

impl Machine {
    pub fn start(xen: &Path, kernel: &Path, initrd: &Path, work: &Path, echo: bool) -> Result<Machine, String> {
        let share = work.join("share");
        if share.exists() {
            std::fs::remove_dir_all(&share).map_err(|e| e.to_string())?;
        }
        std::fs::create_dir_all(share.join("cmd")).map_err(|e| e.to_string())?;
        let qmp_path = work.join("qmp.sock");
        let _ = std::fs::remove_file(&qmp_path);
        let mut cmd = Command::new(crate::toolchain::qemu()?);
        cmd.args(["-machine", MACHINE, "-cpu", CPU, "-smp", SMP, "-m", MEM])
            .args(["-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot", "-nic", "none"])
            .arg("-kernel")
            .arg(xen)
            .args(["-append", XEN_ARGS])
            .arg("-device")
            .arg(format!("guest-loader,addr=0x49000000,kernel={},bootargs={DOM0_ARGS}", kernel.display()))
            .arg("-device")
            .arg(format!("guest-loader,addr=0x50000000,initrd={}", initrd.display()))
            // virtio-input needs a virtio 1.0 transport (QEMU's virtio-mmio
            // defaults to the legacy one, which the driver ignores silently).
            .args(["-global", "virtio-mmio.force-legacy=false"])
            .args(["-device", "virtio-keyboard-device", "-device", "virtio-tablet-device"])
            .arg("-fsdev")
            .arg(format!("local,id=share,path={},security_model=none", share.display()))
            .args(["-device", "virtio-9p-device,fsdev=share,mount_tag=host"])
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", qmp_path.display()));
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let started = Instant::now();
        let mut child = cmd.spawn().map_err(|e| format!("starting QEMU: {e}"))?;
        let out = child.stdout.take().ok_or("no QEMU stdout")?;
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(out);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let text = String::from_utf8_lossy(&buf).trim_end_matches(['\r', '\n']).to_string();
                if tx.send(Line { at: Instant::now(), text }).is_err() {
                    break;
                }
            }
        });
        Ok(Machine { child, lines: rx, log: Vec::new(), started, share, qmp: None, qmp_path, next_cmd: 1, echo })
    }

    pub fn share(&self) -> &Path {
        &self.share
    }

    fn take(&mut self, l: Line) {
        if self.echo {
            eprintln!("{:8.3} {}", (l.at - self.started).as_secs_f64(), l.text);
        }
        self.log.push(l);
    }

    /// Reads console lines until `done` holds for one (returns its index
    /// in `log`), the timeout passes or QEMU exits (None).
    pub fn wait_for(&mut self, timeout: Duration, mut done: impl FnMut(&str) -> bool) -> Option<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(l) => {
                    let hit = done(&l.text);
                    self.take(l);
                    if hit {
                        return Some(self.log.len() - 1);
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Takes whatever lines have arrived, without waiting.
    pub fn drain(&mut self) {
        while let Ok(l) = self.lines.try_recv() {
            self.take(l);
        }
    }

    /// Waits for a line containing `needle` that arrives after `from`
    /// (an index into `log`), looking at lines already read first.
    pub fn expect_after(&mut self, from: usize, needle: &str, timeout: Duration) -> Option<usize> {
        if let Some(i) = self.log.iter().skip(from).position(|l| l.text.contains(needle)) {
            return Some(from + i);
        }
        self.wait_for(timeout, |l| l.contains(needle))
    }

    pub fn transcript(&self) -> String {
        self.log.iter().map(|l| l.text.as_str()).collect::<Vec<_>>().join("\n")
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
            if let Ok(Some(st)) = self.child.try_wait() {
                return Err(format!("QEMU exited ({st}) during dom0 command {n}"));
            }
            self.wait_for(Duration::from_millis(50), |_| false);
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
        let msg = format!("{{\"execute\":\"input-send-event\",\"arguments\":{{\"events\":[{}]}}}}\n", events.join(","));
        let s = self.qmp()?;
        s.write_all(msg.as_bytes()).map_err(|e| e.to_string())?;
        let r = read_reply(s)?;
        if r.contains("\"return\"") {
            Ok(())
        } else {
            Err(format!("QMP input-send-event: {r}"))
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

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
