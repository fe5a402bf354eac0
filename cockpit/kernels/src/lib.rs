//! `cockpit-kernels`: the compositor's inner loops, one row at a time.
//!
//! It owns every `unsafe` block of the compositor's pixel path (SIMD
//! intrinsics and the unaligned loads and stores they need) so that
//! `cockpit-core` stays `#![forbid(unsafe_code)]`.
//!
//! Pixels are `u32` `0xAARRGGBB`, premultiplied, in memory order B, G, R, A
//! (DRM's little-endian ARGB8888). Destination rows are display canvases:
//! opaque, and every kernel writes alpha 0xff.
//!
//! Each kernel exists as a [`scalar`] reference and, where the CPU has it,
//! SSE2 and AVX2 (x86_64) or NEON (aarch64) versions that give bit-identical
//! results; the tests check every available set against the reference on
//! sizes that cross every vector width and tail. [`Kernels::best`] picks the
//! set once per process from what the CPU reports.
//!
//! Arithmetic (the same in every version):
//! - `m * c / 255` is rounded: `t = m * c + 128; (t + (t >> 8)) >> 8`;
//! - OVER is `s + d * (255 - s.a) / 255`, saturated per channel (a source
//!   that is not really premultiplied gives clipped colours, never a carry
//!   into the next channel);
//! - bilinear filtering uses 7-bit weights (`0..=128`), filters horizontally
//!   first into 16-bit channels, then vertically, and rounds once.
#![deny(unsafe_code)]

/// Safe entries into one module's target-feature functions, for its table.
macro_rules! entries {
    ($entry:ident, $imp:ident, $why:literal) => {
        #[doc = $why]
        mod $entry {
            use crate::Taps;

            pub(super) fn copy_opaque(dst: &mut [u32], src: &[u32]) {
                // SAFETY: the CPU has the module's features (this module's doc says why).
                unsafe { super::$imp::copy_opaque(dst, src) }
            }
            pub(super) fn over(dst: &mut [u32], src: &[u32], opacity: u8) {
                // SAFETY: as above.
                unsafe { super::$imp::over(dst, src, opacity) }
            }
            pub(super) fn bilinear_h(out: &mut [u16], row: &[u32], taps: &Taps) {
                // SAFETY: as above.
                unsafe { super::$imp::bilinear_h(out, row, taps) }
            }
            pub(super) fn bilinear_v(out: &mut [u32], h0: &[u16], h1: &[u16], w: u16, or: u32) {
                // SAFETY: as above.
                unsafe { super::$imp::bilinear_v(out, h0, h1, w, or) }
            }
            pub(super) fn turn(dst: &mut [u32], dst_stride: usize, src: &[u32], t: &crate::Turn, or: u32) {
                // SAFETY: as above.
                unsafe { super::$imp::turn(dst, dst_stride, src, t, or) }
            }
        }
    };
}

pub mod scalar;
mod unchecked;
#[cfg(target_arch = "x86_64")]
mod x86;
#[cfg(target_arch = "aarch64")]
mod neon;

/// Alpha set on every destination pixel.
pub const OPAQUE: u32 = 0xff00_0000;

/// Horizontal bilinear taps for one draw: output pixel `i` blends source
/// pixels `x[i]` and `x[i] + 1` with weights `128 - w` and `w`.
///
/// Built once per draw; its largest index is checked against each row once,
/// so the kernels need no per-pixel bounds checks.
#[derive(Default, Clone, Debug)]
pub struct Taps {
    x: Vec<u32>,
    /// `[128 - w; 4]` then `[w; 4]`, the layout the SIMD kernels load.
    w: Vec<[u16; 8]>,
    /// The shortest row these taps may read (largest `x` + 2).
    need: usize,
}

impl Taps {
    /// Replaces the taps, reusing the storage. Each tap is `(x, w)` with
    /// `w <= 128`; a larger `w` is clamped.
    pub fn set(&mut self, taps: impl Iterator<Item = (u32, u16)>) {
        self.x.clear();
        self.w.clear();
        self.need = 0;
        for (x, w) in taps {
            let w = w.min(128);
            let iw = 128 - w;
            self.x.push(x);
            self.w.push([iw, iw, iw, iw, w, w, w, w]);
            // Saturating: on a 32-bit target a huge `x` makes every row too short.
            self.need = self.need.max((x as usize).saturating_add(2));
        }
    }

    /// The shortest source row the taps may read.
    pub fn need(&self) -> usize {
        self.need
    }

    /// The taps for `pixels` output pixels read from a row of `row_len`:
    /// every kernel starts here, so every index it reads is below `row_len`.
    ///
    /// # Panics
    /// If the row is shorter than [`Taps::need`] (a caller's bug: taps are
    /// built from the same buffer's width as its rows).
    pub(crate) fn for_row(&self, pixels: usize, row_len: usize) -> (&[u32], &[[u16; 8]]) {
        assert!(row_len >= self.need, "bilinear taps reach past the row");
        let n = pixels.min(self.x.len());
        (&self.x[..n], &self.w[..n])
    }
}

/// Source columns for a nearest-neighbour row: output pixel `i` is source
/// pixel `x[i]`. Built once per draw, checked against each row once.
#[derive(Default, Clone, Debug)]
pub struct Columns {
    x: Vec<u32>,
    need: usize,
}

impl Columns {
    /// Replaces the columns, reusing the storage.
    pub fn set(&mut self, xs: impl Iterator<Item = u32>) {
        self.x.clear();
        self.need = 0;
        for x in xs {
            self.x.push(x);
            self.need = self.need.max((x as usize).saturating_add(1));
        }
    }

    /// The shortest source row these columns may read.
    pub fn need(&self) -> usize {
        self.need
    }

    /// The columns for `pixels` output pixels read from a row of `row_len`;
    /// every index is below `row_len`.
    ///
    /// # Panics
    /// If the row is shorter than [`Columns::need`] (a caller's bug).
    pub(crate) fn for_row(&self, pixels: usize, row_len: usize) -> &[u32] {
        assert!(row_len >= self.need, "nearest columns reach past the row");
        &self.x[..pixels.min(self.x.len())]
    }
}

/// One set of row kernels, all for the same CPU features.
pub struct Kernels {
    name: &'static str,
    copy_opaque: fn(&mut [u32], &[u32]),
    over: fn(&mut [u32], &[u32], u8),
    bilinear_h: fn(&mut [u16], &[u32], &Taps),
    bilinear_v: fn(&mut [u32], &[u16], &[u16], u16, u32),
    gather: fn(&mut [u32], &[u32], &Columns, u32),
    turn: fn(&mut [u32], usize, &[u32], &Turn, u32),
}

/// A block read from a buffer at a quarter turn, unscaled: output pixel
/// (i, j) (column, row) is buffer word `start + i * di + j * dj`, for
/// `0 <= i < w`, `0 <= j < h`. Built with [`Turn::new`], which checks that
/// every index is inside the buffer.
#[derive(Clone, Copy, Debug)]
pub struct Turn {
    start: usize,
    pub(crate) di: isize,
    pub(crate) dj: isize,
    w: usize,
    h: usize,
}

impl Turn {
    /// The block, if all its indices lie in a buffer of `len` words (the
    /// index is linear in i and j, so its extremes are at the corners).
    pub fn new(start: usize, di: isize, dj: isize, w: usize, h: usize, len: usize) -> Option<Turn> {
        if w == 0 || h == 0 {
            return Some(Turn { start, di, dj, w: 0, h: 0 });
        }
        let (wi, hj) = (isize::try_from(w - 1).ok()?, isize::try_from(h - 1).ok()?);
        let s = isize::try_from(start).ok()?;
        for (i, j) in [(0, 0), (wi, 0), (0, hj), (wi, hj)] {
            let at = s.checked_add(i.checked_mul(di)?)?.checked_add(j.checked_mul(dj)?)?;
            if at < 0 || at as usize >= len {
                return None;
            }
        }
        Some(Turn { start, di, dj, w, h })
    }

    /// Output pixel (i, j)'s buffer index.
    #[inline(always)]
    pub(crate) fn at(&self, i: usize, j: usize) -> usize {
        (self.start as isize + i as isize * self.di + j as isize * self.dj) as usize
    }

    /// The block's width and height.
    pub fn size(&self) -> (usize, usize) {
        (self.w, self.h)
    }
}

impl Kernels {
    /// The fastest set this CPU runs, chosen once.
    pub fn best() -> &'static Kernels {
        static BEST: std::sync::OnceLock<&'static Kernels> = std::sync::OnceLock::new();
        BEST.get_or_init(|| Self::available().last().copied().unwrap_or(&scalar::KERNELS))
    }

    /// Every set this CPU runs, the scalar reference first, the fastest last.
    pub fn available() -> Vec<&'static Kernels> {
        let mut v = vec![&scalar::KERNELS];
        #[cfg(target_arch = "x86_64")]
        v.extend(x86::available());
        #[cfg(target_arch = "aarch64")]
        v.extend(neon::available());
        v
    }

    /// What the set uses: `scalar`, `sse2`, `avx2` or `neon`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// `dst[i] = src[i]` with alpha forced opaque (XRGB's undefined byte, or
    /// an opaque source), over the shorter of the two.
    #[inline]
    pub fn copy_opaque(&self, dst: &mut [u32], src: &[u32]) {
        let n = dst.len().min(src.len());
        (self.copy_opaque)(&mut dst[..n], &src[..n])
    }

    /// Premultiplied OVER of `src` scaled by `opacity`/255 onto the opaque
    /// `dst`, over the shorter of the two.
    #[inline]
    pub fn over(&self, dst: &mut [u32], src: &[u32], opacity: u8) {
        let n = dst.len().min(src.len());
        (self.over)(&mut dst[..n], &src[..n], opacity)
    }

    /// Filters `row` horizontally at `taps` into `out`, four 16-bit channels
    /// (B, G, R, A, each `0..=255 * 128`) per output pixel, for as many
    /// pixels as both `out` and `taps` hold.
    ///
    /// # Panics
    /// If `row` is shorter than `taps.need()` (a caller's bug: taps are built
    /// from the same buffer's width as its rows).
    #[inline]
    pub fn bilinear_h(&self, out: &mut [u16], row: &[u32], taps: &Taps) {
        (self.bilinear_h)(out, row, taps)
    }

    /// Blends two horizontally filtered rows with weight `w` (`0..=128`) of
    /// the second, rounds, ORs `or` (e.g. [`OPAQUE`] for a source without
    /// alpha) and writes pixels to `out`, for as many as all three hold.
    ///
    /// Rows are what [`Kernels::bilinear_h`] makes: lanes at most
    /// `255 * 128`. Larger lanes give some pixel (never a fault), not
    /// necessarily the same one in every kernel set.
    #[inline]
    pub fn bilinear_v(&self, out: &mut [u32], h0: &[u16], h1: &[u16], w: u16, or: u32) {
        let n = out.len().min(h0.len() / 4).min(h1.len() / 4);
        (self.bilinear_v)(&mut out[..n], &h0[..4 * n], &h1[..4 * n], w.min(128), or)
    }

    /// `out[i] = row[cols[i]] | or`, for as many pixels as `out` and `cols`
    /// hold.
    ///
    /// # Panics
    /// If `row` is shorter than `cols.need()` (a caller's bug).
    #[inline]
    pub fn gather(&self, out: &mut [u32], row: &[u32], cols: &Columns, or: u32) {
        (self.gather)(out, row, cols, or)
    }
}

impl Kernels {
    /// Writes the block `turn` reads from `src` into `dst`, row `j` at
    /// `dst[j * dst_stride..]`, ORing `or` into every pixel.
    ///
    /// # Panics
    /// If `src` is not the buffer the block was checked against, or `dst`
    /// cannot hold the block (callers' bugs).
    #[inline]
    pub fn turn(&self, dst: &mut [u32], dst_stride: usize, src: &[u32], turn: &Turn, or: u32) {
        (self.turn)(dst, dst_stride, src, turn, or)
    }
}

impl std::fmt::Debug for Kernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}
