//! vkbd end to end on the loopback transport: recorded evdev streams in,
//! the Rust frontend's events out, checked one by one; hostile frontends
//! are closed with a log line while a well-behaved one keeps working.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pv_backend::toolstack::{create_device, DeviceSpec};
use pv_backend::{testlog, Supervisor};
use pv_transport::loopback::Loopback;
use pv_transport::xenbus::{self, XenbusState};
use pv_transport::{Platform, RingMemory};
use vkbd_back::codes::*;
use vkbd_back::{
    parse_input_events, AbsRange, ChannelSource, InputSource, RawEvent, VkbdBackend, VkbdConfig,
};
use vkbd_front::{InEvent, MtEvent, Options, VkbdFront};

type Senders = Arc<Mutex<Vec<(u16, Sender<RawEvent>)>>>;

/// A backend in dom0 whose every device gets a touchscreen-like channel
/// source; the test keeps the senders, keyed by frontend domain.
fn start_backend(
    lb: &Loopback,
) -> (
    Senders,
    Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<()>,
) {
    testlog::init();
    let senders: Senders = Arc::default();
    let s2 = senders.clone();
    let mut sup = Supervisor::new(Arc::new(lb.platform(0)));
    sup.serve_kind(
        "vkbd",
        Box::new(move |info| {
            let (tx, rx) = channel();
            s2.lock().unwrap().push((info.fe_dom, tx));
            let range = AbsRange { min: 0, max: 4095 };
            let src = ChannelSource::new(
                "touch",
                &[
                    (ABS_X, range),
                    (ABS_Y, range),
                    (ABS_MT_POSITION_X, range),
                    (ABS_MT_POSITION_Y, range),
                ],
                rx,
            );
            let cfg = VkbdConfig {
                width: 1024,
                height: 768,
                mt_width: 1024,
                mt_height: 768,
                mt_contacts: 2,
                ..Default::default()
            };
            Some(Box::new(VkbdBackend::new(
                cfg,
                vec![Box::new(src) as Box<dyn InputSource>],
            )))
        }),
    );
    let stop = sup.stop_flag();
    let h = std::thread::spawn(move || sup.run().unwrap());
    (senders, stop, h)
}

fn add_device(lb: &Loopback, fe_dom: u16) -> DeviceSpec {
    let spec = DeviceSpec {
        be_kind: "vkbd".into(),
        fe_kind: "vkbd".into(),
        be_dom: 0,
        fe_dom,
        dev_id: 0,
        ..Default::default()
    };
    create_device(&*lb.xenstore(0), &spec).unwrap();
    spec
}

fn sender(s: &Senders, dom: u16) -> Sender<RawEvent> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some((_, tx)) = s.lock().unwrap().iter().find(|(d, _)| *d == dom) {
            return tx.clone();
        }
        assert!(
            Instant::now() < deadline,
            "backend never created the device"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `struct input_event` records as a recorder would have written them.
fn recording(events: &[(u16, u16, i32)]) -> Vec<u8> {
    let mut b = Vec::new();
    for (i, &(k, c, v)) in events.iter().enumerate() {
        b.extend_from_slice(&(1_700_000_000i64 + i as i64).to_le_bytes());
        b.extend_from_slice(&(i as i64 * 1000).to_le_bytes());
        b.extend_from_slice(&k.to_le_bytes());
        b.extend_from_slice(&c.to_le_bytes());
        b.extend_from_slice(&v.to_le_bytes());
    }
    b
}

fn collect(fe: &mut VkbdFront, n: usize) -> Vec<InEvent> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < n && Instant::now() < deadline {
        got.extend(fe.wait_events(50).unwrap());
    }
    got
}

#[test]
fn recorded_touch_keyboard_and_wheel_reach_the_frontend_in_order() {
    let lb = Loopback::new();
    let (senders, stop, h) = start_backend(&lb);
    add_device(&lb, 1);
    let opts = Options {
        abs_pointer: true,
        multi_touch: true,
        raw_pointer: false,
    };
    let mut fe = VkbdFront::connect(lb.platform(1).open().unwrap(), 0, opts, 5000).unwrap();
    assert_eq!(fe.granted(), opts);
    assert_eq!((fe.features().width, fe.features().mt_contacts), (1024, 2));

    let rec = recording(&[
        (EV_KEY, 30, 1), // KEY_A
        (EV_SYN, SYN_REPORT, 0),
        (EV_KEY, 30, 0),
        (EV_SYN, SYN_REPORT, 0),
        (EV_ABS, ABS_MT_SLOT, 0),
        (EV_ABS, ABS_MT_TRACKING_ID, 11),
        (EV_ABS, ABS_MT_POSITION_X, 0),
        (EV_ABS, ABS_MT_POSITION_Y, 4095),
        (EV_SYN, SYN_REPORT, 0),
        (EV_ABS, ABS_MT_SLOT, 1),
        (EV_ABS, ABS_MT_TRACKING_ID, 12),
        (EV_ABS, ABS_MT_POSITION_X, 4095),
        (EV_ABS, ABS_MT_POSITION_Y, 0),
        (EV_SYN, SYN_REPORT, 0),
        (EV_ABS, ABS_MT_SLOT, 0),
        (EV_ABS, ABS_MT_POSITION_X, 2048),
        (EV_SYN, SYN_REPORT, 0),
        (EV_ABS, ABS_MT_TRACKING_ID, -1),
        (EV_ABS, ABS_MT_SLOT, 1),
        (EV_ABS, ABS_MT_TRACKING_ID, -1),
        (EV_SYN, SYN_REPORT, 0),
        (EV_REL, REL_WHEEL, -1),
        (EV_SYN, SYN_REPORT, 0),
    ]);
    let tx = sender(&senders, 1);
    for ev in parse_input_events(&rec).unwrap() {
        tx.send(ev).unwrap();
    }
    let mt = |contact_id, event| InEvent::MultiTouch { contact_id, event };
    let want = vec![
        InEvent::Key {
            pressed: true,
            keycode: 30,
        },
        InEvent::Key {
            pressed: false,
            keycode: 30,
        },
        mt(
            0,
            MtEvent::Down {
                abs_x: 0,
                abs_y: 767,
            },
        ),
        mt(0, MtEvent::Syn),
        mt(
            1,
            MtEvent::Down {
                abs_x: 1023,
                abs_y: 0,
            },
        ),
        mt(1, MtEvent::Syn),
        mt(
            0,
            MtEvent::Motion {
                abs_x: 512,
                abs_y: 767,
            },
        ),
        mt(0, MtEvent::Syn),
        mt(0, MtEvent::Up),
        mt(1, MtEvent::Up),
        mt(1, MtEvent::Syn),
        // Wheel down (-1 in evdev) is +1 in kbdif, with the last position.
        InEvent::Motion {
            rel_x: 0,
            rel_y: 0,
            rel_z: 1,
        },
    ];
    let got = collect(&mut fe, want.len());
    assert_eq!(got, want);

    // More events than the ring holds arrive complete and in order.
    for i in 0..200 {
        tx.send(RawEvent::new(EV_KEY, 2 + (i % 10) as u16, 1))
            .unwrap();
        tx.send(RawEvent::new(EV_SYN, SYN_REPORT, 0)).unwrap();
    }
    let got = collect(&mut fe, 200);
    let want: Vec<_> = (0..200)
        .map(|i| InEvent::Key {
            pressed: true,
            keycode: 2 + (i % 10),
        })
        .collect();
    assert_eq!(got, want);

    fe.close(2000).unwrap();
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
}

/// Waits until the backend directory of `spec` shows `state`.
fn wait_backend(lb: &Loopback, spec: &DeviceSpec, state: XenbusState) {
    let xs = lb.xenstore(9);
    xenbus::wait_state(&*xs, &spec.be_dir(), "t", 5000, |s| s == state)
        .unwrap_or_else(|_| panic!("backend never reached {state:?}"));
}

#[test]
fn hostile_frontends_are_closed_and_logged_while_others_keep_working() {
    let lb = Loopback::new();
    let (senders, stop, h) = start_backend(&lb);

    // A good frontend in dom 2.
    add_device(&lb, 2);
    let opts = Options {
        abs_pointer: true,
        multi_touch: true,
        raw_pointer: false,
    };
    let mut good = VkbdFront::connect(lb.platform(2).open().unwrap(), 0, opts, 5000).unwrap();

    // Dom 3 publishes a grant it never made.
    let bad = add_device(&lb, 3);
    wait_backend(&lb, &bad, XenbusState::InitWait);
    let xs3 = lb.xenstore(3);
    let fe = bad.fe_dir();
    xs3.write(&format!("{fe}/page-gref"), b"4242").unwrap();
    xs3.write(&format!("{fe}/event-channel"), b"1").unwrap();
    xs3.write(&format!("{fe}/state"), b"3").unwrap();
    wait_backend(&lb, &bad, XenbusState::Closed);
    assert!(
        !testlog::lines_containing("dom3").is_empty(),
        "bad grant was not logged"
    );

    // Dom 4 publishes malformed xenstore values.
    let bad4 = add_device(&lb, 4);
    wait_backend(&lb, &bad4, XenbusState::InitWait);
    let xs4 = lb.xenstore(4);
    xs4.write(&format!("{}/page-gref", bad4.fe_dir()), b"twelve")
        .unwrap();
    xs4.write(&format!("{}/state", bad4.fe_dir()), b"3")
        .unwrap();
    wait_backend(&lb, &bad4, XenbusState::Closed);
    assert!(!testlog::lines_containing("page-gref").is_empty());

    // Dom 5 connects properly, then scribbles over in_cons.
    let bad5 = add_device(&lb, 5);
    let _evil = VkbdFront::connect(lb.platform(5).open().unwrap(), 0, opts, 5000).unwrap();
    let page_gref: u32 = String::from_utf8(
        lb.xenstore(5)
            .read(&format!("{}/page-gref", bad5.fe_dir()))
            .unwrap(),
    )
    .unwrap()
    .parse()
    .unwrap();
    // The page as granted to dom0: the frontend's writes land here too.
    let page = pv_transport::GrantMapper::map(&*lb.grants(0), 5, &[page_gref], true).unwrap();
    page.write_u32(0, 0x8000_0000); // in_cons far beyond in_prod
    let tx5 = sender(&senders, 5);
    tx5.send(RawEvent::new(EV_KEY, 30, 1)).unwrap();
    tx5.send(RawEvent::new(EV_SYN, SYN_REPORT, 0)).unwrap();
    wait_backend(&lb, &bad5, XenbusState::Closed);
    assert!(!testlog::lines_containing("beyond the ring").is_empty());

    // The good frontend still gets its events.
    let tx2 = sender(&senders, 2);
    tx2.send(RawEvent::new(EV_KEY, 48, 1)).unwrap();
    tx2.send(RawEvent::new(EV_SYN, SYN_REPORT, 0)).unwrap();
    assert_eq!(
        collect(&mut good, 1),
        vec![InEvent::Key {
            pressed: true,
            keycode: 48
        }]
    );

    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
}

/// Input made while the guest had no frontend connected (it was rebooting)
/// is dropped: the first event the new frontend sees is one made after it
/// connected. f64e04b delivered the stale taps on connect.
#[test]
fn input_made_while_disconnected_is_not_delivered_on_connect() {
    let lb = Loopback::new();
    let (senders, stop, h) = start_backend(&lb);
    let spec = add_device(&lb, 15);
    let tx = sender(&senders, 15);
    wait_backend(&lb, &spec, XenbusState::InitWait);
    // A stale key press and release, before any frontend.
    for (t, c, v) in [(EV_KEY, 30u16, 1), (EV_SYN, SYN_REPORT, 0), (EV_KEY, 30, 0), (EV_SYN, SYN_REPORT, 0)] {
        tx.send(RawEvent { kind: t, code: c, value: v }).unwrap();
    }
    std::thread::sleep(Duration::from_millis(50));
    let mut fe = VkbdFront::connect(lb.platform(15).open().unwrap(), 0, Default::default(), 5000).unwrap();
    for (t, c, v) in [(EV_KEY, 48u16, 1), (EV_SYN, SYN_REPORT, 0)] {
        tx.send(RawEvent { kind: t, code: c, value: v }).unwrap();
    }
    let got = collect(&mut fe, 1);
    assert_eq!(got.first(), Some(&InEvent::Key { pressed: true, keycode: 48 }), "{got:?}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    h.join().unwrap();
}
