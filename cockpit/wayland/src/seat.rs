//! `wl_seat`: one seat with pointer, keyboard and touch, fed by the input
//! the compositor routed to Wayland sources.

use cockpit_core::GuestEvent;
use std::collections::HashMap;

use wayland_server::backend::{ClientId, ObjectId};
use wayland_server::protocol::{
    wl_keyboard::{self, WlKeyboard},
    wl_pointer::{self, WlPointer},
    wl_seat::{self, WlSeat},
    wl_surface::WlSurface,
    wl_touch::{self, WlTouch},
};
use wayland_server::{Client, DataInit, Dispatch, DisplayHandle, GlobalDispatch, New, Resource};

use crate::state::State;

#[derive(Default)]
pub(crate) struct SeatState {
    pointers: Vec<(ClientId, WlPointer)>,
    keyboards: Vec<(ClientId, WlKeyboard)>,
    touches: Vec<(ClientId, WlTouch)>,
    /// The surface the keyboard entered, if any.
    keyboard_on: Option<ObjectId>,
    keys: crate::keymap::Keys,
    /// The surface of a tree (a toplevel or one of its sub-surfaces) the
    /// pointer is over, and buttons held (the pointer stays with it).
    pointer_on: Option<ObjectId>,
    buttons: u32,
    /// Where each touch went down: the toplevel whose tree it is in, its
    /// surface, and how picture pixels map into that surface's coordinates
    /// (bounded: see `MAX_TOUCHES`).
    touch_on: HashMap<i32, (ObjectId, ObjectId, Map)>,
}

/// Touch points followed at once.
const MAX_TOUCHES: usize = 32;

/// Picture pixels (of a toplevel) to a surface's coordinates:
/// `((x - ox) * kx, (y - oy) * ky)`.
#[derive(Clone, Copy, Debug)]
struct Map {
    ox: f64,
    oy: f64,
    kx: f64,
    ky: f64,
}

impl Map {
    fn apply(&self, x: f64, y: f64) -> (f64, f64) {
        ((x - self.ox) * self.kx, (y - self.oy) * self.ky)
    }
}

/// The surface of `root`'s tree under picture pixel (x, y): its topmost
/// sub-surface there, else `root` itself.
fn under(state: &State, root: &ObjectId, x: f64, y: f64) -> Option<(ObjectId, Map)> {
    let r = state.surfaces.get(root)?;
    let (kx, ky) = r.input_scale;
    let pics = crate::subsurface::pictures(state, root, r.input_scale);
    // Topmost first: those above the toplevel's picture, the picture
    // itself, those below it.
    let (w, h) = r.content.as_ref().and_then(|c| r.viewport.crop(c.width, c.height)).map_or((0, 0), |(_, _, w, h)| (w, h));
    let on_root = x >= 0.0 && y >= 0.0 && x < w as f64 && y < h as f64;
    let above = pics.iter().rev().filter(|(_, p)| !p.below);
    let below = pics.iter().rev().filter(|(_, p)| p.below && !on_root);
    for (id, pic) in above.chain(below) {
        let at = pic.at;
        if x >= at.x as f64 && y >= at.y as f64 && x < at.right() as f64 && y < at.bottom() as f64 {
            return Some((id.clone(), sub_map(state, id, at)?));
        }
    }
    Some((root.clone(), Map { ox: 0.0, oy: 0.0, kx, ky }))
}

impl GlobalDispatch<WlSeat, ()> for State {
    fn bind(_: &mut Self, _: &DisplayHandle, _: &Client, res: New<WlSeat>, _: &(), init: &mut DataInit<'_, Self>) {
        let seat = init.init(res, ());
        seat.capabilities(wl_seat::Capability::Pointer | wl_seat::Capability::Keyboard | wl_seat::Capability::Touch);
        if seat.version() >= 2 {
            seat.name("seat0".into());
        }
    }
}

impl Dispatch<WlSeat, ()> for State {
    fn request(
        state: &mut Self,
        client: &Client,
        _: &WlSeat,
        req: wl_seat::Request,
        _: &(),
        _: &DisplayHandle,
        init: &mut DataInit<'_, Self>,
    ) {
        match req {
            wl_seat::Request::GetPointer { id } => {
                let p = init.init(id, ());
                state.seat.pointers.push((client.id(), p));
            }
            wl_seat::Request::GetKeyboard { id } => {
                let k = init.init(id, ());
                state.seat.keys.send_keymap(&k);
                state.seat.keyboards.push((client.id(), k));
            }
            wl_seat::Request::GetTouch { id } => {
                let t = init.init(id, ());
                state.seat.touches.push((client.id(), t));
            }
            _ => {}
        }
    }
}

impl Dispatch<WlPointer, ()> for State {
    fn request(_: &mut Self, _: &Client, _: &WlPointer, _: wl_pointer::Request, _: &(), _: &DisplayHandle, _: &mut DataInit<'_, Self>) {
        // set_cursor: the cockpit draws no cursor.
    }
}

impl Dispatch<WlKeyboard, ()> for State {
    fn request(_: &mut Self, _: &Client, _: &WlKeyboard, _: wl_keyboard::Request, _: &(), _: &DisplayHandle, _: &mut DataInit<'_, Self>) {}
}

impl Dispatch<WlTouch, ()> for State {
    fn request(_: &mut Self, _: &Client, _: &WlTouch, _: wl_touch::Request, _: &(), _: &DisplayHandle, _: &mut DataInit<'_, Self>) {}
}

fn of<'a, R: Resource + 'a>(list: &'a mut Vec<(ClientId, R)>, client: &'a ClientId) -> impl Iterator<Item = &'a R> + 'a {
    list.retain(|(_, r)| r.is_alive());
    list.iter().filter(move |(c, _)| c == client).map(|(_, r)| r)
}

/// Sends one routed event to the client owning `surface` (a toplevel): a
/// touch or the pointer goes to the sub-surface under it, in its own
/// coordinates.
pub(crate) fn deliver(state: &mut State, _dh: &DisplayHandle, surface: &ObjectId, ev: &GuestEvent) {
    let Some(s) = state.surfaces.get(surface) else { return };
    let (client, surf) = (s.client.clone(), s.resource.clone());
    let resource = |state: &State, id: &ObjectId| state.surfaces.get(id).map(|s| s.resource.clone());
    // Where a position lands: a sub-surface or the toplevel, and there.
    let at = |state: &State, x: f64, y: f64| under(state, surface, x, y).and_then(|(id, m)| Some((resource(state, &id)?, id, m.apply(x, y), m)));
    let time = state.time();
    let serial = state.next_serial();
    match *ev {
        GuestEvent::TouchDown { id, x, y } => {
            let Some((target, tid, (u, v), m)) = at(state, x, y) else { return };
            let touches = &mut state.seat.touch_on;
            if touches.len() >= MAX_TOUCHES && !touches.contains_key(&id) {
                // Touches whose end never came (their source went away)
                // make room first; then any one.
                touches.retain(|_, (_, t, _)| state.surfaces.contains_key(t));
                if let Some(k) = touches.keys().next().copied().filter(|_| touches.len() >= MAX_TOUCHES) {
                    touches.remove(&k);
                }
            }
            touches.insert(id, (surface.clone(), tid, m));
            of(&mut state.seat.touches, &client).for_each(|t| t.down(serial, time, &target, id, u, v))
        }
        GuestEvent::TouchMotion { id, x, y } => {
            // Only a touch that went down in this tree, mapped as it was then.
            let Some((_, _, m)) = state.seat.touch_on.get(&id).filter(|(root, ..)| root == surface) else { return };
            let (u, v) = m.apply(x, y);
            of(&mut state.seat.touches, &client).for_each(|t| t.motion(time, id, u, v))
        }
        GuestEvent::TouchUp { id } => {
            if state.seat.touch_on.get(&id).is_none_or(|(root, ..)| root != surface) {
                return;
            }
            state.seat.touch_on.remove(&id);
            of(&mut state.seat.touches, &client).for_each(|t| t.up(serial, time, id))
        }
        GuestEvent::TouchFrame => of(&mut state.seat.touches, &client).for_each(|t| t.frame()),
        GuestEvent::PointerEnter { x, y } => {
            let Some((target, tid, (u, v), _)) = at(state, x, y) else { return };
            // The compositor enters with no button held; a surface of this
            // tree still entered (its leave was lost) is left first.
            state.seat.buttons = 0;
            let old = pointer_here(state, surface);
            state.seat.pointer_on = Some(tid);
            of(&mut state.seat.pointers, &client).for_each(|p| {
                if let Some((_, o)) = &old {
                    p.leave(serial, o);
                }
                p.enter(serial, &target, u, v);
                frame(p);
            })
        }
        GuestEvent::PointerMotion { x, y } => {
            let Some((target, tid, (u, v), _)) = at(state, x, y) else { return };
            let cur = pointer_here(state, surface);
            // Held buttons keep the pointer with the surface they went down
            // on, while that surface is still shown.
            let held = cur.as_ref().filter(|_| state.seat.buttons > 0).and_then(|(w, _)| under_map(state, surface, w));
            if cur.as_ref().is_some_and(|(w, _)| *w == tid) || held.is_some() {
                let (u, v) = held.map_or((u, v), |m| m.apply(x, y));
                of(&mut state.seat.pointers, &client).for_each(|p| {
                    p.motion(time, u, v);
                    frame(p);
                });
                return;
            }
            state.seat.buttons = 0;
            state.seat.pointer_on = Some(tid);
            of(&mut state.seat.pointers, &client).for_each(|p| {
                if let Some((_, o)) = &cur {
                    p.leave(serial, o);
                }
                p.enter(serial, &target, u, v);
                frame(p);
            });
        }
        GuestEvent::PointerLeave => {
            let cur = pointer_here(state, surface);
            state.seat.buttons = 0;
            if cur.is_some() {
                state.seat.pointer_on = None;
            }
            let Some((_, on)) = cur else { return };
            of(&mut state.seat.pointers, &client).for_each(|p| {
                p.leave(serial, &on);
                frame(p);
            })
        }
        GuestEvent::Button { code, pressed } => {
            state.seat.buttons = if pressed { state.seat.buttons.saturating_add(1).min(32) } else { state.seat.buttons.saturating_sub(1) };
            let st = if pressed {
                wl_pointer::ButtonState::Pressed
            } else {
                wl_pointer::ButtonState::Released
            };
            of(&mut state.seat.pointers, &client).for_each(|p| {
                p.button(serial, time, code, st);
                frame(p);
            })
        }
        GuestEvent::KeyboardFocus(true) => {
            let seat = &mut state.seat;
            seat.keyboard_on = Some(surface.clone());
            let (d, l, lk, g) = seat.keys.mods();
            of(&mut seat.keyboards, &client).for_each(|k| {
                k.enter(serial, &surf, Vec::new());
                k.modifiers(serial, d, l, lk, g);
            });
        }
        GuestEvent::KeyboardFocus(false) => {
            let seat = &mut state.seat;
            if seat.keyboard_on.as_ref() == Some(surface) {
                seat.keyboard_on = None;
            }
            of(&mut seat.keyboards, &client).for_each(|k| k.leave(serial, &surf));
        }
        GuestEvent::Key { code, pressed } => {
            let seat = &mut state.seat;
            let enter = seat.keyboard_on.as_ref() != Some(surface);
            seat.keyboard_on = Some(surface.clone());
            let st = if pressed {
                wl_keyboard::KeyState::Pressed
            } else {
                wl_keyboard::KeyState::Released
            };
            let before = seat.keys.mods();
            let changed = seat.keys.key(code, pressed);
            of(&mut seat.keyboards, &client).for_each(|k| {
                if enter {
                    k.enter(serial, &surf, Vec::new());
                    k.modifiers(serial, before.0, before.1, before.2, before.3);
                }
                k.key(serial, time, code, st);
                if let Some((d, l, lk, g)) = changed {
                    k.modifiers(serial, d, l, lk, g);
                }
            });
        }
    }
}

/// The surface of `root`'s tree the pointer entered, if it is still alive
/// and still in that tree (never another client's).
fn pointer_here(state: &State, root: &ObjectId) -> Option<(ObjectId, WlSurface)> {
    let w = state.seat.pointer_on.clone()?;
    if crate::subsurface::root_of(state, &w).as_ref() != Some(root) {
        return None;
    }
    let r = state.surfaces.get(&w)?.resource.clone();
    r.is_alive().then_some((w, r))
}

/// How picture pixels map into `id`'s coordinates, `id` being `root` or
/// one of its shown sub-surfaces.
fn under_map(state: &State, root: &ObjectId, id: &ObjectId) -> Option<Map> {
    let r = state.surfaces.get(root)?;
    if id == root {
        return Some(Map { ox: 0.0, oy: 0.0, kx: r.input_scale.0, ky: r.input_scale.1 });
    }
    let (_, pic) = crate::subsurface::pictures(state, root, r.input_scale).into_iter().find(|(i, _)| i == id)?;
    sub_map(state, id, pic.at)
}

/// How picture pixels map into sub-surface `id`'s coordinates, shown at `at`.
fn sub_map(state: &State, id: &ObjectId, at: cockpit_core::Rect) -> Option<Map> {
    let (sw, sh) = state.surfaces.get(id).and_then(crate::state::picture).map(|(_, size)| size)?;
    Some(Map { ox: at.x as f64, oy: at.y as f64, kx: sw as f64 / at.w.max(1) as f64, ky: sh as f64 / at.h.max(1) as f64 })
}

fn frame(p: &WlPointer) {
    if p.version() >= 5 {
        p.frame();
    }
}

