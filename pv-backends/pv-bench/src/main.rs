//! `pv-bench`: figures for the PV devices, printed, not asserted.
//!
//! 1. Ring round trips per second: a frontend and a backend thread
//!    ping-pong one 64-byte request over a granted ring page, with event
//!    channel notifications, on the loopback transport.
//! 2. vsnd playback, 48 kHz stereo S16 with 5 ms periods, through the
//!    backend into ALSA's `null` PCM: CPU time per second of audio, for
//!    real-time pacing and as fast as possible, and the underruns ALSA
//!    reported.
//! 3. vdispl: a 1920×1080 XRGB8888 page flip (request to flip-done event)
//!    with a sink that shows buffers in place (no copy on the flip path),
//!    and, for scale, one that copies each frame once.
//!
//! CPU time is the whole process's (frontend and backend threads alike),
//! read from /proc/self/task/*/schedstat.
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use drm_fourcc::DrmFourcc;
use pv_backend::toolstack::{create_device, DeviceSpec};
use pv_backend::Supervisor;
use pv_transport::loopback::Loopback;
use pv_transport::{GrantMapper, GrantTable, Platform, RingMemory};
use vdispl_back::{
    DisplaySink, FlipDone, Frame, LatestFrameSink, Output, VdisplBackend, VdisplConfig,
};
use xen_abi::io::ring::{BackRing, FrontRing};

/// Nanoseconds of CPU used by every thread of this process so far
/// (threads that already exited are not counted, so measure around
/// threads that live through the measurement).
fn cpu_ns() -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn ring_round_trips() {
    let lb = Loopback::new();
    let (fe_ev, be_ev) = (lb.evtchn(1), lb.evtchn(0));
    let page = lb.grants(1).share(0, 1, false).unwrap();
    let mut front: FrontRing<_, 64> = FrontRing::init(page.clone()).unwrap();
    let fport = fe_ev.alloc_unbound(0).unwrap();
    let bport = be_ev.bind_interdomain(1, fport).unwrap();
    let mapped = lb.grants(0).map(1, page.grefs(), true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let backend = std::thread::spawn(move || {
        let mut back: BackRing<_, 64> = BackRing::attach(mapped, 0).unwrap();
        while !stop2.load(Ordering::Relaxed) {
            let mut any = false;
            while let Ok(Some(req)) = back.take_request() {
                back.push_response(&req).unwrap();
                any = true;
            }
            if any && back.publish_responses() {
                be_ev.notify(bport).unwrap();
            }
            if back.final_check_for_requests().unwrap_or(false) {
                continue;
            }
            if let Ok(Some(p)) = be_ev.wait(20) {
                be_ev.unmask(p).unwrap();
            }
        }
    });
    let n = 50_000u32;
    let (t0, c0) = (Instant::now(), cpu_ns());
    for i in 0..n {
        let mut req = [0u8; 64];
        req[..4].copy_from_slice(&i.to_le_bytes());
        front.push_request(&req).unwrap();
        if front.publish_requests() {
            fe_ev.notify(fport).unwrap();
        }
        loop {
            if let Some(rsp) = front.take_response().unwrap() {
                assert_eq!(rsp[..4], i.to_le_bytes());
                break;
            }
            if front.final_check_for_responses().unwrap() {
                continue;
            }
            if let Ok(Some(p)) = fe_ev.wait(20) {
                fe_ev.unmask(p).unwrap();
            }
        }
    }
    let (dt, cpu) = (t0.elapsed(), cpu_ns() - c0);
    stop.store(true, Ordering::Relaxed);
    backend.join().unwrap();
    println!(
        "ring: {n} round trips in {:.3} s = {:.0} round trips/s ({:.1} us each, {:.1} us CPU each)",
        dt.as_secs_f64(),
        f64::from(n) / dt.as_secs_f64(),
        dt.as_secs_f64() * 1e6 / f64::from(n),
        cpu as f64 / 1e3 / f64::from(n)
    );
}

struct Served {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.handle.take().map(|h| h.join());
    }
}

fn serve(sup: Supervisor) -> Served {
    let stop = sup.stop_flag();
    let handle = Some(std::thread::spawn(move || sup.run().unwrap()));
    Served { stop, handle }
}

fn vsnd_playback(device: &str) {
    let lb = Loopback::new();
    let stats = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = stats.clone();
    let mut sup = Supervisor::new(Arc::new(lb.platform(0)));
    let dev = device.to_string();
    sup.serve_kind(
        "vsnd",
        Box::new(move |_| {
            let route = vsnd_back::CardRoute { playback: Some(dev.clone()), capture: None };
            let b = vsnd_back::VsndBackend::new(Box::new(vsnd_back::AlsaAudio), route, Default::default());
            s2.lock().unwrap().push(b.stats());
            Some(Box::new(b))
        }),
    );
    let _served = serve(sup);
    let n = |k: &str, v: &str| (k.to_string(), v.to_string());
    let spec = DeviceSpec {
        be_kind: "vsnd".into(),
        fe_kind: "vsnd".into(),
        fe_dom: 1,
        fe_nodes: vec![
            n("sample-rates", "48000"),
            n("sample-formats", "s16_le"),
            n("0/0/type", "p"),
            n("0/0/unique-id", "bench"),
        ],
        ..Default::default()
    };
    create_device(&*lb.xenstore(0), &spec).unwrap();
    let mut fe = vsnd_front::VsndFront::connect(lb.platform(1).open().unwrap(), 0, 5000).unwrap();
    let period = 240 * 4; // 5 ms of 48 kHz stereo S16
    let params = vsnd_front::PcmParams {
        rate: 48000,
        format: vsnd_front::PcmFormat::S16Le,
        channels: 2,
        buffer_size: period * 4,
        period_size: period,
    };
    if let Err(e) = fe.open(0, params) {
        println!("vsnd: cannot open ALSA device {device:?}: {e}");
        return;
    }
    fe.trigger(0, vsnd_front::TriggerType::Start).unwrap();
    let chunk: Vec<u8> = (0..period).map(|i| (i * 7) as u8).collect();

    // Real time: one period every 5 ms, as a guest's audio clock would.
    let secs = 3u32;
    let periods = secs * 200;
    let (t0, c0) = (Instant::now(), cpu_ns());
    for i in 0..periods {
        fe.write(0, &chunk).unwrap();
        let due = t0 + Duration::from_micros(5000 * u64::from(i + 1));
        if let Some(d) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    let cpu = cpu_ns() - c0;
    println!(
        "vsnd: 48 kHz stereo S16, 5 ms periods, real time to ALSA {device:?}: {:.2} ms CPU per second of audio ({} periods in {:.2} s wall)",
        cpu as f64 / 1e6 / f64::from(secs),
        periods,
        t0.elapsed().as_secs_f64()
    );

    // Unpaced: what one second of audio costs when nothing waits.
    let periods = 20 * 200;
    let (t0, c0) = (Instant::now(), cpu_ns());
    for _ in 0..periods {
        fe.write(0, &chunk).unwrap();
    }
    let (dt, cpu) = (t0.elapsed(), cpu_ns() - c0);
    let audio_s = f64::from(periods) / 200.0;
    let st = stats.lock().unwrap();
    let xruns: u64 = st.iter().map(|s| s.xruns.load(Ordering::Relaxed)).sum();
    let bytes: u64 = st.iter().map(|s| s.bytes.load(Ordering::Relaxed)).sum();
    println!(
        "vsnd: unpaced: {audio_s:.0} s of audio in {:.3} s wall, {:.2} ms CPU per second of audio; {bytes} bytes played; underruns reported by ALSA: {xruns}",
        dt.as_secs_f64(),
        cpu as f64 / 1e6 / audio_s
    );
    fe.close(0).unwrap();
}

/// A sink that copies every frame once, to show what a copy would cost.
#[derive(Default)]
struct CopySink {
    scratch: Vec<u8>,
}

impl DisplaySink for CopySink {
    fn add_output(&mut self, _: u16, _: &Output) -> Result<(), String> {
        Ok(())
    }
    fn configure(&mut self, _: u16, _: u32, _: Option<Frame>) -> Result<(), String> {
        Ok(())
    }
    fn flip(&mut self, f: Frame, done: FlipDone) -> Result<(), String> {
        let len = (f.pitch * f.height) as usize;
        self.scratch.resize(len, 0);
        f.memory.read_bytes(f.offset as usize, &mut self.scratch);
        done.complete();
        Ok(())
    }
    fn remove_outputs(&mut self, _: u16) {}
}

fn display_flip(label: &str, sink: impl Fn() -> Box<dyn DisplaySink> + Send + Sync + 'static) {
    let lb = Loopback::new();
    let mut sup = Supervisor::new(Arc::new(lb.platform(0)));
    sup.serve_kind(
        "vdispl",
        Box::new(move |_| {
            Some(Box::new(VdisplBackend::new(
                VdisplConfig::default(),
                sink(),
            )))
        }),
    );
    let _served = serve(sup);
    let spec = DeviceSpec {
        be_kind: "vdispl".into(),
        fe_kind: "vdispl".into(),
        fe_dom: 1,
        fe_nodes: vec![("0/resolution".into(), "1920x1080".into())],
        ..Default::default()
    };
    create_device(&*lb.xenstore(0), &spec).unwrap();
    let mut fe =
        vdispl_front::VdisplFront::connect(lb.platform(1).open().unwrap(), 0, 5000).unwrap();
    let xr24 = DrmFourcc::Xrgb8888 as u32;
    let fbs: Vec<u64> = (0..2)
        .map(|_| {
            let d = fe.create_dbuf(1920, 1080, 32).unwrap();
            fe.attach_fb(d, 1920, 1080, xr24).unwrap()
        })
        .collect();
    let cfg = vdispl_front::SetConfig {
        fb_cookie: fbs[0],
        x: 0,
        y: 0,
        width: 1920,
        height: 1080,
        bpp: 32,
    };
    fe.set_config(0, cfg).unwrap();
    let n = 300u32;
    let (t0, c0) = (Instant::now(), cpu_ns());
    for i in 0..n {
        let fb = fbs[(i % 2) as usize];
        fe.page_flip(0, fb).unwrap();
        fe.wait_flip_done(0, fb, 3000).unwrap();
    }
    let (dt, cpu) = (t0.elapsed(), cpu_ns() - c0);
    println!(
        "vdispl: 1920x1080 XRGB8888 page flip, {label}: {:.1} us per flip (request to flip-done), {:.1} us CPU per flip, {n} flips",
        dt.as_secs_f64() * 1e6 / f64::from(n),
        cpu as f64 / 1e3 / f64::from(n)
    );
}

fn main() {
    let device = std::env::args().nth(1).unwrap_or_else(|| "null".into());
    println!(
        "pv-bench (loopback transport; {} CPUs online)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    ring_round_trips();
    vsnd_playback(&device);
    display_flip("sink shows the buffer in place (no copy)", || {
        Box::new(LatestFrameSink::default())
    });
    display_flip("sink copies each frame once", || Box::<CopySink>::default());
}
