//! Layout files: which physical displays exist and where each source
//! (a guest's display connector or a native Wayland app) is shown on them.
//!
//! ```toml
//! [[display]]
//! name = "cluster"
//! connector = "HDMI-A-1"      # DRM connector (KMS output only)
//! device = "/dev/dri/card1"    # its DRM device, if not the output's default
//! mode = "1920x720@60"
//!
//! [[source]]
//! name = "cluster"
//! guest = "cluster/0"         # domain/connector, as the display backend names it
//! display = "cluster"
//! role = "cluster"            # always on top in its region, never occluded
//! watchdog_ms = 200
//! frozen_ms = 1000           # the picture must change this often, flips or not
//!
//! [[source]]
//! name = "nav"
//! app_id = "org.example.nav"  # a native Wayland client (or `ivi_id = 1001`:
//!                             # an ivi_application surface id)
//! client_uid = 1000           # optional: only a client of this user may take it
//! display = "cluster"
//! rect = [660, 120, 600, 480] # x, y, width, height on the display
//! z = 1
//! scaling = "fit"             # fit | fill | integer | stretch
//! rotation = 90               # clockwise: 0 | 90 | 180 | 270
//! opacity = 0.9
//! ```
//!
//!
//! Scenes are named states the HMI switches between at run time
//! (`cockpit ctl scene parking`): which sources are shown, where, and how
//! opaque, faded over `fade_ms`. A scene may not hide, fade, resize or move
//! a cluster or telltale off its display.
//!
//! ```toml
//! [[scene]]
//! name = "parking"
//! sources = [
//!   { name = "camera", shown = true, rect = [0, 0, 1280, 720], opacity = 1.0, fade_ms = 300 },
//!   { name = "media", shown = false },
//! ]
//! ```
//!
//! Loading validates everything it can: a malformed file or a bad value is a
//! [`LayoutError`] naming the file, line and field.

mod error;
mod raw;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

pub use self::error::LayoutError;
use self::error::Text;
use self::raw::{RawDisplay, RawLayout, RawScene, RawSource};
use crate::format::PixelFormat;
use crate::frame::Frame;
use crate::geom::{Filter, Rect, Rotation, Scaling};

/// A validated layout.
#[derive(Clone, Debug)]
pub struct Layout {
    /// Where it was read from (used in messages).
    pub path: PathBuf,
    pub displays: Vec<DisplayConfig>,
    /// In file order; [`crate::SourceId`] indexes this.
    pub sources: Vec<SourceConfig>,
    pub keyboard_focus: FocusPolicy,
    /// Named states the HMI switches between.
    pub scenes: Vec<Scene>,
}

/// A named state of some sources ([`Layout::scenes`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Scene {
    pub name: String,
    pub sources: Vec<SceneSource>,
}

/// One source's state in a scene; `None` leaves that property as it is.
#[derive(Clone, Debug, PartialEq)]
pub struct SceneSource {
    /// Index into [`Layout::sources`].
    pub source: usize,
    pub shown: Option<bool>,
    pub rect: Option<Rect>,
    /// 0-255.
    pub opacity: Option<u8>,
    pub fade: Duration,
}

/// One physical display.
#[derive(Clone, Debug, PartialEq)]
pub struct DisplayConfig {
    pub name: String,
    /// The DRM connector name (`HDMI-A-1`, `Virtual-1`), for the KMS output.
    pub connector: Option<String>,
    /// The DRM device it hangs off (`/dev/dri/card1`), for a KMS output
    /// with several GPUs; the output's default device if left out.
    pub device: Option<String>,
    pub width: u32,
    pub height: u32,
    pub refresh_hz: Option<u32>,
    /// The format the display is scanned out in.
    pub format: PixelFormat,
    /// Opaque `0xRRGGBB` behind every source.
    pub background: u32,
    /// The panel's visible area in millimetres, if the layout says (what
    /// `wl_output` reports as its physical size; 0x0 otherwise).
    pub size_mm: Option<(u32, u32)>,
}

impl DisplayConfig {
    pub fn bounds(&self) -> Rect {
        Rect::new(0, 0, self.width as i32, self.height as i32)
    }
}

/// What a source is connected as.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SourceKey {
    /// A guest's display connector, named by its backend (`"ivi/0"`).
    Guest(String),
    /// A native Wayland client's `xdg_toplevel` app id.
    AppId(String),
    /// A native Wayland client's `ivi_application` surface id.
    IviId(u32),
}

/// A source's safety role.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Stacked by `z` among the other normal sources.
    #[default]
    Normal,
    /// Above every normal source whatever their `z`, and never overlapping
    /// another cluster: nothing but telltales is ever drawn over it.
    Cluster,
    /// Warning-lamp overlays: above everything, always visible.
    Telltale,
}

/// How a source's alpha channel is to be read.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum AlphaMode {
    #[default]
    Premultiplied,
    Straight,
}

/// What is shown when a source stops flipping (its watchdog expires) or vanishes.
#[derive(Clone, Debug, Default)]
pub enum Fallback {
    /// Its last frame, dimmed, with its label over it; for a cluster or
    /// telltale source a plate with its label instead (a stale speedometer
    /// must not stay readable).
    #[default]
    Dim,
    /// A configured picture, fitted to the destination rectangle.
    Image(Frame),
    /// Nothing: what is below shows through (normal sources only).
    Hide,
}

/// Where and how one source is shown.
#[derive(Clone, Debug)]
pub struct SourceConfig {
    pub name: String,
    pub key: SourceKey,
    /// Index into [`Layout::displays`].
    pub display: usize,
    /// Destination rectangle on the display.
    pub rect: Rect,
    pub z: i32,
    pub scaling: Scaling,
    pub filter: Filter,
    pub rotation: Rotation,
    /// 0 (invisible) to 255 (opaque).
    pub opacity: u8,
    pub role: Role,
    pub alpha: AlphaMode,
    /// Whether touches and clicks on it are delivered to it (else they fall through).
    pub input: bool,
    /// Longest time between flips before the fallback is shown.
    pub watchdog: Option<Duration>,
    /// Longest time the picture may stay the same, flips or not, before
    /// the fallback is shown: for sources that change every frame by
    /// design (a moving gauge, an alive counter), so a guest stuck
    /// re-flipping one picture is caught.
    pub frozen: Option<Duration>,
    pub fallback: Fallback,
    /// Shown on the fallback.
    pub label: String,
    /// A Wayland source only a client running as this user may take (an
    /// app id or ivi id is the client's own claim; its user is not).
    pub client_uid: Option<u32>,
}

impl SourceConfig {
    /// The buffer size that fills the destination rectangle 1:1 (what a
    /// client or guest should draw at), rotation taken into account.
    pub fn preferred_size(&self) -> (u32, u32) {
        let (w, h) = (self.rect.w as u32, self.rect.h as u32);
        if self.rotation.swaps_axes() {
            (h, w)
        } else {
            (w, h)
        }
    }
}

/// Who gets the keyboard.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum FocusPolicy {
    /// The source last touched or clicked (that takes input).
    #[default]
    LastTouched,
    /// Always this source (index into [`Layout::sources`]).
    Fixed(usize),
    /// Nobody.
    None,
}

impl Layout {
    /// Reads and validates a layout file; relative `fallback_image` paths are
    /// taken from the file's directory.
    pub fn load(path: &Path) -> Result<Layout, LayoutError> {
        let text = std::fs::read_to_string(path).map_err(|e| LayoutError {
            file: path.into(),
            line: None,
            field: "(file)".into(),
            message: format!("cannot read the layout: {e}"),
        })?;
        Self::parse(&text, path)
    }

    /// Validates layout text; `path` names it in errors and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Layout, LayoutError> {
        let t = Text { path, text };
        let raw: RawLayout = toml::from_str(text).map_err(|e| t.toml_error(&e))?;
        let displays = displays(&t, &raw.display)?;
        let mut sources = Vec::new();
        for (i, s) in raw.source.iter().enumerate() {
            sources.push(source(&t, i, s, &raw.source, &raw.display, &displays)?);
        }
        check_clusters(&t, &raw.source, &sources)?;
        let keyboard_focus = match raw.input.as_ref().and_then(|i| i.get_ref().keyboard_focus.as_ref()) {
            None => FocusPolicy::LastTouched,
            Some(v) => match v.get_ref().as_str() {
                "last-touched" => FocusPolicy::LastTouched,
                "none" => FocusPolicy::None,
                other => match other.strip_prefix("source:") {
                    Some(name) => match sources.iter().position(|s| s.name == name) {
                        Some(i) => FocusPolicy::Fixed(i),
                        None => return Err(t.at(v.span(), "input.keyboard_focus", format!("no source is named `{name}`"))),
                    },
                    None => {
                        return Err(t.at(
                            v.span(),
                            "input.keyboard_focus",
                            format!("`{other}` is not a policy; expected \"last-touched\", \"none\" or \"source:<name>\""),
                        ))
                    }
                },
            },
        };
        let scenes = scenes(&t, &raw.scene, &sources, &displays)?;
        Ok(Layout {
            path: path.into(),
            displays,
            sources,
            keyboard_focus,
            scenes,
        })
    }

    pub fn display_index(&self, name: &str) -> Option<usize> {
        self.displays.iter().position(|d| d.name == name)
    }

    pub fn source_index(&self, name: &str) -> Option<usize> {
        self.sources.iter().position(|s| s.name == name)
    }
}

/// Scenes, checked against the sources and the safety rules.
fn scenes(t: &Text<'_>, raw: &[Spanned<RawScene>], sources: &[SourceConfig], displays: &[DisplayConfig]) -> Result<Vec<Scene>, LayoutError> {
    let mut out: Vec<Scene> = Vec::new();
    for (i, sc) in raw.iter().enumerate() {
        let sc = sc.get_ref();
        let name = sc.name.get_ref();
        let field = |k: &str| format!("scene \"{name}\".{k}");
        if !valid_name(name) {
            return Err(t.at(sc.name.span(), format!("scene[{i}].name"), "expected 1-63 characters of a-z A-Z 0-9 _ - ."));
        }
        if out.iter().any(|o| &o.name == name) {
            return Err(t.at(sc.name.span(), field("name"), "a scene of this name is already defined"));
        }
        let mut entries: Vec<SceneSource> = Vec::new();
        for e in &sc.sources {
            let e = e.get_ref();
            let sname = e.name.get_ref();
            let Some(si) = sources.iter().position(|s| &s.name == sname) else {
                return Err(t.at(e.name.span(), field("sources.name"), format!("no source is named `{sname}`")));
            };
            if entries.iter().any(|o| o.source == si) {
                return Err(t.at(e.name.span(), field("sources.name"), format!("`{sname}` is given twice")));
            }
            let cfg = &sources[si];
            let safety = cfg.role != Role::Normal;
            let rect = match &e.rect {
                None => None,
                Some(r) => {
                    let [x, y, w, h] = *r.get_ref();
                    let ok = |v: i64, lo: i64| (lo..=16384).contains(&v);
                    if !ok(w, 1) || !ok(h, 1) || !ok(x.abs(), 0) || !ok(y.abs(), 0) {
                        return Err(t.at(r.span(), field("sources.rect"), "expected [x, y, width, height] within ±16384, width and height at least 1"));
                    }
                    let rect = Rect::new(x as i32, y as i32, w as i32, h as i32);
                    let bounds = displays[cfg.display].bounds();
                    if !rect.overlaps(&bounds) {
                        return Err(t.at(r.span(), field("sources.rect"), "lies off the source's display"));
                    }
                    if safety && (!bounds.contains_rect(&rect) || (rect.w, rect.h) != (cfg.rect.w, cfg.rect.h)) {
                        return Err(t.at(r.span(), field("sources.rect"), format!("`{sname}` is a {:?} source: it keeps its size and stays wholly on its display", cfg.role)));
                    }
                    Some(rect)
                }
            };
            if safety && e.shown == Some(false) {
                return Err(t.at(e.name.span(), field("sources.shown"), format!("`{sname}` is a {:?} source: it is never hidden", cfg.role)));
            }
            let opacity = match &e.opacity {
                None => None,
                Some(o) => {
                    let v = *o.get_ref();
                    if !(0.0..=1.0).contains(&v) {
                        return Err(t.at(o.span(), field("sources.opacity"), "expected 0.0 to 1.0"));
                    }
                    if safety && v < 1.0 {
                        return Err(t.at(o.span(), field("sources.opacity"), format!("`{sname}` is a {:?} source: it is never faded", cfg.role)));
                    }
                    Some((v * 255.0).round() as u8)
                }
            };
            let fade = match &e.fade_ms {
                None => Duration::ZERO,
                Some(ms) if (0..=60_000).contains(ms.get_ref()) => Duration::from_millis(*ms.get_ref() as u64),
                Some(ms) => return Err(t.at(ms.span(), field("sources.fade_ms"), "expected 0 to 60000 milliseconds")),
            };
            entries.push(SceneSource { source: si, shown: e.shown, rect, opacity, fade });
        }
        out.push(Scene { name: name.clone(), sources: entries });
    }
    Ok(out)
}

fn display_field(raw: &RawDisplay, i: usize, key: &str) -> String {
    match raw.name.get_ref().as_str() {
        "" => format!("display[{i}].{key}"),
        n => format!("display \"{n}\".{key}"),
    }
}

fn source_field(raw: &RawSource, i: usize, key: &str) -> String {
    match raw.name.get_ref().as_str() {
        "" => format!("source[{i}].{key}"),
        n => format!("source \"{n}\".{key}"),
    }
}

fn displays(t: &Text<'_>, raw: &[Spanned<RawDisplay>]) -> Result<Vec<DisplayConfig>, LayoutError> {
    if raw.is_empty() {
        return Err(t.nowhere("display", "a layout needs at least one [[display]]"));
    }
    let mut out: Vec<DisplayConfig> = Vec::new();
    for (i, d) in raw.iter().enumerate() {
        let d = d.get_ref();
        let name = d.name.get_ref();
        if !valid_name(name) {
            return Err(t.at(
                d.name.span(),
                format!("display[{i}].name"),
                "expected 1-63 characters of a-z A-Z 0-9 _ - .",
            ));
        }
        if out.iter().any(|o| &o.name == name) {
            return Err(t.at(
                d.name.span(),
                display_field(d, i, "name"),
                "a display of this name is already defined",
            ));
        }
        let (width, height, refresh_hz) = parse_mode(d.mode.get_ref()).ok_or_else(|| {
            t.at(
                d.mode.span(),
                display_field(d, i, "mode"),
                format!(
                    "`{}` is not a mode; expected \"WIDTHxHEIGHT\" or \"WIDTHxHEIGHT@HZ\", e.g. \"1920x720@60\"",
                    d.mode.get_ref()
                ),
            )
        })?;
        let format = match &d.format {
            None => PixelFormat::Xrgb8888,
            Some(f) => PixelFormat::from_name(f.get_ref()).ok_or_else(|| {
                t.at(
                    f.span(),
                    display_field(d, i, "format"),
                    format!("unknown format `{}`; expected one of {}", f.get_ref(), format_names()),
                )
            })?,
        };
        let background = match &d.background {
            None => 0,
            Some(b) => parse_colour(b.get_ref()).ok_or_else(|| {
                t.at(
                    b.span(),
                    display_field(d, i, "background"),
                    format!("`{}` is not a colour; expected \"#rrggbb\"", b.get_ref()),
                )
            })?,
        };
        let size_mm = match &d.size_mm {
            None => None,
            Some(v) => match v.get_ref().as_slice() {
                &[w, h] if (1..=10_000).contains(&w) && (1..=10_000).contains(&h) => Some((w as u32, h as u32)),
                _ => {
                    return Err(t.at(
                        v.span(),
                        display_field(d, i, "size_mm"),
                        "expected [width, height] in millimetres, each 1 to 10000",
                    ))
                }
            },
        };
        out.push(DisplayConfig {
            name: name.clone(),
            size_mm,
            connector: d.connector.as_ref().map(|c| c.get_ref().clone()),
            device: d.device.as_ref().map(|c| c.get_ref().clone()),
            width,
            height,
            refresh_hz,
            format,
            background,
        });
    }
    Ok(out)
}

fn source(
    t: &Text<'_>,
    i: usize,
    s: &Spanned<RawSource>,
    all: &[Spanned<RawSource>],
    raw_displays: &[Spanned<RawDisplay>],
    displays: &[DisplayConfig],
) -> Result<SourceConfig, LayoutError> {
    let r = s.get_ref();
    let f = |key: &str| source_field(r, i, key);
    let name = r.name.get_ref();
    if !valid_name(name) {
        return Err(t.at(
            r.name.span(),
            format!("source[{i}].name"),
            "expected 1-63 characters of a-z A-Z 0-9 _ - .",
        ));
    }
    if all[..i].iter().any(|o| o.get_ref().name.get_ref() == name) {
        return Err(t.at(r.name.span(), f("name"), "a source of this name is already defined"));
    }
    let key = match (&r.guest, &r.app_id, &r.ivi_id) {
        (Some(g), None, None) if !g.get_ref().is_empty() => SourceKey::Guest(g.get_ref().clone()),
        (None, Some(a), None) if !a.get_ref().is_empty() => SourceKey::AppId(a.get_ref().clone()),
        (None, None, Some(n)) => match u32::try_from(*n.get_ref()) {
            Ok(id) => SourceKey::IviId(id),
            Err(_) => return Err(t.at(n.span(), f("ivi_id"), "expected a surface id from 0 to 4294967295")),
        },
        (Some(g), None, None) => return Err(t.at(g.span(), f("guest"), "must not be empty")),
        (None, Some(a), None) => return Err(t.at(a.span(), f("app_id"), "must not be empty")),
        (None, None, None) => {
            return Err(t.at(
                s.span(),
                f("guest"),
                "a source needs `guest = \"domain/connector\"`, `app_id = \"...\"` or `ivi_id = N`",
            ))
        }
        _ => return Err(t.at(s.span(), f("guest"), "give one of `guest`, `app_id` or `ivi_id`, not several")),
    };
    let client_uid = match (&r.client_uid, &key) {
        (None, _) => None,
        (Some(u), SourceKey::Guest(_)) => {
            return Err(t.at(u.span(), f("client_uid"), "only a Wayland source (`app_id` or `ivi_id`) is taken by a client"))
        }
        (Some(u), _) => Some(u32::try_from(*u.get_ref()).map_err(|_| t.at(u.span(), f("client_uid"), "expected a user id from 0 to 4294967295"))?),
    };
    for o in &all[..i] {
        let o = o.get_ref();
        let same = match &key {
            SourceKey::Guest(g) => o.guest.as_ref().is_some_and(|x| x.get_ref() == g).then_some("guest"),
            SourceKey::AppId(a) => o.app_id.as_ref().is_some_and(|x| x.get_ref() == a).then_some("app_id"),
            SourceKey::IviId(n) => o.ivi_id.as_ref().is_some_and(|x| *x.get_ref() == *n as i64).then_some("ivi_id"),
        };
        if let Some(k) = same {
            let span = match k {
                "guest" => r.guest.as_ref().map(Spanned::span),
                "app_id" => r.app_id.as_ref().map(Spanned::span),
                _ => r.ivi_id.as_ref().map(Spanned::span),
            }
            .unwrap_or(s.span());
            return Err(t.at(
                span,
                f(k),
                format!("already shown by source \"{}\"; a source can be placed once", o.name.get_ref()),
            ));
        }
    }
    let display = displays.iter().position(|d| &d.name == r.display.get_ref()).ok_or_else(|| {
        let known = raw_displays
            .iter()
            .map(|d| format!("\"{}\"", d.get_ref().name.get_ref()))
            .collect::<Vec<_>>()
            .join(", ");
        t.at(
            r.display.span(),
            f("display"),
            format!("unknown display \"{}\"; the layout defines {known}", r.display.get_ref()),
        )
    })?;
    let bounds = displays[display].bounds();
    let rect = match &r.rect {
        None => bounds,
        Some(v) => {
            let [x, y, w, h] = *v.get_ref();
            let fits = |n: i64| (-65536..=65536).contains(&n);
            if !(fits(x) && fits(y) && (1..=65536).contains(&w) && (1..=65536).contains(&h)) {
                return Err(t.at(
                    v.span(),
                    f("rect"),
                    "expected [x, y, width, height] with a positive width and height",
                ));
            }
            let rect = Rect::new(x as i32, y as i32, w as i32, h as i32);
            if !rect.overlaps(&bounds) {
                return Err(t.at(
                    v.span(),
                    f("rect"),
                    format!("lies outside display \"{}\" ({}x{})", displays[display].name, bounds.w, bounds.h),
                ));
            }
            rect
        }
    };
    let rotation = match &r.rotation {
        None => Rotation::R0,
        Some(v) => Rotation::from_degrees(*v.get_ref()).ok_or_else(|| {
            t.at(
                v.span(),
                f("rotation"),
                format!("{} is not a rotation; expected 0, 90, 180 or 270", v.get_ref()),
            )
        })?,
    };
    let role = match r.role.as_ref().map(|v| (v, v.get_ref().as_str())) {
        None | Some((_, "normal")) => Role::Normal,
        Some((_, "cluster")) => Role::Cluster,
        Some((_, "telltale")) => Role::Telltale,
        Some((v, other)) => {
            return Err(t.at(
                v.span(),
                f("role"),
                format!("unknown role `{other}`; expected \"normal\", \"cluster\" or \"telltale\""),
            ))
        }
    };
    let opacity = match &r.opacity {
        None => 255,
        Some(v) => {
            let o = *v.get_ref();
            if !(0.0..=1.0).contains(&o) {
                return Err(t.at(v.span(), f("opacity"), format!("{o} is out of range; expected 0.0 to 1.0")));
            }
            if role == Role::Cluster && o < 1.0 {
                return Err(t.at(v.span(), f("opacity"), "a cluster source is always opaque (opacity 1.0)"));
            }
            (o * 255.0).round() as u8
        }
    };
    let alpha = match r.alpha.as_ref().map(|v| (v, v.get_ref().as_str())) {
        None | Some((_, "premultiplied")) => AlphaMode::Premultiplied,
        Some((_, "straight")) => AlphaMode::Straight,
        Some((v, other)) => {
            return Err(t.at(
                v.span(),
                f("alpha"),
                format!("unknown alpha mode `{other}`; expected \"premultiplied\" or \"straight\""),
            ))
        }
    };
    let watchdog = match &r.watchdog_ms {
        None => None,
        Some(v) if (1..=3_600_000).contains(v.get_ref()) => Some(Duration::from_millis(*v.get_ref() as u64)),
        Some(v) => return Err(t.at(v.span(), f("watchdog_ms"), "expected 1 to 3600000 milliseconds")),
    };
    let frozen = match &r.frozen_ms {
        None => None,
        Some(v) if (1..=3_600_000).contains(v.get_ref()) => Some(Duration::from_millis(*v.get_ref() as u64)),
        Some(v) => return Err(t.at(v.span(), f("frozen_ms"), "expected 1 to 3600000 milliseconds")),
    };
    let fallback = match (r.fallback.as_ref().map(|v| (v, v.get_ref().as_str())), &r.fallback_image) {
        (None | Some((_, "dim")), None) => Fallback::Dim,
        (Some((_, "hide")), None) => Fallback::Hide,
        (None | Some((_, "image")), Some(img)) => {
            let path = t.path.parent().unwrap_or(Path::new(".")).join(img.get_ref());
            let bytes =
                std::fs::read(&path).map_err(|e| t.at(img.span(), f("fallback_image"), format!("cannot read {}: {e}", path.display())))?;
            Fallback::Image(crate::image::decode_png(&bytes).map_err(|e| {
                t.at(
                    img.span(),
                    f("fallback_image"),
                    format!("{} is not a usable PNG: {e}", path.display()),
                )
            })?)
        }
        (Some((v, "image")), None) => return Err(t.at(v.span(), f("fallback"), "\"image\" needs `fallback_image = \"file.png\"`")),
        (Some((_, _)), Some(img)) => return Err(t.at(img.span(), f("fallback_image"), "only used with fallback = \"image\"")),
        (Some((v, other)), None) => {
            return Err(t.at(
                v.span(),
                f("fallback"),
                format!("unknown fallback `{other}`; expected \"dim\", \"image\" or \"hide\""),
            ))
        }
    };
    if role != Role::Normal {
        // A Wayland client names its own app id: anyone could claim the
        // cluster's slot. Safety roles belong to guests, whose source names
        // the backend derives from the system description.
        if let Some(n) = &r.ivi_id {
            return Err(t.at(
                n.span(),
                f("ivi_id"),
                "a cluster or telltale source must be a guest's (`guest = \"domain/connector\"`): a Wayland client chooses its own ivi id",
            ));
        }
        if let Some(a) = &r.app_id {
            return Err(t.at(
                a.span(),
                f("app_id"),
                "a cluster or telltale source must be a guest's (`guest = \"domain/connector\"`): a Wayland client chooses its own app id",
            ));
        }
        if let (Fallback::Hide, Some(v)) = (&fallback, &r.fallback) {
            return Err(t.at(
                v.span(),
                f("fallback"),
                "a cluster or telltale source never hides (what is under it would show through); its fallback is a plate with its label (\"dim\") or an image",
            ));
        }
    }
    Ok(SourceConfig {
        name: name.clone(),
        key,
        display,
        rect,
        z: r.z,
        scaling: r.scaling,
        // Integer scaling stays sharp unless asked otherwise.
        filter: r.filter.unwrap_or(if r.scaling == Scaling::Integer {
            Filter::Nearest
        } else {
            Filter::Bilinear
        }),
        rotation,
        opacity,
        role,
        alpha,
        input: r.input.unwrap_or(role != Role::Telltale),
        watchdog,
        frozen,
        fallback,
        label: r.label.clone().unwrap_or_else(|| format!("{}: NO SIGNAL", name.to_uppercase())),
        client_uid,
    })
}

/// Two clusters overlapping on one display could not both be unoccluded.
fn check_clusters(t: &Text<'_>, raw: &[Spanned<RawSource>], sources: &[SourceConfig]) -> Result<(), LayoutError> {
    for (i, a) in sources.iter().enumerate() {
        for b in &sources[..i] {
            if a.role == Role::Cluster && b.role == Role::Cluster && a.display == b.display && a.rect.overlaps(&b.rect) {
                let r = raw[i].get_ref();
                let span = r.rect.as_ref().map(Spanned::span).unwrap_or(r.name.span());
                return Err(t.at(
                    span,
                    source_field(r, i, "rect"),
                    format!(
                        "overlaps cluster source \"{}\"; cluster regions must not overlap (neither could be kept on top)",
                        b.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 63 && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

fn parse_mode(m: &str) -> Option<(u32, u32, Option<u32>)> {
    let (size, hz) = match m.split_once('@') {
        Some((s, hz)) => (s, Some(hz.trim().parse::<u32>().ok().filter(|h| (1..=1000).contains(h))?)),
        None => (m, None),
    };
    let (w, h) = size.trim().split_once('x')?;
    let (w, h) = (w.parse::<u32>().ok()?, h.parse::<u32>().ok()?);
    let ok = |n: u32| (1..=16384).contains(&n);
    (ok(w) && ok(h)).then_some((w, h, hz))
}

fn parse_colour(c: &str) -> Option<u32> {
    let hex = c.strip_prefix('#')?;
    (hex.len() == 6).then(|| u32::from_str_radix(hex, 16).ok()).flatten()
}

fn format_names() -> String {
    PixelFormat::ALL.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
}

/// Shared, read-only layout.
pub type SharedLayout = Arc<Layout>;
