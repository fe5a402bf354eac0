//! The HMI's run-time control of the layout: show, hide or move a source
//! and fade its opacity, by name. The safety rules of the layout hold
//! whatever is asked: a cluster or telltale source is never hidden, faded
//! or moved off its display, and clusters never come to overlap.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Compositor, Fade};
use crate::geom::{Placement, Rect};
use crate::layout::Role;

/// Longest fade an HMI may ask for.
pub const MAX_FADE: Duration = Duration::from_secs(60);

impl Compositor {
    /// The index of the source called `name`, or why not.
    fn named(&self, name: &str) -> Result<usize, String> {
        self.layout
            .sources
            .iter()
            .position(|s| s.name == name)
            .ok_or_else(|| format!("no source \"{}\" in the layout", name.escape_debug()))
    }

    /// Damages where source `i` is and where its picture is.
    fn damage_source(&mut self, i: usize) {
        let cfg = &self.layout.sources[i];
        let ds = &mut self.displays[cfg.display];
        let bounds = ds.canvas.bounds();
        ds.damage.add(cfg.rect.intersect(&bounds));
        if let Some(p) = self.layers[i].placement {
            ds.damage.add(p.clip);
        }
    }

    /// Shows or hides source `name`. Cluster and telltale sources are
    /// never hidden.
    pub fn set_shown(&mut self, name: &str, shown: bool) -> Result<(), String> {
        let i = self.named(name)?;
        if !shown && self.layout.sources[i].role != Role::Normal {
            return Err(format!("\"{name}\" is a {:?} source: it is never hidden", self.layout.sources[i].role));
        }
        if self.layers[i].hidden == !shown {
            return Ok(());
        }
        self.layers[i].hidden = !shown;
        self.damage_source(i);
        Ok(())
    }

    /// Moves source `name` to `rect` on its display. A cluster or telltale
    /// stays wholly on its display, and clusters never overlap.
    pub fn move_source(&mut self, name: &str, rect: Rect) -> Result<(), String> {
        let i = self.named(name)?;
        if !(1..=16384).contains(&rect.w) || !(1..=16384).contains(&rect.h) || rect.x.unsigned_abs() > 16384 || rect.y.unsigned_abs() > 16384 {
            return Err(format!("{}x{} at ({}, {}) is not a place for a source", rect.w, rect.h, rect.x, rect.y));
        }
        let cfg = &self.layout.sources[i];
        let bounds = self.displays[cfg.display].canvas.bounds();
        if !rect.overlaps(&bounds) {
            return Err(format!("({}, {}) {}x{} is off the display", rect.x, rect.y, rect.w, rect.h));
        }
        if cfg.role != Role::Normal && !bounds.contains_rect(&rect) {
            return Err(format!("\"{name}\" is a {:?} source: it stays wholly on its display", cfg.role));
        }
        if cfg.role != Role::Normal && (rect.w, rect.h) != (cfg.rect.w, cfg.rect.h) {
            return Err(format!("\"{name}\" is a {:?} source: it keeps its size ({}x{})", cfg.role, cfg.rect.w, cfg.rect.h));
        }
        if cfg.role != Role::Normal {
            // No new overlap between safety sources: a lamp over the gauges
            // or over another lamp would hide what it covers.
            let other = self.layout.sources.iter().enumerate().find(|&(j, o)| {
                j != i && o.role != Role::Normal && o.display == cfg.display && o.rect.overlaps(&rect) && !o.rect.overlaps(&cfg.rect)
            });
            if let Some((_, o)) = other {
                return Err(format!("\"{name}\" would overlap {:?} source \"{}\"", o.role, o.name));
            }
        }
        self.damage_source(i);
        Arc::make_mut(&mut self.layout).sources[i].rect = rect;
        let cfg = &self.layout.sources[i];
        if let Some(f) = &self.layers[i].frame {
            self.layers[i].placement = Some(Placement::new(f.width() as i32, f.height() as i32, rect, bounds, cfg.rotation, cfg.scaling));
        }
        self.damage_source(i);
        Ok(())
    }

    /// Fades source `name` to `opacity` (0-255) over `over`, from `now`.
    /// Cluster and telltale sources keep their opacity.
    pub fn fade(&mut self, name: &str, opacity: u8, over: Duration, now: Instant) -> Result<(), String> {
        let i = self.named(name)?;
        let cfg = &self.layout.sources[i];
        if cfg.role != Role::Normal {
            return Err(format!("\"{name}\" is a {:?} source: its opacity is fixed", cfg.role));
        }
        if over > MAX_FADE {
            return Err(format!("a fade takes at most {} s", MAX_FADE.as_secs()));
        }
        self.layers[i].fade = Some(Fade { from: cfg.opacity, to: opacity, start: now, over });
        self.animate(now);
        Ok(())
    }

    /// Steps the fades to `now` (called as frames are taken).
    pub(super) fn animate(&mut self, now: Instant) {
        for i in 0..self.layers.len() {
            let Some(f) = self.layers[i].fade else { continue };
            let t = if f.over.is_zero() { 1.0 } else { (now.saturating_duration_since(f.start).as_secs_f64() / f.over.as_secs_f64()).min(1.0) };
            let op = (f.from as f64 + (f.to as f64 - f.from as f64) * t).round() as u8;
            if op != self.layout.sources[i].opacity {
                self.damage_source(i);
                Arc::make_mut(&mut self.layout).sources[i].opacity = op;
            }
            if t >= 1.0 {
                self.layers[i].fade = None;
            }
        }
    }

    /// Switches to the layout's scene `name`: each source it names is shown
    /// or hidden, moved and faded as it says. The layout checked the
    /// safety rules when it was loaded; a move that would now make safety
    /// sources overlap is refused and the rest still applies.
    pub fn apply_scene(&mut self, name: &str, now: Instant) -> Result<(), String> {
        let scene = self
            .layout
            .scenes
            .iter()
            .find(|s| s.name == name)
            .cloned()
            .ok_or_else(|| format!("no scene \"{}\" in the layout", name.escape_debug()))?;
        let mut refused = Vec::new();
        for e in &scene.sources {
            let source = self.layout.sources[e.source].name.clone();
            if let Some(shown) = e.shown {
                self.set_shown(&source, shown).unwrap_or_else(|m| refused.push(m));
            }
            if let Some(r) = e.rect {
                self.move_source(&source, r).unwrap_or_else(|m| refused.push(m));
            }
            if let Some(o) = e.opacity {
                self.fade(&source, o, e.fade, now).unwrap_or_else(|m| refused.push(m));
            }
        }
        match refused.is_empty() {
            true => Ok(()),
            false => Err(refused.join("; ")),
        }
    }

    /// The layout's scene names.
    pub fn scene_names(&self) -> Vec<String> {
        self.layout.scenes.iter().map(|s| s.name.clone()).collect()
    }

    /// Whether a fade is under way (the loop should keep composing).
    pub fn animating(&self) -> bool {
        self.layers.iter().any(|l| l.fade.is_some())
    }

    /// Each source's name, whether it is shown, its place and opacity.
    pub fn hmi_state(&self) -> Vec<(String, bool, Rect, u8)> {
        self.layout.sources.iter().zip(&self.layers).map(|(s, l)| (s.name.clone(), !l.hidden, s.rect, s.opacity)).collect()
    }
}
