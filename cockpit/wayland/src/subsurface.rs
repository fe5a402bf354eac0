//! `wl_subcompositor`: a surface drawn over (part of) another, moving with
//! it: a video or map view inside an HMI app's window, a toolkit's
//! decorations.
//!
//! A toplevel with sub-surfaces is handed to the compositor as its own
//! picture plus each sub-surface's as a sub-picture placed in its
//! coordinates (`SourceHandle::submit_with_subs`): nothing is flattened
//! or copied twice, and the tree scales and turns with the layout's
//! placement. Sub-surfaces in synchronized mode (the default) keep their
//! commits until their parent commits; desynchronized ones show each
//! commit at once.
//!
//! Bounded: at most [`MAX_DEPTH`] levels and [`MAX_PER_CLIENT`]
//! sub-surfaces per client (all of them can be shown). A sub-surface's
//! buffer is copied in only while its tree is placed, and only up to the
//! size of the place its toplevel gets.
//!
//! Sub-surfaces stacked below their parent are drawn below it (below the
//! toplevel's own picture too: the compositor draws sub-pictures on both
//! sides of a frame). Touches and the pointer go to the topmost surface
//! of the tree under them.

use cockpit_core::{Rect, SubPicture};
use wayland_server::backend::{ClientId, ObjectId};
use wayland_server::protocol::{
    wl_subcompositor::{self, WlSubcompositor},
    wl_subsurface::{self, WlSubsurface},
};
use wayland_server::{Client, DataInit, Dispatch, DisplayHandle, GlobalDispatch, New, Resource};

use crate::state::{Pending, State};

/// Levels of sub-surfaces under a toplevel.
pub(crate) const MAX_DEPTH: usize = 8;

/// Largest coordinate or size of a sub-picture, in root picture pixels.
const LIMIT: i32 = 1 << 24;

/// Sub-surfaces one client may have: every tree walk, stack copy and
/// frame's sub-picture list stays small whatever a client creates.
pub(crate) const MAX_PER_CLIENT: usize = cockpit_core::MAX_SUB_PICTURES;

/// A surface's sub-surface role.
pub(crate) struct Sub {
    pub resource: WlSubsurface,
    pub parent: ObjectId,
    /// Position over the parent (surface coordinates) in effect, and one
    /// set since, applied when the parent commits.
    pub pos: (i32, i32),
    pub pos_pending: Option<(i32, i32)>,
    pub sync: bool,
    /// Committed in synchronized mode: applied with the parent's commit.
    pub cached: Option<Pending>,
    /// Stacked below its parent's own picture (`place_below(parent)`, or
    /// next to a sibling that is). Applied with the stack.
    pub below: bool,
    pub below_pending: Option<bool>,
}

impl GlobalDispatch<WlSubcompositor, ()> for State {
    fn bind(_: &mut Self, _: &DisplayHandle, _: &Client, res: New<WlSubcompositor>, _: &(), init: &mut DataInit<'_, Self>) {
        init.init(res, ());
    }
}

impl Dispatch<WlSubcompositor, ()> for State {
    fn request(state: &mut Self, _: &Client, res: &WlSubcompositor, req: wl_subcompositor::Request, _: &(), _: &DisplayHandle, init: &mut DataInit<'_, Self>) {
        let wl_subcompositor::Request::GetSubsurface { id, surface, parent } = req else { return };
        let sub = init.init(id, surface.id());
        let (sid, pid) = (surface.id(), parent.id());
        let refuse = |why: &str| res.post_error(wl_subcompositor::Error::BadSurface, why.to_string());
        let Some(s) = state.surfaces.get(&sid) else { return refuse("unknown surface") };
        if s.sub.is_some() || s.xdg.is_some() || s.toplevel.is_some() || s.ivi.is_some() {
            return refuse("the surface already has a role");
        }
        if sid == pid || !state.surfaces.contains_key(&pid) {
            return refuse("the parent is the surface itself or unknown");
        }
        // The parent must not lie under the surface (no cycle), and the
        // tree stays shallow.
        // Levels: the surface's own sub-surfaces, itself, its new parent's
        // ancestors (the walk stops once too deep, so it is short).
        let mut depth = 1 + height(state, &sid, 0);
        let mut at = pid.clone();
        while let Some(p) = state.surfaces.get(&at).and_then(|s| s.sub.as_ref()).map(|s| s.parent.clone()) {
            if p == sid {
                return refuse("the parent is a sub-surface of the surface");
            }
            depth += 1;
            if depth >= MAX_DEPTH {
                break;
            }
            at = p;
        }
        if depth >= MAX_DEPTH {
            return refuse("sub-surfaces nest too deep");
        }
        let client = s.client.clone();
        let count = state.subs_per_client.entry(client).or_default();
        if *count >= MAX_PER_CLIENT {
            return refuse(&format!("a client has at most {MAX_PER_CLIENT} sub-surfaces"));
        }
        *count += 1;
        if let Some(s) = state.surfaces.get_mut(&sid) {
            s.sub = Some(Sub { resource: sub, parent: pid.clone(), pos: (0, 0), pos_pending: None, sync: true, cached: None, below: false, below_pending: None });
        }
        // A new sub-surface goes on top of its siblings, from the parent's next commit.
        if let Some(p) = state.surfaces.get_mut(&pid) {
            let mut stack = p.stack_pending.take().unwrap_or_else(|| p.stack.clone());
            stack.push(sid);
            p.stack_pending = Some(stack);
        }
    }
}

impl Dispatch<WlSubsurface, ObjectId> for State {
    fn request(state: &mut Self, _: &Client, res: &WlSubsurface, req: wl_subsurface::Request, surface: &ObjectId, _: &DisplayHandle, _: &mut DataInit<'_, Self>) {
        let Some(parent) = state.surfaces.get(surface).and_then(|s| s.sub.as_ref()).filter(|s| &s.resource == res).map(|s| s.parent.clone()) else {
            return;
        };
        match req {
            wl_subsurface::Request::SetPosition { x, y } => {
                if let Some(sub) = state.surfaces.get_mut(surface).and_then(|s| s.sub.as_mut()) {
                    sub.pos_pending = Some((x.clamp(-16384, 16384), y.clamp(-16384, 16384)));
                }
            }
            wl_subsurface::Request::PlaceAbove { ref sibling } | wl_subsurface::Request::PlaceBelow { ref sibling } => {
                let above = matches!(req, wl_subsurface::Request::PlaceAbove { .. });
                let sib = sibling.id();
                let is_sibling = sib == parent || state.surfaces.get(&sib).and_then(|s| s.sub.as_ref()).is_some_and(|s| s.parent == parent);
                if !is_sibling || sib == *surface {
                    res.post_error(wl_subsurface::Error::BadSurface, "the reference surface is neither a sibling nor the parent");
                    return;
                }
                // Below the parent, or next to a sibling that is: below it.
                let sib_below = state.surfaces.get(&sib).and_then(|s| s.sub.as_ref()).map(|s| s.below_pending.unwrap_or(s.below));
                let below = match sib_below {
                    None => !above,
                    Some(b) => b,
                };
                if let Some(sub) = state.surfaces.get_mut(surface).and_then(|s| s.sub.as_mut()) {
                    sub.below_pending = Some(below);
                }
                let Some(p) = state.surfaces.get(&parent) else { return };
                let mut stack = p.stack_pending.clone().unwrap_or_else(|| p.stack.clone());
                // Which of its children (a few: see MAX_PER_CLIENT) are below it.
                let below_now: Vec<ObjectId> = stack
                    .iter()
                    .filter(|i| state.surfaces.get(i).and_then(|s| s.sub.as_ref()).is_some_and(|sub| sub.parent == parent && sub.below_pending.unwrap_or(sub.below)))
                    .cloned()
                    .collect();
                stack.retain(|i| i != surface);
                // Next to the parent: just below or above its own picture,
                // i.e. after the children already below it.
                let is_below = |i: &ObjectId| i != surface && below_now.contains(i);
                let at = if sib == parent {
                    stack.iter().rposition(is_below).map_or(0, |k| k + 1)
                } else {
                    stack.iter().position(|i| *i == sib).map_or(0, |k| k + above as usize)
                };
                stack.insert(at.min(stack.len()), surface.clone());
                if let Some(p) = state.surfaces.get_mut(&parent) {
                    p.stack_pending = Some(stack);
                }
            }
            wl_subsurface::Request::SetSync => {
                if let Some(sub) = state.surfaces.get_mut(surface).and_then(|s| s.sub.as_mut()) {
                    sub.sync = true;
                }
            }
            wl_subsurface::Request::SetDesync => {
                let cached = state.surfaces.get_mut(surface).and_then(|s| s.sub.as_mut()).and_then(|sub| {
                    sub.sync = false;
                    sub.cached.take()
                });
                // Leaving synchronized mode applies what was cached, unless
                // a parent still synchronizes it.
                if let Some(c) = cached {
                    if synchronized(state, surface) {
                        if let Some(sub) = state.surfaces.get_mut(surface).and_then(|s| s.sub.as_mut()) {
                            sub.cached = Some(c);
                        }
                    } else {
                        apply(state, surface, c);
                    }
                }
            }
            wl_subsurface::Request::Destroy => unmap(state, surface),
            _ => {}
        }
    }

    fn destroyed(state: &mut Self, _: ClientId, res: &WlSubsurface, surface: &ObjectId) {
        if state.surfaces.get(surface).and_then(|s| s.sub.as_ref()).is_some_and(|s| &s.resource == res) {
            unmap(state, surface);
        }
    }
}

/// Levels of sub-surfaces under `id` (bounded: a client has few).
fn height(state: &State, id: &ObjectId, depth: usize) -> usize {
    if depth > MAX_PER_CLIENT {
        return depth;
    }
    let Some(s) = state.surfaces.get(id) else { return 0 };
    // Children in effect and those waiting for the parent's commit.
    s.stack
        .iter()
        .chain(s.stack_pending.iter().flatten())
        .filter(|c| state.surfaces.get(c).and_then(|c| c.sub.as_ref()).is_some_and(|sub| &sub.parent == id))
        .map(|c| 1 + height(state, c, depth + 1))
        .max()
        .unwrap_or(0)
}

/// Takes the sub-surface role off `id`: it leaves its parent's stack.
pub(crate) fn unmap(state: &mut State, id: &ObjectId) {
    let Some(s) = state.surfaces.get_mut(id) else { return };
    let Some(sub) = s.sub.take() else { return };
    if let Some(n) = state.subs_per_client.get_mut(&s.client) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            state.subs_per_client.remove(&s.client);
        }
    }
    if let Some(mut c) = sub.cached {
        crate::presentation::discard(&mut c.feedback);
        // Committed, never shown: the client may have it back.
        if let Some(Some(b)) = c.buffer {
            b.release();
        }
    }
    // It leaves the stacking order in effect and the one pending.
    if let Some(p) = state.surfaces.get_mut(&sub.parent) {
        p.stack.retain(|i| i != id);
        if let Some(st) = p.stack_pending.as_mut() {
            st.retain(|i| i != id);
        }
    }
    mark_full(state, &sub.parent);
}

/// Whether `id`'s commits wait for its parent's: it or an ancestor is a
/// synchronized sub-surface.
pub(crate) fn synchronized(state: &State, id: &ObjectId) -> bool {
    let mut at = id.clone();
    for _ in 0..MAX_DEPTH {
        let Some(sub) = state.surfaces.get(&at).and_then(|s| s.sub.as_ref()) else { return false };
        if sub.sync {
            return true;
        }
        at = sub.parent.clone();
    }
    false
}

/// The toplevel (or role-less surface) at the top of `id`'s tree, if the
/// chain of parents is whole.
pub(crate) fn root_of(state: &State, id: &ObjectId) -> Option<ObjectId> {
    let mut at = id.clone();
    for _ in 0..=MAX_DEPTH {
        let s = state.surfaces.get(&at)?;
        match &s.sub {
            Some(sub) => at = sub.parent.clone(),
            None => return Some(at),
        }
    }
    None
}

/// A commit: cached while synchronized, else applied with what its
/// synchronized sub-surfaces cached.
pub(crate) fn commit(state: &mut State, id: &ObjectId) {
    let Some(s) = state.surfaces.get_mut(id) else { return };
    let pending = std::mem::take(&mut s.pending);
    if synchronized(state, id) {
        let Some(sub) = state.surfaces.get_mut(id).and_then(|s| s.sub.as_mut()) else { return };
        sub.cached = Some(match sub.cached.take() {
            Some(older) => merge(older, pending),
            None => pending,
        });
        return;
    }
    apply(state, id, pending);
}

/// `newer` on top of `older`, as one commit.
fn merge(mut older: Pending, mut newer: Pending) -> Pending {
    if newer.buffer.is_some() {
        // A committed buffer replaced before it was shown goes back.
        if let (Some(Some(old)), Some(Some(new))) = (&older.buffer, &newer.buffer) {
            if old.id() != new.id() {
                old.release();
            }
        }
        older.buffer = newer.buffer.take();
    }
    older.damage.add_all(&newer.damage);
    older.frames.append(&mut newer.frames);
    if newer.viewport.is_some() {
        older.viewport = newer.viewport;
    }
    let room = crate::presentation::MAX_WAITING.saturating_sub(older.feedback.len());
    if newer.feedback.len() > room {
        let mut over = newer.feedback.split_off(room);
        crate::presentation::discard(&mut over);
    }
    older.feedback.append(&mut newer.feedback);
    older
}

/// Applies `pending` to `id`, then its children's positions, stacking and
/// cached commits, which take effect with it.
fn apply(state: &mut State, id: &ObjectId, pending: Pending) {
    crate::protocol::apply(state, id, pending);
    let Some(s) = state.surfaces.get_mut(id) else { return };
    let mut moved = false;
    if let Some(stack) = s.stack_pending.take() {
        moved |= stack != s.stack;
        s.stack = stack;
    }
    let children = s.stack.clone();
    for c in &children {
        let Some(sub) = state.surfaces.get_mut(c).and_then(|s| s.sub.as_mut()) else { continue };
        if let Some(p) = sub.pos_pending.take() {
            moved |= p != sub.pos;
            sub.pos = p;
        }
        if let Some(b) = sub.below_pending.take() {
            moved |= b != sub.below;
            sub.below = b;
        }
        if let Some(cached) = sub.cached.take() {
            apply(state, c, cached);
        }
    }
    if moved {
        mark_full(state, id);
    }
}

/// Shows `id`'s tree anew, all of it.
pub(crate) fn mark_full(state: &mut State, id: &ObjectId) {
    mark(state, id, None);
}

/// Adds damage (in the root picture's coordinates; `None`: all) to `id`'s tree.
pub(crate) fn mark(state: &mut State, id: &ObjectId, r: Option<Rect>) {
    if let Some(root) = root_of(state, id).and_then(|r| state.surfaces.get_mut(&r)) {
        root.tree_mark(r);
    }
}

/// Whether `id` has sub-surfaces.
pub(crate) fn has_children(state: &State, id: &ObjectId) -> bool {
    state.surfaces.get(id).is_some_and(|s| s.stack.iter().any(|c| state.surfaces.get(c).is_some_and(|c| c.sub.is_some())))
}

/// The sub-pictures of `root`'s tree, bottom first, in the root picture's
/// coordinates, and where each surface went (for damage when it changes).
pub(crate) fn pictures(state: &State, root: &ObjectId, scale: (f64, f64)) -> Vec<(ObjectId, SubPicture)> {
    let mut out = Vec::new();
    // The root's own picture is the frame itself: what lies below it comes
    // first, marked so, then what lies above.
    for below in [true, false] {
        children(state, root, (0, 0), scale, 0, below, below, &mut out);
    }
    out
}

/// Emits `id`'s children stacked below it (`below`) or above it, each
/// with its own tree: its children below it, itself, those above it.
#[allow(clippy::too_many_arguments)]
fn children(state: &State, id: &ObjectId, at: (i32, i32), scale: (f64, f64), depth: usize, below: bool, under_root: bool, out: &mut Vec<(ObjectId, SubPicture)>) {
    let Some(s) = state.surfaces.get(id) else { return };
    if depth > MAX_DEPTH {
        return;
    }
    for c in &s.stack {
        if out.len() >= cockpit_core::MAX_SUB_PICTURES {
            return;
        }
        let Some(cs) = state.surfaces.get(c) else { continue };
        let Some(sub) = cs.sub.as_ref().filter(|sub| &sub.parent == id && sub.below == below) else { continue };
        let pos = (at.0.saturating_add(sub.pos.0), at.1.saturating_add(sub.pos.1));
        children(state, c, pos, scale, depth + 1, true, under_root, out);
        if let Some((frame, (w, h))) = crate::state::picture(cs) {
            // Surface coordinates into the root picture's pixels, kept in a
            // range where no rectangle arithmetic can overflow.
            let (sx, sy) = (scale.0.max(1e-6), scale.1.max(1e-6));
            let px = |v: f64| v.round().clamp(-(LIMIT as f64), LIMIT as f64) as i32;
            let rect = Rect::new(px(pos.0 as f64 / sx), px(pos.1 as f64 / sy), px(w as f64 / sx).max(1), px(h as f64 / sy).max(1));
            if out.len() < cockpit_core::MAX_SUB_PICTURES {
                out.push((c.clone(), SubPicture { frame, at: rect, below: under_root }));
            }
        }
        children(state, c, pos, scale, depth + 1, false, under_root, out);
    }
}
