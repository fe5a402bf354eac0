//! The xenstore every Xen-enabled domain reaches through its ring page
//! (`bundle::XenPages::store_ipa`) and store event channel: the kernel's
//! half of `hv_core::xenstore`. A send on the store port moves the
//! domain's requests into the store and every reply and watch event back
//! into the rings, then raises the ports of the domains that got output.
//!
//! Why here, and not in a domain: see the crate's README ("xenstore").
//! The work of one kick is bounded (one ring of requests, one ring of
//! replies per domain) and done on the sender's pCPU, so a domain that
//! floods the store spends its own time.
//!
//! Lock order: the store, then a domain's Xen state (to raise its port).

use crate::console::{domlog, hvlog};
use crate::domain::{system, Domain, Lock};
use core::sync::atomic::{fence, Ordering};
use hv_core::xenstore::Store;
use xen_abi::io::xs_wire::{page, XENSTORE_RING_SIZE};

static STORE: Lock<Store> = Lock::new(Store::new());

/// The ring's error values (`xenstore-ring.txt`).
const ERROR_RING_INDEX: u32 = 2;
const ERROR_PROTOCOL: u32 = 3;

/// Opens `dom`'s connection afresh and writes its seed (boot and every
/// restart, before it runs; its ring page is zeroed by then or by the
/// scrub that follows). Peers whose watches fired hear of it.
pub fn start(dom: &Domain, self_cpu: usize) {
    if dom.desc.xen().is_none() {
        return;
    }
    let mut s = STORE.lock();
    s.connect(dom.index(), dom.vmid, dom.desc.xenstore);
    let (failed, fired) = s.apply_seed(dom.desc.xenstore_seed);
    flush_all(&mut s, fired, self_cpu);
    drop(s);
    if failed > 0 {
        domlog!(dom, life_log, "{}: {} xenstore node(s) of its description did not fit in the store", dom.name(), failed);
    }
}

/// `dom` is gone for good: its connection closes (its nodes stay, as a
/// toolstack would leave them until it cleans up; there is none).
pub fn stop(dom: &Domain) {
    STORE.lock().disconnect(dom.index());
}

fn flush_all(s: &mut Store, mask: u32, self_cpu: usize) {
    for c in 0..hv_core::xenstore::MAX_CONNS {
        if mask & 1 << c != 0 {
            flush(s, c, self_cpu);
        }
    }
}

/// The domain's ring page, as an offset into its RAM.
fn ring(dom: &Domain) -> Option<(crate::arch::memory::DomainRam, u64)> {
    let ram = dom.ram?;
    let x = dom.desc.xen()?;
    Some((ram, x.store_ipa - dom.desc.ram_ipa))
}

fn index(ram: &crate::arch::memory::DomainRam, at: u64) -> Option<&'static core::sync::atomic::AtomicU32> {
    ram.word32(at)
}

/// The bound on one kick's rounds: what the store's input buffer and the
/// ring can hold together, at one 16-byte header per request.
const MAX_ROUNDS: usize = (XENSTORE_RING_SIZE + 4096 + 16) / 16;

/// `dom` sent on its store port: serve its requests, deliver all output.
/// One request per hold of the store's lock, so another domain's request
/// waits for at most one of this one's.
pub fn kick(dom: &Domain, self_cpu: usize) {
    for _ in 0..MAX_ROUNDS {
        let mut s = STORE.lock();
        if !take_requests(&mut s, dom, self_cpu) {
            break;
        }
    }
}

/// One round: replies it had no room for go out (it may have made room),
/// the bytes in its request ring come in as far as the store takes them,
/// and one request is served. Whether more may wait (in the store's
/// buffer or still in the ring).
fn take_requests(s: &mut Store, dom: &Domain, self_cpu: usize) -> bool {
    let Some((ram, at)) = ring(dom) else { return false };
    let conn = dom.index();
    flush(s, conn, self_cpu);
    let (Some(cons_w), Some(prod_w)) = (index(&ram, at + page::REQ_CONS as u64), index(&ram, at + page::REQ_PROD as u64)) else { return false };
    let cons = cons_w.load(Ordering::Acquire);
    let prod = prod_w.load(Ordering::Acquire);
    let avail = prod.wrapping_sub(cons) as usize;
    if avail > XENSTORE_RING_SIZE {
        broken(s, dom, ERROR_RING_INDEX);
        return false;
    }
    let n = avail.min(s.input_room(conn));
    let mut buf = [0u8; XENSTORE_RING_SIZE];
    // Read the bytes after the index that published them.
    fence(Ordering::Acquire);
    for (i, b) in buf.iter_mut().enumerate().take(n) {
        let off = (cons as usize + i) % XENSTORE_RING_SIZE;
        let mut one = [0u8];
        ram.read(at + (page::REQ + off) as u64, &mut one);
        *b = one[0];
    }
    fence(Ordering::Release);
    cons_w.store(cons.wrapping_add(n as u32), Ordering::Release);
    let waiting = serve_one(s, dom, &buf[..n], self_cpu);
    // More in the ring helps only if the store can take it now (not a
    // disconnected ring, not one backpressured by its own replies).
    waiting || (n < avail && s.input_room(conn) > 0)
}

/// Feeds `bytes` and serves at most one request, then delivers what it
/// produced. Whether another request waits.
fn serve_one(s: &mut Store, dom: &Domain, bytes: &[u8], self_cpu: usize) -> bool {
    let conn = dom.index();
    match s.feed(conn, bytes, 1) {
        Ok(woke) => flush_all(s, woke | 1 << conn, self_cpu),
        Err(_) => {
            broken(s, dom, ERROR_PROTOCOL);
            return false;
        }
    }
    s.has_request(conn)
}

/// A domain broke the ring protocol: its ring says so and it is served
/// no more until it restarts (Xen's xenstored drops such a connection).
fn broken(s: &mut Store, dom: &Domain, why: u32) {
    s.disconnect(dom.index());
    if let Some((ram, at)) = ring(dom) {
        if let Some(w) = index(&ram, at + page::ERROR as u64) {
            w.store(why, Ordering::Release);
        }
    }
    if !dom.store_break_logged.swap(true, Ordering::AcqRel) {
        hvlog!("{}: broke the xenstore ring protocol (error {}): disconnected until it restarts (reported once)", dom.name(), why);
    }
}

/// Moves connection `c`'s pending output into its response ring and
/// raises its store port if anything moved.
fn flush(s: &mut Store, c: usize, self_cpu: usize) {
    if s.pending_output(c) == 0 {
        return;
    }
    let Some(dom) = system().domains.get(c) else { return };
    // A domain that does not run (preserved, restarting) is not written:
    // its output waits, and a restart drops it.
    if dom.state.load(Ordering::Acquire) != crate::domain::DOM_RUNNING {
        return;
    }
    let Some((ram, at)) = ring(dom) else { return };
    let (Some(cons_w), Some(prod_w)) = (index(&ram, at + page::RSP_CONS as u64), index(&ram, at + page::RSP_PROD as u64)) else { return };
    let cons = cons_w.load(Ordering::Acquire);
    let prod = prod_w.load(Ordering::Acquire);
    let used = prod.wrapping_sub(cons) as usize;
    if used > XENSTORE_RING_SIZE {
        return broken(s, dom, ERROR_RING_INDEX);
    }
    let mut buf = [0u8; XENSTORE_RING_SIZE];
    let n = s.output(c, &mut buf[..XENSTORE_RING_SIZE - used]);
    if n == 0 {
        return;
    }
    for (i, b) in buf.iter().enumerate().take(n) {
        let off = (prod as usize + i) % XENSTORE_RING_SIZE;
        ram.write(at + (page::RSP + off) as u64, &[*b]);
    }
    // The bytes before the index that publishes them.
    fence(Ordering::Release);
    prod_w.store(prod.wrapping_add(n as u32), Ordering::Release);
    let dropped = s.take_dropped(c);
    if dropped > 0 {
        domlog!(dom, life_log, "{}: {} xenstore watch event(s) dropped: its ring was full", dom.name(), dropped);
    }
    crate::xen::raise_store(dom, self_cpu);
}
