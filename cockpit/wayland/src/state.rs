//! The server's state: surfaces, their roles and contents, seat devices.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use cockpit_core::{Damage, GuestEvent, PixelFormat, Rect, SourceHandle, Sources};
use wayland_protocols::wp::presentation_time::server::wp_presentation_feedback::WpPresentationFeedback;
use wayland_protocols::xdg::shell::server::{xdg_surface::XdgSurface, xdg_toplevel::XdgToplevel};
use wayland_server::backend::{ClientData, ClientId, DisconnectReason, ObjectId};
use wayland_server::protocol::{wl_buffer::WlBuffer, wl_callback::WlCallback, wl_output::WlOutput, wl_surface::WlSurface};
use wayland_server::{DisplayHandle, Resource};

/// Per-client data: counts clients in and out.
pub(crate) struct ClientState(pub Arc<AtomicUsize>);

impl ClientData for ClientState {
    fn initialized(&self, _id: ClientId) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn disconnected(&self, _id: ClientId, _reason: DisconnectReason) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a commit applies.
#[derive(Default)]
pub(crate) struct Pending {
    /// `Some(None)`: detach.
    pub buffer: Option<Option<WlBuffer>>,
    pub damage: Damage,
    pub frames: Vec<WlCallback>,
    /// The viewport as it will be after the commit, if it changed.
    pub viewport: Option<crate::viewporter::Viewport>,
    /// `wp_presentation` feedback for this commit.
    pub feedback: Vec<WpPresentationFeedback>,
}

/// A committed picture, copied out of the client's pool.
pub(crate) struct Content {
    pub data: Arc<Vec<u8>>,
    pub width: u32,
    pub height: u32,
    pub format: PixelFormat,
}

pub(crate) struct Surface {
    pub resource: WlSurface,
    pub client: ClientId,
    pub pending: Pending,
    pub frames_due: Vec<WlCallback>,
    pub xdg: Option<XdgSurface>,
    pub toplevel: Option<XdgToplevel>,
    pub app_id: Option<String>,
    /// The initial configure was sent.
    pub configured: bool,
    pub handle: Option<SourceHandle>,
    pub content: Option<Content>,
    /// The picture before `content` (the compositor has let go of it by the
    /// next commit), reused for the next copy, and what changed from it to
    /// `content` (`None`: unknown). Two pictures per placed surface is all
    /// the memory a client's commits cost.
    pub spare: Option<Content>,
    pub since_spare: Option<Damage>,
    /// The newest committed buffer, not copied yet, and its damage since
    /// `content` (`None`: all of it). Copied once per compositor frame
    /// ([`State::take_commits`]): a client committing faster costs no more.
    pub unread: Option<(WlBuffer, Option<Damage>)>,
    pub warned: bool,
    /// The display the surface was last told it is on (`wl_surface.enter`).
    pub entered: Option<usize>,
    /// Its `wp_viewport`, if it has one, and the viewport in effect.
    pub viewport_object: Option<wayland_protocols::wp::viewporter::server::wp_viewport::WpViewport>,
    pub viewport: crate::viewporter::Viewport,
    /// Surface coordinates per pixel of the shown (cropped) picture.
    pub input_scale: (f64, f64),
    /// The viewport changed without a new buffer: show the picture anew.
    pub resubmit: bool,
    /// Presentation feedback of the commit in `unread`, and of commits
    /// handed to the compositor with the frame count that will show them.
    pub unread_feedback: Vec<WpPresentationFeedback>,
    pub shown_feedback: Vec<(u64, WpPresentationFeedback)>,
}

/// Hands the surface's picture, cropped by its viewport, to its source with
/// `damage` (buffer coordinates; `None`: all of it).
fn submit(s: &mut Surface, damage: Option<&Damage>) {
    let (Some(c), Some(h)) = (s.content.as_ref(), &s.handle) else { return };
    // `commit` refused crops outside the buffer; a later, smaller buffer
    // makes the crop fall back to all of it rather than read outside.
    let (x, y, w, hgt) = s.viewport.crop(c.width, c.height).unwrap_or((0, 0, c.width, c.height));
    s.input_scale = s.viewport.input_scale(w, hgt);
    let bpp = c.format.bytes_per_pixel();
    let stride = c.width as usize * bpp;
    let data: Arc<dyn cockpit_core::FrameData> = c.data.clone();
    let frame = match cockpit_core::Frame::new(data, y as usize * stride + x as usize * bpp, w, hgt, stride, c.format) {
        Ok(f) => f,
        Err(e) => return eprintln!("cockpit-wayland: {e}"),
    };
    match damage {
        None => h.submit(frame),
        Some(d) => {
            // Into the cropped picture's coordinates.
            let shown = Rect::new(x as i32, y as i32, w as i32, hgt as i32);
            let mut moved = Damage::new();
            for r in d.rects() {
                let r = r.intersect(&shown);
                moved.add(Rect::new(r.x - shown.x, r.y - shown.y, r.w, r.h));
            }
            h.submit_damaged(frame, moved.rects())
        }
    }
}

pub(crate) type InputQueue = Arc<Mutex<Vec<(ObjectId, GuestEvent)>>>;

pub(crate) struct State {
    pub sources: Sources,
    pub surfaces: HashMap<ObjectId, Surface>,
    pub seat: crate::seat::SeatState,
    pub input: InputQueue,
    pub serial: u32,
    pub started: Instant,
    pub clients: Arc<AtomicUsize>,
    /// Bound `wl_output`s and the display each stands for.
    pub outputs: Vec<(WlOutput, usize)>,
    /// Frames presented so far (`wp_presentation`'s sequence).
    pub presents: u64,
}

/// `wl_output`s one client may bind that get enter and leave events (more
/// work, but stay silent: a client cannot grow this list without bound).
pub(crate) const MAX_OUTPUTS_PER_CLIENT: usize = 32;

impl State {
    pub fn new(sources: Sources, dh: &DisplayHandle) -> State {
        crate::protocol::create_globals(dh, sources.layout());
        State {
            sources,
            surfaces: HashMap::new(),
            seat: Default::default(),
            input: Arc::default(),
            serial: 0,
            started: Instant::now(),
            clients: Arc::default(),
            outputs: Vec::new(),
            presents: 0,
        }
    }

    /// Sends `wl_surface.enter`/`leave` where a surface's display changed:
    /// shown on the display of its layout source, or on none.
    pub fn update_outputs(&mut self) {
        let layout = self.sources.layout().clone();
        for s in self.surfaces.values_mut() {
            let on = match (&s.content, &s.handle) {
                (Some(_), Some(h)) if s.resource.is_alive() => Some(layout.sources[h.id().0].display),
                _ => None,
            };
            if on == s.entered {
                continue;
            }
            let client = s.resource.client().map(|c| c.id());
            for (o, d) in &self.outputs {
                if o.client().map(|c| c.id()) != client || !s.resource.is_alive() {
                    continue;
                }
                if s.entered == Some(*d) {
                    s.resource.leave(o);
                }
                if on == Some(*d) {
                    s.resource.enter(o);
                }
            }
            s.entered = on;
        }
    }

    pub fn next_serial(&mut self) -> u32 {
        self.serial = self.serial.wrapping_add(1);
        self.serial
    }

    /// Milliseconds for event timestamps.
    pub fn time(&self) -> u32 {
        self.started.elapsed().as_millis() as u32
    }

    pub fn frame_presented(&mut self) {
        let t = self.time();
        self.presents += 1;
        let refresh = |s: &Surface| {
            let l = self.sources.layout();
            s.entered.map_or(16_666_666, |d| 1_000_000_000 / l.displays[d].refresh_hz.unwrap_or(60).max(1))
        };
        for s in self.surfaces.values_mut() {
            for cb in s.frames_due.drain(..) {
                cb.done(t);
            }
            let r = refresh(s);
            crate::presentation::presented(s, self.presents, r, &self.outputs);
        }
    }

    /// Copies each surface's newest committed buffer in and hands it to
    /// its source; a client that lied about its memory gets its error.
    pub fn take_commits(&mut self) {
        let next = self.presents + 2;
        for s in self.surfaces.values_mut() {
            // What is handed over now is composed in the next frame, whose
            // presentation is the one after the current.
            let fbs = std::mem::take(&mut s.unread_feedback);
            s.shown_feedback.extend(fbs.into_iter().map(|fb| (next, fb)));
            // A viewport change since the last hand-over shows all of the
            // picture anew, whatever the commits' damage says.
            let recrop = std::mem::take(&mut s.resubmit);
            let Some((buffer, damage)) = s.unread.take() else {
                if recrop {
                    submit(s, None);
                }
                continue;
            };
            if s.handle.is_none() {
                // Not placed (any more): nothing is copied or kept.
                buffer.release();
                s.content = None;
                s.spare = None;
                s.since_spare = None;
                continue;
            }
            // `None` (all of it) whenever the shape changed: see `commit`.
            let full = damage.is_none();
            let damage = damage.unwrap_or_default();
            // The spare picture lags by its own damage and this commit's.
            let catch_up = s.since_spare.take().filter(|_| !full).map(|mut d| {
                d.add_all(&damage);
                d
            });
            match crate::shm::copy_in(&buffer, s.spare.take(), catch_up.as_ref().map(Damage::rects)) {
                Ok(Some(new)) => {
                    s.spare = s.content.replace(new);
                    s.since_spare = (!full).then_some(damage);
                }
                Ok(None) => s.content = None,
                Err(e) => {
                    e.post();
                    continue;
                }
            }
            buffer.release();
            let damage = if full || recrop { None } else { s.since_spare.clone() };
            submit(s, damage.as_ref());
        }
    }

    pub fn clients(&self) -> usize {
        self.clients.load(Ordering::SeqCst)
    }

    pub fn placed_app_ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .surfaces
            .values()
            .filter(|s| s.handle.is_some())
            .filter_map(|s| s.app_id.clone())
            .collect();
        v.sort();
        v
    }

    pub fn deliver_input(&mut self, dh: &DisplayHandle) {
        let events = std::mem::take(&mut *self.input.lock().unwrap_or_else(|e| e.into_inner()));
        for (surface, ev) in events {
            crate::seat::deliver(self, dh, &surface, &ev);
        }
    }
}
