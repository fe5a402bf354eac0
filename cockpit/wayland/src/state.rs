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
pub(crate) struct ClientState {
    /// The server's count of connected clients.
    pub clients: Arc<AtomicUsize>,
    /// What this client may make the server hold (see `quota`).
    pub budget: Arc<crate::quota::Budget>,
    /// Its place among the connections, freed with it.
    _seat: crate::quota::Seat,
}

impl ClientState {
    pub fn new(clients: Arc<AtomicUsize>, seat: crate::quota::Seat) -> ClientState {
        ClientState {
            clients,
            budget: crate::quota::Budget::client(&seat.user),
            _seat: seat,
        }
    }
}

impl ClientData for ClientState {
    fn initialized(&self, _id: ClientId) {
        self.clients.fetch_add(1, Ordering::SeqCst);
    }
    fn disconnected(&self, _id: ClientId, _reason: DisconnectReason) {
        self.clients.fetch_sub(1, Ordering::SeqCst);
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
    /// Its sub-surface role, if it has that one.
    pub sub: Option<crate::subsurface::Sub>,
    /// Its `ivi_surface` role and id, if it has that one.
    pub ivi: Option<(crate::ivi::protocol::ivi_surface::IviSurface, u32)>,
    /// The user its client runs as (from the socket's credentials).
    pub uid: Option<u32>,
    /// Its sub-surfaces bottom to top, and an order set since (applied on
    /// its commit).
    pub stack: Vec<ObjectId>,
    pub stack_pending: Option<Vec<ObjectId>>,
    /// On a toplevel with sub-surfaces: its tree changed since it was last
    /// handed over, and where (root picture coordinates; `None`: all).
    pub tree_dirty: bool,
    pub tree_damage: Option<Damage>,
    /// On a sub-surface: where its picture was last shown, in its root's
    /// picture.
    pub shown_at: Option<Rect>,
}

impl Surface {
    pub fn new(resource: WlSurface, client: ClientId, uid: Option<u32>) -> Surface {
        Surface {
            resource,
            client,
            pending: Default::default(),
            frames_due: Vec::new(),
            xdg: None,
            toplevel: None,
            app_id: None,
            configured: false,
            handle: None,
            content: None,
            spare: None,
            since_spare: None,
            unread: None,
            warned: false,
            entered: None,
            viewport_object: None,
            viewport: Default::default(),
            input_scale: (1.0, 1.0),
            resubmit: false,
            unread_feedback: Vec::new(),
            shown_feedback: Vec::new(),
            sub: None,
            ivi: None,
            uid,
            stack: Vec::new(),
            stack_pending: None,
            tree_dirty: false,
            tree_damage: None,
            shown_at: None,
        }
    }
}

impl Surface {
    /// Adds damage to the tree this surface is the top of (`None`: all).
    pub fn tree_mark(&mut self, r: Option<Rect>) {
        match (r, self.tree_dirty) {
            (None, _) => self.tree_damage = None,
            (Some(r), true) => {
                if let Some(d) = self.tree_damage.as_mut() {
                    d.add(r);
                }
            }
            (Some(r), false) => {
                let mut d = Damage::new();
                d.add(r);
                self.tree_damage = Some(d);
            }
        }
        self.tree_dirty = true;
    }
}

/// The surface's picture, cropped by its viewport, and its size in surface
/// coordinates.
pub(crate) fn picture(s: &Surface) -> Option<(cockpit_core::Frame, (u32, u32))> {
    let c = s.content.as_ref()?;
    // `commit` refused crops outside the buffer; a later, smaller buffer
    // makes the crop fall back to all of it rather than read outside.
    let (x, y, w, h) = s.viewport.crop(c.width, c.height).unwrap_or((0, 0, c.width, c.height));
    let bpp = c.format.bytes_per_pixel();
    let stride = c.width as usize * bpp;
    let data: Arc<dyn cockpit_core::FrameData> = c.data.clone();
    match cockpit_core::Frame::new(data, y as usize * stride + x as usize * bpp, w, h, stride, c.format) {
        Ok(f) => Some((f, s.viewport.dst.map_or((w, h), |(dw, dh)| (dw as u32, dh as u32)))),
        Err(e) => {
            eprintln!("cockpit-wayland: {e}");
            None
        }
    }
}

/// Buffer damage `d` in the coordinates of the picture cropped to
/// `(x, y, w, h)`.
fn in_crop(d: &Damage, (x, y, w, h): (u32, u32, u32, u32)) -> impl Iterator<Item = Rect> + '_ {
    let shown = Rect::new(x as i32, y as i32, w as i32, h as i32);
    d.rects().iter().map(move |r| {
        let r = r.intersect(&shown);
        Rect::new(r.x - shown.x, r.y - shown.y, r.w, r.h)
    })
}

/// Hands the surface's picture, cropped by its viewport, to its source with
/// `damage` (buffer coordinates; `None`: all of it) and its sub-surfaces'
/// pictures, if it has any (their damage is in `tree`, in the cropped
/// picture's coordinates).
fn submit(s: &mut Surface, damage: Option<&Damage>, subs: Option<(Vec<cockpit_core::SubPicture>, Option<Damage>)>) {
    let Some(h) = &s.handle else { return };
    let Some(c) = s.content.as_ref() else { return };
    let (x, y, w, hgt) = s.viewport.crop(c.width, c.height).unwrap_or((0, 0, c.width, c.height));
    s.input_scale = s.viewport.input_scale(w, hgt);
    let Some((frame, _)) = picture(s) else { return };
    let moved = damage.map(|d| {
        let mut moved = Damage::new();
        in_crop(d, (x, y, w, hgt)).for_each(|r| moved.add(r));
        moved
    });
    match (moved, subs) {
        (None, None) => h.submit(frame),
        (Some(d), None) => h.submit_damaged(frame, d.rects()),
        (own, Some((subs, tree))) => {
            let damage = match (own, tree) {
                (Some(mut d), Some(t)) => {
                    d.add_all(&t);
                    Some(d)
                }
                _ => None,
            };
            h.submit_with_subs(frame, subs, damage.as_ref().map(Damage::rects))
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
    /// Sub-surfaces each client has (bounded: see `subsurface`).
    pub subs_per_client: HashMap<ClientId, usize>,
    /// The surface holding each ivi id.
    pub ivi_ids: HashMap<u32, ObjectId>,
    /// Connections per user, and the budget they share (see `quota`).
    pub connections: Arc<crate::quota::Connections>,
}

/// `wl_output`s one client may bind that get enter and leave events (more
/// work, but stay silent: a client cannot grow this list without bound).
pub(crate) const MAX_OUTPUTS_PER_CLIENT: usize = 32;

impl State {
    pub fn new(sources: Sources, dh: &DisplayHandle, options: crate::Options) -> State {
        crate::protocol::create_globals(dh, sources.layout(), options);
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
            subs_per_client: HashMap::new(),
            ivi_ids: HashMap::new(),
            connections: crate::quota::Connections::new(),
        }
    }

    /// Sends `wl_surface.enter`/`leave` where a surface's display changed:
    /// shown on the display of its layout source, or on none.
    pub fn update_outputs(&mut self) {
        let layout = self.sources.layout().clone();
        // A sub-surface is where its toplevel is, if it has a picture.
        let ons: HashMap<ObjectId, Option<usize>> = self
            .surfaces
            .iter()
            .map(|(id, s)| {
                let top = crate::subsurface::root_of(self, id).and_then(|r| self.surfaces.get(&r));
                let on = match (&s.content, top.and_then(|t| t.handle.as_ref().filter(|_| t.content.is_some()))) {
                    (Some(_), Some(h)) if s.resource.is_alive() && h.shown() => Some(layout.sources[h.id().0].display),
                    _ => None,
                };
                (id.clone(), on)
            })
            .collect();
        for (id, s) in self.surfaces.iter_mut() {
            let on = ons.get(id).copied().flatten();
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

    /// After `displays` presented a frame: frame callbacks fire for the
    /// surfaces on them (each display paces its own clients; a surface on
    /// no display, hidden or not placed, is not asked to draw), and
    /// presentation feedback is answered.
    pub fn frame_presented(&mut self, displays: &[usize]) {
        let t = self.time();
        self.presents += 1;
        let layout = self.sources.layout().clone();
        for s in self.surfaces.values_mut() {
            let on = s.entered.filter(|d| displays.contains(d));
            if let Some(d) = on {
                for cb in s.frames_due.drain(..) {
                    cb.done(t);
                }
                let refresh = 1_000_000_000 / layout.displays[d].refresh_hz.unwrap_or(60).max(1);
                crate::presentation::presented(s, self.presents, refresh, &self.outputs);
            } else if s.entered.is_none() {
                crate::presentation::presented(s, self.presents, 0, &self.outputs);
            }
        }
    }

    /// Copies each surface's newest committed buffer in and hands it to
    /// its source (a sub-surface's, with its toplevel's); a client that
    /// lied about its memory gets its error.
    pub fn take_commits(&mut self) {
        let next = self.presents + 2;
        // Sub-surfaces whose toplevel is placed: their buffers are kept.
        let kept: std::collections::HashSet<ObjectId> = self
            .surfaces
            .iter()
            .filter(|(_, s)| s.sub.is_some())
            .filter(|(id, _)| crate::subsurface::root_of(self, id).and_then(|r| self.surfaces.get(&r)).is_some_and(|r| r.handle.is_some()))
            .map(|(id, _)| id.clone())
            .collect();
        let trees: std::collections::HashSet<ObjectId> = self
            .surfaces
            .iter()
            .filter(|(id, s)| s.handle.is_some() && (s.tree_dirty || crate::subsurface::has_children(self, id)))
            .map(|(id, _)| id.clone())
            .collect();
        let mut changed_subs = Vec::new();
        for (id, s) in self.surfaces.iter_mut() {
            // What is handed over now is composed in the next frame, whose
            // presentation is the one after the current.
            let fbs = std::mem::take(&mut s.unread_feedback);
            s.shown_feedback.extend(fbs.into_iter().map(|fb| (next, fb)));
            // A viewport change since the last hand-over shows all of the
            // picture anew, whatever the commits' damage says.
            let recrop = std::mem::take(&mut s.resubmit);
            let in_tree = trees.contains(id);
            if s.sub.is_some() && !kept.contains(id) && s.content.is_some() {
                // Its tree is not placed (any more): its pictures go.
                s.content = None;
                s.spare = None;
                s.since_spare = None;
            }
            let Some((buffer, damage)) = s.unread.take() else {
                if recrop && s.sub.is_some() {
                    changed_subs.push((id.clone(), true));
                } else if recrop && in_tree {
                    s.tree_mark(None);
                } else if recrop {
                    submit(s, None, None);
                }
                continue;
            };
            if s.handle.is_none() && !kept.contains(id) {
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
            if s.sub.is_some() {
                changed_subs.push((id.clone(), full || recrop));
            } else if in_tree {
                // Shown with its sub-surfaces below; the damage in the
                // cropped picture's coordinates (or all of it).
                let crop = s.content.as_ref().and_then(|c| s.viewport.crop(c.width, c.height));
                match (damage, crop) {
                    (Some(d), Some(crop)) => {
                        for r in in_crop(&d, crop) {
                            s.tree_mark(Some(r));
                        }
                    }
                    _ => s.tree_mark(None),
                }
            } else {
                submit(s, damage.as_ref(), None);
            }
        }
        // A sub-surface's new picture damages where it was shown (all of
        // the tree when it was not shown yet or changed shape).
        for (id, full) in changed_subs {
            let at = self.surfaces.get(&id).and_then(|s| s.shown_at).filter(|_| !full);
            crate::subsurface::mark(self, &id, at);
        }
        for root in trees {
            let Some(r) = self.surfaces.get(&root).filter(|r| r.tree_dirty) else { continue };
            // The scale of the picture handed over now (`submit` records it
            // only afterwards).
            let scale = match &r.content {
                Some(c) => {
                    let (_, _, w, h) = r.viewport.crop(c.width, c.height).unwrap_or((0, 0, c.width, c.height));
                    r.viewport.input_scale(w, h)
                }
                None => r.input_scale,
            };
            let pics = crate::subsurface::pictures(self, &root, scale);
            let mut tree = self.surfaces.get_mut(&root).and_then(|r| {
                r.tree_dirty = false;
                r.tree_damage.take()
            });
            let mut subs = Vec::with_capacity(pics.len());
            for (id, pic) in pics {
                if let Some(s) = self.surfaces.get_mut(&id) {
                    // Moved: where it was and where it is both change.
                    if s.shown_at != Some(pic.at) {
                        if let (Some(t), Some(old)) = (tree.as_mut(), s.shown_at) {
                            t.add(old);
                            t.add(pic.at);
                        }
                    }
                    s.shown_at = Some(pic.at);
                }
                subs.push(pic);
            }
            if let Some(r) = self.surfaces.get_mut(&root) {
                submit(r, Some(&Damage::new()), Some((subs, tree)));
            }
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
