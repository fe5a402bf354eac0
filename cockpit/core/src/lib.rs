//! `cockpit-core`: the cockpit compositor's engine, without any platform.
//!
//! It owns:
//! - [`layout`]: layout files (displays, where each source goes, safety
//!   roles), validated with errors that name file, line and field;
//! - [`source`]: the frame-submission API producers use ([`Sources`],
//!   [`SourceHandle`], [`Frame`]); a guest display backend wires to it with a
//!   small adapter;
//! - [`compositor`]: software composition over DRM-fourcc formats with
//!   premultiplied alpha, nearest/bilinear scaling, rotation, damage
//!   tracking, direct scanout, the watchdog and its fallbacks;
//! - [`input`]: routing of display touches, pointer and keys back to the
//!   source under them, delivered through [`GuestInput`];
//! - [`output`]: the [`Output`] trait and the headless output.
//!
//! The platform outputs (DRM/KMS, a desktop window), the Wayland server and
//! the `cockpit` binary live in other crates of `cockpit/`.
#![forbid(unsafe_code)]

pub mod canvas;
mod compose;
pub mod compositor;
pub mod damage;
pub mod font;
pub mod format;
pub mod frame;
pub mod geom;
pub mod image;
pub mod input;
pub mod layout;
pub mod output;
pub mod source;

pub use canvas::Canvas;
pub use compositor::{Compositor, DisplayImage, FrameStats, SourceStatus};
pub use damage::Damage;
pub use format::PixelFormat;
pub use frame::{Frame, FrameData, FrameError};
pub use geom::{Filter, Placement, Rect, Rotation, Scaling};
pub use input::{DisplayEvent, GuestEvent, GuestInput};
pub use layout::{Layout, LayoutError, Role, SourceKey};
pub use output::{HeadlessOutput, Output};
pub use source::{ConnectError, SourceHandle, SourceId, Sources, SubPicture, MAX_SUB_PICTURES};
