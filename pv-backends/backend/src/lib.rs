//! What every Linux PV backend shares.
//!
//! * [`Device`] — one backend device instance (a vsnd card, a vdispl
//!   display, a vkbd): maps the frontend's rings and answers its events.
//! * [`serve`] — the xenbus state machine around a [`Device`]: InitWait,
//!   connect when the frontend has published its transport, Connected, and
//!   on any error from the device a log line and a move to Closing (never a
//!   panic); back to InitWait when the frontend closes, so it can reconnect.
//! * [`Supervisor`] — watches the backend directories of our domain and
//!   serves each device in its own thread, so one misbehaving frontend
//!   never stalls another.
//! * [`toolstack`] — writes device nodes the way libxl does, for tests and
//!   the desktop simulator.
//! * [`testlog`] — a logger that keeps lines in memory, for tests that
//!   assert a bad frontend was logged.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod runner;
mod supervisor;
pub mod testlog;
pub mod toolstack;

pub use runner::{serve, Ctx, Device, DeviceError};
pub use supervisor::{DeviceFactory, DeviceInfo, Supervisor};
