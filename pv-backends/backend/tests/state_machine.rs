//! The backend state machine with a scripted device, as `io/xenbus.h`
//! draws it: InitWait, Connected once the frontend is ready, Closing and
//! Closed after the frontend's, InitWait when it starts over, Closing (and
//! a log line) when the device fails or panics, and no more service once
//! the toolstack has taken the device offline.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use pv_backend::toolstack::{create_device, DeviceSpec};
use pv_backend::{testlog, Ctx, Device, DeviceError, Supervisor};
use pv_transport::loopback::Loopback;
use pv_transport::xenbus::{self, XenbusState};
use pv_transport::Port;

struct Scripted {
    fail_connect: Arc<AtomicBool>,
    panic_connect: bool,
    /// Its frontend keeps its rings across a backend restart, as kbdif's
    /// and fbif's do (ready when Connected).
    keeps_rings: bool,
    connects: Arc<AtomicU32>,
}

impl Device for Scripted {
    fn ready(&self, state: XenbusState) -> bool {
        state == XenbusState::Initialised || (self.keeps_rings && state == XenbusState::Connected)
    }
    fn connect(&mut self, _: &Ctx) -> Result<(), DeviceError> {
        assert!(!self.panic_connect, "scripted panic");
        self.connects.fetch_add(1, Ordering::Relaxed);
        if self.fail_connect.load(Ordering::Relaxed) {
            return Err("scripted failure".into());
        }
        Ok(())
    }
    fn on_event(&mut self, _: &Ctx, _: Port) -> Result<(), DeviceError> {
        Ok(())
    }
    fn disconnect(&mut self, _: &Ctx) {}
}

fn spec(dom: u16) -> DeviceSpec {
    DeviceSpec {
        be_kind: "test".into(),
        fe_kind: "test".into(),
        be_dom: 0,
        fe_dom: dom,
        dev_id: 0,
        ..Default::default()
    }
}

fn wait(lb: &Loopback, s: &DeviceSpec, st: XenbusState) {
    xenbus::wait_state(&*lb.xenstore(9), &s.be_dir(), "t", 5000, |x| x == st)
        .unwrap_or_else(|_| panic!("backend never reached {st:?}"));
}

/// Waits up to 5 s for `done`, failing with `what` if it never holds.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn set_fe(lb: &Loopback, s: &DeviceSpec, st: XenbusState) {
    xenbus::write_state(&*lb.xenstore(s.fe_dom), &s.fe_dir(), st).unwrap();
}

/// A supervisor serving `test` devices with [`Scripted`] in its own thread
/// (the device of frontend dom3 panics on connect; that of dom6 keeps its
/// rings across backend restarts). Returns its stop flag and thread.
fn serve_scripted(
    lb: &Loopback,
    fail: Arc<AtomicBool>,
    connects: Arc<AtomicU32>,
) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let mut sup = Supervisor::new(Arc::new(lb.platform(0)));
    sup.serve_kind(
        "test",
        Box::new(move |info| {
            Some(Box::new(Scripted {
                fail_connect: fail.clone(),
                panic_connect: info.fe_dom == 3,
                keeps_rings: info.fe_dom == 6,
                connects: connects.clone(),
            }))
        }),
    );
    let stop = sup.stop_flag();
    (stop, std::thread::spawn(move || sup.run().unwrap()))
}

/// A backend (re)started under a frontend that is still Connected to the
/// last one's rings: it says InitWait, and a Linux sndif or displif
/// frontend starts over on that (Initialising, new rings, Initialised).
/// The old rings are not taken: the frontend frees them as it starts over,
/// and a backend that took them could miss the restart and stay on them
/// while the frontend uses new ones (the interop test's first play after a
/// backend restart failed that way). Its Initialising is the answer to our
/// InitWait: saying InitWait again would make it start over a second time
/// (the interop test caught snd-xen-front doing so).
#[test]
fn a_restarted_backend_says_initwait_once() {
    testlog::init();
    let lb = Loopback::new();
    let connects = Arc::new(AtomicU32::new(0));
    let s = spec(5);
    // The frontend, connected to the backend that died.
    create_device(&*lb.xenstore(0), &s).unwrap();
    set_fe(&lb, &s, XenbusState::Connected);
    let (stop, h) = serve_scripted(&lb, Arc::new(AtomicBool::new(false)), connects.clone());
    wait(&lb, &s, XenbusState::InitWait);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(connects.load(Ordering::Relaxed), 0, "the dead backend's rings were taken");
    // The frontend saw our InitWait and starts over.
    let initwaits = || testlog::lines_containing("test/5/0: frontend dom5 starts over; waiting again").len();
    set_fe(&lb, &s, XenbusState::Initialising);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(initwaits(), 0, "InitWait said twice");
    set_fe(&lb, &s, XenbusState::Initialised);
    eventually("the new rings were not taken", || connects.load(Ordering::Relaxed) == 1);
    wait(&lb, &s, XenbusState::Connected);
    // A later start-over (a guest reboot) is greeted with InitWait again.
    set_fe(&lb, &s, XenbusState::Connected);
    std::thread::sleep(std::time::Duration::from_millis(100));
    set_fe(&lb, &s, XenbusState::Initialising);
    wait(&lb, &s, XenbusState::InitWait);
    eventually("the start-over was not logged", || initwaits() == 1); // logged after the write
    // Told InitWait, a frontend that closes before publishing rings and
    // then starts again gets InitWait again (after our Closed, its
    // Initialising is a new start, not the answer to that InitWait).
    set_fe(&lb, &s, XenbusState::Closing);
    wait(&lb, &s, XenbusState::Closing);
    set_fe(&lb, &s, XenbusState::Closed);
    wait(&lb, &s, XenbusState::Closed);
    set_fe(&lb, &s, XenbusState::Initialising);
    wait(&lb, &s, XenbusState::InitWait);
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
}

/// A frontend that went Initialising without having seen our InitWait (it
/// came while the frontend was still tearing down: a Linux frontend acts on
/// InitWait only once Initialising) would wait for ever: still Initialising
/// 5 s later, it is told InitWait once more (and only once).
#[test]
fn a_frontend_that_missed_our_initwait_is_told_again() {
    testlog::init();
    let lb = Loopback::new();
    let connects = Arc::new(AtomicU32::new(0));
    let s = spec(7);
    create_device(&*lb.xenstore(0), &s).unwrap();
    set_fe(&lb, &s, XenbusState::Connected);
    let (stop, h) = serve_scripted(&lb, Arc::new(AtomicBool::new(false)), connects.clone());
    wait(&lb, &s, XenbusState::InitWait);
    let again = || testlog::lines_containing("test/7/0: frontend dom7 still Initialising; InitWait again").len();
    set_fe(&lb, &s, XenbusState::Initialising);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(again(), 0, "InitWait repeated before the frontend had time to answer");
    // Only the write fires the frontend's watch: watch the node for it.
    let xs = lb.xenstore(7);
    xs.watch(&xenbus::join(&s.be_dir(), "state"), "again").unwrap();
    while xs.wait_watch(0).unwrap().is_some() {}
    eventually("InitWait was never repeated", || again() == 1);
    assert!(xs.wait_watch(0).unwrap().is_some(), "the frontend's watch did not fire");
    std::thread::sleep(std::time::Duration::from_millis(5500));
    assert_eq!(again(), 1, "InitWait repeated more than once");
    set_fe(&lb, &s, XenbusState::Initialised);
    wait(&lb, &s, XenbusState::Connected);
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(again(), 1);
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
}

/// A frontend that keeps its rings across a backend restart (kbdif, fbif:
/// it never answers InitWait while Connected) is served on them at once.
#[test]
fn a_restarted_backend_takes_a_kbdif_frontends_rings() {
    testlog::init();
    let lb = Loopback::new();
    let connects = Arc::new(AtomicU32::new(0));
    let s = spec(6);
    create_device(&*lb.xenstore(0), &s).unwrap();
    set_fe(&lb, &s, XenbusState::Connected);
    let (stop, h) = serve_scripted(&lb, Arc::new(AtomicBool::new(false)), connects.clone());
    eventually("the rings were not taken", || connects.load(Ordering::Relaxed) == 1);
    wait(&lb, &s, XenbusState::Connected);
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
}

#[test]
fn handshake_failure_recovery_and_panic() {
    testlog::init();
    let lb = Loopback::new();
    let fail = Arc::new(AtomicBool::new(false));
    let connects = Arc::new(AtomicU32::new(0));
    let (stop, h) = serve_scripted(&lb, fail.clone(), connects.clone());

    let s = spec(1);
    create_device(&*lb.xenstore(0), &s).unwrap();
    wait(&lb, &s, XenbusState::InitWait);
    set_fe(&lb, &s, XenbusState::Initialised);
    wait(&lb, &s, XenbusState::Connected);
    // The frontend closes: Closing, then Closed after the frontend's
    // Closed (a Linux frontend waits for it, up to 5 s, at every reboot);
    // a frontend that starts over gets InitWait.
    set_fe(&lb, &s, XenbusState::Closing);
    wait(&lb, &s, XenbusState::Closing);
    set_fe(&lb, &s, XenbusState::Closed);
    wait(&lb, &s, XenbusState::Closed);
    set_fe(&lb, &s, XenbusState::Initialising);
    wait(&lb, &s, XenbusState::InitWait);
    // A connect that fails: Closing then Closed at once (Linux's sound and
    // display frontends wait for Closed), and a log line; a frontend that
    // has not noticed yet (still Connected) is not connected again.
    fail.store(true, Ordering::Relaxed);
    set_fe(&lb, &s, XenbusState::Initialised);
    wait(&lb, &s, XenbusState::Closed);
    assert!(!testlog::lines_containing("scripted failure").is_empty());
    // A frontend that sits on its bad configuration costs that one
    // attempt, not one per poll.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(connects.load(Ordering::Relaxed), 2, "a bad configuration was tried again");
    set_fe(&lb, &s, XenbusState::Connected);
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(connects.load(Ordering::Relaxed), 2);
    // The frontend starts over; the next attempt succeeds.
    fail.store(false, Ordering::Relaxed);
    set_fe(&lb, &s, XenbusState::Initialising);
    wait(&lb, &s, XenbusState::InitWait);
    set_fe(&lb, &s, XenbusState::Initialised);
    wait(&lb, &s, XenbusState::Connected);
    assert_eq!(connects.load(Ordering::Relaxed), 3);
    // A connected frontend that re-creates its rings and says Initialised
    // again (snd-xen-front does, when a restarted backend says InitWait):
    // the backend drops the old connection and takes the new one, without
    // an InitWait (which would make snd-xen-front start over again).
    set_fe(&lb, &s, XenbusState::Connected);
    std::thread::sleep(std::time::Duration::from_millis(100));
    let restarts = || testlog::lines_containing("test/1/0: frontend dom1 starts over").len();
    let before = restarts();
    set_fe(&lb, &s, XenbusState::Initialised);
    eventually("the frontend's new rings were never taken", || {
        connects.load(Ordering::Relaxed) >= 4
    });
    wait(&lb, &s, XenbusState::Connected);
    // Its Initialised before it says Connected is not a new start.
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(connects.load(Ordering::Relaxed), 4);
    assert_eq!(
        restarts(),
        before,
        "the backend said InitWait to a frontend that had new rings"
    );

    // Malformed frontend-id written by a broken toolstack (in the same
    // transaction as the rest): closed, even with a frontend that is ready.
    let mut bad = spec(2);
    bad.be_nodes = vec![("frontend-id".into(), "two".into())];
    create_device(&*lb.xenstore(0), &bad).unwrap();
    set_fe(&lb, &bad, XenbusState::Initialised);
    wait(&lb, &bad, XenbusState::Closed);
    assert!(!testlog::lines_containing("malformed frontend or frontend-id").is_empty());

    // A device that panics: Closed, the others untouched, and it is not
    // started again (its frontend could make it panic at will).
    let p = spec(3);
    create_device(&*lb.xenstore(0), &p).unwrap();
    wait(&lb, &p, XenbusState::InitWait);
    set_fe(&lb, &p, XenbusState::Initialised);
    wait(&lb, &p, XenbusState::Closed);
    set_fe(&lb, &p, XenbusState::Initialising);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(
        xenbus::read_state(&*lb.xenstore(9), &p.be_dir()),
        XenbusState::Closed
    );
    assert_eq!(
        testlog::lines_containing("failed internally").len(),
        1,
        "restarted after a panic"
    );
    assert_eq!(
        xenbus::read_state(&*lb.xenstore(9), &s.be_dir()),
        XenbusState::Connected
    );

    // The toolstack takes a connected device offline: the close handshake
    // runs, then the backend stays Closed and serves it no more.
    let off = spec(4);
    create_device(&*lb.xenstore(0), &off).unwrap();
    wait(&lb, &off, XenbusState::InitWait);
    set_fe(&lb, &off, XenbusState::Initialised);
    wait(&lb, &off, XenbusState::Connected);
    lb.xenstore(0)
        .write(&format!("{}/online", off.be_dir()), b"0")
        .unwrap();
    set_fe(&lb, &off, XenbusState::Closing);
    wait(&lb, &off, XenbusState::Closing);
    set_fe(&lb, &off, XenbusState::Closed);
    wait(&lb, &off, XenbusState::Closed);
    eventually("the offline device is still served", || {
        !testlog::lines_containing("backend/test/4/0: offline; no longer served").is_empty()
    });
    set_fe(&lb, &off, XenbusState::Initialising);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(
        xenbus::read_state(&*lb.xenstore(9), &off.be_dir()),
        XenbusState::Closed
    );

    // Removing the backend directory ends that device's thread.
    lb.xenstore(0).rm(&s.be_dir()).unwrap();
    eventually("device thread did not notice its removal", || {
        !testlog::lines_containing("removed by the toolstack").is_empty()
    });

    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
}
