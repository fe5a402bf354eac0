//! SSE2 (every x86_64) and AVX2 versions of the kernels.
//!
//! Every `unsafe` block here is an unaligned vector load or store whose
//! index the loop bound checks, or a call into an AVX2 function that only
//! the AVX2 table reaches (handed out after the CPU reported AVX2).
#![allow(unsafe_code)]

use std::arch::x86_64::*;

use crate::{scalar, unchecked, Kernels, Taps, Turn, OPAQUE};

pub(crate) static SSE2: Kernels = Kernels {
    name: "sse2",
    copy_opaque: sse2_entry::copy_opaque,
    over: sse2_entry::over,
    bilinear_h: sse2_entry::bilinear_h,
    bilinear_v: sse2_entry::bilinear_v,
    gather: unchecked::gather,
    turn: sse2_entry::turn,
};

pub(crate) static AVX2: Kernels = Kernels {
    name: "avx2",
    copy_opaque: avx2_entry::copy_opaque,
    over: avx2_entry::over,
    bilinear_h: avx2_entry::bilinear_h,
    bilinear_v: avx2_entry::bilinear_v,
    gather: unchecked::gather,
    turn: avx2_entry::turn,
};

/// The sets this CPU runs, slowest first.
pub(crate) fn available() -> Vec<&'static Kernels> {
    let mut v: Vec<&'static Kernels> = vec![&SSE2];
    if std::arch::is_x86_feature_detected!("avx2") {
        v.push(&AVX2);
    }
    v
}

entries!(sse2_entry, sse2, "SSE2 is part of every x86_64 CPU.");
entries!(
    avx2_entry,
    avx2,
    "Only the AVX2 table holds these, and `available` hands it out only on a CPU with AVX2."
);

/// `t / 255` rounded, for `t = a * b` in 16-bit lanes (`a`, `b` <= 255).
macro_rules! div255 {
    ($add:ident, $srli:ident, $set1:ident, $t:expr) => {{
        let t = $add($t, $set1(128));
        $srli::<8>($add(t, $srli::<8>(t)))
    }};
}

mod sse2 {
    use super::*;

    #[target_feature(enable = "sse2")]
    pub(super) fn copy_opaque(dst: &mut [u32], src: &[u32]) {
        let n = dst.len().min(src.len());
        let a = _mm_set1_epi32(OPAQUE as i32);
        if n < 4 {
            return scalar::copy_opaque(&mut dst[..n], &src[..n]);
        }
        let mut i = 0;
        loop {
            // SAFETY: i + 4 <= n and both slices hold n pixels.
            unsafe {
                let v = _mm_loadu_si128(src.as_ptr().add(i).cast());
                _mm_storeu_si128(dst.as_mut_ptr().add(i).cast(), _mm_or_si128(v, a));
            }
            // The last block ends at n, overlapping the one before.
            i += 4;
            if i >= n {
                break;
            }
            i = i.min(n - 4);
        }
    }

    /// OVER of four pixels, `s` scaled by `m` (16-bit lanes) unless `m` is 255.
    #[target_feature(enable = "sse2")]
    #[inline]
    fn over4(s: __m128i, d: __m128i, m: __m128i, scale: bool) -> __m128i {
        let z = _mm_setzero_si128();
        let (mut sl, mut sh) = (_mm_unpacklo_epi8(s, z), _mm_unpackhi_epi8(s, z));
        if scale {
            sl = div255!(_mm_add_epi16, _mm_srli_epi16, _mm_set1_epi16, _mm_mullo_epi16(sl, m));
            sh = div255!(_mm_add_epi16, _mm_srli_epi16, _mm_set1_epi16, _mm_mullo_epi16(sh, m));
        }
        let ff = _mm_set1_epi16(255);
        let il = _mm_sub_epi16(ff, _mm_shufflehi_epi16::<0xff>(_mm_shufflelo_epi16::<0xff>(sl)));
        let ih = _mm_sub_epi16(ff, _mm_shufflehi_epi16::<0xff>(_mm_shufflelo_epi16::<0xff>(sh)));
        let dl = div255!(_mm_add_epi16, _mm_srli_epi16, _mm_set1_epi16, _mm_mullo_epi16(_mm_unpacklo_epi8(d, z), il));
        let dh = div255!(_mm_add_epi16, _mm_srli_epi16, _mm_set1_epi16, _mm_mullo_epi16(_mm_unpackhi_epi8(d, z), ih));
        let out = _mm_adds_epu8(_mm_packus_epi16(sl, sh), _mm_packus_epi16(dl, dh));
        _mm_or_si128(out, _mm_set1_epi32(OPAQUE as i32))
    }

    #[target_feature(enable = "sse2")]
    pub(super) fn over(dst: &mut [u32], src: &[u32], opacity: u8) {
        let n = dst.len().min(src.len());
        let m = _mm_set1_epi16(opacity as i16);
        let scale = opacity != 255;
        let mut i = 0;
        while i + 4 <= n {
            // SAFETY: i + 4 <= n and both slices hold n pixels.
            unsafe {
                let s = _mm_loadu_si128(src.as_ptr().add(i).cast());
                let d = _mm_loadu_si128(dst.as_ptr().add(i).cast());
                _mm_storeu_si128(dst.as_mut_ptr().add(i).cast(), over4(s, d, m, scale));
            }
            i += 4;
        }
        scalar::over(&mut dst[i..n], &src[i..n], opacity);
    }

    #[target_feature(enable = "sse2")]
    pub(super) fn bilinear_h(out: &mut [u16], row: &[u32], taps: &Taps) {
        let (xs, ws) = taps.for_row(out.len() / 4, row.len());
        // SAFETY: `for_row` checked every tap against this row and cut the
        // taps to what `out` holds.
        unsafe { bilinear_h_taps(out, row, xs, ws) }
    }

    /// [`bilinear_h`] over taps already checked against `row`.
    ///
    /// # Safety
    /// Every `x` in `xs` has `x + 1 < row.len()`, `ws` is as long as `xs`,
    /// and `out` holds `4 * xs.len()` lanes.
    #[target_feature(enable = "sse2")]
    pub(super) unsafe fn bilinear_h_taps(out: &mut [u16], row: &[u32], xs: &[u32], ws: &[[u16; 8]]) {
        let n = xs.len();
        let z = _mm_setzero_si128();
        if n < 2 {
            return scalar::bilinear_h_taps(out, row, xs, ws);
        }
        let mut i = 0;
        loop {
            // SAFETY: by the caller's promise each 8-byte load reads two
            // pixels of `row`; i + 2 <= n bounds the weight loads and the
            // 16-byte store.
            unsafe {
                let pa = _mm_loadl_epi64(row.as_ptr().add(xs[i] as usize).cast());
                let pb = _mm_loadl_epi64(row.as_ptr().add(xs[i + 1] as usize).cast());
                let wa = _mm_loadu_si128(ws.as_ptr().add(i).cast());
                let wb = _mm_loadu_si128(ws.as_ptr().add(i + 1).cast());
                // Lanes 0-3: left pixel times 128 - w; lanes 4-7: right times w.
                let a = _mm_mullo_epi16(_mm_unpacklo_epi8(pa, z), wa);
                let b = _mm_mullo_epi16(_mm_unpacklo_epi8(pb, z), wb);
                let sum = _mm_add_epi16(_mm_unpacklo_epi64(a, b), _mm_unpackhi_epi64(a, b));
                _mm_storeu_si128(out.as_mut_ptr().add(4 * i).cast(), sum);
            }
            // The last block ends at n, overlapping the one before.
            i += 2;
            if i >= n {
                break;
            }
            i = i.min(n - 2);
        }
    }

    #[target_feature(enable = "sse2")]
    pub(super) fn bilinear_v(out: &mut [u32], h0: &[u16], h1: &[u16], w: u16, or: u32) {
        let n = out.len().min(h0.len() / 4).min(h1.len() / 4);
        let wv = _mm_set1_epi32(((w as i32) << 16) | (128 - w as i32));
        let r = _mm_set1_epi32(1 << 13);
        let orv = _mm_set1_epi32(or as i32);
        let px = |a: __m128i, b: __m128i| {
            let lo = _mm_srai_epi32::<14>(_mm_add_epi32(_mm_madd_epi16(_mm_unpacklo_epi16(a, b), wv), r));
            let hi = _mm_srai_epi32::<14>(_mm_add_epi32(_mm_madd_epi16(_mm_unpackhi_epi16(a, b), wv), r));
            _mm_packs_epi32(lo, hi)
        };
        if n < 4 {
            return scalar::bilinear_v(&mut out[..n], &h0[..4 * n], &h1[..4 * n], w, or);
        }
        let mut i = 0;
        loop {
            // SAFETY: i + 4 <= n: h0 and h1 hold 4 n lanes, out n pixels.
            unsafe {
                let a0 = _mm_loadu_si128(h0.as_ptr().add(4 * i).cast());
                let a1 = _mm_loadu_si128(h0.as_ptr().add(4 * i + 8).cast());
                let b0 = _mm_loadu_si128(h1.as_ptr().add(4 * i).cast());
                let b1 = _mm_loadu_si128(h1.as_ptr().add(4 * i + 8).cast());
                let p = _mm_packus_epi16(px(a0, b0), px(a1, b1));
                _mm_storeu_si128(out.as_mut_ptr().add(i).cast(), _mm_or_si128(p, orv));
            }
            // The last block ends at n, overlapping the one before.
            i += 4;
            if i >= n {
                break;
            }
            i = i.min(n - 4);
        }
    }

    #[target_feature(enable = "sse2")]
    pub(super) fn turn(dst: &mut [u32], dst_stride: usize, src: &[u32], t: &Turn, or: u32) {
        scalar::check_turn(dst, dst_stride, src, t);
        let (w, h) = t.size();
        let dj = t.dj;
        if dj != 1 && dj != -1 {
            return scalar::turn_part(dst, dst_stride, src, t, or, 0, 0);
        }
        let (w4, h4) = (w / 4 * 4, h / 4 * 4);
        let orv = _mm_set1_epi32(or as i32);
        for j in (0..h4).step_by(4) {
            for i in (0..w4).step_by(4) {
                // SAFETY: `check_turn` put the block's corners, hence every
                // index of it, inside `src`, and its rows inside `dst`. Each
                // load reads output column i + k at rows j..j + 4: four
                // adjacent words, ascending from (i + k, j) when dj = 1 or
                // from (i + k, j + 3) when dj = -1. Each store writes row
                // j + m at columns i..i + 4.
                unsafe {
                    let col = |k: usize| {
                        if dj == 1 {
                            _mm_loadu_si128(src.as_ptr().add(t.at(i + k, j)).cast())
                        } else {
                            _mm_shuffle_epi32::<0x1b>(_mm_loadu_si128(src.as_ptr().add(t.at(i + k, j + 3)).cast()))
                        }
                    };
                    let (r0, r1, r2, r3) = (col(0), col(1), col(2), col(3));
                    let (t0, t1) = (_mm_unpacklo_epi32(r0, r1), _mm_unpacklo_epi32(r2, r3));
                    let (t2, t3) = (_mm_unpackhi_epi32(r0, r1), _mm_unpackhi_epi32(r2, r3));
                    let rows = [
                        _mm_unpacklo_epi64(t0, t1),
                        _mm_unpackhi_epi64(t0, t1),
                        _mm_unpacklo_epi64(t2, t3),
                        _mm_unpackhi_epi64(t2, t3),
                    ];
                    for (m, r) in rows.into_iter().enumerate() {
                        _mm_storeu_si128(dst.as_mut_ptr().add((j + m) * dst_stride + i).cast(), _mm_or_si128(r, orv));
                    }
                }
            }
        }
        scalar::turn_part(dst, dst_stride, src, t, or, w4, 0);
        scalar::turn_part(dst, dst_stride, src, t, or, 0, h4);
    }
}

mod avx2 {
    use super::*;

    #[target_feature(enable = "avx2")]
    pub(super) fn copy_opaque(dst: &mut [u32], src: &[u32]) {
        let n = dst.len().min(src.len());
        let a = _mm256_set1_epi32(OPAQUE as i32);
        if n < 16 {
            return super::sse2::copy_opaque(&mut dst[..n], &src[..n]);
        }
        let mut i = 0;
        loop {
            // SAFETY: i + 16 <= n and both slices hold n pixels.
            unsafe {
                let v0 = _mm256_loadu_si256(src.as_ptr().add(i).cast());
                let v1 = _mm256_loadu_si256(src.as_ptr().add(i + 8).cast());
                _mm256_storeu_si256(dst.as_mut_ptr().add(i).cast(), _mm256_or_si256(v0, a));
                _mm256_storeu_si256(dst.as_mut_ptr().add(i + 8).cast(), _mm256_or_si256(v1, a));
            }
            // The last block ends at n, overlapping the one before.
            i += 16;
            if i >= n {
                break;
            }
            i = i.min(n - 16);
        }
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn over8(s: __m256i, d: __m256i, m: __m256i, scale: bool) -> __m256i {
        let z = _mm256_setzero_si256();
        let (mut sl, mut sh) = (_mm256_unpacklo_epi8(s, z), _mm256_unpackhi_epi8(s, z));
        if scale {
            sl = div255!(_mm256_add_epi16, _mm256_srli_epi16, _mm256_set1_epi16, _mm256_mullo_epi16(sl, m));
            sh = div255!(_mm256_add_epi16, _mm256_srli_epi16, _mm256_set1_epi16, _mm256_mullo_epi16(sh, m));
        }
        let ff = _mm256_set1_epi16(255);
        let il = _mm256_sub_epi16(ff, _mm256_shufflehi_epi16::<0xff>(_mm256_shufflelo_epi16::<0xff>(sl)));
        let ih = _mm256_sub_epi16(ff, _mm256_shufflehi_epi16::<0xff>(_mm256_shufflelo_epi16::<0xff>(sh)));
        let dl = div255!(
            _mm256_add_epi16,
            _mm256_srli_epi16,
            _mm256_set1_epi16,
            _mm256_mullo_epi16(_mm256_unpacklo_epi8(d, z), il)
        );
        let dh = div255!(
            _mm256_add_epi16,
            _mm256_srli_epi16,
            _mm256_set1_epi16,
            _mm256_mullo_epi16(_mm256_unpackhi_epi8(d, z), ih)
        );
        // Unpacking and packing both work within 128-bit lanes, so pixels stay in order.
        let out = _mm256_adds_epu8(_mm256_packus_epi16(sl, sh), _mm256_packus_epi16(dl, dh));
        _mm256_or_si256(out, _mm256_set1_epi32(OPAQUE as i32))
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn over(dst: &mut [u32], src: &[u32], opacity: u8) {
        let n = dst.len().min(src.len());
        let m = _mm256_set1_epi16(opacity as i16);
        let scale = opacity != 255;
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: i + 8 <= n and both slices hold n pixels.
            unsafe {
                let s = _mm256_loadu_si256(src.as_ptr().add(i).cast());
                let d = _mm256_loadu_si256(dst.as_ptr().add(i).cast());
                _mm256_storeu_si256(dst.as_mut_ptr().add(i).cast(), over8(s, d, m, scale));
            }
            i += 8;
        }
        scalar::over(&mut dst[i..n], &src[i..n], opacity);
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn bilinear_h(out: &mut [u16], row: &[u32], taps: &Taps) {
        let (xs, ws) = taps.for_row(out.len() / 4, row.len());
        let n = xs.len();
        let z = _mm256_setzero_si256();
        if n < 4 {
            // SAFETY: the taps `for_row` checked.
            return unsafe { super::sse2::bilinear_h_taps(out, row, xs, ws) };
        }
        let mut i = 0;
        loop {
            // SAFETY: `for_row` checked x + 1 < row.len() for every tap, so
            // each 8-byte load reads two pixels of `row`; i + 4 <= n bounds
            // the weight loads and the 32-byte store (out holds 4 n lanes).
            unsafe {
                let p = |k: usize| _mm_loadl_epi64(row.as_ptr().add(xs[i + k] as usize).cast());
                let p01 = _mm_unpacklo_epi64(p(0), p(1));
                let p23 = _mm_unpacklo_epi64(p(2), p(3));
                let px = _mm256_set_m128i(p23, p01);
                let w01 = _mm256_loadu_si256(ws.as_ptr().add(i).cast());
                let w23 = _mm256_loadu_si256(ws.as_ptr().add(i + 2).cast());
                // Lane 0 holds taps 0 and 1, lane 1 taps 2 and 3.
                let a = _mm256_mullo_epi16(_mm256_unpacklo_epi8(px, z), _mm256_permute2x128_si256::<0x20>(w01, w23));
                let b = _mm256_mullo_epi16(_mm256_unpackhi_epi8(px, z), _mm256_permute2x128_si256::<0x31>(w01, w23));
                let sum = _mm256_add_epi16(_mm256_unpacklo_epi64(a, b), _mm256_unpackhi_epi64(a, b));
                _mm256_storeu_si256(out.as_mut_ptr().add(4 * i).cast(), sum);
            }
            // The last block ends at n, overlapping the one before.
            i += 4;
            if i >= n {
                break;
            }
            i = i.min(n - 4);
        }
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn bilinear_v(out: &mut [u32], h0: &[u16], h1: &[u16], w: u16, or: u32) {
        let n = out.len().min(h0.len() / 4).min(h1.len() / 4);
        let wv = _mm256_set1_epi32(((w as i32) << 16) | (128 - w as i32));
        let r = _mm256_set1_epi32(1 << 13);
        let orv = _mm256_set1_epi32(or as i32);
        // Four pixels' channels in, as 16-bit lanes in pixel order per 128-bit lane.
        let px = |a: __m256i, b: __m256i| {
            let lo = _mm256_srai_epi32::<14>(_mm256_add_epi32(_mm256_madd_epi16(_mm256_unpacklo_epi16(a, b), wv), r));
            let hi = _mm256_srai_epi32::<14>(_mm256_add_epi32(_mm256_madd_epi16(_mm256_unpackhi_epi16(a, b), wv), r));
            _mm256_packs_epi32(lo, hi)
        };
        if n < 8 {
            return super::sse2::bilinear_v(&mut out[..n], &h0[..4 * n], &h1[..4 * n], w, or);
        }
        let mut i = 0;
        loop {
            // SAFETY: i + 8 <= n: h0 and h1 hold 4 n lanes, out n pixels.
            unsafe {
                let a0 = _mm256_loadu_si256(h0.as_ptr().add(4 * i).cast());
                let a1 = _mm256_loadu_si256(h0.as_ptr().add(4 * i + 16).cast());
                let b0 = _mm256_loadu_si256(h1.as_ptr().add(4 * i).cast());
                let b1 = _mm256_loadu_si256(h1.as_ptr().add(4 * i + 16).cast());
                // Packing leaves pixels 0 1 4 5 | 2 3 6 7; the permute puts them back in order.
                let p = _mm256_permute4x64_epi64::<0xd8>(_mm256_packus_epi16(px(a0, b0), px(a1, b1)));
                _mm256_storeu_si256(out.as_mut_ptr().add(i).cast(), _mm256_or_si256(p, orv));
            }
            // The last block ends at n, overlapping the one before.
            i += 8;
            if i >= n {
                break;
            }
            i = i.min(n - 8);
        }
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn turn(dst: &mut [u32], dst_stride: usize, src: &[u32], t: &Turn, or: u32) {
        // 4x4 SSE2 transposes: wider ones gain little on a memory-bound turn.
        super::sse2::turn(dst, dst_stride, src, t, or)
    }
}
