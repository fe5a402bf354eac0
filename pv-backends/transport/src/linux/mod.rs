//! The transport over Xen's Linux user-space interfaces, for backends in a
//! driver domain (and Linux user-space frontends):
//!
//! * [`Evtchn`] — `/dev/xen/evtchn`: bind, notify, read fired ports, unmask;
//! * [`Gntdev`] — `/dev/xen/gntdev`: map grant references (ioctl + mmap);
//! * [`Gntalloc`] — `/dev/xen/gntalloc`: share our own pages;
//! * [`Privcmd`] — `/dev/xen/privcmd`: map a guest's frames (legacy vfb);
//! * [`XsClient`] — the xenstore wire protocol over `/dev/xen/xenbus` or
//!   xenstored's socket `/var/run/xenstored/socket`.
//!
//! Only the xenstore client runs without Xen (its tests talk to a fake
//! xenstored over a socket pair); the device wrappers are exercised under
//! Xen by the interop tests. All `unsafe` is in [`sys`].

mod devices;
pub(crate) mod sys;
mod xs;

pub use devices::{Evtchn, Gntalloc, Gntdev, Privcmd};
pub use xs::XsClient;

use std::sync::Arc;

use crate::{DomId, Endpoint, Error, ForeignMapper, GrantTable, Platform, Result, Shm};

/// Default location of xenstored's socket.
pub const XENSTORED_SOCKET: &str = "/var/run/xenstored/socket";
/// The xenbus device, for domains without a local xenstored.
pub const XENBUS_DEVICE: &str = "/dev/xen/xenbus";

pub(crate) fn os_error(e: std::io::Error) -> Error {
    Error::Os(e.raw_os_error().unwrap_or(libc::EIO))
}

/// The Linux transport of domain `domid`.
#[derive(Clone, Debug)]
pub struct LinuxPlatform {
    /// The domain this process runs in, given by the caller (the daemon's
    /// `domain` setting); it is not read back from Xen.
    pub domid: DomId,
}

/// What a domain without `/dev/xen/gntalloc` gets for sharing.
struct NoGrants;

/// What a domain without privcmd rights gets for foreign mapping.
struct NoForeign;

impl ForeignMapper for NoForeign {
    fn map_frames(&self, _: DomId, _: &[u64], _: bool) -> Result<Shm> {
        Err(Error::Unsupported("/dev/xen/privcmd is not available"))
    }
}

impl GrantTable for NoGrants {
    fn share(&self, _: DomId, _: usize, _: bool) -> Result<Shm> {
        Err(Error::Unsupported("/dev/xen/gntalloc is not available"))
    }
}

impl Platform for LinuxPlatform {
    fn domid(&self) -> DomId {
        self.domid
    }

    fn open(&self) -> Result<Endpoint> {
        let grants: Arc<dyn GrantTable> = match Gntalloc::open() {
            Ok(g) => Arc::new(g),
            Err(_) => Arc::new(NoGrants),
        };
        let foreign: Arc<dyn ForeignMapper> = match Privcmd::open() {
            Ok(p) => Arc::new(p),
            Err(_) => Arc::new(NoForeign),
        };
        Ok(Endpoint {
            domid: self.domid,
            store: Box::new(XsClient::open_default()?),
            events: Box::new(Evtchn::open()?),
            grants,
            mapper: Arc::new(Gntdev::open()?),
            foreign,
        })
    }
}
