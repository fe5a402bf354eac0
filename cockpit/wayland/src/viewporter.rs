//! `wp_viewporter`: a client crops its buffer (`set_source`) and gives the
//! surface a size of its own (`set_destination`). The layout still decides
//! where and how large a surface is shown; the crop decides which part of
//! the buffer that is, and the destination size is the surface's own
//! coordinate space, in which its input arrives.
//!
//! Values are double-buffered (applied on `wl_surface.commit`) and checked
//! there as the protocol says: bad values and crops outside the buffer are
//! protocol errors, never a crash or a read outside the copied picture.

use wayland_protocols::wp::viewporter::server::{
    wp_viewport::{self, WpViewport},
    wp_viewporter::{self, WpViewporter},
};
use wayland_server::backend::{ClientId, ObjectId};
use wayland_server::{Client, DataInit, Dispatch, DisplayHandle, GlobalDispatch, New, Resource};

use crate::state::State;

/// Posts a viewport error on the surface's viewport (or, should it have
/// none, on the surface).
pub(crate) fn refuse(s: &crate::state::Surface, error: wp_viewport::Error, message: String) {
    match &s.viewport_object {
        Some(vp) => vp.post_error(error, message),
        None => s.resource.post_error(wayland_server::protocol::wl_surface::Error::InvalidSize, message),
    }
}

/// A surface's viewport: the buffer rectangle shown (`x, y, w, h`, in
/// buffer pixels, possibly fractional) and the surface's size.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Viewport {
    pub src: Option<[f64; 4]>,
    pub dst: Option<(i32, i32)>,
}

impl Viewport {
    /// The whole-pixel buffer rectangle `src` covers, inside a `w`x`h`
    /// buffer: `None` when it reaches outside (a protocol error).
    pub fn crop(&self, w: u32, h: u32) -> Option<(u32, u32, u32, u32)> {
        let Some([x, y, sw, sh]) = self.src else { return Some((0, 0, w, h)) };
        let (x0, y0) = (x.floor(), y.floor());
        let (x1, y1) = ((x + sw).ceil(), (y + sh).ceil());
        if x1 > w as f64 || y1 > h as f64 {
            return None;
        }
        let (cw, ch) = ((x1 - x0).max(1.0), (y1 - y0).max(1.0));
        // A sliver at the very edge must not round out past it.
        if x0 + cw > w as f64 || y0 + ch > h as f64 {
            return None;
        }
        Some((x0 as u32, y0 as u32, cw as u32, ch as u32))
    }

    /// Surface coordinates per cropped-buffer pixel, each way.
    pub fn input_scale(&self, crop_w: u32, crop_h: u32) -> (f64, f64) {
        match self.dst {
            Some((dw, dh)) => (dw as f64 / crop_w.max(1) as f64, dh as f64 / crop_h.max(1) as f64),
            None => (1.0, 1.0),
        }
    }

    /// Whether surface and buffer coordinates differ.
    pub fn is_set(&self) -> bool {
        self.src.is_some() || self.dst.is_some()
    }
}

impl GlobalDispatch<WpViewporter, ()> for State {
    fn bind(_: &mut Self, _: &DisplayHandle, _: &Client, res: New<WpViewporter>, _: &(), init: &mut DataInit<'_, Self>) {
        init.init(res, ());
    }
}

impl Dispatch<WpViewporter, ()> for State {
    fn request(state: &mut Self, _: &Client, res: &WpViewporter, req: wp_viewporter::Request, _: &(), _: &DisplayHandle, init: &mut DataInit<'_, Self>) {
        if let wp_viewporter::Request::GetViewport { id, surface } = req {
            let vp = init.init(id, surface.id());
            match state.surfaces.get_mut(&surface.id()) {
                Some(s) if s.viewport_object.is_some() => {
                    res.post_error(wp_viewporter::Error::ViewportExists, "the surface already has a viewport");
                }
                Some(s) => s.viewport_object = Some(vp),
                None => {}
            }
        }
    }
}

impl Dispatch<WpViewport, ObjectId> for State {
    fn request(state: &mut Self, _: &Client, res: &WpViewport, req: wp_viewport::Request, surface: &ObjectId, _: &DisplayHandle, _: &mut DataInit<'_, Self>) {
        let Some(s) = state.surfaces.get_mut(surface).filter(|s| s.viewport_object.as_ref() == Some(res)) else {
            if !matches!(req, wp_viewport::Request::Destroy) {
                res.post_error(wp_viewport::Error::NoSurface, "the surface of this viewport is gone");
            }
            return;
        };
        let mut next = s.pending.viewport.unwrap_or(s.viewport);
        match req {
            wp_viewport::Request::SetSource { x, y, width, height } => {
                if [x, y, width, height] == [-1.0; 4] {
                    next.src = None;
                } else if x < 0.0 || y < 0.0 || width <= 0.0 || height <= 0.0 || [x, y, width, height].iter().any(|v| !v.is_finite() || *v > 16384.0) {
                    res.post_error(wp_viewport::Error::BadValue, format!("source {x},{y} {width}x{height}: want x, y >= 0 and a positive size (or all -1)"));
                    return;
                } else {
                    next.src = Some([x, y, width, height]);
                }
            }
            wp_viewport::Request::SetDestination { width, height } => {
                if (width, height) == (-1, -1) {
                    next.dst = None;
                } else if !(1..=16384).contains(&width) || !(1..=16384).contains(&height) {
                    res.post_error(wp_viewport::Error::BadValue, format!("destination {width}x{height}: want a positive size (or -1x-1)"));
                    return;
                } else {
                    next.dst = Some((width, height));
                }
            }
            wp_viewport::Request::Destroy => {
                next = Viewport::default();
                s.viewport_object = None;
            }
            _ => return,
        }
        s.pending.viewport = Some(next);
    }

    fn destroyed(state: &mut Self, _: ClientId, res: &WpViewport, surface: &ObjectId) {
        if let Some(s) = state.surfaces.get_mut(surface) {
            if s.viewport_object.as_ref() == Some(res) {
                s.viewport_object = None;
                s.pending.viewport = Some(Viewport::default());
            }
        }
    }
}
