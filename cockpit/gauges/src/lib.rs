//! The instrument cluster's pictures, drawn into any buffer of `u32`
//! pixels: the 5×7 [`font`], the [`Speedometer`] and the [`telltales`].
//! `no_std` with `alloc` (the dial is drawn once and kept), so the
//! compositor's simulator and the no_std cluster guest on the hypervisor
//! draw the same cluster, and the compositor's labels the same letters.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod font;
mod pixels;
mod speedometer;
mod telltales;

pub use pixels::Pixels;
pub use speedometer::{speed_at, Speedometer, MAX_KMH};
pub use telltales::{telltales, TELLTALE_AMBER, TELLTALE_RED};
