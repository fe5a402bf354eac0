//! Transport traits shared by the PV frontends and backends.
//!
//! This crate owns the *mechanisms* a PV device sits on, never a protocol:
//!
//! * [`GrantTable`] — a frontend shares pages with a backend domain;
//! * [`GrantMapper`] — a backend maps pages a frontend granted it;
//! * [`EventChannel`] — interdomain doorbells (allocate, bind, notify, wait);
//! * [`ForeignMapper`] — privileged mapping by frame number (legacy vfb);
//! * [`Xenstore`] — the configuration tree, with watches;
//! * [`xenbus`] — the state-node helpers both ends use on top of it;
//! * [`xs_client`] — the xenstore client over any message connection, and
//!   [`xs_ring`] — the shared-page connection a bare guest uses.
//!
//! The traits are object safe and need only `core` + `alloc`, so no_std
//! frontends drive their xenbus state machine through exactly the same
//! interface as the Linux backends. With feature `std` the crate also
//! provides implementations:
//!
//! * [`linux`] — `/dev/xen/gntdev`, `/dev/xen/gntalloc`, `/dev/xen/evtchn`,
//!   and `/dev/xen/xenbus` or xenstored's Unix socket. It needs a Xen
//!   domain to run; here only its encodings and ioctl layouts are tested.
//! * [`loopback`] — an in-process **test harness**: shared pages, signalled
//!   event channels and an in-memory xenstore with watches, for tests and
//!   a desktop simulator.
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

pub use xen_abi::io::ring::{Fence, RingMemory};

pub mod channel;
pub mod pgdir;
pub mod shm;
pub mod xenbus;
pub mod xs_client;
pub mod xs_msg;
pub mod xs_ring;

#[cfg(all(feature = "std", target_os = "linux"))]
pub mod linux;
#[cfg(feature = "std")]
pub mod loopback;

pub use shm::{SharedMemory, Shm};

/// A Xen domain id.
pub type DomId = u16;
/// A grant reference: names one page a domain granted to another.
pub type GrantRef = u32;
/// An event-channel port, local to the domain that holds it.
pub type Port = u32;

/// Why a transport operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The xenstore node (or directory) does not exist.
    NotFound,
    /// xenstored refused, with this errno name (`EACCES`, `EINVAL`, ...).
    Store(String),
    /// A grant reference could not be mapped (revoked, not granted to us,
    /// read-only when write access was asked, or no such reference).
    BadGrant(GrantRef),
    /// No such event-channel port, or it is not bound the way asked.
    BadPort(Port),
    /// An argument the transport cannot accept (e.g. zero pages).
    Invalid(&'static str),
    /// The operation exceeded its time limit.
    Timeout,
    /// The peer or the underlying device went away.
    Closed,
    /// The operating system refused, with this errno.
    Os(i32),
    /// Not provided by this transport (e.g. granting from a Linux backend
    /// without `/dev/xen/gntalloc`).
    Unsupported(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str("xenstore node not found"),
            Self::Store(e) => write!(f, "xenstore error {e}"),
            Self::BadGrant(g) => write!(f, "grant reference {g} cannot be mapped"),
            Self::BadPort(p) => write!(f, "bad event-channel port {p}"),
            Self::Invalid(why) => write!(f, "invalid argument: {why}"),
            Self::Timeout => f.write_str("timed out"),
            Self::Closed => f.write_str("closed"),
            Self::Os(e) => write!(f, "os error {e}"),
            Self::Unsupported(what) => write!(f, "unsupported: {what}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

/// The result of every transport operation; fails with this crate's
/// [`Error`] unless another error type is named.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// A watch that fired: the node that changed and the token it was set with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    /// Absolute path of the node that changed: the watched path itself,
    /// a node below it, or (the loopback store) an ancestor that was removed.
    pub path: String,
    /// The token given to [`Xenstore::watch`], telling watches apart.
    pub token: String,
}

/// A xenstore client: one connection, with its own queue of fired watches.
///
/// Paths are absolute (`/local/domain/...`). Setting a watch fires it once
/// straight away, as xenstored does, so a watcher never misses the state
/// that held before it started watching.
pub trait Xenstore: Send + Sync {
    /// The node's value as stored (no terminator added; empty for a pure
    /// directory); [`Error::NotFound`] if it does not exist.
    fn read(&self, path: &str) -> Result<Vec<u8>>;
    /// Creates the node (and missing parents) or replaces its value.
    fn write(&self, path: &str, value: &[u8]) -> Result<()>;
    /// Creates the node with an empty value (and missing parents); a node
    /// that already exists is left as it is.
    fn mkdir(&self, path: &str) -> Result<()>;
    /// Removes the node and everything below it.
    fn rm(&self, path: &str) -> Result<()>;
    /// Names of the node's children.
    fn directory(&self, path: &str) -> Result<Vec<String>>;
    /// Fires for changes to `path` and anything below it.
    fn watch(&self, path: &str, token: &str) -> Result<()>;
    /// Removes this connection's watch with the same `path` and `token`
    /// ([`Error::NotFound`] if there is none); events it already queued
    /// may still be returned by [`wait_watch`](Self::wait_watch).
    fn unwatch(&self, path: &str, token: &str) -> Result<()>;
    /// The next fired watch, waiting up to `timeout_ms` (0 polls).
    fn wait_watch(&self, timeout_ms: u32) -> Result<Option<WatchEvent>>;
    /// Writes several nodes at once: inside one transaction where the
    /// store has them, so the peer never sees half of a configuration.
    fn write_all(&self, entries: &[(&str, &[u8])]) -> Result<()> {
        entries.iter().try_for_each(|(p, v)| self.write(p, v))
    }
}

/// Interdomain event channels as one handle sees them (Linux opens one
/// `/dev/xen/evtchn` per handle). A fired port is delivered once and then
/// stays masked until [`unmask`](Self::unmask), so a burst of
/// notifications costs one wake-up.
pub trait EventChannel: Send + Sync {
    /// Frontend side: a fresh port that `remote` may bind to.
    fn alloc_unbound(&self, remote: DomId) -> Result<Port>;
    /// Backend side: connects to `remote_port` of domain `remote`.
    fn bind_interdomain(&self, remote: DomId, remote_port: Port) -> Result<Port>;
    /// Closes a port this handle allocated or bound; the peer's end stays
    /// but no longer reaches us. Fails for a port this handle does not
    /// hold ([`Error::BadPort`] on the loopback, the errno under Xen).
    fn unbind(&self, port: Port) -> Result<()>;
    /// Raises the event at the other end of `port`.
    fn notify(&self, port: Port) -> Result<()>;
    /// The next fired port, waiting up to `timeout_ms` (0 polls).
    fn wait(&self, timeout_ms: u32) -> Result<Option<Port>>;
    /// Lets `port` fire again (re-delivers if it was raised meanwhile).
    fn unmask(&self, port: Port) -> Result<()>;

    /// Waits up to `timeout_ms` for any port and unmasks it again at once:
    /// what a frontend does between looks at its rings. Whether one fired.
    fn wait_and_unmask(&self, timeout_ms: u32) -> Result<bool> {
        match self.wait(timeout_ms)? {
            Some(p) => {
                let _ = self.unmask(p);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// The frontend's half of grants: share fresh zeroed pages with a domain.
pub trait GrantTable: Send + Sync {
    /// `pages` contiguous pages granted to `remote`; access is revoked when
    /// the last reference to the returned memory is dropped.
    fn share(&self, remote: DomId, pages: usize, readonly: bool) -> Result<Shm>;
}

/// The backend's half of grants: map what a frontend granted.
pub trait GrantMapper: Send + Sync {
    /// Maps `refs` of domain `remote`, in order, as one contiguous area.
    /// Fails (never panics) for any reference that does not map.
    fn map(&self, remote: DomId, refs: &[GrantRef], writable: bool) -> Result<Shm>;
}

/// Privileged mapping of another domain's frames by number, which only
/// the legacy vfb protocol needs (its `page-ref` and page directory hold
/// guest frame numbers, not grants). Under Xen this takes rights over the
/// guest (`/dev/xen/privcmd`).
pub trait ForeignMapper: Send + Sync {
    /// Maps frames `frames` of domain `remote`, in order, as one area.
    fn map_frames(&self, remote: DomId, frames: &[u64], writable: bool) -> Result<Shm>;
}

/// What one end of a PV device needs from the platform it runs on.
pub struct Endpoint {
    /// Our own domain id.
    pub domid: DomId,
    /// This endpoint's own xenstore connection, with its own watch queue.
    pub store: Box<dyn Xenstore>,
    /// This endpoint's own event-channel handle: only ports bound through
    /// it are delivered to its [`EventChannel::wait`].
    pub events: Box<dyn EventChannel>,
    /// Sharing pages with another domain (frontends).
    pub grants: Arc<dyn GrantTable>,
    /// Mapping pages another domain granted us (backends).
    pub mapper: Arc<dyn GrantMapper>,
    /// Mapping another domain's frames by number (legacy vfb only).
    pub foreign: Arc<dyn ForeignMapper>,
}

/// A source of endpoints: each device instance opens its own, so its
/// watches and events are never mixed with another device's.
pub trait Platform: Send + Sync {
    /// The domain every endpoint of this platform acts as.
    fn domid(&self) -> DomId;
    /// A fresh endpoint with its own xenstore connection and event-channel
    /// handle. Fails if xenstore, event channels or grant mapping cannot
    /// be opened; missing sharing or foreign mapping only makes those
    /// calls return [`Error::Unsupported`].
    fn open(&self) -> Result<Endpoint>;
}

/// `/local/domain/<domid>`.
pub fn domain_path(domid: DomId) -> String {
    alloc::format!("/local/domain/{domid}")
}
