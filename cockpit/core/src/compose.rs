//! Drawing one source's frame into a display canvas, clipped to a
//! rectangle: fetch (any format) → sample (1:1, nearest or bilinear, any
//! rotation) → opacity and dimming → copy or blend (premultiplied OVER).

use crate::canvas::Canvas;
use crate::format::{over, premultiply, scale_pixel, PixelFormat};
use crate::frame::Frame;
use crate::geom::{Filter, Placement, Rect, Rotation};

/// One layer to draw.
pub(crate) struct Layer<'a> {
    pub frame: &'a Frame,
    pub placement: &'a Placement,
    pub filter: Filter,
    /// Multiplies every channel, alpha too (255 = none).
    pub opacity: u8,
    /// Multiplies colour only, keeping coverage (255 = none): the watchdog's dimming.
    pub dim: u8,
    /// The frame's alpha is straight, not premultiplied.
    pub straight_alpha: bool,
}

/// Buffers reused between draws so the hot path does not allocate.
#[derive(Default)]
pub(crate) struct Scratch {
    line: Vec<u32>,
    xs: Vec<u32>,
    xw: Vec<(u32, u32, u32)>,
    /// Buffer rows for bilinear scaling.
    rows: [Vec<u32>; 2],
}

/// Draws `layer` into `canvas` within `clip`; returns the pixels written.
pub(crate) fn draw(canvas: &mut Canvas, clip: &Rect, layer: &Layer<'_>, scratch: &mut Scratch) -> u64 {
    let area = clip.intersect(&layer.placement.clip).intersect(&canvas.bounds());
    // A frame whose memory was revoked under us is skipped, not read.
    if area.is_empty() || layer.opacity == 0 {
        return 0;
    }
    let Some(rows) = layer.frame.rows() else { return 0 };
    let f = layer.frame.format();
    let straight = layer.straight_alpha && f.has_alpha();
    // 32-bit ARGB/XRGB in aligned memory (the common case) is read as words.
    if let (PixelFormat::Xrgb8888 | PixelFormat::Argb8888, false, Some((w, off, stride))) = (f, straight, rows.words()) {
        let or = if f == PixelFormat::Xrgb8888 { 0xff00_0000 } else { 0 };
        let fill = move |y: usize, x: usize, out: &mut [u32]| {
            let at = off + y * stride + x;
            out.copy_from_slice(&w[at..at + out.len()]);
            if or != 0 {
                out.iter_mut().for_each(|p| *p |= or);
            }
        };
        draw_with(canvas, &area, layer, scratch, move |y, x| w[off + y * stride + x] | or, fill);
        return area.area() as u64;
    }
    macro_rules! go {
        ($fmt:expr) => {{
            let fetch = move |y: usize, x: usize| {
                let p = $fmt.fetch(rows.row(y), x);
                if straight {
                    premultiply(p)
                } else {
                    p
                }
            };
            let fill = move |y: usize, x: usize, out: &mut [u32]| {
                let row = rows.row(y);
                for (i, o) in out.iter_mut().enumerate() {
                    let p = $fmt.fetch(row, x + i);
                    *o = if straight { premultiply(p) } else { p };
                }
            };
            draw_with(canvas, &area, layer, scratch, fetch, fill)
        }};
    }
    match f {
        PixelFormat::Xrgb8888 => go!(PixelFormat::Xrgb8888),
        PixelFormat::Argb8888 => go!(PixelFormat::Argb8888),
        PixelFormat::Xbgr8888 => go!(PixelFormat::Xbgr8888),
        PixelFormat::Abgr8888 => go!(PixelFormat::Abgr8888),
        PixelFormat::Rgb565 => go!(PixelFormat::Rgb565),
    }
    area.area() as u64
}

/// 16.16 fixed point.
const ONE: i64 = 1 << 16;

fn fixed(v: f64) -> i64 {
    (v * ONE as f64).round() as i64
}

/// Columns per strip when walking a rotated buffer: the source rows a strip
/// touches stay in the L1 cache while the strip goes down the display.
const STRIP: i32 = 64;

/// `fetch(y, x)` reads buffer pixel (x, y) as premultiplied ARGB;
/// `fill(y, x, out)` reads `out.len()` pixels of row `y` from column `x`.
#[inline(always)]
fn draw_with<F, G>(canvas: &mut Canvas, area: &Rect, layer: &Layer<'_>, s: &mut Scratch, fetch: F, fill: G)
where
    F: Fn(usize, usize) -> u32 + Copy,
    G: Fn(usize, usize, &mut [u32]) + Copy,
{
    let p = layer.placement;
    let fmt = layer.frame.format();
    let (bw, bh) = (p.buffer_w as i64, p.buffer_h as i64);
    let opaque = !fmt.has_alpha() && layer.opacity == 255;
    let plain = layer.opacity == 255 && layer.dim == 255;
    let n = area.w as usize;
    s.line.resize(n, 0);
    let t = p.transform();
    let one_to_one = p.rotation == Rotation::R0 && p.image.w == p.buffer_w && p.image.h == p.buffer_h;

    if one_to_one {
        let sx0 = (area.x - p.image.x) as usize;
        for y in area.y..area.bottom() {
            fill((y - p.image.y) as usize, sx0, &mut s.line);
            finish(canvas.span_mut(y, area.x, area.right()), &mut s.line, layer, opaque, plain);
        }
        return;
    }

    let nearest = layer.filter == Filter::Nearest;
    if nearest {
        // With a quarter-turn rotation at most, each buffer axis follows one
        // display axis: one follows the column (a table per draw), the other
        // the row. Positions are computed exactly as input routing computes
        // them, so a touch reports the very pixel drawn under it.
        let swap = t.u[0] == 0.0 && t.v[1] == 0.0;
        let (col_len, row_len) = if swap { (bh, bw) } else { (bw, bh) };
        s.xs.clear();
        s.xs.extend((area.x..area.right()).map(|x| {
            let (fu, fv) = t.apply(x as f64 + 0.5, 0.5);
            floor_in(if swap { fv } else { fu }, col_len)
        }));
        // Turned sources read buffer columns: go down the display in strips
        // so the buffer rows a strip reads stay in cache.
        let strip = if swap { STRIP } else { area.w };
        let mut x0 = area.x;
        while x0 < area.right() {
            let x1 = (x0 + strip).min(area.right());
            let (a, b) = ((x0 - area.x) as usize, (x1 - area.x) as usize);
            for y in area.y..area.bottom() {
                let (fu, fv) = t.apply(0.5, y as f64 + 0.5);
                let r = floor_in(if swap { fu } else { fv }, row_len) as usize;
                let line = &mut s.line[a..b];
                if swap {
                    for (l, &c) in line.iter_mut().zip(&s.xs[a..b]) {
                        *l = fetch(c as usize, r);
                    }
                } else {
                    for (l, &c) in line.iter_mut().zip(&s.xs[a..b]) {
                        *l = fetch(r, c as usize);
                    }
                }
                finish(canvas.span_mut(y, x0, x1), line, layer, opaque, plain);
            }
            x0 = x1;
        }
        return;
    }
    if p.rotation == Rotation::R0 {
        // Axis-aligned scaling is separable. Per display row, the two buffer
        // rows are blended vertically over the columns the row needs (a
        // straight loop the compiler vectorises), then each display pixel
        // blends two neighbours of that blended row horizontally.
        s.xw.clear();
        s.xw.extend((area.x..area.right()).map(|x| taps(fixed(t.u[0] * (x as f64 + 0.5) + t.u[2]), bw)));
        let umin = s.xw.iter().map(|t| t.0).min().unwrap_or(0);
        let umax = s.xw.iter().map(|t| t.1).max().unwrap_or(0);
        let span = (umax - umin + 1) as usize;
        for row in s.rows.iter_mut() {
            row.resize(span, 0);
        }
        for y in area.y..area.bottom() {
            let (v0, v1, wy) = taps(fixed(t.v[1] * (y as f64 + 0.5) + t.v[2]), bh);
            let [r0, r1] = &mut s.rows;
            fill(v0 as usize, umin as usize, r0);
            if wy != 0 {
                fill(v1 as usize, umin as usize, r1);
                lerp_rows(r0, r1, wy);
            }
            for (l, &(u0, u1, wx)) in s.line.iter_mut().zip(&s.xw) {
                *l = lerp(r0[(u0 - umin) as usize], r0[(u1 - umin) as usize], wx);
            }
            finish(canvas.span_mut(y, area.x, area.right()), &mut s.line, layer, opaque, plain);
        }
        return;
    }

    // Bilinear at a quarter turn: walk the buffer along each display row, in strips.
    let (du, dv) = (fixed(t.u[0]), fixed(t.v[0]));
    let mut x0 = area.x;
    while x0 < area.right() {
        let x1 = (x0 + STRIP).min(area.right());
        let line = &mut s.line[..(x1 - x0) as usize];
        for y in area.y..area.bottom() {
            let fy = y as f64 + 0.5;
            let fx = x0 as f64 + 0.5;
            let mut u = fixed(t.u[0] * fx + t.u[1] * fy + t.u[2]);
            let mut v = fixed(t.v[0] * fx + t.v[1] * fy + t.v[2]);
            for l in line.iter_mut() {
                let (u0, u1, wx) = taps(u, bw);
                let (v0, v1, wy) = taps(v, bh);
                let top = lerp(fetch(v0 as usize, u0 as usize), fetch(v0 as usize, u1 as usize), wx);
                let bottom = lerp(fetch(v1 as usize, u0 as usize), fetch(v1 as usize, u1 as usize), wx);
                *l = lerp(top, bottom, wy);
                u += du;
                v += dv;
            }
            finish(canvas.span_mut(y, x0, x1), line, layer, opaque, plain);
        }
        x0 = x1;
    }
}

/// The pixel holding position `c`, clamped to `0..len`.
#[inline(always)]
fn floor_in(c: f64, len: i64) -> u32 {
    (c.floor() as i64).clamp(0, len - 1) as u32
}

/// Bilinear taps around fixed-point position `c` (a pixel centre is at
/// n + 0.5): the two pixel indices (clamped to the edge) and the 7-bit weight
/// of the second.
#[inline(always)]
fn taps(c: i64, len: i64) -> (u32, u32, u32) {
    let c = c - ONE / 2;
    let i = c >> 16;
    let w = ((c >> 9) & 0x7f) as u32;
    ((i.clamp(0, len - 1)) as u32, ((i + 1).clamp(0, len - 1)) as u32, w)
}

/// `a = a + (b - a) * w / 128` for whole rows, byte by byte in 16-bit
/// lanes so that the compiler vectorises it with baseline SSE2/NEON.
fn lerp_rows(a: &mut [u32], b: &[u32], w: u32) {
    let (w, iw) = (w as u16, 128 - w as u16);
    let a: &mut [u8] = bytemuck::cast_slice_mut(a);
    let b: &[u8] = bytemuck::cast_slice(b);
    for (x, &y) in a.iter_mut().zip(b) {
        *x = ((*x as u16 * iw + y as u16 * w) >> 7) as u8;
    }
}

/// `a + (b - a) * w / 128` on all four channels at once.
#[inline(always)]
fn lerp(a: u32, b: u32, w: u32) -> u32 {
    let iw = 128 - w;
    let rb = (((a & 0x00ff_00ff) * iw + (b & 0x00ff_00ff) * w) >> 7) & 0x00ff_00ff;
    let ag = ((((a >> 8) & 0x00ff_00ff) * iw + ((b >> 8) & 0x00ff_00ff) * w) >> 7) & 0x00ff_00ff;
    rb | (ag << 8)
}

/// Applies dimming and opacity to `line`, then copies or blends it into `dst`.
#[inline(always)]
fn finish(dst: &mut [u32], line: &mut [u32], layer: &Layer<'_>, opaque: bool, plain: bool) {
    if !plain {
        let (dim, op) = (layer.dim as u32, layer.opacity as u32);
        for p in line.iter_mut() {
            if dim < 255 {
                *p = (*p & 0xff00_0000) | (scale_pixel(*p, dim) & 0x00ff_ffff);
            }
            if op < 255 {
                *p = scale_pixel(*p, op);
            }
        }
    }
    if opaque {
        for (d, &s) in dst.iter_mut().zip(line.iter()) {
            *d = s | 0xff00_0000;
        }
    } else {
        for (d, &s) in dst.iter_mut().zip(line.iter()) {
            *d = over(s, *d) | 0xff00_0000;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geom::Scaling;

    fn run(frame: &Frame, dest: Rect, rot: Rotation, scaling: Scaling, filter: Filter, opacity: u8) -> Canvas {
        let mut c = Canvas::new(8, 8, 0x0000ff);
        let p = Placement::new(frame.width() as i32, frame.height() as i32, dest, c.bounds(), rot, scaling);
        let layer = Layer {
            frame,
            placement: &p,
            filter,
            opacity,
            dim: 255,
            straight_alpha: false,
        };
        let all = c.bounds();
        draw(&mut c, &all, &layer, &mut Scratch::default());
        c
    }

    #[test]
    fn bilinear_midpoint_averages_neighbours() {
        // 2x1: black, white, stretched to 4x1: the inner pixels sit a quarter
        // of the way between the two centres.
        let f = Frame::from_pixels(&[0xff00_0000, 0xffff_ffff], 2, 1, PixelFormat::Xrgb8888).unwrap();
        let c = run(&f, Rect::new(0, 0, 4, 1), Rotation::R0, Scaling::Stretch, Filter::Bilinear, 255);
        assert_eq!(c.get(0, 0), 0xff00_0000);
        assert_eq!(c.get(1, 0), 0xff3f_3f3f);
        assert_eq!(c.get(2, 0), 0xffbf_bfbf);
        assert_eq!(c.get(3, 0), 0xffff_ffff);
    }

    #[test]
    fn opacity_blends_over_what_is_below() {
        let f = Frame::solid(2, 2, PixelFormat::Xrgb8888, 0xffff_0000);
        let c = run(&f, Rect::new(0, 0, 2, 2), Rotation::R0, Scaling::Stretch, Filter::Nearest, 128);
        assert_eq!(c.get(0, 0), 0xff80_007f);
        assert_eq!(c.get(2, 0), 0xff00_00ff);
    }
}
