//! Touches and keys from the driver domain's own input devices (evdev),
//! routed through the layout like any platform's input. Each touch device
//! belongs to one display and spans it. A tablet (QEMU's virtio tablet: an
//! absolute pointer with buttons) is a finger, as the mouse is in `cockpit
//! sim`: a button press is a touch down; so is a touchscreen's
//! `BTN_TOUCH`. Keyboards go to the source with keyboard focus.

use std::io;
use std::path::{Path, PathBuf};

use cockpit_core::{DisplayEvent, Layout};
use evdev::{AbsoluteAxisCode, Device, EventSummary, KeyCode};

/// `--touch <device>=<display>`: a device and the display it spans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TouchRoute {
    pub device: PathBuf,
    pub display: String,
}

impl std::str::FromStr for TouchRoute {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (dev, display) = s.rsplit_once('=').ok_or_else(|| format!("{s:?}: expected <device>=<display>"))?;
        if dev.is_empty() || display.is_empty() {
            return Err(format!("{s:?}: expected <device>=<display>"));
        }
        Ok(TouchRoute { device: dev.into(), display: display.into() })
    }
}

struct Touch {
    dev: Device,
    name: PathBuf,
    display: usize,
    /// The display's size over the device's axis ranges.
    scale: (f64, f64),
    min: (i32, i32),
    at: (f64, f64),
    down: bool,
    /// Touch id: the device's index, so touches of two devices never mix.
    id: i32,
}

/// A keyboard and the keys it holds down.
struct Keyboard {
    name: PathBuf,
    dev: Device,
    down: Vec<u16>,
}

/// The evdev devices the compositor reads.
pub struct EvdevInput {
    touch: Vec<Touch>,
    keys: Vec<Keyboard>,
}

fn open(path: &Path) -> io::Result<Device> {
    let d = Device::open(path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    d.set_nonblocking(true)?;
    Ok(d)
}

fn axis_range(d: &Device, axis: AbsoluteAxisCode) -> Option<(i32, i32)> {
    d.get_absinfo().ok()?.find(|(a, _)| *a == axis).map(|(_, i)| (i.minimum(), i.maximum()))
}

impl EvdevInput {
    /// Opens the touch devices (each spanning its display of `layout`) and
    /// the keyboards.
    pub fn open(layout: &Layout, touch: &[TouchRoute], keyboards: &[PathBuf]) -> io::Result<EvdevInput> {
        let mut out = EvdevInput { touch: Vec::new(), keys: Vec::new() };
        for (i, r) in touch.iter().enumerate() {
            let display = layout.displays.iter().position(|d| d.name == r.display).ok_or_else(|| {
                io::Error::other(format!("--touch {}: the layout has no display {:?}", r.device.display(), r.display))
            })?;
            let dev = open(&r.device)?;
            let (x, y) = match (axis_range(&dev, AbsoluteAxisCode::ABS_X), axis_range(&dev, AbsoluteAxisCode::ABS_Y)) {
                (Some(x), Some(y)) if x.1 > x.0 && y.1 > y.0 => (x, y),
                _ => return Err(io::Error::other(format!("{}: no absolute X and Y axes", r.device.display()))),
            };
            let d = &layout.displays[display];
            let scale = (d.width as f64 / f64::from(x.1 - x.0 + 1), d.height as f64 / f64::from(y.1 - y.0 + 1));
            out.touch.push(Touch {
                dev,
                name: r.device.clone(),
                display,
                scale,
                min: (x.0, y.0),
                at: (0.0, 0.0),
                down: false,
                id: i as i32,
            });
        }
        for k in keyboards {
            out.keys.push(Keyboard { name: k.clone(), dev: open(k)?, down: Vec::new() });
        }
        Ok(out)
    }

    /// Appends what happened since the last call. A device that fails is
    /// dropped with a message, letting go of what it held (a finger, keys)
    /// so no guest is left with one pressed; the others carry on.
    pub fn poll(&mut self, out: &mut Vec<DisplayEvent>) {
        self.touch.retain_mut(|t| match t.read(out) {
            Ok(()) => true,
            Err(e) => {
                eprintln!("cockpit: {}: {e}; no more touches from it", t.name.display());
                if t.down {
                    out.push(DisplayEvent::TouchUp { id: t.id });
                    out.push(DisplayEvent::TouchFrame);
                }
                false
            }
        });
        self.keys.retain_mut(|k| match read_keys(&mut k.dev, &mut k.down, out) {
            Ok(()) => true,
            Err(e) => {
                eprintln!("cockpit: {}: {e}; no more keys from it", k.name.display());
                out.extend(k.down.drain(..).map(|code| DisplayEvent::Key { code: u32::from(code), pressed: false }));
                false
            }
        });
    }
}

impl Touch {
    fn read(&mut self, out: &mut Vec<DisplayEvent>) -> io::Result<()> {
        let events: Vec<_> = match self.dev.fetch_events() {
            Ok(e) => e.collect(),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        };
        let (mut moved, mut pressed) = (false, None);
        for e in events {
            match e.destructure() {
                EventSummary::AbsoluteAxis(_, AbsoluteAxisCode::ABS_X, v) => {
                    self.at.0 = f64::from(v - self.min.0) * self.scale.0;
                    moved = true;
                }
                EventSummary::AbsoluteAxis(_, AbsoluteAxisCode::ABS_Y, v) => {
                    self.at.1 = f64::from(v - self.min.1) * self.scale.1;
                    moved = true;
                }
                EventSummary::Key(_, KeyCode::BTN_LEFT | KeyCode::BTN_TOUCH, v) => pressed = Some(v != 0),
                EventSummary::Synchronization(..) => {
                    self.frame(moved, pressed.take(), out);
                    moved = false;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// One evdev frame as touch events.
    fn frame(&mut self, moved: bool, pressed: Option<bool>, out: &mut Vec<DisplayEvent>) {
        let (display, id, (x, y)) = (self.display, self.id, self.at);
        let before = out.len();
        match pressed {
            Some(true) if !self.down => {
                self.down = true;
                out.push(DisplayEvent::TouchDown { display, id, x, y });
            }
            Some(false) if self.down => {
                self.down = false;
                out.push(DisplayEvent::TouchUp { id });
            }
            _ if moved && self.down => out.push(DisplayEvent::TouchMotion { display, id, x, y }),
            _ => {}
        }
        if out.len() > before {
            out.push(DisplayEvent::TouchFrame);
        }
    }
}

fn read_keys(dev: &mut Device, down: &mut Vec<u16>, out: &mut Vec<DisplayEvent>) -> io::Result<()> {
    let events = match dev.fetch_events() {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
        Err(e) => return Err(e),
    };
    for e in events {
        // Auto-repeat (value 2) is the guest's to make.
        if let EventSummary::Key(_, code, v @ 0..=1) = e.destructure() {
            let code = code.code();
            down.retain(|&c| c != code);
            if v == 1 {
                down.push(code);
            }
            out.push(DisplayEvent::Key { code: u32::from(code), pressed: v == 1 });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touch_routes_parse() {
        let r: TouchRoute = "/dev/input/event3=center".parse().unwrap();
        assert_eq!(r, TouchRoute { device: "/dev/input/event3".into(), display: "center".into() });
        assert!("/dev/input/event3".parse::<TouchRoute>().is_err());
        assert!("=center".parse::<TouchRoute>().is_err());
    }
}
