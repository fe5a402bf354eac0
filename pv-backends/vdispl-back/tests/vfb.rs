//! Legacy vfb on the loopback transport: a minimal xen-fbfront stand-in
//! (shared page, pd[] directory of frame numbers, UPDATE events) drawing
//! into its framebuffer; the PNG sink must show it pixel for pixel. Bad
//! geometry or a runaway ring moves the device to Closing.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use pv_backend::toolstack::{create_device, DeviceSpec};
use pv_backend::{testlog, Supervisor};
use pv_transport::loopback::Loopback;
use pv_transport::xenbus::{self, XenbusState};
use pv_transport::{EventChannel, GrantTable, RingMemory, Shm};
use vdispl_back::{PngSink, VfbBackend, VfbConfig};
use xen_abi::io::fbif::{out_slot_offset, page, OutEvent, PageHeader, PdAbi};

struct FakeFbfront {
    shared: Shm,
    fb: Shm,
    _dir: Shm,
    events: Box<dyn EventChannel>,
    port: u32,
}

/// Publishes a `w`×`h` XRGB8888 framebuffer the way xen-fbfront does
/// (frame numbers are the loopback's grant references).
fn fbfront(lb: &Loopback, spec: &DeviceSpec, w: u32, h: u32, mem_pages: usize) -> FakeFbfront {
    let g = lb.grants(spec.fe_dom);
    let shared = g.share(0, 1, false).unwrap();
    let fb = g.share(0, mem_pages, false).unwrap();
    let dir = g.share(0, 1, false).unwrap();
    let header = PageHeader {
        width: w as i32,
        height: h as i32,
        line_length: w * 4,
        mem_length: (mem_pages * 4096) as u32,
        depth: 32,
        ..Default::default()
    };
    shared.write_bytes(0, &header.encode());
    let off = PdAbi::Bits64.entry_offset(0).unwrap();
    shared.write_bytes(off, &u64::from(dir.grefs()[0]).to_le_bytes());
    for (i, &r) in fb.grefs().iter().enumerate() {
        dir.write_bytes(i * 8, &u64::from(r).to_le_bytes());
    }
    let events = lb.evtchn(spec.fe_dom);
    let port = events.alloc_unbound(0).unwrap();
    let xs = lb.xenstore(spec.fe_dom);
    let fe = spec.fe_dir();
    xs.write(
        &format!("{fe}/page-ref"),
        shared.grefs()[0].to_string().as_bytes(),
    )
    .unwrap();
    xs.write(&format!("{fe}/event-channel"), port.to_string().as_bytes())
        .unwrap();
    xs.write(&format!("{fe}/protocol"), b"x86_64-abi").unwrap();
    xs.write(&format!("{fe}/feature-update"), b"1").unwrap();
    xs.write(&format!("{fe}/state"), b"3").unwrap();
    FakeFbfront {
        shared,
        fb,
        _dir: dir,
        events,
        port,
    }
}

impl FakeFbfront {
    fn send(&self, ev: OutEvent) {
        let prod = self.shared.read_u32(page::OUT_PROD);
        self.shared.write_bytes(out_slot_offset(prod), &ev.encode());
        self.shared.write_u32(page::OUT_PROD, prod + 1);
        self.events.notify(self.port).unwrap();
    }
}

fn spec(dom: u16) -> DeviceSpec {
    DeviceSpec {
        be_kind: "vfb".into(),
        fe_kind: "vfb".into(),
        be_dom: 0,
        fe_dom: dom,
        dev_id: 0,
        ..Default::default()
    }
}

fn wait_be(lb: &Loopback, s: &DeviceSpec, st: XenbusState) {
    xenbus::wait_state(&*lb.xenstore(9), &s.be_dir(), "t", 5000, |x| x == st).unwrap();
}

/// Serves vfb devices on `lb` with `cfg` into PNG sinks (under a temporary
/// directory named after `tag`); each device's list of written files is
/// pushed to the returned list as it starts.
#[allow(clippy::type_complexity)]
fn serve(
    lb: &Loopback,
    tag: &str,
    cfg: VfbConfig,
) -> (Arc<Mutex<Vec<Arc<Mutex<Vec<std::path::PathBuf>>>>>>, Arc<std::sync::atomic::AtomicBool>, std::thread::JoinHandle<()>) {
    let dir = std::env::temp_dir().join(format!("{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let written = Arc::new(Mutex::new(Vec::new()));
    let w2 = written.clone();
    let mut sup = Supervisor::new(Arc::new(lb.platform(0)));
    sup.serve_kind(
        "vfb",
        Box::new(move |_| {
            let s = PngSink::new(dir.clone());
            w2.lock().unwrap().push(s.written.clone());
            Some(Box::new(VfbBackend::new(cfg.clone(), Box::new(s))))
        }),
    );
    let stop = sup.stop_flag();
    (written, stop, std::thread::spawn(move || sup.run().unwrap()))
}

#[test]
fn fbfront_updates_reach_the_sink_pixel_exact_and_bad_ones_close() {
    testlog::init();
    let lb = Loopback::new();
    let (written, stop, h) = serve(&lb, "vfb", VfbConfig::default());

    let s = spec(1);
    create_device(&*lb.xenstore(0), &s).unwrap();
    wait_be(&lb, &s, XenbusState::InitWait);
    let (w, hgt) = (40u32, 30u32);
    let fe = fbfront(&lb, &s, w, hgt, 2);
    wait_be(&lb, &s, XenbusState::Connected);
    assert_eq!(
        lb.xenstore(1)
            .read(&format!("{}/request-update", s.be_dir()))
            .unwrap(),
        b"1"
    );
    let mut want = Vec::new();
    for y in 0..hgt {
        for x in 0..w {
            let (r, g, b) = ((x * 6) as u8, (y * 8) as u8, (x + y) as u8);
            fe.fb.write_bytes(((y * w + x) * 4) as usize, &[b, g, r, 0]);
            want.extend_from_slice(&[r, g, b, 255]);
        }
    }
    fe.send(OutEvent::Update {
        x: 0,
        y: 0,
        width: w as i32,
        height: hgt as i32,
    });
    let files = loop {
        let f = written.lock().unwrap()[0].lock().unwrap().clone();
        if f.len() >= 2 {
            break f;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let dec = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&files[1]).unwrap(),
    ));
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (w, hgt));
    assert_eq!(&buf[..info.buffer_size()], &want[..]);

    // A runaway producer index: Closing, then Closed.
    fe.shared
        .write_u32(page::OUT_PROD, fe.shared.read_u32(page::OUT_CONS) + 500);
    fe.events.notify(fe.port).unwrap();
    wait_be(&lb, &s, XenbusState::Closed);
    assert!(!testlog::lines_containing("beyond the ring").is_empty());

    // A framebuffer claiming more memory than it shared: Closed, and not
    // tried again while the frontend keeps that configuration.
    let s2 = spec(2);
    create_device(&*lb.xenstore(0), &s2).unwrap();
    wait_be(&lb, &s2, XenbusState::InitWait);
    let big = fbfront(&lb, &s2, 4000, 4000, 1);
    let _ = &big;
    wait_be(&lb, &s2, XenbusState::Closed);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(testlog::lines_containing("geometry out of range").len(), 1);

    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
}

#[test]
fn a_storm_of_updates_is_gathered_into_frames_at_the_configured_rate_and_the_last_picture_shows() {
    testlog::init();
    let lb = Loopback::new();
    // A wide interval, so the storm below surely falls inside it.
    let (written, stop, h) = serve(&lb, "vfb-storm", VfbConfig { min_frame_ms: 1000, ..VfbConfig::default() });
    let s = spec(1);
    create_device(&*lb.xenstore(0), &s).unwrap();
    wait_be(&lb, &s, XenbusState::InitWait);
    let (w, hgt) = (16u32, 8u32);
    let fe = fbfront(&lb, &s, w, hgt, 1);
    wait_be(&lb, &s, XenbusState::Connected);
    let frames = || written.lock().unwrap()[0].lock().unwrap().clone();
    let all = OutEvent::Update { x: 0, y: 0, width: w as i32, height: hgt as i32 };
    let paint = |shade: u8| {
        for i in 0..(w * hgt) as usize {
            fe.fb.write_bytes(i * 4, &[shade, 0, 0, 0]);
        }
        fe.send(all);
    };
    let wait_for = |n: usize| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while frames().len() < n && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    };
    // One redraw: shown at once (after the connect's frame).
    paint(1);
    wait_for(2);
    assert_eq!(frames().len(), 2);
    // 49 more back to back, each in a new shade, all within the interval
    // since that frame: gathered into one frame, shown once it has passed.
    for shade in 2..=50u8 {
        paint(shade);
    }
    wait_for(3);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let files = frames();
    assert_eq!(files.len(), 3, "{files:?}");
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&files[2]).unwrap()));
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    r.next_frame(&mut buf).unwrap();
    assert_eq!(&buf[..4], &[0, 0, 50, 255], "the last redraw is what shows");
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
}

/// Records what each frame said changed.
struct DamageSink(Arc<Mutex<Vec<Option<[u32; 4]>>>>);

impl vdispl_back::DisplaySink for DamageSink {
    fn add_output(&mut self, _: u16, _: &vdispl_back::Output) -> Result<(), vdispl_back::SinkError> {
        Ok(())
    }
    fn configure(&mut self, _: u16, _: u32, frame: Option<vdispl_back::Frame>) -> Result<(), vdispl_back::SinkError> {
        if let Some(f) = frame {
            self.0.lock().unwrap().push(f.damage);
        }
        Ok(())
    }
    fn flip(&mut self, _: vdispl_back::Frame, _: vdispl_back::FlipDone) -> Result<(), vdispl_back::SinkError> {
        Ok(())
    }
    fn remove_outputs(&mut self, _: u16) {}
}

#[test]
fn update_rectangles_reach_the_sink_as_damage_clamped_and_gathered() {
    testlog::init();
    let lb = Loopback::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let mut sup = Supervisor::new(Arc::new(lb.platform(0)));
    sup.serve_kind(
        "vfb",
        Box::new(move |_| Some(Box::new(VfbBackend::new(VfbConfig { min_frame_ms: 300, ..VfbConfig::default() }, Box::new(DamageSink(s2.clone())))))),
    );
    let stop = sup.stop_flag();
    let h = std::thread::spawn(move || sup.run().unwrap());
    let s = spec(1);
    create_device(&*lb.xenstore(0), &s).unwrap();
    wait_be(&lb, &s, XenbusState::InitWait);
    let fe = fbfront(&lb, &s, 40, 30, 2);
    wait_be(&lb, &s, XenbusState::Connected);
    let wait_for = |n: usize| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while seen.lock().unwrap().len() < n && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        seen.lock().unwrap().clone()
    };
    // The frame shown at connect is all new; an UPDATE then is shown at
    // once, with its rectangle.
    assert_eq!(wait_for(1)[0], None, "the connect's frame is all new");
    fe.send(OutEvent::Update { x: 5, y: 6, width: 10, height: 4 });
    assert_eq!(wait_for(2)[1], Some([5, 6, 10, 4]));
    // Two more within the rate limit: one frame with their bounding box;
    // a rectangle reaching outside the picture is clamped into it.
    fe.send(OutEvent::Update { x: -7, y: 20, width: 12, height: 1000 });
    fe.send(OutEvent::Update { x: 30, y: 0, width: 5, height: 5 });
    let got = wait_for(3);
    assert_eq!(got.get(2).copied(), Some(Some([0, 0, 35, 30])), "{got:?}");
    // A rectangle of nothing but lies: no damage is made up from it.
    std::thread::sleep(std::time::Duration::from_millis(350));
    fe.send(OutEvent::Update { x: i32::MAX, y: i32::MIN, width: i32::MIN, height: -1 });
    let got = wait_for(4);
    assert_eq!(got.get(3).copied(), Some(None), "an empty UPDATE leaves damage unknown: {got:?}");
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
}
