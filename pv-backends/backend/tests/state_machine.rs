//! The backend state machine with a scripted device: InitWait, Connected
//! once the frontend is ready, Closing (and a log line) when the device
//! fails, InitWait again when the frontend closes, and Closing when the
//! device panics.

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
    connects: Arc<AtomicU32>,
}

impl Device for Scripted {
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

fn set_fe(lb: &Loopback, s: &DeviceSpec, st: XenbusState) {
    xenbus::write_state(&*lb.xenstore(s.fe_dom), &s.fe_dir(), st).unwrap();
}

#[test]
fn handshake_failure_recovery_and_panic() {
    testlog::init();
    let lb = Loopback::new();
    let fail = Arc::new(AtomicBool::new(false));
    let connects = Arc::new(AtomicU32::new(0));
    let (f2, c2) = (fail.clone(), connects.clone());
    let mut sup = Supervisor::new(Arc::new(lb.platform(0)));
    sup.serve_kind(
        "test",
        Box::new(move |info| {
            Some(Box::new(Scripted {
                fail_connect: f2.clone(),
                panic_connect: info.fe_dom == 3,
                connects: c2.clone(),
            }))
        }),
    );
    let stop = sup.stop_flag();
    let h = std::thread::spawn(move || sup.run().unwrap());

    let s = spec(1);
    create_device(&*lb.xenstore(0), &s).unwrap();
    wait(&lb, &s, XenbusState::InitWait);
    set_fe(&lb, &s, XenbusState::Initialised);
    wait(&lb, &s, XenbusState::Connected);
    // The frontend closes: back to InitWait, ready for a reconnect.
    set_fe(&lb, &s, XenbusState::Closing);
    wait(&lb, &s, XenbusState::InitWait);
    // A connect that fails: Closing and a log line.
    fail.store(true, Ordering::Relaxed);
    set_fe(&lb, &s, XenbusState::Initialised);
    wait(&lb, &s, XenbusState::Closing);
    assert!(!testlog::lines_containing("scripted failure").is_empty());
    // The frontend resets; the next attempt succeeds.
    fail.store(false, Ordering::Relaxed);
    set_fe(&lb, &s, XenbusState::Closed);
    wait(&lb, &s, XenbusState::InitWait);
    set_fe(&lb, &s, XenbusState::Initialised);
    wait(&lb, &s, XenbusState::Connected);
    assert_eq!(connects.load(Ordering::Relaxed), 3);

    // Malformed frontend-id written by a broken toolstack: Closing.
    let bad = spec(2);
    create_device(&*lb.xenstore(0), &bad).unwrap();
    lb.xenstore(0)
        .write(&format!("{}/frontend-id", bad.be_dir()), b"two")
        .unwrap();
    lb.xenstore(0)
        .write(&format!("{}/x", bad.be_dir()), b"")
        .unwrap();
    // (The supervisor may have started it before the bad write; either
    // way the device must not end Connected.)
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_ne!(
        xenbus::read_state(&*lb.xenstore(9), &bad.be_dir()),
        XenbusState::Connected
    );

    // A device that panics: Closing, the others untouched.
    let p = spec(3);
    create_device(&*lb.xenstore(0), &p).unwrap();
    wait(&lb, &p, XenbusState::InitWait);
    set_fe(&lb, &p, XenbusState::Initialised);
    wait(&lb, &p, XenbusState::Closing);
    assert!(!testlog::lines_containing("failed internally").is_empty());
    assert_eq!(
        xenbus::read_state(&*lb.xenstore(9), &s.be_dir()),
        XenbusState::Connected
    );

    // Removing the backend directory ends that device's thread.
    lb.xenstore(0).rm(&s.be_dir()).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while testlog::lines_containing("removed by the toolstack").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "device thread did not notice its removal"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }

    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
}
