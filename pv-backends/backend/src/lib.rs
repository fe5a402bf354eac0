//! What every Linux PV backend shares.
//!
//! * [`Device`] — one backend device instance (a vsnd card, a vdispl
//!   display, a vkbd): maps the frontend's rings and answers its events.
//! * [`serve`] — the xenbus state machine around a [`Device`], as
//!   `io/xenbus.h` draws it: InitWait, connect when the frontend has
//!   published its transport, Connected; Closing and Closed after the
//!   frontend's, or at once with a log line on any error from the device
//!   (never a panic); InitWait again when the frontend starts over.
//! * [`Turn`] — a bounded turn at a request ring, so one frontend keeping
//!   its ring full cannot hold its device thread.
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
mod turn;

pub use runner::{serve, Ctx, Device, DeviceError};
pub use supervisor::{DeviceFactory, DeviceInfo, Supervisor};
pub use turn::Turn;
