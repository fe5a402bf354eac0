//! [`Canvas`]: a display's composed picture, opaque `0xffRRGGBB` pixels.

use crate::geom::Rect;

/// A composed display picture. Pixels are `u32` `0xffRRGGBB`, which is also
/// XRGB8888 in memory on little-endian machines.
#[derive(Clone, PartialEq, Eq)]
pub struct Canvas {
    width: u32,
    height: u32,
    pixels: Vec<u32>,
}

impl Canvas {
    /// A canvas filled with `0xRRGGBB`.
    pub fn new(width: u32, height: u32, rgb: u32) -> Canvas {
        Canvas {
            width,
            height,
            pixels: vec![rgb | 0xff00_0000; width as usize * height as usize],
        }
    }
    /// A canvas of `pixels` (`0xRRGGBB`, alpha forced opaque), row by row.
    ///
    /// # Panics
    /// If `pixels` does not hold `width * height` pixels.
    pub fn from_pixels(width: u32, height: u32, mut pixels: Vec<u32>) -> Canvas {
        assert_eq!(pixels.len(), width as usize * height as usize, "canvas size");
        pixels.iter_mut().for_each(|p| *p |= 0xff00_0000);
        Canvas { width, height, pixels }
    }
    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }
    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }
    /// (0, 0, width, height).
    pub fn bounds(&self) -> Rect {
        Rect::new(0, 0, self.width as i32, self.height as i32)
    }
    /// All pixels, row by row.
    pub fn pixels(&self) -> &[u32] {
        &self.pixels
    }
    /// All pixels, row by row, to write.
    pub fn pixels_mut(&mut self) -> &mut [u32] {
        &mut self.pixels
    }
    /// Pixel (x, y) as `0xffRRGGBB`.
    pub fn get(&self, x: u32, y: u32) -> u32 {
        self.pixels[y as usize * self.width as usize + x as usize]
    }
    /// Sets pixel (x, y) to `0xRRGGBB` (alpha is forced opaque).
    pub fn set(&mut self, x: u32, y: u32, argb: u32) {
        let w = self.width as usize;
        self.pixels[y as usize * w + x as usize] = argb | 0xff00_0000;
    }
    /// Row `y`, columns `x0..x1`.
    pub fn span_mut(&mut self, y: i32, x0: i32, x1: i32) -> &mut [u32] {
        let base = y as usize * self.width as usize;
        &mut self.pixels[base + x0 as usize..base + x1 as usize]
    }
    /// Fills `r` (clipped) with `0xRRGGBB`.
    pub fn fill(&mut self, r: &Rect, rgb: u32) {
        let r = r.intersect(&self.bounds());
        for y in r.y..r.bottom() {
            self.span_mut(y, r.x, r.right()).fill(rgb | 0xff00_0000);
        }
    }
    /// Copies `r` of `other` (same size) into this canvas.
    pub fn copy_rect(&mut self, other: &Canvas, r: &Rect) {
        let r = r.intersect(&self.bounds()).intersect(&other.bounds());
        let w = self.width as usize;
        for y in r.y..r.bottom() {
            let s = y as usize * w + r.x as usize;
            self.pixels[s..s + r.w as usize].copy_from_slice(&other.pixels[s..s + r.w as usize]);
        }
    }
    /// All of the canvas as a band of rows to draw into.
    pub fn band(&mut self) -> Band<'_> {
        Band { pixels: &mut self.pixels, width: self.width, y0: 0, height: self.height, canvas_height: self.height }
    }

    /// The canvas as an XRGB8888 frame, without copying its pixels.
    pub fn into_frame(self) -> crate::Frame {
        let (w, h) = (self.width, self.height);
        crate::Frame::new(
            std::sync::Arc::new(self.pixels),
            0,
            w,
            h,
            w as usize * 4,
            crate::PixelFormat::Xrgb8888,
        )
        .expect("a canvas is a valid frame")
    }

    /// An RGB PNG of the canvas.
    pub fn to_png(&self) -> Vec<u8> {
        crate::image::encode_png(self.width, self.height, self.pixels.iter().copied())
    }
}

impl std::fmt::Debug for Canvas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Canvas({}x{})", self.width, self.height)
    }
}

/// Rows `y0..y0 + height` of a canvas, to draw into: what a composition
/// writes through, so that disjoint bands of one canvas can be composed on
/// several threads at once ([`Band::split_at`]). Coordinates are the
/// canvas's own.
pub struct Band<'a> {
    pixels: &'a mut [u32],
    width: u32,
    y0: i32,
    height: u32,
    canvas_height: u32,
}

impl<'a> Band<'a> {
    /// The canvas's width.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// The whole canvas's rectangle (what layout rectangles are clipped
    /// to; the band draws only its own rows of them).
    pub fn canvas_bounds(&self) -> Rect {
        Rect::new(0, 0, self.width as i32, self.canvas_height as i32)
    }

    /// The rows it holds, as a rectangle in canvas coordinates.
    pub fn bounds(&self) -> Rect {
        Rect::new(0, self.y0, self.width as i32, self.height as i32)
    }

    /// Row `y` (canvas coordinates, inside the band), columns `x0..x1`.
    pub fn span_mut(&mut self, y: i32, x0: i32, x1: i32) -> &mut [u32] {
        let base = (y - self.y0) as usize * self.width as usize;
        &mut self.pixels[base + x0 as usize..base + x1 as usize]
    }

    /// The pixels from (x, y) to the band's end, rows `width` apart.
    pub fn from_mut(&mut self, x: i32, y: i32) -> &mut [u32] {
        let at = (y - self.y0) as usize * self.width as usize + x as usize;
        &mut self.pixels[at..]
    }

    /// All of its pixels, its first row first, and its first row's `y`.
    pub fn pixels_mut(&mut self) -> (&mut [u32], i32) {
        (self.pixels, self.y0)
    }

    /// Fills `r` (clipped to the band) with `0xRRGGBB`.
    pub fn fill(&mut self, r: &Rect, rgb: u32) {
        let r = r.intersect(&self.bounds());
        for y in r.y..r.bottom() {
            self.span_mut(y, r.x, r.right()).fill(rgb | 0xff00_0000);
        }
    }

    /// Rows before canvas row `y` and rows from it (`y` clamped into the band).
    pub fn split_at(self, y: i32) -> (Band<'a>, Band<'a>) {
        let k = (y - self.y0).clamp(0, self.height as i32) as u32;
        let (a, b) = self.pixels.split_at_mut(k as usize * self.width as usize);
        (
            Band { pixels: a, width: self.width, y0: self.y0, height: k, canvas_height: self.canvas_height },
            Band { pixels: b, width: self.width, y0: self.y0 + k as i32, height: self.height - k, canvas_height: self.canvas_height },
        )
    }
}
