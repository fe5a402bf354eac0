//! Real clients from Debian's `weston` package against the compositor:
//! their frames appear on the display and their touch handlers get the
//! touches routed to them.

mod common;

use std::process::{Child, Command, Stdio};

use cockpit_core::{Canvas, DisplayEvent, SourceId, SourceStatus};
use common::*;

const LAYOUT: &str = r##"
[[display]]
name = "center"
mode = "1024x560"
background = "#000000"

[[source]]
name = "shm"
app_id = "org.freedesktop.weston.simple-shm"
display = "center"
rect = [0, 0, 250, 250]

[[source]]
name = "damage"
app_id = "org.freedesktop.weston.simple-damage"
display = "center"
rect = [600, 300, 400, 250]

[[source]]
name = "touch"
app_id = "simple-touch"
display = "center"
rect = [260, 20, 600, 500]
rotation = 180
"##;

struct Client(Child);

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(h: &Harness, program: &str) -> Client {
    Client(
        Command::new(program)
            .env("WAYLAND_DISPLAY", &h.socket)
            .env("XDG_RUNTIME_DIR", &h.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{program}: {e} (install Debian's weston package)")),
    )
}

fn save(shot: &Canvas, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let _ = std::fs::write(dir.join(name), shot.to_png());
}

fn distinct_colours(shot: &Canvas, x0: u32, y0: u32, w: u32, h: u32) -> usize {
    let mut v: Vec<u32> = (y0..y0 + h)
        .flat_map(|y| (x0..x0 + w).map(move |x| (x, y)))
        .map(|(x, y)| shot.get(x, y))
        .collect();
    v.sort_unstable();
    v.dedup();
    v.len()
}

#[test]
#[ignore = "needs weston: run with cargo xtask test"]
fn weston_simple_shm_frames_appear_and_animate() {
    let h = Harness::start(LAYOUT);
    let _client = spawn(&h, "weston-simple-shm");
    h.wait_for("simple-shm's first frame", 20, |c, _| c.status(SourceId(0)) == SourceStatus::Live);
    let first = h.with(|c, _| c.snapshot(0));
    save(&first, "weston-simple-shm.png");
    assert!(distinct_colours(&first, 0, 0, 250, 250) > 50, "its pattern is on the display");
    assert_eq!(first.get(100, 400), 0xff00_0000, "outside its rectangle: the background");
    // It animates through frame callbacks: the picture keeps changing.
    h.wait_for("a later, different frame", 20, move |c, _| c.snapshot(0) != first);
}

#[test]
#[ignore = "needs weston: run with cargo xtask test"]
fn weston_simple_touch_draws_where_it_is_touched_through_a_rotated_region() {
    let h = Harness::start(LAYOUT);
    let _client = spawn(&h, "weston-simple-touch");
    h.wait_for("simple-touch's first frame", 20, |c, _| c.status(SourceId(2)) == SourceStatus::Live);
    let before = h.with(|c, _| c.snapshot(0));
    // Its 600x500 work area is ARGB 0x40404040 (premultiplied) over black.
    assert_eq!(before.get(500, 300), 0xff40_4040);
    assert_eq!(before.get(200, 300), 0xff00_0000);

    // Touch the display at two places; the region is turned 180°, so these
    // land near the client's bottom-right and top-left.
    let points = [(300.5, 60.5), (800.5, 480.5)];
    for (i, &(x, y)) in points.iter().enumerate() {
        h.with(move |c, _| {
            c.input(&DisplayEvent::TouchDown { display: 0, id: 0, x, y });
            c.input(&DisplayEvent::TouchFrame);
            c.input(&DisplayEvent::TouchUp { id: 0 });
            c.input(&DisplayEvent::TouchFrame);
        });
        let (px, py) = (x as u32, y as u32);
        h.wait_for(&format!("red under touch {i} at ({px}, {py})"), 20, move |c, _| {
            c.snapshot(0).get(px, py) == 0xffff_0000
        });
    }
    let after = h.with(|c, _| c.snapshot(0));
    save(&after, "weston-simple-touch.png");
    // Only a small mark per touch: the rest of the work area is unchanged.
    let red = after.pixels().iter().filter(|&&p| p == 0xffff_0000).count();
    assert!((2 * 9..=2 * 25).contains(&red), "{red} red pixels");
    assert_eq!(after.get(500, 300), 0xff40_4040);
}

#[test]
#[ignore = "needs weston: run with cargo xtask test"]
fn weston_simple_damage_with_a_viewport_shows_its_cropped_picture() {
    let h = Harness::start(LAYOUT);
    let _client = Client(
        Command::new("weston-simple-damage")
            .arg("--use-viewport")
            .env("WAYLAND_DISPLAY", &h.socket)
            .env("XDG_RUNTIME_DIR", &h.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("weston-simple-damage (install Debian's weston package)"),
    );
    h.wait_for("simple-damage's first frame", 20, |c, _| c.status(SourceId(1)) == SourceStatus::Live);
    let first = h.with(|c, _| c.snapshot(0));
    save(&first, "weston-simple-damage-viewport.png");
    // Its buffer is a red field round the picture it crops out with the
    // viewport: only the picture (a white frame, a green ball) may show.
    let in_rect = |shot: &Canvas, colour: u32| {
        (300..550u32).flat_map(|y| (600..1000u32).map(move |x| (x, y))).filter(|&(x, y)| shot.get(x, y) == colour).count()
    };
    assert_eq!(in_rect(&first, 0xffff_0000), 0, "the red outside the viewport's source shows");
    assert!(in_rect(&first, 0xffff_ffff) > 1000, "its white frame is not shown");
    h.wait_for("a later, different frame", 20, move |c, _| c.snapshot(0) != first);
    let later = h.with(|c, _| c.snapshot(0));
    assert_eq!(in_rect(&later, 0xffff_0000), 0, "the red outside the viewport's source shows");
}

#[test]
#[ignore = "needs weston: run with cargo xtask test"]
fn weston_subsurfaces_shows_its_sub_surfaces_over_its_window() {
    const L: &str = r##"
[[display]]
name = "center"
mode = "800x600"
background = "#000000"

[[source]]
name = "subsurfaces"
app_id = "org.freedesktop.weston.wayland-sub-surface-demo"
display = "center"
rect = [0, 0, 800, 600]
scaling = "stretch"
"##;
    let h = Harness::start(L);
    let _client = Client(
        Command::new("weston-subsurfaces")
            .env("WAYLAND_DISPLAY", &h.socket)
            .env("XDG_RUNTIME_DIR", &h.dir)
            .env("LIBGL_ALWAYS_SOFTWARE", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("weston-subsurfaces (install Debian's weston package)"),
    );
    h.wait_for("weston-subsurfaces' first frame", 30, |c, _| c.status(SourceId(0)) == SourceStatus::Live);
    // Its window (a toolkit frame round a green main surface) has two
    // sub-surfaces at the right: a red one drawn with cairo, and a dark
    // green one drawn with EGL (Mesa's software rasterizer over wl_shm),
    // desynchronized and animating. Without sub-surfaces only the main
    // surface's green would show there.
    let rgb = |p: u32| ((p >> 16) & 0xff, (p >> 8) & 0xff, p & 0xff);
    let main = move |p: u32| matches!(rgb(p), (r, g, b) if r < 0x20 && g > 0x80 && b < 0x20);
    let red = move |p: u32| matches!(rgb(p), (r, g, b) if r > 0x80 && g < 0x60 && b < 0x60);
    let dark_green = move |p: u32| matches!(rgb(p), (r, g, b) if r < 0x20 && (0x30..0x70).contains(&g) && b < 0x20);
    h.wait_for("both sub-surfaces", 20, move |c, _| {
        let s = c.snapshot(0);
        main(s.get(300, 300)) && red(s.get(540, 140)) && dark_green(s.get(540, 500))
    });
    let first = h.with(|c, _| c.snapshot(0));
    save(&first, "weston-subsurfaces.png");
    // The EGL sub-surface turns its triangle on its own commits.
    let region = |s: &Canvas| (330..520u32).flat_map(|y| (530..720u32).map(move |x| (x, y))).map(|(x, y)| s.get(x, y)).collect::<Vec<_>>();
    let before = region(&first);
    h.wait_for("the EGL sub-surface's next picture", 20, move |c, _| region(&c.snapshot(0)) != before);
}
