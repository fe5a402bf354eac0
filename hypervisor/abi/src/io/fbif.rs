//! Legacy PV framebuffer (`io/fbif.h`, device type `vfb`).
//!
//! One shared page holds the indices, the framebuffer geometry, a page
//! directory of *frame numbers* (not grants, so the backend needs foreign
//! mapping rights over the guest), and two one-way rings of 40-byte events
//! whose lengths (25 and 51) are not powers of two. Kept for guests that
//! only have `xen-fbfront`; new work should use [`displif`](super::displif).

use super::wire::{exact, get_i32, get_u32, put_i32, put_u32, wire_enum, WireError};

/// xenbus device type.
pub const DRIVER_NAME: &str = "vfb";

/// Xenstore node names. These come from the Linux and QEMU drivers, as the
/// header itself names none.
pub mod field {
    /// Frontend: frame number of the shared page.
    pub const PAGE_REF: &str = "page-ref";
    /// Frontend: event channel that signals new events in either ring.
    pub const EVENT_CHANNEL: &str = "event-channel";
    /// Frontend: word size of `pd` entries (see [`super::PdAbi::from_protocol`]).
    pub const PROTOCOL: &str = "protocol";
    /// Frontend: it can send UPDATE events.
    pub const FEATURE_UPDATE: &str = "feature-update";
    /// Backend: it wants UPDATE events.
    pub const REQUEST_UPDATE: &str = "request-update";
    /// Backend: it accepts RESIZE events.
    pub const FEATURE_RESIZE: &str = "feature-resize";
    /// Backend, optional: framebuffer memory to allocate, in MiB.
    pub const VIDEORAM: &str = "videoram";
    /// Backend, optional: initial mode width, in pixels.
    pub const WIDTH: &str = "width";
    /// Backend, optional: initial mode height, in pixels.
    pub const HEIGHT: &str = "height";
}

/// `protocol` values (`io/protocols.h`).
pub mod protocol {
    /// 32-bit x86 guest: 4-byte `pd` entries.
    pub const X86_32: &str = "x86_32-abi";
    /// 64-bit x86 guest: 8-byte `pd` entries.
    pub const X86_64: &str = "x86_64-abi";
    /// Arm guest, 32- or 64-bit: the entry width is not implied.
    pub const ARM: &str = "arm-abi";
}

wire_enum! {
    /// Frontend → backend event types (1 is unused).
    pub enum OutEventType: u8 as "fbif out event type" {
        /// A rectangle of the framebuffer changed.
        Update = 2,
        /// The frontend switched to a new mode.
        Resize = 3,
    }
}

wire_enum! {
    /// Backend → frontend event types.
    pub enum InEventType: u8 as "fbif in event type" {
        /// The backend suggests how often to send updates.
        RefreshPeriod = 1,
    }
}

/// A refresh period of 0: the backend is not looking, skip updates.
pub const NO_REFRESH: u32 = 0;

/// Every event, either direction.
pub const EVENT_SIZE: usize = 40;

/// Byte offsets within events.
pub mod offsets {
    /// Event type, `u8`.
    pub const TYPE: usize = 0;
    /// UPDATE: left edge in pixels, `i32`.
    pub const UPDATE_X: usize = 4;
    /// UPDATE: top edge in pixels, `i32`.
    pub const UPDATE_Y: usize = 8;
    /// UPDATE: width in pixels, `i32`.
    pub const UPDATE_WIDTH: usize = 12;
    /// UPDATE: height in pixels, `i32`.
    pub const UPDATE_HEIGHT: usize = 16;
    /// RESIZE: new width in pixels, `i32`.
    pub const RESIZE_WIDTH: usize = 4;
    /// RESIZE: new height in pixels, `i32`.
    pub const RESIZE_HEIGHT: usize = 8;
    /// Bytes per line.
    pub const RESIZE_STRIDE: usize = 12;
    /// Bits per pixel.
    pub const RESIZE_DEPTH: usize = 16;
    /// Offset of the visible framebuffer in the shared memory.
    pub const RESIZE_OFFSET: usize = 20;
    /// Milliseconds between refreshes the backend suggests.
    pub const REFRESH_PERIOD: usize = 4;
}

const _: () = assert!(offsets::UPDATE_HEIGHT + 4 <= EVENT_SIZE);
const _: () = assert!(offsets::RESIZE_OFFSET + 4 <= EVENT_SIZE);

/// A frontend → backend event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutEvent {
    /// This rectangle changed (sent only if the backend set `request-update`).
    Update {
        /// Left edge, in pixels.
        x: i32,
        /// Top edge, in pixels.
        y: i32,
        /// Width, in pixels.
        width: i32,
        /// Height, in pixels.
        height: i32,
    },
    /// New mode (only if the backend set `feature-resize`).
    Resize {
        /// Width, in pixels.
        width: i32,
        /// Height, in pixels.
        height: i32,
        /// Bytes per line.
        stride: i32,
        /// Bits per pixel.
        depth: i32,
        /// Byte offset of the visible picture in the framebuffer memory.
        offset: i32,
    },
}

impl OutEvent {
    /// Every event is one 40-byte slot.
    pub const SIZE: usize = EVENT_SIZE;

    /// The type code the event is sent with.
    pub fn event_type(&self) -> OutEventType {
        match self {
            Self::Update { .. } => OutEventType::Update,
            Self::Resize { .. } => OutEventType::Resize,
        }
    }

    /// The slot bytes, unused bytes zeroed.
    pub fn encode(&self) -> [u8; Self::SIZE] {
        use offsets::*;
        let mut b = [0u8; Self::SIZE];
        b[TYPE] = self.event_type().raw();
        match *self {
            Self::Update {
                x,
                y,
                width,
                height,
            } => {
                put_i32(&mut b, UPDATE_X, x);
                put_i32(&mut b, UPDATE_Y, y);
                put_i32(&mut b, UPDATE_WIDTH, width);
                put_i32(&mut b, UPDATE_HEIGHT, height);
            }
            Self::Resize {
                width,
                height,
                stride,
                depth,
                offset,
            } => {
                put_i32(&mut b, RESIZE_WIDTH, width);
                put_i32(&mut b, RESIZE_HEIGHT, height);
                put_i32(&mut b, RESIZE_STRIDE, stride);
                put_i32(&mut b, RESIZE_DEPTH, depth);
                put_i32(&mut b, RESIZE_OFFSET, offset);
            }
        }
        b
    }

    /// Decodes an event; an unknown type is an error (the header makes it
    /// a protocol violation in this direction).
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        use offsets::*;
        let b = exact::<{ Self::SIZE }>(bytes)?;
        Ok(match OutEventType::decode_raw(b[TYPE])? {
            OutEventType::Update => Self::Update {
                x: get_i32(b, UPDATE_X),
                y: get_i32(b, UPDATE_Y),
                width: get_i32(b, UPDATE_WIDTH),
                height: get_i32(b, UPDATE_HEIGHT),
            },
            OutEventType::Resize => Self::Resize {
                width: get_i32(b, RESIZE_WIDTH),
                height: get_i32(b, RESIZE_HEIGHT),
                stride: get_i32(b, RESIZE_STRIDE),
                depth: get_i32(b, RESIZE_DEPTH),
                offset: get_i32(b, RESIZE_OFFSET),
            },
        })
    }
}

/// A backend → frontend event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InEvent {
    /// Suggested refresh period in ms, or [`NO_REFRESH`].
    RefreshPeriod {
        /// Milliseconds between refreshes, or [`NO_REFRESH`].
        period: u32,
    },
}

impl InEvent {
    /// Every event is one 40-byte slot.
    pub const SIZE: usize = EVENT_SIZE;

    /// The slot bytes, unused bytes zeroed.
    pub fn encode(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        match *self {
            Self::RefreshPeriod { period } => {
                b[offsets::TYPE] = InEventType::RefreshPeriod.raw();
                put_u32(&mut b, offsets::REFRESH_PERIOD, period);
            }
        }
        b
    }

    /// Decodes an event; frontends should skip (not fail on) unknown types.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let b = exact::<{ Self::SIZE }>(bytes)?;
        Ok(match InEventType::decode_raw(b[offsets::TYPE])? {
            InEventType::RefreshPeriod => Self::RefreshPeriod {
                period: get_u32(b, offsets::REFRESH_PERIOD),
            },
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
    /// Mode width in pixels, `i32`.
    pub const WIDTH: usize = 16;
    /// Mode height in pixels, `i32`.
    pub const HEIGHT: usize = 20;
    /// Bytes per line, `u32`.
    pub const LINE_LENGTH: usize = 24;
    /// Bytes of framebuffer memory, `u32`.
    pub const MEM_LENGTH: usize = 28;
    /// Bits per pixel, `u8`.
    pub const DEPTH: usize = 32;
    /// `pd[]` for a guest with 4-byte `unsigned long`.
    pub const PD_32: usize = 36;
    /// `pd[]` for a guest with 8-byte `unsigned long` (arm64, x86-64).
    pub const PD_64: usize = 40;
    /// Entries the C struct declares.
    pub const PD_ENTRIES: usize = 256;
    /// Backend → frontend events.
    pub const IN_RING: usize = 1024;
    /// Bytes of the in ring.
    pub const IN_RING_SIZE: usize = 1024;
    /// Frontend → backend events.
    pub const OUT_RING: usize = 2048;
    /// Bytes of the out ring.
    pub const OUT_RING_SIZE: usize = 2048;
}

/// Slots in the in ring.
pub const IN_RING_LEN: u32 = (page::IN_RING_SIZE / EVENT_SIZE) as u32;
/// Slots in the out ring.
pub const OUT_RING_LEN: u32 = (page::OUT_RING_SIZE / EVENT_SIZE) as u32;

const _: () = assert!(IN_RING_LEN == 25 && OUT_RING_LEN == 51);
const _: () = assert!(page::OUT_RING == page::IN_RING + page::IN_RING_SIZE);
const _: () = assert!(page::OUT_RING + page::OUT_RING_SIZE == super::wire::XEN_PAGE_SIZE);
// pd[] starts at the next multiple of the entry size after `depth`.
const _: () = assert!(page::PD_32 == (page::DEPTH + 1).next_multiple_of(4));
const _: () = assert!(page::PD_64 == (page::DEPTH + 1).next_multiple_of(8));

/// Page offset of the in-ring slot for free-running index `idx`.
pub const fn in_slot_offset(idx: u32) -> usize {
    page::IN_RING + (idx % IN_RING_LEN) as usize * EVENT_SIZE
}

/// Page offset of the out-ring slot for free-running index `idx`.
pub const fn out_slot_offset(idx: u32) -> usize {
    page::OUT_RING + (idx % OUT_RING_LEN) as usize * EVENT_SIZE
}

/// Width of the `pd[]` entries, which depends on the guest's ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PdAbi {
    /// 4-byte entries (guests whose `unsigned long` is 32 bits).
    Bits32,
    /// 8-byte entries (guests whose `unsigned long` is 64 bits).
    Bits64,
}

impl PdAbi {
    /// Maps a `protocol` node value. `arm-abi` is `None`: the name does not
    /// say whether the guest is arm32 or arm64, and backends fall back to
    /// their own word size, so the caller must know the guest.
    pub fn from_protocol(value: &str) -> Option<Self> {
        match value {
            protocol::X86_32 => Some(Self::Bits32),
            protocol::X86_64 => Some(Self::Bits64),
            _ => None,
        }
    }

    /// Page offset of `pd[0]`, which is aligned to the entry size.
    pub const fn pd_offset(self) -> usize {
        match self {
            Self::Bits32 => page::PD_32,
            Self::Bits64 => page::PD_64,
        }
    }

    /// Bytes per `pd[]` entry.
    pub const fn entry_size(self) -> usize {
        match self {
            Self::Bits32 => 4,
            Self::Bits64 => 8,
        }
    }

    /// `pd[]` entries that end before the in ring. The C array is longer
    /// and its tail overlaps the ring, so later entries are unusable.
    pub const fn usable_entries(self) -> usize {
        let fit = (page::IN_RING - self.pd_offset()) / self.entry_size();
        if fit < page::PD_ENTRIES {
            fit
        } else {
            page::PD_ENTRIES
        }
    }

    /// Page offset of `pd[i]`, or `None` past the usable entries.
    pub const fn entry_offset(self, i: usize) -> Option<usize> {
        if i < self.usable_entries() {
            Some(self.pd_offset() + i * self.entry_size())
        } else {
            None
        }
    }

    /// Framebuffer pages one directory page maps.
    pub const fn pages_per_directory_page(self) -> usize {
        super::wire::XEN_PAGE_SIZE / self.entry_size()
    }
}

/// The page fields before `pd[]`: indices and framebuffer geometry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageHeader {
    /// In-ring events the frontend has consumed (free-running).
    pub in_cons: u32,
    /// In-ring events the backend has produced (free-running).
    pub in_prod: u32,
    /// Out-ring events the backend has consumed (free-running).
    pub out_cons: u32,
    /// Out-ring events the frontend has produced (free-running).
    pub out_prod: u32,
    /// Pixels.
    pub width: i32,
    /// Pixels.
    pub height: i32,
    /// Bytes per line.
    pub line_length: u32,
    /// Bytes of framebuffer memory.
    pub mem_length: u32,
    /// Bits per pixel.
    pub depth: u8,
}

impl PageHeader {
    /// Bytes up to and including `depth`.
    pub const SIZE: usize = page::DEPTH + 1;

    /// The header bytes as they sit at the start of the page.
    pub fn encode(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        put_u32(&mut b, page::IN_CONS, self.in_cons);
        put_u32(&mut b, page::IN_PROD, self.in_prod);
        put_u32(&mut b, page::OUT_CONS, self.out_cons);
        put_u32(&mut b, page::OUT_PROD, self.out_prod);
        put_i32(&mut b, page::WIDTH, self.width);
        put_i32(&mut b, page::HEIGHT, self.height);
        put_u32(&mut b, page::LINE_LENGTH, self.line_length);
        put_u32(&mut b, page::MEM_LENGTH, self.mem_length);
        b[page::DEPTH] = self.depth;
        b
    }

    /// Reads the header from exactly [`Self::SIZE`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let b = exact::<{ Self::SIZE }>(bytes)?;
        Ok(Self {
            in_cons: get_u32(b, page::IN_CONS),
            in_prod: get_u32(b, page::IN_PROD),
            out_cons: get_u32(b, page::OUT_CONS),
            out_prod: get_u32(b, page::OUT_PROD),
            width: get_i32(b, page::WIDTH),
            height: get_i32(b, page::HEIGHT),
            line_length: get_u32(b, page::LINE_LENGTH),
            mem_length: get_u32(b, page::MEM_LENGTH),
            depth: b[page::DEPTH],
        })
    }

    /// Unread out-ring events (the ring the backend consumes); fails if
    /// the frontend overran it.
    pub fn out_pending(&self) -> Result<u32, WireError> {
        let n = self.out_prod.wrapping_sub(self.out_cons);
        if n > OUT_RING_LEN {
            return Err(WireError::TooLong {
                limit: OUT_RING_LEN as usize,
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
        assert_eq!(OutEventType::Update.raw(), 2);
        assert_eq!(OutEventType::Resize.raw(), 3);
        assert_eq!(InEventType::RefreshPeriod.raw(), 1);
        assert_eq!(OutEventType::from_raw(1), None);
    }

    #[test]
    fn event_bytes_and_round_trip() {
        let e = OutEvent::Update {
            x: 1,
            y: 2,
            width: 3,
            height: -4,
        };
        let b = e.encode();
        assert_eq!(b[..4], [2, 0, 0, 0]);
        assert_eq!(
            b[4..20],
            [1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0xfc, 0xff, 0xff, 0xff]
        );
        assert!(b[20..].iter().all(|&x| x == 0));
        assert_eq!(OutEvent::decode(&b), Ok(e));

        let e = OutEvent::Resize {
            width: 800,
            height: 600,
            stride: 3200,
            depth: 32,
            offset: 0,
        };
        let b = e.encode();
        assert_eq!((b[0], b[16]), (3, 32));
        assert_eq!(b[12..16], 3200u32.to_le_bytes());
        assert_eq!(OutEvent::decode(&b), Ok(e));

        let e = InEvent::RefreshPeriod { period: 50 };
        let b = e.encode();
        assert_eq!(b[..8], [1, 0, 0, 0, 50, 0, 0, 0]);
        assert_eq!(InEvent::decode(&b), Ok(e));
    }

    #[test]
    fn page_layout() {
        let h = PageHeader {
            in_cons: 1,
            in_prod: 2,
            out_cons: 3,
            out_prod: 4,
            width: 800,
            height: 600,
            line_length: 3200,
            mem_length: 3200 * 600,
            depth: 32,
        };
        let b = h.encode();
        assert_eq!(b[16..20], 800u32.to_le_bytes());
        assert_eq!(b[24..28], 3200u32.to_le_bytes());
        assert_eq!(b[32], 32);
        assert_eq!(PageHeader::decode(&b), Ok(h));
        assert_eq!(h.out_pending(), Ok(1));

        assert_eq!(PdAbi::Bits64.entry_offset(0), Some(40));
        assert_eq!(PdAbi::Bits64.usable_entries(), 123);
        assert_eq!(PdAbi::Bits64.entry_offset(122), Some(1016));
        assert_eq!(PdAbi::Bits64.entry_offset(123), None);
        assert_eq!(PdAbi::Bits32.usable_entries(), 247);
        assert_eq!(PdAbi::Bits32.entry_offset(1), Some(40));
        assert_eq!(PdAbi::Bits64.pages_per_directory_page(), 512);
        assert_eq!(PdAbi::from_protocol("x86_64-abi"), Some(PdAbi::Bits64));
        assert_eq!(PdAbi::from_protocol("arm-abi"), None);

        assert_eq!(in_slot_offset(25), 1024);
        assert_eq!(out_slot_offset(50), 2048 + 50 * 40);
    }
}
