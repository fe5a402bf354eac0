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
    /// sndif/displif frontends say Initialised, and answer a new backend's
    /// InitWait with new rings: one still Connected holds its last
    /// backend's rings, about to be freed, so it is not ready (connecting
    /// to them races its restart and can leave the two on different
    /// rings). kbdif and fbif frontends may jump to Connected and keep
    /// their rings across a backend restart: those devices say so here.
    fn ready(&self, state: XenbusState) -> bool {
        state == XenbusState::Initialised
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

/// Where the backend is in the xenbus handshake (`io/xenbus.h`'s diagram).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// InitWait written: waiting for the frontend to be ready.
    Waiting,
    /// Connected: serving requests.
    Connected,
    /// Closing written: the frontend is closing, or the device gave up.
    Closing,
    /// Closed written: waiting for the frontend to start over.
    Closed,
}

/// The step the frontend's state asks for, given ours. `None`: nothing.
/// `fe_was_connected`: the frontend has said Connected since we connected
/// (so Initialised now is a new start, not its way to Connected).
fn next_phase(phase: Phase, fe: XenbusState, ready: bool, fe_was_connected: bool) -> Option<Phase> {
    use XenbusState as S;
    match (phase, fe) {
        (Phase::Waiting, _) if ready => Some(Phase::Connected),
        // The frontend closes: Closing, then Closed once it is Closed (a
        // frontend waits for both before it reconnects or shuts down).
        (Phase::Waiting | Phase::Connected, S::Closing) => Some(Phase::Closing),
        (Phase::Waiting | Phase::Connected | Phase::Closing, S::Closed | S::Unknown) => {
            Some(Phase::Closed)
        }
        // A connected frontend that starts over without closing: Linux's
        // snd-xen-front re-creates its rings whenever its backend says
        // InitWait (it takes that for a backend restart). One that is
        // Initialising waits for InitWait; one that already published new
        // rings (Initialised) gets them taken at once: answering it with
        // InitWait would make it start over again, and again.
        (Phase::Connected, S::Initialising) => Some(Phase::Waiting),
        (Phase::Connected, S::Initialised) if fe_was_connected => Some(Phase::Connected),
        // After closing, a frontend that starts again gets InitWait. One
        // still Connected has not noticed yet: wait for it to start over
        // (answering it would connect to its old rings again).
        (Phase::Closing | Phase::Closed, S::Initialising | S::Initialised) => Some(Phase::Waiting),
        _ => None,
    }
}

/// Serves one device until its backend directory is removed, the frontend
/// closes a device the toolstack took offline (`online` = 0), or `stop` is
/// set. `be_dir` must hold `frontend` and `frontend-id`, as libxl writes.
///
/// Every error (the device's, the transport's) goes the same way: the
/// device lets go of the frontend and the backend says Closing and Closed,
/// so a frontend never waits on a backend that claims Connected but no
/// longer serves.
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
            close(xs, be_dir);
            return Err("malformed backend directory".into());
        }
    };
    let ctx = Ctx {
        ep: &ep,
        fe_dom,
        fe_dir: &fe_dir,
        be_dir,
    };
    let mut phase = Phase::Waiting;
    let r = run(&ctx, dev, stop, &mut phase);
    if phase == Phase::Connected {
        dev.disconnect(&ctx);
    }
    if let Err(e) = &r {
        log::error!("{be_dir}: frontend dom{fe_dom}: {e}; closing");
        close(xs, be_dir);
    }
    r
}

/// The backend's half of closing: Closing, then Closed at once (what a
/// Linux frontend waits for before it lets go or starts over).
fn write_closed(xs: &dyn pv_transport::Xenstore, be_dir: &str) -> Result<(), DeviceError> {
    xenbus::write_state(xs, be_dir, XenbusState::Closing)?;
    xenbus::write_state(xs, be_dir, XenbusState::Closed)?;
    Ok(())
}

/// [`write_closed`] on the way out, when nothing more can be done about a
/// failure.
pub(crate) fn close(xs: &dyn pv_transport::Xenstore, be_dir: &str) {
    let _ = write_closed(xs, be_dir);
}

/// How long after our InitWait a frontend's Initialising counts as its
/// answer to it.
const INITWAIT_ANSWER: std::time::Duration = std::time::Duration::from_secs(2);

/// How long a frontend may stay Initialising under our InitWait before we
/// say it again: long enough for a loaded guest to publish its rings (a
/// displif frontend told InitWait after it did starts over once more).
const INITWAIT_REPEAT: std::time::Duration = std::time::Duration::from_secs(5);

/// The handshake and the serving loop. Errors end it: `serve` closes.
fn run(
    ctx: &Ctx,
    dev: &mut dyn Device,
    stop: &AtomicBool,
    phase: &mut Phase,
) -> Result<(), DeviceError> {
    let (ep, be_dir, fe_dir, fe_dom) = (ctx.ep, ctx.be_dir, ctx.fe_dir, ctx.fe_dom);
    let xs = &*ep.store;
    dev.init(ctx)
        .map_err(|e| DeviceError(format!("init failed: {e}")))?;
    xenbus::write_state(xs, be_dir, XenbusState::InitWait)?;
    xs.watch(&xenbus::join(fe_dir, "state"), "fe")?;
    xs.watch(be_dir, "be")?;
    // A device that fails gives up on this connection only: Closing, then
    // Closed at once (Linux's sound and display frontends wait for Closed
    // before they start over), then a fresh start when the frontend does.
    let give_up = |dev: &mut dyn Device,
                   phase: &mut Phase,
                   what: &str,
                   e: &DeviceError|
     -> Result<(), DeviceError> {
        log::error!("{be_dir}: frontend dom{fe_dom} {what}: {e}; closing");
        if *phase == Phase::Connected {
            dev.disconnect(ctx);
        }
        *phase = Phase::Closed;
        write_closed(xs, be_dir)
    };
    // The frontend's state may already call for a step (a restarted
    // backend under a connected frontend): look before the first wait.
    let mut changed = true;
    let mut fe_was_connected = false;
    // We said InitWait and the frontend has not published rings since: an
    // Initialising now is its answer (Linux's frontends start over on
    // InitWait), not a new start to greet with InitWait again, which would
    // make it start over once more. Used once per InitWait written, within
    // INITWAIT_ANSWER of writing it (a frontend answers in milliseconds; a
    // later Initialising is a new start), and void once we close.
    let mut initwait_unanswered = Some(std::time::Instant::now());
    // Since when the frontend is Initialising while we say InitWait. One
    // that went Initialising without having seen our InitWait (it came
    // while the frontend was still tearing down, and a Linux frontend acts
    // on InitWait only when Initialising) waits for ever: INITWAIT_REPEAT
    // on, we say it once more (once: a frontend without a driver yet reads
    // our state when its driver comes).
    let mut fe_initialising: Option<(std::time::Instant, bool)> = None;
    // The frontend's published configuration failed: not tried again until
    // the frontend moves (it cannot publish anew without leaving
    // Initialised), so a frontend that keeps a bad one costs one attempt.
    let mut bad_config = false;
    while !stop.load(Ordering::Relaxed) {
        if let Some((since, told @ false)) = &mut fe_initialising {
            if since.elapsed() >= INITWAIT_REPEAT {
                *told = true;
                xenbus::write_state(xs, be_dir, XenbusState::InitWait)?;
                log::info!("{be_dir}: frontend dom{fe_dom} still Initialising; InitWait again");
            }
        }
        if changed {
            if xs.read(&xenbus::join(be_dir, "frontend")).is_err() {
                log::info!("{be_dir}: removed by the toolstack");
                return Ok(());
            }
            let fe_state = xenbus::read_state(xs, fe_dir);
            if *phase == Phase::Connected && fe_state == XenbusState::Connected {
                fe_was_connected = true;
            }
            if fe_state == XenbusState::Initialised {
                initwait_unanswered = None;
            } else {
                bad_config = false;
            }
            while let Some(next) = (!bad_config)
                .then(|| next_phase(*phase, fe_state, dev.ready(fe_state), fe_was_connected))
                .flatten()
            {
                // Whatever comes next, the connection in place goes first
                // (a new one takes the frontend's new rings).
                if *phase == Phase::Connected {
                    dev.disconnect(ctx);
                    *phase = Phase::Waiting;
                }
                match next {
                    Phase::Connected => {
                        if let Err(e) = dev.connect(ctx) {
                            dev.disconnect(ctx); // what the partial connect took
                            give_up(dev, phase, "published a bad configuration", &e)?;
                            initwait_unanswered = None;
                            bad_config = true;
                            break; // wait for the frontend to move
                        }
                        xenbus::write_state(xs, be_dir, XenbusState::Connected)?;
                        *phase = Phase::Connected;
                        initwait_unanswered = None; // our node no longer says InitWait
                        // Connected to a frontend that already was (a restarted
                        // backend on the rings a kbdif or fbif frontend kept):
                        // its Initialised later is a new start.
                        fe_was_connected = fe_state == XenbusState::Connected;
                        log::info!("{be_dir}: connected to dom{fe_dom}");
                        break; // the frontend answers with a new state
                    }
                    Phase::Closing | Phase::Closed => {
                        let st = if next == Phase::Closing {
                            XenbusState::Closing
                        } else {
                            XenbusState::Closed
                        };
                        xenbus::write_state(xs, be_dir, st)?;
                        *phase = next;
                        initwait_unanswered = None;
                        log::info!(
                            "{be_dir}: frontend dom{fe_dom} is {fe_state:?}; backend {st:?}"
                        );
                        // Closed and taken offline by the toolstack: done.
                        if next == Phase::Closed
                            && !xenbus::read_flag(xs, &xenbus::join(be_dir, "online"))
                        {
                            log::info!("{be_dir}: offline; no longer served");
                            return Ok(());
                        }
                    }
                    Phase::Waiting
                        if fe_state == XenbusState::Initialising
                            && initwait_unanswered
                                .take()
                                .is_some_and(|t| t.elapsed() < INITWAIT_ANSWER) =>
                    {
                        *phase = Phase::Waiting;
                        log::info!(
                            "{be_dir}: frontend dom{fe_dom} starts over after our InitWait; waiting for its rings"
                        );
                    }
                    Phase::Waiting => {
                        xenbus::write_state(xs, be_dir, XenbusState::InitWait)?;
                        *phase = Phase::Waiting;
                        initwait_unanswered = Some(std::time::Instant::now());
                        log::info!("{be_dir}: frontend dom{fe_dom} starts over; waiting again");
                    }
                }
            }
            if *phase == Phase::Waiting && fe_state == XenbusState::Initialising {
                fe_initialising.get_or_insert((std::time::Instant::now(), false));
            } else {
                fe_initialising = None;
            }
        }
        let timeout = if *phase == Phase::Connected {
            dev.tick_ms().clamp(1, 50)
        } else {
            20
        };
        if let Some(port) = ep.events.wait(timeout)? {
            let r = if *phase == Phase::Connected {
                dev.on_event(ctx, port)
            } else {
                Ok(())
            };
            let _ = ep.events.unmask(port); // a port unbound meanwhile
            if let Err(e) = r {
                give_up(dev, phase, "sent a bad request", &e)?;
                initwait_unanswered = None;
            }
        }
        if *phase == Phase::Connected {
            if let Err(e) = dev.tick(ctx) {
                give_up(dev, phase, "stream failed", &e)?;
                initwait_unanswered = None;
            }
        }
        changed = false;
        while xs.wait_watch(0)?.is_some() {
            changed = true;
        }
    }
    Ok(())
}
