//! A xenstore client speaking the wire protocol over a byte stream.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use std::time::Instant;

use xen_abi::io::xs_wire::XsHeader;

use super::{os_error, sys, XENBUS_DEVICE, XENSTORED_SOCKET};
use crate::xs_client::{self, XsConnection};
use crate::{Error, Result};

/// A connection xenstore messages flow over.
pub trait XsStream: Read + Write + AsFd + Send {}
impl<T: Read + Write + AsFd + Send> XsStream for T {}

/// A byte stream (xenstored's socket, the xenbus device, or a test's
/// socket pair) as a message connection.
pub struct StreamConnection {
    stream: Box<dyn XsStream>,
    epoch: Instant,
}

impl XsConnection for StreamConnection {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.stream.write_all(msg).map_err(os_error)
    }

    fn recv(&mut self, timeout_ms: Option<u32>) -> Result<Option<(XsHeader, Vec<u8>)>> {
        if let Some(ms) = timeout_ms {
            if !sys::poll_readable(self.stream.as_fd(), ms).map_err(os_error)? {
                return Ok(None);
            }
        }
        read_message(&mut *self.stream).map(Some)
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

/// One xenstore connection of a Linux process; its waiters block.
pub type XsClient = xs_client::XsClient<Mutex<xs_client::Conn<StreamConnection>>>;

impl XsClient {
    /// A client over an already open connection; nothing is sent until
    /// the first request.
    pub fn new(stream: Box<dyn XsStream>) -> Self {
        Self::blocking(StreamConnection {
            stream,
            epoch: Instant::now(),
        })
    }

    /// xenstored's socket if there is one (dom0), else `/dev/xen/xenbus`.
    pub fn open_default() -> Result<Self> {
        match UnixStream::connect(XENSTORED_SOCKET) {
            Ok(s) => Ok(Self::new(Box::new(s))),
            Err(_) => {
                let f = std::fs::File::options()
                    .read(true)
                    .write(true)
                    .open(XENBUS_DEVICE)
                    .map_err(os_error)?;
                Ok(Self::new(Box::new(f)))
            }
        }
    }
}

/// One message. A message of a type we do not know is read whole (its
/// payload too, so the next read starts at a header) and reported as
/// invalid; a length beyond the protocol's limit leaves no way to find the
/// next header, so the connection is treated as closed.
fn read_message(s: &mut dyn XsStream) -> Result<(XsHeader, Vec<u8>)> {
    let mut raw = [0u8; XsHeader::SIZE];
    s.read_exact(&mut raw).map_err(|_| Error::Closed)?;
    let at = xen_abi::io::xs_wire::header_offsets::LEN;
    let len = u32::from_le_bytes([raw[at], raw[at + 1], raw[at + 2], raw[at + 3]]) as usize;
    if len > xen_abi::io::xs_wire::XENSTORE_PAYLOAD_MAX {
        return Err(Error::Closed);
    }
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).map_err(|_| Error::Closed)?;
    let h = XsHeader::decode(&raw).map_err(|_| Error::Invalid("xenstore message of an unknown type"))?;
    Ok((h, payload))
}

#[cfg(test)]
mod read_tests {
    use super::*;

    /// A message of an unknown type is consumed whole: the message after
    /// it still reads. (f64e04b left its payload in the stream, so the
    /// next "header" was payload bytes.)
    #[test]
    fn an_unknown_message_type_does_not_desynchronise_the_stream() {
        let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let header = |ty: u32, len: u32| -> Vec<u8> {
            [ty, 7, 0, len].iter().flat_map(|x| x.to_le_bytes()).collect()
        };
        a.write_all(&header(0xdead, 5)).unwrap();
        a.write_all(b"junk!").unwrap();
        a.write_all(&header(2, 3)).unwrap(); // XS_READ
        a.write_all(b"ok\0").unwrap();
        a.write_all(&header(2, 1 << 20)).unwrap(); // beyond the limit
        let mut s: Box<dyn XsStream> = Box::new(b);
        assert!(matches!(read_message(&mut *s), Err(Error::Invalid(_))));
        let (h, p) = read_message(&mut *s).unwrap();
        assert_eq!((h.req_id, p.as_slice()), (7, &b"ok\0"[..]));
        assert_eq!(read_message(&mut *s).unwrap_err(), Error::Closed);
    }
}

#[cfg(test)]
mod tests {
    //! The client against a fake xenstored that serves the loopback store
    //! over a socket pair, so every message is encoded and parsed for real.
    use super::*;
    use crate::loopback::Loopback;
    use crate::xs_msg::{self, Request};
    use crate::Xenstore;
    use std::thread;
    use std::time::Duration;
    use xen_abi::io::xs_wire::XsType;

    fn serve(mut s: UnixStream, lb: Loopback) {
        let xs = lb.xenstore(0);
        let mut pending_tx: Vec<(String, Vec<u8>)> = Vec::new();
        s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
        loop {
            // Forward fired watches as unsolicited WATCH_EVENT messages.
            while let Ok(Some(ev)) = xs.wait_watch(0) {
                let payload = xs_msg::watch_event_payload(&ev);
                let mut r = Request {
                    msg_type: XsType::WatchEvent,
                    tx_id: 0,
                    payload,
                };
                r.tx_id = 0;
                if s.write_all(&r.encode(0).unwrap()).is_err() {
                    return;
                }
            }
            let mut h = [0u8; 16];
            match s.read_exact(&mut h) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
                Err(_) => return,
            }
            let h = XsHeader::decode(&h).unwrap();
            let mut p = vec![0u8; h.len as usize];
            s.set_read_timeout(None).unwrap();
            s.read_exact(&mut p).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
            let arg = |i: usize| {
                String::from_utf8(p.split(|&b| b == 0).nth(i).unwrap().to_vec()).unwrap()
            };
            let result: Result<Vec<u8>> = match h.msg_type {
                XsType::Read => xs.read(&arg(0)),
                XsType::Write => {
                    let path = arg(0);
                    let value = p[path.len() + 1..].to_vec();
                    if h.tx_id != 0 {
                        pending_tx.push((path, value));
                        Ok(b"OK\0".to_vec())
                    } else {
                        xs.write(&path, &value).map(|_| b"OK\0".to_vec())
                    }
                }
                XsType::Directory => xs
                    .directory(&arg(0))
                    .map(|d| d.iter().flat_map(|n| n.bytes().chain([0])).collect()),
                XsType::Watch => xs.watch(&arg(0), &arg(1)).map(|_| b"OK\0".to_vec()),
                XsType::Unwatch => xs.unwatch(&arg(0), &arg(1)).map(|_| b"OK\0".to_vec()),
                XsType::Rm => xs.rm(&arg(0)).map(|_| b"OK\0".to_vec()),
                XsType::Mkdir => xs.mkdir(&arg(0)).map(|_| b"OK\0".to_vec()),
                XsType::TransactionStart => Ok(b"7\0".to_vec()),
                XsType::TransactionEnd => {
                    let all: Vec<(&str, &[u8])> = pending_tx
                        .iter()
                        .map(|(p, v)| (p.as_str(), v.as_slice()))
                        .collect();
                    let r = if arg(0) == "T" {
                        xs.write_all(&all)
                    } else {
                        Ok(())
                    };
                    pending_tx.clear();
                    r.map(|_| b"OK\0".to_vec())
                }
                _ => Err(Error::Store("ENOSYS".into())),
            };
            let (ty, payload) = match result {
                Ok(v) => (h.msg_type, v),
                Err(Error::NotFound) => (XsType::Error, b"ENOENT\0".to_vec()),
                Err(_) => (XsType::Error, b"EINVAL\0".to_vec()),
            };
            let reply = Request {
                msg_type: ty,
                tx_id: h.tx_id,
                payload,
            };
            if s.write_all(&reply.encode(h.req_id).unwrap()).is_err() {
                return;
            }
        }
    }

    #[test]
    fn client_over_the_wire() {
        let lb = Loopback::new();
        let (a, b) = UnixStream::pair().unwrap();
        let server_lb = lb.clone();
        let server = thread::spawn(move || serve(b, server_lb));
        let c = XsClient::new(Box::new(a));
        c.write("/local/domain/1/device/vsnd/0/state", b"1")
            .unwrap();
        assert_eq!(c.read("/local/domain/1/device/vsnd/0/state").unwrap(), b"1");
        assert_eq!(c.read("/missing"), Err(Error::NotFound));
        assert_eq!(c.directory("/local/domain/1/device").unwrap(), vec!["vsnd"]);
        c.watch("/local/domain/1/device", "tok").unwrap();
        let first = c.wait_watch(1000).unwrap().unwrap();
        assert_eq!(first.token, "tok");
        // A write from another connection arrives as a watch event.
        lb.xenstore(3)
            .write("/local/domain/1/device/vsnd/0/x", b"y")
            .unwrap();
        let ev = c.wait_watch(1000).unwrap().unwrap();
        assert_eq!(ev.path, "/local/domain/1/device/vsnd/0/x");
        c.write_all(&[("/t/a", b"1"), ("/t/b", b"2")]).unwrap();
        assert_eq!(lb.xenstore(0).read("/t/b").unwrap(), b"2");
        c.rm("/t").unwrap();
        assert_eq!(c.read("/t/a"), Err(Error::NotFound));
        assert_eq!(c.wait_watch(20).unwrap(), None);
        drop(c);
        server.join().unwrap();
    }
}
