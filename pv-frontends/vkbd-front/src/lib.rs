//! The vkbd frontend (`io/kbdif.h`): keyboard, pointer and multi-touch
//! input delivered by a backend, for the SDK's no_std guests.
//!
//! [`VkbdFront::connect`] walks the xenbus handshake: it reads the
//! backend's features, asks for absolute pointer and multi-touch as
//! configured, shares one page and an event channel, and moves to
//! Connected. [`VkbdFront::wait_events`] then hands out decoded
//! [`InEvent`]s in order. Events of unknown types are skipped, as the
//! protocol asks; a backend that corrupts the ring indices is an error.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod ring;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use pv_transport::xenbus::{self, XenbusState};
use pv_transport::{domain_path, DomId, Endpoint, Error, Port, Result, Shm};
use xen_abi::io::kbdif::field;
pub use xen_abi::io::kbdif::{InEvent, MtEvent};

pub use ring::InRing;

/// What the frontend asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// POS events instead of MOTION, if the backend offers them.
    pub abs_pointer: bool,
    /// MTOUCH events, if the backend offers them.
    pub multi_touch: bool,
    /// Unscaled absolute coordinates (0..=0x7fff).
    pub raw_pointer: bool,
}

/// What the backend offers (its `feature-*` and size nodes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Features {
    /// A keyboard is behind the device (`feature-disable-keyboard` unset).
    pub keyboard: bool,
    /// A pointer is behind the device (`feature-disable-pointer` unset).
    pub pointer: bool,
    /// Absolute positions (POS events) are available.
    pub abs_pointer: bool,
    /// Unscaled absolute coordinates (0..=0x7fff) are available.
    pub raw_pointer: bool,
    /// Multi-touch events are available.
    pub multi_touch: bool,
    /// Largest absolute pointer X (default 800; 800×600 is what Linux assumes).
    pub width: u32,
    /// Largest absolute pointer Y (default 600).
    pub height: u32,
    /// Multi-touch surface width in pixels (default 800).
    pub mt_width: u32,
    /// Multi-touch surface height in pixels (default 600).
    pub mt_height: u32,
    /// Most simultaneous touch contacts (default 1).
    pub mt_contacts: u32,
    /// The backend's `unique-id`, if it wrote one.
    pub unique_id: Option<String>,
}

/// A connected vkbd device.
pub struct VkbdFront {
    ep: Endpoint,
    fe_dir: String,
    be_dir: String,
    be_dom: DomId,
    ring: InRing<Shm>,
    port: Port,
    features: Features,
    granted: Options,
}

fn read_features(xs: &dyn pv_transport::Xenstore, be: &str) -> Result<Features> {
    let flag = |n: &str| xenbus::read_flag(xs, &xenbus::join(be, n));
    let num = |n: &str, d: u32| xenbus::read_u32_or(xs, &xenbus::join(be, n), d);
    Ok(Features {
        keyboard: !flag(field::FEATURE_DISABLE_KEYBOARD),
        pointer: !flag(field::FEATURE_DISABLE_POINTER),
        abs_pointer: flag(field::FEATURE_ABS_POINTER),
        raw_pointer: flag(field::FEATURE_RAW_POINTER),
        multi_touch: flag(field::FEATURE_MULTI_TOUCH),
        width: num(field::WIDTH, 800)?,
        height: num(field::HEIGHT, 600)?,
        mt_width: num(field::MT_WIDTH, 800)?,
        mt_height: num(field::MT_HEIGHT, 600)?,
        mt_contacts: num(field::MT_NUM_CONTACTS, 1)?,
        unique_id: xenbus::read_string(xs, &xenbus::join(be, field::UNIQUE_ID)).ok(),
    })
}

impl VkbdFront {
    /// Connects device `dev_id` of our domain, waiting up to `timeout_ms`
    /// for each backend step.
    pub fn connect(ep: Endpoint, dev_id: u32, opts: Options, timeout_ms: u32) -> Result<Self> {
        let fe_dir = format!("{}/device/vkbd/{dev_id}", domain_path(ep.domid));
        let xs = &*ep.store;
        let be_dir = xenbus::read_string(xs, &xenbus::join(&fe_dir, "backend"))?;
        let be_dom = xenbus::read_u32(xs, &xenbus::join(&fe_dir, "backend-id"))?;
        let be_dom = DomId::try_from(be_dom).map_err(|_| Error::Invalid("backend-id"))?;
        xenbus::start_frontend(xs, &fe_dir, &be_dir, "vkbd-be", timeout_ms)?;
        let features = read_features(xs, &be_dir)?;
        let granted = Options {
            abs_pointer: opts.abs_pointer && features.abs_pointer,
            multi_touch: opts.multi_touch && features.multi_touch,
            raw_pointer: opts.raw_pointer && opts.abs_pointer && features.raw_pointer,
        };
        let page = ep.grants.share(be_dom, 1, false)?;
        let port = ep.events.alloc_unbound(be_dom)?;
        let gref = format!("{}", page.grefs()[0]);
        let evtchn = format!("{port}");
        let flag = |b: bool| String::from(if b { "1" } else { "0" });
        let nodes = [
            (xenbus::join(&fe_dir, field::PAGE_GREF), gref),
            (xenbus::join(&fe_dir, field::EVENT_CHANNEL), evtchn),
            (xenbus::join(&fe_dir, field::REQUEST_ABS_POINTER), flag(granted.abs_pointer)),
            (xenbus::join(&fe_dir, field::REQUEST_MULTI_TOUCH), flag(granted.multi_touch)),
            (xenbus::join(&fe_dir, field::REQUEST_RAW_POINTER), flag(granted.raw_pointer)),
        ];
        let s = xenbus::connect_frontend(xs, &fe_dir, &be_dir, "vkbd-be", &nodes, timeout_ms)?;
        if s != XenbusState::Connected {
            let _ = ep.events.unbind(port);
            return Err(Error::Closed);
        }
        Ok(Self {
            ring: InRing::new(page),
            ep,
            fe_dir,
            be_dir,
            be_dom,
            port,
            features,
            granted,
        })
    }

    /// What the backend offered at connect.
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// What was requested and offered.
    pub fn granted(&self) -> Options {
        self.granted
    }

    /// Domain ID of the backend serving this device.
    pub fn backend_domain(&self) -> DomId {
        self.be_dom
    }

    /// Events already in the ring, without waiting.
    pub fn poll_events(&mut self) -> Result<Vec<InEvent>> {
        let events = self.ring.take_all()?;
        if !events.is_empty() {
            // The backend may be waiting for room.
            self.ep.events.notify(self.port)?;
        }
        Ok(events)
    }

    /// Waits up to `timeout_ms` for the backend's event, then drains.
    pub fn wait_events(&mut self, timeout_ms: u32) -> Result<Vec<InEvent>> {
        let got = self.poll_events()?;
        if !got.is_empty() {
            return Ok(got);
        }
        self.ep.events.wait_and_unmask(timeout_ms)?;
        self.poll_events()
    }

    /// The backend's current state (to notice it going away).
    pub fn backend_state(&self) -> XenbusState {
        xenbus::read_state(&*self.ep.store, &self.be_dir)
    }

    /// Closes the device: Closing, then Closed once the backend let go.
    pub fn close(self, timeout_ms: u32) -> Result<Endpoint> {
        let xs = &*self.ep.store;
        xenbus::disconnect_frontend(xs, &self.fe_dir, &self.be_dir, "vkbd-be", timeout_ms)?;
        let _ = self.ep.events.unbind(self.port);
        Ok(self.ep)
    }
}
