//! Input routing: display touches and clicks reach the source drawn under
//! them, in that source's own pixels, through rotation and scaling.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use cockpit_core::input::codes::BTN_LEFT;
use cockpit_core::{DisplayEvent, Frame, GuestEvent, PixelFormat, SourceHandle};
use common::*;

type Log = Arc<Mutex<Vec<GuestEvent>>>;

fn listen(h: &SourceHandle) -> Log {
    let log: Log = Arc::default();
    let l = log.clone();
    h.set_input(Box::new(move |e: &GuestEvent| l.lock().unwrap().push(e.clone())));
    log
}

fn take(log: &Log) -> Vec<GuestEvent> {
    std::mem::take(&mut *log.lock().unwrap())
}

fn down(x: f64, y: f64) -> DisplayEvent {
    DisplayEvent::TouchDown { display: 0, id: 0, x, y }
}

#[test]
fn touches_map_through_rotation_and_scaling() {
    let text = "[[display]]\nname = \"d\"\nmode = \"400x400\"\n[[source]]\nname = \"s\"\nguest = \"g/0\"\ndisplay = \"d\"\nrect = [10, 20, 100, 200]\nrotation = 90\nscaling = \"stretch\"\n";
    let mut c = layout_compositor(text);
    let s = c.sources().connect_by_name("s").unwrap();
    let log = listen(&s);
    // A 100x50 buffer turned clockwise is 50x100, stretched 2x to 100x200.
    s.submit(Frame::solid(100, 50, PixelFormat::Xrgb8888, A));
    c.render(Instant::now());
    c.input(&down(12.0, 22.0));
    take(&log).retain(|_| false);
    c.input(&DisplayEvent::TouchUp { id: 0 });
    take(&log);
    c.input(&down(12.0, 22.0));
    // Near the picture's top-left is the buffer's bottom-left.
    assert_eq!(take(&log), vec![GuestEvent::TouchDown { id: 0, x: 1.0, y: 49.0 }]);
    c.input(&DisplayEvent::TouchMotion {
        display: 0,
        id: 0,
        x: 108.0,
        y: 218.0,
    });
    assert_eq!(take(&log), vec![GuestEvent::TouchMotion { id: 0, x: 99.0, y: 1.0 }]);
    c.input(&DisplayEvent::TouchUp { id: 0 });
    assert_eq!(take(&log), vec![GuestEvent::TouchUp { id: 0 }]);
}

/// For every rotation and scaling mode: touching where a marked buffer pixel
/// was drawn reports that very pixel.
#[test]
fn a_touch_lands_on_the_pixel_drawn_under_it() {
    for rot in [0, 90, 180, 270] {
        for scaling in ["fit", "fill", "integer", "stretch"] {
            let text = format!(
                "[[display]]\nname = \"d\"\nmode = \"64x48\"\n[[source]]\nname = \"s\"\nguest = \"g/0\"\ndisplay = \"d\"\nrect = [5, 3, 50, 40]\nrotation = {rot}\nscaling = \"{scaling}\"\nfilter = \"nearest\"\n"
            );
            let mut c = layout_compositor(&text);
            let s = c.sources().connect_by_name("s").unwrap();
            let log = listen(&s);
            let (bw, bh) = (12u32, 9u32);
            let (mx, my) = (8u32, 2u32);
            let mut px = vec![A; (bw * bh) as usize];
            px[(my * bw + mx) as usize] = B;
            s.submit(Frame::from_pixels(&px, bw, bh, PixelFormat::Xrgb8888).unwrap());
            c.render(Instant::now());
            let shot = c.snapshot(0);
            let mut seen = 0;
            for y in 0..48 {
                for x in 0..64 {
                    if shot.get(x, y) == B {
                        seen += 1;
                        c.input(&down(x as f64 + 0.5, y as f64 + 0.5));
                        c.input(&DisplayEvent::TouchUp { id: 0 });
                        let ev: Vec<_> = take(&log)
                            .into_iter()
                            .filter(|e| !matches!(e, GuestEvent::KeyboardFocus(_)))
                            .collect();
                        match ev.first() {
                            Some(GuestEvent::TouchDown { x: u, y: v, .. }) => {
                                assert_eq!(
                                    (u.floor() as u32, v.floor() as u32),
                                    (mx, my),
                                    "rotation {rot}, {scaling}, display ({x}, {y})"
                                )
                            }
                            other => panic!("rotation {rot}, {scaling}: touch at ({x}, {y}) gave {other:?}"),
                        }
                    }
                }
            }
            assert!(seen > 0, "rotation {rot}, {scaling}: the marked pixel is visible");
        }
    }
}

fn three_sources() -> (cockpit_core::Compositor, Vec<SourceHandle>, Vec<Log>) {
    let mut c = compositor(concat!(
        "[[source]]\nname = \"ivi\"\nguest = \"ivi/0\"\ndisplay = \"d\"\n",
        "[[source]]\nname = \"cluster\"\nguest = \"cluster/0\"\ndisplay = \"d\"\nrect = [0, 4, 8, 4]\nrole = \"cluster\"\n",
        "[[source]]\nname = \"lamps\"\nguest = \"cluster/1\"\ndisplay = \"d\"\nrect = [0, 6, 2, 2]\nrole = \"telltale\"\n",
    ));
    let src = c.sources();
    let hs: Vec<SourceHandle> = ["ivi", "cluster", "lamps"]
        .iter()
        .map(|n| src.connect_by_name(n).unwrap())
        .collect();
    hs[0].submit(Frame::solid(8, 8, PixelFormat::Xrgb8888, A));
    hs[1].submit(Frame::solid(8, 4, PixelFormat::Xrgb8888, B));
    hs[2].submit(Frame::solid(2, 2, PixelFormat::Xrgb8888, C));
    let logs = hs.iter().map(listen).collect();
    c.render(Instant::now());
    (c, hs, logs)
}

#[test]
fn the_topmost_source_gets_the_touch_and_telltales_let_it_through() {
    let (mut c, _hs, logs) = three_sources();
    c.input(&down(3.5, 1.5));
    assert_eq!(
        take(&logs[0]),
        vec![GuestEvent::KeyboardFocus(true), GuestEvent::TouchDown { id: 0, x: 3.5, y: 1.5 }]
    );
    c.input(&DisplayEvent::TouchUp { id: 0 });
    c.input(&down(1.0, 7.0));
    assert!(take(&logs[2]).is_empty(), "telltales take no input");
    let got = take(&logs[1]);
    assert_eq!(
        got.last(),
        Some(&GuestEvent::TouchDown { id: 0, x: 1.0, y: 3.0 }),
        "the cluster below the telltale gets it"
    );
    assert_eq!(
        take(&logs[0]),
        vec![GuestEvent::TouchUp { id: 0 }, GuestEvent::KeyboardFocus(false)]
    );
}

#[test]
fn a_touch_stays_with_its_source_until_it_lifts() {
    let (mut c, _hs, logs) = three_sources();
    c.input(&down(3.0, 1.0));
    c.input(&DisplayEvent::TouchMotion {
        display: 0,
        id: 0,
        x: 3.0,
        y: 5.0,
    });
    c.input(&DisplayEvent::TouchFrame);
    c.input(&DisplayEvent::TouchUp { id: 0 });
    let ivi = take(&logs[0]);
    assert!(ivi.contains(&GuestEvent::TouchMotion { id: 0, x: 3.0, y: 5.0 }), "{ivi:?}");
    assert!(ivi.contains(&GuestEvent::TouchFrame));
    assert!(take(&logs[1]).is_empty(), "the cluster never saw the IVI's touch");
}

#[test]
fn pointer_enters_leaves_and_grabs_while_pressed() {
    let (mut c, _hs, logs) = three_sources();
    c.input(&DisplayEvent::PointerMotion {
        display: 0,
        x: 2.0,
        y: 2.0,
    });
    c.input(&DisplayEvent::Button {
        code: BTN_LEFT,
        pressed: true,
    });
    c.input(&DisplayEvent::PointerMotion {
        display: 0,
        x: 2.0,
        y: 5.0,
    });
    c.input(&DisplayEvent::Button {
        code: BTN_LEFT,
        pressed: false,
    });
    assert_eq!(
        take(&logs[0]),
        vec![
            GuestEvent::PointerEnter { x: 2.0, y: 2.0 },
            GuestEvent::KeyboardFocus(true),
            GuestEvent::Button {
                code: BTN_LEFT,
                pressed: true
            },
            GuestEvent::PointerMotion { x: 2.0, y: 5.0 },
            GuestEvent::Button {
                code: BTN_LEFT,
                pressed: false
            },
        ]
    );
    c.input(&DisplayEvent::PointerMotion {
        display: 0,
        x: 2.0,
        y: 5.5,
    });
    assert_eq!(take(&logs[0]), vec![GuestEvent::PointerLeave]);
    assert_eq!(take(&logs[1]), vec![GuestEvent::PointerEnter { x: 2.0, y: 1.5 }]);
}

#[test]
fn keys_follow_the_focus_policy() {
    let (mut c, _hs, logs) = three_sources();
    c.input(&DisplayEvent::Key { code: 30, pressed: true });
    assert!(logs.iter().all(|l| take(l).is_empty()), "no focus yet: the key goes nowhere");
    c.input(&down(1.0, 5.0));
    c.input(&DisplayEvent::TouchUp { id: 0 });
    c.input(&DisplayEvent::Key { code: 30, pressed: true });
    assert_eq!(take(&logs[1]).last(), Some(&GuestEvent::Key { code: 30, pressed: true }));

    let mut fixed = compositor(concat!(
        "[[source]]\nname = \"ivi\"\nguest = \"ivi/0\"\ndisplay = \"d\"\n",
        "[[source]]\nname = \"cluster\"\nguest = \"cluster/0\"\ndisplay = \"d\"\nrect = [0, 4, 8, 4]\nrole = \"cluster\"\n",
        "[input]\nkeyboard_focus = \"source:ivi\"\n",
    ));
    let src = fixed.sources();
    let (ivi, cl) = (src.connect_by_name("ivi").unwrap(), src.connect_by_name("cluster").unwrap());
    ivi.submit(Frame::solid(8, 8, PixelFormat::Xrgb8888, A));
    cl.submit(Frame::solid(8, 4, PixelFormat::Xrgb8888, B));
    let (li, lc) = (listen(&ivi), listen(&cl));
    fixed.render(Instant::now());
    fixed.input(&down(1.0, 5.0));
    fixed.input(&DisplayEvent::Key { code: 31, pressed: true });
    assert_eq!(take(&li), vec![GuestEvent::Key { code: 31, pressed: true }]);
    assert!(!take(&lc).contains(&GuestEvent::Key { code: 31, pressed: true }));
}

#[test]
fn touches_on_nothing_or_on_a_vanished_source_go_nowhere() {
    let (mut c, mut hs, logs) = three_sources();
    let ivi = hs.remove(0);
    drop(ivi);
    c.render(Instant::now());
    c.input(&down(1.0, 1.0));
    assert!(take(&logs[0]).is_empty());
    assert!(take(&logs[1]).is_empty());
}
