//! The one place QEMU command lines are built, and the console of a running
//! QEMU for tests and benchmarks.
//!
//! Every machine starts from `-nodefaults`: QEMU adds no NIC, monitor, VGA
//! or serial port of its own, so no option ROM (`efi-virtio.rom` from the
//! `ipxe-qemu` package, which Debian only recommends) is ever needed. Each
//! caller names the devices it wants.

use crate::artifacts::Built;
use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The emulated board: `-machine`, `-cpu`, `-smp`, `-m`, and `-dtb` for a
/// machine that builds no device tree of its own.
#[derive(Clone, Debug)]
pub struct Machine {
    pub machine: String,
    pub cpu: String,
    pub smp: u32,
    pub memory: String,
    pub dtb: Option<std::path::PathBuf>,
}

impl Machine {
    /// QEMU's `virt` with EL2 and GICv3, two Cortex-A57s and 1 GiB: the test
    /// bed Xen 4.17 runs on for interop and `bench boot`.
    pub fn xen_test_bed() -> Machine {
        Machine { machine: "virt,virtualization=on,gic-version=3".into(), cpu: "cortex-a57".into(), smp: 2, memory: "1024".into(), dtb: None }
    }

    /// A plain `virt` with two Cortex-A57s and 1 GiB for Linux alone (the
    /// camera VM): the A57 is cheaper to emulate than `max`.
    pub fn linux_test_bed() -> Machine {
        Machine {
            cpu: "cortex-a57".into(),
            ..Machine::virt(2, "1024")
        }
    }

    /// A plain `virt` with no EL2 for a kernel that needs no hypervisor.
    pub fn virt(smp: u32, memory: &str) -> Machine {
        Machine { machine: "virt".into(), cpu: "max".into(), smp, memory: memory.into(), dtb: None }
    }

    /// What a sample's board says in its `[qemu]` section.
    pub fn for_board(board: &hv_config::Board) -> Result<Machine, String> {
        let q = board.qemu.as_ref().ok_or_else(|| {
            format!(
                "board {} cannot run under QEMU (no [qemu] section)",
                board.name
            )
        })?;
        // The board's device tree as Debian's kernel package ships it.
        let dtb = match &q.dtb {
            None => None,
            Some(rel) => Some(
                crate::debian::kernel_dtb(crate::debian::DebArch::of_board(&board.arch), rel)
                    .map_err(|e| format!("board {}: {e}", board.name))?,
            ),
        };
        Ok(Machine { machine: q.machine.clone(), cpu: q.cpu.clone(), smp: board.cpus, memory: q.memory.clone(), dtb })
    }
}

/// Writes the device tree `machine` builds to `out` (`-machine
/// dumpdtb=`: QEMU writes it and exits without running anything).
pub fn dump_dtb(machine: &Machine, out: &Path) -> Result<(), String> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let _ = std::fs::remove_file(out);
    let mut m = machine.clone();
    // A comma in a -machine value is written twice.
    m.machine = format!("{},dumpdtb={}", m.machine, option_path(out)?);
    let res = QemuCommand::new(&m).command()?.output().map_err(|e| e.to_string())?;
    if !res.status.success() || !out.is_file() {
        return Err(format!("QEMU did not dump {}'s device tree: {}", machine.machine, String::from_utf8_lossy(&res.stderr).trim()));
    }
    Ok(())
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "-machine {} -cpu {} -smp {} -m {}", self.machine, self.cpu, self.smp, self.memory)
    }
}

/// Xen 4.17's command line on the test bed: its console on the PL011, dom0
/// with 512 MiB.
pub const XEN_ARGS: &str = "dom0_mem=512M console=dtuart dtuart=/pl011@9000000";
/// dom0's kernel command line: its console on Xen's.
pub const DOM0_ARGS: &str = "console=hvc0";
/// Where guest-loader puts dom0's kernel and initramfs for Xen.
const XEN_DOM0_KERNEL: u64 = 0x4900_0000;
const XEN_DOM0_INITRD: u64 = 0x5000_0000;

/// A path as the value of a QEMU sub-option, where a comma is written twice.
fn option_path(p: &Path) -> Result<String, String> {
    Ok(p.to_str().ok_or(format!("{}: not UTF-8", p.display()))?.replace(',', ",,"))
}

/// Debian's U-Boot for QEMU's arm64 `virt` (package u-boot-qemu).
pub const UBOOT_QEMU_ARM64: &str = "/usr/lib/u-boot/qemu_arm64/u-boot.bin";
/// The same for QEMU's 32-bit `virt` (Cortex-A15s: qemu-virt-a15).
pub const UBOOT_QEMU_ARM: &str = "/usr/lib/u-boot/qemu_arm/u-boot.bin";

/// A QEMU command line under construction. Starts with no devices but the
/// board's own, a serial console on stdio, no display, and no reboot (a
/// guest reset ends QEMU).
#[derive(Clone, Debug)]
pub struct QemuCommand {
    machine: Machine,
    args: Vec<OsString>,
    /// The X display for `-display gtk`, when not the caller's own.
    x_display: Option<String>,
}

impl QemuCommand {
    pub fn new(machine: &Machine) -> QemuCommand {
        let mut c = QemuCommand { machine: machine.clone(), args: Vec::new(), x_display: None };
        c.push(["-nodefaults", "-no-reboot"]);
        // Host threads named after what they run ("CPU 3/TCG"): benchmarks
        // find an emulated CPU's thread by it.
        c.push(["-name", "cockpit,debug-threads=on"]);
        c.push(["-machine", &machine.machine, "-cpu", &machine.cpu]);
        c.push(["-smp", &machine.smp.to_string(), "-m", &machine.memory]);
        if let Some(dtb) = &machine.dtb {
            c.push(["-dtb".into(), dtb.as_os_str().to_owned()]);
        }
        c.push(["-display", "none", "-serial", "stdio"]);
        c
    }

    /// Shows the machine's screens in a desktop window (`-display gtk`,
    /// one tab per screen) instead of none.
    pub fn window(&mut self) -> &mut Self {
        if let Some(i) = self.args.windows(2).position(|w| w[0] == "-display" && w[1] == "none") {
            self.args[i + 1] = "gtk,show-tabs=on,zoom-to-fit=off".into();
        }
        self
    }

    /// As [`window`](Self::window), on X display `display` (a test's Xvfb).
    pub fn window_on_x(&mut self, display: &str) -> &mut Self {
        self.x_display = Some(display.into());
        self.window()
    }

    /// Whether the machine has a screen (a sample's GPU device).
    pub fn has_screen(&self) -> bool {
        self.args.iter().any(|a| a.to_string_lossy().starts_with("virtio-gpu"))
    }

    /// The machine booting a built sample: our hypervisor with its boot
    /// bundle, plus the sample's own `[qemu] args`.
    pub fn for_built(built: &Built) -> Result<QemuCommand, String> {
        Self::for_built_on(built, &Machine::for_board(&built.sample.board)?)
    }

    /// As `for_built`, on another machine than the board's (a benchmark
    /// comparing like with like).
    pub fn for_built_on(built: &Built, machine: &Machine) -> Result<QemuCommand, String> {
        let board = &built.sample.board;
        let q = board.qemu.as_ref().ok_or("board has no [qemu] section")?;
        let mut c = QemuCommand::new(machine);
        c.kernel(&built.hypervisor);
        match q.bundle_addr {
            Some(at) => c.guest_loader_initrd(at, &built.bundle),
            None => c.initrd(&built.bundle),
        };
        c.extra(&built.sample.qemu_args);
        Ok(c)
    }

    /// `board`'s machine with firmware: Debian's U-Boot for QEMU's `virt`
    /// (u-boot-qemu; arm64's, or arm's for a 32-bit board) boots from
    /// `disk`, a raw disk image on virtio-blk, as a board's U-Boot boots
    /// from its SD card.
    pub fn uboot_disk(board: &hv_config::Board, disk: &Path) -> Result<QemuCommand, String> {
        crate::toolchain::ensure_debian_packages(&["u-boot-qemu"], "U-Boot for QEMU's virt machine")?;
        let mut c = QemuCommand::new(&Machine::for_board(board)?);
        c.push(["-bios", if board.arch == "armv7a" { UBOOT_QEMU_ARM } else { UBOOT_QEMU_ARM64 }]);
        // QEMU's option syntax: a comma in a value is written twice.
        let drive = OsString::from(format!("if=none,format=raw,id=boot,file={}", option_path(disk)?));
        c.push([OsString::from("-drive"), drive]);
        c.device("virtio-blk-device,drive=boot");
        Ok(c)
    }

    /// A virtio-net NIC on QEMU's user network, whose TFTP server serves
    /// `dir` (the guest sees it at 10.0.2.2; DHCP gives 10.0.2.15).
    pub fn tftp_net(&mut self, dir: &Path) -> Result<&mut Self, String> {
        self.push([OsString::from("-netdev"), OsString::from(format!("user,id=net0,tftp={}", option_path(dir)?))]);
        Ok(self.device("virtio-net-device,netdev=net0"))
    }

    /// Xen 4.17 with `dom0` (kernel and initramfs) on the Xen test bed.
    pub fn xen(xen: &Path, kernel: &Path, initrd: &Path) -> QemuCommand {
        Self::xen_on(&Machine::xen_test_bed(), xen, kernel, initrd)
    }

    /// As `xen`, on another machine (a benchmark against our hypervisor
    /// on the board's machine).
    pub fn xen_on(machine: &Machine, xen: &Path, kernel: &Path, initrd: &Path) -> QemuCommand {
        let mut c = QemuCommand::new(machine);
        c.kernel(xen).append(XEN_ARGS);
        let mut k = OsString::from(format!("guest-loader,addr={XEN_DOM0_KERNEL:#x},kernel="));
        k.push(kernel);
        k.push(format!(",bootargs={DOM0_ARGS}"));
        c.device(k);
        c.guest_loader_initrd(XEN_DOM0_INITRD, initrd);
        c
    }

    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    fn push<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn kernel(&mut self, image: &Path) -> &mut Self {
        self.push(["-kernel".into(), image.as_os_str().to_owned()])
    }

    pub fn initrd(&mut self, initrd: &Path) -> &mut Self {
        self.push(["-initrd".into(), initrd.as_os_str().to_owned()])
    }

    pub fn append(&mut self, cmdline: &str) -> &mut Self {
        self.push(["-append", cmdline])
    }

    /// A blob placed in guest memory by QEMU's guest-loader and named in the
    /// device tree's `/chosen` as a module (what Xen and we boot from).
    pub fn guest_loader_initrd(&mut self, addr: u64, blob: &Path) -> &mut Self {
        let mut d = OsString::from(format!("guest-loader,addr={addr:#x},initrd="));
        d.push(blob);
        self.device(d)
    }

    pub fn device(&mut self, spec: impl Into<OsString>) -> &mut Self {
        self.push(["-device".into(), spec.into()])
    }

    /// virtio-mmio transports speak virtio 1.0 (virtio-input ignores the
    /// legacy transport QEMU picks by default).
    pub fn modern_virtio_mmio(&mut self) -> &mut Self {
        self.push(["-global", "virtio-mmio.force-legacy=false"])
    }

    /// A host directory shared with the guest over virtio-9p as `tag`.
    pub fn share_9p(&mut self, tag: &str, dir: &Path) -> &mut Self {
        let mut fsdev = OsString::from(format!("local,id={tag},security_model=none,path="));
        fsdev.push(dir);
        self.push(["-fsdev".into(), fsdev]);
        self.device(format!("virtio-9p-device,fsdev={tag},mount_tag={tag}"))
    }

    /// The human monitor on a Unix socket (`screendump`, `quit`).
    pub fn monitor_socket(&mut self, path: &Path) -> &mut Self {
        self.push(["-monitor".into(), unix_server(path)])
    }

    /// QMP on a Unix socket (input events).
    pub fn qmp_socket(&mut self, path: &Path) -> &mut Self {
        self.push(["-qmp".into(), unix_server(path)])
    }

    /// Arguments that no builder method covers (a sample's `[qemu] args`).
    pub fn extra<S: AsRef<std::ffi::OsStr>>(&mut self, args: &[S]) -> &mut Self {
        self.push(args.iter().map(|a| a.as_ref().to_owned()))
    }

    /// The command, with QEMU installed first if it is missing.
    pub fn command(&self) -> Result<Command, String> {
        let mut cmd = Command::new(crate::toolchain::qemu()?);
        cmd.args(&self.args);
        // Boards' own sound devices (the ZynqMP's DisplayPort audio) get no
        // host backend unless a caller names one.
        cmd.env("QEMU_AUDIO_DRV", "none");
        if let Some(d) = &self.x_display {
            cmd.env("DISPLAY", d).env_remove("WAYLAND_DISPLAY");
        }
        Ok(cmd)
    }

    /// Starts QEMU with its console captured line by line.
    pub fn spawn(&self) -> Result<Console, String> {
        Console::start(self.command()?)
    }
}

fn unix_server(path: &Path) -> OsString {
    let mut s = OsString::from("unix:");
    s.push(path);
    s.push(",server=on,wait=off");
    s
}

/// Why a console stopped giving lines.
#[derive(Clone, Debug)]
pub enum Stop {
    /// A wait gave up this long after QEMU started, QEMU still running.
    Timeout(Duration),
    /// QEMU is gone: its exit status (if known) and the end of its stderr.
    Exited { status: Option<ExitStatus>, stderr: Vec<String> },
}

impl Stop {
    /// QEMU ended by itself with status 0 (a guest powered the machine off).
    pub fn is_clean_exit(&self) -> bool {
        matches!(self, Stop::Exited { status: Some(s), .. } if s.success())
    }
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::Timeout(t) => write!(f, "gave up waiting {:.1} s after QEMU started; QEMU still running", t.as_secs_f64()),
            Stop::Exited { status, stderr } => {
                match status {
                    Some(s) => write!(f, "QEMU exited ({s})")?,
                    None => write!(f, "QEMU closed its console and did not exit")?,
                }
                if stderr.is_empty() {
                    write!(f, "; its stderr was empty")
                } else {
                    write!(f, "; its stderr ended with:\n  {}", stderr.join("\n  "))
                }
            }
        }
    }
}

/// Lines of QEMU's stderr kept for the report when it dies.
const STDERR_TAIL: usize = 20;

/// A running QEMU whose serial console arrives line by line; QEMU is killed
/// when this is dropped. Every wait returns as soon as QEMU exits.
pub struct Console {
    child: Child,
    lines: Receiver<String>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    /// Console lines read so far, and when each arrived.
    pub log: Vec<String>,
    pub arrived: Vec<Instant>,
    pub started: Instant,
    /// Why the last wait that gave up stopped.
    pub stopped: Option<Stop>,
    exited: Option<ExitStatus>,
    /// Echo lines to stderr as they arrive, with seconds since the start.
    pub echo: bool,
}

impl Console {
    /// QEMU's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn start(mut cmd: Command) -> Result<Console, String> {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd.spawn().map_err(|e| format!("starting QEMU: {e}"))?;
        let out = child.stdout.take().ok_or("no QEMU stdout")?;
        let err = child.stderr.take().ok_or("no QEMU stderr")?;
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            // Console bytes need not be UTF-8 (a guest may print anything).
            let mut r = BufReader::new(out);
            let mut buf = Vec::new();
            while matches!(r.read_until(b'\n', &mut buf), Ok(n) if n > 0) {
                let text = String::from_utf8_lossy(&buf).trim_end_matches(['\r', '\n']).to_string();
                buf.clear();
                if tx.send(text).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let tail = stderr.clone();
        std::thread::spawn(move || {
            // Passed on as it comes (QEMU's warnings are for the user too),
            // and the last lines kept for the report.
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("qemu: {line}");
                let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
                if t.len() == STDERR_TAIL {
                    t.pop_front();
                }
                t.push_back(line);
            }
        });
        Ok(Console {
            child,
            lines: rx,
            stderr,
            log: Vec::new(),
            arrived: Vec::new(),
            started,
            stopped: None,
            exited: None,
            echo: false,
        })
    }

    /// Starts a built sample under QEMU.
    pub fn start_built(built: &Built) -> Result<Console, String> {
        QemuCommand::for_built(built)?.spawn()
    }

    fn take(&mut self, line: String) {
        let now = Instant::now();
        if self.echo {
            eprintln!("{:8.3} {line}", (now - self.started).as_secs_f64());
        }
        self.log.push(line);
        self.arrived.push(now);
    }

    /// QEMU's exit, once its console has closed: waits briefly for the
    /// process, then collects its stderr tail.
    fn exit_report(&mut self) -> Stop {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.exited.is_none() && Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(st)) => self.exited = Some(st),
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => break,
            }
        }
        // Let the stderr reader finish the last lines.
        std::thread::sleep(Duration::from_millis(50));
        let stderr = self.stderr.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect();
        Stop::Exited { status: self.exited, stderr }
    }

    /// The next console line, or why there is none before `deadline`.
    pub fn next_line(&mut self, deadline: Instant) -> Result<&str, Stop> {
        if let Some(stop @ Stop::Exited { .. }) = &self.stopped {
            return Err(stop.clone());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(left) {
            Ok(line) => {
                self.take(line);
                Ok(self.log.last().map(String::as_str).unwrap_or(""))
            }
            Err(RecvTimeoutError::Timeout) => Err(Stop::Timeout(deadline.saturating_duration_since(self.started))),
            Err(RecvTimeoutError::Disconnected) => {
                let stop = self.exit_report();
                self.stopped = Some(stop.clone());
                Err(stop)
            }
        }
    }

    /// Reads console lines until `done` holds for one (returns it), or the
    /// timeout passes, or QEMU exits (None at once; `stopped` says why and
    /// the transcript ends with it).
    pub fn wait_for(&mut self, timeout: Duration, done: impl FnMut(&str) -> bool) -> Option<String> {
        self.wait_index(timeout, done).map(|i| self.log[i].clone())
    }

    /// As `wait_for`, returning the line's index in `log`.
    pub fn wait_index(&mut self, timeout: Duration, mut done: impl FnMut(&str) -> bool) -> Option<usize> {
        let deadline = Instant::now() + timeout;
        if matches!(self.stopped, Some(Stop::Timeout(_))) {
            self.stopped = None;
        }
        loop {
            match self.next_line(deadline) {
                Ok(line) => {
                    if done(line) {
                        return Some(self.log.len() - 1);
                    }
                }
                Err(stop) => {
                    self.stopped = Some(stop);
                    return None;
                }
            }
        }
    }

    /// Waits for a line containing `needle` at or after index `from` of
    /// `log`, looking at lines already read first.
    pub fn expect_after(&mut self, from: usize, needle: &str, timeout: Duration) -> Option<usize> {
        if let Some(i) = self.log.iter().skip(from).position(|l| l.contains(needle)) {
            return Some(from + i);
        }
        self.wait_index(timeout, |l| l.contains(needle))
    }

    /// Takes whatever lines have arrived, without waiting.
    pub fn drain(&mut self) {
        while let Ok(l) = self.lines.try_recv() {
            self.take(l);
        }
    }

    /// Reads lines for `d` (fewer if QEMU exits meanwhile).
    pub fn pause(&mut self, d: Duration) {
        self.wait_index(d, |_| false);
    }

    /// Waits up to `timeout` for QEMU to exit by itself with status 0 (a
    /// power-off).
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        self.wait_index(timeout, |_| false);
        self.stopped.as_ref().is_some_and(Stop::is_clean_exit)
    }

    /// Whether QEMU has exited, with its status.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// Every line so far, then why the last wait stopped, if it did.
    pub fn transcript(&self) -> String {
        let mut t = self.log.join("\n");
        if let Some(stop) = &self.stopped {
            t.push_str(&format!("\n--- {stop}"));
        }
        t
    }

    /// The transcript with each line's arrival time, for files.
    pub fn timed_transcript(&self) -> String {
        self.log
            .iter()
            .zip(&self.arrived)
            .map(|(l, at)| format!("{:8.3} {l}\n", (*at - self.started).as_secs_f64()))
            .collect()
    }

    /// Stops QEMU now.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        if let Ok(st) = self.child.wait() {
            self.exited.get_or_insert(st);
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.kill();
    }
}
