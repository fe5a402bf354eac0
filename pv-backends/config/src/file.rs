//! The `pv-backendd` TOML file.

use serde::Deserialize;

/// Which transport the daemon serves devices over.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// `/dev/xen/*` in a Xen driver domain.
    #[default]
    Xen,
    /// In-process loopback (desktop simulator; devices come from `[[guest]]`).
    Loopback,
}

/// `[sound]`: where vsnd streams play, and how much of the driver domain a
/// card may take. Devices are chosen here alone, per (domain, card):
/// nothing a guest writes in xenstore names a device. Fields left out keep
/// the defaults.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct SoundSection {
    /// ALSA device the playback streams of cards with no `[[sound.route]]`
    /// open; `""` refuses them. Capture has no default.
    pub default_device: String,
    /// `[[sound.route]]`: the devices of one card of one domain.
    pub route: Vec<SoundRoute>,
    /// Streams per card.
    pub max_streams: u32,
    /// Largest shared buffer of one stream, in KiB.
    pub max_stream_kib: u32,
    /// Largest shared buffer of one stream, in milliseconds of audio.
    pub max_stream_ms: u32,
    /// Shared buffers of a card's open streams together, in KiB.
    pub max_card_kib: u32,
}

impl Default for SoundSection {
    fn default() -> Self {
        Self {
            default_device: "default".into(),
            route: Vec::new(),
            max_streams: 16,
            max_stream_kib: 256,
            max_stream_ms: 2000,
            max_card_kib: 1024,
        }
    }
}

/// `[[sound.route]]`: one card's devices.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SoundRoute {
    /// The frontend's domain id.
    pub domain: u16,
    /// Its vsnd device number (`device/vsnd/<card>`).
    #[serde(default)]
    pub card: u32,
    /// ALSA device its playback streams open; none: playback refused.
    #[serde(default)]
    pub playback: Option<String>,
    /// ALSA device its capture streams open; none: capture refused.
    #[serde(default)]
    pub capture: Option<String>,
}

/// Where display frames go.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    /// Frames kept in memory (the compositor plugs in its own sink).
    #[default]
    Latest,
    /// Every frame written as a PNG into `png_dir`.
    Png,
}

/// `[display]`: where vdispl/vfb frames go, and how much a frontend may
/// share. Fields left out keep the defaults.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct DisplaySection {
    /// `png` writes every frame into `png_dir` (which it then needs);
    /// `latest` keeps frames in memory.
    pub sink: SinkKind,
    /// Directory the `png` sink writes into.
    pub png_dir: Option<String>,
    /// Largest display buffer a frontend may share, in MiB.
    pub max_buffer_mib: u32,
    /// Display buffers one frontend device may hold at once.
    pub max_buffers: u32,
    /// Display buffers of one frontend device together, in MiB.
    pub max_mapped_mib: u32,
}

impl Default for DisplaySection {
    fn default() -> Self {
        Self {
            sink: SinkKind::Latest,
            png_dir: None,
            max_buffer_mib: 64,
            max_buffers: 8,
            max_mapped_mib: 128,
        }
    }
}

/// `[vkbd]`: how vkbd devices present themselves to frontends. Fields left
/// out keep the defaults.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct InputSection {
    /// Absolute pointer range the frontend sees (width, height).
    pub pointer: [u32; 2],
    /// Touch range the frontend sees (width, height).
    pub touch: [u32; 2],
    /// Touch contacts forwarded.
    pub contacts: u32,
    /// Offer multi-touch to frontends that ask.
    pub multi_touch: bool,
    /// Events kept while a frontend's ring is full.
    pub queue_limit: usize,
}

impl Default for InputSection {
    fn default() -> Self {
        Self {
            pointer: [800, 600],
            touch: [800, 600],
            contacts: 10,
            multi_touch: true,
            queue_limit: 4096,
        }
    }
}

/// `[[input]]`: one evdev device routed to one guest's vkbd.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct InputRoute {
    /// `/dev/input/eventN` (or a `/dev/input/by-path/...` link).
    pub device: String,
    /// Frontend domain that receives its events.
    pub domain: u16,
    /// vkbd device id in that domain.
    #[serde(default)]
    pub vkbd: u32,
}

/// `[[guest]]`: devices of one frontend domain, in xl.cfg syntax. Used by
/// the loopback simulator, where there is no toolstack to create them.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GuestSection {
    /// The guest's (frontend) domain id; its devices get this backend's
    /// `domain` as their backend.
    pub domain: u16,
    /// xl.cfg text (`vsnd = [...]`, `vdispl = [...]`, `vkb = [...]`).
    #[serde(default)]
    pub xl: Option<String>,
    /// Or a path to an xl.cfg file.
    #[serde(default)]
    pub xl_file: Option<String>,
}

/// The whole file.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// Our own domain id.
    #[serde(default)]
    pub domain: u16,
    /// `transport`: Xen's devices (the default) or the in-process loopback.
    #[serde(default)]
    pub transport: TransportKind,
    /// `[sound]`; ALSA's `default` device and no routes when absent.
    #[serde(default)]
    pub sound: SoundSection,
    /// `[display]`; the in-memory sink and 64 MiB buffers when absent.
    #[serde(default)]
    pub display: DisplaySection,
    /// `[vkbd]`: what vkbd devices offer frontends.
    #[serde(default)]
    pub vkbd: InputSection,
    /// `[[input]]` entries, in file order; none means vkbd devices get no
    /// input source.
    #[serde(default)]
    pub input: Vec<InputRoute>,
    /// `[[guest]]` entries, in file order (loopback simulator only).
    #[serde(default)]
    pub guest: Vec<GuestSection>,
    /// The device kinds this process serves (`vsnd`, `vdispl`, `vfb`,
    /// `vkbd`, `vinput`); every kind when left out. A driver domain whose
    /// compositor serves the displays and input gives pv-backendd only
    /// `["vsnd"]`, so sound outlives a compositor restart.
    #[serde(default)]
    pub serve: Vec<String>,
}

/// The device kinds a backend process can serve.
pub const DEVICE_KINDS: [&str; 5] = ["vsnd", "vdispl", "vfb", "vkbd", "vinput"];

impl BackendConfig {
    /// Parses the TOML text; errors name the line and field at fault.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let cfg: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        if cfg.display.sink == SinkKind::Png && cfg.display.png_dir.is_none() {
            return Err("[display] sink = \"png\" needs png_dir".into());
        }
        for (i, r) in cfg.sound.route.iter().enumerate() {
            if cfg.sound.route[..i]
                .iter()
                .any(|o| (o.domain, o.card) == (r.domain, r.card))
            {
                return Err(format!(
                    "[[sound.route]]: domain {} card {} is routed twice",
                    r.domain, r.card
                ));
            }
        }
        if let Some(k) = cfg.serve.iter().find(|k| !DEVICE_KINDS.contains(&k.as_str())) {
            return Err(format!("serve: unknown device kind {k:?}; the kinds are {}", DEVICE_KINDS.join(", ")));
        }
        Ok(cfg)
    }

    /// Whether this process serves device kind `kind`.
    pub fn serves(&self, kind: &str) -> bool {
        self.serve.is_empty() || self.serve.iter().any(|k| k == kind)
    }

    /// The `[[sound.route]]` of `domain`'s card `card`, if any.
    pub fn sound_route(&self, domain: u16, card: u32) -> Option<&SoundRoute> {
        self.sound
            .route
            .iter()
            .find(|r| r.domain == domain && r.card == card)
    }

    /// Input devices routed to `domain`'s vkbd `id`.
    pub fn inputs_for(&self, domain: u16, id: u32) -> Vec<&InputRoute> {
        self.input
            .iter()
            .filter(|r| r.domain == domain && r.vkbd == id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_file() {
        let c = BackendConfig::from_toml(
            r#"
            domain = 0
            transport = "loopback"
            [sound]
            default_device = "plughw:0,0"
            [[sound.route]]
            domain = 2
            playback = "hw:1,0"
            [display]
            sink = "png"
            png_dir = "/tmp/frames"
            [[input]]
            device = "/dev/input/event3"
            domain = 1
            [[input]]
            device = "/dev/input/event4"
            domain = 2
            vkbd = 1
            [[guest]]
            domain = 1
            xl = "vdispl = [ 'connectors=c0:800x480' ]"
            "#,
        )
        .unwrap();
        assert_eq!(c.transport, TransportKind::Loopback);
        assert_eq!(
            c.sound_route(2, 0).unwrap().playback.as_deref(),
            Some("hw:1,0")
        );
        assert_eq!(c.sound_route(2, 0).unwrap().capture, None);
        assert!(c.sound_route(2, 1).is_none());
        assert_eq!(c.display.sink, SinkKind::Png);
        assert_eq!(c.inputs_for(2, 1)[0].device, "/dev/input/event4");
        assert!(c.inputs_for(2, 0).is_empty());
        assert_eq!(c.display.max_buffer_mib, 64);
    }

    #[test]
    fn errors_name_the_field() {
        let e = BackendConfig::from_toml("domain = 0\n[display]\nsinc = \"png\"\n").unwrap_err();
        assert!(e.contains("sinc"), "{e}");
        let e = BackendConfig::from_toml("transport = \"kvm\"").unwrap_err();
        assert!(e.contains("kvm") || e.contains("variant"), "{e}");
        assert_eq!(
            BackendConfig::from_toml("").unwrap(),
            BackendConfig::default()
        );
        // Unknown sinks and a png sink with nowhere to write are errors,
        // not a silent fall-back to the in-memory sink.
        let e = BackendConfig::from_toml("[display]\nsink = \"pgn\"\n").unwrap_err();
        assert!(e.contains("pgn"), "{e}");
        let e = BackendConfig::from_toml("[display]\nsink = \"png\"\n").unwrap_err();
        assert!(e.contains("png_dir"), "{e}");
        // The old unique-id keyed routes are gone: naming them is an error.
        let e = BackendConfig::from_toml("[sound]\nroutes = { nav = \"hw:1,0\" }\n").unwrap_err();
        assert!(e.contains("routes"), "{e}");
        let e = BackendConfig::from_toml(
            "[[sound.route]]\ndomain = 1\n[[sound.route]]\ndomain = 1\ncard = 0\n",
        )
        .unwrap_err();
        assert!(e.contains("domain 1 card 0 is routed twice"), "{e}");
        let c = BackendConfig::from_toml("[vkbd]\npointer = [800, 480]\ncontacts = 2\n").unwrap();
        assert_eq!(
            (c.vkbd.pointer, c.vkbd.contacts, c.vkbd.touch),
            ([800, 480], 2, [800, 600])
        );
    }

    #[test]
    fn serve_picks_the_kinds_a_process_serves() {
        let all = BackendConfig::from_toml("").unwrap();
        assert!(DEVICE_KINDS.iter().all(|k| all.serves(k)));
        let sound = BackendConfig::from_toml("serve = [\"vsnd\"]").unwrap();
        assert!(sound.serves("vsnd") && !sound.serves("vdispl") && !sound.serves("vkbd"));
        let e = BackendConfig::from_toml("serve = [\"vsound\"]").unwrap_err();
        assert!(e.contains("\"vsound\"") && e.contains("vsnd, vdispl"), "{e}");
    }
}
