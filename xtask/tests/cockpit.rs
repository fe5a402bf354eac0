//! The cockpit sample (`samples/cockpit`) end to end on our hypervisor,
//! headless, as `cargo xtask run --sample cockpit` boots it: QEMU's two
//! screens are read back with QMP `screendump`, touches and keys go in as
//! QMP input events, the driver domain's sound output is fetched through
//! the harness's 9p share. Also the camera VM (`xtask::camera_vm`): a V4L2
//! camera's dma-bufs on the compositor's KMS screen. Run through `cargo
//! xtask test`.

use std::path::Path;
use std::time::{Duration, Instant};

use xtask::artifacts::{self, root};
use xtask::interop::machine::{ev, Machine};
use xtask::x11::{XScreen, Xvfb};

/// Three domains, two of them Linux, boot under TCG.
const BOOT: Duration = Duration::from_secs(300);

/// The IVI's tiles (samples/cockpit/hmi): tile 0 and its colours.
const TILE0_CENTRE: (u32, u32) = (178, 156);
const TILE0_LIT: u32 = 0xe0_4040;
const TILE0_OUT: u32 = 0x38_1010;
/// The telltale overlay's first lamp on the cluster screen (layout.toml
/// puts the overlay at (404, 330); the lamp starts 4 pixels in), lit or not.
const LAMP: (u32, u32) = (414, 340);
const LAMP_COLOURS: [u32; 2] = [0xff_a000, 0x30_2000];

struct Picture {
    w: u32,
    h: u32,
    rgb: Vec<u8>,
}

impl Picture {
    /// A binary PPM (P6, what `screendump` writes).
    fn load(path: &Path) -> Picture {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut fields = Vec::new();
        let mut at = 0;
        while fields.len() < 4 {
            while data[at].is_ascii_whitespace() {
                at += 1;
            }
            let start = at;
            while !data[at].is_ascii_whitespace() {
                at += 1;
            }
            fields.push(String::from_utf8_lossy(&data[start..at]).into_owned());
        }
        assert_eq!(fields[0], "P6", "{} is not a binary PPM", path.display());
        let (w, h) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
        Picture { w, h, rgb: data[at + 1..].to_vec() }
    }

    fn at(&self, (x, y): (u32, u32)) -> u32 {
        let i = ((y * self.w + x) * 3) as usize;
        u32::from(self.rgb[i]) << 16 | u32::from(self.rgb[i + 1]) << 8 | u32::from(self.rgb[i + 2])
    }

    /// Pixels that differ from `other` inside the rectangle.
    fn changed(&self, other: &Picture, (x0, y0, w, h): (u32, u32, u32, u32)) -> usize {
        (y0..y0 + h).flat_map(|y| (x0..x0 + w).map(move |x| (x, y))).filter(|&p| self.at(p) != other.at(p)).count()
    }
}

/// The two screens as one PNG, the cluster's above the IVI's: what the
/// README shows.
fn save_png(path: &Path, screens: &[&Picture]) {
    let w = screens.iter().map(|p| p.w).max().unwrap_or(0);
    let h: u32 = screens.iter().map(|p| p.h).sum();
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    let mut y0 = 0;
    for p in screens {
        for y in 0..p.h {
            let src = &p.rgb[(y * p.w * 3) as usize..((y + 1) * p.w * 3) as usize];
            let at = ((y0 + y) * w * 3) as usize;
            rgb[at..at + src.len()].copy_from_slice(src);
        }
        y0 += p.h;
    }
    let file = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().unwrap().write_image_data(&rgb).unwrap();
}

struct Cockpit {
    m: Machine,
    work: std::path::PathBuf,
    shots: u32,
}

impl Cockpit {
    fn wait(&mut self, from: usize, needle: &str, timeout: Duration) -> usize {
        match self.m.con.expect_after(from, needle, timeout) {
            Some(i) => i,
            None => panic!("no {needle:?} within {timeout:?}:\n{}", self.m.con.transcript()),
        }
    }

    fn screen(&mut self, device: &str) -> Picture {
        self.shots += 1;
        let path = self.work.join(format!("{:02}-{device}.ppm", self.shots));
        self.m.screendump(device, &path).unwrap_or_else(|e| panic!("{e}\n{}", self.m.con.transcript()));
        Picture::load(&path)
    }

    /// Screendumps `device` until `ok` holds (the compositor presents at
    /// its own pace), or panics with `what` after 20 s.
    fn screen_until(&mut self, device: &str, what: &str, ok: impl Fn(&Picture) -> bool) -> Picture {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let p = self.screen(device);
            if ok(&p) {
                return p;
            }
            if Instant::now() > deadline {
                panic!("{what} (last screendump: {})\n{}", self.work.display(), self.m.con.transcript());
            }
            self.m.con.pause(Duration::from_millis(500));
        }
    }

    /// A click of the mouse on the IVI screen at (x, y): a touch there.
    fn touch_ivi(&mut self, (x, y): (u32, u32)) {
        let abs = |v: u32, size: u32| i64::from(v) * 32767 / i64::from(size - 1);
        let events = [ev::abs("x", abs(x, 1024)), ev::abs("y", abs(y, 600))];
        self.m.input_on("ivi-screen", &events).unwrap();
        self.m.input_on("ivi-screen", &[ev::btn("left", true)]).unwrap();
        self.m.input_on("ivi-screen", &[ev::btn("left", false)]).unwrap();
    }

    /// The compositor's count of frames from the cluster's gauges, from
    /// each statistics line it printed after `from` up to `to`.
    fn gauges_frames(&self, from: usize, to: usize) -> Vec<u64> {
        self.m.con.log[from..=to]
            .iter()
            .filter_map(|l| xtask::cockpit_sample::stats_frames(l, "gauges"))
            .collect()
    }

    fn cluster_frames(&self, from: usize) -> Vec<u64> {
        self.m.con.log[from..]
            .iter()
            .filter_map(|l| l.split("cluster: frame ").nth(1)?.split(' ').next()?.parse().ok())
            .collect()
    }
}

#[test]
#[ignore = "boots the cockpit sample under QEMU: run with cargo xtask test"]
fn the_cockpit_shows_both_screens_takes_touches_and_outlives_an_ivi_crash() {
    let built = artifacts::build("cockpit", None, None).unwrap_or_else(|e| panic!("build the cockpit sample: {e}"));
    let work = root().join("target/cockpit-sample/run");
    let m = Machine::start_sample(&built, &work, false).unwrap();
    let mut c = Cockpit { m, work: work.clone(), shots: 0 };

    // Both guests reach their screens: the cluster's flips complete (each
    // waits until the compositor presented it), the HMI has drawn.
    c.wait(0, "cluster: frame 60 shown", BOOT);
    c.wait(0, "hmi: 6 tiles on a 1024x600 screen", BOOT);

    // The needle moves between two looks at the cluster screen; the
    // telltales stay on top.
    let dial = (350, 40, 324, 300);
    let a = c.screen("cluster-screen");
    c.m.con.pause(Duration::from_millis(700));
    let b = c.screen_until("cluster-screen", "the cluster's needle does not move", |b| b.changed(&a, dial) > 200);
    assert_eq!((b.w, b.h), (1024, 384));
    for p in [&a, &b] {
        assert!(LAMP_COLOURS.contains(&p.at(LAMP)), "telltale lamp shows {:06x}", p.at(LAMP));
    }

    // A click on the IVI's first tile is a touch on it: the HMI lights it
    // and chimes.
    let ivi = c.screen_until("ivi-screen", "the IVI's tiles are not on its screen", |p| p.at(TILE0_CENTRE) == TILE0_OUT);
    assert_eq!((ivi.w, ivi.h), (1024, 600));
    let mark = c.m.con.log.len();
    c.touch_ivi(TILE0_CENTRE);
    c.wait(mark, "hmi: tile 0 on", Duration::from_secs(30));
    let lit = c.screen_until("ivi-screen", "the touched tile is not lit on the IVI screen", |p| p.at(TILE0_CENTRE) == TILE0_LIT);
    let cluster = c.screen("cluster-screen");
    save_png(&work.join("cockpit.png"), &[&cluster, &lit]);
    let (code, out) = c.m.dom0("sleep 2; cp /tmp/ivi-sound.wav /host/chime.wav", Duration::from_secs(30)).unwrap();
    assert_eq!(code, 0, "no sound reached the driver domain's output: {out}");
    let wav = std::fs::read(c.m.share().join("chime.wav")).unwrap();
    let loud = wav.get(44..).unwrap_or_default().chunks_exact(2).filter(|s| i16::from_le_bytes([s[0], s[1]]).unsigned_abs() > 4000).count();
    assert!(loud > 4800, "the chime is not in the driver domain's sound output ({loud} loud samples of {})", wav.len() / 2);

    // F12 crashes the IVI's kernel. Its screen shows the fallback, the
    // cluster's frames keep coming, the IVI restarts and draws again.
    let mark = c.m.con.log.len();
    c.m.input(&[ev::key("f12", true)]).unwrap();
    c.m.input(&[ev::key("f12", false)]).unwrap();
    c.wait(mark, "[hv] ivi: Crash", Duration::from_secs(60));
    c.screen_until("ivi-screen", "the crashed IVI's screen does not show the fallback", |p| {
        p.at(TILE0_CENTRE) != TILE0_LIT && p.at(TILE0_CENTRE) != TILE0_OUT
    });
    let back = c.wait(mark, "hmi: 6 tiles on a 1024x600 screen", BOOT);
    c.screen_until("ivi-screen", "the restarted IVI's tiles are not back", |p| p.at(TILE0_CENTRE) == TILE0_OUT);
    // The compositor's statistics (every 100 of its frames) count the
    // frames each source brought: the gauges' count grows at every one
    // through the IVI's crash and restart.
    let counts = c.gauges_frames(mark, back);
    assert!(counts.len() >= 2, "too few compositor statistics during the IVI's outage: {counts:?}\n{}", c.m.con.transcript());
    for w in counts.windows(2) {
        assert!(w[1] > w[0], "the cluster's frames stalled in the compositor while the IVI was down: {counts:?}");
    }
    println!("cockpit: gauges frames counted by the compositor during the IVI's outage: {counts:?}");
    // The cluster reports every 30 frames it has seen shown: through the
    // IVI's crash and restart the reports keep coming, none missing.
    let during = c.cluster_frames(mark);
    let until_back = c.m.con.log[mark..=back].iter().filter(|l| l.contains("cluster: frame ")).count();
    assert!(until_back >= 1, "the cluster stalled while the IVI crashed and restarted: frame reports {during:?}");
    for w in during.windows(2) {
        assert_eq!(w[1], w[0] + 30, "the cluster's frame reports skipped or restarted: {during:?}");
    }

    // The compositor dies (killed in the driver domain): the cluster guest
    // runs on, its supervisor starts a new compositor, the cluster
    // reconnects and its picture moves again.
    let mark = c.m.con.log.len();
    let (code, out) = c.m.dom0("kill -9 $(cat /run/cockpit.pid)", Duration::from_secs(30)).unwrap();
    assert_eq!(code, 0, "could not kill the compositor: {out}");
    c.wait(mark, "driver: compositor exited", Duration::from_secs(30));
    c.wait(mark, "cluster: connected; gauges 1024x384", Duration::from_secs(120));
    let first = c.screen_until("cluster-screen", "no cluster picture after the compositor restarted", |p| LAMP_COLOURS.contains(&p.at(LAMP)));
    c.screen_until("cluster-screen", "the cluster's needle does not move after the compositor restarted", |p| p.changed(&first, dial) > 200);
    c.screen_until("ivi-screen", "the IVI's tiles are not back after the compositor restarted", |p| p.at(TILE0_CENTRE) == TILE0_OUT);

    let t = c.m.con.transcript();
    assert!(!t.contains("cluster: FAILED"), "{t}");
    let ended = t.lines().filter(|l| l.contains("cluster: display session ended")).count();
    assert!(ended <= 1, "the cluster lost its display more often than the one compositor restart:\n{t}");
    let _ = std::fs::write(work.join("console.log"), &t);
}

/// The dial's unlit ring on the cluster screen (cockpit-gauges).
const RING_OFF: u32 = 0x2a_3a4a;

/// Screenshots the X screen until `ok` holds, or panics with `what`.
fn x_until(x: &Xvfb, c: &mut Cockpit, what: &str, ok: impl Fn(&XScreen) -> bool) -> XScreen {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = x.screenshot().unwrap_or_else(|e| panic!("{e}"));
        if ok(&s) {
            return s;
        }
        if let Some(st) = c.m.con.try_exit() {
            panic!("QEMU exited ({st}) while waiting: {what}\n{}", c.m.con.transcript());
        }
        if Instant::now() > deadline {
            let _ = s.save_png(&c.work.join("x-screen.png"));
            panic!("{what} (the X screen is in {})\n{}", c.work.join("x-screen.png").display(), c.m.con.transcript());
        }
        // Reads the console meanwhile (and returns early if QEMU exits).
        c.m.con.pause(Duration::from_millis(500));
    }
}

#[test]
#[ignore = "boots the cockpit sample in QEMU's window under Xvfb: run with cargo xtask test"]
fn the_cockpit_window_shows_the_screens_and_a_click_on_the_ivi_is_a_touch() {
    // What `cargo xtask run --sample cockpit` shows a developer with a
    // desktop: QEMU's GTK window, one tab per screen, 1:1; the mouse on
    // the IVI's tab is a finger on the IVI.
    let built = artifacts::build("cockpit", None, None).unwrap_or_else(|e| panic!("build the cockpit sample: {e}"));
    xtask::toolchain::ensure_debian_packages(&["qemu-system-gui"], "QEMU's window for the sample's screens").unwrap();
    let x = Xvfb::start(1400, 1100).unwrap();
    let work = root().join("target/cockpit-sample/window");
    let m = Machine::start_sample_in_window(&built, &work, &x.display).unwrap();
    let mut c = Cockpit { m, work: work.clone(), shots: 0 };
    c.wait(0, "cluster: frame 60 shown", BOOT);
    c.wait(0, "hmi: 6 tiles on a 1024x600 screen", BOOT);

    // The window opens on the first screen: the cluster, with its dial
    // and a telltale lamp.
    let cluster = x_until(&x, &mut c, "the cluster is not in QEMU's window", |s| {
        s.count(RING_OFF) > 2000 && LAMP_COLOURS.iter().any(|&l| s.count(l) > 500)
    });
    let _ = cluster.save_png(&work.join("window-cluster.png"));

    // Ctrl+Alt+2 shows the second screen, the IVI's (keys go to the window
    // under the pointer: no window manager here).
    let (rx, ry, rw, rh) = cluster.bounds_of(RING_OFF).unwrap();
    x.xdotool(&["mousemove", &(rx + rw / 2).to_string(), &(ry + rh / 2).to_string()]).unwrap();
    x.xdotool(&["key", "ctrl+alt+2"]).unwrap();
    let ivi = x_until(&x, &mut c, "Ctrl+Alt+2 did not show the IVI's screen", |s| s.count(TILE0_OUT) > 20_000);
    let (tx, ty, tw, th) = ivi.bounds_of(TILE0_OUT).unwrap();
    let (cx, cy) = (tx + tw / 2, ty + th / 2);

    // A click on the first tile, where the window shows it: a touch there.
    let mark = c.m.con.log.len();
    let _ = ivi.save_png(&work.join("window-ivi-before.png"));
    x.xdotool(&["mousemove", &cx.to_string(), &cy.to_string()]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    x.xdotool(&["mousemove", &(cx + 1).to_string(), &cy.to_string()]).unwrap();
    x.xdotool(&["mousedown", "1"]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    x.xdotool(&["mouseup", "1"]).unwrap();
    c.wait(mark, "hmi: tile 0 on", Duration::from_secs(30));
    let lit = x_until(&x, &mut c, "the clicked tile is not lit in QEMU's window", |s| s.at(cx, cy) == Some(TILE0_LIT));
    let _ = lit.save_png(&work.join("window-ivi.png"));
}

/// The camera VM's picture on its screen (`fixtures/camera/etc/cockpit/layout.toml`).
const CAMERA: (u32, u32, u32, u32) = (80, 60, 640, 360);
const CAMERA_BACKGROUND: u32 = 0x10_2030;

/// What colour bar `p` shows: (r, g, b) each high (> 150) or low (< 40).
fn bar(p: u32) -> Option<(bool, bool, bool)> {
    let level = |v: u32| match v {
        151.. => Some(true),
        0..=39 => Some(false),
        _ => None,
    };
    Some((level(p >> 16 & 0xff)?, level(p >> 8 & 0xff)?, level(p & 0xff)?))
}

#[test]
#[ignore = "boots an arm64 Linux VM under QEMU: run with cargo xtask test"]
fn a_camera_s_dmabufs_show_on_the_screen() {
    let (kernel, initrd) = xtask::camera_vm::image().unwrap_or_else(|e| panic!("build the camera VM: {e}"));
    let work = xtask::camera_vm::dir().join("run");
    let m = Machine::start_linux(&kernel.image, &initrd, xtask::camera_vm::DEVICES, &work, false).unwrap();
    let mut c = Cockpit { m, work: work.clone(), shots: 0 };
    c.wait(0, "camera: client started", Duration::from_secs(180));
    // cockpit-dmabuf read a vgem dma-buf (raw page frames, as a board's
    // capture driver exports) whole: its test ran in the VM.
    let t = c.m.con.transcript();
    assert!(
        t.contains("camera: vgem dma-buf test passed")
            && t.contains("test a_vgem_dmabuf_is_read_directly_and_whole ... ok"),
        "{t}"
    );

    // vivid's webcam shows 75% colour bars: white, yellow, cyan, green,
    // magenta, red, blue, black, left to right. The middle row of the
    // camera's rectangle crosses them in that order: the buffers arrived
    // as dma-bufs, were read with the right byte order (yellow, not cyan,
    // second) and at the right place.
    let (x0, y0, w, h) = CAMERA;
    let bars = [(true, true, true), (true, true, false), (false, true, true), (true, false, true), (true, false, false), (false, false, true)];
    let at_bar = |i: u32| (x0 + w * (2 * i + 1) / 16, y0 + h / 2);
    let first = c.screen_until("screen", "the camera's colour bars are not on the screen", |p| {
        [0, 1, 2, 4, 5, 6].iter().zip(bars).all(|(&i, b)| bar(p.at(at_bar(i))) == Some(b))
    });
    assert_eq!((first.w, first.h), (800, 480));
    assert_eq!(first.at((x0 / 2, y0 / 2)), CAMERA_BACKGROUND, "the background around the camera");
    assert_eq!(first.at((x0 + w + 20, y0 + h + 20)), CAMERA_BACKGROUND, "the background around the camera");

    // The camera is live: its frames keep coming through the compositor
    // (its statistics count them) and the picture moves.
    let mark = c.m.con.log.len();
    c.screen_until("screen", "the camera's picture does not move", |p| p.changed(&first, CAMERA) > 200);
    let counts = |c: &Cockpit| -> Vec<u64> { c.m.con.log[mark..].iter().filter_map(|l| xtask::cockpit_sample::stats_frames(l, "camera")).collect() };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !counts(&c).windows(2).any(|w| w[1] > w[0]) {
        assert!(
            Instant::now() < deadline,
            "the camera's frame count does not grow: {:?}\n{}",
            counts(&c),
            c.m.con.transcript()
        );
        if let Some(st) = c.m.con.try_exit() {
            panic!(
                "QEMU exited ({st}) while the camera's frames were counted\n{}",
                c.m.con.transcript()
            );
        }
        c.m.con.pause(Duration::from_millis(500));
    }
    let t = c.m.con.transcript();
    assert!(!t.contains("camera: FAILED") && !t.contains("simple-dmabuf-v4l exiting"), "{t}");
    save_png(&work.join("camera.png"), &[&first]);
    let _ = std::fs::write(work.join("console.log"), &t);
}
