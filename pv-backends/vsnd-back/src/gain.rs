//! The software gain stage behind SET_VOLUME and MUTE.
//!
//! Volume is per channel in 0.001 dB (0 = unity); a muted channel is
//! silent whatever its volume. At unity and unmuted, samples pass through
//! untouched, so the data path stays bit-exact and copy-free.

use xen_abi::io::sndif::PcmFormat;

/// Per-channel volume and mute.
#[derive(Clone, Debug, PartialEq)]
pub struct Gain {
    volume_mdb: Vec<i32>,
    muted: Vec<bool>,
}

/// Whether the stage can scale samples of this format.
pub fn supports(format: PcmFormat) -> bool {
    use PcmFormat::*;
    matches!(
        format,
        S8 | U8 | S16Le | S16Be | U16Le | S24Le | S32Le | F32Le
    )
}

/// Bytes per sample, for formats with a fixed sample size.
pub fn sample_bytes(format: PcmFormat) -> Option<usize> {
    use PcmFormat::*;
    Some(match format {
        S8 | U8 | MuLaw | ALaw => 1,
        S16Le | S16Be | U16Le | U16Be => 2,
        S24Le | S24Be | U24Le | U24Be | S32Le | S32Be | U32Le | U32Be | F32Le | F32Be => 4,
        Iec958SubframeLe | Iec958SubframeBe => 4,
        F64Le | F64Be => 8,
        ImaAdpcm | Mpeg | Gsm => return None,
    })
}

/// The amplitude factor for a volume in 0.001 dB.
pub fn factor(mdb: i32) -> f64 {
    10f64.powf(f64::from(mdb) / 20_000.0)
}

fn scale_int(v: f64, g: f64, min: f64, max: f64) -> f64 {
    (v * g).round().clamp(min, max)
}

impl Gain {
    /// A stage for frames of `channels` interleaved channels, at unity
    /// (0 dB) and unmuted. With 0 channels it never changes samples.
    pub fn new(channels: usize) -> Self {
        Self {
            volume_mdb: vec![0; channels],
            muted: vec![false; channels],
        }
    }

    /// Number of channels per frame, as given to [`new`](Self::new).
    pub fn channels(&self) -> usize {
        self.volume_mdb.len()
    }

    /// Current volume per channel in 0.001 dB (what GET_VOLUME answers);
    /// mute does not change it.
    pub fn volume(&self) -> &[i32] {
        &self.volume_mdb
    }

    /// Sets the volume per channel, in 0.001 dB, clamped to ±144 dB.
    /// Extra values are ignored; channels without a value keep theirs.
    pub fn set_volume(&mut self, mdb: &[i32]) {
        for (v, &m) in self.volume_mdb.iter_mut().zip(mdb) {
            // Beyond ±144 dB nothing audible changes; bound the maths.
            *v = m.clamp(-144_000, 144_000);
        }
    }

    /// Mutes (or unmutes) the channels whose flag is set.
    pub fn set_mute(&mut self, flags: &[bool], mute: bool) {
        for (m, &f) in self.muted.iter_mut().zip(flags) {
            if f {
                *m = mute;
            }
        }
    }

    /// Whether the stage is transparent: every channel at 0 dB and none
    /// muted, so [`apply`](Self::apply) returns without touching samples.
    pub fn is_unity(&self) -> bool {
        self.volume_mdb.iter().all(|&v| v == 0) && !self.muted.iter().any(|&m| m)
    }

    /// Scales interleaved samples in place. Partial trailing frames are
    /// scaled as far as they go.
    pub fn apply(&self, format: PcmFormat, data: &mut [u8]) {
        if self.is_unity() || !supports(format) || self.channels() == 0 {
            return;
        }
        let gains: Vec<f64> = self
            .volume_mdb
            .iter()
            .zip(&self.muted)
            .map(|(&v, &m)| if m { 0.0 } else { factor(v) })
            .collect();
        let Some(size) = sample_bytes(format) else {
            return;
        };
        for (i, s) in data.chunks_exact_mut(size).enumerate() {
            let g = gains[i % gains.len()];
            use PcmFormat::*;
            match format {
                S8 => s[0] = scale_int(f64::from(s[0] as i8), g, -128.0, 127.0) as i8 as u8,
                U8 => s[0] = (scale_int(f64::from(s[0]) - 128.0, g, -128.0, 127.0) + 128.0) as u8,
                S16Le => {
                    let v = scale_int(
                        f64::from(i16::from_le_bytes([s[0], s[1]])),
                        g,
                        -32768.0,
                        32767.0,
                    );
                    s.copy_from_slice(&(v as i16).to_le_bytes());
                }
                S16Be => {
                    let v = scale_int(
                        f64::from(i16::from_be_bytes([s[0], s[1]])),
                        g,
                        -32768.0,
                        32767.0,
                    );
                    s.copy_from_slice(&(v as i16).to_be_bytes());
                }
                U16Le => {
                    let raw = f64::from(u16::from_le_bytes([s[0], s[1]])) - 32768.0;
                    let v = scale_int(raw, g, -32768.0, 32767.0) + 32768.0;
                    s.copy_from_slice(&(v as u16).to_le_bytes());
                }
                S24Le => {
                    // 24 significant bits in the low bytes of 32, sign-extended.
                    let raw = i32::from_le_bytes([s[0], s[1], s[2], s[3]]) << 8 >> 8;
                    let v = scale_int(f64::from(raw), g, -8_388_608.0, 8_388_607.0) as i32;
                    s.copy_from_slice(&(v & 0x00ff_ffff).to_le_bytes());
                }
                S32Le => {
                    let raw = i32::from_le_bytes([s[0], s[1], s[2], s[3]]);
                    let v = scale_int(f64::from(raw), g, f64::from(i32::MIN), f64::from(i32::MAX));
                    s.copy_from_slice(&(v as i32).to_le_bytes());
                }
                F32Le => {
                    let v = f32::from_le_bytes([s[0], s[1], s[2], s[3]]) * g as f32;
                    s.copy_from_slice(&v.to_le_bytes());
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn mute_and_volume_s16() {
        let mut g = Gain::new(2);
        let frames: Vec<u8> = [1000i16, -1000, 32767, -32768]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let mut d = frames.clone();
        g.apply(PcmFormat::S16Le, &mut d);
        assert_eq!(d, frames, "unity is bit-exact");
        g.set_volume(&[-6000, 0]);
        g.set_mute(&[false, true], true);
        g.apply(PcmFormat::S16Le, &mut d);
        let f = factor(-6000);
        let want: Vec<u8> = [
            (1000.0 * f).round() as i16,
            0,
            (32767.0 * f).round() as i16,
            0,
        ]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
        assert_eq!(d, want);
        g.set_mute(&[false, true], false);
        assert!(!g.is_unity());
        g.set_volume(&[0, 0]);
        assert!(g.is_unity());
    }

    #[test]
    fn u8_centre_is_silence() {
        let mut g = Gain::new(1);
        g.set_mute(&[true], true);
        let mut d = vec![0u8, 255, 128];
        g.apply(PcmFormat::U8, &mut d);
        assert_eq!(d, vec![128, 128, 128]);
    }

    proptest! {
        /// Attenuation never increases a sample's magnitude, and any input
        /// length is handled.
        #[test]
        fn attenuation_is_bounded(samples in proptest::collection::vec(any::<i16>(), 0..64), mdb in -144_000i32..=0, odd in any::<bool>()) {
            let mut g = Gain::new(2);
            g.set_volume(&[mdb, mdb]);
            let mut d: Vec<u8> = samples.iter().flat_map(|v| v.to_le_bytes()).collect();
            if odd { d.push(7); }
            g.apply(PcmFormat::S16Le, &mut d);
            for (i, c) in d.chunks_exact(2).enumerate() {
                let v = i16::from_le_bytes([c[0], c[1]]);
                prop_assert!(i32::from(v).abs() <= i32::from(samples[i]).abs());
            }
        }

        #[test]
        fn every_format_survives_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64), mdb in any::<i32>()) {
            for &f in PcmFormat::ALL {
                let mut g = Gain::new(3);
                g.set_volume(&[mdb, 0, mdb]);
                let mut d = bytes.clone();
                g.apply(f, &mut d);
                prop_assert_eq!(d.len(), bytes.len());
            }
        }
    }
}
