//! evdev event stream → kbdif events, one translator per source device.

use xen_abi::io::kbdif::{InEvent, MtEvent, RAW_POINTER_MAX};

use crate::codes::*;
use crate::source::{AbsRange, RawEvent};

/// What the frontend asked for and the coordinate space it expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    /// POS instead of MOTION for absolute devices.
    pub abs_pointer: bool,
    /// Unscaled 0..=0x7fff coordinates.
    pub raw_pointer: bool,
    /// MTOUCH events for multi-touch devices.
    pub multi_touch: bool,
    /// Pointer X positions are scaled from the device's range to
    /// 0..width-1 (unless `raw_pointer`).
    pub width: u32,
    /// Pointer Y positions are scaled to 0..height-1 (unless
    /// `raw_pointer`).
    pub height: u32,
    /// Contact X positions are scaled to 0..mt_width-1.
    pub mt_width: u32,
    /// Contact Y positions are scaled to 0..mt_height-1.
    pub mt_height: u32,
    /// Slots tracked (contact ids 0..mt_contacts-1), clamped to 1..=256;
    /// events for higher slots are dropped.
    pub mt_contacts: u32,
}

impl Default for Target {
    fn default() -> Self {
        Self {
            abs_pointer: true,
            raw_pointer: false,
            multi_touch: true,
            width: 800,
            height: 600,
            mt_width: 800,
            mt_height: 600,
            mt_contacts: 10,
        }
    }
}

/// Maps `v` from the device's `range` onto `0..size` (or the raw range).
fn scale(v: i32, range: Option<AbsRange>, size: u32, raw: bool) -> i32 {
    let size = if raw {
        RAW_POINTER_MAX as u32 + 1
    } else {
        size
    };
    let top = i64::from(size.max(1) - 1);
    let Some(r) = range.filter(|r| r.max > r.min) else {
        return i64::from(v).clamp(0, top) as i32;
    };
    let span = i64::from(r.max) - i64::from(r.min);
    let off = (i64::from(v) - i64::from(r.min)).clamp(0, span);
    // Rounded, so the middle of the device lands in the middle.
    ((off * top + span / 2) / span) as i32
}

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    tracking: i32,
    active: bool,
    x: i32,
    y: i32,
    major: u32,
    minor: u32,
    moved: bool,
    reshaped: bool,
}

/// Per-device translation state.
pub struct Translator {
    target: Target,
    ranges: [Option<AbsRange>; 4],
    multitouch_device: bool,
    rel: (i32, i32, i32),
    abs: (i32, i32),
    abs_seen: bool,
    abs_moved: bool,
    last_abs: Option<(i32, i32)>,
    keys: Vec<InEvent>,
    slots: Vec<Slot>,
    slot: usize,
    /// After SYN_DROPPED, skip to the next SYN_REPORT.
    dropping: bool,
}

impl Translator {
    /// `range(code)` gives the device's absolute axis ranges.
    pub fn new(target: Target, range: impl Fn(u16) -> Option<AbsRange>) -> Self {
        let mt = range(ABS_MT_POSITION_X).is_some();
        Self {
            target,
            ranges: [
                range(ABS_X),
                range(ABS_Y),
                range(ABS_MT_POSITION_X),
                range(ABS_MT_POSITION_Y),
            ],
            multitouch_device: mt,
            rel: (0, 0, 0),
            abs: (0, 0),
            abs_seen: false,
            abs_moved: false,
            last_abs: None,
            keys: Vec::new(),
            slots: vec![
                Slot {
                    tracking: -1,
                    ..Slot::default()
                };
                target.mt_contacts.clamp(1, 256) as usize
            ],
            slot: 0,
            dropping: false,
        }
    }

    fn mt_mode(&self) -> bool {
        self.multitouch_device && self.target.multi_touch
    }

    /// Feeds one event; a SYN_REPORT emits the frame's kbdif events.
    pub fn feed(&mut self, ev: RawEvent, out: &mut Vec<InEvent>) {
        if self.dropping {
            if ev.kind == EV_SYN && ev.code == SYN_REPORT {
                self.dropping = false;
                self.rel = (0, 0, 0);
                self.keys.clear();
            }
            return;
        }
        match (ev.kind, ev.code) {
            (EV_SYN, SYN_REPORT) => self.flush(out),
            (EV_SYN, SYN_DROPPED) => self.dropping = true,
            (EV_KEY, code) => self.key(code, ev.value),
            (EV_REL, REL_X) => self.rel.0 = self.rel.0.saturating_add(ev.value),
            (EV_REL, REL_Y) => self.rel.1 = self.rel.1.saturating_add(ev.value),
            // Wheel up is +1 in evdev; kbdif's rel_z has the opposite sign.
            (EV_REL, REL_WHEEL) => self.rel.2 = self.rel.2.saturating_sub(ev.value),
            (EV_ABS, ABS_X) => {
                self.abs.0 = ev.value;
                self.abs_moved = true;
            }
            (EV_ABS, ABS_Y) => {
                self.abs.1 = ev.value;
                self.abs_moved = true;
            }
            (EV_ABS, ABS_MT_SLOT) => self.slot = ev.value.max(0) as usize,
            (EV_ABS, code) => self.mt(code, ev.value),
            _ => {}
        }
    }

    fn key(&mut self, code: u16, value: i32) {
        let tool = (BTN_TOOL_FIRST..=BTN_TOOL_LAST).contains(&code)
            && code != BTN_TOUCH
            && !BTN_STYLUS_BUTTONS.contains(&code);
        if tool {
            return;
        }
        let code = if code == BTN_TOUCH {
            if self.mt_mode() {
                return; // contacts say it all
            }
            BTN_LEFT // a touchscreen seen as a pointer clicks
        } else {
            code
        };
        // Autorepeat (2) travels as another press, as kbdfront expects.
        self.keys.push(InEvent::Key {
            pressed: value != 0,
            keycode: code.into(),
        });
    }

    fn mt(&mut self, code: u16, value: i32) {
        let Some(s) = self.slots.get_mut(self.slot) else {
            return; // a slot beyond the contacts the frontend knows about
        };
        match code {
            ABS_MT_TRACKING_ID => s.tracking = value,
            ABS_MT_POSITION_X => {
                s.x = value;
                s.moved = true;
            }
            ABS_MT_POSITION_Y => {
                s.y = value;
                s.moved = true;
            }
            ABS_MT_TOUCH_MAJOR => {
                s.major = value.max(0) as u32;
                s.reshaped = true;
            }
            ABS_MT_TOUCH_MINOR => {
                s.minor = value.max(0) as u32;
                s.reshaped = true;
            }
            _ => {}
        }
    }

    fn flush(&mut self, out: &mut Vec<InEvent>) {
        let t = self.target;
        let (dx, dy, dz) = std::mem::take(&mut self.rel);
        let abs_frame = self.abs_moved && !self.mt_mode();
        if abs_frame {
            self.abs_seen = true;
        }
        if (abs_frame || dz != 0) && self.abs_seen && t.abs_pointer {
            out.push(InEvent::Pos {
                abs_x: scale(self.abs.0, self.ranges[0], t.width, t.raw_pointer),
                abs_y: scale(self.abs.1, self.ranges[1], t.height, t.raw_pointer),
                rel_z: dz,
            });
        } else if abs_frame {
            // The frontend wants relative motion: send the scaled delta.
            let now = (
                scale(self.abs.0, self.ranges[0], t.width, false),
                scale(self.abs.1, self.ranges[1], t.height, false),
            );
            let (px, py) = self.last_abs.unwrap_or(now);
            if now != (px, py) || dz != 0 {
                out.push(InEvent::Motion {
                    rel_x: now.0 - px,
                    rel_y: now.1 - py,
                    rel_z: dz,
                });
            }
            self.last_abs = Some(now);
        } else if dx != 0 || dy != 0 || dz != 0 {
            out.push(InEvent::Motion {
                rel_x: dx,
                rel_y: dy,
                rel_z: dz,
            });
        }
        self.abs_moved = false;
        out.append(&mut self.keys);
        if self.mt_mode() {
            self.flush_contacts(out);
        }
    }

    fn flush_contacts(&mut self, out: &mut Vec<InEvent>) {
        let t = self.target;
        let (rx, ry) = (self.ranges[2], self.ranges[3]);
        let mut last = None;
        for (id, s) in self.slots.iter_mut().enumerate() {
            let contact_id = id as u8;
            let pos = || {
                (
                    scale(s.x, rx, t.mt_width, false),
                    scale(s.y, ry, t.mt_height, false),
                )
            };
            let now_active = s.tracking >= 0;
            let event = match (s.active, now_active) {
                (false, true) => {
                    let (abs_x, abs_y) = pos();
                    Some(MtEvent::Down { abs_x, abs_y })
                }
                (true, true) if s.moved => {
                    let (abs_x, abs_y) = pos();
                    Some(MtEvent::Motion { abs_x, abs_y })
                }
                (true, false) => Some(MtEvent::Up),
                _ => None,
            };
            if let Some(event) = event {
                out.push(InEvent::MultiTouch { contact_id, event });
                last = Some(contact_id);
            }
            if now_active && s.reshaped {
                out.push(InEvent::MultiTouch {
                    contact_id,
                    event: MtEvent::Shape {
                        major: s.major,
                        minor: s.minor,
                    },
                });
                last = Some(contact_id);
            }
            s.active = now_active;
            s.moved = false;
            s.reshaped = false;
        }
        if let Some(contact_id) = last {
            out.push(InEvent::MultiTouch {
                contact_id,
                event: MtEvent::Syn,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ranges(code: u16) -> Option<AbsRange> {
        match code {
            ABS_X | ABS_MT_POSITION_X => Some(AbsRange { min: 0, max: 4095 }),
            ABS_Y | ABS_MT_POSITION_Y => Some(AbsRange { min: 0, max: 4095 }),
            _ => None,
        }
    }

    fn run(t: &mut Translator, evs: &[(u16, u16, i32)]) -> Vec<InEvent> {
        let mut out = Vec::new();
        for &(k, c, v) in evs {
            t.feed(RawEvent::new(k, c, v), &mut out);
        }
        out
    }

    #[test]
    fn scaling() {
        let r = Some(AbsRange { min: 0, max: 4095 });
        assert_eq!(scale(0, r, 800, false), 0);
        assert_eq!(scale(4095, r, 800, false), 799);
        assert_eq!(scale(2048, r, 800, false), 400);
        assert_eq!(scale(99999, r, 800, false), 799);
        assert_eq!(scale(-5, r, 800, false), 0);
        assert_eq!(scale(4095, r, 800, true), 0x7fff);
        let odd = Some(AbsRange {
            min: -100,
            max: 100,
        });
        assert_eq!(scale(0, odd, 201, false), 100);
        assert_eq!(scale(7, Some(AbsRange { min: 5, max: 5 }), 10, false), 7);
    }

    #[test]
    fn mouse_keys_and_wheel() {
        let mut t = Translator::new(Target::default(), |_| None);
        let out = run(
            &mut t,
            &[
                (EV_REL, REL_X, 3),
                (EV_REL, REL_Y, -2),
                (EV_KEY, BTN_LEFT, 1),
                (EV_SYN, SYN_REPORT, 0),
                (EV_REL, REL_WHEEL, 1),
                (EV_SYN, SYN_REPORT, 0),
            ],
        );
        assert_eq!(
            out,
            vec![
                InEvent::Motion {
                    rel_x: 3,
                    rel_y: -2,
                    rel_z: 0
                },
                InEvent::Key {
                    pressed: true,
                    keycode: BTN_LEFT.into()
                },
                InEvent::Motion {
                    rel_x: 0,
                    rel_y: 0,
                    rel_z: -1
                },
            ]
        );
    }

    #[test]
    fn slots_to_contacts() {
        let mut t = Translator::new(Target::default(), ranges);
        let out = run(
            &mut t,
            &[
                (EV_ABS, ABS_MT_SLOT, 0),
                (EV_ABS, ABS_MT_TRACKING_ID, 7),
                (EV_ABS, ABS_MT_POSITION_X, 4095),
                (EV_ABS, ABS_MT_POSITION_Y, 0),
                (EV_KEY, BTN_TOUCH, 1),
                (EV_ABS, ABS_X, 4095),
                (EV_SYN, SYN_REPORT, 0),
                (EV_ABS, ABS_MT_SLOT, 1),
                (EV_ABS, ABS_MT_TRACKING_ID, 8),
                (EV_ABS, ABS_MT_POSITION_X, 0),
                (EV_ABS, ABS_MT_POSITION_Y, 4095),
                (EV_ABS, ABS_MT_SLOT, 0),
                (EV_ABS, ABS_MT_POSITION_Y, 2048),
                (EV_SYN, SYN_REPORT, 0),
                (EV_ABS, ABS_MT_TRACKING_ID, -1),
                (EV_SYN, SYN_REPORT, 0),
            ],
        );
        let mt = |contact_id, event| InEvent::MultiTouch { contact_id, event };
        assert_eq!(
            out,
            vec![
                mt(
                    0,
                    MtEvent::Down {
                        abs_x: 799,
                        abs_y: 0
                    }
                ),
                mt(0, MtEvent::Syn),
                mt(
                    0,
                    MtEvent::Motion {
                        abs_x: 799,
                        abs_y: 300
                    }
                ),
                mt(
                    1,
                    MtEvent::Down {
                        abs_x: 0,
                        abs_y: 599
                    }
                ),
                mt(1, MtEvent::Syn),
                mt(0, MtEvent::Up),
                mt(0, MtEvent::Syn),
            ]
        );
    }

    /// The stylus buttons (BTN_STYLUS 0x14b, BTN_STYLUS2 0x14c,
    /// BTN_STYLUS3 0x149) are keys inside the tool range: forwarded, while
    /// the tools around them (BTN_TOOL_PEN 0x140, BTN_TOOL_DOUBLETAP 0x14d)
    /// are not.
    #[test]
    fn stylus_buttons_are_forwarded_and_tools_are_not() {
        let mut t = Translator::new(Target::default(), ranges);
        let out = run(
            &mut t,
            &[
                (EV_KEY, 0x140, 1),
                (EV_KEY, 0x14b, 1),
                (EV_KEY, 0x14c, 1),
                (EV_KEY, 0x149, 1),
                (EV_KEY, 0x14d, 1),
                (EV_SYN, SYN_REPORT, 0),
            ],
        );
        let keys: Vec<u32> = out
            .iter()
            .filter_map(|e| match e {
                InEvent::Key { pressed: true, keycode } => Some(*keycode),
                _ => None,
            })
            .collect();
        assert_eq!(keys, vec![0x14b, 0x14c, 0x149]);
    }

    #[test]
    fn touchscreen_as_pointer_without_mt() {
        let target = Target {
            multi_touch: false,
            ..Target::default()
        };
        let mut t = Translator::new(target, ranges);
        let out = run(
            &mut t,
            &[
                (EV_ABS, ABS_MT_TRACKING_ID, 1),
                (EV_ABS, ABS_X, 2048),
                (EV_ABS, ABS_Y, 4095),
                (EV_KEY, BTN_TOUCH, 1),
                (EV_KEY, 0x145, 1), // BTN_TOOL_FINGER
                (EV_SYN, SYN_REPORT, 0),
            ],
        );
        assert_eq!(
            out,
            vec![
                InEvent::Pos {
                    abs_x: 400,
                    abs_y: 599,
                    rel_z: 0
                },
                InEvent::Key {
                    pressed: true,
                    keycode: BTN_LEFT.into()
                },
            ]
        );
    }

    #[test]
    fn dropped_frames_are_skipped() {
        let mut t = Translator::new(Target::default(), |_| None);
        let out = run(
            &mut t,
            &[
                (EV_REL, REL_X, 5),
                (EV_SYN, SYN_DROPPED, 0),
                (EV_REL, REL_X, 9),
                (EV_SYN, SYN_REPORT, 0),
                (EV_REL, REL_X, 1),
                (EV_SYN, SYN_REPORT, 0),
            ],
        );
        assert_eq!(
            out,
            vec![InEvent::Motion {
                rel_x: 1,
                rel_y: 0,
                rel_z: 0
            }]
        );
    }

    proptest! {
        /// Any event stream: no panic, coordinates inside the frontend's
        /// area, contact ids below the contact count, DOWN/UP alternate.
        #[test]
        fn any_stream_stays_in_bounds(evs in proptest::collection::vec((0u16..4, 0u16..0x40, any::<i32>()), 0..300)) {
            let target = Target { mt_contacts: 4, ..Target::default() };
            let mut t = Translator::new(target, ranges);
            let mut out = Vec::new();
            for (k, c, v) in evs {
                t.feed(RawEvent::new(k, c, v), &mut out);
            }
            let mut down = [false; 4];
            for e in out {
                match e {
                    InEvent::Pos { abs_x, abs_y, .. } => {
                        prop_assert!((0..800).contains(&abs_x) && (0..600).contains(&abs_y));
                    }
                    InEvent::MultiTouch { contact_id, event } => {
                        prop_assert!(contact_id < 4);
                        let c = contact_id as usize;
                        match event {
                            MtEvent::Down { abs_x, abs_y } => {
                                prop_assert!(!down[c]);
                                down[c] = true;
                                prop_assert!((0..800).contains(&abs_x) && (0..600).contains(&abs_y));
                            }
                            MtEvent::Motion { abs_x, abs_y } => {
                                prop_assert!(down[c]);
                                prop_assert!((0..800).contains(&abs_x) && (0..600).contains(&abs_y));
                            }
                            MtEvent::Up => { prop_assert!(down[c]); down[c] = false; }
                            _ => {}
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}
