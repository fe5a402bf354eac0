//! `pv-backendd`: one process serving every PV device of its domain.
//!
//! [`supervisor`] turns a [`BackendConfig`] into a [`Supervisor`] that
//! serves `vsnd` (ALSA, with the configured routes), `vdispl` and the
//! legacy `vfb` (the configured sink), `vkbd` and `vinput` (the evdev
//! devices routed to the frontend's domain). [`create_guests`] writes the `[[guest]]` devices
//! (xl.cfg syntax) into xenstore the way libxl would, for the loopback
//! simulator where no toolstack exists.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::sync::Arc;

use pv_backend::toolstack::{create_device, DeviceSpec};
use pv_backend::{DeviceInfo, Supervisor};
use pv_config::{BackendConfig, SinkKind};
use pv_transport::{Platform, Xenstore};
use vdispl_back::{
    DisplaySink, LatestFrameSink, PngSink, VdisplBackend, VdisplConfig, VfbBackend, VfbConfig,
};
use vkbd_back::{EvdevSource, InputSource, VkbdBackend, VkbdConfig};
#[cfg(feature = "sound")]
use vsnd_back::{AlsaAudio, CardRoute, Router, VsndBackend, VsndLimits};

/// The display sink `[display]` asks for.
pub fn make_sink(cfg: &BackendConfig) -> Box<dyn DisplaySink> {
    match (cfg.display.sink, &cfg.display.png_dir) {
        (SinkKind::Png, Some(dir)) => Box::new(PngSink::new(dir.clone())),
        // `BackendConfig::from_toml` refuses png without a directory.
        (SinkKind::Png, None) | (SinkKind::Latest, _) => Box::new(LatestFrameSink::default()),
    }
}

/// `[sound]` as the vsnd backend's router: devices per (domain, card).
#[cfg(feature = "sound")]
pub fn sound_router(cfg: &BackendConfig) -> Router {
    let s = &cfg.sound;
    let mut r = Router::new((!s.default_device.is_empty()).then(|| s.default_device.clone()));
    for route in &s.route {
        r.insert(route.domain, route.card, CardRoute { playback: route.playback.clone(), capture: route.capture.clone() });
    }
    r
}

/// `[sound]`'s quotas for one card.
#[cfg(feature = "sound")]
pub fn sound_limits(cfg: &BackendConfig) -> VsndLimits {
    let s = &cfg.sound;
    VsndLimits {
        max_streams: s.max_streams as usize,
        max_buffer_bytes: s.max_stream_kib.saturating_mul(1024),
        max_buffer_ms: s.max_stream_ms,
        max_card_bytes: u64::from(s.max_card_kib) * 1024,
    }
}

/// `[vkbd]` as the vkbd backend's settings.
pub fn vkbd_config(cfg: &BackendConfig) -> VkbdConfig {
    let v = &cfg.vkbd;
    VkbdConfig {
        width: v.pointer[0],
        height: v.pointer[1],
        mt_width: v.touch[0],
        mt_height: v.touch[1],
        mt_contacts: v.contacts,
        multi_touch: v.multi_touch,
        queue_limit: v.queue_limit,
        ..VkbdConfig::default()
    }
}

/// The evdev devices `[[input]]` routes to this vkbd device.
pub fn input_sources(cfg: &BackendConfig, info: &DeviceInfo) -> Vec<Box<dyn InputSource>> {
    let mut out: Vec<Box<dyn InputSource>> = Vec::new();
    for route in cfg.inputs_for(info.fe_dom, info.dev_id) {
        match EvdevSource::open(&route.device) {
            Ok(s) => out.push(Box::new(s)),
            Err(e) => log::error!("{}: cannot open input {}: {e}", info.be_dir, route.device),
        }
    }
    out
}

/// Makes one display sink per vdispl or vfb device.
pub type SinkFactory = Arc<dyn Fn(&DeviceInfo) -> Box<dyn DisplaySink> + Send + Sync>;

/// Input sources a vkbd device gets besides its `[[input]]` routes (a
/// compositor's routed touches, say).
pub type ExtraInput = Arc<dyn Fn(&DeviceInfo) -> Vec<Box<dyn InputSource>> + Send + Sync>;

/// A supervisor serving the kinds `serve` names (every kind by default)
/// with the configured back ends.
pub fn supervisor(cfg: &BackendConfig, platform: Arc<dyn Platform>) -> Supervisor {
    let mut sup = Supervisor::new(platform);
    #[cfg(feature = "sound")]
    if cfg.serves("vsnd") {
        serve_sound(&mut sup, cfg);
    }
    let c = cfg.clone();
    serve_display_and_input(&mut sup, cfg, Arc::new(move |_: &DeviceInfo| make_sink(&c)), Arc::new(|_: &DeviceInfo| Vec::new()));
    sup
}

#[cfg(feature = "sound")]
fn serve_sound(sup: &mut Supervisor, cfg: &BackendConfig) {
    let (router, limits) = (sound_router(cfg), sound_limits(cfg));
    sup.serve_kind(
        "vsnd",
        Box::new(move |info| {
            let route = router.card(info.fe_dom, info.dev_id);
            if route == CardRoute::default() {
                log::warn!("{}: no sound device is configured for dom{} card {}", info.be_dir, info.fe_dom, info.dev_id);
                return None;
            }
            Some(Box::new(VsndBackend::new(Box::new(AlsaAudio), route, limits.clone())))
        }),
    );
}

/// Serves the display (`vdispl`, `vfb`) and input (`vkbd`, `vinput`) kinds
/// `serve` names, each display device with a sink from `sink`, each input
/// device with its `[[input]]` routes plus `extra`'s sources. One place for
/// pv-backendd and the compositor (which passes itself as the sink).
pub fn serve_display_and_input(sup: &mut Supervisor, cfg: &BackendConfig, sink: SinkFactory, extra: ExtraInput) {
    if cfg.serves("vdispl") {
        let (c, sink) = (cfg.clone(), sink.clone());
        sup.serve_kind("vdispl", Box::new(move |info| Some(Box::new(VdisplBackend::new(vdispl_config(&c), sink(info))))));
    }
    if cfg.serves("vfb") {
        let (c, sink) = (cfg.clone(), sink.clone());
        sup.serve_kind("vfb", Box::new(move |info| Some(Box::new(VfbBackend::new(vfb_config(&c), sink(info))))));
    }
    for kind in ["vkbd", "vinput"] {
        if !cfg.serves(kind) {
            continue;
        }
        let (c, extra) = (cfg.clone(), extra.clone());
        sup.serve_kind(
            kind,
            Box::new(move |info| {
                let mut sources = input_sources(&c, info);
                sources.extend(extra(info));
                if sources.is_empty() {
                    log::warn!("{}: no input device routed to dom{}", info.be_dir, info.fe_dom);
                }
                Some(Box::new(VkbdBackend::new(vkbd_config(&c), sources)))
            }),
        );
    }
}

/// `[display]`'s quotas for one vdispl device.
pub fn vdispl_config(cfg: &BackendConfig) -> VdisplConfig {
    VdisplConfig {
        max_buffer_size: cfg.display.max_buffer_mib.saturating_mul(1 << 20),
        max_buffers: cfg.display.max_buffers,
        max_mapped_bytes: u64::from(cfg.display.max_mapped_mib) << 20,
        ..Default::default()
    }
}

/// `[display]`'s quota for one vfb device.
pub fn vfb_config(cfg: &BackendConfig) -> VfbConfig {
    VfbConfig { max_mem: cfg.display.max_buffer_mib.saturating_mul(1 << 20), ..Default::default() }
}

/// Devices of the `[[guest]]` sections, with this backend's domain.
pub fn guest_devices(cfg: &BackendConfig) -> Result<Vec<DeviceSpec>, String> {
    let mut out = Vec::new();
    for g in &cfg.guest {
        let text = match (&g.xl, &g.xl_file) {
            (Some(t), _) => t.clone(),
            (None, Some(f)) => std::fs::read_to_string(f).map_err(|e| format!("{f}: {e}"))?,
            (None, None) => continue,
        };
        let specs = pv_config::xl::device_specs(&text, g.domain)
            .map_err(|e| format!("guest dom{}: {e}", g.domain))?;
        out.extend(specs.into_iter().map(|mut s| {
            s.be_dom = cfg.domain;
            s
        }));
    }
    Ok(out)
}

/// Writes the `[[guest]]` devices into xenstore (simulator).
pub fn create_guests(cfg: &BackendConfig, xs: &dyn Xenstore) -> Result<Vec<DeviceSpec>, String> {
    let specs = guest_devices(cfg)?;
    for s in &specs {
        create_device(xs, s).map_err(|e| format!("{}: {e}", s.fe_dir()))?;
    }
    Ok(specs)
}
