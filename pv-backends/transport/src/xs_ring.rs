//! A domain's end of its xenstore ring page (`io/xs_wire.h`): the
//! connection a guest without an OS's xenbus driver talks to the store
//! over. The page is the one `HVM_PARAM_STORE_PFN` names; the doorbell is
//! the port `HVM_PARAM_STORE_EVTCHN` names.
//!
//! The store is a peer like any other: indices it writes are read once,
//! and a producer more than a ring ahead, or a message longer than the
//! protocol allows, closes the connection rather than being trusted.

use alloc::vec::Vec;

use xen_abi::io::xs_wire::{mask_index, page, XsHeader, XENSTORE_PAYLOAD_MAX, XENSTORE_RING_SIZE};

use crate::xs_client::XsConnection;
use crate::{Error, Fence, Result, RingMemory};

/// The store's event channel, and the time to wait on it by.
pub trait Doorbell: Send {
    /// Tells the store there are requests, or room for responses.
    fn notify(&mut self) -> Result<()>;
    /// Waits up to `timeout_ms` (`None`: without limit) for the store's
    /// event. Waking early is allowed: the caller looks at the ring again.
    fn wait(&mut self, timeout_ms: Option<u32>) -> Result<()>;
    /// A monotonic clock in milliseconds.
    fn now_ms(&self) -> u64;
}

/// The guest side of the ring page.
pub struct RingConnection<M, D> {
    page: M,
    bell: D,
    /// Response bytes taken off the ring that do not yet make a message.
    rx: Vec<u8>,
    /// A message went out in part only: the stream cannot be framed again.
    broken: bool,
}

/// How long a request may wait for room in the ring before the
/// connection gives up (and, being half-written, is closed).
const SEND_TIMEOUT_MS: u64 = 30_000;

impl<M: RingMemory + Send, D: Doorbell> RingConnection<M, D> {
    /// A connection over `page` (at least a page long), signalled by `bell`.
    pub fn new(page: M, bell: D) -> Result<Self> {
        if page.len() < page::END {
            return Err(Error::Invalid("xenstore page too small"));
        }
        Ok(Self {
            page,
            bell,
            rx: Vec::new(),
            broken: false,
        })
    }

    /// Copies as much of `data` into the request ring as fits; how much.
    fn push(&mut self, data: &[u8]) -> Result<usize> {
        let cons = self.page.read_u32(page::REQ_CONS);
        let prod = self.page.read_u32(page::REQ_PROD);
        let used = prod.wrapping_sub(cons) as usize;
        if used > XENSTORE_RING_SIZE {
            return Err(Error::Closed);
        }
        let n = data.len().min(XENSTORE_RING_SIZE - used);
        // The store may have consumed bytes we must not overwrite before
        // we saw its index move.
        self.page.fence(Fence::Full);
        for (i, &b) in data[..n].iter().enumerate() {
            let at = page::REQ + mask_index(prod.wrapping_add(i as u32));
            self.page.write_bytes(at, &[b]);
        }
        self.page.fence(Fence::Write);
        self.page.write_u32(page::REQ_PROD, prod.wrapping_add(n as u32));
        Ok(n)
    }

    /// Takes every response byte the store has published.
    fn pull(&mut self) -> Result<usize> {
        let cons = self.page.read_u32(page::RSP_CONS);
        let prod = self.page.read_u32(page::RSP_PROD);
        let n = prod.wrapping_sub(cons) as usize;
        if n > XENSTORE_RING_SIZE {
            return Err(Error::Closed);
        }
        self.page.fence(Fence::Read);
        let start = mask_index(cons);
        let first = n.min(XENSTORE_RING_SIZE - start);
        let mut buf = alloc::vec![0u8; n];
        self.page.read_bytes(page::RSP + start, &mut buf[..first]);
        self.page.read_bytes(page::RSP, &mut buf[first..]);
        self.rx.extend_from_slice(&buf);
        self.page.fence(Fence::Full);
        self.page.write_u32(page::RSP_CONS, prod);
        Ok(n)
    }

    /// A whole message from what was pulled, if there is one.
    fn take_message(&mut self) -> Result<Option<(XsHeader, Vec<u8>)>> {
        if self.rx.len() < XsHeader::SIZE {
            return Ok(None);
        }
        let at = xen_abi::io::xs_wire::header_offsets::LEN;
        let len = u32::from_le_bytes([self.rx[at], self.rx[at + 1], self.rx[at + 2], self.rx[at + 3]]) as usize;
        if len > XENSTORE_PAYLOAD_MAX {
            return Err(Error::Closed);
        }
        if self.rx.len() < XsHeader::SIZE + len {
            return Ok(None);
        }
        let msg: Vec<u8> = self.rx.drain(..XsHeader::SIZE + len).collect();
        let h = XsHeader::decode(&msg[..XsHeader::SIZE])
            .map_err(|_| Error::Invalid("xenstore message of an unknown type"))?;
        Ok(Some((h, msg[XsHeader::SIZE..].to_vec())))
    }
}

impl<M: RingMemory + Send, D: Doorbell> XsConnection for RingConnection<M, D> {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        if self.broken {
            return Err(Error::Closed);
        }
        let mut sent = 0;
        let mut deadline = self.bell.now_ms().saturating_add(SEND_TIMEOUT_MS);
        while sent < msg.len() {
            let n = match self.push(&msg[sent..]) {
                Ok(n) => n,
                Err(e) => {
                    self.broken = sent > 0;
                    return Err(e);
                }
            };
            if n > 0 {
                deadline = self.bell.now_ms().saturating_add(SEND_TIMEOUT_MS);
            }
            sent += n;
            self.bell.notify()?;
            if sent < msg.len() {
                if self.bell.now_ms() >= deadline {
                    self.broken = sent > 0;
                    return Err(Error::Timeout);
                }
                self.bell.wait(Some(10))?;
            }
        }
        Ok(())
    }

    fn recv(&mut self, timeout_ms: Option<u32>) -> Result<Option<(XsHeader, Vec<u8>)>> {
        if self.broken {
            return Err(Error::Closed);
        }
        let deadline = timeout_ms.map(|t| self.bell.now_ms().saturating_add(t.into()));
        loop {
            if let Some(m) = self.take_message()? {
                return Ok(Some(m));
            }
            if self.pull()? > 0 {
                // Room freed: a store waiting to write more may go on.
                self.bell.notify()?;
                continue;
            }
            let left = match deadline {
                None => None,
                Some(d) => match d.saturating_sub(self.bell.now_ms()) {
                    0 => return Ok(None),
                    l => Some(l.min(u32::MAX.into()) as u32),
                },
            };
            self.bell.wait(left)?;
        }
    }

    fn now_ms(&self) -> u64 {
        self.bell.now_ms()
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    //! The ring client against a toy store on the other side of a page.
    //! The store answers every request with its first argument reversed
    //! (and fires a watch event before answering "/watch"); it serves when
    //! notified, only when the client waits, or never.
    use super::*;
    use crate::xs_client::SpinClient;
    use crate::xs_msg::Request;
    use crate::Xenstore;
    use std::sync::Mutex;
    use xen_abi::io::xs_wire::XsType;

    /// One page of plain memory.
    struct PageMemory(Mutex<Vec<u8>>);

    impl RingMemory for PageMemory {
        fn len(&self) -> usize {
            4096
        }
        fn read_u32(&self, o: usize) -> u32 {
            let m = self.0.lock().unwrap();
            u32::from_le_bytes(m[o..o + 4].try_into().unwrap())
        }
        fn write_u32(&self, o: usize, v: u32) {
            self.0.lock().unwrap()[o..o + 4].copy_from_slice(&v.to_le_bytes())
        }
        fn read_bytes(&self, o: usize, buf: &mut [u8]) {
            buf.copy_from_slice(&self.0.lock().unwrap()[o..o + buf.len()])
        }
        fn write_bytes(&self, o: usize, d: &[u8]) {
            self.0.lock().unwrap()[o..o + d.len()].copy_from_slice(d)
        }
        fn fence(&self, _: Fence) {}
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Serves {
        OnNotify,
        OnWait,
        Never,
    }

    struct Store {
        page: &'static PageMemory,
        inbox: Vec<u8>,
        /// Replies not yet on the ring (it may be full).
        outbox: Vec<u8>,
        clock: u64,
        serves: Serves,
    }

    impl Store {
        fn serve(&mut self) {
            let page = self.page;
            let cons = page.read_u32(page::REQ_CONS);
            let prod = page.read_u32(page::REQ_PROD);
            for i in 0..prod.wrapping_sub(cons) {
                let mut b = [0u8];
                page.read_bytes(page::REQ + mask_index(cons.wrapping_add(i)), &mut b);
                self.inbox.push(b[0]);
            }
            page.write_u32(page::REQ_CONS, prod);
            while self.inbox.len() >= 16 {
                let h = XsHeader::decode(&self.inbox[..16]).unwrap();
                let end = 16 + h.len as usize;
                if self.inbox.len() < end {
                    break;
                }
                let body: Vec<u8> = self.inbox.drain(..end).skip(16).collect();
                let arg: Vec<u8> = body.split(|&b| b == 0).next().unwrap().iter().rev().copied().collect();
                if arg == b"hctaw/" {
                    let ev = Request { msg_type: XsType::WatchEvent, tx_id: 0, payload: b"/w\0t\0".to_vec() };
                    self.outbox.extend(ev.encode(0).unwrap());
                }
                let reply = Request { msg_type: h.msg_type, tx_id: 0, payload: arg };
                self.outbox.extend(reply.encode(h.req_id).unwrap());
            }
            let rsp_cons = page.read_u32(page::RSP_CONS);
            let p = page.read_u32(page::RSP_PROD);
            let room = XENSTORE_RING_SIZE - p.wrapping_sub(rsp_cons) as usize;
            let n = room.min(self.outbox.len());
            for (i, b) in self.outbox.drain(..n).enumerate() {
                page.write_bytes(page::RSP + mask_index(p.wrapping_add(i as u32)), &[b]);
            }
            page.write_u32(page::RSP_PROD, p.wrapping_add(n as u32));
        }
    }

    impl Doorbell for Store {
        fn notify(&mut self) -> Result<()> {
            if self.serves == Serves::OnNotify {
                self.serve();
            }
            Ok(())
        }
        fn wait(&mut self, _: Option<u32>) -> Result<()> {
            // A millisecond per wait: timeouts run out after that many
            // looks at the ring, and a feeding thread gets its turns.
            self.clock += 1;
            std::thread::yield_now();
            if self.serves != Serves::Never {
                self.serve();
            }
            Ok(())
        }
        fn now_ms(&self) -> u64 {
            self.clock
        }
    }

    fn client(start: u32, serves: Serves) -> (SpinClient<RingConnection<&'static PageMemory, Store>>, &'static PageMemory) {
        let page: &'static PageMemory = Box::leak(Box::new(PageMemory(Mutex::new(vec![0; 4096]))));
        for at in [page::REQ_CONS, page::REQ_PROD, page::RSP_CONS, page::RSP_PROD] {
            page.write_u32(at, start);
        }
        let store = Store { page, inbox: Vec::new(), outbox: Vec::new(), clock: 0, serves };
        (SpinClient::spin(RingConnection::new(page, store).unwrap()), page)
    }

    #[test]
    fn requests_and_replies_cross_the_wrap_and_watch_events_queue() {
        // Indices near u32::MAX and near the ring's end: both wraps.
        for serves in [Serves::OnNotify, Serves::OnWait] {
            for start in [0, 1000, u32::MAX - 20] {
                let (c, _) = client(start, serves);
                for _ in 0..40 {
                    assert_eq!(c.read("/local/domain/7/name").unwrap(), b"eman/7/niamod/lacol/");
                }
                assert_eq!(c.read("/watch").unwrap(), b"hctaw/");
                let ev = c.wait_watch(0).unwrap().unwrap();
                assert_eq!((ev.path.as_str(), ev.token.as_str()), ("/w", "t"));
                assert_eq!(c.wait_watch(5).unwrap(), None);
            }
        }
    }

    #[test]
    fn messages_longer_than_the_ring_go_out_and_come_back_in_parts() {
        for serves in [Serves::OnNotify, Serves::OnWait] {
            let (c, _) = client(u32::MAX - 100, serves);
            let path: String = (0..3000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            let want: Vec<u8> = path.bytes().rev().collect();
            assert_eq!(c.read(&path).unwrap(), want);
            assert_eq!(c.read("/x").unwrap(), b"x/");
        }
    }

    #[test]
    fn a_store_that_never_answers_times_out_and_a_half_sent_request_closes() {
        let (c, _) = client(0, Serves::Never);
        assert_eq!(c.read("/x"), Err(Error::Timeout));
        // 3000 bytes cannot all go into a ring nobody empties.
        let (c, _) = client(0, Serves::Never);
        let long: String = "p".repeat(3000);
        assert_eq!(c.read(&long), Err(Error::Timeout));
        assert_eq!(c.read("/x"), Err(Error::Closed));
    }

    #[test]
    fn hostile_indices_and_messages_close_or_skip() {
        // A response producer more than a ring ahead (1025 bytes).
        let (c, page) = client(0, Serves::Never);
        page.write_u32(page::RSP_PROD, 1025);
        assert_eq!(c.wait_watch(5), Err(Error::Closed));
        // A request consumer that ran past the producer.
        let (c, page) = client(0, Serves::Never);
        page.write_u32(page::REQ_CONS, 2000);
        assert_eq!(c.read("/x"), Err(Error::Closed));
        // A header claiming more than the protocol's 4096 bytes.
        let (c, page) = client(0, Serves::Never);
        let h = [2u32, 1, 0, 5000].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
        page.write_bytes(page::RSP, &h);
        page.write_u32(page::RSP_PROD, 16);
        assert_eq!(c.wait_watch(5), Err(Error::Closed));
        // A message of an unknown type is skipped whole; the next one reads.
        let (c, page) = client(0, Serves::Never);
        let mut m = [0xdeadu32, 0, 0, 3].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
        m.extend(b"abc");
        m.extend(Request { msg_type: XsType::WatchEvent, tx_id: 0, payload: b"/a\0b\0".to_vec() }.encode(0).unwrap());
        page.write_bytes(page::RSP, &m);
        page.write_u32(page::RSP_PROD, m.len() as u32);
        let ev = c.wait_watch(5).unwrap().unwrap();
        assert_eq!(ev.path, "/a");
    }

    #[test]
    fn a_watch_storm_is_bounded_and_duplicates_are_merged() {
        let (c, page) = client(0, Serves::Never);
        // 200 events for 100 paths, each twice, then a reply: only the
        // first MAX_QUEUED_WATCHES distinct ones are kept.
        let mut m = Vec::new();
        for i in 0..100 {
            for _ in 0..2 {
                let payload = format!("/p{i}\0t\0").into_bytes();
                m.extend(Request { msg_type: XsType::WatchEvent, tx_id: 0, payload }.encode(0).unwrap());
            }
        }
        m.extend(Request { msg_type: XsType::Read, tx_id: 0, payload: b"v".to_vec() }.encode(1).unwrap());
        // Fed in ring-sized parts as the client drains them.
        let mut fed = 0;
        let feed = |fed: &mut usize| {
            let prod = page.read_u32(page::RSP_PROD) as usize;
            let cons = page.read_u32(page::RSP_CONS) as usize;
            let n = (XENSTORE_RING_SIZE - (prod - cons)).min(m.len() - *fed);
            for i in 0..n {
                page.write_bytes(page::RSP + mask_index((prod + i) as u32), &m[*fed + i..*fed + i + 1]);
            }
            page.write_u32(page::RSP_PROD, (prod + n) as u32);
            *fed += n;
        };
        let server = std::thread::scope(|s| {
            let h = s.spawn(|| c.read("/x"));
            while fed < m.len() && !h.is_finished() {
                feed(&mut fed);
                std::thread::yield_now();
            }
            h.join().unwrap()
        });
        assert_eq!(server.unwrap(), b"v");
        let mut got = Vec::new();
        while let Some(ev) = c.wait_watch(0).unwrap() {
            got.push(ev.path);
        }
        assert_eq!(got.len(), crate::xs_client::MAX_QUEUED_WATCHES);
        assert_eq!(got[..3], ["/p0", "/p1", "/p2"]);
    }
}
