//! The vkbd backend device: features, the shared page, the event queue.

use std::collections::VecDeque;

use pv_backend::{Ctx, Device, DeviceError};
use pv_transport::xenbus::{self, XenbusState};
use pv_transport::{Fence, Port, RingMemory, Shm};
use xen_abi::io::kbdif::{field, in_slot_offset, page, InEvent, IN_RING_LEN};

use crate::source::{InputSource, RawEvent};
use crate::translate::{Target, Translator};

/// Backend settings, as `vkb=` / the TOML config give them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VkbdConfig {
    /// `unique-id` published for the frontend to tell devices apart;
    /// `None` publishes none.
    pub unique_id: Option<String>,
    /// Tells the frontend not to create a keyboard (key events are still
    /// sent).
    pub disable_keyboard: bool,
    /// Tells the frontend not to create a pointer (motion is still sent).
    pub disable_pointer: bool,
    /// Offers absolute pointer positions; used only if the frontend asks
    /// for them, otherwise absolute devices send relative motion.
    pub abs_pointer: bool,
    /// Offers positions in the raw 0..=0x7fff range instead of
    /// `width`×`height`; used only if the frontend asks for it.
    pub raw_pointer: bool,
    /// Offers multi-touch; published only if some source is a multi-touch
    /// device (or there are no sources yet), used only if asked for.
    pub multi_touch: bool,
    /// Absolute pointer X range: positions are scaled to 0..width-1.
    pub width: u32,
    /// Absolute pointer Y range: positions are scaled to 0..height-1.
    pub height: u32,
    /// Touch X range: contact positions are scaled to 0..mt_width-1.
    pub mt_width: u32,
    /// Touch Y range: contact positions are scaled to 0..mt_height-1.
    pub mt_height: u32,
    /// Contacts (slots) forwarded, clamped to 1..=256; touches in higher
    /// slots are ignored.
    pub mt_contacts: u32,
    /// Events kept while the frontend's ring is full; older ones drop.
    pub queue_limit: usize,
}

impl Default for VkbdConfig {
    fn default() -> Self {
        Self {
            unique_id: None,
            disable_keyboard: false,
            disable_pointer: false,
            abs_pointer: true,
            raw_pointer: false,
            multi_touch: true,
            width: 800,
            height: 600,
            mt_width: 800,
            mt_height: 600,
            mt_contacts: 10,
            queue_limit: 4096,
        }
    }
}

struct Conn {
    page: Shm,
    port: Port,
    prod: u32,
}

/// One vkbd device: a frontend fed from any number of input sources.
pub struct VkbdBackend {
    cfg: VkbdConfig,
    sources: Vec<(Box<dyn InputSource>, Option<Translator>)>,
    conn: Option<Conn>,
    queue: VecDeque<InEvent>,
    dropped: u64,
    scratch: Vec<RawEvent>,
}

impl VkbdBackend {
    /// A device merging the events of `sources` (possibly none) into one
    /// frontend. `cfg` gives defaults only: nodes the toolstack already
    /// wrote in the backend directory win. A source that fails is dropped
    /// with a log line; the others go on.
    pub fn new(cfg: VkbdConfig, sources: Vec<Box<dyn InputSource>>) -> Self {
        Self {
            cfg,
            sources: sources.into_iter().map(|s| (s, None)).collect(),
            conn: None,
            queue: VecDeque::new(),
            dropped: 0,
            scratch: Vec::new(),
        }
    }

    fn pull(&mut self) {
        let mut gone = Vec::new();
        for (i, (src, tr)) in self.sources.iter_mut().enumerate() {
            self.scratch.clear();
            if let Err(e) = src.read(&mut self.scratch) {
                log::warn!("input source {} is gone: {e}", src.name());
                gone.push(i);
                continue;
            }
            let Some(tr) = tr else { continue };
            let mut out = Vec::new();
            for &ev in &self.scratch {
                tr.feed(ev, &mut out);
            }
            for ev in out {
                if self.queue.len() >= self.cfg.queue_limit {
                    self.queue.pop_front();
                    self.dropped += 1;
                    if self.dropped.is_power_of_two() {
                        log::warn!(
                            "frontend is not reading input: {} events dropped",
                            self.dropped
                        );
                    }
                }
                self.queue.push_back(ev);
            }
        }
        for i in gone.into_iter().rev() {
            self.sources.remove(i);
        }
    }

    /// Moves queued events into the ring while it has room.
    fn flush(&mut self, ctx: &Ctx) -> Result<(), DeviceError> {
        let Some(c) = &mut self.conn else {
            return Ok(());
        };
        let cons = c.page.read_u32(page::IN_CONS);
        c.page.fence(Fence::Full);
        let mut used = c.prod.wrapping_sub(cons);
        if used > IN_RING_LEN {
            return Err(format!("in_cons {cons} is beyond the ring (in_prod {})", c.prod).into());
        }
        let mut wrote = false;
        while used < IN_RING_LEN {
            let Some(ev) = self.queue.pop_front() else {
                break;
            };
            c.page.write_bytes(in_slot_offset(c.prod), &ev.encode());
            c.prod = c.prod.wrapping_add(1);
            used += 1;
            wrote = true;
        }
        if wrote {
            c.page.fence(Fence::Write);
            c.page.write_u32(page::IN_PROD, c.prod);
            ctx.ep.events.notify(c.port)?;
        }
        Ok(())
    }
}

fn flag(b: bool) -> &'static str {
    if b {
        "1"
    } else {
        "0"
    }
}

impl Device for VkbdBackend {
    /// Publishes features and sizes. Nodes the toolstack already wrote
    /// (libxl writes `vkb=` options to the backend directory) are kept:
    /// they are the configuration, ours are only defaults.
    fn init(&mut self, ctx: &Ctx) -> Result<(), DeviceError> {
        let c = &self.cfg;
        let any_mt = self.sources.iter().any(|(s, _)| s.is_multitouch());
        let mut nodes: Vec<(&str, String)> = vec![
            (field::FEATURE_ABS_POINTER, flag(c.abs_pointer).into()),
            (field::FEATURE_RAW_POINTER, flag(c.raw_pointer).into()),
            (
                field::FEATURE_MULTI_TOUCH,
                flag(c.multi_touch && (any_mt || self.sources.is_empty())).into(),
            ),
            (
                field::FEATURE_DISABLE_KEYBOARD,
                flag(c.disable_keyboard).into(),
            ),
            (
                field::FEATURE_DISABLE_POINTER,
                flag(c.disable_pointer).into(),
            ),
            (field::WIDTH, c.width.to_string()),
            (field::HEIGHT, c.height.to_string()),
            (field::MT_WIDTH, c.mt_width.to_string()),
            (field::MT_HEIGHT, c.mt_height.to_string()),
            (field::MT_NUM_CONTACTS, c.mt_contacts.to_string()),
        ];
        if let Some(id) = &c.unique_id {
            nodes.push((field::UNIQUE_ID, id.clone()));
        }
        let xs = &*ctx.ep.store;
        let missing: Vec<(String, String)> = nodes
            .into_iter()
            .map(|(k, v)| (ctx.be(k), v))
            .filter(|(k, _)| xs.read(k).is_err())
            .collect();
        let refs: Vec<(&str, &[u8])> = missing
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_bytes()))
            .collect();
        xs.write_all(&refs)?;
        Ok(())
    }

    fn ready(&self, state: XenbusState) -> bool {
        // Linux kbdfront publishes at probe and may already say Connected.
        matches!(state, XenbusState::Initialised | XenbusState::Connected)
    }

    fn connect(&mut self, ctx: &Ctx) -> Result<(), DeviceError> {
        let xs = &*ctx.ep.store;
        let gref = xenbus::read_u32(xs, &ctx.fe(field::PAGE_GREF))
            .map_err(|e| format!("page-gref: {e}"))?;
        let remote_port = xenbus::read_u32(xs, &ctx.fe(field::EVENT_CHANNEL))
            .map_err(|e| format!("event-channel: {e}"))?;
        // displ_be reads request-abs-pointer from the backend directory;
        // Linux writes it to the frontend's. Accept either.
        let req = |n: &str| xenbus::read_flag(xs, &ctx.fe(n)) || xenbus::read_flag(xs, &ctx.be(n));
        let c = &self.cfg;
        let num = |n: &str, d: u32| xenbus::read_u32_or(xs, &ctx.be(n), d).unwrap_or(d);
        // What we offer, as published (possibly by the toolstack).
        let offer = |n: &str| xenbus::read_flag(xs, &ctx.be(n));
        let target = Target {
            abs_pointer: offer(field::FEATURE_ABS_POINTER) && req(field::REQUEST_ABS_POINTER),
            raw_pointer: offer(field::FEATURE_RAW_POINTER) && req(field::REQUEST_RAW_POINTER),
            multi_touch: offer(field::FEATURE_MULTI_TOUCH) && req(field::REQUEST_MULTI_TOUCH),
            width: num(field::WIDTH, c.width),
            height: num(field::HEIGHT, c.height),
            mt_width: num(field::MT_WIDTH, c.mt_width),
            mt_height: num(field::MT_HEIGHT, c.mt_height),
            mt_contacts: num(field::MT_NUM_CONTACTS, c.mt_contacts).clamp(1, 256),
        };
        let page = ctx
            .ep
            .mapper
            .map(ctx.fe_dom, &[gref], true)
            .map_err(|e| format!("shared page: {e}"))?;
        let port = ctx.ep.events.bind_interdomain(ctx.fe_dom, remote_port)?;
        let prod = page.read_u32(page::IN_PROD);
        // Input made while no frontend was connected (a guest rebooting) is
        // stale: a tap meant for the screen as it was must not land on the
        // one that comes up. Drain it, and start each translator afresh.
        for (src, tr) in &mut self.sources {
            for _ in 0..64 {
                self.scratch.clear();
                if src.read(&mut self.scratch).is_err() || self.scratch.is_empty() {
                    break;
                }
            }
            let s = &**src;
            *tr = Some(Translator::new(target, |code| s.abs_range(code)));
        }
        self.scratch.clear();
        self.queue.clear();
        self.conn = Some(Conn { page, port, prod });
        Ok(())
    }

    fn on_event(&mut self, ctx: &Ctx, _port: Port) -> Result<(), DeviceError> {
        // The frontend consumed events: there may be room for more.
        self.flush(ctx)
    }

    fn tick(&mut self, ctx: &Ctx) -> Result<(), DeviceError> {
        self.pull();
        self.flush(ctx)
    }

    fn tick_ms(&self) -> u32 {
        5
    }

    fn disconnect(&mut self, ctx: &Ctx) {
        if let Some(c) = self.conn.take() {
            let _ = ctx.ep.events.unbind(c.port);
        }
        for (_, tr) in &mut self.sources {
            *tr = None;
        }
        self.queue.clear();
    }
}
