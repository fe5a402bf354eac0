//! `pv-backendd --config <file.toml>`: serves the PV devices of this domain.

use std::sync::Arc;

use pv_config::{BackendConfig, TransportKind};
use pv_transport::Platform;

struct Stderr;

impl log::Log for Stderr {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, r: &log::Record) {
        eprintln!("pv-backendd {} {}", r.level(), r.args());
    }
    fn flush(&self) {}
}

static LOGGER: Stderr = Stderr;

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let path = match args.iter().position(|a| a == "--config") {
        Some(i) => args.get(i + 1).ok_or("--config needs a file")?.clone(),
        None => return Err("usage: pv-backendd --config <file.toml>".into()),
    };
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let cfg = BackendConfig::from_toml(&text).map_err(|e| format!("{path}: {e}"))?;
    let platform: Arc<dyn Platform> = match cfg.transport {
        #[cfg(target_os = "linux")]
        TransportKind::Xen => Arc::new(pv_transport::linux::LinuxPlatform { domid: cfg.domain }),
        #[cfg(not(target_os = "linux"))]
        TransportKind::Xen => return Err("the Xen transport needs Linux".into()),
        TransportKind::Loopback => {
            let lb = pv_transport::loopback::Loopback::new();
            let specs = pv_backendd::create_guests(&cfg, &*lb.xenstore(cfg.domain))?;
            log::info!("simulator: created {} device(s)", specs.len());
            Arc::new(lb.platform(cfg.domain))
        }
    };
    let sup = pv_backendd::supervisor(&cfg, platform);
    sup.run().map_err(|e| e.to_string())
}

fn main() {
    // PV_LOG=debug (or warn, error, trace) changes the level; info by default.
    let level = std::env::var("PV_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(log::LevelFilter::Info);
    let _ = log::set_logger(&LOGGER).map(|()| log::set_max_level(level));
    if let Err(e) = run() {
        eprintln!("pv-backendd: {e}");
        std::process::exit(1);
    }
}
