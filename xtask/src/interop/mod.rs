//! `cargo xtask interop --hypervisor xen-4.17`: our PV backends serving
//! unmodified Linux frontends on upstream Xen, under QEMU.
//!
//! Everything comes from Debian's arm64 archive (Xen 4.17, its toolstack,
//! the kernel, busybox, alsa-utils) plus our programs cross-built for
//! `aarch64-unknown-linux-gnu` (pv-backendd and the test probe in
//! `samples/interop/probe`). One boot of Xen runs every check: dom0 starts
//! xenstored, xen-init-dom0, xenconsoled and pv-backendd, `xl create`s a
//! domU whose vkbd, vfb, vsnd and vdispl devices our backends serve, and
//! the host then drives input over QMP and uinput, draws on the domU's
//! framebuffer, plays a tone, and restarts the backend, asserting on the
//! consoles and on files dom0 leaves in the 9p share.

mod checks;
pub mod cross;
pub(crate) mod images;
pub mod machine;
mod scenario;

pub use checks::Check;
pub use scenario::{figures, Figures, Report};

/// `cargo xtask interop` options.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// The hypervisor the guests run on: `xen-4.17` (upstream Xen, its
    /// toolstack in dom0) or `ours` (devices from samples/interop/ours,
    /// pv-backendd in a driver domain).
    #[arg(long, default_value = "xen-4.17")]
    pub hypervisor: String,
    /// Also measure: input latency (dom0 injection to the domU's evdev
    /// read) and audio period jitter, printed with the QEMU configuration.
    #[arg(long)]
    pub bench: bool,
    /// Latency samples for `--bench`.
    #[arg(long, default_value_t = 60)]
    pub samples: usize,
    /// Echo the machine's console while it runs.
    #[arg(long)]
    pub verbose: bool,
    /// Boot, then instead of the checks read commands from stdin:
    /// `0 <shell>` runs in dom0, `u <shell>` in the domU, `k <qcode>`
    /// taps a key over QMP, `q` quits (the console is echoed).
    #[arg(long)]
    pub shell: bool,
    /// The QEMU machine Xen runs on (default: the Xen test bed's); `bench
    /// xen` runs it on our board's, to compare like with like.
    #[arg(skip)]
    pub machine: Option<crate::qemu::Machine>,
}

impl Default for Args {
    fn default() -> Self {
        Self { hypervisor: "xen-4.17".into(), bench: false, samples: 60, verbose: false, shell: false, machine: None }
    }
}

/// Builds, boots and checks; the report lists every check.
pub fn run(args: &Args) -> Result<Report, String> {
    if args.hypervisor != "xen-4.17" && args.hypervisor != "ours" {
        return Err(format!("unknown hypervisor `{}`: the interop test bed runs on xen-4.17 or ours", args.hypervisor));
    }
    scenario::run(args)
}

/// The command line: runs, prints the report, fails if any check failed.
pub fn cli(args: Args) -> Result<(), String> {
    let report = run(&args)?;
    report.print();
    let failed = report.checks.iter().filter(|c| !c.ok).count();
    if failed == 0 {
        Ok(())
    } else {
        Err(format!("{failed} interop check(s) failed; console transcript: {}", report.transcript_path.display()))
    }
}
