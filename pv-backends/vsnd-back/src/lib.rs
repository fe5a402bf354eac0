//! The vsnd backend (`io/sndif.h`) on ALSA.
//!
//! * [`VsndBackend`] is the [`pv_backend::Device`]: it reads the card's
//!   stream tree (the same parser the frontend uses), maps each stream's
//!   request ring and event page, and answers OPEN, CLOSE, WRITE, READ,
//!   TRIGGER, SET/GET_VOLUME, MUTE/UNMUTE and HW_PARAM_QUERY. OPEN is
//!   checked against the stream's xenstore ranges; HW_PARAM_QUERY answers
//!   with their intersection with the request. CUR_POS events report
//!   bytes played or captured, one per period crossed.
//! * [`AudioBackend`] / [`PcmStream`] is where samples go: [`AlsaAudio`]
//!   (the `alsa` crate) or [`MemoryAudio`] (a test harness).
//! * [`Gain`] is the software gain stage that implements volume and mute.
//! * [`Router`] gives each (frontend domain, card) its playback and capture
//!   devices from the daemon's configuration alone ([`CardRoute`]);
//!   [`VsndLimits`] caps what one card may share and keep busy.
//!
//! Bad requests (unknown operations, windows beyond the shared buffer,
//! parameters outside the ranges, grants that do not map) get a negative
//! status and a log line; a corrupted ring moves the device to Closing.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod alsa_out;
mod audio;
mod device;
mod gain;
mod route;

pub use alsa_out::AlsaAudio;
pub use audio::{AudioBackend, MemoryAudio, MemoryTap, PcmConfig, PcmStream};
pub use device::{VsndBackend, VsndLimits, VsndStats};
pub use gain::Gain;
pub use route::{CardRoute, Router};

/// Xen errno values used in responses (negated on the wire).
pub mod errno {
    /// The audio device failed: it would not open, play, capture or
    /// trigger.
    pub const EIO: i32 = 5;
    /// A stream would take more of the driver domain than the card's
    /// quota (shared bytes of its open streams).
    pub const ENOMEM: i32 = 12;
    /// No device is configured for the stream's direction on this card.
    pub const EACCES: i32 = 13;
    /// A transfer on a paused stream.
    pub const EBUSY: i32 = 16;
    /// A bad request: unknown operation, stream not open, parameters
    /// outside the stream's ranges, a window beyond the shared buffer, or
    /// a buffer whose grants do not map.
    pub const EINVAL: i32 = 22;
    /// Volume or mute for a sample format the software gain cannot scale.
    pub const EOPNOTSUPP: i32 = 95;
}
