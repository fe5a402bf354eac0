//! The xenstore wire protocol (`io/xs_wire.h`): message header, message
//! types, error names, and the shared page a domain talks to xenstored over.
//!
//! A message is a 16-byte header followed by `len` payload bytes, usually
//! NUL-separated strings. The same framing runs over the shared page and
//! over xenstored's Unix socket.

use super::wire::{exact, get_u32, put_u32, wire_enum, WireError};

wire_enum! {
    /// Message types, the `type` field of [`XsHeader`].
    pub enum XsType: u32 as "xenstore message type" {
        /// Toolstack control command (formerly `XS_DEBUG`).
        Control = 0,
        /// Lists the names of a node's children.
        Directory = 1,
        /// Reads a node's value.
        Read = 2,
        /// Reads a node's permission list.
        GetPerms = 3,
        /// Registers a watch (path and token); it fires once right away, then
        /// on every change at or below the path.
        Watch = 4,
        /// Removes a watch registered with the same path and token.
        Unwatch = 5,
        /// Opens a transaction; the reply carries its id as a decimal string.
        TransactionStart = 6,
        /// Commits ("T") or abandons ("F") the transaction in `tx_id`; EAGAIN means retry it.
        TransactionEnd = 7,
        /// Toolstack: hands xenstored a new domain's ring page and event channel.
        Introduce = 8,
        /// Toolstack: tells xenstored a domain is gone, dropping its connection.
        Release = 9,
        /// Returns a domain's home directory, `/local/domain/<domid>`.
        GetDomainPath = 10,
        /// Sets a node's value, creating the node (and missing parents) if needed.
        Write = 11,
        /// Creates a node with an empty value unless it exists.
        Mkdir = 12,
        /// Removes a node and everything below it.
        Rm = 13,
        /// Replaces a node's permission list.
        SetPerms = 14,
        /// Sent unsolicited by xenstored when a watch fires.
        WatchEvent = 15,
        /// Reply carrying an error name instead of the normal payload.
        Error = 16,
        /// Asks whether xenstored knows a domain ("T" or "F").
        IsDomainIntroduced = 17,
        /// Toolstack: clears a domain's shutdown flag after it resumed.
        Resume = 18,
        /// Toolstack: lets one domain (e.g. a device model) act with another's permissions.
        SetTarget = 19,
        // 20 was XS_RESTRICT, since removed; it stays unassigned.
        /// Drops every watch and open transaction of the connection.
        ResetWatches = 21,
        /// Like `Directory`, in chunks, for listings too long for one reply.
        DirectoryPart = 22,
        /// 23..=26 are described in xenstore.txt and were added to the
        /// header later; older daemons answer them with an error.
        GetFeature = 23,
        /// Sets feature bits of a connection (toolstack).
        SetFeature = 24,
        /// Reads a quota, global or for one domain.
        GetQuota = 25,
        /// Sets a quota, global or for one domain (toolstack).
        SetQuota = 26,
    }
}

/// The number reserved as "never a valid type".
pub const XS_INVALID: u32 = 0xffff;

/// Largest payload a message may carry.
pub const XENSTORE_PAYLOAD_MAX: usize = 4096;
/// Longest absolute path xenstored accepts.
pub const XENSTORE_ABS_PATH_MAX: usize = 3072;
/// Longest relative path xenstored accepts.
pub const XENSTORE_REL_PATH_MAX: usize = 2048;

/// Flag values for the `XS_WRITE` family's optional mode argument.
pub const XS_WRITE_NONE: &str = "NONE";
/// Create the node if missing, else overwrite it.
pub const XS_WRITE_CREATE: &str = "CREATE";
/// Create the node; fail with EEXIST if it already exists.
pub const XS_WRITE_CREATE_EXCL: &str = "CREATE|EXCL";

/// Errors travel as their errno *names* (the `XS_ERROR` payload), because
/// errno numbers differ between OSes. The numbers here are Linux's, for
/// backends that need to map a name to an errno.
pub const ERRORS: &[(&str, i32)] = &[
    ("EINVAL", 22),
    ("EACCES", 13),
    ("EEXIST", 17),
    ("EISDIR", 21),
    ("ENOENT", 2),
    ("ENOMEM", 12),
    ("ENOSPC", 28),
    ("EIO", 5),
    ("ENOTEMPTY", 39),
    ("ENOSYS", 38),
    ("EROFS", 30),
    ("EBUSY", 16),
    ("EAGAIN", 11),
    ("EISCONN", 106),
    ("E2BIG", 7),
    ("EPERM", 1),
];

/// Looks up an `XS_ERROR` payload ("ENOENT\0") in [`ERRORS`].
pub fn error_errno(payload: &[u8]) -> Option<i32> {
    let name = payload.strip_suffix(b"\0").unwrap_or(payload);
    ERRORS
        .iter()
        .find(|(n, _)| n.as_bytes() == name)
        .map(|&(_, e)| e)
}

/// Byte offsets within [`XsHeader`].
pub mod header_offsets {
    /// [`XsType`](super::XsType) as a `u32`.
    pub const TYPE: usize = 0;
    /// Request id, `u32`.
    pub const REQ_ID: usize = 4;
    /// Transaction id, `u32`.
    pub const TX_ID: usize = 8;
    /// Payload length in bytes, `u32`.
    pub const LEN: usize = 12;
}

/// The fixed part of every xenstore message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XsHeader {
    /// What the message asks for or answers.
    pub msg_type: XsType,
    /// Chosen by the client and echoed in the reply, to match them up.
    pub req_id: u32,
    /// Transaction the request belongs to; 0 outside transactions.
    pub tx_id: u32,
    /// Number of payload bytes that follow the header.
    pub len: u32,
}

impl XsHeader {
    /// Encoded size: four little-endian `u32`s.
    pub const SIZE: usize = 16;

    /// The header bytes as they go on the ring or socket.
    pub fn encode(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        put_u32(&mut b, header_offsets::TYPE, self.msg_type.raw());
        put_u32(&mut b, header_offsets::REQ_ID, self.req_id);
        put_u32(&mut b, header_offsets::TX_ID, self.tx_id);
        put_u32(&mut b, header_offsets::LEN, self.len);
        b
    }

    /// Decodes a header, rejecting unknown types and oversized payloads
    /// (a daemon drops a client that announces more than the limit).
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let b = exact::<{ Self::SIZE }>(bytes)?;
        let len = get_u32(b, header_offsets::LEN);
        if len as usize > XENSTORE_PAYLOAD_MAX {
            return Err(WireError::TooLong {
                limit: XENSTORE_PAYLOAD_MAX,
                actual: len as usize,
            });
        }
        Ok(Self {
            msg_type: XsType::decode_raw(get_u32(b, header_offsets::TYPE))?,
            req_id: get_u32(b, header_offsets::REQ_ID),
            tx_id: get_u32(b, header_offsets::TX_ID),
            len,
        })
    }
}

const _: () = assert!(header_offsets::LEN + 4 == XsHeader::SIZE);

/// A whole message borrowed from a receive buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XsMessage<'a> {
    /// The header; its `len` matches `payload` once parsed.
    pub header: XsHeader,
    /// The `len` bytes after the header.
    pub payload: &'a [u8],
}

impl<'a> XsMessage<'a> {
    /// Bytes the message occupies in the stream.
    pub fn wire_len(&self) -> usize {
        XsHeader::SIZE + self.payload.len()
    }

    /// Parses the first message in `bytes`. Trailing bytes (the start of
    /// the next message) are left alone; [`WireError::Truncated`] means
    /// wait for more data, any other error means drop the connection.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        let head = bytes.get(..XsHeader::SIZE).ok_or(WireError::Truncated {
            needed: XsHeader::SIZE,
            available: bytes.len(),
        })?;
        let header = XsHeader::decode(head)?;
        let end = XsHeader::SIZE + header.len as usize;
        let payload = bytes.get(XsHeader::SIZE..end).ok_or(WireError::Truncated {
            needed: end,
            available: bytes.len(),
        })?;
        Ok(Self { header, payload })
    }

    /// Writes header and payload into `out`, returning the length used.
    pub fn encode_into(&self, out: &mut [u8]) -> Result<usize, WireError> {
        if self.payload.len() > XENSTORE_PAYLOAD_MAX {
            return Err(WireError::TooLong {
                limit: XENSTORE_PAYLOAD_MAX,
                actual: self.payload.len(),
            });
        }
        let total = self.wire_len();
        let capacity = out.len();
        let dst = out.get_mut(..total).ok_or(WireError::TooLong {
            limit: capacity,
            actual: total,
        })?;
        let header = XsHeader {
            len: self.payload.len() as u32,
            ..self.header
        };
        dst[..XsHeader::SIZE].copy_from_slice(&header.encode());
        dst[XsHeader::SIZE..].copy_from_slice(self.payload);
        Ok(total)
    }
}

/// Layout of the page shared between a domain and xenstored: two byte
/// streams of [`XENSTORE_RING_SIZE`] bytes, then the indices.
pub mod page {
    /// Guest → xenstored bytes.
    pub const REQ: usize = 0;
    /// xenstored → guest bytes (replies and watch events).
    pub const RSP: usize = 1024;
    /// xenstored's read index into `REQ`.
    pub const REQ_CONS: usize = 2048;
    /// Guest's write index into `REQ`.
    pub const REQ_PROD: usize = 2052;
    /// Guest's read index into `RSP`.
    pub const RSP_CONS: usize = 2056;
    /// xenstored's write index into `RSP`.
    pub const RSP_PROD: usize = 2060;
    /// Feature bits the server offers ([`super::SERVER_FEATURE_RECONNECTION`]...).
    pub const SERVER_FEATURES: usize = 2064;
    /// [`super::CONNECTED`] or [`super::RECONNECT`].
    pub const CONNECTION: usize = 2068;
    /// Why the server gave up on the ring ([`super::XsRingError`]).
    pub const ERROR: usize = 2072;
    /// End of the fields this module describes.
    pub const END: usize = 2076;
}

/// Size of each byte stream; indices are masked with `size - 1`.
pub const XENSTORE_RING_SIZE: usize = 1024;

const _: () = assert!(page::RSP == page::REQ + XENSTORE_RING_SIZE);
const _: () = assert!(page::REQ_CONS == page::RSP + XENSTORE_RING_SIZE);
const _: () = assert!(page::END == page::REQ_CONS + XsRingIndices::SIZE);

/// Server can reset the ring on request (the `connection` field).
pub const SERVER_FEATURE_RECONNECTION: u32 = 1;
/// Server reports why it stopped servicing the ring (the `error` field).
pub const SERVER_FEATURE_ERROR: u32 = 2;
/// `connection`: normal operation.
pub const CONNECTED: u32 = 0;
/// `connection`: guest asked for a reset; the server clears it when done.
pub const RECONNECT: u32 = 1;

wire_enum! {
    /// Values of the page's `error` field.
    pub enum XsRingError: u32 as "xenstore ring error" {
        /// No error recorded.
        None = 0,
        /// Generic communication failure.
        Comm = 1,
        /// An index was out of range.
        RingIdx = 2,
        /// The guest broke the protocol (e.g. an oversized payload).
        Proto = 3,
    }
}

/// The index block at [`page::REQ_CONS`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XsRingIndices {
    /// Request bytes xenstored has consumed (free-running).
    pub req_cons: u32,
    /// Request bytes the guest has produced (free-running).
    pub req_prod: u32,
    /// Response bytes the guest has consumed (free-running).
    pub rsp_cons: u32,
    /// Response bytes xenstored has produced (free-running).
    pub rsp_prod: u32,
    /// Feature bits the server offers ([`SERVER_FEATURE_RECONNECTION`], [`SERVER_FEATURE_ERROR`]).
    pub server_features: u32,
    /// [`CONNECTED`], or [`RECONNECT`] while a guest-requested reset is in progress.
    pub connection: u32,
    /// Raw, because a server without [`SERVER_FEATURE_ERROR`] may leave
    /// anything here; see [`Self::ring_error`].
    pub error: u32,
}

impl XsRingIndices {
    /// Encoded size: seven little-endian `u32`s.
    pub const SIZE: usize = 28;

    /// The index block as it sits on the page at [`page::REQ_CONS`].
    pub fn encode(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        let fields = [
            self.req_cons,
            self.req_prod,
            self.rsp_cons,
            self.rsp_prod,
            self.server_features,
            self.connection,
            self.error,
        ];
        for (i, v) in fields.into_iter().enumerate() {
            put_u32(&mut b, i * 4, v);
        }
        b
    }

    /// Reads the block from exactly [`Self::SIZE`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let b = exact::<{ Self::SIZE }>(bytes)?;
        let at = |field: usize| get_u32(b, field - page::REQ_CONS);
        Ok(Self {
            req_cons: at(page::REQ_CONS),
            req_prod: at(page::REQ_PROD),
            rsp_cons: at(page::RSP_CONS),
            rsp_prod: at(page::RSP_PROD),
            server_features: at(page::SERVER_FEATURES),
            connection: at(page::CONNECTION),
            error: at(page::ERROR),
        })
    }

    /// The `error` field, if the server advertises it and it is known.
    pub fn ring_error(&self) -> Option<XsRingError> {
        if self.server_features & SERVER_FEATURE_ERROR == 0 {
            return None;
        }
        XsRingError::from_raw(self.error)
    }

    /// Unread request bytes; fails if the producer is more than a ring ahead.
    pub fn req_pending(&self) -> Result<u32, WireError> {
        stream_pending(self.req_prod, self.req_cons)
    }

    /// Unread response bytes; fails if the producer is more than a ring ahead.
    pub fn rsp_pending(&self) -> Result<u32, WireError> {
        stream_pending(self.rsp_prod, self.rsp_cons)
    }
}

/// Offset into a stream buffer for a free-running index.
pub const fn mask_index(idx: u32) -> usize {
    (idx as usize) & (XENSTORE_RING_SIZE - 1)
}

fn stream_pending(prod: u32, cons: u32) -> Result<u32, WireError> {
    let n = prod.wrapping_sub(cons);
    if n as usize > XENSTORE_RING_SIZE {
        return Err(WireError::TooLong {
            limit: XENSTORE_RING_SIZE,
            actual: n as usize,
        });
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_numbers() {
        assert_eq!(XsType::Control.raw(), 0);
        assert_eq!(XsType::Read.raw(), 2);
        assert_eq!(XsType::Watch.raw(), 4);
        assert_eq!(XsType::TransactionEnd.raw(), 7);
        assert_eq!(XsType::Write.raw(), 11);
        assert_eq!(XsType::WatchEvent.raw(), 15);
        assert_eq!(XsType::Error.raw(), 16);
        assert_eq!(XsType::SetTarget.raw(), 19);
        assert_eq!(XsType::from_raw(20), None);
        assert_eq!(XsType::ResetWatches.raw(), 21);
        assert_eq!(XsType::DirectoryPart.raw(), 22);
        assert_eq!(XsType::from_raw(XS_INVALID), None);
    }

    #[test]
    fn header_bytes() {
        let h = XsHeader {
            msg_type: XsType::Read,
            req_id: 0x1122_3344,
            tx_id: 7,
            len: 5,
        };
        let b = h.encode();
        assert_eq!(
            b,
            [2, 0, 0, 0, 0x44, 0x33, 0x22, 0x11, 7, 0, 0, 0, 5, 0, 0, 0]
        );
        assert_eq!(XsHeader::decode(&b), Ok(h));
    }

    #[test]
    fn message_parse() {
        let mut buf = [0u8; 64];
        let msg = XsMessage {
            header: XsHeader {
                msg_type: XsType::Write,
                req_id: 1,
                tx_id: 0,
                len: 0,
            },
            payload: b"device/vkbd/0/state\x004",
        };
        let n = msg.encode_into(&mut buf).unwrap();
        assert_eq!(n, 16 + 21);
        let parsed = XsMessage::parse(&buf[..n + 3]).unwrap();
        assert_eq!(parsed.header.len, 21);
        assert_eq!(parsed.payload, msg.payload);
        assert_eq!(parsed.wire_len(), n);
        assert_eq!(
            XsMessage::parse(&buf[..n - 1]),
            Err(WireError::Truncated {
                needed: n,
                available: n - 1
            })
        );
        assert!(matches!(
            XsMessage::parse(&buf[..3]),
            Err(WireError::Truncated { needed: 16, .. })
        ));
    }

    #[test]
    fn oversized_and_unknown_rejected() {
        let mut h = XsHeader {
            msg_type: XsType::Read,
            req_id: 0,
            tx_id: 0,
            len: 4096,
        }
        .encode();
        assert!(XsHeader::decode(&h).is_ok());
        h[12..16].copy_from_slice(&4097u32.to_le_bytes());
        assert!(matches!(
            XsHeader::decode(&h),
            Err(WireError::TooLong { .. })
        ));
        h[12..16].copy_from_slice(&0u32.to_le_bytes());
        h[0..4].copy_from_slice(&20u32.to_le_bytes());
        assert!(matches!(
            XsHeader::decode(&h),
            Err(WireError::UnknownValue { value: 20, .. })
        ));
    }

    #[test]
    fn error_names() {
        assert_eq!(error_errno(b"ENOENT\0"), Some(2));
        assert_eq!(error_errno(b"EACCES"), Some(13));
        assert_eq!(error_errno(b"EWHAT"), None);
        assert_eq!(ERRORS.len(), 16);
    }

    #[test]
    fn page_layout() {
        let idx = XsRingIndices {
            req_cons: 1,
            req_prod: 2,
            rsp_cons: 3,
            rsp_prod: 4,
            server_features: SERVER_FEATURE_RECONNECTION | SERVER_FEATURE_ERROR,
            connection: RECONNECT,
            error: 2,
        };
        let b = idx.encode();
        assert_eq!(b[page::RSP_PROD - page::REQ_CONS], 4);
        assert_eq!(b[page::ERROR - page::REQ_CONS], 2);
        assert_eq!(XsRingIndices::decode(&b), Ok(idx));
        assert_eq!(idx.ring_error(), Some(XsRingError::RingIdx));
        assert_eq!(idx.req_pending(), Ok(1));
        let bad = XsRingIndices {
            req_prod: 1025,
            ..Default::default()
        };
        assert!(bad.req_pending().is_err());
        assert_eq!(mask_index(1025), 1);
    }
}
