//! Rectangles, rotations, scaling modes, and the mapping between a source's
//! buffer and a display that both composition and input routing use (so a
//! touch lands on the pixel that was drawn there).

use serde::Deserialize;

/// An integer rectangle; `w` or `h` of 0 is empty.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rect {
    /// Left edge.
    pub x: i32,
    /// Top edge.
    pub y: i32,
    /// Width.
    pub w: i32,
    /// Height.
    pub h: i32,
}

impl Rect {
    /// The rectangle at (x, y) of `w`×`h`.
    pub const fn new(x: i32, y: i32, w: i32, h: i32) -> Self {
        Rect { x, y, w, h }
    }
    /// One past the right edge.
    pub fn right(&self) -> i32 {
        self.x + self.w
    }
    /// One past the bottom edge.
    pub fn bottom(&self) -> i32 {
        self.y + self.h
    }
    /// Whether it holds no pixel.
    pub fn is_empty(&self) -> bool {
        self.w <= 0 || self.h <= 0
    }
    pub fn area(&self) -> i64 {
        if self.is_empty() {
            0
        } else {
            self.w as i64 * self.h as i64
        }
    }
    /// The overlap of two rectangles (empty if they do not meet).
    pub fn intersect(&self, o: &Rect) -> Rect {
        let x = self.x.max(o.x);
        let y = self.y.max(o.y);
        let r = self.right().min(o.right());
        let b = self.bottom().min(o.bottom());
        if r <= x || b <= y {
            Rect::default()
        } else {
            Rect::new(x, y, r - x, b - y)
        }
    }
    /// The smallest rectangle holding both (an empty one is ignored).
    pub fn union(&self, o: &Rect) -> Rect {
        if self.is_empty() {
            return *o;
        }
        if o.is_empty() {
            return *self;
        }
        let x = self.x.min(o.x);
        let y = self.y.min(o.y);
        Rect::new(x, y, self.right().max(o.right()) - x, self.bottom().max(o.bottom()) - y)
    }
    /// Whether pixel (x, y) is inside.
    pub fn contains(&self, x: i32, y: i32) -> bool {
        x >= self.x && y >= self.y && x < self.right() && y < self.bottom()
    }
    /// Whether all of `o` is inside.
    pub fn contains_rect(&self, o: &Rect) -> bool {
        o.is_empty() || self.intersect(o) == *o
    }
    /// Whether they share a pixel.
    pub fn overlaps(&self, o: &Rect) -> bool {
        !self.intersect(o).is_empty()
    }
    /// Grown by `n` pixels on every side.
    pub fn grow(&self, n: i32) -> Rect {
        Rect::new(self.x - n, self.y - n, self.w + 2 * n, self.h + 2 * n)
    }
}

/// Clockwise rotation of a source's picture on its display.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Rotation {
    #[default]
    R0,
    R90,
    R180,
    R270,
}

impl Rotation {
    /// 0, 90, 180 or 270 degrees.
    pub fn from_degrees(d: i64) -> Option<Self> {
        match d {
            0 => Some(Rotation::R0),
            90 => Some(Rotation::R90),
            180 => Some(Rotation::R180),
            270 => Some(Rotation::R270),
            _ => None,
        }
    }
    /// The angle in degrees.
    pub fn degrees(self) -> u32 {
        match self {
            Rotation::R0 => 0,
            Rotation::R90 => 90,
            Rotation::R180 => 180,
            Rotation::R270 => 270,
        }
    }
    /// Whether width and height trade places.
    pub fn swaps_axes(self) -> bool {
        matches!(self, Rotation::R90 | Rotation::R270)
    }
}

/// How a source's (rotated) picture is sized into its destination rectangle.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scaling {
    /// Uniform scale so the whole picture fits, centred (letterboxed).
    #[default]
    Fit,
    /// Uniform scale so the picture covers the rectangle, centred and cropped.
    Fill,
    /// The largest whole-number scale (at least 1) that fits, centred; cropped
    /// if even 1:1 does not fit. Always sampled nearest, so pixels stay sharp.
    Integer,
    /// Non-uniform scale to exactly the rectangle.
    Stretch,
}

/// How pixels are sampled when a picture is scaled.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Filter {
    Nearest,
    #[default]
    Bilinear,
}

/// Where a `bw`×`bh` buffer lands: the rectangle its rotated picture is
/// scaled onto (`image`, may stick out of `dest`) and the part of the
/// display it may paint (`clip`: `image` ∩ `dest` ∩ the display).
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Placement {
    pub image: Rect,
    pub clip: Rect,
    pub rotation: Rotation,
    pub buffer_w: i32,
    pub buffer_h: i32,
}

impl Placement {
    /// Places a buffer of `bw`×`bh` into `dest` on a display of `display` size.
    pub fn new(bw: i32, bh: i32, dest: Rect, display: Rect, rotation: Rotation, scaling: Scaling) -> Placement {
        let (rw, rh) = if rotation.swaps_axes() { (bh, bw) } else { (bw, bh) };
        let image = if rw <= 0 || rh <= 0 || dest.is_empty() {
            Rect::default()
        } else {
            let centred = |w: i64, h: i64| {
                Rect::new(
                    dest.x + ((dest.w as i64 - w) / 2) as i32,
                    dest.y + ((dest.h as i64 - h) / 2) as i32,
                    w as i32,
                    h as i32,
                )
            };
            let (rw64, rh64, dw, dh) = (rw as i64, rh as i64, dest.w as i64, dest.h as i64);
            match scaling {
                Scaling::Stretch => dest,
                Scaling::Fit | Scaling::Fill => {
                    // Compare dw/rw with dh/rh exactly in integers.
                    let width_bound = dw * rh64 <= dh * rw64;
                    let by_width = if scaling == Scaling::Fit { width_bound } else { !width_bound };
                    if by_width {
                        centred(dw, (rh64 * dw + rw64 / 2) / rw64)
                    } else {
                        centred((rw64 * dh + rh64 / 2) / rh64, dh)
                    }
                }
                Scaling::Integer => {
                    let n = (dw / rw64).min(dh / rh64).max(1);
                    centred(rw64 * n, rh64 * n)
                }
            }
        };
        Placement {
            image,
            clip: image.intersect(&dest).intersect(&display),
            rotation,
            buffer_w: bw,
            buffer_h: bh,
        }
    }

    /// The affine map from display coordinates to buffer coordinates.
    pub fn transform(&self) -> Transform {
        let (rw, rh) = if self.rotation.swaps_axes() {
            (self.buffer_h as f64, self.buffer_w as f64)
        } else {
            (self.buffer_w as f64, self.buffer_h as f64)
        };
        let sx = rw / self.image.w.max(1) as f64;
        let sy = rh / self.image.h.max(1) as f64;
        // Display (x, y) -> rotated picture (p, q) = ((x - ix) * sx, (y - iy) * sy).
        let (ix, iy) = (self.image.x as f64, self.image.y as f64);
        let p = [sx, 0.0, -ix * sx];
        let q = [0.0, sy, -iy * sy];
        let (bw, bh) = (self.buffer_w as f64, self.buffer_h as f64);
        // Rotated picture -> buffer. Clockwise rotation by 90 puts buffer
        // (u, v) at picture (bh - v, u), so u = q and v = bh - p.
        let (u, v) = match self.rotation {
            Rotation::R0 => (p, q),
            Rotation::R90 => (q, [-p[0], -p[1], bh - p[2]]),
            Rotation::R180 => ([-p[0], -p[1], bw - p[2]], [-q[0], -q[1], bh - q[2]]),
            Rotation::R270 => ([-q[0], -q[1], bw - q[2]], p),
        };
        Transform { u, v }
    }

    /// Places a `bw`×`bh` picture drawn over buffer rectangle `at` of this
    /// placement's buffer (a Wayland sub-surface): scaled and turned with
    /// it, and clipped to what this placement shows.
    pub fn sub(&self, at: Rect, bw: i32, bh: i32) -> Placement {
        let Some(inv) = self.transform().inverse() else {
            return Placement::new(bw, bh, Rect::default(), Rect::default(), self.rotation, Scaling::Stretch);
        };
        let (a, b) = (inv.apply(at.x as f64, at.y as f64), inv.apply(at.right() as f64, at.bottom() as f64));
        let (x0, y0) = (a.0.min(b.0).round() as i32, a.1.min(b.1).round() as i32);
        let (x1, y1) = (a.0.max(b.0).round() as i32, a.1.max(b.1).round() as i32);
        let dest = Rect::new(x0, y0, x1.saturating_sub(x0), y1.saturating_sub(y0));
        let mut p = Placement::new(bw, bh, dest, self.clip, self.rotation, Scaling::Stretch);
        p.clip = p.clip.intersect(&self.clip);
        p
    }

    /// The display rectangle that buffer rectangle `r` paints (clipped).
    ///
    /// Bilinear sampling blends a buffer pixel into every display pixel
    /// whose sample point lies within half a buffer pixel of it, so there the
    /// rectangle grows by half a *buffer* pixel before it is mapped: several
    /// display pixels when a source is scaled up.
    pub fn buffer_to_display(&self, r: &Rect, filter: Filter) -> Rect {
        let t = self.transform();
        let Some(inv) = t.inverse() else { return Rect::default() };
        let m = if filter == Filter::Bilinear { 0.5 } else { 0.0 };
        let (l, tp, rt, b) = (r.x as f64 - m, r.y as f64 - m, r.right() as f64 + m, r.bottom() as f64 + m);
        let corners = [(l, tp), (rt, tp), (l, b), (rt, b)];
        let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for (u, v) in corners {
            let (x, y) = inv.apply(u, v);
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x);
            y1 = y1.max(y);
        }
        let out = Rect::new(x0.floor() as i32, y0.floor() as i32, 0, 0);
        let out = Rect::new(out.x, out.y, x1.ceil() as i32 - out.x, y1.ceil() as i32 - out.y);
        out.intersect(&self.clip)
    }
}

/// An affine map `u = a·x + b·y + c`, `v = d·x + e·y + f`.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Transform {
    pub u: [f64; 3],
    pub v: [f64; 3],
}

impl Transform {
    /// Maps display (x, y) to buffer (u, v).
    pub fn apply(&self, x: f64, y: f64) -> (f64, f64) {
        (self.u[0] * x + self.u[1] * y + self.u[2], self.v[0] * x + self.v[1] * y + self.v[2])
    }
    /// The map back, if it has one.
    pub fn inverse(&self) -> Option<Transform> {
        let [a, b, c] = self.u;
        let [d, e, f] = self.v;
        let det = a * e - b * d;
        if det.abs() < 1e-12 {
            return None;
        }
        let (ia, ib, id, ie) = (e / det, -b / det, -d / det, a / det);
        Some(Transform {
            u: [ia, ib, -(ia * c + ib * f)],
            v: [id, ie, -(id * c + ie * f)],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCREEN: Rect = Rect::new(0, 0, 1000, 1000);

    #[test]
    fn fit_letterboxes_and_fill_crops() {
        let dest = Rect::new(0, 0, 400, 300);
        let fit = Placement::new(200, 100, dest, SCREEN, Rotation::R0, Scaling::Fit);
        assert_eq!(fit.image, Rect::new(0, 50, 400, 200));
        let fill = Placement::new(200, 100, dest, SCREEN, Rotation::R0, Scaling::Fill);
        assert_eq!(fill.image, Rect::new(-100, 0, 600, 300));
        assert_eq!(fill.clip, dest);
        let int = Placement::new(120, 100, dest, SCREEN, Rotation::R0, Scaling::Integer);
        assert_eq!(int.image, Rect::new(20, 0, 360, 300));
        let big = Placement::new(500, 100, dest, SCREEN, Rotation::R0, Scaling::Integer);
        assert_eq!(big.image, Rect::new(-50, 100, 500, 100));
        assert_eq!(big.clip, Rect::new(0, 100, 400, 100));
    }

    #[test]
    fn rotation_swaps_the_fitted_axes() {
        let p = Placement::new(100, 200, Rect::new(0, 0, 200, 100), SCREEN, Rotation::R90, Scaling::Fit);
        assert_eq!(p.image, Rect::new(0, 0, 200, 100));
    }

    #[test]
    fn rotated_corners_map_to_the_right_buffer_corners() {
        // A 4x2 buffer rotated 90° clockwise becomes 2 wide, 4 tall.
        let p = Placement::new(4, 2, Rect::new(10, 10, 2, 4), SCREEN, Rotation::R90, Scaling::Stretch);
        let t = p.transform();
        // Buffer top-left (0,0) shows at the picture's top-right.
        assert_eq!(t.apply(11.5, 10.5), (0.5, 0.5));
        // Buffer top-right (3,0) shows at the bottom-right.
        assert_eq!(t.apply(11.5, 13.5), (3.5, 0.5));
        let p = Placement::new(4, 2, Rect::new(10, 10, 2, 4), SCREEN, Rotation::R270, Scaling::Stretch);
        // Clockwise 270: buffer top-left shows at the bottom-left.
        assert_eq!(p.transform().apply(10.5, 13.5), (0.5, 0.5));
        let p = Placement::new(4, 2, Rect::new(10, 10, 4, 2), SCREEN, Rotation::R180, Scaling::Stretch);
        assert_eq!(p.transform().apply(13.5, 11.5), (0.5, 0.5));
    }

    #[test]
    fn buffer_damage_maps_to_display_damage() {
        let p = Placement::new(100, 50, Rect::new(0, 0, 200, 100), SCREEN, Rotation::R0, Scaling::Stretch);
        assert_eq!(
            p.buffer_to_display(&Rect::new(10, 10, 5, 5), Filter::Nearest),
            Rect::new(20, 20, 10, 10)
        );
        assert_eq!(
            p.buffer_to_display(&Rect::new(10, 10, 5, 5), Filter::Bilinear),
            // Half a buffer pixel each side: one display pixel at 2x.
            Rect::new(19, 19, 12, 12)
        );
    }
}
