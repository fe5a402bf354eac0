//! A guest reboot with all four device kinds (vsnd, vdispl, vkbd, vfb) on
//! the loopback transport: every frontend closes, every backend answers
//! Closing and then Closed (a Linux frontend waits up to 5 s per device
//! for that Closed at every reboot), and every device connects again when
//! the guest comes back.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use pv_backend::toolstack::{create_device, DeviceSpec};
use pv_config::BackendConfig;
use pv_transport::loopback::Loopback;
use pv_transport::xenbus::{self, XenbusState};
use pv_transport::Platform;

const DOM: u16 = 4;

fn vfb() -> DeviceSpec {
    DeviceSpec {
        be_kind: "vfb".into(),
        fe_kind: "vfb".into(),
        be_dom: 0,
        fe_dom: DOM,
        dev_id: 0,
        fe_nodes: vec![],
        be_nodes: vec![("width".into(), "64".into()), ("height".into(), "48".into())],
    }
}

fn be_reaches(lb: &Loopback, be_dir: &str, want: XenbusState) {
    let got = xenbus::wait_state(&*lb.xenstore(0), be_dir, "t", 5000, |s| s == want);
    assert!(got.is_ok(), "{be_dir} never reached {want:?} (it is {:?})", xenbus::read_state(&*lb.xenstore(0), be_dir));
}

#[test]
fn every_device_closes_and_reconnects_across_a_guest_reboot() {
    let cfg = BackendConfig::from_toml(&format!(
        r#"
transport = "loopback"
[sound]
default_device = "null"
[[guest]]
domain = {DOM}
xl = """
vdispl = [ 'backend=0,connectors=center:64x48' ]
vsnd = [ [ 'CARD, short-name=ivi, sample-rates=48000, sample-formats=s16_le',
           'PCM, name=main', 'STREAM, unique-id=media, type=p' ] ]
vkb = [ 'backend-type=linux,feature-abs-pointer=1,width=640,height=480' ]
"""
"#
    ))
    .unwrap();
    let lb = Loopback::new();
    let mut specs = pv_backendd::create_guests(&cfg, &*lb.xenstore(0)).unwrap();
    specs.push(vfb());
    create_device(&*lb.xenstore(0), &vfb()).unwrap();
    pv_backend::testlog::init();
    let sup = pv_backendd::supervisor(&cfg, Arc::new(lb.platform(0)));
    let stop = sup.stop_flag();
    let h = std::thread::spawn(move || sup.run().unwrap());

    let connect = || {
        let d = vdispl_front::VdisplFront::connect(lb.platform(DOM).open().unwrap(), 0, 5000).unwrap();
        let s = vsnd_front::VsndFront::connect(lb.platform(DOM).open().unwrap(), 0, 5000).unwrap();
        let k = vkbd_front::VkbdFront::connect(lb.platform(DOM).open().unwrap(), 0, Default::default(), 5000).unwrap();
        (d, s, k)
    };
    let (d, s, k) = connect();
    let fb = vfb();
    be_reaches(&lb, &fb.be_dir(), XenbusState::InitWait);
    let fe_xs = lb.xenstore(DOM);

    // The guest shuts down: each frontend Closing, then Closed, as Linux's
    // xenbus does on the way down.
    let t0 = Instant::now();
    d.disconnect(5000).unwrap();
    s.disconnect(5000).unwrap();
    k.close(5000).unwrap();
    xenbus::write_state(&*fe_xs, &fb.fe_dir(), XenbusState::Closing).unwrap();
    be_reaches(&lb, &fb.be_dir(), XenbusState::Closing);
    xenbus::write_state(&*fe_xs, &fb.fe_dir(), XenbusState::Closed).unwrap();
    for spec in &specs {
        be_reaches(&lb, &spec.be_dir(), XenbusState::Closed);
    }
    println!("guest reboot: {} devices closed in {:.1} ms", specs.len(), t0.elapsed().as_secs_f64() * 1000.0);

    // It comes back: every device connects again.
    let (d, s, k) = connect();
    xenbus::write_state(&*fe_xs, &fb.fe_dir(), XenbusState::Initialising).unwrap();
    be_reaches(&lb, &fb.be_dir(), XenbusState::InitWait);
    for spec in specs.iter().filter(|s| s.be_kind != "vfb") {
        assert_eq!(xenbus::read_state(&*lb.xenstore(0), &spec.be_dir()), XenbusState::Connected, "{}", spec.be_dir());
    }
    drop((d, s, k));
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
}
