//! `cockpit`: the compositor as a program. It owns the platforms (headless,
//! desktop windows, DRM/KMS), the compositor loop that drives
//! `cockpit-core` and `cockpit-wayland` on them, and the desktop simulator's
//! two simulated guests. The `cockpit` binary's subcommands: `run`, `sim`,
//! `check`.
#![forbid(unsafe_code)]

pub mod ctl;
pub mod evdev_input;
#[cfg(feature = "kms")]
pub mod kms;
pub mod platform;
pub mod pv_backends;
pub mod pv_display;
pub mod pv_input;
pub mod runner;
pub mod sim;
#[cfg(feature = "window")]
pub mod window;
