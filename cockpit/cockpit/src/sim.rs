//! Two simulated guests for `cockpit sim`: a cluster (a speedometer and
//! warning lamps) and an IVI screen (a tile menu that reacts to touch).
//! They stand in for the loopback PV display frontends: each runs on its own
//! thread and flips frames through a [`SourceHandle`], exactly as a guest's
//! display backend would, and receives routed input through [`GuestInput`].
//!
//! Pressing `F` while the IVI has the keyboard freezes it for three seconds,
//! to show the watchdog's fallback without touching the cluster.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cockpit_core::font::{draw_text, text_size};
use cockpit_gauges::{speed_at, Pixels, Speedometer};
use cockpit_core::{Canvas, Frame, GuestEvent, PixelFormat, Rect, SourceHandle, SourceKey, Sources};

/// The built-in simulator layout.
pub const LAYOUT: &str = include_str!("../layouts/sim.toml");

/// The simulated cluster's gauges connect as this guest connector.
pub const CLUSTER: &str = "sim-cluster/0";
/// The simulated cluster's telltale overlay.
pub const TELLTALES: &str = "sim-cluster/1";
/// The simulated IVI.
pub const IVI: &str = "sim-ivi/0";

/// `KEY_F` in evdev codes.
const KEY_F: u32 = 33;

/// The running simulated guests; dropping this stops them.
pub struct SimGuests {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl SimGuests {
    /// Starts whichever simulated guests the layout places.
    pub fn start(sources: &Sources) -> SimGuests {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let connect = |key: &str| sources.connect(&SourceKey::Guest(key.into())).ok();
        if let Some(h) = connect(CLUSTER) {
            let s = stop.clone();
            threads.push(std::thread::spawn(move || cluster(h, s)));
        }
        if let Some(h) = connect(TELLTALES) {
            let s = stop.clone();
            threads.push(std::thread::spawn(move || telltales(h, s)));
        }
        if let Some(h) = connect(IVI) {
            let s = stop.clone();
            threads.push(std::thread::spawn(move || ivi(h, s)));
        }
        SimGuests { stop, threads }
    }

    /// How many simulated guests run (those the layout places).
    pub fn running(&self) -> usize {
        self.threads.len()
    }
}

impl Drop for SimGuests {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Fills the pixels of `c` inside `r` for which `inside(x, y)` holds.
fn paint(c: &mut Canvas, r: Rect, rgb: u32, inside: impl Fn(f64, f64) -> bool) {
    let r = r.intersect(&c.bounds());
    for y in r.y..r.bottom() {
        for x in r.x..r.right() {
            if inside(x as f64 + 0.5, y as f64 + 0.5) {
                c.set(x as u32, y as u32, rgb);
            }
        }
    }
}

fn centred_text(c: &mut Canvas, cx: i32, y: i32, scale: i32, text: &str, rgb: u32) {
    let (w, _) = text_size(text, scale);
    let all = c.bounds();
    draw_text(c, &all, cx - w / 2, y, scale, text, rgb);
}

/// A speedometer sweeping 0..240 km/h and back (the cluster guest's own
/// drawing, `cockpit-gauges`).
fn cluster(h: SourceHandle, stop: Arc<AtomicBool>) {
    let (w, ht) = h.preferred_size();
    let gauge = Speedometer::new(w, ht, "CLUSTER (SIMULATED GUEST)");
    let t0 = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let mut px = vec![0u32; (w * ht) as usize];
        if let Some(mut p) = Pixels::new(&mut px, w, ht) {
            gauge.draw(&mut p, speed_at(t0.elapsed().as_millis() as u64));
        }
        if let Ok(f) = Frame::from_pixels(&px, w, ht, PixelFormat::Xrgb8888) {
            h.submit(f);
        }
        std::thread::sleep(Duration::from_millis(16));
    }
}

/// Two warning lamps blinking out of phase.
fn telltales(h: SourceHandle, stop: Arc<AtomicBool>) {
    let (w, ht) = h.preferred_size();
    let t0 = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        // Transparent where there is no lamp: premultiplied ARGB.
        let mut px = vec![0u32; (w * ht) as usize];
        if let Some(mut p) = Pixels::new(&mut px, w, ht) {
            cockpit_gauges::telltales(&mut p, t0.elapsed().as_millis() as u64);
        }
        if let Ok(f) = Frame::from_pixels(&px, w, ht, PixelFormat::Argb8888) {
            h.submit(f);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[derive(Default)]
struct IviInput {
    touch: Option<(f64, f64)>,
    pressed_tile: Option<usize>,
    freeze_until: Option<Instant>,
    focused: bool,
}

const TILES: [&str; 6] = ["MEDIA", "NAV", "PHONE", "CLIMATE", "CAR", "SETTINGS"];
const TOP_BAR: u32 = 0x1e88e5;

fn tile_rects(w: u32, h: u32) -> Vec<Rect> {
    let (cols, rows) = (3, 2);
    let (mx, top) = (24, 72);
    let tw = (w as i32 - mx * (cols + 1)) / cols;
    let th = (h as i32 - top - 24 * (rows + 1)) / rows;
    (0..6)
        .map(|i| Rect::new(mx + (i % cols) * (tw + mx), top + 24 + (i / cols) * (th + 24), tw, th))
        .collect()
}

/// A tile menu: the touched tile lights up; `F` freezes the guest.
fn ivi(h: SourceHandle, stop: Arc<AtomicBool>) {
    let (w, ht) = h.preferred_size();
    let tiles = tile_rects(w, ht);
    let state = Arc::new(Mutex::new(IviInput::default()));
    {
        let (state, tiles) = (state.clone(), tiles.clone());
        h.set_input(Box::new(move |e: &GuestEvent| {
            let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
            let tile_at = |x: f64, y: f64| tiles.iter().position(|r| r.contains(x as i32, y as i32));
            match *e {
                GuestEvent::TouchDown { x, y, .. } | GuestEvent::TouchMotion { x, y, .. } => {
                    s.touch = Some((x, y));
                    s.pressed_tile = tile_at(x, y);
                }
                GuestEvent::PointerMotion { x, y } | GuestEvent::PointerEnter { x, y } => s.touch = Some((x, y)),
                GuestEvent::Button { pressed: true, .. } => s.pressed_tile = s.touch.and_then(|(x, y)| tile_at(x, y)),
                GuestEvent::Key {
                    code: KEY_F,
                    pressed: true,
                } => s.freeze_until = Some(Instant::now() + Duration::from_secs(3)),
                GuestEvent::KeyboardFocus(f) => s.focused = f,
                _ => {}
            }
        }));
    }
    let t0 = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let (touch, pressed, frozen, focused) = {
            let s = state.lock().unwrap_or_else(|p| p.into_inner());
            (
                s.touch,
                s.pressed_tile,
                s.freeze_until.is_some_and(|t| Instant::now() < t),
                s.focused,
            )
        };
        if frozen {
            // A hung guest: no flips, so the compositor's watchdog shows its fallback.
            std::thread::sleep(Duration::from_millis(16));
            continue;
        }
        let mut c = Canvas::new(w, ht, 0x181c24);
        c.fill(&Rect::new(0, 0, w as i32, 72), TOP_BAR);
        let all = c.bounds();
        draw_text(&mut c, &all, 24, 22, 4, "IVI (SIMULATED GUEST)", 0xffffff);
        let secs = t0.elapsed().as_secs();
        let clock = format!("{:02}:{:02}", secs / 60 % 60, secs % 60);
        let (cw, _) = text_size(&clock, 4);
        draw_text(&mut c, &all, w as i32 - cw - 24, 22, 4, &clock, 0xffffff);
        for (i, r) in tiles.iter().enumerate() {
            let lit = pressed == Some(i);
            c.fill(r, if lit { 0x43a047 } else { 0x2b3240 });
            centred_text(&mut c, r.x + r.w / 2, r.y + r.h / 2 - 14, 4, TILES[i], 0xe0e6f0);
        }
        let hint = if focused {
            "PRESS F TO FREEZE THIS GUEST"
        } else {
            "TOUCH TO FOCUS, THEN F TO FREEZE"
        };
        draw_text(&mut c, &all, 24, ht as i32 - 20, 2, hint, 0x667788);
        if let Some((x, y)) = touch {
            paint(&mut c, Rect::new(x as i32 - 10, y as i32 - 10, 21, 21), 0xffffff, |px, py| {
                (px - x).powi(2) + (py - y).powi(2) < 81.0
            });
        }
        h.submit(c.into_frame());
        std::thread::sleep(Duration::from_millis(33));
    }
}

/// Guest connectors named `pattern/<n>` get [`pattern_frame`]`(n, ...)`.
pub const PATTERN_PREFIX: &str = "pattern/";

/// A fixed test picture for pattern guest `n`: colour bars over a
/// gradient, with a white border and the number written in it. Sources
/// named `pattern/<n>` with an even `n` get XRGB8888, odd ones ARGB8888
/// with translucent bars. Deterministic, so a screenshot of a real display
/// can be compared with a headless composition of the same layout.
pub fn pattern_frame(n: u32, w: u32, h: u32) -> Frame {
    const BARS: [u32; 7] = [0xffffff, 0xffff00, 0x00ffff, 0x00ff00, 0xff00ff, 0xff0000, 0x0000ff];
    let alpha = n % 2 == 1;
    let mut c = Canvas::new(w, h, 0);
    for y in 0..h {
        for x in 0..w {
            let bar = BARS[(x * 7 / w) as usize];
            let v = if y < h * 2 / 3 {
                bar
            } else {
                ((x * 255 / w) << 16) | ((y * 255 / h) << 8) | ((n * 40) & 0xff)
            };
            c.set(x, y, v);
        }
    }
    let b = c.bounds();
    for r in [
        Rect::new(0, 0, b.w, 2),
        Rect::new(0, b.h - 2, b.w, 2),
        Rect::new(0, 0, 2, b.h),
        Rect::new(b.w - 2, 0, 2, b.h),
    ] {
        c.fill(&r, 0xffffff);
    }
    let label = format!("PATTERN {n}");
    let scale = (h as i32 / 12).clamp(1, 8);
    draw_text(&mut c, &b, 8, 8, scale, &label, 0x000000);
    if !alpha {
        return c.into_frame();
    }
    // Translucent: 75% coverage, premultiplied.
    let px: Vec<u32> = c
        .pixels()
        .iter()
        .map(|&p| cockpit_core::format::premultiply((p & 0xff_ffff) | 0xc000_0000))
        .collect();
    Frame::from_pixels(&px, w, h, PixelFormat::Argb8888).expect("pattern size")
}

/// Connects every `pattern/<n>` guest source of the layout and shows its
/// pattern (re-flipped every 100 ms, so a watchdog stays fed).
pub fn start_patterns(sources: &Sources) -> SimGuests {
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for s in &sources.layout().sources {
        let SourceKey::Guest(g) = &s.key else { continue };
        let Some(n) = g.strip_prefix(PATTERN_PREFIX).and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(h) = sources.connect(&s.key) else { continue };
        let stop = stop.clone();
        threads.push(std::thread::spawn(move || {
            let (w, ht) = h.preferred_size();
            let f = pattern_frame(n, w, ht);
            while !stop.load(Ordering::SeqCst) {
                h.submit_damaged(f.clone(), &[]);
                std::thread::sleep(Duration::from_millis(100));
            }
        }));
    }
    SimGuests { stop, threads }
}
