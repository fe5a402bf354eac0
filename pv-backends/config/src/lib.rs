//! Configuration for the PV backends.
//!
//! * [`BackendConfig`] — the `pv-backendd` TOML file: our domain, the
//!   transport, sound routing, the display sink, input device → domain
//!   routing, and (for the simulator) the guests' devices.
//! * [`xl`] — a parser for the xl.cfg language and the `vsnd=`, `vdispl=`
//!   and `vkb=` options, producing the same xenstore nodes libxl writes
//!   ([`pv_backend::toolstack::DeviceSpec`]), so a configuration written
//!   for Xen's toolstack describes the same devices here.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod file;
pub mod xl;

pub use file::{
    BackendConfig, DisplaySection, GuestSection, InputRoute, InputSection, SinkKind, SoundRoute,
    SoundSection, TransportKind, DEVICE_KINDS,
};
