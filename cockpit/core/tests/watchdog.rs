//! The watchdog and vanishing sources: a source that stops flipping shows
//! its fallback without disturbing anything else, and a producer going away
//! mid-frame is survived.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use cockpit_core::{Canvas, Frame, FrameData, PixelFormat, SourceId, SourceStatus};
use common::*;

const TWO_DISPLAYS: &str = r##"
[[display]]
name = "cluster"
mode = "64x24"
[[display]]
name = "center"
mode = "64x40"
background = "#000040"
[[source]]
name = "gauges"
guest = "cluster/0"
display = "cluster"
role = "cluster"
watchdog_ms = 100
[[source]]
name = "ivi"
guest = "ivi/0"
display = "center"
watchdog_ms = 100
[[source]]
name = "radio"
app_id = "radio"
display = "center"
rect = [0, 0, 16, 8]
z = 1
"##;

const LABEL: u32 = 0xffff_cc00;

fn count(c: &Canvas, colour: u32) -> usize {
    c.pixels().iter().filter(|&&p| p == colour).count()
}

#[test]
fn a_stale_source_is_dimmed_and_labelled_and_nothing_else_changes() {
    let clock = Clock::new();
    let mut c = layout_compositor(TWO_DISPLAYS);
    let src = c.sources();
    let (gauges, ivi, radio) = (
        src.connect_by_name("gauges").unwrap(),
        src.connect_by_name("ivi").unwrap(),
        src.connect_by_name("radio").unwrap(),
    );
    gauges.submit(Frame::solid(64, 24, PixelFormat::Xrgb8888, 0xff20_40c0));
    ivi.submit(Frame::solid(64, 40, PixelFormat::Xrgb8888, 0xffc8_c8c8));
    radio.submit(Frame::solid(16, 8, PixelFormat::Xrgb8888, 0xff00_ff00));
    c.render(clock.at(0));
    let cluster_before = c.snapshot(0);

    // The cluster keeps flipping; the IVI stops.
    gauges.submit(Frame::solid(64, 24, PixelFormat::Xrgb8888, 0xff20_40c0));
    c.render(clock.at(90));
    assert_eq!(c.status(SourceId(1)), SourceStatus::Live);
    gauges.submit(Frame::solid(64, 24, PixelFormat::Xrgb8888, 0xff20_40c0));
    let st = c.render(clock.at(180));
    assert_eq!(c.status(SourceId(1)), SourceStatus::Stale);
    assert_eq!(c.status(SourceId(0)), SourceStatus::Live);
    assert!(st.changed[1]);
    let center = c.snapshot(1);
    // 0xc8 * 90 / 255 = 70.6, rounded 0x47: the last frame, dimmed, with a label on it.
    assert_eq!(center.get(40, 36), 0xff47_4747, "dimmed last frame");
    assert!(count(&center, LABEL) > 20, "the label is drawn");
    assert_eq!(center.get(2, 2), 0xff00_ff00, "the radio on top is untouched");
    assert_eq!(c.snapshot(0), cluster_before, "the cluster display is untouched");

    // Flipping again brings it back.
    ivi.submit(Frame::solid(64, 40, PixelFormat::Xrgb8888, 0xffc8_c8c8));
    c.render(clock.at(200));
    assert_eq!(c.status(SourceId(1)), SourceStatus::Live);
    let center = c.snapshot(1);
    assert_eq!(count(&center, LABEL), 0);
    assert_eq!(center.get(40, 36), 0xffc8_c8c8);
}

#[test]
fn the_cluster_going_stale_gets_a_plate_and_the_ivi_cannot_cover_it() {
    let clock = Clock::new();
    let text = TWO_DISPLAYS.replacen("display = \"center\"\nwatchdog_ms = 100", "display = \"cluster\"\nz = 50", 1);
    let mut c = layout_compositor(&text);
    let src = c.sources();
    let (gauges, ivi) = (src.connect_by_name("gauges").unwrap(), src.connect_by_name("ivi").unwrap());
    gauges.submit(Frame::solid(64, 24, PixelFormat::Xrgb8888, 0xff20_40c0));
    ivi.submit(Frame::solid(64, 24, PixelFormat::Xrgb8888, 0xffff_0000));
    c.render(clock.at(0));
    assert_eq!(c.snapshot(0).get(1, 1), 0xff20_40c0, "cluster above IVI");
    ivi.submit(Frame::solid(64, 24, PixelFormat::Xrgb8888, 0xffff_0000));
    c.render(clock.at(150));
    let shot = c.snapshot(0);
    assert_eq!(c.status(SourceId(0)), SourceStatus::Stale);
    assert_eq!(shot.get(1, 1), 0xff20_2020, "a plate replaces the stale cluster, still on top");
    assert_eq!(count(&shot, 0xff0b_1744) + count(&shot, 0xff20_40c0), 0, "nothing of the stale gauges stays readable");
    assert_eq!(count(&shot, 0xffff_0000), 0, "no IVI pixel shows in the cluster's region");
    assert!(count(&shot, LABEL) > 20);
}

#[test]
fn a_source_that_never_flips_gets_a_plate_and_an_image_fallback_is_shown() {
    let clock = Clock::new();
    let dir = std::env::temp_dir().join(format!("cockpit-wd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("nosig.png"), Canvas::new(2, 2, 0x00ff00).to_png()).unwrap();
    let text = TWO_DISPLAYS.replacen(
        "watchdog_ms = 100\n[[source]]\nname = \"radio\"",
        "watchdog_ms = 100\nfallback_image = \"nosig.png\"\n[[source]]\nname = \"radio\"",
        1,
    );
    let mut c = cockpit_core::Compositor::new(cockpit_core::Layout::parse(&text, &dir.join("l.toml")).unwrap());
    c.render(clock.at(0));
    assert_eq!(c.status(SourceId(0)), SourceStatus::Waiting);
    assert_eq!(c.snapshot(0).get(1, 1), 0xff00_0000, "nothing yet: the background");
    c.render(clock.at(150));
    assert_eq!(c.status(SourceId(0)), SourceStatus::NoSignal);
    let cl = c.snapshot(0);
    assert_eq!(cl.get(1, 1), 0xff20_2020, "a plate");
    assert!(count(&cl, LABEL) > 20, "with its label");
    let ce = c.snapshot(1);
    assert_eq!(ce.get(32, 20), 0xff00_ff00, "the configured image, fitted");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_vanished_source_shows_its_fallback_and_can_come_back() {
    let clock = Clock::new();
    let mut c = layout_compositor(TWO_DISPLAYS);
    let src = c.sources();
    let ivi = src.connect_by_name("ivi").unwrap();
    ivi.submit(Frame::solid(64, 40, PixelFormat::Xrgb8888, 0xffc8_c8c8));
    c.render(clock.at(0));
    assert!(src.connect_by_name("ivi").is_err(), "one producer per source");
    drop(ivi);
    c.render(clock.at(10));
    assert_eq!(c.status(SourceId(1)), SourceStatus::Vanished);
    assert!(count(&c.snapshot(1), LABEL) > 20);
    let ivi = src.connect_by_name("ivi").unwrap();
    ivi.submit(Frame::solid(64, 40, PixelFormat::Xrgb8888, 0xffc8_c8c8));
    c.render(clock.at(20));
    assert_eq!(c.status(SourceId(1)), SourceStatus::Live);
    assert_eq!(count(&c.snapshot(1), LABEL), 0);
}

/// Memory that can be taken away, like a guest's grant being unmapped.
struct Revocable {
    bytes: Vec<u8>,
    gone: Arc<AtomicBool>,
}

impl FrameData for Revocable {
    fn bytes(&self) -> &[u8] {
        if self.gone.load(Ordering::SeqCst) {
            &self.bytes[..0]
        } else {
            &self.bytes
        }
    }
}

#[test]
fn memory_revoked_under_a_frame_is_skipped_not_read() {
    let clock = Clock::new();
    let mut c = layout_compositor(TWO_DISPLAYS);
    let src = c.sources();
    let ivi = src.connect_by_name("ivi").unwrap();
    let gone = Arc::new(AtomicBool::new(false));
    let data = Revocable {
        bytes: vec![0x80; 64 * 40 * 4],
        gone: gone.clone(),
    };
    ivi.submit(Frame::new(Arc::new(data), 0, 64, 40, 256, PixelFormat::Xrgb8888).unwrap());
    c.render(clock.at(0));
    assert_eq!(c.snapshot(1).get(5, 30), 0xff80_8080);
    gone.store(true, Ordering::SeqCst);
    drop(ivi);
    c.render(clock.at(10));
    let shot = c.snapshot(1);
    assert_eq!(shot.get(5, 30), 0xff20_2020, "the fallback plate instead of the vanished memory");
}

#[test]
fn producers_vanishing_mid_frame_on_other_threads_are_survived() {
    let mut c = layout_compositor(TWO_DISPLAYS);
    let src = c.sources();
    let gauges = src.connect_by_name("gauges").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for _ in 0..2 {
        let (src, stop) = (src.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(Ordering::SeqCst) {
                // Connect, flip a few frames, vanish; over and over.
                if let Ok(h) = src.connect_by_name("ivi") {
                    for i in 0..(n % 5) {
                        h.submit(Frame::solid(64 - i, 40, PixelFormat::Xrgb8888, 0xff00_0000 | n));
                    }
                    n += 1;
                }
                std::thread::yield_now();
            }
        }));
    }
    let t0 = Instant::now();
    for i in 0..300 {
        gauges.submit(Frame::solid(64, 24, PixelFormat::Xrgb8888, 0xff00_0000 | i));
        c.render(Instant::now());
        assert_eq!(c.snapshot(0).get(10, 10), 0xff00_0000 | i, "the cluster shows every frame it flips");
    }
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    assert!(t0.elapsed().as_secs() < 60);
}

#[test]
fn per_source_frame_counts_show_which_source_stalled() {
    let clock = Clock::new();
    let mut c = layout_compositor(TWO_DISPLAYS);
    let src = c.sources();
    let (gauges, ivi) = (src.connect_by_name("gauges").unwrap(), src.connect_by_name("ivi").unwrap());
    for t in 0..3 {
        gauges.submit(Frame::solid(64, 24, PixelFormat::Xrgb8888, 0xff20_4000 + t));
        c.render(clock.at(t as u64 * 16));
    }
    // Two frames between renders: only the newer is taken, and counted.
    ivi.submit(Frame::solid(64, 40, PixelFormat::Xrgb8888, 0xff00_0001));
    ivi.submit(Frame::solid(64, 40, PixelFormat::Xrgb8888, 0xff00_0002));
    c.render(clock.at(64));
    let counts: Vec<(String, u64)> = c.source_frames().map(|(n, f)| (n.to_string(), f)).collect();
    assert_eq!(counts, [("gauges".to_string(), 3), ("ivi".to_string(), 1), ("radio".to_string(), 0)]);
}

#[test]
fn a_cluster_with_alpha_or_letterboxing_never_shows_what_is_under_it() {
    let clock = Clock::new();
    // The IVI under the cluster's region; the cluster's buffer is narrower
    // than its region (letterboxed) and half transparent.
    let text = TWO_DISPLAYS.replacen("display = \"center\"\nwatchdog_ms = 100", "display = \"cluster\"\nz = -5", 1);
    let mut c = layout_compositor(&text);
    let src = c.sources();
    let (gauges, ivi) = (src.connect_by_name("gauges").unwrap(), src.connect_by_name("ivi").unwrap());
    ivi.submit(Frame::solid(64, 24, PixelFormat::Xrgb8888, 0xffff_0000));
    gauges.submit(Frame::solid(32, 24, PixelFormat::Argb8888, 0x8000_0080));
    c.render(clock.at(0));
    let shot = c.snapshot(0);
    assert_eq!(count(&shot, 0xffff_0000), 0, "IVI pixels show through the cluster's region");
    assert!(shot.pixels().iter().any(|&p| p == 0xff00_0080), "the cluster's own picture is there");
}

#[test]
fn safety_roles_cannot_be_claimed_by_an_app_id_nor_hidden() {
    let e = cockpit_core::Layout::parse(&TWO_DISPLAYS.replacen("guest = \"cluster/0\"", "app_id = \"cluster\"", 1), std::path::Path::new("l.toml")).unwrap_err().to_string();
    assert!(e.contains("app_id") && e.contains("Wayland client chooses its own app id"), "{e}");
    let e = cockpit_core::Layout::parse(&TWO_DISPLAYS.replacen("role = \"cluster\"", "role = \"cluster\"\nfallback = \"hide\"", 1), std::path::Path::new("l.toml")).unwrap_err().to_string();
    assert!(e.contains("fallback") && e.contains("never hides"), "{e}");
}

#[test]
fn a_cluster_re_flipping_one_picture_is_caught_as_frozen() {
    let clock = Clock::new();
    let text = TWO_DISPLAYS
        .replacen("watchdog_ms = 100", "watchdog_ms = 100\nfrozen_ms = 120", 1)
        .replacen("display = \"center\"\nwatchdog_ms = 100", "display = \"center\"", 1);
    let mut c = layout_compositor(&text);
    let gauges = c.sources().connect_by_name("gauges").unwrap();
    // Flipping well within the watchdog, always the same picture.
    for t in 0..5 {
        gauges.submit(Frame::solid(64, 24, PixelFormat::Xrgb8888, 0xff20_40c0));
        c.render(clock.at(t * 50));
        if t == 1 {
            // Flipped at 50 ms, unchanged since 0: the picture's deadline
            // (120 ms) comes before the flip's (150 ms).
            assert_eq!(c.next_deadline(clock.at(50)), Some(std::time::Duration::from_millis(70)));
        }
    }
    assert_eq!(c.status(SourceId(0)), SourceStatus::Frozen, "same picture for 200 ms, flips or not");
    let shot = c.snapshot(0);
    assert_eq!(count(&shot, 0xff20_40c0), 0, "the frozen gauges are replaced by a plate");
    assert!(count(&shot, LABEL) > 20);
    // A new picture: live again.
    gauges.submit(Frame::solid(64, 24, PixelFormat::Xrgb8888, 0xff20_40c1));
    c.render(clock.at(250));
    assert_eq!(c.status(SourceId(0)), SourceStatus::Live);
    assert_eq!(c.snapshot(0).get(1, 1), 0xff20_40c1);
    // A moving picture is never frozen.
    for t in 0..6u32 {
        gauges.submit(Frame::solid(64, 24, PixelFormat::Xrgb8888, 0xff00_0000 + t));
        c.render(clock.at(300 + u64::from(t) * 50));
        assert_eq!(c.status(SourceId(0)), SourceStatus::Live);
    }
}
