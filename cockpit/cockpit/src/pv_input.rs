//! Touches and keys the compositor routes to a guest, delivered through the
//! PV keyboard/touch backend (`vkbd-back`): each guest source gets a
//! [`VkbdInput`] as its `GuestInput`, which sends through the [`InputHub`]
//! to the `ChannelSource` the backend reads for that domain, like a
//! touchscreen. The backend then scales positions to the frontend's size.

use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use cockpit_core::{GuestEvent, GuestInput};
use vkbd_back::codes::*;
use vkbd_back::{AbsRange, ChannelSource, RawEvent};

/// Multi-touch slots a guest can hold at once.
const SLOTS: usize = 10;

/// Events kept for a vkbd device that is not reading (a frontend that never
/// connects): a second or so of touches and keys, then the newest are lost.
const QUEUE: usize = 1024;

/// The axes of the touchscreen the backend reads: a fixed fine grid, so a
/// vkbd device can start before or after the display it goes with; the
/// backend rounds back to the frontend's own size, which for a frontend
/// whose input matches its buffer gives the very pixel touched.
pub const AXIS_MAX: i32 = 32767;

/// Where each frontend domain's routed input goes: the vkbd device the
/// backend serves for it, once it exists (the latest one, after a restart).
#[derive(Clone, Default)]
pub struct InputHub {
    routes: Arc<Mutex<HashMap<u16, SyncSender<RawEvent>>>>,
}

impl InputHub {
    /// The backend's input source for `domain`'s vkbd device; events sent
    /// to the domain go to it from now on.
    pub fn source(&self, domain: u16, name: &str) -> ChannelSource {
        let (tx, rx) = sync_channel(QUEUE);
        self.routes.lock().unwrap_or_else(|p| p.into_inner()).insert(domain, tx);
        let axis = AbsRange { min: 0, max: AXIS_MAX };
        let axes = [(ABS_X, axis), (ABS_Y, axis), (ABS_MT_POSITION_X, axis), (ABS_MT_POSITION_Y, axis)];
        ChannelSource::new(name, &axes, rx)
    }

    fn send(&self, domain: u16, ev: RawEvent) {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        // A device that went away takes its route with it; one that does
        // not read (its frontend never connects) loses what does not fit.
        if let Some(Err(TrySendError::Disconnected(_))) = routes.get(&domain).map(|tx| tx.try_send(ev)) {
            routes.remove(&domain);
        }
    }
}

/// Turns routed events into the evdev stream of a virtual touchscreen
/// (multi-touch protocol B), pointer and keyboard for one guest source.
pub struct VkbdInput {
    hub: InputHub,
    domain: u16,
    width: u32,
    height: u32,
    slots: [Option<i32>; SLOTS],
}

impl VkbdInput {
    /// The input of `domain`'s source whose buffer is `width`×`height`.
    pub fn new(hub: InputHub, domain: u16, width: u32, height: u32) -> Self {
        VkbdInput { hub, domain, width, height, slots: [None; SLOTS] }
    }

    fn send(&self, kind: u16, code: u16, value: i32) {
        self.hub.send(self.domain, RawEvent::new(kind, code, value));
    }

    /// A buffer position (a grab may reach outside) as an axis value: the
    /// pixel under it, on the fine grid.
    fn axis(v: f64, size: u32) -> i32 {
        let top = i64::from(size.max(1) - 1);
        let pixel = (v.floor() as i64).clamp(0, top);
        if top == 0 {
            return 0;
        }
        ((pixel * i64::from(AXIS_MAX) + top / 2) / top) as i32
    }

    fn position(&self, slot: usize, x: f64, y: f64) {
        self.send(EV_ABS, ABS_MT_SLOT, slot as i32);
        self.send(EV_ABS, ABS_MT_POSITION_X, Self::axis(x, self.width));
        self.send(EV_ABS, ABS_MT_POSITION_Y, Self::axis(y, self.height));
    }
}

impl GuestInput for VkbdInput {
    fn event(&mut self, e: &GuestEvent) {
        match *e {
            GuestEvent::TouchDown { id, x, y } => {
                let Some(slot) = self.slots.iter().position(Option::is_none) else { return };
                self.slots[slot] = Some(id);
                self.send(EV_ABS, ABS_MT_SLOT, slot as i32);
                self.send(EV_ABS, ABS_MT_TRACKING_ID, id.max(0));
                self.position(slot, x, y);
            }
            GuestEvent::TouchMotion { id, x, y } => {
                if let Some(slot) = self.slots.iter().position(|s| *s == Some(id)) {
                    self.position(slot, x, y);
                }
            }
            GuestEvent::TouchUp { id } => {
                if let Some(slot) = self.slots.iter().position(|s| *s == Some(id)) {
                    self.slots[slot] = None;
                    self.send(EV_ABS, ABS_MT_SLOT, slot as i32);
                    self.send(EV_ABS, ABS_MT_TRACKING_ID, -1);
                }
            }
            GuestEvent::TouchFrame => self.send(EV_SYN, SYN_REPORT, 0),
            GuestEvent::PointerEnter { x, y } | GuestEvent::PointerMotion { x, y } => {
                self.send(EV_ABS, ABS_X, Self::axis(x, self.width));
                self.send(EV_ABS, ABS_Y, Self::axis(y, self.height));
                self.send(EV_SYN, SYN_REPORT, 0);
            }
            // Leaving, and keyboard focus changes, have no evdev form.
            GuestEvent::PointerLeave | GuestEvent::KeyboardFocus(_) => {}
            GuestEvent::Button { code, pressed } | GuestEvent::Key { code, pressed } => {
                self.send(EV_KEY, code as u16, pressed as i32);
                self.send(EV_SYN, SYN_REPORT, 0);
            }
        }
    }
}
