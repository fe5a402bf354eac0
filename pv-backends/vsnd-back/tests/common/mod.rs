//! Shared set-up: a dom0 backend serving vsnd over the loopback transport.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use pv_backend::toolstack::{create_device, DeviceSpec};
use pv_backend::{testlog, Supervisor};
use pv_transport::loopback::Loopback;
use vsnd_back::{AudioBackend, CardRoute, Router, VsndBackend, VsndLimits};

pub struct Backend {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A router with one card: `dom`'s card 0 plays on `playback` and
/// records from `capture`; other cards play on `playback` and may not
/// record.
pub fn router(dom: u16, playback: &str, capture: &str) -> Router {
    let mut r = Router::new(Some(playback.into()));
    r.insert(dom, 0, CardRoute { playback: Some(playback.into()), capture: Some(capture.into()) });
    r
}

pub fn start(
    lb: &Loopback,
    audio: impl Fn() -> Box<dyn AudioBackend> + Send + Sync + 'static,
    router: Router,
) -> Backend {
    start_with(lb, audio, router, VsndLimits::default())
}

/// As `start`, with the daemon's limits on what each card may take.
pub fn start_with(
    lb: &Loopback,
    audio: impl Fn() -> Box<dyn AudioBackend> + Send + Sync + 'static,
    router: Router,
    limits: VsndLimits,
) -> Backend {
    testlog::init();
    let mut sup = Supervisor::new(Arc::new(lb.platform(0)));
    sup.serve_kind(
        "vsnd",
        Box::new(move |info| {
            let route = router.card(info.fe_dom, info.dev_id);
            Some(Box::new(VsndBackend::new(audio(), route, limits.clone())))
        }),
    );
    let stop = sup.stop_flag();
    let handle = std::thread::spawn(move || sup.run().unwrap());
    Backend {
        stop,
        handle: Some(handle),
    }
}

/// A card with one playback stream (`play`) and one capture stream (`mic`).
pub fn card(fe_dom: u16, play_id: &str, mic_id: &str) -> DeviceSpec {
    let n = |k: &str, v: &str| (k.to_string(), v.to_string());
    DeviceSpec {
        be_kind: "vsnd".into(),
        fe_kind: "vsnd".into(),
        be_dom: 0,
        fe_dom,
        dev_id: 0,
        fe_nodes: vec![
            n("short-name", "cockpit"),
            n("sample-rates", "44100,48000"),
            n("sample-formats", "s16_le,s32_le"),
            n("channels-min", "1"),
            n("channels-max", "2"),
            n("buffer-size", "65536"),
            n("0/name", "main"),
            n("0/0/type", "p"),
            n("0/0/unique-id", play_id),
            n("0/1/type", "c"),
            n("0/1/unique-id", mic_id),
        ],
        be_nodes: vec![],
    }
}

pub fn add(lb: &Loopback, spec: &DeviceSpec) {
    create_device(&*lb.xenstore(0), spec).unwrap();
}

/// Interleaved S16LE stereo: a ramp on the left, its negation on the right.
pub fn stereo_ramp(frames: usize, seed: i32) -> Vec<u8> {
    (0..frames)
        .flat_map(|i| {
            let l = ((i as i32 * 37 + seed) % 30000) as i16;
            [l, -l]
        })
        .flat_map(|s| s.to_le_bytes())
        .collect()
}
