//! The keyboard's XKB keymap and modifier state.
//!
//! Clients built on toolkits (GTK, Qt, SDL, weston's) turn key codes into
//! characters with the keymap the compositor sends, and track Shift, Ctrl
//! and the locks from its `modifiers` events. The keymap is compiled once
//! by libxkbcommon from the usual `XKB_DEFAULT_RULES`/`MODEL`/`LAYOUT`/
//! `VARIANT`/`OPTIONS` environment (US by default) and handed to every
//! keyboard as one sealed, read-only memfd.
//!
//! Built without the `xkb` feature (the static aarch64 build, which has no
//! static libxkbcommon), or where the keymap cannot be compiled (no
//! xkeyboard-config data), keyboards get `no_keymap` and raw evdev codes,
//! as embedded HMIs reading codes directly expect.

use std::os::fd::{AsFd, OwnedFd};

use wayland_server::protocol::wl_keyboard::{KeymapFormat, WlKeyboard};

/// Modifier state as `wl_keyboard.modifiers` carries it: depressed,
/// latched, locked, group.
pub(crate) type Mods = (u32, u32, u32, u32);

pub(crate) struct Keys {
    /// The keymap text in a sealed memfd, and its size with the NUL.
    map: Option<(OwnedFd, u32)>,
    #[cfg(feature = "xkb")]
    state: Option<xkbcommon::xkb::State>,
    mods: Mods,
}

impl Default for Keys {
    fn default() -> Keys {
        Keys::new()
    }
}

impl Keys {
    #[cfg(feature = "xkb")]
    pub fn new() -> Keys {
        use xkbcommon::xkb;
        let ctx = xkb::Context::new(xkb::CONTEXT_NO_FLAGS);
        // Empty names take the XKB_DEFAULT_* environment, then libxkbcommon's defaults.
        let Some(keymap) = xkb::Keymap::new_from_names(&ctx, "", "", "", "", None, xkb::KEYMAP_COMPILE_NO_FLAGS) else {
            eprintln!("cockpit-wayland: no XKB keymap (is xkb-data installed?); keyboards get raw evdev codes");
            return Keys { map: None, state: None, mods: (0, 0, 0, 0) };
        };
        let text = keymap.get_as_string(xkb::KEYMAP_FORMAT_TEXT_V1);
        let map = match sealed(&text) {
            Ok(m) => Some(m),
            Err(e) => {
                eprintln!("cockpit-wayland: keymap memfd: {e}; keyboards get raw evdev codes");
                None
            }
        };
        let state = map.as_ref().map(|_| xkb::State::new(&keymap));
        Keys { map, state, mods: (0, 0, 0, 0) }
    }

    #[cfg(not(feature = "xkb"))]
    pub fn new() -> Keys {
        Keys { map: None, mods: (0, 0, 0, 0) }
    }

    /// Sends a new keyboard its keymap.
    pub fn send_keymap(&self, k: &WlKeyboard) {
        match &self.map {
            Some((fd, size)) => k.keymap(KeymapFormat::XkbV1, fd.as_fd(), *size),
            None => {
                if let Ok(null) = std::fs::File::open("/dev/null") {
                    k.keymap(KeymapFormat::NoKeymap, null.as_fd(), 0);
                }
            }
        }
    }

    /// The modifiers now.
    pub fn mods(&self) -> Mods {
        self.mods
    }

    /// Feeds evdev key `code`; returns the modifiers if they changed.
    #[cfg(feature = "xkb")]
    pub fn key(&mut self, code: u32, pressed: bool) -> Option<Mods> {
        use xkbcommon::xkb;
        let state = self.state.as_mut()?;
        // XKB key codes are evdev codes plus 8; a code past what XKB can
        // name is not fed (it changes no modifier).
        let kc = code.checked_add(8)?;
        state.update_key(kc.into(), if pressed { xkb::KeyDirection::Down } else { xkb::KeyDirection::Up });
        let now = (
            state.serialize_mods(xkb::STATE_MODS_DEPRESSED),
            state.serialize_mods(xkb::STATE_MODS_LATCHED),
            state.serialize_mods(xkb::STATE_MODS_LOCKED),
            state.serialize_layout(xkb::STATE_LAYOUT_EFFECTIVE),
        );
        (now != self.mods).then(|| {
            self.mods = now;
            now
        })
    }

    #[cfg(not(feature = "xkb"))]
    pub fn key(&mut self, _code: u32, _pressed: bool) -> Option<Mods> {
        None
    }
}

/// `text` and a NUL in a memfd sealed against writing and resizing.
#[cfg(feature = "xkb")]
fn sealed(text: &str) -> std::io::Result<(OwnedFd, u32)> {
    use rustix::fs::{MemfdFlags, SealFlags};
    let fd = rustix::fs::memfd_create("cockpit-keymap", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
    let mut bytes = text.as_bytes().to_vec();
    bytes.push(0);
    let size = u32::try_from(bytes.len()).map_err(|_| std::io::Error::other("keymap too large"))?;
    let mut at = 0;
    while at < bytes.len() {
        at += rustix::io::write(&fd, &bytes[at..])?;
    }
    rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE | SealFlags::SEAL)?;
    Ok((fd, size))
}
