//! Where a card's streams play and record: fixed by the daemon's
//! configuration for (frontend domain, card number) before the frontend
//! says anything. Nothing the frontend writes (its `unique-id`s, stream
//! names) ever picks or names a device, so a guest can neither open
//! another guest's device nor hand ALSA a device string of its own (ALSA's
//! `file` plugin would write anywhere, or run a shell command).

use std::collections::HashMap;

/// The devices of one card.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CardRoute {
    /// ALSA device its playback streams open; `None`: playback refused.
    pub playback: Option<String>,
    /// ALSA device its capture streams open; `None`: capture refused.
    pub capture: Option<String>,
}

impl CardRoute {
    /// The device for a stream of this direction, if any is configured.
    pub fn device(&self, playback: bool) -> Option<&str> {
        if playback { self.playback.as_deref() } else { self.capture.as_deref() }
    }
}

/// Routes of every (domain, card) the daemon serves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Router {
    routes: HashMap<(u16, u32), CardRoute>,
    /// Playback device of cards with no route of their own. Capture has no
    /// default: a guest listens to a microphone only where configured.
    pub default_playback: Option<String>,
}

impl Router {
    /// No routes; cards without one play on `default_playback`.
    pub fn new(default_playback: Option<String>) -> Self {
        Self { routes: HashMap::new(), default_playback }
    }

    /// Routes card `card` of domain `domain`.
    pub fn insert(&mut self, domain: u16, card: u32, route: CardRoute) {
        self.routes.insert((domain, card), route);
    }

    /// The devices of card `card` of domain `domain`.
    pub fn card(&self, domain: u16, card: u32) -> CardRoute {
        self.routes
            .get(&(domain, card))
            .cloned()
            .unwrap_or_else(|| CardRoute { playback: self.default_playback.clone(), capture: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_per_domain_and_card_and_capture_has_no_default() {
        let mut r = Router::new(Some("dmix".into()));
        r.insert(1, 0, CardRoute { playback: Some("hw:0,0".into()), capture: Some("hw:0,1".into()) });
        assert_eq!(r.card(1, 0).device(true), Some("hw:0,0"));
        assert_eq!(r.card(1, 0).device(false), Some("hw:0,1"));
        // Another card of the same domain, and another domain: the default
        // playback device, no capture.
        for (d, c) in [(1, 1), (2, 0)] {
            assert_eq!(r.card(d, c).device(true), Some("dmix"));
            assert_eq!(r.card(d, c).device(false), None);
        }
        assert_eq!(Router::new(None).card(3, 0), CardRoute::default());
    }
}
