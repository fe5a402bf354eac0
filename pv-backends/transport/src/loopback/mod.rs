//! In-process loopback transport: a **test harness**, not a hypervisor.
//!
//! Every "domain" lives in this process. Granted pages are heap pages of
//! atomic words that both ends reach through [`Shm`]; event channels are
//! queues with a condition variable; xenstore is a map with watches. The
//! harness keeps Xen's observable rules where tests depend on them:
//! a grant maps only for the domain it was granted to, a watch fires once
//! when set, a fired port stays masked until unmasked, and pages stay
//! valid for a mapper after the granter revokes them.
//!
//! It is what the end-to-end tests and the desktop simulator run on; it
//! offers no isolation and no permissions.

mod events;
mod mem;
mod store;

use std::sync::{Arc, Mutex};

use crate::{DomId, Endpoint, EventChannel, GrantMapper, GrantTable, Platform, Result, Xenstore};

pub use events::LoopEvtchn;
pub use mem::{LoopMemory, Page};
pub use store::LoopXenstore;

/// The shared state of one simulated machine.
#[derive(Clone, Default)]
pub struct Loopback {
    hub: Arc<Hub>,
}

#[derive(Default)]
struct Hub {
    store: Mutex<store::Store>,
    events: Mutex<events::EvtTable>,
    grants: Mutex<mem::GrantTableState>,
}

impl Loopback {
    /// An empty machine: no xenstore nodes, ports or grants. Clones share
    /// it.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new xenstore connection acting for `domid`.
    pub fn xenstore(&self, domid: DomId) -> Box<dyn Xenstore> {
        Box::new(LoopXenstore::new(self.hub.clone(), domid))
    }

    /// A new event-channel handle for `domid`.
    pub fn evtchn(&self, domid: DomId) -> Box<dyn EventChannel> {
        Box::new(LoopEvtchn::new(self.hub.clone(), domid))
    }

    /// The grant table of `domid` (sharing and mapping).
    pub fn grants(&self, domid: DomId) -> Arc<LoopGrants> {
        Arc::new(LoopGrants {
            hub: self.hub.clone(),
            domid,
        })
    }

    /// A [`Platform`] acting as `domid`.
    pub fn platform(&self, domid: DomId) -> LoopPlatform {
        LoopPlatform {
            lb: self.clone(),
            domid,
        }
    }

    /// Notifies the other end of `domid`'s `port` as if `domid` had, for
    /// tests that play a hostile frontend next to a real one.
    pub fn notify_from(&self, domid: DomId, port: crate::Port) -> Result<()> {
        events::raise_peer_of(&self.hub, domid, port)
    }

    /// Number of live grants, for tests that check buffers are released.
    pub fn live_grants(&self) -> usize {
        self.hub.grants.lock().unwrap().len()
    }

    /// Every node and value, sorted, for debugging a test.
    pub fn dump_store(&self) -> Vec<(String, Vec<u8>)> {
        self.hub.store.lock().unwrap().dump()
    }
}

/// Grant sharing and mapping for one domain.
pub struct LoopGrants {
    hub: Arc<Hub>,
    domid: DomId,
}

impl GrantTable for LoopGrants {
    fn share(&self, remote: DomId, pages: usize, readonly: bool) -> Result<crate::Shm> {
        mem::share(&self.hub, self.domid, remote, pages, readonly)
    }
}

impl GrantMapper for LoopGrants {
    fn map(&self, remote: DomId, refs: &[u32], writable: bool) -> Result<crate::Shm> {
        mem::map(&self.hub, self.domid, remote, refs, writable)
    }
}

/// The loopback has no guest frames: a "frame number" is the grant
/// reference of a page the guest shared with anyone, mapped with the
/// privilege a foreign mapping has (the grantee is not checked).
impl crate::ForeignMapper for LoopGrants {
    fn map_frames(&self, remote: DomId, frames: &[u64], writable: bool) -> Result<crate::Shm> {
        mem::map_foreign(&self.hub, remote, frames, writable)
    }
}

/// A loopback domain as a [`Platform`].
#[derive(Clone)]
pub struct LoopPlatform {
    lb: Loopback,
    domid: DomId,
}

impl LoopPlatform {
    /// The machine this platform's domain lives on, to create other
    /// domains' handles or inspect it from a test.
    pub fn loopback(&self) -> &Loopback {
        &self.lb
    }
}

impl Platform for LoopPlatform {
    fn domid(&self) -> DomId {
        self.domid
    }

    fn open(&self) -> Result<Endpoint> {
        let grants = self.lb.grants(self.domid);
        Ok(Endpoint {
            domid: self.domid,
            store: self.lb.xenstore(self.domid),
            events: self.lb.evtchn(self.domid),
            grants: grants.clone(),
            mapper: grants.clone(),
            foreign: grants,
        })
    }
}
