//! Event channels as Xen's guest ABI defines them (`event_channel.h`, the
//! 2-level ABI), without the hardware: each domain's port table, the
//! binding of two domains' ports, and the pending/mask/selector dance in
//! the guest's shared_info page. The kernel locks the tables (two at a
//! time in domain order), reaches the shared_info page through
//! [`EventWords`] and injects the upcall interrupt when told to.
//!
//! Every port number, domain id, vCPU and VIRQ comes from a guest: all are
//! checked here and a bad one gets Xen's errno. Each domain has a quota of
//! ports, fixed at boot, so the table never grows.

use xen_abi::hypercall::{EEXIST, EINVAL, ENOSPC, EPERM};

pub type DomId = u16;
pub use xen_abi::hypercall::DOMID_SELF;
/// Ports the 2-level ABI can address: 64 words of 64 bits.
pub const MAX_PORTS: usize = 4096;
/// VIRQs a guest may bind (Xen's NR_VIRQS).
pub const NR_VIRQS: u32 = 24;

/// What a port is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    Free,
    /// Allocated for `remote` to bind to (EVTCHNOP_alloc_unbound).
    Unbound { remote: DomId },
    /// Connected to `port` of domain `remote`.
    Interdomain { remote: DomId, port: u32 },
    /// Raised by the hypervisor for `virq` on the port's vCPU.
    Virq { virq: u32 },
    /// The domain's line to the xenstore the hypervisor keeps: a send
    /// on it hands the ring to the store, which raises it to answer.
    Store,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    binding: Binding,
    /// vCPU notified when the port is raised (EVTCHNOP_bind_vcpu).
    vcpu: u8,
}

const FREE: Slot = Slot { binding: Binding::Free, vcpu: 0 };

/// A failed operation, as the errno Xen answers it with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i64);

/// One domain's ports: at most `quota` of `N` in use, port 0 never handed
/// out (Xen reserves it, and Linux takes 0 for "none").
pub struct Ports<const N: usize> {
    slots: [Slot; N],
    quota: usize,
    used: usize,
    nvcpus: u8,
}

impl<const N: usize> Ports<N> {
    pub const fn new(quota: usize, nvcpus: u8) -> Self {
        Ports { slots: [FREE; N], quota, used: 0, nvcpus }
    }

    fn slot(&self, port: u32) -> Option<&Slot> {
        self.slots.get(port as usize).filter(|_| port != 0)
    }

    /// Frees every port and takes new limits (a domain's boot or restart;
    /// its interdomain ports must have been closed with `close` first, so
    /// no peer keeps a binding to a port that no longer exists).
    pub fn reset(&mut self, quota: usize, nvcpus: u8) {
        // In place: the table is too big to build on an EL2 stack.
        self.slots.fill(FREE);
        self.quota = quota.min(N.saturating_sub(1));
        self.used = 0;
        self.nvcpus = nvcpus;
    }

    /// The first port at or above `from` that is bound to another domain.
    pub fn next_interdomain(&self, from: u32) -> Option<u32> {
        (from.max(1) as usize..N).find(|&p| matches!(self.slots[p].binding, Binding::Interdomain { .. })).map(|p| p as u32)
    }

    /// What `port` is bound to (`Free` for any port outside the table).
    pub fn binding(&self, port: u32) -> Binding {
        self.slot(port).map_or(Binding::Free, |s| s.binding)
    }

    /// The vCPU `port` notifies.
    pub fn vcpu(&self, port: u32) -> u8 {
        self.slot(port).map_or(0, |s| s.vcpu)
    }

    pub fn used(&self) -> usize {
        self.used
    }

    fn alloc(&mut self, binding: Binding, vcpu: u8) -> Result<u32, Errno> {
        if self.used >= self.quota {
            return Err(Errno(-ENOSPC));
        }
        let port = (1..N).find(|&p| self.slots[p].binding == Binding::Free).ok_or(Errno(-ENOSPC))?;
        self.slots[port] = Slot { binding, vcpu };
        self.used += 1;
        Ok(port as u32)
    }

    /// EVTCHNOP_alloc_unbound: a port for `remote` to bind to.
    pub fn alloc_unbound(&mut self, remote: DomId) -> Result<u32, Errno> {
        self.alloc(Binding::Unbound { remote }, 0)
    }

    /// The store's port, allocated at boot (`HVM_PARAM_STORE_EVTCHN`).
    pub fn bind_store(&mut self) -> Result<u32, Errno> {
        self.alloc(Binding::Store, 0)
    }

    /// The port bound to the store, if the domain has not closed it.
    pub fn store_port(&self) -> Option<u32> {
        (1..N).find(|&p| self.slots[p].binding == Binding::Store).map(|p| p as u32)
    }

    /// EVTCHNOP_bind_virq: one port per VIRQ and vCPU.
    pub fn bind_virq(&mut self, virq: u32, vcpu: u32) -> Result<u32, Errno> {
        if virq >= NR_VIRQS || vcpu >= u32::from(self.nvcpus) {
            return Err(Errno(-EINVAL));
        }
        let taken = self.slots.iter().any(|s| s.binding == Binding::Virq { virq } && u32::from(s.vcpu) == vcpu);
        if taken {
            return Err(Errno(-EEXIST));
        }
        self.alloc(Binding::Virq { virq }, vcpu as u8)
    }

    /// The port bound to `virq` on `vcpu`, if any (to raise it).
    pub fn virq_port(&self, virq: u32, vcpu: u32) -> Option<u32> {
        (1..N).find(|&p| self.slots[p].binding == Binding::Virq { virq } && u32::from(self.slots[p].vcpu) == vcpu).map(|p| p as u32)
    }

    /// EVTCHNOP_bind_vcpu: notify `vcpu` from now on. Interdomain and
    /// unbound ports only (a VIRQ stays on the vCPU it was bound for).
    pub fn bind_vcpu(&mut self, port: u32, vcpu: u32) -> Result<(), Errno> {
        if vcpu >= u32::from(self.nvcpus) {
            return Err(Errno(-EINVAL));
        }
        let Some(s) = self.slots.get_mut(port as usize).filter(|_| port != 0) else { return Err(Errno(-EINVAL)) };
        match s.binding {
            Binding::Interdomain { .. } | Binding::Unbound { .. } => {
                s.vcpu = vcpu as u8;
                Ok(())
            }
            Binding::Virq { .. } | Binding::Store | Binding::Free => Err(Errno(-EINVAL)),
        }
    }

    /// Frees `port`; returns what it was bound to (the caller then
    /// `unbind_peer`s an interdomain one).
    fn free(&mut self, port: u32) -> Result<Binding, Errno> {
        let Some(s) = self.slots.get_mut(port as usize).filter(|_| port != 0) else { return Err(Errno(-EINVAL)) };
        let old = s.binding;
        if old == Binding::Free {
            return Err(Errno(-EINVAL));
        }
        *s = FREE;
        self.used -= 1;
        Ok(old)
    }
}

/// EVTCHNOP_bind_interdomain: `local_dom` binds a new port to `remote_port`
/// of `remote_dom`, which must be unbound for `local_dom`. The caller holds
/// both tables (locked lower domain id first). Returns the local port.
pub fn bind_interdomain<const N: usize>(
    local: &mut Ports<N>,
    local_dom: DomId,
    remote: &mut Ports<N>,
    remote_dom: DomId,
    remote_port: u32,
) -> Result<u32, Errno> {
    if local_dom == remote_dom {
        // Loopback within a domain needs both ports in one table: not offered.
        return Err(Errno(-EINVAL));
    }
    if remote.binding(remote_port) != (Binding::Unbound { remote: local_dom }) {
        return Err(Errno(-EINVAL));
    }
    let port = local.alloc(Binding::Interdomain { remote: remote_dom, port: remote_port }, 0)?;
    remote.slots[remote_port as usize].binding = Binding::Interdomain { remote: local_dom, port };
    Ok(port)
}

/// EVTCHNOP_close of `port` by `local_dom`. An interdomain port's peer goes
/// back to unbound, for `local_dom` (as Xen does), so the peer can wait for
/// a new binding; `peer` must be that domain's table when the port is
/// interdomain (see `peer_of`).
pub fn close<const N: usize>(local: &mut Ports<N>, local_dom: DomId, port: u32, peer: Option<&mut Ports<N>>) -> Result<(), Errno> {
    let expected = peer_of(local, port);
    if expected.is_some() != peer.is_some() {
        return Err(Errno(-EPERM));
    }
    let old = local.free(port)?;
    if let (Binding::Interdomain { port: rp, .. }, Some(peer)) = (old, peer) {
        if let Some(s) = peer.slots.get_mut(rp as usize) {
            if s.binding == (Binding::Interdomain { remote: local_dom, port }) {
                s.binding = Binding::Unbound { remote: local_dom };
            }
        }
    }
    Ok(())
}

/// The domain whose table `close` needs for `port`, if any.
pub fn peer_of<const N: usize>(local: &Ports<N>, port: u32) -> Option<DomId> {
    match local.binding(port) {
        Binding::Interdomain { remote, .. } => Some(remote),
        _ => None,
    }
}

/// Where EVTCHNOP_send on `port` raises an event: (domain, port). Only a
/// bound interdomain port sends; anything else is EINVAL.
pub fn send_target<const N: usize>(local: &Ports<N>, port: u32) -> Result<(DomId, u32), Errno> {
    match local.binding(port) {
        Binding::Interdomain { remote, port } => Ok((remote, port)),
        _ => Err(Errno(-EINVAL)),
    }
}

/// The 2-level ABI's words in a domain's shared_info page (and its vCPUs'
/// vcpu_info), which the guest updates concurrently: every method is one
/// atomic operation on guest memory.
pub trait EventWords {
    /// Sets pending bit `port`; returns whether it was set already.
    fn test_and_set_pending(&mut self, port: u32) -> bool;
    fn is_pending(&self, port: u32) -> bool;
    fn is_masked(&self, port: u32) -> bool;
    /// Clears mask bit `port`; returns whether it was set.
    fn test_and_clear_mask(&mut self, port: u32) -> bool;
    /// Sets bit `word` of `vcpu`'s pending selector; returns whether it was set.
    fn test_and_set_selector(&mut self, vcpu: u8, word: u32) -> bool;
    /// Sets `vcpu`'s upcall_pending; returns whether it was set.
    fn test_and_set_upcall(&mut self, vcpu: u8) -> bool;
}

/// Raises `port` for `vcpu`: pending, then (if unmasked) the selector bit
/// and upcall_pending. Returns whether the upcall interrupt must be
/// injected (upcall_pending went from 0 to 1).
pub fn raise(words: &mut impl EventWords, port: u32, vcpu: u8) -> bool {
    if port as usize >= MAX_PORTS || words.test_and_set_pending(port) || words.is_masked(port) {
        return false;
    }
    !words.test_and_set_selector(vcpu, port / 64) && !words.test_and_set_upcall(vcpu)
}

/// EVTCHNOP_unmask: a port unmasked while pending is delivered now.
/// Returns whether the upcall interrupt must be injected.
pub fn unmask(words: &mut impl EventWords, port: u32, vcpu: u8) -> bool {
    if port as usize >= MAX_PORTS || !words.test_and_clear_mask(port) || !words.is_pending(port) {
        return false;
    }
    !words.test_and_set_selector(vcpu, port / 64) && !words.test_and_set_upcall(vcpu)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const N: usize = 64;

    #[test]
    fn a_frontend_and_backend_bind_send_and_close() {
        let (mut fe, mut be) = (Ports::<N>::new(8, 1), Ports::<N>::new(8, 2));
        let unbound = fe.alloc_unbound(0).unwrap();
        assert_eq!(unbound, 1, "port 0 is never handed out");
        // Only the domain it was allocated for may bind it.
        assert_eq!(bind_interdomain(&mut be, 5, &mut fe, 1, unbound), Err(Errno(-EINVAL)));
        let bp = bind_interdomain(&mut be, 0, &mut fe, 1, unbound).unwrap();
        assert_eq!(send_target(&be, bp), Ok((1, unbound)));
        assert_eq!(send_target(&fe, unbound), Ok((0, bp)));
        // Binding it twice fails: it is no longer unbound.
        assert_eq!(bind_interdomain(&mut be, 0, &mut fe, 1, unbound), Err(Errno(-EINVAL)));
        close(&mut be, 0, bp, Some(&mut fe)).unwrap();
        assert_eq!(fe.binding(unbound), Binding::Unbound { remote: 0 });
        assert_eq!(send_target(&fe, unbound), Err(Errno(-EINVAL)));
        assert_eq!(be.used(), 0);
    }

    #[test]
    fn quotas_virqs_and_wild_arguments() {
        let mut p = Ports::<N>::new(2, 1);
        assert!(p.alloc_unbound(0).is_ok());
        assert_eq!(p.bind_virq(0, 0), Ok(2));
        assert_eq!(p.alloc_unbound(0), Err(Errno(-ENOSPC)), "quota of 2");
        let mut p = Ports::<N>::new(8, 1);
        p.bind_virq(0, 0).unwrap();
        assert_eq!(p.bind_virq(0, 0), Err(Errno(-EEXIST)));
        assert_eq!(p.virq_port(0, 0), Some(1));
        assert_eq!(p.virq_port(1, 0), None);
        assert_eq!(p.bind_virq(NR_VIRQS, 0), Err(Errno(-EINVAL)));
        assert_eq!(p.bind_virq(1, 1), Err(Errno(-EINVAL)), "no vCPU 1");
        for port in [0, N as u32, u32::MAX] {
            assert_eq!(p.binding(port), Binding::Free);
            assert_eq!(close(&mut p, 0, port, None), Err(Errno(-EINVAL)));
            assert_eq!(send_target(&p, port), Err(Errno(-EINVAL)));
            assert_eq!(p.bind_vcpu(port, 0), Err(Errno(-EINVAL)));
        }
    }

    /// shared_info's words, as a test harness (plain memory, no guest).
    struct Words {
        pending: [u64; 64],
        mask: [u64; 64],
        sel: [u64; 2],
        upcall: [bool; 2],
    }

    impl Default for Words {
        fn default() -> Self {
            Words { pending: [0; 64], mask: [0; 64], sel: [0; 2], upcall: [false; 2] }
        }
    }

    impl EventWords for Words {
        fn test_and_set_pending(&mut self, port: u32) -> bool {
            let w = &mut self.pending[port as usize / 64];
            let was = *w & 1 << (port % 64) != 0;
            *w |= 1 << (port % 64);
            was
        }
        fn is_pending(&self, port: u32) -> bool {
            self.pending[port as usize / 64] & 1 << (port % 64) != 0
        }
        fn is_masked(&self, port: u32) -> bool {
            self.mask[port as usize / 64] & 1 << (port % 64) != 0
        }
        fn test_and_clear_mask(&mut self, port: u32) -> bool {
            let was = self.is_masked(port);
            self.mask[port as usize / 64] &= !(1 << (port % 64));
            was
        }
        fn test_and_set_selector(&mut self, vcpu: u8, word: u32) -> bool {
            let was = self.sel[vcpu as usize] & 1 << word != 0;
            self.sel[vcpu as usize] |= 1 << word;
            was
        }
        fn test_and_set_upcall(&mut self, vcpu: u8) -> bool {
            std::mem::replace(&mut self.upcall[vcpu as usize], true)
        }
    }

    #[test]
    fn an_upcall_once_per_batch_and_a_masked_port_delivered_on_unmask() {
        let mut w = Words::default();
        assert!(raise(&mut w, 3, 0), "first event: upcall");
        assert!(!raise(&mut w, 70, 0), "upcall already pending: no second interrupt");
        assert_eq!(w.sel[0], 0b11);
        w.mask[0] |= 1 << 5;
        w.upcall[0] = false;
        w.sel[0] = 0;
        assert!(!raise(&mut w, 5, 0), "masked: pending only");
        assert!(w.is_pending(5) && w.sel[0] == 0);
        assert!(unmask(&mut w, 5, 0), "unmasked while pending: delivered");
        assert!(!unmask(&mut w, 5, 0), "not masked any more");
        assert!(!raise(&mut w, MAX_PORTS as u32, 0));
    }

    #[derive(Clone, Debug)]
    enum Op {
        AllocUnbound { dom: usize, remote: usize },
        Bind { dom: usize, remote: usize, port: u32 },
        Virq { dom: usize, virq: u32 },
        Close { dom: usize, port: u32 },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..3usize, 0..4usize).prop_map(|(dom, remote)| Op::AllocUnbound { dom, remote }),
            (0..3usize, 0..3usize, 0..(N as u32 + 2)).prop_map(|(dom, remote, port)| Op::Bind { dom, remote, port }),
            (0..3usize, 0..NR_VIRQS + 2).prop_map(|(dom, virq)| Op::Virq { dom, virq }),
            (0..3usize, 0..(N as u32 + 2)).prop_map(|(dom, port)| Op::Close { dom, port }),
        ]
    }

    /// Two distinct tables of `t`, mutably.
    fn two(t: &mut [Ports<N>], a: usize, b: usize) -> (&mut Ports<N>, &mut Ports<N>) {
        assert_ne!(a, b);
        if a < b {
            let (x, y) = t.split_at_mut(b);
            (&mut x[a], &mut y[0])
        } else {
            let (x, y) = t.split_at_mut(a);
            (&mut y[0], &mut x[b])
        }
    }

    proptest! {
        /// Any sequence of operations by three domains keeps the tables
        /// consistent: interdomain bindings are symmetric, quotas hold and
        /// port 0 is never used.
        #[test]
        fn random_operations_keep_bindings_symmetric(ops in prop::collection::vec(op(), 1..200)) {
            let mut t = [Ports::<N>::new(10, 1), Ports::<N>::new(10, 1), Ports::<N>::new(10, 1)];
            for op in ops {
                match op {
                    Op::AllocUnbound { dom, remote } => { let _ = t[dom].alloc_unbound(remote as DomId); }
                    Op::Bind { dom, remote, port } if dom != remote => {
                        let (l, r) = two(&mut t, dom, remote);
                        let before = r.binding(port);
                        match bind_interdomain(l, dom as DomId, r, remote as DomId, port) {
                            Ok(lp) => prop_assert_eq!(before, Binding::Unbound { remote: dom as DomId }, "bound {}", lp),
                            Err(Errno(e)) if e == -ENOSPC => prop_assert_eq!(l.used(), 10, "ENOSPC below the quota"),
                            Err(_) => prop_assert_ne!(before, Binding::Unbound { remote: dom as DomId }),
                        }
                    }
                    Op::Bind { .. } => {}
                    Op::Virq { dom, virq } => { let _ = t[dom].bind_virq(virq, 0); }
                    Op::Close { dom, port } => match peer_of(&t[dom], port) {
                        Some(p) if p as usize != dom && (p as usize) < 3 => {
                            let (l, r) = two(&mut t, dom, p as usize);
                            close(l, dom as DomId, port, Some(r)).unwrap();
                        }
                        Some(_) => {}
                        None => { let _ = close(&mut t[dom], dom as DomId, port, None); }
                    },
                }
                for (d, table) in t.iter().enumerate() {
                    prop_assert!(table.used() <= 10);
                    prop_assert_eq!(table.binding(0), Binding::Free);
                    for p in 1..N as u32 {
                        if let Binding::Interdomain { remote, port } = table.binding(p) {
                            prop_assert_eq!(t[remote as usize].binding(port), Binding::Interdomain { remote: d as DomId, port: p });
                        }
                    }
                }
            }
        }
    }
}
