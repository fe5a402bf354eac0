//! `cockpit`: run the cockpit compositor (`run`), the desktop simulator
//! (`sim`), or check a layout file (`check`).
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use cockpit::platform::{Headless, Platform};
use cockpit::runner::{run, RunOptions};
use cockpit_core::Layout;

#[derive(Parser)]
#[command(name = "cockpit", about = "The cockpit compositor: guests and Wayland apps on the car's displays")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the compositor on a layout.
    Run {
        /// The layout file.
        #[arg(long)]
        layout: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// The desktop simulator: the compositor in windows with two simulated
    /// guests (a cluster and an IVI), and a Wayland socket for native apps.
    Sim {
        /// A layout to use instead of the built-in one (its `sim-cluster/0`,
        /// `sim-cluster/1` and `sim-ivi/0` guests are simulated).
        #[arg(long)]
        layout: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Validate a layout file and print what it places where.
    Check { layout: PathBuf },
    /// Ask a running compositor to show, hide, move or fade a source:
    /// `show NAME`, `hide NAME`, `move NAME X Y W H`,
    /// `opacity NAME VALUE [MS]`, `list`.
    Ctl {
        /// The compositor's control socket (default: $XDG_RUNTIME_DIR/cockpit-ctl).
        #[arg(long)]
        socket: Option<PathBuf>,
        /// The request, e.g. `hide nav`.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        request: Vec<String>,
    },
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum OutputKind {
    Headless,
    Window,
    Kms,
}

#[derive(Args)]
struct Common {
    /// Where the displays go (default: kms for `run`, window for `sim`).
    #[arg(long, value_enum)]
    output: Option<OutputKind>,
    /// The DRM device for `--output kms`.
    #[arg(long, default_value = "/dev/dri/card0")]
    device: PathBuf,
    /// Listen for Wayland clients at this socket path ("none" to disable).
    #[arg(long)]
    wayland_socket: Option<String>,
    /// Offer Wayland clients `ivi_application` only, not `xdg_wm_base`, as
    /// weston's ivi-shell does: clients written for it then address their
    /// surfaces by ivi id (the layout's `ivi_id`).
    #[arg(long)]
    ivi_shell_only: bool,
    /// Serve HMI control requests (`cockpit ctl`) at this socket path
    /// (default: $XDG_RUNTIME_DIR/cockpit-ctl; "none" to disable).
    #[arg(long)]
    ctl_socket: Option<String>,
    /// Also run the simulated guests (always on for `sim`).
    #[arg(long)]
    sim: bool,
    /// Feed every `pattern/<n>` guest source a fixed test picture.
    #[arg(long)]
    patterns: bool,
    /// Stop after this many frames.
    #[arg(long)]
    frames: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long)]
    seconds: Option<f64>,
    /// Compose large damage in this many horizontal bands, one thread
    /// each (1: on the compositor's thread only).
    #[arg(long, default_value_t = 1)]
    bands: usize,
    /// Frames per second for the headless and window outputs.
    #[arg(long, default_value_t = 60)]
    fps: u32,
    /// Screenshots (`<display>.png`) at exit and whenever a file named
    /// `screenshot` appears in this directory.
    #[arg(long)]
    screenshot_dir: Option<PathBuf>,
    /// With `--output headless`: also a screenshot every N frames.
    #[arg(long)]
    screenshot_every: Option<u64>,
    /// Print frame statistics every N frames.
    #[arg(long)]
    stats: Option<u64>,
    /// Serve this domain's PV displays (vdispl, vfb) and input (vkbd)
    /// into the layout, with the settings of this pv-backendd file (its
    /// `serve` is ignored: sound stays with pv-backendd).
    #[arg(long)]
    backend: Option<PathBuf>,
    /// A touch device (evdev; a tablet's button is a finger) and the
    /// display it spans: `/dev/input/event2=center`. Repeatable.
    #[arg(long, value_name = "DEVICE=DISPLAY")]
    touch: Vec<cockpit::evdev_input::TouchRoute>,
    /// A keyboard (evdev) whose keys go to the focused source. Repeatable.
    #[arg(long, value_name = "DEVICE")]
    keyboard: Vec<PathBuf>,
}

/// The PV backends' settings and the platform they serve on.
fn pv_backend(path: &Path) -> Result<(pv_config::BackendConfig, std::sync::Arc<dyn pv_transport::Platform>), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let cfg = pv_config::BackendConfig::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    match cfg.transport {
        #[cfg(target_os = "linux")]
        pv_config::TransportKind::Xen => {
            let platform = std::sync::Arc::new(pv_transport::linux::LinuxPlatform { domid: cfg.domain });
            Ok((cfg, platform))
        }
        _ => Err(format!("{}: the compositor serves real frontends: transport = \"xen\", on Linux", path.display())),
    }
}

fn default_socket(name: &str) -> PathBuf {
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    dir.join(name)
}

fn platform(kind: OutputKind, layout: &Layout, c: &Common) -> Result<Box<dyn Platform>, String> {
    match kind {
        OutputKind::Headless => {
            let every = match (c.screenshot_every, &c.screenshot_dir) {
                (Some(n), Some(dir)) => Some((n, dir.clone())),
                (Some(_), None) => return Err("--screenshot-every needs --screenshot-dir".into()),
                _ => None,
            };
            Ok(Box::new(Headless::new(layout, every)))
        }
        #[cfg(feature = "window")]
        OutputKind::Window => Ok(Box::new(cockpit::window::Windows::open(layout).map_err(|e| e.to_string())?)),
        #[cfg(not(feature = "window"))]
        OutputKind::Window => Err("this cockpit was built without the `window` feature".into()),
        #[cfg(feature = "kms")]
        OutputKind::Kms => Ok(Box::new(cockpit::kms::Kms::open(&c.device, layout).map_err(|e| e.to_string())?)),
        #[cfg(not(feature = "kms"))]
        OutputKind::Kms => Err("this cockpit was built without the `kms` feature".into()),
    }
}

fn start(layout: Layout, kind: OutputKind, c: &Common, sim: bool, socket: PathBuf) -> Result<(), String> {
    if let Some(dir) = &c.screenshot_dir {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut p = platform(kind, &layout, c)?;
    let opts = RunOptions {
        wayland_socket: match c.wayland_socket.as_deref() {
            Some("none") => None,
            Some(s) => Some(PathBuf::from(s)),
            None => Some(socket),
        },
        wayland: cockpit_wayland::Options { xdg_shell: !c.ivi_shell_only },
        sim,
        patterns: c.patterns,
        frames: c.frames,
        duration: c.seconds.map(Duration::from_secs_f64),
        fps: c.fps,
        bands: c.bands,
        screenshot_dir: c.screenshot_dir.clone(),
        stats_every: c.stats,
        pv_backend: c.backend.as_deref().map(pv_backend).transpose()?,
        touch: c.touch.clone(),
        keyboards: c.keyboard.clone(),
        ctl_socket: match c.ctl_socket.as_deref() {
            Some("none") => None,
            Some(s) => Some(PathBuf::from(s)),
            None => Some(default_socket("cockpit-ctl")),
        },
    };
    run(layout, p.as_mut(), &opts).map_err(|e| e.to_string())
}

fn check(path: &Path) -> Result<(), String> {
    let l = Layout::load(path).map_err(|e| e.to_string())?;
    for d in &l.displays {
        println!(
            "display {:?}: {}x{} {} on {}",
            d.name,
            d.width,
            d.height,
            d.format,
            d.connector.as_deref().unwrap_or("the first free connector")
        );
        for s in l.sources.iter().filter(|s| l.displays[s.display].name == d.name) {
            let r = s.rect;
            println!(
                "  source {:?} ({:?}): [{}, {}, {}, {}] z {} {:?} {:?} {}° opacity {:.2} role {:?}{}",
                s.name,
                s.key,
                r.x,
                r.y,
                r.w,
                r.h,
                s.z,
                s.scaling,
                s.filter,
                s.rotation.degrees(),
                s.opacity as f64 / 255.0,
                s.role,
                s.watchdog.map(|w| format!(" watchdog {} ms", w.as_millis())).unwrap_or_default()
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Check { layout } => check(&layout),
        Cmd::Ctl { socket, request } => {
            let path = socket.unwrap_or_else(|| default_socket("cockpit-ctl"));
            match cockpit::ctl::request(&path, &request.join(" ")) {
                Ok(reply) if reply.starts_with("ok") => {
                    println!("{reply}");
                    Ok(())
                }
                Ok(reply) => Err(reply.trim_start_matches("error: ").to_string()),
                Err(e) => Err(e),
            }
        }
        Cmd::Run { layout, common } => Layout::load(&layout).map_err(|e| e.to_string()).and_then(|l| {
            start(
                l,
                common.output.unwrap_or(OutputKind::Kms),
                &common,
                common.sim,
                default_socket("cockpit-0"),
            )
        }),
        Cmd::Sim { layout, common } => {
            let l = match &layout {
                Some(p) => Layout::load(p),
                None => Layout::parse(cockpit::sim::LAYOUT, Path::new("(built-in sim layout)")),
            };
            l.map_err(|e| e.to_string()).and_then(|l| {
                start(
                    l,
                    common.output.unwrap_or(OutputKind::Window),
                    &common,
                    true,
                    default_socket("cockpit-sim"),
                )
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cockpit: {e}");
            ExitCode::FAILURE
        }
    }
}
