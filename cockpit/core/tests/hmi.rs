//! The HMI's run-time control: hide, show, move and fade sources by name,
//! with the layout's safety rules holding whatever is asked.

mod common;

use std::time::{Duration, Instant};

use cockpit_core::Rect;
use common::*;

const LAYOUT: &str = concat!(
    "[[source]]\nname = \"gauges\"\nguest = \"cluster/0\"\ndisplay = \"d\"\nrect = [0, 0, 4, 4]\nrole = \"cluster\"\n",
    "[[source]]\nname = \"nav\"\napp_id = \"nav\"\ndisplay = \"d\"\nrect = [4, 0, 4, 4]\n",
    "[[source]]\nname = \"lamp\"\nguest = \"cluster/1\"\ndisplay = \"d\"\nrect = [0, 6, 2, 2]\nrole = \"telltale\"\n",
);

/// The compositor with all three sources showing (keep the handles: a
/// dropped one is a source gone).
fn setup() -> (cockpit_core::Compositor, Vec<cockpit_core::SourceHandle>) {
    let mut c = compositor(LAYOUT);
    let src = c.sources();
    let hs: Vec<_> = [("gauges", frame(4, 4, &[A; 16])), ("nav", frame(4, 4, &[B; 16])), ("lamp", frame(2, 2, &[C; 4]))]
        .into_iter()
        .map(|(n, f)| {
            let h = src.connect_by_name(n).unwrap();
            h.submit(f);
            h
        })
        .collect();
    c.render(Instant::now());
    (c, hs)
}

#[test]
fn a_hidden_source_disappears_and_comes_back_when_shown() {
    let (mut c, _h) = setup();
    assert_eq!(c.snapshot(0).get(5, 1), B);
    c.set_shown("nav", false).unwrap();
    c.render(Instant::now());
    assert_eq!(c.snapshot(0).get(5, 1), BG, "hidden: the background shows");
    assert_eq!(c.hit(0, 5.5, 1.5), None, "and it takes no touches");
    c.set_shown("nav", true).unwrap();
    c.render(Instant::now());
    assert_eq!(c.snapshot(0).get(5, 1), B);
}

#[test]
fn safety_sources_are_never_hidden_faded_or_moved_off_their_display() {
    let (mut c, _h) = setup();
    let now = Instant::now();
    for e in [
        c.set_shown("gauges", false),
        c.set_shown("lamp", false),
        c.fade("gauges", 0, Duration::ZERO, now),
        c.fade("lamp", 10, Duration::ZERO, now),
        c.move_source("gauges", Rect::new(6, 0, 4, 4)),
        c.move_source("lamp", Rect::new(-1, 6, 2, 2)),
        c.move_source("nav", Rect::new(i32::MIN, 0, 4, 4)),
        c.move_source("gauges", Rect::new(0, 0, 1, 1)),
        c.move_source("lamp", Rect::new(1, 1, 2, 2)),
        c.move_source("nav", Rect::new(0, 0, i32::MAX, 4)),
    ] {
        assert!(e.is_err(), "allowed: {e:?}");
    }
    c.render(now);
    assert_eq!(c.snapshot(0).get(1, 1), A, "the cluster still shows");
    assert_eq!(c.snapshot(0).get(0, 6), C, "the telltale still shows");
    assert!(c.set_shown("no-such", false).unwrap_err().contains("no source"));
}

#[test]
fn a_moved_source_is_drawn_and_touched_at_its_new_place() {
    let (mut c, _h) = setup();
    c.move_source("nav", Rect::new(4, 4, 4, 4)).unwrap();
    c.render(Instant::now());
    let shot = c.snapshot(0);
    assert_eq!(shot.get(5, 1), BG, "its old place is cleared");
    assert_eq!(shot.get(5, 5), B);
    assert_eq!(c.hit(0, 5.5, 5.5), Some(1));
    // A cluster may move within its display.
    c.move_source("gauges", Rect::new(0, 1, 4, 4)).unwrap();
    c.render(Instant::now());
    assert_eq!(c.snapshot(0).get(1, 4), A);
}

#[test]
fn a_fade_steps_the_opacity_over_its_time_and_ends_there() {
    let (mut c, _h) = setup();
    let t0 = Instant::now();
    c.fade("nav", 0, Duration::from_millis(100), t0).unwrap();
    assert!(c.animating());
    c.render(t0 + Duration::from_millis(50));
    // Half way: green at about half over the blue background.
    let mid = c.snapshot(0).get(5, 1);
    let (g, b) = ((mid >> 8) & 0xff, mid & 0xff);
    assert!((120..=136).contains(&g) && (120..=136).contains(&b), "half way: {mid:08x}");
    c.render(t0 + Duration::from_millis(100));
    assert_eq!(c.snapshot(0).get(5, 1), BG, "faded out");
    assert!(!c.animating());
    assert_eq!(c.hmi_state()[1], ("nav".to_string(), true, Rect::new(4, 0, 4, 4), 0));
}

const SCENES: &str = concat!(
    "[[scene]]\nname = \"parking\"\nsources = [\n",
    "  { name = \"nav\", rect = [4, 4, 4, 4], opacity = 0.0, fade_ms = 100 },\n",
    "  { name = \"lamp\", rect = [6, 6, 2, 2] },\n",
    "]\n",
    "[[scene]]\nname = \"driving\"\nsources = [{ name = \"nav\", shown = false }]\n",
);

#[test]
fn a_scene_moves_fades_and_hides_what_it_names() {
    let mut c = compositor(&format!("{LAYOUT}{SCENES}"));
    let src = c.sources();
    let _h: Vec<_> = [("gauges", frame(4, 4, &[A; 16])), ("nav", frame(4, 4, &[B; 16])), ("lamp", frame(2, 2, &[C; 4]))]
        .into_iter()
        .map(|(n, f)| {
            let h = src.connect_by_name(n).unwrap();
            h.submit(f);
            h
        })
        .collect();
    let t0 = Instant::now();
    c.render(t0);
    assert_eq!(c.scene_names(), vec!["parking".to_string(), "driving".to_string()]);
    c.apply_scene("parking", t0).unwrap();
    c.render(t0);
    let shot = c.snapshot(0);
    assert_eq!(shot.get(5, 5), B, "nav moved, still opaque at the fade's start");
    assert_eq!(shot.get(5, 1), BG, "nav left its old place");
    assert_eq!(shot.get(7, 7), C, "the lamp moved");
    c.render(t0 + Duration::from_millis(200));
    assert_eq!(c.snapshot(0).get(5, 5), BG, "nav faded out after the scene's fade time");

    c.apply_scene("driving", t0).unwrap();
    assert!(c.hmi_state().iter().any(|(n, shown, _, _)| n == "nav" && !shown), "nav hidden by the second scene");
    assert_eq!(c.apply_scene("nope", t0).unwrap_err(), "no scene \"nope\" in the layout");
}

#[test]
fn a_scene_that_breaks_a_safety_rule_is_a_layout_error() {
    for (scene, message) in [
        ("{ name = \"gauges\", shown = false }", "never hidden"),
        ("{ name = \"lamp\", opacity = 0.5 }", "never faded"),
        ("{ name = \"gauges\", rect = [0, 0, 2, 2] }", "keeps its size"),
        ("{ name = \"lamp\", rect = [7, 7, 2, 2] }", "stays wholly on its display"),
        ("{ name = \"nope\" }", "no source is named `nope`"),
        ("{ name = \"nav\", fade_ms = -1 }", "0 to 60000"),
    ] {
        let text = format!("[[display]]\nname = \"d\"\nmode = \"8x8\"\n{LAYOUT}[[scene]]\nname = \"s\"\nsources = [{scene}]\n");
        let e = cockpit_core::Layout::parse(&text, std::path::Path::new("l.toml")).unwrap_err().to_string();
        assert!(e.contains(message) && e.contains("l.toml:"), "{scene}: {e}");
    }
}

#[test]
fn a_hidden_source_keeps_its_watchdog_from_expiring_until_shown() {
    let layout = concat!("[[source]]\nname = \"app\"\napp_id = \"app\"\ndisplay = \"d\"\nrect = [0, 0, 4, 4]\nwatchdog_ms = 100\n");
    let mut c = compositor(layout);
    let h = c.sources().connect_by_name("app").unwrap();
    h.submit(frame(4, 4, &[A; 16]));
    let t0 = Instant::now();
    c.render(t0);
    c.set_shown("app", false).unwrap();
    // Hidden for far longer than its watchdog, not drawing meanwhile.
    for ms in [50, 500, 5000] {
        c.render(t0 + Duration::from_millis(ms));
    }
    c.set_shown("app", true).unwrap();
    c.render(t0 + Duration::from_millis(5010));
    assert_eq!(c.status(cockpit_core::SourceId(0)), cockpit_core::SourceStatus::Live, "shown again: not stale at once");
    assert_eq!(c.snapshot(0).get(1, 1), A, "its picture, not the fallback");
    c.render(t0 + Duration::from_millis(5200));
    assert_eq!(c.status(cockpit_core::SourceId(0)), cockpit_core::SourceStatus::Stale, "the watchdog runs again once shown");
}
