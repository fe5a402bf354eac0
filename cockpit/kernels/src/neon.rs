//! NEON versions of the kernels (every aarch64 CPU: the boards' Cortex-A53/A57).
//!
//! Every `unsafe` block here is a vector load or store whose index the loop
//! bound checks. The tests run them under QEMU user mode
//! (`cargo xtask test`, `qemu-aarch64`).
#![allow(unsafe_code)]

use std::arch::aarch64::*;

use crate::{scalar, unchecked, Kernels, Taps, Turn, OPAQUE};

pub(crate) static NEON: Kernels = Kernels {
    name: "neon",
    copy_opaque: neon_entry::copy_opaque,
    over: neon_entry::over,
    bilinear_h: neon_entry::bilinear_h,
    bilinear_v: neon_entry::bilinear_v,
    gather: unchecked::gather,
    turn: neon_entry::turn,
};

entries!(neon_entry, imp, "NEON is part of every aarch64 CPU.");

/// The sets this CPU runs: NEON wherever the target has it (every aarch64
/// Linux target does; a build with NEON turned off gets the scalar set).
pub(crate) fn available() -> Vec<&'static Kernels> {
    if cfg!(target_feature = "neon") {
        vec![&NEON]
    } else {
        Vec::new()
    }
}

mod imp {
    use super::*;

    #[target_feature(enable = "neon")]
    pub(super) fn copy_opaque(dst: &mut [u32], src: &[u32]) {
        let n = dst.len().min(src.len());
        let a = vdupq_n_u32(OPAQUE);
        let mut i = 0;
        while i + 4 <= n {
            // SAFETY: i + 4 <= n and both slices hold n pixels.
            unsafe { vst1q_u32(dst.as_mut_ptr().add(i), vorrq_u32(vld1q_u32(src.as_ptr().add(i)), a)) };
            i += 4;
        }
        scalar::copy_opaque(&mut dst[i..n], &src[i..n]);
    }

    /// `x * y / 255`, rounded, per byte.
    #[target_feature(enable = "neon")]
    #[inline]
    fn mul(x: uint8x16_t, y: uint8x16_t) -> uint8x16_t {
        let lo = vmull_u8(vget_low_u8(x), vget_low_u8(y));
        let hi = vmull_high_u8(x, y);
        // (t + ((t + 128) >> 8) + 128) >> 8: the reference's rounding.
        vcombine_u8(vraddhn_u16(lo, vrshrq_n_u16::<8>(lo)), vraddhn_u16(hi, vrshrq_n_u16::<8>(hi)))
    }

    #[target_feature(enable = "neon")]
    pub(super) fn over(dst: &mut [u32], src: &[u32], opacity: u8) {
        let n = dst.len().min(src.len());
        let m = vdupq_n_u8(opacity);
        let mut i = 0;
        while i + 16 <= n {
            // SAFETY: i + 16 <= n and both slices hold n pixels (64 bytes each).
            unsafe {
                // Sixteen pixels split into planes B, G, R, A.
                let s = vld4q_u8(src.as_ptr().add(i).cast::<u8>());
                let d = vld4q_u8(dst.as_ptr().add(i).cast::<u8>());
                let (mut sb, mut sg, mut sr, mut sa) = (s.0, s.1, s.2, s.3);
                if opacity != 255 {
                    (sb, sg, sr, sa) = (mul(sb, m), mul(sg, m), mul(sr, m), mul(sa, m));
                }
                let ia = vmvnq_u8(sa);
                let out = uint8x16x4_t(
                    vqaddq_u8(sb, mul(d.0, ia)),
                    vqaddq_u8(sg, mul(d.1, ia)),
                    vqaddq_u8(sr, mul(d.2, ia)),
                    vdupq_n_u8(0xff),
                );
                vst4q_u8(dst.as_mut_ptr().add(i).cast::<u8>(), out);
            }
            i += 16;
        }
        scalar::over(&mut dst[i..n], &src[i..n], opacity);
    }

    #[target_feature(enable = "neon")]
    pub(super) fn bilinear_h(out: &mut [u16], row: &[u32], taps: &Taps) {
        let (xs, ws) = taps.for_row(out.len() / 4, row.len());
        for (i, (&x, w)) in xs.iter().zip(ws).enumerate() {
            // SAFETY: `for_row` checked x + 1 < row.len(), so the 8-byte load
            // reads two pixels of `row`; `out` holds 4 lanes per tap.
            unsafe {
                let p = vmovl_u8(vld1_u8(row.as_ptr().add(x as usize).cast::<u8>()));
                // Lanes 0-3: left pixel times 128 - w; lanes 4-7: right times w.
                let prod = vmulq_u16(p, vld1q_u16(w.as_ptr()));
                vst1_u16(out.as_mut_ptr().add(4 * i), vadd_u16(vget_low_u16(prod), vget_high_u16(prod)));
            }
        }
    }

    #[target_feature(enable = "neon")]
    pub(super) fn bilinear_v(out: &mut [u32], h0: &[u16], h1: &[u16], w: u16, or: u32) {
        let n = out.len().min(h0.len() / 4).min(h1.len() / 4);
        let (iw, wv) = (vdupq_n_u16(128 - w), vdupq_n_u16(w));
        let orv = vdup_n_u32(or);
        let mut i = 0;
        while i + 2 <= n {
            // SAFETY: i + 2 <= n: h0 and h1 hold 4 n lanes, out n pixels.
            unsafe {
                let (a, b) = (vld1q_u16(h0.as_ptr().add(4 * i)), vld1q_u16(h1.as_ptr().add(4 * i)));
                let lo = vmlal_u16(vmull_u16(vget_low_u16(a), vget_low_u16(iw)), vget_low_u16(b), vget_low_u16(wv));
                let hi = vmlal_high_u16(vmull_high_u16(a, iw), b, wv);
                // Round once: (v + 2^13) >> 14.
                let px = vmovn_u16(vcombine_u16(vrshrn_n_u32::<14>(lo), vrshrn_n_u32::<14>(hi)));
                vst1_u32(out.as_mut_ptr().add(i), vorr_u32(vreinterpret_u32_u8(px), orv));
            }
            i += 2;
        }
        scalar::bilinear_v(&mut out[i..n], &h0[4 * i..4 * n], &h1[4 * i..4 * n], w, or);
    }

    #[target_feature(enable = "neon")]
    pub(super) fn turn(dst: &mut [u32], dst_stride: usize, src: &[u32], t: &Turn, or: u32) {
        scalar::check_turn(dst, dst_stride, src, t);
        let (w, h) = t.size();
        let dj = t.dj;
        if dj != 1 && dj != -1 {
            return scalar::turn_part(dst, dst_stride, src, t, or, 0, 0);
        }
        let (w4, h4) = (w / 4 * 4, h / 4 * 4);
        let orv = vdupq_n_u32(or);
        for j in (0..h4).step_by(4) {
            for i in (0..w4).step_by(4) {
                // SAFETY: as in the SSE2 version: `check_turn` put every index
                // of the block inside `src` and its rows inside `dst`; each
                // load is four adjacent words of output column i + k, each
                // store four words of row j + m.
                unsafe {
                    let col = |k: usize| {
                        if dj == 1 {
                            vld1q_u32(src.as_ptr().add(t.at(i + k, j)))
                        } else {
                            let v = vrev64q_u32(vld1q_u32(src.as_ptr().add(t.at(i + k, j + 3))));
                            vextq_u32::<2>(v, v)
                        }
                    };
                    let (r0, r1, r2, r3) = (col(0), col(1), col(2), col(3));
                    let (t0, t1) = (vreinterpretq_u64_u32(vzip1q_u32(r0, r1)), vreinterpretq_u64_u32(vzip1q_u32(r2, r3)));
                    let (t2, t3) = (vreinterpretq_u64_u32(vzip2q_u32(r0, r1)), vreinterpretq_u64_u32(vzip2q_u32(r2, r3)));
                    let rows = [vzip1q_u64(t0, t1), vzip2q_u64(t0, t1), vzip1q_u64(t2, t3), vzip2q_u64(t2, t3)];
                    for (m, r) in rows.into_iter().enumerate() {
                        vst1q_u32(dst.as_mut_ptr().add((j + m) * dst_stride + i), vorrq_u32(vreinterpretq_u32_u64(r), orv));
                    }
                }
            }
        }
        scalar::turn_part(dst, dst_stride, src, t, or, w4, 0);
        scalar::turn_part(dst, dst_stride, src, t, or, 0, h4);
    }
}
