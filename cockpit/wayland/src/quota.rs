//! What clients make the compositor hold, bounded per client and for the
//! whole server: connections, handles (a shm pool's fd, a dma-buf plane's
//! fd waiting in its params, a dma-buf buffer's mapping) and mapped dma-buf
//! bytes. A client cannot exhaust the compositor's fds (which would stop it
//! accepting anyone), its mappings or its address space (which matters on
//! the 32-bit boards); several connections together cannot either.
//!
//! Each client has a reserve that is its alone; beyond it, clients draw on
//! one shared budget. So a greedy client (or one user's many connections)
//! can exhaust the shared part, and then only clients beyond their reserves
//! are refused: an ordinary client keeps working.

use std::sync::{Arc, Mutex};

use std::ffi::CString;

use wayland_server::backend::protocol::{Interface, ProtocolError};
use wayland_server::{Client, DisplayHandle};

/// One client's limits.
pub(crate) const CLIENT_HANDLES: usize = 128;
pub(crate) const CLIENT_BYTES: usize = 128 << 20;
/// What each client holds without drawing on the shared budget: enough for
/// an ordinary client (a few pools, a double-buffered 1080p dma-buf
/// picture), so that one greedy client, or several, cannot get it cut off.
pub(crate) const CLIENT_RESERVED_HANDLES: usize = 8;
pub(crate) const CLIENT_RESERVED_BYTES: usize = 16 << 20;
/// What all clients share beyond their reserves.
pub(crate) const SHARED_HANDLES: usize = 384;
pub(crate) const SHARED_BYTES: usize = 384 << 20;
/// Connections at once, and from one user. With the reserves and the
/// shared budget this keeps the compositor's fds under 1024:
/// 48 + 48 * 8 + 384 = 816, leaving room for its own.
pub(crate) const MAX_CLIENTS: usize = 48;
pub(crate) const MAX_CLIENTS_PER_UID: usize = 16;

/// Handles and bytes.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
struct Amount {
    handles: usize,
    bytes: usize,
}

impl Amount {
    fn over(self, reserve: Amount) -> Amount {
        Amount {
            handles: self.handles.saturating_sub(reserve.handles),
            bytes: self.bytes.saturating_sub(reserve.bytes),
        }
    }
    fn minus(self, o: Amount) -> Amount {
        Amount {
            handles: self.handles - o.handles,
            bytes: self.bytes - o.bytes,
        }
    }
    fn plus(self, o: Amount) -> Option<Amount> {
        Some(Amount {
            handles: self.handles.checked_add(o.handles)?,
            bytes: self.bytes.checked_add(o.bytes)?,
        })
    }
}

/// A budget: a client's (its use beyond `reserve` drawn from `shared`) or
/// the shared one (no reserve, no parent).
pub(crate) struct Budget {
    used: Mutex<Amount>,
    max: Amount,
    reserve: Amount,
    shared: Option<Arc<Budget>>,
    whose: &'static str,
}

/// Why a charge was refused.
#[derive(Debug)]
pub(crate) struct Refused {
    pub message: String,
    /// The shared budget ran out, not the client's own: another client's
    /// doing, so the client is told `failed` where the protocol can.
    pub shared: bool,
}

impl Budget {
    /// The budget all clients share.
    pub fn shared() -> Arc<Budget> {
        Budget::new(
            Amount {
                handles: SHARED_HANDLES,
                bytes: SHARED_BYTES,
            },
            Amount::default(),
            None,
            "all clients'",
        )
    }

    /// A new client's budget, drawing on `shared` beyond its reserve.
    pub fn client(shared: &Arc<Budget>) -> Arc<Budget> {
        Budget::new(
            Amount {
                handles: CLIENT_HANDLES,
                bytes: CLIENT_BYTES,
            },
            Amount {
                handles: CLIENT_RESERVED_HANDLES,
                bytes: CLIENT_RESERVED_BYTES,
            },
            Some(shared.clone()),
            "the client's",
        )
    }

    fn new(
        max: Amount,
        reserve: Amount,
        shared: Option<Arc<Budget>>,
        whose: &'static str,
    ) -> Arc<Budget> {
        Arc::new(Budget {
            used: Mutex::new(Amount::default()),
            max,
            reserve,
            shared,
            whose,
        })
    }

    fn try_take(&self, want: Amount) -> Result<(), Refused> {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        let new = used
            .plus(want)
            .filter(|n| n.handles <= self.max.handles && n.bytes <= self.max.bytes);
        let Some(new) = new else {
            let message = if used.handles.saturating_add(want.handles) > self.max.handles {
                format!(
                    "{} limit of {} buffers and pools is reached",
                    self.whose, self.max.handles
                )
            } else {
                format!(
                    "{} limit of {} mapped dma-buf bytes is reached",
                    self.whose, self.max.bytes
                )
            };
            return Err(Refused {
                message,
                shared: self.shared.is_none(),
            });
        };
        if let Some(shared) = &self.shared {
            shared.try_take(new.over(self.reserve).minus(used.over(self.reserve)))?;
        }
        *used = new;
        Ok(())
    }

    fn give_back(&self, amount: Amount) {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        let new = used.minus(amount);
        if let Some(shared) = &self.shared {
            shared.give_back(used.over(self.reserve).minus(new.over(self.reserve)));
        }
        *used = new;
    }
}

/// What one object holds against its client's budget (and through it the
/// shared one), given back when it is dropped.
pub(crate) struct Charge {
    client: Arc<Budget>,
    held: Amount,
}

impl Charge {
    /// Charges `handles` and `bytes` to `client`, or nothing.
    pub fn take(client: &Arc<Budget>, handles: usize, bytes: usize) -> Result<Charge, Refused> {
        let mut c = Charge {
            client: client.clone(),
            held: Amount::default(),
        };
        c.add(Amount { handles, bytes })?;
        Ok(c)
    }

    /// Charges `bytes` more, or nothing.
    pub fn grow(&mut self, bytes: usize) -> Result<(), Refused> {
        self.add(Amount { handles: 0, bytes })
    }

    fn add(&mut self, more: Amount) -> Result<(), Refused> {
        self.client.try_take(more)?;
        // Cannot overflow: the budget just held `held + more` under its maximum.
        self.held = self.held.plus(more).unwrap_or(self.held);
        Ok(())
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.client.give_back(self.held);
    }
}

/// Connections, counted in total and per user (the peer's uid).
#[derive(Default)]
pub(crate) struct Connections {
    by_uid: Mutex<std::collections::HashMap<u32, usize>>,
}

/// One admitted connection, counted until dropped (with its client).
pub(crate) struct Seat {
    connections: Arc<Connections>,
    uid: u32,
}

impl Connections {
    /// Admits one more connection from `uid`, or says why not.
    pub fn admit(self: &Arc<Self>, uid: u32) -> Result<Seat, String> {
        let mut by_uid = self.by_uid.lock().unwrap_or_else(|e| e.into_inner());
        let total: usize = by_uid.values().sum();
        let mine = by_uid.get(&uid).copied().unwrap_or(0);
        if total >= MAX_CLIENTS {
            return Err(format!(
                "{MAX_CLIENTS} clients are connected, the most the compositor serves"
            ));
        }
        if mine >= MAX_CLIENTS_PER_UID {
            return Err(format!(
                "uid {uid} has {MAX_CLIENTS_PER_UID} connections, the most one user may hold"
            ));
        }
        by_uid.insert(uid, mine + 1);
        Ok(Seat {
            connections: self.clone(),
            uid,
        })
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut by_uid = self
            .connections
            .by_uid
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = by_uid.get_mut(&self.uid) {
            *n -= 1;
            if *n == 0 {
                by_uid.remove(&self.uid);
            }
        }
    }
}

/// Charges one handle to `client`.
pub(crate) fn take_handle(client: &Client) -> Result<Charge, Refused> {
    let state = client
        .get_data::<crate::state::ClientState>()
        .ok_or_else(|| Refused {
            message: "an unknown client".into(),
            shared: false,
        })?;
    Charge::take(&state.budget, 1, 0)
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
