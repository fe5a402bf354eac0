//! Xenstore request payloads and reply parsing, on top of the framing in
//! `xen_abi::io::xs_wire`. Used by the Linux client; kept apart (and
//! no_std) so it is tested without a xenstored.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use xen_abi::io::xs_wire::{XsHeader, XsMessage, XsType, XENSTORE_PAYLOAD_MAX};

use crate::{Error, Result, WatchEvent};

/// A request to send: header fields plus payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The operation (READ, WRITE, WATCH, ...).
    pub msg_type: XsType,
    /// Transaction the request belongs to; 0 outside any transaction.
    pub tx_id: u32,
    /// The operation's arguments, already encoded (at most
    /// `XENSTORE_PAYLOAD_MAX` bytes, or [`encode`](Self::encode) fails).
    pub payload: Vec<u8>,
}

fn nul_terminated(parts: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    for p in parts {
        v.extend_from_slice(p);
        v.push(0);
    }
    v
}

impl Request {
    /// READ, MKDIR, RM, DIRECTORY and GET_PERMS: the path, NUL-terminated.
    pub fn path(msg_type: XsType, tx_id: u32, path: &str) -> Self {
        Self {
            msg_type,
            tx_id,
            payload: nul_terminated(&[path.as_bytes()]),
        }
    }

    /// WRITE: the path, NUL, then the value as is (no terminator).
    pub fn write(tx_id: u32, path: &str, value: &[u8]) -> Self {
        let mut payload = nul_terminated(&[path.as_bytes()]);
        payload.extend_from_slice(value);
        Self {
            msg_type: XsType::Write,
            tx_id,
            payload,
        }
    }

    /// WATCH and UNWATCH: path and token, each NUL-terminated.
    pub fn watch(msg_type: XsType, path: &str, token: &str) -> Self {
        Self {
            msg_type,
            tx_id: 0,
            payload: nul_terminated(&[path.as_bytes(), token.as_bytes()]),
        }
    }

    /// TRANSACTION_START: an empty NUL-terminated argument; the reply
    /// carries the new transaction id (see [`parse_tx_id`]).
    pub fn transaction_start() -> Self {
        Self {
            msg_type: XsType::TransactionStart,
            tx_id: 0,
            payload: alloc::vec![0],
        }
    }

    /// TRANSACTION_END: "T" commits, "F" abandons.
    pub fn transaction_end(tx_id: u32, commit: bool) -> Self {
        Self {
            msg_type: XsType::TransactionEnd,
            tx_id,
            payload: nul_terminated(&[if commit { b"T" } else { b"F" }]),
        }
    }

    /// The framed bytes with request id `req_id`.
    pub fn encode(&self, req_id: u32) -> Result<Vec<u8>> {
        if self.payload.len() > XENSTORE_PAYLOAD_MAX {
            return Err(Error::Invalid("xenstore payload too long"));
        }
        let mut out = alloc::vec![0u8; XsHeader::SIZE + self.payload.len()];
        let msg = XsMessage {
            header: XsHeader {
                msg_type: self.msg_type,
                req_id,
                tx_id: self.tx_id,
                len: self.payload.len() as u32,
            },
            payload: &self.payload,
        };
        msg.encode_into(&mut out)
            .map_err(|_| Error::Invalid("xenstore message does not fit"))?;
        Ok(out)
    }
}

/// Turns an `XS_ERROR` reply into an error; other replies pass through.
pub fn check_reply(msg_type: XsType, payload: &[u8]) -> Result<()> {
    if msg_type != XsType::Error {
        return Ok(());
    }
    let name = payload.strip_suffix(b"\0").unwrap_or(payload);
    match name {
        b"ENOENT" => Err(Error::NotFound),
        other => Err(Error::Store(String::from_utf8_lossy(other).to_string())),
    }
}

/// A DIRECTORY reply: NUL-separated names (an empty reply is no children).
pub fn parse_directory(payload: &[u8]) -> Vec<String> {
    payload
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).to_string())
        .collect()
}

/// A WATCH_EVENT payload: "path\0token\0".
pub fn parse_watch_event(payload: &[u8]) -> Result<WatchEvent> {
    let mut it = payload.split(|&b| b == 0);
    let path = it.next().filter(|p| !p.is_empty());
    let token = it.next();
    match (path, token) {
        (Some(p), Some(t)) => Ok(WatchEvent {
            path: String::from_utf8_lossy(p).to_string(),
            token: String::from_utf8_lossy(t).to_string(),
        }),
        _ => Err(Error::Invalid("malformed watch event")),
    }
}

/// Encodes a WATCH_EVENT payload (the server side of the above).
pub fn watch_event_payload(ev: &WatchEvent) -> Vec<u8> {
    nul_terminated(&[ev.path.as_bytes(), ev.token.as_bytes()])
}

/// A TRANSACTION_START reply: the id as decimal text.
pub fn parse_tx_id(payload: &[u8]) -> Result<u32> {
    xen_abi::io::wire::parse_decimal(payload).map_err(|_| Error::Invalid("bad transaction id"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn request_bytes() {
        let b = Request::write(5, "/a/state", b"4").encode(9).unwrap();
        assert_eq!(
            &b[..16],
            &[11, 0, 0, 0, 9, 0, 0, 0, 5, 0, 0, 0, 10, 0, 0, 0]
        );
        assert_eq!(&b[16..], b"/a/state\x004");
        let b = Request::watch(XsType::Watch, "/x", "tok")
            .encode(1)
            .unwrap();
        assert_eq!(&b[16..], b"/x\0tok\0");
        let b = Request::path(XsType::Read, 0, "/p").encode(2).unwrap();
        assert_eq!((b[0], &b[16..]), (2, &b"/p\0"[..]));
        assert_eq!(&Request::transaction_end(3, true).payload, b"T\0");
        assert!(Request::write(0, "/p", &[0; 5000]).encode(0).is_err());
    }

    #[test]
    fn replies() {
        assert_eq!(
            check_reply(XsType::Error, b"ENOENT\0"),
            Err(Error::NotFound)
        );
        assert_eq!(
            check_reply(XsType::Error, b"EACCES\0"),
            Err(Error::Store("EACCES".into()))
        );
        assert_eq!(check_reply(XsType::Read, b"x"), Ok(()));
        assert_eq!(parse_directory(b"a\0bb\0"), alloc::vec!["a", "bb"]);
        assert!(parse_directory(b"").is_empty());
        assert_eq!(parse_tx_id(b"17\0"), Ok(17));
        assert!(parse_watch_event(b"\0t\0").is_err());
        assert!(parse_watch_event(b"path-only").is_err());
    }

    proptest! {
        #[test]
        fn watch_events_round_trip(path in "/[a-z0-9/_-]{0,40}", token in "[a-z0-9]{0,12}") {
            let ev = WatchEvent { path, token };
            prop_assert_eq!(parse_watch_event(&watch_event_payload(&ev)), Ok(ev));
        }

        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_watch_event(&bytes);
            let _ = parse_directory(&bytes);
            let _ = parse_tx_id(&bytes);
            let _ = check_reply(XsType::Error, &bytes);
        }

        #[test]
        fn encoded_requests_parse_back(path in "/[a-z0-9/]{1,60}", value in proptest::collection::vec(any::<u8>(), 0..100), id in any::<u32>()) {
            let bytes = Request::write(0, &path, &value).encode(id).unwrap();
            let msg = XsMessage::parse(&bytes).unwrap();
            prop_assert_eq!(msg.header.req_id, id);
            prop_assert_eq!(msg.header.msg_type, XsType::Write);
            let nul = msg.payload.iter().position(|&b| b == 0).unwrap();
            prop_assert_eq!(&msg.payload[..nul], path.as_bytes());
            prop_assert_eq!(&msg.payload[nul + 1..], &value[..]);
        }
    }
}
