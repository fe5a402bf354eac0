//! Virtual sound (`io/sndif.h`, protocol version 2, device type `vsnd`).
//!
//! Each stream has a request ring (64-byte requests and responses over the
//! generic [`ring`](super::ring)) and an [event page](super::evtpage) for
//! position updates. Audio data travels in a buffer shared at `OPEN` via a
//! [page directory](super::pgdir); requests only name windows into it.

use super::wire::{
    exact, get_i32, get_u16, get_u32, get_u64, put_i32, put_u16, put_u32, put_u64, wire_enum,
    WireError,
};

/// Protocol version this module implements.
pub const PROTOCOL_VERSION: u32 = 2;
/// xenbus device type.
pub const DRIVER_NAME: &str = "vsnd";
/// Separator of list values (`sample-rates`, `sample-formats`, `versions`).
pub const LIST_SEPARATOR: char = ',';
/// Longest decimal sample rate string, in bytes.
pub const SAMPLE_RATE_MAX_LEN: usize = 11;
/// Longest sample format name, in bytes.
pub const SAMPLE_FORMAT_MAX_LEN: usize = 24;

/// Xenstore node names. Config nodes (channels, rates, formats, buffer
/// size) may appear at card, PCM device or stream level; lower levels
/// narrow what the upper levels allow.
pub mod field {
    /// Backend: versions it speaks, e.g. "1,2".
    pub const VERSIONS: &str = "versions";
    /// Frontend: the version it picked.
    pub const VERSION: &str = "version";
    /// Card: brief human-readable card name.
    pub const SHORT_NAME: &str = "short-name";
    /// Card: descriptive human-readable card name.
    pub const LONG_NAME: &str = "long-name";
    /// PCM device name.
    pub const DEVICE_NAME: &str = "name";
    /// Stream direction: [`super::STREAM_TYPE_PLAYBACK`] or `_CAPTURE`.
    pub const TYPE: &str = "type";
    /// Stream identity the backend routes by (a string since 2018).
    pub const UNIQUE_ID: &str = "unique-id";
    /// Fewest channels a stream may be opened with.
    pub const CHANNELS_MIN: &str = "channels-min";
    /// Most channels a stream may be opened with.
    pub const CHANNELS_MAX: &str = "channels-max";
    /// Allowed sample rates in Hz, comma-separated.
    pub const SAMPLE_RATES: &str = "sample-rates";
    /// Allowed [`PcmFormat`](super::PcmFormat) names, comma-separated.
    pub const SAMPLE_FORMATS: &str = "sample-formats";
    /// Largest buffer, in bytes, a stream may share.
    pub const BUFFER_SIZE: &str = "buffer-size";
    /// Stream: grant of its request ring page (frontend writes it).
    pub const RING_REF: &str = "ring-ref";
    /// Stream: event channel that signals the request ring.
    pub const EVENT_CHANNEL: &str = "event-channel";
    /// Stream: grant of its [event page](super::super::evtpage).
    pub const EVT_RING_REF: &str = "evt-ring-ref";
    /// Stream: event channel that signals the event page.
    pub const EVT_EVENT_CHANNEL: &str = "evt-event-channel";
}

/// `type` value: stream is for playback (frontend → backend).
pub const STREAM_TYPE_PLAYBACK: &str = "p";
/// `type` value: stream is for capture (backend → frontend).
pub const STREAM_TYPE_CAPTURE: &str = "c";

wire_enum! {
    /// Request operation codes.
    pub enum Operation: u8 as "sndif operation" {
        /// Prepares the stream with a format and shares its audio buffer.
        Open = 0,
        /// Closes the stream and releases the buffer shared at `Open`.
        Close = 1,
        /// Capture: asks the backend to fill a window of the buffer.
        Read = 2,
        /// Playback: hands the backend a window of the buffer to play.
        Write = 3,
        /// Sets per-channel volume from the buffer.
        SetVolume = 4,
        /// Asks the backend to write per-channel volume into the buffer.
        GetVolume = 5,
        /// Mutes the channels flagged in the buffer.
        Mute = 6,
        /// Unmutes the channels flagged in the buffer.
        Unmute = 7,
        /// Changes the stream's running state ([`TriggerType`]).
        Trigger = 8,
        /// Narrows the configuration space before `Open` ([`HwParams`]).
        HwParamQuery = 9,
    }
}

wire_enum! {
    /// Running-state changes carried by `TRIGGER`.
    pub enum TriggerType: u8 as "sndif trigger type" {
        /// Starts a prepared stream.
        Start = 0,
        /// Pauses a running stream, keeping its position.
        Pause = 1,
        /// Stops the stream; the position is lost.
        Stop = 2,
        /// Resumes a paused stream.
        Resume = 3,
    }
}

wire_enum! {
    /// Event codes on the event page.
    pub enum EventType: u8 as "sndif event type" {
        /// Playback/capture position moved by a period.
        CurPos = 0,
    }
}

wire_enum! {
    /// Sample formats: numbers in packets, names in xenstore.
    pub enum PcmFormat: u8 as "sndif pcm format" {
        /// Signed 8-bit.
        S8 = 0,
        /// Unsigned 8-bit.
        U8 = 1,
        /// Signed 16-bit, little-endian.
        S16Le = 2,
        /// Signed 16-bit, big-endian.
        S16Be = 3,
        /// Unsigned 16-bit, little-endian.
        U16Le = 4,
        /// Unsigned 16-bit, big-endian.
        U16Be = 5,
        /// Signed 24-bit in a 4-byte little-endian container.
        S24Le = 6,
        /// Signed 24-bit in a 4-byte big-endian container.
        S24Be = 7,
        /// Unsigned 24-bit in a 4-byte little-endian container.
        U24Le = 8,
        /// Unsigned 24-bit in a 4-byte big-endian container.
        U24Be = 9,
        /// Signed 32-bit, little-endian.
        S32Le = 10,
        /// Signed 32-bit, big-endian.
        S32Be = 11,
        /// Unsigned 32-bit, little-endian.
        U32Le = 12,
        /// Unsigned 32-bit, big-endian.
        U32Be = 13,
        /// IEEE 754 single-precision float, little-endian.
        F32Le = 14,
        /// IEEE 754 single-precision float, big-endian.
        F32Be = 15,
        /// IEEE 754 double-precision float, little-endian.
        F64Le = 16,
        /// IEEE 754 double-precision float, big-endian.
        F64Be = 17,
        /// IEC 958 (S/PDIF) subframe in 32 bits, little-endian.
        Iec958SubframeLe = 18,
        /// IEC 958 (S/PDIF) subframe in 32 bits, big-endian.
        Iec958SubframeBe = 19,
        /// G.711 µ-law, 8 bits per sample.
        MuLaw = 20,
        /// G.711 A-law, 8 bits per sample.
        ALaw = 21,
        /// IMA ADPCM, 4 bits per sample.
        ImaAdpcm = 22,
        /// MPEG-compressed audio.
        Mpeg = 23,
        /// GSM-compressed audio.
        Gsm = 24,
    }
}

impl PcmFormat {
    /// The name used in `sample-formats`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::S8 => "s8",
            Self::U8 => "u8",
            Self::S16Le => "s16_le",
            Self::S16Be => "s16_be",
            Self::U16Le => "u16_le",
            Self::U16Be => "u16_be",
            Self::S24Le => "s24_le",
            Self::S24Be => "s24_be",
            Self::U24Le => "u24_le",
            Self::U24Be => "u24_be",
            Self::S32Le => "s32_le",
            Self::S32Be => "s32_be",
            Self::U32Le => "u32_le",
            Self::U32Be => "u32_be",
            Self::F32Le => "float_le",
            Self::F32Be => "float_be",
            Self::F64Le => "float64_le",
            Self::F64Be => "float64_be",
            Self::Iec958SubframeLe => "iec958_subframe_le",
            Self::Iec958SubframeBe => "iec958_subframe_be",
            Self::MuLaw => "mu_law",
            Self::ALaw => "a_law",
            Self::ImaAdpcm => "ima_adpcm",
            Self::Mpeg => "mpeg",
            Self::Gsm => "gsm",
        }
    }

    /// Parses one `sample-formats` item.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|f| f.name() == name)
    }

    /// This format's bit in [`HwParams::formats`].
    pub const fn mask_bit(self) -> u64 {
        1 << self as u8
    }
}

/// Byte offsets within the 64-byte packets.
pub mod offsets {
    /// All packets: request id (echoed back) or event id.
    pub const ID: usize = 0;
    /// Requests and responses: [`super::Operation`]; events: [`super::EventType`].
    pub const OPERATION: usize = 2;
    /// Responses: status, 0 or a negative Xen errno.
    pub const STATUS: usize = 4;
    /// Start of the per-operation payload.
    pub const PAYLOAD: usize = 8;

    /// OPEN: frames per second, `u32`.
    pub const OPEN_PCM_RATE: usize = 8;
    /// OPEN: [`PcmFormat`](super::PcmFormat), `u8`.
    pub const OPEN_PCM_FORMAT: usize = 12;
    /// OPEN: channel count, `u8`.
    pub const OPEN_PCM_CHANNELS: usize = 13;
    /// OPEN: shared buffer size in bytes, `u32`.
    pub const OPEN_BUFFER_SZ: usize = 16;
    /// OPEN: grant of the first page-directory page, `u32`.
    pub const OPEN_GREF_DIRECTORY: usize = 20;
    /// OPEN: bytes between CUR_POS events, `u32`.
    pub const OPEN_PERIOD_SZ: usize = 24;

    /// READ/WRITE/volume/mute: window into the shared buffer.
    pub const RW_OFFSET: usize = 8;
    /// Length of the window in bytes, `u32` (the offset is at [`RW_OFFSET`]).
    pub const RW_LENGTH: usize = 12;

    /// TRIGGER: [`TriggerType`](super::TriggerType), `u8`.
    pub const TRIGGER_TYPE: usize = 8;

    /// HW_PARAM_QUERY, request and response alike.
    pub const HW_FORMATS: usize = 8;
    /// Rate interval in Hz: min then max, `u32` each.
    pub const HW_RATES: usize = 16;
    /// Channel-count interval: min then max.
    pub const HW_CHANNELS: usize = 24;
    /// Buffer-size interval in frames: min then max.
    pub const HW_BUFFER: usize = 32;
    /// Period-size interval in frames: min then max.
    pub const HW_PERIOD: usize = 40;
    /// End of the hw_param block.
    pub const HW_END: usize = 48;

    /// CUR_POS event: position in bytes.
    pub const CUR_POS_POSITION: usize = 8;
}

/// Size of requests, responses and events alike.
pub const PACKET_SIZE: usize = 64;

const _: () = assert!(offsets::OPEN_PERIOD_SZ + 4 <= PACKET_SIZE);
const _: () = assert!(offsets::OPEN_PCM_CHANNELS + 1 + 2 == offsets::OPEN_BUFFER_SZ);
const _: () = assert!(offsets::HW_PERIOD + 8 == offsets::HW_END);
const _: () = assert!(offsets::HW_END <= PACKET_SIZE);
const _: () = assert!(offsets::CUR_POS_POSITION + 8 <= PACKET_SIZE);
const _: () = assert!(offsets::PAYLOAD + 56 == PACKET_SIZE);

type Packet = [u8; PACKET_SIZE];

/// Parameters of `OPEN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenParams {
    /// Frames per second.
    pub pcm_rate: u32,
    /// Sample format of the data in the buffer.
    pub pcm_format: PcmFormat,
    /// Interleaved channels per frame.
    pub pcm_channels: u8,
    /// Size of the shared buffer in bytes.
    pub buffer_sz: u32,
    /// Grant of the first page-directory page.
    pub gref_directory: u32,
    /// Bytes between CUR_POS events; 0 asks for none.
    pub period_sz: u32,
}

/// A window into the buffer shared at `OPEN`: samples for READ/WRITE, one
/// `i32` per channel for volume (in 0.001 dB), per-channel flags for mute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BufferWindow {
    /// Start of the window, in bytes from the start of the buffer.
    pub offset: u32,
    /// Bytes in the window.
    pub length: u32,
}

/// An inclusive interval of a stream parameter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Interval {
    /// Smallest allowed value.
    pub min: u32,
    /// Largest allowed value.
    pub max: u32,
}

/// The configuration space exchanged by `HW_PARAM_QUERY`: the frontend
/// sends what it would accept, the backend answers with what it supports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HwParams {
    /// OR of [`PcmFormat::mask_bit`] values.
    pub formats: u64,
    /// Sample rates, in Hz.
    pub rates: Interval,
    /// Channel counts.
    pub channels: Interval,
    /// In frames (channels × bytes per sample).
    pub buffer: Interval,
    /// Period sizes, in frames.
    pub period: Interval,
}

impl HwParams {
    fn write(&self, b: &mut Packet) {
        put_u64(b, offsets::HW_FORMATS, self.formats);
        for (off, iv) in [
            (offsets::HW_RATES, self.rates),
            (offsets::HW_CHANNELS, self.channels),
            (offsets::HW_BUFFER, self.buffer),
            (offsets::HW_PERIOD, self.period),
        ] {
            put_u32(b, off, iv.min);
            put_u32(b, off + 4, iv.max);
        }
    }

    fn read(b: &Packet) -> Self {
        let iv = |off| Interval {
            min: get_u32(b, off),
            max: get_u32(b, off + 4),
        };
        Self {
            formats: get_u64(b, offsets::HW_FORMATS),
            rates: iv(offsets::HW_RATES),
            channels: iv(offsets::HW_CHANNELS),
            buffer: iv(offsets::HW_BUFFER),
            period: iv(offsets::HW_PERIOD),
        }
    }
}

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestBody {
    /// Prepare the stream and share its buffer.
    Open(OpenParams),
    /// Release the stream and its buffer.
    Close,
    /// Capture into this window of the buffer.
    Read(BufferWindow),
    /// Play the samples in this window of the buffer.
    Write(BufferWindow),
    /// Set volume from the `i32` per channel in this window.
    SetVolume(BufferWindow),
    /// Report volume as one `i32` per channel into this window.
    GetVolume(BufferWindow),
    /// Mute the channels whose flag byte in this window is non-zero.
    Mute(BufferWindow),
    /// Unmute the channels whose flag byte in this window is non-zero.
    Unmute(BufferWindow),
    /// Change the running state.
    Trigger(TriggerType),
    /// Ask which configurations within these bounds the backend supports.
    HwParamQuery(HwParams),
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
            RequestBody::Open(_) => Operation::Open,
            RequestBody::Close => Operation::Close,
            RequestBody::Read(_) => Operation::Read,
            RequestBody::Write(_) => Operation::Write,
            RequestBody::SetVolume(_) => Operation::SetVolume,
            RequestBody::GetVolume(_) => Operation::GetVolume,
            RequestBody::Mute(_) => Operation::Mute,
            RequestBody::Unmute(_) => Operation::Unmute,
            RequestBody::Trigger(_) => Operation::Trigger,
            RequestBody::HwParamQuery(_) => Operation::HwParamQuery,
        }
    }

    /// The packet bytes, reserved bytes zeroed.
    pub fn encode(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        put_u16(&mut b, offsets::ID, self.id);
        b[offsets::OPERATION] = self.operation().raw();
        match self.body {
            RequestBody::Open(p) => {
                put_u32(&mut b, offsets::OPEN_PCM_RATE, p.pcm_rate);
                b[offsets::OPEN_PCM_FORMAT] = p.pcm_format.raw();
                b[offsets::OPEN_PCM_CHANNELS] = p.pcm_channels;
                put_u32(&mut b, offsets::OPEN_BUFFER_SZ, p.buffer_sz);
                put_u32(&mut b, offsets::OPEN_GREF_DIRECTORY, p.gref_directory);
                put_u32(&mut b, offsets::OPEN_PERIOD_SZ, p.period_sz);
            }
            RequestBody::Close => {}
            RequestBody::Read(w)
            | RequestBody::Write(w)
            | RequestBody::SetVolume(w)
            | RequestBody::GetVolume(w)
            | RequestBody::Mute(w)
            | RequestBody::Unmute(w) => {
                put_u32(&mut b, offsets::RW_OFFSET, w.offset);
                put_u32(&mut b, offsets::RW_LENGTH, w.length);
            }
            RequestBody::Trigger(t) => b[offsets::TRIGGER_TYPE] = t.raw(),
            RequestBody::HwParamQuery(h) => h.write(&mut b),
        }
        b
    }

    /// Reads a request; fails on an unknown operation, trigger type or format.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let b = exact::<{ Self::SIZE }>(bytes)?;
        let window = || BufferWindow {
            offset: get_u32(b, offsets::RW_OFFSET),
            length: get_u32(b, offsets::RW_LENGTH),
        };
        let body = match Operation::decode_raw(b[offsets::OPERATION])? {
            Operation::Open => RequestBody::Open(OpenParams {
                pcm_rate: get_u32(b, offsets::OPEN_PCM_RATE),
                pcm_format: PcmFormat::decode_raw(b[offsets::OPEN_PCM_FORMAT])?,
                pcm_channels: b[offsets::OPEN_PCM_CHANNELS],
                buffer_sz: get_u32(b, offsets::OPEN_BUFFER_SZ),
                gref_directory: get_u32(b, offsets::OPEN_GREF_DIRECTORY),
                period_sz: get_u32(b, offsets::OPEN_PERIOD_SZ),
            }),
            Operation::Close => RequestBody::Close,
            Operation::Read => RequestBody::Read(window()),
            Operation::Write => RequestBody::Write(window()),
            Operation::SetVolume => RequestBody::SetVolume(window()),
            Operation::GetVolume => RequestBody::GetVolume(window()),
            Operation::Mute => RequestBody::Mute(window()),
            Operation::Unmute => RequestBody::Unmute(window()),
            Operation::Trigger => {
                RequestBody::Trigger(TriggerType::decode_raw(b[offsets::TRIGGER_TYPE])?)
            }
            Operation::HwParamQuery => RequestBody::HwParamQuery(HwParams::read(b)),
        };
        Ok(Self {
            id: get_u16(b, offsets::ID),
            body,
        })
    }
}

/// A backend → frontend response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response {
    /// The request's id.
    pub id: u16,
    /// The request's operation.
    pub operation: Operation,
    /// 0, or a negative Xen errno.
    pub status: i32,
    /// Present exactly when `operation` is `HwParamQuery`.
    pub hw_param: Option<HwParams>,
}

impl Response {
    /// Every response is one 64-byte packet.
    pub const SIZE: usize = PACKET_SIZE;

    /// The packet bytes; the hw_param block only when `hw_param` is `Some`.
    pub fn encode(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        put_u16(&mut b, offsets::ID, self.id);
        b[offsets::OPERATION] = self.operation.raw();
        put_i32(&mut b, offsets::STATUS, self.status);
        if let Some(h) = self.hw_param {
            h.write(&mut b);
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
            hw_param: (operation == Operation::HwParamQuery).then(|| HwParams::read(b)),
        })
    }
}

/// What an event reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventBody {
    /// Bytes played or captured since `OPEN`.
    CurPos {
        /// Total bytes since `OPEN`; it grows past the buffer size, never wraps to it.
        position: u64,
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
            EventBody::CurPos { .. } => EventType::CurPos,
        }
    }

    /// The slot bytes, reserved bytes zeroed.
    pub fn encode(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        put_u16(&mut b, offsets::ID, self.id);
        b[offsets::OPERATION] = self.event_type().raw();
        match self.body {
            EventBody::CurPos { position } => put_u64(&mut b, offsets::CUR_POS_POSITION, position),
        }
        b
    }

    /// Reads an event; fails on an unknown event type.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let b = exact::<{ Self::SIZE }>(bytes)?;
        let body = match EventType::decode_raw(b[offsets::OPERATION])? {
            EventType::CurPos => EventBody::CurPos {
                position: get_u64(b, offsets::CUR_POS_POSITION),
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
    extern crate std;

    use super::*;

    fn windows() -> [RequestBody; 6] {
        let w = BufferWindow {
            offset: 0x100,
            length: 0x2000,
        };
        [
            RequestBody::Read(w),
            RequestBody::Write(w),
            RequestBody::SetVolume(w),
            RequestBody::GetVolume(w),
            RequestBody::Mute(w),
            RequestBody::Unmute(w),
        ]
    }

    fn hw() -> HwParams {
        HwParams {
            formats: PcmFormat::S16Le.mask_bit() | PcmFormat::Gsm.mask_bit(),
            rates: Interval {
                min: 8000,
                max: 48000,
            },
            channels: Interval { min: 1, max: 2 },
            buffer: Interval {
                min: 64,
                max: 16384,
            },
            period: Interval { min: 16, max: 8192 },
        }
    }

    #[test]
    fn numbers_match_header() {
        assert_eq!(Operation::Open.raw(), 0);
        assert_eq!(Operation::Write.raw(), 3);
        assert_eq!(Operation::Unmute.raw(), 7);
        assert_eq!(Operation::HwParamQuery.raw(), 9);
        assert_eq!(TriggerType::Resume.raw(), 3);
        assert_eq!(EventType::CurPos.raw(), 0);
        assert_eq!(PcmFormat::S16Le.raw(), 2);
        assert_eq!(PcmFormat::F32Le.raw(), 14);
        assert_eq!(PcmFormat::Gsm.raw(), 24);
        assert_eq!(PcmFormat::ALL.len(), 25);
        assert_eq!(PcmFormat::F64Be.name(), "float64_be");
        assert_eq!(
            PcmFormat::from_name("iec958_subframe_le"),
            Some(PcmFormat::Iec958SubframeLe)
        );
        assert_eq!(PcmFormat::from_name("s16"), None);
        for &f in PcmFormat::ALL {
            assert!(f.name().len() <= SAMPLE_FORMAT_MAX_LEN);
            assert_eq!(PcmFormat::from_name(f.name()), Some(f));
        }
    }

    #[test]
    fn open_request_bytes() {
        let req = Request {
            id: 0x1234,
            body: RequestBody::Open(OpenParams {
                pcm_rate: 48000,
                pcm_format: PcmFormat::S16Le,
                pcm_channels: 2,
                buffer_sz: 65536,
                gref_directory: 0x55,
                period_sz: 4096,
            }),
        };
        let b = req.encode();
        let mut want = [0u8; 64];
        want[0..2].copy_from_slice(&[0x34, 0x12]);
        want[2] = 0; // OPEN
        want[8..12].copy_from_slice(&48000u32.to_le_bytes());
        want[12] = 2; // S16_LE
        want[13] = 2; // channels
        want[16..20].copy_from_slice(&65536u32.to_le_bytes());
        want[20..24].copy_from_slice(&0x55u32.to_le_bytes());
        want[24..28].copy_from_slice(&4096u32.to_le_bytes());
        assert_eq!(b, want);
        assert_eq!(Request::decode(&b), Ok(req));
    }

    #[test]
    fn other_request_bytes() {
        let b = Request {
            id: 1,
            body: RequestBody::Write(BufferWindow {
                offset: 0x10,
                length: 0x20,
            }),
        }
        .encode();
        assert_eq!(b[2], 3);
        assert_eq!(b[8..16], [0x10, 0, 0, 0, 0x20, 0, 0, 0]);

        let b = Request {
            id: 2,
            body: RequestBody::Trigger(TriggerType::Pause),
        }
        .encode();
        assert_eq!((b[2], b[8]), (8, 1));

        let b = Request {
            id: 3,
            body: RequestBody::HwParamQuery(hw()),
        }
        .encode();
        assert_eq!(b[2], 9);
        assert_eq!(b[8..16], ((1u64 << 2) | (1 << 24)).to_le_bytes());
        assert_eq!(b[16..20], 8000u32.to_le_bytes());
        assert_eq!(b[20..24], 48000u32.to_le_bytes());
        assert_eq!(b[44..48], 8192u32.to_le_bytes());
        assert!(b[48..].iter().all(|&x| x == 0));
    }

    #[test]
    fn request_round_trips() {
        let mut bodies = std::vec::Vec::from(windows());
        bodies.extend([
            RequestBody::Close,
            RequestBody::Trigger(TriggerType::Stop),
            RequestBody::HwParamQuery(hw()),
        ]);
        for body in bodies {
            let r = Request { id: 0xbeef, body };
            assert_eq!(Request::decode(&r.encode()), Ok(r));
        }
    }

    #[test]
    fn response_bytes_and_round_trip() {
        let r = Response {
            id: 7,
            operation: Operation::Open,
            status: -22,
            hw_param: None,
        };
        let b = r.encode();
        assert_eq!(b[..8], [7, 0, 0, 0, 0xea, 0xff, 0xff, 0xff]);
        assert_eq!(Response::decode(&b), Ok(r));
        let r = Response {
            id: 8,
            operation: Operation::HwParamQuery,
            status: 0,
            hw_param: Some(hw()),
        };
        let b = r.encode();
        assert_eq!(b[24..28], 1u32.to_le_bytes());
        assert_eq!(Response::decode(&b), Ok(r));
    }

    #[test]
    fn event_bytes_and_round_trip() {
        let e = Event {
            id: 3,
            body: EventBody::CurPos {
                position: 0x0102_0304_0506_0708,
            },
        };
        let b = e.encode();
        assert_eq!(b[..3], [3, 0, 0]);
        assert_eq!(b[8..16], [8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(Event::decode(&b), Ok(e));
    }

    #[test]
    fn decoders_validate() {
        let mut b = [0u8; 64];
        b[2] = 10;
        assert!(matches!(
            Request::decode(&b),
            Err(WireError::UnknownValue { value: 10, .. })
        ));
        assert!(Response::decode(&b).is_err());
        b[2] = 0;
        b[12] = 25; // no such format
        assert!(Request::decode(&b).is_err());
        b[2] = 8;
        b[8] = 4; // no such trigger
        assert!(Request::decode(&b).is_err());
        b[2] = 1;
        assert!(Event::decode(&b).is_err());
        assert!(Request::decode(&b[..63]).is_err());
    }
}
