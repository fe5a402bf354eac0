//! The backend's xenbus state machine around one [`Device`].

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use pv_transport::xenbus::{self, XenbusState};
use pv_transport::{DomId, Endpoint, Port};

/// Why a device gave up on its frontend. Always logged; the device then
/// moves to Closing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceError(pub String);

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DeviceError {}

impl From<pv_transport::Error> for DeviceError {
    fn from(e: pv_transport::Error) -> Self {
        Self(e.to_string())
    }
}

impl From<String> for DeviceError {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for DeviceError {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

/// What a device sees of its surroundings.
pub struct Ctx<'a> {
    /// The transport this device's thread opened: xenstore, event
    /// channels and grant mapping, for the device to use in its callbacks.
    pub ep: &'a Endpoint,
    /// Domain of the frontend, as read from the backend's `frontend-id`.
    pub fe_dom: DomId,
    /// Absolute frontend directory (`/local/domain/<fe>/device/<type>/<id>`).
    pub fe_dir: &'a str,
    /// Absolute backend directory.
    pub be_dir: &'a str,
}

impl Ctx<'_> {
    /// `<fe_dir>/<rel>`.
    pub fn fe(&self, rel: &str) -> String {
        xenbus::join(self.fe_dir, rel)
    }

    /// `<be_dir>/<rel>`.
    pub fn be(&self, rel: &str) -> String {
        xenbus::join(self.be_dir, rel)
    }
}

/// One backend device instance.
pub trait Device: Send {
    /// Publishes backend nodes (features, limits) before InitWait.
    fn init(&mut self, _ctx: &Ctx) -> Result<(), DeviceError> {
        Ok(())
    }
    /// Whether a frontend in `state` has published what `connect` needs.
    /// sndif/displif frontends say Initialised; kbdif ones may jump to
    /// Connected.
    fn ready(&self, state: XenbusState) -> bool {
        matches!(state, XenbusState::Initialised | XenbusState::Connected)
    }
    /// Maps rings and binds ports.
    fn connect(&mut self, ctx: &Ctx) -> Result<(), DeviceError>;
    /// One of the ports bound in `connect` fired.
    fn on_event(&mut self, ctx: &Ctx, port: Port) -> Result<(), DeviceError>;
    /// Called at least every [`tick_ms`](Self::tick_ms) while connected.
    fn tick(&mut self, _ctx: &Ctx) -> Result<(), DeviceError> {
        Ok(())
    }
    /// Longest wait for an event while connected, in milliseconds, before
    /// [`tick`](Self::tick) runs anyway; [`serve`] clamps it to 1..=50.
    /// The default is 20 ms.
    fn tick_ms(&self) -> u32 {
        20
    }
    /// Releases everything `connect` took; must tolerate a partial connect.
    fn disconnect(&mut self, ctx: &Ctx);
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Waiting,
    Connected,
    Failed,
}

/// Serves one device until its backend directory is removed or `stop` is
/// set. `be_dir` must hold `frontend` and `frontend-id`, as libxl writes.
pub fn serve(
    ep: Endpoint,
    be_dir: &str,
    dev: &mut dyn Device,
    stop: &AtomicBool,
) -> Result<(), DeviceError> {
    let xs = &*ep.store;
    let fe_dir = xenbus::read_string(xs, &xenbus::join(be_dir, "frontend"));
    let fe_dom = xenbus::read_u32(xs, &xenbus::join(be_dir, "frontend-id"));
    let (fe_dir, fe_dom) = match (fe_dir, fe_dom) {
        (Ok(d), Ok(id)) if id <= u32::from(DomId::MAX) && d.starts_with('/') => (d, id as DomId),
        _ => {
            log::error!("{be_dir}: malformed frontend or frontend-id node; closing");
            let _ = xenbus::write_state(xs, be_dir, XenbusState::Closing);
            return Err("malformed backend directory".into());
        }
    };
    let ctx = Ctx {
        ep: &ep,
        fe_dom,
        fe_dir: &fe_dir,
        be_dir,
    };
    if let Err(e) = dev.init(&ctx) {
        log::error!("{be_dir}: init failed: {e}; closing");
        let _ = xenbus::write_state(xs, be_dir, XenbusState::Closing);
        return Err(e);
    }
    xenbus::write_state(xs, be_dir, XenbusState::InitWait)?;
    xs.watch(&xenbus::join(&fe_dir, "state"), "fe")?;
    xs.watch(be_dir, "be")?;

    let mut phase = Phase::Waiting;
    let fail = |dev: &mut dyn Device, phase: &mut Phase, what: &str, e: &DeviceError| {
        log::error!("{be_dir}: frontend dom{fe_dom} {what}: {e}; closing");
        dev.disconnect(&ctx);
        *phase = Phase::Failed;
        let _ = xenbus::write_state(xs, be_dir, XenbusState::Closing);
    };

    while !stop.load(Ordering::Relaxed) {
        let timeout = if phase == Phase::Connected {
            dev.tick_ms().clamp(1, 50)
        } else {
            20
        };
        if let Some(port) = ep.events.wait(timeout)? {
            if phase == Phase::Connected {
                let r = dev.on_event(&ctx, port);
                let _ = ep.events.unmask(port);
                if let Err(e) = r {
                    fail(dev, &mut phase, "sent a bad request", &e);
                }
            } else {
                let _ = ep.events.unmask(port);
            }
        }
        if phase == Phase::Connected {
            if let Err(e) = dev.tick(&ctx) {
                fail(dev, &mut phase, "stream failed", &e);
            }
        }
        let mut changed = false;
        while xs.wait_watch(0)?.is_some() {
            changed = true;
        }
        if !changed {
            continue;
        }
        if xs.read(&xenbus::join(be_dir, "frontend")).is_err() {
            log::info!("{be_dir}: removed by the toolstack");
            break;
        }
        let fe_state = xenbus::read_state(xs, &fe_dir);
        match (phase, fe_state) {
            (Phase::Waiting, s) if dev.ready(s) => match dev.connect(&ctx) {
                Ok(()) => {
                    xenbus::write_state(xs, be_dir, XenbusState::Connected)?;
                    phase = Phase::Connected;
                    log::info!("{be_dir}: connected to dom{fe_dom}");
                }
                Err(e) => fail(dev, &mut phase, "published a bad configuration", &e),
            },
            (
                Phase::Connected | Phase::Failed,
                XenbusState::Closing
                | XenbusState::Closed
                | XenbusState::Unknown
                | XenbusState::Initialising,
            ) => {
                if phase == Phase::Connected {
                    dev.disconnect(&ctx);
                }
                phase = Phase::Waiting;
                // Back to InitWait, not Closed: the frontend may reconnect.
                xenbus::write_state(xs, be_dir, XenbusState::InitWait)?;
                log::info!("{be_dir}: frontend dom{fe_dom} left ({fe_state:?}); waiting again");
            }
            _ => {}
        }
    }
    if phase == Phase::Connected {
        dev.disconnect(&ctx);
    }
    Ok(())
}
