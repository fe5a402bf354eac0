use clap::{Parser, Subcommand};
use std::process::{Command, ExitCode};
use xtask::{artifacts, bench, qemu, DEFAULT_SAMPLE};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Build, boot, test and benchmark the cockpit SDK")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct Target {
    /// Sample name under samples/, or a path to a system.toml.
    #[arg(long, default_value = DEFAULT_SAMPLE)]
    sample: String,
    /// Board to build for, instead of the sample's own (one of the same
    /// machine family, e.g. qemu-virt-gicv2 for a qemu-virt sample).
    #[arg(long)]
    board: Option<String>,
    /// Scheduler/vwfi profile from the board's BSP, instead of the sample's.
    #[arg(long)]
    profile: Option<String>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build and boot a sample on qemu-virt, console on this terminal.
    /// A power-off from the system controller (or of every domain) or Ctrl-C ends it.
    Run {
        #[command(flatten)]
        target: Target,
        /// Stop QEMU after this long from its start (`20s`, `2min`) and exit
        /// 0 if the machine ran until then or powered off cleanly. The console
        /// goes to stdout, so a script can read it (`| grep -q "beat 100"`).
        #[arg(long = "for", value_name = "DURATION", value_parser = humantime::parse_duration)]
        run_for: Option<std::time::Duration>,
        /// No window for a sample with screens (the cockpit): the console
        /// only. Without a desktop (no DISPLAY), this is the default.
        #[arg(long)]
        headless: bool,
    },
    /// Build the hypervisor image and boot bundle of a sample.
    Build(Target),
    /// Build what the board's U-Boot boots: a FIT (hypervisor, bundle,
    /// device tree), its boot scripts, a manifest, and an SD-card disk image
    /// (cockpit.img) holding them.
    Image {
        #[arg(long)]
        board: String,
        /// Sample name under samples/, or a path to a system.toml.
        #[arg(long, default_value = DEFAULT_SAMPLE)]
        sample: String,
        #[arg(long)]
        profile: Option<String>,
    },
    /// Write a sample's image for a board to an SD card (or other block
    /// device), an image file, or a TFTP directory: checked, confirmed,
    /// synced and read back.
    Flash(xtask::flash::Args),
    /// Host unit tests, then the integration tests that need QEMU or system
    /// programs (the `#[ignore]`d ones), installing what they need first.
    Test {
        /// Only the host unit tests.
        #[arg(long)]
        host_only: bool,
    },
    /// Check each board's board.toml (or --board's) against its real device
    /// trees: CPUs, GIC, console UART, RAM, timer, firmware's memory.
    CheckBoard {
        #[arg(long)]
        board: Option<String>,
    },
    /// The cockpit compositor in a desktop window with two simulated guests
    /// (a cluster gauge and an IVI screen): the cockpit without a board.
    Sim,
    /// Print figures: the hypervisor's image size and first guest line
    /// (default), or `boot`: Linux boot time against no hypervisor and Xen 4.17.
    Bench {
        /// What to measure: `image` (default), `boot`, `rtds`, `xen` (ours
        /// against Xen 4.17; `--runs` × 200 round trips), `pv`, `cockpit`
        /// `cockpit-boot` (the cockpit sample's power-on to first frames),
        /// `cockpit-load` (the cluster's frame times with the IVI idle and loaded) or
        /// `flash` (writing an image against dd).
        #[arg(default_value = "image")]
        what: String,
        /// Runs to measure (the median is printed).
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// Stock Linux frontends in a domU on upstream Xen driving our PV
    /// backends in dom0, under QEMU: input, display, sound, backend restart.
    Interop(xtask::interop::Args),
    /// Coverage-guided fuzzing (libFuzzer) of every parser a guest or a
    /// frontend reaches; all targets unless some are named.
    Fuzz {
        /// Targets to run (default: all).
        targets: Vec<String>,
        /// Executions per target.
        #[arg(long, default_value_t = 1_000_000)]
        runs: u64,
    },
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Adds up cargo test's per-binary results, and names every failure, for
/// one closing summary.
#[derive(Default)]
struct Tally {
    passed: u64,
    failed: u64,
    /// `binary: test` of each failed test.
    failures: Vec<String>,
    /// cargo invocations that failed without a failing test to show for it
    /// (a build error, a test binary that crashed).
    broken: Vec<String>,
}

impl Tally {
    /// Runs `cmd` (a `cargo test`), echoing its output, and adds up its
    /// `test result:` lines. stdout and stderr share one pipe, so a failed
    /// test is named with the binary cargo said it was running.
    fn run(&mut self, what: &str, cmd: &mut Command) -> Result<(), String> {
        use std::io::{BufRead, BufReader};
        let (reader, writer) = std::io::pipe().map_err(|e| e.to_string())?;
        cmd.stdout(writer.try_clone().map_err(|e| e.to_string())?).stderr(writer);
        let mut child = cmd.spawn().map_err(|e| e.to_string())?;
        // The Command holds our copies of the write end: they must go, or
        // the read below never ends.
        cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        let (failed_before, mut binary) = (self.failed, String::from("?"));
        // The names under the last `failures:` heading of a binary's output
        // (its own lines even when other output broke the `test x ... FAILED`
        // line apart).
        let mut listed: Vec<String> = Vec::new();
        for line in BufReader::new(reader).lines() {
            let line = line.map_err(|e| e.to_string())?;
            println!("{line}");
            let t = line.trim();
            if let Some(rest) = t.strip_prefix("Running ").or_else(|| t.strip_prefix("Doc-tests ")) {
                binary = rest.split(" (").next().unwrap_or(rest).to_string();
            } else if t == "failures:" {
                listed.clear();
            } else if line.starts_with("    ") && !t.is_empty() && !t.contains(' ') {
                listed.push(t.to_string());
            } else if let Some(rest) = t.strip_prefix("test result: ") {
                if rest.starts_with("FAILED") {
                    self.failures.extend(listed.drain(..).map(|n| format!("{binary}: {n}")));
                }
                listed.clear();
                let num = |word: &str| -> u64 {
                    rest.split(';')
                        .find_map(|part| part.trim().strip_suffix(word).and_then(|n| n.trim().rsplit(' ').next()?.parse().ok()))
                        .unwrap_or(0)
                };
                self.passed += num(" passed");
                self.failed += num(" failed");
            }
        }
        let st = child.wait().map_err(|e| e.to_string())?;
        if !st.success() && self.failed == failed_before {
            self.broken.push(format!("{what}: cargo test exited with {st} (a build error or a crashed test binary: see above)"));
        }
        Ok(())
    }

    fn ok(&self) -> bool {
        self.failed == 0 && self.broken.is_empty()
    }

    fn print(&self) {
        if !self.ok() {
            println!("\nfailed:");
            for f in self.failures.iter().chain(&self.broken) {
                println!("  {f}");
            }
        }
        println!("tests: {} passed, {} failed", self.passed, self.failed);
    }
}

/// Boots for `d`, the console on stdout. Success: the machine was still
/// running at the end, powered off cleanly, or whoever reads stdout has
/// closed it (`grep -q` found its line).
/// Runs `q` for `run_for`, or until QEMU exits (a power-off, Ctrl-C).
fn run_qemu(q: &qemu::QemuCommand, run_for: Option<std::time::Duration>) -> Result<(), String> {
    match run_for {
        Some(d) => run_for_a_while(q, d),
        None => {
            let st = q.command()?.status().map_err(|e| e.to_string())?;
            if st.success() { Ok(()) } else { Err(format!("QEMU exited with {st}")) }
        }
    }
}

fn run_for_a_while(q: &qemu::QemuCommand, d: std::time::Duration) -> Result<(), String> {
    use std::io::Write;
    let mut con = q.spawn()?;
    let deadline = con.started + d;
    let mut out = std::io::stdout().lock();
    loop {
        match con.next_line(deadline) {
            Ok(line) => {
                if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                    return Ok(());
                }
                con.log.clear();
                con.arrived.clear();
            }
            Err(qemu::Stop::Timeout(_)) => {
                eprintln!("xtask: ran for {}; stopping QEMU", humantime::format_duration(d));
                return Ok(());
            }
            Err(stop) if stop.is_clean_exit() => return Ok(()),
            Err(stop) => return Err(stop.to_string()),
        }
    }
}

fn run(cmd: Cmd) -> Result<(), String> {
    match cmd {
        Cmd::Run { target: t, run_for, headless } => {
            let built = artifacts::build(&t.sample, t.board.as_deref(), t.profile.as_deref())?;
            let mut q = qemu::QemuCommand::for_built(&built)?;
            if q.has_screen() && !headless {
                if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some() {
                    xtask::toolchain::ensure_debian_packages(&["qemu-system-gui"], "QEMU's window for the sample's screens")?;
                    q.window();
                    eprintln!("xtask: the screens are tabs of QEMU's window; the mouse is a finger on the IVI screen");
                } else {
                    eprintln!("xtask: no desktop (DISPLAY is unset): running headless");
                }
            }
            match run_for {
                Some(d) => eprintln!("xtask: booting {} on {} for {}", built.sample.name, built.sample.board.name, humantime::format_duration(d)),
                None => eprintln!("xtask: booting {} on {} (Ctrl-C quits)", built.sample.name, built.sample.board.name),
            }
            run_qemu(&q, run_for)
        }
        Cmd::Build(t) => {
            let built = artifacts::build(&t.sample, t.board.as_deref(), t.profile.as_deref())?;
            println!("hypervisor: {}", built.hypervisor.display());
            println!("bundle:     {}", built.bundle.display());
            Ok(())
        }
        Cmd::Image { board, sample, profile } => {
            let img = xtask::image::build(&sample, &board, profile.as_deref())?;
            let m = &img.manifest;
            println!("{} on {} ({}), revision {}", m.sample, m.board, m.profile, m.revision);
            println!("  hypervisor at {:#x}, device tree below {:#x}, bundle at {:#x}, image staged at {:#x}", img.layout.hypervisor, img.layout.dtb_end, img.layout.bundle, img.layout.staging);
            for (name, sum) in &m.parts {
                println!("  {name:<15} sha256 {sum}");
            }
            println!("disk image: {}", img.disk.display());
            println!("files:      {}/{{cockpit.itb,boot.scr,boot-tftp.scr,manifest.toml}}", img.dir.display());
            Ok(())
        }
        Cmd::Flash(a) => xtask::flash::run(&a, &xtask::flash::System::host()),
        Cmd::Test { host_only } => {
            let root = artifacts::root();
            // Everything the tests build against or run (C libraries, QEMU,
            // the cross toolchain) comes from the list CI installs too.
            xtask::toolchain::ensure_listed_packages(&root.join(".ci/apt-packages"))?;
            let mut tally = Tally::default();
            // Every test binary runs even when one fails.
            tally.run("host tests", cargo().current_dir(&root).args(["test", "--workspace", "--no-fail-fast"]))?;
            if !host_only {
                xtask::toolchain::cross_cargo()?;
                xtask::toolchain::qemu()?;
                // Tests marked #[ignore] need QEMU or system programs: run
                // them one at a time (QEMU's TCG vCPUs want the cores).
                tally.run(
                    "integration tests",
                    cargo().current_dir(&root).args(["test", "--workspace", "--no-fail-fast", "--", "--ignored", "--test-threads=1"]),
                )?;
            }
            tally.print();
            if tally.ok() { Ok(()) } else { Err("some tests failed (listed above)".into()) }
        }
        Cmd::CheckBoard { board } => {
            let bsp = artifacts::root().join("bsp");
            let names: Vec<String> = match board {
                Some(b) => vec![b],
                None => {
                    let mut v: Vec<String> = std::fs::read_dir(&bsp)
                        .map_err(|e| format!("{}: {e}", bsp.display()))?
                        .flatten()
                        .filter(|e| e.path().join("board.toml").is_file())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect();
                    v.sort();
                    v
                }
            };
            let mut bad = 0;
            for name in names {
                let b = hv_config::load_board(&bsp, &name).map_err(|e| e.to_string())?;
                for (label, dtb) in xtask::board_facts::trees(&b)? {
                    let found = xtask::board_facts::check(&b, &dtb);
                    println!("{name}: {label}: {}", if found.is_empty() { "matches" } else { "DISAGREES" });
                    for f in &found {
                        println!("  {f}");
                    }
                    bad += found.len();
                }
            }
            if bad == 0 { Ok(()) } else { Err(format!("{bad} board fact(s) disagree with the device trees")) }
        }
        Cmd::Sim => {
            let st = cargo()
                .current_dir(artifacts::root())
                .args(["run", "--quiet", "--release", "-p", "cockpit", "--", "sim"])
                .status()
                .map_err(|e| e.to_string())?;
            if st.success() { Ok(()) } else { Err(format!("the simulator exited with {st}")) }
        }
        Cmd::Bench { what, runs } => match what.as_str() {
            "image" => bench::boot(runs),
            "boot" => xtask::bench_boot::run(runs),
            // Absolute CPU shares under the RTDS scheduler (the test judges
            // only what noise cannot change: budgets and ratios).
            "rtds" => bench::rtds(runs),
            // Our hypervisor against Xen 4.17: event channel and xenstore
            // round trips, power-on to the PV devices connected.
            "xen" => bench::xen(runs * 200),
            // The PV devices over the loopback transport: ring round trips,
            // audio CPU cost, display flips (pv-backends/pv-bench).
            "pv" => {
                let st = cargo().current_dir(artifacts::root()).args(["run", "--quiet", "--release", "-p", "pv-bench"]).status().map_err(|e| e.to_string())?;
                if st.success() { Ok(()) } else { Err("pv-bench failed".into()) }
            }
            // Writing an image: ours (with read-back) against dd.
            "flash" => bench::flash(runs, "linux-side-by-side"),
            // The cockpit sample: power-on to each guest's first frame.
            "cockpit-boot" => bench::cockpit_boot(runs),
            // The cockpit sample: the cluster's frame times, IVI idle and loaded.
            "cockpit-load" => bench::cockpit_load(30),
            // The compositor against pixman, per operation (cockpit/bench).
            "cockpit" => {
                let st = cargo().current_dir(artifacts::root()).args(["run", "--quiet", "--release", "-p", "cockpit-bench"]).status().map_err(|e| e.to_string())?;
                if st.success() { Ok(()) } else { Err("cockpit-bench failed".into()) }
            }
            other => Err(format!("unknown benchmark `{other}`: image, boot, rtds, xen, pv, cockpit, cockpit-boot, cockpit-load, flash")),
        },
        Cmd::Interop(a) => xtask::interop::cli(a),
        Cmd::Fuzz { targets, runs } => {
            let outcomes = xtask::fuzz::run(&targets, runs)?;
            let failed: Vec<String> = outcomes.into_iter().filter_map(|o| o.failure).collect();
            if failed.is_empty() { Ok(()) } else { Err(failed.join("\n\n")) }
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
