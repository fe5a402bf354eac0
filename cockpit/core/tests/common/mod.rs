//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use cockpit_core::{Canvas, Compositor, Frame, Layout, PixelFormat};

/// An 8x8 display named "d" followed by `sources` (TOML `[[source]]` tables).
pub fn compositor(sources: &str) -> Compositor {
    let text = format!("[[display]]\nname = \"d\"\nmode = \"8x8\"\nbackground = \"#0000ff\"\n{sources}");
    Compositor::new(Layout::parse(&text, Path::new("test.toml")).unwrap_or_else(|e| panic!("{e}")))
}

pub fn layout_compositor(text: &str) -> Compositor {
    Compositor::new(Layout::parse(text, Path::new("test.toml")).unwrap_or_else(|e| panic!("{e}")))
}

pub const BG: u32 = 0xff00_00ff;
pub const A: u32 = 0xffff_0000;
pub const B: u32 = 0xff00_ff00;
pub const C: u32 = 0xffff_ff00;
pub const D: u32 = 0xff00_ffff;
pub const E: u32 = 0xffff_00ff;
pub const F: u32 = 0xffff_ffff;

pub fn frame(w: u32, h: u32, px: &[u32]) -> Frame {
    Frame::from_pixels(px, w, h, PixelFormat::Xrgb8888).unwrap()
}

/// The canvas as rows of pixels, for whole-picture comparisons.
pub fn rows(c: &Canvas) -> Vec<Vec<u32>> {
    (0..c.height()).map(|y| (0..c.width()).map(|x| c.get(x, y)).collect()).collect()
}

/// An 8x8 picture: `bg` everywhere but `block` at (x, y).
pub fn expect_with(block: &[&[u32]], x: usize, y: usize) -> Vec<Vec<u32>> {
    let mut out = vec![vec![BG; 8]; 8];
    for (j, row) in block.iter().enumerate() {
        for (i, &p) in row.iter().enumerate() {
            out[y + j][x + i] = p;
        }
    }
    out
}

/// A clock the tests move by hand.
pub struct Clock(pub Instant);

impl Clock {
    pub fn new() -> Clock {
        Clock(Instant::now())
    }
    pub fn at(&self, ms: u64) -> Instant {
        self.0 + Duration::from_millis(ms)
    }
}
