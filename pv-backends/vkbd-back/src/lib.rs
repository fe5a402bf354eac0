//! The vkbd backend (`io/kbdif.h`) on Linux input devices.
//!
//! * [`InputSource`] is where input comes from: [`EvdevSource`] reads a
//!   `/dev/input/eventN` through the `evdev` crate (grabbed, so the host
//!   does not see it too); [`RecordedSource`] replays recorded
//!   `struct input_event` streams; [`ChannelSource`] takes events from a
//!   channel (tests, the simulator).
//! * [`Translator`] turns one device's evdev stream into kbdif events:
//!   keys and buttons, relative motion and wheel, the absolute pointer
//!   scaled to the frontend's `width`×`height`, and kernel multi-touch
//!   slots into MTOUCH DOWN/MOTION/UP/SHAPE plus SYN per frame.
//! * [`VkbdBackend`] is the [`pv_backend::Device`]: it publishes features,
//!   maps the frontend's page and feeds the ring, keeping a bounded queue
//!   while the frontend catches up. A frontend that corrupts `in_cons` or
//!   publishes a bad grant is logged and moved to Closing.
//!
//! Routing (which input devices go to which domain) is configuration: the
//! supervisor's factory gives each device instance its sources.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod device;
mod source;
mod translate;

pub use device::{VkbdBackend, VkbdConfig};
pub use source::{
    parse_input_events, AbsRange, ChannelSource, EvdevSource, InputSource, RawEvent,
    RecordedSource, INPUT_EVENT_SIZE,
};
pub use translate::{Target, Translator};

/// Linux input codes used here, from the `evdev` crate's tables.
pub mod codes {
    use evdev::{AbsoluteAxisCode as A, EventType as E, KeyCode as K, RelativeAxisCode as R};
    /// Event type of frame markers ([`SYN_REPORT`], [`SYN_DROPPED`]).
    pub const EV_SYN: u16 = E::SYNCHRONIZATION.0;
    /// Event type of keys and buttons; the value is 0 up, 1 down, 2 repeat.
    pub const EV_KEY: u16 = E::KEY.0;
    /// Event type of relative motion (mice, wheels); the value is a delta.
    pub const EV_REL: u16 = E::RELATIVE.0;
    /// Event type of absolute axes (touchscreens, tablets); the value is a
    /// position in the axis's range.
    pub const EV_ABS: u16 = E::ABSOLUTE.0;
    /// Ends a frame: the events since the previous one happened together.
    pub const SYN_REPORT: u16 = 0;
    /// The kernel's buffer overflowed: events up to the next
    /// [`SYN_REPORT`] are incomplete and are discarded.
    pub const SYN_DROPPED: u16 = 3;
    /// Horizontal relative motion, in device counts (right is positive).
    pub const REL_X: u16 = R::REL_X.0;
    /// Vertical relative motion, in device counts (down is positive).
    pub const REL_Y: u16 = R::REL_Y.0;
    /// Vertical wheel, in notches (away from the user is positive).
    pub const REL_WHEEL: u16 = R::REL_WHEEL.0;
    /// Absolute X position of a single-touch or tablet device.
    pub const ABS_X: u16 = A::ABS_X.0;
    /// Absolute Y position of a single-touch or tablet device.
    pub const ABS_Y: u16 = A::ABS_Y.0;
    /// Selects the multi-touch slot the following `ABS_MT_*` events
    /// describe.
    pub const ABS_MT_SLOT: u16 = A::ABS_MT_SLOT.0;
    /// Long axis of the current slot's contact area.
    pub const ABS_MT_TOUCH_MAJOR: u16 = A::ABS_MT_TOUCH_MAJOR.0;
    /// Short axis of the current slot's contact area.
    pub const ABS_MT_TOUCH_MINOR: u16 = A::ABS_MT_TOUCH_MINOR.0;
    /// X position of the current slot's contact.
    pub const ABS_MT_POSITION_X: u16 = A::ABS_MT_POSITION_X.0;
    /// Y position of the current slot's contact.
    pub const ABS_MT_POSITION_Y: u16 = A::ABS_MT_POSITION_Y.0;
    /// Contact id of the current slot: a new id starts a touch, -1 ends it.
    pub const ABS_MT_TRACKING_ID: u16 = A::ABS_MT_TRACKING_ID.0;
    /// Primary mouse button; also what a touchscreen's touch becomes when
    /// it is forwarded as a pointer.
    pub const BTN_LEFT: u16 = K::BTN_LEFT.0;
    /// A touchscreen is being touched (any contact).
    pub const BTN_TOUCH: u16 = K::BTN_TOUCH.0;
    /// BTN_TOOL_PEN ..= BTN_TOOL_QUADTAP: which tool touches, not a key.
    pub const BTN_TOOL_FIRST: u16 = K::BTN_TOOL_PEN.0;
    /// Last code of the tool range; [`BTN_TOUCH`] (handled on its own) and
    /// the stylus buttons also fall inside it.
    pub const BTN_TOOL_LAST: u16 = K::BTN_TOOL_QUADTAP.0;
    /// Stylus barrel buttons: keys (forwarded), though their codes fall
    /// inside the tool range.
    /// (BTN_STYLUS3, 0x149, is newer than the evdev crate's table.)
    pub const BTN_STYLUS_BUTTONS: [u16; 3] = [K::BTN_STYLUS.0, K::BTN_STYLUS2.0, 0x149];
}
