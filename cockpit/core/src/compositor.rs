//! [`Compositor`]: turns the sources' latest frames into one picture per
//! display, composing only what changed, scanning out directly when one
//! source covers a display 1:1, and enforcing the safety rules:
//!
//! - stacking is by role first (normal < cluster < telltale), then `z`, so
//!   nothing but telltales is ever drawn over a cluster;
//! - a source that stops flipping or vanishes shows its fallback, which
//!   damages only its own rectangle: the other sources are untouched;
//! - frames are shared (`Arc`), so a producer going away mid-frame cannot
//!   pull memory from under a composition in progress.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::canvas::{Band, Canvas};
use crate::compose::{self, Scratch};

mod hmi;
pub use hmi::MAX_FADE;
use crate::damage::Damage;
use crate::font;
use crate::format::PixelFormat;
use crate::frame::Frame;
use crate::geom::{Filter, Placement, Rect, Rotation, Scaling};
use crate::input::{DisplayEvent, GuestEvent};
use crate::layout::{AlphaMode, Fallback, FocusPolicy, Layout, Role, SourceConfig};
use crate::source::{SourceId, Sources};

/// Frame times kept per source between two looks (a bounded record,
/// whatever a producer's rate).
const MAX_FRAME_TIMES: usize = 4096;

/// How much a stale source's last frame is darkened (of 255).
const DIM: u8 = 90;
/// The plate shown for a source that has no frame to dim.
const PLATE_RGB: u32 = 0x202020;
const LABEL_RGB: u32 = 0xffcc00;

/// Where a source stands, as the watchdog sees it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SourceStatus {
    /// Not connected yet, or connected without a frame, within its watchdog time.
    Waiting,
    /// Flipping within its watchdog time.
    Live,
    /// Has a frame but has not flipped within its watchdog time.
    Stale,
    /// Has never flipped and its watchdog time has passed.
    NoSignal,
    /// Was connected and went away.
    Vanished,
    /// Flips, but its picture has not changed within its `frozen` time.
    Frozen,
}

impl SourceStatus {
    fn shows_fallback(self) -> bool {
        matches!(self, SourceStatus::Stale | SourceStatus::NoSignal | SourceStatus::Vanished | SourceStatus::Frozen)
    }
}

/// Displays [`FrameStats`] reports on.
pub const MAX_STATS_DISPLAYS: usize = 32;

/// What one composition did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FrameStats {
    /// Pixels written into canvases (0 when nothing changed or all was scanned out).
    pub composed_pixels: u64,
    /// Per display (the first [`MAX_STATS_DISPLAYS`]): whether its picture
    /// changed since the last frame. Fixed storage: a frame allocates nothing.
    pub changed: heapless::Vec<bool, MAX_STATS_DISPLAYS>,
    /// Per display: whether it is scanned out directly from a source's frame.
    pub direct: heapless::Vec<bool, MAX_STATS_DISPLAYS>,
}

/// What an output should show for a display.
#[derive(Clone, Copy, Debug)]
pub enum DisplayImage<'a> {
    /// The composed canvas; `damage` is what changed since the last frame.
    Composed { canvas: &'a Canvas, damage: &'a [Rect] },
    /// A source's own buffer, exactly the display's size, not copied.
    Direct(&'a Frame),
}

struct LayerState {
    frame: Option<Frame>,
    placement: Option<Placement>,
    /// Pictures drawn with the frame, where, and whether below it (sub-surfaces).
    subs: Vec<(Frame, Placement, bool)>,
    last_flip: Option<Instant>,
    status: SourceStatus,
    ever_connected: bool,
    /// New frames taken from the source (what a stall shows in).
    frames: u64,
    /// Time between new frames since [`Compositor::take_frame_times`]
    /// last looked, at most [`MAX_FRAME_TIMES`] of them.
    frame_times: Vec<Duration>,
    /// With a `frozen` time: the last picture's fingerprint and when the
    /// picture last changed.
    fingerprint: Option<u64>,
    last_change: Option<Instant>,
    /// Hidden by the HMI ([`Compositor::set_shown`]).
    hidden: bool,
    /// An opacity fade under way ([`Compositor::fade`]).
    fade: Option<Fade>,
}

/// An opacity animation: `from` at `start` to `to` after `over`.
#[derive(Clone, Copy, Debug)]
struct Fade {
    from: u8,
    to: u8,
    start: Instant,
    over: Duration,
}

struct DisplayState {
    canvas: Canvas,
    damage: Damage,
    /// What changed in the last frame, for outputs that copy.
    out_damage: Damage,
    direct: Option<Frame>,
    scanout: Vec<PixelFormat>,
    changed: bool,
}

/// The cockpit compositor's engine, driven by the caller's loop:
/// [`render`](Compositor::render), then hand each display's
/// [`image`](Compositor::image) to its output.
pub struct Compositor {
    layout: Arc<Layout>,
    sources: Sources,
    layers: Vec<LayerState>,
    /// Source indices bottom to top.
    order: Vec<usize>,
    displays: Vec<DisplayState>,
    scratch: Scratch,
    /// Bands composed at once ([`Compositor::set_bands`]) and their scratch.
    bands: usize,
    band_scratch: Vec<Scratch>,
    /// The visible sources of the display being composed, bottom first.
    on_display: Vec<usize>,
    started: Option<Instant>,
    router: Router,
    /// Flip completions waiting for the outputs to show this frame.
    shown: Vec<Box<dyn FnOnce() + Send>>,
}

#[derive(Default)]
struct Router {
    touches: HashMap<i32, usize>,
    pointer_focus: Option<usize>,
    pointer_at: Option<(usize, f64, f64)>,
    buttons_down: u32,
    keyboard: Option<usize>,
}

impl Compositor {
    pub fn new(layout: Layout) -> Compositor {
        let layout = Arc::new(layout);
        let sources = Sources::new(layout.clone());
        let mut order: Vec<usize> = (0..layout.sources.len()).collect();
        order.sort_by_key(|&i| (layout.sources[i].role, layout.sources[i].z, i));
        let displays = layout
            .displays
            .iter()
            .map(|d| {
                let mut damage = Damage::new();
                damage.add(d.bounds());
                DisplayState {
                    canvas: Canvas::new(d.width, d.height, d.background),
                    damage,
                    out_damage: Damage::new(),
                    direct: None,
                    scanout: Vec::new(),
                    changed: false,
                }
            })
            .collect();
        let layers = layout
            .sources
            .iter()
            .map(|_| LayerState {
                frame: None,
                placement: None,
                subs: Vec::new(),
                last_flip: None,
                status: SourceStatus::Waiting,
                ever_connected: false,
                frames: 0,
                frame_times: Vec::new(),
                fingerprint: None,
                last_change: None,
                hidden: false,
                fade: None,
            })
            .collect();
        let router = Router {
            keyboard: match layout.keyboard_focus {
                FocusPolicy::Fixed(i) => Some(i),
                _ => None,
            },
            ..Router::default()
        };
        Compositor {
            layout,
            sources,
            layers,
            order,
            displays,
            scratch: Scratch::default(),
            bands: 1,
            band_scratch: Vec::new(),
            on_display: Vec::new(),
            started: None,
            router,
            shown: Vec::new(),
        }
    }

    pub fn layout(&self) -> &Arc<Layout> {
        &self.layout
    }

    /// The registry producers connect to (clone it freely, across threads).
    pub fn sources(&self) -> Sources {
        self.sources.clone()
    }

    /// Lets display `display` be scanned out straight from a source's buffer
    /// in these formats (what its output accepts). Empty (the default) means
    /// always compose.
    pub fn set_scanout_formats(&mut self, display: usize, formats: &[PixelFormat]) {
        self.displays[display].scanout = formats.to_vec();
    }

    pub fn status(&self, id: SourceId) -> SourceStatus {
        self.layers[id.0].status
    }

    /// Each source's name and how many new frames it has brought since the
    /// compositor started, in layout order.
    pub fn source_frames(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        self.layout.sources.iter().zip(&self.layers).map(|(s, l)| (s.name.as_str(), l.frames))
    }

    /// Each source's name and the times between the new frames it brought
    /// since the last call (what smoothness is judged by), in layout order.
    pub fn take_frame_times(&mut self) -> Vec<(String, Vec<Duration>)> {
        self.layout
            .sources
            .iter()
            .zip(&mut self.layers)
            .map(|(s, l)| (s.name.clone(), std::mem::take(&mut l.frame_times)))
            .collect()
    }

    /// The current placement of a source's frame, if it has one.
    pub fn placement(&self, id: SourceId) -> Option<Placement> {
        self.layers[id.0].placement
    }

    /// What display `d` shows now.
    pub fn image(&self, d: usize) -> DisplayImage<'_> {
        let ds = &self.displays[d];
        match &ds.direct {
            Some(f) => DisplayImage::Direct(f),
            None => DisplayImage::Composed {
                canvas: &ds.canvas,
                damage: ds.out_damage.rects(),
            },
        }
    }

    /// A copy of what display `d` shows, for screenshots and tests.
    pub fn snapshot(&self, d: usize) -> Canvas {
        match self.image(d) {
            DisplayImage::Composed { canvas, .. } => canvas.clone(),
            DisplayImage::Direct(f) => frame_canvas(f),
        }
    }

    /// Damages all of every display (e.g. after an output was reset).
    pub fn damage_all(&mut self) {
        for d in &mut self.displays {
            let b = d.canvas.bounds();
            d.damage.add(b);
        }
    }

    /// Takes the sources' new frames, runs the watchdog, and composes what changed.
    pub fn render(&mut self, now: Instant) -> FrameStats {
        self.take_frames(now);
        let mut stats = FrameStats::default();
        for d in 0..self.displays.len() {
            let (changed, direct, pixels) = self.render_display(d);
            let _ = stats.changed.push(changed);
            let _ = stats.direct.push(direct);
            stats.composed_pixels += pixels;
        }
        stats
    }

    /// Call after the outputs presented the last [`render`](Self::render):
    /// completes the flips it showed (see [`crate::SourceHandle::submit_then`]).
    pub fn frame_presented(&mut self) {
        for done in self.shown.drain(..) {
            done();
        }
    }

    /// The time until some source's watchdog may expire, so an idle loop
    /// knows how long it may sleep.
    pub fn next_deadline(&self, now: Instant) -> Option<Duration> {
        if self.animating() {
            // A fade steps every frame.
            return Some(Duration::ZERO);
        }
        let started = self.started?;
        self.layout
            .sources
            .iter()
            .zip(&self.layers)
            .filter(|(_, l)| matches!(l.status, SourceStatus::Live | SourceStatus::Waiting))
            .flat_map(|(s, l)| {
                let flip = s.watchdog.map(|w| l.last_flip.unwrap_or(started) + w);
                let change = s.frozen.zip(l.last_change).map(|(f, at)| at + f);
                [flip, change].into_iter().flatten().map(|at| at.saturating_duration_since(now))
            })
            .min()
    }

    fn update_layer(&mut self, i: usize, now: Instant, started: Instant) {
        let cfg = &self.layout.sources[i];
        let display = self.displays[cfg.display].canvas.bounds();
        let (pending, damage, connected) = {
            let mut st = self.sources.slot(SourceId(i)).lock();
            self.shown.append(&mut st.on_shown);
            // Published for the producer (a Wayland client is not asked to
            // draw while nothing of it is on screen).
            st.hidden = self.layers[i].hidden || cfg.opacity == 0;
            let subs = std::mem::take(&mut st.pending_subs);
            (st.pending.take().map(|f| (f, subs)), st.damage.take(), st.connected)
        };
        let layer = &mut self.layers[i];
        let before = (layer.status, layer.placement);
        let mut dmg = Damage::new();
        if let Some((frame, subs)) = pending {
            let same_size = layer
                .frame
                .as_ref()
                .is_some_and(|f| f.width() == frame.width() && f.height() == frame.height());
            let placement = Placement::new(
                frame.width() as i32,
                frame.height() as i32,
                cfg.rect,
                display,
                cfg.rotation,
                cfg.scaling,
            );
            match (same_size, damage) {
                (true, Some(d)) => {
                    for r in d.rects() {
                        dmg.add(placement.buffer_to_display(r, cfg.filter));
                    }
                }
                _ => {
                    dmg.add(placement.clip);
                    if let Some(old) = layer.placement {
                        dmg.add(old.clip);
                    }
                }
            }
            if cfg.frozen.is_some() {
                // A picture whose memory was revoked counts as unchanged.
                let fp = frame.fingerprint();
                if layer.last_change.is_none() || (fp.is_some() && fp != layer.fingerprint) {
                    layer.last_change = Some(now);
                }
                layer.fingerprint = fp;
            }
            layer.subs.clear();
            layer.subs.extend(subs.into_iter().map(|sp| {
                let p = placement.sub(sp.at, sp.frame.width() as i32, sp.frame.height() as i32);
                (sp.frame, p, sp.below)
            }));
            layer.frame = Some(frame);
            layer.placement = Some(placement);
            if let Some(prev) = layer.last_flip {
                if layer.frame_times.len() < MAX_FRAME_TIMES {
                    layer.frame_times.push(now.saturating_duration_since(prev));
                }
            }
            layer.last_flip = Some(now);
            layer.frames += 1;
        }
        layer.ever_connected |= connected;
        if layer.hidden {
            // A hidden source is not asked to draw (its Wayland client gets
            // no frame callbacks): its watchdog waits until it is shown.
            for t in [&mut layer.last_flip, &mut layer.last_change].into_iter().flatten() {
                *t = now;
            }
        }
        let expired = |since: Instant| cfg.watchdog.is_some_and(|w| now.saturating_duration_since(since) > w);
        layer.status = if !connected && layer.ever_connected {
            SourceStatus::Vanished
        } else if let Some(t) = layer.last_flip {
            let frozen = |since: Instant| cfg.frozen.is_some_and(|f| now.saturating_duration_since(since) > f);
            if expired(t) {
                SourceStatus::Stale
            } else if layer.last_change.is_some_and(frozen) {
                SourceStatus::Frozen
            } else {
                SourceStatus::Live
            }
        } else if expired(started) {
            SourceStatus::NoSignal
        } else {
            SourceStatus::Waiting
        };
        if before.0 != layer.status {
            // The fallback covers the destination, not just the old frame.
            dmg.add(cfg.rect.intersect(&display));
            if let Some(p) = before.1 {
                dmg.add(p.clip);
            }
        }
        self.displays[cfg.display].damage.add_all(&dmg);
    }

    /// Takes the sources' new frames (at most one per source, the newest:
    /// a producer flipping faster than the refresh costs no more than one
    /// that keeps up) and runs the watchdog. Then
    /// [`render_display`](Self::render_display) composes each display.
    pub fn take_frames(&mut self, now: Instant) {
        let started = *self.started.get_or_insert(now);
        self.animate(now);
        for i in 0..self.layers.len() {
            self.update_layer(i, now, started);
        }
    }

    /// Composes what changed on display `d` since its last frame, after
    /// [`take_frames`](Self::take_frames). Returns (changed, scanned out
    /// directly, pixels composed).
    pub fn render_display(&mut self, d: usize) -> (bool, bool, u64) {
        let ds = &mut self.displays[d];
        ds.changed = false;
        ds.out_damage.clear();
        if ds.damage.is_empty() {
            return (false, ds.direct.is_some(), 0);
        }
        ds.changed = true;
        if let Some(frame) = self.direct_candidate(d) {
            let ds = &mut self.displays[d];
            ds.direct = Some(frame);
            ds.damage.clear();
            return (true, true, 0);
        }
        let ds = &mut self.displays[d];
        if ds.direct.take().is_some() {
            // The canvas missed everything while the display was scanned out.
            let b = ds.canvas.bounds();
            ds.damage.add(b);
        }
        let damage = std::mem::take(&mut ds.damage);
        let mut pixels = 0;
        for r in damage.rects() {
            pixels += self.compose_rect(d, r);
        }
        self.displays[d].out_damage = damage;
        (true, false, pixels)
    }

    /// The frame to scan out on display `d`, if its topmost visible source
    /// covers it 1:1, opaque, in a format the output takes.
    fn direct_candidate(&self, d: usize) -> Option<Frame> {
        let ds = &self.displays[d];
        if ds.scanout.is_empty() {
            return None;
        }
        let top = self
            .order
            .iter()
            .rev()
            .copied()
            .find(|&i| self.layout.sources[i].display == d && self.visible(i))?;
        let (cfg, layer) = (&self.layout.sources[top], &self.layers[top]);
        let frame = layer.frame.as_ref()?;
        let p = layer.placement?;
        let ok = layer.status == SourceStatus::Live
            && layer.subs.is_empty()
            && p.rotation == Rotation::R0
            && p.image == ds.canvas.bounds()
            && p.buffer_w == p.image.w
            && p.buffer_h == p.image.h
            && cfg.opacity == 255
            && !frame.format().has_alpha()
            && ds.scanout.contains(&frame.format())
            && frame.is_intact();
        ok.then(|| frame.clone())
    }

    /// Whether source `i` draws anything now.
    fn visible(&self, i: usize) -> bool {
        let cfg = &self.layout.sources[i];
        cfg.opacity > 0 && !self.layers[i].hidden && self.layers[i].visible_in(cfg)
    }

    fn compose_rect(&mut self, d: usize, r: &Rect) -> u64 {
        // Occlusion: start at the topmost layer that covers `r` opaquely;
        // the background and everything below it would be painted over.
        // (A list kept between frames: composing allocates nothing.)
        let mut on_display = std::mem::take(&mut self.on_display);
        on_display.clear();
        on_display.extend(self.order.iter().copied().filter(|&i| self.layout.sources[i].display == d && self.visible(i)));
        let first = on_display.iter().rposition(|&i| self.covers_opaquely(i, r));
        let layers = &on_display[first.unwrap_or(0)..];
        let fill = first.is_none().then_some(self.layout.displays[d].background);
        let (sources, states) = (&self.layout.sources, &self.layers);
        let canvas = &mut self.displays[d].canvas;
        let r = r.intersect(&canvas.bounds());
        let bands = self.bands.max(1).min(r.h.max(1) as usize);
        let pixels = if bands == 1 || r.area() < MIN_BAND_AREA * bands as i64 {
            compose_band(&mut canvas.band(), &r, fill, layers, sources, states, &mut self.scratch)
        } else {
            // Horizontal bands of `r` on threads of their own, each
            // writing only its own rows of the canvas.
            if self.band_scratch.len() < bands {
                self.band_scratch.resize_with(bands, Scratch::default);
            }
            let mut rest = canvas.band();
            let mut parts = Vec::with_capacity(bands);
            for k in 0..bands as i32 {
                let y1 = r.y + (r.h as i64 * (k as i64 + 1) / bands as i64) as i32;
                let (part, more) = rest.split_at(y1);
                parts.push(part);
                rest = more;
            }
            std::thread::scope(|scope| {
                let jobs: Vec<_> = parts
                    .into_iter()
                    .zip(self.band_scratch.iter_mut())
                    .map(|(mut part, scratch)| {
                        let clip = r.intersect(&part.bounds());
                        scope.spawn(move || compose_band(&mut part, &clip, fill, layers, sources, states, scratch))
                    })
                    .collect();
                jobs.into_iter().map(|j| j.join().unwrap_or(0)).sum()
            })
        };
        self.on_display = on_display;
        pixels
    }

    /// Composes with `n` horizontal bands on as many threads (1: on the
    /// caller's thread only, the default). Small damage stays on one.
    pub fn set_bands(&mut self, n: usize) {
        self.bands = n.clamp(1, 16);
    }

    /// Whether source `i` paints every pixel of `r` opaquely (a live frame
    /// without alpha at full opacity whose picture covers `r`).
    fn covers_opaquely(&self, i: usize, r: &Rect) -> bool {
        let (cfg, layer) = (&self.layout.sources[i], &self.layers[i]);
        layer.status == SourceStatus::Live
            && cfg.opacity == 255
            && layer.frame.as_ref().is_some_and(|f| !f.format().has_alpha() && f.is_intact())
            && layer.placement.is_some_and(|p| p.clip.contains_rect(r))
    }

    /// Routes one display event to the source under it (or holding it).
    pub fn input(&mut self, ev: &DisplayEvent) {
        match *ev {
            DisplayEvent::TouchDown { display, id, x, y } => {
                if let Some(i) = self.hit(display, x, y) {
                    self.router.touches.insert(id, i);
                    self.focus_keyboard_on_touch(i);
                    self.send_at(i, x, y, |x, y| GuestEvent::TouchDown { id, x, y });
                }
            }
            DisplayEvent::TouchMotion { id, x, y, .. } => {
                if let Some(&i) = self.router.touches.get(&id) {
                    self.send_at(i, x, y, |x, y| GuestEvent::TouchMotion { id, x, y });
                }
            }
            DisplayEvent::TouchUp { id } => {
                if let Some(i) = self.router.touches.remove(&id) {
                    self.send(i, &GuestEvent::TouchUp { id });
                }
            }
            DisplayEvent::TouchFrame => {
                let mut targets: Vec<usize> = self.router.touches.values().copied().collect();
                targets.sort_unstable();
                targets.dedup();
                for i in targets {
                    self.send(i, &GuestEvent::TouchFrame);
                }
            }
            DisplayEvent::PointerMotion { display, x, y } => {
                self.router.pointer_at = Some((display, x, y));
                let under = if self.router.buttons_down > 0 {
                    self.router.pointer_focus
                } else {
                    self.hit(display, x, y)
                };
                if under != self.router.pointer_focus {
                    if let Some(old) = self.router.pointer_focus {
                        self.send(old, &GuestEvent::PointerLeave);
                    }
                    self.router.pointer_focus = under;
                    if let Some(i) = under {
                        self.send_at(i, x, y, |x, y| GuestEvent::PointerEnter { x, y });
                    }
                } else if let Some(i) = under {
                    self.send_at(i, x, y, |x, y| GuestEvent::PointerMotion { x, y });
                }
            }
            DisplayEvent::Button { code, pressed } => {
                if pressed {
                    self.router.buttons_down += 1;
                } else {
                    self.router.buttons_down = self.router.buttons_down.saturating_sub(1);
                }
                if let Some(i) = self.router.pointer_focus {
                    if pressed {
                        self.focus_keyboard_on_touch(i);
                    }
                    self.send(i, &GuestEvent::Button { code, pressed });
                }
            }
            DisplayEvent::Key { code, pressed } => {
                if let Some(i) = self.router.keyboard {
                    self.send(i, &GuestEvent::Key { code, pressed });
                }
            }
        }
    }

    /// The source with the keyboard, if any.
    pub fn keyboard_focus(&self) -> Option<SourceId> {
        self.router.keyboard.map(SourceId)
    }

    /// The topmost source taking input whose picture covers display (x, y).
    pub fn hit(&self, display: usize, x: f64, y: f64) -> Option<usize> {
        let (px, py) = (x.floor() as i32, y.floor() as i32);
        self.order.iter().rev().copied().find(|&i| {
            let (cfg, layer) = (&self.layout.sources[i], &self.layers[i]);
            cfg.display == display
                && cfg.input
                && layer.frame.is_some()
                && layer.status != SourceStatus::Vanished
                && !layer.hidden
                && cfg.opacity > 0
                && layer.placement.is_some_and(|p| p.clip.contains(px, py))
        })
    }

    /// Maps display (x, y) into source `i`'s buffer coordinates.
    pub fn to_source(&self, i: usize, x: f64, y: f64) -> Option<(f64, f64)> {
        self.layers[i].placement.map(|p| p.transform().apply(x, y))
    }

    fn focus_keyboard_on_touch(&mut self, i: usize) {
        if self.layout.keyboard_focus != FocusPolicy::LastTouched || self.router.keyboard == Some(i) {
            return;
        }
        if let Some(old) = self.router.keyboard.replace(i) {
            self.send(old, &GuestEvent::KeyboardFocus(false));
        }
        self.send(i, &GuestEvent::KeyboardFocus(true));
    }

    fn send_at(&self, i: usize, x: f64, y: f64, make: impl FnOnce(f64, f64) -> GuestEvent) {
        if let Some((u, v)) = self.to_source(i, x, y) {
            self.send(i, &make(u, v));
        }
    }

    fn send(&self, i: usize, ev: &GuestEvent) {
        let mut st = self.sources.slot(SourceId(i)).lock();
        if let Some(sink) = st.input.as_mut() {
            sink.event(ev);
        }
    }
}

impl LayerState {
    fn visible_in(&self, cfg: &SourceConfig) -> bool {
        match self.status {
            SourceStatus::Waiting => false,
            SourceStatus::Live => self.frame.is_some(),
            _ => !matches!(cfg.fallback, Fallback::Hide),
        }
    }
}

/// Fewest pixels per band worth a thread of its own.
const MIN_BAND_AREA: i64 = 64 * 1024;

/// Composes `clip` of a band: the background (`fill`), then `layers`
/// (source indices, bottom first).
fn compose_band(band: &mut Band<'_>, clip: &Rect, fill: Option<u32>, layers: &[usize], sources: &[SourceConfig], states: &[LayerState], scratch: &mut Scratch) -> u64 {
    let mut pixels = 0;
    if let Some(bg) = fill {
        band.fill(clip, bg);
        pixels += clip.intersect(&band.bounds()).area() as u64;
    }
    for &i in layers {
        pixels += draw_source(band, clip, &sources[i], &states[i], scratch);
    }
    pixels
}

/// Draws one source (or its fallback) into `canvas` within `clip`.
fn draw_source(canvas: &mut Band<'_>, clip: &Rect, cfg: &SourceConfig, layer: &LayerState, scratch: &mut Scratch) -> u64 {
    // The display's bounds, not the band's: a band draws its rows of the
    // same places a whole canvas would.
    let bounds = canvas.canvas_bounds();
    let dest = cfg.rect.intersect(&bounds);
    let straight_alpha = cfg.alpha == AlphaMode::Straight;
    let draw_frame = |canvas: &mut Band<'_>, scratch: &mut Scratch, frame: &Frame, p: &Placement, filter: Filter, dim: u8, straight: bool| {
        let l = compose::Layer {
            frame,
            placement: p,
            filter,
            opacity: cfg.opacity,
            dim,
            straight_alpha: straight,
        };
        compose::draw(canvas, clip, &l, scratch)
    };
    // A cluster's region is its own: whatever its frame leaves uncovered
    // (letterboxing, alpha) is black, never what lies beneath.
    let mut n = 0;
    let region = dest.intersect(clip);
    // (Skipped where an opaque live frame paints every pixel of it anyway.)
    let painted_over = !layer.status.shows_fallback()
        && cfg.opacity == 255
        && layer.frame.as_ref().is_some_and(|f| !f.format().has_alpha() && f.is_intact())
        && layer.placement.is_some_and(|p| p.clip.contains_rect(&region));
    if cfg.role == Role::Cluster && !painted_over {
        canvas.fill(&dest.intersect(clip), 0x000000);
        n += dest.intersect(clip).area() as u64;
    }
    let draw_subs = |canvas: &mut Band<'_>, scratch: &mut Scratch, dim: u8, below: bool| {
        let mut n = 0;
        for (f, p, _) in layer.subs.iter().filter(|s| s.2 == below) {
            if p.clip.overlaps(clip) {
                n += draw_frame(canvas, scratch, f, p, cfg.filter, dim, straight_alpha);
            }
        }
        n
    };
    if !layer.status.shows_fallback() {
        return n + match (&layer.frame, &layer.placement) {
            (Some(f), Some(p)) => {
                draw_subs(canvas, scratch, 255, true) + draw_frame(canvas, scratch, f, p, cfg.filter, 255, straight_alpha) + draw_subs(canvas, scratch, 255, false)
            }
            _ => 0,
        };
    }
    // A stale gauge or lamp must not stay readable: a plate, never dimmed.
    let plate_only = cfg.role != Role::Normal;
    match &cfg.fallback {
        Fallback::Hide => n,
        Fallback::Image(img) => {
            let p = Placement::new(
                img.width() as i32,
                img.height() as i32,
                cfg.rect,
                bounds,
                Rotation::R0,
                Scaling::Fit,
            );
            canvas.fill(&dest.intersect(clip), PLATE_RGB);
            n + draw_frame(canvas, scratch, img, &p, Filter::Bilinear, 255, false)
        }
        Fallback::Dim => {
            match (&layer.frame, &layer.placement) {
                (Some(f), Some(p)) if f.is_intact() && !plate_only => {
                    n += draw_subs(canvas, scratch, DIM, true) + draw_frame(canvas, scratch, f, p, cfg.filter, DIM, straight_alpha) + draw_subs(canvas, scratch, DIM, false)
                }
                _ => {
                    canvas.fill(&dest.intersect(clip), PLATE_RGB);
                    n += dest.intersect(clip).area() as u64;
                }
            }
            font::draw_label_in(canvas, clip, &dest, &cfg.label, LABEL_RGB);
            n
        }
    }
}

/// The engine's single-layer primitive: draws `frame` placed by `placement`
/// into `canvas` within `clip` (premultiplied OVER, or a copy when opaque),
/// and returns the pixels written. The compositor is built on it; it is
/// public for benchmarks and for tools that compose outside a layout.
pub fn compose_frame(canvas: &mut Canvas, clip: &Rect, frame: &Frame, placement: &Placement, filter: Filter, opacity: u8) -> u64 {
    Composer::default().compose(canvas, clip, frame, placement, filter, opacity)
}

/// [`compose_frame`] with its scratch buffers kept between calls, so
/// repeated composition allocates nothing.
#[derive(Default)]
pub struct Composer {
    scratch: Scratch,
}

impl Composer {
    /// Composes like [`compose_frame`].
    pub fn compose(&mut self, canvas: &mut Canvas, clip: &Rect, frame: &Frame, placement: &Placement, filter: Filter, opacity: u8) -> u64 {
        let l = compose::Layer {
            frame,
            placement,
            filter,
            opacity,
            dim: 255,
            straight_alpha: false,
        };
        compose::draw(&mut canvas.band(), clip, &l, &mut self.scratch)
    }
}

/// A frame as a canvas (what a display scanning it out shows).
pub fn frame_canvas(f: &Frame) -> Canvas {
    let mut c = Canvas::new(f.width(), f.height(), 0);
    for y in 0..f.height() {
        for x in 0..f.width() {
            c.set(x, y, f.pixel(x, y));
        }
    }
    c
}
