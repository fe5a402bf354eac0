//! The vsnd frontend (`io/sndif.h`, protocol version 2) for no_std guests.
//!
//! [`VsndFront::connect`] reads the card/PCM/stream tree the toolstack
//! wrote under the frontend directory ([`config`]), gives every stream a
//! request ring and an event page, and walks the xenbus handshake to
//! Connected. Each stream then offers the protocol's operations as
//! blocking calls: [`open`](VsndFront::open) (shares the audio buffer
//! through a page directory), [`write`](VsndFront::write),
//! [`read`](VsndFront::read), [`trigger`](VsndFront::trigger),
//! [`set_volume`](VsndFront::set_volume), [`mute`](VsndFront::mute),
//! [`hw_param_query`](VsndFront::hw_param_query) and
//! [`close`](VsndFront::close). CUR_POS events update
//! [`position`](VsndFront::position); like Linux, events out of sequence
//! are dropped.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod config;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use pv_transport::channel::FrontChannel;
use pv_transport::pgdir::{share_buffer, SharedBuffer};
use pv_transport::xenbus::{self, XenbusState};
use pv_transport::{domain_path, DomId, Endpoint, Port, Shm};
use xen_abi::io::evtpage::EventReader;
use xen_abi::io::sndif::{
    field, BufferWindow, Event, EventBody, OpenParams, Request, RequestBody, Response, PACKET_SIZE,
};
pub use xen_abi::io::sndif::{HwParams, Interval, PcmFormat, TriggerType};

pub use config::{StreamConfig, StreamInfo};

/// Why a call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// Xenstore, grant, event-channel or timeout failure underneath.
    Transport(pv_transport::Error),
    /// The backend answered with this negative errno.
    Status(i32),
    /// No such stream, or it is not open.
    BadStream,
    /// The data does not fit the buffer shared at open.
    TooLong,
    /// The backend broke the protocol (garbled response).
    Protocol(&'static str),
}

impl From<pv_transport::Error> for Error {
    fn from(e: pv_transport::Error) -> Self {
        Self::Transport(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transport(e) => write!(f, "{e}"),
            Self::Status(s) => write!(f, "backend returned status {s}"),
            Self::BadStream => f.write_str("no such open stream"),
            Self::TooLong => f.write_str("data larger than the shared buffer"),
            Self::Protocol(w) => write!(f, "protocol error: {w}"),
        }
    }
}

/// Result of every vsnd call.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Parameters of [`VsndFront::open`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PcmParams {
    /// Sample rate in Hz; one of the stream's `sample-rates`.
    pub rate: u32,
    /// Sample format; one of the stream's `sample-formats`.
    pub format: PcmFormat,
    /// Interleaved channels, within the stream's `channels-min..=channels-max`.
    pub channels: u8,
    /// Bytes of the buffer shared with the backend.
    pub buffer_size: u32,
    /// Bytes between CUR_POS events (0: none).
    pub period_size: u32,
}

struct Stream {
    info: StreamInfo,
    ch: FrontChannel<PACKET_SIZE>,
    evt: EventReader<Shm>,
    evt_port: Port,
    buffer: Option<SharedBuffer>,
    position: u64,
    next_event: u16,
}

/// A connected vsnd card.
pub struct VsndFront {
    ep: Endpoint,
    fe_dir: String,
    be_dir: String,
    streams: Vec<Stream>,
    /// Milliseconds to wait for a response (Linux uses 3000).
    pub timeout_ms: u32,
}

impl VsndFront {
    /// Connects card `dev_id` of our domain.
    pub fn connect(ep: Endpoint, dev_id: u32, timeout_ms: u32) -> Result<Self> {
        let fe_dir = format!("{}/device/vsnd/{dev_id}", domain_path(ep.domid));
        let xs = &*ep.store;
        let be_dir = xenbus::read_string(xs, &xenbus::join(&fe_dir, "backend"))?;
        let be_dom = xenbus::read_u32(xs, &xenbus::join(&fe_dir, "backend-id"))?;
        let be_dom = DomId::try_from(be_dom).map_err(|_| Error::Protocol("backend-id"))?;
        let infos = config::read_streams(xs, &fe_dir)?;
        xenbus::start_frontend(xs, &fe_dir, &be_dir, "vsnd-be", timeout_ms)?;
        let mut streams = Vec::new();
        let mut nodes: Vec<(String, String)> = Vec::new();
        for info in infos {
            let ch = FrontChannel::new(&*ep.grants, &*ep.events, be_dom)?;
            let evt_page = ep.grants.share(be_dom, 1, false)?;
            let evt_port = ep.events.alloc_unbound(be_dom)?;
            let dir = &info.dir;
            nodes.push((xenbus::join(dir, field::RING_REF), format!("{}", ch.gref())));
            nodes.push((
                xenbus::join(dir, field::EVENT_CHANNEL),
                format!("{}", ch.port()),
            ));
            nodes.push((
                xenbus::join(dir, field::EVT_RING_REF),
                format!("{}", evt_page.grefs()[0]),
            ));
            nodes.push((
                xenbus::join(dir, field::EVT_EVENT_CHANNEL),
                format!("{evt_port}"),
            ));
            streams.push(Stream {
                info,
                ch,
                evt: EventReader::new(evt_page),
                evt_port,
                buffer: None,
                position: 0,
                next_event: 0,
            });
        }
        let s = xenbus::connect_frontend(xs, &fe_dir, &be_dir, "vsnd-be", &nodes, timeout_ms)?;
        if s != XenbusState::Connected {
            return Err(Error::Transport(pv_transport::Error::Closed));
        }
        Ok(Self {
            ep,
            fe_dir,
            be_dir,
            streams,
            timeout_ms,
        })
    }

    /// The streams, in (pcm, stream) order; calls take an index into this.
    pub fn streams(&self) -> impl Iterator<Item = &StreamInfo> {
        self.streams.iter().map(|s| &s.info)
    }

    /// Index of the stream with this `unique-id`.
    pub fn find(&self, unique_id: &str) -> Option<usize> {
        self.streams
            .iter()
            .position(|s| s.info.unique_id == unique_id)
    }

    /// The backend's state.
    pub fn backend_state(&self) -> XenbusState {
        xenbus::read_state(&*self.ep.store, &self.be_dir)
    }

    fn stream(&mut self, s: usize) -> Result<&mut Stream> {
        self.streams.get_mut(s).ok_or(Error::BadStream)
    }

    /// Sends one request and waits for its response, handling CUR_POS
    /// events that arrive meanwhile.
    fn call(&mut self, s: usize, body: RequestBody) -> Result<Response> {
        let events = &*self.ep.events;
        let st = self.streams.get_mut(s).ok_or(Error::BadStream)?;
        let id = st.ch.next_id();
        st.ch.send(events, &Request { id, body }.encode())?;
        self.finish_call(s, id, 0)
    }

    fn finish_call(&mut self, s: usize, id: u16, mut waited: u32) -> Result<Response> {
        let events = &*self.ep.events;
        loop {
            let st = self.streams.get_mut(s).ok_or(Error::BadStream)?;
            while let Some(bytes) = st.ch.take_response()? {
                let rsp = Response::decode(&bytes).map_err(|_| Error::Protocol("bad response"))?;
                if rsp.id == id {
                    return Ok(rsp);
                }
            }
            // Ask for an event on the next response, then look once more.
            if st.ch.arm()? {
                continue;
            }
            if waited >= self.timeout_ms {
                return Err(Error::Transport(pv_transport::Error::Timeout));
            }
            if events.wait_and_unmask(10)? {
                Self::drain_events(&mut self.streams);
            } else {
                waited += 10;
                return_if_closed(&*self.ep.store, &self.be_dir)?;
            }
        }
    }

    fn drain_events(streams: &mut [Stream]) {
        for st in streams {
            while let Ok(Some(bytes)) = st.evt.take() {
                let Ok(ev) = Event::decode(&bytes) else {
                    continue;
                };
                // Out-of-sequence events are dropped; the counter advances.
                let expected = st.next_event;
                st.next_event = st.next_event.wrapping_add(1);
                if ev.id != expected {
                    st.next_event = ev.id.wrapping_add(1);
                    continue;
                }
                match ev.body {
                    EventBody::CurPos { position } => st.position = position,
                }
            }
        }
    }

    fn checked(&mut self, s: usize, body: RequestBody) -> Result<Response> {
        let rsp = self.call(s, body)?;
        if rsp.status != 0 {
            return Err(Error::Status(rsp.status));
        }
        Ok(rsp)
    }

    /// OPEN: shares a buffer of `p.buffer_size` bytes and configures the stream.
    pub fn open(&mut self, s: usize, p: PcmParams) -> Result<()> {
        let be_dom = self.backend_domain()?;
        let buffer = share_buffer(&*self.ep.grants, be_dom, p.buffer_size)?;
        let params = OpenParams {
            pcm_rate: p.rate,
            pcm_format: p.format,
            pcm_channels: p.channels,
            buffer_sz: p.buffer_size,
            gref_directory: buffer.gref_directory(),
            period_sz: p.period_size,
        };
        let st = self.stream(s)?;
        st.buffer = Some(buffer);
        st.position = 0;
        match self.checked(s, RequestBody::Open(params)) {
            Ok(_) => Ok(()),
            Err(e) => {
                self.streams[s].buffer = None;
                Err(e)
            }
        }
    }

    fn backend_domain(&self) -> Result<DomId> {
        let v = xenbus::read_u32(&*self.ep.store, &xenbus::join(&self.fe_dir, "backend-id"))?;
        DomId::try_from(v).map_err(|_| Error::Protocol("backend-id"))
    }

    /// CLOSE: the backend stops the stream; the buffer is released.
    pub fn close(&mut self, s: usize) -> Result<()> {
        let r = self.checked(s, RequestBody::Close).map(drop);
        self.stream(s)?.buffer = None;
        r
    }

    fn buffer(&mut self, s: usize) -> Result<&SharedBuffer> {
        self.stream(s)?.buffer.as_ref().ok_or(Error::BadStream)
    }

    /// Copies `data` into the shared buffer at `offset` and returns the window.
    fn put(&mut self, s: usize, offset: u32, data: &[u8]) -> Result<BufferWindow> {
        let buf = self.buffer(s)?;
        let len = u32::try_from(data.len()).map_err(|_| Error::TooLong)?;
        if !buf.data.write_at(offset.into(), data) || offset.saturating_add(len) > buf.size {
            return Err(Error::TooLong);
        }
        Ok(BufferWindow {
            offset,
            length: len,
        })
    }

    /// WRITE: plays `data`, in chunks of at most the shared buffer's size.
    pub fn write(&mut self, s: usize, data: &[u8]) -> Result<()> {
        let size = self.buffer(s)?.size as usize;
        for chunk in data.chunks(size.max(1)) {
            let w = self.put(s, 0, chunk)?;
            self.checked(s, RequestBody::Write(w))?;
        }
        Ok(())
    }

    /// READ: captures `len` bytes.
    pub fn read(&mut self, s: usize, len: usize) -> Result<Vec<u8>> {
        let size = self.buffer(s)?.size as usize;
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let n = (len - out.len()).min(size.max(1));
            let w = BufferWindow {
                offset: 0,
                length: n as u32,
            };
            self.checked(s, RequestBody::Read(w))?;
            let buf = self.buffer(s)?;
            let got = buf.data.read_vec(0, n as u64).ok_or(Error::TooLong)?;
            out.extend_from_slice(&got);
        }
        Ok(out)
    }

    /// TRIGGER: starts, pauses, resumes or stops stream `s`.
    pub fn trigger(&mut self, s: usize, t: TriggerType) -> Result<()> {
        self.checked(s, RequestBody::Trigger(t)).map(drop)
    }

    /// SET_VOLUME: one value per channel, in 0.001 dB (0 is unity).
    pub fn set_volume(&mut self, s: usize, mdb: &[i32]) -> Result<()> {
        let bytes: Vec<u8> = mdb.iter().flat_map(|v| v.to_le_bytes()).collect();
        let w = self.put(s, 0, &bytes)?;
        self.checked(s, RequestBody::SetVolume(w)).map(drop)
    }

    /// GET_VOLUME for `channels` channels.
    pub fn get_volume(&mut self, s: usize, channels: usize) -> Result<Vec<i32>> {
        let w = BufferWindow {
            offset: 0,
            length: (channels * 4) as u32,
        };
        self.checked(s, RequestBody::GetVolume(w))?;
        let got = self
            .buffer(s)?
            .data
            .read_vec(0, w.length.into())
            .ok_or(Error::TooLong)?;
        Ok(got
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// MUTE (`true` channels go silent) or UNMUTE them; one byte per channel.
    pub fn mute(&mut self, s: usize, channels: &[bool], mute: bool) -> Result<()> {
        let bytes: Vec<u8> = channels.iter().map(|&c| u8::from(c)).collect();
        let w = self.put(s, 0, &bytes)?;
        let body = if mute {
            RequestBody::Mute(w)
        } else {
            RequestBody::Unmute(w)
        };
        self.checked(s, body).map(drop)
    }

    /// HW_PARAM_QUERY: what the backend supports within `want`.
    pub fn hw_param_query(&mut self, s: usize, want: HwParams) -> Result<HwParams> {
        let rsp = self.checked(s, RequestBody::HwParamQuery(want))?;
        rsp.hw_param.ok_or(Error::Protocol("hw_param missing"))
    }

    /// Bytes played or captured, as of the last CUR_POS event.
    pub fn position(&mut self, s: usize) -> Result<u64> {
        Self::drain_events(&mut self.streams);
        Ok(self.stream(s)?.position)
    }

    /// Waits up to `timeout_ms` for a CUR_POS event at or past `at` bytes.
    pub fn wait_position(&mut self, s: usize, at: u64, timeout_ms: u32) -> Result<u64> {
        let mut waited = 0;
        loop {
            let pos = self.position(s)?;
            if pos >= at || waited >= timeout_ms {
                return Ok(pos);
            }
            if !self.ep.events.wait_and_unmask(10)? {
                waited += 10;
            }
        }
    }

    /// Closes the card: Closing, then Closed once the backend let go.
    pub fn disconnect(self, timeout_ms: u32) -> Result<Endpoint> {
        let xs = &*self.ep.store;
        xenbus::disconnect_frontend(xs, &self.fe_dir, &self.be_dir, "vsnd-be", timeout_ms)?;
        for st in &self.streams {
            st.ch.unbind(&*self.ep.events);
            let _ = self.ep.events.unbind(st.evt_port);
        }
        Ok(self.ep)
    }
}

fn return_if_closed(xs: &dyn pv_transport::Xenstore, be_dir: &str) -> Result<()> {
    match xenbus::read_state(xs, be_dir) {
        XenbusState::Connected => Ok(()),
        _ => Err(Error::Transport(pv_transport::Error::Closed)),
    }
}
