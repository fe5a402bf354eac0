//! `wp_presentation` (presentation-time): a client asks, per commit, when
//! its picture reached the screen. The answer is `presented` (with the
//! `CLOCK_MONOTONIC` time the frame was handed to the displays, the
//! display's refresh period and a frame counter) once the frame that
//! composed the commit was presented, or `discarded` when a newer commit
//! replaced it first or the layout does not place the surface.
//!
//! A client gets at most [`MAX_WAITING`] answers waiting per surface;
//! more are discarded at once.

use wayland_protocols::wp::presentation_time::server::{
    wp_presentation::{self, WpPresentation},
    wp_presentation_feedback::{Kind, WpPresentationFeedback},
};
use wayland_server::{Client, DataInit, Dispatch, DisplayHandle, GlobalDispatch, New, Resource};

use crate::state::{State, Surface};

/// Feedback objects waiting per surface.
pub(crate) const MAX_WAITING: usize = 64;

/// `CLOCK_MONOTONIC`, the clock the timestamps are on.
const CLOCK_MONOTONIC: u32 = 1;

impl GlobalDispatch<WpPresentation, ()> for State {
    fn bind(_: &mut Self, _: &DisplayHandle, _: &Client, res: New<WpPresentation>, _: &(), init: &mut DataInit<'_, Self>) {
        init.init(res, ()).clock_id(CLOCK_MONOTONIC);
    }
}

impl Dispatch<WpPresentation, ()> for State {
    fn request(state: &mut Self, _: &Client, _: &WpPresentation, req: wp_presentation::Request, _: &(), _: &DisplayHandle, init: &mut DataInit<'_, Self>) {
        if let wp_presentation::Request::Feedback { surface, callback } = req {
            let fb = init.init(callback, ());
            match state.surfaces.get_mut(&surface.id()) {
                Some(s) if s.pending.feedback.len() < MAX_WAITING => s.pending.feedback.push(fb),
                _ => {
                    fb.discarded();
                }
            }
        }
    }
}

impl Dispatch<WpPresentationFeedback, ()> for State {
    fn request(_: &mut Self, _: &Client, _: &WpPresentationFeedback, _: <WpPresentationFeedback as Resource>::Request, _: &(), _: &DisplayHandle, _: &mut DataInit<'_, Self>) {}
}

/// Discards every feedback in `list`.
pub(crate) fn discard(list: &mut Vec<WpPresentationFeedback>) {
    for fb in list.drain(..) {
        fb.discarded();
    }
}

/// After frame `seq` was handed to the displays: answers the feedback of
/// commits that frame composed.
pub(crate) fn presented(s: &mut Surface, seq: u64, refresh_ns: u32, outputs: &[(wayland_server::protocol::wl_output::WlOutput, usize)]) {
    if s.shown_feedback.is_empty() {
        return;
    }
    // On a display now (placed, with a picture, not hidden by the HMI).
    let shown = s.entered.is_some();
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let (sec, nsec) = (now.tv_sec as u64, now.tv_nsec as u32);
    let client = s.resource.client().map(|c| c.id());
    let mut keep = Vec::new();
    for (due, fb) in s.shown_feedback.drain(..) {
        if due > seq {
            keep.push((due, fb));
            continue;
        }
        if !shown {
            fb.discarded();
            continue;
        }
        for (o, d) in outputs {
            if Some(*d) == s.entered && o.client().map(|c| c.id()) == client {
                fb.sync_output(o);
            }
        }
        fb.presented((sec >> 32) as u32, sec as u32, nsec, refresh_ns, (seq >> 32) as u32, seq as u32, Kind::empty());
    }
    s.shown_feedback = keep;
}
