//! The vdispl frontend (`io/displif.h`, protocol version 2) for no_std
//! guests.
//!
//! [`VdisplFront::connect`] reads the connectors the toolstack described
//! (`<n>/resolution`, `<n>/unique-id`; the scan stops at the first missing
//! or malformed connector, as Linux does), gives each a request ring and
//! an event page, and walks the xenbus handshake. Then:
//!
//! * [`create_dbuf`](VdisplFront::create_dbuf) shares a display buffer
//!   through a page directory (DBUF_CREATE on connector 0's ring) and
//!   [`dbuf`](VdisplFront::dbuf) gives access to its pixels;
//! * [`attach_fb`](VdisplFront::attach_fb) makes a framebuffer of it;
//! * [`set_config`](VdisplFront::set_config) shows one on a connector
//!   (all zeros disables it);
//! * [`page_flip`](VdisplFront::page_flip) queues a flip, and
//!   [`wait_flip_done`](VdisplFront::wait_flip_done) waits for the
//!   backend's PG_FLIP event, which it sends once the frame is shown.
//!
//! Cookies are chosen here, from a counter that starts at 1 (0 is never a
//! valid cookie).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use pv_transport::channel::FrontChannel;
use pv_transport::pgdir::{share_buffer, SharedBuffer};
use pv_transport::xenbus::{self, XenbusState};
use pv_transport::{domain_path, DomId, Endpoint, Port, Shm};
pub use xen_abi::io::displif::SetConfig;
use xen_abi::io::displif::{
    field, parse_resolution, DbufCreate, Event, EventBody, FbAttach, Request, RequestBody,
    Response, PACKET_SIZE,
};
use xen_abi::io::evtpage::EventReader;

/// Why a call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// Xenstore, grant, event-channel or timeout failure underneath.
    Transport(pv_transport::Error),
    /// The backend answered with this negative errno.
    Status(i32),
    /// No such connector, buffer or framebuffer here.
    Unknown,
    /// The backend broke the protocol.
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
            Self::Unknown => f.write_str("unknown connector, buffer or framebuffer"),
            Self::Protocol(w) => write!(f, "protocol error: {w}"),
        }
    }
}

/// Result of every vdispl call.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// A connector as configured in xenstore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectorInfo {
    /// Connector number: its directory under the frontend's, and the `conn` argument of calls.
    pub index: u32,
    /// Visible width from `resolution`, in pixels.
    pub width: u32,
    /// Visible height from `resolution`, in pixels.
    pub height: u32,
    /// The connector's `unique-id`, or empty if unset.
    pub unique_id: String,
}

struct Connector {
    info: ConnectorInfo,
    ch: FrontChannel<PACKET_SIZE>,
    evt: EventReader<Shm>,
    evt_port: Port,
    next_event: u16,
    /// Framebuffer cookies whose PG_FLIP event arrived and is not yet taken.
    flipped: Vec<u64>,
}

/// A display buffer shared with the backend.
pub struct Dbuf {
    /// The name the backend knows this buffer by.
    pub cookie: u64,
    /// Pixels per line.
    pub width: u32,
    /// Lines.
    pub height: u32,
    /// Bits per pixel.
    pub bpp: u32,
    /// Bytes per line (no padding, as Linux's dumb buffers).
    pub pitch: u32,
    buffer: SharedBuffer,
}

impl Dbuf {
    /// The pixels, `pitch × height` bytes.
    pub fn memory(&self) -> &Shm {
        &self.buffer.data
    }
}

/// A connected vdispl device.
pub struct VdisplFront {
    ep: Endpoint,
    fe_dir: String,
    be_dir: String,
    be_dom: DomId,
    connectors: Vec<Connector>,
    dbufs: Vec<Dbuf>,
    next_cookie: u64,
    /// Milliseconds to wait for a response (Linux uses 3000).
    pub timeout_ms: u32,
}

/// Reads connectors 0, 1, ... until one is missing or malformed.
pub fn read_connectors(xs: &dyn pv_transport::Xenstore, fe_dir: &str) -> Vec<ConnectorInfo> {
    let mut out = Vec::new();
    for index in 0u32.. {
        let dir = xenbus::join(fe_dir, &format!("{index}"));
        let Ok(res) = xs.read(&xenbus::join(&dir, field::RESOLUTION)) else {
            break;
        };
        let Ok((width, height)) = parse_resolution(&res) else {
            break;
        };
        let unique_id =
            xenbus::read_string(xs, &xenbus::join(&dir, field::UNIQUE_ID)).unwrap_or_default();
        out.push(ConnectorInfo {
            index,
            width,
            height,
            unique_id,
        });
    }
    out
}

impl VdisplFront {
    /// Connects display `dev_id` of our domain.
    pub fn connect(ep: Endpoint, dev_id: u32, timeout_ms: u32) -> Result<Self> {
        let fe_dir = format!("{}/device/vdispl/{dev_id}", domain_path(ep.domid));
        let xs = &*ep.store;
        let be_dir = xenbus::read_string(xs, &xenbus::join(&fe_dir, "backend"))?;
        let be_dom = xenbus::read_u32(xs, &xenbus::join(&fe_dir, "backend-id"))?;
        let be_dom = DomId::try_from(be_dom).map_err(|_| Error::Protocol("backend-id"))?;
        let infos = read_connectors(xs, &fe_dir);
        if infos.is_empty() {
            return Err(Error::Protocol("no connectors configured"));
        }
        xenbus::start_frontend(xs, &fe_dir, &be_dir, "vdispl-be", timeout_ms)?;
        let mut connectors = Vec::new();
        let mut nodes: Vec<(String, String)> = Vec::new();
        for info in infos {
            let ch = FrontChannel::new(&*ep.grants, &*ep.events, be_dom)?;
            let evt_page = ep.grants.share(be_dom, 1, false)?;
            let evt_port = ep.events.alloc_unbound(be_dom)?;
            let dir = xenbus::join(&fe_dir, &format!("{}", info.index));
            nodes.push((
                xenbus::join(&dir, field::REQ_RING_REF),
                format!("{}", ch.gref()),
            ));
            nodes.push((
                xenbus::join(&dir, field::REQ_EVENT_CHANNEL),
                format!("{}", ch.port()),
            ));
            nodes.push((
                xenbus::join(&dir, field::EVT_RING_REF),
                format!("{}", evt_page.grefs()[0]),
            ));
            nodes.push((
                xenbus::join(&dir, field::EVT_EVENT_CHANNEL),
                format!("{evt_port}"),
            ));
            connectors.push(Connector {
                info,
                ch,
                evt: EventReader::new(evt_page),
                evt_port,
                next_event: 0,
                flipped: Vec::new(),
            });
        }
        nodes.push((xenbus::join(&fe_dir, field::VERSION), String::from("2")));
        let s = xenbus::connect_frontend(xs, &fe_dir, &be_dir, "vdispl-be", &nodes, timeout_ms)?;
        if s != XenbusState::Connected {
            return Err(Error::Transport(pv_transport::Error::Closed));
        }
        Ok(Self {
            ep,
            fe_dir,
            be_dir,
            be_dom,
            connectors,
            dbufs: Vec::new(),
            next_cookie: 1,
            timeout_ms,
        })
    }

    /// The connectors found at connect, in index order.
    pub fn connectors(&self) -> impl Iterator<Item = &ConnectorInfo> {
        self.connectors.iter().map(|c| &c.info)
    }

    /// The backend's current xenbus state (to notice it going away).
    pub fn backend_state(&self) -> XenbusState {
        xenbus::read_state(&*self.ep.store, &self.be_dir)
    }

    fn cookie(&mut self) -> u64 {
        let c = self.next_cookie;
        self.next_cookie += 1;
        c
    }

    /// Every half second of waiting, whether the backend is still there: a
    /// backend that died leaves its state as it was, but its successor
    /// starts the device over, and a wait for the dead one's answer would
    /// only time out.
    fn check_backend(xs: &dyn pv_transport::Xenstore, be_dir: &str, waited: u32) -> Result<()> {
        if waited % 500 == 0 && xenbus::read_state(xs, be_dir) != XenbusState::Connected {
            return Err(Error::Transport(pv_transport::Error::Closed));
        }
        Ok(())
    }

    fn drain_events(connectors: &mut [Connector]) {
        for c in connectors {
            while let Ok(Some(bytes)) = c.evt.take() {
                let Ok(ev) = Event::decode(&bytes) else {
                    continue;
                };
                let expected = c.next_event;
                c.next_event = ev.id.wrapping_add(1);
                if ev.id != expected {
                    continue; // out of sequence: dropped, as Linux does
                }
                match ev.body {
                    EventBody::PgFlip { fb_cookie } => c.flipped.push(fb_cookie),
                }
            }
        }
    }

    /// Sends `body` on connector `conn`'s ring and waits for the response.
    fn call(&mut self, conn: usize, body: RequestBody) -> Result<Response> {
        let events = &*self.ep.events;
        let c = self.connectors.get_mut(conn).ok_or(Error::Unknown)?;
        let id = c.ch.next_id();
        c.ch.send(events, &Request { id, body }.encode())?;
        let mut waited = 0;
        loop {
            let c = &mut self.connectors[conn];
            while let Some(bytes) = c.ch.take_response()? {
                let rsp = Response::decode(&bytes).map_err(|_| Error::Protocol("bad response"))?;
                if rsp.id == id {
                    if rsp.status != 0 {
                        return Err(Error::Status(rsp.status));
                    }
                    return Ok(rsp);
                }
            }
            if c.ch.arm()? {
                continue;
            }
            if waited >= self.timeout_ms {
                return Err(Error::Transport(pv_transport::Error::Timeout));
            }
            if events.wait_and_unmask(10)? {
                Self::drain_events(&mut self.connectors);
            } else {
                waited += 10;
                Self::check_backend(&*self.ep.store, &self.be_dir, waited)?;
            }
        }
    }

    /// DBUF_CREATE: shares a `width × height × bpp` buffer; returns its cookie.
    pub fn create_dbuf(&mut self, width: u32, height: u32, bpp: u32) -> Result<u64> {
        let pitch = (width * bpp).div_ceil(8);
        let size = pitch
            .checked_mul(height)
            .ok_or(Error::Protocol("buffer too large"))?;
        let buffer = share_buffer(&*self.ep.grants, self.be_dom, size)?;
        let cookie = self.cookie();
        let req = DbufCreate {
            dbuf_cookie: cookie,
            width,
            height,
            bpp,
            buffer_sz: size,
            flags: 0,
            gref_directory: buffer.gref_directory(),
            data_ofs: 0,
        };
        self.call(0, RequestBody::DbufCreate(req))?;
        self.dbufs.push(Dbuf {
            cookie,
            width,
            height,
            bpp,
            pitch,
            buffer,
        });
        Ok(cookie)
    }

    /// The buffer with this cookie, to draw into.
    pub fn dbuf(&self, cookie: u64) -> Option<&Dbuf> {
        self.dbufs.iter().find(|d| d.cookie == cookie)
    }

    /// DBUF_DESTROY, then the grants are revoked.
    pub fn destroy_dbuf(&mut self, cookie: u64) -> Result<()> {
        let r = self
            .call(
                0,
                RequestBody::DbufDestroy {
                    dbuf_cookie: cookie,
                },
            )
            .map(drop);
        self.dbufs.retain(|d| d.cookie != cookie);
        r
    }

    /// FB_ATTACH: a framebuffer of `dbuf` in DRM fourcc `format`.
    pub fn attach_fb(&mut self, dbuf: u64, width: u32, height: u32, format: u32) -> Result<u64> {
        let fb = self.cookie();
        self.call(
            0,
            RequestBody::FbAttach(FbAttach {
                dbuf_cookie: dbuf,
                fb_cookie: fb,
                width,
                height,
                pixel_format: format,
            }),
        )?;
        Ok(fb)
    }

    /// FB_DETACH: removes framebuffer `fb`; its display buffer stays.
    pub fn detach_fb(&mut self, fb: u64) -> Result<()> {
        self.call(0, RequestBody::FbDetach { fb_cookie: fb })
            .map(drop)
    }

    /// SET_CONFIG on connector `conn`: shows `fb` at (x, y); `fb` 0 with
    /// all zeros disables the connector.
    pub fn set_config(&mut self, conn: usize, cfg: SetConfig) -> Result<()> {
        self.call(conn, RequestBody::SetConfig(cfg)).map(drop)
    }

    /// PG_FLIP: queues `fb` on connector `conn`.
    pub fn page_flip(&mut self, conn: usize, fb: u64) -> Result<()> {
        self.call(conn, RequestBody::PgFlip { fb_cookie: fb })
            .map(drop)
    }

    /// Waits for the PG_FLIP event of `fb` on `conn`.
    pub fn wait_flip_done(&mut self, conn: usize, fb: u64, timeout_ms: u32) -> Result<()> {
        let mut waited = 0;
        loop {
            Self::drain_events(&mut self.connectors);
            let c = self.connectors.get_mut(conn).ok_or(Error::Unknown)?;
            if let Some(i) = c.flipped.iter().position(|&f| f == fb) {
                c.flipped.drain(..=i);
                return Ok(());
            }
            if waited >= timeout_ms {
                return Err(Error::Transport(pv_transport::Error::Timeout));
            }
            if !self.ep.events.wait_and_unmask(10)? {
                waited += 10;
                Self::check_backend(&*self.ep.store, &self.be_dir, waited)?;
            }
        }
    }

    /// Closes the device: Closing, then Closed once the backend let go.
    pub fn disconnect(self, timeout_ms: u32) -> Result<Endpoint> {
        let xs = &*self.ep.store;
        xenbus::disconnect_frontend(xs, &self.fe_dir, &self.be_dir, "vdispl-be", timeout_ms)?;
        for c in &self.connectors {
            c.ch.unbind(&*self.ep.events);
            let _ = self.ep.events.unbind(c.evt_port);
        }
        Ok(self.ep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pv_transport::loopback::Loopback;

    #[test]
    fn connector_scan_stops_at_first_gap_or_garbage() {
        let lb = Loopback::new();
        let xs = lb.xenstore(1);
        let d = "/local/domain/1/device/vdispl/0";
        xs.write(&format!("{d}/0/resolution"), b"1920x1080")
            .unwrap();
        xs.write(&format!("{d}/0/unique-id"), b"HDMI-A-1").unwrap();
        xs.write(&format!("{d}/1/resolution"), b"800x480").unwrap();
        xs.write(&format!("{d}/3/resolution"), b"800x480").unwrap();
        let c = read_connectors(&*xs, d);
        assert_eq!(c.len(), 2);
        assert_eq!(
            (c[0].width, c[0].height, c[0].unique_id.as_str()),
            (1920, 1080, "HDMI-A-1")
        );
        xs.write(&format!("{d}/1/resolution"), b"800by480").unwrap();
        assert_eq!(read_connectors(&*xs, d).len(), 1);
    }
}
