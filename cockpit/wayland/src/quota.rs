//! What clients make the compositor hold, bounded per client and for the
//! whole server: handles (a shm pool's fd, a dma-buf plane's fd waiting in
//! its params, a dma-buf buffer's mapping) and mapped dma-buf bytes. A
//! client cannot exhaust the compositor's fds (which would stop it
//! accepting anyone), its mappings or its address space (which matters on
//! the 32-bit boards); several connections together cannot either.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use std::ffi::CString;

use wayland_server::backend::protocol::{Interface, ProtocolError};
use wayland_server::{Client, DisplayHandle};

/// One client's limits.
pub(crate) const CLIENT_HANDLES: usize = 128;
pub(crate) const CLIENT_BYTES: usize = 128 << 20;
/// All clients' together (well under the usual 1024-fd limit).
pub(crate) const SERVER_HANDLES: usize = 512;
pub(crate) const SERVER_BYTES: usize = 512 << 20;

pub(crate) struct Budget {
    handles: AtomicUsize,
    bytes: AtomicUsize,
    max_handles: usize,
    max_bytes: usize,
    whose: &'static str,
}

impl Budget {
    pub fn client() -> Arc<Budget> {
        Budget::new(CLIENT_HANDLES, CLIENT_BYTES, "the client's")
    }

    pub fn server() -> Arc<Budget> {
        Budget::new(SERVER_HANDLES, SERVER_BYTES, "all clients'")
    }

    fn new(max_handles: usize, max_bytes: usize, whose: &'static str) -> Arc<Budget> {
        Arc::new(Budget {
            handles: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            max_handles,
            max_bytes,
            whose,
        })
    }

    fn try_take(&self, handles: usize, bytes: usize) -> Result<(), String> {
        let h = self.handles.fetch_add(handles, Ordering::SeqCst) + handles;
        let b = self
            .bytes
            .fetch_add(bytes, Ordering::SeqCst)
            .saturating_add(bytes);
        if h <= self.max_handles && b <= self.max_bytes {
            return Ok(());
        }
        self.give_back(handles, bytes);
        Err(if h > self.max_handles {
            format!(
                "{} limit of {} buffers and pools is reached",
                self.whose, self.max_handles
            )
        } else {
            format!(
                "{} limit of {} mapped dma-buf bytes is reached",
                self.whose, self.max_bytes
            )
        })
    }

    fn give_back(&self, handles: usize, bytes: usize) {
        self.handles.fetch_sub(handles, Ordering::SeqCst);
        self.bytes.fetch_sub(bytes, Ordering::SeqCst);
    }
}

/// What one object holds against its client's and the server's budgets,
/// given back when it is dropped.
pub(crate) struct Charge {
    client: Arc<Budget>,
    server: Arc<Budget>,
    handles: usize,
    bytes: usize,
}

impl Charge {
    /// Charges `handles` and `bytes` to both budgets, or to neither.
    pub fn take(
        client: &Arc<Budget>,
        server: &Arc<Budget>,
        handles: usize,
        bytes: usize,
    ) -> Result<Charge, String> {
        let mut c = Charge {
            client: client.clone(),
            server: server.clone(),
            handles: 0,
            bytes: 0,
        };
        c.add(handles, bytes)?;
        Ok(c)
    }

    /// Charges `bytes` more, or nothing.
    pub fn grow(&mut self, bytes: usize) -> Result<(), String> {
        self.add(0, bytes)
    }

    fn add(&mut self, handles: usize, bytes: usize) -> Result<(), String> {
        self.client.try_take(handles, bytes)?;
        if let Err(e) = self.server.try_take(handles, bytes) {
            self.client.give_back(handles, bytes);
            return Err(e);
        }
        self.handles += handles;
        self.bytes += bytes;
        Ok(())
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.client.give_back(self.handles, self.bytes);
        self.server.give_back(self.handles, self.bytes);
    }
}

/// Charges one handle to `client` and to the `server`'s budget.
pub(crate) fn take_handle(client: &Client, server: &Arc<Budget>) -> Result<Charge, String> {
    let budget = client
        .get_data::<crate::state::ClientState>()
        .ok_or("an unknown client")?;
    Charge::take(&budget.budget, server, 1, 0)
}

/// Disconnects `client` for holding too much: `wl_display.no_memory`,
/// sent on its display object so the client can say why it was cut off.
pub(crate) fn refuse(client: &Client, dh: &DisplayHandle, message: String) {
    const NO_MEMORY: u32 = 2;
    // The backend finds an object by its interface's name; wl_display's own
    // description is private to it.
    static WL_DISPLAY: Interface = Interface {
        name: "wl_display",
        version: 1,
        requests: &[],
        events: &[],
        c_ptr: None,
    };
    let handle = dh.backend_handle();
    match handle.object_for_protocol_id(client.id(), &WL_DISPLAY, 1) {
        Ok(display) => handle.post_error(
            display,
            NO_MEMORY,
            CString::new(message.replace('\0', " ")).unwrap_or_default(),
        ),
        Err(_) => client.kill(
            dh,
            ProtocolError {
                code: NO_MEMORY,
                object_id: 1,
                object_interface: "wl_display".into(),
                message,
            },
        ),
    }
}
