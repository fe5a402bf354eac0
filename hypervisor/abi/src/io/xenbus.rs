//! XenBus connection states (`io/xenbus.h`) and the xenstore paths the
//! toolstack lays out for a PV device.
//!
//! Each end of a device publishes its state as a decimal string in its own
//! `state` node and watches the peer's; the handshake in each protocol
//! module is a walk through these states.

use core::fmt;

use super::wire::{parse_decimal, wire_enum, write_display, WireError};

wire_enum! {
    /// The state one end of a PV device advertises in its `state` node.
    pub enum XenbusState: u32 as "xenbus state" {
        /// Node missing or unreadable; also what a vanished peer looks like.
        Unknown = 0,
        /// Toolstack created the device; the driver is starting.
        Initialising = 1,
        /// Early setup done, waiting for the peer's details.
        InitWait = 2,
        /// Transport published (rings, event channels), waiting for peer.
        Initialised = 3,
        /// Both ends set up; the device is in normal operation.
        Connected = 4,
        /// Shutting down after an error or an unplug request.
        Closing = 5,
        /// Disconnected; the peer may free its resources or the toolstack remove the device.
        Closed = 6,
        /// Tearing down to reconnect; sndif/displif use it for recovery.
        Reconfiguring = 7,
        /// Reconfiguration finished; the device can connect again.
        Reconfigured = 8,
    }
}

impl XenbusState {
    /// Parses the value read from a `state` node ("4", "4\n", "4\0" ...).
    pub fn parse(text: &[u8]) -> Result<Self, WireError> {
        Self::decode_raw(parse_decimal(text)?)
    }

    /// Alias of [`Self::from_raw`] named after the C enum's type.
    pub const fn from_u32(v: u32) -> Option<Self> {
        Self::from_raw(v)
    }

    /// The string to write to a `state` node.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "0",
            Self::Initialising => "1",
            Self::InitWait => "2",
            Self::Initialised => "3",
            Self::Connected => "4",
            Self::Closing => "5",
            Self::Closed => "6",
            Self::Reconfiguring => "7",
            Self::Reconfigured => "8",
        }
    }
}

impl core::str::FromStr for XenbusState {
    type Err = WireError;
    fn from_str(s: &str) -> Result<Self, WireError> {
        Self::parse(s.as_bytes())
    }
}

/// Device type names used as the `<type>` path component.
pub mod device_type {
    /// Paravirtual sound card ([`sndif`](super::super::sndif)).
    pub const VSND: &str = "vsnd";
    /// Paravirtual display ([`displif`](super::super::displif)).
    pub const VDISPL: &str = "vdispl";
    /// Paravirtual keyboard, pointer and touch ([`kbdif`](super::super::kbdif)).
    pub const VKBD: &str = "vkbd";
    /// Legacy paravirtual framebuffer ([`fbif`](super::super::fbif)).
    pub const VFB: &str = "vfb";
    /// Additional PV consoles (the first one is set up without xenbus).
    pub const CONSOLE: &str = "console";
    /// Backend directory kind libxl uses for a vkbd served by a Linux
    /// user-space backend (`backend-type=linux`); the frontend side stays
    /// `vkbd`.
    pub const VINPUT: &str = "vinput";
}

/// Node names every PV device directory carries.
pub mod node {
    /// Both ends: this end's [`XenbusState`](super::XenbusState), as a decimal string.
    pub const STATE: &str = "state";
    /// Frontend → absolute path of its backend directory.
    pub const BACKEND: &str = "backend";
    /// Frontend → domain ID of the backend, in decimal.
    pub const BACKEND_ID: &str = "backend-id";
    /// Backend → absolute path of its frontend directory.
    pub const FRONTEND: &str = "frontend";
    /// Backend → domain ID of the frontend, in decimal.
    pub const FRONTEND_ID: &str = "frontend-id";
    /// Backend: "1" while the toolstack wants the device attached, "0" to unplug it.
    pub const ONLINE: &str = "online";
}

/// `device/<type>/<id>`: a frontend directory, relative to its domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrontendPath<'a> {
    /// Device type, one of [`device_type`].
    pub dev_type: &'a str,
    /// Device index within its type, as the toolstack numbered it.
    pub dev_id: u32,
}

/// `backend/<type>/<frontend-domid>/<id>`: a backend directory, relative
/// to the backend's domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendPath<'a> {
    /// Device type, one of [`device_type`].
    pub dev_type: &'a str,
    /// Domain ID of the guest the device serves.
    pub frontend_domid: u16,
    /// Device index, the same as in the frontend's path.
    pub dev_id: u32,
}

/// `/local/domain/<domid>/<path>`: makes a relative path absolute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InDomain<P> {
    /// Domain whose xenstore home the path is under.
    pub domid: u16,
    /// Path relative to that home.
    pub path: P,
}

/// `<dir>/<name>`: a node inside a directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Child<'a, P> {
    /// The directory.
    pub dir: P,
    /// Node name (or relative sub-path) appended after a `/`.
    pub name: &'a str,
}

impl fmt::Display for FrontendPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "device/{}/{}", self.dev_type, self.dev_id)
    }
}

impl fmt::Display for BackendPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "backend/{}/{}/{}",
            self.dev_type, self.frontend_domid, self.dev_id
        )
    }
}

impl<P: fmt::Display> fmt::Display for InDomain<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/local/domain/{}/{}", self.domid, self.path)
    }
}

impl<P: fmt::Display> fmt::Display for Child<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.dir, self.name)
    }
}

/// Path builders shared by the path types: no allocator, so paths are
/// rendered into caller buffers (xenstore paths are at most 3072 bytes).
pub trait XsPath: fmt::Display + Sized {
    /// Prefixes `/local/domain/<domid>/`.
    fn in_domain(self, domid: u16) -> InDomain<Self> {
        InDomain { domid, path: self }
    }
    /// Appends `/<name>`.
    fn child(self, name: &str) -> Child<'_, Self> {
        Child { dir: self, name }
    }
    /// Writes the path into `buf`, returning its length.
    fn write_to(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        write_display(buf, self)
    }
}

impl XsPath for FrontendPath<'_> {}
impl XsPath for BackendPath<'_> {}
impl<P: fmt::Display> XsPath for InDomain<P> {}
impl<P: fmt::Display> XsPath for Child<'_, P> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_numbers() {
        assert_eq!(XenbusState::Unknown.raw(), 0);
        assert_eq!(XenbusState::InitWait.raw(), 2);
        assert_eq!(XenbusState::Connected.raw(), 4);
        assert_eq!(XenbusState::Closed.raw(), 6);
        assert_eq!(XenbusState::Reconfigured.raw(), 8);
        assert_eq!(XenbusState::from_u32(9), None);
        for &s in XenbusState::ALL {
            assert_eq!(XenbusState::from_u32(s.raw()), Some(s));
            assert_eq!(XenbusState::parse(s.as_str().as_bytes()), Ok(s));
        }
    }

    #[test]
    fn state_parsing() {
        assert_eq!(XenbusState::parse(b"4\n"), Ok(XenbusState::Connected));
        assert_eq!(XenbusState::parse(b"3\0"), Ok(XenbusState::Initialised));
        assert_eq!("7".parse(), Ok(XenbusState::Reconfiguring));
        assert_eq!(
            XenbusState::parse(b"12"),
            Err(WireError::UnknownValue {
                field: "xenbus state",
                value: 12
            })
        );
        assert_eq!(XenbusState::parse(b"x"), Err(WireError::BadText));
    }

    #[test]
    fn standard_paths() {
        let mut buf = [0u8; 96];
        let fe = FrontendPath {
            dev_type: device_type::VSND,
            dev_id: 0,
        };
        let n = fe.write_to(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"device/vsnd/0");
        let n = fe
            .in_domain(1)
            .child(node::STATE)
            .write_to(&mut buf)
            .unwrap();
        assert_eq!(&buf[..n], b"/local/domain/1/device/vsnd/0/state");

        let be = BackendPath {
            dev_type: device_type::VDISPL,
            frontend_domid: 3,
            dev_id: 2,
        };
        let n = be.in_domain(0).write_to(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"/local/domain/0/backend/vdispl/3/2");
        assert!(be.in_domain(0).write_to(&mut buf[..10]).is_err());
    }
}
