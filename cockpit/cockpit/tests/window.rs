//! The desktop window output under Xvfb: `cockpit sim` opens a window per
//! display, and an X screenshot (`xwd`) shows the simulated cluster and IVI.

use std::process::{Child, Command, Stdio};

use xtask::x11::{XScreen, Xvfb};
use std::time::{Duration, Instant};

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "needs xvfb, x11-apps and xdotool: run with cargo xtask test"]
fn the_simulator_shows_both_displays_in_windows_under_xvfb() {
    let xvfb = Xvfb::start(1280, 1100).unwrap();
    let disp = xvfb.display.clone();
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
        let s = xvfb.screenshot().unwrap();
        if s.count(0x1e88e5) > 60_000 && s.count(0x05070a) > 200_000 {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(25),
            "the simulator's windows did not appear (top bar {} px, cluster {} px)",
            s.count(0x1e88e5),
            s.count(0x05070a)
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!((shot.width, shot.height), (1280, 1100));
    // The IVI's six tiles (0x2b3240) are there too.
    assert!(shot.count(0x2b3240) > 6 * 250 * 150, "tiles: {}", shot.count(0x2b3240));
    save(&shot, "cockpit-sim-xvfb.png");

    // A click in the centre window's "NAV" tile is a touch routed to the
    // simulated IVI, which lights the tile (0x43a047). The centre window
    // sits below the cluster's (384 + 8 pixels down); NAV is the middle tile.
    let xdo = |args: &[&str]| xvfb.xdotool(args).unwrap();
    let (x, y) = (512, 392 + 200);
    xdo(&["mousemove", &x.to_string(), &y.to_string()]);
    xdo(&["mousedown", "1"]);
    let t0 = Instant::now();
    loop {
        let s = xvfb.screenshot().unwrap();
        let lit = s.count(0x43a047);
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
        let s = xvfb.screenshot().unwrap();
        let label = s.pixels[392 * s.width..].iter().filter(|&&p| p == 0xffcc00).count();
        if label > 1000 {
            break s;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "the frozen IVI was never labelled");
        std::thread::sleep(Duration::from_millis(100));
    };
    save(&frozen, "cockpit-sim-xvfb-frozen.png");
    std::thread::sleep(Duration::from_millis(300));
    let later = xvfb.screenshot().unwrap();
    let cluster = |s: &XScreen| s.pixels[..384 * s.width].to_vec();
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

fn save(s: &XScreen, name: &str) {
    let _ = s.save_png(&std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name));
}
