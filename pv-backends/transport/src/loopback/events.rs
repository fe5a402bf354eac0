//! Event channels: per-handle queues of fired ports.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use super::Hub;
use crate::{DomId, Error, EventChannel, Port, Result};

struct PortEntry {
    owner: Weak<Queue>,
    remote_dom: DomId,
    peer: Option<(DomId, Port)>,
}

#[derive(Default)]
pub(super) struct EvtTable {
    ports: HashMap<(DomId, Port), PortEntry>,
    next: HashMap<DomId, Port>,
}

impl EvtTable {
    fn alloc(&mut self, domid: DomId) -> Port {
        let next = self.next.entry(domid).or_insert(1);
        while self.ports.contains_key(&(domid, *next)) || *next == 0 {
            *next = next.wrapping_add(1);
        }
        let port = *next;
        *next = next.wrapping_add(1);
        port
    }
}

/// Raises the event at the peer of `(domid, port)`, whoever owns the
/// port: lets a test act as a frontend that shares its port with nobody.
pub(super) fn raise_peer_of(hub: &Hub, domid: DomId, port: Port) -> Result<()> {
    let t = hub.events.lock().unwrap();
    let peer = t
        .ports
        .get(&(domid, port))
        .ok_or(Error::BadPort(port))?
        .peer;
    if let Some((dom, p)) = peer {
        if let Some(q) = t.ports.get(&(dom, p)).and_then(|e| e.owner.upgrade()) {
            q.raise(p);
        }
    }
    Ok(())
}

#[derive(Default)]
struct QState {
    pending: VecDeque<Port>,
    /// Delivered and not yet unmasked.
    masked: HashSet<Port>,
    /// Raised while masked: delivered again on unmask.
    latched: HashSet<Port>,
}

#[derive(Default)]
struct Queue {
    state: Mutex<QState>,
    cv: Condvar,
}

impl Queue {
    fn raise(&self, port: Port) {
        let mut s = self.state.lock().unwrap();
        if s.masked.contains(&port) {
            s.latched.insert(port);
        } else {
            s.masked.insert(port);
            s.pending.push_back(port);
            self.cv.notify_all();
        }
    }
}

/// One event-channel handle (like one open `/dev/xen/evtchn`).
pub struct LoopEvtchn {
    hub: Arc<Hub>,
    domid: DomId,
    queue: Arc<Queue>,
}

impl LoopEvtchn {
    pub(super) fn new(hub: Arc<Hub>, domid: DomId) -> Self {
        Self {
            hub,
            domid,
            queue: Arc::default(),
        }
    }

    fn owns(&self, e: &PortEntry) -> bool {
        std::ptr::eq(e.owner.as_ptr(), Arc::as_ptr(&self.queue))
    }
}

impl EventChannel for LoopEvtchn {
    fn alloc_unbound(&self, remote: DomId) -> Result<Port> {
        let mut t = self.hub.events.lock().unwrap();
        let port = t.alloc(self.domid);
        t.ports.insert(
            (self.domid, port),
            PortEntry {
                owner: Arc::downgrade(&self.queue),
                remote_dom: remote,
                peer: None,
            },
        );
        Ok(port)
    }

    fn bind_interdomain(&self, remote: DomId, remote_port: Port) -> Result<Port> {
        let mut t = self.hub.events.lock().unwrap();
        match t.ports.get(&(remote, remote_port)) {
            Some(e) if e.peer.is_none() && e.remote_dom == self.domid => {}
            _ => return Err(Error::BadPort(remote_port)),
        }
        let port = t.alloc(self.domid);
        t.ports.insert(
            (self.domid, port),
            PortEntry {
                owner: Arc::downgrade(&self.queue),
                remote_dom: remote,
                peer: Some((remote, remote_port)),
            },
        );
        if let Some(e) = t.ports.get_mut(&(remote, remote_port)) {
            e.peer = Some((self.domid, port));
        }
        Ok(port)
    }

    fn unbind(&self, port: Port) -> Result<()> {
        let mut t = self.hub.events.lock().unwrap();
        match t.ports.get(&(self.domid, port)) {
            Some(e) if self.owns(e) => {}
            _ => return Err(Error::BadPort(port)),
        }
        if let Some(e) = t.ports.remove(&(self.domid, port)) {
            if let Some(peer) = e.peer.and_then(|p| t.ports.get_mut(&p)) {
                peer.peer = None;
            }
        }
        Ok(())
    }

    fn notify(&self, port: Port) -> Result<()> {
        let t = self.hub.events.lock().unwrap();
        let target = match t.ports.get(&(self.domid, port)) {
            Some(e) if self.owns(e) => e.peer,
            _ => return Err(Error::BadPort(port)),
        };
        // Notifying an unconnected port is not an error in Xen: it is lost.
        if let Some((dom, p)) = target {
            if let Some(q) = t.ports.get(&(dom, p)).and_then(|e| e.owner.upgrade()) {
                q.raise(p);
            }
        }
        Ok(())
    }

    fn wait(&self, timeout_ms: u32) -> Result<Option<Port>> {
        let deadline = Instant::now() + Duration::from_millis(timeout_ms.into());
        let mut s = self.queue.state.lock().unwrap();
        loop {
            if let Some(p) = s.pending.pop_front() {
                return Ok(Some(p));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            s = self.queue.cv.wait_timeout(s, deadline - now).unwrap().0;
        }
    }

    fn unmask(&self, port: Port) -> Result<()> {
        let mut s = self.queue.state.lock().unwrap();
        s.masked.remove(&port);
        if s.latched.remove(&port) {
            s.masked.insert(port);
            s.pending.push_back(port);
            self.queue.cv.notify_all();
        }
        Ok(())
    }
}

impl Drop for LoopEvtchn {
    fn drop(&mut self) {
        let Ok(mut t) = self.hub.events.lock() else {
            return;
        };
        let mine: Vec<_> = t
            .ports
            .iter()
            .filter(|(_, e)| self.owns(e))
            .map(|(k, _)| *k)
            .collect();
        for k in mine {
            if let Some(e) = t.ports.remove(&k) {
                if let Some(peer) = e.peer.and_then(|p| t.ports.get_mut(&p)) {
                    peer.peer = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Loopback;
    use crate::Error;

    #[test]
    fn bind_notify_mask() {
        let lb = Loopback::new();
        let (fe, be) = (lb.evtchn(1), lb.evtchn(0));
        let fp = fe.alloc_unbound(0).unwrap();
        assert!(
            lb.evtchn(2).bind_interdomain(1, fp).is_err(),
            "reserved for dom0"
        );
        let bp = be.bind_interdomain(1, fp).unwrap();
        assert!(be.bind_interdomain(1, fp).is_err(), "already bound");
        fe.notify(fp).unwrap();
        fe.notify(fp).unwrap();
        assert_eq!(be.wait(100).unwrap(), Some(bp));
        assert_eq!(be.wait(10).unwrap(), None, "masked until unmask");
        be.unmask(bp).unwrap();
        assert_eq!(be.wait(10).unwrap(), Some(bp), "latched while masked");
        be.unmask(bp).unwrap();
        be.notify(bp).unwrap();
        assert_eq!(fe.wait(100).unwrap(), Some(fp));
        assert_eq!(be.notify(bp + 100), Err(Error::BadPort(bp + 100)));
        drop(fe);
        be.notify(bp).unwrap(); // peer gone: lost, not an error
    }
}
