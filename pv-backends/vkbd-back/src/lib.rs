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
    pub const EV_SYN: u16 = E::SYNCHRONIZATION.0;
    pub const EV_KEY: u16 = E::KEY.0;
    pub const EV_REL: u16 = E::RELATIVE.0;
    pub const EV_ABS: u16 = E::ABSOLUTE.0;
    pub const SYN_REPORT: u16 = 0;
    pub const SYN_DROPPED: u16 = 3;
    pub const REL_X: u16 = R::REL_X.0;
    pub const REL_Y: u16 = R::REL_Y.0;
    pub const REL_WHEEL: u16 = R::REL_WHEEL.0;
    pub const ABS_X: u16 = A::ABS_X.0;
    pub const ABS_Y: u16 = A::ABS_Y.0;
    pub const ABS_MT_SLOT: u16 = A::ABS_MT_SLOT.0;
    pub const ABS_MT_TOUCH_MAJOR: u16 = A::ABS_MT_TOUCH_MAJOR.0;
    pub const ABS_MT_TOUCH_MINOR: u16 = A::ABS_MT_TOUCH_MINOR.0;
    pub const ABS_MT_POSITION_X: u16 = A::ABS_MT_POSITION_X.0;
    pub const ABS_MT_POSITION_Y: u16 = A::ABS_MT_POSITION_Y.0;
    pub const ABS_MT_TRACKING_ID: u16 = A::ABS_MT_TRACKING_ID.0;
    pub const BTN_LEFT: u16 = K::BTN_LEFT.0;
    pub const BTN_TOUCH: u16 = K::BTN_TOUCH.0;
    /// BTN_TOOL_PEN ..= BTN_TOOL_QUADTAP: which tool touches, not a key.
    pub const BTN_TOOL_FIRST: u16 = K::BTN_TOOL_PEN.0;
    pub const BTN_TOOL_LAST: u16 = K::BTN_TOOL_QUADTAP.0;
}
