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
}

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
        let mut sent = 0;
        while sent < msg.len() {
            let n = self.push(&msg[sent..])?;
            sent += n;
            self.bell.notify()?;
            if sent < msg.len() {
                self.bell.wait(Some(10))?;
            }
        }
        Ok(())
    }

    fn recv(&mut self, timeout_ms: Option<u32>) -> Result<Option<(XsHeader, Vec<u8>)>> {
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
    //! The ring client against a toy store on the other side of a page
    //! that answers READ with the path reversed, and fires a watch event
    //! first: message framing across the ring's wrap, and hostile indices.
    use super::*;
    use crate::xs_client::SpinClient;
    use crate::Xenstore;
    use std::sync::{Arc, Mutex};
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

    /// The server side, run on each doorbell ring.
    struct Bell {
        page: &'static PageMemory,
        inbox: Arc<Mutex<Vec<u8>>>,
        clock: u64,
    }

    fn serve(page: &PageMemory, inbox: &mut Vec<u8>) {
        let cons = page.read_u32(page::REQ_CONS);
        let prod = page.read_u32(page::REQ_PROD);
        for i in 0..prod.wrapping_sub(cons) {
            let i = cons.wrapping_add(i);
            let mut b = [0u8];
            page.read_bytes(page::REQ + mask_index(i), &mut b);
            inbox.push(b[0]);
        }
        page.write_u32(page::REQ_CONS, prod);
        while inbox.len() >= 16 {
            let h = XsHeader::decode(&inbox[..16]).unwrap();
            let end = 16 + h.len as usize;
            if inbox.len() < end {
                break;
            }
            let body: Vec<u8> = inbox.drain(..end).skip(16).collect();
            let path: Vec<u8> = body.split(|&b| b == 0).next().unwrap().iter().rev().copied().collect();
            let mut out = Vec::new();
            if path == b"hctaw/" {
                out.extend(crate::xs_msg::Request { msg_type: XsType::WatchEvent, tx_id: 0, payload: b"/w\0t\0".to_vec() }.encode(0).unwrap());
            }
            out.extend(crate::xs_msg::Request { msg_type: h.msg_type, tx_id: 0, payload: path }.encode(h.req_id).unwrap());
            let p = page.read_u32(page::RSP_PROD);
            for (i, b) in out.iter().enumerate() {
                page.write_bytes(page::RSP + mask_index(p.wrapping_add(i as u32)), &[*b]);
            }
            page.write_u32(page::RSP_PROD, p.wrapping_add(out.len() as u32));
        }
    }

    impl Doorbell for Bell {
        fn notify(&mut self) -> Result<()> {
            serve(self.page, &mut self.inbox.lock().unwrap());
            Ok(())
        }
        fn wait(&mut self, t: Option<u32>) -> Result<()> {
            self.clock += u64::from(t.unwrap_or(1).max(1));
            Ok(())
        }
        fn now_ms(&self) -> u64 {
            self.clock
        }
    }

    fn client(start: u32) -> (SpinClient<RingConnection<&'static PageMemory, Bell>>, &'static PageMemory) {
        let page: &'static PageMemory = Box::leak(Box::new(PageMemory(Mutex::new(vec![0; 4096]))));
        for at in [page::REQ_CONS, page::REQ_PROD, page::RSP_CONS, page::RSP_PROD] {
            page.write_u32(at, start);
        }
        let bell = Bell { page, inbox: Arc::default(), clock: 0 };
        (SpinClient::spin(RingConnection::new(page, bell).unwrap()), page)
    }

    #[test]
    fn requests_and_replies_cross_the_wrap_and_watch_events_queue() {
        // Indices near u32::MAX and near the ring's end: both wraps.
        for start in [0, 1000, u32::MAX - 20] {
            let (c, _) = client(start);
            for _ in 0..40 {
                assert_eq!(c.read("/local/domain/7/name").unwrap(), b"eman/7/niamod/lacol/");
            }
            assert_eq!(c.read("/watch").unwrap(), b"hctaw/");
            let ev = c.wait_watch(0).unwrap().unwrap();
            assert_eq!((ev.path.as_str(), ev.token.as_str()), ("/w", "t"));
            assert_eq!(c.wait_watch(5).unwrap(), None);
        }
    }

    #[test]
    fn a_store_producer_more_than_a_ring_ahead_closes_the_connection() {
        let (c, page) = client(0);
        page.write_u32(page::RSP_PROD, 5000);
        assert_eq!(c.wait_watch(5), Err(Error::Closed));
    }
}
