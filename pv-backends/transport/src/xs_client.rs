//! The xenstore client proper, over any connection messages travel on:
//! xenstored's socket or `/dev/xen/xenbus` (Linux), or the shared ring page
//! a bare guest talks over ([`crate::xs_ring`]).
//!
//! Requests are serialised per connection; watch events that arrive while
//! a reply is awaited are queued for [`Xenstore::wait_watch`]. The lock is
//! the caller's choice ([`ConnLock`]): a blocking mutex where threads
//! share a client, a spin lock in a single-threaded guest.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

use xen_abi::io::xs_wire::{XsHeader, XsType};

use crate::xs_msg::{self, Request};
use crate::{Error, Result, WatchEvent, Xenstore};

/// A connection carrying whole xenstore messages.
pub trait XsConnection: Send {
    /// Sends one framed message.
    fn send(&mut self, msg: &[u8]) -> Result<()>;
    /// The next message, waiting up to `timeout_ms` (`None`: without
    /// limit); `Ok(None)` if none came in time. A message of an unknown
    /// type is consumed whole and reported as [`Error::Invalid`]; a
    /// connection that can no longer be framed is [`Error::Closed`].
    fn recv(&mut self, timeout_ms: Option<u32>) -> Result<Option<(XsHeader, Vec<u8>)>>;
    /// A monotonic clock in milliseconds, for the time left to wait.
    fn now_ms(&self) -> u64;
}

/// Watch events kept while nobody takes them. More are dropped (a
/// duplicate of one queued always is): a watcher re-reads the nodes it
/// watches on each event, so a missed one costs nothing a later one does
/// not repair, and a peer firing watches in a loop cannot exhaust memory.
pub const MAX_QUEUED_WATCHES: usize = 64;

/// How long a request waits for its reply before it fails with
/// [`Error::Timeout`] (a late reply is then skipped by its id).
pub const REQUEST_TIMEOUT_MS: u32 = 30_000;

/// The client's state behind its lock.
pub struct Conn<C> {
    conn: C,
    next_id: u32,
    watches: VecDeque<WatchEvent>,
}

impl<C: XsConnection> Conn<C> {
    /// A connection nothing has been sent on yet.
    pub fn new(conn: C) -> Self {
        Self {
            conn,
            next_id: 1,
            watches: VecDeque::new(),
        }
    }

    fn queue(&mut self, ev: WatchEvent) {
        if self.watches.len() < MAX_QUEUED_WATCHES && !self.watches.contains(&ev) {
            self.watches.push_back(ev);
        }
    }

    fn request(&mut self, req: Request) -> Result<Vec<u8>> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.conn.send(&req.encode(id)?)?;
        let deadline = self.conn.now_ms().saturating_add(REQUEST_TIMEOUT_MS.into());
        loop {
            let left = deadline.saturating_sub(self.conn.now_ms());
            if left == 0 {
                return Err(Error::Timeout);
            }
            let (h, payload) = match self.conn.recv(Some(left.min(u32::MAX.into()) as u32)) {
                Ok(Some(m)) => m,
                Ok(None) | Err(Error::Invalid(_)) => continue,
                Err(e) => return Err(e),
            };
            if h.msg_type == XsType::WatchEvent {
                if let Ok(ev) = xs_msg::parse_watch_event(&payload) {
                    self.queue(ev);
                }
                continue;
            }
            if h.req_id != id {
                continue; // a stale reply from an abandoned request
            }
            xs_msg::check_reply(h.msg_type, &payload)?;
            return Ok(payload);
        }
    }

    fn wait_watch(&mut self, timeout_ms: u32) -> Result<Option<WatchEvent>> {
        let deadline = self.conn.now_ms().saturating_add(timeout_ms.into());
        loop {
            if let Some(ev) = self.watches.pop_front() {
                return Ok(Some(ev));
            }
            let left = deadline.saturating_sub(self.conn.now_ms());
            match self.conn.recv(Some(left.min(u32::MAX.into()) as u32)) {
                Ok(Some((h, payload))) if h.msg_type == XsType::WatchEvent => {
                    if let Ok(ev) = xs_msg::parse_watch_event(&payload) {
                        return Ok(Some(ev));
                    }
                }
                Ok(Some(_)) | Err(Error::Invalid(_)) => {} // consumed whole
                Ok(None) => return Ok(None),
                Err(e) => return Err(e),
            }
            if self.conn.now_ms() >= deadline {
                return Ok(None);
            }
        }
    }

    fn try_write_all(&mut self, entries: &[(&str, &[u8])]) -> Result<()> {
        let tx = xs_msg::parse_tx_id(&self.request(Request::transaction_start())?)?;
        for (p, v) in entries {
            if let Err(e) = self.request(Request::write(tx, p, v)) {
                let _ = self.request(Request::transaction_end(tx, false));
                return Err(e);
            }
        }
        self.request(Request::transaction_end(tx, true)).map(drop)
    }
}

/// A lock around a client's [`Conn`].
pub trait ConnLock: Send + Sync {
    /// The connection underneath.
    type C: XsConnection;
    /// Runs `f` with the connection held.
    fn with<R>(&self, f: impl FnOnce(&mut Conn<Self::C>) -> R) -> R;
}

impl<C: XsConnection> ConnLock for spin::Mutex<Conn<C>> {
    type C = C;
    fn with<R>(&self, f: impl FnOnce(&mut Conn<C>) -> R) -> R {
        f(&mut self.lock())
    }
}

#[cfg(feature = "std")]
impl<C: XsConnection> ConnLock for std::sync::Mutex<Conn<C>> {
    type C = C;
    fn with<R>(&self, f: impl FnOnce(&mut Conn<C>) -> R) -> R {
        f(&mut self.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// One xenstore connection.
pub struct XsClient<L> {
    conn: L,
}

/// A client behind a spin lock (a single-threaded guest's).
pub type SpinClient<C> = XsClient<spin::Mutex<Conn<C>>>;

impl<C: XsConnection> SpinClient<C> {
    /// A client for a single-threaded (or spin-friendly) user.
    pub fn spin(conn: C) -> Self {
        Self {
            conn: spin::Mutex::new(Conn::new(conn)),
        }
    }
}

#[cfg(feature = "std")]
impl<C: XsConnection> XsClient<std::sync::Mutex<Conn<C>>> {
    /// A client whose waiters block rather than spin.
    pub fn blocking(conn: C) -> Self {
        Self {
            conn: std::sync::Mutex::new(Conn::new(conn)),
        }
    }
}

impl<L: ConnLock> XsClient<L> {
    fn request(&self, req: Request) -> Result<Vec<u8>> {
        self.conn.with(|c| c.request(req))
    }
}

impl<L: ConnLock> Xenstore for XsClient<L> {
    fn read(&self, path: &str) -> Result<Vec<u8>> {
        self.request(Request::path(XsType::Read, 0, path))
    }

    fn write(&self, path: &str, value: &[u8]) -> Result<()> {
        self.request(Request::write(0, path, value)).map(drop)
    }

    fn mkdir(&self, path: &str) -> Result<()> {
        self.request(Request::path(XsType::Mkdir, 0, path)).map(drop)
    }

    fn rm(&self, path: &str) -> Result<()> {
        self.request(Request::path(XsType::Rm, 0, path)).map(drop)
    }

    fn directory(&self, path: &str) -> Result<Vec<String>> {
        self.request(Request::path(XsType::Directory, 0, path))
            .map(|p| xs_msg::parse_directory(&p))
    }

    fn watch(&self, path: &str, token: &str) -> Result<()> {
        self.request(Request::watch(XsType::Watch, path, token)).map(drop)
    }

    fn unwatch(&self, path: &str, token: &str) -> Result<()> {
        self.request(Request::watch(XsType::Unwatch, path, token)).map(drop)
    }

    fn wait_watch(&self, timeout_ms: u32) -> Result<Option<WatchEvent>> {
        self.conn.with(|c| c.wait_watch(timeout_ms))
    }

    /// One transaction, retried while the store reports a conflict.
    fn write_all(&self, entries: &[(&str, &[u8])]) -> Result<()> {
        for _ in 0..16 {
            match self.conn.with(|c| c.try_write_all(entries)) {
                Err(Error::Store(e)) if e == "EAGAIN" => continue,
                other => return other,
            }
        }
        Err(Error::Store("EAGAIN".into()))
    }
}
