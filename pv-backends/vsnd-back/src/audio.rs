//! Where samples go: the audio back end a stream is opened on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use xen_abi::io::sndif::PcmFormat;

/// The configuration OPEN asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PcmConfig {
    /// Sample rate in Hz; the device must run at exactly this rate.
    pub rate: u32,
    /// Sample format of the shared buffer's data.
    pub format: PcmFormat,
    /// Interleaved channels per frame.
    pub channels: u32,
    /// Frames between position reports (and the ALSA period).
    pub period_frames: u32,
    /// Frames in the shared buffer (and the ALSA buffer, if it allows).
    pub buffer_frames: u32,
}

/// Opens streams on some audio system.
pub trait AudioBackend: Send {
    /// `device` is the routed device name (see [`crate::Router`]).
    fn open(
        &mut self,
        device: &str,
        playback: bool,
        cfg: &PcmConfig,
    ) -> Result<Box<dyn PcmStream>, String>;
}

/// One open playback or capture stream.
pub trait PcmStream: Send {
    /// Plays all of `data` (whole frames), blocking as the device paces.
    fn write(&mut self, data: &[u8]) -> Result<(), String>;
    /// Fills `buf` with captured frames.
    fn read(&mut self, buf: &mut [u8]) -> Result<(), String>;
    /// TRIGGER start: begins playing (capture may start on the first read
    /// instead). Starting a stream already running is not an error. As
    /// for every trigger, an error is logged and answered with -EIO.
    fn start(&mut self) -> Result<(), String>;
    /// TRIGGER stop: discards what is queued and leaves the stream ready
    /// to start again.
    fn stop(&mut self) -> Result<(), String>;
    /// TRIGGER pause (`true`) or resume (`false`); a device that cannot
    /// pause may stop instead.
    fn pause(&mut self, pause: bool) -> Result<(), String>;
    /// Underruns (playback) or overruns (capture) seen so far.
    fn xruns(&self) -> u64;
    /// Bytes written but not played yet (still queued in the device).
    /// Position reports subtract them, so a frontend's hardware pointer
    /// follows what was heard rather than what was handed over. Devices
    /// that play at once (the in-memory harness) queue nothing.
    fn queued_bytes(&mut self) -> u64 {
        0
    }
}

/// What a [`MemoryAudio`] device has seen and will deliver.
#[derive(Default, Debug)]
pub struct MemoryTap {
    /// Bytes played, per device name.
    pub played: HashMap<String, Vec<u8>>,
    /// Bytes capture will deliver, per device name (then silence).
    pub to_capture: HashMap<String, Vec<u8>>,
    /// Trigger calls, per device name ("start", "stop", "pause", "resume").
    pub triggers: HashMap<String, Vec<&'static str>>,
    /// Every open, in order: the routed device name and the configuration.
    pub opened: Vec<(String, PcmConfig)>,
    /// Bytes each device reports as written but not played yet (none by
    /// default: the harness plays at once). Tests set it to stand in for
    /// a device that plays in real time.
    pub queued: HashMap<String, u64>,
}

/// A test harness audio system: playback appends to memory, capture reads
/// from memory. Shared through [`MemoryTap`].
#[derive(Clone, Default)]
pub struct MemoryAudio {
    /// What the streams record and replay; clones of this audio system
    /// share it, so a test keeps one to inspect or feed.
    pub tap: Arc<Mutex<MemoryTap>>,
}

struct MemoryStream {
    tap: Arc<Mutex<MemoryTap>>,
    device: String,
}

impl AudioBackend for MemoryAudio {
    fn open(
        &mut self,
        device: &str,
        _playback: bool,
        cfg: &PcmConfig,
    ) -> Result<Box<dyn PcmStream>, String> {
        self.tap
            .lock()
            .unwrap()
            .opened
            .push((device.to_string(), *cfg));
        Ok(Box::new(MemoryStream {
            tap: self.tap.clone(),
            device: device.to_string(),
        }))
    }
}

impl MemoryStream {
    fn trigger(&mut self, what: &'static str) -> Result<(), String> {
        let mut t = self.tap.lock().unwrap();
        t.triggers
            .entry(self.device.clone())
            .or_default()
            .push(what);
        Ok(())
    }
}

impl PcmStream for MemoryStream {
    fn write(&mut self, data: &[u8]) -> Result<(), String> {
        let mut t = self.tap.lock().unwrap();
        t.played
            .entry(self.device.clone())
            .or_default()
            .extend_from_slice(data);
        Ok(())
    }
    fn read(&mut self, buf: &mut [u8]) -> Result<(), String> {
        let mut t = self.tap.lock().unwrap();
        let src = t.to_capture.entry(self.device.clone()).or_default();
        let n = buf.len().min(src.len());
        buf[..n].copy_from_slice(&src[..n]);
        src.drain(..n);
        buf[n..].fill(0);
        Ok(())
    }
    fn start(&mut self) -> Result<(), String> {
        self.trigger("start")
    }
    fn stop(&mut self) -> Result<(), String> {
        self.trigger("stop")
    }
    fn pause(&mut self, pause: bool) -> Result<(), String> {
        self.trigger(if pause { "pause" } else { "resume" })
    }
    fn xruns(&self) -> u64 {
        0
    }
    fn queued_bytes(&mut self) -> u64 {
        let t = self.tap.lock().unwrap();
        t.queued.get(&self.device).copied().unwrap_or(0)
    }
}
