//! Drawing one source's frame into a display canvas, clipped to a
//! rectangle: fetch (any format) → sample (1:1, nearest or bilinear, any
//! rotation) → opacity and dimming → copy or blend (premultiplied OVER).

use cockpit_kernels::{Columns, Kernels, Taps, Turn, OPAQUE};

use crate::canvas::Band;
use crate::format::{premultiply, scale_pixel, PixelFormat};
use crate::frame::{Frame, Rows};
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
    /// A buffer row converted to premultiplied ARGB (formats read per pixel).
    conv: Vec<u32>,
    cols: Columns,
    taps: Taps,
    /// Horizontally filtered buffer rows and which rows they are.
    h: [Vec<u16>; 2],
    h_row: [Option<usize>; 2],
    xs: Vec<u32>,
}

/// Where a draw reads buffer rows: straight from 32-bit words in memory,
/// or converted pixel by pixel into a scratch row.
#[derive(Clone, Copy)]
enum Src<'a> {
    Words { w: &'a [u32], off: usize, stride: usize, bw: usize },
    Convert { rows: Rows<'a>, fmt: PixelFormat, straight: bool, bw: usize },
}

impl<'a> Src<'a> {
    /// Row `y` as premultiplied pixels (alpha undefined for formats without
    /// it: see [`Src::or`]), with one more pixel repeating the last when
    /// converted, so bilinear pairs of a one-pixel-wide buffer stay in bounds.
    #[inline]
    fn row<'b>(&self, y: usize, conv: &'b mut Vec<u32>) -> &'b [u32]
    where
        'a: 'b,
    {
        match *self {
            Src::Words { w, off, stride, bw } => {
                let at = off + y * stride;
                w.get(at..at + bw).unwrap_or(&[])
            }
            Src::Convert { rows, fmt, straight, bw } => {
                let row = rows.row(y);
                conv.clear();
                conv.extend((0..bw).map(|x| {
                    let p = fmt.fetch(row, x);
                    if straight {
                        premultiply(p)
                    } else {
                        p
                    }
                }));
                let last = conv.last().copied().unwrap_or(0);
                conv.push(last);
                conv
            }
        }
    }
}

/// Draws `layer` into `canvas` within `clip`; returns the pixels written.
pub(crate) fn draw(canvas: &mut Band<'_>, clip: &Rect, layer: &Layer<'_>, scratch: &mut Scratch) -> u64 {
    let area = clip.intersect(&layer.placement.clip).intersect(&canvas.bounds());
    // A frame whose memory was revoked under us is skipped, not read.
    if area.is_empty() || layer.opacity == 0 {
        return 0;
    }
    let Some(rows) = layer.frame.rows() else { return 0 };
    let f = layer.frame.format();
    let straight = layer.straight_alpha && f.has_alpha();
    let bw = layer.placement.buffer_w.max(0) as usize;
    // Alpha forced on every pixel read from a format without it.
    let or = if f.has_alpha() { 0 } else { OPAQUE };
    // 32-bit ARGB/XRGB in aligned memory (the common case) is read in place.
    let src = match (f, straight, rows.words()) {
        (PixelFormat::Xrgb8888 | PixelFormat::Argb8888, false, Some((w, off, stride))) if bw >= 2 => {
            Src::Words { w, off, stride, bw }
        }
        _ => Src::Convert { rows, fmt: f, straight, bw },
    };
    let p = layer.placement;
    let (iw, ih) = if p.rotation.swaps_axes() { (p.image.h, p.image.w) } else { (p.image.w, p.image.h) };
    // Unscaled, every sample falls on a pixel centre: bilinear is nearest.
    let filter = if (iw, ih) == (p.buffer_w, p.buffer_h) { Filter::Nearest } else { layer.filter };
    if p.rotation == Rotation::R0 && (iw, ih) == (p.buffer_w, p.buffer_h) {
        draw_one_to_one(canvas, &area, layer, scratch, src, or);
    } else if filter == Filter::Bilinear && p.rotation == Rotation::R0 {
        draw_bilinear(canvas, &area, layer, scratch, src, or);
    } else if filter == Filter::Nearest && !p.rotation.swaps_axes() {
        draw_nearest(canvas, &area, layer, scratch, src, or);
    } else {
        // Quarter turns walk buffer columns: per-pixel reads, in strips.
        match src {
            Src::Words { w, off, stride, .. } if filter == Filter::Nearest => {
                draw_turned_nearest(canvas, &area, layer, scratch, (w, off, stride), or)
            }
            Src::Words { w, off, stride, .. } => {
                draw_turned(canvas, &area, layer, filter, scratch, move |y, x| w[off + y * stride + x] | or)
            }
            Src::Convert { .. } => {
                macro_rules! go {
                    ($fmt:expr) => {
                        draw_turned(canvas, &area, layer, filter, scratch, move |y: usize, x: usize| {
                            let p = $fmt.fetch(rows.row(y), x);
                            if straight {
                                premultiply(p)
                            } else {
                                p
                            }
                        })
                    };
                }
                match f {
                    PixelFormat::Xrgb8888 => go!(PixelFormat::Xrgb8888),
                    PixelFormat::Argb8888 => go!(PixelFormat::Argb8888),
                    PixelFormat::Xbgr8888 => go!(PixelFormat::Xbgr8888),
                    PixelFormat::Abgr8888 => go!(PixelFormat::Abgr8888),
                    PixelFormat::Rgb565 => go!(PixelFormat::Rgb565),
                }
            }
        }
    }
    area.area() as u64
}

/// Whether the layer's pixels go to the canvas as they are: no opacity, no
/// dimming, and a source without alpha (or with it forced).
fn is_plain(layer: &Layer<'_>) -> bool {
    layer.opacity == 255 && layer.dim == 255
}

/// 1:1, unrotated: each display row is part of one buffer row.
fn draw_one_to_one(canvas: &mut Band<'_>, area: &Rect, layer: &Layer<'_>, s: &mut Scratch, src: Src<'_>, or: u32) {
    let p = layer.placement;
    let (sx0, n) = ((area.x - p.image.x) as usize, area.w as usize);
    for y in area.y..area.bottom() {
        let row = src.row((y - p.image.y) as usize, &mut s.conv);
        let Some(part) = row.get(sx0..sx0 + n) else { continue };
        finish(canvas.span_mut(y, area.x, area.right()), part, or, layer, &mut s.line);
    }
}

/// Nearest neighbour, unrotated or half-turned: a column table per draw and
/// one buffer row per display row. Positions are computed exactly as input
/// routing computes them, so a touch reports the very pixel drawn under it.
fn draw_nearest(canvas: &mut Band<'_>, area: &Rect, layer: &Layer<'_>, s: &mut Scratch, src: Src<'_>, or: u32) {
    let p = layer.placement;
    let t = p.transform();
    let (bw, bh) = (p.buffer_w as i64, p.buffer_h as i64);
    s.cols.set((area.x..area.right()).map(|x| floor_in(t.apply(x as f64 + 0.5, 0.5).0, bw)));
    let k = Kernels::best();
    let direct = is_plain(layer) && or == OPAQUE;
    for y in area.y..area.bottom() {
        let r = floor_in(t.apply(0.5, y as f64 + 0.5).1, bh) as usize;
        let row = src.row(r, &mut s.conv);
        if row.len() < s.cols.need() {
            continue;
        }
        let dst = canvas.span_mut(y, area.x, area.right());
        if direct {
            k.gather(dst, row, &s.cols, OPAQUE);
        } else {
            s.line.resize(dst.len(), 0);
            k.gather(&mut s.line, row, &s.cols, or);
            finish_line(dst, layer, &mut s.line, or);
        }
    }
}

/// Bilinear, unrotated: every needed buffer row is filtered horizontally
/// once (the two newest are kept), then each display row blends two of them.
fn draw_bilinear(canvas: &mut Band<'_>, area: &Rect, layer: &Layer<'_>, s: &mut Scratch, src: Src<'_>, or: u32) {
    let p = layer.placement;
    let t = p.transform();
    let (bw, bh) = (p.buffer_w as i64, p.buffer_h as i64);
    let n = area.w as usize;
    // Positions step in fixed point from the display's origin, the same for
    // any part of the display (a damaged part matches a full redraw).
    let (u_at0, du) = (fixed(t.u[0] * 0.5 + t.u[2]), fixed(t.u[0]));
    let (v_at0, dv) = (fixed(t.v[1] * 0.5 + t.v[2]), fixed(t.v[1]));
    s.taps.set((area.x..area.right()).map(|x| {
        let (u0, u1, w) = taps(u_at0 + x as i64 * du, bw);
        // Pairs are (x, x + 1): a tap clamped at the right edge becomes the
        // pair before it, weighted wholly to its right pixel.
        if u0 == u1 {
            if u0 as i64 == bw - 1 && bw >= 2 {
                (u0 - 1, 128)
            } else {
                (u0, 0)
            }
        } else {
            (u0, w as u16)
        }
    }));
    let k = Kernels::best();
    let direct = is_plain(layer) && or == OPAQUE;
    let Scratch { line, conv, taps: tp, h, h_row, .. } = s;
    *h_row = [None, None];
    for hv in h.iter_mut() {
        hv.resize(4 * n, 0);
    }
    for y in area.y..area.bottom() {
        let (v0, v1, wy) = taps(v_at0 + y as i64 * dv, bh);
        let wy = if v0 == v1 { 0 } else { wy as u16 };
        // The slot holding row `r`, filtering it into the slot not in `keep`.
        let mut filtered = |r: usize, keep: Option<usize>| -> Option<usize> {
            if let Some(i) = h_row.iter().position(|&x| x == Some(r)) {
                return Some(i);
            }
            let i = match keep {
                Some(k) => 1 - k,
                None => match *h_row {
                    [None, _] => 0,
                    [_, None] => 1,
                    [Some(a), Some(b)] => usize::from(b < a),
                },
            };
            let row = src.row(r, conv);
            if row.len() < tp.need() {
                return None;
            }
            k.bilinear_h(&mut h[i], row, tp);
            h_row[i] = Some(r);
            Some(i)
        };
        let Some(a) = filtered(v0 as usize, None) else { continue };
        let b = if wy == 0 { a } else {
            match filtered(v1 as usize, Some(a)) {
                Some(b) => b,
                None => continue,
            }
        };
        let dst = canvas.span_mut(y, area.x, area.right());
        if direct {
            k.bilinear_v(dst, &h[a], &h[b], wy, OPAQUE);
        } else {
            line.resize(n, 0);
            k.bilinear_v(line, &h[a], &h[b], wy, or);
            finish_line(dst, layer, line, or);
        }
    }
}

/// Display columns per strip when a turned source is gathered from memory:
/// the buffer rows a strip reads (one cache line each) stay in L1.
const GATHER_STRIP: i32 = 64;

/// Nearest neighbour at a quarter turn, from 32-bit words in memory: a
/// display row of a strip reads one buffer column across the strip's buffer
/// rows, which is a gather with the rows' starts as its table.
fn draw_turned_nearest(canvas: &mut Band<'_>, area: &Rect, layer: &Layer<'_>, s: &mut Scratch, (w, off, stride): (&[u32], usize, usize), or: u32) {
    let p = layer.placement;
    let t = p.transform();
    let (bw, bh) = (p.buffer_w as i64, p.buffer_h as i64);
    // The buffer row under each display column, as the index of its start.
    s.xs.clear();
    for x in area.x..area.right() {
        let start = off + floor_in(t.apply(x as f64 + 0.5, 0.5).1, bh) as usize * stride;
        // Row starts beyond 2^32 words (16 GiB) do not fit the table:
        // such a buffer takes the per-pixel path.
        let Ok(start) = u32::try_from(start) else {
            let or_ = or;
            return draw_turned(canvas, area, layer, Filter::Nearest, s, move |y, x| w[off + y * stride + x] | or_);
        };
        s.xs.push(start);
    }
    let k = Kernels::best();
    let direct = is_plain(layer) && or == OPAQUE;
    if direct && turn_unscaled(canvas, area, layer, (w, off, stride), k) {
        return;
    }
    let mut x0 = area.x;
    while x0 < area.right() {
        let x1 = (x0 + GATHER_STRIP).min(area.right());
        s.cols.set(s.xs[(x0 - area.x) as usize..(x1 - area.x) as usize].iter().copied());
        for y in area.y..area.bottom() {
            let c = floor_in(t.apply(0.5, y as f64 + 0.5).0, bw) as usize;
            let Some(from_c) = w.get(c..) else { continue };
            if from_c.len() < s.cols.need() {
                continue;
            }
            let dst = canvas.span_mut(y, x0, x1);
            if direct {
                k.gather(dst, from_c, &s.cols, OPAQUE);
            } else {
                s.line.resize(dst.len(), 0);
                k.gather(&mut s.line, from_c, &s.cols, or);
                finish_line(dst, layer, &mut s.line, or);
            }
        }
        x0 = x1;
    }
}

/// Display columns per tile of an unscaled quarter turn: the buffer rows a
/// tile reads are one cache line each, and few enough pages for the TLB.
const TURN_TILE: i32 = 16;

/// An unscaled quarter turn as a transposition, tile by tile; false (and
/// nothing drawn) when the placement is not one.
fn turn_unscaled(canvas: &mut Band<'_>, area: &Rect, layer: &Layer<'_>, (w, off, stride): (&[u32], usize, usize), k: &Kernels) -> bool {
    let p = layer.placement;
    if p.image.w != p.buffer_h || p.image.h != p.buffer_w {
        return false;
    }
    let t = p.transform();
    let (bw, bh) = (p.buffer_w as i64, p.buffer_h as i64);
    // Buffer row under display column x, buffer column under display row y.
    let row = |x: i32| floor_in(t.apply(x as f64 + 0.5, 0.5).1, bh) as isize;
    let col = |y: i32| floor_in(t.apply(0.5, y as f64 + 0.5).0, bw) as isize;
    let (r0, c0) = (row(area.x), col(area.y));
    let dr = if area.w > 1 { row(area.x + 1) - r0 } else { 1 };
    let dc = if area.h > 1 { col(area.y + 1) - c0 } else { 1 };
    // Unscaled, each step is one buffer pixel; check it holds to the far corners.
    if dr.abs() != 1 || dc.abs() != 1 || row(area.right() - 1) != r0 + dr * (area.w - 1) as isize || col(area.bottom() - 1) != c0 + dc * (area.h - 1) as isize {
        return false;
    }
    let cw = canvas.width() as usize;
    let (di, dj) = (dr * stride as isize, dc);
    let mut x0 = area.x;
    while x0 < area.right() {
        let x1 = (x0 + TURN_TILE).min(area.right());
        let start = off as isize + (r0 + dr * (x0 - area.x) as isize) * stride as isize + c0;
        let Some(turn) = usize::try_from(start).ok().and_then(|s| Turn::new(s, di, dj, (x1 - x0) as usize, area.h as usize, w.len())) else {
            return false;
        };
        k.turn(canvas.from_mut(x0, area.y), cw, w, &turn, OPAQUE);
        x0 = x1;
    }
    true
}

/// 16.16 fixed point.
const ONE: i64 = 1 << 16;

fn fixed(v: f64) -> i64 {
    (v * ONE as f64).round() as i64
}

/// Columns per strip when walking a rotated buffer: the source rows a strip
/// touches stay in the L1 cache while the strip goes down the display.
const STRIP: i32 = 64;

/// Quarter turns. `fetch(y, x)` reads buffer pixel (x, y) as premultiplied ARGB.
fn draw_turned<F>(canvas: &mut Band<'_>, area: &Rect, layer: &Layer<'_>, filter: Filter, s: &mut Scratch, fetch: F)
where
    F: Fn(usize, usize) -> u32 + Copy,
{
    let p = layer.placement;
    let (bw, bh) = (p.buffer_w as i64, p.buffer_h as i64);
    s.line.resize(area.w as usize, 0);
    let t = p.transform();
    if filter == Filter::Nearest {
        // Each buffer axis follows one display axis: the buffer row follows
        // the display column (a table per draw), the buffer column the row.
        s.xs.clear();
        s.xs.extend((area.x..area.right()).map(|x| floor_in(t.apply(x as f64 + 0.5, 0.5).1, bh)));
        let mut x0 = area.x;
        while x0 < area.right() {
            let x1 = (x0 + STRIP).min(area.right());
            let (a, b) = ((x0 - area.x) as usize, (x1 - area.x) as usize);
            for y in area.y..area.bottom() {
                let c = floor_in(t.apply(0.5, y as f64 + 0.5).0, bw) as usize;
                let line = &mut s.line[a..b];
                for (l, &r) in line.iter_mut().zip(&s.xs[a..b]) {
                    *l = fetch(r as usize, c);
                }
                finish_line(canvas.span_mut(y, x0, x1), layer, line, 0);
            }
            x0 = x1;
        }
        return;
    }
    // Bilinear: walk the buffer along each display row, in strips.
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
            finish_line(canvas.span_mut(y, x0, x1), layer, line, 0);
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

/// `a + (b - a) * w / 128` on all four channels at once.
#[inline(always)]
fn lerp(a: u32, b: u32, w: u32) -> u32 {
    let iw = 128 - w;
    let rb = (((a & 0x00ff_00ff) * iw + (b & 0x00ff_00ff) * w) >> 7) & 0x00ff_00ff;
    let ag = ((((a >> 8) & 0x00ff_00ff) * iw + ((b >> 8) & 0x00ff_00ff) * w) >> 7) & 0x00ff_00ff;
    rb | (ag << 8)
}

/// Puts `src` (premultiplied, alpha forced by `or`) on `dst` with the
/// layer's dimming and opacity, using `line` when it must be changed first.
#[inline]
fn finish(dst: &mut [u32], src: &[u32], or: u32, layer: &Layer<'_>, line: &mut Vec<u32>) {
    let k = Kernels::best();
    match (layer.dim, or) {
        (255, OPAQUE) if layer.opacity == 255 => k.copy_opaque(dst, src),
        (255, 0) => k.over(dst, src, layer.opacity),
        _ => {
            line.clear();
            line.extend_from_slice(src);
            finish_line(dst, layer, line, or);
        }
    }
}

/// Like [`finish`] for a line this side owns (it may be changed in place).
#[inline]
fn finish_line(dst: &mut [u32], layer: &Layer<'_>, line: &mut [u32], or: u32) {
    let k = Kernels::best();
    if or != 0 {
        line.iter_mut().for_each(|p| *p |= or);
    }
    if layer.dim < 255 {
        let dim = layer.dim as u32;
        for p in line.iter_mut() {
            *p = (*p & 0xff00_0000) | (scale_pixel(*p, dim) & 0x00ff_ffff);
        }
    }
    if layer.opacity == 255 && line.iter().all(|p| p >> 24 == 255) {
        k.copy_opaque(dst, line);
    } else {
        k.over(dst, line, layer.opacity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canvas::Canvas;
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
        draw(&mut c.band(), &all, &layer, &mut Scratch::default());
        c
    }

    #[test]
    fn bilinear_midpoint_averages_neighbours() {
        // 2x1: black, white, stretched to 4x1: the inner pixels sit a quarter
        // of the way between the two centres.
        let f = Frame::from_pixels(&[0xff00_0000, 0xffff_ffff], 2, 1, PixelFormat::Xrgb8888).unwrap();
        let c = run(&f, Rect::new(0, 0, 4, 1), Rotation::R0, Scaling::Stretch, Filter::Bilinear, 255);
        assert_eq!(c.get(0, 0), 0xff00_0000);
        assert_eq!(c.get(1, 0), 0xff40_4040); // 255 * 32 / 128 = 63.75, rounded once
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
