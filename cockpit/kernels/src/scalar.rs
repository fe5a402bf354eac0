//! The reference kernels: plain per-channel loops that say what every SIMD
//! version must compute, bit for bit. They also serve CPUs without SIMD and
//! the SIMD versions' tails.

use crate::{Columns, Kernels, Taps, Turn, OPAQUE};

pub(crate) static KERNELS: Kernels = Kernels {
    name: "scalar",
    copy_opaque,
    over,
    bilinear_h,
    bilinear_v,
    gather,
    turn,
};

/// Channel `c` (0 = B ... 3 = A) of `p`.
#[inline(always)]
fn ch(p: u32, c: u32) -> u32 {
    (p >> (8 * c)) & 0xff
}

/// `a * b / 255`, rounded to nearest (both at most 255).
#[inline(always)]
pub fn mul_div255(a: u32, b: u32) -> u32 {
    let t = a * b + 128;
    (t + (t >> 8)) >> 8
}

/// Premultiplied OVER of one pixel, `src` first scaled by `opacity`/255,
/// saturated per channel; the result is opaque.
#[inline(always)]
pub fn over_pixel(src: u32, dst: u32, opacity: u8) -> u32 {
    let m = opacity as u32;
    let s = |c| if m == 255 { ch(src, c) } else { mul_div255(ch(src, c), m) };
    let ia = 255 - s(3);
    let mut out = OPAQUE;
    for c in 0..3 {
        out |= (s(c) + mul_div255(ch(dst, c), ia)).min(255) << (8 * c);
    }
    out
}

pub(crate) fn copy_opaque(dst: &mut [u32], src: &[u32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = s | OPAQUE;
    }
}

pub(crate) fn over(dst: &mut [u32], src: &[u32], opacity: u8) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = over_pixel(s, *d, opacity);
    }
}

pub(crate) fn bilinear_h(out: &mut [u16], row: &[u32], taps: &Taps) {
    let (xs, ws) = taps.for_row(out.len() / 4, row.len());
    bilinear_h_taps(out, row, xs, ws);
}

/// [`bilinear_h`] over taps already checked against `row` (the SIMD
/// versions' tails).
pub(crate) fn bilinear_h_taps(out: &mut [u16], row: &[u32], xs: &[u32], ws: &[[u16; 8]]) {
    for ((o, &x), w) in out.chunks_exact_mut(4).zip(xs).zip(ws) {
        let (a, b) = (row[x as usize], row[x as usize + 1]);
        let (iw, w) = (w[0] as u32, w[4] as u32);
        for (c, o) in o.iter_mut().enumerate() {
            *o = (ch(a, c as u32) * iw + ch(b, c as u32) * w) as u16;
        }
    }
}

pub(crate) fn bilinear_v(out: &mut [u32], h0: &[u16], h1: &[u16], w: u16, or: u32) {
    let (iw, w) = (128 - w as u32, w as u32);
    for ((o, a), b) in out.iter_mut().zip(h0.chunks_exact(4)).zip(h1.chunks_exact(4)) {
        let mut p = 0;
        for c in 0..4 {
            // (At most 255 for rows `bilinear_h` made; clamped for others.)
            let v = ((a[c] as u32 * iw + b[c] as u32 * w + (1 << 13)) >> 14).min(255);
            p |= v << (8 * c);
        }
        *o = p | or;
    }
}

pub(crate) fn gather(out: &mut [u32], row: &[u32], cols: &Columns, or: u32) {
    let xs = cols.for_row(out.len(), row.len());
    for (o, &x) in out.iter_mut().zip(xs) {
        *o = row[x as usize] | or;
    }
}

/// Checks that `dst` and `src` hold the block: the SIMD versions start here.
pub(crate) fn check_turn(dst: &[u32], dst_stride: usize, src: &[u32], t: &Turn) {
    let (w, h) = t.size();
    if w == 0 || h == 0 {
        return;
    }
    assert!(t.at(0, 0).max(t.at(w - 1, 0)).max(t.at(0, h - 1)).max(t.at(w - 1, h - 1)) < src.len(), "turned block outside the buffer");
    let end = (h - 1).checked_mul(dst_stride).and_then(|v| v.checked_add(w));
    assert!(dst_stride >= w && end.is_some_and(|e| e <= dst.len()), "turned block outside the destination");
}

pub(crate) fn turn(dst: &mut [u32], dst_stride: usize, src: &[u32], t: &Turn, or: u32) {
    check_turn(dst, dst_stride, src, t);
    turn_part(dst, dst_stride, src, t, or, 0, 0);
}

/// The block's pixels from column `i0` and row `j0` on (the SIMD versions' edges).
pub(crate) fn turn_part(dst: &mut [u32], dst_stride: usize, src: &[u32], t: &Turn, or: u32, i0: usize, j0: usize) {
    let (w, h) = t.size();
    for j in j0..h {
        for i in i0..w {
            dst[j * dst_stride + i] = src[t.at(i, j)] | or;
        }
    }
}
