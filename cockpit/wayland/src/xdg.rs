//! `xdg_shell`: toplevels (whose app id places them) and dismissed popups.

use wayland_protocols::xdg::shell::server::{
    xdg_popup::{self, XdgPopup},
    xdg_positioner::{self, XdgPositioner},
    xdg_surface::{self, XdgSurface},
    xdg_toplevel::{self, XdgToplevel},
    xdg_wm_base::{self, XdgWmBase},
};
use wayland_server::backend::{ClientId, ObjectId};
use wayland_server::{Client, DataInit, Dispatch, DisplayHandle, GlobalDispatch, New, Resource};

use crate::state::{State, Surface};

impl GlobalDispatch<XdgWmBase, ()> for State {
    fn bind(_: &mut Self, _: &DisplayHandle, _: &Client, res: New<XdgWmBase>, _: &(), init: &mut DataInit<'_, Self>) {
        init.init(res, ());
    }
}

impl Dispatch<XdgWmBase, ()> for State {
    fn request(
        state: &mut Self,
        _: &Client,
        wm: &XdgWmBase,
        req: xdg_wm_base::Request,
        _: &(),
        _: &DisplayHandle,
        init: &mut DataInit<'_, Self>,
    ) {
        match req {
            xdg_wm_base::Request::CreatePositioner { id } => {
                init.init(id, ());
            }
            xdg_wm_base::Request::GetXdgSurface { id, surface } => {
                let xdg = init.init(id, surface.id());
                match state.surfaces.get_mut(&surface.id()) {
                    Some(s) if s.xdg.is_none() && s.sub.is_none() && s.ivi.is_none() && s.content.is_none() => s.xdg = Some(xdg),
                    Some(_) => wm.post_error(xdg_wm_base::Error::Role, "the surface already has a role or a buffer"),
                    None => wm.post_error(xdg_wm_base::Error::InvalidSurfaceState, "unknown surface"),
                }
            }
            _ => {}
        }
    }
}

impl Dispatch<XdgPositioner, ()> for State {
    fn request(
        _: &mut Self,
        _: &Client,
        _: &XdgPositioner,
        _: xdg_positioner::Request,
        _: &(),
        _: &DisplayHandle,
        _: &mut DataInit<'_, Self>,
    ) {
    }
}

impl Dispatch<XdgSurface, ObjectId> for State {
    fn request(
        state: &mut Self,
        _: &Client,
        res: &XdgSurface,
        req: xdg_surface::Request,
        surface: &ObjectId,
        _: &DisplayHandle,
        init: &mut DataInit<'_, Self>,
    ) {
        match req {
            xdg_surface::Request::GetToplevel { id } => {
                let top = init.init(id, surface.clone());
                if let Some(s) = state.surfaces.get_mut(surface) {
                    s.toplevel = Some(top);
                }
            }
            xdg_surface::Request::GetPopup { id, .. } => {
                // Popups are not placed by the layout: dismissed at once.
                let popup = init.init(id, ());
                popup.popup_done();
            }
            xdg_surface::Request::AckConfigure { .. } | xdg_surface::Request::SetWindowGeometry { .. } => {}
            xdg_surface::Request::Destroy => {
                if let Some(s) = state.surfaces.get_mut(surface) {
                    if s.toplevel.as_ref().is_some_and(Resource::is_alive) {
                        res.post_error(xdg_surface::Error::DefunctRoleObject, "destroy the xdg_toplevel first");
                    }
                    s.xdg = None;
                }
            }
            _ => {}
        }
    }
}

impl Dispatch<XdgToplevel, ObjectId> for State {
    fn request(
        state: &mut Self,
        _: &Client,
        _: &XdgToplevel,
        req: xdg_toplevel::Request,
        surface: &ObjectId,
        _: &DisplayHandle,
        _: &mut DataInit<'_, Self>,
    ) {
        let Some(s) = state.surfaces.get_mut(surface) else { return };
        match req {
            xdg_toplevel::Request::SetAppId { app_id } => {
                if s.handle.is_some() && s.app_id.as_deref() != Some(&app_id) {
                    // Placed under another id now: let it connect again at its
                    // next commit, with nothing kept from the old place (its
                    // next picture is copied and shown whole).
                    s.handle = None;
                    s.content = None;
                    s.spare = None;
                    s.since_spare = None;
                    if let Some((b, _)) = s.unread.take() {
                        b.release();
                    }
                }
                s.app_id = Some(app_id);
            }
            xdg_toplevel::Request::Destroy => unmap(s),
            _ => {}
        }
    }

    fn destroyed(state: &mut Self, _: ClientId, _: &XdgToplevel, surface: &ObjectId) {
        if let Some(s) = state.surfaces.get_mut(surface) {
            unmap(s);
        }
    }
}

fn unmap(s: &mut Surface) {
    s.toplevel = None;
    s.handle = None;
    s.content = None;
    s.spare = None;
    s.since_spare = None;
    s.configured = false;
}

impl Dispatch<XdgPopup, ()> for State {
    fn request(_: &mut Self, _: &Client, _: &XdgPopup, _: xdg_popup::Request, _: &(), _: &DisplayHandle, _: &mut DataInit<'_, Self>) {}
}

/// Sends a toplevel its size (0x0 lets it choose) as the activated window.
pub(crate) fn send_configure(s: &Surface, (w, h): (u32, u32), serial: &mut u32) {
    let (Some(xdg), Some(top)) = (&s.xdg, &s.toplevel) else { return };
    let activated = (xdg_toplevel::State::Activated as u32).to_ne_bytes().to_vec();
    top.configure(w as i32, h as i32, activated);
    *serial = serial.wrapping_add(1);
    xdg.configure(*serial);
}
