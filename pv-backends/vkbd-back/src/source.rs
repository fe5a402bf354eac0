//! Where input events come from.

use std::collections::HashMap;
use std::io;
use std::sync::mpsc::{Receiver, TryRecvError};

use crate::codes;

/// One kernel input event (`struct input_event` without its timestamp).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawEvent {
    /// Event type (`EV_KEY`, `EV_REL`, `EV_ABS`, `EV_SYN`, ...; see
    /// [`codes`](crate::codes)).
    pub kind: u16,
    /// Key, button or axis within that type.
    pub code: u16,
    /// Key state (0 released, 1 pressed, 2 autorepeat), relative delta,
    /// or absolute position in the device's own [`AbsRange`].
    pub value: i32,
}

impl RawEvent {
    /// An event with these type, code and value.
    pub const fn new(kind: u16, code: u16, value: i32) -> Self {
        Self { kind, code, value }
    }
}

/// The range an absolute axis reports (`struct input_absinfo`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbsRange {
    /// Smallest value the axis reports; scaled to 0.
    pub min: i32,
    /// Largest value the axis reports; scaled to the frontend's size
    /// minus one. A range with `max <= min` is not scaled, only clamped.
    pub max: i32,
}

/// A device events are read from.
pub trait InputSource: Send {
    /// A name for log lines (e.g. the device path and its product name).
    fn name(&self) -> &str;
    /// Range of absolute axis `code`, if the device has it.
    fn abs_range(&self, code: u16) -> Option<AbsRange>;
    /// Appends the events available now, without blocking. An error means
    /// the device is gone.
    fn read(&mut self, out: &mut Vec<RawEvent>) -> io::Result<()>;
    /// Whether the device reports multi-touch slots; by default, whether
    /// it has an `ABS_MT_POSITION_X` axis. Decides whether the backend
    /// offers multi-touch to the frontend.
    fn is_multitouch(&self) -> bool {
        self.abs_range(codes::ABS_MT_POSITION_X).is_some()
    }
}

/// `struct input_event` on 64-bit Linux: timeval (16), type, code, value.
pub const INPUT_EVENT_SIZE: usize = 24;

/// Parses a recording of `struct input_event`s (e.g. `cat /dev/input/eventN`
/// on a 64-bit host). Timestamps are dropped; a partial record is an error.
pub fn parse_input_events(bytes: &[u8]) -> Result<Vec<RawEvent>, &'static str> {
    if !bytes.len().is_multiple_of(INPUT_EVENT_SIZE) {
        return Err("recording is not a whole number of input_event records");
    }
    Ok(bytes
        .chunks_exact(INPUT_EVENT_SIZE)
        .map(|r| RawEvent {
            kind: u16::from_le_bytes([r[16], r[17]]),
            code: u16::from_le_bytes([r[18], r[19]]),
            value: i32::from_le_bytes([r[20], r[21], r[22], r[23]]),
        })
        .collect())
}

/// Replays recorded events: everything is available at the first read.
pub struct RecordedSource {
    name: String,
    ranges: HashMap<u16, AbsRange>,
    events: Vec<RawEvent>,
}

impl RecordedSource {
    /// A source called `name` with the given absolute axis ranges (by
    /// axis code) that delivers `events`, in order, at its first read.
    pub fn new(name: &str, ranges: &[(u16, AbsRange)], events: Vec<RawEvent>) -> Self {
        Self {
            name: name.to_string(),
            ranges: ranges.iter().copied().collect(),
            events,
        }
    }
}

impl InputSource for RecordedSource {
    fn name(&self) -> &str {
        &self.name
    }
    fn abs_range(&self, code: u16) -> Option<AbsRange> {
        self.ranges.get(&code).copied()
    }
    fn read(&mut self, out: &mut Vec<RawEvent>) -> io::Result<()> {
        out.append(&mut self.events);
        Ok(())
    }
}

/// Events sent by another thread; the sender hanging up ends the device.
pub struct ChannelSource {
    name: String,
    ranges: HashMap<u16, AbsRange>,
    rx: Receiver<RawEvent>,
}

impl ChannelSource {
    /// A source called `name` with the given absolute axis ranges (by
    /// axis code) that delivers whatever arrives on `rx`; once every
    /// sender is dropped and the channel drained, reading fails.
    pub fn new(name: &str, ranges: &[(u16, AbsRange)], rx: Receiver<RawEvent>) -> Self {
        Self {
            name: name.to_string(),
            ranges: ranges.iter().copied().collect(),
            rx,
        }
    }
}

impl InputSource for ChannelSource {
    fn name(&self) -> &str {
        &self.name
    }
    fn abs_range(&self, code: u16) -> Option<AbsRange> {
        self.ranges.get(&code).copied()
    }
    fn read(&mut self, out: &mut Vec<RawEvent>) -> io::Result<()> {
        loop {
            match self.rx.try_recv() {
                Ok(ev) => out.push(ev),
                Err(TryRecvError::Empty) => return Ok(()),
                Err(TryRecvError::Disconnected) => {
                    return Err(io::Error::new(io::ErrorKind::BrokenPipe, "source closed"))
                }
            }
        }
    }
}

/// A Linux input device, grabbed so only the frontend sees its events.
pub struct EvdevSource {
    name: String,
    dev: evdev::Device,
    ranges: HashMap<u16, AbsRange>,
}

impl EvdevSource {
    /// Opens `path` (`/dev/input/eventN`) non-blocking and grabs it, so
    /// the host stops seeing its events while the source lives. Fails with
    /// the OS error if it cannot be opened, grabbed (e.g. another process
    /// holds it) or queried for its axes.
    pub fn open(path: &str) -> io::Result<Self> {
        let mut dev = evdev::Device::open(path)?;
        dev.set_nonblocking(true)?;
        dev.grab()?;
        let ranges = dev
            .get_absinfo()?
            .map(|(axis, info)| {
                (
                    axis.0,
                    AbsRange {
                        min: info.minimum(),
                        max: info.maximum(),
                    },
                )
            })
            .collect();
        Ok(Self {
            name: format!("{path} ({})", dev.name().unwrap_or("unnamed")),
            dev,
            ranges,
        })
    }
}

impl InputSource for EvdevSource {
    fn name(&self) -> &str {
        &self.name
    }
    fn abs_range(&self, code: u16) -> Option<AbsRange> {
        self.ranges.get(&code).copied()
    }
    fn read(&mut self, out: &mut Vec<RawEvent>) -> io::Result<()> {
        match self.dev.fetch_events() {
            Ok(events) => {
                out.extend(events.map(|e| RawEvent::new(e.event_type().0, e.code(), e.value())));
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(kind: u16, code: u16, value: i32) -> Vec<u8> {
        let mut r = vec![0u8; 16];
        r.extend_from_slice(&kind.to_le_bytes());
        r.extend_from_slice(&code.to_le_bytes());
        r.extend_from_slice(&value.to_le_bytes());
        r
    }

    #[test]
    fn parses_input_event_records() {
        let mut b = record(1, 30, 1);
        b.extend(record(0, 0, 0));
        b.extend(record(3, 0x35, -5));
        let evs = parse_input_events(&b).unwrap();
        assert_eq!(
            evs,
            vec![
                RawEvent::new(1, 30, 1),
                RawEvent::new(0, 0, 0),
                RawEvent::new(3, 0x35, -5)
            ]
        );
        assert!(parse_input_events(&b[..47]).is_err());
    }

    proptest! {
        #[test]
        fn parser_total(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            match parse_input_events(&bytes) {
                Ok(evs) => prop_assert_eq!(evs.len() * INPUT_EVENT_SIZE, bytes.len()),
                Err(_) => prop_assert!(bytes.len() % INPUT_EVENT_SIZE != 0),
            }
        }
    }
}
