//! Touches and keys the compositor routes to a guest, delivered through the
//! PV keyboard/touch backend (`vkbd-back`): each guest source gets a
//! [`VkbdInput`] as its `GuestInput`, paired with a `ChannelSource` that
//! the backend reads like a touchscreen whose axes span the source's
//! buffer. The backend then scales positions to the frontend's size.

use std::sync::mpsc::{channel, Sender};

use cockpit_core::{GuestEvent, GuestInput};
use vkbd_back::codes::*;
use vkbd_back::{AbsRange, ChannelSource, RawEvent};

/// Multi-touch slots a guest can hold at once.
const SLOTS: usize = 10;

/// Turns routed events into the evdev stream of a virtual touchscreen
/// (multi-touch protocol B), pointer and keyboard.
pub struct VkbdInput {
    tx: Sender<RawEvent>,
    width: u32,
    height: u32,
    slots: [Option<i32>; SLOTS],
}

impl VkbdInput {
    /// A pair for a guest source whose buffer is `width`×`height`: the
    /// compositor side and the backend's input source.
    pub fn channel(name: &str, width: u32, height: u32) -> (VkbdInput, ChannelSource) {
        let (tx, rx) = channel();
        let x = AbsRange { min: 0, max: width.saturating_sub(1) as i32 };
        let y = AbsRange { min: 0, max: height.saturating_sub(1) as i32 };
        let axes = [(ABS_X, x), (ABS_Y, y), (ABS_MT_POSITION_X, x), (ABS_MT_POSITION_Y, y)];
        let source = ChannelSource::new(name, &axes, rx);
        (VkbdInput { tx, width, height, slots: [None; SLOTS] }, source)
    }

    fn send(&self, kind: u16, code: u16, value: i32) {
        // The backend hanging up only means the guest is gone.
        let _ = self.tx.send(RawEvent::new(kind, code, value));
    }

    /// A buffer position as an axis value; a grab may reach outside.
    fn axis(v: f64, size: u32) -> i32 {
        (v.floor() as i64).clamp(0, size.saturating_sub(1) as i64) as i32
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
