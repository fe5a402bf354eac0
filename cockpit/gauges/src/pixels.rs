//! [`Pixels`]: a borrowed picture of `u32` pixels with a clip window.

/// `width`×`height` pixels, row by row, drawn only inside the clip window
/// (the whole picture unless narrowed). Pixel values are stored as given:
/// `0xAARRGGBB` for ARGB, anything in the top byte for XRGB.
pub struct Pixels<'a> {
    px: &'a mut [u32],
    width: u32,
    height: u32,
    clip: [i32; 4],
}

impl<'a> Pixels<'a> {
    /// The picture in `px`, or `None` if `px` holds fewer than
    /// `width * height` pixels.
    pub fn new(px: &'a mut [u32], width: u32, height: u32) -> Option<Self> {
        let n = (width as usize).checked_mul(height as usize)?;
        let (w, h) = (i32::try_from(width).ok()?, i32::try_from(height).ok()?);
        (px.len() >= n).then_some(Pixels { px, width, height, clip: [0, 0, w, h] })
    }

    /// Narrows drawing to the rectangle `x, y, w, h` (within the current window).
    pub fn clip(mut self, x: i32, y: i32, w: i32, h: i32) -> Self {
        let [x0, y0, x1, y1] = self.clip;
        self.clip = [x0.max(x), y0.max(y), x1.min(x.saturating_add(w)), y1.min(y.saturating_add(h))];
        self
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Sets pixel (x, y) if it is inside the clip window.
    pub fn set(&mut self, x: i32, y: i32, v: u32) {
        let [x0, y0, x1, y1] = self.clip;
        if x >= x0 && x < x1 && y >= y0 && y < y1 {
            self.px[y as usize * self.width as usize + x as usize] = v;
        }
    }

    /// Fills the rectangle `x, y, w, h` (clipped) with `v`.
    pub fn fill(&mut self, x: i32, y: i32, w: i32, h: i32, v: u32) {
        let [x0, y0, x1, y1] = self.clip;
        let (l, r) = (x.max(x0), x.saturating_add(w).min(x1));
        let (t, b) = (y.max(y0), y.saturating_add(h).min(y1));
        if l >= r {
            return;
        }
        for row in t..b {
            let base = row as usize * self.width as usize;
            self.px[base + l as usize..base + r as usize].fill(v);
        }
    }

    /// Every pixel, row by row.
    pub fn as_mut_slice(&mut self) -> &mut [u32] {
        let n = self.width as usize * self.height as usize;
        &mut self.px[..n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawing_stays_inside_the_clip_window() {
        let mut px = [0u32; 16];
        let mut p = Pixels::new(&mut px, 4, 4).unwrap().clip(1, 1, 2, 5);
        p.fill(-10, -10, 100, 100, 7);
        p.set(0, 0, 9);
        p.set(3, 3, 9);
        assert_eq!(px, [0, 0, 0, 0, 0, 7, 7, 0, 0, 7, 7, 0, 0, 7, 7, 0]);
        assert!(Pixels::new(&mut [0u32; 3], 2, 2).is_none());
    }
}
