//! What the run's output is checked against: input events the domU's
//! probe logged, the framebuffer the display sink received, the audio the
//! vsnd backend played into dom0's ALSA `file` plugin.

/// One named check and what was seen.
#[derive(Clone, Debug)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

impl Check {
    pub fn new(name: &'static str, r: Result<String, String>) -> Self {
        match r {
            Ok(detail) => Check { name, ok: true, detail },
            Err(detail) => Check { name, ok: false, detail },
        }
    }
}

/// The framebuffer test pattern, as the probe draws it
/// (samples/interop/probe/src/pattern.rs): pixel (x, y) as 0x00RRGGBB.
pub fn pattern_rgb(x: u32, y: u32) -> u32 {
    let r = (x.wrapping_mul(3) ^ y) & 0xff;
    let g = (y.wrapping_mul(5).wrapping_add(x / 7)) & 0xff;
    let b = ((x / 16) ^ (y / 16) ^ 0xa5) & 0xff;
    (r << 16) | (g << 8) | b
}

/// Frame `k` of the Rust vdispl guest (hypervisor/guests/src/bin/vdispl.rs),
/// pixel (x, y) as 0x00RRGGBB: every channel moves from frame to frame.
pub fn panel_rgb(x: u32, y: u32, k: u32) -> u32 {
    let r = (x * 7 + k * 31) & 0xff;
    let g = (y * 5 + k * 17) & 0xff;
    let b = ((x ^ y) + k * 61) & 0xff;
    (r << 16) | (g << 8) | b
}

/// Compares an RGBA image with the framebuffer pattern, every pixel.
pub fn check_pattern(rgba: &[u8], w: u32, h: u32) -> Result<String, String> {
    check_image(rgba, w, h, pattern_rgb)
}

/// Compares an RGBA image with `want(x, y)` (0x00RRGGBB), every pixel.
pub fn check_image(rgba: &[u8], w: u32, h: u32, want_rgb: impl Fn(u32, u32) -> u32) -> Result<String, String> {
    if rgba.len() != (w * h * 4) as usize {
        return Err(format!("{} bytes of RGBA, expected {w}x{h}", rgba.len()));
    }
    let mut bad = 0u64;
    let mut first = None;
    for y in 0..h {
        for x in 0..w {
            let i = ((y * w + x) * 4) as usize;
            let v = want_rgb(x, y);
            let want = [(v >> 16) as u8, (v >> 8) as u8, v as u8, 255];
            if rgba[i..i + 4] != want {
                bad += 1;
                first.get_or_insert((x, y, rgba[i..i + 4].to_vec(), want));
            }
        }
    }
    match first {
        None => Ok(format!("{w}x{h}: all {} pixels match", w * h)),
        Some((x, y, got, want)) => Err(format!("{bad} of {} pixels differ; first at ({x},{y}): {got:?}, expected {want:?}", w * h)),
    }
}

/// One `probe: ev <node> <type> <code> <value>` line of the domU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ev {
    pub kind: u16,
    pub code: u16,
    pub value: i32,
}

/// An absolute axis: code, minimum, maximum.
pub type Axis = (u16, i32, i32);

/// The domU's input devices (`probe: input <node> "<name>" absN=min..max`):
/// node, name, axes.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    pub devices: Vec<(String, String, Vec<Axis>)>,
}

impl Inputs {
    pub fn parse(lines: &[&str]) -> Self {
        let mut devices = Vec::new();
        for l in lines {
            let Some(rest) = l.split("probe: input ").nth(1) else { continue };
            let Some((node, rest)) = rest.split_once(' ') else { continue };
            let Some(name) = rest.strip_prefix('"').and_then(|r| r.split('"').next()) else { continue };
            let axes = rest
                .split_whitespace()
                .filter_map(|w| {
                    let (a, r) = w.strip_prefix("abs")?.split_once('=')?;
                    let (lo, hi) = r.split_once("..")?;
                    Some((a.parse().ok()?, lo.parse().ok()?, hi.parse().ok()?))
                })
                .collect();
            devices.push((node.to_string(), name.to_string(), axes));
        }
        Inputs { devices }
    }

    pub fn node(&self, name: &str) -> Option<&str> {
        self.devices.iter().find(|d| d.1 == name).map(|d| d.0.as_str())
    }

    pub fn range(&self, name: &str, axis: u16) -> Option<(i32, i32)> {
        let d = self.devices.iter().find(|d| d.1 == name)?;
        d.2.iter().find(|a| a.0 == axis).map(|a| (a.1, a.2))
    }
}

/// Events logged for `node`.
pub fn events(lines: &[&str], node: &str) -> Vec<Ev> {
    let tag = format!("probe: ev {node} ");
    lines
        .iter()
        .filter_map(|l| {
            let rest = l.split(&tag).nth(1)?;
            let v: Vec<i64> = rest.split_whitespace().filter_map(|w| w.parse().ok()).collect();
            (v.len() == 3).then(|| Ev { kind: v[0] as u16, code: v[1] as u16, value: v[2] as i32 })
        })
        .collect()
}

/// The position a device value `v` in `0..=dev_max` should have on a
/// frontend axis of `size` pixels (0..=size-1), rounded to nearest.
pub fn scaled(v: i32, dev_max: i32, size: u32) -> i32 {
    (f64::from(v) * f64::from(size - 1) / f64::from(dev_max)).round() as i32
}

/// Whether `want` occurs in `got` in order (other events may come between).
pub fn in_order(got: &[Ev], want: &[Ev]) -> Result<(), String> {
    let mut it = got.iter();
    for w in want {
        if !it.any(|g| g == w) {
            return Err(format!("missing {w:?} (in order) among {} events: {got:?}", got.len()));
        }
    }
    Ok(())
}

pub const EV_KEY: u16 = 1;
pub const EV_ABS: u16 = 3;
pub const ABS_X: u16 = 0;
pub const ABS_Y: u16 = 1;
pub const ABS_MT_SLOT: u16 = 47;
pub const ABS_MT_TOUCH_MAJOR: u16 = 48;
pub const ABS_MT_POSITION_X: u16 = 53;
pub const ABS_MT_POSITION_Y: u16 = 54;
pub const ABS_MT_TRACKING_ID: u16 = 57;

/// Multi-touch contacts as (slot, x, y) positions reported, in order, and
/// slots lifted (tracking id -1), following ABS_MT_SLOT.
pub fn mt_positions(evs: &[Ev]) -> (Vec<(i32, i32, i32)>, Vec<i32>) {
    let (mut slot, mut x, mut y) = (0, None, None);
    let (mut pos, mut lifted) = (Vec::new(), Vec::new());
    let flush = |slot: i32, x: &mut Option<i32>, y: &mut Option<i32>, pos: &mut Vec<(i32, i32, i32)>| {
        if x.is_some() || y.is_some() {
            pos.push((slot, x.unwrap_or(-1), y.unwrap_or(-1)));
        }
        *x = None;
        *y = None;
    };
    for e in evs.iter().filter(|e| e.kind == EV_ABS) {
        match (e.kind, e.code) {
            (EV_ABS, ABS_MT_SLOT) => {
                flush(slot, &mut x, &mut y, &mut pos);
                slot = e.value;
            }
            // A coordinate seen twice for one slot starts its next frame.
            (EV_ABS, ABS_MT_POSITION_X) => {
                if x.is_some() {
                    flush(slot, &mut x, &mut y, &mut pos);
                }
                x = Some(e.value)
            }
            (EV_ABS, ABS_MT_POSITION_Y) => {
                if y.is_some() {
                    flush(slot, &mut x, &mut y, &mut pos);
                }
                y = Some(e.value)
            }
            (EV_ABS, ABS_MT_TRACKING_ID) if e.value == -1 => lifted.push(slot),
            _ => {}
        }
    }
    flush(slot, &mut x, &mut y, &mut pos);
    (pos, lifted)
}

/// A WAV file's format and samples (16-bit PCM only).
pub struct Wav {
    pub rate: u32,
    pub channels: u16,
    pub bits: u16,
    pub data: Vec<u8>,
}

/// Parses RIFF/WAVE; a data chunk whose length was never patched (a file
/// still being written) runs to the end of the file.
pub fn parse_wav(b: &[u8]) -> Result<Wav, String> {
    if b.len() < 12 || &b[0..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file".into());
    }
    let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let (mut i, mut fmt) = (12, None);
    while i + 8 <= b.len() {
        let (id, len) = (&b[i..i + 4], u32_at(i + 4) as usize);
        let body = i + 8;
        if id == b"fmt " && body + 16 <= b.len() {
            fmt = Some((u16_at(body), u16_at(body + 2), u32_at(body + 4), u16_at(body + 14)));
        } else if id == b"data" {
            let (tag, channels, rate, bits) = fmt.ok_or("data before fmt")?;
            if tag != 1 {
                return Err(format!("WAV format tag {tag}, expected PCM"));
            }
            let end = if len == 0 || body + len > b.len() { b.len() } else { body + len };
            return Ok(Wav { rate, channels, bits, data: b[body..end].to_vec() });
        }
        i = body + len + (len & 1);
    }
    Err("no data chunk".into())
}

/// Checks recorded audio against the tone the domU played: format, the
/// tone's samples found bit-exactly, its frequency and duration measured
/// on the recording.
pub fn check_tone(rec: &Wav, tone: &Wav, freq: f64) -> Result<String, String> {
    if (rec.rate, rec.channels, rec.bits) != (tone.rate, tone.channels, tone.bits) {
        return Err(format!(
            "recorded {} Hz {} ch {} bit, played {} Hz {} ch {} bit",
            rec.rate, rec.channels, rec.bits, tone.rate, tone.channels, tone.bits
        ));
    }
    let frame = usize::from(rec.channels) * 2;
    let ch0: Vec<i16> = rec.data.chunks_exact(frame).map(|f| i16::from_le_bytes([f[0], f[1]])).collect();
    let loud: Vec<usize> = ch0.iter().enumerate().filter(|(_, v)| v.unsigned_abs() > 1000).map(|(i, _)| i).collect();
    let (Some(&a), Some(&z)) = (loud.first(), loud.last()) else {
        return Err(format!("{} frames recorded, all silent", ch0.len()));
    };
    let secs = (z - a + 1) as f64 / f64::from(rec.rate);
    let crossings = ch0[a..=z].windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    let measured = crossings as f64 / 2.0 / secs;
    let want_secs = tone.data.len() as f64 / frame as f64 / f64::from(tone.rate);
    let exact = rec.data.windows(tone.data.len()).any(|w| w == tone.data.as_slice());
    let detail = format!(
        "{} frames recorded; tone {measured:.1} Hz over {secs:.3} s (played {freq} Hz, {want_secs:.3} s); samples bit-exact: {exact}",
        ch0.len()
    );
    // The loud span misses at most the quiet edges of the first and last
    // half-period; a dropped or repeated period would show as ~20 ms.
    if (measured - freq).abs() > freq * 0.005 || (secs - want_secs).abs() > 2.0 / freq || !exact {
        return Err(detail);
    }
    Ok(detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_rounds_to_the_frontend_size() {
        assert_eq!(scaled(32767, 32767, 1024), 1023);
        assert_eq!(scaled(16384, 32767, 1024), 512);
        assert_eq!(scaled(0, 9999, 1280), 0);
        assert_eq!(scaled(1000, 9999, 1280), 128);
    }

    #[test]
    fn wav_round_trip_and_tone_check() {
        let bytes = super::super::images::tone_wav(48_000, 1000.0, 250);
        let w = parse_wav(&bytes).unwrap();
        assert_eq!((w.rate, w.channels, w.bits, w.data.len()), (48_000, 2, 16, 12_000 * 4));
        // A recording with silence around the tone passes; a truncated one fails.
        let mut rec = vec![0u8; 4 * 480];
        rec.extend_from_slice(&w.data);
        rec.extend(vec![0u8; 4 * 960]);
        let r = Wav { rate: 48_000, channels: 2, bits: 16, data: rec };
        check_tone(&r, &w, 1000.0).unwrap();
        let short = Wav { rate: 48_000, channels: 2, bits: 16, data: w.data[..w.data.len() / 2].to_vec() };
        assert!(check_tone(&short, &w, 1000.0).is_err());
    }

    #[test]
    fn mt_slots_follow_slot_events() {
        let e = |kind, code, value| Ev { kind, code, value };
        let evs = [
            e(EV_ABS, ABS_MT_SLOT, 0),
            e(EV_ABS, ABS_MT_TRACKING_ID, 5),
            e(EV_ABS, ABS_MT_POSITION_X, 10),
            e(EV_ABS, ABS_MT_POSITION_Y, 20),
            e(EV_ABS, ABS_MT_SLOT, 1),
            e(EV_ABS, ABS_MT_POSITION_X, 30),
            e(EV_ABS, ABS_MT_POSITION_Y, 40),
            e(EV_ABS, ABS_MT_TRACKING_ID, -1),
        ];
        let (pos, lifted) = mt_positions(&evs);
        assert_eq!(pos, vec![(0, 10, 20), (1, 30, 40)]);
        assert_eq!(lifted, vec![1]);
    }

    #[test]
    fn probe_lines_parse() {
        let lines = [
            "[domU] probe: input event1 \"Xen Virtual Pointer\" abs0=0..1024 abs1=0..768",
            "[domU] probe: ev event1 3 0 512",
            "[domU] probe: ev event2 1 30 1",
        ];
        let i = Inputs::parse(&lines);
        assert_eq!(i.node("Xen Virtual Pointer"), Some("event1"));
        assert_eq!(i.range("Xen Virtual Pointer", 1), Some((0, 768)));
        assert_eq!(events(&lines, "event1"), vec![Ev { kind: 3, code: 0, value: 512 }]);
    }
}
