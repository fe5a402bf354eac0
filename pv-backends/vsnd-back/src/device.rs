//! The vsnd backend device: per-stream rings, requests, position events.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use pv_backend::{Ctx, Device, DeviceError, Turn};
use pv_transport::pgdir::map_buffer;
use pv_transport::xenbus;
use pv_transport::RingMemory;
use pv_transport::{Port, Shm};
use vsnd_front::config::{read_streams, StreamInfo};
use xen_abi::io::evtpage::{offsets as evt_offsets, EventWriter};
use xen_abi::io::ring::{offsets as ring_offsets, BackRing};
use xen_abi::io::sndif::{
    field, offsets, BufferWindow, Event, EventBody, HwParams, Interval, OpenParams, Operation,
    Request, RequestBody, Response, TriggerType, PACKET_SIZE,
};

use crate::audio::{AudioBackend, PcmConfig, PcmStream};
use crate::errno::*;
use crate::gain::{sample_bytes, supports, Gain};
use crate::route::CardRoute;

struct Open {
    params: OpenParams,
    buffer: Shm,
    pcm: Box<dyn PcmStream>,
    gain: Gain,
    frame_bytes: u32,
    /// Bytes written (playback) or captured.
    position: u64,
    next_report: u64,
    /// The position last sent in CUR_POS.
    reported: u64,
    /// Samples pass through here a chunk at a time: a request never
    /// allocates, whatever its length.
    scratch: Vec<u8>,
    /// Paused by TRIGGER: transfers are refused (-EBUSY) rather than
    /// waiting on a device that will not move.
    paused: bool,
}

struct Stream {
    info: StreamInfo,
    ring: BackRing<Shm, PACKET_SIZE>,
    port: Port,
    evt: EventWriter<Shm>,
    evt_port: Port,
    evt_id: u16,
    open: Option<Open>,
    mapper_hint: Option<MapperHint>,
    /// Requests were left on the ring for the next turn.
    backlog: bool,
}

/// Counters a card keeps, readable from other threads.
#[derive(Debug, Default)]
pub struct VsndStats {
    /// Bytes played or captured.
    pub bytes: AtomicU64,
    /// Requests answered (any status).
    pub requests: AtomicU64,
    /// Requests answered with an error status.
    pub errors: AtomicU64,
    /// Underruns and overruns reported by the audio back end, over every
    /// stream of the card.
    pub xruns: AtomicU64,
}

/// What one card's frontend may take of the driver domain, whatever its
/// xenstore nodes say: the frontend's own `buffer-size` is believed only up
/// to these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VsndLimits {
    /// Streams per card; a frontend publishing more is refused.
    pub max_streams: usize,
    /// Largest shared buffer of one stream, in bytes.
    pub max_buffer_bytes: u32,
    /// Largest shared buffer of one stream, in milliseconds of audio at
    /// the stream's rate: the longest a request can keep the device busy.
    pub max_buffer_ms: u32,
    /// Shared buffers of all open streams of the card together, in bytes.
    pub max_card_bytes: u64,
}

impl Default for VsndLimits {
    fn default() -> Self {
        Self {
            max_streams: 16,
            max_buffer_bytes: 256 << 10,
            max_buffer_ms: 2000,
            max_card_bytes: 1 << 20,
        }
    }
}

/// The most bytes copied to or from the device in one go.
const CHUNK: u32 = 16 << 10;

/// One vsnd card.
pub struct VsndBackend {
    audio: Box<dyn AudioBackend>,
    route: CardRoute,
    limits: VsndLimits,
    streams: Vec<Stream>,
    label: String,
    stats: Arc<VsndStats>,
}

impl VsndBackend {
    /// A card whose playback and capture streams open on the devices of
    /// `route` on `audio` (the daemon's configuration for this frontend
    /// domain and card), within `limits`. The streams themselves are read
    /// from xenstore when the frontend connects.
    pub fn new(audio: Box<dyn AudioBackend>, route: CardRoute, limits: VsndLimits) -> Self {
        Self {
            audio,
            route,
            limits,
            streams: Vec::new(),
            label: String::new(),
            stats: Arc::default(),
        }
    }

    /// The card's counters (shared; they keep counting after this call).
    pub fn stats(&self) -> Arc<VsndStats> {
        self.stats.clone()
    }

    /// Answers the requests on stream `si`'s ring for one [`Turn`]; what
    /// is left waits for the next tick.
    fn serve_stream(&mut self, ctx: &Ctx, si: usize) -> Result<(), DeviceError> {
        let label = self.label.clone();
        let others_bytes: u64 = self
            .streams
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != si)
            .filter_map(|(_, s)| s.open.as_ref())
            .map(|o| u64::from(o.params.buffer_sz))
            .sum();
        let st = &mut self.streams[si];
        let mut turn = Turn::new();
        while let Some(bytes) = turn.next_request(&mut st.ring)? {
            let id = u16::from_le_bytes([bytes[0], bytes[1]]);
            let raw_op = bytes[offsets::OPERATION];
            let before = st.open.as_ref().map_or(0, |o| o.position);
            let xruns_before = st.open.as_ref().map_or(0, |o| o.pcm.xruns());
            let (status, hw) = match Request::decode(&bytes) {
                Ok(req) => match st.handle(
                    CardCtx {
                        audio: &mut *self.audio,
                        route: &self.route,
                        limits: &self.limits,
                        label: &label,
                        others_bytes,
                    },
                    req,
                ) {
                    Ok(hw) => (0, hw),
                    Err(s) => (s, None),
                },
                Err(e) => {
                    log::warn!("{label}: rejected request (operation {raw_op}): {e}");
                    (-EINVAL, None)
                }
            };
            if raw_op != Operation::Write as u8 && raw_op != Operation::Read as u8 {
                log::debug!("{label}: operation {raw_op} id {id} -> {status}");
            }
            if let Some(o) = &st.open {
                if o.pcm.xruns() != xruns_before {
                    log::debug!("{label}: device xrun at {} bytes", o.position);
                }
            }
            let stats = &self.stats;
            stats.requests.fetch_add(1, Ordering::Relaxed);
            if status != 0 {
                stats.errors.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(o) = &st.open {
                stats
                    .bytes
                    .fetch_add(o.position.saturating_sub(before), Ordering::Relaxed);
                stats.xruns.fetch_add(
                    o.pcm.xruns().saturating_sub(xruns_before),
                    Ordering::Relaxed,
                );
            }
            st.ring
                .push_response(&response_bytes(id, raw_op, status, hw))
                .map_err(|e| format!("{e:?}"))?;
            if st.ring.publish_responses() {
                ctx.ep.events.notify(st.port)?;
            }
            st.report_position(ctx);
        }
        st.backlog = turn.cut();
        Ok(())
    }
}

type Reply = Result<Option<HwParams>, i32>;

/// What a request needs besides its stream: the card's devices and limits,
/// and the bytes its other open streams hold.
struct CardCtx<'a> {
    audio: &'a mut dyn AudioBackend,
    route: &'a CardRoute,
    limits: &'a VsndLimits,
    label: &'a str,
    others_bytes: u64,
}

fn window_ok(o: &Open, w: BufferWindow) -> bool {
    u64::from(w.offset) + u64::from(w.length) <= u64::from(o.params.buffer_sz)
}

fn range_of(v: &[u32]) -> Interval {
    Interval {
        min: v.first().copied().unwrap_or(0),
        max: v.last().copied().unwrap_or(0),
    }
}

fn intersect(a: Interval, b: Interval) -> Option<Interval> {
    // A zero-width request side (0,0) means "anything".
    if b.min == 0 && b.max == 0 {
        return Some(a);
    }
    let i = Interval {
        min: a.min.max(b.min),
        max: a.max.min(b.max),
    };
    (i.min <= i.max).then_some(i)
}

impl Stream {
    fn handle(&mut self, card: CardCtx, req: Request) -> Reply {
        let label = card.label;
        match req.body {
            RequestBody::Open(p) => self.open(card, p),
            RequestBody::Close => {
                self.open = None;
                Ok(None)
            }
            RequestBody::Write(w) => self.transfer(label, w, true),
            RequestBody::Read(w) => self.transfer(label, w, false),
            RequestBody::SetVolume(w) | RequestBody::GetVolume(w) => {
                let get = matches!(req.body, RequestBody::GetVolume(_));
                self.volume(label, w, get)
            }
            RequestBody::Mute(w) => self.mute(label, w, true),
            RequestBody::Unmute(w) => self.mute(label, w, false),
            RequestBody::Trigger(t) => self.trigger(t),
            RequestBody::HwParamQuery(h) => self.query(card.limits, h).map(Some),
        }
    }

    fn open(&mut self, card: CardCtx, p: OpenParams) -> Reply {
        let label = card.label;
        self.open = None;
        let cfg = &self.info.cfg;
        let ch = u32::from(p.pcm_channels);
        let sample = sample_bytes(p.pcm_format).ok_or(-EINVAL)?;
        if !cfg.rates.contains(&p.pcm_rate)
            || !cfg.formats.contains(&p.pcm_format)
            || ch < cfg.channels_min
            || ch > cfg.channels_max
            || p.buffer_sz == 0
            || p.buffer_sz > cfg.buffer_size
            || p.period_sz > p.buffer_sz
        {
            log::warn!("{label}: OPEN outside the stream's ranges: {p:?}");
            return Err(-EINVAL);
        }
        // Both at most 8 × 255: no overflow.
        let frame_bytes = sample as u32 * ch;
        let lim = card.limits;
        let cap = cfg.buffer_size.min(lim.max_buffer_bytes);
        let ms =
            u64::from(p.buffer_sz) * 1000 / (u64::from(p.pcm_rate) * u64::from(frame_bytes)).max(1);
        if p.buffer_sz > cap || ms > u64::from(lim.max_buffer_ms) {
            log::warn!(
                "{label}: OPEN buffer of {} bytes ({ms} ms) is over the limit ({cap} bytes, {} ms)",
                p.buffer_sz,
                lim.max_buffer_ms
            );
            return Err(-EINVAL);
        }
        if card.others_bytes + u64::from(p.buffer_sz) > lim.max_card_bytes {
            log::warn!("{label}: OPEN would share {} bytes with the card's open streams, over its quota of {}", card.others_bytes + u64::from(p.buffer_sz), lim.max_card_bytes);
            return Err(-ENOMEM);
        }
        let direction = if self.info.playback {
            "playback"
        } else {
            "capture"
        };
        let Some(device) = card.route.device(self.info.playback) else {
            log::warn!("{label}: no {direction} device is configured for this card");
            return Err(-EACCES);
        };
        let hint = self.mapper_hint.as_ref().ok_or(-EIO)?;
        let buffer = map_buffer(
            &*hint.mapper,
            hint.fe_dom,
            p.gref_directory,
            p.buffer_sz,
            cap,
            true,
        )
        .map_err(|e| {
            log::warn!("{label}: OPEN buffer does not map: {e}");
            -EINVAL
        })?;
        let pcm_cfg = PcmConfig {
            rate: p.pcm_rate,
            format: p.pcm_format,
            channels: ch,
            period_frames: p.period_sz / frame_bytes,
            buffer_frames: p.buffer_sz / frame_bytes,
        };
        let pcm = card
            .audio
            .open(device, self.info.playback, &pcm_cfg)
            .map_err(|e| {
                log::warn!("{label}: cannot open {device}: {e}");
                -EIO
            })?;
        self.open = Some(Open {
            params: p,
            buffer,
            pcm,
            gain: Gain::new(ch as usize),
            frame_bytes,
            position: 0,
            next_report: u64::from(p.period_sz),
            reported: 0,
            scratch: Vec::new(),
            paused: false,
        });
        Ok(None)
    }

    fn transfer(&mut self, label: &str, w: BufferWindow, write: bool) -> Reply {
        let o = self.open.as_mut().ok_or(-EINVAL)?;
        if o.paused {
            return Err(-EBUSY);
        }
        if write != self.info.playback {
            return Err(-EINVAL);
        }
        if !window_ok(o, w) || !w.length.is_multiple_of(o.frame_bytes) {
            log::warn!("{label}: window {w:?} is beyond the shared buffer or not whole frames");
            return Err(-EINVAL);
        }
        let fmt = o.params.pcm_format;
        // Whole frames at a time, CHUNK bytes at most (whatever the
        // frontend's period: a tiny one must not mean a call per frame).
        let chunk = (CHUNK / o.frame_bytes).max(1) * o.frame_bytes;
        o.scratch.resize(chunk as usize, 0);
        let mut done = 0;
        while done < w.length {
            let n = chunk.min(w.length - done);
            let at = u64::from(w.offset + done);
            let data = &mut o.scratch[..n as usize];
            if write {
                o.buffer.read_bytes(at as usize, data);
                o.gain.apply(fmt, data);
                o.pcm.write(data).map_err(|e| {
                    log::warn!("{label}: playback failed: {e}");
                    -EIO
                })?;
            } else {
                o.pcm.read(data).map_err(|e| {
                    log::warn!("{label}: capture failed: {e}");
                    -EIO
                })?;
                o.gain.apply(fmt, data);
                o.buffer.write_at(at, data);
            }
            o.position += u64::from(n);
            done += n;
        }
        Ok(None)
    }

    fn volume(&mut self, label: &str, w: BufferWindow, get: bool) -> Reply {
        let o = self.open.as_mut().ok_or(-EINVAL)?;
        let ch = o.gain.channels();
        if !window_ok(o, w) || w.length as usize != ch * 4 {
            log::warn!("{label}: volume window {w:?} does not hold {ch} channels");
            return Err(-EINVAL);
        }
        if get {
            let bytes: Vec<u8> = o
                .gain
                .volume()
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
            o.buffer.write_at(w.offset.into(), &bytes);
            return Ok(None);
        }
        if !supports(o.params.pcm_format) {
            return Err(-EOPNOTSUPP);
        }
        let bytes = o
            .buffer
            .read_vec(w.offset.into(), w.length.into())
            .ok_or(-EINVAL)?;
        let v: Vec<i32> = bytes
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        o.gain.set_volume(&v);
        Ok(None)
    }

    fn mute(&mut self, label: &str, w: BufferWindow, mute: bool) -> Reply {
        let o = self.open.as_mut().ok_or(-EINVAL)?;
        let ch = o.gain.channels();
        // The header's text says one byte per channel, its diagram four.
        let flags: Vec<bool> = match o.buffer.read_vec(w.offset.into(), w.length.into()) {
            Some(b) if window_ok(o, w) && b.len() == ch => b.iter().map(|&x| x != 0).collect(),
            Some(b) if window_ok(o, w) && b.len() == ch * 4 => b
                .chunks_exact(4)
                .map(|c| c.iter().any(|&x| x != 0))
                .collect(),
            _ => {
                log::warn!("{label}: mute window {w:?} does not hold {ch} channels");
                return Err(-EINVAL);
            }
        };
        if !supports(o.params.pcm_format) {
            return Err(-EOPNOTSUPP);
        }
        o.gain.set_mute(&flags, mute);
        Ok(None)
    }

    fn trigger(&mut self, t: TriggerType) -> Reply {
        let o = self.open.as_mut().ok_or(-EINVAL)?;
        let r = match t {
            TriggerType::Start => o.pcm.start(),
            TriggerType::Stop => o.pcm.stop(),
            TriggerType::Pause => o.pcm.pause(true),
            TriggerType::Resume => o.pcm.pause(false),
        };
        if r.is_ok() {
            o.paused = t == TriggerType::Pause;
        }
        r.map(|_| None).map_err(|e| {
            log::warn!("trigger {t:?} failed: {e}");
            -EIO
        })
    }

    /// The stream's ranges intersected with what the frontend asks about.
    fn query(&self, lim: &VsndLimits, want: HwParams) -> Result<HwParams, i32> {
        let cfg = &self.info.cfg;
        let ours: u64 = cfg
            .formats
            .iter()
            .map(|f| f.mask_bit())
            .fold(0, |a, b| a | b);
        let formats = if want.formats == 0 {
            ours
        } else {
            ours & want.formats
        };
        let rates = intersect(range_of(&cfg.rates), want.rates).ok_or(-EINVAL)?;
        // channels_min comes from the frontend's xenstore: no overflow.
        let min_frame = cfg
            .formats
            .iter()
            .filter(|f| formats & f.mask_bit() != 0)
            .filter_map(|&f| sample_bytes(f))
            .min()
            .unwrap_or(1) as u64
            * u64::from(cfg.channels_min.max(1));
        // The limits OPEN applies, so what the frontend picks opens.
        let by_bytes = u64::from(cfg.buffer_size.min(lim.max_buffer_bytes)) / min_frame;
        let by_time = u64::from(rates.min) * u64::from(lim.max_buffer_ms) / 1000;
        let max_frames = by_bytes.min(by_time).min(u64::from(u32::MAX)) as u32;
        if max_frames == 0 {
            return Err(-EINVAL);
        }
        let r = HwParams {
            formats,
            rates,
            channels: intersect(
                Interval {
                    min: cfg.channels_min,
                    max: cfg.channels_max,
                },
                want.channels,
            )
            .ok_or(-EINVAL)?,
            buffer: intersect(
                Interval {
                    min: 1,
                    max: max_frames,
                },
                want.buffer,
            )
            .ok_or(-EINVAL)?,
            period: intersect(
                Interval {
                    min: 1,
                    max: max_frames,
                },
                want.period,
            )
            .ok_or(-EINVAL)?,
        };
        if formats == 0 {
            return Err(-EINVAL);
        }
        Ok(r)
    }

    /// Sends CUR_POS once per period boundary played (or captured) past
    /// since the last report, and once more when everything written has
    /// been played.
    ///
    /// Playback positions count what the device has played, not what it
    /// was handed: Linux's snd-xen-front moves its hardware pointer only
    /// on these events, and one that ran ahead of the audio would tell it
    /// the buffer is empty (an underrun) or, after exactly one buffer,
    /// that nothing moved at all (the pointer wraps), which stalls a
    /// writer until ALSA gives up with EIO. So reports also come from the
    /// device's clock (`tick`), not only from requests.
    fn report_position(&mut self, ctx: &Ctx) {
        let Some(o) = self.open.as_mut() else { return };
        let period = u64::from(o.params.period_sz);
        if period == 0 {
            return;
        }
        let queued = if self.info.playback {
            o.pcm.queued_bytes().min(o.position)
        } else {
            0
        };
        let played = o.position - queued;
        let drained = queued == 0 && played > o.reported;
        // Strictly past the period: snd-xen-front signals a period only
        // when the frames since its last signal exceed one, and ALSA wakes
        // a blocked writer only when a whole period is free. A position
        // exactly on the boundary (a device clock that ticks in fractions
        // of a period, like snd-aloop's jiffies, lands there every time)
        // would do neither, and the writer would wake every other period.
        // So that report waits for the device's next tick. Once everything
        // has played the report is exact, so a drain completes.
        if played <= o.next_report && !drained {
            return;
        }
        while o.next_report < played {
            o.next_report += period;
        }
        let frame = u64::from(o.frame_bytes.max(1));
        let step = (u64::from(o.params.buffer_sz) / 2 / frame * frame).max(frame);
        let mut sent = false;
        while o.reported < played {
            let at = played.min(o.reported + step);
            let ev = Event {
                id: self.evt_id,
                body: EventBody::CurPos { position: at },
            };
            if self.evt.push(&ev.encode()).is_err() {
                break; // the frontend is not reading its events
            }
            o.reported = at;
            self.evt_id = self.evt_id.wrapping_add(1);
            sent = true;
        }
        if sent {
            let _ = ctx.ep.events.notify(self.evt_port);
        }
    }
}

/// What `open` needs to map buffers (kept per connection).
struct MapperHint {
    mapper: std::sync::Arc<dyn pv_transport::GrantMapper>,
    fe_dom: u16,
}

fn response_bytes(id: u16, raw_op: u8, status: i32, hw: Option<HwParams>) -> [u8; PACKET_SIZE] {
    let op = Operation::from_raw(raw_op).unwrap_or(Operation::Open);
    let mut b = Response {
        id,
        operation: op,
        status,
        hw_param: if op == Operation::HwParamQuery {
            Some(hw.unwrap_or_default())
        } else {
            None
        },
    }
    .encode();
    // An unknown operation is echoed back as it came.
    b[offsets::OPERATION] = raw_op;
    b
}

impl Device for VsndBackend {
    fn connect(&mut self, ctx: &Ctx) -> Result<(), DeviceError> {
        let xs = &*ctx.ep.store;
        self.label = format!("vsnd dom{}", ctx.fe_dom);
        let infos =
            read_streams(xs, ctx.fe_dir).map_err(|e| format!("stream configuration: {e}"))?;
        if infos.is_empty() {
            return Err("no streams configured".into());
        }
        if infos.len() > self.limits.max_streams {
            return Err(format!(
                "{} streams, more than the {} allowed",
                infos.len(),
                self.limits.max_streams
            )
            .into());
        }
        for info in infos {
            let node = |n: &str| {
                xenbus::read_u32(xs, &xenbus::join(&info.dir, n))
                    .map_err(|e| format!("{}/{n}: {e}", info.dir))
            };
            let (ring_ref, port, evt_ref, evt_port) = (
                node(field::RING_REF)?,
                node(field::EVENT_CHANNEL)?,
                node(field::EVT_RING_REF)?,
                node(field::EVT_EVENT_CHANNEL)?,
            );
            let ring_page = ctx.ep.mapper.map(ctx.fe_dom, &[ring_ref], true)?;
            let evt_page = ctx.ep.mapper.map(ctx.fe_dom, &[evt_ref], true)?;
            // Rings are fresh (a frontend starts over on our InitWait), but
            // one handed over already used is taken where it stands, not
            // replayed: requests before rsp_prod were answered, and Linux
            // numbers events by how many it has seen on the page since it
            // connected (it drops any other id).
            let resume = ring_page.read_u32(ring_offsets::RSP_PROD);
            let evt_id = evt_page.read_u32(evt_offsets::IN_PROD) as u16;
            let ring = BackRing::attach(ring_page, resume).map_err(|_| "ring page")?;
            let port = ctx.ep.events.bind_interdomain(ctx.fe_dom, port)?;
            let evt_port = ctx
                .ep
                .events
                .bind_interdomain(ctx.fe_dom, evt_port)
                .inspect_err(|_| {
                    // Not yet in `streams`, so `disconnect` would not unbind it.
                    let _ = ctx.ep.events.unbind(port);
                })?;
            self.streams.push(Stream {
                info,
                ring,
                port,
                evt: EventWriter::new(evt_page),
                evt_port,
                evt_id,
                open: None,
                backlog: false,
                mapper_hint: Some(MapperHint {
                    mapper: ctx.ep.mapper.clone(),
                    fe_dom: ctx.fe_dom,
                }),
            });
        }
        Ok(())
    }

    fn on_event(&mut self, ctx: &Ctx, port: Port) -> Result<(), DeviceError> {
        for si in 0..self.streams.len() {
            if self.streams[si].port == port {
                self.serve_stream(ctx, si)?;
            }
        }
        Ok(())
    }

    /// Position reports follow the device's clock while a stream is open.
    fn tick(&mut self, ctx: &Ctx) -> Result<(), DeviceError> {
        for si in 0..self.streams.len() {
            if self.streams[si].backlog {
                self.serve_stream(ctx, si)?;
            }
        }
        for st in &mut self.streams {
            st.report_position(ctx);
        }
        Ok(())
    }

    fn tick_ms(&self) -> u32 {
        if self.streams.iter().any(|s| s.backlog) {
            1
        } else if self.streams.iter().any(|s| s.open.is_some()) {
            5
        } else {
            50
        }
    }

    fn disconnect(&mut self, ctx: &Ctx) {
        for st in self.streams.drain(..) {
            let _ = ctx.ep.events.unbind(st.port);
            let _ = ctx.ep.events.unbind(st.evt_port);
        }
    }
}
