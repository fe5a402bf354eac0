//! The stream tree under a vsnd frontend directory:
//! `<card>/<pcm-idx>/<stream-idx>/`, with `sample-rates`,
//! `sample-formats`, `channels-min/max` and `buffer-size` allowed at card,
//! PCM and stream level. A lower level narrows the one above (values are
//! intersected), so a stream never allows what its card forbids.
//!
//! Shared by the frontend and the backend, so both read it alike.

use alloc::string::String;
use alloc::vec::Vec;

use pv_transport::xenbus;
use pv_transport::{Error, Result, Xenstore};
use xen_abi::io::sndif::{field, PcmFormat, STREAM_TYPE_CAPTURE, STREAM_TYPE_PLAYBACK};

// Linux's defaults when a node is absent anywhere in the tree.

/// Sample rates (Hz) allowed when no level sets `sample-rates`.
pub const DEFAULT_RATES: &[u32] = &[5512, 8000, 11025, 16000, 22050, 32000, 44100, 48000];
/// Formats allowed when no level sets `sample-formats`.
pub const DEFAULT_FORMATS: &[PcmFormat] = &[PcmFormat::U8, PcmFormat::S16Le];
/// Buffer limit in bytes when no level sets `buffer-size` (64 KiB).
pub const DEFAULT_BUFFER_SIZE: u32 = 65536;

/// What a stream allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamConfig {
    /// Allowed sample rates in Hz, sorted, without duplicates.
    pub rates: Vec<u32>,
    /// Allowed sample formats, without duplicates.
    pub formats: Vec<PcmFormat>,
    /// Fewest channels.
    pub channels_min: u32,
    /// Most channels.
    pub channels_max: u32,
    /// Largest buffer, in bytes.
    pub buffer_size: u32,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            rates: DEFAULT_RATES.to_vec(),
            formats: DEFAULT_FORMATS.to_vec(),
            channels_min: 1,
            channels_max: 2,
            buffer_size: DEFAULT_BUFFER_SIZE,
        }
    }
}

/// One stream of the card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamInfo {
    /// Index of the PCM device it belongs to (`<pcm-idx>`).
    pub pcm: u32,
    /// Index of the stream within its PCM device (`<stream-idx>`).
    pub index: u32,
    /// Absolute xenstore directory of the stream.
    pub dir: String,
    /// `true` for playback (type "p"), `false` for capture ("c").
    pub playback: bool,
    /// The stream's `unique-id`, or empty if unset.
    pub unique_id: String,
    /// The PCM device's `name`, or empty if unset.
    pub pcm_name: String,
    /// What the stream allows after narrowing through card and PCM levels.
    pub cfg: StreamConfig,
}

/// Parses a `sample-rates` value ("8000,44100,48000").
pub fn parse_rates(text: &str) -> Result<Vec<u32>> {
    let mut v = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let r = xen_abi::io::wire::parse_decimal(item.as_bytes())
            .map_err(|_| Error::Invalid("sample-rates"))?;
        if r == 0 {
            return Err(Error::Invalid("sample-rates"));
        }
        v.push(r);
    }
    if v.is_empty() {
        return Err(Error::Invalid("sample-rates"));
    }
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

/// Parses a `sample-formats` value ("s16_le,float_le").
pub fn parse_formats(text: &str) -> Result<Vec<PcmFormat>> {
    let mut v = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let f = PcmFormat::from_name(item).ok_or(Error::Invalid("sample-formats"))?;
        if !v.contains(&f) {
            v.push(f);
        }
    }
    if v.is_empty() {
        return Err(Error::Invalid("sample-formats"));
    }
    Ok(v)
}

fn opt_string(xs: &dyn Xenstore, path: &str) -> Result<Option<String>> {
    match xenbus::read_string(xs, path) {
        Ok(s) => Ok(Some(s)),
        Err(Error::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

fn opt_u32(xs: &dyn Xenstore, path: &str) -> Result<Option<u32>> {
    match xenbus::read_u32(xs, path) {
        Ok(v) => Ok(Some(v)),
        Err(Error::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Applies the nodes of one level on top of `cfg`.
fn narrow(xs: &dyn Xenstore, dir: &str, cfg: &mut StreamConfig, top: bool) -> Result<()> {
    if let Some(t) = opt_string(xs, &xenbus::join(dir, field::SAMPLE_RATES))? {
        let r = parse_rates(&t)?;
        cfg.rates = if top {
            r
        } else {
            cfg.rates
                .iter()
                .copied()
                .filter(|x| r.contains(x))
                .collect()
        };
    }
    if let Some(t) = opt_string(xs, &xenbus::join(dir, field::SAMPLE_FORMATS))? {
        let f = parse_formats(&t)?;
        cfg.formats = if top {
            f
        } else {
            cfg.formats
                .iter()
                .copied()
                .filter(|x| f.contains(x))
                .collect()
        };
    }
    if let Some(v) = opt_u32(xs, &xenbus::join(dir, field::CHANNELS_MIN))? {
        cfg.channels_min = if top { v } else { cfg.channels_min.max(v) };
    }
    if let Some(v) = opt_u32(xs, &xenbus::join(dir, field::CHANNELS_MAX))? {
        cfg.channels_max = if top { v } else { cfg.channels_max.min(v) };
    }
    if let Some(v) = opt_u32(xs, &xenbus::join(dir, field::BUFFER_SIZE))? {
        cfg.buffer_size = if top { v } else { cfg.buffer_size.min(v) };
    }
    Ok(())
}

/// Reads every stream under the card directory `card`. Malformed values,
/// an unknown stream type, or a configuration that allows nothing are
/// errors.
pub fn read_streams(xs: &dyn Xenstore, card: &str) -> Result<Vec<StreamInfo>> {
    let mut base = StreamConfig::default();
    narrow(xs, card, &mut base, true)?;
    let mut out = Vec::new();
    for pcm in xenbus::numbered_children(xs, card)? {
        let pdir = xenbus::join(card, &alloc::format!("{pcm}"));
        let mut pcfg = base.clone();
        narrow(xs, &pdir, &mut pcfg, false)?;
        let pcm_name =
            opt_string(xs, &xenbus::join(&pdir, field::DEVICE_NAME))?.unwrap_or_default();
        for index in xenbus::numbered_children(xs, &pdir)? {
            let dir = xenbus::join(&pdir, &alloc::format!("{index}"));
            let mut cfg = pcfg.clone();
            narrow(xs, &dir, &mut cfg, false)?;
            let kind = xenbus::read_string(xs, &xenbus::join(&dir, field::TYPE))?;
            let playback = match kind.as_str() {
                STREAM_TYPE_PLAYBACK => true,
                STREAM_TYPE_CAPTURE => false,
                _ => return Err(Error::Invalid("stream type")),
            };
            if cfg.rates.is_empty()
                || cfg.formats.is_empty()
                || cfg.channels_min == 0
                || cfg.channels_min > cfg.channels_max
                || cfg.buffer_size == 0
            {
                return Err(Error::Invalid("stream configuration allows nothing"));
            }
            let unique_id =
                opt_string(xs, &xenbus::join(&dir, field::UNIQUE_ID))?.unwrap_or_default();
            out.push(StreamInfo {
                pcm,
                index,
                dir,
                playback,
                unique_id,
                pcm_name: pcm_name.clone(),
                cfg,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use pv_transport::loopback::Loopback;

    #[test]
    fn tree_with_inheritance() {
        let lb = Loopback::new();
        let xs = lb.xenstore(0);
        let c = "/local/domain/1/device/vsnd/0";
        for (k, v) in [
            ("sample-rates", "8000,44100,48000"),
            ("sample-formats", "s16_le,float_le"),
            ("channels-max", "6"),
            ("0/name", "main"),
            ("0/channels-max", "2"),
            ("0/0/type", "p"),
            ("0/0/unique-id", "alsa<hw:0;0>"),
            ("0/0/sample-rates", "48000,96000"),
            ("0/1/type", "c"),
            ("0/1/buffer-size", "4096"),
        ] {
            xs.write(&alloc::format!("{c}/{k}"), v.as_bytes()).unwrap();
        }
        let s = read_streams(&*xs, c).unwrap();
        assert_eq!(s.len(), 2);
        assert!(s[0].playback && !s[1].playback);
        assert_eq!(s[0].unique_id, "alsa<hw:0;0>");
        assert_eq!(
            s[0].cfg.rates,
            alloc::vec![48000],
            "96000 is not allowed by the card"
        );
        assert_eq!(
            s[0].cfg.formats,
            alloc::vec![PcmFormat::S16Le, PcmFormat::F32Le]
        );
        assert_eq!((s[0].cfg.channels_min, s[0].cfg.channels_max), (1, 2));
        assert_eq!(s[1].cfg.buffer_size, 4096);
        assert_eq!(s[1].pcm_name, "main");
        xs.write(&alloc::format!("{c}/0/1/type"), b"x").unwrap();
        assert!(read_streams(&*xs, c).is_err());
        xs.write(&alloc::format!("{c}/0/1/type"), b"c").unwrap();
        xs.write(&alloc::format!("{c}/0/1/sample-rates"), b"8000,abc")
            .unwrap();
        assert!(read_streams(&*xs, c).is_err());
    }

    proptest! {
        #[test]
        fn list_parsers_total(text in ".{0,80}") {
            if let Ok(r) = parse_rates(&text) {
                prop_assert!(!r.is_empty() && r.windows(2).all(|w| w[0] < w[1]));
            }
            if let Ok(f) = parse_formats(&text) {
                prop_assert!(!f.is_empty());
            }
        }

        #[test]
        fn rates_round_trip(rates in proptest::collection::btree_set(1u32..400_000, 1..10)) {
            let text: Vec<String> = rates.iter().map(|r| alloc::format!("{r}")).collect();
            let parsed = parse_rates(&text.join(",")).unwrap();
            prop_assert_eq!(parsed, rates.into_iter().collect::<Vec<_>>());
        }
    }
}
