//! [`Platform`]: the displays the compositor drives — headless, desktop
//! windows, or DRM/KMS — and the input they report.

use std::io;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};

use cockpit_core::{DisplayEvent, DisplayImage, HeadlessOutput, Layout, Output, PixelFormat};

/// One output per layout display.
pub trait Platform {
    /// Formats display `d` can scan out straight from a source's buffer.
    fn scanout_formats(&self, d: usize) -> Vec<PixelFormat>;
    /// Shows `image` on display `d`, without waiting for another display
    /// (nor for this one's previous flip).
    fn present(&mut self, d: usize, image: DisplayImage<'_>) -> io::Result<()>;
    /// Collects input since the last call; `false` once the user closed it.
    fn poll_input(&mut self, _out: &mut Vec<DisplayEvent>) -> bool {
        true
    }
    /// Descriptors that become readable when the platform has news (a
    /// flip completed); the loop then calls [`service`](Self::service).
    fn wake_fds(&self) -> Vec<BorrowedFd<'_>> {
        Vec::new()
    }
    /// Handles what [`wake_fds`](Self::wake_fds) announced, without waiting.
    fn service(&mut self) {}
    /// Writes a PNG of each display into `dir` (named after the display), if supported.
    fn screenshot(&self, _dir: &Path, _tag: &str) -> io::Result<()> {
        Ok(())
    }
}

/// In-memory outputs with PNG screenshots.
pub struct Headless {
    names: Vec<String>,
    /// One per layout display, in layout order.
    pub outputs: Vec<HeadlessOutput>,
}

impl Headless {
    /// Outputs for `layout`'s displays; with `every = Some((n, dir))` each
    /// also writes a PNG into `dir` every `n` presented frames.
    pub fn new(layout: &Layout, every: Option<(u64, PathBuf)>) -> Headless {
        let outputs = layout
            .displays
            .iter()
            .map(|d| {
                let o = HeadlessOutput::new(&d.name);
                match &every {
                    Some((n, dir)) => o.screenshot_every(*n, dir),
                    None => o,
                }
            })
            .collect();
        Headless {
            names: layout.displays.iter().map(|d| d.name.clone()).collect(),
            outputs,
        }
    }
}

impl Platform for Headless {
    fn scanout_formats(&self, d: usize) -> Vec<PixelFormat> {
        self.outputs[d].scanout_formats()
    }
    fn present(&mut self, d: usize, image: DisplayImage<'_>) -> io::Result<()> {
        self.outputs[d].present(image)
    }
    fn screenshot(&self, dir: &Path, tag: &str) -> io::Result<()> {
        for (o, n) in self.outputs.iter().zip(&self.names) {
            o.save_png(&dir.join(format!("{n}{tag}.png")))?;
        }
        Ok(())
    }
}
