//! The vdispl backend device.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use drm_fourcc::DrmFourcc;
use pv_backend::{Ctx, Device, DeviceError, Turn};
use pv_transport::pgdir::map_buffer;
use pv_transport::xenbus;
use pv_transport::RingMemory;
use pv_transport::{Port, Shm};
use xen_abi::io::displif::{
    field, offsets, parse_resolution, DbufCreate, Event, EventBody, FbAttach, Operation, Request,
    RequestBody, Response, SetConfig, DBUF_FLG_REQ_ALLOC, PACKET_SIZE,
};
use xen_abi::io::evtpage::{offsets as evt_offsets, EventWriter};
use xen_abi::io::ring::{offsets as ring_offsets, BackRing};
use xen_abi::io::XEN_PAGE_SIZE;

use crate::sink::{DisplaySink, FlipDone, Frame, Output};

const EIO: i32 = 5;
const ENOMEM: i32 = 12;
const EBUSY: i32 = 16;
const EINVAL: i32 = 22;
const EOPNOTSUPP: i32 = 95;

/// Limits on what a frontend may ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VdisplConfig {
    /// Most connectors a frontend may configure (ids 0 to this minus one);
    /// more is a bad configuration and moves the device to Closing.
    pub max_connectors: u32,
    /// Widest connector resolution and display buffer, in pixels.
    pub max_width: u32,
    /// Tallest connector resolution and display buffer, in pixels.
    pub max_height: u32,
    /// Largest display buffer, in bytes.
    pub max_buffer_size: u32,
    /// Display buffers a frontend may hold at once; DBUF_CREATE beyond
    /// this is answered -ENOMEM.
    pub max_buffers: u32,
    /// Bytes of display buffers a frontend may hold at once.
    pub max_mapped_bytes: u64,
    /// Flips handed to the sink and not yet shown; more are answered
    /// -EBUSY.
    pub max_pending_flips: usize,
    /// Framebuffers a frontend may hold at once; FB_ATTACH beyond this is
    /// answered -ENOMEM.
    pub max_framebuffers: u32,
}

impl Default for VdisplConfig {
    fn default() -> Self {
        Self {
            max_connectors: 8,
            max_width: 8192,
            max_height: 8192,
            max_buffer_size: 256 << 20,
            max_buffers: 8,
            max_mapped_bytes: 512 << 20,
            max_pending_flips: 8,
            max_framebuffers: 32,
        }
    }
}

struct Conn {
    out: Output,
    ring: BackRing<Shm, PACKET_SIZE>,
    port: Port,
    evt: EventWriter<Shm>,
    evt_port: Port,
    evt_id: u16,
    /// (fb cookie, x, y, width, height) of the current SET_CONFIG.
    shown: Option<(u64, u32, u32, u32, u32)>,
    /// Requests were left on the ring for the next turn.
    backlog: bool,
}

struct Dbuf {
    mem: Shm,
    width: u32,
    height: u32,
    bpp: u32,
    pitch: u32,
    data_ofs: u32,
}

struct Fb {
    dbuf: u64,
    width: u32,
    height: u32,
    format: DrmFourcc,
}

/// Bits per pixel of the formats this backend accepts.
pub fn format_bpp(f: DrmFourcc) -> Option<u32> {
    use DrmFourcc::*;
    Some(match f {
        Xrgb8888 | Argb8888 | Xbgr8888 | Abgr8888 | Rgbx8888 | Rgba8888 | Bgrx8888 | Bgra8888 => 32,
        Rgb888 | Bgr888 => 24,
        Rgb565 | Bgr565 | Xrgb1555 | Argb1555 | Xrgb4444 | Argb4444 | Yuyv => 16,
        C8 => 8,
        _ => return None,
    })
}

/// One vdispl device (all its connectors).
pub struct VdisplBackend {
    cfg: VdisplConfig,
    sink: Box<dyn DisplaySink>,
    conns: Vec<Conn>,
    dbufs: HashMap<u64, Dbuf>,
    fbs: HashMap<u64, Fb>,
    done: Arc<Mutex<Vec<(u32, u64)>>>,
    /// Flips handed to the sink and not yet reported shown.
    outstanding: usize,
    /// Mappings of destroyed display buffers that the sink still holds (a
    /// frame it shows): they count against the quota until it lets go.
    retired: Vec<Shm>,
    fe_dom: u16,
    label: String,
}

impl VdisplBackend {
    /// A device enforcing `cfg` that shows its frames on `sink`; the
    /// connectors are read from xenstore when the frontend connects.
    pub fn new(cfg: VdisplConfig, sink: Box<dyn DisplaySink>) -> Self {
        Self {
            cfg,
            sink,
            conns: Vec::new(),
            dbufs: HashMap::new(),
            fbs: HashMap::new(),
            done: Arc::default(),
            outstanding: 0,
            retired: Vec::new(),
            fe_dom: 0,
            label: String::new(),
        }
    }

    fn read_outputs(&self, ctx: &Ctx) -> Result<Vec<Output>, DeviceError> {
        let xs = &*ctx.ep.store;
        let mut outs = Vec::new();
        let ids = xenbus::numbered_children(xs, ctx.fe_dir)?;
        for (expect, id) in ids.into_iter().enumerate() {
            let dir = xenbus::join(ctx.fe_dir, &id.to_string());
            let Ok(res) = xs.read(&xenbus::join(&dir, field::RESOLUTION)) else {
                continue; // not a connector directory
            };
            if id as usize != expect || id >= self.cfg.max_connectors {
                return Err(format!("connector id {id} out of range").into());
            }
            let (width, height) = parse_resolution(&res)
                .map_err(|_| format!("connector {id}: malformed resolution"))?;
            if width == 0
                || height == 0
                || width > self.cfg.max_width
                || height > self.cfg.max_height
            {
                return Err(
                    format!("connector {id}: resolution {width}x{height} out of range").into(),
                );
            }
            let unique_id =
                xenbus::read_string(xs, &xenbus::join(&dir, field::UNIQUE_ID)).unwrap_or_default();
            outs.push(Output {
                index: id,
                unique_id,
                width,
                height,
            });
        }
        if outs.is_empty() {
            return Err("no connectors".into());
        }
        Ok(outs)
    }

    fn handle(&mut self, ctx: &Ctx, ci: usize, req: Request) -> Result<(), i32> {
        match req.body {
            RequestBody::DbufCreate(d) => self.dbuf_create(ctx, d),
            RequestBody::DbufDestroy { dbuf_cookie } => {
                let d = self.dbufs.remove(&dbuf_cookie).ok_or(-EINVAL)?;
                // Still shown by the sink: it keeps counting until let go.
                if Arc::strong_count(&d.mem.0) > 1 {
                    self.retired.push(d.mem);
                }
                self.fbs.retain(|_, fb| fb.dbuf != dbuf_cookie);
                Ok(())
            }
            RequestBody::FbAttach(a) => self.fb_attach(a),
            RequestBody::FbDetach { fb_cookie } => {
                self.fbs.remove(&fb_cookie).map(drop).ok_or(-EINVAL)
            }
            RequestBody::SetConfig(c) => self.set_config(ci, c),
            RequestBody::PgFlip { fb_cookie } => self.flip(ci, fb_cookie),
            RequestBody::GetEdid(_) => Err(-EOPNOTSUPP),
        }
    }

    fn dbuf_create(&mut self, ctx: &Ctx, d: DbufCreate) -> Result<(), i32> {
        let c = &self.cfg;
        // u32 × u32 fits in u64; the products after that may not.
        let pitch = (u64::from(d.width) * u64::from(d.bpp)).div_ceil(8);
        let need = pitch
            .saturating_mul(u64::from(d.height))
            .saturating_add(u64::from(d.data_ofs));
        let ok = d.dbuf_cookie != 0
            && !self.dbufs.contains_key(&d.dbuf_cookie)
            && d.flags & DBUF_FLG_REQ_ALLOC == 0
            && matches!(d.bpp, 8 | 16 | 24 | 32)
            && (1..=c.max_width).contains(&d.width)
            && (1..=c.max_height).contains(&d.height)
            && need <= u64::from(d.buffer_sz)
            && d.buffer_sz <= c.max_buffer_size;
        if !ok {
            log::warn!("{}: DBUF_CREATE refused: {d:?}", self.label);
            return Err(-EINVAL);
        }
        // The same grants mapped again under a new cookie count again.
        let held = self.held_bytes();
        if self.dbufs.len() >= c.max_buffers as usize
            || held + u64::from(d.buffer_sz).next_multiple_of(XEN_PAGE_SIZE as u64)
                > c.max_mapped_bytes
        {
            log::warn!(
                "{}: DBUF_CREATE over the quota ({} buffers, {} bytes held; at most {} and {})",
                self.label,
                self.dbufs.len(),
                held,
                c.max_buffers,
                c.max_mapped_bytes
            );
            return Err(-ENOMEM);
        }
        let mem = map_buffer(
            &*ctx.ep.mapper,
            ctx.fe_dom,
            d.gref_directory,
            d.buffer_sz,
            c.max_buffer_size,
            false,
        )
        .map_err(|e| {
            log::warn!("{}: display buffer does not map: {e}", self.label);
            -EINVAL
        })?;
        self.dbufs.insert(
            d.dbuf_cookie,
            Dbuf {
                mem,
                width: d.width,
                height: d.height,
                bpp: d.bpp,
                pitch: pitch as u32,
                data_ofs: d.data_ofs,
            },
        );
        Ok(())
    }

    /// Bytes of display buffers mapped for this frontend: its buffers, and
    /// destroyed ones whose mapping the sink still holds.
    fn held_bytes(&self) -> u64 {
        let still_shown = self.retired.iter().filter(|m| Arc::strong_count(&m.0) > 1);
        self.dbufs
            .values()
            .map(|d| &d.mem)
            .chain(still_shown)
            .map(|m| m.len() as u64)
            .sum()
    }

    /// Gives back the mappings of destroyed buffers the sink has let go of.
    fn prune_retired(&mut self) {
        self.retired.retain(|m| Arc::strong_count(&m.0) > 1);
    }

    fn fb_attach(&mut self, a: FbAttach) -> Result<(), i32> {
        if self.fbs.len() >= self.cfg.max_framebuffers as usize {
            log::warn!(
                "{}: FB_ATTACH over the quota of {} framebuffers",
                self.label,
                self.cfg.max_framebuffers
            );
            return Err(-ENOMEM);
        }
        let dbuf = self.dbufs.get(&a.dbuf_cookie).ok_or(-EINVAL)?;
        let format = DrmFourcc::try_from(a.pixel_format).map_err(|_| -EINVAL)?;
        let ok = a.fb_cookie != 0
            && !self.fbs.contains_key(&a.fb_cookie)
            && format_bpp(format) == Some(dbuf.bpp)
            && (1..=dbuf.width).contains(&a.width)
            && (1..=dbuf.height).contains(&a.height);
        if !ok {
            log::warn!("{}: FB_ATTACH refused: {a:?}", self.label);
            return Err(-EINVAL);
        }
        self.fbs.insert(
            a.fb_cookie,
            Fb {
                dbuf: a.dbuf_cookie,
                width: a.width,
                height: a.height,
                format,
            },
        );
        Ok(())
    }

    fn frame(&self, ci: usize, fb_cookie: u64) -> Result<Frame, i32> {
        let conn = &self.conns[ci];
        let (_, x, y, w, h) = conn.shown.ok_or(-EINVAL)?;
        let fb = self.fbs.get(&fb_cookie).ok_or(-EINVAL)?;
        let dbuf = self.dbufs.get(&fb.dbuf).ok_or(-EINVAL)?;
        Ok(Frame {
            domain: self.fe_dom,
            connector: conn.out.index,
            fb_cookie,
            format: fb.format,
            width: w.min(fb.width),
            height: h.min(fb.height),
            pitch: dbuf.pitch,
            offset: dbuf.data_ofs,
            memory: dbuf.mem.clone(),
            x,
            y,
            // displif's page flip does not say what changed.
            damage: None,
        })
    }

    fn set_config(&mut self, ci: usize, c: SetConfig) -> Result<(), i32> {
        let index = self.conns[ci].out.index;
        if c == SetConfig::default() {
            self.conns[ci].shown = None;
            return self
                .sink
                .configure(self.fe_dom, index, None)
                .map_err(|_| -EIO);
        }
        let out = &self.conns[ci].out;
        let fb = self.fbs.get(&c.fb_cookie).ok_or(-EINVAL)?;
        let fits = |a: u32, b: u32, max: u32| a.checked_add(b).is_some_and(|e| e <= max);
        let ok = format_bpp(fb.format) == Some(c.bpp)
            && fits(c.x, c.width, out.width)
            && fits(c.y, c.height, out.height)
            && c.width <= fb.width
            && c.height <= fb.height;
        if !ok {
            log::warn!(
                "{}: SET_CONFIG does not fit connector {index}: {c:?}",
                self.label
            );
            return Err(-EINVAL);
        }
        self.conns[ci].shown = Some((c.fb_cookie, c.x, c.y, c.width, c.height));
        let frame = self.frame(ci, c.fb_cookie)?;
        self.sink
            .configure(self.fe_dom, index, Some(frame))
            .map_err(|e| {
                log::warn!("{}: sink refused configuration: {e}", self.label);
                -EIO
            })
    }

    fn flip(&mut self, ci: usize, fb_cookie: u64) -> Result<(), i32> {
        if self.outstanding >= self.cfg.max_pending_flips {
            return Err(-EBUSY);
        }
        let frame = self.frame(ci, fb_cookie)?;
        let done = FlipDone {
            queue: self.done.clone(),
            connector: ci as u32,
            fb_cookie,
        };
        self.sink.flip(frame, done).map_err(|e| {
            log::warn!("{}: sink refused flip: {e}", self.label);
            -EIO
        })?;
        self.outstanding += 1;
        Ok(())
    }

    /// Answers the requests on connector `ci`'s ring for one [`Turn`];
    /// what is left waits for the next tick.
    fn serve_ring(&mut self, ctx: &Ctx, ci: usize) -> Result<(), DeviceError> {
        let mut turn = Turn::new();
        while let Some(bytes) = turn.next_request(&mut self.conns[ci].ring)? {
            let id = u16::from_le_bytes([bytes[0], bytes[1]]);
            let raw_op = bytes[offsets::OPERATION];
            let status = match Request::decode(&bytes) {
                Ok(req) => self.handle(ctx, ci, req).err().unwrap_or(0),
                Err(e) => {
                    log::warn!("{}: rejected request (operation {raw_op}): {e}", self.label);
                    -EINVAL
                }
            };
            let conn = &mut self.conns[ci];
            conn.ring
                .push_response(&response_bytes(id, raw_op, status))
                .map_err(|e| format!("{e:?}"))?;
            if conn.ring.publish_responses() {
                ctx.ep.events.notify(conn.port)?;
            }
            // A synchronous sink has completed the flip already: the event
            // follows the response at once.
            self.report_flips(ctx);
        }
        self.conns[ci].backlog = turn.cut();
        Ok(())
    }

    /// Sends PG_FLIP events for flips the sink reported shown.
    fn report_flips(&mut self, ctx: &Ctx) {
        let done: Vec<(u32, u64)> = std::mem::take(&mut *self.done.lock().unwrap());
        self.outstanding = self.outstanding.saturating_sub(done.len());
        for (ci, fb_cookie) in done {
            let Some(conn) = self.conns.get_mut(ci as usize) else {
                continue;
            };
            let ev = Event {
                id: conn.evt_id,
                body: EventBody::PgFlip { fb_cookie },
            };
            if conn.evt.push(&ev.encode()).is_ok() {
                conn.evt_id = conn.evt_id.wrapping_add(1);
                let _ = ctx.ep.events.notify(conn.evt_port);
            } else {
                log::warn!("{}: event page full, flip event dropped", self.label);
            }
        }
    }
}

fn response_bytes(id: u16, raw_op: u8, status: i32) -> [u8; PACKET_SIZE] {
    let op = Operation::from_raw(raw_op).unwrap_or(Operation::DbufCreate);
    let edid_sz = (op == Operation::GetEdid).then_some(0);
    let mut b = Response {
        id,
        operation: op,
        status,
        edid_sz,
    }
    .encode();
    b[offsets::OPERATION] = raw_op;
    b
}

impl Device for VdisplBackend {
    fn init(&mut self, ctx: &Ctx) -> Result<(), DeviceError> {
        ctx.ep.store.write(
            &ctx.be(field::VERSIONS),
            xen_abi::io::displif::PROTOCOL_VERSION.as_bytes(),
        )?;
        Ok(())
    }

    fn connect(&mut self, ctx: &Ctx) -> Result<(), DeviceError> {
        self.fe_dom = ctx.fe_dom;
        self.label = format!("vdispl dom{}", ctx.fe_dom);
        let xs = &*ctx.ep.store;
        let mut stale = false;
        for out in self.read_outputs(ctx)? {
            let dir = xenbus::join(ctx.fe_dir, &out.index.to_string());
            let node = |n: &str| {
                xenbus::read_u32(xs, &xenbus::join(&dir, n)).map_err(|e| format!("{dir}/{n}: {e}"))
            };
            let (rref, rport, eref, eport) = (
                node(field::REQ_RING_REF)?,
                node(field::REQ_EVENT_CHANNEL)?,
                node(field::EVT_RING_REF)?,
                node(field::EVT_EVENT_CHANNEL)?,
            );
            self.sink
                .add_output(ctx.fe_dom, &out)
                .map_err(|e| format!("connector {}: {e}", out.index))?;
            let ring_page = ctx.ep.mapper.map(ctx.fe_dom, &[rref], true)?;
            let evt_page = ctx.ep.mapper.map(ctx.fe_dom, &[eref], true)?;
            // A ring in use before we came (a frontend that kept its rings
            // from an earlier backend; Linux's starts over on our InitWait
            // instead): carry on from its indices, so nothing is replayed
            // or overflows, count events as the frontend does, and refuse
            // below.
            let req_prod = ring_page.read_u32(ring_offsets::REQ_PROD);
            let resume = ring_page.read_u32(ring_offsets::RSP_PROD);
            stale |= req_prod != 0 || resume != 0;
            let evt_id = evt_page.read_u32(evt_offsets::IN_PROD) as u16;
            let ring = BackRing::attach(ring_page, resume).map_err(|_| "ring page")?;
            let evt = EventWriter::new(evt_page);
            let port = ctx.ep.events.bind_interdomain(ctx.fe_dom, rport)?;
            let evt_port = ctx
                .ep
                .events
                .bind_interdomain(ctx.fe_dom, eport)
                .inspect_err(|_| {
                    // Not yet in `conns`, so `disconnect` would not unbind it.
                    let _ = ctx.ep.events.unbind(port);
                })?;
            self.conns.push(Conn {
                out,
                ring,
                port,
                evt,
                evt_port,
                evt_id,
                shown: None,
                backlog: false,
            });
        }
        // Its display buffers and framebuffers died with that backend: the
        // frontend must create them again, which it does on a reconnect.
        if stale {
            return Err(
                "the frontend's rings were used by an earlier backend; asking it to reconnect"
                    .into(),
            );
        }
        Ok(())
    }

    fn on_event(&mut self, ctx: &Ctx, port: Port) -> Result<(), DeviceError> {
        let Some(ci) = self.conns.iter().position(|c| c.port == port) else {
            return Ok(());
        };
        self.serve_ring(ctx, ci)
    }

    fn tick(&mut self, ctx: &Ctx) -> Result<(), DeviceError> {
        self.prune_retired();
        for ci in 0..self.conns.len() {
            if self.conns[ci].backlog {
                self.serve_ring(ctx, ci)?;
            }
        }
        self.sink.tick();
        self.report_flips(ctx);
        Ok(())
    }

    /// Quick while requests wait for their turn, or a sink that completes
    /// flips later (from its own thread) owes us completions; else idle.
    fn tick_ms(&self) -> u32 {
        if self.conns.iter().any(|c| c.backlog) {
            1
        } else if self.outstanding > 0 {
            2
        } else {
            50
        }
    }

    fn disconnect(&mut self, ctx: &Ctx) {
        self.sink.remove_outputs(ctx.fe_dom);
        for c in self.conns.drain(..) {
            let _ = ctx.ep.events.unbind(c.port);
            let _ = ctx.ep.events.unbind(c.evt_port);
        }
        self.fbs.clear();
        self.dbufs.clear();
        // Flips of this connection the sink still holds complete into the
        // old queue, not the next connection's.
        self.done = Arc::default();
        self.prune_retired();
        self.outstanding = 0;
    }
}
