//! The `pv-backendd` TOML file.

use std::collections::BTreeMap;

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

/// `[sound]`: where vsnd streams play.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SoundSection {
    /// ALSA device for streams with no route.
    #[serde(default = "default_device")]
    pub default_device: String,
    /// Stream `unique-id` → ALSA device.
    #[serde(default)]
    pub routes: BTreeMap<String, String>,
}

fn default_device() -> String {
    "default".into()
}

impl Default for SoundSection {
    fn default() -> Self {
        Self {
            default_device: default_device(),
            routes: BTreeMap::new(),
        }
    }
}

/// `[display]`: where vdispl/vfb frames go.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DisplaySection {
    /// `png` writes every frame into `png_dir`; `latest` keeps frames in
    /// memory (the compositor plugs in its own sink instead).
    #[serde(default = "default_sink")]
    pub sink: String,
    /// Directory the `png` sink writes into; without it `png` falls back
    /// to the in-memory sink.
    #[serde(default)]
    pub png_dir: Option<String>,
    /// Largest display buffer a frontend may share, in MiB.
    #[serde(default = "default_max_buffer")]
    pub max_buffer_mib: u32,
}

fn default_sink() -> String {
    "latest".into()
}

fn default_max_buffer() -> u32 {
    64
}

impl Default for DisplaySection {
    fn default() -> Self {
        Self {
            sink: default_sink(),
            png_dir: None,
            max_buffer_mib: default_max_buffer(),
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
    /// `[[input]]` entries, in file order; none means vkbd devices get no
    /// input source.
    #[serde(default)]
    pub input: Vec<InputRoute>,
    /// `[[guest]]` entries, in file order (loopback simulator only).
    #[serde(default)]
    pub guest: Vec<GuestSection>,
}

impl BackendConfig {
    /// Parses the TOML text; errors name the line and field at fault.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
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
            routes = { nav = "hw:1,0" }
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
        assert_eq!(c.sound.routes["nav"], "hw:1,0");
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
    }
}
