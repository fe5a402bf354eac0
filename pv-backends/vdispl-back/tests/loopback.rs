//! vdispl end to end on the loopback transport: what the Rust frontend
//! draws comes out of the PNG sink pixel for pixel; flips complete only
//! through the sink; hostile frontends get errors or a closed device.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use drm_fourcc::DrmFourcc;
use pv_backend::toolstack::{create_device, DeviceSpec};
use pv_backend::{testlog, Supervisor};
use pv_transport::loopback::Loopback;
use pv_transport::xenbus::{self, XenbusState};
use pv_transport::{Platform, RingMemory};
use vdispl_back::{DisplaySink, FlipDone, Frame, Output, PngSink, VdisplBackend, VdisplConfig};
use vdispl_front::{Error, SetConfig, VdisplFront};

struct Backend {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.handle.take().map(|h| h.join());
    }
}

fn start(
    lb: &Loopback,
    sink: impl Fn() -> Box<dyn DisplaySink> + Send + Sync + 'static,
) -> Backend {
    start_with(lb, VdisplConfig::default(), sink)
}

fn start_with(
    lb: &Loopback,
    cfg: VdisplConfig,
    sink: impl Fn() -> Box<dyn DisplaySink> + Send + Sync + 'static,
) -> Backend {
    testlog::init();
    let mut sup = Supervisor::new(Arc::new(lb.platform(0)));
    sup.serve_kind(
        "vdispl",
        Box::new(move |_| Some(Box::new(VdisplBackend::new(cfg.clone(), sink())))),
    );
    let stop = sup.stop_flag();
    let handle = Some(std::thread::spawn(move || sup.run().unwrap()));
    Backend { stop, handle }
}

fn display(fe_dom: u16, connectors: &[(&str, &str)]) -> DeviceSpec {
    let mut fe_nodes = vec![("be-alloc".to_string(), "0".to_string())];
    for (i, (res, id)) in connectors.iter().enumerate() {
        fe_nodes.push((format!("{i}/resolution"), res.to_string()));
        fe_nodes.push((format!("{i}/unique-id"), id.to_string()));
    }
    DeviceSpec {
        be_kind: "vdispl".into(),
        fe_kind: "vdispl".into(),
        be_dom: 0,
        fe_dom,
        dev_id: 0,
        fe_nodes,
        be_nodes: vec![],
    }
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vdispl-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn decode_png(p: &PathBuf) -> (u32, u32, Vec<u8>) {
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(p).unwrap()));
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// Draws an XRGB8888 pattern and returns the RGBA the sink must produce.
fn draw_xrgb(fe: &VdisplFront, dbuf: u64, w: u32, h: u32, seed: u32) -> Vec<u8> {
    let d = fe.dbuf(dbuf).unwrap();
    let mut rgba = Vec::new();
    let mut row = Vec::new();
    for y in 0..h {
        row.clear();
        for x in 0..w {
            let (r, g, b) = ((x + seed) as u8, (y * 3) as u8, ((x ^ y) + seed) as u8);
            row.extend_from_slice(&[b, g, r, 0x5a]); // X byte must be ignored
            rgba.extend_from_slice(&[r, g, b, 255]);
        }
        d.memory().write_bytes((y * d.pitch) as usize, &row);
    }
    rgba
}

#[test]
fn frames_reach_the_png_sink_pixel_exact_and_flips_complete() {
    let lb = Loopback::new();
    let dir = tmpdir("exact");
    let written = Arc::new(Mutex::new(Vec::new()));
    let (d2, w2) = (dir.clone(), written.clone());
    let _be = start(&lb, move || {
        let s = PngSink::new(d2.clone());
        let mut w = w2.lock().unwrap();
        *w = vec![s.written.clone()];
        Box::new(s)
    });
    create_device(
        &*lb.xenstore(0),
        &display(1, &[("320x240", "center"), ("64x32", "cluster")]),
    )
    .unwrap();
    let mut fe = VdisplFront::connect(lb.platform(1).open().unwrap(), 0, 5000).unwrap();
    let conns: Vec<_> = fe.connectors().cloned().collect();
    assert_eq!(
        (conns.len(), conns[0].width, conns[1].unique_id.as_str()),
        (2, 320, "cluster")
    );

    let xr24 = DrmFourcc::Xrgb8888 as u32;
    let a = fe.create_dbuf(320, 240, 32).unwrap();
    let b = fe.create_dbuf(320, 240, 32).unwrap();
    let want_a = draw_xrgb(&fe, a, 320, 240, 0);
    let want_b = draw_xrgb(&fe, b, 320, 240, 77);
    let fa = fe.attach_fb(a, 320, 240, xr24).unwrap();
    let fb = fe.attach_fb(b, 320, 240, xr24).unwrap();
    fe.set_config(
        0,
        SetConfig {
            fb_cookie: fa,
            x: 0,
            y: 0,
            width: 320,
            height: 240,
            bpp: 32,
        },
    )
    .unwrap();
    fe.page_flip(0, fb).unwrap();
    fe.wait_flip_done(0, fb, 3000).unwrap();

    // RGB565 on the second connector.
    let c = fe.create_dbuf(64, 32, 16).unwrap();
    let mut want_c = Vec::new();
    {
        let d = fe.dbuf(c).unwrap();
        for y in 0..32u32 {
            for x in 0..64u32 {
                let (r5, g6, b5) = (x % 32, (y * 2) % 64, (x + y) % 32);
                let v = ((r5 << 11) | (g6 << 5) | b5) as u16;
                d.memory()
                    .write_bytes((y * d.pitch + x * 2) as usize, &v.to_le_bytes());
                want_c.extend_from_slice(&[
                    (r5 * 255 / 31) as u8,
                    (g6 * 255 / 63) as u8,
                    (b5 * 255 / 31) as u8,
                    255,
                ]);
            }
        }
    }
    let fc = fe.attach_fb(c, 64, 32, DrmFourcc::Rgb565 as u32).unwrap();
    fe.set_config(
        1,
        SetConfig {
            fb_cookie: fc,
            x: 0,
            y: 0,
            width: 64,
            height: 32,
            bpp: 16,
        },
    )
    .unwrap();

    let files = written.lock().unwrap()[0].lock().unwrap().clone();
    assert_eq!(files.len(), 3, "set_config, flip, set_config");
    assert_eq!(decode_png(&files[0]), (320, 240, want_a));
    assert_eq!(decode_png(&files[1]), (320, 240, want_b));
    assert_eq!(decode_png(&files[2]), (64, 32, want_c));

    // Teardown order as Linux does it: disable, detach, destroy.
    fe.set_config(0, SetConfig::default()).unwrap();
    fe.detach_fb(fa).unwrap();
    fe.destroy_dbuf(a).unwrap();
    assert_eq!(fe.detach_fb(fa), Err(Error::Status(-22)), "already gone");
    fe.disconnect(2000).unwrap();
}

/// Holds flips until the test releases them, like a compositor waiting
/// for vblank.
#[derive(Clone, Default)]
struct HeldSink {
    held: Arc<Mutex<Vec<FlipDone>>>,
}

impl DisplaySink for HeldSink {
    fn add_output(&mut self, _: u16, _: &Output) -> Result<(), String> {
        Ok(())
    }
    fn configure(&mut self, _: u16, _: u32, _: Option<Frame>) -> Result<(), String> {
        Ok(())
    }
    fn flip(&mut self, _: Frame, done: FlipDone) -> Result<(), String> {
        self.held.lock().unwrap().push(done);
        Ok(())
    }
    fn remove_outputs(&mut self, _: u16) {}
}

#[test]
fn flip_done_waits_until_the_frame_is_shown() {
    let lb = Loopback::new();
    let sink = HeldSink::default();
    let s2 = sink.clone();
    let _be = start(&lb, move || Box::new(s2.clone()));
    create_device(&*lb.xenstore(0), &display(2, &[("64x64", "c")])).unwrap();
    let mut fe = VdisplFront::connect(lb.platform(2).open().unwrap(), 0, 5000).unwrap();
    let d = fe.create_dbuf(64, 64, 32).unwrap();
    let f = fe.attach_fb(d, 64, 64, DrmFourcc::Argb8888 as u32).unwrap();
    fe.set_config(
        0,
        SetConfig {
            fb_cookie: f,
            x: 0,
            y: 0,
            width: 64,
            height: 64,
            bpp: 32,
        },
    )
    .unwrap();
    fe.page_flip(0, f).unwrap();
    assert!(fe.wait_flip_done(0, f, 100).is_err(), "not shown yet");
    sink.held.lock().unwrap().pop().unwrap().complete();
    fe.wait_flip_done(0, f, 3000).unwrap();
}

fn wait_be(lb: &Loopback, spec: &DeviceSpec, s: XenbusState) {
    xenbus::wait_state(&*lb.xenstore(9), &spec.be_dir(), "t", 5000, |x| x == s).unwrap();
}

#[test]
fn hostile_frontends_get_errors_or_closing_and_others_keep_working() {
    let lb = Loopback::new();
    let dir = tmpdir("hostile");
    let _be = start(&lb, move || Box::new(PngSink::new(dir.clone())));
    create_device(&*lb.xenstore(0), &display(3, &[("128x64", "a")])).unwrap();
    let mut fe = VdisplFront::connect(lb.platform(3).open().unwrap(), 0, 5000).unwrap();
    let xr24 = DrmFourcc::Xrgb8888 as u32;
    let d = fe.create_dbuf(128, 64, 32).unwrap();
    // Bad fourcc, bpp mismatch, larger than the buffer, duplicate cookie.
    assert_eq!(
        fe.attach_fb(d, 128, 64, 0x1234_5678),
        Err(Error::Status(-22))
    );
    assert_eq!(
        fe.attach_fb(d, 128, 64, DrmFourcc::Rgb565 as u32),
        Err(Error::Status(-22))
    );
    assert_eq!(fe.attach_fb(d, 129, 64, xr24), Err(Error::Status(-22)));
    assert_eq!(fe.attach_fb(999, 1, 1, xr24), Err(Error::Status(-22)));
    let f = fe.attach_fb(d, 128, 64, xr24).unwrap();
    // SET_CONFIG beyond the connector; flip before configuring; unknown fb.
    let cfg = SetConfig {
        fb_cookie: f,
        x: 1,
        y: 0,
        width: 128,
        height: 64,
        bpp: 32,
    };
    assert_eq!(fe.set_config(0, cfg), Err(Error::Status(-22)));
    assert_eq!(
        fe.set_config(0, SetConfig { x: u32::MAX, ..cfg }),
        Err(Error::Status(-22))
    );
    assert_eq!(fe.page_flip(0, f), Err(Error::Status(-22)));
    fe.set_config(0, SetConfig { x: 0, ..cfg }).unwrap();
    assert_eq!(fe.page_flip(0, 4242), Err(Error::Status(-22)));

    // Raw requests: a directory grant that does not map, a buffer smaller
    // than its geometry, an unknown operation.
    let raw = Raw::new(&lb, 3);
    let create = |cookie: u32, w: u32, sz: u32, gref: u32| {
        vec![
            (8, cookie),
            (16, w),
            (20, 64),
            (24, 32),
            (28, sz),
            (32, 0),
            (36, gref),
            (40, 0),
        ]
    };
    assert_eq!(
        raw.call(&lb, 0x10, &create(500, 128, 128 * 64 * 4, 31337)),
        -22
    );
    assert!(!testlog::lines_containing("does not map").is_empty());
    assert_eq!(
        raw.call(&lb, 0x10, &create(501, 128, 4096, 8)),
        -22,
        "buffer smaller than 128x64x4"
    );
    assert_eq!(raw.call(&lb, 0x7f, &[]), -22);
    assert!(!testlog::lines_containing("operation 127").is_empty());

    // A device whose connector ids are not 0..n: closed, logged.
    let gap = DeviceSpec {
        fe_nodes: vec![
            ("0/resolution".into(), "64x64".into()),
            ("2/resolution".into(), "64x64".into()),
        ],
        ..display(4, &[])
    };
    create_device(&*lb.xenstore(0), &gap).unwrap();
    wait_be(&lb, &gap, XenbusState::InitWait);
    lb.xenstore(4)
        .write(&format!("{}/state", gap.fe_dir()), b"3")
        .unwrap();
    wait_be(&lb, &gap, XenbusState::Closed);
    assert!(!testlog::lines_containing("connector id 2 out of range").is_empty());

    // Malformed resolution.
    let bad = DeviceSpec {
        fe_nodes: vec![("0/resolution".into(), "wide".into())],
        ..display(5, &[])
    };
    create_device(&*lb.xenstore(0), &bad).unwrap();
    wait_be(&lb, &bad, XenbusState::InitWait);
    lb.xenstore(5)
        .write(&format!("{}/state", bad.fe_dir()), b"3")
        .unwrap();
    wait_be(&lb, &bad, XenbusState::Closed);
    assert!(!testlog::lines_containing("malformed resolution").is_empty());

    // Corrupt ring indices: closed; the second frontend is unaffected.
    create_device(&*lb.xenstore(0), &display(6, &[("32x32", "b")])).unwrap();
    let mut other = VdisplFront::connect(lb.platform(6).open().unwrap(), 0, 5000).unwrap();
    raw.ring.write_u32(0, raw.ring.read_u32(0).wrapping_add(77));
    lb.notify_from(3, raw.port).unwrap();
    wait_be(&lb, &display(3, &[]), XenbusState::Closed);
    assert_eq!(fe.backend_state(), XenbusState::Closed);
    let od = other.create_dbuf(32, 32, 32).unwrap();
    let of = other.attach_fb(od, 32, 32, xr24).unwrap();
    other
        .set_config(
            0,
            SetConfig {
                fb_cookie: of,
                x: 0,
                y: 0,
                width: 32,
                height: 32,
                bpp: 32,
            },
        )
        .unwrap();
    other.page_flip(0, of).unwrap();
    other.wait_flip_done(0, of, 3000).unwrap();
}

/// Connector 0's request ring, written to directly.
struct Raw {
    ring: pv_transport::Shm,
    port: u32,
    dom: u16,
}

impl Raw {
    fn new(lb: &Loopback, dom: u16) -> Self {
        let xs = lb.xenstore(dom);
        let dir = format!("/local/domain/{dom}/device/vdispl/0/0");
        let rd = |n: &str| xenbus::read_u32(&*xs, &format!("{dir}/{n}")).unwrap();
        let ring = pv_transport::GrantMapper::map(&*lb.grants(0), dom, &[rd("req-ring-ref")], true)
            .unwrap();
        Self {
            ring,
            port: rd("req-event-channel"),
            dom,
        }
    }

    fn call(&self, lb: &Loopback, op: u8, fields: &[(usize, u32)]) -> i32 {
        let prod = self.ring.read_u32(0);
        let slot = 64 + (prod as usize % 32) * 64;
        let mut req = [0u8; 64];
        req[0..2].copy_from_slice(&0xabcdu16.to_le_bytes());
        req[2] = op;
        for &(off, v) in fields {
            req[off..off + 4].copy_from_slice(&v.to_le_bytes());
        }
        self.ring.write_bytes(slot, &req);
        self.ring.write_u32(0, prod.wrapping_add(1));
        lb.notify_from(self.dom, self.port).unwrap();
        for _ in 0..1000 {
            if self.ring.read_u32(8) == prod.wrapping_add(1) {
                let mut rsp = [0u8; 8];
                self.ring.read_bytes(slot, &mut rsp);
                return i32::from_le_bytes([rsp[4], rsp[5], rsp[6], rsp[7]]);
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        panic!("no response");
    }
}

/// Random request packets (a xorshift stream, operation byte biased to the
/// defined range): every one is answered, the backend stays Connected,
/// and the frontend's own requests still work afterwards.
#[test]
fn random_requests_are_all_answered() {
    let lb = Loopback::new();
    let dir = tmpdir("fuzz");
    let _be = start(&lb, move || Box::new(PngSink::new(dir.clone())));
    create_device(&*lb.xenstore(0), &display(7, &[("64x64", "a")])).unwrap();
    let fe = VdisplFront::connect(lb.platform(7).open().unwrap(), 0, 5000).unwrap();
    let raw = Raw::new(&lb, 7);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..400 {
        let op = 0x0e + (next() % 12) as u8;
        let fields: Vec<(usize, u32)> = (0..14)
            .map(|i| {
                (
                    8 + i * 4,
                    next() as u32 % if i % 3 == 0 { 70000 } else { u32::MAX },
                )
            })
            .collect();
        let status = raw.call(&lb, op, &fields);
        // Success, or one of the errors the backend documents.
        assert!([0, -5, -12, -16, -22, -95].contains(&status), "op {op}: status {status}");
    }
    assert_eq!(fe.backend_state(), XenbusState::Connected);
    // The raw calls moved the ring's indices under the frontend: it starts
    // over, and the backend serves the new connection (a frame shows).
    fe.disconnect(5000).unwrap();
    let mut fe = VdisplFront::connect(lb.platform(7).open().unwrap(), 0, 5000).unwrap();
    let d = fe.create_dbuf(16, 16, 32).expect("DBUF_CREATE after the storm");
    let f = fe.attach_fb(d, 16, 16, DrmFourcc::Xrgb8888 as u32).expect("FB_ATTACH after the storm");
    fe.set_config(0, SetConfig { fb_cookie: f, x: 0, y: 0, width: 16, height: 16, bpp: 32 }).expect("SET_CONFIG after the storm");
    fe.page_flip(0, f).unwrap();
    fe.wait_flip_done(0, f, 3000).unwrap();
}

fn full(fb_cookie: u64, w: u32, h: u32) -> SetConfig {
    SetConfig { fb_cookie, x: 0, y: 0, width: w, height: h, bpp: 32 }
}

/// Display buffers, their bytes and the flips waiting on the sink have a
/// quota per frontend: over it, -ENOMEM or -EBUSY for that frontend only,
/// and room again once it lets go.
#[test]
fn display_buffers_and_pending_flips_have_a_quota_per_frontend() {
    let lb = Loopback::new();
    let sink = HeldSink::default();
    let s2 = sink.clone();
    let cfg = VdisplConfig { max_buffers: 2, max_mapped_bytes: 3 * 16384, max_pending_flips: 2, ..Default::default() };
    let _be = start_with(&lb, cfg, move || Box::new(s2.clone()));
    for dom in [20, 21] {
        create_device(&*lb.xenstore(0), &display(dom, &[("64x64", "q")])).unwrap();
    }
    let mut fe = VdisplFront::connect(lb.platform(20).open().unwrap(), 0, 5000).unwrap();
    let a = fe.create_dbuf(64, 64, 32).unwrap(); // 16 KiB
    let b = fe.create_dbuf(64, 64, 32).unwrap();
    assert_eq!(fe.create_dbuf(16, 16, 32), Err(Error::Status(-12)), "a third buffer");
    fe.destroy_dbuf(b).unwrap();
    let big = fe.create_dbuf(128, 64, 32).unwrap(); // 32 KiB: 48 KiB held
    fe.destroy_dbuf(big).unwrap();
    assert_eq!(fe.create_dbuf(128, 96, 32), Err(Error::Status(-12)), "64 KiB held");
    assert!(!testlog::lines_containing("vdispl dom20: DBUF_CREATE over the quota").is_empty());

    // Another frontend has a quota of its own.
    let mut other = VdisplFront::connect(lb.platform(21).open().unwrap(), 0, 5000).unwrap();
    other.create_dbuf(64, 64, 32).unwrap();
    other.create_dbuf(64, 64, 32).unwrap();

    // Flips the sink has not shown yet: two at most.
    let f = fe.attach_fb(a, 64, 64, DrmFourcc::Xrgb8888 as u32).unwrap();
    fe.set_config(0, full(f, 64, 64)).unwrap();
    fe.page_flip(0, f).unwrap();
    fe.page_flip(0, f).unwrap();
    assert_eq!(fe.page_flip(0, f), Err(Error::Status(-16)));
    sink.held.lock().unwrap().remove(0).complete();
    fe.wait_flip_done(0, f, 3000).unwrap();
    fe.page_flip(0, f).unwrap();
}

/// A backend killed and restarted under a connected frontend: it says
/// InitWait and leaves the old ring alone (nothing answered twice; the
/// frontend frees it as it starts over), and once the frontend starts over
/// with new rings, frames show again.
#[test]
fn a_restarted_backend_leaves_the_old_ring_and_serves_the_new_one() {
    let lb = Loopback::new();
    let dir = tmpdir("restart");
    let d2 = dir.clone();
    let be = start(&lb, move || Box::new(PngSink::new(d2.clone())));
    let spec = display(22, &[("64x64", "r")]);
    create_device(&*lb.xenstore(0), &spec).unwrap();
    let show = |fe: &mut VdisplFront| {
        let d = fe.create_dbuf(64, 64, 32).unwrap();
        let f = fe.attach_fb(d, 64, 64, DrmFourcc::Xrgb8888 as u32).unwrap();
        fe.set_config(0, full(f, 64, 64)).unwrap();
        fe.page_flip(0, f).unwrap();
        fe.wait_flip_done(0, f, 3000).unwrap();
    };
    let mut fe = VdisplFront::connect(lb.platform(22).open().unwrap(), 0, 5000).unwrap();
    show(&mut fe);
    let raw = Raw::new(&lb, 22);
    let answered = raw.ring.read_u32(8);
    assert!(answered > 0 && answered < 32);

    drop(be);
    let _be = start(&lb, move || Box::new(PngSink::new(dir.clone())));
    // Its InitWait asks the frontend to start over; the old ring, about to
    // be freed, is left alone.
    wait_be(&lb, &spec, XenbusState::InitWait);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(xenbus::read_state(&*lb.xenstore(9), &spec.be_dir()), XenbusState::InitWait);
    assert_eq!(raw.ring.read_u32(8), answered, "the restarted backend answered old requests again");

    // The frontend starts over, as Linux's does on a new backend's InitWait.
    fe.disconnect(5000).unwrap();
    let mut fe = VdisplFront::connect(lb.platform(22).open().unwrap(), 0, 5000).unwrap();
    show(&mut fe);
}
