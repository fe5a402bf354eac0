//! A stream's `unique-id` → the ALSA device it plays on.

use std::collections::HashMap;

/// Routing table and fallbacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Router {
    /// Explicit `unique-id` → ALSA PCM name.
    pub routes: HashMap<String, String>,
    /// Used when nothing else matches.
    pub default_device: String,
}

impl Default for Router {
    fn default() -> Self {
        Self {
            routes: HashMap::new(),
            default_device: "default".into(),
        }
    }
}

impl Router {
    /// The table; then snd_be's `alsa<dev>` form, where `;` stands for
    /// the `,` that xl uses as its field separator (`alsa<hw:0;0>` is
    /// `hw:0,0`); then the default device.
    pub fn device_for(&self, unique_id: &str) -> String {
        if let Some(d) = self.routes.get(unique_id) {
            return d.clone();
        }
        if let Some(inner) = unique_id
            .strip_prefix("alsa<")
            .and_then(|s| s.strip_suffix('>'))
        {
            if !inner.is_empty() {
                return inner.replace(';', ",");
            }
        }
        self.default_device.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_order() {
        let mut r = Router::default();
        r.routes.insert("nav".into(), "plughw:1,0".into());
        assert_eq!(r.device_for("nav"), "plughw:1,0");
        assert_eq!(r.device_for("alsa<hw:0;3>"), "hw:0,3");
        assert_eq!(r.device_for("alsa<>"), "default");
        assert_eq!(r.device_for("0b5c2e3a-uuid"), "default");
    }
}
