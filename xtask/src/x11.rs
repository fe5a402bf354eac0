//! A virtual desktop for tests of what a developer sees in a window: an
//! Xvfb server, screenshots of it (`xwd`), and a mouse and keyboard on it
//! (`xdotool`). Debian packages: xvfb, x11-apps, xdotool.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running Xvfb; stopped when dropped.
pub struct Xvfb {
    child: Child,
    /// The `DISPLAY` value for its clients (`:N`).
    pub display: String,
}

/// An X screen's picture: `0xRRGGBB` pixels, row by row.
pub struct XScreen {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u32>,
}

impl XScreen {
    /// How many pixels are exactly `rgb`.
    pub fn count(&self, rgb: u32) -> usize {
        self.pixels.iter().filter(|&&p| p == rgb).count()
    }

    /// The pixel at (x, y), or `None` off the screen.
    pub fn at(&self, x: usize, y: usize) -> Option<u32> {
        (x < self.width && y < self.height).then(|| self.pixels[y * self.width + x])
    }

    /// The smallest rectangle `(x, y, w, h)` holding every pixel that is
    /// exactly `rgb`, if any is.
    pub fn bounds_of(&self, rgb: u32) -> Option<(usize, usize, usize, usize)> {
        let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
        for (i, _) in self.pixels.iter().enumerate().filter(|(_, &p)| p == rgb) {
            let (x, y) = (i % self.width, i / self.width);
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
        (x0 != usize::MAX).then(|| (x0, y0, x1 - x0 + 1, y1 - y0 + 1))
    }

    /// As a PNG (for a test's record of what it saw).
    pub fn save_png(&self, path: &std::path::Path) -> Result<(), String> {
        let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut enc = png::Encoder::new(std::io::BufWriter::new(file), self.width as u32, self.height as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let rgb: Vec<u8> = self.pixels.iter().flat_map(|p| [(p >> 16) as u8, (p >> 8) as u8, *p as u8]).collect();
        enc.write_header().and_then(|mut w| w.write_image_data(&rgb)).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Parses an XWD dump of a TrueColor screen of 24 or 32 bits per pixel
/// (what Xvfb gives).
pub fn parse_xwd(b: &[u8]) -> Result<XScreen, String> {
    let be = |i: usize| -> Result<u32, String> {
        let w = b.get(4 * i..4 * i + 4).ok_or("a truncated XWD header")?;
        Ok(u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
    };
    let (header_size, version, format, bpp) = (be(0)? as usize, be(1)?, be(2)?, be(11)?);
    if (version, format) != (7, 2) || !(bpp == 24 || bpp == 32) {
        return Err(format!("not an XWD ZPixmap of 24 or 32 bits per pixel (version {version}, format {format}, {bpp} bpp)"));
    }
    let bytes = bpp as usize / 8;
    let (width, height, byte_order, bytes_per_line, ncolors) = (be(4)? as usize, be(5)? as usize, be(7)?, be(12)? as usize, be(19)? as usize);
    if (be(14)?, be(15)?, be(16)?) != (0xff0000, 0xff00, 0xff) {
        return Err("an XWD dump whose colour masks are not 8-bit RGB".into());
    }
    let data = b.get(header_size + 12 * ncolors..).ok_or("a truncated XWD dump")?;
    if data.len() < bytes_per_line * height || bytes_per_line < bytes * width {
        return Err("a truncated XWD dump".into());
    }
    let mut pixels = Vec::with_capacity(width * height);
    for y in 0..height {
        for p in data[y * bytes_per_line..][..bytes * width].chunks_exact(bytes) {
            // The low three bytes are blue, green, red (least significant
            // first) or the other way round.
            let v = match (byte_order, bytes) {
                (0, 4) => u32::from_le_bytes([p[0], p[1], p[2], p[3]]),
                (0, _) => u32::from_le_bytes([p[0], p[1], p[2], 0]),
                (_, 4) => u32::from_be_bytes([p[0], p[1], p[2], p[3]]),
                _ => u32::from_be_bytes([0, p[0], p[1], p[2]]),
            };
            pixels.push(v & 0xff_ffff);
        }
    }
    Ok(XScreen { width, height, pixels })
}

impl Xvfb {
    /// Starts a `width`×`height` 24-bit screen on a free display number.
    pub fn start(width: u32, height: u32) -> Result<Xvfb, String> {
        for n in 0..20 {
            let display = format!(":{}", 90 + (std::process::id() as usize + n) % 400);
            if std::path::Path::new(&format!("/tmp/.X{}-lock", &display[1..])).exists() {
                continue;
            }
            let child = Command::new("Xvfb")
                .args([&display, "-screen", "0", &format!("{width}x{height}x24"), "-nolisten", "tcp"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("Xvfb (Debian package xvfb): {e}"))?;
            let x = Xvfb { child, display };
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(10) {
                if x.screenshot().is_ok() {
                    return Ok(x);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Err("could not start Xvfb".into())
    }

    /// What the screen shows now.
    pub fn screenshot(&self) -> Result<XScreen, String> {
        let out = Command::new("xwd")
            .args(["-root", "-silent", "-display", &self.display])
            .output()
            .map_err(|e| format!("xwd (Debian package x11-apps): {e}"))?;
        if !out.status.success() {
            return Err(format!("xwd: {}", String::from_utf8_lossy(&out.stderr)));
        }
        parse_xwd(&out.stdout)
    }

    /// Runs `xdotool` with `args` on this screen.
    pub fn xdotool(&self, args: &[&str]) -> Result<(), String> {
        let st = Command::new("xdotool")
            .args(args)
            .env("DISPLAY", &self.display)
            .status()
            .map_err(|e| format!("xdotool (Debian package xdotool): {e}"))?;
        if st.success() { Ok(()) } else { Err(format!("xdotool {args:?}: {st}")) }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
