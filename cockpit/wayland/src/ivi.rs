//! `ivi_application`: automotive clients (written for weston's ivi-shell)
//! ask for their surface by number instead of by app id. The layout gives
//! a source `ivi_id = N`; the surface created with id N is shown there,
//! and told its size (`ivi_surface.configure`).
//!
//! Ids are checked against the layout: an id another live surface holds
//! is the `ivi_id` error, and so is an id whose source names a
//! `client_uid` the client does not run as (the id is the client's claim,
//! its user is what the kernel says). An id the layout does not place is
//! accepted and not shown, as an unplaced app id is.

use wayland_server::backend::{ClientId, ObjectId};
use wayland_server::{Client, DataInit, Dispatch, DisplayHandle, GlobalDispatch, New, Resource};

use crate::state::State;

/// Code generated from `protocols/ivi-application.xml`.
#[allow(dead_code, non_camel_case_types, non_upper_case_globals, unused_imports, missing_docs, clippy::all)]
pub mod protocol {
    use wayland_server;
    use wayland_server::protocol::*;
    pub mod __interfaces {
        use wayland_server::protocol::__interfaces::*;
        wayland_scanner::generate_interfaces!("protocols/ivi-application.xml");
    }
    use self::__interfaces::*;
    wayland_scanner::generate_server_code!("protocols/ivi-application.xml");
}

use protocol::{
    ivi_application::{self, IviApplication},
    ivi_surface::{self, IviSurface},
};

impl GlobalDispatch<IviApplication, ()> for State {
    fn bind(_: &mut Self, _: &DisplayHandle, _: &Client, res: New<IviApplication>, _: &(), init: &mut DataInit<'_, Self>) {
        init.init(res, ());
    }
}

impl Dispatch<IviApplication, ()> for State {
    fn request(state: &mut Self, _: &Client, app: &IviApplication, req: ivi_application::Request, _: &(), _: &DisplayHandle, init: &mut DataInit<'_, Self>) {
        let ivi_application::Request::SurfaceCreate { ivi_id, surface, id } = req;
        let ivi = init.init(id, surface.id());
        let sid = surface.id();
        let Some(s) = state.surfaces.get(&sid) else { return };
        if s.ivi.is_some() || s.sub.is_some() || s.xdg.is_some() || s.content.is_some() {
            return app.post_error(ivi_application::Error::Role, "the surface already has a role or a buffer");
        }
        if state.ivi_ids.get(&ivi_id).is_some_and(|holder| state.surfaces.contains_key(holder)) {
            return app.post_error(ivi_application::Error::IviId, format!("ivi id {ivi_id} is held by another surface"));
        }
        let key = cockpit_core::SourceKey::IviId(ivi_id);
        let placed = state.sources.find(&key).map(|i| &state.sources.layout().sources[i.0]);
        if let Some(want) = placed.and_then(|c| c.client_uid) {
            if s.uid != Some(want) {
                return app.post_error(ivi_application::Error::IviId, format!("ivi id {ivi_id} belongs to user {want}'s client"));
            }
        }
        let (w, h) = placed.map(|c| c.preferred_size()).unwrap_or((0, 0));
        ivi.configure(w as i32, h as i32);
        if let Some(s) = state.surfaces.get_mut(&sid) {
            s.ivi = Some((ivi, ivi_id));
            state.ivi_ids.insert(ivi_id, sid);
        }
    }
}

impl Dispatch<IviSurface, ObjectId> for State {
    fn request(state: &mut Self, _: &Client, res: &IviSurface, req: ivi_surface::Request, surface: &ObjectId, _: &DisplayHandle, _: &mut DataInit<'_, Self>) {
        let ivi_surface::Request::Destroy = req;
        release(state, res, surface);
    }

    fn destroyed(state: &mut Self, _: ClientId, res: &IviSurface, surface: &ObjectId) {
        release(state, res, surface);
    }
}

/// The surface gives its id up: it leaves its source.
fn release(state: &mut State, res: &IviSurface, surface: &ObjectId) {
    let Some(s) = state.surfaces.get_mut(surface).filter(|s| s.ivi.as_ref().is_some_and(|(r, _)| r == res)) else { return };
    if let Some((_, n)) = s.ivi.take() {
        state.ivi_ids.remove(&n);
    }
    s.handle = None;
    s.content = None;
    s.spare = None;
    s.since_spare = None;
    if let Some((b, _)) = s.unread.take() {
        b.release();
    }
}
