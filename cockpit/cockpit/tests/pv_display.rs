//! A Rust vdispl frontend drives the PV display backend over the loopback
//! transport (a test harness), and the backend's sink is the compositor: the
//! guest's framebuffer appears on the composed display pixel for pixel, and
//! a page flip completes only once the compositor has presented it.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use cockpit::pv_display::CompositorSink;
use cockpit_core::{Compositor, Layout};
use drm_fourcc::DrmFourcc;
use pv_backend::toolstack::{create_device, DeviceSpec};
use pv_backend::Supervisor;
use pv_transport::loopback::Loopback;
use pv_transport::{Platform, RingMemory};
use vdispl_back::{VdisplBackend, VdisplConfig};
use vdispl_front::{SetConfig, VdisplFront};

const LAYOUT: &str = r##"
[[display]]
name = "main"
mode = "32x16"
background = "#0000ff"

[[source]]
name = "ivi"
guest = "1/0"
display = "main"
rect = [0, 0, 32, 16]
"##;

/// An XRGB8888 picture the guest draws, and the pixels the display shows.
fn draw(fe: &VdisplFront, dbuf: u64, seed: u32) -> Vec<u32> {
    let d = fe.dbuf(dbuf).unwrap();
    let mut want = Vec::new();
    for y in 0..16u32 {
        let mut row = Vec::new();
        for x in 0..32u32 {
            let (r, g, b) = ((x * 8 + seed) as u8, (y * 16) as u8, (seed * 3) as u8);
            row.extend_from_slice(&[b, g, r, 0x00]);
            want.push(0xff00_0000 | (r as u32) << 16 | (g as u32) << 8 | b as u32);
        }
        d.memory().write_bytes((y * d.pitch) as usize, &row);
    }
    want
}

fn shown(c: &Compositor) -> Vec<u32> {
    let canvas = c.snapshot(0);
    (0..canvas.height()).flat_map(|y| (0..canvas.width()).map(move |x| (x, y))).map(|(x, y)| canvas.get(x, y)).collect()
}

/// The compositor serving one vdispl device on the loopback transport, and
/// the Rust frontend of domain 1 connected to it.
struct Bed {
    comp: Compositor,
    fe: VdisplFront,
    stop: Arc<AtomicBool>,
    backend: std::thread::JoinHandle<()>,
    _lb: Loopback,
}

impl Bed {
    /// `tune` adjusts the sink (e.g. its flip interval).
    fn start(tune: fn(CompositorSink) -> CompositorSink) -> Bed {
        let comp = Compositor::new(Layout::parse(LAYOUT, Path::new("layout.toml")).unwrap());
        let lb = Loopback::new();
        let sources = comp.sources();
        let mut sup = Supervisor::new(Arc::new(lb.platform(0)));
        sup.serve_kind(
            "vdispl",
            Box::new(move |_| {
                let sink = tune(CompositorSink::new(sources.clone(), Box::new(|dom| dom.to_string())));
                Some(Box::new(VdisplBackend::new(VdisplConfig::default(), Box::new(sink))))
            }),
        );
        let stop: Arc<AtomicBool> = sup.stop_flag();
        let backend = std::thread::spawn(move || sup.run().unwrap());
        let spec = DeviceSpec {
            be_kind: "vdispl".into(),
            fe_kind: "vdispl".into(),
            be_dom: 0,
            fe_dom: 1,
            dev_id: 0,
            fe_nodes: vec![("be-alloc".into(), "0".into()), ("0/resolution".into(), "32x16".into()), ("0/unique-id".into(), "ivi".into())],
            be_nodes: vec![],
        };
        create_device(&*lb.xenstore(0), &spec).unwrap();
        let fe = VdisplFront::connect(lb.platform(1).open().unwrap(), 0, 5000).unwrap();
        Bed { comp, fe, stop, backend, _lb: lb }
    }
}

#[test]
fn guest_framebuffers_are_composed_and_flips_wait_for_presentation() {
    let Bed { mut comp, mut fe, stop, backend, _lb } = Bed::start(std::convert::identity);

    let xr24 = DrmFourcc::Xrgb8888 as u32;
    let (a, b) = (fe.create_dbuf(32, 16, 32).unwrap(), fe.create_dbuf(32, 16, 32).unwrap());
    let (want_a, want_b) = (draw(&fe, a, 0), draw(&fe, b, 100));
    let (fa, fb) = (fe.attach_fb(a, 32, 16, xr24).unwrap(), fe.attach_fb(b, 32, 16, xr24).unwrap());
    fe.set_config(0, SetConfig { fb_cookie: fa, x: 0, y: 0, width: 32, height: 16, bpp: 32 }).unwrap();
    comp.render(Instant::now());
    comp.frame_presented();
    assert_eq!(shown(&comp), want_a, "the guest's first framebuffer fills the display");

    fe.page_flip(0, fb).unwrap();
    assert!(fe.wait_flip_done(0, fb, 300).is_err(), "not shown yet, so the flip must not be done");
    comp.render(Instant::now());
    comp.frame_presented();
    fe.wait_flip_done(0, fb, 3000).expect("flip done once presented");
    assert_eq!(shown(&comp), want_b);

    drop(fe);
    stop.store(true, Ordering::Relaxed);
    backend.join().unwrap();
}

#[test]
fn a_flip_storm_is_copied_in_once_per_interval_and_the_newest_picture_shows() {
    // A wide interval, so the flips below surely come within it.
    let Bed { mut comp, mut fe, stop, backend, _lb } =
        Bed::start(|sink| sink.with_min_flip_interval(std::time::Duration::from_millis(500)));
    let xr24 = DrmFourcc::Xrgb8888 as u32;
    let bufs: Vec<u64> = (0..3).map(|_| fe.create_dbuf(32, 16, 32).unwrap()).collect();
    let want: Vec<Vec<u32>> = bufs.iter().zip([0, 100, 200]).map(|(&b, seed)| draw(&fe, b, seed)).collect();
    let fbs: Vec<u64> = bufs.iter().map(|&b| fe.attach_fb(b, 32, 16, xr24).unwrap()).collect();
    fe.set_config(0, SetConfig { fb_cookie: fbs[0], x: 0, y: 0, width: 32, height: 16, bpp: 32 }).unwrap();
    let present = |comp: &mut Compositor| {
        comp.render(Instant::now());
        comp.frame_presented();
    };
    present(&mut comp);
    let taken = |comp: &Compositor| comp.source_frames().next().unwrap().1;
    assert_eq!(taken(&comp), 1);

    // Three flips back to back: the first is copied in, the second waits,
    // the third replaces it (which completes without being shown).
    fe.page_flip(0, fbs[1]).unwrap();
    fe.page_flip(0, fbs[2]).unwrap();
    fe.page_flip(0, fbs[0]).unwrap();
    fe.wait_flip_done(0, fbs[2], 3000).expect("the replaced flip completes");
    present(&mut comp);
    assert_eq!(shown(&comp), want[1], "the first flip of the storm shows at once");
    fe.wait_flip_done(0, fbs[1], 3000).expect("flip done once presented");

    // After the interval the newest flip is copied in and shown.
    let t0 = Instant::now();
    while shown(&comp) != want[0] {
        assert!(t0.elapsed() < std::time::Duration::from_secs(5), "the storm's last picture never showed");
        std::thread::sleep(std::time::Duration::from_millis(20));
        present(&mut comp);
    }
    fe.wait_flip_done(0, fbs[0], 3000).expect("the last flip completes once shown");
    assert_eq!(taken(&comp), 3, "the configuration, the first flip and the last: the replaced one was never copied");

    // A flip that waits, then a new configuration: the configuration is
    // newer, so the waiting flip completes unshown and never comes back.
    fe.page_flip(0, fbs[1]).unwrap();
    fe.set_config(0, SetConfig { fb_cookie: fbs[2], x: 0, y: 0, width: 32, height: 16, bpp: 32 }).unwrap();
    fe.wait_flip_done(0, fbs[1], 3000).expect("the waiting flip completes");
    let t0 = Instant::now();
    while t0.elapsed() < std::time::Duration::from_millis(800) {
        present(&mut comp);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(shown(&comp), want[2], "the configuration stays; the older flip was not shown after it");

    drop(fe);
    stop.store(true, Ordering::Relaxed);
    backend.join().unwrap();
}

/// Flips copied into reused memory: every picture shows whole, composed
/// afresh (memory still shown or kept for comparison is never written).
#[test]
fn many_flips_through_reused_memory_each_show_whole() {
    let Bed { mut comp, mut fe, stop, backend, _lb } =
        Bed::start(|sink| sink.with_min_flip_interval(std::time::Duration::ZERO));
    let xr24 = DrmFourcc::Xrgb8888 as u32;
    let bufs: Vec<u64> = (0..3).map(|_| fe.create_dbuf(32, 16, 32).unwrap()).collect();
    let fbs: Vec<u64> = bufs.iter().map(|&b| fe.attach_fb(b, 32, 16, xr24).unwrap()).collect();
    draw(&fe, bufs[0], 7);
    fe.set_config(0, SetConfig { fb_cookie: fbs[0], x: 0, y: 0, width: 32, height: 16, bpp: 32 }).unwrap();
    comp.render(Instant::now());
    comp.frame_presented();
    for k in 1..12u32 {
        let i = (k % 3) as usize;
        let want = draw(&fe, bufs[i], k * 37);
        fe.page_flip(0, fbs[i]).unwrap();
        let t0 = Instant::now();
        loop {
            comp.damage_all();
            comp.render(Instant::now());
            comp.frame_presented();
            if shown(&comp) == want {
                break;
            }
            assert!(t0.elapsed() < std::time::Duration::from_secs(5), "flip {k} never showed whole");
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        fe.wait_flip_done(0, fbs[i], 3000).expect("flip done once presented");
    }
    drop(fe);
    stop.store(true, Ordering::Relaxed);
    backend.join().unwrap();
}
