//! Globals, `wl_compositor`, `wl_surface` (attach, damage, frame, commit),
//! `wl_region` and `wl_output`.

use cockpit_core::{Layout, Rect, SourceKey};
use wayland_protocols::xdg::shell::server::xdg_wm_base::XdgWmBase;
use wayland_server::backend::{ClientId, ObjectId};
use wayland_server::protocol::{
    wl_callback::WlCallback,
    wl_compositor::{self, WlCompositor},
    wl_output::{self, WlOutput},
    wl_region::{self, WlRegion},
    wl_seat::WlSeat,
    wl_shm::WlShm,
    wl_surface::{self, WlSurface},
};
use wayland_server::{Client, DataInit, Dispatch, DisplayHandle, GlobalDispatch, New, Resource};

use crate::state::{Pending, State, Surface};

pub(crate) fn create_globals(dh: &DisplayHandle, layout: &Layout, options: crate::Options) {
    dh.create_global::<State, WlCompositor, ()>(4, ());
    dh.create_global::<State, WlShm, ()>(1, ());
    dh.create_global::<State, wayland_server::protocol::wl_subcompositor::WlSubcompositor, ()>(1, ());
    dh.create_global::<State, crate::ivi::protocol::ivi_application::IviApplication, ()>(1, ());
    dh.create_global::<State, WlSeat, ()>(5, ());
    if options.xdg_shell {
        dh.create_global::<State, XdgWmBase, ()>(2, ());
    }
    dh.create_global::<State, wayland_protocols::wp::viewporter::server::wp_viewporter::WpViewporter, ()>(1, ());
    dh.create_global::<State, wayland_protocols::wp::presentation_time::server::wp_presentation::WpPresentation, ()>(1, ());
    dh.create_global::<State, wayland_protocols::wp::linux_dmabuf::zv1::server::zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1, ()>(
        crate::linux_dmabuf::VERSION,
        (),
    );
    for d in 0..layout.displays.len() {
        dh.create_global::<State, WlOutput, usize>(4, d);
    }
}

impl GlobalDispatch<WlCompositor, ()> for State {
    fn bind(_: &mut Self, _: &DisplayHandle, _: &Client, res: New<WlCompositor>, _: &(), init: &mut DataInit<'_, Self>) {
        init.init(res, ());
    }
}

impl Dispatch<WlCompositor, ()> for State {
    fn request(
        state: &mut Self,
        client: &Client,
        _: &WlCompositor,
        req: wl_compositor::Request,
        _: &(),
        dh: &DisplayHandle,
        init: &mut DataInit<'_, Self>,
    ) {
        match req {
            wl_compositor::Request::CreateSurface { id } => {
                let resource = init.init(id, ());
                let uid = client.get_credentials(dh).ok().map(|c| c.uid);
                state.surfaces.insert(resource.id(), Surface::new(resource, client.id(), uid));
            }
            wl_compositor::Request::CreateRegion { id } => {
                init.init(id, ());
            }
            _ => {}
        }
    }
}

impl Dispatch<WlRegion, ()> for State {
    fn request(_: &mut Self, _: &Client, _: &WlRegion, _: wl_region::Request, _: &(), _: &DisplayHandle, _: &mut DataInit<'_, Self>) {
        // Opaque and input regions are not used: the layout decides input.
    }
}

impl Dispatch<WlCallback, ()> for State {
    fn request(
        _: &mut Self,
        _: &Client,
        _: &WlCallback,
        _: wayland_server::protocol::wl_callback::Request,
        _: &(),
        _: &DisplayHandle,
        _: &mut DataInit<'_, Self>,
    ) {
    }
}

impl Dispatch<WlSurface, ()> for State {
    fn request(
        state: &mut Self,
        _: &Client,
        res: &WlSurface,
        req: wl_surface::Request,
        _: &(),
        _: &DisplayHandle,
        init: &mut DataInit<'_, Self>,
    ) {
        let Some(s) = state.surfaces.get_mut(&res.id()) else { return };
        match req {
            wl_surface::Request::Attach { buffer, .. } => s.pending.buffer = Some(buffer),
            // Under a viewport, surface coordinates are not buffer ones:
            // surface damage then counts as all of the buffer.
            wl_surface::Request::Damage { .. } if s.pending.viewport.unwrap_or(s.viewport).is_set() => {
                s.pending.damage.add(Rect::new(0, 0, 16384, 16384));
            }
            // Buffer scale is always 1, so without a viewport surface and buffer damage agree.
            wl_surface::Request::Damage { x, y, width, height } | wl_surface::Request::DamageBuffer { x, y, width, height } => {
                // Damage merges and caps its rectangles: a client sending
                // millions costs a bounded amount of memory.
                s.pending.damage.add(Rect::new(x.clamp(-16384, 16384), y.clamp(-16384, 16384), width.clamp(0, 32768), height.clamp(0, 32768)));
            }
            wl_surface::Request::Frame { callback } => {
                let cb = init.init(callback, ());
                s.pending.frames.push(cb);
            }
            wl_surface::Request::Commit => crate::subsurface::commit(state, &res.id()),
            wl_surface::Request::SetBufferScale { scale } if scale != 1 => {
                res.post_error(wl_surface::Error::InvalidScale, "this compositor shows buffers at scale 1 only");
            }
            _ => {}
        }
    }

    fn destroyed(state: &mut Self, _: ClientId, res: &WlSurface, _: &()) {
        // Dropping the surface drops its source handle: the source vanished.
        // Gone from its parent's tree (its own sub-surfaces are no longer
        // in any placed tree: their parent chain is broken).
        crate::subsurface::unmap(state, &res.id());
        let Some(mut s) = state.surfaces.remove(&res.id()) else { return };
        if let Some((_, n)) = &s.ivi {
            if state.ivi_ids.get(n) == Some(&res.id()) {
                state.ivi_ids.remove(n);
            }
        }
        crate::presentation::discard(&mut s.pending.feedback);
        crate::presentation::discard(&mut s.unread_feedback);
        let mut shown: Vec<_> = s.shown_feedback.drain(..).map(|(_, fb)| fb).collect();
        crate::presentation::discard(&mut shown);
        if let Some((buffer, _)) = s.unread {
            buffer.release();
        }
    }
}

/// Applies a commit's state to surface `id`.
pub(crate) fn apply(state: &mut State, id: &ObjectId, mut pending: Pending) {
    use wayland_protocols::wp::viewporter::server::wp_viewport::Error::{BadSize, OutOfBuffer};
    let sources = state.sources.clone();
    let input = state.input.clone();
    // A sub-surface is kept at the size its placed toplevel allows.
    // (Each way at most half the limit a toplevel has: see below.)
    let root_place = crate::subsurface::root_of(state, id)
        .filter(|r| r != id)
        .and_then(|r| state.surfaces.get(&r))
        .and_then(|r| r.handle.as_ref().map(|h| h.preferred_size()))
        .map(|(w, h)| ((w / 2).max(1), (h / 2).max(1)));
    let Some(s) = state.surfaces.get_mut(id) else { return };
    let res = s.resource.clone();
    let res = &res;
    s.frames_due.extend(pending.frames.drain(..));
    // This commit's picture replaces one not yet handed over: that one
    // will never be presented.
    if pending.buffer.is_some() && s.unread.is_some() {
        crate::presentation::discard(&mut s.unread_feedback);
    }
    // Answers waiting per surface are bounded however often it commits.
    let room = crate::presentation::MAX_WAITING.saturating_sub(s.unread_feedback.len() + s.shown_feedback.len());
    if pending.feedback.len() > room {
        let mut over = pending.feedback.split_off(room);
        crate::presentation::discard(&mut over);
    }
    s.unread_feedback.append(&mut pending.feedback);
    let viewport_changed = pending.viewport.is_some_and(|v| v != s.viewport);
    if let Some(v) = pending.viewport {
        s.viewport = v;
    }
    if let Some([_, _, w, h]) = s.viewport.src.filter(|_| s.viewport.dst.is_none()) {
        if w.fract() != 0.0 || h.fract() != 0.0 {
            crate::viewporter::refuse(s, BadSize, format!("a {w}x{h} source is not whole pixels and there is no destination size"));
            return;
        }
    }
    // The crop must lie inside the buffer the surface will show.
    let shown = match &pending.buffer {
        Some(Some(b)) => crate::shm::size(b),
        Some(None) => None,
        // The newest committed buffer, read or not.
        None => match &s.unread {
            Some((b, _)) => crate::shm::size(b),
            None => s.content.as_ref().map(|c| (c.width, c.height)),
        },
    };
    if let Some((w, h)) = shown {
        if s.viewport.crop(w, h).is_none() {
            crate::viewporter::refuse(s, OutOfBuffer, format!("the source reaches outside the {w}x{h} buffer"));
            return;
        }
    }
    if viewport_changed && pending.buffer.is_none() {
        s.resubmit = true;
    }

    if s.toplevel.is_some() && !s.configured {
        // The initial commit of a toplevel: tell it the size its layout
        // rectangle wants (0x0, its choice, when the layout does not place it).
        let size = s
            .app_id
            .as_ref()
            .and_then(|a| sources.find(&SourceKey::AppId(a.clone())))
            .map(|id| sources.layout().sources[id.0].preferred_size())
            .unwrap_or((0, 0));
        crate::xdg::send_configure(s, size, &mut state.serial);
        s.configured = true;
        return;
    }

    let Some(attached) = pending.buffer else {
        return;
    };
    let Some(buffer) = attached else {
        // Detached: the surface is unmapped.
        if s.sub.is_some() && s.content.is_some() {
            s.content = None;
            s.spare = None;
            s.since_spare = None;
            if let Some((b, _)) = s.unread.take() {
                b.release();
            }
            crate::subsurface::mark_full(state, id);
            return;
        }
        s.content = None;
        s.spare = None;
        s.since_spare = None;
        s.handle = None;
        if let Some((b, _)) = s.unread.take() {
            b.release();
        }
        return;
    };
    if s.handle.is_none() {
        let key = match (&s.toplevel, &s.app_id, &s.ivi) {
            (Some(_), Some(app), _) => Some(SourceKey::AppId(app.clone())),
            (_, _, Some((_, n))) => Some(SourceKey::IviId(*n)),
            _ => None,
        };
        if let Some(key) = key {
            // The layout may tie the source to a user: a client names its
            // own app id, but not the user it runs as.
            let owner = sources.find(&key).and_then(|i| sources.layout().sources[i.0].client_uid);
            let claim = match owner {
                Some(u) if s.uid != Some(u) => Err(format!("it belongs to user {u}'s client")),
                _ => sources.connect(&key).map_err(|e| e.to_string()),
            };
            match claim {
                Ok(h) => {
                    let (q, id) = (input, res.id());
                    h.set_input(Box::new(move |e: &cockpit_core::GuestEvent| {
                        q.lock().unwrap_or_else(|p| p.into_inner()).push((id.clone(), e.clone()));
                    }));
                    s.handle = Some(h);
                }
                Err(e) if !s.warned => {
                    eprintln!("cockpit-wayland: surface {key:?} is not shown: {e}");
                    s.warned = true;
                }
                Err(_) => {}
            }
        }
    }
    // Only a surface the layout places is copied in, and only up to twice
    // its place each way: what a client commits elsewhere costs the
    // compositor nothing (nor its memory), however large or frequent.
    let Some((pw, ph)) = s.handle.as_ref().map(|h| h.preferred_size()).or(root_place) else {
        buffer.release();
        return;
    };
    if let Some((w, h)) = crate::shm::size(&buffer) {
        if w > pw.saturating_mul(2).max(1) || h > ph.saturating_mul(2).max(1) {
            res.post_error(
                wl_surface::Error::InvalidSize,
                format!("a {w}x{h} buffer is more than twice the {pw}x{ph} the layout gives this surface"),
            );
            return;
        }
    }
    // Kept for the compositor's next frame; one it replaces was never
    // read and goes back at once, its damage carried over. Damage counts
    // from the picture shown: a buffer of another shape is read whole.
    let reshaped = viewport_changed || s.content.as_ref().is_none_or(|c| !crate::shm::same_shape(&buffer, c));
    let damage = match s.unread.take() {
        Some((older, d)) => {
            if older.id() != buffer.id() {
                older.release();
            }
            d.filter(|_| !reshaped).map(|mut d| {
                d.add_all(&pending.damage);
                d
            })
        }
        None => (!reshaped).then_some(pending.damage),
    };
    s.unread = Some((buffer, damage));
}

impl GlobalDispatch<WlOutput, usize> for State {
    fn bind(state: &mut Self, _: &DisplayHandle, client: &Client, res: New<WlOutput>, d: &usize, init: &mut DataInit<'_, Self>) {
        let out = init.init(res, *d);
        let disp = &state.sources.layout().displays[*d];
        let (mm_w, mm_h) = disp.size_mm.unwrap_or((0, 0));
        out.geometry(
            0,
            0,
            mm_w as i32,
            mm_h as i32,
            wl_output::Subpixel::Unknown,
            "cockpit".into(),
            disp.name.clone(),
            wl_output::Transform::Normal,
        );
        out.mode(
            wl_output::Mode::Current | wl_output::Mode::Preferred,
            disp.width as i32,
            disp.height as i32,
            disp.refresh_hz.unwrap_or(60) as i32 * 1000,
        );
        if out.version() >= 2 {
            out.scale(1);
        }
        if out.version() >= 4 {
            out.name(disp.name.clone());
            out.description(format!("cockpit display \"{}\" ({}x{})", disp.name, disp.width, disp.height));
        }
        if out.version() >= 2 {
            out.done();
        }
        let bound = state.outputs.iter().filter(|(o, _)| o.client().is_some_and(|c| c.id() == client.id())).count();
        if bound < crate::state::MAX_OUTPUTS_PER_CLIENT {
            // A surface of this client already on that display learns it now.
            for s in state.surfaces.values() {
                if s.entered == Some(*d) && s.client == client.id() && s.resource.is_alive() {
                    s.resource.enter(&out);
                }
            }
            state.outputs.push((out, *d));
        }
    }
}

impl Dispatch<WlOutput, usize> for State {
    fn request(state: &mut Self, _: &Client, res: &WlOutput, req: wl_output::Request, _: &usize, _: &DisplayHandle, _: &mut DataInit<'_, Self>) {
        if let wl_output::Request::Release = req {
            state.outputs.retain(|(o, _)| o != res);
        }
    }

    fn destroyed(state: &mut Self, _: ClientId, res: &WlOutput, _: &usize) {
        state.outputs.retain(|(o, _)| o != res);
    }
}
