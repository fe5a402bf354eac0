//! The legacy vfb backend (`io/fbif.h`) for `xen-fbfront` guests.
//!
//! The frontend publishes the *frame number* of a shared page holding the
//! framebuffer geometry and a directory of frame numbers; the backend maps
//! both through a [`pv_transport::ForeignMapper`]. Each UPDATE event (the
//! frontend sends them because we write `request-update`) presents the
//! framebuffer to the sink; RESIZE changes the layout within the memory
//! the frontend shared. vfb has no flip completion.

use std::time::{Duration, Instant};

use drm_fourcc::DrmFourcc;
use pv_backend::{Ctx, Device, DeviceError};
use pv_transport::xenbus::{self, XenbusState};
use pv_transport::{Fence, Port, RingMemory, Shm};
use xen_abi::io::fbif::{
    field, out_slot_offset, page, protocol, OutEvent, PageHeader, PdAbi, EVENT_SIZE,
};
use xen_abi::io::XEN_PAGE_SIZE;

use crate::sink::{DisplaySink, Frame, Output};

/// Limits, and the `pd[]` word size for guests that say `arm-abi`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VfbConfig {
    /// Widest framebuffer accepted, in pixels; wider fails the connect,
    /// and a RESIZE beyond it is ignored.
    pub max_width: u32,
    /// Tallest framebuffer accepted, in pixels, with the same rules.
    pub max_height: u32,
    /// Largest framebuffer, in bytes.
    pub max_mem: u32,
    /// `arm-abi` does not say whether `unsigned long` is 4 or 8 bytes;
    /// the SDK's guests are arm64.
    pub arm_abi: PdAbi,
    /// Fewest milliseconds between two frames handed to the sink (each is
    /// a copy of the whole framebuffer): UPDATEs that come faster are
    /// gathered into the next frame, so a frontend's redraw storm costs
    /// the driver domain no more than a display's refresh rate does.
    pub min_frame_ms: u32,
}

impl Default for VfbConfig {
    fn default() -> Self {
        Self {
            max_width: 4096,
            max_height: 4096,
            max_mem: 64 << 20,
            arm_abi: PdAbi::Bits64,
            min_frame_ms: 16,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    width: u32,
    height: u32,
    stride: u32,
    depth: u32,
    offset: u32,
}

struct Conn {
    page: Shm,
    port: Port,
    fb: Shm,
    mem_length: u32,
    layout: Layout,
}

/// One vfb device.
pub struct VfbBackend {
    cfg: VfbConfig,
    sink: Box<dyn DisplaySink>,
    conn: Option<Conn>,
    fe_dom: u16,
    label: String,
    /// When the last frame went to the sink.
    last_frame: Option<Instant>,
    /// An UPDATE that came too soon after the last frame, to show later.
    owed: bool,
    /// What the UPDATEs since the last frame covered: `[x0, y0, x1, y1]`
    /// inside the visible size, or `None` with `all_changed` (a RESIZE, a
    /// new connection: everything).
    changed: Option<[u32; 4]>,
    all_changed: bool,
}

fn format_of(depth: u32) -> Option<DrmFourcc> {
    match depth {
        32 => Some(DrmFourcc::Xrgb8888),
        24 => Some(DrmFourcc::Rgb888),
        16 => Some(DrmFourcc::Rgb565),
        _ => None,
    }
}

impl Layout {
    fn fits(&self, cfg: &VfbConfig, mem_length: u32) -> bool {
        let row = u64::from(self.width) * u64::from(self.depth) / 8;
        (1..=cfg.max_width).contains(&self.width)
            && (1..=cfg.max_height).contains(&self.height)
            && format_of(self.depth).is_some()
            && u64::from(self.stride) >= row
            && u64::from(self.offset) + u64::from(self.stride) * u64::from(self.height)
                <= u64::from(mem_length)
    }
}

impl VfbBackend {
    /// A device enforcing `cfg` that shows the guest's framebuffer on
    /// `sink` as connector 0; it needs an endpoint whose foreign mapper
    /// may map the guest's frames.
    pub fn new(cfg: VfbConfig, sink: Box<dyn DisplaySink>) -> Self {
        Self {
            cfg,
            sink,
            conn: None,
            fe_dom: 0,
            label: String::new(),
            last_frame: None,
            owed: false,
            changed: None,
            all_changed: true,
        }
    }

    fn frame(&self, c: &Conn) -> Frame {
        let damage = match (self.all_changed, self.changed) {
            (false, Some([x0, y0, x1, y1])) => Some([x0, y0, x1 - x0, y1 - y0]),
            _ => None,
        };
        Frame {
            domain: self.fe_dom,
            connector: 0,
            fb_cookie: 0,
            format: format_of(c.layout.depth).unwrap_or(DrmFourcc::Xrgb8888),
            width: c.layout.width,
            height: c.layout.height,
            pitch: c.layout.stride,
            offset: c.layout.offset,
            memory: c.fb.clone(),
            x: 0,
            y: 0,
            damage,
        }
    }

    /// Walks `pd[]` and the directory pages to the framebuffer's frames.
    fn map_framebuffer(
        &self,
        ctx: &Ctx,
        page: &Shm,
        abi: PdAbi,
        mem_length: u32,
    ) -> Result<Shm, DeviceError> {
        let pages = (mem_length as usize).div_ceil(XEN_PAGE_SIZE);
        let per_dir = abi.pages_per_directory_page();
        let entry = abi.entry_size();
        let read_word = |mem: &Shm, off: usize| -> u64 {
            let mut b = [0u8; 8];
            mem.read_bytes(off, &mut b[..entry]);
            u64::from_le_bytes(b)
        };
        let mut frames = Vec::with_capacity(pages);
        for i in 0..pages.div_ceil(per_dir) {
            let off = abi
                .entry_offset(i)
                .ok_or("framebuffer needs more pd[] entries than the page holds")?;
            let dir = ctx
                .ep
                .foreign
                .map_frames(ctx.fe_dom, &[read_word(page, off)], false)
                .map_err(|e| format!("pd[{i}]: {e}"))?;
            let n = (pages - frames.len()).min(per_dir);
            frames.extend((0..n).map(|j| read_word(&dir, j * entry)));
        }
        ctx.ep
            .foreign
            .map_frames(ctx.fe_dom, &frames, false)
            .map_err(|e| format!("framebuffer: {e}").into())
    }

    fn process(&mut self) -> Result<(), DeviceError> {
        let Some(c) = self.conn.as_mut() else {
            return Ok(());
        };
        let mut hb = [0u8; PageHeader::SIZE];
        c.page.read_bytes(0, &mut hb);
        let h = PageHeader::decode(&hb).map_err(|_| "page header")?;
        c.page.fence(Fence::Read);
        let n = h.out_pending().map_err(|_| {
            format!(
                "out_prod {} is beyond the ring (out_cons {})",
                h.out_prod, h.out_cons
            )
        })?;
        let mut cons = h.out_cons;
        let mut show = false;
        for _ in 0..n {
            let mut b = [0u8; EVENT_SIZE];
            c.page.read_bytes(out_slot_offset(cons), &mut b);
            cons = cons.wrapping_add(1);
            match OutEvent::decode(&b) {
                Ok(OutEvent::Update { x, y, width, height }) => {
                    show = true;
                    // The frontend's numbers, clamped into the visible
                    // picture (a lie only leaves its own picture stale).
                    let (w, h) = (c.layout.width as i64, c.layout.height as i64);
                    let x0 = (x as i64).clamp(0, w);
                    let y0 = (y as i64).clamp(0, h);
                    let x1 = (x as i64 + width.max(0) as i64).clamp(x0, w);
                    let y1 = (y as i64 + height.max(0) as i64).clamp(y0, h);
                    if x1 > x0 && y1 > y0 {
                        let r = [x0 as u32, y0 as u32, x1 as u32, y1 as u32];
                        self.changed = Some(match self.changed {
                            Some(o) => [o[0].min(r[0]), o[1].min(r[1]), o[2].max(r[2]), o[3].max(r[3])],
                            None => r,
                        });
                    }
                }
                Ok(OutEvent::Resize {
                    width,
                    height,
                    stride,
                    depth,
                    offset,
                }) => {
                    let l = Layout {
                        width: width as u32,
                        height: height as u32,
                        stride: stride as u32,
                        depth: depth as u32,
                        offset: offset as u32,
                    };
                    let sane = [width, height, stride, depth, offset]
                        .iter()
                        .all(|&v| v >= 0);
                    if sane && l.fits(&self.cfg, c.mem_length) {
                        c.layout = l;
                        show = true;
                        self.all_changed = true;
                    } else {
                        log::warn!(
                            "{}: RESIZE outside the shared framebuffer ignored: {l:?}",
                            self.label
                        );
                    }
                }
                Err(e) => log::warn!("{}: skipped event: {e}", self.label),
            }
        }
        c.page.fence(Fence::Full);
        c.page.write_u32(page::OUT_CONS, cons);
        let now = Instant::now();
        let min = Duration::from_millis(u64::from(self.cfg.min_frame_ms));
        let soon = self.last_frame.is_some_and(|t| now.saturating_duration_since(t) < min);
        if (show || self.owed) && soon {
            self.owed = true;
            return Ok(());
        }
        if show || self.owed {
            self.owed = false;
            self.last_frame = Some(now);
            let frame = self.frame(self.conn.as_ref().unwrap());
            self.changed = None;
            self.all_changed = false;
            self.sink
                .configure(self.fe_dom, 0, Some(frame))
                .map_err(|e| format!("sink: {e}"))?;
        }
        Ok(())
    }
}

impl Device for VfbBackend {
    fn init(&mut self, ctx: &Ctx) -> Result<(), DeviceError> {
        ctx.ep.store.write(&ctx.be(field::FEATURE_RESIZE), b"1")?;
        Ok(())
    }

    fn ready(&self, state: XenbusState) -> bool {
        matches!(state, XenbusState::Initialised | XenbusState::Connected)
    }

    fn connect(&mut self, ctx: &Ctx) -> Result<(), DeviceError> {
        self.fe_dom = ctx.fe_dom;
        self.label = format!("vfb dom{}", ctx.fe_dom);
        let xs = &*ctx.ep.store;
        let page_ref = xenbus::read_string(xs, &ctx.fe(field::PAGE_REF))?
            .parse::<u64>()
            .map_err(|_| "page-ref is not a frame number")?;
        let remote_port = xenbus::read_u32(xs, &ctx.fe(field::EVENT_CHANNEL))
            .map_err(|e| format!("event-channel: {e}"))?;
        let abi = match xenbus::read_string(xs, &ctx.fe(field::PROTOCOL)) {
            Ok(p) if p == protocol::ARM => self.cfg.arm_abi,
            Ok(p) => PdAbi::from_protocol(&p).ok_or(format!("unknown protocol {p}"))?,
            Err(_) => self.cfg.arm_abi,
        };
        if xenbus::read_flag(xs, &ctx.fe(field::FEATURE_UPDATE)) {
            xs.write(&ctx.be(field::REQUEST_UPDATE), b"1")?;
        }
        let page = ctx
            .ep
            .foreign
            .map_frames(ctx.fe_dom, &[page_ref], true)
            .map_err(|e| format!("shared page: {e}"))?;
        let mut hb = [0u8; PageHeader::SIZE];
        page.read_bytes(0, &mut hb);
        let h = PageHeader::decode(&hb).map_err(|_| "page header")?;
        let layout = Layout {
            width: h.width.max(0) as u32,
            height: h.height.max(0) as u32,
            stride: h.line_length,
            depth: u32::from(h.depth),
            offset: 0,
        };
        if h.mem_length > self.cfg.max_mem || !layout.fits(&self.cfg, h.mem_length) {
            return Err(format!("framebuffer geometry out of range: {h:?}").into());
        }
        let fb = self.map_framebuffer(ctx, &page, abi, h.mem_length)?;
        let port = ctx.ep.events.bind_interdomain(ctx.fe_dom, remote_port)?;
        let out = Output {
            index: 0,
            unique_id: "vfb".into(),
            width: layout.width,
            height: layout.height,
        };
        // From here on `disconnect` releases the port (and the output).
        self.all_changed = true;
        self.conn = Some(Conn {
            page,
            port,
            fb,
            mem_length: h.mem_length,
            layout,
        });
        self.sink
            .add_output(ctx.fe_dom, &out)
            .map_err(|e| format!("sink: {e}"))?;
        let frame = self.conn.as_ref().map(|c| self.frame(c));
        self.all_changed = false;
        self.changed = None;
        self.sink
            .configure(ctx.fe_dom, 0, frame)
            .map_err(|e| format!("sink: {e}"))?;
        Ok(())
    }

    fn on_event(&mut self, _ctx: &Ctx, _port: Port) -> Result<(), DeviceError> {
        self.process()
    }

    fn tick(&mut self, _ctx: &Ctx) -> Result<(), DeviceError> {
        // Frontends send UPDATEs without always notifying (fbfront batches).
        self.process()
    }

    fn tick_ms(&self) -> u32 {
        // An owed frame goes out as soon as the rate allows.
        if self.owed {
            self.cfg.min_frame_ms.clamp(1, 20)
        } else {
            20
        }
    }

    fn disconnect(&mut self, ctx: &Ctx) {
        self.owed = false;
        if let Some(c) = self.conn.take() {
            let _ = ctx.ep.events.unbind(c.port);
        }
        self.sink.remove_outputs(ctx.fe_dom);
    }
}
