//! Virtual keyboard, pointer and multi-touch (`io/kbdif.h`, type `vkbd`).
//!
//! One shared page carries two one-way rings of 40-byte events. Ring
//! lengths (51 and 25) are not powers of two, so slots are chosen with `%`;
//! the backend → frontend ring is the only one in use, as no
//! frontend → backend events are defined.

use super::wire::{exact, get_i32, get_u32, put_i32, put_u32, wire_enum, WireError};

/// xenbus device type.
pub const DRIVER_NAME: &str = "vkbd";
/// Largest coordinate in raw (unscaled) pointer mode.
pub const RAW_POINTER_MAX: i32 = 0x7fff;

/// Xenstore node names; features are "1" to enable.
pub mod field {
    // Backend nodes.
    /// "1": no keyboard behind this device, so the frontend need not create one.
    pub const FEATURE_DISABLE_KEYBOARD: &str = "feature-disable-keyboard";
    /// "1": no pointer behind this device.
    pub const FEATURE_DISABLE_POINTER: &str = "feature-disable-pointer";
    /// "1": the backend can send absolute positions (`POS`).
    pub const FEATURE_ABS_POINTER: &str = "feature-abs-pointer";
    /// Unscaled absolute coordinates in `0..=RAW_POINTER_MAX`.
    pub const FEATURE_RAW_POINTER: &str = "feature-raw-pointer";
    /// "1": the backend can send multi-touch events.
    pub const FEATURE_MULTI_TOUCH: &str = "feature-multi-touch";
    /// Absolute pointer range: largest X, in pixels.
    pub const WIDTH: &str = "width";
    /// Absolute pointer range: largest Y, in pixels.
    pub const HEIGHT: &str = "height";
    /// Multi-touch surface width, in pixels.
    pub const MT_WIDTH: &str = "multi-touch-width";
    /// Multi-touch surface height, in pixels.
    pub const MT_HEIGHT: &str = "multi-touch-height";
    /// Most contacts the multi-touch surface tracks at once.
    pub const MT_NUM_CONTACTS: &str = "multi-touch-num-contacts";
    /// Identity of this device instance, for backends that serve several.
    pub const UNIQUE_ID: &str = "unique-id";

    // Frontend nodes.
    /// Ask for `POS` events instead of `MOTION`.
    pub const REQUEST_ABS_POINTER: &str = "request-abs-pointer";
    /// Only meaningful together with `request-abs-pointer`.
    pub const REQUEST_RAW_POINTER: &str = "request-raw-pointer";
    /// Ask for multi-touch events (needs `feature-multi-touch`).
    pub const REQUEST_MULTI_TOUCH: &str = "request-multi-touch";
    /// Grant of the shared page.
    pub const PAGE_GREF: &str = "page-gref";
    /// Event channel the backend signals after producing events.
    pub const EVENT_CHANNEL: &str = "event-channel";
    /// Frame number of the shared page; obsolete but still written by Linux.
    pub const PAGE_REF: &str = "page-ref";
}

wire_enum! {
    /// Backend → frontend event types (2 is reserved).
    pub enum EventType: u8 as "kbdif event type" {
        /// Relative pointer motion.
        Motion = 1,
        /// Key or button press or release.
        Key = 3,
        /// Absolute pointer position.
        Pos = 4,
        /// A multi-touch sub-event ([`MtEventType`]).
        MultiTouch = 5,
    }
}

wire_enum! {
    /// Multi-touch sub-events.
    pub enum MtEventType: u8 as "kbdif multi-touch event" {
        /// A contact touched the surface.
        Down = 0,
        /// A contact left the surface.
        Up = 1,
        /// A contact moved.
        Motion = 2,
        /// Ends a group of events that belong together.
        Syn = 3,
        /// A contact's ellipse size.
        Shape = 4,
        /// A contact ellipse's orientation.
        Orient = 5,
    }
}

/// Byte offsets within an event.
pub mod offsets {
    /// [`EventType`](super::EventType), `u8`.
    pub const TYPE: usize = 0;
    /// MOTION: relative motion; POS: absolute position (same offsets).
    pub const X: usize = 4;
    /// MOTION: vertical motion; POS: vertical position; `i32`.
    pub const Y: usize = 8;
    /// Wheel, for MOTION and POS.
    pub const REL_Z: usize = 12;
    /// KEY: non-zero when pressed.
    pub const KEY_PRESSED: usize = 1;
    /// KEY: Linux `KEY_*`/`BTN_*` code.
    pub const KEY_KEYCODE: usize = 4;
    /// MTOUCH: [`MtEventType`](super::MtEventType), `u8`.
    pub const MT_EVENT_TYPE: usize = 1;
    /// MTOUCH: contact the event is about, `u8`.
    pub const MT_CONTACT_ID: usize = 2;
    /// MT DOWN/MOTION: abs_x, abs_y; SHAPE: major, minor; ORIENT: i16.
    pub const MT_PAYLOAD: usize = 8;
    /// MT DOWN/MOTION: X position, `i32`.
    pub const MT_ABS_X: usize = 8;
    /// MT DOWN/MOTION: Y position, `i32`.
    pub const MT_ABS_Y: usize = 12;
    /// MT SHAPE: major axis, `u32`.
    pub const MT_SHAPE_MAJOR: usize = 8;
    /// MT SHAPE: minor axis, `u32`.
    pub const MT_SHAPE_MINOR: usize = 12;
    /// MT ORIENT: angle in degrees, `i16`.
    pub const MT_ORIENTATION: usize = 8;
}

/// Every event, either direction.
pub const EVENT_SIZE: usize = 40;

const _: () = assert!(offsets::REL_Z + 4 <= EVENT_SIZE);
const _: () = assert!(offsets::MT_ABS_Y + 4 <= EVENT_SIZE);

/// What a multi-touch event reports for its contact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MtEvent {
    /// New contact at (x, y).
    Down {
        /// X position, in multi-touch surface pixels.
        abs_x: i32,
        /// Y position, in multi-touch surface pixels.
        abs_y: i32,
    },
    /// Contact lifted; its id may be reused.
    Up,
    /// The contact moved to (x, y).
    Motion {
        /// New X position.
        abs_x: i32,
        /// New Y position.
        abs_y: i32,
    },
    /// End of a group of related sub-events; apply them together.
    Syn,
    /// Contact ellipse axes, in pixels.
    Shape {
        /// Length of the major axis.
        major: u32,
        /// Length of the minor axis.
        minor: u32,
    },
    /// Clockwise angle of the major axis from +Y, in degrees (−180..=180).
    Orient {
        /// Degrees, clockwise from +Y.
        orientation: i16,
    },
}

impl MtEvent {
    /// The sub-event code this event is sent with.
    pub fn event_type(&self) -> MtEventType {
        match self {
            Self::Down { .. } => MtEventType::Down,
            Self::Up => MtEventType::Up,
            Self::Motion { .. } => MtEventType::Motion,
            Self::Syn => MtEventType::Syn,
            Self::Shape { .. } => MtEventType::Shape,
            Self::Orient { .. } => MtEventType::Orient,
        }
    }
}

/// A backend → frontend event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InEvent {
    /// Relative pointer motion and wheel.
    Motion {
        /// Horizontal motion, in pixels (positive is right).
        rel_x: i32,
        /// Vertical motion, in pixels (positive is down).
        rel_y: i32,
        /// Wheel motion, in notches.
        rel_z: i32,
    },
    /// Key or button (buttons travel as `BTN_*` codes).
    Key {
        /// Pressed (`true`) or released.
        pressed: bool,
        /// Linux input `KEY_*` or `BTN_*` code.
        keycode: u32,
    },
    /// Absolute pointer position (framebuffer pixels) and wheel.
    Pos {
        /// X position: 0..=`width`, or 0..=[`RAW_POINTER_MAX`] in raw mode.
        abs_x: i32,
        /// Y position: 0..=`height`, or 0..=[`RAW_POINTER_MAX`] in raw mode.
        abs_y: i32,
        /// Wheel motion, in notches.
        rel_z: i32,
    },
    /// Something happened to one multi-touch contact.
    MultiTouch {
        /// The contact (finger) the sub-event is about.
        contact_id: u8,
        /// What happened to it.
        event: MtEvent,
    },
}

impl InEvent {
    /// Every event is one 40-byte slot.
    pub const SIZE: usize = EVENT_SIZE;

    /// The type code the event is sent with.
    pub fn event_type(&self) -> EventType {
        match self {
            Self::Motion { .. } => EventType::Motion,
            Self::Key { .. } => EventType::Key,
            Self::Pos { .. } => EventType::Pos,
            Self::MultiTouch { .. } => EventType::MultiTouch,
        }
    }

    /// The slot bytes, unused bytes zeroed.
    pub fn encode(&self) -> [u8; Self::SIZE] {
        use offsets::*;
        let mut b = [0u8; Self::SIZE];
        b[TYPE] = self.event_type().raw();
        match *self {
            Self::Motion {
                rel_x: x,
                rel_y: y,
                rel_z: z,
            }
            | Self::Pos {
                abs_x: x,
                abs_y: y,
                rel_z: z,
            } => {
                put_i32(&mut b, X, x);
                put_i32(&mut b, Y, y);
                put_i32(&mut b, REL_Z, z);
            }
            Self::Key { pressed, keycode } => {
                b[KEY_PRESSED] = u8::from(pressed);
                put_u32(&mut b, KEY_KEYCODE, keycode);
            }
            Self::MultiTouch { contact_id, event } => {
                b[MT_EVENT_TYPE] = event.event_type().raw();
                b[MT_CONTACT_ID] = contact_id;
                match event {
                    MtEvent::Down { abs_x, abs_y } | MtEvent::Motion { abs_x, abs_y } => {
                        put_i32(&mut b, MT_ABS_X, abs_x);
                        put_i32(&mut b, MT_ABS_Y, abs_y);
                    }
                    MtEvent::Shape { major, minor } => {
                        put_u32(&mut b, MT_SHAPE_MAJOR, major);
                        put_u32(&mut b, MT_SHAPE_MINOR, minor);
                    }
                    MtEvent::Orient { orientation } => {
                        b[MT_ORIENTATION..MT_ORIENTATION + 2]
                            .copy_from_slice(&orientation.to_le_bytes());
                    }
                    MtEvent::Up | MtEvent::Syn => {}
                }
            }
        }
        b
    }

    /// Decodes an event. Unknown types are errors here; a frontend is
    /// expected to skip them rather than fail the device.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        use offsets::*;
        let b = exact::<{ Self::SIZE }>(bytes)?;
        Ok(match EventType::decode_raw(b[TYPE])? {
            EventType::Motion => Self::Motion {
                rel_x: get_i32(b, X),
                rel_y: get_i32(b, Y),
                rel_z: get_i32(b, REL_Z),
            },
            EventType::Pos => Self::Pos {
                abs_x: get_i32(b, X),
                abs_y: get_i32(b, Y),
                rel_z: get_i32(b, REL_Z),
            },
            EventType::Key => Self::Key {
                pressed: b[KEY_PRESSED] != 0,
                keycode: get_u32(b, KEY_KEYCODE),
            },
            EventType::MultiTouch => {
                let pos = || (get_i32(b, MT_ABS_X), get_i32(b, MT_ABS_Y));
                let event = match MtEventType::decode_raw(b[MT_EVENT_TYPE])? {
                    MtEventType::Down => {
                        let (abs_x, abs_y) = pos();
                        MtEvent::Down { abs_x, abs_y }
                    }
                    MtEventType::Motion => {
                        let (abs_x, abs_y) = pos();
                        MtEvent::Motion { abs_x, abs_y }
                    }
                    MtEventType::Up => MtEvent::Up,
                    MtEventType::Syn => MtEvent::Syn,
                    MtEventType::Shape => MtEvent::Shape {
                        major: get_u32(b, MT_SHAPE_MAJOR),
                        minor: get_u32(b, MT_SHAPE_MINOR),
                    },
                    MtEventType::Orient => MtEvent::Orient {
                        orientation: i16::from_le_bytes([b[MT_ORIENTATION], b[MT_ORIENTATION + 1]]),
                    },
                };
                Self::MultiTouch {
                    contact_id: b[MT_CONTACT_ID],
                    event,
                }
            }
        })
    }
}

/// Layout of the shared page.
pub mod page {
    /// Frontend's read index into the in ring.
    pub const IN_CONS: usize = 0;
    /// Backend's write index into the in ring.
    pub const IN_PROD: usize = 4;
    /// Backend's read index into the out ring.
    pub const OUT_CONS: usize = 8;
    /// Frontend's write index into the out ring.
    pub const OUT_PROD: usize = 12;
    /// Backend → frontend events.
    pub const IN_RING: usize = 1024;
    /// Bytes of the in ring.
    pub const IN_RING_SIZE: usize = 2048;
    /// Frontend → backend events (none defined).
    pub const OUT_RING: usize = 3072;
    /// Bytes of the out ring.
    pub const OUT_RING_SIZE: usize = 1024;
}

/// Slots in the in ring.
pub const IN_RING_LEN: u32 = (page::IN_RING_SIZE / EVENT_SIZE) as u32;
/// Slots in the out ring.
pub const OUT_RING_LEN: u32 = (page::OUT_RING_SIZE / EVENT_SIZE) as u32;

const _: () = assert!(IN_RING_LEN == 51 && OUT_RING_LEN == 25);
const _: () = assert!(page::OUT_RING == page::IN_RING + page::IN_RING_SIZE);
const _: () = assert!(page::OUT_RING + page::OUT_RING_SIZE == super::wire::XEN_PAGE_SIZE);
const _: () = assert!(page::OUT_PROD + 4 <= page::IN_RING);

/// Page offset of the in-ring slot for free-running index `idx`.
pub const fn in_slot_offset(idx: u32) -> usize {
    page::IN_RING + (idx % IN_RING_LEN) as usize * EVENT_SIZE
}

/// Page offset of the out-ring slot for free-running index `idx`.
pub const fn out_slot_offset(idx: u32) -> usize {
    page::OUT_RING + (idx % OUT_RING_LEN) as usize * EVENT_SIZE
}

/// The four indices at the start of the page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageIndices {
    /// In-ring events the frontend has consumed (free-running).
    pub in_cons: u32,
    /// In-ring events the backend has produced (free-running).
    pub in_prod: u32,
    /// Out-ring events the backend has consumed (free-running).
    pub out_cons: u32,
    /// Out-ring events the frontend has produced (free-running).
    pub out_prod: u32,
}

impl PageIndices {
    /// Encoded size: four little-endian `u32`s.
    pub const SIZE: usize = 16;

    /// The index block as it sits at the start of the page.
    pub fn encode(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        put_u32(&mut b, page::IN_CONS, self.in_cons);
        put_u32(&mut b, page::IN_PROD, self.in_prod);
        put_u32(&mut b, page::OUT_CONS, self.out_cons);
        put_u32(&mut b, page::OUT_PROD, self.out_prod);
        b
    }

    /// Reads the indices from exactly [`Self::SIZE`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let b = exact::<{ Self::SIZE }>(bytes)?;
        Ok(Self {
            in_cons: get_u32(b, page::IN_CONS),
            in_prod: get_u32(b, page::IN_PROD),
            out_cons: get_u32(b, page::OUT_CONS),
            out_prod: get_u32(b, page::OUT_PROD),
        })
    }

    /// Unread in-ring events; fails if the backend overran the ring.
    pub fn in_pending(&self) -> Result<u32, WireError> {
        let n = self.in_prod.wrapping_sub(self.in_cons);
        if n > IN_RING_LEN {
            return Err(WireError::TooLong {
                limit: IN_RING_LEN as usize,
                actual: n as usize,
            });
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_header() {
        assert_eq!(EventType::Motion.raw(), 1);
        assert_eq!(EventType::from_raw(2), None);
        assert_eq!(EventType::Key.raw(), 3);
        assert_eq!(EventType::Pos.raw(), 4);
        assert_eq!(EventType::MultiTouch.raw(), 5);
        assert_eq!(MtEventType::Down.raw(), 0);
        assert_eq!(MtEventType::Up.raw(), 1);
        assert_eq!(MtEventType::Motion.raw(), 2);
        assert_eq!(MtEventType::Syn.raw(), 3);
        assert_eq!(MtEventType::Shape.raw(), 4);
        assert_eq!(MtEventType::Orient.raw(), 5);
    }

    #[test]
    fn event_bytes() {
        let b = InEvent::Key {
            pressed: true,
            keycode: 0x110, // BTN_LEFT
        }
        .encode();
        assert_eq!(b[..8], [3, 1, 0, 0, 0x10, 0x01, 0, 0]);
        assert!(b[8..].iter().all(|&x| x == 0));

        let b = InEvent::Pos {
            abs_x: 100,
            abs_y: -2,
            rel_z: 1,
        }
        .encode();
        assert_eq!(b[0], 4);
        assert_eq!(b[4..16], [100, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 1, 0, 0, 0]);

        let b = InEvent::MultiTouch {
            contact_id: 3,
            event: MtEvent::Down {
                abs_x: 0x0102,
                abs_y: 0x0304,
            },
        }
        .encode();
        assert_eq!(b[..16], [5, 0, 3, 0, 0, 0, 0, 0, 2, 1, 0, 0, 4, 3, 0, 0]);

        let b = InEvent::MultiTouch {
            contact_id: 0,
            event: MtEvent::Orient { orientation: -90 },
        }
        .encode();
        assert_eq!((b[1], b[8], b[9], b[10]), (5, 0xa6, 0xff, 0));
    }

    #[test]
    fn round_trips() {
        let mt = |event| InEvent::MultiTouch {
            contact_id: 9,
            event,
        };
        let events = [
            InEvent::Motion {
                rel_x: -1,
                rel_y: 2,
                rel_z: -3,
            },
            InEvent::Key {
                pressed: false,
                keycode: 30,
            },
            InEvent::Pos {
                abs_x: 1,
                abs_y: 2,
                rel_z: 0,
            },
            mt(MtEvent::Down { abs_x: 5, abs_y: 6 }),
            mt(MtEvent::Up),
            mt(MtEvent::Motion {
                abs_x: -5,
                abs_y: 7,
            }),
            mt(MtEvent::Syn),
            mt(MtEvent::Shape {
                major: 10,
                minor: 4,
            }),
            mt(MtEvent::Orient { orientation: 180 }),
        ];
        for e in events {
            assert_eq!(InEvent::decode(&e.encode()), Ok(e));
        }
        let mut b = [0u8; 40];
        b[0] = 2;
        assert!(InEvent::decode(&b).is_err(), "reserved type");
        b[0] = 5;
        b[1] = 6;
        assert!(InEvent::decode(&b).is_err(), "unknown MT sub-event");
    }

    #[test]
    fn page_layout() {
        assert_eq!(in_slot_offset(0), 1024);
        assert_eq!(in_slot_offset(50), 1024 + 50 * 40);
        assert_eq!(in_slot_offset(51), 1024);
        assert_eq!(out_slot_offset(26), 3072 + 40);
        let idx = PageIndices {
            in_cons: 1,
            in_prod: 52,
            out_cons: 3,
            out_prod: 4,
        };
        let b = idx.encode();
        assert_eq!(b[4], 52);
        assert_eq!(b[12], 4);
        assert_eq!(PageIndices::decode(&b), Ok(idx));
        assert_eq!(idx.in_pending(), Ok(51));
        let bad = PageIndices {
            in_prod: 52,
            ..Default::default()
        };
        assert!(bad.in_pending().is_err());
    }
}
