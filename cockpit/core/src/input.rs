//! Input types: what physical displays report ([`DisplayEvent`]) and what a
//! source receives after routing ([`GuestEvent`], through [`GuestInput`]).
//!
//! Routing maps a display position back through the layout (the inverse of
//! the scaling and rotation used to draw) to the topmost source under it
//! that takes input; a touch stays with the source it went down on until it
//! lifts, and pointer buttons grab the same way.

/// An input event on a physical display, in display pixels.
#[derive(Clone, Debug, PartialEq)]
pub enum DisplayEvent {
    TouchDown {
        display: usize,
        id: i32,
        x: f64,
        y: f64,
    },
    TouchMotion {
        display: usize,
        id: i32,
        x: f64,
        y: f64,
    },
    TouchUp {
        id: i32,
    },
    /// Ends a group of touch events that belong together.
    TouchFrame,
    PointerMotion {
        display: usize,
        x: f64,
        y: f64,
    },
    /// A Linux evdev button code (`BTN_LEFT` = 0x110).
    Button {
        code: u32,
        pressed: bool,
    },
    /// A Linux evdev key code (`KEY_A` = 30).
    Key {
        code: u32,
        pressed: bool,
    },
}

/// An input event for one source, positions in its buffer's pixels
/// (continuous: the centre of pixel (3, 4) is (3.5, 4.5)). During a touch
/// or a button grab, positions may lie outside the buffer.
#[derive(Clone, Debug, PartialEq)]
pub enum GuestEvent {
    TouchDown {
        id: i32,
        x: f64,
        y: f64,
    },
    TouchMotion {
        id: i32,
        x: f64,
        y: f64,
    },
    TouchUp {
        id: i32,
    },
    TouchFrame,
    PointerEnter {
        x: f64,
        y: f64,
    },
    PointerMotion {
        x: f64,
        y: f64,
    },
    PointerLeave,
    Button {
        code: u32,
        pressed: bool,
    },
    Key {
        code: u32,
        pressed: bool,
    },
    /// The source gained (`true`) or lost the keyboard.
    KeyboardFocus(bool),
}

/// Where a source's routed input goes: the vkbd backend (to the guest's PV
/// keyboard/touch device), the Wayland server (to a client's seat), or a
/// simulated guest. Called on the compositor's thread; keep it quick.
pub trait GuestInput: Send {
    fn event(&mut self, event: &GuestEvent);
}

impl<F: FnMut(&GuestEvent) + Send> GuestInput for F {
    fn event(&mut self, event: &GuestEvent) {
        self(event)
    }
}

/// Evdev codes used by the outputs' own input (window mouse, simulator).
pub mod codes {
    pub const BTN_LEFT: u32 = 0x110;
    pub const BTN_RIGHT: u32 = 0x111;
    pub const BTN_MIDDLE: u32 = 0x112;
}
