//! [`Frame`]: one buffer a source shows, shared without copying.

use std::fmt;
use std::sync::Arc;

use crate::damage::Damage;
use crate::format::PixelFormat;
use crate::geom::Rect;

/// The memory behind a frame: a guest's granted pages, a Wayland client's
/// copied buffer, or a plain vector. Its length must not change while shared.
pub trait FrameData: Send + Sync + 'static {
    /// All of the memory (the frame's rows are a window into it).
    fn bytes(&self) -> &[u8];
}

impl FrameData for Vec<u8> {
    fn bytes(&self) -> &[u8] {
        self
    }
}

/// Pixels as `u32` words: on little-endian machines (all the targets the
/// cockpit runs on), `0xXXRRGGBB` words are XRGB8888 bytes.
impl FrameData for Vec<u32> {
    fn bytes(&self) -> &[u8] {
        bytemuck::cast_slice(self)
    }
}

impl FrameData for Box<[u8]> {
    fn bytes(&self) -> &[u8] {
        self
    }
}

/// A picture in a [`PixelFormat`]: `height` rows of `stride` bytes starting
/// at `offset` in its data. Cloning shares the data.
#[derive(Clone)]
pub struct Frame {
    data: Arc<dyn FrameData>,
    offset: usize,
    width: u32,
    height: u32,
    stride: usize,
    format: PixelFormat,
}

/// Why a frame cannot be made from some memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Width or height is 0 or above 16384.
    BadSize { width: u32, height: u32 },
    /// The stride is shorter than a row.
    StrideTooSmall { stride: usize, row_bytes: usize },
    /// The rows run past the end of the memory.
    TooShort { needed: usize, len: usize },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::BadSize { width, height } => write!(f, "{width}x{height} is not a frame size (1 to 16384 each way)"),
            FrameError::StrideTooSmall { stride, row_bytes } => write!(f, "stride {stride} is shorter than a row ({row_bytes} bytes)"),
            FrameError::TooShort { needed, len } => write!(f, "the frame needs {needed} bytes but its memory holds {len}"),
        }
    }
}

impl std::error::Error for FrameError {}

impl Frame {
    /// A frame over `data`, checked to lie within it.
    pub fn new(
        data: Arc<dyn FrameData>,
        offset: usize,
        width: u32,
        height: u32,
        stride: usize,
        format: PixelFormat,
    ) -> Result<Frame, FrameError> {
        if !(1..=16384).contains(&width) || !(1..=16384).contains(&height) {
            return Err(FrameError::BadSize { width, height });
        }
        let row_bytes = width as usize * format.bytes_per_pixel();
        if stride < row_bytes {
            return Err(FrameError::StrideTooSmall { stride, row_bytes });
        }
        let needed = offset + stride * (height as usize - 1) + row_bytes;
        let len = data.bytes().len();
        if needed > len {
            return Err(FrameError::TooShort { needed, len });
        }
        Ok(Frame {
            data,
            offset,
            width,
            height,
            stride,
            format,
        })
    }

    /// A tightly packed frame owning `bytes`.
    pub fn from_vec(bytes: Vec<u8>, width: u32, height: u32, format: PixelFormat) -> Result<Frame, FrameError> {
        let stride = width as usize * format.bytes_per_pixel();
        Frame::new(Arc::new(bytes), 0, width, height, stride, format)
    }

    /// A frame of premultiplied `0xAARRGGBB` pixels in `format`.
    pub fn from_pixels(pixels: &[u32], width: u32, height: u32, format: PixelFormat) -> Result<Frame, FrameError> {
        let bpp = format.bytes_per_pixel();
        let mut bytes = vec![0u8; pixels.len() * bpp];
        for (i, &p) in pixels.iter().enumerate() {
            format.store(&mut bytes, i, p);
        }
        Frame::from_vec(bytes, width, height, format)
    }

    /// One colour everywhere.
    pub fn solid(width: u32, height: u32, format: PixelFormat, argb: u32) -> Frame {
        let px = vec![argb; width as usize * height as usize];
        Frame::from_pixels(&px, width, height, format).expect("a solid frame of a valid size")
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }
    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }
    /// Bytes from one row to the next.
    pub fn stride(&self) -> usize {
        self.stride
    }
    /// Its pixel format.
    pub fn format(&self) -> PixelFormat {
        self.format
    }
    /// The memory it shows.
    pub fn data(&self) -> &Arc<dyn FrameData> {
        &self.data
    }

    /// Whether the data still holds every row (memory behind a frame may be
    /// revoked, e.g. a guest's grant unmapped; such a frame is not drawn).
    pub fn is_intact(&self) -> bool {
        let row_bytes = self.width as usize * self.format.bytes_per_pixel();
        self.offset + self.stride * (self.height as usize - 1) + row_bytes <= self.data.bytes().len()
    }

    /// Row `y`'s pixels (exactly `width` of them). Panics if `y` is out of
    /// range or the data shrank (check [`Frame::is_intact`] first).
    #[inline]
    pub fn row(&self, y: usize) -> &[u8] {
        let start = self.offset + y * self.stride;
        &self.data.bytes()[start..start + self.width as usize * self.format.bytes_per_pixel()]
    }

    /// What changed from `old` to this frame, in buffer coordinates: bands
    /// of changed rows, each as wide as its changed pixels, for a producer
    /// that hands over whole pictures without saying what it redrew (a
    /// guest's page flip). `None` when the two cannot be compared (another
    /// size or format, or memory that no longer holds them).
    pub fn changes_from(&self, old: &Frame) -> Option<Damage> {
        if (old.width, old.height, old.format) != (self.width, self.height, self.format) {
            return None;
        }
        let (new_rows, old_rows) = (self.rows()?, old.rows()?);
        let bpp = self.format.bytes_per_pixel();
        let mut damage = Damage::new();
        // The band being built: its first row and the union of its spans.
        let mut band: Option<(usize, usize, usize)> = None;
        let close = |band: Option<(usize, usize, usize)>, end: usize, damage: &mut Damage| {
            if let Some((y0, x0, x1)) = band {
                damage.add(Rect::new(x0 as i32, y0 as i32, (x1 - x0) as i32, (end - y0) as i32));
            }
        };
        for y in 0..self.height as usize {
            match changed_span(old_rows.row(y), new_rows.row(y), bpp) {
                Some((a, b)) => {
                    band = Some(match band {
                        Some((y0, x0, x1)) => (y0, x0.min(a), x1.max(b)),
                        None => (y, a, b),
                    })
                }
                None => close(band.take(), y, &mut damage),
            }
        }
        close(band, self.height as usize, &mut damage);
        Some(damage)
    }

    /// Row access through one look at the data, or `None` if it no longer
    /// holds every row. Drawing goes through this so memory revoked halfway
    /// through a frame is never indexed past its end.
    pub(crate) fn rows(&self) -> Option<Rows<'_>> {
        let bytes = self.data.bytes();
        let row_len = self.width as usize * self.format.bytes_per_pixel();
        let needed = self.offset + self.stride * (self.height as usize - 1) + row_len;
        (needed <= bytes.len()).then_some(Rows {
            bytes,
            offset: self.offset,
            stride: self.stride,
            row_len,
        })
    }

    /// Pixel (x, y) as premultiplied `0xAARRGGBB`.
    pub fn pixel(&self, x: u32, y: u32) -> u32 {
        self.format.fetch(self.row(y as usize), x as usize)
    }

    /// A fingerprint of the picture (every visible byte), to tell a guest
    /// that keeps flipping the same picture from one that draws; `None` if
    /// the memory no longer holds every row.
    pub fn fingerprint(&self) -> Option<u64> {
        let rows = self.rows()?;
        // FxHash-style: a multiply and a rotate per 8 bytes.
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut h = u64::from(self.width) << 32 | u64::from(self.height);
        for y in 0..self.height as usize {
            let row = rows.row(y);
            let mut words = row.chunks_exact(8);
            for w in &mut words {
                let v = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
                h = (h.rotate_left(5) ^ v).wrapping_mul(K);
            }
            for &b in words.remainder() {
                h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
            }
        }
        Some(h)
    }

    /// Whether two frames show the same memory (no copy was made).
    pub fn same_memory(&self, other: &Frame) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&self.data), Arc::as_ptr(&other.data)) && self.offset == other.offset
    }
}

/// The rows of a frame, over one borrowed view of its data.
#[derive(Clone, Copy)]
pub(crate) struct Rows<'a> {
    bytes: &'a [u8],
    offset: usize,
    stride: usize,
    row_len: usize,
}

impl<'a> Rows<'a> {
    #[inline(always)]
    pub fn row(&self, y: usize) -> &'a [u8] {
        let start = self.offset + y * self.stride;
        &self.bytes[start..start + self.row_len]
    }

    /// The same rows as 32-bit words, when the memory, offset and stride
    /// are 4-byte aligned: (words, offset in words, stride in words).
    pub fn words(&self) -> Option<(&'a [u32], usize, usize)> {
        if !self.offset.is_multiple_of(4) || !self.stride.is_multiple_of(4) {
            return None;
        }
        let words: &[u32] = bytemuck::try_cast_slice(self.bytes).ok().or_else(|| {
            // A length that is not a multiple of 4: use the whole words.
            bytemuck::try_cast_slice(&self.bytes[..self.bytes.len() / 4 * 4]).ok()
        })?;
        Some((words, self.offset / 4, self.stride / 4))
    }
}

/// The first and one-past-last pixel where rows `a` and `b` differ.
fn changed_span(a: &[u8], b: &[u8], bpp: usize) -> Option<(usize, usize)> {
    if a == b {
        return None;
    }
    let first = a.iter().zip(b).position(|(x, y)| x != y)?;
    let last = a.iter().zip(b).rposition(|(x, y)| x != y)?;
    Some((first / bpp, last / bpp + 1))
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Frame({}x{} {} stride {})", self.width, self.height, self.format, self.stride)
    }
}
