//! `wl_seat`: one seat with pointer, keyboard and touch, fed by the input
//! the compositor routed to Wayland sources.

use cockpit_core::GuestEvent;
use wayland_server::backend::{ClientId, ObjectId};
use wayland_server::protocol::{
    wl_keyboard::{self, WlKeyboard},
    wl_pointer::{self, WlPointer},
    wl_seat::{self, WlSeat},
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

/// Sends one routed event to the client owning `surface`.
pub(crate) fn deliver(state: &mut State, _dh: &DisplayHandle, surface: &ObjectId, ev: &GuestEvent) {
    let Some(s) = state.surfaces.get(surface) else { return };
    let (client, surf) = (s.client.clone(), s.resource.clone());
    // Events arrive in the shown picture's pixels; a viewport's destination
    // size makes the surface's own coordinates differ.
    let ev = &scaled(ev, s.input_scale);
    let time = state.time();
    let serial = state.next_serial();
    let seat = &mut state.seat;
    match *ev {
        GuestEvent::TouchDown { id, x, y } => of(&mut seat.touches, &client).for_each(|t| t.down(serial, time, &surf, id, x, y)),
        GuestEvent::TouchMotion { id, x, y } => of(&mut seat.touches, &client).for_each(|t| t.motion(time, id, x, y)),
        GuestEvent::TouchUp { id } => of(&mut seat.touches, &client).for_each(|t| t.up(serial, time, id)),
        GuestEvent::TouchFrame => of(&mut seat.touches, &client).for_each(|t| t.frame()),
        GuestEvent::PointerEnter { x, y } => of(&mut seat.pointers, &client).for_each(|p| {
            p.enter(serial, &surf, x, y);
            frame(p);
        }),
        GuestEvent::PointerMotion { x, y } => of(&mut seat.pointers, &client).for_each(|p| {
            p.motion(time, x, y);
            frame(p);
        }),
        GuestEvent::PointerLeave => of(&mut seat.pointers, &client).for_each(|p| {
            p.leave(serial, &surf);
            frame(p);
        }),
        GuestEvent::Button { code, pressed } => {
            let st = if pressed {
                wl_pointer::ButtonState::Pressed
            } else {
                wl_pointer::ButtonState::Released
            };
            of(&mut seat.pointers, &client).for_each(|p| {
                p.button(serial, time, code, st);
                frame(p);
            })
        }
        GuestEvent::KeyboardFocus(true) => {
            seat.keyboard_on = Some(surface.clone());
            let (d, l, lk, g) = seat.keys.mods();
            of(&mut seat.keyboards, &client).for_each(|k| {
                k.enter(serial, &surf, Vec::new());
                k.modifiers(serial, d, l, lk, g);
            });
        }
        GuestEvent::KeyboardFocus(false) => {
            if seat.keyboard_on.as_ref() == Some(surface) {
                seat.keyboard_on = None;
            }
            of(&mut seat.keyboards, &client).for_each(|k| k.leave(serial, &surf));
        }
        GuestEvent::Key { code, pressed } => {
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

fn frame(p: &WlPointer) {
    if p.version() >= 5 {
        p.frame();
    }
}

/// `ev` with its position scaled into surface coordinates.
fn scaled(ev: &GuestEvent, (kx, ky): (f64, f64)) -> GuestEvent {
    match *ev {
        GuestEvent::TouchDown { id, x, y } => GuestEvent::TouchDown { id, x: x * kx, y: y * ky },
        GuestEvent::TouchMotion { id, x, y } => GuestEvent::TouchMotion { id, x: x * kx, y: y * ky },
        GuestEvent::PointerEnter { x, y } => GuestEvent::PointerEnter { x: x * kx, y: y * ky },
        GuestEvent::PointerMotion { x, y } => GuestEvent::PointerMotion { x: x * kx, y: y * ky },
        ref other => other.clone(),
    }
}
