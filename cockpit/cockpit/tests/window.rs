//! The desktop window output under Xvfb: `cockpit sim` opens a window per
//! display, and an X screenshot (`xwd`) shows the simulated cluster and IVI.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An X screen: width, height and `0xRRGGBB` pixels.
struct Screen {
    width: usize,
    height: usize,
    pixels: Vec<u32>,
}

/// Parses an XWD dump of a 24/32-bit TrueColor screen (what Xvfb gives).
fn parse_xwd(b: &[u8]) -> Screen {
    let be = |i: usize| u32::from_be_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
    let (header_size, version, format, bpp) = (be(0) as usize, be(1), be(2), be(11));
    assert_eq!((version, format, bpp), (7, 2, 32), "an XWD ZPixmap of 32 bits per pixel");
    let (width, height, byte_order, bytes_per_line, ncolors) = (be(4) as usize, be(5) as usize, be(7), be(12) as usize, be(19) as usize);
    let (rmask, gmask, bmask) = (be(14), be(15), be(16));
    assert_eq!((rmask, gmask, bmask), (0xff0000, 0xff00, 0xff));
    let data = &b[header_size + 12 * ncolors..];
    let mut pixels = Vec::with_capacity(width * height);
    for y in 0..height {
        for x in 0..width {
            let p = &data[y * bytes_per_line + 4 * x..][..4];
            let v = if byte_order == 0 {
                u32::from_le_bytes([p[0], p[1], p[2], p[3]])
            } else {
                u32::from_be_bytes([p[0], p[1], p[2], p[3]])
            };
            pixels.push(v & 0xff_ffff);
        }
    }
    Screen { width, height, pixels }
}

fn start_xvfb() -> (Kill, String) {
    for n in 0..20 {
        let disp = format!(":{}", 90 + (std::process::id() as usize + n) % 400);
        let lock = format!("/tmp/.X{}-lock", &disp[1..]);
        if std::path::Path::new(&lock).exists() {
            continue;
        }
        let child = Command::new("Xvfb")
            .args([&disp, "-screen", "0", "1280x1100x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb (Debian package xvfb)");
        let xvfb = Kill(child);
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            let ok = Command::new("xwd")
                .args(["-root", "-silent", "-display", &disp])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if ok.is_ok_and(|s| s.success()) {
                return (xvfb, disp);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    panic!("could not start Xvfb");
}

fn count(s: &Screen, rgb: u32) -> usize {
    s.pixels.iter().filter(|&&p| p == rgb).count()
}

#[test]
#[ignore = "needs xvfb, x11-apps and xdotool: run with cargo xtask test"]
fn the_simulator_shows_both_displays_in_windows_under_xvfb() {
    let (_xvfb, disp) = start_xvfb();
    let cockpit = Kill(
        Command::new(env!("CARGO_BIN_EXE_cockpit"))
            .args(["sim", "--output", "window", "--seconds", "30", "--wayland-socket", "none"])
            .env("DISPLAY", &disp)
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    // The IVI's top bar (0x1e88e5, 1024x72) and the cluster's background
    // (0x05070a) must both be on the X screen.
    let t0 = Instant::now();
    let shot = loop {
        let out = Command::new("xwd")
            .args(["-root", "-silent", "-display", &disp])
            .output()
            .expect("xwd (Debian package x11-apps)");
        let s = parse_xwd(&out.stdout);
        if count(&s, 0x1e88e5) > 60_000 && count(&s, 0x05070a) > 200_000 {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(25),
            "the simulator's windows did not appear (top bar {} px, cluster {} px)",
            count(&s, 0x1e88e5),
            count(&s, 0x05070a)
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!((shot.width, shot.height), (1280, 1100));
    // The IVI's six tiles (0x2b3240) are there too.
    assert!(count(&shot, 0x2b3240) > 6 * 250 * 150, "tiles: {}", count(&shot, 0x2b3240));
    save(&shot, "cockpit-sim-xvfb.png");

    // A click in the centre window's "NAV" tile is a touch routed to the
    // simulated IVI, which lights the tile (0x43a047). The centre window
    // sits below the cluster's (384 + 8 pixels down); NAV is the middle tile.
    let xdo = |args: &[&str]| {
        let ok = Command::new("xdotool")
            .args(args)
            .env("DISPLAY", &disp)
            .status()
            .expect("xdotool (Debian package xdotool)");
        assert!(ok.success(), "xdotool {args:?}");
    };
    let (x, y) = (512, 392 + 200);
    xdo(&["mousemove", &x.to_string(), &y.to_string()]);
    xdo(&["mousedown", "1"]);
    let t0 = Instant::now();
    loop {
        let out = Command::new("xwd").args(["-root", "-silent", "-display", &disp]).output().unwrap();
        let s = parse_xwd(&out.stdout);
        let lit = count(&s, 0x43a047);
        if lit > 250 * 150 {
            assert_eq!(
                s.pixels[y * s.width + x - 150],
                0x43a047,
                "the lit tile is the one under the pointer"
            );
            save(&s, "cockpit-sim-xvfb-touched.png");
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "the touched tile never lit ({lit} px)");
        std::thread::sleep(Duration::from_millis(200));
    }
    xdo(&["mouseup", "1"]);

    // The IVI has the keyboard now: F freezes it (the simulated guest stops
    // flipping for three seconds). The watchdog labels it (0xffcc00) while
    // the cluster's gauge keeps moving.
    // Held for a while: the window samples key states once per frame.
    // On a loaded machine a frame can take longer than the key is held, so
    // the press is repeated (each one restarts the freeze) until the label
    // shows; the deadline still fails a watchdog that never fires.
    let t0 = Instant::now();
    let mut last_press: Option<Instant> = None;
    let frozen = loop {
        if last_press.is_none_or(|p| p.elapsed() > Duration::from_secs(2)) {
            xdo(&["keydown", "f"]);
            std::thread::sleep(Duration::from_millis(300));
            xdo(&["keyup", "f"]);
            last_press = Some(Instant::now());
        }
        let s = parse_xwd(
            &Command::new("xwd")
                .args(["-root", "-silent", "-display", &disp])
                .output()
                .unwrap()
                .stdout,
        );
        let label = s.pixels[392 * s.width..].iter().filter(|&&p| p == 0xffcc00).count();
        if label > 1000 {
            break s;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "the frozen IVI was never labelled");
        std::thread::sleep(Duration::from_millis(100));
    };
    save(&frozen, "cockpit-sim-xvfb-frozen.png");
    std::thread::sleep(Duration::from_millis(300));
    let later = parse_xwd(
        &Command::new("xwd")
            .args(["-root", "-silent", "-display", &disp])
            .output()
            .unwrap()
            .stdout,
    );
    let cluster = |s: &Screen| s.pixels[..384 * s.width].to_vec();
    assert_ne!(
        cluster(&frozen),
        cluster(&later),
        "the cluster kept flipping while the IVI was frozen"
    );
    for s in [&frozen, &later] {
        assert!(!cluster(s).contains(&0xffcc00), "the cluster was never labelled: it stayed live");
    }
    drop(cockpit);
}

fn save(s: &Screen, name: &str) {
    let mut c = cockpit_core::Canvas::new(s.width as u32, s.height as u32, 0);
    for (i, &p) in s.pixels.iter().enumerate() {
        c.set((i % s.width) as u32, (i / s.width) as u32, p);
    }
    let _ = std::fs::write(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name), c.to_png());
}
