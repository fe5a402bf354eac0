//! The compositor serving a driver domain's PV devices (`cockpit run
//! --backend`), over the loopback transport (a test harness): a guest's
//! vdispl frames land where the layout puts its domain *by name*, touches
//! on that region reach the same guest's vkbd frontend in its own pixels,
//! and a domain whose name is missing or not plain is placed nowhere: its
//! display is refused.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cockpit::pv_backends::{domain_name, PvBackends};
use cockpit_core::{Compositor, DisplayEvent, Layout};
use drm_fourcc::DrmFourcc;
use pv_backend::toolstack::{create_device, DeviceSpec};
use pv_config::BackendConfig;
use pv_transport::loopback::Loopback;
use pv_transport::{Platform, RingMemory};
use vdispl_front::{SetConfig, VdisplFront};
use vkbd_front::{Options, VkbdFront};
use xen_abi::io::kbdif::{InEvent, MtEvent};

// The IVI's 16x16 buffer at 2x in the right half of a 64x32 display.
const LAYOUT: &str = r##"
[[display]]
name = "main"
mode = "64x32"
background = "#000000"

[[source]]
name = "ivi"
guest = "ivi/0"
display = "main"
rect = [32, 0, 32, 32]
scaling = "integer"

[[source]]
name = "badge"
guest = "big/0"
display = "main"
rect = [0, 0, 8, 8]
"##;

const RED: u32 = 0xffff_0000;

fn device(kind: &str, fe_dom: u16, fe_nodes: &[(&str, &str)]) -> DeviceSpec {
    DeviceSpec {
        be_kind: kind.into(),
        fe_kind: kind.into(),
        be_dom: 0,
        fe_dom,
        dev_id: 0,
        fe_nodes: fe_nodes.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        be_nodes: vec![],
    }
}

/// Connects a vdispl frontend for `dom` and shows one red 16x16 frame.
fn show_red(lb: &Loopback, dom: u16) -> VdisplFront {
    let mut fe = VdisplFront::connect(lb.platform(dom).open().unwrap(), 0, 5000).unwrap();
    let buf = fe.create_dbuf(16, 16, 32).unwrap();
    let d = fe.dbuf(buf).unwrap();
    for y in 0..16 {
        d.memory().write_bytes((y * d.pitch) as usize, &[0x00, 0x00, 0xff, 0x00].repeat(16));
    }
    let fb = fe.attach_fb(buf, 16, 16, DrmFourcc::Xrgb8888 as u32).unwrap();
    fe.set_config(0, SetConfig { fb_cookie: fb, x: 0, y: 0, width: 16, height: 16, bpp: 32 }).unwrap();
    fe
}

fn red_pixels(c: &Compositor) -> usize {
    let canvas = c.snapshot(0);
    canvas.pixels().iter().filter(|&&p| p == RED).count()
}

/// Renders until `done` holds or 5 s pass.
fn render_until(comp: &mut Compositor, done: impl Fn(&Compositor) -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        comp.render(Instant::now());
        comp.frame_presented();
        if done(comp) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn guests_are_placed_by_domain_name_and_touched_in_their_own_pixels() {
    let mut comp = Compositor::new(Layout::parse(LAYOUT, Path::new("layout.toml")).unwrap());
    let lb = Loopback::new();
    let store = lb.xenstore(0);
    store.write("/local/domain/1/name", b"ivi").unwrap();
    // Domain 2 is called "ivi/0" (not a plain name): it is domain "#2".
    store.write("/local/domain/2/name", b"ivi/0").unwrap();
    assert_eq!(domain_name(&*store, 1), "ivi");
    assert_eq!(domain_name(&*store, 2), "#2");
    assert_eq!(domain_name(&*store, 3), "#3", "no name node");

    let cfg = BackendConfig::from_toml("transport = \"loopback\"\n[vkbd]\ntouch = [16, 16]\npointer = [16, 16]\n").unwrap();
    let backends = PvBackends::start(&cfg, Arc::new(lb.platform(0)), comp.sources()).unwrap();
    for dom in [1, 2] {
        let conn = [("be-alloc", "0"), ("0/resolution", "16x16"), ("0/unique-id", "ivi")];
        create_device(&*store, &device("vdispl", dom, &conn)).unwrap();
    }
    create_device(&*store, &device("vkbd", 1, &[])).unwrap();
    // Domain 3 has an 8x8 place and asks for a 17x17 display: every frame
    // of it would be copied, so more than twice its place is refused.
    store.write("/local/domain/3/name", b"big").unwrap();
    create_device(&*store, &device("vdispl", 3, &[("be-alloc", "0"), ("0/resolution", "17x17")])).unwrap();
    assert!(VdisplFront::connect(lb.platform(3).open().unwrap(), 0, 5000).is_err(), "an oversized display is refused");

    // Domain 2 tries first: the layout has no "#2/0", so its display is
    // refused and nothing of it is shown.
    let impostor = VdisplFront::connect(lb.platform(2).open().unwrap(), 0, 5000);
    assert!(impostor.is_err(), "domain 2 has no place in the layout");
    assert!(!render_until(&mut comp, |c| red_pixels(c) > 0), "domain 2's frame must not be shown in the IVI's place");
    // The IVI's frame fills its region at 2x.
    let ivi = show_red(&lb, 1);
    assert!(render_until(&mut comp, |c| red_pixels(c) == 32 * 32), "the IVI's frame fills its 32x32 region");

    // A touch at display (41, 13) is IVI pixel (4, 6); one outside it is
    // nobody's.
    let opts = Options { abs_pointer: true, multi_touch: true, raw_pointer: false };
    let mut kbd = VkbdFront::connect(lb.platform(1).open().unwrap(), 0, opts, 5000).unwrap();
    comp.input(&DisplayEvent::TouchDown { display: 0, id: 1, x: 10.0, y: 10.0 });
    comp.input(&DisplayEvent::TouchUp { id: 1 });
    comp.input(&DisplayEvent::TouchFrame);
    comp.input(&DisplayEvent::TouchDown { display: 0, id: 2, x: 41.0, y: 13.0 });
    comp.input(&DisplayEvent::TouchFrame);
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && !got.iter().any(|e| matches!(e, InEvent::MultiTouch { event: MtEvent::Syn, .. })) {
        got.extend(kbd.wait_events(50).unwrap());
    }
    let downs: Vec<_> = got
        .iter()
        .filter_map(|e| match e {
            InEvent::MultiTouch { event: MtEvent::Down { abs_x, abs_y }, .. } => Some((*abs_x, *abs_y)),
            _ => None,
        })
        .collect();
    assert_eq!(downs, vec![(4, 6)], "exactly the touch on the IVI, in its buffer's pixels: {got:?}");

    drop((kbd, ivi));
    drop(backends);
}
