//! DRM/KMS output for a driver domain: per display, the layout's connector
//! driven in the layout's mode from three dumb buffers, flipped at vblank.
//! Nothing here waits: a display whose flip has not completed keeps its
//! newest picture in a ready buffer (rewritten by later frames) and flips
//! to it when the event comes, so a slow, stuck or failing flip on one
//! screen never holds back another's. Only damage (this frame's plus what
//! the buffer missed) is copied.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use cockpit_core::compositor::frame_canvas;
use cockpit_core::{Canvas, Damage, DisplayImage, Layout, PixelFormat, Rect};
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

/// Buffers per display: one on screen, one whose flip is queued, one
/// being filled with the newest picture.
const BUFFERS: usize = 3;

struct Screen {
    name: String,
    /// Index into `Kms::cards`.
    card: usize,
    crtc: crtc::Handle,
    bufs: Vec<DumbBuffer>,
    fbs: Vec<framebuffer::Handle>,
    /// The buffer on screen.
    shown: usize,
    /// The buffer whose flip is queued (the kernel has not said it is done).
    queued: Option<usize>,
    /// The buffer holding the newest picture, waiting for a flip.
    ready: Option<usize>,
    /// What each buffer misses of the newest picture.
    missed: [Damage; BUFFERS],
    /// Flips refused in a row (logged at the first and then sparingly).
    failures: u64,
    /// Frames that could not be drawn in a row (logged the same way).
    draw_failures: u64,
    format: PixelFormat,
    width: u32,
    height: u32,
}

impl Screen {
    /// The buffer to draw the newest picture into: the ready one (not
    /// handed to the kernel yet), else one neither shown nor queued.
    fn target(&self) -> usize {
        self.ready.unwrap_or_else(|| {
            (0..BUFFERS)
                .find(|&b| b != self.shown && Some(b) != self.queued)
                .expect("three buffers, at most two busy")
        })
    }
}

/// The displays of a layout, on one DRM device or several (a display's
/// `device` in the layout).
pub struct Kms {
    cards: Vec<Card>,
    screens: Vec<Screen>,
    /// Failed reads of DRM events (logged sparingly).
    event_errors: u64,
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
            for _ in 0..BUFFERS {
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
            let all = Rect::new(0, 0, d.width as i32, d.height as i32);
            let missed = std::array::from_fn(|_| {
                let mut m = Damage::new();
                m.add(all);
                m
            });
            screens.push(Screen {
                name: d.name.clone(),
                card: ci,
                crtc,
                bufs,
                fbs,
                shown: 0,
                queued: None,
                ready: None,
                missed,
                failures: 0,
                draw_failures: 0,
                format,
                width: d.width,
                height: d.height,
            });
        }
        Ok(Kms { cards, screens, event_errors: 0 })
    }

    /// Takes the flip events the kernel has sent, without waiting, and
    /// flips each display whose queued flip completed to its ready buffer.
    fn take_flip_events(&mut self) {
        for ci in 0..self.cards.len() {
            let readable = {
                let mut fd = [rustix::event::PollFd::new(&self.cards[ci].0, rustix::event::PollFlags::IN)];
                let zero = rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 };
                rustix::event::poll(&mut fd, Some(&zero)).is_ok_and(|n| n > 0)
            };
            if !readable {
                continue;
            }
            let events = match self.cards[ci].receive_events() {
                Ok(evs) => evs.collect::<Vec<_>>(),
                Err(e) => {
                    self.event_errors += 1;
                    if self.event_errors.is_power_of_two() {
                        eprintln!("cockpit: reading DRM events ({} failed): {e}", self.event_errors);
                    }
                    continue;
                }
            };
            for ev in events {
                if let Event::PageFlip(f) = ev {
                    for s in self.screens.iter_mut().filter(|s| s.card == ci && s.crtc == f.crtc) {
                        if let Some(b) = s.queued.take() {
                            s.shown = b;
                        }
                    }
                }
            }
        }
        for d in 0..self.screens.len() {
            self.flip_ready(d);
        }
    }

    /// Queues the flip to display `d`'s ready buffer unless one is queued.
    /// A refused flip is kept for the next try and never stops the others.
    fn flip_ready(&mut self, d: usize) {
        let s = &mut self.screens[d];
        let (None, Some(b)) = (s.queued, s.ready) else {
            return;
        };
        match self.cards[s.card].page_flip(s.crtc, s.fbs[b], PageFlipFlags::EVENT, None) {
            Ok(()) => {
                if s.failures > 0 {
                    eprintln!("cockpit: display \"{}\": flips work again after {} refused", s.name, s.failures);
                }
                s.failures = 0;
                s.queued = Some(b);
                s.ready = None;
            }
            Err(e) => {
                s.failures += 1;
                if s.failures.is_power_of_two() {
                    eprintln!("cockpit: display \"{}\": page flip refused ({} in a row): {e}", s.name, s.failures);
                }
            }
        }
    }

    /// Copies `damage` and what the target buffer missed from `canvas`.
    fn draw(&mut self, d: usize, canvas: &Canvas, damage: &[Rect]) -> io::Result<()> {
        let s = &mut self.screens[d];
        let b = s.target();
        let mut todo = std::mem::take(&mut s.missed[b]);
        for r in damage {
            todo.add(*r);
        }
        for (i, m) in s.missed.iter_mut().enumerate() {
            if i != b {
                for r in damage {
                    m.add(*r);
                }
            }
        }
        let pitch = s.bufs[b].pitch() as usize;
        let (format, w, h) = (s.format, s.width as i32, s.height as i32);
        let copied = (|| -> io::Result<()> {
            let mut map = self.cards[s.card].map_dumb_buffer(&mut s.bufs[b])?;
            let bytes = map.as_mut();
            for r in todo.rects() {
                let r = r.intersect(&Rect::new(0, 0, w, h).intersect(&canvas.bounds()));
                for y in r.y..r.bottom() {
                    let row = &mut bytes[y as usize * pitch..];
                    let src = &canvas.pixels()[(y * w + r.x) as usize..(y * w + r.right()) as usize];
                    if format == PixelFormat::Xrgb8888 {
                        // The canvas's words are XRGB8888 already.
                        let at = r.x as usize * 4;
                        row[at..at + src.len() * 4].copy_from_slice(bytemuck::cast_slice(src));
                    } else {
                        for (i, &p) in src.iter().enumerate() {
                            format.store(row, r.x as usize + i, p);
                        }
                    }
                }
            }
            Ok(())
        })();
        match copied {
            Ok(()) => {
                s.ready = Some(b);
                s.draw_failures = 0;
            }
            Err(_) => {
                // Whatever was not copied is still missing, and a buffer
                // that held an older picture is not flipped to.
                s.missed[b].add(Rect::new(0, 0, w, h));
                s.draw_failures += 1;
            }
        }
        copied
    }
}

impl crate::platform::Platform for Kms {
    fn scanout_formats(&self, _d: usize) -> Vec<PixelFormat> {
        // Guest memory is not a KMS buffer yet, so every frame is copied.
        Vec::new()
    }

    fn wake_fds(&self) -> Vec<BorrowedFd<'_>> {
        self.cards.iter().map(|c| c.0.as_fd()).collect()
    }

    fn service(&mut self) {
        self.take_flip_events();
    }

    fn present(&mut self, d: usize, image: DisplayImage<'_>) -> io::Result<()> {
        // Completed flips were taken by `service` at the top of the frame.
        let drawn = match image {
            DisplayImage::Composed { canvas, damage } => self.draw(d, canvas, damage),
            DisplayImage::Direct(f) => {
                let c = frame_canvas(f);
                self.draw(d, &c, &[c.bounds()])
            }
        };
        if let Err(e) = drawn {
            // A display that cannot be drawn loses this frame, not the run.
            let s = &self.screens[d];
            if s.draw_failures.is_power_of_two() {
                eprintln!("cockpit: display \"{}\": drawing a frame ({} in a row): {e}", s.name, s.draw_failures);
            }
        }
        self.flip_ready(d);
        Ok(())
    }
}

use drm::buffer::Buffer as _;
