//! xenstore without a toolstack: the store every domain reaches through
//! its ring page and event channel, kept by the hypervisor (the kernel
//! copies bytes between the rings and [`Store::feed`]/[`Store::output`]).
//!
//! Paths follow Xen's conventions (`/local/domain/N/...`, relative paths
//! under the caller's home), with permissions (an owner, a default for
//! everyone else and up to [`MAX_ACL`] per-domain entries), watches,
//! transactions and per-domain quotas. Everything is fixed-size: nodes,
//! watches, transactions and each domain's input and output buffers; a
//! request that would exceed a limit gets Xen's error name and changes
//! nothing. Every byte comes from a guest and is checked here.
//!
//! Transactions are optimistic: a transaction's writes go to its own log,
//! its reads see the log over the store and are logged too, and its commit
//! fails with EAGAIN if a change since it began touched a path it read or
//! wrote (the client retries, as every xenstore client must). Changes
//! elsewhere never make a transaction fail, so no domain can livelock
//! another's by writing its own nodes.

use crate::evtchn::DomId;
use xen_abi::io::xs_wire::{XsHeader, XENSTORE_PAYLOAD_MAX};

/// Nodes in the whole store. The description's per-domain quotas must fit
/// in it (checked at build time), so a quota is a reservation.
pub const MAX_NODES: usize = 1024;
/// Nodes the hypervisor keeps for itself (the tree's upper levels, its
/// own nodes in domains' homes): not part of any domain's quota.
pub const HV_NODES: usize = 64;
/// Longest absolute path (Xen allows 3072; device paths need under 80).
pub const PATH_MAX: usize = 128;
/// Longest value (Xen allows 4096; device nodes hold numbers and short lists).
pub const VALUE_MAX: usize = 256;
/// Per-domain entries in a node's access list.
pub const MAX_ACL: usize = 4;
/// Watches in the whole store.
pub const MAX_WATCHES: usize = 64;
/// Longest watch token (Linux uses a pointer in hex).
pub const TOKEN_MAX: usize = 64;
/// Open transactions in the whole store.
pub const MAX_TX: usize = 8;
/// Bytes of a transaction's log (its writes, paths and values included).
pub const TX_LOG: usize = 4096;
/// Domains (connections) the store serves, by index.
pub const MAX_CONNS: usize = crate::bundle::MAX_DOMAINS;
/// Bytes waiting to reach a domain's response ring: one largest reply and
/// room for watch events.
pub const OUT_BUF: usize = 2 * (XsHeader::SIZE + XENSTORE_PAYLOAD_MAX);
const IN_BUF: usize = XsHeader::SIZE + XENSTORE_PAYLOAD_MAX;

/// The hypervisor itself, which populates the store at boot: it may do
/// anything; no guest ever has its id.
pub const DOMID_HV: DomId = 0x7ff5;

const READ: u8 = 1;
const WRITE: u8 = 2;

/// Per-domain limits, from the system description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    pub nodes: u16,
    pub watches: u8,
    pub transactions: u8,
}

impl Quota {
    pub const DEFAULT: Quota = Quota { nodes: 128, watches: 16, transactions: 2 };
}

#[derive(Clone, Copy)]
struct Perms {
    owner: DomId,
    /// What every domain not listed gets.
    others: u8,
    acl: [(DomId, u8); MAX_ACL],
    nacl: u8,
}

impl Perms {
    const fn owned(owner: DomId) -> Self {
        Perms { owner, others: 0, acl: [(0, 0); MAX_ACL], nacl: 0 }
    }
    /// Gives `dom` `bits` (in place of an entry it had; dropped when the
    /// list is full: the owner is never left out by `apply_write`, as the
    /// owner of a new node is its creator).
    fn grant(&mut self, dom: DomId, bits: u8) {
        let n = self.nacl as usize;
        if let Some(e) = self.acl[..n].iter_mut().find(|e| e.0 == dom) {
            e.1 = bits;
        } else if n < MAX_ACL {
            self.acl[n] = (dom, bits);
            self.nacl += 1;
        }
    }

    fn of(&self, dom: DomId) -> u8 {
        if dom == self.owner || dom == DOMID_HV {
            return READ | WRITE;
        }
        self.acl[..self.nacl as usize].iter().find(|e| e.0 == dom).map_or(self.others, |e| e.1)
    }
}

#[derive(Clone, Copy)]
struct Node {
    used: bool,
    path: [u8; PATH_MAX],
    path_len: u8,
    value: [u8; VALUE_MAX],
    value_len: u16,
    perms: Perms,
}

// All-zero, like every empty entry here: the kernel's static store then
// lives in .bss and costs the image nothing.
const EMPTY_NODE: Node = Node { used: false, path: [0; PATH_MAX], path_len: 0, value: [0; VALUE_MAX], value_len: 0, perms: Perms::owned(0) };

impl Node {
    fn path(&self) -> &[u8] {
        &self.path[..self.path_len as usize]
    }
    fn value(&self) -> &[u8] {
        &self.value[..self.value_len as usize]
    }
}

#[derive(Clone, Copy)]
struct Watch {
    used: bool,
    conn: u8,
    path: [u8; PATH_MAX],
    path_len: u8,
    token: [u8; TOKEN_MAX],
    token_len: u8,
}

const EMPTY_WATCH: Watch = Watch { used: false, conn: 0, path: [0; PATH_MAX], path_len: 0, token: [0; TOKEN_MAX], token_len: 0 };

/// One open transaction: its id, owner, the store generation it began at,
/// and a log of `op path\0value` records.
#[derive(Clone, Copy)]
struct Tx {
    id: u32,
    conn: u8,
    /// A change since it began touched what it read or wrote, or its
    /// domain's home: its commit answers EAGAIN.
    conflict: bool,
    log: [u8; TX_LOG],
    log_len: usize,
}

const EMPTY_TX: Tx = Tx { id: 0, conn: 0, conflict: false, log: [0; TX_LOG], log_len: 0 };

/// Bytes queued for one direction of a connection.
#[derive(Clone, Copy)]
struct Queue<const N: usize> {
    buf: [u8; N],
    head: usize,
    len: usize,
}

impl<const N: usize> Queue<N> {
    const fn new() -> Self {
        Queue { buf: [0; N], head: 0, len: 0 }
    }
    /// Empty, its bytes zeroed (in place: no copy of a 4 KiB constant).
    fn clear(&mut self) {
        self.buf.fill(0);
        (self.head, self.len) = (0, 0);
    }
    fn room(&self) -> usize {
        N - self.len
    }
    fn push(&mut self, data: &[u8]) -> bool {
        if data.len() > self.room() {
            return false;
        }
        for &b in data {
            self.buf[(self.head + self.len) % N] = b;
            self.len += 1;
        }
        true
    }
    fn pop_into(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.len);
        for o in out.iter_mut().take(n) {
            *o = self.buf[self.head];
            self.head = (self.head + 1) % N;
        }
        self.len -= n;
        n
    }
    /// The first `n` bytes, contiguous (copied into `tmp`).
    fn peek<'a>(&self, n: usize, tmp: &'a mut [u8]) -> &'a [u8] {
        let n = n.min(self.len).min(tmp.len());
        for (i, t) in tmp.iter_mut().enumerate().take(n) {
            *t = self.buf[(self.head + i) % N];
        }
        &tmp[..n]
    }
    fn drop_front(&mut self, n: usize) {
        let n = n.min(self.len);
        self.head = (self.head + n) % N;
        self.len -= n;
    }
}

#[derive(Clone, Copy)]
struct Conn {
    domid: DomId,
    live: bool,
    quota: Quota,
    nodes: u16,
    watches: u8,
    txs: u8,
    input: Queue<IN_BUF>,
    output: Queue<OUT_BUF>,
    /// Watch events dropped for want of output room (reported once).
    dropped: u32,
}

const EMPTY_CONN: Conn = Conn {
    domid: 0,
    live: false,
    quota: Quota { nodes: 0, watches: 0, transactions: 0 },
    nodes: 0,
    watches: 0,
    txs: 0,
    input: Queue::new(),
    output: Queue::new(),
    dropped: 0,
};

/// The connection broke the protocol (a payload over the limit): the
/// kernel flags the ring page's error field and stops serving it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtocolError;

/// The whole store. Big: the kernel keeps it in a static.
pub struct Store {
    nodes: [Node; MAX_NODES],
    watches: [Watch; MAX_WATCHES],
    txs: [Tx; MAX_TX],
    conns: [Conn; MAX_CONNS],
    next_tx: u32,
}

type Err = &'static str;

/// Xen's error names, as replies carry them.
mod e {
    pub const EINVAL: &str = "EINVAL";
    pub const EACCES: &str = "EACCES";
    pub const ENOENT: &str = "ENOENT";
    pub const ENOSPC: &str = "ENOSPC";
    pub const ENOSYS: &str = "ENOSYS";
    pub const EAGAIN: &str = "EAGAIN";
    pub const E2BIG: &str = "E2BIG";
    // Xen has no name of its own for a quota: ENOSPC.
    pub const EQUOTA: &str = "ENOSPC";
    pub const EBUSY: &str = "EBUSY";
}

/// Message types by number (`XsType`), the ones served.
mod t {
    pub const DIRECTORY: u32 = 1;
    pub const READ: u32 = 2;
    pub const GET_PERMS: u32 = 3;
    pub const WATCH: u32 = 4;
    pub const UNWATCH: u32 = 5;
    pub const TX_START: u32 = 6;
    pub const TX_END: u32 = 7;
    pub const GET_DOMAIN_PATH: u32 = 10;
    pub const WRITE: u32 = 11;
    pub const MKDIR: u32 = 12;
    pub const RM: u32 = 13;
    pub const SET_PERMS: u32 = 14;
    pub const WATCH_EVENT: u32 = 15;
    pub const ERROR: u32 = 16;
    pub const IS_DOMAIN_INTRODUCED: u32 = 17;
    pub const RESET_WATCHES: u32 = 21;
}

/// A path checked for length and characters: absolute, no empty
/// component, no trailing slash (but "/").
fn valid_path(p: &[u8]) -> bool {
    p.len() < PATH_MAX
        && p.first() == Some(&b'/')
        && (p == b"/" || (!p.ends_with(b"/") && !p.windows(2).any(|w| w == b"//")))
        && p.iter().all(|&c| c.is_ascii_alphanumeric() || b"/_-@.".contains(&c))
}

/// `a` is `b` or below it.
fn within(a: &[u8], b: &[u8]) -> bool {
    a == b || b == b"/" || (a.starts_with(b) && a.get(b.len()) == Some(&b'/'))
}

fn parent(p: &[u8]) -> Option<&[u8]> {
    let i = p.iter().rposition(|&c| c == b'/')?;
    (p != b"/").then(|| if i == 0 { &b"/"[..] } else { &p[..i] })
}

/// Splits a payload into its NUL-terminated strings (at most `N`).
fn strings<const N: usize>(payload: &[u8]) -> heapless::Vec<&[u8], N> {
    let mut out = heapless::Vec::new();
    let body = payload.strip_suffix(b"\0").unwrap_or(payload);
    if body.is_empty() {
        return out;
    }
    for s in body.split(|&c| c == 0) {
        if out.push(s).is_err() {
            break;
        }
    }
    out
}

/// `/local/domain/<domid>`, into `buf`.
fn home(domid: DomId, buf: &mut [u8; PATH_MAX]) -> usize {
    let mut w = Writer { buf, len: 0 };
    let _ = core::fmt::write(&mut w, format_args!("/local/domain/{domid}"));
    w.len
}

struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl core::fmt::Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(core::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Parses a permission entry: `r5`, `w0`, `b3`, `n7`.
fn perm_entry(s: &[u8]) -> Option<(DomId, u8)> {
    let (&kind, num) = s.split_first()?;
    let bits = match kind {
        b'n' => 0,
        b'r' => READ,
        b'w' => WRITE,
        b'b' => READ | WRITE,
        _ => return None,
    };
    if num.is_empty() || num.len() > 5 || !num.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = num.iter().fold(0u32, |a, &d| a * 10 + u32::from(d - b'0'));
    Some((u16::try_from(v).ok()?, bits))
}

/// What a transaction's log says of `path`: its value (written), removed,
/// or nothing.
enum Logged<'a> {
    Value(&'a [u8]),
    Removed,
    Unknown,
}

const LOG_WRITE: u8 = 1;
const LOG_RM: u8 = 2;
/// A path the transaction read: a later change there is a conflict.
const LOG_READ: u8 = 3;

impl Store {
    /// An empty store; the hypervisor populates it at boot. `const` so the kernel's static needs no stack to build it.
    pub const fn new() -> Self {
        Store {
            nodes: [EMPTY_NODE; MAX_NODES],
            watches: [EMPTY_WATCH; MAX_WATCHES],
            txs: [EMPTY_TX; MAX_TX],
            conns: [EMPTY_CONN; MAX_CONNS],
            next_tx: 0,
        }
    }

    /// Opens (or reopens, after a restart) connection `conn` for domain
    /// `domid`: its buffers, watches and transactions are dropped; the
    /// nodes stay (its device nodes were populated for it).
    pub fn connect(&mut self, conn: usize, domid: DomId, quota: Quota) {
        let Some(c) = self.conns.get_mut(conn) else { return };
        // Field by field, in place: a `Conn { .. }` temporary is 12 KiB of
        // stack and, in the image, of zeros to copy it from.
        (c.domid, c.live, c.quota) = (domid, true, quota);
        (c.watches, c.txs, c.dropped) = (0, 0, 0);
        c.input.clear();
        c.output.clear();
        for w in self.watches.iter_mut().filter(|w| w.used && w.conn as usize == conn) {
            w.used = false;
        }
        for t in self.txs.iter_mut().filter(|t| t.id != 0 && t.conn as usize == conn) {
            t.id = 0;
        }
    }

    /// Stops serving connection `conn` (its domain broke the protocol or is gone).
    pub fn disconnect(&mut self, conn: usize) {
        self.connect(conn, self.conns.get(conn).map_or(0, |c| c.domid), Quota::DEFAULT);
        if let Some(c) = self.conns.get_mut(conn) {
            c.live = false;
        }
    }

    fn conn_of(&self, domid: DomId) -> Option<usize> {
        self.conns.iter().position(|c| c.live && c.domid == domid)
    }

    /// Bytes waiting for `conn`'s response ring.
    pub fn pending_output(&self, conn: usize) -> usize {
        self.conns.get(conn).map_or(0, |c| c.output.len)
    }

    /// Moves up to `out.len()` bytes of `conn`'s responses into `out`.
    pub fn output(&mut self, conn: usize, out: &mut [u8]) -> usize {
        self.conns.get_mut(conn).map_or(0, |c| c.output.pop_into(out))
    }

    /// Whether `conn` has a whole request waiting to be served.
    pub fn has_request(&self, conn: usize) -> bool {
        let Some(c) = self.conns.get(conn).filter(|c| c.live) else { return false };
        let mut head = [0u8; XsHeader::SIZE];
        if c.input.peek(XsHeader::SIZE, &mut head).len() < XsHeader::SIZE {
            return false;
        }
        let len = u32::from_le_bytes([head[12], head[13], head[14], head[15]]) as usize;
        c.input.len >= XsHeader::SIZE + len.min(XENSTORE_PAYLOAD_MAX) && c.output.room() >= XsHeader::SIZE + XENSTORE_PAYLOAD_MAX
    }

    /// Bytes `conn` may send now: requests are taken only while a whole
    /// largest reply fits in its output (backpressure, never loss).
    pub fn input_room(&self, conn: usize) -> usize {
        self.conns.get(conn).filter(|c| c.live).map_or(0, |c| c.input.room())
    }

    /// Takes bytes `conn` wrote to its request ring and serves up to `max`
    /// whole requests among them (the rest wait for the next call, so the
    /// caller bounds the work done under its lock). Returns a bit per
    /// connection whose output grew (its ring to fill, its port to raise).
    pub fn feed(&mut self, conn: usize, bytes: &[u8], max: usize) -> Result<u32, ProtocolError> {
        let Some(c) = self.conns.get_mut(conn).filter(|c| c.live) else { return Ok(0) };
        if !c.input.push(bytes) {
            return Err(ProtocolError);
        }
        let mut woke = 0;
        for _ in 0..max {
            let c = &self.conns[conn];
            if c.output.room() < XsHeader::SIZE + XENSTORE_PAYLOAD_MAX {
                break;
            }
            let mut head = [0u8; XsHeader::SIZE];
            if c.input.peek(XsHeader::SIZE, &mut head).len() < XsHeader::SIZE {
                break;
            }
            let word = |o: usize| u32::from_le_bytes([head[o], head[o + 1], head[o + 2], head[o + 3]]);
            let (kind, req_id, tx_id, len) = (word(0), word(4), word(8), word(12) as usize);
            if len > XENSTORE_PAYLOAD_MAX {
                return Err(ProtocolError);
            }
            if c.input.len < XsHeader::SIZE + len {
                break;
            }
            let mut msg = [0u8; IN_BUF];
            let n = c.input.peek(XsHeader::SIZE + len, &mut msg).len();
            self.conns[conn].input.drop_front(n);
            woke |= self.serve(conn, kind, req_id, tx_id, &msg[XsHeader::SIZE..n]);
        }
        Ok(woke)
    }

    /// Queues a message for `conn`; false if it does not fit.
    fn send(&mut self, conn: usize, kind: u32, req_id: u32, tx_id: u32, parts: &[&[u8]]) -> bool {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let c = &mut self.conns[conn];
        if len > XENSTORE_PAYLOAD_MAX || c.output.room() < XsHeader::SIZE + len {
            return false;
        }
        let mut h = [0u8; XsHeader::SIZE];
        for (i, v) in [kind, req_id, tx_id, len as u32].iter().enumerate() {
            h[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
        }
        c.output.push(&h);
        for p in parts {
            c.output.push(p);
        }
        true
    }

    fn serve(&mut self, conn: usize, kind: u32, req_id: u32, tx_id: u32, payload: &[u8]) -> u32 {
        let mut fired = 0u32;
        let mut initial = None;
        let mut data = [0u8; XENSTORE_PAYLOAD_MAX];
        let r = self.dispatch(conn, kind, tx_id, payload, &mut fired, &mut initial, &mut data);
        match r {
            Ok(len) => {
                self.send(conn, kind, req_id, tx_id, &[&data[..len]]);
            }
            Err(name) => {
                self.send(conn, t::ERROR, req_id, tx_id, &[name.as_bytes(), b"\0"]);
            }
        }
        if let Some(w) = initial {
            let watch = self.watches[w];
            self.fire(conn, &watch.path[..watch.path_len as usize], &watch.token[..watch.token_len as usize]);
        }
        fired | 1 << conn
    }

    /// Resolves `p` (absolute, or relative to the caller's home).
    fn resolve(&self, conn: usize, p: &[u8], out: &mut [u8; PATH_MAX]) -> Result<usize, Err> {
        let n = if p.first() == Some(&b'/') {
            if p.len() >= PATH_MAX {
                return Err(e::E2BIG);
            }
            out[..p.len()].copy_from_slice(p);
            p.len()
        } else {
            let h = home(self.conns[conn].domid, out);
            if h + 1 + p.len() >= PATH_MAX {
                return Err(e::E2BIG);
            }
            out[h] = b'/';
            out[h + 1..h + 1 + p.len()].copy_from_slice(p);
            h + 1 + p.len()
        };
        if valid_path(&out[..n]) {
            Ok(n)
        } else {
            Err(e::EINVAL)
        }
    }

    fn find(&self, path: &[u8]) -> Option<usize> {
        self.nodes.iter().position(|n| n.used && n.path() == path)
    }

    fn tx_index(&self, conn: usize, tx_id: u32) -> Result<Option<usize>, Err> {
        if tx_id == 0 {
            return Ok(None);
        }
        self.txs.iter().position(|t| t.id == tx_id && t.conn as usize == conn).map(Some).ok_or(e::ENOENT)
    }

    fn logged<'a>(&'a self, tx: Option<usize>, path: &[u8]) -> Logged<'a> {
        let Some(t) = tx.map(|i| &self.txs[i]) else { return Logged::Unknown };
        let mut found = Logged::Unknown;
        let mut at = 0;
        while at + 5 <= t.log_len {
            let op = t.log[at];
            let plen = t.log[at + 1] as usize;
            let vlen = u16::from_le_bytes([t.log[at + 2], t.log[at + 3]]) as usize;
            let p = &t.log[at + 4..at + 4 + plen];
            let v = &t.log[at + 4 + plen..at + 4 + plen + vlen];
            if op == LOG_WRITE && p == path {
                found = Logged::Value(v);
            } else if op == LOG_RM && within(path, p) {
                found = Logged::Removed;
            }
            // LOG_READ records only mark what the transaction depends on.
            at += 4 + plen + vlen;
        }
        found
    }

    /// The value of `path` as `conn` sees it (inside its transaction).
    fn read_value(&self, conn: usize, tx: Option<usize>, path: &[u8], out: &mut [u8]) -> Result<usize, Err> {
        let dom = self.conns[conn].domid;
        match self.logged(tx, path) {
            Logged::Value(v) => {
                out[..v.len()].copy_from_slice(v);
                Ok(v.len())
            }
            Logged::Removed => Err(e::ENOENT),
            Logged::Unknown => {
                let n = &self.nodes[self.find(path).ok_or(e::ENOENT)?];
                if n.perms.of(dom) & READ == 0 {
                    return Err(e::EACCES);
                }
                out[..n.value().len()].copy_from_slice(n.value());
                Ok(n.value().len())
            }
        }
    }

    /// Whether `dom` may create `path`: write access to its nearest
    /// existing ancestor.
    fn may_create(&self, dom: DomId, path: &[u8]) -> Result<Perms, Err> {
        let mut p = parent(path);
        while let Some(q) = p {
            if let Some(i) = self.find(q) {
                let perms = self.nodes[i].perms;
                return if perms.of(dom) & WRITE != 0 { Ok(perms) } else { Err(e::EACCES) };
            }
            p = parent(q);
        }
        // An empty store: only the hypervisor builds its first nodes.
        if dom == DOMID_HV {
            Ok(Perms::owned(DOMID_HV))
        } else {
            Err(e::EACCES)
        }
    }

    /// Writes `value` at `path` for `dom` in the store itself, creating the
    /// node and missing parents (owned by `dom`, others' access inherited).
    fn apply_write(&mut self, dom: DomId, path: &[u8], value: Option<&[u8]>, fired: &mut u32) -> Result<(), Err> {
        if let Some(i) = self.find(path) {
            if self.nodes[i].perms.of(dom) & WRITE == 0 {
                return Err(e::EACCES);
            }
            if let Some(v) = value {
                let n = &mut self.nodes[i];
                n.value[..v.len()].copy_from_slice(v);
                n.value_len = v.len() as u16;
                self.changed(path, fired);
            }
            return Ok(());
        }
        let inherited = self.may_create(dom, path)?;
        // Count what must be created: the node and its missing parents.
        let mut missing = 1;
        let mut p = parent(path);
        while let Some(q) = p {
            if self.find(q).is_some() {
                break;
            }
            missing += 1;
            p = parent(q);
        }
        let free = self.nodes.iter().filter(|n| !n.used).count();
        if missing > free {
            return Err(e::ENOSPC);
        }
        if dom != DOMID_HV {
            let c = self.conn_of(dom).ok_or(e::EACCES)?;
            if usize::from(self.conns[c].nodes) + missing > usize::from(self.conns[c].quota.nodes) {
                return Err(e::EQUOTA);
            }
        }
        // Create from the top down, each with the creator as owner.
        let mut depth = missing;
        while depth > 0 {
            let mut q = path;
            for _ in 1..depth {
                q = parent(q).unwrap_or(q);
            }
            let slot = self.nodes.iter().position(|n| !n.used).ok_or(e::ENOSPC)?;
            let owner = if dom == DOMID_HV { inherited.owner } else { dom };
            let mut perms = Perms { owner, ..inherited };
            if owner != inherited.owner && inherited.owner != DOMID_HV {
                // A peer writing into a directory it was given: the
                // directory's owner keeps full access to what appears there.
                perms.grant(inherited.owner, READ | WRITE);
            }
            let n = &mut self.nodes[slot];
            n.used = true;
            n.path[..q.len()].copy_from_slice(q);
            n.path_len = q.len() as u8;
            n.value_len = 0;
            n.perms = perms;
            if depth == 1 {
                if let Some(v) = value {
                    n.value[..v.len()].copy_from_slice(v);
                    n.value_len = v.len() as u16;
                }
            }
            self.charge(owner, 1);
            self.changed(q, fired);
            depth -= 1;
        }
        Ok(())
    }

    fn charge(&mut self, owner: DomId, n: i32) {
        if let Some(c) = self.conns.iter_mut().find(|c| c.domid == owner) {
            c.nodes = (i32::from(c.nodes) + n).max(0) as u16;
        }
    }

    fn apply_rm(&mut self, dom: DomId, path: &[u8], fired: &mut u32) -> Result<(), Err> {
        let i = self.find(path).ok_or(e::ENOENT)?;
        if self.nodes[i].perms.of(dom) & WRITE == 0 || path == b"/" {
            return Err(e::EACCES);
        }
        // The hypervisor's own nodes below stay: a guest cannot remove them.
        if dom != DOMID_HV && self.nodes.iter().any(|n| n.used && n.perms.owner == DOMID_HV && within(n.path(), path)) {
            return Err(e::EACCES);
        }
        // Watches fire while the nodes still exist, so each watcher's read
        // permission is checked on them.
        self.changed(path, fired);
        for j in 0..MAX_NODES {
            if self.nodes[j].used && within(self.nodes[j].path(), path) {
                let owner = self.nodes[j].perms.owner;
                self.nodes[j].used = false;
                self.charge(owner, -1);
            }
        }
        Ok(())
    }

    /// A change at `path`: transactions that depend on it will retry, and
    /// matching watches fire (for domains that may read it, or whose watch
    /// lies below it).
    fn changed(&mut self, path: &[u8], fired: &mut u32) {
        for t in 0..MAX_TX {
            if self.txs[t].id != 0 && !self.txs[t].conflict && self.touches(t, path) {
                self.txs[t].conflict = true;
            }
        }
        for w in 0..MAX_WATCHES {
            let watch = self.watches[w];
            if !watch.used {
                continue;
            }
            let wp = &watch.path[..watch.path_len as usize];
            let event_path = if within(path, wp) {
                path
            } else if within(wp, path) {
                wp
            } else {
                continue;
            };
            let conn = watch.conn as usize;
            let dom = self.conns[conn].domid;
            // A path with no node (a watch below a removed one) fires only
            // for the watch's own path, which its owner chose.
            match self.find(event_path) {
                Some(i) if self.nodes[i].perms.of(dom) & READ == 0 => continue,
                None if event_path != wp => continue,
                _ => {}
            }
            self.fire(conn, event_path, &watch.token[..watch.token_len as usize]);
            *fired |= 1 << conn;
        }
    }

    /// Whether a change at `path` concerns transaction `t`: it is at, above
    /// or below a path the transaction read or wrote (per path, as C
    /// xenstored's per-node generations: two devices of one domain setting
    /// themselves up at once never fail each other's transactions).
    fn touches(&self, t: usize, path: &[u8]) -> bool {
        let tx = &self.txs[t];
        let mut at = 0;
        while at + 4 <= tx.log_len {
            let plen = tx.log[at + 1] as usize;
            let vlen = u16::from_le_bytes([tx.log[at + 2], tx.log[at + 3]]) as usize;
            let p = &tx.log[at + 4..at + 4 + plen];
            if within(path, p) || within(p, path) {
                return true;
            }
            at += 4 + plen + vlen;
        }
        false
    }

    /// Queues a watch event, keeping room for one largest reply: a reply
    /// is never lost to events (an event may be, and is counted).
    fn fire(&mut self, conn: usize, path: &[u8], token: &[u8]) {
        let need = 2 * XsHeader::SIZE + path.len() + token.len() + 2 + XENSTORE_PAYLOAD_MAX;
        if self.conns[conn].output.room() < need || !self.send(conn, t::WATCH_EVENT, 0, 0, &[path, b"\0", token, b"\0"]) {
            self.conns[conn].dropped += 1;
        }
    }

    /// Watch events lost to a full output since the last call.
    pub fn take_dropped(&mut self, conn: usize) -> u32 {
        self.conns.get_mut(conn).map_or(0, |c| core::mem::take(&mut c.dropped))
    }

    /// One request; the reply's payload (up to 4096 bytes) or an error name.
    fn dispatch(
        &mut self,
        conn: usize,
        kind: u32,
        tx_id: u32,
        payload: &[u8],
        fired: &mut u32,
        initial: &mut Option<usize>,
        out: &mut [u8; XENSTORE_PAYLOAD_MAX],
    ) -> Result<usize, Err> {
        let dom = self.conns[conn].domid;
        let args = strings::<3>(payload);
        let arg = |i: usize| args.get(i).copied().ok_or(e::EINVAL);
        let tx = self.tx_index(conn, tx_id)?;
        let mut path = [0u8; PATH_MAX];
        let ok = |out: &mut [u8; XENSTORE_PAYLOAD_MAX]| {
            out[..3].copy_from_slice(b"OK\0");
            3
        };
        let len = match kind {
            t::READ => {
                let n = self.resolve(conn, arg(0)?, &mut path)?;
                let len = self.read_value(conn, tx, &path[..n], out)?;
                // Logged only once read: a refused read must not let a
                // transaction learn whether another's node changes.
                if let Some(t) = tx {
                    self.log(t, LOG_READ, &path[..n], b"")?;
                }
                len
            }
            t::DIRECTORY => {
                let n = self.resolve(conn, arg(0)?, &mut path)?;
                let i = self.find(&path[..n]).ok_or(e::ENOENT)?;
                if self.nodes[i].perms.of(dom) & READ == 0 {
                    return Err(e::EACCES);
                }
                if let Some(t) = tx {
                    self.log(t, LOG_READ, &path[..n], b"")?;
                }
                let p = &path[..n];
                let mut len = 0;
                for node in self.nodes.iter().filter(|x| x.used && parent(x.path()) == Some(p)) {
                    let name = &node.path()[node.path().iter().rposition(|&c| c == b'/').unwrap_or(0) + 1..];
                    if len + name.len() + 1 > out.len() {
                        return Err(e::E2BIG);
                    }
                    out[len..len + name.len()].copy_from_slice(name);
                    len += name.len() + 1;
                }
                len
            }
            t::GET_PERMS => {
                let n = self.resolve(conn, arg(0)?, &mut path)?;
                let node = &self.nodes[self.find(&path[..n]).ok_or(e::ENOENT)?];
                if node.perms.of(dom) & READ == 0 {
                    return Err(e::EACCES);
                }
                let p = node.perms;
                let mut w = Writer { buf: &mut out[..], len: 0 };
                let letter = |b: u8| ['n', 'r', 'w', 'b'][b as usize & 3];
                let _ = core::fmt::write(&mut w, format_args!("{}{}\0", letter(p.others), p.owner));
                for &(d, b) in &p.acl[..p.nacl as usize] {
                    let _ = core::fmt::write(&mut w, format_args!("{}{}\0", letter(b), d));
                }
                w.len
            }
            t::WRITE | t::MKDIR => {
                // WRITE's payload is path\0value (the value may hold NULs).
                let (raw_path, value) = match payload.iter().position(|&c| c == 0) {
                    Some(i) => (&payload[..i], &payload[i + 1..]),
                    None => (payload, &b""[..]),
                };
                let value = if kind == t::MKDIR { None } else { Some(value) };
                if value.is_some_and(|v| v.len() > VALUE_MAX) {
                    return Err(e::E2BIG);
                }
                let n = self.resolve(conn, raw_path, &mut path)?;
                let p = &path[..n];
                if kind == t::MKDIR && (self.find(p).is_some() || matches!(self.logged(tx, p), Logged::Value(_))) {
                    ok(out)
                } else if let Some(t) = tx {
                    // Checked now, applied at commit.
                    if self.find(p).is_none() {
                        self.may_create(dom, p)?;
                    } else if self.nodes[self.find(p).unwrap_or(0)].perms.of(dom) & WRITE == 0 {
                        return Err(e::EACCES);
                    }
                    self.log(t, LOG_WRITE, p, value.unwrap_or(b""))?;
                    ok(out)
                } else {
                    self.apply_write(dom, p, value, fired)?;
                    ok(out)
                }
            }
            t::RM => {
                let n = self.resolve(conn, arg(0)?, &mut path)?;
                let p = &path[..n];
                if let Some(t) = tx {
                    let i = self.find(p).ok_or(e::ENOENT)?;
                    if self.nodes[i].perms.of(dom) & WRITE == 0 {
                        return Err(e::EACCES);
                    }
                    self.log(t, LOG_RM, p, b"")?;
                } else {
                    self.apply_rm(dom, p, fired)?;
                }
                ok(out)
            }
            t::SET_PERMS => {
                let n = self.resolve(conn, arg(0)?, &mut path)?;
                let i = self.find(&path[..n]).ok_or(e::ENOENT)?;
                if self.nodes[i].perms.owner != dom && dom != DOMID_HV {
                    return Err(e::EACCES);
                }
                let entries = strings::<{ MAX_ACL + 2 }>(payload);
                let (first, rest) = entries.get(1..).and_then(|e| e.split_first()).ok_or(e::EINVAL)?;
                let (owner, others) = perm_entry(first).ok_or(e::EINVAL)?;
                // A guest may not give its node away.
                if owner != self.nodes[i].perms.owner && dom != DOMID_HV {
                    return Err(e::EACCES);
                }
                if rest.len() > MAX_ACL {
                    return Err(e::E2BIG);
                }
                let mut perms = Perms { owner, others, acl: [(0, 0); MAX_ACL], nacl: rest.len() as u8 };
                for (slot, s) in perms.acl.iter_mut().zip(rest) {
                    *slot = perm_entry(s).ok_or(e::EINVAL)?;
                }
                self.nodes[i].perms = perms;
                self.changed(&path[..n], fired);
                ok(out)
            }
            t::WATCH => {
                let (raw, token) = (arg(0)?, arg(1)?);
                if token.len() > TOKEN_MAX {
                    return Err(e::E2BIG);
                }
                let n = self.watch_path(conn, raw, &mut path)?;
                if self.conns[conn].watches >= self.conns[conn].quota.watches {
                    return Err(e::EQUOTA);
                }
                let slot = self.watches.iter().position(|w| !w.used).ok_or(e::ENOSPC)?;
                let w = &mut self.watches[slot];
                *w = Watch { used: true, conn: conn as u8, path_len: n as u8, token_len: token.len() as u8, ..EMPTY_WATCH };
                w.path[..n].copy_from_slice(&path[..n]);
                w.token[..token.len()].copy_from_slice(token);
                self.conns[conn].watches += 1;
                // It fires once, after the reply.
                *initial = Some(slot);
                ok(out)
            }
            t::UNWATCH => {
                let (raw, token) = (arg(0)?, arg(1)?);
                let n = self.watch_path(conn, raw, &mut path)?;
                let i = self
                    .watches
                    .iter()
                    .position(|w| w.used && w.conn as usize == conn && &w.path[..w.path_len as usize] == &path[..n] && &w.token[..w.token_len as usize] == token)
                    .ok_or(e::ENOENT)?;
                self.watches[i].used = false;
                self.conns[conn].watches -= 1;
                ok(out)
            }
            t::RESET_WATCHES => {
                for w in self.watches.iter_mut().filter(|w| w.used && w.conn as usize == conn) {
                    w.used = false;
                }
                self.conns[conn].watches = 0;
                ok(out)
            }
            t::TX_START => {
                if tx.is_some() {
                    return Err(e::EBUSY);
                }
                if self.conns[conn].txs >= self.conns[conn].quota.transactions {
                    return Err(e::EQUOTA);
                }
                let slot = self.txs.iter().position(|t| t.id == 0).ok_or(e::ENOSPC)?;
                // Ids start at 1 (0 is "no transaction") and wrap past it.
                let id = self.next_tx.wrapping_add(1).max(1);
                self.next_tx = id;
                let t = &mut self.txs[slot];
                t.id = id;
                t.conn = conn as u8;
                t.conflict = false;
                t.log_len = 0;
                self.conns[conn].txs += 1;
                let mut w = Writer { buf: &mut out[..], len: 0 };
                let _ = core::fmt::write(&mut w, format_args!("{id}\0"));
                w.len
            }
            t::TX_END => {
                let t = tx.ok_or(e::EINVAL)?;
                let commit = match arg(0)? {
                    b"T" => true,
                    b"F" => false,
                    _ => return Err(e::EINVAL),
                };
                let r = if commit { self.commit(t, fired) } else { Ok(()) };
                self.txs[t].id = 0;
                self.conns[conn].txs -= 1;
                r?;
                ok(out)
            }
            t::GET_DOMAIN_PATH => {
                let s = arg(0)?;
                if s.is_empty() || s.len() > 5 || !s.iter().all(u8::is_ascii_digit) {
                    return Err(e::EINVAL);
                }
                let id = s.iter().fold(0u32, |a, &d| a * 10 + u32::from(d - b'0'));
                let id = u16::try_from(id).map_err(|_| e::EINVAL)?;
                let n = home(id, &mut path);
                out[..n].copy_from_slice(&path[..n]);
                out[n] = 0;
                n + 1
            }
            t::IS_DOMAIN_INTRODUCED => {
                let s = arg(0)?;
                let id = core::str::from_utf8(s).ok().and_then(|s| s.parse::<u16>().ok()).ok_or(e::EINVAL)?;
                out[..2].copy_from_slice(if self.conn_of(id).is_some() { b"T\0" } else { b"F\0" });
                2
            }
            // INTRODUCE, RELEASE, SET_TARGET, RESUME, CONTROL: a toolstack's,
            // and there is none; the rest are unknown.
            4..=26 => return Err(e::EACCES),
            _ => return Err(e::ENOSYS),
        };
        Ok(len)
    }

    /// A watch's path: a special `@name`, or a node path resolved.
    fn watch_path(&self, conn: usize, raw: &[u8], path: &mut [u8; PATH_MAX]) -> Result<usize, Err> {
        if raw.first() == Some(&b'@') {
            if raw.len() >= PATH_MAX || raw.len() < 2 || !raw[1..].iter().all(u8::is_ascii_alphanumeric) {
                return Err(e::EINVAL);
            }
            path[..raw.len()].copy_from_slice(raw);
            return Ok(raw.len());
        }
        self.resolve(conn, raw, path)
    }

    /// Appends one record to transaction `t`'s log.
    fn log(&mut self, t: usize, op: u8, path: &[u8], value: &[u8]) -> Result<(), Err> {
        let tx = &mut self.txs[t];
        let need = 4 + path.len() + value.len();
        if tx.log_len + need > TX_LOG {
            return Err(e::ENOSPC);
        }
        let at = tx.log_len;
        tx.log[at] = op;
        tx.log[at + 1] = path.len() as u8;
        tx.log[at + 2..at + 4].copy_from_slice(&(value.len() as u16).to_le_bytes());
        tx.log[at + 4..at + 4 + path.len()].copy_from_slice(path);
        tx.log[at + 4 + path.len()..at + need].copy_from_slice(value);
        tx.log_len += need;
        Ok(())
    }

    /// Applies transaction `t` unless a change since it began concerned
    /// it. Its records were checked when logged; one failing now (the
    /// store changed under it) can only be a quota, and stops the rest.
    fn commit(&mut self, t: usize, fired: &mut u32) -> Result<(), Err> {
        if self.txs[t].conflict {
            return Err(e::EAGAIN);
        }
        let dom = self.conns[self.txs[t].conn as usize].domid;
        let mut at = 0;
        // Record by record, each copied out (no copy of the whole log).
        while at + 4 <= self.txs[t].log_len {
            let (mut p, mut v) = ([0u8; PATH_MAX], [0u8; VALUE_MAX]);
            let tx = &self.txs[t];
            let op = tx.log[at];
            let plen = tx.log[at + 1] as usize;
            let vlen = u16::from_le_bytes([tx.log[at + 2], tx.log[at + 3]]) as usize;
            p[..plen].copy_from_slice(&tx.log[at + 4..at + 4 + plen]);
            v[..vlen].copy_from_slice(&tx.log[at + 4 + plen..at + 4 + plen + vlen]);
            at += 4 + plen + vlen;
            match op {
                LOG_WRITE => self.apply_write(dom, &p[..plen], Some(&v[..vlen]), fired)?,
                LOG_RM => match self.apply_rm(dom, &p[..plen], fired) {
                    Ok(()) | Err(e::ENOENT) => {}
                    Err(x) => return Err(x),
                },
                _ => {}
            }
        }
        Ok(())
    }

    /// Populates `path` with `value` at boot, owned by `owner`, readable by
    /// `readers` (the hypervisor's own writes: no quota is charged but the
    /// owner's).
    pub fn populate(&mut self, path: &str, value: &str, owner: DomId, readers: &[DomId]) -> Result<(), &'static str> {
        self.populate_with(path, value, owner, readers, READ, &mut 0)
    }

    /// As `populate`, giving `peers` `bits` (READ, or READ|WRITE for a
    /// directory shared with a peer).
    fn populate_with(&mut self, path: &str, value: &str, owner: DomId, peers: &[DomId], bits: u8, fired: &mut u32) -> Result<(), &'static str> {
        let readers = peers;
        let p = path.as_bytes();
        if !valid_path(p) || value.len() > VALUE_MAX {
            return Err(e::EINVAL);
        }
        self.apply_write(DOMID_HV, p, Some(value.as_bytes()), fired)?;
        let i = self.find(p).ok_or(e::ENOENT)?;
        let old_owner = self.nodes[i].perms.owner;
        let mut perms = Perms::owned(owner);
        for (slot, &d) in perms.acl.iter_mut().zip(readers.iter().take(MAX_ACL)) {
            *slot = (d, bits);
        }
        perms.nacl = readers.len().min(MAX_ACL) as u8;
        self.nodes[i].perms = perms;
        self.charge(old_owner, -1);
        self.charge(owner, 1);
        Ok(())
    }
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The store is big (it is a static in the kernel): tests build it on a
    /// thread with room for it.
    pub(super) fn big_stack(f: impl FnOnce() + Send + 'static) {
        std::thread::Builder::new().stack_size(64 << 20).spawn(f).unwrap().join().unwrap();
    }

    /// A client of the store: a test harness that frames requests and
    /// splits replies.
    fn req(s: &mut Store, conn: usize, kind: u32, tx: u32, payload: &[u8]) -> Vec<(u32, Vec<u8>)> {
        let mut m = Vec::new();
        for v in [kind, 7, tx, payload.len() as u32] {
            m.extend_from_slice(&v.to_le_bytes());
        }
        m.extend_from_slice(payload);
        s.feed(conn, &m, usize::MAX).unwrap();
        drain(s, conn)
    }

    fn drain(s: &mut Store, conn: usize) -> Vec<(u32, Vec<u8>)> {
        let mut bytes = vec![0u8; OUT_BUF];
        let n = s.output(conn, &mut bytes);
        let mut out = Vec::new();
        let mut at = 0;
        while at < n {
            let w = |o: usize| u32::from_le_bytes(bytes[at + o..at + o + 4].try_into().unwrap());
            let len = w(12) as usize;
            out.push((w(0), bytes[at + 16..at + 16 + len].to_vec()));
            at += 16 + len;
        }
        out
    }

    fn reply(s: &mut Store, conn: usize, kind: u32, tx: u32, payload: &[u8]) -> Vec<u8> {
        let r = req(s, conn, kind, tx, payload);
        r[0].1.clone()
    }

    /// Two domains (ids 1 and 2) with a frontend device node populated as
    /// the hypervisor does at boot.
    fn two() -> Store {
        let mut s = Store::new();
        s.connect(0, 1, Quota::DEFAULT);
        s.connect(1, 2, Quota::DEFAULT);
        s.populate("/local/domain/1", "", 1, &[]).unwrap();
        s.populate("/local/domain/2", "", 2, &[]).unwrap();
        s.populate("/local/domain/1/device/vkbd/0", "", 1, &[2]).unwrap();
        s.populate("/local/domain/1/device/vkbd/0/backend", "/local/domain/2/backend/vkbd/1/0", 1, &[2]).unwrap();
        s.populate("/local/domain/2/backend/vkbd/1/0/state", "1", 2, &[1]).unwrap();
        s
    }

    #[test]
    fn relative_paths_permissions_and_errors() {
        big_stack(|| {
        let mut s = two();
        assert_eq!(reply(&mut s, 0, t::READ, 0, b"device/vkbd/0/backend\0"), b"/local/domain/2/backend/vkbd/1/0");
        // The backend may read it (it is listed), a third domain may not.
        s.connect(2, 3, Quota::DEFAULT);
        assert_eq!(reply(&mut s, 1, t::READ, 0, b"/local/domain/1/device/vkbd/0/backend\0"), b"/local/domain/2/backend/vkbd/1/0");
        assert_eq!(req(&mut s, 2, t::READ, 0, b"/local/domain/1/device/vkbd/0/backend\0")[0], (t::ERROR, b"EACCES\0".to_vec()));
        // Nor write into another's home, nor into the root.
        assert_eq!(reply(&mut s, 2, t::WRITE, 0, b"/local/domain/1/x\0v"), b"EACCES\0");
        assert_eq!(reply(&mut s, 2, t::WRITE, 0, b"/evil\0v"), b"EACCES\0");
        // Its own home is its own... once the hypervisor created it.
        assert_eq!(reply(&mut s, 2, t::WRITE, 0, b"data/x\0v"), b"EACCES\0");
        s.populate("/local/domain/3", "", 3, &[]).unwrap();
        assert_eq!(reply(&mut s, 2, t::WRITE, 0, b"data/x\0v"), b"OK\0");
        assert_eq!(reply(&mut s, 2, t::DIRECTORY, 0, b"/local/domain/3\0"), b"data\0");
        assert_eq!(reply(&mut s, 2, t::READ, 0, b"nope\0"), b"ENOENT\0");
        assert_eq!(reply(&mut s, 2, t::READ, 0, b"/a//b\0"), b"EINVAL\0");
        assert_eq!(reply(&mut s, 2, t::READ, 0, &[b'/'; 200]), b"E2BIG\0");
        assert_eq!(reply(&mut s, 2, 99, 0, b""), b"ENOSYS\0");
        assert_eq!(reply(&mut s, 2, 8, 0, b"5\x000\x000\0"), b"EACCES\0", "INTRODUCE is a toolstack's");
        assert_eq!(reply(&mut s, 0, t::GET_DOMAIN_PATH, 0, b"2\0"), b"/local/domain/2\0");
        // The frontend's node, as Xen lists permissions.
        assert_eq!(reply(&mut s, 0, t::GET_PERMS, 0, b"device/vkbd/0/backend\0"), b"n1\0r2\0");
        // A guest may not give its node away, but may share it.
        assert_eq!(reply(&mut s, 0, t::SET_PERMS, 0, b"device/vkbd/0/backend\0n3\0"), b"EACCES\0");
        assert_eq!(reply(&mut s, 0, t::SET_PERMS, 0, b"device/vkbd/0/backend\0n1\0r3\0"), b"OK\0");
        assert_eq!(reply(&mut s, 2, t::READ, 0, b"/local/domain/1/device/vkbd/0/backend\0"), b"/local/domain/2/backend/vkbd/1/0");
        });
    }

    #[test]
    fn watches_fire_once_at_once_and_on_readable_changes() {
        big_stack(|| {
        let mut s = two();
        let r = req(&mut s, 1, t::WATCH, 0, b"/local/domain/1/device\0tok\0");
        assert_eq!(r, vec![(t::WATCH, b"OK\0".to_vec()), (t::WATCH_EVENT, b"/local/domain/1/device\0tok\0".to_vec())]);
        // The frontend changes its node: the backend (a listed reader) sees it.
        assert_eq!(reply(&mut s, 0, t::WRITE, 0, b"device/vkbd/0/backend\0changed"), b"OK\0");
        assert_eq!(drain(&mut s, 1), vec![(t::WATCH_EVENT, b"/local/domain/1/device/vkbd/0/backend\0tok\0".to_vec())]);
        // A node the watcher may not read fires nothing for it.
        assert_eq!(reply(&mut s, 0, t::WRITE, 0, b"device/private\0x"), b"OK\0");
        assert_eq!(drain(&mut s, 1), vec![]);
        // Unwatch, and the quota.
        assert_eq!(reply(&mut s, 1, t::UNWATCH, 0, b"/local/domain/1/device\0tok\0"), b"OK\0");
        assert_eq!(reply(&mut s, 1, t::UNWATCH, 0, b"/local/domain/1/device\0tok\0"), b"ENOENT\0");
        for i in 0..Quota::DEFAULT.watches {
            let p = format!("/x{i}\0t\0");
            assert_eq!(req(&mut s, 1, t::WATCH, 0, p.as_bytes())[0].1, b"OK\0");
        }
        assert_eq!(reply(&mut s, 1, t::WATCH, 0, b"/y\0t\0"), b"ENOSPC\0");
        assert_eq!(reply(&mut s, 1, t::RESET_WATCHES, 0, b""), b"OK\0");
        assert_eq!(req(&mut s, 1, t::WATCH, 0, b"/y\0t\0")[0].1, b"OK\0");
        });
    }

    #[test]
    fn transactions_commit_atomically_or_ask_for_a_retry() {
        big_stack(|| {
        let mut s = two();
        let id = reply(&mut s, 0, t::TX_START, 0, b"\0");
        let id: u32 = std::str::from_utf8(&id[..id.len() - 1]).unwrap().parse().unwrap();
        assert_eq!(reply(&mut s, 0, t::WRITE, id, b"device/vkbd/0/ring-ref\0\x38"), b"OK\0");
        // Seen inside, not outside.
        assert_eq!(reply(&mut s, 0, t::READ, id, b"device/vkbd/0/ring-ref\0"), b"8");
        assert_eq!(reply(&mut s, 0, t::READ, 0, b"device/vkbd/0/ring-ref\0"), b"ENOENT\0");
        assert_eq!(reply(&mut s, 0, t::TX_END, id, b"T\0"), b"OK\0");
        assert_eq!(reply(&mut s, 0, t::READ, 0, b"device/vkbd/0/ring-ref\0"), b"8");
        // A change to what it read in between: EAGAIN, and nothing applied.
        let id = reply(&mut s, 0, t::TX_START, 0, b"\0");
        let id: u32 = std::str::from_utf8(&id[..id.len() - 1]).unwrap().parse().unwrap();
        assert_eq!(reply(&mut s, 0, t::READ, id, b"/local/domain/2/backend/vkbd/1/0/state\0"), b"1");
        assert_eq!(reply(&mut s, 0, t::WRITE, id, b"device/vkbd/0/x\0y"), b"OK\0");
        assert_eq!(reply(&mut s, 1, t::WRITE, 0, b"backend/vkbd/1/0/state\x002"), b"OK\0");
        assert_eq!(reply(&mut s, 0, t::TX_END, id, b"T\0"), b"EAGAIN\0");
        assert_eq!(reply(&mut s, 0, t::READ, 0, b"device/vkbd/0/x\0"), b"ENOENT\0");
        // Another domain writing its own nodes all the time cannot make
        // this domain's transactions fail (no livelock across domains).
        let id = reply(&mut s, 0, t::TX_START, 0, b"\0");
        let id: u32 = std::str::from_utf8(&id[..id.len() - 1]).unwrap().parse().unwrap();
        assert_eq!(reply(&mut s, 0, t::WRITE, id, b"device/vkbd/0/x\0y"), b"OK\0");
        for i in 0..5 {
            assert_eq!(reply(&mut s, 1, t::WRITE, 0, format!("busy\0{i}").as_bytes()), b"OK\0");
        }
        assert_eq!(reply(&mut s, 0, t::TX_END, id, b"T\0"), b"OK\0");
        assert_eq!(reply(&mut s, 0, t::READ, 0, b"device/vkbd/0/x\0"), b"y");
        // Aborted: nothing applied. Unknown ids: ENOENT. Quota of 2 open.
        let id = reply(&mut s, 0, t::TX_START, 0, b"\0");
        let id: u32 = std::str::from_utf8(&id[..id.len() - 1]).unwrap().parse().unwrap();
        assert_eq!(reply(&mut s, 0, t::WRITE, id, b"device/vkbd/0/z\0y"), b"OK\0");
        assert_eq!(reply(&mut s, 0, t::TX_END, id, b"F\0"), b"OK\0");
        assert_eq!(reply(&mut s, 0, t::READ, 0, b"device/vkbd/0/z\0"), b"ENOENT\0");
        assert_eq!(reply(&mut s, 0, t::READ, 12345, b"device\0"), b"ENOENT\0");
        assert_eq!(reply(&mut s, 1, t::TX_END, 1, b"T\0"), b"ENOENT\0", "another domain's transaction");
        reply(&mut s, 0, t::TX_START, 0, b"\0");
        reply(&mut s, 0, t::TX_START, 0, b"\0");
        assert_eq!(reply(&mut s, 0, t::TX_START, 0, b"\0"), b"ENOSPC\0");
        });
    }

    #[test]
    fn a_shared_directory_stays_its_owners() {
        big_stack(|| {
        let mut s = two();
        s.populate_with("/local/domain/1/data", "", 1, &[2], READ | WRITE, &mut 0).unwrap();
        // The peer writes a command; the owner reads it and answers.
        assert_eq!(reply(&mut s, 1, t::WRITE, 0, b"/local/domain/1/data/cmd\01 fb"), b"OK\0");
        assert_eq!(reply(&mut s, 0, t::READ, 0, b"data/cmd\0"), b"1 fb");
        assert_eq!(reply(&mut s, 0, t::WRITE, 0, b"data/result\0ok"), b"OK\0");
        assert_eq!(reply(&mut s, 1, t::READ, 0, b"/local/domain/1/data/result\0"), b"ok");
        // Nothing else of its home is the peer's to write.
        assert_eq!(reply(&mut s, 1, t::WRITE, 0, b"/local/domain/1/name\0x"), b"EACCES\0");
        });
    }

    #[test]
    fn node_quota_rm_and_protocol_errors() {
        big_stack(|| {
        let mut s = Store::new();
        s.connect(0, 1, Quota { nodes: 4, watches: 1, transactions: 1 });
        s.populate("/local/domain/1", "", 1, &[]).unwrap();
        assert_eq!(reply(&mut s, 0, t::WRITE, 0, b"a/b/c\0v"), b"OK\0");
        assert_eq!(reply(&mut s, 0, t::WRITE, 0, b"d/e\0v"), b"ENOSPC\0", "two more would pass the quota of 4");
        assert_eq!(reply(&mut s, 0, t::RM, 0, b"a\0"), b"OK\0");
        assert_eq!(reply(&mut s, 0, t::WRITE, 0, b"d/e\0v"), b"OK\0", "rm gave the nodes back");
        assert_eq!(reply(&mut s, 0, t::WRITE, 0, &[b"x\0".as_slice(), &[b'v'; VALUE_MAX + 1]].concat()), b"E2BIG\0");
        // A header announcing more than 4096 bytes breaks the protocol.
        let mut m = Vec::new();
        for v in [t::READ, 1, 0, 5000] {
            m.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(s.feed(0, &m, 1), Err(ProtocolError));
        // A message split across feeds is served when whole.
        let mut s = two();
        let mut m = Vec::new();
        for v in [t::READ, 9, 0, 22] {
            m.extend_from_slice(&v.to_le_bytes());
        }
        m.extend_from_slice(b"device/vkbd/0/backend\0");
        assert_eq!(s.feed(0, &m[..10], 1), Ok(0));
        assert_eq!(s.feed(0, &m[10..], 1), Ok(1));
        assert_eq!(drain(&mut s, 0)[0].1, b"/local/domain/2/backend/vkbd/1/0");
        });
    }
}

/// The nodes a domain's (re)start writes, as the build packs them into the
/// bundle: records of `flags u8, owner u16, reader u16, path_len u8,
/// value_len u8, path, value` (little endian). FLAG_FRESH marks a
/// directory removed first on a restart, so nothing of the old run
/// survives in it. `reader` is the one other domain that may read it
/// (NO_READER: none).
pub mod seed {
    use super::*;

    pub const FLAG_FRESH: u8 = 1;
    /// The other domain may write as well as read (a shared directory).
    pub const FLAG_PEER_WRITES: u8 = 2;
    pub const NO_READER: DomId = 0xffff;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Record<'a> {
        pub flags: u8,
        pub owner: DomId,
        pub reader: DomId,
        pub path: &'a str,
        pub value: &'a str,
    }

    /// The records of `blob`; stops at the first malformed one.
    pub fn records(blob: &[u8]) -> impl Iterator<Item = Record<'_>> {
        let mut at = 0;
        core::iter::from_fn(move || {
            let h = blob.get(at..at + 7)?;
            let (plen, vlen) = (h[5] as usize, h[6] as usize);
            let body = blob.get(at + 7..at + 7 + plen + vlen)?;
            let path = core::str::from_utf8(&body[..plen]).ok()?;
            let value = core::str::from_utf8(&body[plen..]).ok()?;
            at += 7 + plen + vlen;
            Some(Record { flags: h[0], owner: u16::from_le_bytes([h[1], h[2]]), reader: u16::from_le_bytes([h[3], h[4]]), path, value })
        })
    }

    /// Appends a record (host side, at build time).
    #[cfg(any(feature = "alloc", test))]
    pub fn push(out: &mut alloc_vec::Vec<u8>, r: &Record<'_>) -> Result<(), &'static str> {
        // Lengths are stored as bytes: a value of 256 would read back as 0.
        if !valid_path(r.path.as_bytes()) || r.value.len() > VALUE_MAX.min(255) {
            return Err("path or value out of the store's limits");
        }
        out.push(r.flags);
        out.extend_from_slice(&r.owner.to_le_bytes());
        out.extend_from_slice(&r.reader.to_le_bytes());
        out.push(r.path.len() as u8);
        out.push(r.value.len() as u8);
        out.extend_from_slice(r.path.as_bytes());
        out.extend_from_slice(r.value.as_bytes());
        Ok(())
    }

    #[cfg(any(feature = "alloc", test))]
    mod alloc_vec {
        extern crate alloc;
        pub use alloc::vec::Vec;
    }

    impl Store {
        /// (Re)writes a domain's seed: removes its FLAG_FRESH directories,
        /// then writes every record. Returns how many records failed (a
        /// full store), for the log, and the connections whose watches
        /// fired (their rings to fill).
        pub fn apply_seed(&mut self, blob: &[u8]) -> (usize, u32) {
            let mut fired = 0;
            for r in records(blob).filter(|r| r.flags & FLAG_FRESH != 0) {
                let _ = self.apply_rm(DOMID_HV, r.path.as_bytes(), &mut fired);
            }
            let mut failed = 0;
            for r in records(blob) {
                let readers: &[DomId] = if r.reader == NO_READER { &[] } else { &[r.reader] };
                let bits = if r.flags & FLAG_PEER_WRITES != 0 { READ | WRITE } else { READ };
                if self.populate_with(r.path, r.value, r.owner, readers, bits, &mut fired).is_err() {
                    failed += 1;
                }
            }
            (failed, fired)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::xenstore::tests::big_stack;

        #[test]
        fn a_restart_replaces_what_the_old_run_left() {
            big_stack(|| {
            let mut blob = Vec::new();
            push(&mut blob, &Record { flags: FLAG_FRESH, owner: 1, reader: NO_READER, path: "/local/domain/1", value: "" }).unwrap();
            push(&mut blob, &Record { flags: 0, owner: 1, reader: 2, path: "/local/domain/1/device/vkbd/0/state", value: "1" }).unwrap();
            assert!(push(&mut blob.clone(), &Record { flags: 0, owner: 1, reader: 2, path: "bad//path", value: "" }).is_err());
            let mut s = Store::new();
            s.connect(0, 1, Quota::DEFAULT);
            assert_eq!(s.apply_seed(&blob).0, 0);
            let mut fired = 0;
            s.apply_write(1, b"/local/domain/1/leftover", Some(b"x"), &mut fired).unwrap();
            s.apply_write(1, b"/local/domain/1/device/vkbd/0/state", Some(b"4"), &mut fired).unwrap();
            assert_eq!(s.apply_seed(&blob).0, 0);
            assert!(s.find(b"/local/domain/1/leftover").is_none());
            let i = s.find(b"/local/domain/1/device/vkbd/0/state").unwrap();
            assert_eq!(s.nodes[i].value(), b"1");
            assert_eq!(s.nodes[i].perms.of(2), READ);
            // A truncated blob yields the whole records before the cut.
            assert_eq!(records(&blob[..blob.len() - 1]).count(), 1);
            });
        }
    }
}
