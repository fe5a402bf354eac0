//! Playback and capture through libasound (the `alsa` crate).

use alsa::pcm::{Access, Format, HwParams, PCM};
use alsa::{Direction, ValueOr};

use crate::audio::{AudioBackend, PcmConfig, PcmStream};

/// Opens streams on ALSA PCM devices by name.
#[derive(Clone, Debug, Default)]
pub struct AlsaAudio;

struct AlsaStream {
    pcm: PCM,
    frame_bytes: usize,
    playback: bool,
    xruns: u64,
    /// The device cannot pause: pause stops, resume restarts on write.
    no_pause: bool,
}

fn alsa_format(f: xen_abi::io::sndif::PcmFormat) -> Option<Format> {
    let name = f.name().to_ascii_uppercase();
    // sndif spells the float formats differently from ALSA.
    let name = match name.as_str() {
        "FLOAT_LE" => "FLOAT_LE".to_string(),
        _ => name,
    };
    match name.parse::<Format>() {
        Ok(Format::Unknown) | Err(_) => None,
        Ok(f) => Some(f),
    }
}

fn err(what: &str, e: alsa::Error) -> String {
    format!("{what}: {e}")
}

impl AudioBackend for AlsaAudio {
    fn open(
        &mut self,
        device: &str,
        playback: bool,
        cfg: &PcmConfig,
    ) -> Result<Box<dyn PcmStream>, String> {
        let dir = if playback {
            Direction::Playback
        } else {
            Direction::Capture
        };
        // Non-blocking: a device another stream holds answers EBUSY at once
        // instead of keeping this device thread until it is free, and a
        // transfer waits for room only as long as `WAIT_LIMIT_MS`.
        let pcm = PCM::new(device, dir, true).map_err(|e| err(device, e))?;
        let format = alsa_format(cfg.format).ok_or("format has no ALSA equivalent")?;
        {
            let hw = HwParams::any(&pcm).map_err(|e| err("hw_params", e))?;
            hw.set_access(Access::RWInterleaved)
                .map_err(|e| err("access", e))?;
            hw.set_format(format).map_err(|e| err("format", e))?;
            hw.set_channels(cfg.channels)
                .map_err(|e| err("channels", e))?;
            hw.set_rate(cfg.rate, ValueOr::Nearest)
                .map_err(|e| err("rate", e))?;
            if cfg.period_frames > 0 {
                let _ = hw.set_period_size_near(cfg.period_frames.into(), ValueOr::Nearest);
            }
            if cfg.buffer_frames > 0 {
                let _ = hw.set_buffer_size_near(cfg.buffer_frames.into());
            }
            pcm.hw_params(&hw).map_err(|e| err("hw_params", e))?;
        }
        let hw = pcm.hw_params_current().map_err(|e| err("hw_params", e))?;
        let rate = hw.get_rate().map_err(|e| err("rate", e))?;
        if rate != cfg.rate {
            return Err(format!("device runs at {rate} Hz, not {}", cfg.rate));
        }
        let buffer = hw.get_buffer_size().map_err(|e| err("buffer", e))?;
        let no_pause = !hw.can_pause();
        drop(hw);
        {
            let sw = pcm.sw_params_current().map_err(|e| err("sw_params", e))?;
            // Playback starts by itself once the buffer is full (so a
            // frontend that writes before START never blocks forever);
            // capture starts on the first read.
            let threshold = if playback { buffer } else { 1 };
            sw.set_start_threshold(threshold)
                .map_err(|e| err("sw_params", e))?;
            pcm.sw_params(&sw).map_err(|e| err("sw_params", e))?;
        }
        pcm.prepare().map_err(|e| err("prepare", e))?;
        let sample = crate::gain::sample_bytes(cfg.format).unwrap_or(1);
        Ok(Box::new(AlsaStream {
            pcm,
            frame_bytes: sample * cfg.channels as usize,
            playback,
            xruns: 0,
            no_pause,
        }))
    }
}

impl AlsaStream {
    fn recover(&mut self, e: alsa::Error) -> Result<(), String> {
        if e.errno() == libc_epipe() {
            self.xruns += 1;
        }
        self.pcm.try_recover(e, true).map_err(|e| err("recover", e))
    }
}

const fn libc_epipe() -> i32 {
    32
}

const EAGAIN: i32 = 11;

/// Longest a WRITE or READ waits with no progress for the device to take
/// or give data (a stalled device): longer than any buffer the daemon
/// accepts. (A paused stream refuses transfers before getting here.)
const WAIT_LIMIT_MS: u32 = 3000;

impl AlsaStream {
    /// Waits for the device to be ready for more; errors once it has made
    /// no progress since `since` for the limit.
    fn wait_ready(&mut self, since: std::time::Instant, what: &str) -> Result<(), String> {
        if since.elapsed().as_millis() >= u128::from(WAIT_LIMIT_MS) {
            return Err(format!("device {what} for {WAIT_LIMIT_MS} ms (stalled)"));
        }
        let _ = self.pcm.wait(Some(50));
        Ok(())
    }
}

impl PcmStream for AlsaStream {
    fn write(&mut self, data: &[u8]) -> Result<(), String> {
        let mut done = 0;
        let whole = data.len() - data.len() % self.frame_bytes.max(1);
        let mut progress = std::time::Instant::now();
        while done < whole {
            let r = self.pcm.io_bytes().writei(&data[done..whole]);
            match r {
                Ok(frames) if frames > 0 => {
                    done += frames * self.frame_bytes;
                    progress = std::time::Instant::now();
                }
                Ok(_) => self.wait_ready(progress, "accepts no data")?,
                Err(e) if e.errno() == EAGAIN => self.wait_ready(progress, "accepts no data")?,
                Err(e) => self.recover(e)?,
            }
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<(), String> {
        let mut done = 0;
        let whole = buf.len() - buf.len() % self.frame_bytes.max(1);
        let mut progress = std::time::Instant::now();
        while done < whole {
            let r = self.pcm.io_bytes().readi(&mut buf[done..whole]);
            match r {
                Ok(frames) if frames > 0 => {
                    done += frames * self.frame_bytes;
                    progress = std::time::Instant::now();
                }
                Ok(_) => self.wait_ready(progress, "delivers no data")?,
                Err(e) if e.errno() == EAGAIN => self.wait_ready(progress, "delivers no data")?,
                Err(e) => self.recover(e)?,
            }
        }
        buf[whole..].fill(0);
        Ok(())
    }

    fn start(&mut self) -> Result<(), String> {
        if !self.playback {
            return Ok(()); // capture starts on read
        }
        match self.pcm.start() {
            // Already running (auto-started by a full buffer) is fine.
            Ok(()) => Ok(()),
            Err(e) if e.errno() == 77 /* EBADFD */ => Ok(()),
            Err(e) => Err(err("start", e)),
        }
    }

    fn stop(&mut self) -> Result<(), String> {
        self.pcm.drop().map_err(|e| err("stop", e))?;
        self.pcm.prepare().map_err(|e| err("prepare", e))
    }

    fn pause(&mut self, pause: bool) -> Result<(), String> {
        if self.no_pause {
            return if pause { self.stop() } else { Ok(()) };
        }
        self.pcm.pause(pause).map_err(|e| err("pause", e))
    }

    fn xruns(&self) -> u64 {
        self.xruns
    }

    fn queued_bytes(&mut self) -> u64 {
        if !self.playback {
            return 0;
        }
        // Before the start this is everything written; after an underrun
        // (an error here) nothing is queued.
        match self.pcm.delay() {
            Ok(frames) if frames > 0 => frames as u64 * self.frame_bytes as u64,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xen_abi::io::sndif::PcmFormat;

    #[test]
    fn every_linear_format_maps() {
        for f in [
            PcmFormat::S16Le,
            PcmFormat::U8,
            PcmFormat::F32Le,
            PcmFormat::F64Be,
            PcmFormat::S24Le,
            PcmFormat::MuLaw,
        ] {
            assert!(alsa_format(f).is_some(), "{f:?}");
        }
        assert_eq!(alsa_format(PcmFormat::S16Le), Some(Format::S16LE));
        assert_eq!(alsa_format(PcmFormat::F32Le), Some(Format::FloatLE));
    }
}
