//! Display backends: vdispl (`io/displif.h`) and the legacy vfb
//! (`io/fbif.h`), both onto a [`DisplaySink`] the cockpit compositor
//! implements.
//!
//! * [`DisplaySink`] receives [`Frame`]s: a mapped guest buffer plus its
//!   layout, shared (not copied) so a sink that can scan out or texture
//!   from guest memory shows it in place. A flip is reported to the
//!   frontend only when the sink calls [`FlipDone::complete`], i.e. once
//!   the frame is on screen.
//! * [`VdisplBackend`] validates every request (cookies, sizes against
//!   what was shared, formats through `drm-fourcc`, SET_CONFIG inside the
//!   connector) and answers with a negative status when it cannot honour
//!   one; a corrupted ring or a malformed configuration moves it to
//!   Closing.
//! * [`VfbBackend`] serves `xen-fbfront` guests: it maps the shared page
//!   and framebuffer by frame number through a
//!   [`pv_transport::ForeignMapper`] (under Xen: privcmd, so the backend
//!   needs rights over the guest) and turns UPDATE events into frames.
//! * [`PngSink`] writes every shown frame to a PNG file (tests, debugging);
//!   [`LatestFrameSink`] keeps the last frame per connector without
//!   copying (benchmarks, simple compositors).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod device;
mod sink;
mod vfb;

pub use device::{VdisplBackend, VdisplConfig};
pub use sink::{
    to_rgba, DisplaySink, FlipDone, Frame, LatestFrameSink, Output, PngSink, SinkError,
};
pub use vfb::{VfbBackend, VfbConfig};
