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
    /// Board (must match the sample's); defaults to the sample's board.
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
    Run(Target),
    /// Build the hypervisor image and boot bundle of a sample.
    Build(Target),
    /// Host unit tests, then the integration tests that need QEMU or system
    /// programs (the `#[ignore]`d ones), installing what they need first.
    Test {
        /// Only the host unit tests.
        #[arg(long)]
        host_only: bool,
    },
    /// The cockpit compositor in a desktop window with two simulated guests
    /// (a cluster gauge and an IVI screen): the cockpit without a board.
    Sim,
    /// Print figures: the hypervisor's image size and first guest line
    /// (default), or `boot`: Linux boot time against no hypervisor and Xen 4.17.
    Bench {
        /// What to measure: `image` (default), `boot`, `pv` or `cockpit`.
        #[arg(default_value = "image")]
        what: String,
        /// Runs to measure (the median is printed).
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// Stock Linux frontends in a domU on upstream Xen driving our PV
    /// backends in dom0, under QEMU: input, display, sound, backend restart.
    Interop(xtask::interop::Args),
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Sums cargo test's per-binary results into one closing line.
#[derive(Default)]
struct Tally {
    passed: u64,
    failed: u64,
}

impl Tally {
    /// Runs `cmd`, echoing its output, and adds up its `test result:` lines.
    fn run(&mut self, cmd: &mut Command) -> Result<bool, String> {
        use std::io::{BufRead, BufReader};
        let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().map_err(|e| e.to_string())?;
        let out = child.stdout.take().ok_or("no stdout")?;
        for line in BufReader::new(out).lines() {
            let line = line.map_err(|e| e.to_string())?;
            println!("{line}");
            if let Some(rest) = line.strip_prefix("test result: ") {
                let num = |word: &str| -> u64 {
                    rest.split(';')
                        .find_map(|part| part.trim().strip_suffix(word).and_then(|n| n.trim().rsplit(' ').next()?.parse().ok()))
                        .unwrap_or(0)
                };
                self.passed += num(" passed");
                self.failed += num(" failed");
            }
        }
        Ok(child.wait().map_err(|e| e.to_string())?.success())
    }

    fn print(&self) {
        println!("tests: {} passed, {} failed", self.passed, self.failed);
    }
}

fn run(cmd: Cmd) -> Result<(), String> {
    match cmd {
        Cmd::Run(t) => {
            let built = artifacts::build(&t.sample, t.board.as_deref(), t.profile.as_deref())?;
            eprintln!("xtask: booting {} on {} (Ctrl-C quits)", built.sample.name, built.sample.board.name);
            let st = qemu::command(&built)?.status().map_err(|e| e.to_string())?;
            if st.success() {
                Ok(())
            } else {
                Err(format!("QEMU exited with {st}"))
            }
        }
        Cmd::Build(t) => {
            let built = artifacts::build(&t.sample, t.board.as_deref(), t.profile.as_deref())?;
            println!("hypervisor: {}", built.hypervisor.display());
            println!("bundle:     {}", built.bundle.display());
            Ok(())
        }
        Cmd::Test { host_only } => {
            let root = artifacts::root();
            // Everything the tests build against or run (C libraries, QEMU,
            // the cross toolchain) comes from the list CI installs too.
            xtask::toolchain::ensure_listed_packages(&root.join(".ci/apt-packages"))?;
            let mut tally = Tally::default();
            let ok = tally.run(cargo().current_dir(&root).args(["test", "--workspace"]))?;
            if !ok || host_only {
                tally.print();
                return if ok { Ok(()) } else { Err("host tests failed".into()) };
            }
            xtask::toolchain::cross_cargo()?;
            xtask::toolchain::qemu()?;
            // Tests marked #[ignore] need QEMU or system programs: run them
            // one at a time (QEMU's TCG vCPUs want the cores).
            let ok = tally.run(cargo().current_dir(&root).args(["test", "--workspace", "--", "--ignored", "--test-threads=1"]))?;
            tally.print();
            if ok {
                Ok(())
            } else {
                Err("integration tests (QEMU, system programs) failed".into())
            }
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
            // The PV devices over the loopback transport: ring round trips,
            // audio CPU cost, display flips (pv-backends/pv-bench).
            "pv" => {
                let st = cargo().current_dir(artifacts::root()).args(["run", "--quiet", "--release", "-p", "pv-bench"]).status().map_err(|e| e.to_string())?;
                if st.success() { Ok(()) } else { Err("pv-bench failed".into()) }
            }
            // The compositor against pixman, per operation (cockpit/bench).
            "cockpit" => {
                let st = cargo().current_dir(artifacts::root()).args(["run", "--quiet", "--release", "-p", "cockpit-bench"]).status().map_err(|e| e.to_string())?;
                if st.success() { Ok(()) } else { Err("cockpit-bench failed".into()) }
            }
            other => Err(format!("unknown benchmark `{other}`: image, boot, pv, cockpit")),
        },
        Cmd::Interop(a) => xtask::interop::cli(a),
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
