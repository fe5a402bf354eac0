//! The frame-submission API: how a producer (a guest's display backend, a
//! Wayland client, a simulated guest) hands frames to the compositor.
//!
//! A producer [`Sources::connect`]s by its [`SourceKey`] and gets a
//! [`SourceHandle`]. Each [`SourceHandle::submit`] is one flip: the frame is
//! shown from the next composition on, and the watchdog is fed. Dropping the
//! handle means the source vanished; the compositor then shows its fallback.
//! Handles are `Send`, so producers may live on their own threads.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::damage::Damage;
use crate::frame::Frame;
use crate::geom::Rect;
use crate::input::GuestInput;
use crate::layout::{Layout, SourceKey};

/// A source's index in [`Layout::sources`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceId(pub usize);

/// A picture drawn with a source's frame (a Wayland sub-surface): `at` is
/// where, in the frame's buffer coordinates, scaled to fit it; `below`
/// draws it under the frame (showing where the frame is translucent).
#[derive(Clone)]
pub struct SubPicture {
    pub frame: Frame,
    pub at: Rect,
    pub below: bool,
}

/// Sub-pictures one frame may carry: a client cannot make the compositor's
/// work per frame grow without bound.
pub const MAX_SUB_PICTURES: usize = 16;

/// What is waiting for the compositor in one source's slot.
#[derive(Default)]
pub(crate) struct SlotState {
    /// Bumped at every connect, so a stale handle's drop changes nothing.
    pub generation: u64,
    pub connected: bool,
    pub pending: Option<Frame>,
    /// The pending frame's sub-pictures, bottom first.
    pub pending_subs: Vec<SubPicture>,
    /// Buffer-space damage since the last composition; `None` with a
    /// pending frame means all of it.
    pub damage: Option<Damage>,
    pub flips: u64,
    pub input: Option<Box<dyn GuestInput>>,
    /// Called once the flips submitted so far have been shown (or replaced
    /// by a newer flip before they could be).
    pub on_shown: Vec<Box<dyn FnOnce() + Send>>,
    /// The HMI hid the source or faded it out: nothing of it is on screen.
    pub hidden: bool,
}

pub(crate) struct Slot {
    pub id: SourceId,
    pub name: String,
    pub preferred: (u32, u32),
    pub state: Mutex<SlotState>,
}

impl Slot {
    /// The state, even if a producer panicked while holding the lock (its
    /// data is plain values, always consistent between statements).
    pub fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Why a producer cannot connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectError {
    /// The layout places no source of that key or name.
    NotInLayout(String),
    /// Another handle for this source is alive.
    AlreadyConnected(String),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::NotInLayout(k) => write!(f, "the layout places no source for {k}"),
            ConnectError::AlreadyConnected(n) => write!(f, "source \"{n}\" is already connected"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// The compositor's sources, shared with producers (cheap to clone).
#[derive(Clone)]
pub struct Sources {
    layout: Arc<Layout>,
    slots: Arc<[Arc<Slot>]>,
}

impl Sources {
    pub(crate) fn new(layout: Arc<Layout>) -> Sources {
        let slots = layout
            .sources
            .iter()
            .enumerate()
            .map(|(i, s)| {
                Arc::new(Slot {
                    id: SourceId(i),
                    name: s.name.clone(),
                    preferred: s.preferred_size(),
                    state: Mutex::new(SlotState::default()),
                })
            })
            .collect();
        Sources { layout, slots }
    }

    pub(crate) fn slot(&self, id: SourceId) -> &Arc<Slot> {
        &self.slots[id.0]
    }

    pub fn layout(&self) -> &Arc<Layout> {
        &self.layout
    }

    /// The source the layout places for `key`, if any.
    pub fn find(&self, key: &SourceKey) -> Option<SourceId> {
        self.layout.sources.iter().position(|s| &s.key == key).map(SourceId)
    }

    /// Connects the producer of `key` (a guest connector or an app id).
    pub fn connect(&self, key: &SourceKey) -> Result<SourceHandle, ConnectError> {
        let id = self.find(key).ok_or_else(|| {
            ConnectError::NotInLayout(match key {
                SourceKey::Guest(g) => format!("guest connector \"{g}\""),
                SourceKey::AppId(a) => format!("app id \"{a}\""),
                SourceKey::IviId(n) => format!("ivi id {n}"),
            })
        })?;
        self.connect_id(id)
    }

    /// Connects the producer of the source named `name` in the layout.
    pub fn connect_by_name(&self, name: &str) -> Result<SourceHandle, ConnectError> {
        let id = self
            .layout
            .source_index(name)
            .ok_or_else(|| ConnectError::NotInLayout(format!("source \"{name}\"")))?;
        self.connect_id(SourceId(id))
    }

    fn connect_id(&self, id: SourceId) -> Result<SourceHandle, ConnectError> {
        let slot = self.slots[id.0].clone();
        let generation = {
            let mut st = slot.lock();
            if st.connected {
                return Err(ConnectError::AlreadyConnected(slot.name.clone()));
            }
            st.generation += 1;
            st.connected = true;
            st.pending = None;
            st.damage = None;
            st.input = None;
            st.generation
        };
        Ok(SourceHandle { slot, generation })
    }
}

/// A connected producer's end: submit frames, receive input. Dropping it
/// disconnects the source.
pub struct SourceHandle {
    slot: Arc<Slot>,
    generation: u64,
}

impl SourceHandle {
    pub fn id(&self) -> SourceId {
        self.slot.id
    }

    pub fn name(&self) -> &str {
        &self.slot.name
    }

    /// The buffer size that maps 1:1 onto the destination rectangle (what to
    /// draw at to avoid scaling; with a full-display rectangle and an opaque
    /// format, frames of this size are scanned out without composition).
    pub fn preferred_size(&self) -> (u32, u32) {
        self.slot.preferred
    }

    /// Flips to `frame`, all of it changed.
    pub fn submit(&self, frame: Frame) {
        let mut st = self.slot.lock();
        st.pending = Some(frame);
        st.pending_subs.clear();
        st.damage = None;
        st.flips += 1;
    }

    /// Flips to `frame`, of which only `damage` (buffer coordinates) changed
    /// since the previous frame.
    pub fn submit_damaged(&self, frame: Frame, damage: &[Rect]) {
        let mut st = self.slot.lock();
        let keep = st.pending.is_none() || st.damage.is_some();
        st.pending = Some(frame);
        st.pending_subs.clear();
        if keep {
            // Damage since the compositor last looked adds up; a full flip
            // not yet composed stays full.
            let d = st.damage.get_or_insert_with(Damage::new);
            for r in damage {
                d.add(*r);
            }
        }
        st.flips += 1;
    }

    /// Flips to `frame` with `subs` drawn with it, bottom first (at most
    /// [`MAX_SUB_PICTURES`]; the rest are not shown), of which `damage`
    /// (buffer coordinates; `None`: all of it) changed.
    pub fn submit_with_subs(&self, frame: Frame, subs: Vec<SubPicture>, damage: Option<&[Rect]>) {
        match damage {
            Some(d) => self.submit_damaged(frame, d),
            None => self.submit(frame),
        }
        let mut subs = subs;
        subs.truncate(MAX_SUB_PICTURES);
        self.slot.lock().pending_subs = subs;
    }

    /// Flips to `frame` (with `damage` in buffer coordinates, or all of it
    /// when `None`) and calls `on_shown` from the compositor's thread once it
    /// is on screen, or once a newer flip replaced it before it could be.
    /// A PV display backend completes the guest's page flip from it.
    pub fn submit_then(&self, frame: Frame, damage: Option<&[Rect]>, on_shown: impl FnOnce() + Send + 'static) {
        match damage {
            Some(d) => self.submit_damaged(frame, d),
            None => self.submit(frame),
        }
        self.slot.lock().on_shown.push(Box::new(on_shown));
    }

    /// Where touches, clicks and keys routed to this source go.
    pub fn set_input(&self, sink: Box<dyn GuestInput>) {
        self.slot.lock().input = Some(sink);
    }

    /// Whether the HMI shows the source (not hidden, not faded out). A
    /// producer may stop drawing while it is not; its pictures are kept.
    pub fn shown(&self) -> bool {
        !self.slot.lock().hidden
    }

    /// Flips so far in this connection and the ones before.
    pub fn flips(&self) -> u64 {
        self.slot.lock().flips
    }
}

impl Drop for SourceHandle {
    fn drop(&mut self) {
        let mut st = self.slot.lock();
        if st.generation == self.generation {
            st.connected = false;
            st.pending = None;
            st.damage = None;
            st.input = None;
        }
    }
}

impl fmt::Debug for SourceHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SourceHandle({:?} \"{}\")", self.slot.id, self.slot.name)
    }
}
