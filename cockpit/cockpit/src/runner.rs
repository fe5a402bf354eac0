//! The compositor loop: Wayland requests, platform input, composition,
//! presentation, flip completion — once per refresh.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cockpit_core::{Compositor, DisplayEvent, Layout, Role};
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
    /// What the Wayland server offers.
    pub wayland: cockpit_wayland::Options,
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
    /// Horizontal bands composed at once ([`Compositor::set_bands`]).
    pub bands: usize,
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
    /// Serve the HMI control socket here (`cockpit ctl`).
    pub ctl_socket: Option<PathBuf>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            wayland_socket: None,
            wayland: Default::default(),
            sim: false,
            patterns: false,
            frames: None,
            duration: None,
            fps: 60,
            bands: 1,
            screenshot_dir: None,
            stats_every: None,
            pv_backend: None,
            touch: Vec::new(),
            keyboards: Vec::new(),
            ctl_socket: None,
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
    comp.set_bands(opts.bands);
    for d in 0..comp.layout().displays.len() {
        comp.set_scanout_formats(d, &platform.scanout_formats(d));
    }
    let mut wayland = match &opts.wayland_socket {
        Some(p) => {
            let _ = std::fs::remove_file(p);
            let w = WaylandServer::bind_with(comp.sources(), p, opts.wayland)?;
            eprintln!("cockpit: Wayland clients connect with WAYLAND_DISPLAY={}", p.display());
            Some(w)
        }
        None => None,
    };
    let mut ctl = match &opts.ctl_socket {
        Some(p) => {
            let c = crate::ctl::CtlServer::bind(p)?;
            eprintln!("cockpit: HMI control with `cockpit ctl --socket {}`", p.display());
            Some(c)
        }
        None => None,
    };
    let _sim = opts.sim.then(|| SimGuests::start(&comp.sources()));
    let _patterns = opts.patterns.then(|| crate::sim::start_patterns(&comp.sources()));
    let _pv = match &opts.pv_backend {
        Some((cfg, platform)) => Some(PvBackends::start(cfg, platform.clone(), comp.sources())?),
        None => None,
    };
    // Each display composes at its own refresh rate (at most `fps`), so
    // Wayland clients on a slower display are asked for fewer frames.
    let periods: Vec<Duration> = comp
        .layout()
        .displays
        .iter()
        .map(|d| Duration::from_secs_f64(1.0 / d.refresh_hz.unwrap_or(opts.fps).clamp(1, opts.fps.max(1)) as f64))
        .collect();
    let start = Instant::now();
    let mut due = vec![start; periods.len()];
    let mut presented: Vec<usize> = Vec::with_capacity(periods.len());
    let mut events: Vec<DisplayEvent> = Vec::new();
    let mut frames = 0u64;
    let mut composed = 0u64;
    let mut first_seen = vec![false; comp.layout().sources.len()];
    let order = display_order(comp.layout());
    loop {
        // Frames come at the refresh rate. Presenting never waits (a
        // display's flips complete while the loop sleeps), so no display
        // holds back another.
        let next = due.iter().copied().min().unwrap_or(start);
        wait_until(next, wayland.as_mut(), platform)?;
        let now = Instant::now();
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
        if let Some(c) = ctl.as_mut() {
            c.serve(&mut comp, Instant::now());
        }
        if let Some(w) = wayland.as_mut() {
            // Deliver the input just routed to Wayland clients.
            w.dispatch()?;
        }
        // Flips that completed, and ready pictures whose flip was refused,
        // are seen to every frame (not only when the DRM fd says so).
        platform.service();
        comp.take_frames(Instant::now());
        // Each display is composed and handed over in turn, the cluster's
        // first: no other display's composition comes before its frame.
        presented.clear();
        for &d in &order {
            if due[d] > now {
                continue;
            }
            due[d] = (due[d] + periods[d]).max(now - periods[d]);
            let (changed, _, pixels) = comp.render_display(d);
            composed += pixels;
            if changed {
                platform.present(d, comp.image(d))?;
            }
            presented.push(d);
        }
        comp.frame_presented();
        // Wayland clients' newest commits are copied in after the displays
        // are handed over (never before the cluster's), for the next frame.
        if let Some(w) = wayland.as_mut() {
            w.take_commits()?;
        }
        // Each source's first picture on its display, once: when a guest
        // became visible (the boot figure a cockpit is judged by).
        for (i, (name, n)) in comp.source_frames().enumerate() {
            if n > 0 && !first_seen.get(i).copied().unwrap_or(true) {
                first_seen[i] = true;
                eprintln!("cockpit: first frame from {name} on its display after {:.2} s", start.elapsed().as_secs_f64());
            }
        }
        if let Some(w) = wayland.as_mut() {
            w.frame_presented(&presented)?;
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
            let times: Vec<String> = comp
                .take_frame_times()
                .into_iter()
                .filter_map(|(name, t)| frame_time_summary(t).map(|s| format!("{name} {s}")))
                .collect();
            eprintln!(
                "cockpit: {frames} frames in {secs:.1} s ({:.1} fps), {:.0} pixels composed per frame; frames from sources: {}; frame times since the last line (ms, p50/p99/max): {}",
                frames as f64 / secs,
                composed as f64 / frames as f64,
                per_source.join(" "),
                times.join(", ")
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

/// `p50/p99/max` of `times` in milliseconds, or `None` without any.
fn frame_time_summary(mut times: Vec<Duration>) -> Option<String> {
    if times.is_empty() {
        return None;
    }
    times.sort_unstable();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
    Some(format!("{:.1}/{:.1}/{:.1}", at(0.5), at(0.99), at(1.0)))
}

/// Displays in the order they are composed: those showing a cluster or
/// telltale source first, then the others, each group in layout order.
fn display_order(layout: &Layout) -> Vec<usize> {
    let safety = |d: usize| layout.sources.iter().any(|s| s.display == d && s.role != Role::Normal);
    let mut order: Vec<usize> = (0..layout.displays.len()).collect();
    order.sort_by_key(|&d| !safety(d));
    order
}

/// Sleeps until `deadline`, waking early to serve Wayland clients and the
/// platform's news (completed flips).
fn wait_until(deadline: Instant, mut wayland: Option<&mut WaylandServer>, platform: &mut dyn Platform) -> io::Result<()> {
    use rustix::event::{PollFd, PollFlags, Timespec};
    // A platform fd that stays readable (its events cannot be read) is
    // served a few times per wait, then left to the next frame: no spin.
    let mut services = 0;
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Ok(());
        }
        let timeout = deadline - now;
        let ts = Timespec { tv_sec: timeout.as_secs() as _, tv_nsec: timeout.subsec_nanos() as _ };
        let (client_news, platform_news) = {
            let wl = wayland.as_deref_mut().map(|w| w.poll_fds());
            let mut pfds: Vec<PollFd<'_>> = wl.iter().flat_map(|f| f.iter().map(|fd| PollFd::new(fd, PollFlags::IN))).collect();
            let n_wl = pfds.len();
            let plat = if services < 4 { platform.wake_fds() } else { Vec::new() };
            pfds.extend(plat.iter().map(|fd| PollFd::new(fd, PollFlags::IN)));
            if pfds.is_empty() {
                std::thread::sleep(timeout);
                return Ok(());
            }
            rustix::event::poll(&mut pfds, Some(&ts)).map_err(io::Error::from)?;
            let ready = |p: &PollFd<'_>| !p.revents().is_empty();
            (pfds[..n_wl].iter().any(ready), pfds[n_wl..].iter().any(ready))
        };
        if platform_news {
            services += 1;
            platform.service();
        }
        if client_news {
            if let Some(w) = wayland.as_deref_mut() {
                w.dispatch()?;
            }
        }
    }
}
