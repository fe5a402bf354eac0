//! `wl_subcompositor` with a wayland-client test client: sub-surfaces are
//! drawn over their toplevel where it is placed, follow the synchronized
//! and desynchronized rules, move and restack on the parent's commit, and
//! a client making a cycle gets a protocol error.

mod common;

use std::time::{Duration, Instant};

use cockpit_core::{SourceId, SourceStatus};
use common::*;
use wayland_client::protocol::{wl_subcompositor::WlSubcompositor, wl_subsurface::WlSubsurface, wl_surface::WlSurface};
use wayland_client::{Connection, Dispatch, QueueHandle};

// The app's 64x48 buffer is shown at twice its size (stretch, nearest),
// so a buffer pixel (x, y) is display pixels (2x, 2y)..(2x+1, 2y+1).
const LAYOUT: &str = r##"
[[display]]
name = "center"
mode = "160x120"
background = "#000040"

[[source]]
name = "app"
app_id = "org.example.app"
display = "center"
rect = [16, 12, 128, 96]
scaling = "stretch"
filter = "nearest"
"##;

const RED: u32 = 0xffff_0000;
const GREEN: u32 = 0xff00_ff00;
const BLUE: u32 = 0xff00_00ff;
const WHITE: u32 = 0xffff_ffff;
const YELLOW: u32 = 0xffff_ff00;

impl Dispatch<WlSubcompositor, ()> for Seen {
    fn event(_: &mut Self, _: &WlSubcompositor, _: <WlSubcompositor as wayland_client::Proxy>::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {}
}
impl Dispatch<WlSubsurface, ()> for Seen {
    fn event(_: &mut Self, _: &WlSubsurface, _: <WlSubsurface as wayland_client::Proxy>::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {}
}

/// The display pixel showing buffer pixel (x, y) of the app.
fn at(h: &Harness, x: u32, y: u32) -> u32 {
    h.with(move |c, _| c.snapshot(0).get(16 + 2 * x, 12 + 2 * y))
}

/// Waits until buffer pixel (x, y) shows `colour`.
fn wait_colour(h: &Harness, c: &mut TestClient, x: u32, y: u32, colour: u32, what: &str) {
    let t0 = Instant::now();
    while at(h, x, y) != colour {
        assert!(t0.elapsed() < Duration::from_secs(10), "timed out waiting for {what}: {:#x} at ({x}, {y})", at(h, x, y));
        c.roundtrip().unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Lets the compositor run a few frames.
fn settle(c: &mut TestClient) {
    for _ in 0..10 {
        c.roundtrip().unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn attach(c: &mut TestClient, s: &WlSurface, w: i32, h: i32, colour: u32) {
    let buf = c.buffer(w, h, &vec![colour; (w * h) as usize], w * h * 4, (w * h * 4) as u64);
    s.attach(Some(&buf), 0, 0);
    s.damage_buffer(0, 0, w, h);
}

#[test]
fn sub_surfaces_show_over_their_toplevel_and_follow_its_commits() {
    let h = Harness::start(LAYOUT);
    let mut c = TestClient::connect(&h.socket);
    let subc: WlSubcompositor = c.globals.bind(&c.qh, 1..=1, ()).expect("wl_subcompositor is offered");
    let (parent, _top) = c.toplevel("org.example.app");
    c.show(&parent, 64, 48, &vec![RED; 64 * 48]).unwrap();
    h.wait_for("the toplevel", 10, |comp, _| comp.status(SourceId(0)) == SourceStatus::Live);
    wait_colour(&h, &mut c, 5, 5, RED, "the toplevel's picture");

    // Synchronized (the default): the child's commit waits for the parent's.
    let child = c.compositor.create_surface(&c.qh, ());
    let sub = subc.get_subsurface(&child, &parent, &c.qh, ());
    sub.set_position(4, 4);
    attach(&mut c, &child, 8, 8, GREEN);
    child.frame(&c.qh, ());
    child.commit();
    settle(&mut c);
    assert_eq!(at(&h, 6, 6), RED, "a synchronized sub-surface showed before its parent committed");
    parent.commit();
    wait_colour(&h, &mut c, 6, 6, GREEN, "the sub-surface after the parent's commit");
    assert_eq!(at(&h, 3, 3), RED, "outside the sub-surface: the toplevel");
    assert_eq!(at(&h, 12, 12), RED, "past the sub-surface: the toplevel");
    // The child's frame callback fires once it is on the display.
    let t0 = Instant::now();
    while c.seen.frames_done < 2 && t0.elapsed() < Duration::from_secs(5) {
        c.roundtrip().unwrap();
    }
    assert!(c.seen.frames_done >= 2, "the sub-surface's frame callback did not fire");

    // A later synchronized commit of the mapped sub-surface waits too.
    attach(&mut c, &child, 8, 8, YELLOW);
    child.commit();
    settle(&mut c);
    assert_eq!(at(&h, 6, 6), GREEN, "a synchronized commit showed before its parent's");
    parent.commit();
    wait_colour(&h, &mut c, 6, 6, YELLOW, "the synchronized commit with the parent's");
    attach(&mut c, &child, 8, 8, GREEN);
    child.commit();
    parent.commit();
    wait_colour(&h, &mut c, 6, 6, GREEN, "the sub-surface green again");

    // A touch over the sub-surface goes to it, in its own coordinates;
    // beside it, to the toplevel. (Buffer pixel (7, 5) is display
    // (16 + 14.5, 12 + 10.5); the sub-surface starts at buffer (4, 4).)
    h.with(|comp, _| {
        for (id, x, y) in [(1, 30.5, 22.5), (2, 60.5, 60.5)] {
            comp.input(&cockpit_core::DisplayEvent::TouchDown { display: 0, id, x, y });
            comp.input(&cockpit_core::DisplayEvent::TouchFrame);
            comp.input(&cockpit_core::DisplayEvent::TouchUp { id });
            comp.input(&cockpit_core::DisplayEvent::TouchFrame);
        }
    });
    let t0 = Instant::now();
    while c.seen.touch_surfaces.len() < 2 && t0.elapsed() < Duration::from_secs(5) {
        c.roundtrip().unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    use wayland_client::Proxy;
    assert_eq!(c.seen.touch_surfaces, vec![child.id().protocol_id(), parent.id().protocol_id()]);
    assert_eq!(c.seen.touches[0], (1, 3.25, 1.25), "in the sub-surface's own coordinates");
    assert_eq!(c.seen.touches[1], (2, 22.25, 24.25), "in the toplevel's coordinates");

    // A position takes effect with the parent's commit.
    sub.set_position(40, 20);
    settle(&mut c);
    assert_eq!(at(&h, 6, 6), GREEN, "moved before the parent committed");
    parent.commit();
    wait_colour(&h, &mut c, 44, 24, GREEN, "the sub-surface at its new place");
    assert_eq!(at(&h, 6, 6), RED, "the old place still shows the sub-surface");

    // A second sub-surface on top, partly over the first; restacked
    // below it on the parent's commit.
    let child2 = c.compositor.create_surface(&c.qh, ());
    let sub2 = subc.get_subsurface(&child2, &parent, &c.qh, ());
    sub2.set_position(44, 20);
    attach(&mut c, &child2, 8, 8, WHITE);
    child2.commit();
    parent.commit();
    wait_colour(&h, &mut c, 46, 22, WHITE, "the second sub-surface over the first");
    sub2.place_below(&child);
    parent.commit();
    wait_colour(&h, &mut c, 46, 22, GREEN, "the first sub-surface over the second once restacked");
    assert_eq!(at(&h, 50, 22), WHITE, "the uncovered part of the second sub-surface");

    // Desynchronized: the child's commits show at once.
    sub.set_desync();
    attach(&mut c, &child, 8, 8, BLUE);
    child.commit();
    wait_colour(&h, &mut c, 44, 24, BLUE, "a desynchronized commit without the parent's");

    // Stacked below its (opaque) parent: hidden under it.
    sub2.place_below(&parent);
    parent.commit();
    wait_colour(&h, &mut c, 50, 22, RED, "the toplevel where the sub-surface below it was");

    // Unmapped when its role is destroyed.
    sub.destroy();
    sub2.destroy();
    wait_colour(&h, &mut c, 44, 24, RED, "the toplevel where the destroyed sub-surfaces were");
    assert_eq!(at(&h, 50, 22), RED);
}

#[test]
fn a_sub_surface_cycle_is_a_protocol_error() {
    let h = Harness::start(LAYOUT);
    let mut c = TestClient::connect(&h.socket);
    let subc: WlSubcompositor = c.globals.bind(&c.qh, 1..=1, ()).unwrap();
    let a = c.compositor.create_surface(&c.qh, ());
    let b = c.compositor.create_surface(&c.qh, ());
    let _ab = subc.get_subsurface(&a, &b, &c.qh, ());
    c.roundtrip().unwrap();
    let _ba = subc.get_subsurface(&b, &a, &c.qh, ());
    let err = c.roundtrip().unwrap_err();
    assert!(err.contains("the parent is a sub-surface of the surface"), "{err}");

    // Its own parent: refused too.
    let mut c2 = TestClient::connect(&h.socket);
    let subc2: WlSubcompositor = c2.globals.bind(&c2.qh, 1..=1, ()).unwrap();
    let s = c2.compositor.create_surface(&c2.qh, ());
    let _ss = subc2.get_subsurface(&s, &s, &c2.qh, ());
    let err = c2.roundtrip().unwrap_err();
    assert!(err.contains("the surface itself"), "{err}");
}

#[test]
fn a_client_has_a_bounded_number_of_sub_surfaces_and_levels() {
    let max = cockpit_core::MAX_SUB_PICTURES;
    let h = Harness::start(LAYOUT);
    let mut c = TestClient::connect(&h.socket);
    let subc: WlSubcompositor = c.globals.bind(&c.qh, 1..=1, ()).unwrap();
    let parent = c.compositor.create_surface(&c.qh, ());
    let mut keep = Vec::new();
    for _ in 0..max {
        let s = c.compositor.create_surface(&c.qh, ());
        keep.push((subc.get_subsurface(&s, &parent, &c.qh, ()), s));
    }
    c.roundtrip().expect("the allowed number of sub-surfaces");
    // Giving one up makes room for one more, and no more than that.
    let (sub, _) = keep.pop().unwrap();
    sub.destroy();
    let s = c.compositor.create_surface(&c.qh, ());
    keep.push((subc.get_subsurface(&s, &parent, &c.qh, ()), s));
    c.roundtrip().expect("a freed place is taken again");
    let s = c.compositor.create_surface(&c.qh, ());
    let _over = subc.get_subsurface(&s, &parent, &c.qh, ());
    let err = c.roundtrip().unwrap_err();
    assert!(err.contains(&format!("at most {max} sub-surfaces")), "{err}");

    // A chain built from the bottom up (each new parent without a role
    // yet) still stops at the level limit.
    let mut c = TestClient::connect(&h.socket);
    let subc: WlSubcompositor = c.globals.bind(&c.qh, 1..=1, ()).unwrap();
    let mut below = c.compositor.create_surface(&c.qh, ());
    let mut subs = Vec::new();
    let mut refused = None;
    for level in 1..=12 {
        let above = c.compositor.create_surface(&c.qh, ());
        subs.push(subc.get_subsurface(&below, &above, &c.qh, ()));
        if let Err(e) = c.roundtrip() {
            refused = Some((level, e));
            break;
        }
        below = above;
    }
    let (level, err) = refused.expect("a chain of 12 levels was accepted");
    assert!(level <= 8 && err.contains("nest too deep"), "level {level}: {err}");
}
