//! Virtual display (`io/displif.h`, protocol version 2, device type `vdispl`).
//!
//! Each connector has a request ring (64-byte packets over the generic
//! [`ring`](super::ring)) and an [event page](super::evtpage) for flip
//! completions. Buffers are shared through a [page directory](super::pgdir)
//! and named by 64-bit cookies the frontend picks (0 is never valid).
//! Requests not tied to a connector (buffer create/destroy, attach/detach)
//! must go on connector 0's ring.

use super::wire::{
    exact, get_i32, get_u16, get_u32, get_u64, parse_decimal, put_i32, put_u16, put_u32, put_u64,
    wire_enum, WireError,
};

/// Protocol version, as written to xenstore.
pub const PROTOCOL_VERSION: &str = "2";
/// Protocol version as a number.
pub const PROTOCOL_VERSION_INT: u32 = 2;
/// xenbus device type.
pub const DRIVER_NAME: &str = "vdispl";
/// Separator of list values (`versions`).
pub const LIST_SEPARATOR: char = ',';
/// Separator in `resolution` ("1920x1080").
pub const RESOLUTION_SEPARATOR: u8 = b'x';

/// Bytes in one EDID block; EDID data is always whole blocks.
pub const EDID_BLOCK_SIZE: u32 = 128;
/// Most blocks an EDID can have (the base block and its extensions).
pub const EDID_BLOCK_COUNT: u32 = 256;
/// Size a GET_EDID buffer must have: the largest possible EDID (32 KiB).
pub const EDID_MAX_SIZE: u32 = EDID_BLOCK_SIZE * EDID_BLOCK_COUNT;

/// `DBUF_CREATE` flag: the backend allocates the buffer and fills the
/// page directory with its own grants (needs `be-alloc` = "1").
pub const DBUF_FLG_REQ_ALLOC: u32 = 1 << 0;

/// Xenstore node names, all under the frontend directory.
pub mod field {
    /// Backend: versions it speaks.
    pub const VERSIONS: &str = "versions";
    /// Frontend: the version it picked.
    pub const VERSION: &str = "version";
    /// "1" lets the frontend ask the backend to allocate buffers.
    pub const BE_ALLOC: &str = "be-alloc";
    /// Per connector: visible area, `<width>x<height>`.
    pub const RESOLUTION: &str = "resolution";
    /// Per connector: identity the backend maps to an output.
    pub const UNIQUE_ID: &str = "unique-id";
    /// Per connector: grant of its request ring page.
    pub const REQ_RING_REF: &str = "req-ring-ref";
    /// Per connector: event channel that signals the request ring.
    pub const REQ_EVENT_CHANNEL: &str = "req-event-channel";
    /// Per connector: grant of its [event page](super::super::evtpage).
    pub const EVT_RING_REF: &str = "evt-ring-ref";
    /// Per connector: event channel that signals the event page.
    pub const EVT_EVENT_CHANNEL: &str = "evt-event-channel";
}

/// Parses a `resolution` value into (width, height).
pub fn parse_resolution(text: &[u8]) -> Result<(u32, u32), WireError> {
    let sep = text
        .iter()
        .position(|&c| c == RESOLUTION_SEPARATOR)
        .ok_or(WireError::BadText)?;
    let (w, h) = text.split_at(sep);
    Ok((parse_decimal(w)?, parse_decimal(&h[1..])?))
}

wire_enum! {
    /// Request operation codes (0..=15 are reserved).
    pub enum Operation: u8 as "displif operation" {
        /// Shares a display buffer, or asks the backend to allocate one.
        DbufCreate = 0x10,
        /// Releases a display buffer.
        DbufDestroy = 0x11,
        /// Makes a framebuffer out of a display buffer.
        FbAttach = 0x12,
        /// Removes a framebuffer.
        FbDetach = 0x13,
        /// Shows a framebuffer on the connector, or turns the connector off.
        SetConfig = 0x14,
        /// Switches the connector to another framebuffer; completion comes as an event.
        PgFlip = 0x15,
        /// Version 2 only, and optional for backends.
        GetEdid = 0x16,
    }
}

wire_enum! {
    /// Event codes on the event page.
    pub enum EventType: u8 as "displif event type" {
        /// A page flip requested with `PG_FLIP` completed.
        PgFlip = 0x00,
    }
}

/// Byte offsets within the 64-byte packets.
///
/// Payload offsets are named `<OPERATION>_<FIELD>` after the request (or
/// `RSP_`/`EVT_` for responses and events) whose field they locate; the
/// field's width is that of the matching struct member.
pub mod offsets {
    /// Request id (echoed in the response) or event id, `u16`.
    pub const ID: usize = 0;
    /// [`Operation`](super::Operation) or [`EventType`](super::EventType), `u8`.
    pub const OPERATION: usize = 2;
    /// Responses: 0 or a negative Xen errno, `i32`.
    pub const STATUS: usize = 4;
    /// Start of the per-operation payload.
    pub const PAYLOAD: usize = 8;

    /// `u64`.
    pub const DBUF_CREATE_DBUF_COOKIE: usize = 8;
    /// Pixels, `u32`.
    pub const DBUF_CREATE_WIDTH: usize = 16;
    /// Pixels, `u32`.
    pub const DBUF_CREATE_HEIGHT: usize = 20;
    /// Bits per pixel, `u32`.
    pub const DBUF_CREATE_BPP: usize = 24;
    /// Bytes, `u32`.
    pub const DBUF_CREATE_BUFFER_SZ: usize = 28;
    /// Flag bits, `u32`.
    pub const DBUF_CREATE_FLAGS: usize = 32;
    /// Grant reference, `u32`.
    pub const DBUF_CREATE_GREF_DIRECTORY: usize = 36;
    /// Bytes, `u32`.
    pub const DBUF_CREATE_DATA_OFS: usize = 40;

    /// `u64`.
    pub const DBUF_DESTROY_DBUF_COOKIE: usize = 8;

    /// `u64`.
    pub const FB_ATTACH_DBUF_COOKIE: usize = 8;
    /// `u64`.
    pub const FB_ATTACH_FB_COOKIE: usize = 16;
    /// Pixels, `u32`.
    pub const FB_ATTACH_WIDTH: usize = 24;
    /// Pixels, `u32`.
    pub const FB_ATTACH_HEIGHT: usize = 28;
    /// DRM fourcc, `u32`.
    pub const FB_ATTACH_PIXEL_FORMAT: usize = 32;

    /// `u64`.
    pub const FB_DETACH_FB_COOKIE: usize = 8;

    /// `u64`.
    pub const SET_CONFIG_FB_COOKIE: usize = 8;
    /// Pixels, `u32`.
    pub const SET_CONFIG_X: usize = 16;
    /// Pixels, `u32`.
    pub const SET_CONFIG_Y: usize = 20;
    /// Pixels, `u32`.
    pub const SET_CONFIG_WIDTH: usize = 24;
    /// Pixels, `u32`.
    pub const SET_CONFIG_HEIGHT: usize = 28;
    /// The header's diagram draws this ending at byte 40; the struct (and
    /// every implementation) puts it at 32.
    pub const SET_CONFIG_BPP: usize = 32;

    /// `u64`.
    pub const PG_FLIP_FB_COOKIE: usize = 8;

    /// Bytes, `u32`.
    pub const GET_EDID_BUFFER_SZ: usize = 8;
    /// Grant reference, `u32`.
    pub const GET_EDID_GREF_DIRECTORY: usize = 12;

    /// GET_EDID response: bytes of EDID written.
    pub const RSP_EDID_SZ: usize = 8;

    /// PG_FLIP event: which framebuffer is now on screen.
    pub const EVT_PG_FLIP_FB_COOKIE: usize = 8;
}

/// Size of requests, responses and events alike.
pub const PACKET_SIZE: usize = 64;

const _: () = assert!(offsets::DBUF_CREATE_DATA_OFS + 4 <= PACKET_SIZE);
const _: () = assert!(offsets::FB_ATTACH_PIXEL_FORMAT + 4 <= PACKET_SIZE);
const _: () = assert!(offsets::SET_CONFIG_BPP + 4 <= PACKET_SIZE);
const _: () = assert!(offsets::GET_EDID_GREF_DIRECTORY + 4 <= PACKET_SIZE);
const _: () = assert!(offsets::PAYLOAD + 56 == PACKET_SIZE);

/// `DBUF_CREATE`: share (or have the backend allocate) a display buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DbufCreate {
    /// Frontend-chosen, non-zero name of the new buffer.
    pub dbuf_cookie: u64,
    /// Pixels per line.
    pub width: u32,
    /// Lines.
    pub height: u32,
    /// Bits per pixel.
    pub bpp: u32,
    /// Size of the buffer in bytes.
    pub buffer_sz: u32,
    /// [`DBUF_FLG_REQ_ALLOC`] or 0.
    pub flags: u32,
    /// Grant of the first page-directory page, which the frontend always
    /// provides; with [`DBUF_FLG_REQ_ALLOC`] the backend fills in the grants.
    pub gref_directory: u32,
    /// Where pixel data starts inside the buffer (version 2).
    pub data_ofs: u32,
}

/// `FB_ATTACH`: make a framebuffer out of a display buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FbAttach {
    /// The display buffer holding the pixels.
    pub dbuf_cookie: u64,
    /// Frontend-chosen, non-zero name of the new framebuffer.
    pub fb_cookie: u64,
    /// Pixels per line.
    pub width: u32,
    /// Lines.
    pub height: u32,
    /// DRM fourcc code.
    pub pixel_format: u32,
}

/// `SET_CONFIG`: show a framebuffer on this connector; all zero disables.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetConfig {
    /// The framebuffer to show; 0 (with the rest zero) turns the connector off.
    pub fb_cookie: u64,
    /// Horizontal position, in pixels.
    pub x: u32,
    /// Vertical position, in pixels.
    pub y: u32,
    /// Visible width, in pixels.
    pub width: u32,
    /// Visible height, in pixels.
    pub height: u32,
    /// Bits per pixel of the framebuffer.
    pub bpp: u32,
}

/// `GET_EDID`: ask the backend to write EDID into a shared buffer of at
/// least [`EDID_MAX_SIZE`] bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GetEdid {
    /// Size of the shared buffer in bytes.
    pub buffer_sz: u32,
    /// Grant of the first page-directory page of that buffer.
    pub gref_directory: u32,
}

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestBody {
    /// Share or allocate a display buffer.
    DbufCreate(DbufCreate),
    /// Release a display buffer.
    DbufDestroy {
        /// The buffer to release.
        dbuf_cookie: u64,
    },
    /// Make a framebuffer of a display buffer.
    FbAttach(FbAttach),
    /// Remove a framebuffer.
    FbDetach {
        /// The framebuffer to remove.
        fb_cookie: u64,
    },
    /// Show a framebuffer on this connector, or disable it.
    SetConfig(SetConfig),
    /// Switch this connector to another framebuffer.
    PgFlip {
        /// The framebuffer to show next.
        fb_cookie: u64,
    },
    /// Have the backend write this connector's EDID.
    GetEdid(GetEdid),
}

/// A frontend → backend request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// Frontend's tag, echoed in the response.
    pub id: u16,
    /// The operation and its parameters.
    pub body: RequestBody,
}

impl Request {
    /// Every request is one 64-byte packet.
    pub const SIZE: usize = PACKET_SIZE;

    /// The operation code `body` is sent with.
    pub fn operation(&self) -> Operation {
        match self.body {
            RequestBody::DbufCreate(_) => Operation::DbufCreate,
            RequestBody::DbufDestroy { .. } => Operation::DbufDestroy,
            RequestBody::FbAttach(_) => Operation::FbAttach,
            RequestBody::FbDetach { .. } => Operation::FbDetach,
            RequestBody::SetConfig(_) => Operation::SetConfig,
            RequestBody::PgFlip { .. } => Operation::PgFlip,
            RequestBody::GetEdid(_) => Operation::GetEdid,
        }
    }

    /// The packet bytes, reserved bytes zeroed.
    pub fn encode(&self) -> [u8; Self::SIZE] {
        use offsets::*;
        let mut b = [0u8; Self::SIZE];
        put_u16(&mut b, ID, self.id);
        b[OPERATION] = self.operation().raw();
        match self.body {
            RequestBody::DbufCreate(d) => {
                put_u64(&mut b, DBUF_CREATE_DBUF_COOKIE, d.dbuf_cookie);
                put_u32(&mut b, DBUF_CREATE_WIDTH, d.width);
                put_u32(&mut b, DBUF_CREATE_HEIGHT, d.height);
                put_u32(&mut b, DBUF_CREATE_BPP, d.bpp);
                put_u32(&mut b, DBUF_CREATE_BUFFER_SZ, d.buffer_sz);
                put_u32(&mut b, DBUF_CREATE_FLAGS, d.flags);
                put_u32(&mut b, DBUF_CREATE_GREF_DIRECTORY, d.gref_directory);
                put_u32(&mut b, DBUF_CREATE_DATA_OFS, d.data_ofs);
            }
            RequestBody::DbufDestroy { dbuf_cookie } => {
                put_u64(&mut b, DBUF_DESTROY_DBUF_COOKIE, dbuf_cookie)
            }
            RequestBody::FbAttach(a) => {
                put_u64(&mut b, FB_ATTACH_DBUF_COOKIE, a.dbuf_cookie);
                put_u64(&mut b, FB_ATTACH_FB_COOKIE, a.fb_cookie);
                put_u32(&mut b, FB_ATTACH_WIDTH, a.width);
                put_u32(&mut b, FB_ATTACH_HEIGHT, a.height);
                put_u32(&mut b, FB_ATTACH_PIXEL_FORMAT, a.pixel_format);
            }
            RequestBody::FbDetach { fb_cookie } => put_u64(&mut b, FB_DETACH_FB_COOKIE, fb_cookie),
            RequestBody::SetConfig(c) => {
                put_u64(&mut b, SET_CONFIG_FB_COOKIE, c.fb_cookie);
                put_u32(&mut b, SET_CONFIG_X, c.x);
                put_u32(&mut b, SET_CONFIG_Y, c.y);
                put_u32(&mut b, SET_CONFIG_WIDTH, c.width);
                put_u32(&mut b, SET_CONFIG_HEIGHT, c.height);
                put_u32(&mut b, SET_CONFIG_BPP, c.bpp);
            }
            RequestBody::PgFlip { fb_cookie } => put_u64(&mut b, PG_FLIP_FB_COOKIE, fb_cookie),
            RequestBody::GetEdid(g) => {
                put_u32(&mut b, GET_EDID_BUFFER_SZ, g.buffer_sz);
                put_u32(&mut b, GET_EDID_GREF_DIRECTORY, g.gref_directory);
            }
        }
        b
    }

    /// Reads a request; fails on an unknown operation.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        use offsets::*;
        let b = exact::<{ Self::SIZE }>(bytes)?;
        let body = match Operation::decode_raw(b[OPERATION])? {
            Operation::DbufCreate => RequestBody::DbufCreate(DbufCreate {
                dbuf_cookie: get_u64(b, DBUF_CREATE_DBUF_COOKIE),
                width: get_u32(b, DBUF_CREATE_WIDTH),
                height: get_u32(b, DBUF_CREATE_HEIGHT),
                bpp: get_u32(b, DBUF_CREATE_BPP),
                buffer_sz: get_u32(b, DBUF_CREATE_BUFFER_SZ),
                flags: get_u32(b, DBUF_CREATE_FLAGS),
                gref_directory: get_u32(b, DBUF_CREATE_GREF_DIRECTORY),
                data_ofs: get_u32(b, DBUF_CREATE_DATA_OFS),
            }),
            Operation::DbufDestroy => RequestBody::DbufDestroy {
                dbuf_cookie: get_u64(b, DBUF_DESTROY_DBUF_COOKIE),
            },
            Operation::FbAttach => RequestBody::FbAttach(FbAttach {
                dbuf_cookie: get_u64(b, FB_ATTACH_DBUF_COOKIE),
                fb_cookie: get_u64(b, FB_ATTACH_FB_COOKIE),
                width: get_u32(b, FB_ATTACH_WIDTH),
                height: get_u32(b, FB_ATTACH_HEIGHT),
                pixel_format: get_u32(b, FB_ATTACH_PIXEL_FORMAT),
            }),
            Operation::FbDetach => RequestBody::FbDetach {
                fb_cookie: get_u64(b, FB_DETACH_FB_COOKIE),
            },
            Operation::SetConfig => RequestBody::SetConfig(SetConfig {
                fb_cookie: get_u64(b, SET_CONFIG_FB_COOKIE),
                x: get_u32(b, SET_CONFIG_X),
                y: get_u32(b, SET_CONFIG_Y),
                width: get_u32(b, SET_CONFIG_WIDTH),
                height: get_u32(b, SET_CONFIG_HEIGHT),
                bpp: get_u32(b, SET_CONFIG_BPP),
            }),
            Operation::PgFlip => RequestBody::PgFlip {
                fb_cookie: get_u64(b, PG_FLIP_FB_COOKIE),
            },
            Operation::GetEdid => RequestBody::GetEdid(GetEdid {
                buffer_sz: get_u32(b, GET_EDID_BUFFER_SZ),
                gref_directory: get_u32(b, GET_EDID_GREF_DIRECTORY),
            }),
        };
        Ok(Self {
            id: get_u16(b, ID),
            body,
        })
    }
}

/// A backend → frontend response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response {
    /// The request's id.
    pub id: u16,
    /// The request's operation (Linux dispatches on it).
    pub operation: Operation,
    /// 0, or a negative Xen errno.
    pub status: i32,
    /// EDID bytes written; present exactly when `operation` is `GetEdid`.
    pub edid_sz: Option<u32>,
}

impl Response {
    /// Every response is one 64-byte packet.
    pub const SIZE: usize = PACKET_SIZE;

    /// The packet bytes; the EDID size only when `edid_sz` is `Some`.
    pub fn encode(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        put_u16(&mut b, offsets::ID, self.id);
        b[offsets::OPERATION] = self.operation.raw();
        put_i32(&mut b, offsets::STATUS, self.status);
        if let Some(n) = self.edid_sz {
            put_u32(&mut b, offsets::RSP_EDID_SZ, n);
        }
        b
    }

    /// Reads a response; fails on an unknown operation.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let b = exact::<{ Self::SIZE }>(bytes)?;
        let operation = Operation::decode_raw(b[offsets::OPERATION])?;
        Ok(Self {
            id: get_u16(b, offsets::ID),
            operation,
            status: get_i32(b, offsets::STATUS),
            edid_sz: (operation == Operation::GetEdid).then(|| get_u32(b, offsets::RSP_EDID_SZ)),
        })
    }
}

/// What an event reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventBody {
    /// A requested page flip completed: the framebuffer is being shown.
    PgFlip {
        /// The framebuffer now on screen.
        fb_cookie: u64,
    },
}

/// A backend → frontend event from the event page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// Backend's running event counter (Linux drops events out of sequence).
    pub id: u16,
    /// What happened.
    pub body: EventBody,
}

impl Event {
    /// Every event is one 64-byte slot.
    pub const SIZE: usize = PACKET_SIZE;

    /// The event code `body` is sent with.
    pub fn event_type(&self) -> EventType {
        match self.body {
            EventBody::PgFlip { .. } => EventType::PgFlip,
        }
    }

    /// The slot bytes, reserved bytes zeroed.
    pub fn encode(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        put_u16(&mut b, offsets::ID, self.id);
        b[offsets::OPERATION] = self.event_type().raw();
        match self.body {
            EventBody::PgFlip { fb_cookie } => {
                put_u64(&mut b, offsets::EVT_PG_FLIP_FB_COOKIE, fb_cookie)
            }
        }
        b
    }

    /// Reads an event; fails on an unknown event type.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let b = exact::<{ Self::SIZE }>(bytes)?;
        let body = match EventType::decode_raw(b[offsets::OPERATION])? {
            EventType::PgFlip => EventBody::PgFlip {
                fb_cookie: get_u64(b, offsets::EVT_PG_FLIP_FB_COOKIE),
            },
        };
        Ok(Self {
            id: get_u16(b, offsets::ID),
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_header() {
        assert_eq!(Operation::DbufCreate.raw(), 0x10);
        assert_eq!(Operation::SetConfig.raw(), 0x14);
        assert_eq!(Operation::PgFlip.raw(), 0x15);
        assert_eq!(Operation::GetEdid.raw(), 0x16);
        assert_eq!(Operation::from_raw(0x0f), None);
        assert_eq!(EventType::PgFlip.raw(), 0);
        assert_eq!(EDID_MAX_SIZE, 32768);
    }

    #[test]
    fn dbuf_create_bytes() {
        let r = Request {
            id: 0x0102,
            body: RequestBody::DbufCreate(DbufCreate {
                dbuf_cookie: 0x1122_3344_5566_7788,
                width: 1920,
                height: 1080,
                bpp: 32,
                buffer_sz: 1920 * 1080 * 4,
                flags: DBUF_FLG_REQ_ALLOC,
                gref_directory: 0x99,
                data_ofs: 0x40,
            }),
        };
        let b = r.encode();
        assert_eq!(b[..3], [0x02, 0x01, 0x10]);
        assert!(b[3..8].iter().all(|&x| x == 0));
        assert_eq!(b[8..16], 0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(b[16..20], 1920u32.to_le_bytes());
        assert_eq!(b[20..24], 1080u32.to_le_bytes());
        assert_eq!(b[24..28], 32u32.to_le_bytes());
        assert_eq!(b[28..32], (1920u32 * 1080 * 4).to_le_bytes());
        assert_eq!(b[32..36], 1u32.to_le_bytes());
        assert_eq!(b[36..40], 0x99u32.to_le_bytes());
        assert_eq!(b[40..44], 0x40u32.to_le_bytes());
        assert!(b[44..].iter().all(|&x| x == 0));
        assert_eq!(Request::decode(&b), Ok(r));
    }

    #[test]
    fn other_request_bytes() {
        let b = Request {
            id: 1,
            body: RequestBody::SetConfig(SetConfig {
                fb_cookie: 5,
                x: 1,
                y: 2,
                width: 3,
                height: 4,
                bpp: 24,
            }),
        }
        .encode();
        assert_eq!(b[2], 0x14);
        assert_eq!(b[8], 5);
        assert_eq!((b[16], b[20], b[24], b[28], b[32]), (1, 2, 3, 4, 24));

        let b = Request {
            id: 1,
            body: RequestBody::FbAttach(FbAttach {
                dbuf_cookie: 7,
                fb_cookie: 8,
                width: 9,
                height: 10,
                pixel_format: u32::from_le_bytes(*b"XR24"),
            }),
        }
        .encode();
        assert_eq!((b[2], b[8], b[16], b[24], b[28]), (0x12, 7, 8, 9, 10));
        assert_eq!(&b[32..36], b"XR24");

        let b = Request {
            id: 1,
            body: RequestBody::GetEdid(GetEdid {
                buffer_sz: EDID_MAX_SIZE,
                gref_directory: 3,
            }),
        }
        .encode();
        assert_eq!(b[2], 0x16);
        assert_eq!(b[8..16], [0, 0x80, 0, 0, 3, 0, 0, 0]);
    }

    #[test]
    fn round_trips() {
        let bodies = [
            RequestBody::DbufCreate(DbufCreate::default()),
            RequestBody::DbufDestroy { dbuf_cookie: 1 },
            RequestBody::FbAttach(FbAttach::default()),
            RequestBody::FbDetach { fb_cookie: 2 },
            RequestBody::SetConfig(SetConfig::default()),
            RequestBody::PgFlip {
                fb_cookie: u64::MAX,
            },
            RequestBody::GetEdid(GetEdid::default()),
        ];
        for body in bodies {
            let r = Request { id: 9, body };
            assert_eq!(Request::decode(&r.encode()), Ok(r));
        }
        let rsp = Response {
            id: 4,
            operation: Operation::GetEdid,
            status: 0,
            edid_sz: Some(256),
        };
        let b = rsp.encode();
        assert_eq!(b[..12], [4, 0, 0x16, 0, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(Response::decode(&b), Ok(rsp));
        let rsp = Response {
            id: 5,
            operation: Operation::PgFlip,
            status: -5,
            edid_sz: None,
        };
        assert_eq!(Response::decode(&rsp.encode()), Ok(rsp));
        let ev = Event {
            id: 6,
            body: EventBody::PgFlip { fb_cookie: 0xabc },
        };
        let b = ev.encode();
        assert_eq!(b[..3], [6, 0, 0]);
        assert_eq!(b[8..10], [0xbc, 0x0a]);
        assert_eq!(Event::decode(&b), Ok(ev));
    }

    #[test]
    fn resolution() {
        assert_eq!(parse_resolution(b"1920x1080"), Ok((1920, 1080)));
        assert_eq!(parse_resolution(b"800x600\0"), Ok((800, 600)));
        assert!(parse_resolution(b"800").is_err());
        assert!(parse_resolution(b"x600").is_err());
        assert!(parse_resolution(b"800x").is_err());
    }
}
