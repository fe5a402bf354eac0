//! The compositor as its driver domain's display and input backend. The
//! vdispl and vfb devices of the frontends it serves become compositor
//! sources named `<domain>/<connector>` (the domain's name in xenstore), and
//! each frontend's vkbd device reads what the layout routes to that domain,
//! besides the evdev devices `[[input]]` gives it. Sound stays with
//! pv-backendd (`serve = ["vsnd"]`), so it outlives a compositor restart.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use cockpit_core::Sources;
use pv_backend::{DeviceInfo, Supervisor};
use pv_config::BackendConfig;
use pv_transport::{Platform, Xenstore};
use vkbd_back::InputSource;

use crate::pv_display::CompositorSink;
use crate::pv_input::InputHub;

/// The kinds the compositor serves, whatever the file's `serve` says.
pub const KINDS: [&str; 4] = ["vdispl", "vfb", "vkbd", "vinput"];

/// Longest domain name used as a source name; a longer or odd one (it
/// comes from xenstore) falls back to the domain's number.
const MAX_NAME: usize = 64;

/// The backend threads; dropping it stops them (guests see their devices
/// close and reconnect to the next compositor).
pub struct PvBackends {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl PvBackends {
    /// Starts serving the display and input devices of `cfg`'s domain into
    /// `sources`.
    pub fn start(cfg: &BackendConfig, platform: Arc<dyn Platform>, sources: Sources) -> io::Result<Self> {
        let names: Arc<dyn Xenstore> = Arc::from(platform.open().map_err(io::Error::other)?.store);
        let mut cfg = cfg.clone();
        cfg.serve = KINDS.iter().map(|k| k.to_string()).collect();
        // Input reaches guests through the layout (`--touch`, `--keyboard`),
        // never straight from a device routed by the file.
        if !cfg.input.is_empty() {
            eprintln!("cockpit: ignoring the [[input]] routes of the backend file: input goes through the layout");
            cfg.input.clear();
        }
        let hub = InputHub::default();
        let mut sup = Supervisor::new(platform);
        let sink_hub = hub.clone();
        pv_backendd::serve_display_and_input(
            &mut sup,
            &cfg,
            Arc::new(move |_: &DeviceInfo| {
                let names = names.clone();
                let namer = Box::new(move |dom: u16| domain_name(&*names, dom));
                Box::new(CompositorSink::new(sources.clone(), namer).with_input(sink_hub.clone()))
            }),
            Arc::new(move |info: &DeviceInfo| {
                let name = format!("cockpit: touches for dom{}", info.fe_dom);
                vec![Box::new(hub.source(info.fe_dom, &name)) as Box<dyn InputSource>]
            }),
        );
        let stop = sup.stop_flag();
        let thread = std::thread::Builder::new().name("pv-backends".into()).spawn(move || {
            if let Err(e) = sup.run() {
                eprintln!("cockpit: PV backends stopped: {e}");
            }
        })?;
        Ok(PvBackends { stop, thread: Some(thread) })
    }
}

impl Drop for PvBackends {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `/local/domain/<dom>/name` as a source name's domain part. The node is
/// the hypervisor's (or the toolstack's), not the guest's, so a guest
/// cannot take another's place in the layout by renaming itself; a name
/// that is missing, long or not plain falls back to `#<number>`, which no
/// name can be (so a domain named "3" keeps its place from domain 3).
pub fn domain_name(store: &dyn Xenstore, dom: u16) -> String {
    let plain = |n: &[u8]| {
        !n.is_empty() && n.len() <= MAX_NAME && n.iter().all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
    };
    match store.read(&format!("/local/domain/{dom}/name")) {
        Ok(n) if plain(&n) => String::from_utf8_lossy(&n).into_owned(),
        _ => format!("#{dom}"),
    }
}
