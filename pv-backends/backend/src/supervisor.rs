//! Serves every device of the kinds we back, one thread per device.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use pv_transport::xenbus::{self, XenbusState};
use pv_transport::{domain_path, DomId, Platform};

use crate::runner::{serve, Device};

/// Where a device the toolstack created lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Backend directory kind (`vsnd`, `vdispl`, `vkbd`, `vinput`, `vfb`).
    pub kind: String,
    /// Frontend domain: the `<fe-domid>` level of the backend path.
    pub fe_dom: DomId,
    /// Device number within that domain and kind (`<devid>`, the last
    /// path level); 0 for a guest's first device of a kind.
    pub dev_id: u32,
    /// Absolute backend directory,
    /// `/local/domain/<self>/backend/<kind>/<fe_dom>/<dev_id>`.
    pub be_dir: String,
}

/// Makes the device for a newly found backend directory, or `None` to
/// leave it alone (e.g. no route configured for that domain).
pub type DeviceFactory = Box<dyn Fn(&DeviceInfo) -> Option<Box<dyn Device>> + Send + Sync>;

/// Watches `/local/domain/<self>/backend/<kind>` for each kind it serves.
pub struct Supervisor {
    platform: Arc<dyn Platform>,
    factories: Vec<(String, DeviceFactory)>,
    stop: Arc<AtomicBool>,
}

struct Running {
    /// Whether the device ended in failure (an error or a panic).
    handle: JoinHandle<bool>,
}

impl Supervisor {
    /// A supervisor serving no kind yet; each device thread opens its own
    /// endpoint on `platform`. Add kinds with
    /// [`serve_kind`](Self::serve_kind), then call [`run`](Self::run).
    pub fn new(platform: Arc<dyn Platform>) -> Self {
        Self {
            platform,
            factories: Vec::new(),
            stop: Arc::default(),
        }
    }

    /// Serves backend directories of `kind` with devices from `factory`.
    pub fn serve_kind(&mut self, kind: &str, factory: DeviceFactory) {
        self.factories.push((kind.to_string(), factory));
    }

    /// Set it to make [`run`](Self::run) and every device thread return.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Runs until the stop flag is set.
    pub fn run(&self) -> Result<(), pv_transport::Error> {
        let ep = self.platform.open()?;
        let xs = &*ep.store;
        let root = format!("{}/backend", domain_path(ep.domid));
        for (kind, _) in &self.factories {
            xs.watch(&format!("{root}/{kind}"), kind)?;
        }
        let mut running: HashMap<(String, DomId, u32), Running> = HashMap::new();
        // Devices that failed are not served again until the toolstack
        // removes their directory: a frontend that makes a device fail at
        // will must not make this loop start it over and over.
        let mut failed: HashSet<(String, DomId, u32)> = HashSet::new();
        while !self.stop.load(Ordering::Relaxed) {
            if xs.wait_watch(50)?.is_some() {
                while xs.wait_watch(0)?.is_some() {}
                failed.retain(|k| {
                    xs.read(&format!("{root}/{}/{}/{}/frontend", k.0, k.1, k.2))
                        .is_ok()
                });
                self.scan(&root, xs, &mut running, &failed);
            }
            running.retain(|key, r| {
                if !r.handle.is_finished() {
                    return true;
                }
                let r = std::mem::replace(&mut r.handle, std::thread::spawn(|| false));
                match r.join() {
                    Ok(false) => {}
                    Ok(true) => {
                        failed.insert(key.clone());
                    }
                    Err(_) => {
                        log::error!("{}/{}/{}: device thread panicked", key.0, key.1, key.2);
                        failed.insert(key.clone());
                    }
                }
                false
            });
        }
        for (_, r) in running.drain() {
            let _ = r.handle.join();
        }
        Ok(())
    }

    fn scan(
        &self,
        root: &str,
        xs: &dyn pv_transport::Xenstore,
        running: &mut HashMap<(String, DomId, u32), Running>,
        failed: &HashSet<(String, DomId, u32)>,
    ) {
        for (kind, factory) in &self.factories {
            let kind_dir = format!("{root}/{kind}");
            let Ok(doms) = xenbus::numbered_children(xs, &kind_dir) else {
                continue;
            };
            for fe in doms.into_iter().filter(|&d| d <= u32::from(DomId::MAX)) {
                let fe = fe as DomId;
                let Ok(ids) = xenbus::numbered_children(xs, &format!("{kind_dir}/{fe}")) else {
                    continue;
                };
                for id in ids {
                    let key = (kind.clone(), fe, id);
                    if running.contains_key(&key) || failed.contains(&key) {
                        continue;
                    }
                    let be_dir = format!("{kind_dir}/{fe}/{id}");
                    // Only directories the toolstack finished writing, and not
                    // ones it took offline that an earlier run closed.
                    if xs.read(&format!("{be_dir}/frontend")).is_err()
                        || (xenbus::read_state(xs, &be_dir) == XenbusState::Closed
                            && !xenbus::read_flag(xs, &format!("{be_dir}/online")))
                    {
                        continue;
                    }
                    let info = DeviceInfo {
                        kind: kind.clone(),
                        fe_dom: fe,
                        dev_id: id,
                        be_dir: be_dir.clone(),
                    };
                    let Some(dev) = factory(&info) else {
                        continue;
                    };
                    if let Some(handle) = self.spawn(info, dev) {
                        running.insert(key, Running { handle });
                    }
                }
            }
        }
    }

    fn spawn(&self, info: DeviceInfo, mut dev: Box<dyn Device>) -> Option<JoinHandle<bool>> {
        let platform = self.platform.clone();
        let stop = self.stop.clone();
        let name = format!("{}-{}-{}", info.kind, info.fe_dom, info.dev_id);
        let r = std::thread::Builder::new().name(name).spawn(move || {
            let ep = match platform.open() {
                Ok(ep) => ep,
                Err(e) => {
                    log::error!("{}: cannot open transport: {e}", info.be_dir);
                    return true;
                }
            };
            // A bug in a device must not leave its frontend waiting on a
            // backend that looks Connected: report Closing, like any error.
            let run = std::panic::AssertUnwindSafe(|| serve(ep, &info.be_dir, dev.as_mut(), &stop));
            match std::panic::catch_unwind(run) {
                Ok(Ok(())) => false,
                Ok(Err(e)) => {
                    log::error!("{}: stopped: {e}", info.be_dir);
                    true
                }
                Err(_) => {
                    log::error!("{}: device failed internally; closing", info.be_dir);
                    if let Ok(ep) = platform.open() {
                        crate::runner::close(&*ep.store, &info.be_dir);
                    }
                    true
                }
            }
        });
        match r {
            Ok(h) => Some(h),
            Err(e) => {
                log::error!("cannot start a device thread: {e}");
                None
            }
        }
    }
}
