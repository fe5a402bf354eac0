//! [`Output`]: where a display's picture goes, and the headless output
//! (in memory, PNG screenshots on request or every N frames).

use std::path::{Path, PathBuf};

use crate::canvas::Canvas;
use crate::compositor::{frame_canvas, DisplayImage};
use crate::format::PixelFormat;
use crate::frame::Frame;

/// A physical (or simulated) display's sink.
pub trait Output {
    /// Formats this output can scan out straight from a source's buffer.
    fn scanout_formats(&self) -> Vec<PixelFormat>;
    /// Shows `image`. Called once per frame in which the display changed.
    fn present(&mut self, image: DisplayImage<'_>) -> std::io::Result<()>;
}

/// What a headless output holds: its own copy of the canvas, or the
/// scanned-out frame itself (shared, not copied).
#[derive(Clone, Debug)]
pub enum Shown {
    Nothing,
    Canvas(Canvas),
    Direct(Frame),
}

/// An output kept in memory. It copies only the damaged parts of a composed
/// canvas and keeps a directly scanned-out frame by reference, like a
/// display controller would.
pub struct HeadlessOutput {
    name: String,
    shown: Shown,
    presents: u64,
    every: Option<(u64, PathBuf)>,
}

impl HeadlessOutput {
    pub fn new(name: &str) -> HeadlessOutput {
        HeadlessOutput {
            name: name.into(),
            shown: Shown::Nothing,
            presents: 0,
            every: None,
        }
    }

    /// Also writes `<dir>/<name>-<frame>.png` every `n` presented frames.
    pub fn screenshot_every(mut self, n: u64, dir: &Path) -> Self {
        self.every = Some((n.max(1), dir.into()));
        self
    }

    /// How many frames were presented.
    pub fn presents(&self) -> u64 {
        self.presents
    }

    pub fn shown(&self) -> &Shown {
        &self.shown
    }

    /// The picture now shown, as a canvas (empty 0×0 before the first frame).
    pub fn screenshot(&self) -> Canvas {
        match &self.shown {
            Shown::Nothing => Canvas::new(0, 0, 0),
            Shown::Canvas(c) => c.clone(),
            Shown::Direct(f) => frame_canvas(f),
        }
    }

    /// Writes the picture now shown as a PNG.
    pub fn save_png(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.screenshot().to_png())
    }
}

impl Output for HeadlessOutput {
    fn scanout_formats(&self) -> Vec<PixelFormat> {
        PixelFormat::ALL.to_vec()
    }

    fn present(&mut self, image: DisplayImage<'_>) -> std::io::Result<()> {
        match image {
            DisplayImage::Direct(f) => self.shown = Shown::Direct(f.clone()),
            DisplayImage::Composed { canvas, damage } => match &mut self.shown {
                Shown::Canvas(c) if c.width() == canvas.width() && c.height() == canvas.height() => {
                    for r in damage {
                        c.copy_rect(canvas, r);
                    }
                }
                _ => self.shown = Shown::Canvas(canvas.clone()),
            },
        }
        self.presents += 1;
        if let Some((n, dir)) = &self.every {
            if self.presents.is_multiple_of(*n) {
                self.save_png(&dir.join(format!("{}-{:06}.png", self.name, self.presents)))?;
            }
        }
        Ok(())
    }
}
