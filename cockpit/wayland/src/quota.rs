//! What clients make the compositor hold, bounded per client and for the
//! whole server: connections, handles (a shm pool's fd, a dma-buf plane's
//! fd waiting in its params, a dma-buf buffer's mapping) and mapped dma-buf
//! bytes. A client cannot exhaust the compositor's fds (which would stop it
//! accepting anyone), its mappings or its address space (which matters on
//! the 32-bit boards); several connections together cannot either.
//!
//! Each client has a reserve that is its alone; beyond it, clients draw on
//! their user's share of one shared budget: with n users connected, each
//! may hold 1/(n+1) of it. So greedy clients, of one user or of several,
//! cannot spend it all: an ordinary client keeps working within its
//! reserve, and another user (one more) still finds a share left.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use std::ffi::CString;

use wayland_server::backend::protocol::{Interface, ProtocolError};
use wayland_server::{Client, DisplayHandle};

/// One client's limits.
pub(crate) const CLIENT_HANDLES: usize = 128;
pub(crate) const CLIENT_BYTES: usize = 128 << 20;
/// What each client holds without drawing on the shared budget: enough for
/// an ordinary client (a toolkit's pool per buffer for a few surfaces, a
/// double-buffered 1080p dma-buf picture), so that greedy clients cannot
/// get it cut off.
pub(crate) const CLIENT_RESERVED_HANDLES: usize = 16;
pub(crate) const CLIENT_RESERVED_BYTES: usize = 16 << 20;
/// What all clients share beyond their reserves, and the part of it one
/// user's clients may hold together.
pub(crate) const SHARED_HANDLES: usize = 1024;
pub(crate) const SHARED_BYTES: usize = 384 << 20;
/// Connections at once, and from one user.
pub(crate) const MAX_CLIENTS: usize = 48;
pub(crate) const MAX_CLIENTS_PER_UID: usize = 16;
// Every handle may be a directly read dma-buf mapping, each needing a
// slot in cockpit-dmabuf's fault guard.
const _: () = assert!(
    MAX_CLIENTS * CLIENT_RESERVED_HANDLES + SHARED_HANDLES <= cockpit_dmabuf::MAX_DIRECT_MAPPINGS
);

/// The fds all of that may hold (each client's connection, its reserve,
/// the shared budget), plus the compositor's own: the server raises its
/// fd limit to this (see `raise_fd_limit`).
pub(crate) const FDS_NEEDED: u64 =
    (MAX_CLIENTS * (1 + CLIENT_RESERVED_HANDLES) + SHARED_HANDLES + 256) as u64;

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
    /// A user's budget: `max` is divided by the users connected, plus one
    /// (room for a user yet to come).
    users: Option<Arc<AtomicUsize>>,
    reserve: Amount,
    shared: Option<Arc<Budget>>,
    whose: &'static str,
}

/// Why a charge was refused.
#[derive(Debug)]
pub(crate) struct Refused {
    pub message: String,
    /// A budget above the client's own ran out (its user's share, or the
    /// shared one): other clients' doing, so the client is told `failed`
    /// where the protocol can, rather than cut off.
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
            None,
            "all clients'",
        )
    }

    /// One user's part of `shared`: with `users` users connected, at
    /// most 1/(users + 1) of it, so however many users there are (and
    /// whatever they hold), part of it is always left for one more.
    pub fn user(shared: &Arc<Budget>, users: &Arc<AtomicUsize>) -> Arc<Budget> {
        Budget::new(
            Amount {
                handles: SHARED_HANDLES,
                bytes: SHARED_BYTES,
            },
            Amount::default(),
            Some(users.clone()),
            Some(shared.clone()),
            "this user's",
        )
    }

    /// The limit now (a user's shrinks as users arrive).
    fn max(&self) -> Amount {
        match &self.users {
            None => self.max,
            Some(n) => {
                let parts = n.load(Ordering::SeqCst).saturating_add(1).max(2);
                Amount {
                    handles: self.max.handles / parts,
                    bytes: self.max.bytes / parts,
                }
            }
        }
    }

    /// A new client's budget, drawing on its user's (`shared`) beyond its
    /// reserve.
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
            None,
            Some(shared.clone()),
            "the client's",
        )
    }

    fn new(
        max: Amount,
        reserve: Amount,
        users: Option<Arc<AtomicUsize>>,
        shared: Option<Arc<Budget>>,
        whose: &'static str,
    ) -> Arc<Budget> {
        Arc::new(Budget {
            used: Mutex::new(Amount::default()),
            max,
            users,
            reserve,
            shared,
            whose,
        })
    }

    fn try_take(&self, want: Amount) -> Result<(), Refused> {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        let max = self.max();
        let new = used
            .plus(want)
            .filter(|n| n.handles <= max.handles && n.bytes <= max.bytes);
        let Some(new) = new else {
            let message = if used.handles.saturating_add(want.handles) > max.handles {
                format!(
                    "{} limit of {} buffers and pools is reached",
                    self.whose, max.handles
                )
            } else {
                format!(
                    "{} limit of {} mapped dma-buf bytes is reached",
                    self.whose, max.bytes
                )
            };
            return Err(Refused {
                message,
                shared: false,
            });
        };
        if let Some(shared) = &self.shared {
            shared
                .try_take(new.over(self.reserve).minus(used.over(self.reserve)))
                .map_err(|r| Refused { shared: true, ..r })?;
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

/// Connections, counted in total and per user (the peer's uid), and each
/// connected user's share of the shared budget.
pub(crate) struct Connections {
    /// Per uid: its connections, and its budget. A uid without
    /// connections keeps its entry while charges it made are held, so
    /// reconnecting cannot start it on a fresh budget.
    by_uid: Mutex<std::collections::HashMap<u32, (usize, Arc<Budget>)>>,
    /// Users with a connection now (a user's share divides by this).
    users: Arc<AtomicUsize>,
    shared: Arc<Budget>,
}

/// One admitted connection, counted until dropped (with its client).
pub(crate) struct Seat {
    connections: Arc<Connections>,
    uid: u32,
    /// Its user's share of the shared budget, which its client draws on.
    pub user: Arc<Budget>,
}

impl Connections {
    pub fn new() -> Arc<Connections> {
        Arc::new(Connections {
            by_uid: Mutex::default(),
            users: Arc::default(),
            shared: Budget::shared(),
        })
    }

    /// Admits one more connection from `uid`, or says why not.
    pub fn admit(self: &Arc<Self>, uid: u32) -> Result<Seat, String> {
        let mut by_uid = self.by_uid.lock().unwrap_or_else(|e| e.into_inner());
        let total: usize = by_uid.values().map(|(n, _)| n).sum();
        if total >= MAX_CLIENTS {
            return Err(format!(
                "{MAX_CLIENTS} clients are connected, the most the compositor serves"
            ));
        }
        // Users gone whose charges are all given back are forgotten.
        by_uid.retain(|_, (n, user)| *n > 0 || Arc::strong_count(user) > 1);
        let (n, user) = by_uid
            .entry(uid)
            .or_insert_with(|| (0, Budget::user(&self.shared, &self.users)));
        if *n >= MAX_CLIENTS_PER_UID {
            return Err(format!(
                "uid {uid} has {MAX_CLIENTS_PER_UID} connections, the most one user may hold"
            ));
        }
        *n += 1;
        let seat = Seat {
            connections: self.clone(),
            uid,
            user: user.clone(),
        };
        self.count_users(&by_uid);
        Ok(seat)
    }

    fn count_users(&self, by_uid: &std::collections::HashMap<u32, (usize, Arc<Budget>)>) {
        let n = by_uid.values().filter(|(n, _)| *n > 0).count();
        self.users.store(n, Ordering::SeqCst);
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut by_uid = self
            .connections
            .by_uid
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some((n, _)) = by_uid.get_mut(&self.uid) {
            *n = n.saturating_sub(1);
        }
        self.connections.count_users(&by_uid);
    }
}

/// Raises the process's soft fd limit to what the quotas may hold
/// ([`FDS_NEEDED`]), within the hard limit; says so if it cannot.
pub(crate) fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    let have = lim.current.unwrap_or(u64::MAX);
    if have >= FDS_NEEDED {
        return;
    }
    let want = lim.maximum.map_or(FDS_NEEDED, |max| max.min(FDS_NEEDED));
    lim.current = Some(want);
    if setrlimit(Resource::Nofile, lim).is_err() || want < FDS_NEEDED {
        eprintln!(
            "cockpit-wayland: the fd limit is {}, under the {FDS_NEEDED} the client quotas may hold: raise the hard limit (ulimit -Hn)",
            want.max(have)
        );
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
        Ok(display) => handle.post_error(display, NO_MEMORY, CString::new(message.replace('\0', " ")).unwrap_or_default()),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes handles for `budget` until refused; how many it got.
    fn fill(budget: &Arc<Budget>, held: &mut Vec<Charge>) -> usize {
        let mut n = 0;
        while let Ok(c) = Charge::take(budget, 1, 0) {
            held.push(c);
            n += 1;
        }
        n
    }

    #[test]
    fn greedy_users_leave_a_share_for_one_more() {
        let conns = Connections::new();
        let mut held = Vec::new();
        let mut seats = Vec::new();
        // Two users, each with as many clients as they may, each client
        // holding all it can.
        for uid in [1000, 1001] {
            for _ in 0..MAX_CLIENTS_PER_UID {
                let seat = conns.admit(uid).unwrap();
                fill(&Budget::client(&seat.user), &mut held);
                seats.push(seat);
            }
        }
        // A third user's client gets its reserve and more from the shared
        // budget: the first two could not spend it all.
        let seat = conns.admit(1002).unwrap();
        let got = fill(&Budget::client(&seat.user), &mut held);
        assert!(
            got > CLIENT_RESERVED_HANDLES,
            "the third user's client got only {got} handles"
        );
        // Everything taken is given back when dropped.
        drop(held);
        drop(seats);
        drop(seat);
        assert_eq!(*conns.shared.used.lock().unwrap(), Amount::default());
    }

    #[test]
    fn a_user_reconnecting_keeps_the_charges_it_left() {
        let conns = Connections::new();
        let seat = conns.admit(7).unwrap();
        let client = Budget::client(&seat.user);
        let mut held = Vec::new();
        fill(&client, &mut held);
        drop(seat);
        // Its pools outlive the connection for a moment: back again, it
        // finds its share as it left it, not a fresh one.
        let again = conns.admit(7).unwrap();
        assert!(Arc::ptr_eq(
            &again.user,
            &held[0].client.shared.clone().unwrap()
        ));
    }
}
