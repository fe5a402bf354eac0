//! A touch on the display, routed by the compositor through the layout, is
//! delivered through the PV keyboard/touch backend (`vkbd-back`, loopback
//! transport as the test harness) to the guest's Rust vkbd frontend, at the
//! position in the guest's own buffer.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cockpit::pv_input::{InputHub, VkbdInput};
use cockpit_core::{Compositor, DisplayEvent, Frame, Layout, PixelFormat};
use pv_backend::toolstack::{create_device, DeviceSpec};
use pv_backend::Supervisor;
use pv_transport::loopback::Loopback;
use pv_transport::Platform;
use vkbd_back::{InputSource, VkbdBackend, VkbdConfig};
use vkbd_front::{Options, VkbdFront};
use xen_abi::io::kbdif::{InEvent, MtEvent};

// A 16x16 guest buffer shown at 2x in the right half of a 64x32 display.
const LAYOUT: &str = r##"
[[display]]
name = "main"
mode = "64x32"

[[source]]
name = "ivi"
guest = "1/0"
display = "main"
rect = [32, 0, 32, 32]
scaling = "fit"
"##;

#[test]
fn a_touch_reaches_the_guest_under_it_in_its_own_pixels() {
    let mut comp = Compositor::new(Layout::parse(LAYOUT, Path::new("layout.toml")).unwrap());
    let ivi = comp.sources().connect_by_name("ivi").unwrap();
    ivi.submit(Frame::from_pixels(&[0xff20_4060u32; 256], 16, 16, PixelFormat::Xrgb8888).unwrap());
    comp.render(Instant::now());

    // The vkbd backend reads the compositor's routed events as its device,
    // which it opens only when the frontend appears (after the source has
    // its input).
    let hub = InputHub::default();
    ivi.set_input(Box::new(VkbdInput::new(hub.clone(), 1, 16, 16)));
    let lb = Loopback::new();
    let mut sup = Supervisor::new(Arc::new(lb.platform(0)));
    sup.serve_kind(
        "vkbd",
        Box::new(move |info| {
            let src = hub.source(info.fe_dom, "cockpit ivi");
            let cfg = VkbdConfig { width: 16, height: 16, mt_width: 16, mt_height: 16, mt_contacts: 2, ..Default::default() };
            Some(Box::new(VkbdBackend::new(cfg, vec![Box::new(src) as Box<dyn InputSource>])))
        }),
    );
    let stop = sup.stop_flag();
    let backend = std::thread::spawn(move || sup.run().unwrap());
    create_device(&*lb.xenstore(0), &DeviceSpec { be_kind: "vkbd".into(), fe_kind: "vkbd".into(), be_dom: 0, fe_dom: 1, dev_id: 0, ..Default::default() })
        .unwrap();
    let opts = Options { abs_pointer: true, multi_touch: true, raw_pointer: false };
    let mut fe = VkbdFront::connect(lb.platform(1).open().unwrap(), 0, opts, 5000).unwrap();

    // Outside the IVI's region: nobody gets it. Then display (41, 13) is
    // buffer pixel ((41-32)/2, 13/2) = (4, 6).
    comp.input(&DisplayEvent::TouchDown { display: 0, id: 7, x: 10.0, y: 10.0 });
    comp.input(&DisplayEvent::TouchUp { id: 7 });
    comp.input(&DisplayEvent::TouchFrame);
    comp.input(&DisplayEvent::TouchDown { display: 0, id: 3, x: 41.0, y: 13.0 });
    comp.input(&DisplayEvent::TouchFrame);

    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && !got.iter().any(|e| matches!(e, InEvent::MultiTouch { event: MtEvent::Syn, .. })) {
        got.extend(fe.wait_events(50).unwrap());
    }
    let downs: Vec<_> = got
        .iter()
        .filter_map(|e| match e {
            InEvent::MultiTouch { event: MtEvent::Down { abs_x, abs_y }, .. } => Some((*abs_x, *abs_y)),
            _ => None,
        })
        .collect();
    assert_eq!(downs, vec![(4, 6)], "exactly the touch on the IVI, in its buffer's pixels: {got:?}");

    drop(fe);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    backend.join().unwrap();
}
