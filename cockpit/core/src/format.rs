//! Pixel formats the engine reads and writes, named by their DRM fourcc.
//!
//! Every format is read into the engine's working pixel: a `u32` holding
//! premultiplied `0xAARRGGBB`. DRM formats are little-endian, so
//! `XRGB8888` is the bytes B, G, R, X in memory.

use drm_fourcc::DrmFourcc;

/// A pixel format the compositor can take from a source or give to an output.
///
/// Formats with alpha are premultiplied (as Wayland's `wl_shm` and DRM
/// planes define them); a source whose producer writes straight alpha says
/// so in the layout (`alpha = "straight"`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// `0xXXRRGGBB` words.
    Xrgb8888,
    /// `0xAARRGGBB` words, premultiplied.
    Argb8888,
    /// `0xXXBBGGRR` words.
    Xbgr8888,
    /// `0xAABBGGRR` words, premultiplied.
    Abgr8888,
    /// 16-bit `RRRRRGGGGGGBBBBB`.
    Rgb565,
}

impl PixelFormat {
    /// Every format, in a stable order.
    pub const ALL: [PixelFormat; 5] = [
        PixelFormat::Xrgb8888,
        PixelFormat::Argb8888,
        PixelFormat::Xbgr8888,
        PixelFormat::Abgr8888,
        PixelFormat::Rgb565,
    ];

    /// The DRM fourcc code.
    pub fn fourcc(self) -> DrmFourcc {
        match self {
            PixelFormat::Xrgb8888 => DrmFourcc::Xrgb8888,
            PixelFormat::Argb8888 => DrmFourcc::Argb8888,
            PixelFormat::Xbgr8888 => DrmFourcc::Xbgr8888,
            PixelFormat::Abgr8888 => DrmFourcc::Abgr8888,
            PixelFormat::Rgb565 => DrmFourcc::Rgb565,
        }
    }

    /// The format for a DRM fourcc, if the engine handles it.
    pub fn from_fourcc(f: DrmFourcc) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.fourcc() == f)
    }

    /// Parses `XRGB8888`, `argb8888`, `RGB565`, ... (the fourcc's name).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name().eq_ignore_ascii_case(name))
    }

    /// The name used in layout files and messages.
    pub fn name(self) -> &'static str {
        match self {
            PixelFormat::Xrgb8888 => "XRGB8888",
            PixelFormat::Argb8888 => "ARGB8888",
            PixelFormat::Xbgr8888 => "XBGR8888",
            PixelFormat::Abgr8888 => "ABGR8888",
            PixelFormat::Rgb565 => "RGB565",
        }
    }

    /// 4, or 2 for RGB565.
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            PixelFormat::Rgb565 => 2,
            _ => 4,
        }
    }

    /// Whether pixels carry alpha (the others are opaque).
    pub fn has_alpha(self) -> bool {
        matches!(self, PixelFormat::Argb8888 | PixelFormat::Abgr8888)
    }

    /// Reads pixel `x` of `row` as premultiplied `0xAARRGGBB`.
    #[inline(always)]
    pub fn fetch(self, row: &[u8], x: usize) -> u32 {
        match self {
            PixelFormat::Xrgb8888 => read32(row, x) | 0xff00_0000,
            PixelFormat::Argb8888 => read32(row, x),
            PixelFormat::Xbgr8888 => swap_rb(read32(row, x)) | 0xff00_0000,
            PixelFormat::Abgr8888 => swap_rb(read32(row, x)),
            PixelFormat::Rgb565 => {
                let p = u16::from_le_bytes([row[2 * x], row[2 * x + 1]]) as u32;
                let r = (p >> 11) & 0x1f;
                let g = (p >> 5) & 0x3f;
                let b = p & 0x1f;
                // Replicate the high bits so 0x1f becomes 0xff exactly.
                let r = (r << 3) | (r >> 2);
                let g = (g << 2) | (g >> 4);
                let b = (b << 3) | (b >> 2);
                0xff00_0000 | (r << 16) | (g << 8) | b
            }
        }
    }

    /// Writes `0xAARRGGBB` at `x` of `row` (alpha is dropped by formats without it).
    #[inline(always)]
    pub fn store(self, row: &mut [u8], x: usize, argb: u32) {
        match self {
            PixelFormat::Xrgb8888 | PixelFormat::Argb8888 => write32(row, x, argb),
            PixelFormat::Xbgr8888 | PixelFormat::Abgr8888 => write32(row, x, swap_rb(argb)),
            PixelFormat::Rgb565 => {
                let r = (argb >> 19) & 0x1f;
                let g = (argb >> 10) & 0x3f;
                let b = (argb >> 3) & 0x1f;
                let p = ((r << 11) | (g << 5) | b) as u16;
                row[2 * x..2 * x + 2].copy_from_slice(&p.to_le_bytes());
            }
        }
    }
}

impl std::fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[inline(always)]
fn read32(row: &[u8], x: usize) -> u32 {
    let b = &row[4 * x..4 * x + 4];
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

#[inline(always)]
fn write32(row: &mut [u8], x: usize, v: u32) {
    row[4 * x..4 * x + 4].copy_from_slice(&v.to_le_bytes());
}

#[inline(always)]
fn swap_rb(p: u32) -> u32 {
    (p & 0xff00_ff00) | ((p >> 16) & 0xff) | ((p & 0xff) << 16)
}

/// Turns straight (non-premultiplied) `0xAARRGGBB` into premultiplied.
#[inline(always)]
pub fn premultiply(p: u32) -> u32 {
    let a = p >> 24;
    if a == 255 {
        return p;
    }
    let rb = mul_255(p & 0x00ff_00ff, a);
    let g = mul_255((p >> 8) & 0x00ff_00ff, a) & 0xff;
    (a << 24) | rb | (g << 8)
}

/// Multiplies two packed 8-bit lanes (`0x00XX00YY`) by `m`/255, rounded.
#[inline(always)]
pub(crate) fn mul_255(lanes: u32, m: u32) -> u32 {
    let t = lanes * m + 0x0080_0080;
    ((t + ((t >> 8) & 0x00ff_00ff)) >> 8) & 0x00ff_00ff
}

/// Scales every channel (alpha too) of premultiplied `p` by `m`/255.
#[inline(always)]
pub(crate) fn scale_pixel(p: u32, m: u32) -> u32 {
    mul_255(p & 0x00ff_00ff, m) | (mul_255((p >> 8) & 0x00ff_00ff, m) << 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_format() {
        for f in PixelFormat::ALL {
            let mut row = vec![0u8; 4 * f.bytes_per_pixel()];
            let c = 0xff_84_82_84; // representable in RGB565 exactly
            f.store(&mut row, 1, c);
            assert_eq!(f.fetch(&row, 1), c, "{f}");
            assert_eq!(PixelFormat::from_fourcc(f.fourcc()), Some(f));
            assert_eq!(PixelFormat::from_name(&f.name().to_lowercase()), Some(f));
        }
    }

    #[test]
    fn rgb565_white_is_white() {
        let row = [0xff, 0xff];
        assert_eq!(PixelFormat::Rgb565.fetch(&row, 0), 0xffff_ffff);
    }

    #[test]
    fn bgr_formats_swap_channels() {
        let row = [0x11, 0x22, 0x33, 0x80]; // R, G, B, A in memory
        assert_eq!(PixelFormat::Abgr8888.fetch(&row, 0), 0x8011_2233);
        assert_eq!(PixelFormat::Argb8888.fetch(&row, 0), 0x8033_2211);
    }

    #[test]
    fn premultiply_scales_colour_by_alpha() {
        assert_eq!(premultiply(0x80ff_0000), 0x8080_0000);
        assert_eq!(premultiply(0xff12_3456), 0xff12_3456);
    }
}
