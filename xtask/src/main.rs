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
    /// Host unit tests, then the QEMU integration tests.
    Test {
        /// Only the host unit tests.
        #[arg(long)]
        host_only: bool,
    },
    /// Print the hypervisor's image size and boot-time figures.
    Bench {
        /// Boots to measure (the median is printed).
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
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
            let st = cargo().current_dir(&root).args(["test", "--workspace"]).status().map_err(|e| e.to_string())?;
            if !st.success() {
                return Err("host tests failed".into());
            }
            if host_only {
                return Ok(());
            }
            // Provision before the tests run, so installs are not timed out.
            xtask::toolchain::cross_cargo()?;
            xtask::toolchain::qemu()?;
            let st = cargo()
                .current_dir(&root)
                .args(["test", "-p", "xtask", "--test", "qemu", "--", "--ignored", "--test-threads=1"])
                .status()
                .map_err(|e| e.to_string())?;
            if st.success() {
                Ok(())
            } else {
                Err("QEMU integration tests failed".into())
            }
        }
        Cmd::Bench { runs } => bench::boot(runs),
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
