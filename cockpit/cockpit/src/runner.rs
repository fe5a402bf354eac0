//! The compositor loop: Wayland requests, platform input, composition,
//! presentation, flip completion — once per refresh.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cockpit_core::{Compositor, DisplayEvent, Layout};
use cockpit_wayland::WaylandServer;

use pv_config::BackendConfig;

use crate::evdev_input::{EvdevInput, TouchRoute};
use crate::platform::Platform;
use crate::pv_backends::PvBackends;
use crate::sim::SimGuests;

/// How a run is set up.
pub struct RunOptions {
    /// Listen for Wayland clients here.
    pub wayland_socket: Option<PathBuf>,
    /// Start the simulated guests (`cockpit sim`).
    pub sim: bool,
    /// Feed every `pattern/<n>` guest source its fixed test picture.
    pub patterns: bool,
    /// Stop after this many frames.
    pub frames: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Frames per second when the platform does not pace itself.
    pub fps: u32,
    /// Where screenshots go: `<dir>/<display>.png` at exit, and whenever a
    /// file named `screenshot` appears in it (it is then removed).
    pub screenshot_dir: Option<PathBuf>,
    /// Print a line of statistics every this many frames.
    pub stats_every: Option<u64>,
    /// Serve the driver domain's PV displays and input with these settings
    /// on this platform.
    pub pv_backend: Option<(BackendConfig, Arc<dyn pv_transport::Platform>)>,
    /// Touch devices (evdev) and the displays they span.
    pub touch: Vec<TouchRoute>,
    /// Keyboards (evdev).
    pub keyboards: Vec<PathBuf>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            wayland_socket: None,
            sim: false,
            patterns: false,
            frames: None,
            duration: None,
            fps: 60,
            screenshot_dir: None,
            stats_every: None,
            pv_backend: None,
            touch: Vec::new(),
            keyboards: Vec::new(),
        }
    }
}

/// Runs until the frame or time limit, or until the platform is closed.
pub fn run(layout: Layout, platform: &mut dyn Platform, opts: &RunOptions) -> io::Result<()> {
    let mut evdev = match opts.touch.is_empty() && opts.keyboards.is_empty() {
        true => None,
        false => Some(EvdevInput::open(&layout, &opts.touch, &opts.keyboards)?),
    };
    let mut comp = Compositor::new(layout);
    for d in 0..comp.layout().displays.len() {
        comp.set_scanout_formats(d, &platform.scanout_formats(d));
    }
    let mut wayland = match &opts.wayland_socket {
        Some(p) => {
            let _ = std::fs::remove_file(p);
            let w = WaylandServer::bind(comp.sources(), p)?;
            eprintln!("cockpit: Wayland clients connect with WAYLAND_DISPLAY={}", p.display());
            Some(w)
        }
        None => None,
    };
    let _sim = opts.sim.then(|| SimGuests::start(&comp.sources()));
    let _patterns = opts.patterns.then(|| crate::sim::start_patterns(&comp.sources()));
    let _pv = match &opts.pv_backend {
        Some((cfg, platform)) => Some(PvBackends::start(cfg, platform.clone(), comp.sources())?),
        None => None,
    };
    let period = Duration::from_secs_f64(1.0 / opts.fps.max(1) as f64);
    let start = Instant::now();
    let mut next = start;
    let mut events: Vec<DisplayEvent> = Vec::new();
    let mut frames = 0u64;
    let mut composed = 0u64;
    let mut presented = false;
    let mut first_seen = vec![false; comp.layout().sources.len()];
    loop {
        // A platform that waits for vblank paces frames it presents; idle
        // frames (nothing changed) are paced here.
        if !(platform.paces_itself() && presented) {
            wait_until(next, wayland.as_mut())?;
            next = (next + period).max(Instant::now() - period);
        }
        if let Some(w) = wayland.as_mut() {
            w.dispatch()?;
        }
        events.clear();
        if !platform.poll_input(&mut events) {
            break;
        }
        if let Some(ev) = evdev.as_mut() {
            ev.poll(&mut events);
        }
        for e in &events {
            comp.input(e);
        }
        if let Some(w) = wayland.as_mut() {
            // Deliver the input just routed to Wayland clients.
            w.dispatch()?;
        }
        let stats = comp.render(Instant::now());
        composed += stats.composed_pixels;
        presented = false;
        for (d, changed) in stats.changed.iter().enumerate() {
            if *changed {
                platform.present(d, comp.image(d))?;
                presented = true;
            }
        }
        comp.frame_presented();
        // Each source's first picture on its display, once: when a guest
        // became visible (the boot figure a cockpit is judged by).
        for (i, (name, n)) in comp.source_frames().enumerate() {
            if n > 0 && !first_seen.get(i).copied().unwrap_or(true) {
                first_seen[i] = true;
                eprintln!("cockpit: first frame from {name} on its display after {:.2} s", start.elapsed().as_secs_f64());
            }
        }
        if let Some(w) = wayland.as_mut() {
            w.frame_presented()?;
        }
        frames += 1;
        if let Some(dir) = &opts.screenshot_dir {
            let req = dir.join("screenshot");
            if req.exists() {
                let _ = std::fs::remove_file(&req);
                platform.screenshot(dir, &format!("-{frames:06}"))?;
            }
        }
        if opts.stats_every.is_some_and(|n| frames.is_multiple_of(n)) {
            let secs = start.elapsed().as_secs_f64();
            let per_source: Vec<String> = comp.source_frames().map(|(name, n)| format!("{name}={n}")).collect();
            eprintln!(
                "cockpit: {frames} frames in {secs:.1} s ({:.1} fps), {:.0} pixels composed per frame; frames from sources: {}",
                frames as f64 / secs,
                composed as f64 / frames as f64,
                per_source.join(" ")
            );
        }
        if opts.frames.is_some_and(|n| frames >= n) || opts.duration.is_some_and(|d| start.elapsed() >= d) {
            break;
        }
    }
    if let Some(dir) = &opts.screenshot_dir {
        platform.screenshot(dir, "")?;
    }
    Ok(())
}

/// Sleeps until `deadline`, waking early to serve Wayland clients.
fn wait_until(deadline: Instant, mut wayland: Option<&mut WaylandServer>) -> io::Result<()> {
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Ok(());
        }
        let timeout = deadline - now;
        match wayland.as_deref_mut() {
            None => std::thread::sleep(timeout),
            Some(w) => {
                let ready = {
                    let fds = w.poll_fds();
                    let mut pfds = [
                        rustix::event::PollFd::new(&fds[0], rustix::event::PollFlags::IN),
                        rustix::event::PollFd::new(&fds[1], rustix::event::PollFlags::IN),
                    ];
                    let ts = rustix::event::Timespec {
                        tv_sec: timeout.as_secs() as _,
                        tv_nsec: timeout.subsec_nanos() as _,
                    };
                    rustix::event::poll(&mut pfds, Some(&ts)).map_err(io::Error::from)?
                };
                if ready > 0 {
                    w.dispatch()?;
                }
            }
        }
    }
}
