//! DRM/KMS output for a driver domain: per display, the layout's connector
//! driven in the layout's mode from two dumb buffers, flipped at vblank.
//! Each frame waits for the previous flip's completion, so the compositor
//! runs at the display's refresh rate, and only damage (this frame's plus
//! what the back buffer missed) is copied.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use cockpit_core::compositor::frame_canvas;
use cockpit_core::{Canvas, DisplayImage, Layout, PixelFormat, Rect};
use drm::control::{connector, crtc, dumbbuffer::DumbBuffer, framebuffer, Device as ControlDevice, Event, Mode, PageFlipFlags};
use drm::Device;

struct Card(File);

impl AsFd for Card {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
impl Device for Card {}
impl ControlDevice for Card {}

struct Screen {
    /// Index into `Kms::cards`.
    card: usize,
    crtc: crtc::Handle,
    bufs: Vec<DumbBuffer>,
    fbs: Vec<framebuffer::Handle>,
    front: usize,
    flip_pending: bool,
    /// What each buffer missed while the other was on screen.
    missed: [Vec<Rect>; 2],
    format: PixelFormat,
    width: u32,
    height: u32,
}

/// The displays of a layout, on one DRM device or several (a display's
/// `device` in the layout).
pub struct Kms {
    cards: Vec<Card>,
    screens: Vec<Screen>,
}

fn err(msg: String) -> io::Error {
    io::Error::other(msg)
}

/// A mode of the layout's size for a virtual connector (a VM's GPU, whose
/// offered modes follow the window it is shown in, not the car's panel):
/// simple blanking, the pixel clock that gives `hz`. Never for a real
/// connector, whose panel takes only what it offers.
fn custom_mode(width: u32, height: u32, hz: u32) -> Option<Mode> {
    let (w, h) = (u16::try_from(width).ok()?, u16::try_from(height).ok()?);
    let (htotal, vtotal) = (w.checked_add(160)?, h.checked_add(30)?);
    let mut raw = drm_ffi::drm_mode_modeinfo {
        clock: u32::from(htotal) * u32::from(vtotal) / 1000 * hz,
        hdisplay: w,
        hsync_start: w + 48,
        hsync_end: w + 80,
        htotal,
        vdisplay: h,
        vsync_start: h + 3,
        vsync_end: h + 8,
        vtotal,
        vrefresh: hz,
        ..Default::default()
    };
    let name = format!("{w}x{h}");
    for (dst, src) in raw.name.iter_mut().zip(name.bytes()) {
        *dst = src as _;
    }
    Some(Mode::from(raw))
}

/// `HDMI-A-1`, `Virtual-1`, ...: the name the kernel and the layout use.
fn connector_name(info: &connector::Info) -> String {
    format!("{}-{}", info.interface().as_str(), info.interface_id())
}

impl Kms {
    /// Opens `device` (e.g. `/dev/dri/card0`), and each other device a
    /// display names, and sets every display's mode.
    pub fn open(device: &Path, layout: &Layout) -> io::Result<Kms> {
        // Devices by what they are, not how they are named (a symlink and
        // its target are one GPU, which only one open may drive).
        let mut paths: Vec<std::path::PathBuf> = Vec::new();
        let mut cards = Vec::new();
        let mut used_crtcs: Vec<(usize, crtc::Handle)> = Vec::new();
        let mut used_conns: Vec<(usize, connector::Handle)> = Vec::new();
        let mut screens = Vec::new();
        for d in &layout.displays {
            let path = d.device.as_deref().map_or(device, Path::new);
            let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
            let ci = match paths.iter().position(|p| *p == real) {
                Some(i) => i,
                None => {
                    let file = OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(path)
                        .map_err(|e| err(format!("display \"{}\": {}: {e}", d.name, path.display())))?;
                    paths.push(real);
                    cards.push(Card(file));
                    cards.len() - 1
                }
            };
            let card = &cards[ci];
            let res = card.resource_handles()?;
            let mut conns = Vec::new();
            for &h in res.connectors() {
                conns.push(card.get_connector(h, true)?);
            }
            let connected = |c: &&connector::Info| c.state() == connector::State::Connected && !used_conns.contains(&(ci, c.handle()));
            let conn = match &d.connector {
                Some(name) => conns.iter().filter(connected).find(|c| &connector_name(c) == name),
                None => conns.iter().find(connected),
            }
            .ok_or_else(|| {
                let have: Vec<String> = conns.iter().map(|c| format!("{} ({:?})", connector_name(c), c.state())).collect();
                err(format!(
                    "display \"{}\": no free connected connector {:?}; the device has {}",
                    d.name,
                    d.connector,
                    have.join(", ")
                ))
            })?;
            let offered = conn
                .modes()
                .iter()
                .find(|m| m.size() == (d.width as u16, d.height as u16) && d.refresh_hz.is_none_or(|r| m.vrefresh() == r))
                .copied();
            let virtual_panel = conn.interface() == connector::Interface::Virtual;
            let mode: Mode = offered
                .or_else(|| virtual_panel.then(|| custom_mode(d.width, d.height, d.refresh_hz.unwrap_or(60))).flatten())
                .ok_or_else(|| {
                    let have: Vec<String> = conn
                        .modes()
                        .iter()
                        .map(|m| format!("{}x{}@{}", m.size().0, m.size().1, m.vrefresh()))
                        .collect();
                    err(format!(
                        "display \"{}\": connector {} has no mode {}x{}; it offers {}",
                        d.name,
                        connector_name(conn),
                        d.width,
                        d.height,
                        have.join(", ")
                    ))
                })?;
            let mut crtc = None;
            for &e in conn.encoders() {
                let enc = card.get_encoder(e)?;
                let candidates = enc.crtc().into_iter().chain(res.filter_crtcs(enc.possible_crtcs()));
                if let Some(c) = candidates.into_iter().find(|c| !used_crtcs.contains(&(ci, *c))) {
                    crtc = Some(c);
                    break;
                }
            }
            let crtc = crtc.ok_or_else(|| err(format!("display \"{}\": no free CRTC for {}", d.name, connector_name(conn))))?;
            let (fourcc, bpp, depth) = match d.format {
                PixelFormat::Rgb565 => (drm_fourcc::DrmFourcc::Rgb565, 16, 16),
                _ => (drm_fourcc::DrmFourcc::Xrgb8888, 32, 24),
            };
            let format = if d.format == PixelFormat::Rgb565 {
                PixelFormat::Rgb565
            } else {
                PixelFormat::Xrgb8888
            };
            let mut bufs = Vec::new();
            let mut fbs = Vec::new();
            for _ in 0..2 {
                let mut b = card.create_dumb_buffer((d.width, d.height), fourcc, bpp)?;
                {
                    let mut map = card.map_dumb_buffer(&mut b)?;
                    map.as_mut().fill(0);
                }
                fbs.push(card.add_framebuffer(&b, depth, bpp)?);
                bufs.push(b);
            }
            card.set_crtc(crtc, Some(fbs[0]), (0, 0), &[conn.handle()], Some(mode))?;
            used_crtcs.push((ci, crtc));
            used_conns.push((ci, conn.handle()));
            screens.push(Screen {
                card: ci,
                crtc,
                bufs,
                fbs,
                front: 0,
                flip_pending: false,
                missed: [vec![Rect::new(0, 0, d.width as i32, d.height as i32)], Vec::new()],
                format,
                width: d.width,
                height: d.height,
            });
        }
        Ok(Kms { cards, screens })
    }

    /// Blocks until display `d`'s queued flip has completed.
    fn wait_flip(&mut self, d: usize) -> io::Result<()> {
        let ci = self.screens[d].card;
        while self.screens[d].flip_pending {
            for ev in self.cards[ci].receive_events()? {
                if let Event::PageFlip(f) = ev {
                    for s in self.screens.iter_mut().filter(|s| s.card == ci && s.crtc == f.crtc) {
                        s.flip_pending = false;
                    }
                }
            }
        }
        Ok(())
    }
}

impl crate::platform::Platform for Kms {
    fn scanout_formats(&self, _d: usize) -> Vec<PixelFormat> {
        // Guest memory is not a KMS buffer yet, so every frame is copied.
        Vec::new()
    }

    fn paces_itself(&self) -> bool {
        true
    }

    fn present(&mut self, d: usize, image: DisplayImage<'_>) -> io::Result<()> {
        self.wait_flip(d)?;
        let direct;
        let (canvas, damage): (&Canvas, Vec<Rect>) = match image {
            DisplayImage::Composed { canvas, damage } => (canvas, damage.to_vec()),
            DisplayImage::Direct(f) => {
                direct = frame_canvas(f);
                (&direct, vec![direct.bounds()])
            }
        };
        let s = &mut self.screens[d];
        let back = 1 - s.front;
        let mut todo = std::mem::take(&mut s.missed[back]);
        todo.extend(damage.iter().copied());
        s.missed[s.front].extend(damage.iter().copied());
        let pitch = s.bufs[back].pitch() as usize;
        let (format, w, h) = (s.format, s.width as i32, s.height as i32);
        {
            let mut map = self.cards[s.card].map_dumb_buffer(&mut s.bufs[back])?;
            let bytes = map.as_mut();
            for r in &todo {
                let r = r.intersect(&Rect::new(0, 0, w, h));
                for y in r.y..r.bottom() {
                    let row = &mut bytes[y as usize * pitch..];
                    let src = &canvas.pixels()[(y * w) as usize..];
                    for x in r.x..r.right() {
                        format.store(row, x as usize, src[x as usize]);
                    }
                }
            }
        }
        self.cards[s.card].page_flip(s.crtc, s.fbs[back], PageFlipFlags::EVENT, None)?;
        s.flip_pending = true;
        s.front = back;
        Ok(())
    }
}

use drm::buffer::Buffer as _;
