//! The display sink interface and two sinks.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use drm_fourcc::DrmFourcc;
use pv_transport::{RingMemory, Shm};

/// One connector the frontend drives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// Connector index in the frontend's directory (`<conn-idx>`), from 0;
    /// the same number as [`Frame::connector`].
    pub index: u32,
    /// The connector's `unique-id` node, empty if unset. The guest writes
    /// it: a label for logs, never what picks a screen (a compositor places
    /// outputs by frontend domain and connector index, from its own
    /// configuration).
    pub unique_id: String,
    /// Width in pixels, from the connector's `resolution`.
    pub width: u32,
    /// Height in pixels, from the connector's `resolution`.
    pub height: u32,
}

/// A framebuffer to show, borrowing guest memory (never a copy).
#[derive(Clone, Debug)]
pub struct Frame {
    /// Frontend domain and connector index, for the compositor to place it.
    pub domain: u16,
    /// Connector index ([`Output::index`]); always 0 for vfb.
    pub connector: u32,
    /// The frontend's cookie for this framebuffer (from FB_ATTACH), which
    /// a flip completion names; 0 for vfb.
    pub fb_cookie: u64,
    /// Pixel layout of the buffer.
    pub format: DrmFourcc,
    /// Visible width in pixels (no wider than the framebuffer).
    pub width: u32,
    /// Visible height in pixels (no taller than the framebuffer).
    pub height: u32,
    /// Bytes per line.
    pub pitch: u32,
    /// Offset of the first pixel in `memory`.
    pub offset: u32,
    /// The mapped buffer; kept alive (and mapped) while a clone exists.
    pub memory: Shm,
    /// Where on the connector (SET_CONFIG x, y).
    pub x: u32,
    /// Vertical position in pixels, with `x` (SET_CONFIG y; 0 for vfb).
    pub y: u32,
    /// What changed since the frame before, as `[x, y, width, height]`
    /// inside the visible size, when the frontend said (vfb UPDATE events,
    /// bounded into one box); `None`: unknown, all of it may have.
    pub damage: Option<[u32; 4]>,
}

/// Why a sink refused.
pub type SinkError = String;

/// Reports a flip as shown. Dropping it without [`complete`](Self::complete)
/// means the flip never completes (the frontend times out), which is what
/// a sink that lost the frame should cause.
pub struct FlipDone {
    pub(crate) queue: Arc<Mutex<Vec<(u32, u64)>>>,
    pub(crate) connector: u32,
    pub(crate) fb_cookie: u64,
}

impl FlipDone {
    /// The frame is on screen: the frontend may reuse the previous buffer.
    pub fn complete(self) {
        if let Ok(mut q) = self.queue.lock() {
            q.push((self.connector, self.fb_cookie));
        }
    }
}

/// What the compositor implements.
pub trait DisplaySink: Send {
    /// Whether this sink can drive `output` (e.g. it names a real screen).
    fn add_output(&mut self, domain: u16, output: &Output) -> Result<(), SinkError>;
    /// Shows `frame` on its connector; `None` disables the connector.
    /// Called for SET_CONFIG; no completion is reported.
    fn configure(
        &mut self,
        domain: u16,
        connector: u32,
        frame: Option<Frame>,
    ) -> Result<(), SinkError>;
    /// Shows `frame` at the next opportunity and calls `done` once it is
    /// visible (from any thread).
    fn flip(&mut self, frame: Frame, done: FlipDone) -> Result<(), SinkError>;
    /// The domain's outputs are gone (disconnect); drop its frames.
    fn remove_outputs(&mut self, domain: u16);
    /// Called on every device tick (every few milliseconds while flips
    /// are outstanding): a sink that defers work (a rate limit) does it here.
    fn tick(&mut self) {}
}

/// The frame's pixels as RGBA8, row by row (formats the frontends use).
pub fn to_rgba(f: &Frame) -> Result<Vec<u8>, SinkError> {
    let bpp = match f.format {
        DrmFourcc::Xrgb8888 | DrmFourcc::Argb8888 | DrmFourcc::Xbgr8888 | DrmFourcc::Abgr8888 => 4,
        DrmFourcc::Rgb888 | DrmFourcc::Bgr888 => 3,
        DrmFourcc::Rgb565 => 2,
        other => return Err(format!("cannot convert {other:?}")),
    };
    let row_bytes = f.width as usize * bpp;
    let mut out = Vec::with_capacity(f.width as usize * f.height as usize * 4);
    let mut row = vec![0u8; row_bytes];
    for y in 0..f.height as usize {
        let at = f.offset as u64 + y as u64 * f.pitch as u64;
        if !f.memory.contains(at, row_bytes as u64) {
            return Err("frame exceeds its buffer".into());
        }
        f.memory.read_bytes(at as usize, &mut row);
        for px in row.chunks_exact(bpp) {
            let rgba = match f.format {
                // Little-endian words: XRGB8888 is B, G, R, X in memory.
                DrmFourcc::Xrgb8888 => [px[2], px[1], px[0], 255],
                DrmFourcc::Argb8888 => [px[2], px[1], px[0], px[3]],
                DrmFourcc::Xbgr8888 => [px[0], px[1], px[2], 255],
                DrmFourcc::Abgr8888 => [px[0], px[1], px[2], px[3]],
                DrmFourcc::Rgb888 => [px[2], px[1], px[0], 255],
                DrmFourcc::Bgr888 => [px[0], px[1], px[2], 255],
                _ => {
                    let v = u16::from_le_bytes([px[0], px[1]]);
                    let (r, g, b) = ((v >> 11) & 0x1f, (v >> 5) & 0x3f, v & 0x1f);
                    [
                        (r * 255 / 31) as u8,
                        (g * 255 / 63) as u8,
                        (b * 255 / 31) as u8,
                        255,
                    ]
                }
            };
            out.extend_from_slice(&rgba);
        }
    }
    Ok(out)
}

/// Writes each shown frame to `<dir>/dom<D>-conn<C>-<seq>.png`, then
/// completes the flip. For tests: what a guest drew, checked pixel by pixel.
pub struct PngSink {
    dir: PathBuf,
    seq: u64,
    /// Files written, in order (shared so tests can read it).
    pub written: Arc<Mutex<Vec<PathBuf>>>,
}

impl PngSink {
    /// A sink writing into `dir`, which must already exist: it is not
    /// created, and a file that cannot be written fails that configure or
    /// flip (the frontend gets -EIO).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            seq: 0,
            written: Arc::default(),
        }
    }

    fn write(&mut self, f: &Frame) -> Result<PathBuf, SinkError> {
        let rgba = to_rgba(f)?;
        let path = self.dir.join(format!(
            "dom{}-conn{}-{:04}.png",
            f.domain, f.connector, self.seq
        ));
        self.seq += 1;
        let file = std::fs::File::create(&path).map_err(|e| e.to_string())?;
        let mut enc = png::Encoder::new(std::io::BufWriter::new(file), f.width, f.height);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(|e| e.to_string())?;
        w.write_image_data(&rgba).map_err(|e| e.to_string())?;
        w.finish().map_err(|e| e.to_string())?;
        self.written.lock().unwrap().push(path.clone());
        Ok(path)
    }
}

impl DisplaySink for PngSink {
    fn add_output(&mut self, _domain: u16, _output: &Output) -> Result<(), SinkError> {
        Ok(())
    }

    fn configure(
        &mut self,
        _domain: u16,
        _connector: u32,
        frame: Option<Frame>,
    ) -> Result<(), SinkError> {
        if let Some(f) = frame {
            self.write(&f)?;
        }
        Ok(())
    }

    fn flip(&mut self, frame: Frame, done: FlipDone) -> Result<(), SinkError> {
        self.write(&frame)?;
        done.complete();
        Ok(())
    }

    fn remove_outputs(&mut self, _domain: u16) {}
}

/// Keeps the latest frame of each (domain, connector) without copying and
/// completes flips at once: the cheapest possible sink.
#[derive(Clone, Default)]
pub struct LatestFrameSink {
    /// The frame last configured or flipped, by (domain, connector);
    /// shared by clones, so the reader keeps one clone of the sink.
    pub frames: Arc<Mutex<HashMap<(u16, u32), Frame>>>,
    /// Number of outputs the "screen" has: a connector whose index is this
    /// or more is refused; `None` accepts any.
    pub max_outputs: Option<u32>,
}

impl DisplaySink for LatestFrameSink {
    fn add_output(&mut self, _domain: u16, output: &Output) -> Result<(), SinkError> {
        match self.max_outputs {
            Some(n) if output.index >= n => Err(format!("no output {} (have {n})", output.index)),
            _ => Ok(()),
        }
    }

    fn configure(
        &mut self,
        domain: u16,
        connector: u32,
        frame: Option<Frame>,
    ) -> Result<(), SinkError> {
        let mut m = self.frames.lock().unwrap();
        match frame {
            Some(f) => m.insert((domain, connector), f),
            None => m.remove(&(domain, connector)),
        };
        Ok(())
    }

    fn flip(&mut self, frame: Frame, done: FlipDone) -> Result<(), SinkError> {
        self.frames
            .lock()
            .unwrap()
            .insert((frame.domain, frame.connector), frame);
        done.complete();
        Ok(())
    }

    fn remove_outputs(&mut self, domain: u16) {
        self.frames.lock().unwrap().retain(|(d, _), _| *d != domain);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pv_transport::loopback::Loopback;
    use pv_transport::GrantTable;

    fn frame(format: DrmFourcc, w: u32, h: u32, pitch: u32, bytes: &[u8]) -> Frame {
        let lb = Loopback::new();
        let mem = lb.grants(1).share(0, 1, false).unwrap();
        mem.write_bytes(0, bytes);
        Frame {
            domain: 1,
            connector: 0,
            fb_cookie: 1,
            format,
            width: w,
            height: h,
            pitch,
            offset: 0,
            memory: mem,
            x: 0,
            y: 0,
            damage: None,
        }
    }

    #[test]
    fn conversions() {
        // Two XRGB8888 pixels with a padded pitch.
        let f = frame(DrmFourcc::Xrgb8888, 2, 1, 12, &[1, 2, 3, 9, 4, 5, 6, 9]);
        assert_eq!(to_rgba(&f).unwrap(), vec![3, 2, 1, 255, 6, 5, 4, 255]);
        let f = frame(DrmFourcc::Abgr8888, 1, 1, 4, &[1, 2, 3, 4]);
        assert_eq!(to_rgba(&f).unwrap(), vec![1, 2, 3, 4]);
        let f = frame(DrmFourcc::Rgb565, 1, 1, 2, &0xf800u16.to_le_bytes());
        assert_eq!(to_rgba(&f).unwrap(), vec![255, 0, 0, 255]);
        assert!(to_rgba(&frame(DrmFourcc::Yuyv, 1, 1, 2, &[0; 2])).is_err());
        // Rows beyond the shared memory are an error, not a panic.
        assert!(to_rgba(&frame(DrmFourcc::Xrgb8888, 4, 2, 4096, &[])).is_err());
    }
}
