//! The compositor as the PV display backend's sink: guest framebuffers that
//! arrive through `vdispl-back` (displif connectors and the legacy vfb)
//! become compositor sources, placed by the layout under the name
//! `"<domain>/<connector>"`, and a guest's page flip completes only once the
//! compositor has presented the frame.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cockpit_core::{Frame, PixelFormat, SourceHandle, SourceKey, Sources};
use vdispl_back::{DisplaySink, FlipDone, Output, SinkError};

use crate::pv_input::{InputHub, VkbdInput};

/// Names a domain for the layout: its name (e.g. from xenstore's
/// `/local/domain/<id>/name`), or the number by default.
pub type DomainNamer = Box<dyn Fn(u16) -> String + Send>;

/// A [`DisplaySink`] that feeds the compositor.
pub struct CompositorSink {
    sources: Sources,
    name: DomainNamer,
    handles: HashMap<(u16, u32), Connected>,
    input: Option<InputHub>,
    min_flip: Duration,
}

/// Least time between two of a connector's flips copied in, by default (a
/// display's refresh): a flip that comes sooner waits, and one that comes
/// while another waits replaces it (the replaced one completes unshown),
/// so a guest's flip storm costs the driver domain no more than 60
/// frames a second.
const MIN_FLIP: Duration = Duration::from_millis(16);

/// A connector the compositor shows, and the last picture it was given:
/// a guest's flip says nothing of what it redrew, so the damage is what
/// differs from that picture.
struct Connected {
    handle: SourceHandle,
    last: Option<Frame>,
    /// When the last flip was copied in.
    last_copy: Option<Instant>,
    /// A flip that came too soon after the last, to copy in later.
    owed: Option<(vdispl_back::Frame, FlipDone)>,
    /// Memory flips are copied into, reused once nothing else holds it (the
    /// compositor lets go of a picture once a newer one is shown): copying
    /// a flip allocates nothing in steady state.
    pool: Vec<Arc<Vec<u8>>>,
}

/// Pictures a connector's pool keeps: the one shown, the one kept to
/// compare the next flip with, and one to copy into.
const POOL: usize = 3;

impl Connected {
    fn new(handle: SourceHandle) -> Self {
        Connected { handle, last: None, last_copy: None, owed: None, pool: Vec::new() }
    }

    /// Whether a flip now would come less than `min` after the last one.
    fn too_soon(&self, now: Instant, min: Duration) -> bool {
        self.last_copy.is_some_and(|t| now.saturating_duration_since(t) < min)
    }

    /// Completes a waiting flip without showing it (a newer picture came).
    fn drop_owed(&mut self) {
        if let Some((_, done)) = self.owed.take() {
            done.complete();
        }
    }

    /// Hands `frame` over with the damage since the last one: what the
    /// frontend `told` (vfb UPDATEs), else found by comparing with it.
    fn submit(&mut self, frame: Frame, on_shown: Option<FlipDone>, told: Option<[u32; 4]>) {
        let same_size = self.last.as_ref().is_some_and(|o| (o.width(), o.height()) == (frame.width(), frame.height()));
        let damage = match told {
            Some([x, y, w, h]) if same_size => {
                let mut d = cockpit_core::Damage::new();
                d.add(cockpit_core::Rect::new(x as i32, y as i32, w as i32, h as i32));
                Some(d)
            }
            _ => self.last.as_ref().and_then(|old| frame.changes_from(old)),
        };
        let rects = damage.as_ref().map(|d| d.rects());
        self.last = Some(frame.clone());
        match on_shown {
            Some(done) => self.handle.submit_then(frame, rects, move || done.complete()),
            None => match rects {
                Some(r) => self.handle.submit_damaged(frame, r),
                None => self.handle.submit(frame),
            },
        }
    }
}

impl CompositorSink {
    pub fn new(sources: Sources, name: DomainNamer) -> Self {
        CompositorSink { sources, name, handles: HashMap::new(), input: None, min_flip: MIN_FLIP }
    }

    /// Copies in a connector's flips at most once per `interval` (16 ms by
    /// default); the newest of those that came sooner is shown after it.
    pub fn with_min_flip_interval(mut self, interval: Duration) -> Self {
        self.min_flip = interval;
        self
    }

    /// Touches and keys the layout routes to an output go to its domain's
    /// vkbd device through `hub`.
    pub fn with_input(mut self, hub: InputHub) -> Self {
        self.input = Some(hub);
        self
    }

    fn key(&self, domain: u16, connector: u32) -> SourceKey {
        SourceKey::Guest(format!("{}/{connector}", (self.name)(domain)))
    }

    /// The compositor's name for a guest frame's format, if it composes it.
    fn format_of(f: &vdispl_back::Frame) -> Result<PixelFormat, SinkError> {
        PixelFormat::from_fourcc(f.format).ok_or_else(|| format!("format {:?} is not composed", f.format))
    }

    /// A guest frame as a compositor frame. Guest memory may change at any
    /// moment and is only reachable through the transport's accessors, so
    /// the visible rows are taken as one snapshot: the compositor never
    /// reads memory the guest is rewriting (nor memory it has revoked).
    fn convert(f: &vdispl_back::Frame, pool: &mut Vec<Arc<Vec<u8>>>) -> Result<Frame, SinkError> {
        let format = Self::format_of(f)?;
        let bpp = format.bytes_per_pixel();
        let row = f.width as usize * bpp;
        let len = row * f.height as usize;
        // Memory of the right size that nothing else holds, or new memory.
        let free = pool.iter().position(|b| b.len() == len && Arc::strong_count(b) == 1 && Arc::weak_count(b) == 0);
        let mut buf = match free {
            Some(i) => pool.swap_remove(i),
            None => Arc::new(vec![0u8; len]),
        };
        let Some(pixels) = Arc::get_mut(&mut buf) else { return Err("pool memory is shared".into()) };
        for (y, line) in pixels.chunks_exact_mut(row).enumerate() {
            let at = f.offset as u64 + y as u64 * f.pitch as u64;
            if !f.memory.read_into(at, line) {
                return Err("the frame exceeds its buffer".into());
            }
        }
        // Kept for reuse: a connector never holds more than POOL pictures.
        pool.retain(|b| b.len() == len);
        if pool.len() < POOL {
            pool.push(buf.clone());
        }
        Frame::new(buf, 0, f.width, f.height, row, format).map_err(|e| format!("{e:?}"))
    }
}

impl DisplaySink for CompositorSink {
    fn add_output(&mut self, domain: u16, output: &Output) -> Result<(), SinkError> {
        let key = self.key(domain, output.index);
        let handle = self.sources.connect(&key).map_err(|e| format!("{e:?}"))?;
        // Every frame is copied once on its way in: a guest may not make
        // that copy larger than twice its place in the layout each way.
        let (pw, ph) = handle.preferred_size();
        if output.width > pw.saturating_mul(2).max(1) || output.height > ph.saturating_mul(2).max(1) {
            return Err(format!(
                "{key:?}: {}x{} is more than twice the {pw}x{ph} the layout gives it",
                output.width, output.height
            ));
        }
        if let Some(hub) = &self.input {
            handle.set_input(Box::new(VkbdInput::new(hub.clone(), domain, output.width, output.height)));
        }
        self.handles.insert((domain, output.index), Connected::new(handle));
        Ok(())
    }

    fn configure(&mut self, domain: u16, connector: u32, frame: Option<vdispl_back::Frame>) -> Result<(), SinkError> {
        let conn = self.handles.get_mut(&(domain, connector)).ok_or("connector was never added")?;
        // A flip still waiting is older than this configuration: it must
        // not be shown after it.
        conn.drop_owed();
        if let Some(f) = frame {
            let told = f.damage;
            let f = Self::convert(&f, &mut conn.pool)?;
            conn.submit(f, None, told);
        }
        Ok(())
    }

    fn flip(&mut self, frame: vdispl_back::Frame, done: FlipDone) -> Result<(), SinkError> {
        // Checked now: a flip that waits is answered before it is read.
        Self::format_of(&frame)?;
        let conn = self.handles.get_mut(&(frame.domain, frame.connector)).ok_or("connector was never added")?;
        let now = Instant::now();
        if conn.too_soon(now, self.min_flip) {
            if let Some((_, replaced)) = conn.owed.replace((frame, done)) {
                replaced.complete();
            }
            return Ok(());
        }
        // A flip still waiting is older than this one: it completes unshown.
        conn.drop_owed();
        conn.last_copy = Some(now);
        let f = Self::convert(&frame, &mut conn.pool)?;
        conn.submit(f, Some(done), frame.damage);
        Ok(())
    }

    fn tick(&mut self) {
        let now = Instant::now();
        for (key, conn) in self.handles.iter_mut() {
            if conn.owed.is_some() && !conn.too_soon(now, self.min_flip) {
                let (frame, done) = conn.owed.take().expect("checked above");
                conn.last_copy = Some(now);
                match Self::convert(&frame, &mut conn.pool) {
                    Ok(f) => conn.submit(f, Some(done), None),
                    Err(e) => {
                        // Answered already: the flip completes unshown.
                        done.complete();
                        eprintln!("cockpit: domain {} connector {}: a flip could not be shown: {e}", key.0, key.1);
                    }
                }
            }
        }
    }

    fn remove_outputs(&mut self, domain: u16) {
        // Dropping a handle is how a source vanishes (the watchdog shows its
        // fallback until the domain connects again).
        self.handles.retain(|&(d, _), _| d != domain);
    }
}
